"""Each paper figure's numbers and plot: the two functions a row of :data:`specjax.figures.table.FIGURES` names.

For a figure, the row's driver (:mod:`specjax.figures.cache`: ``sweep_results``, ``population_results``,
``conv_results``) computes or loads the results; then

* ``<figure>_numbers(cfg, results) -> (numbers, data)`` reduces them with :mod:`specjax.figures.numbers` into the
  numbers behind the figure (a JSON-able dict) and the figure's own typed record (:class:`LShapeData`,
  :class:`SuccessData`, ...);
* ``<figure>_plot(data, cfg, prefix) -> paths`` draws ``prefix.png``/``.pdf`` from that record.

:func:`specjax.figures.make.make_figure` names and checks the outputs, runs the three and writes the numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import ml_collections
import numpy as np

from specjax.core.metrics import DEEP_MATCH_THRESHOLD, MATCH_THRESHOLD
from specjax.figures import numbers as figure_numbers
from specjax.sweep.schema import key

#: The population figure's "matched": best cosine between a student's and the teacher's weight vectors above this.
POPULATION_MATCH_COS = 0.99


class LShapeData(NamedTuple):
    """Fig. 7: the sweep's arrays, one dict per over-realization."""

    arrays: list[dict[str, np.ndarray]]


class SuccessData(NamedTuple):
    """Fig. 9: the sweep's arrays and summary, and the early epoch of the dotted lines."""

    arrays: list[dict[str, np.ndarray]]
    summary: dict
    early_epoch: int | None


class LossData(NamedTuple):
    """Fig. 10: per over-realization, ``(S, E)`` mean and std over seeds of :math:`\\log_{10}` ``eval_mse``."""

    arrays: list[dict[str, np.ndarray]]
    log_mse_mean: list[np.ndarray]
    log_mse_std: list[np.ndarray]


class FocusData(NamedTuple):
    """Fig. 11: ``corr (N, E, m, n)``, ``epochs (E,)``, ``strength (N, m)``, focus shifts per seed."""

    corr: np.ndarray
    epochs: np.ndarray
    strength: np.ndarray
    shifts: list[list[dict]]


class ProgressData(NamedTuple):
    """Fig. 12: ``best (S, N, E, m)``, ``strength (S, N, m)``, ``epochs (E,)``, ``first_epoch (S, N, m)``."""

    best: np.ndarray
    strength: np.ndarray
    epochs: np.ndarray
    first_epoch: np.ndarray
    polarities: list[float]


class DeepLShapeData(NamedTuple):
    """Fig. 8: :func:`specjax.figures.numbers.deep_l_shape` points, the arrays, matched fractions ``(P, layers)``."""

    points: dict[str, np.ndarray]
    arrays: list[dict[str, np.ndarray]]
    success: np.ndarray


class PopulationData(NamedTuple):
    """SGD vs population flow: the results, and best cosines ``(N, T, m)`` of both."""

    results: dict[str, np.ndarray]
    sgd_best_cos: np.ndarray
    flow_best_cos: np.ndarray


class ConvData(NamedTuple):
    """Fig. 13: :func:`specjax.realdata.experiment.run_conv_experiment`'s arrays."""

    results: dict[str, np.ndarray]


def _rounded(values, digits: int = 4) -> list:
    return [round(float(v), digits) for v in np.asarray(values).ravel()]


def _over(arrays: dict[str, np.ndarray]) -> str:
    return f"{int(arrays['over_realization'])}x"


def fig7_numbers(cfg: ml_collections.ConfigDict, result) -> tuple[dict, LShapeData]:
    """Fig. 7, the L-shape: L-shape statistics of every student's best teacher correlation vs its fan-out norm, per
    polarity and width (final epoch)."""
    arrays = result.arrays
    corr, fan_out = key("best_student_corr", 1), key("fan_out_norm", 1)
    stats = {
        _over(a): {
            f"p={p:g}": figure_numbers.l_shape_stats(a[corr][s, :, -1], a[fan_out][s, :, -1])
            for s, p in enumerate(a["teacher_polarity"])
        }
        for a in arrays
    }
    return {"l_shape": stats}, LShapeData(arrays)


