"""Sweeps that grow: re-running a finished workdir with more seeds, epochs, swept values or over-realizations trains
only what is new and ends bit-identical to a sweep run with the final settings from the start.

A run is identified by its over-realization, its setting's values and its seed index; its numbers depend on nothing
else at a fixed number of runs per device (docs/design.md, Determinism). Growing a workdir (:func:`prepare`, called
by :func:`specjax.sweep.workdir.prepare_workdir` when the configs differ) is allowed when the held sweep is finished
and the configs differ only in ``seeds`` or ``epochs`` (more) and the swept fields or ``over_realization`` (all old
values kept, new ones added, in any order). Then each run of the new grid is

* *reused*: an old run and ``epochs`` unchanged: its arrays are copied from the old results;
* *continued*: an old run and ``epochs`` grew: it starts from its final :class:`~specjax.engine.RunState`
  (``final_state_<i>`` in the old results) and history, at the old last chunk;
* *fresh*: trained from its seed key.

The old sweep's ``config.json``, ``summary.json`` and results are kept in ``checkpoints/grow/from/`` (a finished
workdir of its own, read with :func:`specjax.sweep.load_results`); the continued and fresh runs train in blocks of
the new plan's size as two extra plans per group (:class:`~specjax.sweep.plan.GroupPlan` with ``order`` and
``stage``), with checkpoints ``checkpoints/grow/group<g>_<stage>_wave<w>.npz``, so a grown sweep killed mid-way
resumes by re-running its command. The results are assembled in the new ``(settings, seeds)`` order.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import ml_collections
import numpy as np

from specjax import config as config_lib
from specjax.errors import StoreError, SweepError
from specjax.sweep.checkpoint import grow_dir
from specjax.sweep.plan import GroupPlan, plan_groups
from specjax.sweep.record import History, group_arrays
from specjax.sweep.schema import HISTORY_AXES, S_N, has_final_states, key, spec_of, state_leaves
from specjax.sweep.summary import SweepResult, load_config, load_results
from specjax.sweep.workdir import resume_identity

#: Config fields a sweep may grow in: counts that may increase, sequences that may gain values.
GROWING_COUNTS = ("seeds", "epochs")
GROWING_SEQUENCES = ("over_realization", *config_lib.SWEPT_FIELDS)


def _values(v) -> list:
    return list(v) if isinstance(v, (list, tuple)) else [v]


def is_growth(held: dict, wanted: dict) -> bool:
    """Whether the config ``wanted`` grows the sweep ``held`` (plain dicts, :func:`specjax.config.to_plain`).

    True when they differ, and only in :data:`GROWING_COUNTS` (a larger value) and :data:`GROWING_SEQUENCES` (every
    held value kept); a change that would alter runs already trained (any other field, fewer seeds or epochs, a
    value dropped) is not growth.
    """
    diff = {k for k in set(held) | set(wanted) if held.get(k) != wanted.get(k)}
    if not diff or not diff <= {*GROWING_COUNTS, *GROWING_SEQUENCES}:
        return False
    for k in diff:
        old, new = held.get(k), wanted.get(k)
        if k in GROWING_COUNTS:
            if not (isinstance(old, int) and isinstance(new, int) and new > old):
                return False
        elif not {float(x) for x in _values(old)} <= {float(x) for x in _values(new)}:
            return False
    return True


def _link_or_copy(src: Path, dst: Path) -> None:
    """A hard link (files are replaced, never rewritten in place, so the link keeps the old content), else a copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def check(workdir: Path, held: dict, wanted: dict) -> bool:
    """Whether the sweep in ``workdir`` (plain config ``held``) is grown to ``wanted``, decided without writing:
    ``False`` if it is not growth; the refusals of :func:`prepare` if it is growth that cannot be done.

    Raises:
      SweepError: the held sweep is unfinished or damaged, or its results keep no final states; one line.
    """
    if not is_growth(held, wanted):
        return False
    try:
        old = load_results(workdir)
    except StoreError as e:
        raise SweepError(
            f"{workdir}: cannot grow the sweep it holds, it is unfinished or damaged ({' '.join(str(e).split())}); "
            "finish it first by re-running its command, or use --overwrite"
        ) from None
    if not all(has_final_states(a) for a in old.arrays):
        raise SweepError(
            f"{workdir}: cannot grow the sweep it holds: its results keep no final training states (written by an "
            "older specjax); use --overwrite"
        )
    return True


