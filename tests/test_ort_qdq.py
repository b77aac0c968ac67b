"""Models quantized by onnxruntime's own ``quantize_static`` (QDQ format) import, quantize and compile.

Each float model is quantized once per session into a temporary folder, as an ONNX user does: int8
activations with per-channel int8 weights, uint8 activations with per-tensor weights, and partly
quantized graphs (ops or nodes left in float, whose activations mcucompile calibrates). The C library
must equal our integer simulator byte for byte (on the host; one model on qemu-m4). Agreement with
onnxruntime's own QDQ execution is measured by verify / make bench, not asserted here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import REPO, SHARED_MODELS
from mcucompile.api import CompileOptions, compile_model, verify_board, verify_host
from mcucompile.api.compile import quant_sources
from mcucompile.api.library import quantize_input
from mcucompile.api.verify import simulate
from mcucompile.quant.quantize import calibration_needs
from onnx import helper, numpy_helper, version_converter

MNIST = REPO / "models" / "mnist" / "mnist_cnn.onnx"
MNIST_CALIB = REPO / "models" / "mnist" / "mnist_calib_200.npz"
CALIB_SAMPLES = 16


def _input_shape(path: Path) -> list[int]:
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    return [d.dim_value or 1 for d in dims]


def _calibration(path: Path) -> np.ndarray:
    """MNIST: its real calibration images; the shared models: seeded synthetic [0, 1) inputs."""
    shape = _input_shape(path)
    if path == MNIST:
        data = np.load(MNIST_CALIB)
        return data[data.files[0]][:CALIB_SAMPLES].astype(np.float32).reshape([-1] + shape[1:])
    return np.random.default_rng(0).random([CALIB_SAMPLES] + shape[1:], dtype=np.float32)


def ort_quantize(src: Path, dst: Path, calib: np.ndarray, activations: str = "int8", per_channel: bool = True,
                 **kwargs) -> Path:
    """``quantize_static`` in QDQ format (int8 weights; int8 or uint8 activations) on ``calib``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    name = onnx.load(str(src)).graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calib)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {name: x[None]}

    act = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}[activations]
    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, activation_type=act,
                    weight_type=QuantType.QInt8, per_channel=per_channel, **kwargs)
    return dst


def hardswish_model(path: Path) -> Path:
    """A small classifier with what onnxruntime's quantizer meets in MobileNetV3: HardSwish, a
    squeeze-excite gate (global average pool, 1x1 conv, Sigmoid, Mul), max pool, Gemm, Softmax."""
    rng = np.random.default_rng(1)

    def init(name, shape, s=0.3):
        return numpy_helper.from_array((rng.standard_normal(shape) * s).astype(np.float32), name)

    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("HardSwish", ["c1"], ["hs1"], name="hardswish1"),
             helper.make_node("Conv", ["hs1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2], name="conv2"),
             helper.make_node("HardSwish", ["c2"], ["hs2"], name="hardswish2"),
             helper.make_node("GlobalAveragePool", ["hs2"], ["gap"], name="gap"),
             helper.make_node("Conv", ["gap", "w3", "b3"], ["c3"], name="se_conv"),
             helper.make_node("Sigmoid", ["c3"], ["gate"], name="se_sigmoid"),
             helper.make_node("Mul", ["hs2", "gate"], ["se"], name="se_mul"),
             helper.make_node("MaxPool", ["se"], ["mp"], kernel_shape=[2, 2], strides=[2, 2], name="maxpool"),
             helper.make_node("Flatten", ["mp"], ["fl"], name="flatten"),
             helper.make_node("Gemm", ["fl", "w4", "b4"], ["logits"], transB=1, name="fc"),
             helper.make_node("Softmax", ["logits"], ["prob"], name="softmax")]
    inits = [init("w1", (8, 3, 3, 3)), init("b1", (8,), 0.1), init("w2", (16, 8, 3, 3)), init("b2", (16,), 0.1),
             init("w3", (16, 16, 1, 1)), init("b3", (16,), 0.1), init("w4", (10, 16 * 4 * 4)), init("b4", (10,), 0.1)]
    g = helper.make_graph(nodes, "hardswish_net", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 16, 16])],
                          [helper.make_tensor_value_info("prob", onnx.TensorProto.FLOAT, [1, 10])], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)]), str(path))
    return path


