"""mcucompile.arith.tflite_semantics equals TFLite Micro bit for bit.

Runs the committed single-op models in tests/data/tflite (regenerate with make_op_models.py, which
needs TensorFlow; these tests do not) under the tflite_micro Python interpreter and compares every
output byte with the numpy model. Quantization parameters are read from the flatbuffer with the
``tflite`` package (the op's own tensors, not only the model's inputs / outputs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mcucompile.arith import tflite_semantics as ts
from mcucompile.arith.fixedpoint import multiply_by_quantized_multiplier

runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
tflite = pytest.importorskip("tflite")

from tflite.ActivationFunctionType import ActivationFunctionType  # noqa: E402
from tflite.BuiltinOperator import BuiltinOperator  # noqa: E402
from tflite.Padding import Padding  # noqa: E402
from tflite.Pool2DOptions import Pool2DOptions  # noqa: E402
from tflite.ReducerOptions import ReducerOptions  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "tflite"
OP_NAMES = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
ALL_INT8 = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)


# ------------------------------------------------------------------------------------------------
# flatbuffer reading and TFLM running
# ------------------------------------------------------------------------------------------------

class Op:
    def __init__(self, model, graph, op):
        code = model.OperatorCodes(op.OpcodeIndex())
        self.name = OP_NAMES[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        self.inputs = [int(i) for i in op.InputsAsNumpy()]
        self.outputs = [int(i) for i in op.OutputsAsNumpy()]
        self._op = op

    def options(self, cls):
        table = self._op.BuiltinOptions()
        opts = cls()
        opts.Init(table.Bytes, table.Pos)
        return opts


class Model:
    def __init__(self, path: Path):
        self.path = path
        self.buf = path.read_bytes()
        self.model = tflite.Model.GetRootAsModel(self.buf, 0)
        self.graph = self.model.Subgraphs(0)
        self.ops = [Op(self.model, self.graph, self.graph.Operators(i)) for i in range(self.graph.OperatorsLength())]
        self.inputs = [int(i) for i in self.graph.InputsAsNumpy()]
        self.outputs = [int(i) for i in self.graph.OutputsAsNumpy()]
        self.interp = runtime.Interpreter.from_file(str(path), arena_size=256 * 1024)

    def qparams(self, tensor_index: int) -> tuple[float, int]:
        q = self.graph.Tensors(tensor_index).Quantization()
        return float(q.ScaleAsNumpy()[0]), int(q.ZeroPointAsNumpy()[0])

    def shape(self, tensor_index: int) -> tuple[int, ...]:
        return tuple(int(d) for d in self.graph.Tensors(tensor_index).ShapeAsNumpy())

    def run(self, *xs: np.ndarray) -> np.ndarray:
        for i, x in enumerate(xs):
            self.interp.set_input(x, i)
        self.interp.invoke()
        return self.interp.get_output(0)


def models(prefix: str) -> list[Path]:
    found = sorted(DATA.glob(f"{prefix}*.tflite"))
    assert found, f"no {prefix}*.tflite in {DATA}"
    return found


def ids(paths):
    return [p.stem for p in paths]


def single(path: Path, op_name: str) -> tuple[Model, Op]:
    m = Model(path)
    assert [o.name for o in m.ops] == [op_name]
    return m, m.ops[0]


def check_io_details(m: Model, op: Op) -> None:
    """The interpreter's own view of the model I/O params agrees with the flatbuffer."""
    for details, t in ((m.interp.get_input_details(0), op.inputs[0]), (m.interp.get_output_details(0), op.outputs[0])):
        qp = details["quantization_parameters"]
        if len(qp["scales"]):
            assert (float(qp["scales"][0]), int(qp["zero_points"][0])) == m.qparams(t)


def assert_table(m: Model, op: Op, table: np.ndarray) -> None:
    y = m.run(ALL_INT8)
    assert y.dtype == np.int8
    bad = np.nonzero(y.ravel() != table)[0]
    assert bad.size == 0, (f"{m.path.name}: {bad.size} of 256 differ, first at q={bad[0] - 128}: "
                           f"TFLM {y.ravel()[bad[0]]} ours {table[bad[0]]}")


