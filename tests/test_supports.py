"""OpDef.supports(): every op says what it cannot compile and why, and one place (ops.check_supported) asks
it of every node after import, for both front ends. The front ends express what the model says in the op's
attrs (pad value, mode and negative pads; mean axes; a concatenation's fused activation; pooling dilation;
a slope varying along H or W; the resize mapping) and the op refuses it with one line naming the node,
its source op and the reason."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from conftest import REPO, SHARED_MODELS
from mcucompile.errors import UnsupportedError
from mcucompile.frontend import load_onnx
from mcucompile.frontend.tflite import load_tflite
from mcucompile.ir import Activation, Graph, Node, Tensor
from mcucompile.ops import REGISTRY, check_supported, op_def
from mcucompile.ops.data_movement import ConcatAttrs, PadAttrs
from mcucompile.ops.mean import MeanAttrs
from mcucompile.ops.pooling import PoolAttrs
from mcucompile.ops.prelu import PreluAttrs
from mcucompile.ops.resize import ResizeAttrs, ResizeMapping
from mcucompile.ops.spatial import Window
from mcucompile.passes import canonicalize

MNIST = REPO / "models" / "mnist" / "mnist_cnn.onnx"
KWS = SHARED_MODELS / "kws_dscnn_int8.tflite"


def _graph(op: str, attrs, in_shape, consts: dict[str, np.ndarray] | None = None, n_inputs: int = 1,
           source: str = "Op") -> Graph:
    """One node over ``n_inputs`` float activations of ``in_shape`` (and constants), its output shape
    inferred by the op (so the case is consistent: only ``supports`` may refuse it)."""
    tensors = {f"x{k}": Tensor(f"x{k}", tuple(in_shape)) for k in range(n_inputs)}
    for name, data in (consts or {}).items():
        tensors[name] = Tensor(name, data.shape, "float32", data.astype(np.float32))
    inputs = tuple(tensors)
    node = Node("n", op, inputs, ("y",), attrs, None, source)
    shape = REGISTRY[op].infer_shapes(node, [tensors[i].shape for i in inputs])[0]
    tensors["y"] = Tensor("y", tuple(shape))
    graph = Graph("g", (node,), tensors, tuple(f"x{k}" for k in range(n_inputs)), ("y",))
    graph.validate()
    return graph


def _refused(graph: Graph, *fragments: str) -> str:
    with pytest.raises(UnsupportedError) as e:
        check_supported(graph)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{graph.nodes[0].source} node '{graph.nodes[0].name}': "), msg
    for f in fragments:
        assert f in msg, msg
    return msg


def test_real_models_are_supported():
    assert check_supported(load_tflite(KWS)) is not None
    assert check_supported(load_onnx(MNIST)) is not None


def test_every_op_answers():
    """The default is 'supported'; each op's own answer for an ordinary node is None too."""
    for name, d in REGISTRY.items():
        assert callable(d.supports), name
    g = _graph("pad", PadAttrs(((0, 0), (1, 1), (2, 2), (0, 0))), (1, 4, 4, 3))
    assert op_def(g.nodes[0]).supports(g.nodes[0], g) is None


def test_pad_value_mode_and_negative_pads():
    pads = ((0, 0), (1, 1), (1, 1), (0, 0))
    _refused(_graph("pad", PadAttrs(pads, 0.5), (1, 4, 4, 3), source="Pad"), "pads with the value 0.5, not 0",
             "zero point", "pad with zeros")
    _refused(_graph("pad", PadAttrs(pads, 0.0, "reflect"), (1, 4, 4, 3)), "pad mode 'reflect'")
    # a crop is a consistent shape (it runs through shape inference) that the kernel cannot do
    _refused(_graph("pad", PadAttrs(((0, 0), (-1, 0), (0, 0), (0, 0))), (1, 4, 4, 3)), "negative pads (cropping)")


