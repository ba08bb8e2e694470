"""The research workflow around a sweep: readable progress, the metrics log, the log file, the dry run, the memory
preflight and honest library defaults."""

import json

import pandas as pd
import pytest
from helpers import TINY, assert_refusal, run_module, run_module_cases

from specjax.engine import HPARAM_DEFAULTS, Hparams

SMALL = (f"--config={TINY}", "--config.over_realization=(1,2)", "--config.epochs=2", "--config.seeds=2")


@pytest.mark.slow
def test_progress_lines_metrics_log_and_log_file(tmp_path):
    wd, log = tmp_path / "wd", tmp_path / "sweep.log"
    proc = run_module("specjax.sweep", [*SMALL, f"--workdir={wd}", f"--log_file={log}"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stdout.splitlines() if "epoch" in line]
    assert len(lines) == 4  # 2 groups x 2 epochs
    for line in lines:
        assert "median eval loss" in line and "| success " in line and "| diverged 0" in line, line
    records = pd.read_json(wd / "metrics.jsonl", lines=True)
    assert len(records) == 2 * 3 * 4  # one per group, evaluation (epochs 0, 1, 2) and setting (2 polarities x 2 lrs)
    assert sorted(records.epoch.unique()) == [0, 1, 2] and sorted(records.over_realization.unique()) == [1, 2]
    for column in (
        "teacher_polarity",
        "lr",
        "runs",
        "valid",
        "covered",
        "eval_loss_median",
        "eval_loss_q10",
        "eval_loss_q90",
        "success_rate",
        "diverged",
        "run_steps_per_s",
    ):
        assert column in records.columns
    assert (records.runs == 2).all()  # the seeds of a setting
    summary = json.loads((wd / "summary.json").read_text())
    for g in summary["groups"]:
        row = records[
            (records.over_realization == g["over_realization"])
            & (records.teacher_polarity == g["teacher_polarity"])
            & (records.lr == g["lr"])
            & (records.epoch == 2)
        ]
        assert len(row) == 1
        assert row.iloc[0].eval_loss_median == pytest.approx(pd.Series(g["eval_loss"]).median(), rel=1e-12)
        assert row.iloc[0].success_rate == pytest.approx(sum(g["success_rate"]) / len(g["success_rate"]), rel=1e-12)
    text = log.read_text()
    assert text.count("median eval loss") == 4


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    wd = tmp_path / "wd"
    proc = run_module("specjax.sweep", [*SMALL, f"--workdir={wd}", "--dry_run"])
    assert proc.returncode == 0, proc.stderr
    assert "x1: 8 runs in" in proc.stdout and "x2: 8 runs in" in proc.stdout and "MiB per block" in proc.stdout
    assert "estimated" in proc.stdout
    assert not wd.exists()


def test_impossible_sweeps_are_refused_before_anything_is_allocated(tmp_path):
    wd = tmp_path / "wd"
    cases = {
        "seeds": ([*SMALL, f"--workdir={wd}", "--config.seeds=1000000000"], r"config\.seeds: .* runs exceeds"),
        "epochs": ([*SMALL, f"--workdir={wd}", "--config.epochs=100000000000000000000"], r"config\.epochs: .*step"),
        "d": ([*SMALL, f"--workdir={wd}", "--config.d=2000000000"], r"config\.runs_per_block: one block .* GiB"),
        "dry": ([*SMALL, f"--workdir={wd}", "--config.seeds=1000000000", "--dry_run"], r"config\.seeds"),
    }
    results = run_module_cases("specjax.sweep", [argv for argv, _ in cases.values()])
    for (name, (_, pattern)), r in zip(cases.items(), results, strict=True):
        if name == "dry":  # the plan is printed, then the refusal
            assert r["rc"] == 2 and "sweep:" in r["stdout"] and "error: config.seeds" in r["stderr"], r
            continue
        assert_refusal(r["rc"], r["stdout"], r["stderr"], "specjax.sweep", pattern)
    assert not wd.exists()


def test_library_takes_no_silent_zero_learning_rate_or_init_scale():
    hp = Hparams.broadcast(3, teacher_polarity=1.0)
    assert float(hp.lr[0]) == HPARAM_DEFAULTS["lr"] > 0
    assert float(hp.init_scale[0]) == HPARAM_DEFAULTS["init_scale"] > 0
    with pytest.raises(ValueError, match="Hparams.lr: must be > 0"):
        Hparams.broadcast(3, lr=0.0)
    with pytest.raises(ValueError, match="unknown field"):
        Hparams.broadcast(3, learning_rate=0.1)


@pytest.mark.slow
def test_the_analysis_session_of_the_docs_runs(tmp_path):
    """experiments/analysis_session.py (docs/analysis.md) end to end on a seconds-long sweep."""
    import importlib.util

    from helpers import ROOT

    spec = importlib.util.spec_from_file_location("analysis_session", ROOT / "experiments" / "analysis_session.py")
    session = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(session)
    numbers = session.main(str(tmp_path / "wd"), str(tmp_path / "analysis.png"), tiny=True)
    assert (tmp_path / "analysis.png").stat().st_size > 10_000
    assert set(numbers["success"]) == {f"{o}x p={p}" for o in (1, 5) for p in (0, 1, 2)}
