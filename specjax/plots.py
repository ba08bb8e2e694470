"""Figures from sweep summaries and result arrays (matplotlib, Agg backend; PNG and PDF side by side)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from specjax.config import SWEPT_FIELDS  # noqa: E402

LABELS = {
    "teacher_polarity": "p",
    "lr": "lr",
    "data_std": "std",
    "init_scale": "init",
    "momentum": "mom",
    "weight_decay": "wd",
}


def save(fig, path_prefix: str | Path, formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Saves ``fig`` as ``path_prefix.png`` and ``.pdf``; closes it; returns the paths."""
    path_prefix = Path(path_prefix)
    path_prefix.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        p = path_prefix.with_suffix(f".{fmt}")
        fig.savefig(p, dpi=130, bbox_inches="tight")
        paths.append(p)
    plt.close(fig)
    return paths


def setting_label(group: dict, varying: Sequence[str]) -> str:
    """Legend label of a summary group from the swept fields that take several values."""
    return ", ".join(f"{LABELS[f]}={group[f]:g}" for f in varying) or "run"


def varying_fields(groups: Sequence[dict]) -> list[str]:
    """Swept fields that take more than one value across ``groups`` (teacher polarity always shown)."""
    out = [f for f in SWEPT_FIELDS if len({g[f] for g in groups}) > 1]
    return out or ["teacher_polarity"]


def success_rate_figure(summary: dict, path_prefix: str | Path, early_epoch: int = 5) -> list[Path]:
    """The paper's Fig. 9 layout: success rate per teacher node (0 = strongest), one panel per over-realization.

    Solid lines: last evaluation; dotted: the evaluation at ``early_epoch`` (if recorded and before the last).

    Args:
      summary: ``summary.json`` content from :func:`specjax.sweep.summarize`.
      path_prefix: output path without suffix.
    """
    groups = summary["groups"]
    overs = sorted({g["over_realization"] for g in groups})
    epochs = list(summary["eval_epochs"])
    early = epochs.index(early_epoch) if early_epoch in epochs[:-1] and early_epoch > 0 else None
    varying = varying_fields(groups)
    fig, axes = plt.subplots(1, len(overs), figsize=(4.2 * len(overs), 3.6), sharey=True, squeeze=False)
    cmap = plt.get_cmap("viridis")
    for ax, over in zip(axes[0], overs, strict=True):
        sel = [g for g in groups if g["over_realization"] == over]
        for i, g in enumerate(sel):
            color = cmap(i / max(len(sel) - 1, 1))
            rate = np.asarray(g["success_rate"], float)
            ax.plot(np.arange(rate.size), rate, "-o", ms=3, color=color, label=setting_label(g, varying))
            if early is not None:
                ax.plot(np.arange(rate.size), np.asarray(g["success_rate_by_eval"][early], float), ":", color=color)
        ax.set_title(f"{over}x over-realization ({sel[0]['seeds']} seeds)")
        ax.set_xlabel("teacher node (0 = strongest)")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"success rate (best corr > {summary['threshold']})")
    axes[0][-1].legend(fontsize=8, loc="lower left")
    note = f"solid: epoch {epochs[-1]}" + (f", dotted: epoch {epochs[early]}" if early is not None else "")
    fig.suptitle(f"Teacher nodes covered by a specialized student ({note})", fontsize=11)
    return save(fig, path_prefix)
