"""metrics.jsonl: one line per (shard, stage, group, wave, evaluation, setting) after any kill, resume or growth; per
setting and per teacher node; shards merged at the workdir root (issues 19.6, 21.1)."""

import json
import re
from collections import Counter

import pytest
from helpers import Interrupt, interrupt_after, small_config

from specjax import sweep
from specjax.sweep import metrics_log, shards
from specjax.sweep.metrics_log import line_key, read_lines

SETTINGS = 2  # small_config: lr 0.05, 0.1 at polarity 0
VOLATILE = ("time", "run_steps_per_s")


def stable(lines: list[dict]) -> list[dict]:
    """The lines without wall-clock fields, sorted by key."""
    return sorted(({k: v for k, v in x.items() if k not in VOLATILE} for x in lines), key=lambda x: str(line_key(x)))


def assert_once(lines: list[dict], expected: int) -> None:
    counts = Counter(line_key(x) for x in lines)
    assert max(counts.values()) == 1, [k for k, n in counts.items() if n > 1]
    assert len(lines) == expected, len(lines)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    wd = tmp_path_factory.mktemp("ref")
    sweep.run_sweep(small_config(checkpoint_every_s=1e9), wd, progress=None)
    return read_lines(wd / "metrics.jsonl")


def test_lines_per_setting_and_teacher_node(uninterrupted):
    assert_once(uninterrupted, SETTINGS * 5)  # 5 evaluations: epochs 0..4
    line = uninterrupted[-1]
    assert {"teacher_polarity", "lr", "over_realization", "runs", "valid", "covered", "success_rate"} <= set(line)
    assert line["runs"] == 2 and len(line["covered"]) == 3  # 2 seeds; m = 3 teacher nodes
    assert line["success_rate"] == pytest.approx(sum(line["covered"]) / (3 * line["valid"]))


def test_a_kill_and_a_torn_line_leave_each_evaluation_once(tmp_path, uninterrupted):
    """Checkpoints only after the first evaluation (a long checkpoint interval): a sweep stopped without a safe point
    after epoch 3 resumes from epoch 0 and evaluates epochs 1-3 again. Before, their lines were written twice
    (4769 lines for 4001 evaluations in the issue); a line torn by a kill in mid-write broke the file."""
    cfg = small_config(checkpoint_every_s=1e9)
    wd = tmp_path / "wd"
    with pytest.raises(Interrupt):
        sweep.run_sweep(cfg, wd, progress=interrupt_after(3))
    with open(wd / "metrics.jsonl", "a") as f:
        f.write('{"shard": null, "stage": null, "group": 0, "wa')  # a kill in mid-write
    sweep.run_sweep(cfg, wd, progress=None)
    lines = read_lines(wd / "metrics.jsonl")
    assert_once(lines, SETTINGS * 5)
    for raw in (wd / "metrics.jsonl").read_text().splitlines():
        json.loads(raw)  # every line whole
    assert stable(lines) == stable(uninterrupted)


def test_a_grown_sweep_logs_its_own_runs_once(tmp_path):
    wd = tmp_path / "wd"
    sweep.run_sweep(small_config(), wd, progress=None)
    sweep.run_sweep(small_config(seeds=3), wd, progress=None)  # one fresh seed per setting
    lines = read_lines(wd / "metrics.jsonl")
    assert_once(lines, SETTINGS * 5)
    assert {x["stage"] for x in lines} == {"fresh"} and {x["runs"] for x in lines} == {1}
    assert len(read_lines(wd / "checkpoints" / "grow" / "from" / "metrics.jsonl")) == SETTINGS * 5
    sweep.run_sweep(small_config(seeds=3, epochs=6), wd, progress=None)  # every run continues for 2 epochs
    lines = read_lines(wd / "metrics.jsonl")
    assert_once(lines, SETTINGS * 2)
    assert {(x["stage"], x["epoch"], x["runs"]) for x in lines} == {("continue", e, 3) for e in (5, 6)}