# ------------------------------------------------------------------------------------------------
# elementwise ops: all 256 int8 inputs in one invoke
# ------------------------------------------------------------------------------------------------

LOGISTIC = models("conv_logistic_") + models("hand_logistic_")
TANH = models("conv_tanh_") + models("hand_tanh_")
HARD_SWISH = models("conv_hard_swish_") + models("hand_hard_swish_")
REQUANT = models("hand_requant_")


@pytest.mark.parametrize("path", LOGISTIC, ids=ids(LOGISTIC))
def test_logistic(path):
    m, op = single(path, "LOGISTIC")
    check_io_details(m, op)
    assert m.qparams(op.outputs[0]) == (1.0 / 256, -128)
    assert_table(m, op, ts.logistic_table(*m.qparams(op.inputs[0])))


@pytest.mark.parametrize("path", TANH, ids=ids(TANH))
def test_tanh(path):
    m, op = single(path, "TANH")
    check_io_details(m, op)
    assert_table(m, op, ts.tanh_table(*m.qparams(op.inputs[0]), *m.qparams(op.outputs[0])))


def test_tanh_ignores_output_params():
    m, op = single(DATA / "hand_tanh_0.tflite", "TANH")
    assert m.qparams(op.outputs[0]) != (1.0 / 128, 0)
    assert_table(m, op, ts.tanh_table(*m.qparams(op.inputs[0]), 1.0 / 128, 0))


@pytest.mark.parametrize("path", HARD_SWISH, ids=ids(HARD_SWISH))
def test_hard_swish(path):
    m, op = single(path, "HARD_SWISH")
    check_io_details(m, op)
    assert_table(m, op, ts.hard_swish_table(*m.qparams(op.inputs[0]), *m.qparams(op.outputs[0])))


def test_hard_swish_params_cover_both_reluish_shift_directions():
    exps = set()
    for path in HARD_SWISH:
        m = Model(path)
        exps.add(np.sign(ts.hard_swish_params(*m.qparams(m.ops[0].inputs[0]),
                                              *m.qparams(m.ops[0].outputs[0])).reluish_multiplier_exponent))
    assert {-1, 1} <= exps


@pytest.mark.parametrize("path", REQUANT, ids=ids(REQUANT))
def test_requantize(path):
    m, op = single(path, "QUANTIZE")
    check_io_details(m, op)
    assert_table(m, op, ts.requantize_table(*m.qparams(op.inputs[0]), *m.qparams(op.outputs[0])))


REQUANT_CONCAT = models("conv_requant_concat_")


@pytest.mark.parametrize("path", REQUANT_CONCAT, ids=ids(REQUANT_CONCAT))
def test_converter_requantize_after_tanh(path):
    """TANH -> QUANTIZE(int8->int8) -> CONCATENATION, as the converter emits it."""
    m = Model(path)
    assert [o.name for o in m.ops] == ["TANH", "QUANTIZE", "CONCATENATION"]
    tanh, quant, concat = m.ops
    assert quant.inputs == tanh.outputs and quant.outputs[0] in concat.inputs
    other = [t for t in concat.inputs if t != quant.outputs[0]][0]
    assert m.qparams(other) == m.qparams(concat.outputs[0]) == m.qparams(quant.outputs[0])
    rng = np.random.default_rng(7)
    feeds = {tanh.inputs[0]: ALL_INT8, other: rng.integers(-128, 128, (1, 256)).astype(np.int8)}
    y = m.run(*[feeds[t] for t in m.inputs])
    t = ts.tanh_table(*m.qparams(tanh.inputs[0]), *m.qparams(tanh.outputs[0]))
    r = ts.requantize_table(*m.qparams(quant.inputs[0]), *m.qparams(quant.outputs[0]))
    parts = {quant.outputs[0]: r[t.astype(np.int64) + 128].reshape(1, 256), other: feeds[other]}
    np.testing.assert_array_equal(y, np.concatenate([parts[i] for i in concat.inputs], axis=1))


# ------------------------------------------------------------------------------------------------
# QUANTIZE float -> int8, DEQUANTIZE
# ------------------------------------------------------------------------------------------------

