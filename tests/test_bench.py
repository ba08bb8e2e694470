"""Tests of ``python -m specjax.bench`` on a tiny workload: it runs, prints a table and writes the JSON, and it
refuses an unusable ``--json`` path in one line before measuring anything."""

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from specjax.bench import report

ROOT = Path(__file__).resolve().parent.parent
TINY_WORKLOAD = [
    "--d=8",
    "--m=2",
    "--c=3",
    "--n_train=64",
    "--n_eval=32",
    "--peak_size=64",
    "--dtypes=float64",
    "--nolarge_run",  # the Fig. 8 paper-scale run: test_large_run_on_one_device_and_split
]
HAVE_TORCH = importlib.util.find_spec("torch") is not None


def _run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "specjax.bench", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def _bench(tmp_path, *args) -> dict:
    out = tmp_path / "bench.json"
    proc = _run("--quick", *TINY_WORKLOAD, *args, f"--json={out}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "run-steps/s" in proc.stdout and f"wrote {out}" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.json"]  # written atomically: no temporary left
    result = json.loads(out.read_text())
    for r in result["records"]:
        assert {"implementation", "over_realization", "dtype", "run_steps_per_s", "roofline_fraction"} <= r.keys()
        assert r["run_steps_per_s"] > 0 and r["roofline_fraction"] > 0
    assert all(m["bytes_per_run"] > 0 for m in result["memory"])
    assert result["bench_seconds"] > 0
    return result


@pytest.mark.slow
def test_bench_tiny_workload_without_torch(tmp_path):
    result = _bench(tmp_path, "--over_realization=1", "--notorch")
    assert {r["implementation"] for r in result["records"]} == {"specjax", "jax_per_seed_loop"}
    assert [e["over_realization"] for e in result["evaluation"]] == [1]
    assert 0 < result["evaluation"][0]["eval_share_of_epoch"] < 1
    assert result["notes"] == []  # --notorch: no note about a missing torch


def test_bench_refuses_unusable_output_paths_before_measuring(tmp_path):
    start = time.perf_counter()
    for path, words in ((tmp_path, "directory"), (tmp_path / "a_file" / "bench.json", "cannot be written")):
        (tmp_path / "a_file").write_text("")
        proc = _run("--quick", *TINY_WORKLOAD, f"--json={path}", timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and str(path) in proc.stderr and words in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and "run-steps/s" not in proc.stdout  # nothing was measured
    proc = _run("--quick", *TINY_WORKLOAD, f"--scaling={tmp_path}/scaling.pdf", timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and ".png" in proc.stderr
    assert time.perf_counter() - start < 60  # refused in seconds, not after minutes of measuring


def test_sweep_time_weighs_groups_like_the_paper_sweep():
    runs, steps = report.RECONSTRUCTED_SWEEP["runs_per_group"], report.RECONSTRUCTED_SWEEP["steps"]
    assert report.sweep_time({1: 1000.0, 10: 500.0}) == pytest.approx(runs * steps / 1000 + runs * steps / 500)
    result = {
        "records": [
            {"implementation": impl, "over_realization": o, "dtype": "float64"}
            | {"run_steps_per_s": rate, "run_steps_per_cpu_s": rate}
            for impl, o, rate in (
                ("specjax", 1, 4000.0),
                ("specjax", 2, 2000.0),
                ("jax_per_seed_loop", 1, 1000.0),
                ("jax_per_seed_loop", 2, 1000.0),
            )
        ],
        "evaluation": [],
    }
    report.summarise(result, [1, 2])
    # specjax: 1/4000 + 1/2000 = 3/4000 s per run-step pair; the loop: 2/1000 = 8/4000 -> 8/3.
    assert result["speedup_vs_jax_per_seed_loop_by_dtype"]["float64"] == pytest.approx(8 / 3)
    assert result["speedup_vs_per_seed_loop"] is None  # no torch records


@pytest.mark.slow
def test_bench_tiny_workload_with_torch_baseline(tmp_path):
    result = _bench(tmp_path, "--over_realization=1,2")
    impls = {r["implementation"] for r in result["records"]}
    if HAVE_TORCH:
        assert {"torch_per_seed_loop", "torch_per_seed_loop_1core", "torch_per_seed_loop_threaded"} <= impls
        assert result["speedup_vs_per_seed_loop"] > 0
        assert result["speedup_vs_per_seed_loop_threaded_by_dtype"]["float64"] > 0
    else:
        assert not any(i.startswith("torch") for i in impls)
        assert any("torch is not installed" in note for note in result["notes"])


@pytest.mark.slow
def test_large_run_on_one_device_and_split(monkeypatch):
    """The single-large-run measurement: one device, then the run split over all (4 test devices), each with its
    GFLOP/s and fraction of the float32 peak (a small deep spec stands in for Fig. 8 at paper scale)."""
    import dataclasses

    from specjax.bench import measure, suite
    from specjax.engine import flops_per_step

    paper = measure.large_run_spec()
    assert (paper.teacher_widths, paper.over_realization, paper.c, paper.batch_size) == (
        (50, 75, 100, 125),
        10,
        100,
        64,
    )
    assert 0.9e9 < flops_per_step(paper) < 1.0e9  # ~0.96 GFLOP per step (issue: 3.0e14 FLOP in 312,500 steps)
    small = dataclasses.replace(paper, d=6, teacher_widths=(4, 6, 8), c=4, over_realization=2, n_train=256, n_eval=64)
    monkeypatch.setattr(suite, "large_run_spec", lambda: small)
    result = {"peak_gflops": {}, "notes": []}
    options = measure.BenchOptions(quick=True, peak_size=64)
    records = suite.large_run(result, options, repeats=1)
    assert [r["devices_per_run"] for r in records] == [1, 4]
    assert all(r["run_steps_per_s"] > 0 and 0 < r["peak_fraction"] and r["flops_per_step"] > 0 for r in records)
    assert result["peak_gflops"]["float32"] > 0
