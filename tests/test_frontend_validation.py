"""Import-time validation: a model whose declared shapes, types, quantization parameters or weights are
wrong is refused by the front end with one UserError naming the tensor or node, before anything else
(calibration, TFLite Micro, code generation) reads it. One test per class the fuzzer found."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import SHARED_MODELS
from fuzz.mutate import tflite_pack, tflite_unpack
from fuzz.seeds import small_onnx_seeds
from mcucompile.api import CompileOptions, compile_model
from mcucompile.errors import UnsupportedError, UserError
from mcucompile.frontend import check_graph, load_onnx
from mcucompile.frontend.tflite import load_tflite
from mcucompile.ir import Graph, Node, QuantParams, Tensor
from mcucompile.ops.data_movement import ReshapeAttrs

KWS = SHARED_MODELS / "kws_dscnn_int8.tflite"


def _seed(name: str) -> onnx.ModelProto:
    return onnx.load_from_string(next(s for s in small_onnx_seeds() if s.name == name).data)


def _save(m: onnx.ModelProto, tmp_path, name="m.onnx"):
    p = tmp_path / name
    p.write_bytes(m.SerializeToString())
    return p


def _refused(path, *fragments, cls=UserError):
    with pytest.raises(cls) as e:
        (load_tflite if str(path).endswith(".tflite") else load_onnx)(path)
    msg = str(e.value)
    assert "\n" not in msg
    for f in fragments:
        assert f in msg, msg
    return msg


def _init(m, name):
    return next(i for i in m.graph.initializer if i.name == name)


def _set_init(m, name, arr):
    _init(m, name).CopyFrom(numpy_helper.from_array(arr, name))


# ------------------------------------------------------------------------------------------ ONNX

def test_onnx_declared_output_shape_must_equal_inferred(tmp_path):
    m = _seed("cnn")
    m.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 7  # the Gemm computes 5
    _refused(_save(m, tmp_path), "tensor 'y'", "declares shape [1, 7]", "compute [1, 5]")


def test_onnx_declared_value_info_shape_must_equal_inferred(tmp_path):
    m = _seed("cnn")
    vi = next(v for v in m.graph.value_info if v.name == "p1")
    vi.type.tensor_type.shape.dim[2].dim_value = 5  # MaxPool of 8 by 2 gives 4
    _refused(_save(m, tmp_path), "tensor 'p1'", "declares shape [1, 4, 5, 4]", "compute [1, 4, 4, 4]")


def test_onnx_declared_shape_behind_a_folded_reshape_is_checked_by_the_import(tmp_path):
    """ONNX's own inference cannot see through Shape->Gather->Concat->Reshape; the import can."""
    m = _seed("concat_pool")
    del m.graph.value_info[:]
    out = m.graph.output[0].type.tensor_type.shape
    out.Clear()
    out.dim.add().dim_value = 1
    out.dim.add().dim_value = 6
    m.graph.node[6].input[1] = "shape_c"  # the reshape target, computed by a constant-folded Concat
    m.graph.initializer.extend([numpy_helper.from_array(np.array([1], np.int64), "one"),
                                numpy_helper.from_array(np.array([-1], np.int64), "minus1")])
    m.graph.node.insert(6, helper.make_node("Concat", ["one", "minus1"], ["shape_c"], axis=0))
    load_onnx(_save(m, tmp_path, "ok.onnx"))  # consistent: compiles
    vi = helper.make_tensor_value_info("flat", TensorProto.FLOAT, [1, 21])  # really [1, 20]
    m.graph.value_info.append(vi)
    _refused(_save(m, tmp_path), "'flat'", "declares shape [1, 21]", "compute [1, 20]")


def test_onnx_declared_type_must_equal_inferred(tmp_path):
    m = _seed("dw_residual")
    m.graph.output[0].type.tensor_type.elem_type = TensorProto.INT16
    _refused(_save(m, tmp_path), "tensor 'y'", "declares type int16", "compute float")


