"""Sweeps: a grid of runs trained in compiled blocks, checkpointed between chunks, summarised on disk.

Stages, one module each: :mod:`~specjax.sweep.plan` (groups, blocks, waves, inputs) -> :mod:`~specjax.sweep.train`
(compile, the wave loop) -> :mod:`~specjax.sweep.record` (history, result arrays; names in
:mod:`~specjax.sweep.schema`) -> :mod:`~specjax.sweep.checkpoint` -> :mod:`~specjax.sweep.summary`; plus
:mod:`~specjax.sweep.workdir` (lock, preparation, identity, provenance), :mod:`~specjax.sweep.progress` and
:mod:`~specjax.sweep.signals`. :func:`run_sweep` (:mod:`~specjax.sweep.run`) ties them together; the command line
is ``python -m specjax.sweep`` (``__main__``)::

    from specjax import sweep
    result = sweep.run_sweep(cfg, workdir="runs/fig9")   # or workdir=None to keep everything in memory
    result.summary["groups"][0]["success_rate"]
"""

from specjax.errors import StoreError, SweepError
from specjax.sweep.checkpoint import CHECKPOINT_FORMAT, check_checkpoints, load_checkpoint, save_checkpoint
from specjax.sweep.plan import (
    GroupPlan,
    bytes_per_run,
    eval_epochs,
    plan_groups,
    run_inputs,
    snapshot_epochs,
    step_cost,
)
from specjax.sweep.progress import Progress, ProgressFn, format_duration
from specjax.sweep.record import History, group_arrays, record_eval
from specjax.sweep.run import run_sweep
from specjax.sweep.signals import Interrupted
from specjax.sweep.summary import SweepResult, load_config, load_results, summarize
from specjax.sweep.train import MAX_IN_FLIGHT, cached_program, train_wave
from specjax.sweep.workdir import RESUME_INDEPENDENT_FIELDS, prepare_workdir, provenance, sweep_id, workdir_lock

__all__ = [
    "CHECKPOINT_FORMAT",
    "MAX_IN_FLIGHT",
    "RESUME_INDEPENDENT_FIELDS",
    "GroupPlan",
    "History",
    "Interrupted",
    "Progress",
    "ProgressFn",
    "StoreError",
    "SweepError",
    "SweepResult",
    "bytes_per_run",
    "cached_program",
    "check_checkpoints",
    "eval_epochs",
    "format_duration",
    "group_arrays",
    "load_checkpoint",
    "load_config",
    "load_results",
    "plan_groups",
    "prepare_workdir",
    "provenance",
    "record_eval",
    "run_inputs",
    "run_sweep",
    "save_checkpoint",
    "snapshot_epochs",
    "step_cost",
    "summarize",
    "sweep_id",
    "train_wave",
    "workdir_lock",
]
