"""Sweeps that grow: re-running a finished workdir with more seeds, epochs, swept values or over-realizations trains
only the new runs (continuing old runs from their final states when epochs grew) and ends bit-identical to a sweep
run with the final settings from the start (every array of ``results/*.npz`` and all of ``summary.json``); any
other change is refused in one line with nothing in the workdir changed.
"""

import re
import shutil

import pytest
from helpers import (
    TINY,
    Interrupt,
    assert_refusal,
    assert_same_results,
    interrupt_after,
    run_module_cases,
    small_config,
    snapshot,
)

from specjax import sweep
from specjax.engine import make_mesh
from specjax.sweep import shards

#: The config every in-process test grows from: 1 learning rate x 2 seeds, 2 epochs, 4 runs of the x1 group.
BEFORE = dict(seeds=2, epochs=2, lr=(0.05,))


@pytest.fixture(scope="module")
def mesh():
    return make_mesh(4)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, mesh):
    """``fresh(**overrides)``: the workdir of a sweep run with ``small_config(**overrides)`` from the start (each
    config trained once per module)."""
    done = {}

    def get(**overrides):
        key = repr(sorted(overrides.items()))
        if key not in done:
            done[key] = tmp_path_factory.mktemp("fresh")
            sweep.run_sweep(small_config(**overrides), done[key], progress=None, mesh=mesh)
        return done[key]

    return get


@pytest.fixture(scope="module")
def grown_from(fresh):
    """``grown_from(dest, **overrides)``: a copy at ``dest`` of the finished sweep of :data:`BEFORE` | ``overrides``."""

    def copy(dest, **overrides):
        shutil.copytree(fresh(**(BEFORE | overrides)), dest)
        return dest

    return copy


def epoch_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if re.search(r" epoch \d+/\d+ \| ", line)]


# case: (overrides of BEFORE for the old sweep, overrides for the grown one, the growth's first progress lines,
# runs per trained wave (None: several sizes), epochs trained)
CASES = {
    "seeds": ({}, dict(seeds=3), ["[grow x1] 3 runs: 2 reused, 1 trained fresh"], 1, range(1, 3)),
    # The old last epoch (2) is not a snapshot epoch of the longer sweep: its parameters and matrices are dropped.
    "epochs": (
        dict(snapshot_epochs=(1,)),
        dict(epochs=4),
        ["[grow x1] 2 runs: 2 continued from epoch 2, 0 trained fresh"],
        2,
        range(3, 5),
    ),
    # Correlation matrices at every evaluation: epoch 2's are kept, its parameters dropped.
    "epochs_record_corr_all": (
        dict(snapshot_epochs=(1,), record_corr="all"),
        dict(epochs=4),
        ["[grow x1] 2 runs: 2 continued from epoch 2, 0 trained fresh"],
        2,
        range(3, 5),
    ),
    # Epoch 2 stays a snapshot (tiny.py's snapshot_epochs=(2,)): its entries are kept.
    "epochs_snapshot_kept": (
        {},
        dict(epochs=4),
        ["[grow x1] 2 runs: 2 continued from epoch 2, 0 trained fresh"],
        2,
        range(3, 5),
    ),
    "lr": ({}, dict(lr=(0.1, 0.05)), ["[grow x1] 4 runs: 2 reused, 2 trained fresh"], 2, range(1, 3)),
    "over_realization": (
        {},
        dict(over_realization=(2, 1)),
        ["[grow x2] 2 runs: 0 reused, 2 trained fresh", "[grow x1] 2 runs: 2 reused, 0 trained fresh"],
        2,
        range(1, 3),
    ),
    "all_at_once": (
        {},
        dict(seeds=3, epochs=4, lr=(0.05, 0.1), over_realization=(1, 2)),
        [
            "[grow x1] 6 runs: 2 continued from epoch 2, 4 trained fresh",
            "[grow x2] 6 runs: 0 continued from epoch 2, 6 trained fresh",
        ],
        None,
        range(1, 5),
    ),
}


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=pytest.mark.slow) if c == "over_realization" else c for c in CASES]
)  # a new over-realization compiles a new shape group: the longest case, slow
def test_grown_sweep_is_bit_identical_to_a_fresh_one(case, tmp_path, grown_from, fresh, mesh):
    """Only new runs train (the progress lines count them and name the epochs trained), and the results equal a
    sweep run with the final settings from the start, bit for bit."""
    start, overrides, said, runs, epochs = CASES[case]
    after = BEFORE | start | overrides
    wd = grown_from(tmp_path / "wd", **start)
    lines = []
    result = sweep.run_sweep(small_config(**after), wd, progress=lines.append, mesh=mesh)
    assert lines[: len(said)] == said
    trained = epoch_lines(lines)
    assert trained and {int(re.search(r" epoch (\d+)/", line).group(1)) for line in trained} == set(epochs)
    if runs is not None:
        assert all(line.split(" | ")[1] == f"{runs} runs" for line in trained), trained
    assert_same_results(fresh(**after), wd)
    assert result.summary == sweep.load_results(wd).summary