def test_onnx_operators_that_contradict_each_other(tmp_path):
    m = _seed("cnn")
    _set_init(m, "w2", np.zeros((5, 63), np.float32))  # Gemm weights for 63 inputs, the Flatten gives 64
    del m.graph.value_info[:]
    _refused(_save(m, tmp_path), "operators contradict", "Gemm")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_onnx_weights_must_be_finite(tmp_path, value):
    m = _seed("cnn")
    w = numpy_helper.to_array(_init(m, "w1")).copy()
    w[0, 0, 1, 1] = value
    _set_init(m, "w1", w)
    _refused(_save(m, tmp_path), "'w1'", "NaN or Inf")


def test_onnx_constants_folding_to_inf_are_refused(tmp_path):
    m = _seed("cnn")
    # b1 = big * big folds to +inf in float32
    m.graph.initializer.append(numpy_helper.from_array(np.full(4, 3e38, np.float32), "big"))
    m.graph.node.insert(0, helper.make_node("Mul", ["big", "big"], ["b1_inf"]))
    m.graph.node[1].input[2] = "b1_inf"
    _refused(_save(m, tmp_path), "NaN or Inf")


def test_onnx_initializer_whose_data_contradicts_its_dims(tmp_path):
    m = _seed("cnn")
    _init(m, "w1").dims[0] = 5  # 4*2*3*3 floats stored, 5*2*3*3 declared
    _refused(_save(m, tmp_path), "w1", "re-export")


def test_onnx_opset_outside_the_supported_range(tmp_path):
    m = _seed("cnn")
    m.opset_import[0].version = 6
    _refused(_save(m, tmp_path), "opset 6", "version_converter", cls=UnsupportedError)


def test_onnx_batchnorm_parameters_one_per_channel(tmp_path):
    m = _seed("dw_residual")
    m.graph.node[1].input[2] = "lo"  # a scalar as the BN bias
    msg = _refused(_save(m, tmp_path))
    assert "BatchNormalization" in msg


def test_onnx_conv_group_must_match_channels(tmp_path):
    m = _seed("dw_residual")
    for a in m.graph.node[0].attribute:
        if a.name == "group":
            a.i = 3
    _refused(_save(m, tmp_path))


def test_onnx_pool_pads_covering_a_whole_window(tmp_path):
    m = _seed("concat_pool")
    ap = next(n for n in m.graph.node if n.op_type == "AveragePool")
    ap.attribute.append(helper.make_attribute("pads", [2, 2, 2, 2]))
    _refused(_save(m, tmp_path))


@pytest.mark.parametrize("scale,fragment", [(0.0, "finite and positive"), (-0.02, "finite and positive"),
                                            (np.nan, "NaN or Inf"), (np.inf, "NaN or Inf")])
def test_onnx_qdq_scale_must_be_finite_and_positive(tmp_path, scale, fragment):
    m = _seed("qdq_conv")
    _set_init(m, "ys", np.array(scale, np.float32))
    _refused(_save(m, tmp_path), "'ys'" if "NaN" in fragment else "scale", fragment)


def test_onnx_qdq_per_channel_scale_count(tmp_path):
    m = _seed("qdq_conv")
    _set_init(m, "ws", numpy_helper.to_array(_init(m, "ws"))[:2].copy())
    _set_init(m, "wz", np.zeros(2, np.int8))
    msg = _refused(_save(m, tmp_path))
    assert "per-axis" in msg or "contradict" in msg


def test_onnx_qdq_zero_point_type_must_match(tmp_path):
    m = _seed("qdq_conv")
    _set_init(m, "wz", np.zeros(3, np.int32))  # the weights are int8
    msg = _refused(_save(m, tmp_path))
    assert "zero_point" in msg or "zero point" in msg


def test_onnx_qdq_asymmetric_weights_refused_with_the_reason(tmp_path):
    m = _seed("qdq_conv")
    _set_init(m, "wz", np.array([0, 3, 0], np.int8))
    with pytest.raises(UnsupportedError, match="asymmetric int8 weights.*zero point 0"):
        compile_model(_save(m, tmp_path), CompileOptions(board="host", progress=False))


