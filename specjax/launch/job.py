"""The array job: an executor (submitit's SLURM or local one), the shard jobs it runs, and waiting for them.

Each job is :func:`run_shard_job` in a fresh Python process: it trains shard ``i`` of ``N`` of the sweep with
:func:`specjax.sweep.shards.run_shard` into the shared workdir; the shard that finds every shard done merges and draws
the figure. submitit is the optional extra ``specjax[cluster]``.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from specjax.errors import SpecjaxError

#: The one line shown when submitit is missing.
EXTRA_HINT = "submitit is not installed: the launcher needs the cluster extra (pip install 'specjax[cluster]')"
EXECUTORS = ("slurm", "local")
#: While waiting, a progress line at least this often (and whenever a shard's state changes).
PROGRESS_EVERY_S = 60.0
#: How often the jobs' states are polled while waiting.
POLL_S = 2.0


def _submitit():
    try:
        return importlib.import_module("submitit")
    except ImportError:
        raise SpecjaxError(EXTRA_HINT) from None


def check_launch(
    kind: str,
    *,
    num_shards: int = 1,
    timeout_min: int = 60 * 24,
    gpus_per_shard: int = 0,
    cpus_per_shard: int | None = None,
    max_parallel: int = 0,
) -> None:
    """Refuses, before anything is created or submitted, what cannot run: an unknown executor, submitit missing,
    SLURM asked for where it is not installed, or a count no job could use.

    Raises:
      SpecjaxError: one line naming the flag.
    """
    if kind not in EXECUTORS:
        raise SpecjaxError(f"--executor: unknown value {kind!r}; expected one of {EXECUTORS}")
    minimums = {
        "num_shards": (num_shards, 1),
        "timeout_min": (timeout_min, 1),
        "gpus_per_shard": (gpus_per_shard, 0),
        "cpus_per_shard": (1 if cpus_per_shard is None else cpus_per_shard, 1),
        "max_parallel": (max_parallel, 0),
    }
    for name, (value, least) in minimums.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise SpecjaxError(f"--{name}: must be an integer >= {least}, got {value!r}")
    _submitit()
    missing = [c for c in ("sbatch", "srun") if shutil.which(c) is None]
    if kind == "slurm" and missing:
        raise SpecjaxError(
            f"--executor=slurm: SLURM is not installed here ({' and '.join(missing)} not found on PATH); submit from "
            "a SLURM login node, or use --executor=local to run the shards as subprocesses of this machine"
        )


def make_executor(
    kind: str,
    folder: Path,
    *,
    name: str = "specjax",
    timeout_min: int = 60 * 24,
    slurm_partition: str | None = None,
    gpus_per_shard: int = 0,
    cpus_per_shard: int | None = None,
    max_parallel: int = 0,
):
    """A submitit executor whose jobs log into ``folder``.

    Args:
      kind: ``'slurm'`` (an array job on the cluster) or ``'local'`` (one subprocess per shard, all at once).
      max_parallel: SLURM: at most this many shards run at once (0: no limit).

    Raises:
      SpecjaxError: unknown kind, submitit missing (:data:`EXTRA_HINT`), SLURM missing (:func:`check_launch`).
    """
    check_launch(kind, gpus_per_shard=gpus_per_shard, cpus_per_shard=cpus_per_shard, max_parallel=max_parallel)
    submitit = _submitit()
    executor = submitit.AutoExecutor(folder=folder, cluster=kind)
    params: dict = {"timeout_min": int(timeout_min), "name": name, "tasks_per_node": 1, "nodes": 1}
    if gpus_per_shard:
        params["gpus_per_node"] = int(gpus_per_shard)
    if cpus_per_shard:
        params["cpus_per_task"] = int(cpus_per_shard)
    if kind == "slurm":
        if slurm_partition:
            params["slurm_partition"] = slurm_partition
        if max_parallel:
            params["slurm_array_parallelism"] = int(max_parallel)
    executor.update_parameters(**params)
    return executor


def cpus_per_shard(kind: str, asked: int | None, num_shards: int, cores: int) -> int | None:
    """CPU cores (devices) of each shard: ``asked``, or with the local executor, whose shards all run at once on
    this machine, an equal share of its ``cores`` (each taking every core oversubscribed it: 1.22-1.25x slower);
    ``None`` (every core of the job's allocation) on a cluster."""
    if asked is not None or kind != "local":
        return asked
    return max(1, cores // max(num_shards, 1))


def run_shard_job(
    plain_config: dict,
    workdir: str,
    num_shards: int,
    shard_index: int,
    cpus: int | None = None,
    compilation_cache: str | None = None,
) -> str:
    """One shard, in the job's own process: trains it, merges if it is the last, draws the figure if it merged.

    Args:
      cpus: CPU devices of the job (one per core; see :func:`specjax.cli.configure_cpu_devices`).
      compilation_cache: the persistent compilation cache folder the launcher uses (``None``: off), switched on
        before anything compiles, so shards reuse each other's and earlier runs' compiled programs.

    Returns:
      ``'merged'`` or ``'trained'``.
    """
    from specjax import cli

    cli.configure_cpu_devices(cpus)  # before JAX starts; no effect on GPU computations
    cli.configure_compilation_cache(compilation_cache or "none")
    from specjax import config as config_lib
    from specjax import enable_float64
    from specjax.figures import plots
    from specjax.sweep import shards

    enable_float64()
    cfg = config_lib.validate(config_lib.from_plain(plain_config))
    result = shards.run_shard(cfg, workdir, num_shards, shard_index, progress=lambda s: print(s, flush=True))
    if result is None:
        return "trained"
    paths = plots.success_rate_figure(result.summary, Path(workdir) / "success_rate")
    print(f"wrote {workdir}/summary.json, results/*.npz and {', '.join(str(p) for p in paths)}", flush=True)
    return "merged"


def submit_shards(
    executor,
    plain_config: dict,
    workdir: Path,
    num_shards: int,
    cpus: int | None = None,
    compilation_cache: str | Path | None = None,
) -> list:
    """Submits every shard as one array job; returns the jobs, shard ``i`` at index ``i``.

    Args:
      compilation_cache: the folder every job uses as its persistent compilation cache (``None``: off).
    """
    n = num_shards
    cache = None if compilation_cache is None else str(compilation_cache)
    return executor.map_array(
        run_shard_job, [plain_config] * n, [str(workdir)] * n, [n] * n, list(range(n)), [cpus] * n, [cache] * n
    )


@dataclasses.dataclass(frozen=True)
class ShardOutcome:
    """How one shard's job ended: ``state`` is ``'merged'``, ``'trained'`` or ``'failed'``; ``error`` its last line."""

    shard: int
    job_id: str
    state: str
    stdout: Path
    stderr: Path
    error: str = ""


def _last_error(text: str) -> str:
    """The last ``SomeError: message`` line of a traceback (what the job raised), or the last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    raised = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Interrupt|Interrupted|Lost)\b", line)]
    return (raised or lines or [""])[-1]


def _outcome(shard: int, job) -> ShardOutcome:
    """How a finished job ended (its result, or the last line of what it raised)."""
    try:
        state, error = job.result(), ""
    except Exception as e:  # noqa: BLE001 -- submitit raises its own errors for failed or killed jobs
        state, error = "failed", _last_error(str(e)) or type(e).__name__
    return ShardOutcome(shard, str(job.job_id), state, Path(job.paths.stdout), Path(job.paths.stderr), error)


def _queued(job) -> bool:
    try:
        return str(job.state).upper() in ("PENDING", "REQUEUED", "CONFIGURING", "SUSPENDED")
    except Exception:  # noqa: BLE001 -- a state query that fails says nothing; count the job as running
        return False


def wait_for(
    jobs: list,
    progress: Callable[[str], None] | None = print,
    every_s: float = PROGRESS_EVERY_S,
    poll_s: float = POLL_S,
) -> list[ShardOutcome]:
    """Waits for every job, calling ``progress`` with a line ``shards: D done, R running, Q queued, F failed of N``
    when the counts change and at least every ``every_s`` seconds; a failed job is reported with its error's last
    line and its log paths."""
    start = time.monotonic()
    outcomes: dict[int, ShardOutcome] = {}
    last, last_at = None, start
    while True:
        for i, job in enumerate(jobs):
            if i not in outcomes and job.done():
                outcomes[i] = _outcome(i, job)
        failed = sum(o.state == "failed" for o in outcomes.values())
        queued = sum(_queued(job) for i, job in enumerate(jobs) if i not in outcomes)
        running = len(jobs) - len(outcomes) - queued
        counts = (len(outcomes) - failed, running, queued, failed)
        now = time.monotonic()
        if progress is not None and (counts != last or now - last_at >= every_s):
            elapsed = int(now - start)
            progress(
                f"[{elapsed // 3600}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}] shards: {counts[0]} done, "
                f"{running} running, {queued} queued, {failed} failed of {len(jobs)}"
            )
            last, last_at = counts, now
        if len(outcomes) == len(jobs):
            return [outcomes[i] for i in range(len(jobs))]
        time.sleep(poll_s)
