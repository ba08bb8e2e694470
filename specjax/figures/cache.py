"""The results behind each figure: the configs shipped in the package, and results computed once and cached on disk.

:func:`load_config` reads ``specjax/figures/configs/<name>.py``'s ``get_config(scale)``. :func:`compute_or_load` is
the one cache: a results folder holds ``config.json`` (the config that produced it) and a file that marks the
results finished; it loads them when both are there, refuses a folder that holds another config's results, and
otherwise computes them while holding the folder's lock (:class:`specjax.sweep.workdir.WorkdirLock` on
``.compute.lock``), so that two processes never compute into one folder. :func:`sweep_results` (a sweep, run or
resumed through :func:`specjax.sweep.run_sweep`, read back through :func:`specjax.sweep.load_results`, which checks
every array against the schema), :func:`population_results` (:mod:`specjax.theory.population`) and
:func:`conv_results` (:mod:`specjax.realdata.experiment`) all go through it. Each results folder also holds
``timing.json``: the wall seconds spent computing it, summed over resumptions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

import ml_collections
import numpy as np

from specjax import config as config_lib
from specjax import store
from specjax.errors import FigureError, FlowDivergenceError, StoreError
from specjax.figures.checks import RK4_FIELD, check_population_config, population_sweep_config
from specjax.sweep.progress import ProgressFn

SCALES = ("test", "small", "paper")
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
#: The lock file of a results folder, held while its results are computed.
LOCK_NAME = ".compute.lock"
T = TypeVar("T")

#: Arrays a population results file must hold (:func:`population_results`).
POPULATION_ARRAYS = (
    "time",
    "steps",
    "sgd_loss",
    "flow_loss",
    "sgd_angles",
    "flow_angles",
    "sgd_balancedness",
    "flow_balancedness",
    "teacher_strength",
)
#: Arrays Fig. 13 reads from a real-data results file (:func:`conv_results`).
CONV_ARRAYS = (
    "epoch",
    "over_realization",
    "kept_channels",
    "mean_best_correlation",
    "eval_accuracy",
    "teacher_eval_accuracy",
    "pruned_teacher_eval_accuracy",
)


def load_config(name: str, scale: str) -> ml_collections.ConfigDict:
    """``specjax/figures/configs/<name>.py``'s ``get_config(scale)``.

    Raises:
      FigureError: missing config file, or a scale that file does not define (its ``SCALES``).
    """
    path = CONFIG_DIR / f"{name}.py"
    if not path.is_file():
        raise FigureError(f"{path}: config file not found")
    spec = importlib.util.spec_from_file_location(f"specjax_figure_config_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if scale not in module.SCALES:
        raise FigureError(f"scale: unknown value {scale!r} for {name}; expected one of {module.SCALES}")
    return module.get_config(scale)


jsonable = store.jsonable  # NumPy values, tuples and non-string keys as plain JSON types (one conversion)


def plain_config(cfg: ml_collections.ConfigDict) -> dict:
    """The config as the JSON that ``config.json`` holds (tuples become lists)."""
    return json.loads(json.dumps(jsonable(cfg.to_dict())))


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


@dataclasses.dataclass(frozen=True)
class Cached(Generic[T]):
    """Results from :func:`compute_or_load`.

    Attributes:
      value: the results.
      directory: the results folder.
      compute_seconds: wall seconds spent computing them (summed over resumptions), ``None`` if unknown.
      computed_now: whether this call computed (or resumed) them.
    """

    value: T
    directory: Path
    compute_seconds: float | None
    computed_now: bool


def _held_config(directory: Path, wanted: dict) -> dict | None:
    """The config ``directory/config.json`` holds (``None`` if none); refuses another config's results."""
    path = directory / "config.json"
    if not path.exists():
        return None
    held = store.load_json(path).get("config")
    if held != wanted:
        fields = sorted(k for k in set(held or {}) | set(wanted) if (held or {}).get(k) != wanted.get(k))
        raise FigureError(
            f"{directory}: holds results of a different config (fields {fields}); move it away or use another --workdir"
        )
    return held