def test_onnx_qdq_tensor_without_quantization_is_calibrated(tmp_path):
    """A QDQ model missing one QuantizeLinear/DequantizeLinear (the 'KeyError: no calibration range' of
    old): that tensor is calibrated, the note names it, the report lists it as calibrated."""
    m = _seed("qdq_conv")
    nodes = [n for n in m.graph.node if not (n.output[0] in ("yq", "y"))]
    relu = next(n for n in nodes if n.op_type == "Relu")
    relu.output[0] = "y"
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    del m.graph.value_info[:]
    compiled = compile_model(_save(m, tmp_path), CompileOptions(board="host", progress=False))
    assert any("'y'" in note and "synthetic" in note for note in compiled.warnings), compiled.warnings
    assert "y" in compiled.report.quantization.calibrated


def test_quantize_without_ranges_names_the_tensor_without_parameters(tmp_path):
    """Asked to quantize with neither the model's params nor calibration ranges for a tensor, quantize
    says which tensor has none (compile_model calibrates such tensors first)."""
    from mcucompile.passes import canonicalize
    from mcucompile.quant.quantize import quantize_graph

    m = _seed("qdq_conv")
    nodes = [n for n in m.graph.node if not (n.output[0] in ("yq", "y"))]
    next(n for n in nodes if n.op_type == "Relu").output[0] = "y"
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    del m.graph.value_info[:]
    graph = canonicalize(load_onnx(_save(m, tmp_path)))
    with pytest.raises(UserError, match="no quantization parameters"):
        quantize_graph(graph, {})


def test_onnx_qdq_softmax_at_the_models_own_output_scale(tmp_path):
    """onnxruntime's quantizer writes softmax at 1/255 (its calibrated [0, 1]), not TFLite's 1/256: the softmax
    is computed at 1/256 and requantized into the model's params, bit-exact in C, within 1 LSB of the
    float softmax quantized at those params."""
    from mcucompile.api import verify_host
    from mcucompile.ops.base import quantize_values

    m = _seed("qdq_conv")
    dq = next(n for n in m.graph.node if n.output[0] == "y")
    dq.output[0] = "yd"
    m.graph.initializer.extend([numpy_helper.from_array(np.array(1 / 255, np.float32), "ss"),
                                numpy_helper.from_array(np.array(-128, np.int8), "sz")])
    m.graph.node.extend([helper.make_node("Softmax", ["yd"], ["s"], axis=1),
                         helper.make_node("QuantizeLinear", ["s", "ss", "sz"], ["sq"]),
                         helper.make_node("DequantizeLinear", ["sq", "ss", "sz"], ["y"])])
    del m.graph.value_info[:]
    path = _save(m, tmp_path)
    compiled = compile_model(path, CompileOptions(board="host", progress=False))
    out = compiled.graph.tensors[compiled.graph.outputs[0]].quant
    assert (out.s, out.zp) == (pytest.approx(1 / 255), -128)
    assert [n.op for n in compiled.graph.nodes][-2:] == ["softmax", "unary"]
    shape = compiled.float_graph.logical_shape(compiled.float_graph.inputs[0])
    x = np.random.default_rng(0).uniform(0, 1, (8, *shape[1:])).astype(np.float32)
    res = verify_host(compiled, x, references=("none",), build_dir=tmp_path / "b")
    assert res.bit_exact
    from mcucompile.api.verify import simulate
    from mcucompile.api.library import quantize_input
    got = simulate(compiled, quantize_input(compiled, x))[0].astype(np.int64)
    # the float softmax of the dequantized int8 logits, quantized at the model's output params
    g = compiled.graph
    logits_t = g.tensors[g.nodes[-2].inputs[0]]
    from mcucompile.quant.simulate import run_int
    from mcucompile.ops.base import dequantize_values
    want = []
    for s in quantize_input(compiled, x):
        z = dequantize_values(run_int(g, {g.inputs[0]: s}, keep_all=True)[logits_t.name], logits_t.quant)
        e = np.exp(z - z.max(axis=-1, keepdims=True))  # over the last physical axis (ONNX axis 1: channels)
        want.append(quantize_values(e / e.sum(axis=-1, keepdims=True), out).reshape(-1))
    assert np.max(np.abs(got - np.stack(want))) <= 1


# ------------------------------------------------------------------------------------------ TFLite

def _kws():
    return tflite_unpack(KWS.read_bytes())


def _write(model, tmp_path, name="m.tflite"):
    p = tmp_path / name
    p.write_bytes(tflite_pack(model))
    return p


