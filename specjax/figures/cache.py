"""The results behind each figure: experiment configs, and sweeps or experiments run once and cached on disk.

:func:`load_config` reads ``experiments/configs/<name>.py:<scale>``; :func:`sweep_results` returns a finished sweep
(running or resuming it through :func:`specjax.sweep.run_sweep` if needed); :func:`population_results` and
:func:`conv_results` do the same for the SGD-vs-population-flow comparison (:mod:`specjax.theory.population`) and the
real-data experiment (:mod:`specjax.realdata.experiment`). Each results folder also holds ``timing.json``: the wall seconds spent
computing it, summed over resumptions. :mod:`specjax.figures.drivers` turns these results into figures.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable
from pathlib import Path

import ml_collections
import numpy as np

from specjax import config as config_lib
from specjax import store
from specjax.errors import FigureError

SCALES = ("test", "small", "paper")
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
ProgressFn = Callable[[str], None] | None


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


def timing_path(directory: Path) -> Path:
    return directory / "timing.json"


def add_timing(directory: Path, seconds: float) -> float:
    """Adds ``seconds`` to ``timing.json`` (with the host's CPU count and JAX platform); returns the total."""
    import jax

    path = timing_path(directory)
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


def held_seconds(directory: Path) -> float | None:
    path = timing_path(directory)
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
            return loaded.arrays, loaded.summary, held_seconds(directory), False
    start = time.perf_counter()
    result = sweep.run_sweep(cfg, directory, progress=progress)
    total = add_timing(directory, time.perf_counter() - start)
    return result.arrays, result.summary, total, True


def jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    return obj


def population_results(
    cfg: ml_collections.ConfigDict, directory: Path, progress: ProgressFn
) -> tuple[dict[str, np.ndarray], float | None, bool]:
    """SGD vs the exact population flow for ``cfg.seeds`` runs (:func:`specjax.theory.population.make_sgd_flow_comparison`),
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

    from specjax import engine as train
    from specjax.theory import population

    rk4_every = int(cfg.rk4_step_sgd_steps)
    sweep_cfg = ml_collections.ConfigDict({k: v for k, v in cfg.items() if k != "rk4_step_sgd_steps"})
    config_lib.validate(sweep_cfg)
    results_path, config_path = directory / "results.npz", directory / "config.json"
    wanted = config_lib.to_plain(cfg)
    if results_path.is_file() and config_path.is_file() and store.load_json(config_path).get("config") == wanted:
        return store.load_npz(results_path), held_seconds(directory), False
    store.check_writable(directory)
    if progress is not None:
        progress(f"population: {cfg.seeds} seeds x {cfg.epochs * cfg.steps_per_epoch} SGD steps and the exact flow")
    start = time.perf_counter()
    spec = train.Spec.from_config(sweep_cfg, sweep_cfg.over_realization[0])
    compare = population.make_sgd_flow_comparison(
        spec, sweep_cfg.epochs, sweep_cfg.steps_per_epoch, max(1, sweep_cfg.steps_per_epoch // rk4_every)
    )
    setting = config_lib.settings_grid(sweep_cfg)[0]
    hp = train.Hparams.broadcast(sweep_cfg.seeds, sweep_cfg.dtype, **setting._asdict())
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
    return arrays, add_timing(directory, time.perf_counter() - start), True


def conv_results(
    cfg: ml_collections.ConfigDict, directory: Path, progress: ProgressFn
) -> tuple[dict[str, np.ndarray], float | None, bool]:
    """:func:`specjax.realdata.experiment.run_conv_experiment` for ``cfg`` (seed ``cfg.seed``), cached in
    ``directory/results.npz``.

    Returns:
      ``(arrays, compute seconds, computed_now)``; arrays as :func:`specjax.realdata.experiment.run_conv_experiment` documents.
    """
    import jax

    from specjax.realdata import experiment as realdata

    results_path, config_path = directory / "results.npz", directory / "config.json"
    wanted = jsonable(cfg.to_dict())
    if results_path.is_file() and config_path.is_file() and store.load_json(config_path).get("config") == wanted:
        return store.load_npz(results_path), held_seconds(directory), False
    store.check_writable(directory)
    if progress is not None:
        progress(f"figure 13: conv teacher and students on {cfg.dataset}")
    start = time.perf_counter()
    results = realdata.run_conv_experiment(cfg, jax.random.key(int(cfg.seed)))
    store.save_npz(results_path, results)
    store.save_json(config_path, {"config": wanted})
    return results, add_timing(directory, time.perf_counter() - start), True
