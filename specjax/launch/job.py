"""The array job: an executor (submitit's SLURM or local one), the shard jobs it runs, and waiting for them.

Each job is :func:`run_shard_job` in a fresh Python process: it trains shard ``i`` of ``N`` of the sweep with
:func:`specjax.sweep.shards.run_shard` into the shared workdir; the shard that finds every shard done merges and draws
the figure. submitit is the optional extra ``specjax[cluster]``.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from pathlib import Path

from specjax.errors import SpecjaxError

#: The one line shown when submitit is missing.
EXTRA_HINT = "submitit is not installed: the launcher needs the cluster extra (pip install 'specjax[cluster]')"
EXECUTORS = ("slurm", "local")


def _submitit():
    try:
        return importlib.import_module("submitit")
    except ImportError:
        raise SpecjaxError(EXTRA_HINT) from None


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
      SpecjaxError: unknown kind, or submitit missing (:data:`EXTRA_HINT`).
    """
    if kind not in EXECUTORS:
        raise SpecjaxError(f"executor: unknown value {kind!r}; expected one of {EXECUTORS}")
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


def run_shard_job(plain_config: dict, workdir: str, num_shards: int, shard_index: int, cpus: int | None = None) -> str:
    """One shard, in the job's own process: trains it, merges if it is the last, draws the figure if it merged.

    Returns:
      ``'merged'`` or ``'trained'``.
    """
    from specjax import cli

    cli.configure_cpu_devices(cpus)  # before JAX starts; no effect on GPU computations
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


def submit_shards(executor, plain_config: dict, workdir: Path, num_shards: int, cpus: int | None = None) -> list:
    """Submits every shard as one array job; returns the jobs, shard ``i`` at index ``i``."""
    n = num_shards
    return executor.map_array(
        run_shard_job, [plain_config] * n, [str(workdir)] * n, [n] * n, list(range(n)), [cpus] * n
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


def wait_for(jobs: list) -> list[ShardOutcome]:
    """Waits for every job; a failed one is reported with its error's last line and its log paths."""
    outcomes = []
    for i, job in enumerate(jobs):
        try:
            state, error = job.result(), ""
        except Exception as e:  # noqa: BLE001 -- submitit raises its own errors for failed or killed jobs
            state, error = "failed", _last_error(str(e)) or type(e).__name__
        outcomes.append(ShardOutcome(i, str(job.job_id), state, Path(job.paths.stdout), Path(job.paths.stderr), error))
    return outcomes