def fig7_plot(data: LShapeData, cfg: ml_collections.ConfigDict, prefix: Path) -> list[Path]:
    from specjax.figures import plots

    return plots.l_shape_figure(data.arrays, prefix)


def fig9_numbers(cfg: ml_collections.ConfigDict, result) -> tuple[dict, SuccessData]:
    """Fig. 9: success rate per teacher node at the end and early (:func:`specjax.figures.plots.early_epoch`)."""
    from specjax.figures import plots

    arrays, summary = result.arrays, result.summary
    early = plots.early_epoch(arrays[0]["eval_epochs"])
    early_index = 0 if early is None else int(np.searchsorted(arrays[0]["eval_epochs"], early))
    table = {}
    for a in arrays:
        final, first = figure_numbers.success_table(a), figure_numbers.success_table(a, early_index)
        table[_over(a)] = {
            f"p={p:g}": {
                "final": _rounded(final[s], 3),
                "early": _rounded(first[s], 3),
                "mean_final": round(float(np.nanmean(final[s])), 3),
                "mean_early": round(float(np.nanmean(first[s])), 3),
            }
            for s, p in enumerate(a["teacher_polarity"])
        }
    numbers = {"early_epoch": early, "final_epoch": int(cfg.epochs), "seeds": cfg.seeds, "success_rate": table}
    return numbers, SuccessData(arrays, summary, early)


def fig9_plot(data: SuccessData, cfg: ml_collections.ConfigDict, prefix: Path) -> list[Path]:
    from specjax.figures import plots

    return plots.success_by_polarity_figure(data.summary, prefix)


def fig10_numbers(cfg: ml_collections.ConfigDict, result) -> tuple[dict, LossData]:
    """Fig. 10: :math:`\\log_{10}` of ``eval_mse`` (mean over samples and outputs) over epochs."""
    arrays = result.arrays
    stats = [figure_numbers.log_mse_stats(a) for a in arrays]
    means, stds = [s[0] for s in stats], [s[1] for s in stats]
    table = {
        _over(a): {
            f"p={p:g}": {
                "log10_mse_initial": round(float(mean[s, 0]), 3),
                "log10_mse_final": round(float(mean[s, -1]), 3),
                "log10_mse_final_std": round(float(std[s, -1]), 3),
            }
            for s, p in enumerate(a["teacher_polarity"])
        }
        for a, mean, std in zip(arrays, means, stds, strict=True)
    }
    numbers = {"eval_mse": table, "convention": "eval_mse: mean over samples and outputs (reference's logged loss)"}
    return numbers, LossData(arrays, means, stds)


def fig10_plot(data: LossData, cfg: ml_collections.ConfigDict, prefix: Path) -> list[Path]:
    from specjax.figures import plots

    return plots.loss_curves_figure(data.arrays, data.log_mse_mean, data.log_mse_std, prefix)


def fig11_numbers(cfg: ml_collections.ConfigDict, result) -> tuple[dict, FocusData]:
    """Fig. 11, focus shifting: each student's correlation to each teacher node over iterations."""
    a = result.arrays[0]
    corr, epochs = a[key("corr", 1)][0], a["corr_epochs"]  # (N, E, m, n)
    strength = figure_numbers.teacher_strength(a)[0]
    shifts = [figure_numbers.focus_shifts(corr[n], epochs) for n in range(corr.shape[0])]
    for seed_shifts in shifts:
        for s in seed_shifts:
            s["iteration_left"] = int(s["epoch_left"] * cfg.steps_per_epoch)
    numbers = {
        "focus_shifts": figure_numbers.summarize_focus_shifts(shifts, strength),
        "shifts_per_seed": shifts,
        "teacher_strength": [_rounded(s, 3) for s in strength],
        "final_best_teacher_corr": [_rounded(b, 3) for b in a[key("best_teacher_corr", 1)][0, :, -1]],
    }
    return numbers, FocusData(corr, epochs, strength, shifts)


