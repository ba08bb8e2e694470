"""The paper's figures, one command each: ``python -m specjax.figures --figure=N --workdir=DIR [--scale=small]``.

For each figure (7, 8, 9, 10, 11, 12, 13, population) a driver loads the experiment config
``experiments/configs/<name>.py:<scale>``, runs its sweep through :func:`specjax.sweep.run_sweep` unless finished
results are already in ``DIR/<name>-<scale>/`` (an interrupted sweep resumes), reduces the arrays with
:mod:`specjax.figure_data`, and draws the figure with :mod:`specjax.plots` / :mod:`specjax.plots_dynamics`:

* ``DIR/fig<N>.png`` and ``.pdf``: the figure;
* ``DIR/fig<N>.json``: the numbers behind it (the paper's claim in figures: success rates, L-shape statistics, ...);
* ``DIR/<name>-<scale>/``: the sweep (``config.json``, ``results/``, ``summary.json``) and ``timing.json`` (wall
  seconds spent computing it, summed over resumptions).

Figures 9 and 10 share one sweep (``fig9_10``). Scales: ``test`` (seconds; the test suite), ``small`` (minutes on 2
CPU cores), ``paper`` (the paper's settings, THEORY.md section 7). Research code calls :func:`make_figure`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import ml_collections
import numpy as np

from specjax import config as config_lib
from specjax import store

FIGURES = ("7", "8", "9", "10", "11", "12", "13", "population")
SCALES = ("test", "small", "paper")
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
CONFIG_DIR = Path(__file__).resolve().parents[1] / "experiments" / "configs"
#: Fig. 9's early curve is at this fraction of training (the paper: epoch 5 of 100).
EARLY_FRACTION = 0.05
#: Fig. 12's "matched" threshold (the paper's success criterion).
MATCH_THRESHOLD = 0.95
#: The population figure's "matched": best cosine between a student's and the teacher's weight vectors above this.
POPULATION_MATCH_COS = 0.99
ProgressFn = Callable[[str], None] | None


class FigureError(ValueError):
    """A figure cannot be made (unknown figure or scale, missing config file or module)."""


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


def load_config(name: str, scale: str) -> ml_collections.ConfigDict:
    """``experiments/configs/<name>.py``'s ``get_config(scale)``.

    Raises:
      FigureError: unknown scale or missing config file.
    """
    if scale not in SCALES:
        raise FigureError(f"scale: unknown value {scale!r}; expected one of {SCALES}")
    path = CONFIG_DIR / f"{name}.py"
    if not path.is_file():
        raise FigureError(f"{path}: config file not found (figures need the repository checkout)")
    spec = importlib.util.spec_from_file_location(f"specjax_experiment_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(scale)


def _timing_path(directory: Path) -> Path:
    return directory / "timing.json"


def _add_timing(directory: Path, seconds: float) -> float:
    """Adds ``seconds`` to ``timing.json`` (with the host's CPU count and JAX platform); returns the total."""
    import jax

    path = _timing_path(directory)
    held = store.load_json(path) if path.is_file() else {}
    total = float(held.get("compute_seconds", 0.0)) + seconds
    store.save_json(
        path,
        {
            "compute_seconds": total,
            "sessions": int(held.get("sessions", 0)) + 1,
            "cpu_count": os.cpu_count(),
            "platform": jax.default_backend(),
            "devices": len(jax.devices()),
        },
    )
    return total


def _held_seconds(directory: Path) -> float | None:
    path = _timing_path(directory)
    return float(store.load_json(path)["compute_seconds"]) if path.is_file() else None


def sweep_results(
    cfg: ml_collections.ConfigDict, directory: Path, progress: ProgressFn
) -> tuple[list[dict[str, np.ndarray]], dict, float | None, bool]:
    """The finished results of ``cfg`` in ``directory``, running (or resuming) the sweep if they are absent.

    Returns:
      ``(arrays per shape group, summary, compute seconds, computed_now)``.
    """
    from specjax import sweep

    config_lib.validate(cfg)
    results = [directory / "results" / f"group{i}.npz" for i in range(len(cfg.over_realization))]
    held = directory / "config.json"
    if held.is_file() and (directory / "summary.json").is_file() and all(p.is_file() for p in results):
        if store.load_json(held).get("config") == config_lib.to_plain(cfg):
            loaded = sweep.load_results(directory)
            return loaded.arrays, loaded.summary, _held_seconds(directory), False
    start = time.perf_counter()
    result = sweep.run_sweep(cfg, directory, progress=progress)
    total = _add_timing(directory, time.perf_counter() - start)
    return result.arrays, result.summary, total, True


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    return obj


def _rounded(values, digits: int = 4) -> list:
    return [round(float(v), digits) for v in np.asarray(values).ravel()]


# ----------------------------------------------------------------------------------------------------------------
# One driver per figure: (cfg, workdir, directory, progress) -> (paths, numbers, data, seconds, computed_now).


def _figure7(cfg, workdir: Path, directory: Path, progress: ProgressFn):
    from specjax import figure_data, plots

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
    from specjax import figure_data, plots

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
    from specjax import figure_data, plots

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
    from specjax import figure_data, plots_dynamics

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
    from specjax import figure_data, plots_dynamics

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
    from specjax import figure_data, plots_dynamics

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
    from specjax import figure_data, plots_dynamics

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
    from specjax import figure_data

    def ranks(x):
        return np.argsort(np.argsort(x, axis=-1, kind="stable"), axis=-1, kind="stable").ravel()

    return round(figure_data.rank_correlation(ranks(a), ranks(b)), 3)


def population_results(
    cfg: ml_collections.ConfigDict, directory: Path, progress: ProgressFn
) -> tuple[dict[str, np.ndarray], float | None, bool]:
    """SGD vs the exact population flow for ``cfg.seeds`` runs (:func:`specjax.population.make_sgd_flow_comparison`),
    cached in ``directory/results.npz``.

    The config is a sweep config with one value per swept field and one over-realization; records are taken every
    ``steps_per_epoch`` SGD steps, and the flow is integrated with RK4 at a step of ``rk4_step_sgd_steps``
    SGD steps' time (the ``rk4_step_sgd_steps`` field, removed before validation).

    Returns:
      ``(arrays, compute seconds, computed_now)``; arrays: ``time (T,)``, ``sgd_loss``/``flow_loss (N, T)``,
      ``sgd_angles``/``flow_angles (N, T, n, m)``, ``teacher_strength (N, m)``.
    """
    import jax
    import jax.numpy as jnp

    from specjax import population, train

    rk4_every = int(cfg.rk4_step_sgd_steps)
    sweep_cfg = ml_collections.ConfigDict({k: v for k, v in cfg.items() if k != "rk4_step_sgd_steps"})
    config_lib.validate(sweep_cfg)
    results_path, config_path = directory / "results.npz", directory / "config.json"
    wanted = config_lib.to_plain(cfg)
    if results_path.is_file() and config_path.is_file() and store.load_json(config_path).get("config") == wanted:
        return store.load_npz(results_path), _held_seconds(directory), False
    store.check_writable(directory)
    if progress is not None:
        progress(f"population: {cfg.seeds} seeds x {cfg.epochs * cfg.steps_per_epoch} SGD steps and the exact flow")
    start = time.perf_counter()
    spec = train.Spec.from_config(sweep_cfg, sweep_cfg.over_realization[0])
    compare = population.make_sgd_flow_comparison(
        spec, sweep_cfg.epochs, sweep_cfg.steps_per_epoch, max(1, sweep_cfg.steps_per_epoch // rk4_every)
    )
    setting = config_lib.settings_grid(sweep_cfg)[0]
    hp = train.Hparams.broadcast(sweep_cfg.seeds, sweep_cfg.dtype, **setting.as_dict())
    keys = jax.vmap(train.seed_key, (None, 0))(sweep_cfg.seed, jnp.arange(sweep_cfg.seeds))
    out = jax.device_get(jax.jit(jax.vmap(compare))(hp, keys))
    arrays = {
        "time": np.asarray(out.time[0]),
        "steps": np.asarray(out.steps[0]),
        "sgd_loss": np.asarray(out.sgd.loss),
        "flow_loss": np.asarray(out.flow.loss),
        "sgd_angles": np.asarray(out.sgd.angles),
        "flow_angles": np.asarray(out.flow.angles),
        "sgd_balancedness": np.asarray(out.sgd.balancedness),
        "flow_balancedness": np.asarray(out.flow.balancedness),
        "teacher_strength": np.linalg.norm(np.asarray(out.teacher[1][0]), axis=-1),
    }
    store.save_npz(results_path, arrays)
    store.save_json(config_path, {"config": wanted})
    return arrays, _add_timing(directory, time.perf_counter() - start), True


def _figure13(cfg, workdir: Path, directory: Path, progress: ProgressFn):
    """Fig. 13 (real data) through :func:`specjax.realdata.run_conv_experiment`; plotted by
    ``specjax.plots_realdata.plot_figure13`` (the real-data engineer's module)."""
    import jax

    from specjax import realdata

    try:
        from specjax import plots_realdata
    except ImportError as e:
        raise FigureError(f"figure 13: plotting module specjax.plots_realdata is not available ({e})") from None
    results_path, config_path = directory / "results.npz", directory / "config.json"
    wanted = _jsonable(cfg.to_dict())
    computed_now = False
    if results_path.is_file() and config_path.is_file() and store.load_json(config_path).get("config") == wanted:
        results, seconds = store.load_npz(results_path), _held_seconds(directory)
    else:
        store.check_writable(directory)
        if progress is not None:
            progress(f"figure 13: conv teacher and students on {cfg.dataset}")
        start = time.perf_counter()
        results = realdata.run_conv_experiment(cfg, jax.random.key(int(cfg.seed)))
        store.save_npz(results_path, results)
        store.save_json(config_path, {"config": wanted})
        seconds, computed_now = _add_timing(directory, time.perf_counter() - start), True
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
    store.save_json(workdir / f"fig{figure}.json", _jsonable(numbers))
    return FigureOutput(figure, scale, list(paths), numbers, data, seconds, now)


# ----------------------------------------------------------------------------------------------------------------
# Command line.


def main(argv: list[str]) -> None:
    """absl main: make the figure named by ``--figure`` in ``--workdir``."""
    from absl import flags

    from specjax import enable_float64

    if len(argv) > 1:
        raise FigureError(f"unexpected argument(s) {argv[1:]}")
    f = flags.FLAGS
    enable_float64()
    config = None
    if f.data_directory:
        if f.figure != "13":
            raise FigureError("--data_directory applies to --figure=13 only")
        config = load_config("fig13", "cifar10")
        config.data_directory = f.data_directory
    start = time.perf_counter()
    out = make_figure(
        f.figure, f.workdir, f.scale, progress=lambda s: print(s, flush=True), config=config, seeds=f.seeds
    )
    elapsed = time.perf_counter() - start
    source = f"results in {out.numbers['results']}/ " + ("computed now" if out.computed_now else "loaded")
    if out.compute_seconds is not None:
        source += f", {out.compute_seconds:.0f} s of compute in all"
    print(f"figure {out.figure} ({out.scale}) in {elapsed:.0f} s ({source}): {', '.join(str(p) for p in out.paths)}")
    print(json.dumps(_jsonable({k: v for k, v in out.numbers.items() if k != "shifts_per_seed"}))[:2000])


def run_cli() -> None:
    """Entry point of ``python -m specjax.figures``."""
    from absl import flags

    from specjax import cli

    cli.configure_cpu_devices()
    flags.DEFINE_enum("figure", None, list(FIGURES), "Which figure to make.")
    flags.DEFINE_string("workdir", None, "Output folder: figures here, results in <config>-<scale>/ below it.")
    flags.DEFINE_enum("scale", "small", list(SCALES), "test: seconds; small: minutes on 2 cores; paper: the paper's.")
    flags.DEFINE_string("data_directory", None, "Figure 13 only: CIFAR-10 python batches; runs the CIFAR setting.")
    flags.DEFINE_integer(
        "seeds", None, "Override the config's number of seeds (results in <config>-<scale>-<N>seeds/)."
    )
    flags.mark_flags_as_required(["figure", "workdir"])

    def guarded(argv):
        try:
            main(argv)
        except FigureError as e:
            cli.fail("specjax.figures", str(e))

    cli.run(guarded, "specjax.figures")


if __name__ == "__main__":
    run_cli()
