"""Cortex-M33 and Cortex-M0 boards: qemu-m33 (QEMU mps2-an505, Armv8-M Mainline with DSP and FPU, run in
the Secure state) and qemu-m0 (QEMU microbit, Armv6-M, no DSP, no FPU, 16 KB SRAM, 256 KB flash), and
the real boards of the same cores (NUCLEO-U575ZI-Q, NUCLEO-G071RB), whose projects are generated, linted
and linked offline.

- qemu-m33 verifies bit-exact on MNIST and KWS with the DSP kernels; the DSP kernel harness
  (tests/c_kernels) runs on it with the real SXTB16 / SMLAD instructions (in tests/test_c_kernels.py);
- qemu-m0 verifies bit-exact on MNIST and the small op models of tests/data/tflite with the portable
  kernels; QEMU traps unaligned word loads on Armv6-M as the core does (checked here), so these runs also
  show the code they run makes none; the whole runtime, DSP sources included (portable intrinsics, never
  selected there), builds for Armv6-M with -Wall -Wextra -Werror;
- a model that does not fit (ad_autoencoder's 289 KB of flash on qemu-m0, VWW's SRAM) is refused with one
  line, exit 2, before anything is built; KWS, whose arena fits 16 KB but not beside the stack, is refused
  by the link with the fix, and with that fix before building;
- the SysTick counter counts instructions at each machine's clock (50 per tick on mps2-an505, 62.5 on
  microbit): a loop of known length measures what it should;
- firmware prints on each emulated board's UART (CMSDK UART0 at its Secure alias; nRF51 UART0) and reports
  a fault through the Armv6-M HardFault entry.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, SHARED_MODELS
from mcucompile.api import CompileOptions, bench, compile_model, quantize_input, verify_board, write_library
from mcucompile.boards import get_board
from mcucompile.errors import UserError
from mcucompile.project.firmware import cpu_flags, qemu_platform_dir
from mcucompile.targets.firmware import build_firmware, elf_size, parse_lines, run_qemu

sys.path.insert(0, str(Path(__file__).parent / "c_kernels"))

import harness  # noqa: E402  (tests/c_kernels)

MNIST = REPO / "models" / "mnist"
MNIST_MODEL, MNIST_CALIB, MNIST_TEST = MNIST / "mnist_cnn.onnx", MNIST / "mnist_calib_200.npz", MNIST / "mnist_test_2000.npz"
KWS_TFLITE = SHARED_MODELS / "kws_dscnn_int8.tflite"
TFLITE_DATA = REPO / "tests" / "data" / "tflite"
# one per op of the single-input, batch-1 op models of tests/data/tflite (the others: two inputs, batch 2, or
# no layer at all: a lone QUANTIZE / DEQUANTIZE)
SMALL_MODELS = ["conv_avg_pool_same_0", "conv_hard_swish_0", "conv_logistic_0", "conv_mean_keep_0",
                "conv_mean_squeeze_0", "conv_tanh_0", "hand_avg_pool_same_relu_0", "hand_requant_0"]
EMULATED = ["qemu-m33", "qemu-m0"]
REAL = {"nucleo-u575zi-q": "nucleo_u575zi_q", "nucleo-g071rb": "nucleo_g071rb"}


def _mnist_test(n: int) -> tuple[np.ndarray, np.ndarray]:
    with np.load(MNIST_TEST) as z:
        return z["x"][:n].astype(np.float32) / 255.0, z["y"][:n]


def _disassembly(elf: Path) -> str:
    return subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True, text=True, check=True).stdout


# ------------------------------------------------------------------------------------------------
# board files, flags, linker scripts, the PlatformIO dev-platform's boards
# ------------------------------------------------------------------------------------------------

def test_board_files_and_flags():
    m33, m0 = get_board("qemu-m33"), get_board("qemu-m0")
    assert (m33.core, m33.arch, m33.dsp, m33.mve, m33.qemu_machine) == ("cortex-m33", "armv8-m.main", True, False,
                                                                       "mps2-an505")
    assert (m33.flash_base, m33.clock_hz) == ("0x10000000", 20_000_000)  # Secure alias; SysTick 20 MHz
    assert cpu_flags(m33) == ["-mcpu=cortex-m33", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16"]
    assert (m0.core, m0.arch, m0.dsp, m0.fpu, m0.qemu_machine) == ("cortex-m0", "armv6-m", False, "none", "microbit")
    assert (m0.flash_bytes, m0.sram_bytes, m0.clock_hz, m0.stack_bytes) == (256 << 10, 16 << 10, 16_000_000, 2048)
    assert cpu_flags(m0) == ["-mcpu=cortex-m0", "-mthumb", "-mfloat-abi=soft"]
    u5, g0 = get_board("nucleo-u575zi-q"), get_board("nucleo-g071rb")
    assert (u5.core, u5.dsp, u5.flash_bytes, u5.sram_bytes) == ("cortex-m33", True, 2 << 20, 768 << 10)
    assert (g0.core, g0.arch, g0.dsp, g0.flash_bytes, g0.sram_bytes) == ("cortex-m0plus", "armv6-m", False, 128 << 10,
                                                                         36 << 10)
    assert cpu_flags(g0) == ["-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft"]
    for name in EMULATED:
        b = get_board(name)
        pio = json.loads((qemu_platform_dir() / "boards" / f"{name}.json").read_text())
        assert pio["build"]["cpu"] == b.core and pio["debug"]["qemu_machine"] == b.qemu_machine
        assert pio["build"]["fpu_flags"].split() == cpu_flags(b)[2:]
        assert pio["upload"]["maximum_size"] == b.flash_bytes and pio["upload"]["maximum_ram_size"] == b.sram_bytes
        assert pio["build"]["f_cpu"] == f"{b.clock_hz}L"


# ------------------------------------------------------------------------------------------------
# qemu-m33: DSP kernels, bit-exact
# ------------------------------------------------------------------------------------------------

def test_qemu_m33_mnist_bit_exact_with_dsp_kernels(tmp_path):
    compiled = compile_model(MNIST_MODEL, CompileOptions(board="qemu-m33", calib=str(MNIST_CALIB), progress=False))
    kernels = {lay.kernel for lay in compiled.report.layers}
    assert {"conv_dsp", "depthwise_conv_dsp", "fully_connected_dsp"} <= kernels, kernels
    assert compiled.report.fast_mac_share > 0.9
    x, y = _mnist_test(20)
    res = verify_board(compiled, x, y, out_dir=tmp_path / "fw")
    assert res.bit_exact and res.target == "qemu-m33" and res.samples == 20, res.format()
    assert res.accuracy_int8 >= 0.9
    dis = _disassembly(tmp_path / "fw" / "build" / "firmware.elf")
    assert "smlad" in dis and "sxtb16" in dis  # the DSP instructions ran


def test_qemu_m33_kws_bit_exact_with_dsp_kernels(tmp_path):
    compiled = compile_model(KWS_TFLITE, CompileOptions(board="qemu-m33", progress=False))
    assert compiled.report.fast_mac_share > 0.9, [(lay.kernel, lay.kernel_reason) for lay in compiled.report.layers]
    res = verify_board(compiled, compiled.calib[:3], out_dir=tmp_path / "fw")
    assert res.bit_exact and res.samples == 3, res.format()


# ------------------------------------------------------------------------------------------------
# qemu-m0: portable kernels on Armv6-M, bit-exact; what does not fit says so
# ------------------------------------------------------------------------------------------------

def test_qemu_m0_mnist_bit_exact_portable(tmp_path):
    compiled = compile_model(MNIST_MODEL, CompileOptions(board="qemu-m0", calib=str(MNIST_CALIB), progress=False))
    assert compiled.report.fast_mac_share == 0.0
    kernels = {lay.kernel for lay in compiled.report.layers}
    assert {"conv", "depthwise_conv", "fully_connected"} <= kernels, kernels
    assert not any("dsp" in k or "mve" in k for k in kernels), kernels
    x, y = _mnist_test(20)
    res = verify_board(compiled, x, y, out_dir=tmp_path / "fw")
    assert res.bit_exact and res.target == "qemu-m0" and res.samples == 20, res.format()
    elf = tmp_path / "fw" / "build" / "firmware.elf"
    size = elf_size(elf)
    assert size.sram_bytes <= 16 << 10 and size.flash_bytes <= 256 << 10
    # Armv6-M code only, and none of the DSP kernels linked in (their sources compile, unused, to nothing kept)
    dis = _disassembly(elf)
    assert "smlad" not in dis and "_dsp_" not in dis and not re.search(r"\tit[te]{0,3}\t", dis)


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_qemu_m0_small_models_bit_exact(name, tmp_path):
    compiled = compile_model(TFLITE_DATA / f"{name}.tflite", CompileOptions(board="qemu-m0", progress=False))
    res = verify_board(compiled, compiled.calib[:2], out_dir=tmp_path / "fw")
    assert res.bit_exact and res.samples == 2, res.format()


def test_model_too_large_for_qemu_m0_flash_is_refused_before_building(tmp_path):
    out = tmp_path / "out"
    for cmd in (["verify", str(SHARED_MODELS / "ad_autoencoder_float.onnx"), "--board", "qemu-m0", "-n", "1"],
                [str(SHARED_MODELS / "ad_autoencoder_int8.tflite"), "--board", "qemu-m0", "-o", str(out)]):
        res = subprocess.run([sys.executable, "-m", "mcucompile", *cmd], capture_output=True, text=True, timeout=300)
        assert res.returncode == 2, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("mcucompile: error: "), res.stderr
        # the model's need, the board's size and a fix
        assert re.search(r"does not fit board 'qemu-m0' \(flash: needs 2[89]\d,\d{3} B, board has 262,144 B\); try ",
                         lines[0]), lines[0]
        assert "Traceback" not in res.stderr
    assert not out.exists()  # nothing written or built


def test_model_too_large_for_qemu_m0_sram_is_refused():
    with pytest.raises(UserError, match=r"does not fit board 'qemu-m0' \(SRAM: needs [\d,]+ B even patched.*"
                                        r"board has 16,384 B, 14,336 B beside its 2,048 B stack\); try "):
        compile_model(SHARED_MODELS / "vww_mbv1_025_int8.tflite", CompileOptions(board="qemu-m0", progress=False))


def test_kws_on_qemu_m0_says_it_does_not_fit(tmp_path):
    """KWS's arena (16,256 B) is within the M0's 16 KB but not beside its 2 KB stack: refused before building, with
    both figures; a firmware whose variables still overflow the RAM is refused by the link in one line."""
    with pytest.raises(UserError, match=r"does not fit board 'qemu-m0' \(SRAM: needs 16,256 B even patched.*"
                                        r"board has 16,384 B, 14,336 B beside its 2,048 B stack\); try "):
        compile_model(KWS_TFLITE, CompileOptions(board="qemu-m0", progress=False))
    compiled = compile_model(MNIST / "mnist_cnn.onnx", CompileOptions(board="qemu-m0", progress=False,
                                                                      calib=str(MNIST / "mnist_calib_200.npz")))
    out = write_library(compiled, tmp_path / "fw", quantize_input(compiled, compiled.calib[:1]))
    main_c = out / "src" / "main.c"  # an application with 8 KB of its own variables
    main_c.write_text(main_c.read_text().replace("int main(void)\n{", "static volatile uint8_t app_buffer[8192];\n\n"
                                                 "int main(void)\n{\n    app_buffer[0] = 1;", 1))
    with pytest.raises(UserError, match=r"^firmware does not fit the board's SRAM \(RAM overflowed by [\d,]+ B: "
                                        r"the model's arena, the stack and the firmware's variables together\); "
                                        r"try an --sram-limit"):
        build_firmware(out)


# ------------------------------------------------------------------------------------------------
# counters, bench, fault, UART console
# ------------------------------------------------------------------------------------------------

def _inject(out: Path, code: str) -> None:
    main = out / "src" / "main.c"
    text = main.read_text()
    assert "    board_init();\n" in text
    main.write_text(text.replace("    board_init();\n", "    board_init();\n" + code, 1))


# 100 * 1024 iterations of SUBS + BNE (2 instructions each; 16-bit Thumb encodings on every core; gcc assembles
# Thumb-1 inline assembly in divided syntax unless told), timed
# with board_counter(): the SysTick ticks converted at the machine's clock must give 204,800 instructions
# plus the few of the loop set-up and the counter reads.
CALIBRATION_LOOP = r"""    {
        const uint64_t t0 = board_counter();
        __asm__ volatile(".syntax unified\n\tmovs r0, #100\n\tlsls r0, r0, #10\n1:\n\tsubs r0, #1\n\tbne 1b"
                         ::: "r0", "cc", "memory");
        const uint64_t t1 = board_counter();
        char *cal = put_str(line, "MCU CAL ");
        cal = put_u64(cal, t1 - t0);
        print_line_end(cal);
    }
