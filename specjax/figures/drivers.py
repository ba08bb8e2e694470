"""The paper's figures, one command each: ``python -m specjax.figures --figure=N --workdir=DIR [--scale=small]``.

For each figure (7, 8, 9, 10, 11, 12, 13, population) a driver gets its results from :mod:`specjax.figures.cache`
(the config ``experiments/configs/<name>.py:<scale>``; its sweep run through :func:`specjax.sweep.run_sweep`, or the
population / real-data experiment, unless finished results are already in ``DIR/<name>-<scale>/``; an interrupted
sweep resumes), reduces the arrays with :mod:`specjax.figures.numbers`, and draws the figure with :mod:`specjax.figures.plots`,
:mod:`specjax.figures.plots_dynamics` or :mod:`specjax.realdata.plot`:

* ``DIR/fig<N>.png`` and ``.pdf``: the figure;
* ``DIR/fig<N>.json``: the numbers behind it (the paper's claim in figures: success rates, L-shape statistics, ...);
* ``DIR/<name>-<scale>/``: the sweep (``config.json``, ``results/``, ``summary.json``) and ``timing.json`` (wall
  seconds spent computing it, summed over resumptions).

Figures 9 and 10 share one sweep (``fig9_10``). Scales: ``test`` (seconds; the test suite), ``small`` (minutes on 2
CPU cores), ``paper`` (the paper's settings, THEORY.md section 7). Research code calls :func:`make_figure`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import ml_collections
import numpy as np

from specjax import store
from specjax.figures.cache import (
    SCALES,
    FigureError,
    ProgressFn,
    conv_results,
    jsonable,
    load_config,
    population_results,
    sweep_results,
)

__all__ = ["FIGURES", "SCALES", "FigureError", "FigureOutput", "load_config", "make_figure"]

FIGURES = ("7", "8", "9", "10", "11", "12", "13", "population")
#: The experiment config file (in ``experiments/configs/``) behind each figure.
CONFIG_NAMES = {
    "7": "fig7",
    "8": "fig8",
    "9": "fig9_10",
    "10": "fig9_10",
    "11": "fig11",
    "12": "fig12",
    "13": "fig13",
    "population": "fig_population",
}
#: Fig. 9's early curve is at this fraction of training (the paper: epoch 5 of 100).
EARLY_FRACTION = 0.05
#: Fig. 12's "matched" threshold (the paper's success criterion).
MATCH_THRESHOLD = 0.95
#: The population figure's "matched": best cosine between a student's and the teacher's weight vectors above this.
POPULATION_MATCH_COS = 0.99


@dataclasses.dataclass
class FigureOutput:
    """What :func:`make_figure` returns.

    Attributes:
      figure: figure name (``'7'`` ... ``'population'``).
      scale: ``'test'``, ``'small'`` or ``'paper'``.
      paths: the PNG and PDF written.
      numbers: the numbers behind the figure (also in ``DIR/fig<N>.json``).
      data: the reduced arrays the figure shows (for tests and research code); not written.
      compute_seconds: wall seconds spent computing its results (summed over resumptions), ``None`` if unknown.
      computed_now: whether this call trained anything.
    """

    figure: str
    scale: str
    paths: list[Path]
    numbers: dict
    data: dict
    compute_seconds: float | None
    computed_now: bool


# ----------------------------------------------------------------------------------------------------------------
# Configs and cached results.


def _rounded(values, digits: int = 4) -> list:
    return [round(float(v), digits) for v in np.asarray(values).ravel()]


# ----------------------------------------------------------------------------------------------------------------
# One driver per figure: (cfg, workdir, directory, progress) -> (paths, numbers, data, seconds, computed_now).


def _figure7(cfg, workdir: Path, directory: Path, progress: ProgressFn):
    from specjax.figures import numbers as figure_data
    from specjax.figures import plots

    arrays, _, seconds, now = sweep_results(cfg, directory, progress)
    paths = plots.l_shape_figure(arrays, workdir / "fig7")
    stats = {
        f"{int(a['over_realization'])}x": {
            f"p={p:g}": figure_data.l_shape_stats(a["best_student_corr_l1"][s, :, -1], a["fan_out_norm_l1"][s, :, -1])
            for s, p in enumerate(a["teacher_polarity"])
        }
        for a in arrays
    }
    return paths, {"l_shape": stats}, {"arrays": arrays}, seconds, now


def _early_epoch(cfg) -> int:
    return max(cfg.eval_every, int(round(EARLY_FRACTION * cfg.epochs / cfg.eval_every)) * cfg.eval_every)


def _figure9(cfg, workdir: Path, directory: Path, progress: ProgressFn):
    from specjax.figures import numbers as figure_data
    from specjax.figures import plots

    arrays, summary, seconds, now = sweep_results(cfg, directory, progress)
    early = _early_epoch(cfg)
    paths = plots.success_by_polarity_figure(summary, workdir / "fig9", early_epoch=early)
    early_index = int(np.searchsorted(arrays[0]["eval_epochs"], early))
    table = {}
    for a in arrays:
        final, first = figure_data.success_table(a), figure_data.success_table(a, early_index)
        table[f"{int(a['over_realization'])}x"] = {
            f"p={p:g}": {
                "final": _rounded(final[s], 3),
                "early": _rounded(first[s], 3),
                "mean_final": round(float(np.nanmean(final[s])), 3),
                "mean_early": round(float(np.nanmean(first[s])), 3),
            }
            for s, p in enumerate(a["teacher_polarity"])
        }
    numbers = {"early_epoch": early, "final_epoch": int(cfg.epochs), "seeds": cfg.seeds, "success_rate": table}
    return paths, numbers, {"arrays": arrays, "summary": summary}, seconds, now


def _figure10(cfg, workdir: Path, directory: Path, progress: ProgressFn):
    from specjax.figures import numbers as figure_data
    from specjax.figures import plots

    arrays, _, seconds, now = sweep_results(cfg, directory, progress)
    stats = [figure_data.log_loss_stats(a, cfg.c) for a in arrays]
    paths = plots.loss_curves_figure(arrays, [s[0] for s in stats], [s[1] for s in stats], workdir / "fig10")
    table = {
        f"{int(a['over_realization'])}x": {
            f"p={p:g}": {
                "log10_loss_initial": round(float(mean[s, 0]), 3),
                "log10_loss_final": round(float(mean[s, -1]), 3),
                "log10_loss_final_std": round(float(std[s, -1]), 3),
            }
            for s, p in enumerate(a["teacher_polarity"])
        }
        for a, (mean, std) in zip(arrays, stats, strict=True)
    }
    data = {"arrays": arrays, "log_loss_mean": [s[0] for s in stats], "log_loss_std": [s[1] for s in stats]}
    return paths, {"loss": table, "convention": "MSE per output (reference's logged loss)"}, data, seconds, now


def _figure11(cfg, workdir: Path, directory: Path, progress: ProgressFn):
    from specjax.figures import numbers as figure_data
    from specjax.figures import plots_dynamics

    arrays, _, seconds, now = sweep_results(cfg, directory, progress)
    a = arrays[0]
    corr, epochs = a["corr_l1"][0], a["corr_epochs"]  # (N, E, m, n)
    strength = figure_data.teacher_strength(a)[0]
    shifts = [figure_data.focus_shifts(corr[n], epochs) for n in range(corr.shape[0])]
    paths = plots_dynamics.focus_shift_figure(corr, epochs, strength, shifts, cfg.steps_per_epoch, workdir / "fig11")
    for seed_shifts in shifts:
        for s in seed_shifts:
            s["iteration_left"] = int(s["epoch_left"] * cfg.steps_per_epoch)
    numbers = {
        "focus_shifts": figure_data.summarize_focus_shifts(shifts, strength),
        "shifts_per_seed": shifts,
        "teacher_strength": [_rounded(s, 3) for s in strength],
        "final_best_teacher_corr": [_rounded(b, 3) for b in a["best_teacher_corr_l1"][0, :, -1]],
    }
    data = {"corr": corr, "epochs": epochs, "strength": strength, "shifts": shifts}
    return paths, numbers, data, seconds, now


def _figure12(cfg, workdir: Path, directory: Path, progress: ProgressFn):
    from specjax.figures import numbers as figure_data
    from specjax.figures import plots_dynamics

    arrays, _, seconds, now = sweep_results(cfg, directory, progress)
    a = arrays[0]
    best, epochs = a["best_teacher_corr_l1"], a["eval_epochs"]  # (S, N, E, m)
    strength = figure_data.teacher_strength(a)  # (S, N, m)
    first = figure_data.first_epoch_above(best, epochs, MATCH_THRESHOLD)
    polarities = [float(p) for p in a["teacher_polarity"]]
    paths = plots_dynamics.teacher_progress_figure(
        best, strength, epochs, first, polarities, cfg.steps_per_epoch, workdir / "fig12", MATCH_THRESHOLD
    )
    group = max(1, cfg.m // 4)
    numbers = {
        "threshold": MATCH_THRESHOLD,
        "group": group,
        "steps_per_epoch": cfg.steps_per_epoch,
        "order": {
            f"p={p:g}": figure_data.strength_order_stats(best[s], strength[s], epochs, MATCH_THRESHOLD, group)
            for s, p in enumerate(polarities)
        },
    }
    data = {"best": best, "strength": strength, "epochs": epochs, "first_epoch": first, "polarities": polarities}
    return paths, numbers, data, seconds, now


def _figure8(cfg, workdir: Path, directory: Path, progress: ProgressFn):
    from specjax.figures import numbers as figure_data
    from specjax.figures import plots_dynamics

    arrays, _, seconds, now = sweep_results(cfg, directory, progress)
    a = arrays[0]
    samples = min(1024, cfg.n_eval)
    points = figure_data.deep_l_shape(cfg, a, samples=samples)
    paths = plots_dynamics.deep_l_shape_figure(points, workdir / "fig8")
    layers = len(cfg.teacher_widths)
    epochs = [int(e) for e in points["epochs"]]
    success = figure_data.layer_success_by_snapshot(a)
    numbers = {
        "snapshot_epochs": epochs,
        "beta_samples": samples,
        "teacher_matched_0.9": {f"epoch {e}": _rounded(success[p], 3) for p, e in enumerate(epochs)},
        "mean_best_teacher_corr": {
            f"epoch {e}": _rounded(
                [
                    a[f"best_teacher_corr_l{l}"][0, :, np.searchsorted(a["eval_epochs"], e)].mean()
                    for l in range(1, layers + 1)
                ],
                3,
            )
            for e in epochs
        },
        "l_shape_final": {
            f"layer {l}": figure_data.l_shape_stats(points[f"best_corr_l{l}"][-1], points[f"fan_out_l{l}"][-1])
            for l in range(1, layers + 1)
        },
    }
    return paths, numbers, {"points": points, "arrays": arrays, "success": success}, seconds, now


def _figure_population(cfg, workdir: Path, directory: Path, progress: ProgressFn):
    from specjax.figures import numbers as figure_data
    from specjax.figures import plots_dynamics

    results, seconds, now = population_results(cfg, directory, progress)
    sgd_cos, flow_cos = np.cos(results["sgd_angles"]).max(axis=-2), np.cos(results["flow_angles"]).max(axis=-2)
    paths = plots_dynamics.population_figure(
        results["time"], results["sgd_loss"], results["flow_loss"], sgd_cos, flow_cos, workdir / "figpopulation"
    )
    same_best = results["sgd_angles"][:, -1].argmin(axis=-2) == results["flow_angles"][:, -1].argmin(axis=-2)
    sgd_match = figure_data.first_epoch_above(sgd_cos, results["time"], POPULATION_MATCH_COS)  # (N, m) times
    flow_match = figure_data.first_epoch_above(flow_cos, results["time"], POPULATION_MATCH_COS)
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
    return paths, numbers, {"results": results, "sgd_best_cos": sgd_cos, "flow_best_cos": flow_cos}, seconds, now


def _within_seed_rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman correlation of two ``(N, m)`` arrays after ranking each seed's row separately (``inf`` last)."""
    from specjax.figures import numbers as figure_data

    def ranks(x):
        return np.argsort(np.argsort(x, axis=-1, kind="stable"), axis=-1, kind="stable").ravel()

    return round(figure_data.rank_correlation(ranks(a), ranks(b)), 3)