def prepare(workdir: Path, held: dict, wanted: dict) -> bool:
    """Prepares growing the sweep in ``workdir`` to the config ``wanted``; ``False`` if it is not growth.

    The held sweep must be finished (its results load, :func:`check`). Its ``config.json``, ``summary.json``,
    ``metrics.jsonl`` and results go to ``checkpoints/grow/from/`` (hard links); everything else in ``checkpoints/``
    (the finished sweep's checkpoints, shard folders, an earlier growth) is removed, and so is the root
    ``metrics.jsonl`` (the grown sweep logs its own evaluations there). The caller then writes the new
    ``config.json``.

    Raises:
      SweepError: the held sweep is unfinished or damaged, or its results keep no final states; one line.
    """
    if not check(workdir, held, wanted):
        return False
    old = load_config(workdir)[0]
    checkpoints = workdir / "checkpoints"
    checkpoints.mkdir(exist_ok=True)
    for stale in checkpoints.glob(".grow-*"):
        _remove(stale)
    tmp = checkpoints / f".grow-{os.getpid()}"
    (tmp / "from" / "results").mkdir(parents=True)
    for name in ("config.json", "summary.json"):
        _link_or_copy(workdir / name, tmp / "from" / name)
    # The old log: at the root, or (a growth killed after removing it, before writing its config) in grow/from.
    for log in (workdir / "metrics.jsonl", grow_dir(workdir) / "from" / "metrics.jsonl"):
        if log.exists():
            _link_or_copy(log, tmp / "from" / "metrics.jsonl")
            break
    for g in range(len(old.over_realization)):
        name = f"results/group{g}.npz"
        _link_or_copy(workdir / name, tmp / "from" / name)
    for path in list(checkpoints.iterdir()):
        if path != tmp:
            _remove(path)
    os.replace(tmp, grow_dir(workdir))
    if (workdir / "metrics.jsonl").exists():
        (workdir / "metrics.jsonl").unlink()
    return True


def _history_axis(name: str) -> str | None:
    """The history axis (:data:`HISTORY_AXES`) of a per-run result array, ``None`` if it has none."""
    spec = spec_of(name)
    if spec is None or len(spec.axes) < 3 or spec.axes[:2] != S_N or spec.axes[2] not in HISTORY_AXES:
        return None
    return spec.axes[2]


def _is_per_run(name: str) -> bool:
    """Whether a result array has leading axes ``(setting, seed)``."""
    spec = spec_of(name)
    return spec is not None and spec.axes[:2] == S_N


