"""The instruction-cost model (mcucompile.patch.cost): its counts are the kernels' loops, its table covers
every kernel, it reproduces the measurements it was fitted on, and it ranks plans as they run.

The measurements are run by bench/fit_cost_model.py (QEMU, minutes), not here: ``MEASURED`` records
what it measured on qemu-m4 when the coefficients were fitted. After a kernel changes, rerun that
script, paste its table into cost.py and its totals here.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from conftest import REPO, SHARED_MODELS
from mcucompile.api import CompileOptions, PatchOptions, compile_model
from mcucompile.ops.spatial import im2col
from mcucompile.patch import candidate_splits, plan_patches
from mcucompile.ops import KERNELS, KernelCall
from mcucompile.ops.kernel import valid_taps
from mcucompile.patch.cost import (FIT, RUNTIME_COEFFICIENTS, RUNTIME_FEATURES, estimate_instructions, kernel_of,
                                   plan_features)

MNIST = REPO / "models" / "mnist"

# (model, split, grid) -> guest instructions of one inference on qemu-m4, as `mcucompile bench` measured them
# (grid 0: layer by layer); from bench/fit_cost_model.py at 07c1aa1
MEASURED = {
    ("vww_mbv1_025_float.onnx", 0, 0): 74_589_720,
    ("vww_mbv1_025_float.onnx", 4, 8): 85_090_160,
    ("vww_mbv1_025_float.onnx", 14, 4): 339_836_920,
    ("vww_mbv1_025_float.onnx", 10, 8): 330_636_520,
    ("resnet8_int8.tflite", 0, 0): 90_144_120,
    ("resnet8_int8.tflite", 4, 8): 122_894_600,
    ("resnet8_int8.tflite", 12, 6): 714_793_720,
    ("resnet8_int8.tflite", 8, 8): 314_822_600,
    ("resnet8_int8.tflite", 8, 4): 164_391_760,
    ("kws_dscnn_int8.tflite", 0, 0): 25_912_880,
    ("kws_dscnn_int8.tflite", 5, 4): 53_123_920,
    ("mnist_cnn.onnx", 0, 0): 3_262_920,
}


@pytest.fixture(scope="module")
def compiled():
    cache = {}

    def get(name):
        if name not in cache:
            path = MNIST / name if name.startswith("mnist") else SHARED_MODELS / name
            calib = str(MNIST / "mnist_calib_200.npz") if name.startswith("mnist") else None
            cache[name] = compile_model(path, CompileOptions(board="host", calib=calib, progress=False, patch=PatchOptions(mode="off")))
        return cache[name]

    return get


def test_valid_taps_equals_enumeration():
    rng = np.random.default_rng(0)
    for _ in range(400):
        n_in, k = int(rng.integers(1, 20)), int(rng.integers(1, 6))
        s, d, pad = int(rng.integers(1, 4)), int(rng.integers(1, 3)), int(rng.integers(-4, 4))
        n_out = int(rng.integers(1, 12))
        brute = sum(1 for o in range(n_out) for t in range(k) if 0 <= o * s - pad + t * d < n_in)
        assert valid_taps(n_in, n_out, k, s, d, pad) == brute, (n_in, n_out, k, s, d, pad)


def test_conv_macs_count_only_taps_inside_the_image(compiled):
    """The kernels skip padded taps: the 'macs' count is the in-image taps, counted here with im2col."""
    c = compiled("vww_mbv1_025_float.onnx")
    g = c.graph
    layers, _ = plan_features(g)
    kernels = [k.name for k in (kernel_of(n, g) for n in g.nodes) if k is not None]
    nodes = [n for n in g.nodes if kernel_of(n, g) is not None]
    checked = 0
    for node, kernel, feats in zip(nodes, kernels, layers):
        if kernel not in ("conv", "depthwise_conv") or node.attrs.window.kernel == (1, 1):
            continue
        x = g.tensors[node.inputs[0]].shape
        out = g.tensors[node.outputs[0]].shape
        ones = np.ones((1, x[1], x[2], 1))
        inside = int(im2col(ones, node.attrs.window, out[1], out[2], 0.0).sum())
        per_tap = x[3] * out[3] if kernel == "conv" else out[3]
        assert feats[(kernel, "macs")] == inside * per_tap
        assert feats[(kernel, "macs")] < op_macs(node, g)  # stride-2 and 3x3 layers pad
        checked += 1
    assert checked >= 10


def op_macs(node, graph):
    from mcucompile.ops import op_def

    return op_def(node).macs(node, graph)


def test_patched_counts_cover_every_patch_region(compiled):
    """A per-patch layer's outputs are the sum of its patch regions: the halo is recomputed in the estimate."""
    g = compiled("resnet8_int8.tflite").graph
    plan = plan_patches(g, 8, 4)
    layers, outside = plan_features(g, plan)
    halo = 0
    for j, node in enumerate(g.nodes[: plan.stage_len]):
        kernel = kernel_of(node, g).name
        c = g.tensors[node.outputs[0]].shape[3]
        regions = sum(r[node.outputs[0]].h * r[node.outputs[0]].w * c for r in plan.regions)
        assert layers[j][(kernel, "outputs")] == regions >= g.tensors[node.outputs[0]].size
        assert layers[j][(kernel, "calls")] == plan.patches
        halo += regions - g.tensors[node.outputs[0]].size
    assert halo > 0
    assert outside[("invoke", "patches")] == 16
    assert outside[("copy_region", "calls")] == 2 * 16  # the input copy and the paste of each patch
    whole, _ = plan_features(g)
    assert len(whole) == len(layers)