def compute_or_load(
    directory: Path, wanted: dict, finished: str, compute: Callable[[], T], load: Callable[[], T]
) -> Cached[T]:
    """The results in ``directory`` if finished for the config ``wanted``, else computed (under the folder's lock).

    Args:
      directory: the results folder (created).
      wanted: the config, as :func:`plain_config` (or :func:`specjax.config.to_plain`) gives it; compared with
        ``directory/config.json``'s ``config``.
      finished: name of the file whose presence (beside a matching ``config.json``) marks finished results.
      compute: computes the results and writes them, ``config.json`` and ``finished`` into ``directory``; runs
        while this process holds ``directory/.compute.lock``. May resume a previous, interrupted computation.
      load: reads finished results back; raises :class:`~specjax.errors.StoreError` for bad files.

    Raises:
      FigureError: ``directory`` holds another config's results, or is not a directory.
      SweepError: another process is computing into ``directory``.
      StoreError: a file is unreadable or not what it should be, or ``directory`` cannot be written.
    """
    from specjax.sweep.workdir import WorkdirLock

    if directory.exists() and not directory.is_dir():
        raise FigureError(f"{directory}: results folder exists and is not a directory; move it away")
    if _held_config(directory, wanted) is not None and (directory / finished).is_file():
        return Cached(load(), directory, held_seconds(directory), False)
    created = not directory.exists()
    store.check_writable(directory)
    try:
        with WorkdirLock(directory / LOCK_NAME, "figure results folder"):
            if _held_config(directory, wanted) is not None and (directory / finished).is_file():
                return Cached(load(), directory, held_seconds(directory), False)  # another process just finished
            start = time.perf_counter()
            value = compute()
            total = add_timing(directory, time.perf_counter() - start)
    except BaseException:
        if created:
            _remove_if_only_lock(directory)
        raise
    return Cached(value, directory, total, True)


def _remove_if_only_lock(directory: Path) -> None:
    """Removes a results folder this call created when a failed computation left nothing in it but its lock file."""
    try:
        if {p.name for p in directory.iterdir()} <= {LOCK_NAME}:
            (directory / LOCK_NAME).unlink(missing_ok=True)
            directory.rmdir()
    except OSError:
        pass  # best effort: the refusal being raised matters more than the empty folder


def sweep_results(cfg: ml_collections.ConfigDict, directory: Path, progress: ProgressFn | None) -> Cached:
    """The finished sweep of ``cfg`` in ``directory`` (a :class:`specjax.sweep.SweepResult`), run or resumed if
    unfinished; read back through :func:`specjax.sweep.load_results` (every array checked against the schema)."""
    from specjax import sweep

    config_lib.validate(cfg)
    return compute_or_load(
        directory,
        json.loads(json.dumps(config_lib.to_plain(cfg))),
        "summary.json",
        compute=lambda: sweep.run_sweep(cfg, directory, progress=progress),
        load=lambda: sweep.load_results(directory),
    )


def _load_arrays(path: Path, required: tuple[str, ...]) -> dict[str, np.ndarray]:
    arrays = store.load_npz(path, required)
    for name in required:
        if arrays[name].dtype.kind not in "fiub":
            raise StoreError(f"{path}: array {name!r} has dtype {arrays[name].dtype}, expected numbers")
    return arrays


def npz_results(
    directory: Path, wanted: dict, compute: Callable[[], dict[str, np.ndarray]], required: tuple[str, ...]
) -> Cached:
    """:func:`compute_or_load` for results kept as ``directory/results.npz`` beside ``config.json``: ``compute``
    returns the arrays, which are written (results first, so ``config.json`` only marks complete files' config)."""
    results_path = directory / "results.npz"

    def compute_and_write() -> dict[str, np.ndarray]:
        arrays = compute()
        store.save_npz(results_path, arrays)
        store.save_json(directory / "config.json", {"config": wanted})
        return arrays

    return compute_or_load(
        directory, wanted, results_path.name, compute_and_write, lambda: _load_arrays(results_path, required)
    )