QUANTIZE = models("hand_quantize_")
DEQUANTIZE = models("hand_dequantize_")


def quantize_probe_values(scale: float, n: int, rng) -> np.ndarray:
    """Random values plus near-ties (k + 1/2) * scale, where float32 vs double arithmetic matters."""
    k = np.arange(-(n // 4), n // 4)
    ties = ((k + 0.5) * scale).astype(np.float32)
    nudged = np.nextafter(ties, np.float32(np.inf))
    spread = (rng.standard_normal(n // 4) * 80 * scale).astype(np.float32)
    huge = rng.uniform(-1e6, 1e6, n // 8).astype(np.float32) * np.float32(scale)
    special = np.array([0.0, -0.0, 1e-30, -1e-30, 127.5 * scale, -128.5 * scale], np.float32)
    x = np.concatenate([ties, nudged, spread, huge, special]).astype(np.float32)
    return np.resize(x, n).reshape(1, n)


@pytest.mark.parametrize("path", QUANTIZE, ids=ids(QUANTIZE))
def test_quantize_float(path):
    m, op = single(path, "QUANTIZE")
    scale, zp = m.qparams(op.outputs[0])
    x = quantize_probe_values(scale, m.shape(op.inputs[0])[1], np.random.default_rng(3))
    y = m.run(x)
    np.testing.assert_array_equal(y, ts.quantize_float(x, scale, zp))


@pytest.mark.parametrize("path", DEQUANTIZE, ids=ids(DEQUANTIZE))
def test_dequantize(path):
    m, op = single(path, "DEQUANTIZE")
    y = m.run(ALL_INT8)
    assert y.dtype == np.float32
    ours = ts.dequantize(ALL_INT8, *m.qparams(op.inputs[0]))
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(y.view(np.int32), ours.view(np.int32))


# ------------------------------------------------------------------------------------------------
# MEAN over H, W and AVERAGE_POOL_2D: random tensors
# ------------------------------------------------------------------------------------------------

def random_int8_batches(shape, rng, count: int = 12):
    """Uniform noise, per-channel-biased tensors (means spread over the output range), constants."""
    c = shape[-1]
    out = [rng.integers(-128, 128, shape) for _ in range(count // 2)]
    for _ in range(count // 2):
        bias = rng.integers(-128, 128, c)
        out.append(np.clip(bias + rng.integers(-30, 31, shape), -128, 127))
    out += [np.full(shape, -128), np.full(shape, 127), np.zeros(shape)]
    return [x.astype(np.int8) for x in out]


MEAN = models("conv_mean_") + models("hand_mean_")


@pytest.mark.parametrize("path", MEAN, ids=ids(MEAN))
def test_mean_hw(path):
    m, op = single(path, "MEAN")
    check_io_details(m, op)
    keep = op.options(ReducerOptions).KeepDims()
    in_shape, out_shape = m.shape(op.inputs[0]), m.shape(op.outputs[0])
    assert len(out_shape) == (4 if keep else 2)
    params = ts.mean_params(*m.qparams(op.inputs[0]), *m.qparams(op.outputs[0]), in_shape[1] * in_shape[2])
    for x in random_int8_batches(in_shape, np.random.default_rng(11)):
        y = m.run(x)
        ours = ts.mean_hw(x, params, keep_dims=keep)
        assert ours.shape == y.shape
        np.testing.assert_array_equal(y, ours)


def test_mean_equal_params_rounds_not_truncates():
    """With equal input/output params TFLM still takes QuantizedMeanOrSum (rounding), not the old
    same-scale path (plain truncating sum / n)."""
    m, op = single(DATA / "hand_mean_keep_0.tflite", "MEAN")
    assert m.qparams(op.inputs[0]) == m.qparams(op.outputs[0])
    in_shape = m.shape(op.inputs[0])
    n = in_shape[1] * in_shape[2]
    params = ts.mean_params(*m.qparams(op.inputs[0]), *m.qparams(op.outputs[0]), n)
    differs = 0
    for x in random_int8_batches(in_shape, np.random.default_rng(5)):
        y = m.run(x)
        np.testing.assert_array_equal(y, ts.mean_hw(x, params))
        s = x.astype(np.int64).sum(axis=(1, 2))
        truncated = np.where(s < 0, -((-s) // n), s // n)
        differs += int((truncated != y[:, 0, 0, :]).sum())
    assert differs > 0


def test_mean_scale_ratio_is_divided_in_double():
    """hand_mean_*_6 has scales whose ratio rounds differently in float32; a sum of +-2068 shows it."""
    m, op = single(DATA / "hand_mean_keep_6.tflite", "MEAN")
    (s_in, z_in), (s_out, z_out) = m.qparams(op.inputs[0]), m.qparams(op.outputs[0])
    params = ts.mean_params(s_in, z_in, s_out, z_out, 25)
    x = np.full((1, 5, 5, 4), 82, np.int8)
    x[0, 0, 0, 0] = 100  # channel 0 sums to 25 * 82 + 18 = 2068
    x[..., 1] = -x[..., 0]
    y = m.run(x)
    np.testing.assert_array_equal(y, ts.mean_hw(x, params))
    m32, s32 = ts.tflite_quantize_multiplier(float(np.float32(s_in) / np.float32(s_out)))
    k = min((25).bit_length() - 1, 32, 31 + s32)
    float32_way = multiply_by_quantized_multiplier(np.array([2068, -2068]), (m32 << k) // 25, s32 - k) + z_out
    assert (float32_way != y[0, 0, 0, :2]).all()


def activation_range(act: int, scale: float, zp: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8."""
    lo, hi = -128, 127
    quant = lambda v: zp + int(ts._std_round(v / scale))  # noqa: E731
    if act == ActivationFunctionType.RELU:
        lo = max(lo, quant(0.0))
    elif act == ActivationFunctionType.RELU6:
        lo, hi = max(lo, quant(0.0)), min(hi, quant(6.0))
    elif act == ActivationFunctionType.RELU_N1_TO_1:
        lo, hi = max(lo, quant(-1.0)), min(hi, quant(1.0))
    else:
        assert act == ActivationFunctionType.NONE
    return lo, hi


AVG_POOL = models("conv_avg_pool_") + models("hand_avg_pool_")


@pytest.mark.parametrize("path", AVG_POOL, ids=ids(AVG_POOL))
def test_average_pool(path):
    m, op = single(path, "AVERAGE_POOL_2D")
    check_io_details(m, op)
    o = op.options(Pool2DOptions)
    padding = {Padding.SAME: "SAME", Padding.VALID: "VALID"}[o.Padding()]
    if path.name.startswith("conv_"):
        assert padding == "SAME"
    assert m.qparams(op.inputs[0]) == m.qparams(op.outputs[0])
    lo, hi = activation_range(o.FusedActivationFunction(), *m.qparams(op.outputs[0]))
    in_shape = m.shape(op.inputs[0])
    for x in random_int8_batches(in_shape, np.random.default_rng(13)):
        y = m.run(x)
        ours = ts.average_pool(x, (o.FilterHeight(), o.FilterWidth()), (o.StrideH(), o.StrideW()), padding, lo, hi)
        np.testing.assert_array_equal(y, ours)


# ------------------------------------------------------------------------------------------------
# pure-python properties (no interpreter)
# ------------------------------------------------------------------------------------------------

def test_mean_params_examples():
    p = ts.mean_params(0.02, -3, 0.02, -3, 35)
    assert (p.base_multiplier, p.base_shift) == (1 << 30, 1)
    assert p.input_offset == -105
    # k = floor(log2(35)) = 5; m = (2^30 << 5) // 35
    assert (p.multiplier, p.shift) == ((1 << 35) // 35, 1 - 5)


def test_quantize_float_uses_float32_division():
    # 0.35 / 0.1 is 3.4999999999999996 in double but exactly 3.5 in float32 -> rounds to 4
    assert ts.quantize_float(np.float32(0.35), 0.1, 0)[()] == 4


# ------------------------------------------------------------------------------------------------
# random-parameter sweep: models built in memory with the generator's flatbuffer helpers
# ------------------------------------------------------------------------------------------------

def _model_builders():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_op_models", DATA / "make_op_models.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # imports tflite_micro's schema module only, not TensorFlow
    return mod


def _run_bytes(data: bytes, x: np.ndarray) -> np.ndarray:
    interp = runtime.Interpreter.from_bytes(data, arena_size=256 * 1024)
    interp.set_input(x, 0)
    interp.invoke()
    return interp.get_output(0)


def _f32(v) -> float:
    return float(np.float32(v))


@pytest.mark.parametrize("seed", range(4))
def test_random_params_sweep(seed):
    mb = _model_builders()
    fb, ops, i8, f32t = mb.fb, mb.fb.BuiltinOperator, mb.fb.TensorType.INT8, mb.fb.TensorType.FLOAT32
    rng = np.random.default_rng(100 + seed)
    for _ in range(25):
        si, zi = _f32(10 ** rng.uniform(-4, 0.5)), int(rng.integers(-128, 128))
        so, zo = _f32(si * 10 ** rng.uniform(-1.2, 0.8)), int(rng.integers(-128, 128))
        q_in, q_out = mb.qparams(si, zi), mb.qparams(so, zo)
        y = _run_bytes(mb.unary_model(ops.LOGISTIC, i8, q_in, i8, mb.qparams(1 / 256, -128)), ALL_INT8)
        np.testing.assert_array_equal(y.ravel(), ts.logistic_table(si, zi))
        y = _run_bytes(mb.unary_model(ops.TANH, i8, q_in, i8, mb.qparams(1 / 128, 0)), ALL_INT8)
        np.testing.assert_array_equal(y.ravel(), ts.tanh_table(si, zi))
        y = _run_bytes(mb.unary_model(ops.QUANTIZE, i8, q_in, i8, q_out), ALL_INT8)
        np.testing.assert_array_equal(y.ravel(), ts.requantize_table(si, zi, so, zo))
        if si / 128 / so < 0.5:  # else TFLM's Prepare rejects the model (output exponent > 0)
            y = _run_bytes(mb.unary_model(ops.HARD_SWISH, i8, q_in, i8, q_out), ALL_INT8)
            np.testing.assert_array_equal(y.ravel(), ts.hard_swish_table(si, zi, so, zo))
        y = _run_bytes(mb.unary_model(ops.DEQUANTIZE, i8, q_in, f32t, None), ALL_INT8)
        np.testing.assert_array_equal(y.view(np.int32), ts.dequantize(ALL_INT8, si, zi).view(np.int32))
        xf = quantize_probe_values(si, 1024, rng)
        y = _run_bytes(mb.unary_model(ops.QUANTIZE, f32t, None, i8, q_in, shape=(1, 1024)), xf)
        np.testing.assert_array_equal(y, ts.quantize_float(xf, si, zi))
        # MEAN over (1, 2), random sizes, batch 1 or 2, keep_dims either way
        n, h, w, c = (int(v) for v in (rng.integers(1, 3), rng.integers(1, 17), rng.integers(1, 17), rng.integers(1, 6)))
        keep = bool(rng.integers(0, 2))
        x = np.clip(rng.integers(-128, 128, c) + rng.integers(-40, 41, (n, h, w, c)), -128, 127).astype(np.int8)
        y = _run_bytes(mb.mean_model((n, h, w, c), q_in, q_out, keep), x)
        np.testing.assert_array_equal(y, ts.mean_hw(x, ts.mean_params(si, zi, so, zo, h * w), keep))
        # AVERAGE_POOL_2D, SAME or VALID, no activation
        k, s = int(rng.integers(1, 5)), int(rng.integers(1, 4))
        hh, ww = int(rng.integers(k, 12)), int(rng.integers(k, 12))
        same = bool(rng.integers(0, 2))
        x = rng.integers(-128, 128, (1, hh, ww, 3)).astype(np.int8)
        y = _run_bytes(mb.avg_pool_model((1, hh, ww, 3), k, s, fb.Padding.SAME if same else fb.Padding.VALID, q_in,
                                         fb.ActivationFunctionType.NONE), x)
        np.testing.assert_array_equal(y, ts.average_pool(x, (k, k), (s, s), "SAME" if same else "VALID"))
