"""PNG plot of the memory profile: bytes live at each step, layer by layer vs patched."""

from __future__ import annotations

from ..errors import UserError


def plot_memory(report: dict, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("--plot needs matplotlib: pip install matplotlib") from None
    prof = report["memory_profile"]
    fig, ax = plt.subplots(figsize=(9, 4))
    lw = prof["layerwise"]
    ax.step(range(len(lw)), [b / 1024 for b in lw], where="post", label=f"layer by layer (peak {report['peak_sram_layerwise_bytes'] / 1024:.1f} KB)")
    if "patched" in prof:
        pt = prof["patched"]
        pp = report["patch_plan"]
        ax.step(range(len(pt)), [b / 1024 for b in pt], where="post",
                label=f"patched {pp['grid']}x{pp['grid']}, first {pp['stage_layers']} layers (peak {report['peak_sram_bytes'] / 1024:.1f} KB)")
        ax.axvspan(0, pp["stage_layers"] + 1, color="orange", alpha=0.1, label="per-patch stage (patched schedule)")
    if report.get("tflm_arena_bytes"):
        ax.axhline(report["tflm_arena_bytes"] / 1024, color="gray", ls="--", label="TFLite Micro arena")
    ax.set_xlabel("step (layer)")
    ax.set_ylabel("live activation KB")
    ax.set_title(report["model"].split("/")[-1])
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
