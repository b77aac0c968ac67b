"""PNG plot of the memory profile (bytes live at each step, layer by layer vs patched) and, for a QuantMCU
compile, its bits per feature map and which patches took which chain on the calibration data."""

from __future__ import annotations

from ..errors import UserError
from .report import Report
from .summary import short_tensor_name


def plot_memory(report: Report, path: str) -> None:
    """Draw ``report``'s memory profile (live activation KB per step, layer by layer and patched, and
    TFLite Micro's arena when measured) into the PNG file ``path``; a QuantMCU compile adds a row below: the
    bits of each feature map of the low-bit chain, and the patch grid shaded by the share of calibration
    samples on which the check sent each patch to the 8-bit chain."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("--plot needs matplotlib: pip install matplotlib") from None
    q = report.quantmcu
    if q is None:
        fig, ax = plt.subplots(figsize=(9, 4))
    else:
        fig = plt.figure(figsize=(9, 7.5))
        grid = fig.add_gridspec(2, 2, height_ratios=(1, 1), width_ratios=(3, 2))
        ax = fig.add_subplot(grid[0, :])
        _plot_bits(fig.add_subplot(grid[1, 0]), q)
        _plot_patches(fig, fig.add_subplot(grid[1, 1]), q)
    prof = report.memory_profile
    lw = prof.layerwise
    ax.step(range(len(lw)), [b / 1024 for b in lw], where="post",
            label=f"layer by layer (peak {report.peak_sram_layerwise_bytes / 1024:.1f} KB)")
    pp = report.patch_plan
    if prof.patched is not None and pp is not None:
        pt = prof.patched
        ax.step(range(len(pt)), [b / 1024 for b in pt], where="post",
                label=f"patched {pp.grid}x{pp.grid}, first {pp.stage_layers} layers "
                      f"(peak {report.peak_sram_bytes / 1024:.1f} KB)")
        ax.axvspan(0, pp.stage_layers + 1, color="orange", alpha=0.1, label="per-patch stage (patched schedule)")
    if report.tflm is not None and report.tflm.arena_bytes:
        ax.axhline(report.tflm.arena_bytes / 1024, color="gray", ls="--", label="TFLite Micro arena")
    ax.set_xlabel("step (layer)")
    ax.set_ylabel("live activation KB")
    ax.set_title(report.model.split("/")[-1])
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_bits(ax, q) -> None:
    role = {"input": " (in)", "output": " (out)"}
    names = [short_tensor_name(m.name, 24) + (" (checked)" if m.checked else "") + role.get(m.role, "")
             for m in q.feature_maps]
    bits = [m.bits for m in q.feature_maps]
    xs = range(len(names))
    # grey: maps kept at 8 bits by construction (the stage input, the checked map, the stage output)
    ax.bar(xs, bits, color=["#7f7f7f" if m.checked or m.role != "map" else "#1f77b4" for m in q.feature_maps])
    for x, b in zip(xs, bits):
        ax.text(x, b + 0.15, str(b), ha="center", fontsize=8)
    ax.set_xticks(list(xs))
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=7)
    ax.set_yticks([2, 4, 8])
    ax.set_ylim(0, 9.5)
    ax.set_ylabel("bits (low-bit chain)")
    ax.set_title(f"QuantMCU: {q.saving:.2f}x fewer stage BitOPs", fontsize=9)


def _plot_patches(fig, ax, q) -> None:
    import numpy as np

    n = q.plan.grid
    share = np.asarray(q.patch_outlier_share, dtype=float).reshape(n, n)
    im = ax.imshow(share, cmap="Reds", vmin=0.0, vmax=1.0)
    for r in range(n):
        for c in range(n):
            ax.text(c, r, f"{100 * share[r, c]:.0f}%", ha="center", va="center", fontsize=7,
                    color="white" if share[r, c] > 0.6 else "black")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_title(f"8-bit chain per patch (calibration; {100 * q.outlier_patch_share:.1f}% overall)", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of samples")
