#!/usr/bin/env python3
"""A MobileNetV2-style ONNX model (inverted residuals: 1x1 expand, 3x3 depthwise, 1x1 project, residual
adds, stride-2 stages, ReLU6) at 144x144x3 by default, with fixed-seed random weights and BatchNorm.

It stands in for the ImageNet-class networks MCUNetV2 patches: the first stage holds the largest
activations. Weights are random (the benchmark measures memory and instructions, not accuracy).
Usage: python models/mbv2/make_mbv2.py OUT.onnx [--size 144] [--width 0.35]
"""

from __future__ import annotations

import argparse

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# (expansion t, output channels c, repeats n, stride s), MobileNetV2's table, trimmed to 5 stages
BLOCKS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 2, 2), (6, 96, 1, 1)]


def _ch(c: float) -> int:
    return max(8, int(c + 4) // 8 * 8)


def build(size: int = 144, width: float = 0.35, classes: int = 10, seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    uid = [0]

    def name(base):
        uid[0] += 1
        return f"{base}_{uid[0]}"

    def const(base, arr):
        n = name(base)
        inits.append(numpy_helper.from_array(arr.astype(np.float32), n))
        return n

    def conv_bn(x, cin, cout, k, stride, group=1, relu6=True):
        w = rng.standard_normal((cout, cin // group, k, k)) * np.sqrt(2.0 / (k * k * cin / group))
        y = name("conv")
        nodes.append(helper.make_node("Conv", [x, const("w", w)], [y], kernel_shape=[k, k], strides=[stride, stride],
                                      pads=[k // 2] * 4, group=group))
        bn = name("bn")
        nodes.append(helper.make_node("BatchNormalization", [y, const("g", 1 + 0.1 * rng.standard_normal(cout)),
                                                             const("b", 0.1 * rng.standard_normal(cout)),
                                                             const("m", 0.1 * rng.standard_normal(cout)),
                                                             const("v", 1 + 0.1 * rng.random(cout))], [bn]))
        if not relu6:
            return bn
        out = name("relu6")
        nodes.append(helper.make_node("Clip", [bn, const("lo", np.array(0.0)), const("hi", np.array(6.0))], [out]))
        return out

    c = _ch(32 * width)
    x = conv_bn("input", 3, c, 3, 2)
    for t, c_out, n, s in BLOCKS:
        c_out = _ch(c_out * width)
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = c * t
            y = conv_bn(x, c, hidden, 1, 1) if t != 1 else x
            y = conv_bn(y, hidden, hidden, 3, stride, group=hidden)
            y = conv_bn(y, hidden, c_out, 1, 1, relu6=False)
            if stride == 1 and c == c_out:
                added = name("add")
                nodes.append(helper.make_node("Add", [x, y], [added]))
                y = added
            x, c = y, c_out
    x = conv_bn(x, c, _ch(320 * width), 1, 1)
    c = _ch(320 * width)
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"]))
    nodes.append(helper.make_node("Gemm", ["flat", const("fc", rng.standard_normal((classes, c)) * 0.1),
                                           const("fcb", np.zeros(classes))], ["logits"], transB=1))
    nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=1))
    graph = helper.make_graph(nodes, "mbv2", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, classes])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out")
    p.add_argument("--size", type=int, default=144)
    p.add_argument("--width", type=float, default=0.35)
    a = p.parse_args()
    onnx.save(build(a.size, a.width), a.out)
    print(f"wrote {a.out}")
