"""Stage 2 of a sweep, compile and train: a group's program, and the loop over chunks of one wave's blocks.

Each block of a wave is one record (:class:`Block`: its runs, inputs, teacher, data and state). Between chunks the
host gathers the chunk statistics, evaluates at evaluation points, prints progress and writes the checkpoint; it
never touches a single SGD step. At most :data:`MAX_IN_FLIGHT` block programs are dispatched at a time: XLA's CPU
runtime aborts when too many multi-device programs wait at once.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import time
from pathlib import Path

import jax
import numpy as np

from specjax.core import metrics
from specjax.engine import ChunkStats, Hparams, Program, RunState, Spec
from specjax.sweep import checkpoint, signals
from specjax.sweep.metrics_log import setting_summaries
from specjax.sweep.plan import GroupPlan, run_inputs, snapshot_epochs, step_cost
from specjax.sweep.progress import Progress
from specjax.sweep.record import History, record_eval, wave_result
from specjax.sweep.schema import key

#: Most block programs dispatched and not yet finished at any time.
MAX_IN_FLIGHT = 4


@functools.lru_cache(maxsize=16)
def cached_program(spec: Spec, chunk_steps: int, mesh) -> Program:
    """The :class:`~specjax.engine.Program` of a shape group, shared by the sweeps of one process so that calling
    :func:`~specjax.sweep.run_sweep` again (research scripts, tests) does not compile the same program twice.
    Sharing is safe: programs are pure and immutable."""
    return Program(spec, chunk_steps, mesh)


@dataclasses.dataclass
class Block:
    """One block of runs trained by one program call.

    Attributes:
      runs: padded run indices of the block.
      hp: the runs' :class:`~specjax.engine.Hparams`.
      teacher, data: built once from the seed keys.
      state: the runs' :class:`~specjax.engine.RunState` (updated chunk by chunk).
    """

    runs: range
    hp: Hparams
    teacher: tuple
    data: object
    state: RunState


def bounded(calls, limit: int = MAX_IN_FLIGHT) -> list:
    """Runs the thunks in ``calls`` in order, waiting for the oldest result while ``limit`` are in flight."""
    out, pending = [], collections.deque()
    for call in calls:
        result = call()
        out.append(result)
        pending.append(result)
        if len(pending) >= limit:
            jax.block_until_ready(pending.popleft())
    return out


def _concat(trees):
    return jax.tree.map(lambda *a: np.concatenate(a), *trees)


def _zero_stats(spec: Spec, n: int) -> ChunkStats:
    dt = spec.float_dtype
    return ChunkStats(np.zeros((n,), dt), np.zeros((n,), dt), np.zeros((n,), np.int32))


def build_blocks(cfg, plan: GroupPlan, program: Program, runs: range) -> list[Block]:
    """Initialises every block of a wave (teacher, data, student and optimiser state) from the run inputs."""

    def init(blk: range):
        hp, seed_index = program.place(run_inputs(cfg, plan, blk))
        return (blk, hp, *program.init_seeds(hp, seed_index, np.uint32(cfg.seed)))

    return [Block(*b) for b in bounded(functools.partial(init, blk) for blk in plan.blocks(runs))]


def train_wave(
    cfg,
    plan: GroupPlan,
    program: Program,
    wave: int,
    runs: range,
    workdir: Path | None,
    progress: Progress,
    sweep: str,
    on_eval=None,
    start=None,
) -> dict[str, np.ndarray]:
    """Trains (or resumes) one wave of a group; returns its arrays with the runs axis first.

    Args:
      on_eval: called with ``(epoch, per_setting)`` after each evaluation (the metrics log): per setting of the
        wave's runs, :func:`specjax.sweep.metrics_log.setting_summaries`.
      start: a grown sweep's runs that continue (:mod:`specjax.sweep.grow`): called as ``start(plan, wave, runs)``
        when the wave has no checkpoint; returns ``None`` or ``(leaves, history, chunks_done)``: the runs' states
        (one host array per :class:`~specjax.engine.RunState` leaf, leading axis ``len(runs)``), their
        :class:`History` and the chunks they have trained, which the wave continues.
    """
    blocks = build_blocks(cfg, plan, program, runs)
    interval = cfg.steps_per_epoch * cfg.eval_every
    chunk = cfg.chunk_steps or interval
    chunks_per_eval = interval // chunk
    total_chunks = cfg.epochs * cfg.steps_per_epoch // chunk
    snaps = set(snapshot_epochs(cfg).tolist())
    n = len(runs)
    cost = step_cost(plan.spec)

    ckpt = checkpoint.checkpoint_path(workdir, plan, wave) if workdir is not None and cfg.checkpoint else None
    layout = checkpoint.checkpoint_layout(plan, runs)
    history, chunks_done, pending = History(), 0, None
    where = f"[x{plan.over_realization} group {plan.index + 1}/{len(cfg.over_realization)}, wave {wave + 1}]"
    if ckpt is not None and ckpt.exists():
        host_states, history, chunks_done, done, pending = checkpoint.load_checkpoint(
            ckpt, [jax.device_get(b.state) for b in blocks], _zero_stats(plan.spec, n), sweep, layout
        )
        for b, s in zip(blocks, host_states, strict=True):
            b.state = program.place_state(s)
        progress.say(
            f"resuming {ckpt.relative_to(workdir)}: {'finished' if done else f'at chunk {chunks_done}/{total_chunks}'}"
        )
        progress.skip(n * chunks_done * chunk * cost)
        if done:
            return _result(history, blocks)
    elif start is not None and (seeded := start(plan, wave, runs)) is not None:
        leaves, history, chunks_done = seeded
        for b in blocks:
            part = [leaf[b.runs.start - runs.start : b.runs.stop - runs.start] for leaf in leaves]
            b.state = program.place_state(jax.tree.unflatten(jax.tree.structure(b.state), part))
        progress.skip(n * chunks_done * chunk * cost)

    real = np.array([r in plan.trained for r in runs])
    setting_of = np.array([plan.run_at(r) for r in runs]) // plan.seeds
    summary: dict = {}

    def evaluate(stats, epoch):
        records = bounded(functools.partial(program.evaluate, b.state, b.data) for b in blocks)
        record, student, diverged_at = jax.device_get(
            (_concat(records), _concat([b.state.student for b in blocks]), [b.state.diverged_at for b in blocks])
        )
        record_eval(history, record, student, stats, cfg, epoch in snaps)
        diverged = np.concatenate(diverged_at) >= 0
        summary.update(eval_summary(history, diverged, real))
        if on_eval is not None:
            a = history.arrays
            best = a[key("best_teacher_corr", 1)][-1]
            on_eval(epoch, setting_summaries(best, a["eval_loss"][-1], a["eval_mse"][-1], diverged, setting_of, real))

    def save(done: bool) -> None:
        checkpoint.save_checkpoint(ckpt, [b.state for b in blocks], history, chunks_done, pending, done, sweep, layout)

    if chunks_done == 0 and history.evaluations == 0:
        evaluate(None, 0)
        if ckpt is not None:
            save(False)
    signals.check()

    last_checkpoint = time.monotonic()
    timed = program in _warm  # a program's first chunk in this process includes its compilation, resumed or not
    while chunks_done < total_chunks:
        t0 = time.perf_counter()
        outs = bounded(functools.partial(program.train, b.state, b.teacher, b.data, b.hp) for b in blocks)
        for b, (state, _) in zip(blocks, outs, strict=True):
            b.state = state
        stats = jax.device_get(_concat([o[1] for o in outs]))
        pending = stats if pending is None else jax.tree.map(np.add, pending, stats)
        chunks_done += 1
        epoch = chunks_done * chunk // cfg.steps_per_epoch
        at_eval = chunks_done % chunks_per_eval == 0
        if at_eval:
            evaluate(pending, epoch)
            pending = None
        progress.advance(n * chunk, cost, time.perf_counter() - t0, timed)
        timed = True
        _warm.add(program)
        done = chunks_done == total_chunks
        interrupted = signals.requested()
        if ckpt is not None and (done or interrupted or time.monotonic() - last_checkpoint >= cfg.checkpoint_every_s):
            save(done)
            last_checkpoint = time.monotonic()
        if at_eval:
            progress.line(f"{where} epoch {epoch}/{cfg.epochs} | {len(plan.trained)} runs", _status(summary))
        signals.check()
    return _result(history, blocks)


#: Programs that have run a chunk in this process (their next chunks are timed; the first includes compilation).
_warm: set = set()


def eval_summary(history: History, diverged: np.ndarray, real: np.ndarray) -> dict:
    """The latest evaluation of a wave's runs in a few numbers, for the progress line.

    Args:
      diverged: ``(runs,)`` bool; real: ``(runs,)`` bool, False for padding (left out of every number).

    Returns:
      ``runs``, ``eval_loss_q10``/``_median``/``_q90`` and ``eval_mse_median`` over the runs that have not diverged
      (``None`` if none), ``success_rate`` (mean over those runs and the layer-1 teacher nodes of best correlation
      above :data:`~specjax.core.metrics.MATCH_THRESHOLD`) and ``diverged`` (count).
    """
    valid = real & ~diverged
    loss, mse = history.arrays["eval_loss"][-1][valid], history.arrays["eval_mse"][-1][valid]
    best = history.arrays[key("best_teacher_corr", 1)][-1][valid]
    q = np.quantile(loss, [0.1, 0.5, 0.9]).tolist() if valid.any() else [None] * 3
    return {
        "runs": int(real.sum()),
        "eval_loss_q10": q[0],
        "eval_loss_median": q[1],
        "eval_loss_q90": q[2],
        "eval_mse_median": float(np.median(mse)) if valid.any() else None,
        "success_rate": float(np.mean(best > metrics.MATCH_THRESHOLD)) if valid.any() else None,
        "diverged": int((real & diverged).sum()),
    }


def _status(summary: dict) -> str:
    """The progress line's part about the runs: median eval loss, success rate, diverged count."""
    fmt = lambda v, spec: "n/a" if v is None else format(v, spec)  # noqa: E731
    return (
        f"median eval loss {fmt(summary['eval_loss_median'], '.3g')} | success {fmt(summary['success_rate'], '.2f')} "
        f"| diverged {summary['diverged']}"
    )


def _result(history: History, blocks: list[Block]) -> dict[str, np.ndarray]:
    teachers, states = jax.device_get(([b.teacher for b in blocks], [b.state for b in blocks]))
    return wave_result(history, teachers, [s.diverged_at for s in states], states)


__all__ = ["MAX_IN_FLIGHT", "Block", "bounded", "build_blocks", "cached_program", "train_wave"]