def test_mean_over_other_axes():
    assert check_supported(_graph("mean", MeanAttrs((1, 2)), (1, 5, 5, 8)))
    _refused(_graph("mean", MeanAttrs((1,)), (1, 5, 5, 8), source="MEAN"), "mean over axes [1] of a 4-D tensor",
             "only the spatial axes (1, 2)")
    _refused(_graph("mean", MeanAttrs((1,)), (2, 8)), "of a 2-D tensor")


def test_concat_with_a_fused_activation():
    assert check_supported(_graph("concat", ConcatAttrs(3), (1, 4, 4, 3), n_inputs=2))
    _refused(_graph("concat", ConcatAttrs(3, Activation(0.0)), (1, 4, 4, 3), n_inputs=2, source="CONCATENATION"),
             "fused activation", "apply the activation as a layer of its own")


def test_dilated_pooling():
    win = Window((2, 2), (1, 1), (2, 2))
    _refused(_graph("max_pool2d", PoolAttrs(win), (1, 6, 6, 3), source="MaxPool"), "dilated pooling")


def test_prelu_slope_varying_along_w():
    ok = _graph("prelu", PreluAttrs(), (1, 4, 5, 3), {"a": np.array([0.1, 0.2, 0.3])}, source="PRelu")
    assert check_supported(ok)
    slope = np.broadcast_to(np.linspace(0, 1, 5)[:, None], (5, 3))  # [W, C], varying along W
    _refused(_graph("prelu", PreluAttrs(), (1, 4, 5, 3), {"a": slope}, source="PRELU"),
             "alpha varies along axes [2] (W) of the input", "only one slope per channel", "shared_axes")


