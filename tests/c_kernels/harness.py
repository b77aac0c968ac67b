"""Random layers for the DSP kernel tests, and the host / emulated-board builds that run them.

Cases are drawn in Python with numpy (shapes, strides, paddings and start offsets, zero points, requantization,
clamps), the fast kernels' weights and biases come from ``mcucompile.ops.fast_layout`` exactly as the compiler
will emit them, and ``cases.c.j2`` writes them as C arrays. ``kernel_main.c`` runs each case through the
portable kernel (the reference) and the fast kernel on the same target and compares the bytes.

The firmware build reuses the project templates (startup, board port, linker script) of
``mcucompile.project`` so the tests run on the same startup code as users' firmware; bench/kernels.py builds
its firmware with the same function.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np
from mcucompile.boards import Board
from mcucompile.codegen.generate import c_array
from mcucompile.ops import fast_layout
from mcucompile.project.firmware import cpu_flags, project_files
from mcucompile.targets.host import CFLAGS, SANITIZE_FLAGS, find_compiler

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RUNTIME = ROOT / "runtime_c"
RUNTIME_SOURCES = sorted((RUNTIME / "src").glob("*.c"))

KIND = {"conv_1x1": 0, "conv": 1, "dwconv": 2, "fc": 3, "dwconv_3x3": 4}


@dataclass(frozen=True)
class Case:
    """One layer: what both kernels are called with (the C struct kt_case)."""

    kind: int
    describe: str
    in_dims: tuple[int, int, int, int]
    filter_dims: tuple[int, int, int, int]
    out_dims: tuple[int, int, int, int]
    stride: tuple[int, int]  # (h, w)
    pad: tuple[int, int]
    dilation: tuple[int, int]
    in_off: int
    out_off: int
    act: tuple[int, int]
    input: np.ndarray
    filter: np.ndarray
    fast_filter: np.ndarray
    bias: np.ndarray
    has_bias: bool
    fast_bias: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    scratch_ref: int
    scratch_fast: int

    @property
    def fast_bias_given(self) -> bool:
        """The fast kernel gets a bias array (the folded one always; the general conv's, the model's, only when it
        has one)."""
        return self.has_bias or self.kind != KIND["conv"]

    @property
    def output_size(self) -> int:
        _, h, w, c = self.out_dims
        return self.in_dims[0] * h * w * c


def failures(log: str, prefixes: tuple[str, ...] = ("FAIL", "MCU")) -> str:
    """The lines of a harness's output that say what failed (and its summary), for an assertion message."""
    return "\n".join(line for line in log.splitlines() if line.startswith(prefixes))[:3000]


def _quant(rng: np.random.Generator, cout: int, depth: int, edge_cases: bool = True):
    """Multipliers in [2^30, 2^31) and shifts that bring a depth-term accumulator back to about int8, a
    zero point pair and a clamp (full range or a fused ReLU-like bound); with ``edge_cases``, some layers
    get shifts over the whole range and extreme multipliers (every requantization path)."""
    mult = rng.integers(1 << 30, (1 << 31) - 1, size=cout, dtype=np.int64).astype(np.int32)
    base = -int(np.log2(max(depth, 1) * 128 * 16)) + 4
    shift = (base + rng.integers(-2, 3, size=cout)).astype(np.int32)
    if edge_cases and rng.random() < 0.3:
        # every requantization path: shifts above -2 (left shifts included) and below -23, mixed in one layer
        shift = rng.integers(-31, 4, size=cout).astype(np.int32)
        if shift[0] % 2 == 0:
            # half of them within [-23, 3]: the store loop that branches per channel on its shift
            shift = np.maximum(shift, -23)
    if edge_cases and rng.random() < 0.2:
        mult[rng.integers(0, cout)] = (1 << 31) - 1 if rng.random() < 0.5 else 1 << 30
    shift = np.clip(shift, -31, 30)
    in_off = int(rng.integers(-127, 129))
    out_off = int(rng.integers(-128, 128))
    act = (-128, 127) if rng.random() < 0.6 else (int(rng.integers(-128, 0)), int(rng.integers(0, 128)))
    return mult, shift, in_off, out_off, act


def _bias(rng, cout):
    has = rng.random() < 0.85
    b = rng.integers(-(1 << 14), 1 << 14, size=cout).astype(np.int32) if has else np.zeros(cout, np.int32)
    return b, has


