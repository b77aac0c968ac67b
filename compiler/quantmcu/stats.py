"""Statistics of the per-patch stage's feature maps over the calibration set, per patch and per channel.

What VDPC (the outlier threshold, the share of outlier patches) and VDQS (entropy of a map's quantized
values, the spread of channel ranges) read. Everything is measured on the integer graph, the values the
device computes, so ONNX float, QDQ and int8 TFLite models are handled alike, and in the zero-point-free
deviation d = |q - zp| (0..255 for int8), which is what the on-device check compares.

A patch's region of a map is the region the patch computes (``PatchPlan.regions``: halo included), the
region the check of that map reads. Patch-by-patch values equal layer-by-layer values on every region (the
patched simulator is tested bit-exact against it), so the maps are taken from one layer-by-layer run per
calibration sample and sliced.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Graph
from ..patch.planner import PatchPlan, np_region
from .blas import run_batched

#: deviations |q - zp| of an 8-bit map lie in 0..255: one histogram bin each
BINS = 256
#: calibration samples run through the stage at once (``quant.simulate.run_batched``)
BATCH = 10


@dataclass(frozen=True, eq=False)
class MapStats:
    """One 8-bit feature map of the stage over ``samples`` calibration inputs and ``patches`` patches.

    Attributes
    ----------
    tensor, zero_point, scale, channels:
        The map and its (per-tensor) quantization.
    patch_max : numpy.ndarray
        int32 [samples, patches]: max |q - zp| in each patch's region (what the check compares).
    patch_channel_max : numpy.ndarray
        int32 [samples, patches, channels]: the same per channel.
    patch_histogram : numpy.ndarray
        int64 [patches, 256]: counts of |q - zp| = d in each patch's region, summed over the samples.
    channel_histogram : numpy.ndarray
        int64 [channels, 256]: counts of |q - zp| = d per channel over the whole map (each value once).
    channel_min, channel_max : numpy.ndarray
        int32 [channels]: smallest and largest q per channel over the whole maps of all samples.
    """

    tensor: str
    zero_point: int
    scale: float
    channels: int
    patch_max: np.ndarray
    patch_channel_max: np.ndarray
    patch_histogram: np.ndarray
    channel_histogram: np.ndarray
    channel_min: np.ndarray
    channel_max: np.ndarray

    @property
    def histogram(self) -> np.ndarray:
        """int64 [256]: counts of |q - zp| over the whole maps of all samples (each value once)."""
        return self.channel_histogram.sum(axis=0)

    def percentile(self, q: float, per_patch: bool = False) -> float:
        """The ``q``-th percentile (0..100) of |q - zp|: over the whole maps, or over the patches' regions
        (halo values counted once per patch that reads them). The lowest d whose cumulative share reaches
        q / 100 (an integer: the values are)."""
        hist = self.patch_histogram.sum(axis=0) if per_patch else self.histogram
        return float(_hist_percentile(hist, q))

    def mean_std(self) -> tuple[float, float]:
        """Mean and standard deviation of |q - zp| over the whole maps."""
        hist = self.histogram.astype(np.float64)
        d = np.arange(BINS, dtype=np.float64)
        n = hist.sum()
        if n == 0:
            return 0.0, 0.0
        mean = float((hist * d).sum() / n)
        return mean, float(np.sqrt(max(0.0, (hist * (d - mean) ** 2).sum() / n)))

    def share_above(self, threshold: int) -> np.ndarray:
        """float [patches]: per patch, the share of its region's values (over the samples) with |q - zp| >
        ``threshold``."""
        total = self.patch_histogram.sum(axis=1)
        above = self.patch_histogram[:, threshold + 1:].sum(axis=1)
        return np.divide(above, total, out=np.zeros(len(total)), where=total > 0)

    def outlier_patches(self, threshold: int) -> np.ndarray:
        """bool [samples, patches]: the patches the check of this map at ``threshold`` calls outliers."""
        return self.patch_max > threshold


def _hist_percentile(hist: np.ndarray, q: float) -> int:
    total = int(hist.sum())
    if total == 0:
        return 0
    cum = np.cumsum(hist)
    return int(np.searchsorted(cum, q / 100.0 * total, side="left"))


@dataclass(frozen=True, eq=False)
class StageStats:
    """Every 8-bit feature map of a patched stage (the stage input first, then the maps in the order the
    stage makes them), over the calibration set."""

    plan: PatchPlan
    samples: int
    maps: tuple[MapStats, ...]

    def map(self, tensor: str) -> MapStats:
        for m in self.maps:
            if m.tensor == tensor:
                return m
        raise KeyError(f"no statistics for '{tensor}' (maps of the stage: {[m.tensor for m in self.maps]})")


def stage_maps(graph: Graph, plan: PatchPlan) -> tuple[str, ...]:
    """The stage's 8-bit NHWC feature maps: its input, then each stage node's output, in order."""
    names = [graph.inputs[0]] + [o for n in graph.nodes[: plan.stage_len] for o in n.outputs]
    out = []
    for name in names:
        t = graph.tensors[name]
        if name not in out and len(t.shape) == 4 and t.quant is not None and t.bits == 8:
            out.append(name)
    return tuple(out)


def stage_stats(graph: Graph, plan: PatchPlan, calib_q: np.ndarray,
                values: dict[str, np.ndarray] | None = None, only: tuple[str, ...] | None = None) -> StageStats:
    """Statistics of every map of ``plan``'s stage over the integer calibration inputs ``calib_q``.

    Parameters
    ----------
    graph : Graph
        The quantized graph.
    plan : PatchPlan
        The patch plan (split, grid, regions).
    calib_q : numpy.ndarray
        int8 [N, ...] calibration inputs in the model input's physical layout (``api.quantize_input``).
    values : dict, optional
        The stage's values on ``calib_q`` already taken (``vdqs.stage_values``: every map, the samples stacked along
        N); else the stage runs here.
    only : tuple of str, optional
        Measure these maps of the stage only (in the stage's order; the stage then runs only as far as it makes
        them): what a caller that reads one map (VDPC's checked map) needs.

    Returns
    -------
    StageStats
    """
    maps = stage_maps(graph, plan)
    inp = graph.inputs[0]
    shape = tuple(graph.tensors[inp].shape)
    nodes = graph.nodes[: plan.stage_len]
    if only is not None:
        unknown = [m for m in only if m not in maps]
        if unknown:
            raise KeyError(f"no statistics for {unknown} (maps of the stage: {list(maps)})")
        maps = tuple(m for m in maps if m in only)
        made = [j for j, nd in enumerate(nodes) if set(nd.outputs) & set(maps)]
        nodes = nodes[: max(made) + 1] if made else ()  # the later nodes make none of them
    n, P = len(calib_q), plan.patches
    acc = {}
    for m in maps:
        t = graph.tensors[m]
        c = int(t.shape[-1])
        acc[m] = {"pmax": np.zeros((n, P), np.int32), "pcmax": np.zeros((n, P, c), np.int32),
                  "phist": np.zeros((P, BINS), np.int64), "chist": np.zeros((c, BINS), np.int64),
                  "cmin": np.full(c, 127, np.int32), "cmax": np.full(c, -128, np.int32)}
    xs = np.asarray(calib_q).reshape((n,) + shape[1:])
    for s0 in range(0, n, BATCH):  # a batch of samples through the stage, then each map's counts over all of them
        k = len(xs[s0 : s0 + BATCH])
        parts = run_batched(graph, nodes, {inp: xs[s0 : s0 + BATCH]}, k) if values is None else None
        for m in maps:
            a, t = acc[m], graph.tensors[m]
            zp = int(t.quant.zp)
            if parts is None:
                q = np.asarray(values[m][s0 : s0 + k], np.int32)
            else:
                q = np.concatenate([np.asarray(d[m], np.int32) for d in parts])
            c = q.shape[-1]
            d = np.abs(q - zp)
            flat = d.reshape(-1, c)
            # one bincount for every channel: channel ch's deviations offset into bins [ch * 256, ch * 256 + 256)
            a["chist"] += np.bincount((flat + np.arange(c, dtype=np.int32) * BINS).reshape(-1),
                                      minlength=c * BINS).reshape(c, BINS)
            a["cmin"] = np.minimum(a["cmin"], q.reshape(-1, c).min(axis=0))
            a["cmax"] = np.maximum(a["cmax"], q.reshape(-1, c).max(axis=0))
            for p, regs in enumerate(plan.regions):
                r = np_region(d, regs[m])
                if r.size == 0:
                    continue
                per_channel = r.reshape(k, -1, c).max(axis=1)
                a["pcmax"][s0 : s0 + k, p] = per_channel
                a["pmax"][s0 : s0 + k, p] = per_channel.max(axis=1)
                a["phist"][p] += np.bincount(r.reshape(-1), minlength=BINS)
    out = []
    for m in maps:
        t, a = graph.tensors[m], acc[m]
        out.append(MapStats(m, int(t.quant.zp),
                            float(t.quant.s), int(t.shape[-1]), a["pmax"], a["pcmax"],
                            a["phist"], a["chist"], a["cmin"], a["cmax"]))
    return StageStats(plan, n, tuple(out))
