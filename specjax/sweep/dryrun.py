"""``--dry_run``: what a command will do in its workdir, decided by the checks the real command runs and writing
nothing.

The plan of the whole sweep (:func:`specjax.sweep.preflight.describe`), then this command's part of it: a shard's
share, and what the workdir makes of it -- *fresh* (new or empty folder, or ``--overwrite``), *resume* (which waves
are at which chunk), *grow* (runs reused, continued and trained fresh), *nothing to do* (every wave finished), or
*refused*: the same :class:`~specjax.errors.SpecjaxError` the real command raises, from the same functions
(:func:`specjax.sweep.workdir.assess_workdir`, :func:`specjax.sweep.checkpoint.check_checkpoints`,
:func:`specjax.sweep.shards.check_shard_args`, :func:`specjax.sweep.preflight.check`), so a dry run never accepts
what the command refuses. Last, the time left: the training still to do by the CPU cost model plus the compilation
of every group that still trains.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import ml_collections

from specjax import config as config_lib
from specjax.errors import SweepError
from specjax.sweep import checkpoint, grow, preflight, shards
from specjax.sweep.plan import GroupPlan, plan_groups
from specjax.sweep.progress import format_duration
from specjax.sweep.summary import load_config
from specjax.sweep.workdir import assess_workdir, sweep_id


def lock_held(path: Path) -> bool | None:
    """Whether a process holds an ``flock`` on ``path`` (a sweep's workdir or a shard's lock file), read from
    ``/proc/locks`` without taking any lock (a probe lock, even shared and brief, could make a sweep starting at that
    instant refuse its workdir); ``None`` where that file is unavailable (not Linux) or ``path`` does not exist."""
    try:
        st = os.stat(path)
        with open("/proc/locks") as f:
            table = f.read()
    except OSError:
        return None
    ident = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    return any(line.split()[1] == "FLOCK" and ident in line.split() for line in table.splitlines() if "->" not in line)


def _check_not_locked(workdir: Path) -> None:
    """Refuses, as :func:`specjax.sweep.workdir.workdir_lock` would, a workdir another sweep holds (read from
    ``/proc/locks``; takes no lock)."""
    if workdir.is_dir() and lock_held(workdir):
        raise SweepError(f"{workdir}: workdir is in use by another running sweep; wait for it or stop it")


def _writable(workdir: Path) -> None:
    """Refuses a workdir the real command could not create or write, with its message
    (:func:`specjax.store.check_writable`), writing nothing: a part of the path is a file, a name is too long, or
    the nearest existing folder is not writable."""
    from specjax.errors import StoreError

    def refuse(reason: str):
        raise StoreError(f"{workdir}: workdir cannot be written ({reason})")

    if any(len(part.encode()) > 255 for part in workdir.parts):
        refuse("File name too long")
    probe = workdir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe != workdir and not probe.is_dir():
        refuse("Not a directory")
    if probe.is_dir() and not os.access(probe, os.W_OK | os.X_OK):
        refuse("Permission denied")


def _wave_progress(cfg, workdir: Path, plans: list[GroupPlan]) -> list[tuple[GroupPlan, int, int, bool]]:
    """Per wave of ``plans``: ``(plan, wave, chunks_done, done)`` from its checkpoint (0, False without one)."""
    out = []
    for p in plans:
        for w in range(len(p.waves)):
            path = checkpoint.checkpoint_path(workdir, p, w)
            done = (0, False)
            if cfg.checkpoint and path.exists():
                done = checkpoint.checkpoint_progress(path)
            out.append((p, w, *done))
    return out


def _name(p: GroupPlan) -> str:
    return f"x{p.over_realization}{f' {p.stage}' if p.stage else ''}"


def forecast(
    cfg: ml_collections.ConfigDict,
    workdir: str | Path,
    num_devices: int,
    *,
    accelerator: bool = False,
    overwrite: bool = False,
    shard: tuple[int, int] | None = None,
    emit: Callable[[str], None] = print,
) -> None:
    """Emits the plan of ``cfg`` and what the command would do in ``workdir``, then raises what it would refuse.

    Args:
      num_devices: devices of the command's mesh; accelerator: plan as on a GPU/TPU.
      overwrite: ``--overwrite`` (refused with shards by the caller, as by the command).
      shard: ``(index, count)`` of an array-job shard or a process of a multi-controller sweep; ``None``: the whole
        sweep in one process. The arguments are checked (:func:`specjax.sweep.shards.check_shard_args`).

    Raises:
      ConfigError, SweepError, StoreError: what the real command would raise before training, word for word.
    """
    if shard is not None:
        shards.check_shard_args(shard[1], shard[0])
    plans = plan_groups(cfg, num_devices, accelerator)
    emit(preflight.describe(cfg, plans, num_devices))
    preflight.check(cfg, plans, num_devices)
    ident = sweep_id(cfg)
    wd = Path(workdir)
    to_train = plans
    if shard is not None:
        whole = num_devices if accelerator and not cfg.runs_per_block else 0
        to_train = shards.shard_plans(cfg, plans, shard, whole)
        share = ", ".join(f"x{p.over_realization} runs {p.trained.start}-{p.trained.stop - 1}" for p in to_train)
        emit(f"shard {shard[0]} of {shard[1]}: {share or 'no runs (more shards than blocks of runs)'}")
        for p in to_train:
            emit(f"  {preflight.describe_group(cfg, p, num_devices)}")
    _writable(wd)
    if shard is None:
        _check_not_locked(wd)
    check = lambda w: checkpoint.check_checkpoints(w, to_train, ident)  # noqa: E731
    kind = assess_workdir(cfg, wd, overwrite, check=check, grow=grow.check if shard is None else None)
    if shard is not None and kind != "new":
        shards.check_shard_count(wd, shard[1])
    where = f"workdir {wd}"
    fraction: dict[int, float] = {}  # id(plan) -> share of its padded work left
    if kind in ("new", "overwrite"):
        emit(f"{where}: fresh{' (--overwrite removes the sweep it holds)' if kind == 'overwrite' else ''}")
    elif kind == "grow":
        old_cfg = load_config(wd)[0]
        to_train, sources = grow.plan_growth(old_cfg, cfg, plans)
        emit(f"{where}: grow the finished sweep it holds")
        for line in grow.describe_growth(old_cfg, cfg, plans, sources):
            emit(f"  {line}")
        left = 1 - old_cfg.epochs / cfg.epochs
        fraction = {id(p): left for p in to_train if p.stage == "continue"}
    else:
        source = checkpoint.grow_dir(wd) / "from" / "config.json"
        growing = ""
        if shard is None and source.exists():
            old_cfg, old_ident = load_config(source.parent)
            if old_ident != ident:
                to_train = grow.plan_growth(old_cfg, cfg, plans)[0]
                growing = " the growth"
        if shard is not None and shards.is_done(wd, shard, ident, cfg):
            merged = (wd / "summary.json").exists()
            emit(
                f"{where}: nothing to do: shard {shard[0]} of {shard[1]} finished"
                + ("" if merged else "; it merges the results if every shard has finished")
            )
            return
        chunks_total = cfg.epochs * cfg.steps_per_epoch // (cfg.chunk_steps or cfg.steps_per_epoch * cfg.eval_every)
        waves = _wave_progress(cfg, wd, to_train)
        if waves and all(done for *_, done in waves):
            emit(
                f"{where}: nothing to do: every wave is finished; re-running rewrites results/ and summary.json "
                "from the checkpoints"
            )
            return
        parts = []
        for p, w, chunks, done in waves:
            state = "finished" if done else f"at chunk {chunks}/{chunks_total}" if chunks else "not started"
            parts.append(f"{_name(p)} wave {w + 1}/{len(p.waves)} {state}")
        emit(f"{where}: resume{growing}: {'; '.join(parts)}")
        for p in to_train:
            left = [
                0.0 if done else 1 - chunks / chunks_total for q, _, chunks, done in waves if q is p
            ]  # per wave, weighted by its padded runs
            sizes = [len(r) for r in p.waves]
            fraction[id(p)] = sum(f * n for f, n in zip(left, sizes, strict=True)) / max(sum(sizes), 1)
    compile_groups = {p.index for p in to_train if fraction.get(id(p), 1.0) > 0}
    seconds = sum(preflight.train_seconds(cfg, p, num_devices, fraction.get(id(p), 1.0)) for p in to_train)
    seconds += preflight.COMPILE_S_PER_GROUP * len(compile_groups)
    runs = sum(len(p.trained) for p in to_train)
    emit(
        f"left to train: {runs} run(s) of {config_lib.total_steps(cfg)} steps, estimated {format_duration(seconds)} "
        f"including compiling {len(compile_groups)} group program(s) "
        f"(~{preflight.COMPILE_S_PER_GROUP:g} s each with a cold compilation cache); nothing was written"
    )


__all__ = ["forecast"]
