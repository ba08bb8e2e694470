"""Figures of training dynamics: deep L-shape (Fig. 8), focus shifting (Fig. 11), strong teachers first (Fig. 12).

Also SGD next to the exact population flow.

Every function takes NumPy arrays already reduced by :mod:`specjax.figures.numbers` (or a sweep's result arrays), draws
one matplotlib figure, and writes it with :func:`specjax.figures.plots.save` (PNG and PDF side by side).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colors as mcolors

from specjax.core.metrics import MATCH_THRESHOLD
from specjax.figures.plots import save


def deep_l_shape_figure(
    points: dict[str, np.ndarray], path_prefix: str | Path, show_epochs: Sequence[int] | None = None
) -> list[Path]:
    """The paper's Fig. 8: per hidden layer (rows) and epoch (columns), each student's best teacher correlation vs
    :math:`\\sqrt{\\mathbb E_x\\beta_{kk}}`.

    Args:
      points: :func:`specjax.figures.numbers.deep_l_shape` output: ``epochs (P,)``, ``best_corr_l{l}`` and
        ``fan_out_l{l}`` of shape ``(P, n_l)``.
      path_prefix: output path without suffix.
      show_epochs: which snapshot epochs to show (default: all).
    """
    epochs = [int(e) for e in points["epochs"]]
    shown = [e for e in (show_epochs or epochs) if e in epochs]
    layers = sum(1 for k in points if k.startswith("best_corr_l"))
    fig, axes = plt.subplots(layers, len(shown), figsize=(2.3 * len(shown), 2.0 * layers), squeeze=False)
    for l in range(1, layers + 1):
        y_top = 1.05 * float(points[f"fan_out_l{l}"].max())
        for c, epoch in enumerate(shown):
            p = epochs.index(epoch)
            ax = axes[l - 1][c]
            ax.scatter(points[f"best_corr_l{l}"][p], points[f"fan_out_l{l}"][p], s=3, alpha=0.4, linewidths=0)
            ax.set_xlim(0, 1.05)
            ax.set_ylim(-0.03 * y_top, y_top)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=7)
            if l == 1:
                ax.set_title(f"epoch {epoch}", fontsize=9)
            if c == 0:
                ax.set_ylabel(f"layer {l}\n" + r"$\sqrt{E_x\beta_{kk}}$", fontsize=8)
            if l == layers:
                ax.set_xlabel("best teacher corr.", fontsize=8)
    fig.suptitle("Fig. 8: deep student, specialization vs effective fan-out per layer (layer 1 = lowest)", fontsize=10)
    return save(fig, path_prefix)


def _strength_colors(strength: np.ndarray, cmap_name: str = "plasma_r"):
    """A colour per teacher from its fan-out norm (strong = dark), and the matching ScalarMappable.

    The colour scale is logarithmic in the strength: at teacher polarity p the fan-out norms fall like
    :math:`j^{-p}` (Eqn 13), so on a linear scale every weak node would get the same colour (tested distinct).
    """
    low, high = float(strength.min()), float(strength.max())
    if low > 0 and high > low:
        norm = mcolors.LogNorm(vmin=low, vmax=high)
    else:
        norm = mcolors.Normalize(vmin=low, vmax=high if high > low else low + 1)
    # Without the palest 12 % of the map, whose yellows vanish against a white background.
    cmap = mcolors.ListedColormap(plt.get_cmap(cmap_name)(np.linspace(0.12, 1.0, 256)))
    return [cmap(norm(s)) for s in strength], plt.cm.ScalarMappable(norm=norm, cmap=cmap)


def focus_shift_figure(
    corr: np.ndarray,
    epochs: np.ndarray,
    strength: np.ndarray,
    shifts: Sequence[Sequence[dict]],
    steps_per_epoch: int,
    path_prefix: str | Path,
) -> list[Path]:
    """The paper's Fig. 11: one panel per teacher node, each student's correlation to it over iterations, one colour
    per student; one row per seed.

    Columns are the seed's teacher nodes, strongest first (by fan-out norm :math:`\\|v^*_j\\|`, in the title). A
    student that shifts its focus (:func:`specjax.figures.numbers.focus_shifts`) is drawn thick, and the legend says
    from which teacher to which.

    Args:
      corr: ``(N, E, m, n)`` correlation matrices at every evaluation (``record_corr='all'``).
      epochs: ``(E,)`` evaluation epochs.
      strength: ``(N, m)`` teacher fan-out norms.
      shifts: per seed, :func:`specjax.figures.numbers.focus_shifts` output.
      steps_per_epoch: converts epochs to iterations on the x-axis.
      path_prefix: output path without suffix.
    """
    seeds, _, m, n = corr.shape
    fig, axes = plt.subplots(
        seeds, m, figsize=(2.0 * m + 1.4, 1.7 * seeds + 0.6), sharex=True, sharey=True, squeeze=False
    )
    iters = np.maximum(np.asarray(epochs) * steps_per_epoch, 1)
    cmap = plt.get_cmap("tab10" if n <= 10 else "turbo")
    colors = [cmap(k if n <= 10 else k / max(n - 1, 1)) for k in range(n)]
    for seed in range(seeds):
        shifting = {s["student"]: s for s in shifts[seed]}
        for col, j in enumerate(np.argsort(-strength[seed])):
            ax = axes[seed][col]
            for k in range(n):
                if k in shifting:
                    s = shifting[k]
                    label = f"student {k}: t{s['from_teacher']}\u2192t{s['to_teacher']}"
                    ax.plot(iters, corr[seed, :, j, k], color=colors[k], lw=2.2, label=label)
                else:
                    ax.plot(iters, corr[seed, :, j, k], color=colors[k], lw=0.9, alpha=0.8, label=f"student {k}")
            ax.set_xscale("log")
            ax.set_ylim(-0.3, 1.05)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=6)
            ax.set_title(f"teacher {j} ($\\|v^*\\|$={strength[seed, j]:.2f})", fontsize=7)
            if col == 0:
                ax.set_ylabel(f"seed {seed}\ncorrelation", fontsize=7)
            if seed == seeds - 1:
                ax.set_xlabel("iteration", fontsize=7)
        axes[seed][-1].legend(fontsize=5, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    fig.suptitle(
        "Fig. 11: correlation of each student (colour) to each teacher node (panel, strongest left); "
        "thick: focus shift",
        fontsize=9,
    )
    return save(fig, path_prefix)


def teacher_progress_figure(
    best_teacher_corr: np.ndarray,
    strength: np.ndarray,
    epochs: np.ndarray,
    first_epoch: np.ndarray,
    polarities: Sequence[float],
    steps_per_epoch: int,
    path_prefix: str | Path,
    threshold: float = MATCH_THRESHOLD,
) -> list[Path]:
    """The paper's Fig. 12: every teacher's best correlation over iterations, coloured by teacher strength.

    Left column: seed 0's curves per polarity; right column: the iteration at which each teacher's best correlation
    first exceeds ``threshold`` against its strength, all seeds (teachers never matched drawn at the top edge).

    Args:
      best_teacher_corr: ``(S, N, E, m)``.
      strength: ``(S, N, m)`` teacher fan-out norms.
      epochs: ``(E,)``.
      first_epoch: ``(S, N, m)`` from :func:`specjax.figures.numbers.first_epoch_above` (``inf`` = never).
      polarities: ``(S,)`` teacher polarity of each setting.
      steps_per_epoch: converts epochs to iterations.
      path_prefix: output path without suffix.
    """
    settings = best_teacher_corr.shape[0]
    fig, axes = plt.subplots(settings, 2, figsize=(9.5, 3.2 * settings), squeeze=False)
    iters = np.maximum(np.asarray(epochs) * steps_per_epoch, 1)
    never = float(iters[-1]) * 1.5
    for s in range(settings):
        ax = axes[s][0]
        colors, mappable = _strength_colors(strength[s, 0])
        for j in np.argsort(-strength[s, 0]):
            ax.plot(iters, best_teacher_corr[s, 0, :, j], color=colors[j], lw=1.1)
        ax.set_xscale("log")
        ax.set_ylim(-0.05, 1.05)
        ax.axhline(threshold, color="gray", ls=":", lw=0.8)
        ax.set_xlabel("iteration")
        ax.set_ylabel("best correlation of teacher $j$")
        ax.set_title(f"p={polarities[s]:g}, seed 0 (colour: teacher strength)", fontsize=9)
        ax.grid(alpha=0.3)
        fig.colorbar(mappable, ax=ax, pad=0.01).set_label("$\\|v^*_j\\|$", fontsize=8)
        ax = axes[s][1]
        times = np.where(np.isfinite(first_epoch[s]), np.maximum(first_epoch[s] * steps_per_epoch, 1), never)
        ax.scatter(strength[s].ravel(), times.ravel(), s=10, alpha=0.6, linewidths=0)
        ax.set_yscale("log")
        ax.axhline(never, color="gray", ls=":", lw=0.8)
        ax.set_xlabel("teacher fan-out norm $\\|v^*_j\\|$")
        ax.set_ylabel(f"first iteration with corr > {threshold}")
        ax.set_title(f"p={polarities[s]:g}, all {strength.shape[1]} seeds (top line: never)", fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle("Fig. 12: strong teachers are learned first", fontsize=11)
    fig.tight_layout()
    return save(fig, path_prefix)


def population_figure(
    time: np.ndarray,
    sgd_loss: np.ndarray,
    flow_loss: np.ndarray,
    sgd_best_cos: np.ndarray,
    flow_best_cos: np.ndarray,
    path_prefix: str | Path,
) -> list[Path]:
    """SGD on finite data vs the exact population gradient flow from the same initial student.

    Left: population loss of both, every seed. Right: seed 0, for every teacher, the best cosine
    :math:`\\max_k\\cos\\angle(w_k,w^*_j)` (solid: SGD, dashed: flow).

    Args:
      time: ``(T,)`` gradient-flow time :math:`t=\\eta\\cdot\\text{steps}`.
      sgd_loss, flow_loss: ``(N, T)``.
      sgd_best_cos, flow_best_cos: ``(N, T, m)``.
      path_prefix: output path without suffix.
    """
    fig, (ax_loss, ax_cos) = plt.subplots(1, 2, figsize=(10, 3.8))
    t = np.maximum(time, time[1] / 2 if time.size > 1 else 1.0)
    for seed in range(sgd_loss.shape[0]):
        label = seed == 0
        ax_loss.plot(t, sgd_loss[seed], color="tab:blue", lw=1, alpha=0.8, label="SGD" if label else None)
        ax_loss.plot(t, flow_loss[seed], color="tab:orange", lw=1, ls="--", label="population flow" if label else None)
    ax_loss.set_xscale("log")
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("time $t=\\eta\\cdot$steps")
    ax_loss.set_ylabel("population loss $J$")
    ax_loss.set_title(f"loss, {sgd_loss.shape[0]} seeds", fontsize=9)
    ax_loss.grid(alpha=0.3)
    ax_loss.legend(fontsize=8)
    m = sgd_best_cos.shape[-1]
    cmap = plt.get_cmap("plasma")
    for j in range(m):
        color = cmap(j / max(m - 1, 1) * 0.85)
        ax_cos.plot(t, sgd_best_cos[0, :, j], color=color, lw=1.2, label=f"teacher {j}")
        ax_cos.plot(t, flow_best_cos[0, :, j], color=color, lw=1.2, ls="--")
    ax_cos.set_xscale("log")
    ax_cos.set_ylim(-0.05, 1.02)
    ax_cos.set_xlabel("time $t=\\eta\\cdot$steps")
    ax_cos.set_ylabel("best cosine to teacher $j$")
    ax_cos.set_title("seed 0 (solid: SGD, dashed: flow; 0 = strongest)", fontsize=9)
    ax_cos.grid(alpha=0.3)
    ax_cos.legend(fontsize=7, ncol=2)
    fig.suptitle("SGD vs exact population gradient flow from the same initial student", fontsize=11)
    fig.tight_layout()
    return save(fig, path_prefix)
