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


def _require(module: str, package: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise UserError(f"{package} is needed for the TFLite references: pip install 'mcucompile[tflite]'") from None


def _to_model_input(x_q: np.ndarray, detail: dict) -> np.ndarray:
    if np.dtype(detail["dtype"]) == np.int8:
        return x_q.astype(np.int8).reshape(detail["shape"])
    scale, zp = _float_io_params(detail)
    return ((x_q.astype(np.float32) - np.float32(zp)) * np.float32(scale)).reshape(detail["shape"])


def _float_io_params(detail: dict) -> tuple[float, int]:
    return detail["_mcu_scale"], detail["_mcu_zp"]


def _from_model_output(y: np.ndarray, scale: float | None, zp: int | None) -> np.ndarray:
    y = np.asarray(y)
    if y.dtype == np.int8:
        return y.reshape(-1)
    v = np.asarray(y, np.float32) / np.float32(scale)
    return np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + zp, -128, 127).astype(np.int8).reshape(-1)


class TflmReference:
    """The tflite-micro Python interpreter; also reports TFLite Micro's arena size for the model."""

    def __init__(self, path: str | Path, io_params: list[tuple[float, int]], out_params: list[tuple[float, int]]):
        runtime = _require("tflite_micro.python.tflite_micro.runtime", "tflite-micro")
        self.interp = runtime.Interpreter.from_file(str(path), arena_size=DEFAULT_ARENA)
        self.in_detail = self.interp.get_input_details(0)
        self.in_detail["_mcu_scale"], self.in_detail["_mcu_zp"] = io_params[0]
        self.out_params = out_params

    def run(self, x_q: np.ndarray) -> list[np.ndarray]:
        outs = [[] for _ in self.out_params]
        for s in x_q:
            self.interp.set_input(_to_model_input(s, self.in_detail), 0)
            self.interp.invoke()
            for k, (scale, zp) in enumerate(self.out_params):
                outs[k].append(_from_model_output(self.interp.get_output(k), scale, zp))
        return [np.stack(o) for o in outs]

    def arena_bytes(self) -> int | None:
        """TFLite Micro's arena use ('Arena allocation total N bytes' from print_allocations on stderr)."""
        with tempfile.TemporaryFile(mode="w+b") as f:
            saved = os.dup(2)
            try:
                os.dup2(f.fileno(), 2)
                self.interp.print_allocations()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            f.seek(0)
            text = f.read().decode(errors="replace")
        m = re.search(r"Arena allocation total (\d+) bytes", text)
        return int(m.group(1)) if m else None


class LiteRtReference:
    """LiteRT with the reference op resolver (the default XNNPACK path is not bit-exact)."""

    def __init__(self, path: str | Path, io_params, out_params):
        mod = _require("ai_edge_litert.interpreter", "ai-edge-litert")
        self.interp = mod.Interpreter(model_path=str(path),
                                      experimental_op_resolver_type=mod.OpResolverType.BUILTIN_REF)
        self.interp.allocate_tensors()
        self.in_detail = dict(self.interp.get_input_details()[0])
        self.in_detail["_mcu_scale"], self.in_detail["_mcu_zp"] = io_params[0]
        self.out_details = self.interp.get_output_details()
        self.out_params = out_params

    def run(self, x_q: np.ndarray) -> list[np.ndarray]:
        outs = [[] for _ in self.out_params]
        for s in x_q:
            self.interp.set_tensor(self.in_detail["index"], _to_model_input(s, self.in_detail))
            self.interp.invoke()
            for k, (scale, zp) in enumerate(self.out_params):
                outs[k].append(_from_model_output(self.interp.get_tensor(self.out_details[k]["index"]), scale, zp))
        return [np.stack(o) for o in outs]
