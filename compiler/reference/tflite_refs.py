"""TFLite Micro (the int8 ground truth) and LiteRT with reference kernels, on int8 model inputs.

Both are optional (``pip install 'mcucompile[tflite]'``). Inputs and outputs are handled in the int8
domain: a float model input is fed the dequantized int8 value (which TFLite's QUANTIZE maps back to
the same int8), a float model output is re-quantized with its DEQUANTIZE's params.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np

from ..errors import UserError

DEFAULT_ARENA = 4 * 1024 * 1024
ARENA_PROBE_SIZES = (DEFAULT_ARENA, 64 * 1024 * 1024)


def _require(module: str, package: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise UserError(f"{package} is needed for the TFLite references: pip install 'mcucompile[tflite]'") from None


class _Int8Reference:
    """Runs a .tflite on int8 inputs, returns int8 outputs; subclasses supply the interpreter calls."""

    def __init__(self, in_params: list[tuple[float, int]], out_params: list[tuple[float, int]],
                 in_dtype, in_shape):
        self.in_scale, self.in_zp = in_params[0]
        self.out_params = out_params
        self.in_dtype, self.in_shape = np.dtype(in_dtype), tuple(in_shape)

    def _model_input(self, x_q: np.ndarray) -> np.ndarray:
        if self.in_dtype == np.int8:
            return x_q.astype(np.int8).reshape(self.in_shape)
        # a float input followed by QUANTIZE: the dequantized value maps back to the same int8
        return ((x_q.astype(np.float32) - np.float32(self.in_zp)) * np.float32(self.in_scale)).reshape(self.in_shape)

    @staticmethod
    def _int8_output(y: np.ndarray, scale: float, zp: int) -> np.ndarray:
        y = np.asarray(y)
        if y.dtype == np.int8:
            return y.reshape(-1)
        v = np.asarray(y, np.float32) / np.float32(scale)  # a float output after DEQUANTIZE: back to int8
        return np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + zp, -128, 127).astype(np.int8).reshape(-1)

    def _invoke(self, x: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError

    def run(self, x_q: np.ndarray) -> list[np.ndarray]:
        """[N, ...] int8 samples -> per output, [N, size] int8."""
        outs = [[] for _ in self.out_params]
        for s in x_q:
            for k, (y, (scale, zp)) in enumerate(zip(self._invoke(self._model_input(s)), self.out_params)):
                outs[k].append(self._int8_output(y, scale, zp))
        return [np.stack(o) for o in outs]


class TflmReference(_Int8Reference):
    """The tflite-micro Python interpreter; also reports TFLite Micro's arena size for the model."""

    def __init__(self, path: str | Path, in_params: list[tuple[float, int]], out_params: list[tuple[float, int]]):
        runtime = _require("tflite_micro.python.tflite_micro.runtime", "tflite-micro")
        for size in ARENA_PROBE_SIZES:  # a model needing more than the default arena gets a bigger one
            try:
                self.interp = runtime.Interpreter.from_file(str(path), arena_size=size)
                break
            except RuntimeError:
                if size == ARENA_PROBE_SIZES[-1]:
                    raise
        detail = self.interp.get_input_details(0)
        super().__init__(in_params, out_params, detail["dtype"], detail["shape"])

    def _invoke(self, x: np.ndarray) -> list[np.ndarray]:
        self.interp.set_input(x, 0)
        self.interp.invoke()
        return [self.interp.get_output(k) for k in range(len(self.out_params))]

    def arena_bytes(self) -> int | None:
        """TFLite Micro's arena use ('Arena allocation total N bytes' from print_allocations on stderr)."""
        return arena_from_interpreter(self.interp)


class LiteRtReference(_Int8Reference):
    """LiteRT with the reference op resolver (the default XNNPACK path is not bit-exact)."""

    def __init__(self, path: str | Path, in_params, out_params):
        mod = _require("ai_edge_litert.interpreter", "ai-edge-litert")
        self.interp = mod.Interpreter(model_path=str(path),
                                      experimental_op_resolver_type=mod.OpResolverType.BUILTIN_REF)
        self.interp.allocate_tensors()
        detail = self.interp.get_input_details()[0]
        self.in_index = detail["index"]
        self.out_indices = [d["index"] for d in self.interp.get_output_details()]
        super().__init__(in_params, out_params, detail["dtype"], detail["shape"])

    def _invoke(self, x: np.ndarray) -> list[np.ndarray]:
        self.interp.set_tensor(self.in_index, x)
        self.interp.invoke()
        return [self.interp.get_tensor(i) for i in self.out_indices]


def probe_tflm_arena(path: str | Path, timeout: float = 120.0,
                     sizes: tuple[int, ...] = ARENA_PROBE_SIZES) -> tuple[int | None, str]:
    """TFLite Micro's arena size for the model, measured in a separate process (a model the interpreter
    cannot load may crash it, and a compile must never depend on it), trying each arena size of
    ``sizes`` in turn. Returns (bytes or None, the reason when None)."""
    import subprocess
    import sys

    try:
        __import__("tflite_micro")
    except ImportError:
        return None, "TFLite Micro is not installed (pip install 'mcucompile[tflite]')"
    code = (
        "import sys\n"
        "from tflite_micro.python.tflite_micro import runtime\n"
        "from mcucompile.reference.tflite_refs import arena_from_interpreter\n"
        "last = ''\n"
        "for size in map(int, sys.argv[2:]):\n"
        "    try:\n"
        "        interp = runtime.Interpreter.from_file(sys.argv[1], arena_size=size)\n"
        "    except Exception as e:\n"
        "        last = ' '.join(str(e).split())[:200] or type(e).__name__\n"
        "        continue\n"
        "    print('ARENA', arena_from_interpreter(interp)); sys.exit(0)\n"
        "print('FAILED', last)\n"
    )
    try:
        res = subprocess.run([sys.executable, "-c", code, str(path), *map(str, sizes)], capture_output=True, text=True,
                             timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"TFLite Micro did not load the model within {timeout:.0f} s"
    for line in res.stdout.splitlines():
        if line.startswith("ARENA "):
            value = line.split()[1]
            return (int(value), "") if value.isdigit() else (None, "TFLite Micro printed no arena size")
        if line.startswith("FAILED"):
            why = line[len("FAILED"):].strip()
            if "allocate" in why.lower():
                why = f"it needs more than a {max(sizes):,} B arena ({why})"
            return None, f"TFLite Micro refused the model: {why}"
    return None, f"TFLite Micro crashed loading the model (exit code {res.returncode})"


def arena_from_interpreter(interp) -> int | None:
    """'Arena allocation total N bytes' from print_allocations (written to the C stderr)."""
    with tempfile.TemporaryFile(mode="w+b") as f:
        saved = os.dup(2)
        try:
            os.dup2(f.fileno(), 2)
            interp.print_allocations()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        text = f.read().decode(errors="replace")
    m = re.search(r"Arena allocation total (\d+) bytes", text)
    return int(m.group(1)) if m else None
