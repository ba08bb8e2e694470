"""``python -m specjax.sweep`` (and the ``specjax-sweep`` script): the absl command line over
:func:`specjax.sweep.run_sweep`.

    python -m specjax.sweep --config=experiments/configs/quickstart.py --workdir=runs/quickstart [--config.seeds=16]

Never imported by the package: ``import specjax`` does not load it, so ``-m`` runs it exactly once.
"""

from __future__ import annotations

from pathlib import Path

from absl import logging

from specjax import config as config_lib
from specjax.errors import StoreError

FIGURE = "success_rate"


def check_invocation(overwrite: bool, num_shards: int, shard_index: int) -> tuple[int, int] | None:
    """The command's flags against each other, for the real command and ``--dry_run`` alike.

    Returns:
      ``(index, count)`` of the shard this command trains (an array-job shard, or this process of a multi-process
      sweep), ``None`` for the whole sweep in one process.

    Raises:
      ConfigError: ``--num_shards`` with several processes, ``--overwrite`` with a shard, a shard index or count out
        of range (naming the flag).
    """
    import jax

    from specjax.sweep import shards

    if jax.process_count() > 1:
        if num_shards != 1:
            raise config_lib.ConfigError("num_shards: a multi-process sweep shards by process; drop --num_shards")
        return jax.process_index(), jax.process_count()
    if num_shards == 1 and shard_index == 0:
        return None
    if overwrite:
        raise config_lib.ConfigError(
            "overwrite: a shard cannot discard the other shards' work; delete the workdir first "
            "(python -m specjax.launch --overwrite does it before submitting)"
        )
    shards.check_shard_args(num_shards, shard_index)
    return shard_index, num_shards


def print_plan(cfg, workdir: str, overwrite: bool, num_shards: int, shard_index: int) -> None:
    """``--dry_run``: prints the plan and what the command would do in ``workdir`` (:mod:`specjax.sweep.dryrun`);
    raises what the command would refuse. Writes nothing."""
    from specjax.sweep import dryrun, plan, run

    shard = check_invocation(overwrite, num_shards, shard_index)
    run.check_runtime(cfg)
    mesh = run.local_mesh(cfg.num_devices)
    accelerator = plan.is_accelerator(mesh.devices.flat[0].platform)
    dryrun.forecast(
        cfg,
        workdir,
        mesh.devices.size,
        accelerator=accelerator,
        overwrite=overwrite,
        shard=shard,
        emit=lambda line: print(line, flush=True),
    )


def check_log_file(path: str | None) -> None:
    """Refuses a ``--log_file`` that cannot be opened for appending (a directory, a missing folder), writing nothing;
    the real command and ``--dry_run`` alike."""
    if not path:
        return
    if Path(path).is_dir():
        raise StoreError(f"{path}: cannot open the log file (Is a directory)")
    if not Path(path).parent.is_dir():
        raise StoreError(f"{path}: cannot open the log file (No such file or directory)")


