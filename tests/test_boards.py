"""Boards, firmware projects, and verify / bench on emulated Cortex-M (QEMU)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, SHARED_MODELS
from mcucompile.api import CompileOptions, bench, build_and_run_board, compile_model, verify_board, write_library
from mcucompile.boards import all_boards, get_board
from mcucompile.errors import UserError
from mcucompile.project.firmware import qemu_platform_dir
from mcucompile.targets.firmware import build_firmware, elf_size, run_qemu

EMULATED = ["qemu-m4", "qemu-m7", "qemu-m55"]
NUCLEO = ["nucleo-f746zg", "nucleo-h743zi", "nucleo-f446re", "nucleo-l4r5zi"]
MNIST = REPO / "models" / "mnist"
MODELS = {
    "mnist": (MNIST / "mnist_cnn.onnx", str(MNIST / "mnist_calib_200.npz")),
    **{n: (SHARED_MODELS / f"{n}.onnx", None) for n in
       ("resnet8_float", "vww_mbv1_025_float", "kws_dscnn_float", "ad_autoencoder_float")},
}


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("board", EMULATED)
def test_emulated_boards_bit_exact(board, model, tmp_path):
    path, calib = MODELS[model]
    compiled = compile_model(path, CompileOptions(board=board, calib=calib, progress=False))
    res = verify_board(compiled, compiled.calib[:2], out_dir=tmp_path / "fw")
    assert res.bit_exact, res.format()
    assert res.target == board


def test_board_files():
    boards = all_boards()
    assert get_board("nucleo").name == "nucleo-f746zg"
    f746 = boards["nucleo-f746zg"]
    assert (f746.core, f746.clock_hz, f746.flash_bytes, f746.sram_bytes) == ("cortex-m7", 216_000_000, 1 << 20, 320 * 1024)
    for name in EMULATED:
        b = boards[name]
        pio = json.loads((qemu_platform_dir() / "boards" / f"{name}.json").read_text())
        assert pio["build"]["cpu"] == b.core and pio["debug"]["qemu_machine"] == b.qemu_machine
        assert pio["upload"]["maximum_size"] == b.flash_bytes and pio["upload"]["maximum_ram_size"] == b.sram_bytes
    for name in NUCLEO:
        assert boards[name].platformio_board and boards[name].qemu_machine is None


@pytest.fixture(scope="module")
def pio_env(tmp_path_factory):
    pio = Path(sys.executable).with_name("pio")
    assert pio.exists(), "PlatformIO missing: make test installs it (pip extra 'dev')"
    sys.path.insert(0, str(REPO / "tools"))
    from pio_offline import setup

    cache = Path(os.environ.get("MCUCOMPILE_PIO_CACHE", Path.home() / ".cache" / "mcucompile" / "pio"))
    env = dict(os.environ, **setup(cache))
    return str(pio), env


def test_platformio_builds_and_runs_emulated_board_offline(pio_env, tmp_path):
    pio, env = pio_env
    compiled = compile_model(MODELS["mnist"][0], CompileOptions(board="qemu-m7", calib=MODELS["mnist"][1], progress=False))
    out = write_library(compiled, tmp_path / "proj")
    res = subprocess.run([pio, "run", "-e", "qemu_m7", "-t", "upload"], cwd=out, env=env, capture_output=True, text=True,
                         timeout=600)
    text = res.stdout + res.stderr
    assert res.returncode == 0, text[-3000:]
    assert "MCU END 0" in text and "MCU TOTAL" in text
    # the same firmware built by make gives the same output line
    elf = build_firmware(out)
    run = run_qemu(elf, get_board("qemu-m7"))
    out_line = next(line for line in text.splitlines() if line.startswith("MCU OUT 0"))
    assert bytes.fromhex(out_line.split()[3]) == run.outputs[0]


@pytest.mark.parametrize("board", NUCLEO)
def test_nucleo_projects_lint_and_build(board, pio_env, tmp_path):
    pio, env = pio_env
    compiled = compile_model(SHARED_MODELS / "kws_dscnn_float.onnx", CompileOptions(board=board, progress=False))
    out = write_library(compiled, tmp_path / "proj")
    ini = (out / "platformio.ini").read_text()
    assert "platform = ststm32" in ini and f"board = {get_board(board).platformio_board}" in ini
    lint = subprocess.run([pio, "project", "config", "--lint"], cwd=out, env=env, capture_output=True, text=True, timeout=300)
    assert lint.returncode == 0 and "free from linting errors" in lint.stdout, lint.stdout + lint.stderr
    assert json.loads((out / "lib" / "model" / "library.json").read_text())["name"] == "model"
    size = elf_size(build_firmware(out))
    b = get_board(board)
    assert size.flash_bytes <= b.flash_bytes and size.sram_bytes + 4096 <= b.sram_bytes
    ld = (out / f"{board}.ld").read_text()
    assert f"ORIGIN = {b.flash_base}, LENGTH = {b.flash_bytes}" in ld


def test_bench_is_repeatable_and_adds_up():
    compiled = compile_model(SHARED_MODELS / "resnet8_float.onnx", CompileOptions(board="qemu-m4", progress=False))
    a, b = bench(compiled), bench(compiled)
    assert a.unit == "instructions"
    assert [x["count"] for x in a.layers] == [x["count"] for x in b.layers] and a.total == b.total
    assert a.inputs == (a.total,)  # one chain per patch: its instructions do not depend on the input, one is run
    layer_sum = sum(x["count"] for x in a.layers)
    assert layer_sum <= a.total <= layer_sum * 1.01 + 2000, (layer_sum, a.total)
    assert all(x["count"] > 0 for x in a.layers if x["macs"] > 0)
    assert a.flash_bytes > compiled.report.weights_bytes and a.sram_bytes >= compiled.plan.arena_size
    text = a.format()
    assert "instructions under QEMU" in text and "total" in text


def _inject(out: Path, code: str) -> None:
    main = out / "src" / "main.c"
    text = main.read_text().replace("    board_init();\n", "    board_init();\n" + code, 1)
    main.write_text(text)


def test_firmware_fault_is_reported(tmp_path):
    compiled = compile_model(SHARED_MODELS / "kws_dscnn_float.onnx", CompileOptions(board="qemu-m7", progress=False))
    out = write_library(compiled, tmp_path / "fw")
    _inject(out, "    *(volatile uint32_t *)0xFFFFFFF0u = 1u; /* injected fault */\n")
    with pytest.raises(UserError, match="firmware faulted on qemu-m7: hardfault pc=0x"):
        run_qemu(build_firmware(out), get_board("qemu-m7"), timeout=60)


def test_firmware_hang_times_out(tmp_path):
    compiled = compile_model(SHARED_MODELS / "kws_dscnn_float.onnx", CompileOptions(board="qemu-m4", progress=False))
    out = write_library(compiled, tmp_path / "fw")
    _inject(out, "    for (volatile int forever = 1; forever;) { } /* injected hang */\n")
    with pytest.raises(UserError, match="did not finish within 5 s"):
        run_qemu(build_firmware(out), get_board("qemu-m4"), timeout=5)


def test_qemu_missing_from_path(tmp_path):
    env_dir = tmp_path / "bin"
    env_dir.mkdir()
    for tool in ("arm-none-eabi-gcc", "arm-none-eabi-size", "make"):
        (env_dir / tool).symlink_to(shutil.which(tool))
    env = dict(os.environ, PATH=f"{env_dir}:{Path(sys.executable).parent}")
    res = subprocess.run([sys.executable, "-m", "mcucompile", "verify", str(SHARED_MODELS / "kws_dscnn_float.onnx"),
                          "--board", "qemu-m7", "-n", "1"], capture_output=True, text=True, env=env)
    assert res.returncode == 2, res.stderr
    assert "mcucompile: error: 'qemu-system-arm' not found on PATH; install it: apt-get install qemu-system-arm" in res.stderr


def test_verify_and_bench_cli(tmp_path):
    res = subprocess.run([sys.executable, "-m", "mcucompile", "verify", str(SHARED_MODELS / "vww_mbv1_025_float.onnx"),
                          "--board", "qemu-m7", "-n", "2"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "bit-exact" in res.stdout
    res = subprocess.run([sys.executable, "-m", "mcucompile", "bench", str(SHARED_MODELS / "kws_dscnn_float.onnx"),
                          "--board", "qemu-m7", "--json"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["unit"] == "instructions" and data["total"] > 0 and len(data["layers"]) > 5


def test_real_board_verify_says_what_to_do(tmp_path):
    compiled = compile_model(SHARED_MODELS / "kws_dscnn_float.onnx", CompileOptions(board="nucleo-f746zg", progress=False))
    with pytest.raises(UserError, match="real board: mcucompile wrote its PlatformIO project"):
        build_and_run_board(compiled, compiled.calib[:1], tmp_path / "fw")


def _qemu_uart_server(elf, board):
    """Start QEMU with the board's UART on a loopback TCP socket; it waits for the reader to connect."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen(["qemu-system-arm", "-M", get_board(board).qemu_machine, "-nographic", "-monitor", "none",
                             "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on", "-semihosting-config",
                             "enable=on,target=native", "-icount", "shift=0", "-kernel", str(elf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, f"socket://127.0.0.1:{port}"


@pytest.mark.parametrize("board", ["qemu-m4", "qemu-m7"])
def test_uart_console_and_port_reader(board, tmp_path):
    """The real-board path: firmware prints on its UART, the host reads the port (here QEMU's UART on a
    loopback socket stands in for the NUCLEO's ST-LINK virtual COM port)."""
    compiled = compile_model(SHARED_MODELS / "kws_dscnn_float.onnx",
                             CompileOptions(board=board, console="uart", progress=False))
    samples = compiled.calib[:2]
    from mcucompile.api import quantize_input

    flashed = write_library(compiled, tmp_path / "flashed", quantize_input(compiled, samples))
    assert "console_init" in (flashed / "src" / "board_port.c").read_text()
    proc, url = _qemu_uart_server(build_firmware(flashed), board)
    try:
        res = verify_board(compiled, samples, out_dir=tmp_path / "fw", port=url, upload=False, timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert res.bit_exact and res.samples == 2, res.format()


def test_nucleo_firmware_prints_on_the_stlink_uart(tmp_path):
    compiled = compile_model(SHARED_MODELS / "kws_dscnn_float.onnx", CompileOptions(board="nucleo-f746zg", progress=False))
    out = write_library(compiled, tmp_path / "fw")
    port_c = (out / "src" / "board_port.c").read_text()
    assert "0x40004800u" in port_c and "139u" in port_c and "AF7" in port_c  # USART3, 115200 @ 16 MHz, PD8
    assert "SYS_EXIT_EXTENDED" not in port_c.split("void board_exit")[1].split("}")[0]


def test_unreachable_port_is_a_clear_error(tmp_path):
    res = subprocess.run([sys.executable, "-m", "mcucompile", "verify", str(SHARED_MODELS / "kws_dscnn_float.onnx"),
                          "--board", "nucleo-f746zg", "--port", "/dev/ttyNOPE0", "--no-upload", "-n", "1"],
                         capture_output=True, text=True)
    assert res.returncode == 2, res.stderr
    assert "cannot open port /dev/ttyNOPE0" in res.stderr and "Traceback" not in res.stderr