def test_tflite_corrupt_files_are_one_clear_error(tmp_path):
    """Truncated or damaged flatbuffers: a UserError from the structure check, never a reader crash
    (struct.error / IndexError) nor 'could not be read'."""
    data = KWS.read_bytes()
    rng = np.random.default_rng(8)
    cases = [data[:n] for n in (9, 64, 1000, len(data) // 2, len(data) - 3)]
    for _ in range(30):
        b = bytearray(data)
        for pos in rng.integers(0, 2000, 4):  # the tables live near the front
            b[pos] ^= 0xFF
        cases.append(bytes(b))
    for k, c in enumerate(cases):
        p = tmp_path / f"c{k}.tflite"
        p.write_bytes(c)
        try:
            load_tflite(p)
        except UserError as e:
            assert "\n" not in str(e) and "could not be read" not in str(e)


def test_tflite_truncated_file_names_what_is_outside(tmp_path):
    p = tmp_path / "cut.tflite"
    p.write_bytes(KWS.read_bytes()[:4000])
    _refused(p, "is not a valid TFLite model", "truncated or damaged")


def test_tflite_declared_shapes_must_equal_what_the_operators_compute(tmp_path):
    """Finding 4: contradicting shapes compiled to C reading past the arena. Every activation tensor
    with one dimension changed must be refused."""
    base = _kws()
    sg = base.subgraphs[0]
    consts = {k for k, t in enumerate(sg.tensors) if base.buffers[t.buffer].data is not None
              and len(base.buffers[t.buffer].data)}
    # (the model input is free: a taller input can be consistent, e.g. under SAME padding with stride 2)
    for k in [k for k in range(len(sg.tensors)) if k not in consts and k not in set(sg.inputs)]:
        m = _kws()
        t = m.subgraphs[0].tensors[k]
        shape = np.array(t.shape, np.int32)
        shape[1 if len(shape) == 4 else -1] += 1  # (more input channels would be a valid grouped conv)
        t.shape = shape
        with pytest.raises(UserError):
            load_tflite(_write(m, tmp_path, f"s{k}.tflite"))


def test_tflite_fully_connected_input_shape_contradiction(tmp_path):
    m = _kws()
    sg = m.subgraphs[0]
    fc = next(op for op in sg.operators if _code(m, op) == 9)
    sg.tensors[fc.inputs[1]].shape = np.array([12, 65], np.int32)  # weights claim 65 inputs, data for 64
    _refused(_write(m, tmp_path))


def _weight_tensor(m):
    sg = m.subgraphs[0]
    conv = next(op for op in sg.operators if _code(m, op) == 3)
    return sg.tensors[conv.inputs[1]]


def _code(m, op) -> int:
    oc = m.operatorCodes[op.opcodeIndex]
    return max(oc.builtinCode, oc.deprecatedBuiltinCode)


def test_tflite_asymmetric_int8_weights_refused_with_the_reason(tmp_path):
    m = _kws()
    q = _weight_tensor(m).quantization
    zp = np.zeros(len(q.scale), np.int64)
    zp[1] = 4
    q.zeroPoint = zp
    _refused(_write(m, tmp_path), "asymmetric", "zero point 4", "symmetric weights", cls=UnsupportedError)


@pytest.mark.parametrize("scale", [0.0, -0.5, np.nan, np.inf])
def test_tflite_scales_must_be_finite_and_positive(tmp_path, scale):
    m = _kws()
    q = m.subgraphs[0].tensors[m.subgraphs[0].inputs[0]].quantization
    q.scale = np.array([scale], np.float32)
    _refused(_write(m, tmp_path), "quantization scale", "finite and positive")


def test_tflite_zero_point_range_and_lengths(tmp_path):
    m = _kws()
    m.subgraphs[0].tensors[m.subgraphs[0].inputs[0]].quantization.zeroPoint = np.array([200], np.int64)
    _refused(_write(m, tmp_path), "zero point 200", "[-128, 127]")
    m = _kws()
    q = _weight_tensor(m).quantization
    q.scale = np.array(q.scale[:-1], np.float32)
    _refused(_write(m, tmp_path), "scales but")
    m = _kws()
    _weight_tensor(m).quantization.quantizedDimension = 5
    _refused(_write(m, tmp_path), "quantized_dimension 5")


def test_tflite_activation_without_quantization(tmp_path):
    """The corrupt quantization table that gave 'KeyError: no calibration range'."""
    from ai_edge_litert import schema_py_generated as fb

    m = _kws()
    sg = m.subgraphs[0]
    sg.tensors[sg.operators[2].outputs[0]].quantization = fb.QuantizationParametersT()
    _refused(_write(m, tmp_path), "no quantization parameters")


def test_tflite_more_than_one_subgraph_is_not_called_corrupt(tmp_path):
    import copy

    m = _kws()
    m.subgraphs.append(copy.deepcopy(m.subgraphs[0]))
    msg = _refused(_write(m, tmp_path), "has 2 subgraphs", "single-subgraph models", cls=UnsupportedError)
    assert "corrupt" not in msg and "damaged" not in msg


def test_tflite_resource_variables_are_named(tmp_path):
    m = _kws()
    m.subgraphs[0].tensors[5].isVariable = True
    msg = _refused(_write(m, tmp_path), "resource variables", "stateless", cls=UnsupportedError)
    assert "corrupt" not in msg
    m = _kws()
    m.subgraphs[0].tensors[5].type = 13  # RESOURCE
    _refused(_write(m, tmp_path), "resource variables", cls=UnsupportedError)


def test_tflite_indices_out_of_range(tmp_path):
    m = _kws()
    m.subgraphs[0].operators[1].opcodeIndex = 40
    _refused(_write(m, tmp_path), "operator 1 refers to operator code 40")
    m = _kws()
    op = m.subgraphs[0].operators[1]
    op.inputs = np.array([9999] + list(op.inputs[1:]), np.int32)
    _refused(_write(m, tmp_path), "input 0 refers to tensor 9999")
    m = _kws()
    m.subgraphs[0].tensors[3].buffer = 10**6
    _refused(_write(m, tmp_path), "refers to buffer 1000000")
    m = _kws()
    m.subgraphs[0].outputs = np.array([77777], np.int32)
    _refused(_write(m, tmp_path), "model output refers to tensor 77777")


def test_tflite_operator_options_are_validated(tmp_path):
    m = _kws()
    conv = next(op for op in m.subgraphs[0].operators if _code(m, op) == 3)
    conv.builtinOptions.strideW = 0
    _refused(_write(m, tmp_path), "stride")
    m = _kws()
    conv = next(op for op in m.subgraphs[0].operators if _code(m, op) == 3)
    conv.builtinOptions.fusedActivationFunction = 4
    _refused(_write(m, tmp_path), "fused activation TANH", cls=UnsupportedError)
    m = _kws()
    conv = next(op for op in m.subgraphs[0].operators if _code(m, op) == 3)
    conv.builtinOptions.padding = 7
    _refused(_write(m, tmp_path), "padding code 7")


def test_tflite_constant_data_must_fill_its_shape(tmp_path):
    m = _kws()
    w = _weight_tensor(m)
    m.buffers[w.buffer].data = np.array(m.buffers[w.buffer].data[:-5], np.uint8)
    _refused(_write(m, tmp_path), "holds", "bytes but its shape")


def test_tflite_schema_version(tmp_path):
    m = _kws()
    m.version = 2
    _refused(_write(m, tmp_path), "schema version 2")


def test_tflite_unmutated_round_trip_still_compiles(tmp_path):
    """The object-API rewrite itself is not what these tests refuse."""
    load_tflite(_write(_kws(), tmp_path))


# ------------------------------------------------------------------------------------------ Graph.validate

def _tiny_graph(**quant) -> Graph:
    q = QuantParams(**quant) if quant else None
    t = {"x": Tensor("x", (1, 4), quant=q), "y": Tensor("y", (1, 4))}
    return Graph("g", (Node("r", "reshape", ("x",), ("y",), ReshapeAttrs((1, 4))),), t, ("x",), ("y",))


def test_graph_validate_accepts_a_consistent_graph():
    check_graph(_tiny_graph())


@pytest.mark.parametrize("quant,fragment", [
    (dict(scale=np.array([0.0]), zero_point=np.array([0])), "finite and positive"),
    (dict(scale=np.array([np.nan]), zero_point=np.array([0])), "finite and positive"),
    (dict(scale=np.array([0.1]), zero_point=np.array([300])), "outside the 8-bit range"),
    (dict(scale=np.array([0.1, 0.2]), zero_point=np.array([0])), "2 quantization scales but 1"),
    (dict(scale=np.array([0.1, 0.2]), zero_point=np.array([0, 0]), axis=1), "per-channel scales along axis 1"),
])
def test_graph_validate_refuses_bad_quantization(quant, fragment):
    with pytest.raises(UserError, match=fragment.replace("[", r"\[")):
        _tiny_graph(**quant).validate()


def test_graph_validate_refuses_broken_structure_as_a_bug():
    g = _tiny_graph()
    g2 = g.replace(nodes=g.nodes + (Node("r2", "reshape", ("x",), ("y",), ReshapeAttrs((1, 4))),))
    with pytest.raises(ValueError, match="written twice"):
        g2.validate()
    g3 = g.replace(nodes=(Node("r", "reshape", ("z",), ("y",), ReshapeAttrs((1, 4))),),
                   tensors={**g.tensors, "z": Tensor("z", (1, 4))})
    with pytest.raises(ValueError, match="reads 'z' before"):
        g3.validate()


def test_check_graph_recomputes_shapes():
    g = _tiny_graph()
    bad = g.replace(tensors={**g.tensors, "y": Tensor("y", (4, 1))})
    with pytest.raises(ValueError, match="stored output shapes"):
        check_graph(bad)


def test_onnx_clip_bounds_must_be_scalars(tmp_path):
    m = _seed("dw_residual")
    m.graph.node[3].input[1] = "dw"  # the depthwise weights as Clip's min
    _refused(_save(m, tmp_path), "Clip", "must be a scalar")


def test_onnx_conv_kernel_shape_must_match_the_weights(tmp_path):
    m = _seed("concat_pool")
    conv = next(n for n in m.graph.node if n.op_type == "Conv")
    for a in conv.attribute:
        if a.name == "kernel_shape":
            a.ints[1] = 4
    _refused(_save(m, tmp_path), "kernel_shape [3, 4] differs from the weights' [3, 3]")


def test_onnx_transpose_perm_must_be_a_permutation(tmp_path):
    m = _seed("cnn")
    m.graph.node.insert(1, helper.make_node("Transpose", ["c1"], ["c1t"], perm=[0, 1, 2, 2]))
    m.graph.node[2].input[0] = "c1t"
    del m.graph.value_info[:]
    _refused(_save(m, tmp_path))


def test_cli_corrupt_tflite_is_one_line_exit_2(tmp_path, capsys):
    from mcucompile import cli

    p = tmp_path / "cut.tflite"
    p.write_bytes(KWS.read_bytes()[:20000])
    assert cli.main([str(p), "--board", "host", "-o", str(tmp_path / "out"), "--quiet"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("mcucompile: error: ") and "not a valid TFLite model" in err[0]
    assert not (tmp_path / "out").exists()


def test_check_single_sample_refuses_a_batch(tmp_path):
    from mcucompile.frontend import check_single_sample

    m = _seed("cnn")
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 3
    del m.graph.value_info[:]
    for o in m.graph.output:
        for d in o.type.tensor_type.shape.dim:
            d.Clear()
    g = load_onnx(_save(m, tmp_path))  # the float IR takes any batch
    with pytest.raises(UserError, match="batch size 3.*batch-1 models"):
        check_single_sample(g)
    check_single_sample(load_onnx(_save(_seed("cnn"), tmp_path, "b1.onnx")))


def test_onnx_conv_bias_must_be_a_constant(tmp_path):
    m = _seed("cnn")
    m.graph.node[0].input[2] = "x"
    _refused(_save(m, tmp_path), "bias", "constant initializer", cls=UnsupportedError)


def test_clip_bound_beyond_float32_range_compiles(tmp_path):
    """A Clip max of 3.4e38 is no clamp at all: it must not overflow the integer bound computation."""
    m = _seed("dw_residual")
    _set_init(m, "hi", np.array(3.4e38, np.float32))
    compile_model(_save(m, tmp_path), CompileOptions(board="host", calib_samples=4, progress=False))