def attach_log_file(path: str | None) -> None:
    """``--log_file``: progress and absl INFO messages are appended to ``path`` as well."""
    check_log_file(path)
    if not path:
        return
    import logging as std_logging

    try:
        handler = std_logging.FileHandler(path)
    except OSError as e:
        raise StoreError(f"{path}: cannot open the log file ({e.strerror})") from None
    handler.setFormatter(std_logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.get_absl_logger()
    logger.addHandler(handler)
    logger.setLevel(std_logging.INFO)
    logging.get_absl_handler().setLevel(std_logging.WARNING)  # the console keeps its plain progress lines


def main(argv: list[str]) -> None:
    """absl main: load the config, run the sweep, draw the success-rate figure."""
    from absl import flags

    from specjax import enable_float64
    from specjax.figures import plots

    if len(argv) > 1:
        raise config_lib.ConfigError(f"unexpected argument(s) {argv[1:]}")
    f = flags.FLAGS
    cfg = f.config
    config_lib.validate(cfg)
    for ext in ("png", "pdf"):  # output paths checked before any compute
        path = Path(f.workdir) / f"{FIGURE}.{ext}"
        if path.is_dir():
            raise StoreError(f"{path}: the figure's path is a directory; move it away")
    if f.target_ci is not None:
        from specjax.sweep import adaptive

        adaptive.check_target(f.target_ci, f.max_seeds, cfg.seeds)
        if check_invocation(f.overwrite, f.num_shards, f.shard_index) is not None:
            raise config_lib.ConfigError(
                "target_ci: grows the seeds of a sweep run in one process; drop --num_shards (or run the shards, "
                "then grow the finished sweep with --target_ci in one process)"
            )
    enable_float64()
    check_log_file(f.log_file)
    if f.dry_run:
        print_plan(cfg, f.workdir, f.overwrite, f.num_shards, f.shard_index)
        if f.target_ci is not None:
            print(
                f"then --target_ci={f.target_ci:g}: seeds grow (up to --max_seeds={f.max_seeds}) until every "
                "setting's 95% Wilson half-width is within it"
            )
        return
    attach_log_file(f.log_file)

    def progress(line: str) -> None:
        print(line, flush=True)
        logging.info(line)

    if f.target_ci is not None:
        result = adaptive.run_to_target(cfg, f.workdir, f.target_ci, f.max_seeds, f.overwrite, progress)
    else:
        result = run_scaled(cfg, f.workdir, f.overwrite, f.num_shards, f.shard_index, progress)
    if result is None:
        return  # a shard or process that did not merge: the merging one writes the figure
    figure = Path(f.workdir) / FIGURE
    summary = Path(f.workdir) / "summary.json"
    stale = [figure.with_suffix(f".{e}") for e in ("png", "pdf")]
    if all(p.exists() and p.stat().st_mtime >= summary.stat().st_mtime for p in stale):
        print(f"{f.workdir}: sweep complete (results, summary and figure already written)")
        return
    paths = plots.success_rate_figure(result.summary, figure)
    print(f"wrote {f.workdir}/summary.json, results/*.npz and {', '.join(str(p) for p in paths)}")


def run_scaled(cfg, workdir: str, overwrite: bool, num_shards: int, shard_index: int, progress):
    """One process (:func:`~specjax.sweep.run_sweep`), an array-job shard (:func:`~specjax.sweep.shards.run_shard`)
    or a process of a multi-controller sweep (:func:`~specjax.sweep.distribute.run_processes`); the result when
    this call holds the whole sweep, else ``None``."""
    import jax

    from specjax.sweep import distribute, run_sweep, shards

    shard = check_invocation(overwrite, num_shards, shard_index)
    if shard is None:
        return run_sweep(cfg, workdir, overwrite=overwrite, progress=progress)
    if jax.process_count() > 1:
        return distribute.run_processes(cfg, workdir, overwrite=overwrite, progress=progress)
    return shards.run_shard(cfg, workdir, num_shards, shard_index, progress=progress)


def run_cli() -> None:
    """Entry point of ``python -m specjax.sweep`` and the ``specjax-sweep`` script."""
    from absl import flags
    from ml_collections import config_flags

    from specjax import cli
    from specjax.sweep import adaptive

    cli.configure_cpu_devices()
    config_flags.DEFINE_config_file(
        "config", None, "Sweep config file, e.g. experiments/configs/two_layer.py.", lock_config=True
    )
    flags.DEFINE_string("workdir", None, "Output folder (created; resumed if it holds the same sweep).")
    flags.DEFINE_bool("overwrite", False, "Discard a previous sweep in --workdir and start fresh.")
    flags.DEFINE_bool("dry_run", False, "Print the plan (groups, runs, blocks, waves, memory, time) and exit.")
    flags.DEFINE_string("log_file", None, "Also append progress lines and absl INFO messages to this file.")
    flags.DEFINE_integer("num_shards", 1, "Array job: the sweep's runs split into this many shards ...")
    flags.DEFINE_integer("shard_index", 0, "... of which this command trains this one (0-based); the last merges.")
    flags.DEFINE_float(
        "target_ci",
        None,
        "Grow the seeds until every setting's success-rate interval (95% Wilson, half-width of its widest teacher "
        "node) is at most this, e.g. 0.05 ...",
    )
    flags.DEFINE_integer(
        "max_seeds", adaptive.DEFAULT_MAX_SEEDS, "... or the sweep has this many seeds (with --target_ci)."
    )
    flags.mark_flags_as_required(["config", "workdir"])
    from specjax.sweep import distribute

    cli.run(main, "specjax.sweep", on_refusal=distribute.report_failure)


if __name__ == "__main__":
    run_cli()
