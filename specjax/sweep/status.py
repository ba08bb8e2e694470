"""``python -m specjax.sweep.status --workdir=W``: where a sweep stands, read from its files while it runs or after.

    python -m specjax.sweep.status --workdir=runs/quickstart [--every=10]

Prints one table: per shard (or process, or the whole sweep) the runs finished out of its runs and the epoch its
waves have reached; per setting the runs reported, the epochs of their latest evaluations and the current success
rate (mean over teacher nodes, and per node), merged across shards, processes and waves from every metrics log
(:mod:`specjax.sweep.metrics_log`: the workdir's and each shard's); and the ETA: the training left at the rate last
measured (the CPU cost model before any rate is logged) plus compiling every group that has not started. A
finished sweep's table comes from ``summary.json`` (with its Wilson intervals when present).

Whether a process is training each unfinished unit is read from ``/proc/locks`` (the workdir's or the shard's
lock held). It only reads: no lock is taken, nothing is written, and a half-written last line of a log is skipped,
so it is safe beside a running sweep, its shards and processes. Never imported by the package (``-m`` runs it once).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import ml_collections
import numpy as np

from specjax import store
from specjax.errors import StoreError
from specjax.sweep import grow, metrics_log, preflight, shards
from specjax.sweep.checkpoint import grow_dir
from specjax.sweep.dryrun import lock_held
from specjax.sweep.plan import GroupPlan, plan_groups, step_cost
from specjax.sweep.progress import format_duration
from specjax.sweep.summary import load_config
from specjax.sweep.workdir import sweep_id

_SHARD_DIR = re.compile(r"^shard(\d+)of(\d+)$")


def _shard_counts(workdir: Path) -> list[int]:
    """The shard counts of the ``checkpoints/shard<i>of<N>`` folders (other entries ignored)."""
    folder = workdir / "checkpoints"
    if not folder.is_dir():
        return []
    found = {int(m.group(2)) for p in folder.iterdir() if p.is_dir() and (m := _SHARD_DIR.match(p.name))}
    return sorted(found)


def _setting_label(cfg: ml_collections.ConfigDict, plan: GroupPlan, s: int) -> str:
    """``x5 p=2 lr=0.02``: the over-realization and the values of the swept fields (those with several values; the
    polarity always)."""
    from specjax.engine import HPARAM_LABELS

    values = plan.settings[s]._asdict()
    swept = [f for f in values if f == "teacher_polarity" or len(np.atleast_1d(cfg[f])) > 1]
    return f"x{plan.over_realization} " + " ".join(f"{HPARAM_LABELS[f]}={values[f]:g}" for f in swept)


def _units(cfg, plans: list[GroupPlan], counts: list[int], growing: list[GroupPlan] | None) -> dict:
    """The units that train: per shard ``(i, N)`` (or ``None``: the whole sweep in one process) its plans."""
    if counts:
        n = counts[-1]
        return {(i, n): shards.shard_plans(cfg, plans, (i, n)) for i in range(n)}
    return {None: growing if growing is not None else plans}


def status(workdir: str | Path, now: float | None = None) -> str:
    """The status table of the sweep in ``workdir`` (see the module docstring).

    Raises:
      StoreError: no sweep there (no ``config.json``), or a file cannot be read (names it).
    """
    wd = Path(workdir)
    now = time.time() if now is None else now
    if not (wd / "config.json").is_file():
        raise StoreError(f"{wd}: holds no sweep (no config.json); give the --workdir of a sweep")
    cfg, _ = load_config(wd)
    held = store.load_json(wd / "config.json")
    ident = sweep_id(cfg)
    devices = cfg.num_devices or max(len(held.get("devices") or []), 1)
    plans = plan_groups(cfg, devices, held.get("platform", "cpu") != "cpu")
    counts = _shard_counts(wd)
    summary_path = wd / "summary.json"
    finished = summary_path.exists() and summary_path.stat().st_mtime >= (wd / "config.json").stat().st_mtime
    growing = None
    source = grow_dir(wd) / "from"
    if (source / "config.json").exists() and not finished:
        old_cfg, old_ident = load_config(source)
        if old_ident != ident:
            growing = grow.plan_growth(old_cfg, cfg, plans)[0]
    units = _units(cfg, plans, counts, growing)
    logs = [
        wd / "metrics.jsonl",
        *(wd / "checkpoints" / f"shard{i}of{n}" / "metrics.jsonl" for n in counts for i in range(n)),
    ]
    lines, seen = [], set()
    for path in logs:
        for line in metrics_log.read_lines(path):
            k = metrics_log.line_key(line)
            if k not in seen:
                seen.add(k)
                lines.append(line)
    total_runs = sum(p.runs for p in plans)
    out = [
        f"sweep {wd}: {len(plans)} group(s) x {len(plans[0].settings)} setting(s) x {cfg.seeds} seed(s) = "
        f"{total_runs} runs, {cfg.epochs} epochs; "
        + ("finished" if finished else "growing" if growing is not None else "unfinished")
    ]
    updated = metrics_log.latest_mtime(logs)
    if updated is not None and not finished:
        out[0] += f"; last evaluation logged {format_duration(now - updated)} ago"

    # Latest line per source (shard, stage, group, wave, setting), and per wave the latest epoch.
    latest: dict[tuple, dict] = {}
    for line in lines:
        k = metrics_log.line_key(line)
        src = k[:4] + k[5:]
        if src not in latest or line["epoch"] >= latest[src]["epoch"]:
            latest[src] = line
    wave_epoch: dict[tuple, int] = {}
    for k, line in latest.items():
        w = k[:4]
        wave_epoch[w] = max(wave_epoch.get(w, 0), line["epoch"])

    # Per unit: runs finished, ETA.
    eta_s = []
    for unit, unit_plans in units.items():
        shard_key = list(unit) if unit is not None else None
        sk = tuple(shard_key) if shard_key else None
        mine = [x for x in lines if (tuple(x["shard"]) if x.get("shard") else None) == sk]
        total = sum(len(p.trained) for p in unit_plans)
        done_mark = unit is not None and shards.done_path(wd, unit).exists()
        done = total if (done_mark or finished) else 0
        left_s, compiling = 0.0, 0
        rate = None
        if mine:
            last = max(mine, key=lambda x: x.get("time", 0))
            group = next((p for p in unit_plans if p.index == last["group"]), None)
            if last.get("run_steps_per_s") and group is not None:
                rate = last["run_steps_per_s"] * step_cost(group.spec)
        rate = rate or preflight.ASSUMED_COST_PER_S * devices
        started_groups = {x["group"] for x in mine}
        for p in unit_plans:
            for w, runs in enumerate(p.waves):
                epoch = wave_epoch.get((sk, p.stage, p.index, w), 0)
                if epoch >= cfg.epochs and not (done_mark or finished):
                    done += sum(1 for r in runs if r in p.trained)
                if not (done_mark or finished):
                    left_s += len(runs) * (cfg.epochs - epoch) * cfg.steps_per_epoch * step_cost(p.spec) / rate
            if p.index not in started_groups and not (done_mark or finished):
                compiling += 1
        left_s += compiling * preflight.COMPILE_S_PER_GROUP
        reached = [wave_epoch.get((sk, p.stage, p.index, w), 0) for p in unit_plans for w in range(len(p.waves))]
        name = "whole sweep" if unit is None else f"shard {unit[0]}/{unit[1]}"
        if growing is not None and unit is None:
            name = "growth"
        state = "" if done >= total else f", epochs {min(reached, default=0)}-{max(reached, default=0)} reached"
        if done >= total and not (done_mark or finished):
            state = "; its results are not written yet (re-running its command writes them)"
        extra = ""
        if done < total:
            eta_s.append(left_s)
            extra = f"; ~{format_duration(left_s)} left" + (
                f" (incl. compiling {compiling} group(s))" if compiling else ""
            )
        if done < total:
            held = lock_held(wd if unit is None else shards.lock_path(wd, unit))
            extra += "" if held is None else " (running)" if held else " (not running: no process holds its lock)"
        out.append(f"  {name}: {done}/{total} runs finished{state}{extra}")
    if growing is not None:
        reused = total_runs - sum(len(p.trained) for p in growing)
        out.append(f"  {reused} run(s) reused from the sweep it grew from (checkpoints/grow/from), not in this log")
    if eta_s:
        out.append(f"ETA {format_duration(max(eta_s))} (shards running in parallel; rates from the metrics log)")

    out.append(_table(cfg, plans, latest, finished, summary_path))
    return "\n".join(out)


def _table(cfg, plans: list[GroupPlan], latest: dict, finished: bool, summary_path: Path) -> str:
    """Per setting: runs reported, epochs, success rate (mean and per teacher node)."""
    rows = [f"  {'setting':<24} {'runs':>7} {'epoch':>7} {'success':>8}  per teacher node"]
    if finished:
        groups = store.load_json(summary_path).get("groups", [])
        for p in plans:
            for s in range(len(p.settings)):
                g = groups[p.index * len(p.settings) + s]
                rate = np.asarray(g["success_rate"], float)
                valid = g.get("valid_seeds", int(np.sum(~np.asarray(g["diverged"]))))
                ci = ""
                if "success_rate_ci_half_width" in g:
                    ci = f"  (95% interval half-width <= {g['success_rate_ci_half_width']:.2f})"
                rows.append(
                    f"  {_setting_label(cfg, p, s):<24} {valid:>3}/{p.seeds:<3} {cfg.epochs:>7} "
                    f"{np.nanmean(rate):>8.2f}  {' '.join(f'{r:.2f}' for r in rate)}{ci}"
                )
        return "\n".join(rows)
    for p in plans:
        for s in range(len(p.settings)):
            mine = [x for k, x in latest.items() if x["group"] == p.index and x["setting"] == s]
            runs = sum(x["runs"] for x in mine)
            valid = sum(x["valid"] for x in mine)
            if not mine:
                rows.append(f"  {_setting_label(cfg, p, s):<24} {0:>3}/{p.seeds:<3} {'-':>7} {'-':>8}")
                continue
            covered = np.sum([x["covered"] for x in mine], axis=0)
            epochs = sorted({x["epoch"] for x in mine})
            epoch = f"{epochs[0]}" if len(epochs) == 1 else f"{epochs[0]}-{epochs[-1]}"
            rate = covered / valid if valid else np.full(len(covered), np.nan)
            mean = f"{np.mean(rate):.2f}" if valid else "n/a"
            rows.append(
                f"  {_setting_label(cfg, p, s):<24} {runs:>3}/{p.seeds:<3} {epoch:>7} {mean:>8}  "
                + " ".join(f"{r:.2f}" for r in rate)
            )
    return "\n".join(rows)


def main(argv: list[str]) -> None:
    from absl import flags

    from specjax import config as config_lib

    if len(argv) > 1:
        raise config_lib.ConfigError(f"unexpected argument(s) {argv[1:]}")
    f = flags.FLAGS
    if f.every < 0:
        raise config_lib.ConfigError(f"every: must be >= 0 seconds, got {f.every}")
    while True:
        text = status(f.workdir)
        print(text, flush=True)
        if not f.every or text.splitlines()[0].endswith("finished"):
            return
        time.sleep(f.every)
        print(flush=True)


def run_cli() -> None:
    """Entry point of ``python -m specjax.sweep.status``."""
    import sys

    from absl import app, flags

    from specjax import cli
    from specjax.errors import SpecjaxError

    flags.DEFINE_string("workdir", None, "The sweep's folder (running or finished).")
    flags.DEFINE_float("every", 0, "Print the table again every this many seconds until the sweep finishes (0: once).")
    flags.mark_flags_as_required(["workdir"])

    def guarded(argv):
        try:
            main(argv)
        except SpecjaxError as e:
            cli.fail("specjax.sweep.status", str(e))
        except KeyboardInterrupt:
            sys.exit(130)

    app.run(guarded, flags_parser=cli.flags_parser("specjax.sweep.status"))


if __name__ == "__main__":
    run_cli()
