"""The metrics log, ``metrics.jsonl``: one JSON line per evaluation of each setting's runs in a wave, exactly once.

A line is keyed by ``(shard, stage, group, wave, epoch, setting)`` (:func:`line_key`): ``shard`` is ``[i, N]`` for a
shard or a process of a multi-process sweep, ``stage`` a grown sweep's ``'continue'``/``'fresh'`` runs, both
``null`` otherwise. Besides the key it holds the setting's values (``teacher_polarity``, ``lr``, ...), ``runs`` (the
setting's runs in the wave, padding left out), ``valid`` (those not diverged), ``diverged``, the eval-loss quantiles
and median MSE of the valid runs, ``covered`` (per layer-1 teacher node, how many valid runs have a best
correlation above :data:`~specjax.core.metrics.MATCH_THRESHOLD`: counts, so that lines merge exactly),
``success_rate`` (their mean over the nodes, divided by ``valid``), ``run_steps_per_s`` and ``time``.

Exactly once: a writer (:class:`MetricsLog`) first cuts a half-written last line (a kill in mid-write) and reads the
keys already there; an evaluation that a resumed wave repeats (a kill loses the work since its last checkpoint, and
resuming is bit-identical, so the repeated numbers are the same) is not written again. A grown sweep moves the old
sweep's log to ``checkpoints/grow/from/`` (:func:`specjax.sweep.grow.prepare`). Shards (and processes) write
``checkpoints/shard<i>of<N>/metrics.jsonl``; the merge writes their union to the workdir's root (:func:`merge`).

Readers (:func:`read_lines`, :mod:`specjax.sweep.status`) take no lock and skip a half-written last line.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from specjax import store
from specjax.core import metrics
from specjax.errors import StoreError

#: The fields of a line that identify it (one line per key).
KEY_FIELDS = ("shard", "stage", "group", "wave", "epoch", "setting")


def line_key(line: dict) -> tuple:
    """The identity of a metrics line, :data:`KEY_FIELDS` (lists made tuples)."""
    return tuple(tuple(v) if isinstance(v, list) else v for v in (line.get(k) for k in KEY_FIELDS))


def setting_summaries(
    best: np.ndarray,
    eval_loss: np.ndarray,
    eval_mse: np.ndarray,
    diverged: np.ndarray,
    setting_of: np.ndarray,
    real: np.ndarray | None = None,
    threshold: float = metrics.MATCH_THRESHOLD,
) -> dict[int, dict]:
    """Per setting, the evaluation of its runs in a few numbers (the metrics log's lines; reusable by analyses).

    Args:
      best: ``(runs, m)`` best correlation per teacher node (layer 1) at one evaluation.
      eval_loss, eval_mse: ``(runs,)``; diverged: ``(runs,)`` bool; setting_of: ``(runs,)`` int, each run's setting.
      real: ``(runs,)`` bool, False for padding (left out); default all True.

    Returns:
      setting index -> ``runs``, ``valid`` (not diverged), ``diverged``, ``covered`` (``(m,)`` counts of valid runs
      covering each node, :func:`specjax.core.metrics.success_counts`), ``success_rate`` (mean of
      ``covered / valid`` over the nodes; ``None`` without valid runs), ``eval_loss_q10``/``_median``/``_q90`` and
      ``eval_mse_median`` of the valid runs (``None`` without any).
    """
    real = np.ones(len(setting_of), bool) if real is None else np.asarray(real)
    out = {}
    for s in np.unique(setting_of[real]):
        mine = real & (setting_of == s)
        valid = mine & ~diverged
        covered, trials = metrics.success_counts(best[mine], threshold, valid=valid[mine])
        n = int(valid.sum())
        q = np.quantile(eval_loss[valid], [0.1, 0.5, 0.9]).tolist() if n else [None] * 3
        out[int(s)] = {
            "runs": int(mine.sum()),
            "valid": n,
            "diverged": int((mine & diverged).sum()),
            "covered": [int(c) for c in covered],
            "success_rate": float(np.mean(covered / n)) if n else None,
            "eval_loss_q10": q[0],
            "eval_loss_median": q[1],
            "eval_loss_q90": q[2],
            "eval_mse_median": float(np.median(eval_mse[valid])) if n else None,
        }
    return out


def read_lines(path: Path) -> list[dict]:
    """The lines of a metrics log, in order; a half-written or unreadable line (a writer killed or still writing)
    is skipped. Takes no lock; ``[]`` if the file does not exist."""
    try:
        text = path.read_bytes().decode(errors="replace")
    except FileNotFoundError:
        return []
    except OSError as e:
        raise StoreError(f"{path}: cannot read the metrics log ({e.strerror})") from None
    out = []
    for raw in text.split("\n"):
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict):
            out.append(line)
    return out


class MetricsLog:
    """Appends lines to one metrics log, each key at most once (see the module docstring).

    Opening cuts a half-written last line and reads the keys present. Only one writer per file at a time (the
    sweep holds the workdir's or its shard's lock).
    """

    def __init__(self, path: Path):
        self.path = path
        try:
            if path.exists():
                with open(path, "rb+") as f:
                    data = f.read()
                    if data and not data.endswith(b"\n"):  # a kill in mid-write: cut the torn line
                        f.truncate(data.rfind(b"\n") + 1)
        except OSError as e:
            raise StoreError(f"{path}: cannot repair the metrics log ({e.strerror})") from None
        self.keys = {line_key(line) for line in read_lines(path)}

    def write(self, lines: list[dict]) -> None:
        """Appends the lines whose key is not in the log yet, in one write."""
        new = []
        for line in lines:
            k = line_key(line)
            if k not in self.keys:
                self.keys.add(k)
                new.append(json.dumps(line) + "\n")
        if not new:
            return
        try:
            with open(self.path, "a") as f:
                f.write("".join(new))
        except OSError as e:
            raise StoreError(f"{self.path}: cannot append to the metrics log ({e.strerror})") from None

    def wave_logger(self, plan, wave: int, progress):
        """The ``on_eval(epoch, per_setting)`` callback of a wave (:func:`specjax.sweep.train.train_wave`): one line
        per setting of :func:`setting_summaries`."""

        def log(epoch: int, per_setting: dict[int, dict]) -> None:
            where = {
                "shard": list(plan.shard) if plan.shard is not None else None,
                "stage": plan.stage,
                "group": plan.index,
                "wave": wave,
                "epoch": int(epoch),
            }
            now, rate = round(time.time(), 3), round(progress.rate, 1)
            self.write(
                [
                    {
                        **where,
                        "setting": s,
                        "over_realization": plan.over_realization,
                        **plan.settings[s]._asdict(),
                        **summary,
                        "run_steps_per_s": rate,
                        "time": now,
                    }
                    for s, summary in sorted(per_setting.items())
                ]
            )

        return log


def merge(target: Path, sources: list[Path]) -> None:
    """Writes the union of the metrics logs ``sources`` (shards' logs) to ``target`` atomically, each key once, in
    the order read (lines already in ``target`` first). Missing sources are skipped."""
    seen, out = set(), []
    for path in (target, *sources):
        for line in read_lines(path):
            k = line_key(line)
            if k not in seen:
                seen.add(k)
                out.append(json.dumps(line) + "\n")
    if out or target.exists():
        store.atomic_write(target, lambda f: f.write("".join(out).encode()))


def latest_mtime(paths: list[Path]) -> float | None:
    """The newest modification time of the existing ``paths``, ``None`` if none exists."""
    times = [os.stat(p).st_mtime for p in paths if p.exists()]
    return max(times) if times else None


__all__ = ["KEY_FIELDS", "MetricsLog", "line_key", "merge", "read_lines", "setting_summaries"]
