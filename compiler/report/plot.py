"""PNG plot of the memory profile: bytes live at each step, layer by layer vs patched."""

from __future__ import annotations

from ..errors import UserError
from .report import Report


def plot_memory(report: Report, path: str) -> None:
    """Draw ``report``'s memory profile (live activation KB per step, layer by layer and patched, and
    TFLite Micro's arena when measured) into the PNG file ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("--plot needs matplotlib: pip install matplotlib") from None
    prof = report.memory_profile
    fig, ax = plt.subplots(figsize=(9, 4))
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
