"""Calibration: activation ranges from running the float ONNX model with onnxruntime.

Every IR tensor remembers the ONNX tensor (``origin``) holding the same values, so one onnxruntime
session with those tensors added as outputs gives every range. A first pass over the calibration set
records each tensor's min/max; when a rule needs the distribution (percentile, MSE, KL: see
quant.methods) a second pass fills a histogram over that span, and the rule picks the range from it.
The model input keeps the min/max of the data (its domain, e.g. [0, 1] pixels) unless an override
names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from ..datafile import as_samples, read_arrays
from ..errors import UserError
from ..ir import Graph
from ..progress import Progress
from .methods import CalibrationOptions, CalibrationRule, Histogram, choose_range

DEFAULT_CALIB_SAMPLES = 32


def synthetic_calibration(shape: tuple[int, ...], n: int = DEFAULT_CALIB_SAMPLES, seed: int = 0) -> np.ndarray:
    """The documented default: ``n`` uniform [0, 1) samples with a fixed seed (logical input layout)."""
    rng = np.random.default_rng(seed)
    return rng.random((n,) + tuple(shape[1:]), dtype=np.float32)


def load_calibration(path: str | Path, input_shape: tuple[int, ...]) -> np.ndarray:
    """Read calibration samples: .npy, .npz (key ``x`` or the first array), or a folder of images.

    Returns [N, *input_shape[1:]] float32 in the model's (ONNX, logical) input layout.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"calibration data not found: {path}")
    if path.is_dir():
        return as_samples(_load_image_folder(path, input_shape), input_shape, "calibration data", path)
    data, _ = read_arrays(path, "calibration data")
    return as_samples(data, input_shape, "calibration data", path)


def _load_image_folder(path: Path, input_shape: tuple[int, ...]) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError:
        raise UserError("reading a folder of images needs Pillow: pip install 'mcucompile[images]'") from None
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm"))
    if not files:
        raise UserError(f"no images (.png/.jpg/.bmp/.ppm) in {path}")
    if len(input_shape) != 4:
        raise UserError(f"image calibration needs a 4-D image input; the model input is {list(input_shape)}")
    nchw = input_shape[1] in (1, 3) and input_shape[3] not in (1, 3)
    h, w, c = (input_shape[2], input_shape[3], input_shape[1]) if nchw else input_shape[1:4]
    out = []
    for f in files:
        try:
            img = Image.open(f).convert("L" if c == 1 else "RGB").resize((w, h), Image.BILINEAR)
        except OSError as e:  # PIL.UnidentifiedImageError included
            raise UserError(f"cannot read the image {f} ({e}); remove it from the calibration folder") from None
        a = np.asarray(img, np.float32).reshape(h, w, c) / 255.0
        out.append(a.transpose(2, 0, 1) if nchw else a)
    return np.stack(out)


@dataclass(frozen=True)
class Calibration:
    """What calibration found, by ONNX tensor name: the ranges quantization uses (``ranges``), the raw
    min/max of the data (``minmax``) and the rule that chose each range (``rules``: e.g. "mse:2048",
    "minmax", or "range" for an explicit override)."""

    ranges: dict[str, tuple[float, float]]
    minmax: dict[str, tuple[float, float]]
    rules: dict[str, str]


def calibrate(model_path: str | Path, graph: Graph, samples: np.ndarray, progress: bool = True) -> dict[str, tuple[float, float]]:
    """Run the float model on ``samples`` (logical input layout) and return {onnx tensor: (min, max)}."""
    return calibrate_tensors(model_path, graph, samples, CalibrationOptions(), progress).ranges


