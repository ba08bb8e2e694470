"""Sweeps: a grid of runs trained in compiled blocks, checkpointed between chunks, summarised on disk.

:func:`run_sweep` is the library entry point the command line calls::

    from specjax import sweep
    result = sweep.run_sweep(cfg, workdir="runs/fig9")   # or workdir=None to keep everything in memory
    result.summary["groups"][0]["success_rate"]

Layout. The grid is ``over_realization`` (one *shape group* and compiled program each) x the swept settings
(:data:`specjax.config.SWEPT_FIELDS`, Cartesian product) x ``seeds``. Inside a shape group the ``settings x seeds``
runs are flattened, padded to a multiple of the *block* (``runs_per_block`` per device x devices), and trained
block by block with the same program, chunk by chunk, with an evaluation after every ``eval_every`` epochs. If the
group's data exceed ``memory_budget_gb``, its blocks train in successive *waves*.

Files in ``workdir``: ``config.json`` (resolved config, versions, git commit), ``checkpoints/`` (one atomically
replaced ``.npz`` per wave), ``results/group<i>.npz`` (arrays with leading axes ``(settings, seeds)``),
``summary.json``. Re-running the same config resumes; a different config is refused unless ``overwrite``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from specjax import config as config_lib
from specjax import metrics, store
from specjax.train import Hparams, Program, RunState, Spec, flops_per_step, make_mesh, seed_key

ProgressFn = Callable[[str], None]

CHECKPOINT_FORMAT = 2


class SweepError(ValueError):
    """The sweep cannot start (workdir holds another config, unusable files, ...)."""


@dataclasses.dataclass
class GroupPlan:
    """How one shape group's runs are laid out."""

    index: int
    over_realization: int
    spec: Spec
    settings: list[config_lib.Setting]
    seeds: int
    block: int  # runs per program call
    blocks_per_wave: int

    @property
    def runs(self) -> int:
        return len(self.settings) * self.seeds

    @property
    def padded_runs(self) -> int:
        return math.ceil(self.runs / self.block) * self.block

    @property
    def waves(self) -> list[range]:
        """Run-index ranges (into the padded run list) of each wave."""
        size = self.block * self.blocks_per_wave
        return [range(s, min(s + size, self.padded_runs)) for s in range(0, self.padded_runs, size)]


@dataclasses.dataclass
class SweepResult:
    """What :func:`run_sweep` returns.

    Attributes:
      config: the resolved config.
      arrays: one dict per shape group of NumPy arrays with leading axes ``(settings, seeds)``
        (see :func:`group_arrays` for keys and shapes).
      summary: the content of ``summary.json`` (``groups``: one entry per over-realization x setting).
      workdir: where files were written, or ``None``.
    """

    config: ml_collections.ConfigDict
    arrays: list[dict[str, np.ndarray]]
    summary: dict
    workdir: Path | None


def bytes_per_run(spec: Spec) -> int:
    """Rough device memory of one run: data, parameters, optimiser state and evaluation temporaries."""
    item = 8 if spec.dtype == "float64" else 4
    ws = spec.student_widths
    params = sum(a * b + b for a, b in zip(ws[:-1], ws[1:], strict=True))
    teacher_hidden = sum(spec.teacher_widths)
    data = spec.n_train * (spec.d + spec.c) + spec.n_eval * (spec.d + spec.c + 2 * teacher_hidden)
    eval_tmp = spec.n_eval * (2 * sum(ws[1:-1]) + spec.c)
    opt = 3 if spec.optimizer == "adam" else 2
    return item * (data + eval_tmp + params * (2 + opt))