def test_shards_merge_their_logs_at_the_root(tmp_path):
    cfg = small_config(checkpoint_every_s=1e9, seeds=3)  # 6 runs in units of 2: setting 0 (runs 0-2) spans both shares
    wd = tmp_path / "wd"
    for i in (1, 0):
        shards.run_shard(cfg, wd, 2, i, progress=None)
    parts = [read_lines(wd / "checkpoints" / f"shard{i}of2" / "metrics.jsonl") for i in (0, 1)]
    lines = read_lines(wd / "metrics.jsonl")
    assert_once(lines, len(parts[0]) + len(parts[1]))
    assert len(lines) > SETTINGS * 5  # a setting split between the shards has a line from each
    per = Counter()
    for x in lines:
        per[(x["setting"], x["epoch"])] += x["runs"]
    assert per == {(s, e): 3 for s in range(SETTINGS) for e in range(5)}
    metrics_log.merge(wd / "metrics.jsonl", [wd / "checkpoints" / "shard0of2" / "metrics.jsonl"])  # idempotent
    assert len(read_lines(wd / "metrics.jsonl")) == len(lines)


def test_status_of_a_running_a_sharded_and_a_finished_sweep(tmp_path):
    """``python -m specjax.sweep.status``: per unit runs finished and time left (compilation included), per setting
    the current success merged over shards; read-only, a half-written last line skipped."""
    from helpers import assert_refusal, listing, run_module

    from specjax.sweep.status import status
    from specjax.sweep.workdir import workdir_lock

    cfg = small_config(checkpoint_every_s=1e9)
    wd = tmp_path / "wd"
    with pytest.raises(Interrupt):
        sweep.run_sweep(cfg, wd, progress=interrupt_after(2))  # stopped at epoch 2 of 4
    with open(wd / "metrics.jsonl", "a") as f:
        f.write('{"shard": null, "stage": null, "gr')  # a line being written
    before = listing(wd)
    text = status(wd)
    assert listing(wd) == before
    assert "unfinished; last evaluation logged" in text, text
    assert re.search(r"whole sweep: 0/4 runs finished, epochs 2-2 reached; ~\d\d:\d\d:\d\d left", text), text
    assert "(not running: no process holds its lock)" in text
    with workdir_lock(wd):  # as a running sweep holds it
        assert "left (running)" in status(wd)
    assert "compiling" not in text  # its group has started
    logged = {(x["setting"], x["epoch"]): x for x in read_lines(wd / "metrics.jsonl")}
    for s, lr in enumerate((0.05, 0.1)):
        rate = logged[(s, 2)]["covered"]
        row = f"x1 p=0 lr={lr:g} +2/2 +2 +{sum(rate) / 6:.2f}  " + " ".join(f"{c / 2:.2f}" for c in rate)
        assert re.search(row, text), (row, text)

    sharded = tmp_path / "sharded"
    shards.run_shard(cfg, sharded, 2, 0, progress=None)
    text = status(sharded)
    assert "shard 0/2: 2/2 runs finished" in text, text
    assert re.search(r"shard 1/2: 0/2 runs finished, epochs 0-0 reached; ~.* left \(incl. compiling 1 group", text)
    assert re.search(r"x1 p=0 lr=0.05 +2/2 +4 ", text) and re.search(r"x1 p=0 lr=0.1 +0/2 +- +-", text), text
    assert text.splitlines()[1].startswith("  shard 0/2") and "ETA" in text

    sweep.run_sweep(cfg, wd, progress=None)
    text = status(wd)
    assert text.splitlines()[0].endswith("finished") and "4/4 runs finished" in text and "ETA" not in text

    proc = run_module("specjax.sweep.status", [f"--workdir={tmp_path / 'nothing'}"])
    assert_refusal(proc.returncode, proc.stdout, proc.stderr, "specjax.sweep.status", r"nothing: holds no sweep")