def calibrate_tensors(model_path: str | Path, graph: Graph, samples: np.ndarray, options: CalibrationOptions,
                      progress: bool = True, check_names: bool = True) -> Calibration:
    """Run the float model on ``samples`` (logical input layout) and choose every activation's range
    with ``options`` (the rule, per-tensor overrides; see quant.methods).

    Raises
    ------
    UserError
        An override names a tensor that is not calibrated (the message names the closest), a tensor takes
        infinite values, or onnxruntime cannot run the model on the data.
    """
    import onnxruntime as ort

    model = onnx.load(str(model_path))
    wanted = sorted({t.origin for t in graph.tensors.values() if t.origin and not t.is_const})
    existing = {o.name for o in model.graph.output}
    for name in wanted:
        if name not in existing:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    batch = 16 if not isinstance(inp.shape[0], int) else 1
    out_names = [o.name for o in sess.get_outputs()]

    def passes(label: str):
        with Progress(progress).step(label, total=len(samples)) as step:
            for start in range(0, len(samples), batch):
                chunk = samples[start : start + batch]
                yield from zip(out_names, _run_calibration(sess, out_names, inp.name, chunk))
                yield inp.name, chunk
                step.update(min(start + batch, len(samples)))

    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    for name, v in passes("calibrating"):
        v = np.asarray(v, np.float64)
        if v.size == 0:
            continue
        lo[name] = min(lo.get(name, np.inf), float(v.min()))
        hi[name] = max(hi.get(name, -np.inf), float(v.max()))
    for k in lo:
        if not (np.isfinite(lo[k]) and np.isfinite(hi[k])):
            raise UserError(f"tensor '{k}' takes infinite or NaN values on the calibration data (range {lo[k]:g} .. "
                            f"{hi[k]:g}); the model's weights overflow float32 there: fix the model, or calibrate with "
                            "inputs in the range it was trained on")
    minmax = {k: (lo[k], hi[k]) for k in lo}
    if check_names:
        from .methods import check_override_names

        check_override_names(options, set(minmax))
    rules: dict[str, CalibrationRule] = {}
    for k in minmax:
        rule = options.rule_for(k) or (options.rule if k != inp.name else CalibrationRule("minmax"))
        rules[k] = rule
    hists = {k: Histogram(*minmax[k], int(r.value)) if r.method in ("mse", "kl") else Histogram(*minmax[k], 8192)
             for k, r in rules.items() if r.needs_histogram and options.range_for(k) is None}
    if hists:
        for name, v in passes("calibrating (histograms)"):
            if name in hists:
                hists[name].add(v)
    ranges, chosen = {}, {}
    for k, (a, b) in minmax.items():
        explicit = options.range_for(k)
        if explicit is not None:
            ranges[k], chosen[k] = (float(explicit[0]), float(explicit[1])), "range"
        else:
            ranges[k], chosen[k] = choose_range(rules[k], a, b, hists.get(k)), str(rules[k])
    return Calibration(ranges, minmax, chosen)


def _run_calibration(sess, out_names: list[str], input_name: str, chunk: np.ndarray) -> list[np.ndarray]:
    """One onnxruntime run of the instrumented model; a batch onnxruntime refuses is retried one sample at a
    time, and a model it cannot run at all is the user's to fix (one line naming onnxruntime's reason)."""
    import onnxruntime as ort

    failures = (ort.capi.onnxruntime_pybind11_state.Fail, ort.capi.onnxruntime_pybind11_state.InvalidArgument,
                ort.capi.onnxruntime_pybind11_state.RuntimeException)
    try:
        with np.errstate(all="ignore"):
            return sess.run(out_names, {input_name: chunk})
    except failures as e:
        if len(chunk) > 1:
            singles = [_run_calibration(sess, out_names, input_name, chunk[i : i + 1]) for i in range(len(chunk))]
            return [np.concatenate([np.ravel(r[k]) for r in singles]) for k in range(len(out_names))]
        why = " ".join(str(e).split())[:200]
        raise UserError(f"onnxruntime cannot run the model on the calibration data ({why}); check the model with "
                        "onnx.checker and onnxruntime, and that --calib matches its input") from None