def test_grown_sweep_killed_midway_resumes_and_grows_again(tmp_path, grown_from, fresh, mesh):
    """A grown sweep interrupted during its continued runs and again during its fresh ones resumes from its own
    checkpoints; re-running the finished one trains nothing; it then grows a second time."""
    after = BEFORE | dict(seeds=3, epochs=4)
    wd = grown_from(tmp_path / "wd")
    # Stopped after epoch 3 of the continued runs (line 2, after the describe line), then after epoch 2 of the fresh
    # run (line 5: describe, resuming, epoch 4, epochs 1 and 2).
    for stop in (2, 5):
        seen = []
        with pytest.raises(Interrupt):
            sweep.run_sweep(small_config(**after), wd, progress=interrupt_after(stop, seen), mesh=mesh)
    assert seen[1] == "resuming checkpoints/grow/group0_continue_wave0.npz: at chunk 6/8", seen
    lines = []
    sweep.run_sweep(small_config(**after), wd, progress=lines.append, mesh=mesh)
    assert lines[1:3] == [
        "resuming checkpoints/grow/group0_continue_wave0.npz: finished",
        "resuming checkpoints/grow/group0_fresh_wave0.npz: at chunk 4/8",
    ], lines
    assert_same_results(fresh(**after), wd)

    lines = []
    sweep.run_sweep(small_config(**after), wd, progress=lines.append, mesh=mesh)
    assert epoch_lines(lines) == [] and sum(line.endswith(": finished") for line in lines) == 2, lines
    assert_same_results(fresh(**after), wd)

    again = after | dict(seeds=4)
    lines = []
    sweep.run_sweep(small_config(**again), wd, progress=lines.append, mesh=mesh)
    assert lines[0] == "[grow x1] 4 runs: 3 reused, 1 trained fresh"
    assert_same_results(fresh(**again), wd)


@pytest.mark.parametrize(
    "change, fields",
    [
        (dict(lr=(0.07,)), "['lr']"),  # a trained run's learning rate
        (dict(seeds=1), "['seeds']"),
        (dict(d=10), "['d']"),
        (dict(seeds=3, lr=(0.1,)), "['lr', 'seeds']"),  # more seeds, but a trained value dropped
        (dict(seeds=3, steps_per_epoch=25), "['seeds', 'steps_per_epoch']"),  # growth with another change
    ],
)
def test_changes_to_trained_runs_are_refused_in_one_line_and_nothing_changes(
    change, fields, tmp_path, grown_from, mesh
):
    wd = grown_from(tmp_path / "wd")
    before = snapshot(wd)
    with pytest.raises(sweep.SweepError) as e:
        sweep.run_sweep(small_config(**(BEFORE | change)), wd, progress=None, mesh=mesh)
    assert (
        str(e.value)
        == f"{wd}: holds a sweep with a different config (fields {fields}); use another --workdir or --overwrite"
    )
    assert snapshot(wd) == before


def test_growing_an_unfinished_sweep_is_refused_in_one_line(tmp_path, mesh):
    wd = tmp_path / "wd"
    with pytest.raises(Interrupt):
        sweep.run_sweep(small_config(**BEFORE), wd, progress=interrupt_after(1, []), mesh=mesh)
    before = snapshot(wd)
    with pytest.raises(sweep.SweepError) as e:
        sweep.run_sweep(small_config(**(BEFORE | dict(seeds=3))), wd, progress=None, mesh=mesh)
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith(f"{wd}: cannot grow the sweep it holds, it is unfinished or damaged (")
    assert message.endswith("finish it first by re-running its command, or use --overwrite")
    assert snapshot(wd) == before


def test_a_sharded_sweep_grows_in_one_process_and_a_sharded_growth_is_refused(tmp_path, fresh, mesh):
    """A sweep trained as two array-job shards (and merged) grows with the plain command; the grown config given to
    a shard is refused in one line as another sweep, nothing changed."""
    wd = tmp_path / "wd"
    for i in range(2):
        shards.run_shard(small_config(**BEFORE), wd, 2, i, progress=None, mesh=mesh)
    after = BEFORE | dict(seeds=3)
    before = snapshot(wd)
    with pytest.raises(sweep.SweepError, match=r"different config \(fields \['seeds'\]\)") as e:
        shards.run_shard(small_config(**after), wd, 2, 0, progress=None, mesh=mesh)
    assert "\n" not in str(e.value)
    assert snapshot(wd) == before
    lines = []
    sweep.run_sweep(small_config(**after), wd, progress=lines.append, mesh=mesh)
    assert lines[0] == "[grow x1] 3 runs: 2 reused, 1 trained fresh"
    assert sorted(p.name for p in (wd / "checkpoints").iterdir()) == ["grow"]  # the shards' folders are gone
    assert_same_results(fresh(**after), wd)


@pytest.mark.slow
def test_command_line_grows_a_sweep(tmp_path):
    """``python -m specjax.sweep`` run again with more seeds trains only the new seed and writes what a sweep with
    three seeds from the start writes; fewer seeds afterwards are refused."""
    grown, direct = tmp_path / "grown", tmp_path / "direct"
    base = [f"--config={TINY}", "--config.over_realization=(1,)", "--config.epochs=2"]
    r = run_module_cases(
        "specjax.sweep",
        [
            [*base, f"--workdir={grown}", "--config.seeds=2"],
            [*base, f"--workdir={grown}", "--config.seeds=3"],
            [*base, f"--workdir={direct}", "--config.seeds=3"],
            [*base, f"--workdir={grown}", "--config.seeds=2"],
        ],
    )
    for x in r[:3]:
        assert x["rc"] == 0, x["stderr"][-2000:]
    assert "[grow x1] 12 runs: 8 reused, 4 trained fresh" in r[1]["stdout"].splitlines()
    assert (grown / "success_rate.png").stat().st_mtime_ns >= (grown / "summary.json").stat().st_mtime_ns
    assert_same_results(direct, grown)
    assert_refusal(
        r[3]["rc"], r[3]["stdout"], r[3]["stderr"], "specjax.sweep", r"different config \(fields \['seeds'\]\)"
    )
