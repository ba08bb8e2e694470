"""Soak test: a long sweep with a checkpoint after every chunk, watching the process's memory.

    python experiments/soak.py --workdir=/tmp/soak            # 16 runs x 100,000 steps = 1.6M run-steps

One shape group of the tiny two-layer problem (d=8, m=3, C=4, 2x student), 2 polarities x 2 learning rates x 4
seeds, ``epochs`` evaluations of ``steps_per_epoch`` steps, one chunk per evaluation, so the sweep writes one
checkpoint per chunk and the progress callback fires once per evaluation (``--eval_every`` epochs; by default
every chunk). At each call it samples the resident set
size (``VmRSS`` of ``/proc/self/status``; ``ru_maxrss`` where ``/proc`` is missing). It prints RSS after the first
chunk (compilation done), at 10% and at the end, and writes every sample to ``WORKDIR/soak.json``.

Memory is flat when RSS at the end is within ``--tolerance_mb`` of RSS at 10% of the sweep: the history of
evaluations grows by design (a few kB per evaluation here) but nothing else may. Exit status 1 if it is not.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from absl import app, flags

from specjax import cli

FLAGS = flags.FLAGS


def rss_mb() -> float:
    """Current resident set size in MiB (peak size where ``/proc`` is not available)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def soak_config(epochs: int, steps_per_epoch: int, seeds: int, eval_every: int = 1):
    from specjax.config import default_config

    cfg = default_config()
    cfg.d, cfg.m, cfg.c = 8, 3, 4
    cfg.over_realization = (2,)
    cfg.teacher_polarity = (0.0, 1.0)
    cfg.lr = (0.05, 0.1)
    cfg.init_scale = (0.1,)
    cfg.seeds = seeds
    cfg.n_train, cfg.n_eval, cfg.batch_size = 256, 256, 8
    cfg.epochs, cfg.steps_per_epoch, cfg.eval_every = epochs, steps_per_epoch, eval_every
    cfg.chunk_steps = steps_per_epoch  # one chunk, one checkpoint per epoch
    cfg.runs_per_block = 8
    cfg.checkpoint = True
    return cfg


def soak(workdir: str, epochs: int, steps_per_epoch: int, seeds: int, eval_every: int = 1) -> dict:
    """Runs the soak sweep; returns the RSS samples and the sizes that matter."""
    from specjax import enable_float64, sweep

    enable_float64()
    cfg = soak_config(epochs, steps_per_epoch, seeds, eval_every)
    samples: list[tuple[float, float]] = []
    start = time.perf_counter()
    rss_before = rss_mb()

    def progress(line: str) -> None:
        samples.append((time.perf_counter() - start, rss_mb()))

    result = sweep.run_sweep(cfg, workdir, overwrite=True, progress=progress)
    runs = 4 * seeds
    ten = samples[len(samples) // 10]
    ckpt = Path(workdir) / "checkpoints" / "group0_wave0.npz"
    report = {
        "run_steps": runs * epochs * steps_per_epoch,
        "checkpoints_written": epochs + 1,
        "evaluations": epochs // eval_every + 1,
        "wall_s": time.perf_counter() - start,
        "rss_mb_before_sweep": rss_before,
        "rss_mb_after_first_chunk": samples[0][1],
        "rss_mb_at_10_percent": ten[1],
        "rss_mb_at_end": samples[-1][1],
        "rss_mb_max": max(r for _, r in samples),
        "checkpoint_bytes_at_end": ckpt.stat().st_size,
        "diverged_runs": int(sum(sum(g["diverged"]) for g in result.summary["groups"])),
        "samples": samples,
    }
    (Path(workdir) / "soak.json").write_text(json.dumps(report, indent=1))
    return report


def define_flags() -> None:
    """Command-line flags (defined only when run as a script, so importing this module defines none)."""
    flags.DEFINE_string("workdir", "/tmp/specjax-soak", "Output folder (a previous soak there is overwritten).")
    flags.DEFINE_integer("epochs", 1000, "Epochs = chunks = checkpoints.")
    flags.DEFINE_integer("steps_per_epoch", 100, "SGD steps per chunk.")
    flags.DEFINE_integer("seeds", 4, "Seeds per setting (4 settings).")
    flags.DEFINE_integer("eval_every", 1, "Epochs per evaluation (a chunk and a checkpoint every epoch).")
    flags.DEFINE_float("tolerance_mb", 20.0, "Allowed RSS growth from 10% of the sweep to its end.")


def main(argv: list[str]) -> None:
    del argv
    r = soak(FLAGS.workdir, FLAGS.epochs, FLAGS.steps_per_epoch, FLAGS.seeds, FLAGS.eval_every)
    growth = r["rss_mb_at_end"] - r["rss_mb_at_10_percent"]
    print(
        f"{r['run_steps']:,} run-steps, {r['checkpoints_written']} checkpoints, {r['evaluations']} evaluations in "
        f"{r['wall_s']:.0f} s; RSS MiB: "
        f"before {r['rss_mb_before_sweep']:.0f}, after first chunk {r['rss_mb_after_first_chunk']:.0f}, "
        f"at 10% {r['rss_mb_at_10_percent']:.0f}, end {r['rss_mb_at_end']:.0f}, max {r['rss_mb_max']:.0f} "
        f"(growth 10%->end {growth:+.1f}); last checkpoint {r['checkpoint_bytes_at_end'] / 1e6:.2f} MB"
    )
    if growth > FLAGS.tolerance_mb:
        print(f"memory grew by {growth:.1f} MiB > {FLAGS.tolerance_mb} MiB", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    define_flags()
    cli.configure_cpu_devices()
    app.run(main)
