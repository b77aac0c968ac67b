#!/usr/bin/env python3
"""Fit the instruction-cost model (compiler/patch/cost.py) on measured runs; measures, does not assert.

Runs ``mcucompile bench`` (the API calls it makes) on an emulated board for MNIST, the four MLPerf Tiny
models (float ONNX and int8 .tflite), a MobileNetV2-style model and three small coverage nets (the
kernels the real models lack), each layer by layer and with several patch plans (so per-patch call overhead, halo recomputation and the patch loop are measured),
then fits every kernel's coefficients by non-negative least squares over all per-layer counts at once
(a layer that reads a cropped copy holds two kernels), and what runs outside the layers from each
run's total minus its layers. Prints each kernel's coefficients and where to paste them, the fit error per
run (estimated against measured total instructions), whether the estimate orders each model's plans
as measured, the error on model families left out of the fit, and the error on a second board.
After a kernel changes: rerun, paste each kernel's printed coefficients into its declaration (the
``KernelCost`` of its ``ops.kernel.Kernel`` in the op's module; the runtime's into cost.py's
RUNTIME_COEFFICIENTS), update FIT in cost.py and the printed MEASURED totals in tests/test_cost_model.py.

Counts are guest instructions under QEMU -icount shift=0 (deterministic), not cycles.
Usage: python bench/fit_cost_model.py [--board qemu-m4] [--check-board qemu-m7] [--measurements FILE]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from scipy.optimize import nnls

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "models" / "mbv2"))

from make_mbv2 import build as build_mbv2  # noqa: E402

from mcucompile.api import CompileOptions, PatchOptions, bench, compile_model  # noqa: E402
from mcucompile.patch import candidate_splits  # noqa: E402
from mcucompile.patch.search import choose_patching  # noqa: E402
from mcucompile.ops import KERNELS  # noqa: E402
from mcucompile.patch.cost import (RUNTIME_COEFFICIENTS, RUNTIME_FEATURES, estimate_instructions,  # noqa: E402
                                   plan_features)

#: every cost key and its features: each op kernel's (its ops.kernel.Kernel) and the runtime's
FEATURES: dict[str, tuple[str, ...]] = {**{k.name: tuple(k.cost.features) for k in KERNELS.values()},
                                        **RUNTIME_FEATURES}
#: today's coefficients, where the fit has nothing to go on
COEFFICIENTS: dict[str, dict[str, float]] = {**{k.name: dict(k.cost.coefficients) for k in KERNELS.values()},
                                             **RUNTIME_COEFFICIENTS}
#: where each cost key's coefficients are declared (to paste the fitted ones into)
DECLARED_IN = {**{k.name: f"{k.template}: KernelCost.coefficients in {k.access.__module__}" for k in KERNELS.values()},
               **{k: "RUNTIME_COEFFICIENTS in mcucompile.patch.cost" for k in RUNTIME_FEATURES}}

SHARED = REPO.parent / "shared" / "models" / "mlperf_tiny"
TEST_MODELS = {"vww_mbv1_025_float.onnx", "resnet8_int8.tflite", "kws_dscnn_int8.tflite", "mnist_cnn.onnx"}
MNIST = REPO / "models" / "mnist"


def coverage_net(h: int, w: int, c: int, seed: int = 0) -> onnx.ModelProto:
    """A small net with the kernels the real models lack or hold once (pad, concat, transpose, mul, lookup
    tables, both pools, softmax), so that each kernel's per-call and per-element costs can be told apart."""
    rng = np.random.default_rng(seed)

    def wt(*s):
        return (rng.standard_normal(s) * 0.3).astype(np.float32)

    n = helper.make_node
    nodes = [n("Conv", ["x", "w0"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             n("Sigmoid", ["a"], ["s"]),
             n("Mul", ["a", "s"], ["m"]),
             n("MaxPool", ["m"], ["p"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             n("Pad", ["p", "pads"], ["pp"]),
             n("Conv", ["pp", "w1"], ["b1"], kernel_shape=[3, 3]),
             n("MaxPool", ["pp"], ["b2"], kernel_shape=[3, 3]),
             n("Concat", ["b1", "b2"], ["cc"], axis=1),
             n("HardSwish", ["cc"], ["hs"]),
             n("AveragePool", ["hs"], ["ap"], kernel_shape=[2, 2], strides=[2, 2]),
             n("Transpose", ["ap"], ["tr"], perm=[0, 1, 3, 2]),
             n("MaxPool", ["tr"], ["mp"], kernel_shape=[2, 2], strides=[1, 1]),
             n("ReduceMean", ["mp"], ["g"], axes=[2, 3], keepdims=1),
             n("Flatten", ["g"], ["f"]),
             n("Gemm", ["f", "wf"], ["z"], transB=1),
             n("Softmax", ["z"], ["y"])]
    inits = {"w0": wt(c, 3, 3, 3), "w1": wt(c, c, 3, 3), "wf": wt(10, 2 * c),
             "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)}
    g = helper.make_graph(nodes, "coverage", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, h, w])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def models(tmp: Path) -> list[tuple[str, Path, str | None]]:
    mbv2 = tmp / "mbv2_144.onnx"
    onnx.save(build_mbv2(144, 0.35), str(mbv2))
    out = [("mnist_cnn", MNIST / "mnist_cnn.onnx", str(MNIST / "mnist_calib_200.npz"))]
    for name in ("kws_dscnn", "resnet8", "vww_mbv1_025", "ad_autoencoder"):
        out.append((f"{name} float", SHARED / f"{name}_float.onnx", None))
        out.append((f"{name} int8", SHARED / f"{name}_int8.tflite", None))
    out.append(("mbv2-0.35 144", mbv2, None))
    for h, w, c in ((24, 20, 8), (40, 36, 4), (16, 12, 24)):
        path = tmp / f"coverage_{h}x{w}x{c}.onnx"
        onnx.save(coverage_net(h, w, c), str(path))
        out.append((f"coverage {h}x{w}x{c}", path, None))
    return out


def plans(compiled) -> list[tuple[str, dict]]:
    """Layer by layer, the minimum-peak plan, and forced plans over short, middle and long stages. Every
    patched plan is forced by (split, grid), so a name always means the same plan (the cache key)."""
    out = [("layer by layer", {"mode": "off"})]
    g = compiled.graph
    splits = candidate_splits(g)
    if not splits:
        return out
    lowest = choose_patching(g, 1 << 40, optimize="memory").plan
    picks = [(splits[0], 2), (splits[len(splits) // 2], 4), (splits[-1], 6), (splits[len(splits) // 3], 8)]
    if lowest is not None:
        picks.insert(0, (lowest.stage_len, lowest.grid))
    for k, n in dict.fromkeys(picks):
        h, w = g.tensors[g.nodes[k - 1].outputs[0]].shape[1:3]
        n = min(n, h, w)
        if n >= 2:
            out.append((f"{n}x{n}@{k}", {"mode": "forced", "split": k, "patches": n}))
    if len(out) > 2:  # the input filled patch by patch through the application's callback
        k, n = splits[len(splits) // 2], 3
        out.append((f"{n}x{n}@{k} by patch", {"mode": "forced", "split": k, "patches": n, "input_by_patch": True}))
    return out


#: which kernels the fit measures: "portable" (the reference C kernels) or "auto" (the board's fast ones)
KERNELS = {"kernels": "portable"}


def options(board: str, calib: str | None, kw: dict) -> CompileOptions:
    return CompileOptions(board=board, calib=calib, progress=False, patch=PatchOptions(**kw), **KERNELS)


def measure(board: str, cache: dict, tmp: Path, subset: str = "all") -> list[dict]:
    """One record per (model, plan): the compiled model, its per-layer and total counts (``subset``
    "check": only layer by layer and the first patched plan, the minimum peak where there is one)."""
    runs = []
    for label, path, calib in models(tmp):
        base = compile_model(path, options(board, calib, {"mode": "off"}))
        for plan_name, kw in plans(base)[: 2 if subset == "check" else None]:
            key = f"{board} | {KERNELS['kernels']} | {label} | {plan_name}"
            c = compile_model(path, options(board, calib, kw))
            got = (c.patch.stage_len, c.patch.grid) if c.patch else None
            assert got == ((kw["split"], kw["patches"]) if kw["patch"] == "forced" else None), (key, got)
            if key not in cache:
                r = bench(c)
                cache[key] = {"layers": [lay["count"] for lay in r.layers], "total": r.total}
                print(f"measured {key}: {r.total:,}", file=sys.stderr, flush=True)
            runs.append({"key": key, "model": label, "path": path, "compiled": c, **cache[key]})
    return runs


def columns() -> list[tuple[str, str]]:
    return [(k, f) for k, names in FEATURES.items() for f in names]


def design(runs: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cols = {c: i for i, c in enumerate(columns())}
    rows, target, weight = [], [], []

    def add(feats: dict, count: float) -> None:
        row = np.zeros(len(cols))
        for (k, name), v in feats.items():
            if (k, name) in cols:
                row[cols[(k, name)]] += v
        rows.append(row)
        target.append(count)
        # relative error matters for small and large layers alike; counts have a 40-instruction tick
        weight.append(1.0 / max(float(count), 2000.0))

    for run in runs:
        c = run["compiled"]
        layers, outside = plan_features(c.graph, c.patch)
        assert len(layers) == len(run["layers"]), run["key"]
        for feats, count in zip(layers, run["layers"]):
            add(feats, count)
        add(outside, run["total"] - sum(run["layers"]))
    return np.array(rows), np.array(target, float), np.array(weight)


def fit(runs: list[dict], quiet: bool = False) -> dict[str, dict[str, float]]:
    a, b, w = design(runs)
    used = a.any(axis=0)
    x = np.zeros(a.shape[1])
    x[used], _ = nnls(a[:, used] * w[:, None], b * w, maxiter=100 * a.shape[1])
    table: dict[str, dict[str, float]] = {}
    for (k, name), v, u in zip(columns(), x, used):
        if not u:  # nothing measured exercises it: keep the table's value (set by hand from the loop)
            v = COEFFICIENTS.get(k, {}).get(name, 0.0)
            if not quiet:
                print(f"note: no measurement exercises {k}.{name}; kept {v}", file=sys.stderr)
        table.setdefault(k, {})[name] = float(round(v, 3))
    return table


def error_table(runs: list[dict], table: dict) -> list[float]:
    print(f"{'run':<52} {'measured':>13} {'estimated':>13} {'error':>7}")
    errs = []
    for run in runs:
        c = run["compiled"]
        est = estimate_instructions(c.graph, c.patch, coefficients=table).total
        e = (est - run["total"]) / run["total"]
        errs.append(e)
        print(f"{run['key']:<52} {run['total']:>13,} {est:>13,} {100 * e:>+6.1f}%")
    a = np.abs(errs)
    print(f"{'mean |error|':<52} {'':>13} {'':>13} {100 * a.mean():>6.1f}%")
    print(f"{'max |error|':<52} {'':>13} {'':>13} {100 * a.max():>6.1f}%")
    return errs


def holdout_check(runs: list[dict]) -> None:
    """Leave one model family out (float and int8 together), fit on the rest, estimate the one left out:
    how the model does on a network it has not seen."""
    families = sorted({r["model"].split()[0] for r in runs})
    print(f"\n{'held out (fitted without it)':<30} {'runs':>4} {'mean |error|':>12} {'max |error|':>11}")
    for fam in families:
        train = [r for r in runs if r["model"].split()[0] != fam]
        test = [r for r in runs if r["model"].split()[0] == fam]
        table = fit(train, quiet=True)
        errs = [abs(estimate_instructions(r["compiled"].graph, r["compiled"].patch, coefficients=table).total
                    - r["total"]) / r["total"] for r in test]
        print(f"{fam:<30} {len(test):>4} {100 * np.mean(errs):>11.1f}% {100 * np.max(errs):>10.1f}%")


def ranking_check(runs: list[dict], table: dict) -> None:
    """Per model: does the model order the plans as the measurements do (what the search relies on)?"""
    by_model: dict[str, list[dict]] = {}
    for run in runs:
        by_model.setdefault(run["model"], []).append(run)
    print(f"\n{'model':<22} {'plans':>5} {'pairs ordered right':>20} {'fastest measured = fastest estimated':>38}")
    for model, rs in by_model.items():
        est = [estimate_instructions(r["compiled"].graph, r["compiled"].patch, coefficients=table).total for r in rs]
        meas = [r["total"] for r in rs]
        pairs = [(i, j) for i, j in itertools.combinations(range(len(rs)), 2) if abs(meas[i] - meas[j]) > 0.02 * meas[i]]
        right = sum((meas[i] < meas[j]) == (est[i] < est[j]) for i, j in pairs)
        same = int(np.argmin(meas)) == int(np.argmin(est))
        print(f"{model:<22} {len(rs):>5} {f'{right}/{len(pairs)}':>20} {str(same):>38}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--board", default="qemu-m4", help="emulated board the fit is measured on")
    p.add_argument("--check-board", default="qemu-m7",
                   help="a second board the fitted model is checked on ('' for none)")
    p.add_argument("--measurements", type=Path, help="JSON cache of counts: reused if present, written after measuring")
    p.add_argument("--kernels", choices=("portable", "auto"), default="portable",
                   help="fit the portable kernels (default) or the board's fast ones (DSP on qemu-m4)")
    args = p.parse_args()
    KERNELS["kernels"] = args.kernels
    cache = json.loads(args.measurements.read_text()) if args.measurements and args.measurements.exists() else {}
    tmp = Path(tempfile.mkdtemp())
    runs = measure(args.board, cache, tmp)
    if args.measurements:
        args.measurements.write_text(json.dumps(cache, indent=1))
    table = fit(runs)
    print(f"# fitted on {args.board}: {len(runs)} runs, {sum(len(r['layers']) for r in runs)} layer counts")
    print("# each kernel's coefficients, to paste where they are declared:")
    for k, coef in table.items():
        print(f"{k!r}: {{{', '.join(f'{n!r}: {v}' for n, v in coef.items())}}},  # {DECLARED_IN[k]}")
    print()
    print(f"fit error on {args.board} (the runs fitted):")
    error_table(runs, table)
    ranking_check(runs, table)
    holdout_check(runs)
    print("\nMEASURED totals for tests/test_cost_model.py ((model file, split, grid) -> instructions):")
    for r in runs:
        p = r["compiled"].patch
        if r["path"].name in TEST_MODELS and (p is None or not p.input_by_patch):
            key = (r["path"].name, p.stage_len if p else 0, p.grid if p else 0)
            print(f"    {key!r}: {r['total']:_},")
    if args.check_board:
        check = measure(args.check_board, cache, tmp, "check")
        if args.measurements:
            args.measurements.write_text(json.dumps(cache, indent=1))
        print(f"\nthe same coefficients on {args.check_board} (not fitted there):")
        error_table(check, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