# name -> (float model, quantize_static keyword arguments)
VARIANTS = {
    "mnist_s8": (lambda: MNIST, {}),
    "mnist_u8": (lambda: MNIST, {"activations": "uint8", "per_channel": False}),
    "mnist_s8_per_tensor": (lambda: MNIST, {"per_channel": False}),
    # a Conv and a BatchNorm Add left in float: their weights are quantized by mcucompile
    "mnist_partial": (lambda: MNIST, {"nodes_to_exclude": ["mnist_cnn_1/pw3_1/BiasAdd",
                                                           "mnist_cnn_1/bn1_1/batchnorm/add_1"]}),
    "resnet8_s8": (lambda: SHARED_MODELS / "resnet8_float.onnx", {}),
    "resnet8_u8": (lambda: SHARED_MODELS / "resnet8_float.onnx", {"activations": "uint8", "per_channel": False}),
    # only Conv / MatMul quantized: the residual Adds and their Relus stay float and are calibrated
    "resnet8_partial": (lambda: SHARED_MODELS / "resnet8_float.onnx", {"op_types_to_quantize": ["Conv", "MatMul"]}),
    "kws_s8": (lambda: SHARED_MODELS / "kws_dscnn_float.onnx", {}),
    "kws_u8": (lambda: SHARED_MODELS / "kws_dscnn_float.onnx", {"activations": "uint8", "per_channel": False}),
    "hardswish_s8": (None, {}),
    "hardswish_u8": (None, {"activations": "uint8", "per_channel": False}),
    # the squeeze-excite Mul and Sigmoid and the HardSwish left to onnxruntime's float: 'se' is calibrated
    "hardswish_partial": (None, {"op_types_to_quantize": ["Conv", "Gemm", "MaxPool", "GlobalAveragePool"]}),
}