def _window_out(size: int, k: int, stride: int, pad: int, dil: int, rng) -> int:
    eff = (k - 1) * dil + 1
    full = (size + 2 * max(pad, 0) + min(pad, 0) - eff) // stride + 1
    return int(max(1, full if rng.random() < 0.7 else rng.integers(1, max(full, 1) + 1)))


def _int8(rng, shape):
    return rng.integers(-128, 128, size=shape).astype(np.int8)


def conv_case(rng, one_by_one: bool) -> Case:
    n = int(rng.integers(1, 3))
    if one_by_one:
        kh = kw = 1
        cin = int(rng.choice([4, 8, 12, 16, 20, 32]))
        stride = (int(rng.choice([1, 1, 2])), int(rng.choice([1, 1, 2])))
        dil = (1, 1)
        # a start offset (negative padding) or none; every tap inside the input
        pad = (-int(rng.integers(0, 3)), -int(rng.integers(0, 3)))
        oh, ow = int(rng.integers(1, 8)), int(rng.integers(1, 8))
        h = -pad[0] + (oh - 1) * stride[0] + 1 + int(rng.integers(0, 3))
        w = -pad[1] + (ow - 1) * stride[1] + 1 + int(rng.integers(0, 3))
    else:
        kh, kw = [(1, 1), (2, 2), (3, 3), (3, 3), (5, 5), (10, 4), (1, 3), (3, 1)][int(rng.integers(0, 8))]
        cin = int(rng.choice([1, 2, 3, 4, 5, 7, 8, 16]))
        stride = (int(rng.choice([1, 2])), int(rng.choice([1, 2])))
        dil = (1, 1) if rng.random() < 0.8 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        pad = (int(rng.integers(-2, 3)), int(rng.integers(-2, 3)))
        h, w = int(rng.integers(kh, kh + 8)), int(rng.integers(kw, kw + 8))
        oh = _window_out(h, kh, stride[0], pad[0], dil[0], rng)
        ow = _window_out(w, kw, stride[1], pad[1], dil[1], rng)
    cout = int(rng.integers(1, 10))
    x = _int8(rng, (n, h, w, cin))
    wts = _int8(rng, (cout, kh, kw, cin))
    bias, has = _bias(rng, cout)
    mult, shift, in_off, out_off, act = _quant(rng, cout, kh * kw * cin)
    consts = (fast_layout.conv_1x1_constants if one_by_one else fast_layout.conv_constants)(
        wts, bias if has else None, in_off)
    fast_w, scratch = consts.weights, consts.scratch_bytes
    fast_b = consts.bias if consts.bias is not None else bias
    what = "conv_1x1" if one_by_one else "conv"
    return Case(KIND[what], f"{what} {n}x{h}x{w}x{cin} k{kh}x{kw} s{stride} p{pad} d{dil} -> {oh}x{ow}x{cout}",
                (n, h, w, cin), (cout, kh, kw, cin), (n, oh, ow, cout), stride, pad, dil, in_off, out_off, act,
                x, wts, fast_w, bias, has, fast_b, mult, shift, 0, scratch)


def dwconv_case(rng) -> Case:
    n = int(rng.integers(1, 3))
    kh, kw = [(3, 3), (3, 3), (1, 1), (2, 2), (5, 5), (3, 1), (1, 3), (7, 7)][int(rng.integers(0, 8))]
    c = int(rng.choice([1, 2, 3, 4, 5, 7, 8, 12, 13, 16]))
    stride = (int(rng.choice([1, 2])), int(rng.choice([1, 2])))
    dil = (1, 1) if rng.random() < 0.8 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    pad = (int(rng.integers(-2, 3)), int(rng.integers(-2, 3)))
    h, w = int(rng.integers(kh, kh + 8)), int(rng.integers(kw, kw + 8))
    oh = _window_out(h, kh, stride[0], pad[0], dil[0], rng)
    ow = _window_out(w, kw, stride[1], pad[1], dil[1], rng)
    x = _int8(rng, (n, h, w, c))
    wts = _int8(rng, (kh, kw, c))
    bias, has = _bias(rng, c)
    mult, shift, in_off, out_off, act = _quant(rng, c, kh * kw)
    consts = fast_layout.dwconv_constants(wts, bias if has else None, in_off)
    return Case(KIND["dwconv"], f"dwconv {n}x{h}x{w}x{c} k{kh}x{kw} s{stride} p{pad} d{dil} -> {oh}x{ow}",
                (n, h, w, c), (1, kh, kw, c), (n, oh, ow, c), stride, pad, dil, in_off, out_off, act,
                x, wts, consts.weights, bias, has, consts.bias, mult, shift, 4 * c, consts.scratch_bytes)