def _figure13(cfg, workdir: Path, directory: Path, progress: ProgressFn):
    """Fig. 13 (real data) through :func:`specjax.realdata.experiment.run_conv_experiment`; plotted by
    ``specjax.realdata.plot.plot_figure13`` (the real-data engineer's module)."""
    try:
        from specjax.realdata import plot as plots_realdata
    except ImportError as e:
        raise FigureError(f"figure 13: plotting module specjax.realdata.plot is not available ({e})") from None
    results, seconds, computed_now = conv_results(cfg, directory, progress)
    paths = [Path(p) for p in plots_realdata.plot_figure13(results, workdir / "fig13")]
    last = results["mean_best_correlation"][:, :, -1]  # (R, S, L)
    numbers = {
        "dataset": cfg.dataset,
        "over_realization": _rounded(results["over_realization"], 0),
        "kept_channels": _rounded(results["kept_channels"], 0),
        "final_mean_best_correlation_per_layer": {
            f"{int(r)}x": _rounded(last[i].mean(axis=0), 3) for i, r in enumerate(results["over_realization"])
        },
        "final_eval_accuracy": {
            f"{int(r)}x": round(float(results["eval_accuracy"][i, :, -1].mean()), 4)
            for i, r in enumerate(results["over_realization"])
        },
        "teacher_eval_accuracy": float(results["teacher_eval_accuracy"]),
        "pruned_teacher_eval_accuracy": float(results["pruned_teacher_eval_accuracy"]),
    }
    return paths, numbers, {"results": results}, seconds, computed_now


