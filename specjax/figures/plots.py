"""Figures from sweep summaries and result arrays (matplotlib, Agg backend; PNG and PDF side by side)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from specjax.config import SWEPT_FIELDS  # noqa: E402
from specjax.engine import HPARAM_LABELS as LABELS  # noqa: E402


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
    fig.suptitle(f"Teacher nodes covered by a specialized student ({note})", fontsize=11, y=1.03)
    return save(fig, path_prefix)


# --------------------------------------------------------------------------------------------------------------
# The paper's two-layer figures from result arrays (Figs. 7, 9, 10).


def l_shape_figure(
    arrays_per_group: Sequence[dict[str, np.ndarray]],
    path_prefix: str | Path,
    eval_index: int = -1,
    paper_axes: tuple[float, float, float, float] = (0.0, 1.1, -0.1, 2.5),
) -> list[Path]:
    """The paper's Fig. 7: each student's best teacher correlation vs its fan-out norm, all seeds overlaid.

    One row per teacher polarity, one column per over-realization (shape group). Theorem 3 / Corollary 2 predict an
    "L": students that specialize to no teacher (low correlation) have (near-)zero fan-out.

    Args:
      arrays_per_group: one :func:`specjax.sweep.group_arrays` dict per over-realization (keys
        ``best_student_corr_l1``, ``fan_out_norm_l1`` of shape ``(S, N, E, n)``, ``teacher_polarity (S,)``).
      path_prefix: output path without suffix.
      eval_index: which evaluation to show (default: the last).
      paper_axes: ``(x0, x1, y0, y1)``; the y range is widened if points would fall outside it.
    """
    polarities = arrays_per_group[0]["teacher_polarity"]
    rows, cols = len(polarities), len(arrays_per_group)
    fig, axes = plt.subplots(rows, cols, figsize=(2.7 * cols, 2.3 * rows), sharex=True, sharey=True, squeeze=False)
    y_top = max(paper_axes[3], *(1.05 * float(a["fan_out_norm_l1"][:, :, eval_index].max()) for a in arrays_per_group))
    for c, arrays in enumerate(arrays_per_group):
        over = int(arrays["over_realization"])
        for r, polarity in enumerate(arrays["teacher_polarity"]):
            ax = axes[r][c]
            corr = arrays["best_student_corr_l1"][r, :, eval_index].ravel()
            size = arrays["fan_out_norm_l1"][r, :, eval_index].ravel()
            ax.scatter(corr, size, s=4, alpha=0.35, color="tab:blue", linewidths=0)
            ax.set_xlim(paper_axes[0], paper_axes[1])
            ax.set_ylim(paper_axes[2], y_top)
            ax.grid(alpha=0.3)
            ax.set_title(f"p={polarity:g}, {over}x", fontsize=9)
            if r == rows - 1:
                ax.set_xlabel("best teacher correlation")
            if c == 0:
                ax.set_ylabel("fan-out norm $\\|v_k\\|$")
    epoch = int(arrays_per_group[0]["eval_epochs"][eval_index])
    seeds = arrays_per_group[0]["best_student_corr_l1"].shape[1]
    fig.suptitle(f"Fig. 7: L-shape of students at epoch {epoch} ({seeds} seeds overlaid)", fontsize=11)
    return save(fig, path_prefix)


def success_by_polarity_figure(
    summary: dict, path_prefix: str | Path, early_epoch: int, min_polarity: float = 0.0
) -> list[Path]:
    """The paper's Fig. 9: :func:`success_rate_figure` restricted to teacher polarities above ``min_polarity``
    (the paper shows 0.5-2.5), dotted lines at ``early_epoch`` (the paper's 5 of 100 epochs)."""
    groups = [g for g in summary["groups"] if g["teacher_polarity"] > min_polarity]
    return success_rate_figure({**summary, "groups": groups}, path_prefix, early_epoch=early_epoch)


def loss_curves_figure(
    arrays_per_group: Sequence[dict[str, np.ndarray]],
    log_loss_mean: Sequence[np.ndarray],
    log_loss_std: Sequence[np.ndarray],
    path_prefix: str | Path,
) -> list[Path]:
    """The paper's Fig. 10: :math:`\\log_{10}` eval loss against epoch, mean +- std over seeds, one curve per teacher
    polarity, one panel per over-realization.

    Args:
      arrays_per_group: one :func:`specjax.sweep.group_arrays` dict per over-realization.
      log_loss_mean, log_loss_std: per group, ``(S, E)`` from :func:`specjax.figures.numbers.log_loss_stats`.
      path_prefix: output path without suffix.
    """
    cols = len(arrays_per_group)
    fig, axes = plt.subplots(1, cols, figsize=(3.8 * cols, 3.4), sharey=True, squeeze=False)
    cmap = plt.get_cmap("viridis")
    for ax, arrays, mean, std in zip(axes[0], arrays_per_group, log_loss_mean, log_loss_std, strict=True):
        epochs = arrays["eval_epochs"]
        polarities = arrays["teacher_polarity"]
        for s, polarity in enumerate(polarities):
            color = cmap(s / max(len(polarities) - 1, 1))
            ax.plot(epochs, mean[s], color=color, label=f"p={polarity:g}")
            ax.fill_between(epochs, mean[s] - std[s], mean[s] + std[s], color=color, alpha=0.2, linewidth=0)
        ax.set_title(f"{int(arrays['over_realization'])}x over-realization")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("log10 eval loss (MSE per output)")
    axes[0][-1].legend(fontsize=8)
    seeds = arrays_per_group[0]["eval_loss"].shape[1]
    fig.suptitle(f"Fig. 10: evaluation loss, mean +- std over {seeds} seeds", fontsize=11, y=1.03)
    return save(fig, path_prefix)