def fc_case(rng) -> Case:
    rows, depth, cout = int(rng.integers(1, 4)), int(rng.integers(1, 80)), int(rng.integers(1, 14))
    if rng.random() < 0.3:
        cout = int(rng.choice([16, 17, 20, 23, 24, 31]))  # several groups of 8, with and without a quad after
    x = _int8(rng, (rows, depth))
    wts = _int8(rng, (cout, depth))
    bias, has = _bias(rng, cout)
    mult, shift, in_off, out_off, act = _quant(rng, cout, depth)
    consts = fast_layout.fully_connected_constants(wts, bias if has else None, in_off)
    return Case(KIND["fc"], f"fc {rows}x{depth} -> {cout}", (rows, 1, 1, depth), (depth, 1, 1, cout),
                (rows, 1, 1, cout), (1, 1), (0, 0), (1, 1), in_off, out_off, act, x, wts,
                consts.weights, bias, has, consts.bias, mult, shift, 0, consts.scratch_bytes)


def high_shift_cases(seed: int) -> list[Case]:
    """A pointwise, a 3x3 conv and a 3x3 depthwise layer (output chunks past 32 channels and a channel tail) with
    shifts in [-1, 2] on every third channel (``layer_case(high_shifts=True)``)."""
    return [layer_case("conv_1x1", (4, 5, 16), (1, 1), 37, seed=seed, high_shifts=True),
            layer_case("conv", (5, 6, 8), (3, 3), 11, pad=(1, 1), seed=seed + 2, high_shifts=True),
            layer_case("dwconv", (6, 6, 37), (3, 3), 37, pad=(1, 1), seed=seed + 4, high_shifts=True)]


def random_cases(seed: int, per_kind: int) -> list[Case]:
    """``per_kind`` random layers of each of the four fast kernels."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(per_kind):
        cases += [conv_case(rng, True), conv_case(rng, False), dwconv_case(rng), fc_case(rng)]
    return cases


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE)), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["c_array"] = c_array
    return env


def write_cases(cases: list[Case], seed: int, out: Path) -> Path:
    out.write_text(_env().get_template("cases.c.j2").render(cases=cases, seed=seed))
    return out


def build_host(sources: list[Path], exe: Path, sanitize: bool = True, defines: tuple[str, ...] = ()) -> Path:
    """Host gcc, the project's warning flags (-Werror) and, with ``sanitize``, ASan + UBSan."""
    cmd = [find_compiler(), *CFLAGS, *(SANITIZE_FLAGS if sanitize else []), *defines, "-DKT_HOST",
           "-I", str(RUNTIME / "include"), "-I", str(HERE), *map(str, sources), *map(str, RUNTIME_SOURCES),
           "-o", str(exe)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"host build failed:\n{' '.join(cmd)}\n{res.stderr[-4000:]}")
    return exe


def build_firmware(board: Board, sources: list[Path], build_dir: Path, extra_flags: tuple[str, ...] = (),
                   extra_sources: tuple[Path, ...] = (), opt: str = "-O2") -> Path:
    """An ELF for an emulated board: ``sources`` + the runtime + the project's startup, board port and linker
    script (rendered from mcucompile's project templates), with the Makefile's flags."""
    build_dir.mkdir(parents=True, exist_ok=True)
    files = project_files(board, "kt", np.zeros((1, 1), np.int8), [1])
    keep = {"src/startup.c", "src/board_port.c", "src/board_port.h", f"{board.name}.ld"}
    for rel in keep:
        (build_dir / Path(rel).name).write_text(files[rel])
    port = [build_dir / "startup.c", build_dir / "board_port.c"]
    flags = [*cpu_flags(board), "-std=c99", opt, "-g", "-Wall", "-Wextra", "-Werror", "-ffunction-sections",
             "-fdata-sections"]
    elf = build_dir / "firmware.elf"
    cmd = ["arm-none-eabi-gcc", *flags, *extra_flags, "-I", str(RUNTIME / "include"), "-I", str(HERE),
           "-I", str(build_dir), *map(str, [*sources, *RUNTIME_SOURCES, *port]),
           *map(str, extra_sources),
           "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs", "-T", str(build_dir / f"{board.name}.ld"),
           "-Wl,--gc-sections", "-o", str(elf)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"firmware build failed:\n{' '.join(cmd)[:2000]}\n{res.stderr[-4000:]}")
    return elf


