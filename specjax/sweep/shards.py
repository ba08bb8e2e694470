"""Sharded sweeps: shard ``i`` of ``N`` trains its share of the runs into a shared workdir, in any order, at any time;
the shard that finds every shard complete merges the results, bit-identical to the unsharded sweep.

Shares come from :func:`specjax.sweep.plan.assign_shards` (a pure function of the config and ``N``: disjoint,
cost-balanced, whole blocks). A shard's state lives in ``checkpoints/shard<i>of<N>/``: its wave checkpoints, its
metrics log, one results file per group it trains (``group<g>.npz``: its share's arrays, runs axis first, with the
sweep identity and the run range) and, written last, ``done.json``. ``checkpoints/shard<i>of<N>.lock`` is the
shard's lock: two copies of one shard never run at once, while other shards do. The workdir-wide lock is taken only
for a moment (preparing the workdir, merging), so it never blocks another shard for long.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import ml_collections
import numpy as np

from specjax import config as config_lib
from specjax import store
from specjax.errors import ConfigError, StoreError, SweepError
from specjax.sweep import checkpoint, metrics_log, preflight, signals
from specjax.sweep.plan import GroupPlan, assign_shards, is_accelerator, layout_record, plan_groups
from specjax.sweep.progress import ProgressFn
from specjax.sweep.record import group_arrays
from specjax.sweep.run import check_runtime, local_mesh, train_groups
from specjax.sweep.summary import SweepResult, load_results, missing_shards, summarize
from specjax.sweep.workdir import WorkdirLock, check_workdir_path, prepare_workdir, sweep_id

#: Seconds a shard waits for the workdir-wide lock (held for a moment by another shard preparing or merging).
LOCK_WAIT_S = 120.0
#: What the arrays of a shard's results file must hold besides the result arrays.
PIECE_KEYS = ("sweep_id", "run_start", "run_stop")


def shard_plans(
    cfg: ml_collections.ConfigDict, plans: list[GroupPlan], shard: tuple[int, int], whole_block_devices: int = 0
) -> list[GroupPlan]:
    """The plans of shard ``shard = (index, count)``: its share of some groups (none if the shard is empty).

    Args:
      whole_block_devices: > 0 on a GPU/TPU with ``runs_per_block = 0``: a share is one block (see
        :meth:`GroupPlan.for_share`) on this many devices.
    """
    return [plans[g].for_share(runs, shard, whole_block_devices) for g, runs in assign_shards(cfg, shard[1])[shard[0]]]


def piece_path(workdir: Path, plan: GroupPlan) -> Path:
    """``checkpoints/shard<i>of<N>/group<g>.npz``: a shard's results for one group."""
    return checkpoint.shard_dir(workdir, plan.shard) / f"group{plan.index}.npz"


def done_path(workdir: Path, shard: tuple[int, int]) -> Path:
    """``checkpoints/shard<i>of<N>/done.json``, written when the shard's results are all on disk."""
    return checkpoint.shard_dir(workdir, shard) / "done.json"


def lock_path(workdir: Path, shard: tuple[int, int]) -> Path:
    return workdir / "checkpoints" / f"shard{shard[0]}of{shard[1]}.lock"


def is_done(workdir: Path, shard: tuple[int, int], ident: str, cfg: ml_collections.ConfigDict) -> bool:
    """Whether shard ``shard`` of this sweep finished and its results files are all there (a finished shard whose
    files were deleted is unfinished again: re-running it retrains what is missing).

    Raises:
      StoreError: its ``done.json`` is unreadable or belongs to another sweep.
    """
    path = done_path(workdir, shard)
    if not path.exists():
        return False
    held = store.load_json(path).get("sweep_id")
    if held != ident:
        raise StoreError(f"{path}: marks a shard of another sweep (identity {held}, this sweep is {ident}); delete it")
    return all(p.exists() for p in checkpoint.shard_result_paths(workdir, cfg, shard))