@pytest.fixture(scope="session")
def ort_models(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """Every variant quantized once: name -> (QDQ model, calibration .npy it was quantized with)."""
    for shared in ("resnet8_float.onnx", "kws_dscnn_float.onnx"):
        assert (SHARED_MODELS / shared).exists(), f"shared model {SHARED_MODELS / shared} missing"
    root = tmp_path_factory.mktemp("ort_qdq")
    hs = hardswish_model(root / "hardswish_float.onnx")
    out = {}
    for name, (src, kwargs) in VARIANTS.items():
        src_path = src() if src is not None else hs
        calib = np.random.default_rng(0).random([CALIB_SAMPLES, 3, 16, 16], dtype=np.float32) if src is None \
            else _calibration(src_path)
        calib_path = root / f"{name}_calib.npy"
        np.save(calib_path, calib)
        out[name] = (ort_quantize(src_path, root / f"{name}.onnx", calib, **kwargs), calib_path)
    return out


def _compile(path: Path, calib: Path | None = None, board: str = "host"):
    return compile_model(path, CompileOptions(board=board, calib=str(calib) if calib else None,
                                              calib_samples=CALIB_SAMPLES, progress=False))


@pytest.mark.parametrize("name", [n for n in VARIANTS if n != "mnist_s8_per_tensor"])
def test_compiles_bit_exact_on_host(ort_models, name, tmp_path):
    path, calib = ort_models[name]
    compiled = _compile(path, calib)
    assert compiled.source_format == "onnx-qdq"
    g = compiled.graph
    assert all(g.tensors[t].dtype == "int8" for t in g.inputs + g.outputs)  # uint8 models too: int8, zp - 128
    res = verify_host(compiled, np.load(calib)[:3], build_dir=tmp_path, references=("none",))
    assert res.bit_exact, res.mismatched_bytes


def test_partly_quantized_graph_is_calibrated(ort_models):
    """The float island's activations get calibrated params (with --calib, else the synthetic default and
    its note); the others keep the model's; an op-fixed output needs no calibration."""
    path, calib = ort_models["resnet8_partial"]
    needs = calibration_needs(_compile(path, calib).float_graph)
    assert "model/activation_6/Relu:0" in needs, needs  # a float Add + Relu between quantized convs
    with_data = _compile(path, calib)
    assert not any("--calib" in n for n in with_data.warnings), with_data.warnings
    sources = quant_sources(with_data.float_graph, with_data.graph, needs)
    assert set(sources.values()) >= {"model", "calibrated"}
    assert sum(v == "calibrated" for v in sources.values()) >= len(needs)
    report = with_data.report.quantization  # the report lists which tensors came from where
    assert "model/activation_6/Relu:0" in report.calibrated and report.from_model
    synthetic = _compile(path)
    assert any("no --calib data given" in n and "without Q/DQ parameters" in n for n in synthetic.warnings)
    # fully quantized: nothing to calibrate, and a --calib is reported as ignored
    full, full_calib = ort_models["resnet8_s8"]
    full_c = _compile(full, full_calib)
    assert calibration_needs(full_c.float_graph) == set()
    assert any("--calib ignored" in n for n in full_c.warnings)
    assert "calibrated" not in quant_sources(full_c.float_graph, full_c.graph, set()).values()
    assert full_c.report.quantization.calibrated == ()


def test_uint8_model_equals_its_int8_twin(ort_models):
    """Same float model, same calibration, per-tensor weights: uint8 activations are int8 with the zero
    point moved by 128, so the outputs agree within 1 LSB (they are the same params)."""
    u8, calib = ort_models["mnist_u8"]
    s8, _ = ort_models["mnist_s8_per_tensor"]
    a, b = _compile(u8, calib), _compile(s8, calib)
    qa, qb = a.graph.tensors[a.graph.inputs[0]].quant, b.graph.tensors[b.graph.inputs[0]].quant
    assert qa.same_as(qb)
    x = np.load(calib)[:8]
    ya = simulate(a, quantize_input(a, x))[0].astype(int)
    yb = simulate(b, quantize_input(b, x))[0].astype(int)
    assert np.abs(ya - yb).max() <= 1


@pytest.mark.parametrize("opset", [13, 17, 21])
def test_opsets_import_alike(ort_models, opset, tmp_path):
    """The same QDQ model at opsets 13, 17 and 21 (onnx.version_converter) compiles to the same outputs."""
    path, calib = ort_models["kws_s8"]
    model = onnx.load(str(path))
    if opset != 13:
        model = version_converter.convert_version(model, opset)
    p = tmp_path / f"kws_opset{opset}.onnx"
    onnx.save(model, str(p))
    ref, got = _compile(path, calib), _compile(p, calib)
    x = np.load(calib)[:2]
    for a, b in zip(simulate(ref, quantize_input(ref, x)), simulate(got, quantize_input(got, x))):
        assert np.array_equal(a, b)


@pytest.mark.skipif(not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")),
                    reason="needs arm-none-eabi-gcc and qemu-system-arm (make installs them)")
@pytest.mark.parametrize("name", ["mnist_s8", "resnet8_s8", "resnet8_partial", "kws_u8"])
def test_on_qemu_m4(ort_models, name, tmp_path):
    """int8 per-channel, partly quantized and uint8 models on the Cortex-M4 (single rounding, as their
    QDQ semantics asks), bit-exact with the simulator."""
    path, calib = ort_models[name]
    compiled = _compile(path, calib, board="qemu-m4")
    res = verify_board(compiled, np.load(calib)[:2], out_dir=tmp_path / "fw", references=("none",))
    assert res.target == "qemu-m4" and res.samples == 2
    assert res.bit_exact, res.mismatched_bytes


# ------------------------------------------------------------------ refusals: one line naming the node


def _qdq_model(path: Path, opset: int, q_type: int, weight: np.ndarray | None = None, w_type: int | None = None,
               w_zp=0, block_size: int = 0, act_axis: bool = False) -> Path:
    """x -> Q -> DQ -> Conv(DQ(weights)) -> Relu, with the integer types and attributes given."""
    inits = [numpy_helper.from_array(np.array(0.02 if not act_axis else [0.02, 0.02], np.float32), "s"),
             helper.make_tensor("zp", q_type, [2] if act_axis else [], [0, 0] if act_axis else [0])]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"], name="input_q", **({"axis": 1} if act_axis else {})),
             helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["xd"], name="input_dq",
                              **({"axis": 1} if act_axis else {}))]
    w_type = w_type or onnx.TensorProto.INT8
    w = weight if weight is not None else np.ones((2, 2, 1, 1), np.int8)
    inits += [helper.make_tensor("w", w_type, list(w.shape), w.reshape(-1).tolist()),
              numpy_helper.from_array(np.full((2, 1, 1, 1) if block_size else (), 0.1, np.float32), "ws"),
              helper.make_tensor("wzp", w_type, [2, 1, 1, 1] if block_size else [], [w_zp] * (2 if block_size else 1))]
    attrs = {"block_size": block_size, "axis": 1} if block_size else {}
    nodes += [helper.make_node("DequantizeLinear", ["w", "ws", "wzp"], ["wd"], name="weights_dq", **attrs),
              helper.make_node("Conv", ["xd", "wd"], ["y"], name="conv"),
              helper.make_node("Relu", ["y"], ["out"], name="relu")]
    g = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2, 4, 4])],
                          [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, [1, 2, 4, 4])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 10
    onnx.save(m, str(path))
    return path


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "mcucompile", *map(str, args)], capture_output=True, text=True)