def plan_groups(cfg: ml_collections.ConfigDict, num_devices: int) -> list[GroupPlan]:
    """Shape groups of a validated config, with block and wave sizes."""
    settings = config_lib.settings_grid(cfg)
    plans = []
    for i, over in enumerate(cfg.over_realization):
        spec = Spec.from_config(cfg, over)
        block = cfg.runs_per_block * num_devices
        runs = len(settings) * cfg.seeds
        budget_runs = int(cfg.memory_budget_gb * 2**30 // max(bytes_per_run(spec), 1))
        blocks_per_wave = max(1, min(math.ceil(runs / block), budget_runs // block))
        plans.append(GroupPlan(i, int(over), spec, settings, cfg.seeds, block, blocks_per_wave))
    return plans


def eval_epochs(cfg) -> np.ndarray:
    """Epochs at which the sweep evaluates: ``0, eval_every, ..., epochs``."""
    return np.arange(0, cfg.epochs + 1, cfg.eval_every)


def snapshot_epochs(cfg) -> np.ndarray:
    """Epochs at which parameters (and, with ``record_corr='snapshots'``, correlation matrices) are kept."""
    return np.array(sorted({0, cfg.epochs, *cfg.snapshot_epochs}))


# --------------------------------------------------------------------------------------------------------------
# Workdir and provenance.


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).resolve().parent
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance() -> dict:
    """Package versions, git commit, platform and devices."""
    import flax
    import optax

    return {
        "versions": {
            "python": sys.version.split()[0],
            "jax": jax.__version__,
            "numpy": np.__version__,
            "optax": optax.__version__,
            "flax": flax.__version__,
            "ml_collections": getattr(ml_collections, "__version__", "unknown"),
        },
        "git_commit": _git_commit(),
        "platform": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
    }


#: What a sweep writes at the top of its workdir besides ``config.json``; ``--overwrite`` removes exactly these.
WORKDIR_DIRS = ("checkpoints", "results")
WORKDIR_FILES = ("summary.json", "success_rate.png", "success_rate.pdf")

#: Config fields that do not change a sweep's results: a workdir is resumed even if they differ.
RESUME_INDEPENDENT_FIELDS = ("checkpoint_every_s",)


def _resume_identity(plain_config: dict | None) -> dict | None:
    """The config without :data:`RESUME_INDEPENDENT_FIELDS`, for comparing a workdir's sweep with the asked one."""
    if plain_config is None:
        return None
    return {k: v for k, v in plain_config.items() if k not in RESUME_INDEPENDENT_FIELDS}


class _WorkdirLock:
    """Exclusive ``flock`` on the workdir folder, held while a sweep uses it (released by the kernel on SIGKILL)."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.fd: int | None = None

    def __enter__(self) -> Path:
        try:
            import fcntl
        except ImportError:  # not POSIX: no locking
            return self.workdir
        self.fd = os.open(self.workdir, os.O_RDONLY)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            self.fd = None
            raise SweepError(
                f"{self.workdir}: workdir is in use by another running sweep; wait for it or stop it"
            ) from None
        return self.workdir

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the lock
            self.fd = None


def workdir_lock(workdir: str | Path) -> _WorkdirLock:
    """Creates ``workdir`` if needed (proving it writable) and returns a context manager that locks it.

    Two sweeps never share a workdir at once: the second one stops with :class:`SweepError`.

    Raises:
      SweepError: ``workdir`` exists and is not a directory.
      store.StoreError: ``workdir`` cannot be created or written.
    """
    workdir = Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise SweepError(f"{workdir}: workdir exists and is not a directory")
    store.check_writable(workdir)
    return _WorkdirLock(workdir)


def prepare_workdir(
    cfg: ml_collections.ConfigDict, workdir: str | Path, overwrite: bool, plans: list[GroupPlan] | None = None
) -> Path:
    """Makes the workdir ready for ``cfg``: resume, refuse, or (``overwrite``) start fresh; writes ``config.json``.

    * A new or empty folder is used as is.
    * A folder holding ``config.json`` with the same config (up to :data:`RESUME_INDEPENDENT_FIELDS`) is resumed
      (its checkpoints are kept).
    * A folder holding another config, or an unreadable ``config.json``, is refused unless ``overwrite``, which
      deletes exactly what a sweep writes (:data:`WORKDIR_DIRS`, :data:`WORKDIR_FILES`) and nothing else.
    * A non-empty folder without ``config.json`` is always refused: it is not a sweep's, and nothing in it is
      touched, even with ``overwrite``.

    When resuming with ``plans`` given, every existing checkpoint is read in full (:func:`check_checkpoints`) before
    anything is written. ``config.json`` is written before the ``checkpoints/`` and ``results/`` folders, so a folder
    holding them always says which config they belong to. Call it while holding :func:`workdir_lock`.

    Raises:
      SweepError: the folder cannot be used; the message says why and what to do.
      store.StoreError: the folder cannot be written.
    """
    workdir = Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise SweepError(f"{workdir}: workdir exists and is not a directory")
    cfg_path = workdir / "config.json"
    plain = config_lib.to_plain(cfg)
    wanted = _resume_identity(plain)
    if not cfg_path.exists() and workdir.is_dir():
        foreign = sorted(p.name for p in workdir.iterdir() if not p.name.startswith("."))
        if foreign:
            raise SweepError(
                f"{workdir}: workdir is not empty ({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}) "
                "and holds no sweep (no config.json); use a new or empty --workdir"
            )
    if cfg_path.exists() and not overwrite:
        try:
            held = _resume_identity(store.load_json(cfg_path).get("config"))
        except store.StoreError as e:
            raise SweepError(f"{e}; use --overwrite to start fresh") from None
        if held != wanted:
            diff = sorted(k for k in set(held or {}) | set(wanted) if (held or {}).get(k) != wanted.get(k))
            raise SweepError(
                f"{workdir}: holds a sweep with a different config (fields {diff}); "
                "use another --workdir or --overwrite"
            )
        if plans is not None:
            check_checkpoints(workdir, plans)
    store.check_writable(workdir)
    if overwrite:
        for sub in WORKDIR_DIRS:
            shutil.rmtree(workdir / sub, ignore_errors=True)
        for name in WORKDIR_FILES:
            (workdir / name).unlink(missing_ok=True)
    store.save_json(cfg_path, {"config": plain, **provenance()})
    for sub in WORKDIR_DIRS:
        (workdir / sub).mkdir(exist_ok=True)
    for folder in (workdir, *(workdir / sub for sub in WORKDIR_DIRS)):
        store.remove_stale_temporaries(folder)
    return workdir


# --------------------------------------------------------------------------------------------------------------
# Per-run inputs.


def run_inputs(cfg, plan: GroupPlan, runs: range) -> tuple[Hparams, jax.Array]:
    """Hparams and seed keys of padded run indices ``runs`` (run ``r`` = setting ``r // seeds``, seed ``r % seeds``;
    padding repeats run 0)."""
    idx = np.array([r if r < plan.runs else 0 for r in runs])
    setting_idx, seed_idx = idx // plan.seeds, idx % plan.seeds
    dt = plan.spec.float_dtype
    hp = Hparams(
        **{f: jnp.asarray([getattr(plan.settings[s], f) for s in setting_idx], dt) for f in config_lib.SWEPT_FIELDS}
    )
    keys = jax.vmap(seed_key, (None, 0))(cfg.seed, jnp.asarray(seed_idx, jnp.int32))
    return hp, keys


# --------------------------------------------------------------------------------------------------------------
# History records.


class History:
    """Host-side record of a wave: per evaluation scalars and vectors, per snapshot matrices and parameters."""

    def __init__(self, arrays: dict[str, np.ndarray] | None = None):
        self.arrays: dict[str, list[np.ndarray]] = {}
        if arrays:
            for k, v in arrays.items():
                self.arrays[k] = list(v)

    def append(self, key: str, value: np.ndarray) -> None:
        self.arrays.setdefault(key, []).append(np.asarray(value))

    def stacked(self) -> dict[str, np.ndarray]:
        """Arrays with the evaluation/snapshot axis first."""
        return {k: np.stack(v) for k, v in self.arrays.items()}


def record_eval(history: History, record, state: RunState, stats, epoch: int, cfg, is_snapshot: bool) -> None:
    """Appends one evaluation of a wave's runs (arrays with a leading runs axis) to ``history``."""
    history.append("eval_loss", record.eval_loss)
    if stats is None:
        nan = np.full(record.eval_loss.shape, np.nan, record.eval_loss.dtype)
        history.append("train_loss", nan)
        history.append("grad_norm", nan)
    else:
        steps = np.maximum(stats.steps, 1)
        history.append("train_loss", np.where(stats.steps > 0, stats.loss_sum / steps, np.nan))
        history.append("grad_norm", np.where(stats.steps > 0, stats.grad_norm_sum / steps, np.nan))
    for l, (corr, fan_out) in enumerate(zip(record.corr, record.fan_out_norm, strict=True), start=1):
        history.append(f"best_teacher_corr_l{l}", np.max(corr, axis=-1))
        history.append(f"best_student_corr_l{l}", np.max(corr, axis=-2))
        history.append(f"fan_out_norm_l{l}", fan_out)
        if is_snapshot or cfg.record_corr == "all":
            history.append(f"corr_l{l}", corr.astype(np.float32))
    if is_snapshot:
        for l, (W, b) in enumerate(state.student, start=1):
            history.append(f"student_W_l{l}", W)
            if b is not None:
                history.append(f"student_b_l{l}", b)


# --------------------------------------------------------------------------------------------------------------
# Checkpoints.


def _ckpt_path(workdir: Path, plan: GroupPlan, wave: int) -> Path:
    return workdir / "checkpoints" / f"group{plan.index}_wave{wave}.npz"


def checkpoint_layout(plan: GroupPlan, runs: range) -> dict[str, int]:
    """What a wave's checkpoint must match to be resumed: block size and the wave's (padded) run range.

    The block is ``runs_per_block`` x devices, so a checkpoint written with another device count does not match.
    """
    return {"block": plan.block, "wave_start": runs.start, "wave_stop": runs.stop}


def _check_layout(path: Path, z: dict[str, np.ndarray], layout: dict[str, int]) -> None:
    if int(z["format"]) != CHECKPOINT_FORMAT:
        raise store.StoreError(
            f"{path}: checkpoint format {int(z['format'])} is not this version's ({CHECKPOINT_FORMAT}); "
            "use --overwrite to start fresh"
        )
    held = {k: int(z[k]) for k in layout if k in z}
    if held != layout:
        raise store.StoreError(
            f"{path}: checkpoint was written for blocks of {held.get('block')} runs (runs_per_block x devices) "
            f"and runs {held.get('wave_start')}..{held.get('wave_stop')}, this sweep has blocks of {layout['block']} "
            f"and runs {layout['wave_start']}..{layout['wave_stop']}; resume with the same number of devices "
            "(config.num_devices) or use --overwrite"
        )


CHECKPOINT_KEYS = ("format", "chunks_done", "done", "num_blocks", "block", "wave_start", "wave_stop")


def check_checkpoints(workdir: Path, plans: list[GroupPlan]) -> None:
    """Reads every existing checkpoint of the sweep in full before any training, so a damaged or foreign one stops
    the sweep at once, with its name, instead of after hours of other groups' work.

    Raises:
      store.StoreError: a checkpoint is truncated or corrupted (zip CRC), lacks arrays, or has another layout.
    """
    for plan in plans:
        for wave, runs in enumerate(plan.waves):
            path = _ckpt_path(workdir, plan, wave)
            if path.exists():
                try:
                    _check_layout(path, store.load_npz(path, required=CHECKPOINT_KEYS), checkpoint_layout(plan, runs))
                except store.StoreError as e:
                    raise store.StoreError(
                        f"{e}; delete that file to retrain its wave, or use --overwrite to start the sweep afresh"
                    ) from None


def save_checkpoint(
    path: Path,
    blocks_state: list[RunState],
    history: History,
    chunks_done: int,
    pending_stats,
    done: bool,
    layout: dict[str, int],
) -> None:
    """Writes the full state of a wave after ``chunks_done`` chunks, atomically.

    Held: every block's :class:`RunState` (student parameters, optimiser state, step counter -- which is also the
    data position, since batch ``t`` comes from ``fold_in(batch_key, t)`` -- and ``diverged_at``), the summed
    training statistics of the evaluation interval in progress, the history so far, the chunk counter, and the
    :func:`checkpoint_layout`. Teachers and data are not stored: they are pure functions of the seed keys, which
    come from the config, and are rebuilt bit for bit on resume.
    """
    arrays = {
        "format": np.array(CHECKPOINT_FORMAT),
        "chunks_done": np.array(chunks_done),
        "done": np.array(done),
        "num_blocks": np.array(len(blocks_state)),
        **{k: np.array(v) for k, v in layout.items()},
    }
    for b, state in enumerate(blocks_state):
        for i, leaf in enumerate(jax.tree.leaves(jax.device_get(state))):
            arrays[f"state/{b}/{i}"] = np.asarray(leaf)
    if pending_stats is not None:
        for i, leaf in enumerate(jax.tree.leaves(pending_stats)):
            arrays[f"stats/{i}"] = np.asarray(leaf)
    for k, v in history.stacked().items():
        arrays[f"history/{k}"] = v
    store.save_npz(path, arrays)


def load_checkpoint(path: Path, template_states: list[RunState], stats_template, layout: dict[str, int]):
    """Inverse of :func:`save_checkpoint`; checks the layout and every leaf's shape and dtype against the fresh
    templates.

    Returns:
      ``(block_states, history, chunks_done, done, pending_stats)``.

    Raises:
      store.StoreError: unreadable file or a mismatch (names the file and the array).
    """
    z = store.load_npz(path, required=CHECKPOINT_KEYS)
    _check_layout(path, z, layout)
    if int(z["num_blocks"]) != len(template_states):
        raise store.StoreError(
            f"{path}: checkpoint holds {int(z['num_blocks'])} blocks, expected {len(template_states)}"
        )

    def restore(prefix, template):
        leaves, treedef = jax.tree.flatten(template)
        out = []
        for i, leaf in enumerate(leaves):
            key = f"{prefix}/{i}"
            if key not in z:
                raise store.StoreError(f"{path}: missing array {key!r}")
            arr = z[key]
            if arr.shape != leaf.shape or arr.dtype != leaf.dtype:
                raise store.StoreError(
                    f"{path}: array {key!r} has shape {arr.shape} {arr.dtype}, expected {leaf.shape} {leaf.dtype}"
                )
            out.append(arr)
        return jax.tree.unflatten(treedef, out)

    states = [restore(f"state/{b}", t) for b, t in enumerate(template_states)]
    stats = restore("stats", stats_template) if "stats/0" in z else None
    history = History({k[len("history/") :]: v for k, v in z.items() if k.startswith("history/")})
    return states, history, int(z["chunks_done"]), bool(z["done"]), stats


# --------------------------------------------------------------------------------------------------------------
# Training a wave.


class Progress:
    """Prints one line per evaluation interval: progress, run-steps/s of the current group, ETA.

    Work is counted in run-steps weighted by :func:`step_cost` (a wide group's step costs more than a narrow one's),
    so the ETA stays right across shape groups. Chunks that include compilation are not timed.
    """

    def __init__(self, total_work: float, emit: ProgressFn | None):
        self.total = total_work
        self.done = 0.0
        self.emit = emit
        self.work_measured = 0.0
        self.time_measured = 0.0
        self.group_steps = 0
        self.group_time = 0.0

    def start_group(self) -> None:
        self.group_steps, self.group_time = 0, 0.0

    def skip(self, work: float) -> None:
        self.done += work

    def advance(self, run_steps: int, cost: float, seconds: float, warm: bool) -> None:
        self.done += run_steps * cost
        if warm:
            self.work_measured += run_steps * cost
            self.time_measured += seconds
            self.group_steps += run_steps
            self.group_time += seconds

    def line(self, prefix: str) -> None:
        if self.emit is None:
            return
        work_rate = self.work_measured / self.time_measured if self.time_measured > 0 else 0.0
        pct = 100.0 * self.done / max(self.total, 1)
        eta_s = "?" if work_rate <= 0 else time.strftime("%H:%M:%S", time.gmtime((self.total - self.done) / work_rate))
        rate_s = f"{self.group_steps / self.group_time:,.0f} run-steps/s" if self.group_time > 0 else "compiling"
        self.emit(f"{prefix} | {pct:5.1f}% | {rate_s} | ETA {eta_s}")


#: Per-run-step overhead of the ETA's cost model, in FLOP-equivalents. Fitted to the paper's float64 two-layer
#: sweep on the 2-core CPU (2026-11-23, with per-epoch evaluation): 10.3 / 15.0 / 30.8 / 56.5 us per run-step at
#: 0.22 / 0.45 / 1.12 / 2.24 MFLOP (over-realization 1 / 2 / 5 / 10) is 5.2 us + 22.9 ps per FLOP, i.e. an overhead
#: worth ~225k FLOPs. (The earlier 64k made the ETA measured on the first, narrowest group 20 % too long.)
STEP_OVERHEAD_FLOPS = 225_000


def step_cost(spec: Spec) -> float:
    """Relative cost of one run-step for the ETA: its FLOPs plus :data:`STEP_OVERHEAD_FLOPS`."""
    return float(flops_per_step(spec) + STEP_OVERHEAD_FLOPS)


def train_wave(
    cfg, plan: GroupPlan, program: Program, wave: int, runs: range, workdir: Path | None, progress: Progress
) -> dict[str, np.ndarray]:
    """Trains (or resumes) one wave of a group; returns its history arrays with the runs axis second."""
    blocks = [range(s, min(s + plan.block, runs.stop)) for s in range(runs.start, runs.stop, plan.block)]
    inputs = [program.place(run_inputs(cfg, plan, blk)) for blk in blocks]
    built = [program.init(hp, keys) for hp, keys in inputs]
    teachers_ = [b[0] for b in built]
    datasets = [b[1] for b in built]
    states = [b[2] for b in built]

    interval = cfg.steps_per_epoch * cfg.eval_every
    chunk = cfg.chunk_steps or interval
    chunks_per_eval = interval // chunk
    total_chunks = cfg.epochs * cfg.steps_per_epoch // chunk
    snaps = set(snapshot_epochs(cfg).tolist())
    n = len(runs)

    ckpt = _ckpt_path(workdir, plan, wave) if workdir is not None and cfg.checkpoint else None
    layout = checkpoint_layout(plan, runs)
    history, chunks_done, pending = History(), 0, None
    if ckpt is not None and ckpt.exists():
        stats_template = jax.tree.map(lambda a: np.zeros((n,), a.dtype), _zero_stats(program, plan.spec))
        host_states, history, chunks_done, done, pending = load_checkpoint(
            ckpt, [jax.device_get(s) for s in states], stats_template, layout
        )
        states = [program.place(s) for s in host_states]
        if progress.emit is not None:
            state_s = "finished" if done else f"at chunk {chunks_done}/{total_chunks}"
            progress.emit(f"resuming {ckpt.relative_to(workdir)}: {state_s}")
        if done:
            progress.skip(n * total_chunks * chunk * step_cost(plan.spec))
            return _wave_result(history, teachers_, states)
        progress.skip(n * chunks_done * chunk * step_cost(plan.spec))

    def concat(xs):
        return jax.tree.map(lambda *a: np.concatenate(a), *xs)

    def evaluate(stats, epoch):
        records = [program.evaluate(s, d) for s, d in zip(states, datasets, strict=True)]
        record, state = jax.device_get((concat(records), concat(states)))
        record_eval(history, record, state, stats, epoch, cfg, epoch in snaps)

    if chunks_done == 0 and not history.arrays:
        evaluate(None, 0)
        if ckpt is not None:
            save_checkpoint(ckpt, states, history, 0, None, False, layout)

    prefix = f"[x{plan.over_realization} group {plan.index + 1}/{len(cfg.over_realization)}, wave {wave + 1}]"
    last_checkpoint = time.monotonic()
    while chunks_done < total_chunks:
        t0 = time.perf_counter()
        warm = program.warm
        outs = [
            program.train(s, t, d, hp) for s, t, d, (hp, _) in zip(states, teachers_, datasets, inputs, strict=True)
        ]
        states = [o[0] for o in outs]
        stats = jax.device_get(concat([o[1] for o in outs]))
        pending = stats if pending is None else jax.tree.map(np.add, pending, stats)
        chunks_done += 1
        at_eval = chunks_done % chunks_per_eval == 0
        if at_eval:
            evaluate(pending, chunks_done * chunk // cfg.steps_per_epoch)
            pending = None
        jax.block_until_ready(states)
        progress.advance(n * chunk, step_cost(plan.spec), time.perf_counter() - t0, warm)
        program.warm = True
        done = chunks_done == total_chunks
        if ckpt is not None and (done or time.monotonic() - last_checkpoint >= cfg.checkpoint_every_s):
            save_checkpoint(ckpt, states, history, chunks_done, pending, done, layout)
            last_checkpoint = time.monotonic()
        if at_eval:
            epoch = chunks_done * chunk // cfg.steps_per_epoch
            progress.line(f"{prefix} epoch {epoch}/{cfg.epochs} | {plan.runs} runs")
    return _wave_result(history, teachers_, states)


def _zero_stats(program: Program, spec: Spec):
    from specjax.train import ChunkStats

    dt = spec.float_dtype
    return ChunkStats(jnp.zeros((), dt), jnp.zeros((), dt), jnp.zeros((), jnp.int32))


def _wave_result(history: History, teachers_, states) -> dict[str, np.ndarray]:
    """History with the runs axis first, plus teacher parameters and ``diverged_at`` of the wave's runs."""
    out = {k: np.moveaxis(v, 0, 1) for k, v in history.stacked().items()}
    teacher, final = jax.device_get((teachers_, states))
    for l in range(len(teacher[0])):
        out[f"teacher_W_l{l + 1}"] = np.concatenate([t[l][0] for t in teacher])
        if teacher[0][l][1] is not None:
            out[f"teacher_b_l{l + 1}"] = np.concatenate([t[l][1] for t in teacher])
    out["diverged_at"] = np.concatenate([s.diverged_at for s in final])
    return out


# --------------------------------------------------------------------------------------------------------------
# Assembling results.


def group_arrays(cfg, plan: GroupPlan, waves: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenates a group's waves, drops padding and reshapes runs to ``(settings, seeds)``.

    Keys (``S`` settings, ``N`` seeds, ``E`` evaluations, ``P`` snapshots, ``l`` hidden layer from 1):
      ``eval_epochs (E,)``, ``snapshot_epochs (P,)``, ``corr_epochs``;
      ``eval_loss``, ``train_loss``, ``grad_norm`` ``(S, N, E)``;
      ``best_teacher_corr_l{l} (S, N, E, m_l)``, ``best_student_corr_l{l}``, ``fan_out_norm_l{l} (S, N, E, n_l)``;
      ``corr_l{l} (S, N, P or E, m_l, n_l)``; ``student_W_l{l} (S, N, P, ...)``, ``student_b_l{l}``;
      ``teacher_W_l{l} (S, N, ...)``, ``teacher_b_l{l}``; ``diverged_at (S, N)`` (-1 = never);
      one ``(S,)`` array per swept field.
    """
    S, N = len(plan.settings), plan.seeds
    merged = {k: np.concatenate([w[k] for w in waves])[: plan.runs] for k in waves[0]}
    out = {k: v.reshape(S, N, *v.shape[1:]) for k, v in merged.items()}
    out["eval_epochs"] = eval_epochs(cfg)
    out["snapshot_epochs"] = snapshot_epochs(cfg)
    out["corr_epochs"] = eval_epochs(cfg) if cfg.record_corr == "all" else snapshot_epochs(cfg)
    out["over_realization"] = np.array(plan.over_realization)
    for f in config_lib.SWEPT_FIELDS:
        out[f] = np.array([getattr(s, f) for s in plan.settings])
    return out


def summarize(cfg, plans: list[GroupPlan], arrays: list[dict[str, np.ndarray]]) -> dict:
    """``summary.json`` content: one entry per (over-realization, setting)."""
    groups = []
    for plan, a in zip(plans, arrays, strict=True):
        layers = len(plan.spec.teacher_widths)
        for s, setting in enumerate(plan.settings):
            diverged = a["diverged_at"][s] >= 0
            valid = ~diverged
            best = a["best_teacher_corr_l1"][s]  # (N, E, m)
            by_eval = metrics.success_rate(best, valid=valid[:, None])
            entry = {
                "over_realization": plan.over_realization,
                **setting.as_dict(),
                "seeds": plan.seeds,
                "success_rate": by_eval[-1].tolist(),
                "success_rate_by_eval": by_eval.tolist(),
                "success_rate_by_threshold": {
                    f"{t:g}": metrics.success_rate(best[:, -1], t, valid=valid).tolist() for t in metrics.THRESHOLDS
                },
                "success_rate_by_layer": [
                    metrics.success_rate(a[f"best_teacher_corr_l{l}"][s][:, -1], valid=valid).tolist()
                    for l in range(1, layers + 1)
                ],
                "eval_loss": a["eval_loss"][s, :, -1].tolist(),
                "diverged": diverged.tolist(),
                "diverged_at": a["diverged_at"][s].tolist(),
            }
            groups.append(entry)
    return {"eval_epochs": eval_epochs(cfg).tolist(), "threshold": metrics.MATCH_THRESHOLD, "groups": groups}


# --------------------------------------------------------------------------------------------------------------
# Entry point.


@functools.lru_cache(maxsize=16)
def cached_program(spec: Spec, chunk_steps: int, mesh) -> Program:
    """The :class:`Program` of a shape group, shared by the sweeps of one process so that calling :func:`run_sweep`
    again (research scripts, tests) does not compile the same program twice. Sharing is safe: programs are pure."""
    return Program(spec, chunk_steps, mesh)


def run_sweep(
    cfg: ml_collections.ConfigDict,
    workdir: str | Path | None = None,
    *,
    overwrite: bool = False,
    progress: ProgressFn | None = print,
    mesh=None,
) -> SweepResult:
    """Trains every run of ``cfg`` and returns (and, with a ``workdir``, writes) the results.

    Args:
      cfg: sweep config (see :mod:`specjax.config`); validated first, before anything is computed or written.
      workdir: output folder; ``None`` keeps results in memory only (no checkpoints).
      overwrite: discard a previous sweep in ``workdir`` instead of resuming it or refusing a different config.
      progress: called with one line per evaluation interval; ``None`` for silence.
      mesh: device mesh (axis ``'runs'``); default: ``cfg.num_devices`` devices.

    Raises:
      config.ConfigError: invalid config value (names the field).
      SweepError, store.StoreError: unusable workdir or files (names the file), raised before any training.
    """
    config_lib.validate(cfg)
    if cfg.dtype == "float64" and not jax.config.jax_enable_x64:
        raise config_lib.ConfigError(
            "config.dtype: float64 needs jax_enable_x64 (call specjax.enable_float64() before creating any array)"
        )
    if cfg.num_devices > len(jax.devices()):
        raise config_lib.ConfigError(
            f"config.num_devices: {cfg.num_devices} requested but only {len(jax.devices())} "
            f"{jax.default_backend()} device(s) available"
        )
    mesh = mesh if mesh is not None else make_mesh(cfg.num_devices)
    plans = plan_groups(cfg, mesh.devices.size)
    if workdir is None:
        return _train_and_summarize(cfg, plans, None, mesh, progress)
    with workdir_lock(workdir):
        wd = prepare_workdir(cfg, workdir, overwrite, plans)
        return _train_and_summarize(cfg, plans, wd, mesh, progress)


def _train_and_summarize(
    cfg, plans: list[GroupPlan], wd: Path | None, mesh, progress: ProgressFn | None
) -> SweepResult:
    """The body of :func:`run_sweep` once the config is valid and the workdir (if any) is prepared and locked."""
    total = sum(p.padded_runs * step_cost(p.spec) for p in plans) * config_lib.total_steps(cfg)
    prog = Progress(total, progress)
    interval = cfg.steps_per_epoch * cfg.eval_every
    all_arrays = []
    for plan in plans:
        program = cached_program(plan.spec, cfg.chunk_steps or interval, mesh)
        prog.start_group()
        waves = []
        for w, runs in enumerate(plan.waves):
            waves.append(train_wave(cfg, plan, program, w, runs, wd, prog))
        arrays = group_arrays(cfg, plan, waves)
        if wd is not None:
            store.save_npz(wd / "results" / f"group{plan.index}.npz", arrays)
        all_arrays.append(arrays)
    summary = summarize(cfg, plans, all_arrays)
    if wd is not None:
        store.save_json(wd / "summary.json", summary)
    return SweepResult(cfg, all_arrays, summary, wd)


def load_results(workdir: str | Path) -> SweepResult:
    """Reads a finished sweep back from its workdir: the same config, arrays and summary :func:`run_sweep` returned.

    Raises:
      store.StoreError: a file is missing, truncated, corrupted or not what a sweep writes (names the file).
    """
    workdir = Path(workdir)
    cfg_path = workdir / "config.json"
    held = store.load_json(cfg_path).get("config")
    if not isinstance(held, dict):
        raise store.StoreError(f"{cfg_path}: holds no 'config' object")
    try:
        cfg = config_lib.validate(config_lib.from_plain(held))
    except config_lib.ConfigError as e:
        raise store.StoreError(f"{cfg_path}: {e}") from None
    summary = store.load_json(workdir / "summary.json")
    if not isinstance(summary.get("groups"), list):
        raise store.StoreError(f"{workdir / 'summary.json'}: holds no 'groups' list")
    arrays = [
        store.load_npz(workdir / "results" / f"group{i}.npz", required=("eval_loss", "diverged_at"))
        for i in range(len(cfg.over_realization))
    ]
    return SweepResult(cfg, arrays, summary, workdir)


# --------------------------------------------------------------------------------------------------------------
# Command line: python -m specjax.sweep --config=experiments/configs/quickstart.py --workdir=DIR


def main(argv: list[str]) -> None:
    """absl main: load the config, run the sweep, draw the success-rate figure."""
    from absl import flags

    from specjax import enable_float64, plots

    if len(argv) > 1:
        raise config_lib.ConfigError(f"unexpected argument(s) {argv[1:]}")
    f = flags.FLAGS
    cfg = f.config
    config_lib.validate(cfg)
    enable_float64()
    result = run_sweep(cfg, f.workdir, overwrite=f.overwrite, progress=lambda s: print(s, flush=True))
    paths = plots.success_rate_figure(result.summary, Path(f.workdir) / "success_rate")
    print(f"wrote {f.workdir}/summary.json, results/*.npz and {', '.join(str(p) for p in paths)}")


def run_cli() -> None:
    """Entry point of ``python -m specjax.sweep`` and the ``specjax-sweep`` script."""
    from absl import flags
    from ml_collections import config_flags

    from specjax import cli

    cli.configure_cpu_devices()
    config_flags.DEFINE_config_file(
        "config", None, "Sweep config file, e.g. experiments/configs/two_layer.py.", lock_config=True
    )
    flags.DEFINE_string("workdir", None, "Output folder (created; resumed if it holds the same sweep).")
    flags.DEFINE_bool("overwrite", False, "Discard a previous sweep in --workdir and start fresh.")
    flags.mark_flags_as_required(["config", "workdir"])
    cli.run(main, "specjax.sweep")


if __name__ == "__main__":
    run_cli()