def fig11_plot(data: FocusData, cfg: ml_collections.ConfigDict, prefix: Path) -> list[Path]:
    from specjax.figures import plots_dynamics

    return plots_dynamics.focus_shift_figure(
        data.corr, data.epochs, data.strength, data.shifts, cfg.steps_per_epoch, prefix
    )


def fig12_numbers(cfg: ml_collections.ConfigDict, result) -> tuple[dict, ProgressData]:
    """Fig. 12, strong teachers first: each teacher's best correlation over iterations against its strength."""
    a = result.arrays[0]
    best, epochs = a[key("best_teacher_corr", 1)], a["eval_epochs"]  # (S, N, E, m)
    strength = figure_numbers.teacher_strength(a)  # (S, N, m)
    first = figure_numbers.first_epoch_above(best, epochs, MATCH_THRESHOLD)
    polarities = [float(p) for p in a["teacher_polarity"]]
    group = max(1, cfg.m // 4)
    numbers = {
        "threshold": MATCH_THRESHOLD,
        "group": group,
        "steps_per_epoch": cfg.steps_per_epoch,
        "order": {
            f"p={p:g}": figure_numbers.strength_order_stats(best[s], strength[s], epochs, MATCH_THRESHOLD, group)
            for s, p in enumerate(polarities)
        },
    }
    return numbers, ProgressData(best, strength, epochs, first, polarities)


def fig12_plot(data: ProgressData, cfg: ml_collections.ConfigDict, prefix: Path) -> list[Path]:
    from specjax.figures import plots_dynamics

    return plots_dynamics.teacher_progress_figure(
        data.best, data.strength, data.epochs, data.first_epoch, data.polarities, cfg.steps_per_epoch, prefix,
        MATCH_THRESHOLD,
    )  # fmt: skip


def fig8_numbers(cfg: ml_collections.ConfigDict, result) -> tuple[dict, DeepLShapeData]:
    """Fig. 8, the deep L-shape: per layer, best correlation vs :math:`\\sqrt{\\mathbb E_x\\beta_{kk}}` per epoch."""
    arrays = result.arrays
    a = arrays[0]
    samples = min(1024, cfg.n_eval)
    points = figure_numbers.deep_l_shape(cfg, a, samples=samples)
    layers = len(cfg.teacher_widths)
    epochs = [int(e) for e in points["epochs"]]
    success = figure_numbers.layer_success_by_snapshot(a)
    at = {e: int(np.searchsorted(a["eval_epochs"], e)) for e in epochs}
    layer_numbers = range(1, layers + 1)
    numbers = {
        "snapshot_epochs": epochs,
        "beta_samples": samples,
        f"teacher_matched_{DEEP_MATCH_THRESHOLD:g}": {
            f"epoch {e}": _rounded(success[p], 3) for p, e in enumerate(epochs)
        },
        "mean_best_teacher_corr": {
            f"epoch {e}": _rounded([a[key("best_teacher_corr", l)][0, :, at[e]].mean() for l in layer_numbers], 3)
            for e in epochs
        },
        "l_shape_final": {
            f"layer {l}": figure_numbers.l_shape_stats(points[f"best_corr_l{l}"][-1], points[f"fan_out_l{l}"][-1])
            for l in layer_numbers
        },
    }
    return numbers, DeepLShapeData(points, arrays, success)


def fig8_plot(data: DeepLShapeData, cfg: ml_collections.ConfigDict, prefix: Path) -> list[Path]:
    from specjax.figures import plots_dynamics

    return plots_dynamics.deep_l_shape_figure(data.points, prefix)


def _within_seed_rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman correlation of two ``(N, m)`` arrays after ranking each seed's row separately (``inf`` last)."""

    def ranks(x):
        return np.argsort(np.argsort(x, axis=-1, kind="stable"), axis=-1, kind="stable").ravel()

    return round(figure_numbers.rank_correlation(ranks(a), ranks(b)), 3)


def population_numbers(cfg: ml_collections.ConfigDict, results: dict) -> tuple[dict, PopulationData]:
    """SGD on finite data next to the exact population gradient flow from the same initial student."""
    sgd_cos, flow_cos = np.cos(results["sgd_angles"]).max(axis=-2), np.cos(results["flow_angles"]).max(axis=-2)
    same_best = results["sgd_angles"][:, -1].argmin(axis=-2) == results["flow_angles"][:, -1].argmin(axis=-2)
    sgd_match = figure_numbers.first_epoch_above(sgd_cos, results["time"], POPULATION_MATCH_COS)  # (N, m) times
    flow_match = figure_numbers.first_epoch_above(flow_cos, results["time"], POPULATION_MATCH_COS)
    numbers = {
        "time_final": float(results["time"][-1]),
        "loss_initial": _rounded(results["sgd_loss"][:, 0], 4),
        "sgd_loss_final": [float(f"{v:.3e}") for v in results["sgd_loss"][:, -1]],
        "flow_loss_final": [float(f"{v:.3e}") for v in results["flow_loss"][:, -1]],
        "max_abs_best_cos_gap": round(float(np.abs(sgd_cos - flow_cos).max()), 4),
        "final_best_cos_sgd": [_rounded(c, 3) for c in sgd_cos[:, -1]],
        "final_best_cos_flow": [_rounded(c, 3) for c in flow_cos[:, -1]],
        "same_best_student_fraction": round(float(same_best.mean()), 3),
        "match_time_rank_correlation": _within_seed_rank_correlation(sgd_match, flow_match),
        "match_cos": POPULATION_MATCH_COS,
        "match_time_sgd": [_rounded(t, 2) for t in sgd_match],
        "match_time_flow": [_rounded(t, 2) for t in flow_match],
        "teacher_strength": [_rounded(s, 3) for s in results["teacher_strength"]],
    }
    return numbers, PopulationData(results, sgd_cos, flow_cos)


def population_plot(data: PopulationData, cfg: ml_collections.ConfigDict, prefix: Path) -> list[Path]:
    from specjax.figures import plots_dynamics

    r = data.results
    return plots_dynamics.population_figure(
        r["time"], r["sgd_loss"], r["flow_loss"], data.sgd_best_cos, data.flow_best_cos, prefix
    )


def fig13_numbers(cfg: ml_collections.ConfigDict, results: dict) -> tuple[dict, ConvData]:
    """Fig. 13 (real data), from :func:`specjax.realdata.experiment.run_conv_experiment`'s arrays."""
    last = results["mean_best_correlation"][:, :, -1]  # (R, S, L)
    overs = [f"{int(r)}x" for r in results["over_realization"]]
    numbers = {
        "dataset": cfg.dataset,
        "over_realization": _rounded(results["over_realization"], 0),
        "kept_channels": _rounded(results["kept_channels"], 0),
        "final_mean_best_correlation_per_layer": {r: _rounded(last[i].mean(axis=0), 3) for i, r in enumerate(overs)},
        "final_eval_accuracy": {
            r: round(float(results["eval_accuracy"][i, :, -1].mean()), 4) for i, r in enumerate(overs)
        },
        "teacher_eval_accuracy": float(results["teacher_eval_accuracy"]),
        "pruned_teacher_eval_accuracy": float(results["pruned_teacher_eval_accuracy"]),
    }
    return numbers, ConvData(results)


def fig13_plot(data: ConvData, cfg: ml_collections.ConfigDict, prefix: Path) -> list[Path]:
    from specjax.figures import plots_conv

    return [Path(p) for p in plots_conv.plot_figure13(data.results, prefix)]
