"""Figure 13 analogue: the convolutional teacher-student experiment on real images (the paper's Fig. 13).

:func:`plot_figure13` draws the arrays that :func:`specjax.realdata.experiment.run_conv_experiment` returns: one
panel per conv layer (numbered from 1) with the mean over active teacher channels of :math:`\\max_k\\rho_{jk}`
against epoch, one line per over-realization (mean over seeds, shaded from the lowest to the highest seed), and a
last panel with eval accuracy beside the pruned teacher's.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from specjax.figures.plots import save  # noqa: E402  (a sibling module: figures draw the real-data results)


def _band(axis, epochs: np.ndarray, per_seed: np.ndarray, color, label: str) -> None:
    """Mean over seeds as a line, seed minimum to maximum as a band; ``per_seed`` is ``(seeds, evals)``."""
    axis.plot(epochs, per_seed.mean(axis=0), color=color, label=label, linewidth=1.8)
    if per_seed.shape[0] > 1:
        axis.fill_between(epochs, per_seed.min(axis=0), per_seed.max(axis=0), color=color, alpha=0.2, linewidth=0)


def plot_figure13(results: Mapping[str, np.ndarray], path_prefix: str | Path, title: str | None = None) -> list[Path]:
    """Mean best correlation per layer over epochs for each over-realization, and eval accuracy.

    Args:
      results: the dict of :func:`specjax.realdata.experiment.run_conv_experiment` (or the same arrays loaded
        from ``.npz``); uses ``epoch`` ``(E + 1,)``, ``over_realization`` ``(R,)``, ``mean_best_correlation``
        ``(R, S, E + 1, L)``, ``eval_accuracy`` ``(R, S, E + 1)``, ``kept_channels`` ``(L,)``,
        ``pruned_teacher_eval_accuracy``, ``teacher_eval_accuracy``.
      path_prefix: output path without suffix; writes ``path_prefix.png`` and ``path_prefix.pdf``.
      title: figure title; a default names the teacher's kept channels.

    Returns:
      The written paths.
    """
    epochs = np.asarray(results["epoch"])
    over_realizations = np.asarray(results["over_realization"])
    mean_best = np.asarray(results["mean_best_correlation"])
    eval_accuracy = np.asarray(results["eval_accuracy"])
    kept = np.asarray(results["kept_channels"])
    num_layers = mean_best.shape[-1]
    colors = plt.cm.viridis(np.linspace(0.0, 0.85, len(over_realizations)))

    fig, axes = plt.subplots(1, num_layers + 1, figsize=(3.6 * (num_layers + 1), 3.4), constrained_layout=True)
    for layer in range(num_layers):
        axis = axes[layer]
        for index, over_realization in enumerate(over_realizations):
            _band(axis, epochs, mean_best[index, :, :, layer], colors[index], f"{over_realization}x")
        axis.set_title(f"conv layer {layer + 1} ({kept[layer]} teacher channels)")
        axis.set_xlabel("epoch")
        axis.set_ylim(0.0, 1.0)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel(r"mean over teacher channels of $\max_k \rho_{jk}$")
    axes[0].legend(title="over-realization", loc="lower right", fontsize=8)

    axis = axes[-1]
    for index, over_realization in enumerate(over_realizations):
        _band(axis, epochs, eval_accuracy[index], colors[index], f"student {over_realization}x")
    axis.axhline(
        float(results["pruned_teacher_eval_accuracy"]),
        color="black",
        linestyle="--",
        linewidth=1.2,
        label="pruned teacher",
    )
    axis.axhline(
        float(results["teacher_eval_accuracy"]),
        color="gray",
        linestyle=":",
        linewidth=1.2,
        label="teacher before pruning",
    )
    axis.set_title("eval accuracy")
    axis.set_xlabel("epoch")
    axis.set_ylabel("accuracy (argmax vs labels)")
    axis.set_ylim(0.0, 1.0)
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right", fontsize=8)

    fig.suptitle(
        title
        or "Fig. 13 analogue: students specialize to a pruned conv teacher (lines: mean over seeds, bands: seed range)"
    )
    return save(fig, path_prefix)