def assert_one_line_error(res, *fragments):
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = [line for line in res.stderr.splitlines() if line.strip() and not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("mcucompile: error: "), res.stderr
    assert "Traceback" not in res.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


T = onnx.TensorProto
REFUSALS = {
    "int16 activations": (dict(opset=21, q_type=T.INT16), ("input_q", "int16")),
    "int4 weights": (dict(opset=21, q_type=T.INT8, w_type=T.INT4), ("weights_dq", "int4")),
    "block-wise weights": (dict(opset=21, q_type=T.INT8, block_size=2,
                                weight=np.ones((2, 2, 1, 1), np.int8)), ("weights_dq", "block_size=2")),
    "asymmetric uint8 weights": (dict(opset=13, q_type=T.UINT8, w_type=T.UINT8, w_zp=100,
                                      weight=np.full((2, 2, 1, 1), 120, np.uint8)), ("weights_dq", "asymmetric", "conv")),
    "per-channel activation": (dict(opset=13, q_type=T.INT8, act_axis=True), ("input_q", "per-channel")),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_unsupported_qdq_is_one_line_naming_the_node(case, tmp_path):
    kwargs, fragments = REFUSALS[case]
    path = _qdq_model(tmp_path / "m.onnx", **kwargs)
    assert_one_line_error(run_cli(path, "-o", tmp_path / "out"), *fragments)


def test_symmetric_uint8_weights_are_exact(tmp_path):
    """uint8 weights with zero point 128 are symmetric int8 weights, kept exactly (no requantization)."""
    w = np.array([128 + 7, 128 - 3, 128 + 127, 128 - 100], np.uint8).reshape(2, 2, 1, 1)
    path = _qdq_model(tmp_path / "m.onnx", 13, T.UINT8, weight=w, w_type=T.UINT8, w_zp=128)
    c = compile_model(path, CompileOptions(board="host", progress=False))
    conv = next(n for n in c.graph.nodes if n.op == "conv2d")
    ints = c.graph.tensors[conv.inputs[1]].data
    assert sorted(ints.reshape(-1).tolist()) == sorted((w.astype(int) - 128).reshape(-1).tolist())


# ------------------------------------------------------------------ QDQ around ops, params as a model may pick


def _qdq(x: str, name: str, s: float, zp: int, nodes: list, inits: list, dtype, dqs: int = 1):
    """Q -> ``dqs`` DQ of ``x`` at (s, zp); zp as the int8 value (uint8 models store it + 128)."""
    stored = zp + (128 if dtype == np.uint8 else 0)
    inits += [numpy_helper.from_array(np.array(s, np.float32), f"{name}_s"),
              numpy_helper.from_array(np.array(stored, dtype), f"{name}_z")]
    nodes.append(helper.make_node("QuantizeLinear", [x, f"{name}_s", f"{name}_z"], [f"{name}_q"], name=f"{name}_Q"))
    outs = [f"{name}_d{k}" for k in range(dqs)]
    for k, o in enumerate(outs):
        nodes.append(helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_z"], [o], name=f"{name}_DQ{k}"))
    return outs if dqs > 1 else outs[0]


def ops_model(path: Path, dtype=np.int8, resize: bool = False) -> Path:
    """Pooling, tanh, sigmoid, concat and a DQ -> Q requantization, each with Q/DQ params of its own:
    a max pool whose output params differ from its input's, one Q read by two DQs, tanh / sigmoid at
    scales TFLite would not choose, concat inputs and output at three different params."""
    nodes: list = []
    inits: list = []
    x = _qdq("x", "in", 0.02, 0, nodes, inits, dtype)
    nodes.append(helper.make_node("MaxPool", [x], ["mp"], kernel_shape=[2, 2], strides=[1, 1], name="maxpool"))
    mp = _qdq("mp", "mp", 0.03, 5, nodes, inits, dtype)
    nodes.append(helper.make_node("AveragePool", [mp], ["ap"], kernel_shape=[2, 2], pads=[1, 1, 0, 0], name="avgpool"))
    ap1, ap2 = _qdq("ap", "ap", 0.025, -3, nodes, inits, dtype, dqs=2)
    nodes.append(helper.make_node("Tanh", [ap1], ["th"], name="tanh"))
    th = _qdq("th", "th", 0.009, 2, nodes, inits, dtype)
    nodes.append(helper.make_node("Sigmoid", [ap2], ["sg"], name="sigmoid"))
    sg = _qdq("sg", "sg", 0.0045, -100, nodes, inits, dtype)
    nodes.append(helper.make_node("Concat", [th, sg], ["cat"], axis=1, name="concat"))
    cat = _qdq("cat", "cat", 0.011, -10, nodes, inits, dtype)
    last = _qdq(cat, "rq", 0.02, 7, nodes, inits, dtype)  # a DQ -> Q pair: a requantization
    size = 5
    if resize:
        nodes.append(helper.make_node("Resize", [last, "", "scales"], ["rs"], mode="nearest", name="resize"))
        inits.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"))
        last, size = _qdq("rs", "rs", 0.04, 0, nodes, inits, dtype), 10
    nodes.append(helper.make_node("Identity", [last], ["out"], name="out_id"))
    g = helper.make_graph(nodes, "ops", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 6, 6])],
                          [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, [1, 6, size, size])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


@pytest.mark.parametrize("dtype", [np.int8, np.uint8], ids=["int8", "uint8"])
def test_qdq_around_ops_with_their_own_params(dtype, tmp_path):
    """Ops whose output params must equal their input's (max pool) or are fixed by TFLite's kernels
    (tanh, sigmoid) get one requantization to the model's params instead of a refusal; bit-exact in C."""
    c = compile_model(ops_model(tmp_path / "ops.onnx", dtype), CompileOptions(board="host", progress=False))
    g = c.graph
    assert not calibration_needs(c.float_graph)
    out_q = g.tensors[g.outputs[0]].quant
    assert (out_q.s, out_q.zp) == (pytest.approx(0.02), 7)  # the model's own output params, int8 form
    pool = next(n for n in g.nodes if n.op == "max_pool2d")
    requant = next(n for n in g.nodes if n.inputs and n.inputs[0] == pool.outputs[0])
    assert requant.op == "unary" and g.tensors[requant.outputs[0]].quant.zp == 5
    x = (np.random.default_rng(0).standard_normal((3, 3, 6, 6)) * 1.5).astype(np.float32)
    res = verify_host(c, x, build_dir=tmp_path / "host", references=("none",))
    assert res.bit_exact, res.mismatched_bytes


def test_resize_with_other_output_params_is_requantized(tmp_path):
    c = compile_model(ops_model(tmp_path / "ops.onnx", resize=True), CompileOptions(board="host", progress=False))
    g = c.graph
    assert g.tensors[g.outputs[0]].quant.s == pytest.approx(0.04)
    resize = next(n for n in g.nodes if n.op == "resize_nearest")
    assert next(n for n in g.nodes if n.inputs and n.inputs[0] == resize.outputs[0]).op == "unary"
    x = (np.random.default_rng(1).standard_normal((2, 3, 6, 6)) * 1.5).astype(np.float32)
    assert verify_host(c, x, build_dir=tmp_path / "host", references=("none",)).bit_exact


@pytest.mark.parametrize("op", ["GlobalAveragePool", "AveragePool"])
def test_global_average_pool_at_the_models_params_is_one_rounding(op, tmp_path):
    """A QDQ global average pool whose output params differ from its input's (onnxruntime quantizes the
    pooled range when the pool's input has no Q/DQ of the pool's own): TFLite's MEAN, one rescale, instead
    of an average at the input's scale and a requantization (two roundings); bit-exact in C."""
    nodes: list = []
    inits: list = []
    x = _qdq("x", "in", 0.05, -20, nodes, inits, np.int8)
    attrs = {"kernel_shape": [6, 6]} if op == "AveragePool" else {}
    nodes.append(helper.make_node(op, [x], ["gp"], name="pool", **attrs))
    y = _qdq("gp", "gp", 0.011, -90, nodes, inits, np.int8)
    nodes.append(helper.make_node("Identity", [y], ["out"], name="out_id"))
    g = helper.make_graph(nodes, "gap", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4, 6, 6])],
                          [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, [1, 4, 1, 1])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, str(tmp_path / "gap.onnx"))
    c = compile_model(tmp_path / "gap.onnx", CompileOptions(board="host", progress=False))
    assert [n.op for n in c.graph.nodes if n.op != "transpose"] == ["mean"]  # (the transpose: NCHW in)
    x = np.random.default_rng(2).uniform(-1, 4, (8, 4, 6, 6)).astype(np.float32)
    res = verify_host(c, x, build_dir=tmp_path / "host", references=("onnxruntime-qdq",))
    assert res.bit_exact and res.outputs[0].within_1lsb == 1.0, res.format()


