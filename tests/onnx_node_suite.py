"""Run the ONNX backend node tests (regenerated offline by the onnx package) through our float IR path.

Each test case is one node with reference inputs and outputs. Inputs that mcucompile compiles into
flash (weights, shapes, pads, clip bounds...) are baked in as initializers; the rest stay graph inputs.
A case ends as ``pass`` (our float IR equals the reference), ``unsupported`` (a clear UserError, e.g.
a 3-D conv), or ``fail`` (a wrong answer or a crash; never acceptable).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from mcucompile.errors import UserError
from mcucompile.frontend.onnx import OnnxImporter, supported_onnx_ops
from mcucompile.passes import canonicalize
from mcucompile.quant.simulate import run_float, to_logical, to_physical

# inputs after the first that are compile-time constants for these ops
CONST_OPERANDS = {"Conv", "Gemm", "MatMul", "BatchNormalization", "Clip", "Pad", "Reshape", "Squeeze", "Unsqueeze",
                  "ReduceMean", "Resize", "Upsample", "PRelu"}


def node_cases():
    from onnx.backend.test.case.node import collect_testcases

    ops = set(supported_onnx_ops())
    for case in collect_testcases(None):
        if case.model is None or not case.data_sets:
            continue
        types = {n.op_type for n in case.model.graph.node}
        if len(case.model.graph.node) == 1 and types <= ops:
            yield case


def run_case(case) -> tuple[str, str]:
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    node = model.graph.node[0]
    inputs, outputs = case.data_sets[0]
    feeds = {}
    bake = node.op_type in CONST_OPERANDS
    keep_inputs = []
    for k, (vi, arr) in enumerate(zip(model.graph.input, inputs)):
        if isinstance(arr, np.generic):
            arr = np.asarray(arr)
        if not isinstance(arr, np.ndarray) or arr.dtype == object:
            return "unsupported", "non-tensor input"
        if (bake and k > 0) or arr.dtype != np.float32:
            model.graph.initializer.append(numpy_helper.from_array(arr, vi.name))
        else:
            feeds[vi.name] = arr
            keep_inputs.append(vi)
    del model.graph.input[:]
    model.graph.input.extend(keep_inputs)
    if not feeds:
        return "unsupported", "no float input"
    if len(model.graph.output) != len(outputs):
        return "unsupported", "output count"
    try:
        shapes = {k: tuple(v.shape) for k, v in feeds.items()}
        g = canonicalize(OnnxImporter(model, "t", shapes).run())
        res = run_float(g, {n: to_physical(g, n, feeds[n]) for n in g.inputs})
    except UserError as e:
        return "unsupported", str(e).split(". Supported")[0][:160]
    except Exception as e:  # noqa: BLE001 - a crash is a failure we report
        return "fail", f"crash {type(e).__name__}: {e}"[:200]
    for name, ref in zip(g.outputs, outputs):
        ours = to_logical(g, name, res[name])
        ref = np.asarray(ref)
        if ours.size != ref.size:
            return "fail", f"size {ours.shape} vs {ref.shape}"
        if not np.allclose(ours.reshape(ref.shape), ref, rtol=1e-3, atol=1e-4):
            return "fail", f"max abs diff {np.abs(ours.reshape(ref.shape) - ref).max():.3g}"
    return "pass", ""


if __name__ == "__main__":
    import sys
    import warnings
    from pathlib import Path

    warnings.filterwarnings("ignore")
    results = {c.name: run_case(c) for c in node_cases()}
    for name, (status, why) in sorted(results.items()):
        print(f"{status:<12} {name} {why}")
    if "--record" in sys.argv:
        out = Path(__file__).parent / "data" / "onnx_node_tests_passing.txt"
        out.write_text("\n".join(sorted(k for k, (s, _) in results.items() if s == "pass")) + "\n")
        print(f"recorded {out}")