@contextlib.contextmanager
def workdir_lock_waiting(workdir: Path, timeout_s: float = LOCK_WAIT_S):
    """The workdir-wide lock, waiting up to ``timeout_s`` for a shard that holds it for a moment.

    Raises:
      SweepError: still held after ``timeout_s`` (an unsharded sweep is running there).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        lock = WorkdirLock(workdir)
        try:
            lock.__enter__()
            break
        except SweepError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    try:
        yield workdir
    finally:
        lock.__exit__(None, None, None)


def check_shard_args(num_shards, shard_index) -> None:
    """Refuses a shard count or index that is not an integer in range (the real command and ``--dry_run`` alike).

    Raises:
      ConfigError: naming ``num_shards`` or ``shard_index``.
    """
    if isinstance(num_shards, bool) or not isinstance(num_shards, int) or num_shards < 1:
        raise ConfigError(f"num_shards: must be an integer >= 1, got {num_shards!r}")
    if isinstance(shard_index, bool) or not isinstance(shard_index, int) or not 0 <= shard_index < num_shards:
        raise ConfigError(f"shard_index: must be an integer in [0, {num_shards}), got {shard_index!r}")


def check_shard_count(workdir: Path, count: int) -> None:
    """Refuses a shard count other than the one a workdir's shards already use (reads only: called before anything
    is written)."""
    others = sorted({n for _, n in checkpoint.shard_folders(workdir) if n != count})
    if others:
        raise SweepError(
            f"{workdir}: holds shards of a {others[0]}-shard run of this sweep; use --num_shards={others[0]} (the "
            "shard count is part of the checkpoints' identity), or start afresh in another --workdir"
        )


def check_prepared(workdir: Path, ident: str) -> None:
    """Refuses a workdir whose ``config.json`` is missing or of another sweep (for processes that do not write it).

    Raises:
      SweepError: naming the workdir.
    """
    path = workdir / "config.json"
    if not path.exists():
        raise SweepError(f"{workdir}: holds no config.json; process 0 prepares the workdir")
    held = store.load_json(path).get("sweep_id")
    if held != ident:
        raise SweepError(
            f"{workdir}: holds another sweep (identity {held}, this sweep is {ident}); run the same config"
        )


def _save_piece(workdir: Path, plan: GroupPlan, waves: list[dict[str, np.ndarray]], ident: str) -> dict:
    n = len(plan.trained)
    arrays = {k: np.concatenate([w[k] for w in waves])[:n] for k in waves[0]}
    store.save_npz(
        piece_path(workdir, plan),
        {
            **arrays,
            "sweep_id": np.array(ident),
            "run_start": np.array(plan.trained.start),
            "run_stop": np.array(plan.trained.stop),
        },
    )
    return arrays


def _load_piece(workdir: Path, plan: GroupPlan, ident: str) -> dict[str, np.ndarray]:
    path = piece_path(workdir, plan)
    z = store.load_npz(path, required=PIECE_KEYS)
    if str(z["sweep_id"]) != ident:
        raise StoreError(f"{path}: results of another sweep (identity {z['sweep_id']}, this sweep is {ident})")
    held = range(int(z["run_start"]), int(z["run_stop"]))
    if held != plan.trained:
        raise StoreError(f"{path}: holds runs {held.start}..{held.stop}, shard expects {plan.share}")
    return {k: v for k, v in z.items() if k not in PIECE_KEYS}


def merge(cfg: ml_collections.ConfigDict, plans: list[GroupPlan], workdir: Path, ident: str, count: int):
    """Writes ``results/group<g>.npz`` and ``summary.json`` from every shard's results (call with the workdir lock
    held, once every shard is done); the files equal the unsharded sweep's bit for bit."""
    pieces: dict[int, list[dict]] = {p.index: [] for p in plans}
    for i in range(count):
        for p in shard_plans(cfg, plans, (i, count)):
            try:
                piece = _load_piece(workdir, p, ident)
            except StoreError as e:
                raise StoreError(
                    f"{e}; shard {i} of {count} wrote it: delete that file and re-run the shard "
                    f"(--num_shards={count} --shard_index={i}) to retrain it"
                ) from None
            pieces[p.index].append((p.trained.start, piece))
    all_arrays = []
    for plan in plans:
        parts = [a for _, a in sorted(pieces[plan.index], key=lambda t: t[0])]
        whole = {k: np.concatenate([a[k] for a in parts]) for k in parts[0]}
        if len(whole["diverged_at"]) != plan.runs:
            raise StoreError(
                f"{workdir}: shards hold {len(whole['diverged_at'])} runs of group {plan.index}, not {plan.runs}"
            )
        arrays = group_arrays(cfg, plan, [whole], ident)
        store.save_npz(workdir / "results" / f"group{plan.index}.npz", arrays)
        all_arrays.append(arrays)
    summary = summarize(cfg, plans, all_arrays)
    logs = [checkpoint.shard_dir(workdir, (i, count)) / "metrics.jsonl" for i in range(count)]
    metrics_log.merge(workdir / "metrics.jsonl", logs)  # before summary.json, which marks the merge done
    store.save_json(workdir / "summary.json", summary)
    return SweepResult(cfg, all_arrays, summary, workdir)


def _merged(workdir: Path, ident: str) -> SweepResult | None:
    """The merged sweep if ``results/`` and ``summary.json`` hold this sweep and load, else ``None``."""
    if not (workdir / "summary.json").exists():
        return None
    try:
        result = load_results(workdir)
    except StoreError:
        return None
    return result if sweep_id(result.config) == ident else None


