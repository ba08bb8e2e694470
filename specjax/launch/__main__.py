"""``python -m specjax.launch``: a sweep's shards as one array job (SLURM, or local subprocesses) via submitit.

    python -m specjax.launch --config=experiments/configs/two_layer.py --workdir=/shared/runs/two_layer \\
        --num_shards=8 --executor=slurm --slurm_partition=gpu --gpus_per_shard=1 --timeout_min=240 [--wait]

The workdir (on a filesystem every node sees) is checked and prepared before anything is submitted; shard ``i`` runs
``specjax.sweep.shards.run_shard`` and the last shard to finish writes ``results/``, ``summary.json`` and the
figure. Re-submitting the same command resumes: finished shards do nothing, killed ones continue from their
checkpoints. Logs: ``<workdir>/.launch/``. Every job uses the launcher's persistent compilation cache
(``--compilation_cache``), so shards of the same shapes compile once; ``--wait`` prints the shards' states as they
change (and every minute).
"""

from __future__ import annotations

import sys

from specjax import config as config_lib
from specjax.errors import SpecjaxError

LOGS = ".launch"


def main(argv: list[str]) -> None:
    """absl main: validate, prepare the workdir, submit, and (``--wait``) report each shard."""
    from absl import flags

    from specjax import cli, enable_float64
    from specjax.launch import job
    from specjax.sweep import shards
    from specjax.sweep.workdir import check_workdir_path, prepare_workdir

    if len(argv) > 1:
        raise config_lib.ConfigError(f"unexpected argument(s) {argv[1:]}")
    f = flags.FLAGS
    cfg = config_lib.validate(f.config)
    job.check_launch(  # before anything is created: the workdir is made only for jobs that can run
        f.executor,
        num_shards=f.num_shards,
        timeout_min=f.timeout_min,
        gpus_per_shard=f.gpus_per_shard,
        cpus_per_shard=f.cpus_per_shard,
        max_parallel=f.max_parallel,
    )
    enable_float64()
    wd = check_workdir_path(f.workdir).resolve()
    cpus = job.cpus_per_shard(f.executor, f.cpus_per_shard, f.num_shards, len(cli.usable_cores()))
    executor = job.make_executor(  # submitit missing: one line before anything is written
        f.executor,
        wd / LOGS,
        name=f"specjax-{wd.name}",
        timeout_min=f.timeout_min,
        slurm_partition=f.slurm_partition,
        gpus_per_shard=f.gpus_per_shard,
        cpus_per_shard=cpus,
        max_parallel=f.max_parallel,
    )
    with shards.workdir_lock_waiting(wd):
        prepare_workdir(cfg, wd, f.overwrite)
    plain = config_lib.to_plain(cfg)
    # The launcher's cache folder (--compilation_cache, else $JAX_COMPILATION_CACHE_DIR or the default), for every job.
    cache = cli.configure_compilation_cache(f.compilation_cache if f["compilation_cache"].present else None)
    jobs = job.submit_shards(executor, plain, wd, f.num_shards, cpus, cache)
    ids = ", ".join(str(j.job_id) for j in jobs)
    print(f"submitted {f.num_shards} shard(s) of {wd} ({f.executor}): job(s) {ids}; logs in {wd / LOGS}", flush=True)
    if not f.wait:
        print("re-run this command to resume; specjax.load_results(workdir) names the shards still missing")
        return
    outcomes = job.wait_for(jobs, progress=lambda line: print(line, flush=True))
    failed = [o for o in outcomes if o.state == "failed"]
    for o in failed:
        print(f"shard {o.shard} (job {o.job_id}) failed: {o.error}; logs: {o.stdout} {o.stderr}", file=sys.stderr)
    if failed:
        raise SpecjaxError(f"{len(failed)} of {f.num_shards} shard(s) failed; re-run the same command to resume them")
    print(f"all {f.num_shards} shard(s) finished; results in {wd}")


def run_cli() -> None:
    """Entry point of ``python -m specjax.launch``."""
    from absl import flags
    from ml_collections import config_flags

    from specjax import cli

    config_flags.DEFINE_config_file("config", None, "Sweep config file.", lock_config=True)
    flags.DEFINE_string("workdir", None, "Output folder on a filesystem every shard sees.")
    flags.DEFINE_integer("num_shards", 1, "Shards (array tasks) to split the sweep's runs into.")
    flags.DEFINE_enum("executor", "slurm", ["slurm", "local"], "slurm: an array job; local: subprocesses here.")
    flags.DEFINE_string("slurm_partition", None, "SLURM partition.")
    flags.DEFINE_integer("timeout_min", 24 * 60, "Time limit of each shard, minutes.")
    flags.DEFINE_integer("gpus_per_shard", 0, "GPUs per shard.")
    flags.DEFINE_integer(
        "cpus_per_shard",
        None,
        "CPU cores per shard (and CPU devices of a CPU shard); default with --executor=local: an equal share of "
        "this machine's cores (the shards run at once).",
    )
    flags.DEFINE_integer("max_parallel", 0, "SLURM: at most this many shards at once (0: no limit).")
    flags.DEFINE_bool("wait", False, "Wait for every shard and report failed ones with their log paths.")
    flags.DEFINE_bool("overwrite", False, "Discard a previous sweep in --workdir before submitting.")
    flags.mark_flags_as_required(["config", "workdir"])
    cli.run(main, "specjax.launch")


if __name__ == "__main__":
    run_cli()