@pytest.mark.parametrize("opset", [10, 11])
def test_qdq_before_opset_13_reads_as_13(opset, tmp_path):
    """Q/DQ at opsets 10-12 are per-tensor with the semantics of 13: read as they are, same outputs."""
    path = ops_model(tmp_path / "ops13.onnx", np.uint8)
    m = onnx.load(str(path))
    m.opset_import[0].version = opset
    old = tmp_path / f"ops{opset}.onnx"
    onnx.save(m, str(old))
    a = compile_model(path, CompileOptions(board="host", progress=False))
    b = compile_model(old, CompileOptions(board="host", progress=False))
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
    assert np.array_equal(simulate(a, quantize_input(a, x))[0], simulate(b, quantize_input(b, x))[0])


def test_int8_quantized_bias_add_is_used_by_its_real_values(ort_models):
    """onnxruntime quantizes the Add after a MatMul like an activation (int8, its own scale and zero
    point): mcucompile folds it into the layer's int32 bias by its real values, not its integers."""
    path, calib = ort_models["resnet8_s8"]
    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    dq = next(n for n in model.graph.node if n.op_type == "DequantizeLinear" and "dense/BiasAdd" in n.name)
    ints, scale, zp = (inits[i] for i in dq.input)
    assert ints.dtype == np.int8  # the case this test is about
    real = (ints.astype(np.float64) - int(zp)) * float(scale)
    g = _compile(path, calib).graph
    fc = next(n for n in g.nodes if n.op == "fully_connected")
    bias = g.tensors[fc.inputs[2]]
    got = bias.data.astype(np.float64) * np.asarray(bias.quant.scale, np.float64)
    assert np.allclose(got, real, atol=np.max(bias.quant.scale))


