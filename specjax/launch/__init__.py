"""Submitting a sweep's shards as an array job (SLURM, or local subprocesses) through submitit: ``python -m
specjax.launch`` (:mod:`specjax.launch.__main__`); each job runs :func:`specjax.launch.job.run_shard_job`."""

from specjax.launch.job import EXTRA_HINT, ShardOutcome, make_executor, run_shard_job, submit_shards, wait_for

__all__ = ["EXTRA_HINT", "ShardOutcome", "make_executor", "run_shard_job", "submit_shards", "wait_for"]
