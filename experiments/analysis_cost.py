"""Cost of the issue-3 analyses on a 640-run two-layer sweep, relative to the sweep's training time.

The README sweep of the paper (docs/theory.md §7) at ``m = 20``: ``d = 100``, ``C = 50``, ``N_eval = 10000``,
``over_realization`` 1, 2, 5, 10 (``n = 20 ... 200``), 160 runs per width (640 in all), ``10^5`` SGD steps of batch 16
per run. For each width this script builds one block of runs with the engine (:class:`specjax.engine.Program`), times
``--train-steps`` training steps and each analysis vmapped over the block (after compiling), and extrapolates both to
the full sweep. Training and analyses alternate, so a shared, loaded machine slows both alike.

Usage::

    python experiments/analysis_cost.py                  # block of 8 runs, 1000 timed steps
    python experiments/analysis_cost.py --block=4 --train-steps=500 --multis=1,10
"""

from __future__ import annotations

import argparse
import functools
import time

import jax
import jax.numpy as jnp

from specjax import engine
from specjax.theory import lemma1, reports

SWEEP_RUNS_PER_WIDTH = 160  # 640 runs over 4 widths
SWEEP_STEPS = 100_000
SWEEP_EVALS = 101  # stats at initialisation and after each of 100 epochs


def best_time(fn, *args, repeats: int = 2) -> float:
    """Seconds of the fastest of ``repeats`` calls, after one compiling call."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--block", type=int, default=8, help="runs per vmapped call")
    parser.add_argument("--train-steps", type=int, default=1000, help="SGD steps timed per width")
    parser.add_argument("--multis", default="1,2,5,10", help="over-realizations to time")
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)

    analyses = {
        "analyze_run (L-shape, observers, Hungarian, Thm 3, Thm 5)": jax.vmap(reports.analyze_run),
        "lemma1_statistics (betas, Hs)": jax.vmap(lemma1.lemma1_statistics),
        "node_residues R_j": jax.vmap(functools.partial(reports.node_residues, chunk_size=500)),
    }
    total_train = 0.0
    total = {name: 0.0 for name in analyses}
    for multi in (int(m) for m in args.multis.split(",")):
        spec = engine.Spec(
            d=100,
            teacher_widths=(20,),
            c=50,
            over_realization=multi,
            n_train=10_000,
            n_eval=10_000,
            batch_size=16,
            dtype="float64",
        )
        program = engine.Program(spec, chunk_steps=args.train_steps, mesh=engine.make_mesh(1))
        hp = engine.Hparams.broadcast(
            args.block, "float64", teacher_polarity=1.0, lr=0.01, data_std=1.5, init_scale=0.005
        )
        keys = jax.vmap(engine.seed_key, (None, 0))(1, jnp.arange(args.block))
        teacher, data, state = program.init(hp, keys)
        state, _ = program.train(state, teacher, data, hp)  # compile and warm up
        jax.block_until_ready(state)
        start = time.perf_counter()
        state, _ = program.train(state, teacher, data, hp)
        jax.block_until_ready(state)
        train_seconds = (
            (time.perf_counter() - start) * (SWEEP_STEPS / args.train_steps) * (SWEEP_RUNS_PER_WIDTH / args.block)
        )
        total_train += train_seconds
        print(
            f"n = {spec.student_widths[1]:4d}: sweep training {train_seconds:9.1f} s "
            f"({args.block} runs x {args.train_steps} steps timed)"
        )
        for name, fn in analyses.items():
            seconds = best_time(jax.jit(fn), state.student, teacher, data.x_eval)
            per_sweep = seconds * SWEEP_RUNS_PER_WIDTH / args.block
            total[name] += per_sweep
            print(
                f"    {name:60s} {per_sweep:8.1f} s per eval point of the sweep "
                f"({1000 * seconds / args.block:7.1f} ms per run), {100 * per_sweep / train_seconds:5.2f} %"
            )
    print(f"\nall widths: sweep training {total_train:.0f} s")
    for name, seconds in total.items():
        print(
            f"    {name:60s} once: {seconds:7.1f} s = {100 * seconds / total_train:5.2f} %;"
            f" at all {SWEEP_EVALS} evals: {100 * SWEEP_EVALS * seconds / total_train:7.1f} %"
        )


if __name__ == "__main__":
    main()