@contextlib.contextmanager
def _quiet_callback_failures():
    """Drops JAX's own log record (with a traceback) of a failing host callback while the block runs: the
    failure reaches the caller as an exception, which says it in one line."""

    def drop(record: logging.LogRecord) -> bool:
        return "pure_callback failed" not in record.getMessage()

    logger = logging.getLogger("jax._src.callback")
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def population_results(cfg: ml_collections.ConfigDict, directory: Path, progress: ProgressFn | None) -> Cached:
    """SGD vs the exact population flow for ``cfg.seeds`` runs
    (:func:`specjax.theory.population.make_sgd_flow_comparison`), cached in ``directory/results.npz``.

    The config is a sweep config with one value per swept field and one over-realization; records are taken every
    ``steps_per_epoch`` SGD steps, and the flow is integrated with RK4 at a step of ``rk4_step_sgd_steps``
    SGD steps' time (the ``rk4_step_sgd_steps`` field, removed before validation).

    Returns:
      arrays :data:`POPULATION_ARRAYS`: ``time``/``steps (T,)``, ``sgd_loss``/``flow_loss (N, T)``,
      ``sgd_angles``/``flow_angles (N, T, n, m)``, ``*_balancedness``, ``teacher_strength (N, m)``.
    """
    check_population_config(cfg)
    rk4_every = int(cfg.rk4_step_sgd_steps)
    sweep_cfg = population_sweep_config(cfg)

    def compute() -> dict[str, np.ndarray]:
        import jax
        import jax.numpy as jnp

        from specjax import engine
        from specjax.theory import population

        if progress is not None:
            progress(f"population: {cfg.seeds} seeds x {cfg.epochs * cfg.steps_per_epoch} SGD steps and the flow")
        spec = engine.Spec.from_config(sweep_cfg, sweep_cfg.over_realization[0])
        compare = population.make_sgd_flow_comparison(
            spec, sweep_cfg.epochs, sweep_cfg.steps_per_epoch, sweep_cfg.steps_per_epoch // rk4_every
        )
        setting = config_lib.settings_grid(sweep_cfg)[0]
        hp = engine.Hparams.broadcast(sweep_cfg.seeds, sweep_cfg.dtype, **setting._asdict())
        keys = jax.vmap(engine.seed_key, (None, 0))(sweep_cfg.seed, jnp.arange(sweep_cfg.seeds))
        try:
            with _quiet_callback_failures():
                out = jax.device_get(jax.jit(jax.vmap(compare))(hp, keys))
        except jax.errors.JaxRuntimeError as error:  # carries the host check's FlowDivergenceError message
            marker = "FlowDivergenceError: "
            if marker not in str(error):
                raise
            reason = str(error).split(marker)[-1].splitlines()[0].split("; the RK4 step")[0]
            reason = reason.removeprefix("SGD-vs-flow: ")
            raise FlowDivergenceError(
                f"config.{RK4_FIELD}: the population flow diverged ({reason}); use a smaller "
                f"rk4_step_sgd_steps (now {rk4_every}) or a smaller lr"
            ) from None
        return {
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

    return npz_results(directory, plain_config(cfg), compute, POPULATION_ARRAYS)


def conv_results(cfg: ml_collections.ConfigDict, directory: Path, progress: ProgressFn | None) -> Cached:
    """:func:`specjax.realdata.experiment.run_conv_experiment` for ``cfg`` (seed ``cfg.seed``), cached in
    ``directory/results.npz``; arrays as that function documents (at least :data:`CONV_ARRAYS`)."""
    from specjax.realdata import experiment

    experiment.check_conv_config(cfg)

    def compute() -> dict[str, np.ndarray]:
        import jax

        if progress is not None:
            progress(f"figure 13: conv teacher and students on {cfg.dataset}")
        return experiment.run_conv_experiment(cfg, jax.random.key(int(cfg.seed)))

    return npz_results(directory, plain_config(cfg), compute, CONV_ARRAYS)
