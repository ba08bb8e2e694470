"""Figures from sweep summaries and result arrays (matplotlib, Agg backend; PNG and PDF side by side, atomically)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from specjax import store  # noqa: E402
from specjax.config import SWEPT_FIELDS, setting_label, varying_fields  # noqa: E402
from specjax.core import metrics  # noqa: E402
from specjax.engine import HPARAM_LABELS as LABELS  # noqa: E402
from specjax.errors import StoreError  # noqa: E402
from specjax.sweep.schema import key  # noqa: E402

#: "Early" in every success-rate plot: the evaluation nearest this fraction of training (the paper's Fig. 9: epoch
#: 5 of 100). :func:`early_epoch` applies it; the sweep's figure and Fig. 9 both use it.
EARLY_FRACTION = 0.05


def early_epoch(eval_epochs: Sequence[int]) -> int | None:
    """The evaluated epoch nearest :data:`EARLY_FRACTION` of the last one, strictly between the first and the last
    (the earliest such epoch on a tie); ``None`` if there is none."""
    epochs = [int(e) for e in eval_epochs]
    inner = [e for e in epochs if epochs[0] < e < epochs[-1]] if epochs else []
    if not inner:
        return None
    target = EARLY_FRACTION * epochs[-1]
    return min(inner, key=lambda e: (abs(e - target), e))


def save_as(fig, path: str | Path) -> Path:
    """Writes ``fig`` to ``path`` (format from its suffix) atomically (:func:`specjax.store.atomic_write`: a
    temporary file in the same folder, renamed; permissions from the umask, like every file specjax writes).

    Raises:
      StoreError: the file cannot be written (names it).
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(f"{path.parent}: cannot create the folder ({e.strerror or e})") from None
    store.atomic_write(path, lambda f: fig.savefig(f, format=fmt, dpi=130, bbox_inches="tight"))
    return path