def merge_if_complete(
    cfg, plans: list[GroupPlan], workdir: Path, ident: str, count: int, say: ProgressFn
) -> SweepResult | None:
    """Merges when every shard is done and the merged results are not there yet; ``None`` while shards are missing.
    Merged results of this sweep that load are returned as they are (also when shard folders were cleaned up since)."""
    results = [workdir / "results" / f"group{p.index}.npz" for p in plans]
    if all(r.exists() for r in results) and (merged := _merged(workdir, ident)) is not None:
        return merged
    missing = [i for i in range(count) if not is_done(workdir, (i, count), ident, cfg)]
    if missing:
        say(f"waiting for shard(s) {', '.join(map(str, missing))} of {count}; the last to finish writes the results")
        return None
    say(f"all {count} shards finished: merging into results/ and summary.json")
    return merge(cfg, plans, workdir, ident, count)


def run_shard(
    cfg: ml_collections.ConfigDict,
    workdir: str | Path,
    num_shards: int,
    shard_index: int,
    *,
    progress: ProgressFn | None = print,
    mesh=None,
    prepare: bool = True,
    merge_results: bool = True,
    label: str = "shard",
) -> SweepResult | None:
    """Trains shard ``shard_index`` of ``num_shards`` of ``cfg`` into ``workdir`` (resuming it), then merges if every
    shard is done.

    Args:
      mesh: the shard's devices (axis ``'runs'``); default: ``cfg.num_devices`` of this process's local devices.
      prepare: check and write ``config.json`` (an array-job shard); ``False``: only check it (process ``i > 0``
        of a multi-controller sweep, whose process 0 prepared the workdir).
      merge_results: merge when every shard is done (``False``: the caller merges, see
        :mod:`specjax.sweep.distribute`).
      label: the progress lines' prefix, ``[<label> i/N]``.

    Returns:
      the merged sweep if this call merged it (or found it merged), else ``None``.

    Raises:
      ConfigError: invalid config, shard index or count.
      SweepError, StoreError: unusable workdir or files, a shard already running, another shard count.
    """
    config_lib.validate(cfg)
    check_shard_args(num_shards, shard_index)
    check_runtime(cfg)
    mesh = mesh if mesh is not None else local_mesh(cfg.num_devices)
    accelerator = is_accelerator(mesh.devices.flat[0].platform)
    plans = plan_groups(cfg, mesh.devices.size, accelerator)
    preflight.check(cfg, plans, mesh.devices.size)
    shard = (shard_index, num_shards)
    mine = shard_plans(cfg, plans, shard, mesh.devices.size if accelerator and not cfg.runs_per_block else 0)
    ident = sweep_id(cfg)
    prefix = f"[{label} {shard_index}/{num_shards}] "

    def say(text: str) -> None:
        if progress is not None:
            progress(prefix + text)

    wd = check_workdir_path(workdir)
    with signals.deferred():
        with workdir_lock_waiting(wd):

            def check(w: Path) -> None:  # resuming: refused before anything is written
                check_shard_count(w, num_shards)
                checkpoint.check_checkpoints(w, mine, ident)

            if prepare:
                prepare_workdir(cfg, wd, False, check=check)
            else:
                check_prepared(wd, ident)
                check(wd)
            checkpoint.shard_dir(wd, shard).mkdir(parents=True, exist_ok=True)
            lock = WorkdirLock(lock_path(wd, shard), what=f"shard {shard_index} of {num_shards}")
            lock.__enter__()
        try:
            store.remove_stale_temporaries(checkpoint.shard_dir(wd, shard))  # a killed write's; only this shard's
            done = is_done(wd, shard, ident, cfg)
            merged = None if done else _merged(wd, ident)
            if done:
                say("already finished")
            elif merged is not None:
                say("the sweep is already merged (results/, summary.json): nothing to train")
                return merged
            else:
                if done_path(wd, shard).exists():
                    gone = [p.name for p in checkpoint.shard_result_paths(wd, cfg, shard) if not p.exists()]
                    say(f"finished before, but its results file(s) {', '.join(gone)} are missing: retraining them")
                runs = sum(len(p.trained) for p in mine)
                say(f"training {runs} run(s) in {len(mine)} group share(s) on {mesh.devices.size} device(s)")
                train_groups(
                    cfg,
                    mine,
                    wd,
                    mesh,
                    say if progress is not None else None,
                    ident,
                    finish=lambda plan, waves: _save_piece(wd, plan, waves, ident),
                    metrics_path=checkpoint.shard_dir(wd, shard) / "metrics.jsonl",
                )
                layout = layout_record(mine, mesh.devices.size)  # this shard's devices and blocks
                store.save_json(
                    done_path(wd, shard), {"sweep_id": ident, "runs": runs, "layout": layout, "time": time.time()}
                )
                say("finished")
        finally:
            lock.__exit__(None, None, None)
        if not merge_results:
            return None
        with workdir_lock_waiting(wd):
            return merge_if_complete(cfg, plans, wd, ident, num_shards, say)


__all__ = ["LOCK_WAIT_S", "merge", "merge_if_complete", "missing_shards", "run_shard", "shard_plans"]
