"""The sweep's entry point: :func:`run_sweep` validates, plans, locks the workdir, trains every wave and writes the
results; stage by stage (plan -> compile/train -> record -> checkpoint -> summary) in the sibling modules."""

from __future__ import annotations

from pathlib import Path

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh

from specjax import config as config_lib
from specjax import store
from specjax.engine import with_devices_per_run
from specjax.errors import ConfigError
from specjax.sweep import checkpoint, grow, preflight, signals
from specjax.sweep.metrics_log import MetricsLog
from specjax.sweep.plan import GroupPlan, is_accelerator, layout_record, plan_groups, step_cost
from specjax.sweep.progress import Progress, ProgressFn
from specjax.sweep.record import group_arrays
from specjax.sweep.summary import SweepResult, summarize
from specjax.sweep.train import cached_program, train_wave
from specjax.sweep.workdir import prepare_workdir, sweep_id, workdir_lock


def check_runtime(cfg: ml_collections.ConfigDict) -> None:
    """Refuses what the JAX runtime cannot give the config (float64 without x64, too many devices)."""
    if cfg.dtype == "float64" and not jax.config.jax_enable_x64:
        raise ConfigError(
            "config.dtype: float64 needs jax_enable_x64 (call specjax.enable_float64() before creating any array)"
        )
    if cfg.num_devices > len(jax.local_devices()):
        raise ConfigError(
            f"config.num_devices: {cfg.num_devices} requested but only {len(jax.local_devices())} "
            f"{jax.default_backend()} device(s) available"
        )


def local_mesh(num_devices: int = 0) -> Mesh:
    """1-D mesh (axis ``'runs'``) over the first ``num_devices`` (0 = all) of this process's devices.

    Runs never interact, so a sweep -- or each process of a multi-controller sweep -- trains on its local devices
    only: no program spans processes and nothing is communicated inside the training loop.
    """
    devices = jax.local_devices()
    if num_devices > len(devices):
        raise ConfigError(f"config.num_devices: {num_devices} requested but only {len(devices)} available")
    return Mesh(np.array(devices[: num_devices or len(devices)]), ("runs",))


def run_sweep(
    cfg: ml_collections.ConfigDict,
    workdir: str | Path | None = None,
    *,
    overwrite: bool = False,
    progress: ProgressFn | None = print,
    mesh=None,
    accelerator: bool | None = None,
) -> SweepResult:
    """Trains every run of ``cfg`` and returns (and, with a ``workdir``, writes) the results.

    Args:
      cfg: sweep config (see :mod:`specjax.config`); validated first, before anything is computed or written.
      workdir: output folder; ``None`` keeps results in memory only (no checkpoints).
      overwrite: discard a previous sweep in ``workdir`` instead of resuming it or refusing a different config.
      progress: called with one line per evaluation interval; ``None`` for silence.
      mesh: device mesh (axis ``'runs'``); default: ``cfg.num_devices`` of this process's devices. Its platform
        picks the plan (:func:`specjax.sweep.plan.plan_groups`: blocks, memory budget, backward-pass layout).
      accelerator: plan as on a GPU/TPU (``True``) or a CPU (``False``) whatever the mesh; default: from the mesh
        (tests force the accelerator path on CPU with it).

    Raises:
      ConfigError: invalid config value (names the field).
      SweepError, StoreError: unusable workdir or files (names the file), raised before any training.
      signals.Interrupted: SIGINT/SIGTERM arrived; the sweep stopped at a safe point after checkpointing.
    """
    config_lib.validate(cfg)
    check_runtime(cfg)
    mesh = mesh if mesh is not None else local_mesh(cfg.num_devices)
    if accelerator is None:
        accelerator = is_accelerator(mesh.devices.flat[0].platform)
    plans = plan_groups(cfg, mesh.devices.size, accelerator)
    preflight.check(cfg, plans, mesh.devices.size)
    ident = sweep_id(cfg)
    with signals.deferred():
        if workdir is None:
            return _train_and_summarize(cfg, plans, None, mesh, progress, ident)
        with workdir_lock(workdir):
            check = lambda w: checkpoint.check_checkpoints(w, plans, ident)  # noqa: E731
            layout = layout_record(plans, mesh.devices.size)
            wd = prepare_workdir(cfg, workdir, overwrite, check=check, grow=grow.prepare, layout=layout)
            return _train_and_summarize(cfg, plans, wd, mesh, progress, ident)


def train_groups(
    cfg,
    plans: list[GroupPlan],
    wd: Path | None,
    mesh,
    progress: ProgressFn | None,
    ident: str,
    finish,
    metrics_path: Path | None = None,
    start=None,
) -> list:
    """Trains every wave of every plan (resuming from checkpoints in ``wd``) under ``cfg.matmul_precision``.

    Args:
      finish: called with ``(plan, wave results)`` after each group; its results are returned, one per plan.
      metrics_path: the metrics log; default ``wd/metrics.jsonl``.
      start: a grown sweep's saved states of runs that continue (see :func:`specjax.sweep.train.train_wave`).
    """
    total = sum(p.padded_runs * step_cost(p.spec) for p in plans) * config_lib.total_steps(cfg)
    prog = Progress(total, progress)
    interval = cfg.steps_per_epoch * cfg.eval_every
    metrics_path = metrics_path or (wd / "metrics.jsonl" if wd is not None else None)
    log = MetricsLog(metrics_path) if metrics_path is not None else None
    out = []
    with jax.default_matmul_precision(cfg.matmul_precision):
        for plan in plans:
            program = cached_program(
                plan.spec, cfg.chunk_steps or interval, with_devices_per_run(mesh, plan.devices_per_run)
            )
            prog.start_group()
            waves = [
                train_wave(cfg, plan, program, w, runs, wd, prog, ident, log and log.wave_logger(plan, w, prog), start)
                for w, runs in enumerate(plan.waves)
            ]
            out.append(finish(plan, waves))
    return out


def _train_and_summarize(
    cfg, plans: list[GroupPlan], wd: Path | None, mesh, progress: ProgressFn | None, ident: str
) -> SweepResult:
    """The body of :func:`run_sweep` once the config is valid and the workdir (if any) is prepared and locked."""

    def finish(plan: GroupPlan, waves: list) -> dict:
        arrays = group_arrays(cfg, plan, waves, ident)
        if wd is not None:
            store.save_npz(wd / "results" / f"group{plan.index}.npz", arrays)
        return arrays

    growth = grow.load_growth(cfg, plans, wd, ident, mesh.devices.size) if wd is not None else None
    if growth is None:
        all_arrays = train_groups(cfg, plans, wd, mesh, progress, ident, finish)
    else:  # a grown sweep: train the continued and fresh runs, then assemble every group
        for line in growth.describe(plans) if progress is not None else ():
            progress(line)
        checkpoint.check_checkpoints(wd, growth.plans, ident)
        trained = train_groups(cfg, growth.plans, wd, mesh, progress, ident, lambda p, w: w, start=growth.start)
        all_arrays = []
        for plan in plans:
            all_arrays.append(growth.group_arrays(plan, dict(enumerate(trained)), ident))
            store.save_npz(wd / "results" / f"group{plan.index}.npz", all_arrays[-1])
    summary = summarize(cfg, plans, all_arrays)
    if wd is not None:
        store.save_json(wd / "summary.json", summary)
    return SweepResult(cfg, all_arrays, summary, wd)