def save(fig, path_prefix: str | Path, formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Saves ``fig`` as ``path_prefix.png`` and ``.pdf`` (each atomically, :func:`save_as`); closes it; returns the
    paths."""
    path_prefix = Path(path_prefix)
    try:
        return [save_as(fig, path_prefix.parent / f"{path_prefix.name}.{fmt}") for fmt in formats]
    finally:
        plt.close(fig)


#: Markers cycled over the curves of one panel, so curves that coincide (all nodes covered, say) stay visible.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")


def success_rate_figure(summary: dict, path_prefix: str | Path) -> list[Path]:
    """The paper's Fig. 9 layout: success rate per teacher node (0 = strongest), one panel per over-realization.

    Solid lines: last evaluation, with a shaded band for its Wilson interval (``success_rate_ci_low/high`` of the
    summary, at ``summary['confidence']``; absent from summaries written before the intervals were added); dotted:
    the early evaluation, :func:`early_epoch` (if any). Curves of one panel get their own marker and a small
    horizontal offset, so a curve lying on another (at success 1, say) stays visible.

    Args:
      summary: ``summary.json`` content from :func:`specjax.sweep.summarize`.
      path_prefix: output path without suffix.
    """
    groups = summary["groups"]
    overs = sorted({g["over_realization"] for g in groups})
    epochs = [int(e) for e in summary["eval_epochs"]]
    first = early_epoch(epochs)
    early = None if first is None else epochs.index(first)
    varying = varying_fields(groups)
    fig, axes = plt.subplots(1, len(overs), figsize=(4.2 * len(overs), 3.6), sharey=True, squeeze=False)
    cmap = plt.get_cmap("viridis")
    banded = False
    for ax, over in zip(axes[0], overs, strict=True):
        sel = [g for g in groups if g["over_realization"] == over]
        spread = min(0.3, 0.6 / max(len(sel), 1))  # total offset across the panel's curves, in node units
        for i, g in enumerate(sel):
            color = cmap(0.85 * i / max(len(sel) - 1, 1))  # viridis without its pale yellow end
            rate = np.asarray(g["success_rate"], float)
            x = np.arange(rate.size) + (i - (len(sel) - 1) / 2) * spread / max(len(sel) - 1, 1)
            marker = MARKERS[i % len(MARKERS)]
            label = setting_label(g, varying)
            ax.plot(x, rate, "-", marker=marker, ms=4, mfc="white", mew=1.0, lw=1.2, color=color, label=label)
            if "success_rate_ci_low" in g:
                low = np.asarray(g["success_rate_ci_low"], float)
                high = np.asarray(g["success_rate_ci_high"], float)
                ax.fill_between(x, low, high, color=color, alpha=0.1, linewidth=0)
                banded = True
            if early is not None:
                ax.plot(x, np.asarray(g["success_rate_by_eval"][early], float), ":", color=color)
        ax.set_title(f"{over}x over-realization ({sel[0]['seeds']} seeds)")
        ax.set_xlabel("teacher node (0 = strongest)")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"success rate (best corr > {summary['threshold']})")
    axes[0][-1].legend(fontsize=8, loc="lower left")
    note = f"solid: epoch {epochs[-1]}" + (f", dotted: epoch {epochs[early]}" if early is not None else "")
    if banded:
        note += f"; bands: {summary.get('confidence', metrics.CONFIDENCE):.0%} Wilson interval"
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
    """The paper's Fig. 7: each student's best teacher correlation vs its fan-out norm, all seeds overlaid, one
    colour per seed.

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
    corr_key, fan_out_key = key("best_student_corr", 1), key("fan_out_norm", 1)
    y_top = max(paper_axes[3], *(1.05 * float(a[fan_out_key][:, :, eval_index].max()) for a in arrays_per_group))
    seeds = arrays_per_group[0][corr_key].shape[1]
    cmap = plt.get_cmap("tab10" if seeds <= 10 else "turbo")
    colors = [cmap(i if seeds <= 10 else i / max(seeds - 1, 1)) for i in range(seeds)]
    for c, arrays in enumerate(arrays_per_group):
        over = int(arrays["over_realization"])
        for r, polarity in enumerate(arrays["teacher_polarity"]):
            ax = axes[r][c]
            for seed in range(seeds):
                corr = arrays[corr_key][r, seed, eval_index]
                size = arrays[fan_out_key][r, seed, eval_index]
                ax.scatter(corr, size, s=5, alpha=0.5, color=colors[seed], linewidths=0)
            ax.set_xlim(paper_axes[0], paper_axes[1])
            ax.set_ylim(paper_axes[2], y_top)
            ax.grid(alpha=0.3)
            ax.set_title(f"p={polarity:g}, {over}x", fontsize=9)
            if r == rows - 1:
                ax.set_xlabel("best teacher correlation")
            if c == 0:
                ax.set_ylabel("fan-out norm $\\|v_k\\|$")
    epoch = int(arrays_per_group[0]["eval_epochs"][eval_index])
    fig.suptitle(f"Fig. 7: L-shape of students at epoch {epoch} ({seeds} seeds overlaid, one colour each)", fontsize=11)
    return save(fig, path_prefix)


def success_by_polarity_figure(summary: dict, path_prefix: str | Path, min_polarity: float = 0.0) -> list[Path]:
    """The paper's Fig. 9: :func:`success_rate_figure` restricted to teacher polarities above ``min_polarity``
    (the paper shows 0.5-2.5), dotted lines at :func:`early_epoch` (the paper's 5 of 100 epochs)."""
    groups = [g for g in summary["groups"] if g["teacher_polarity"] > min_polarity]
    return success_rate_figure({**summary, "groups": groups}, path_prefix)


def loss_curves_figure(
    arrays_per_group: Sequence[dict[str, np.ndarray]],
    log_mse_mean: Sequence[np.ndarray],
    log_mse_std: Sequence[np.ndarray],
    path_prefix: str | Path,
) -> list[Path]:
    """The paper's Fig. 10: :math:`\\log_{10}` eval MSE (``eval_mse``, mean over samples and outputs, the reference
    code's logged loss) against epoch, mean +- std over seeds, one curve per setting (labelled by the swept fields
    that vary), one panel per over-realization.

    Args:
      arrays_per_group: one :func:`specjax.sweep.group_arrays` dict per over-realization.
      log_mse_mean, log_mse_std: per group, ``(S, E)`` from :func:`specjax.figures.numbers.log_mse_stats`.
      path_prefix: output path without suffix.
    """
    cols = len(arrays_per_group)
    fig, axes = plt.subplots(1, cols, figsize=(3.8 * cols, 3.4), sharey=True, squeeze=False)
    cmap = plt.get_cmap("viridis")
    for ax, arrays, mean, std in zip(axes[0], arrays_per_group, log_mse_mean, log_mse_std, strict=True):
        epochs = arrays["eval_epochs"]
        polarities = arrays["teacher_polarity"]
        varying = [f for f in SWEPT_FIELDS if len(set(np.asarray(arrays[f]).tolist())) > 1] or ["teacher_polarity"]
        for s in range(len(polarities)):
            color = cmap(0.85 * s / max(len(polarities) - 1, 1))
            label = ", ".join(f"{LABELS[f]}={float(arrays[f][s]):g}" for f in varying)
            ax.plot(epochs, mean[s], color=color, label=label)
            ax.fill_between(epochs, mean[s] - std[s], mean[s] + std[s], color=color, alpha=0.2, linewidth=0)
        ax.set_title(f"{int(arrays['over_realization'])}x over-realization")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("log10 eval MSE (mean over samples, outputs)")
    axes[0][-1].legend(fontsize=8)
    seeds = arrays_per_group[0]["eval_mse"].shape[1]
    fig.suptitle(f"Fig. 10: evaluation MSE, mean +- std over {seeds} seeds", fontsize=11, y=1.03)
    return save(fig, path_prefix)