@dataclasses.dataclass
class Growth:
    """A grown sweep: the old results, what becomes of each run, and the plans of the runs it trains.

    Attributes:
      cfg: the new config.
      old: the sweep it grew from (``checkpoints/grow/from``).
      plans: per group (new order), a ``'continue'`` and/or a ``'fresh'`` plan of the runs to train.
      sources: per new group index, per run, ``(old group index, old run index)`` or ``None`` (fresh).
      note: a line on runs per device, or ``None``.
    """

    cfg: ml_collections.ConfigDict
    old: SweepResult
    plans: list[GroupPlan]
    sources: dict[int, list[tuple[int, int] | None]]
    note: str | None = None

    @property
    def continues(self) -> bool:
        return self.cfg.epochs > self.old.config.epochs

    def describe(self, full: list[GroupPlan]) -> list[str]:
        """One line per group: runs reused, continued and trained fresh."""
        return describe_growth(self.old.config, self.cfg, full, self.sources) + ([self.note] if self.note else [])

    def start(self, plan: GroupPlan, wave: int, runs: range):
        """The saved states, history and chunk counter of a ``'continue'`` wave's padded positions ``runs`` (see
        :func:`specjax.sweep.train.train_wave`); ``None`` for fresh runs.

        The history is the old results' evaluations of the runs; the old last epoch's parameters (and, with
        ``record_corr='snapshots'``, correlation matrices) are dropped unless that epoch is a snapshot epoch of the
        new config, as a sweep run with the new config from the start would not have kept them.
        """
        if plan.stage != "continue":
            return None
        old_cfg = self.old.config
        g = self.sources[plan.index][plan.order[0]][0]
        old_runs = np.array([self.sources[plan.index][plan.run_at(r)][1] for r in runs])
        s_idx, n_idx = old_runs // old_cfg.seeds, old_runs % old_cfg.seeds
        a = self.old.arrays[g]
        leaves = [a[key("final_state", i)][s_idx, n_idx] for i in range(len(state_leaves(plan.spec)))]
        # The old last epoch was a snapshot (parameters, correlation matrices); keep it only if it still is one.
        drop = {"snapshot", *(("corr_eval",) if self.cfg.record_corr == "snapshots" else ())}
        drop = drop if old_cfg.epochs not in {0, *self.cfg.snapshot_epochs} else set()
        history = {}
        for k, v in a.items():
            axis = _history_axis(k)
            if axis is not None:
                h = v[s_idx, n_idx]
                history[k] = np.moveaxis(h[:, :-1] if axis in drop else h, 1, 0)
        chunk = self.cfg.chunk_steps or self.cfg.steps_per_epoch * self.cfg.eval_every
        return leaves, History(history), old_cfg.epochs * old_cfg.steps_per_epoch // chunk

    def group_arrays(self, plan: GroupPlan, trained: dict[int, list[dict]], ident: str) -> dict[str, np.ndarray]:
        """A group's result arrays in the new ``(settings, seeds)`` order, from the old results and the trained waves.

        Args:
          plan: the new config's plan of the group.
          trained: per grow plan (by position in :attr:`plans`), its waves' arrays.
        """
        parts = []  # (group runs, arrays with the runs axis first)
        for i, p in enumerate(self.plans):
            if p.index == plan.index:
                waves = trained[i]
                parts.append((p.order, {k: np.concatenate([w[k] for w in waves])[: len(p.order)] for k in waves[0]}))
        reused = [r for r, s in enumerate(self.sources[plan.index]) if s is not None and not self.continues]
        if reused:
            g = self.sources[plan.index][reused[0]][0]
            a, seeds = self.old.arrays[g], self.old.config.seeds
            old_runs = np.array([self.sources[plan.index][r][1] for r in reused])
            parts.append((reused, {k: v[old_runs // seeds, old_runs % seeds] for k, v in a.items() if _is_per_run(k)}))
        keys = parts[0][1].keys()
        merged = {}
        for k in keys:
            first = parts[0][1][k]
            out = np.empty((plan.runs, *first.shape[1:]), first.dtype)
            filled = np.zeros(plan.runs, bool)
            for runs, arrays in parts:
                if arrays.keys() != keys:
                    raise StoreError(f"grown sweep: arrays {sorted(arrays)} and {sorted(keys)} differ")
                out[list(runs)] = arrays[k]
                filled[list(runs)] = True
            assert filled.all(), f"group {plan.index}: runs {np.flatnonzero(~filled)} have no source"
            merged[k] = out
        return group_arrays(self.cfg, plan, [merged], ident)


def load_growth(
    cfg: ml_collections.ConfigDict, plans: list[GroupPlan], workdir: Path, ident: str, num_devices: int
) -> Growth | None:
    """The growth of the sweep in ``workdir`` (its config written, ``checkpoints/grow/from`` present), else ``None``.

    Args:
      plans: the new config's plans.
      num_devices: devices of the mesh (for :func:`_block_note`).

    Raises:
      StoreError: the copy of the old sweep is damaged, or is not one ``cfg`` grows (names it).
    """
    source = grow_dir(workdir) / "from"
    if not (source / "config.json").exists():
        return None
    old_cfg, old_ident = load_config(source)
    if old_ident == ident:
        return None
    if not is_growth(_identity(old_cfg), _identity(cfg)):
        raise StoreError(f"{source}: holds a sweep this config does not grow; delete that folder or use --overwrite")
    old = load_results(source)
    grow_plans, sources = plan_growth(old_cfg, cfg, plans)
    note = _block_note(old_cfg, plans, num_devices)
    return Growth(cfg, old, grow_plans, sources, note)


def plan_growth(
    old_cfg: ml_collections.ConfigDict, cfg: ml_collections.ConfigDict, plans: list[GroupPlan]
) -> tuple[list[GroupPlan], dict[int, list[tuple[int, int] | None]]]:
    """What growing the sweep ``old_cfg`` to ``cfg`` trains; a pure function of the two configs and the new plans.

    Returns:
      ``(grow plans, sources)``: per group (new order), a ``'continue'`` and/or a ``'fresh'`` plan of the runs to
      train; per new group index, per run, ``(old group index, old run index)`` or ``None`` (fresh).
    """
    old_settings = {s: i for i, s in enumerate(config_lib.settings_grid(old_cfg))}
    old_groups = {int(o): g for g, o in enumerate(old_cfg.over_realization)}
    continues = cfg.epochs > old_cfg.epochs
    grow_plans, sources = [], {}
    for p in plans:
        g = old_groups.get(p.over_realization)
        src: list[tuple[int, int] | None] = []
        for r in range(p.runs):
            s, n = divmod(r, p.seeds)
            old_s = old_settings.get(p.settings[s])
            src.append(None if g is None or old_s is None or n >= old_cfg.seeds else (g, old_s * old_cfg.seeds + n))
        sources[p.index] = src
        kept = [r for r, x in enumerate(src) if x is not None]
        fresh = [r for r, x in enumerate(src) if x is None]
        if continues and kept:
            grow_plans.append(dataclasses.replace(p, order=tuple(kept), stage="continue"))
        if fresh:
            grow_plans.append(dataclasses.replace(p, order=tuple(fresh), stage="fresh"))
    return grow_plans, sources


def describe_growth(
    old_cfg: ml_collections.ConfigDict, cfg: ml_collections.ConfigDict, plans: list[GroupPlan], sources: dict
) -> list[str]:
    """One line per group of the grown sweep: runs reused (or continued) and trained fresh."""
    lines = []
    for p in plans:
        old = sum(s is not None for s in sources[p.index])
        kept = f"{old} continued from epoch {old_cfg.epochs}" if cfg.epochs > old_cfg.epochs else f"{old} reused"
        lines.append(f"[grow x{p.over_realization}] {p.runs} runs: {kept}, {p.runs - old} trained fresh")
    return lines


def _identity(cfg: ml_collections.ConfigDict) -> dict:
    return resume_identity(config_lib.to_plain(cfg))


def _block_note(old_cfg: ml_collections.ConfigDict, plans: list[GroupPlan], num_devices: int) -> str | None:
    """A line when a group's block size differs between the old config and the new one on these devices: automatic
    blocks on a GPU/TPU (``runs_per_block = 0``) hold a whole group, so kept runs were evaluated at another number of
    runs per device, which can change evaluation numbers in the last bit."""
    if plans[0].spec.cpu_gemm_layout or old_cfg.runs_per_block:
        return None
    old_blocks = {p.over_realization: p.block for p in plan_groups(old_cfg, num_devices, True)}
    changed = [p.over_realization for p in plans if old_blocks.get(p.over_realization, p.block) != p.block]
    if not changed:
        return None
    return (
        f"[grow] note: groups x{changed} get larger automatic blocks (runs_per_block = 0 on a GPU/TPU): evaluation "
        "numbers of the kept runs may differ from a fresh sweep's in the last bit; set config.runs_per_block to keep "
        "them bit-identical"
    )


__all__ = [
    "GROWING_COUNTS",
    "GROWING_SEQUENCES",
    "Growth",
    "check",
    "describe_growth",
    "is_growth",
    "load_growth",
    "plan_growth",
    "prepare",
]