DRIVERS = {
    "7": _figure7,
    "8": _figure8,
    "9": _figure9,
    "10": _figure10,
    "11": _figure11,
    "12": _figure12,
    "13": _figure13,
    "population": _figure_population,
}


def make_figure(
    figure: str,
    workdir: str | Path,
    scale: str = "small",
    progress: ProgressFn = print,
    config: ml_collections.ConfigDict | None = None,
    seeds: int | None = None,
) -> FigureOutput:
    """Makes one figure in ``workdir``, computing its results first if they are not there.

    Args:
      figure: one of :data:`FIGURES`.
      workdir: output folder (created).
      scale: one of :data:`SCALES`; names the config and the results folder ``<config name>-<scale>``.
      progress: called with progress lines; ``None`` for silence.
      config: overrides the config file's (results then go to ``<config name>-custom``).
      seeds: overrides the config's number of seeds (results then go to ``<config name>-<scale>-<seeds>seeds``),
        e.g. to run the paper's settings with fewer seeds where 32 are too expensive. Not for figure 13.

    Raises:
      FigureError: unknown figure or scale, missing config or module.
      config.ConfigError, sweep.SweepError, store.StoreError: as :func:`specjax.sweep.run_sweep`.
    """
    figure = str(figure)
    if figure not in FIGURES:
        raise FigureError(f"figure: unknown value {figure!r}; expected one of {FIGURES}")
    name = CONFIG_NAMES[figure]
    cfg = config if config is not None else load_config(name, scale)
    suffix = scale if config is None else "custom"
    if seeds is not None:
        if figure == "13" or seeds < 1:
            raise FigureError(f"seeds: {seeds!r} is not a seed count for figure {figure}")
        cfg.seeds, suffix = int(seeds), f"{suffix}-{int(seeds)}seeds"
    workdir = store.check_writable(Path(workdir))
    directory = workdir / f"{name}-{suffix}"
    paths, numbers, data, seconds, now = DRIVERS[figure](cfg, workdir, directory, progress)
    numbers = {
        "figure": figure,
        "scale": scale,
        "seeds": int(cfg.seeds) if "seeds" in cfg else None,
        "results": directory.name,
        "compute_seconds": seconds,
        **numbers,
    }
    store.save_json(workdir / f"fig{figure}.json", jsonable(numbers))
    return FigureOutput(figure, scale, list(paths), numbers, data, seconds, now)
