"""Quantize a float ONNX model with onnxruntime's own quantizer, as an ONNX user does (QDQ format).

Used by the QDQ tests and `make bench` to make the models users bring: ``quantize_static`` with a
calibration data reader over real or seeded inputs, int8 or uint8 activations, per-channel or
per-tensor int8 weights, and optionally ops or nodes left in float (a partly quantized graph).

    python tools/ort_quantize.py model.onnx out.onnx --calib calib.npz [--uint8] [--per-tensor]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def quantize_with_onnxruntime(src: str | Path, dst: str | Path, calib: np.ndarray, activations: str = "int8",
                              per_channel: bool = True, op_types: tuple[str, ...] | None = None,
                              nodes_to_exclude: tuple[str, ...] = ()) -> Path:
    """``quantize_static(src -> dst)`` in QDQ format on ``calib`` ([N, ...] float32, one sample per run).

    ``activations``: "int8" (QInt8) or "uint8" (QUInt8); weights are always QInt8. ``op_types``: the op
    types to quantize (None: onnxruntime's default, every op it can); ``nodes_to_exclude``: node names
    left in float."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self, name: str):
            self.it = iter(np.asarray(calib, np.float32))
            self.name = name

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {self.name: x[None]}

    import onnx

    name = onnx.load(str(src), load_external_data=False).graph.input[0].name
    act = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}[activations]
    kwargs = {"op_types_to_quantize": list(op_types)} if op_types is not None else {}
    quantize_static(str(src), str(dst), Reader(name), quant_format=QuantFormat.QDQ, activation_type=act,
                    weight_type=QuantType.QInt8, per_channel=per_channel, nodes_to_exclude=list(nodes_to_exclude),
                    **kwargs)
    return Path(dst)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("output")
    p.add_argument("--calib", required=True, help=".npz with x (float inputs in the model's layout) or .npy")
    p.add_argument("--uint8", action="store_true", help="uint8 activations (QUInt8)")
    p.add_argument("--per-tensor", action="store_true", help="per-tensor weights (default per channel)")
    p.add_argument("--exclude", action="append", default=[], help="a node name to leave in float")
    args = p.parse_args()
    data = np.load(args.calib)
    x = data["x"] if hasattr(data, "files") else data
    quantize_with_onnxruntime(args.model, args.output, x, "uint8" if args.uint8 else "int8", not args.per_tensor,
                              nodes_to_exclude=tuple(args.exclude))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
