#!/usr/bin/env python
"""Regenerate the tiny int8 .tflite models that tests/test_tflite_semantics.py runs under TFLite Micro.

Two kinds of models are written next to this script:

* ``conv_*.tflite``: single-op float graphs converted by the TensorFlow Lite converter with full
  integer quantization (representative dataset, int8 input and output), several input ranges per op
  so the quantization parameters vary: LOGISTIC, TANH, HARD_SWISH, MEAN over axes (1, 2) with
  keep_dims true / false, AVERAGE_POOL_2D with SAME padding, and TANH -> QUANTIZE(int8->int8) ->
  CONCATENATION (the converter's way of producing a requantize).
* ``hand_*.tflite``: flatbuffers written directly with the TFLite schema, for parameters the
  converter never picks: QUANTIZE int8->int8 with chosen scales / zero points, QUANTIZE float->int8,
  DEQUANTIZE, MEAN with equal input/output params and other sizes / batch 2, TANH with an output
  scale other than 1/128, LOGISTIC / HARD_SWISH at extreme scales, AVERAGE_POOL_2D with a fused
  RELU and with VALID padding.

Needs tensorflow (tensorflow-cpu) and tflite-micro (for its flatbuffer schema module). The hand-built
model helpers (``unary_model``, ``mean_model``, ``avg_pool_model``) need only tflite-micro, so the tests
import them to build random-parameter models on the fly. Run from anywhere:

    python tests/data/tflite/make_op_models.py
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import flatbuffers  # noqa: E402
import numpy as np  # noqa: E402
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb  # noqa: E402

OUT = Path(__file__).resolve().parent
OPS = fb.BuiltinOperator
OP_NAMES = {v: k for k, v in vars(OPS).items() if not k.startswith("_")}


# ------------------------------------------------------------------------------------------------
# converter-made models
# ------------------------------------------------------------------------------------------------

def convert(name: str, fn, input_shapes, sampler, expect_ops: list[str], n_samples: int = 64) -> None:
    import tensorflow as tf
    rng = np.random.default_rng(zlib.crc32(name.encode()))

    module = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec(s, tf.float32) for s in input_shapes])
    def f(*xs):
        return fn(*xs)

    conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], module)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([s.astype(np.float32) for s in sampler(rng)] for _ in range(n_samples))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    data = conv.convert()
    ops = op_list(data)
    assert ops == expect_ops, f"{name}: converter produced {ops}, expected {expect_ops}"
    write(name, data)


def op_list(data: bytes) -> list[str]:
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(data), 0))
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    return [OP_NAMES[codes[op.opcodeIndex]] for op in model.subgraphs[0].operators]


def write(name: str, data: bytes) -> None:
    path = OUT / f"{name}.tflite"
    path.write_bytes(data)
    print(f"{path.name:40s} {len(data):6d} B  {op_list(data)}")


def uniform(shape, lo, hi):
    return lambda rng: [rng.uniform(lo, hi, shape)]


def make_converter_models() -> None:
    import tensorflow as tf
    vec = (1, 256)
    # elementwise: one invoke covers all 256 int8 codes
    for i, (lo, hi) in enumerate([(-6.0, 6.0), (-1.5, 4.0), (-0.4, 0.3), (-40.0, 25.0)]):
        convert(f"conv_logistic_{i}", tf.sigmoid, [vec], uniform(vec, lo, hi), ["LOGISTIC"])
        convert(f"conv_tanh_{i}", tf.tanh, [vec], uniform(vec, lo, hi), ["TANH"])
    for i, (lo, hi) in enumerate([(-5.0, 5.0), (-8.0, 3.0), (-0.6, 0.7), (-30.0, 30.0)]):
        convert(f"conv_hard_swish_{i}", lambda x: x * tf.nn.relu6(x + 3.0) / 6.0, [vec], uniform(vec, lo, hi),
                ["HARD_SWISH"])

    # requantize as the converter makes it: TANH's fixed (1/128, 0) output is requantized to the
    # concatenation's params (set by the other input's range).
    for i, (lo, hi) in enumerate([(-1.0, 1.0), (-3.0, 1.0), (-0.5, 2.5)]):
        convert(f"conv_requant_concat_{i}", lambda x, y: tf.concat([tf.tanh(x), y], axis=1), [vec, vec],
                lambda rng, lo=lo, hi=hi: [rng.uniform(-4, 4, vec), rng.uniform(lo, hi, vec)],
                ["TANH", "QUANTIZE", "CONCATENATION"])

    # MEAN over H, W (output params differ from input params: the mean has a narrower range)
    mean_cases = [((1, 5, 7, 8), (-3.0, 2.0)), ((1, 6, 6, 16), (0.0, 6.0)), ((1, 4, 4, 10), (-1.0, 1.0))]
    for i, (shape, (lo, hi)) in enumerate(mean_cases):
        c = shape[-1]

        def sampler(rng, shape=shape, lo=lo, hi=hi, c=c):
            bias = np.linspace(lo, hi, c) * 0.5  # per-channel offsets widen the range of the means
            return [np.clip(rng.uniform(lo, hi, shape) + bias, lo, hi)]

        for keep in (True, False):
            convert(f"conv_mean_{'keep' if keep else 'squeeze'}_{i}",
                    lambda x, keep=keep: tf.reduce_mean(x, axis=[1, 2], keepdims=keep), [shape], sampler, ["MEAN"])

    # AVERAGE_POOL_2D, SAME padding (edge windows have fewer valid taps)
    pool_cases = [((1, 7, 9, 4), 3, 2, (-3.0, 2.0)), ((1, 8, 8, 3), 2, 2, (0.0, 6.0)),
                  ((1, 5, 6, 5), 3, 1, (-1.0, 1.5))]
    for i, (shape, k, s, (lo, hi)) in enumerate(pool_cases):
        convert(f"conv_avg_pool_same_{i}", lambda x, k=k, s=s: tf.nn.avg_pool2d(x, k, s, "SAME"), [shape],
                uniform(shape, lo, hi), ["AVERAGE_POOL_2D"])


# ------------------------------------------------------------------------------------------------
# hand-built flatbuffers
# ------------------------------------------------------------------------------------------------

def qparams(scale, zp):
    q = fb.QuantizationParametersT()
    q.scale = [float(scale)]
    q.zeroPoint = [int(zp)]
    return q


def tensor(name, shape, ttype, buffer, quant=None):
    t = fb.TensorT()
    t.name = name
    t.shape = list(shape)
    t.type = ttype
    t.buffer = buffer
    t.quantization = quant
    return t


def single_op_model(op_code: int, tensors: list, inputs: list[int], outputs: list[int], op_inputs: list[int],
                    op_outputs: list[int], buffers_data: dict[int, bytes] | None = None, options_type: int = 0,
                    options=None) -> bytes:
    """One subgraph, one operator. Buffer 0 is the empty sentinel; tensor i uses buffer i + 1."""
    code = fb.OperatorCodeT()
    code.builtinCode = op_code
    code.deprecatedBuiltinCode = min(op_code, 127)
    code.version = 1
    op = fb.OperatorT()
    op.opcodeIndex = 0
    op.inputs = op_inputs
    op.outputs = op_outputs
    op.builtinOptionsType = options_type
    op.builtinOptions = options
    sg = fb.SubGraphT()
    sg.tensors = tensors
    sg.inputs = inputs
    sg.outputs = outputs
    sg.operators = [op]
    sg.name = "main"
    buffers = [fb.BufferT() for _ in range(len(tensors) + 1)]
    for i, data in (buffers_data or {}).items():
        buffers[i].data = list(data)
    model = fb.ModelT()
    model.version = 3
    model.operatorCodes = [code]
    model.subgraphs = [sg]
    model.buffers = buffers
    model.description = "mcucompile tflite_semantics test model"
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def unary_model(op_code, in_type, in_q, out_type, out_q, shape=(1, 256)) -> bytes:
    tensors = [tensor("input", shape, in_type, 1, in_q), tensor("output", shape, out_type, 2, out_q)]
    return single_op_model(op_code, tensors, [0], [1], [0], [1])


def mean_model(shape, in_q, out_q, keep_dims: bool) -> bytes:
    n, _, _, c = shape
    out_shape = (n, 1, 1, c) if keep_dims else (n, c)
    tensors = [tensor("input", shape, fb.TensorType.INT8, 1, in_q),
               tensor("axis", (2,), fb.TensorType.INT32, 2),
               tensor("output", out_shape, fb.TensorType.INT8, 3, out_q)]
    opts = fb.ReducerOptionsT()
    opts.keepDims = keep_dims
    return single_op_model(OPS.MEAN, tensors, [0], [2], [0, 1], [2],
                           {2: np.array([1, 2], np.int32).tobytes()}, fb.BuiltinOptions.ReducerOptions, opts)


def avg_pool_model(shape, k, s, padding, q, activation) -> bytes:
    n, h, w, c = shape
    if padding == fb.Padding.SAME:
        oh, ow = -(-h // s), -(-w // s)
    else:
        oh, ow = (h - k) // s + 1, (w - k) // s + 1
    tensors = [tensor("input", shape, fb.TensorType.INT8, 1, q),
               tensor("output", (n, oh, ow, c), fb.TensorType.INT8, 2, q)]
    opts = fb.Pool2DOptionsT()
    opts.padding = padding
    opts.strideW = opts.strideH = s
    opts.filterWidth = opts.filterHeight = k
    opts.fusedActivationFunction = activation
    return single_op_model(OPS.AVERAGE_POOL_2D, tensors, [0], [1], [0], [1], None, fb.BuiltinOptions.Pool2DOptions,
                           opts)


def make_hand_models() -> None:
    i8, f32 = fb.TensorType.INT8, fb.TensorType.FLOAT32
    # QUANTIZE int8 -> int8: (in_scale, in_zp, out_scale, out_zp); shrink, grow (left shift), same
    # scale with a zero-point move, ratio just below / above a power of two, extreme zero points.
    requant = [(0.05, 3, 0.02, -7), (0.01, -20, 0.037, 40), (0.1, 0, 0.1, 17), (0.0123, -128, 0.0123 * 3.999, 127),
               (0.5, 127, 0.06, -128), (0.004, 10, 0.004 * 1.0001, 9)]
    for i, (s_in, z_in, s_out, z_out) in enumerate(requant):
        write(f"hand_requant_{i}", unary_model(OPS.QUANTIZE, i8, qparams(s_in, z_in), i8, qparams(s_out, z_out)))
    # QUANTIZE float32 -> int8 and DEQUANTIZE int8 -> float32
    for i, (s, z) in enumerate([(0.1, 0), (0.0235, -17), (1.7e-3, 101)]):
        write(f"hand_quantize_{i}", unary_model(OPS.QUANTIZE, f32, None, i8, qparams(s, z), shape=(1, 4096)))
        write(f"hand_dequantize_{i}", unary_model(OPS.DEQUANTIZE, i8, qparams(s, z), f32, None))
    # MEAN: equal params (the case the old same-scale path handled), other sizes, batch 2
    mean_cases = [((1, 5, 7, 8), (0.02, -3), (0.02, -3)), ((2, 4, 4, 6), (0.05, 10), (0.05, 10)),
                  ((1, 10, 10, 4), (0.03, 5), (0.011, -20)), ((1, 1, 1, 8), (0.02, 0), (0.05, 3)),
                  ((2, 16, 16, 3), (0.1, -128), (0.02, 0)), ((1, 3, 3, 5), (0.01, 0), (0.1, 0)),
                  # scale ratio where dividing in double vs float32 changes the result for sums of +-2068
                  ((1, 5, 5, 4), (0.013790160417556763, 0), (0.015115157701075077, 0))]
    for i, (shape, qi, qo) in enumerate(mean_cases):
        for keep in (True, False):
            write(f"hand_mean_{'keep' if keep else 'squeeze'}_{i}",
                  mean_model(shape, qparams(*qi), qparams(*qo), keep))
    # TANH with a non-standard output scale (TFLM ignores the output params), extreme LOGISTIC inputs
    write("hand_tanh_0", unary_model(OPS.TANH, i8, qparams(0.05, 7), i8, qparams(0.01, 5)))
    write("hand_tanh_1", unary_model(OPS.TANH, i8, qparams(0.25, -100), i8, qparams(1.0 / 128, 0)))
    write("hand_logistic_0", unary_model(OPS.LOGISTIC, i8, qparams(0.5, 20), i8, qparams(1.0 / 256, -128)))
    write("hand_logistic_1", unary_model(OPS.LOGISTIC, i8, qparams(1.3e-3, -128), i8, qparams(1.0 / 256, -128)))
    # HARD_SWISH at extreme scales: large input scale (reluish exponent > 0), tiny one (< 0)
    write("hand_hard_swish_0", unary_model(OPS.HARD_SWISH, i8, qparams(0.3, -5), i8, qparams(0.25, -100)))
    write("hand_hard_swish_1", unary_model(OPS.HARD_SWISH, i8, qparams(0.002, 30), i8, qparams(0.0011, -120)))
    write("hand_hard_swish_2", unary_model(OPS.HARD_SWISH, i8, qparams(0.05, 0), i8, qparams(0.005, 0)))
    # scales where Prepare's float32 division (not a double one) decides the int16 output multiplier
    # and one output byte
    float32_sensitive = [(0.019748413935303688, -38, 0.022778958082199097, 16),
                         (0.003596341237425804, -43, 0.003271016525104642, -2),
                         (0.0529007688164711, 32, 0.020158767700195312, -118)]
    for i, (s_in, z_in, s_out, z_out) in enumerate(float32_sensitive, start=3):
        write(f"hand_hard_swish_{i}", unary_model(OPS.HARD_SWISH, i8, qparams(s_in, z_in), i8, qparams(s_out, z_out)))
    # AVERAGE_POOL_2D with a fused RELU, and VALID padding
    q = qparams(0.03, -20)
    write("hand_avg_pool_same_relu_0",
          avg_pool_model((1, 6, 7, 3), 3, 2, fb.Padding.SAME, q, fb.ActivationFunctionType.RELU))
    write("hand_avg_pool_valid_0",
          avg_pool_model((2, 7, 7, 4), 2, 2, fb.Padding.VALID, q, fb.ActivationFunctionType.NONE))


if __name__ == "__main__":
    make_converter_models()
    make_hand_models()