def layer_case(what: str, in_hwc: tuple[int, int, int], kernel: tuple[int, int], cout: int,
               stride: tuple[int, int] = (1, 1), pad: tuple[int, int] = (0, 0), seed: int = 0,
               out_hw: tuple[int, int] | None = None, high_shifts: bool = False) -> Case:
    """One given layer with random data (the benchmark's shapes). ``what``: conv_1x1, conv, dwconv or fc
    (fc: ``in_hwc`` = (1, 1, depth)); the output size is ``out_hw`` or, by default, that of a symmetric padding
    ``pad`` (TFLite's SAME padding may pad one more after: give ``out_hw`` then). ``high_shifts``: every third
    output channel at a shift in [-1, 2] with one weight of +-1 / +-2 and a small bias (outputs spread over the
    range, not saturated), the others as usual: the output stage's per-channel branch."""
    rng = np.random.default_rng(seed)
    h, w, cin = in_hwc
    kh, kw = kernel
    oh, ow = out_hw or ((h + 2 * pad[0] - kh) // stride[0] + 1, (w + 2 * pad[1] - kw) // stride[1] + 1)
    x = _int8(rng, (1, h, w, cin))
    if what == "fc":
        wts = _int8(rng, (cout, cin))
    elif what == "dwconv":
        wts = _int8(rng, (kh, kw, cin))
        cout = cin
    else:
        wts = _int8(rng, (cout, kh, kw, cin))
    bias, _ = _bias(np.random.default_rng(seed + 1), cout)
    bias = bias if bias.any() else rng.integers(-(1 << 14), 1 << 14, size=cout).astype(np.int32)
    depth = kh * kw * (1 if what == "dwconv" else cin)
    mult, shift, in_off, out_off, _ = _quant(rng, cout, depth, edge_cases=False)
    act = (-128, 127)
    if high_shifts:
        for o in range(0, cout, 3):
            one = int(rng.choice([-2, -1, 1, 2]))
            if what == "dwconv":
                wts[:, :, o] = 0
                wts[int(rng.integers(0, kh)), int(rng.integers(0, kw)), o] = one
            else:
                wts[o] = 0
                wts.reshape(cout, -1)[o, int(rng.integers(0, depth))] = one
            bias[o] = int(rng.integers(-8, 9))
            shift[o] = int(rng.integers(-1, 3))
    desc = f"{what} {h}x{w}x{cin} k{kh}x{kw} s{stride[0]} p{pad[0]} -> {oh}x{ow}x{cout}"
    if what == "fc":
        consts = fast_layout.fully_connected_constants(wts, bias, in_off)
        return Case(KIND["fc"], desc, (1, 1, 1, cin), (cin, 1, 1, cout), (1, 1, 1, cout), (1, 1), (0, 0), (1, 1),
                    in_off, out_off, act, x.reshape(1, cin), wts, consts.weights, bias, True, consts.bias, mult,
                    shift, 0, 0)
    if what == "dwconv":
        return Case(KIND["dwconv"], desc, (1, h, w, cin), (1, kh, kw, cin), (1, oh, ow, cin), stride, pad, (1, 1),
                    in_off, out_off, act, x, wts, fast_layout.dwconv_weights(wts), bias, True,
                    fast_layout.dwconv_bias(bias, wts, in_off), mult, shift, 4 * cin, fast_layout.dwconv_scratch_bytes(cin))
    if what == "conv_1x1":
        fast_w, fast_b, scratch = fast_layout.conv_1x1_weights(wts), fast_layout.fold_input_offset(bias, wts, in_off), 0
    else:
        fast_w, fast_b, scratch = fast_layout.conv_weights(wts), bias, fast_layout.conv_scratch_bytes(kh, kw, cin)
    return Case(KIND[what], desc, (1, h, w, cin), (cout, kh, kw, cin), (1, oh, ow, cout), stride, pad, (1, 1),
                in_off, out_off, act, x, wts, fast_w, bias, True, fast_b, mult, shift, 0, scratch)