"""


@pytest.mark.parametrize("board", ["qemu-m33", "qemu-m0", "qemu-m4"])
def test_systick_counts_instructions_at_the_machine_clock(board, tmp_path):
    compiled = compile_model(TFLITE_DATA / "conv_tanh_0.tflite", CompileOptions(board=board, progress=False))
    out = write_library(compiled, tmp_path / "fw")
    _inject(out, CALIBRATION_LOOP)
    run = run_qemu(build_firmware(out), get_board(board), timeout=60)
    m = re.search(r"MCU CAL (\d+)", run.log)
    assert m, run.log[-500:]
    counted = int(m.group(1))
    # one SysTick tick is 40 (an386), 50 (an505) or 62.5 (microbit) instructions: a wrong clock would be off by 20%+
    assert 204_800 <= counted <= 204_800 + 400, counted


def test_bench_on_qemu_m33_and_m0():
    """bench runs on both; the M33 with the same DSP kernels executes about as many instructions as the M4
    (the counts come from SysTick ticks at 20 MHz vs 25 MHz, so a wrong clock would show), the M0 with the
    portable kernels in Thumb-1 more."""
    opts = dict(calib=str(MNIST_CALIB), progress=False)
    m4, m33, m0 = (bench(compile_model(MNIST_MODEL, CompileOptions(board=b, **opts)))
                   for b in ("qemu-m4", "qemu-m33", "qemu-m0"))
    for b in (m33, m0):
        assert b.unit == "instructions" and b.total > 0 and all(x["count"] > 0 for x in b.layers if x["macs"] > 0)
        layer_sum = sum(x["count"] for x in b.layers)
        assert layer_sum <= b.total <= layer_sum * 1.01 + 2000
    assert abs(m33.total - m4.total) <= 0.02 * m4.total, (m33.total, m4.total)
    assert m0.total > 2 * m4.total, (m0.total, m4.total)
    assert "qemu-m0" in m0.format() and "instructions under QEMU" in m0.format()


def test_qemu_m0_unaligned_word_load_faults_and_is_reported(tmp_path):
    """QEMU traps unaligned LDR on Armv6-M as the silicon does (so the bit-exact runs above did none), and the
    Thumb-1 HardFault entry reports the faulting pc and exits."""
    compiled = compile_model(TFLITE_DATA / "conv_tanh_0.tflite", CompileOptions(board="qemu-m0", progress=False))
    out = write_library(compiled, tmp_path / "fw")
    # the address is hidden from gcc (which would split a load it knows to be misaligned into byte loads)
    _inject(out, "    { static uint32_t words[2]; uintptr_t a = (uintptr_t)words + 1u; __asm__ volatile(\"\" : \"+r\"(a));\n"
                 "      (void)*(volatile uint32_t *)a; } /* injected unaligned load */\n")
    with pytest.raises(UserError, match="firmware faulted on qemu-m0: hardfault pc=0x"):
        run_qemu(build_firmware(out), get_board("qemu-m0"), timeout=60)


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("board", EMULATED)
def test_uart_console(board, tmp_path):
    """The board's UART console (what a real board's project uses): QEMU's -serial on a socket reads it."""
    compiled = compile_model(TFLITE_DATA / "conv_tanh_0.tflite",
                             CompileOptions(board=board, console="uart", progress=False))
    samples = compiled.calib[:2]
    out = write_library(compiled, tmp_path / "fw", quantize_input(compiled, samples))
    elf = build_firmware(out)
    port = _free_port()
    srv = socket.socket()
    srv.bind(("127.0.0.1", port))
    srv.listen(1)
    srv.settimeout(60)
    proc = subprocess.Popen(["qemu-system-arm", "-M", get_board(board).qemu_machine, "-nographic", "-monitor", "none",
                             "-serial", f"tcp:127.0.0.1:{port}", "-semihosting-config", "enable=on,target=native",
                             "-icount", "shift=0", "-kernel", str(elf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        conn, _ = srv.accept()
        conn.settimeout(60)
        data = b""
        while chunk := conn.recv(4096):  # until QEMU exits (semihosting exit after "MCU END")
            data += chunk
        conn.close()
        proc.wait(timeout=60)
    finally:
        srv.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    run = parse_lines(data.decode(errors="replace"))
    assert run.status == 0 and len(run.outputs) == 2, data[-500:]
    assert "MCU BEGIN board=" + board in data.decode()


# ------------------------------------------------------------------------------------------------
# the DSP kernel harness on qemu-m33 (real instructions); the runtime for Armv6-M
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("core,opt", [("cortex-m0", "-O2"), ("cortex-m0", "-O0"), ("cortex-m0plus", "-Os")])
def test_runtime_builds_for_armv6m_warning_free(core, opt, tmp_path):
    """Every runtime source, the DSP and MVE ones included (portable intrinsics / nothing on Armv6-M), with
    -Wall -Wextra -Werror for the M0 cores."""
    sources = sorted((harness.RUNTIME / "src").glob("*.c"))
    for src in sources:
        obj = tmp_path / (src.stem + ".o")
        res = subprocess.run(["arm-none-eabi-gcc", f"-mcpu={core}", "-mthumb", "-mfloat-abi=soft", "-std=c99", opt,
                              "-Wall", "-Wextra", "-Werror", "-I", str(harness.RUNTIME / "include"), "-c", str(src),
                              "-o", str(obj)], capture_output=True, text=True, check=False)
        assert res.returncode == 0, f"{src.name}: {res.stderr[-2000:]}"
        if "_mve" in src.stem:
            # compiled out entirely without MVE
            syms = subprocess.run(["arm-none-eabi-nm", str(obj)], capture_output=True, text=True, check=True).stdout
            assert " T " not in syms, syms
    assert len(sources) > 10


# ------------------------------------------------------------------------------------------------
# PlatformIO: the emulated boards through the local dev-platform; the real boards' projects offline
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pio_env():
    pio = Path(sys.executable).with_name("pio")
    assert pio.exists(), "PlatformIO missing: make test installs it (pip extra 'dev')"
    sys.path.insert(0, str(REPO / "tools"))
    from pio_offline import setup

    cache = Path(os.environ.get("MCUCOMPILE_PIO_CACHE", Path.home() / ".cache" / "mcucompile" / "pio"))
    return str(pio), dict(os.environ, **setup(cache))


@pytest.mark.parametrize("board", EMULATED)
def test_platformio_runs_emulated_board_offline(board, pio_env, tmp_path):
    pio, env = pio_env
    compiled = compile_model(MNIST_MODEL, CompileOptions(board=board, calib=str(MNIST_CALIB), progress=False))
    out = write_library(compiled, tmp_path / "proj")
    res = subprocess.run([pio, "run", "-e", board.replace("-", "_"), "-t", "upload"], cwd=out, env=env,
                         capture_output=True, text=True, timeout=600)
    text = res.stdout + res.stderr
    assert res.returncode == 0, text[-3000:]
    assert "MCU END 0" in text and "MCU TOTAL" in text
    run = run_qemu(build_firmware(out), get_board(board))  # the Make build prints the same output
    line = next(ln for ln in text.splitlines() if ln.startswith("MCU OUT 0"))
    assert bytes.fromhex(line.split()[3]) == run.outputs[0]


@pytest.mark.parametrize("board", list(REAL))
def test_real_board_projects_lint_and_link(board, pio_env, tmp_path):
    pio, env = pio_env
    b = get_board(board)
    compiled = compile_model(MNIST_MODEL, CompileOptions(board=board, calib=str(MNIST_CALIB), progress=False))
    out = write_library(compiled, tmp_path / "proj")
    ini = (out / "platformio.ini").read_text()
    assert "platform = ststm32" in ini and f"board = {REAL[board]}" in ini and f"board_build.ldscript = {board}.ld" in ini
    assert f"-mcpu={b.core}" in ini
    lint = subprocess.run([pio, "project", "config", "--lint"], cwd=out, env=env, capture_output=True, text=True,
                          timeout=300)
    assert lint.returncode == 0 and "free from linting errors" in lint.stdout, lint.stdout + lint.stderr
    ld = (out / f"{board}.ld").read_text()
    assert f"ORIGIN = {b.flash_base}, LENGTH = {b.flash_bytes}" in ld and f"ORIGIN = {b.sram_base}, LENGTH = {b.sram_bytes}" in ld
    elf = build_firmware(out)  # the Make project with arm-none-eabi-gcc for this core
    size = elf_size(elf)
    assert size.flash_bytes <= b.flash_bytes and size.sram_bytes <= b.sram_bytes
    port_c = (out / "src" / "board_port.c").read_text()
    assert b.console["base"] + "u" in port_c and f"{b.console['brr']}u" in port_c
    dis = _disassembly(elf)
    if b.arch == "armv6-m":
        # no DWT->CYCCNT on a Cortex-M0+: SysTick on the core clock counts cycles
        assert "SYST_CVR" in port_c and "DWT_CYCCNT" not in port_c and "smlad" not in dis
    else:
        assert "DWT_CYCCNT" in port_c and "smlad" in dis


def test_model_with_no_layers_builds_for_a_board(tmp_path):
    """A lone QUANTIZE is no layer: the firmware still builds (-Wall -Wextra -Werror) and runs bit-exact."""
    compiled = compile_model(TFLITE_DATA / "hand_quantize_0.tflite", CompileOptions(board="qemu-m0", progress=False))
    res = verify_board(compiled, compiled.calib[:2], out_dir=tmp_path / "fw")
    assert res.bit_exact, res.format()