@pytest.mark.parametrize("in_hw,size,mapping,why", [
    ((4, 4), (8, 8), ResizeMapping(mode="linear"), "mode 'linear' (only 'nearest'"),
    ((3, 3), (9, 9), ResizeMapping(align_corners=True), "align_corners=True, half_pixel_centers=False: along H (x3)"),
    ((4, 4), (6, 8), ResizeMapping(), "resizes H from 4 to 6, not by an integer factor"),
    ((4, 4), (8, 8), ResizeMapping("onnx", coordinate_transformation_mode="asymmetric", nearest_mode="round_prefer_ceil"),
     "nearest_mode 'round_prefer_ceil': along H (x2) output 1 reads input 1, not 0"),
    ((4, 4), (8, 8), ResizeMapping("onnx", coordinate_transformation_mode="tf_crop_and_resize"), "tf_crop_and_resize"),
    ((4, 4), (8, 8), ResizeMapping("onnx", keep_aspect_ratio_policy="not_larger"), "keep_aspect_ratio_policy"),
])
def test_resize_that_is_not_replication(in_hw, size, mapping, why):
    scale = (max(1, size[0] // in_hw[0]), max(1, size[1] // in_hw[1]))
    g = _graph("resize_nearest", ResizeAttrs(scale, size=size, mapping=mapping), (1, *in_hw, 2), source="Resize")
    _refused(g, why)


def test_resize_replicating_mappings_are_supported():
    for mapping in (ResizeMapping(), ResizeMapping(half_pixel_centers=True), ResizeMapping("onnx", scales=(2.0, 3.0)),
                    ResizeMapping("onnx", coordinate_transformation_mode="half_pixel", nearest_mode="round_prefer_floor")):
        assert check_supported(_graph("resize_nearest", ResizeAttrs((2, 3), size=(8, 12), mapping=mapping), (1, 4, 4, 2)))


def test_both_front_ends_ask(monkeypatch):
    """The one check runs on the TFLite graph (end of load_tflite) and on the ONNX graph (canonicalize)."""
    conv = type(REGISTRY["conv2d"])
    monkeypatch.setattr(conv, "supports", lambda self, node, graph: "a reason the test gives")
    with pytest.raises(UnsupportedError, match=r"^CONV_2D node '.*': a reason the test gives$"):
        load_tflite(KWS)
    with pytest.raises(UnsupportedError, match=r"^Conv.* node '.*': a reason the test gives$"):
        canonicalize(load_onnx(MNIST))


# ------------------------------------------------------------------------------------------------
# TFLite models whose refusal moved from the reader into the op
# ------------------------------------------------------------------------------------------------

def _builders():
    pytest.importorskip("tflite_micro", reason="the tflite extra builds the test flatbuffers")
    spec = importlib.util.spec_from_file_location("make_op_models", REPO / "tests" / "data" / "tflite" / "make_op_models.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _load(data: bytes, tmp_path):
    p = tmp_path / "m.tflite"
    p.write_bytes(data)
    return load_tflite(p)


def test_tflite_mean_over_one_axis(tmp_path):
    mb = _builders()
    fb, i8 = mb.fb, mb.fb.TensorType.INT8
    q = mb.qparams(0.05, 3)
    tensors = [mb.tensor("input", (1, 4, 6, 2), i8, 1, q), mb.tensor("axis", (1,), fb.TensorType.INT32, 2),
               mb.tensor("output", (1, 1, 6, 2), i8, 3, q)]
    opts = fb.ReducerOptionsT()
    opts.keepDims = True
    data = mb.single_op_model(fb.BuiltinOperator.MEAN, tensors, [0], [2], [0, 1], [2], {2: np.array([1], np.int32).tobytes()},
                              fb.BuiltinOptions.ReducerOptions, opts)
    with pytest.raises(UnsupportedError, match=r"^MEAN node 'output': a mean over axes \[1\] of a 4-D tensor"):
        _load(data, tmp_path)


def test_tflite_padv2_with_another_value(tmp_path):
    mb = _builders()
    fb, i8 = mb.fb, mb.fb.TensorType.INT8
    q = mb.qparams(0.05, 3)
    tensors = [mb.tensor("input", (1, 4, 4, 2), i8, 1, q), mb.tensor("pads", (4, 2), fb.TensorType.INT32, 2),
               mb.tensor("value", (1,), i8, 3, q), mb.tensor("output", (1, 6, 6, 2), i8, 4, q)]
    pads = np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32)
    data = mb.single_op_model(fb.BuiltinOperator.PADV2, tensors, [0], [3], [0, 1, 2], [3],
                              {2: pads.tobytes(), 3: np.array([13], np.int8).tobytes()})
    with pytest.raises(UnsupportedError, match=r"^PAD node 'output': it pads with the value 0.5, not 0"):
        _load(data, tmp_path)
    data = mb.single_op_model(fb.BuiltinOperator.PADV2, tensors, [0], [3], [0, 1, 2], [3],
                              {2: pads.tobytes(), 3: np.array([3], np.int8).tobytes()})  # the zero point: fine
    assert [n.op for n in _load(data, tmp_path).nodes] == ["pad"]


def test_tflite_concatenation_with_a_fused_relu(tmp_path):
    mb = _builders()
    fb, i8 = mb.fb, mb.fb.TensorType.INT8
    q = mb.qparams(0.05, 3)
    tensors = [mb.tensor("a", (1, 2, 2, 2), i8, 1, q), mb.tensor("b", (1, 2, 2, 3), i8, 2, q),
               mb.tensor("output", (1, 2, 2, 5), i8, 3, q)]
    opts = fb.ConcatenationOptionsT()
    opts.axis = 3
    opts.fusedActivationFunction = fb.ActivationFunctionType.RELU
    data = mb.single_op_model(fb.BuiltinOperator.CONCATENATION, tensors, [0, 1], [2], [0, 1], [2], None,
                              fb.BuiltinOptions.ConcatenationOptions, opts)
    with pytest.raises(UnsupportedError, match=r"^CONCATENATION node 'output': a fused activation"):
        _load(data, tmp_path)