def test_every_kernel_states_its_cost_with_nonnegative_coefficients():
    """Each template's kernel implementation (ops.kernel.Kernel) states its cost terms; the cost model keeps
    only the runtime's (region copies, the patch loop, the fallback) and names no kernel."""
    templates = {p.name for p in (REPO / "compiler" / "codegen" / "templates" / "kernels").glob("*.c.j2")}
    templates.discard("crop.c.j2")  # the cropped copy of an operand: mcu_copy_region_s8, costed as copy_region
    assert templates == set(KERNELS)
    tables = {k.name: (k.cost.features, k.cost.coefficients) for k in KERNELS.values()}
    tables.update({k: (RUNTIME_FEATURES[k], RUNTIME_COEFFICIENTS[k]) for k in RUNTIME_FEATURES})
    for kernel, (names, coefficients) in tables.items():
        assert set(coefficients) == set(names), kernel
        assert all(v >= 0 for v in coefficients.values()), kernel
    assert "qemu-m4" in FIT
    assert ".c.j2" not in (REPO / "compiler" / "patch" / "cost.py").read_text()


@pytest.mark.parametrize("model,split,grid", sorted(MEASURED))
def test_estimate_reproduces_the_measurement(compiled, model, split, grid):
    """Within 3% of what bench measured (the fit itself is within 0.4%); fails when the table is changed
    without refitting, or the features drift from the kernels."""
    g = compiled(model).graph
    plan = plan_patches(g, split, grid) if grid else None
    est = estimate_instructions(g, plan).total
    measured = MEASURED[(model, split, grid)]
    assert abs(est - measured) <= 0.03 * measured, f"estimated {est:,}, measured {measured:,}"


@pytest.mark.parametrize("model", ["vww_mbv1_025_float.onnx", "resnet8_int8.tflite", "kws_dscnn_int8.tflite"])
def test_layer_by_layer_is_ranked_faster_than_every_patched_plan(compiled, model):
    g = compiled(model).graph
    layerwise = estimate_instructions(g).total
    plans = [(k, n) for k, n in itertools.product(candidate_splits(g), (2, 4, 7))
             if n <= min(g.tensors[g.nodes[k - 1].outputs[0]].shape[1:3])]
    assert len(plans) >= 5
    for k, n in plans:
        assert estimate_instructions(g, plan_patches(g, k, n)).total > layerwise, (k, n)


def test_ranking_follows_the_measurements(compiled):
    """Every pair of measured plans of one model is ordered by the estimate as by the measurement."""
    for model in {m for m, _, _ in MEASURED}:
        g = compiled(model).graph
        runs = [(MEASURED[key], estimate_instructions(g, plan_patches(g, key[1], key[2]) if key[2] else None).total)
                for key in MEASURED if key[0] == model]
        for (m1, e1), (m2, e2) in itertools.combinations(runs, 2):
            assert (m1 < m2) == (e1 < e2), model


def test_more_patches_cost_more(compiled):
    """Finer grids recompute more halo and call each kernel more often."""
    g = compiled("vww_mbv1_025_float.onnx").graph
    for k in candidate_splits(g)[:6:2]:
        costs = [estimate_instructions(g, plan_patches(g, k, n)).total for n in (2, 4, 6, 8)]
        assert costs == sorted(costs) and costs[0] < costs[-1], (k, costs)


def test_a_kernel_missing_from_the_table_is_costed_not_dropped(compiled):
    """A new op's kernel gets the fallback entry (per call, output and MAC) until it is fitted."""
    g = compiled("resnet8_int8.tflite").graph
    kernels = tuple(kernel_of(n, g) for n in g.nodes)
    renamed = tuple(KernelCall("new_kernel.c.j2", k.context) if k is not None and k.name == "add" else k
                    for k in kernels)
    assert renamed != kernels
    base, other = estimate_instructions(g, kernels=kernels), estimate_instructions(g, kernels=renamed)
    for b, o, k in zip(base.layers, other.layers, [k for k in kernels if k is not None]):
        assert (o == b) if k.name != "add" else (o > 0)
    plan = plan_patches(g, 8, 4)
    assert estimate_instructions(g, plan, renamed).total > estimate_instructions(g, kernels=renamed).total