def test_bias_at_another_scale_is_requantized(tmp_path):
    """An int32 bias written at twice input scale x weight scale keeps its real value: its integers are
    requantized to the product scale (doubled), not taken as they are."""
    s_in, s_w = 0.02, 0.1
    inits = [numpy_helper.from_array(np.array(s_in, np.float32), "s"), numpy_helper.from_array(np.array(0, np.int8), "z"),
             numpy_helper.from_array(np.ones((2, 2, 1, 1), np.int8), "w"),
             numpy_helper.from_array(np.array(s_w, np.float32), "ws"), numpy_helper.from_array(np.array(0, np.int8), "wz"),
             numpy_helper.from_array(np.array([100, -7], np.int32), "b"),
             numpy_helper.from_array(np.array(2 * s_in * s_w, np.float32), "bs"),
             numpy_helper.from_array(np.array(0, np.int32), "bz"),
             numpy_helper.from_array(np.array(0.05, np.float32), "ys"), numpy_helper.from_array(np.array(0, np.int8), "yz")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]), helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"]),
             helper.make_node("DequantizeLinear", ["b", "bs", "bz"], ["bd"]),
             helper.make_node("Conv", ["xd", "wd", "bd"], ["y"], name="conv"),
             helper.make_node("QuantizeLinear", ["y", "ys", "yz"], ["yq"]), helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["out"])]
    g = helper.make_graph(nodes, "bias", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2, 3, 3])],
                          [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, [1, 2, 3, 3])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, str(tmp_path / "bias.onnx"))
    c = compile_model(tmp_path / "bias.onnx", CompileOptions(board="host", progress=False))
    conv = next(n for n in c.graph.nodes if n.op == "conv2d")
    assert c.graph.tensors[conv.inputs[2]].data.tolist() == [200, -14]


def test_qdq_weights_feeding_an_activation_slot_are_refused(tmp_path):
    """Dequantized weights as MatMul's first operand (the activation's place): one line naming the node."""
    inits = [numpy_helper.from_array(np.ones((3, 4), np.int8), "w"), numpy_helper.from_array(np.array(0.1, np.float32), "ws"),
             numpy_helper.from_array(np.array(0, np.int8), "wz"), numpy_helper.from_array(np.array(0.02, np.float32), "s"),
             numpy_helper.from_array(np.array(0, np.int8), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="x_q"),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="x_dq"),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"], name="w_dq"),
             helper.make_node("MatMul", ["wd", "xd"], ["out"], name="weights_first")]
    g = helper.make_graph(nodes, "mm", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [4, 5])],
                          [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, [3, 5])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, str(tmp_path / "mm.onnx"))
    assert_one_line_error(run_cli(tmp_path / "mm.onnx", "-o", tmp_path / "out"), "weights_first")
