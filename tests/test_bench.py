"""Smoke tests of ``python -m specjax.bench`` on a tiny workload: it runs, prints a table and writes the JSON."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY_WORKLOAD = ["--d=8", "--m=2", "--c=3", "--n_train=64", "--n_eval=32", "--peak_size=64", "--dtypes=float64"]


def _bench(tmp_path, *args) -> dict:
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "specjax.bench", "--quick", *TINY_WORKLOAD, *args, f"--json={out}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "run-steps/s" in proc.stdout
    result = json.loads(out.read_text())
    for r in result["records"]:
        assert {"implementation", "over_realization", "dtype", "run_steps_per_s", "roofline_fraction"} <= r.keys()
        assert r["run_steps_per_s"] > 0 and r["roofline_fraction"] > 0
    assert all(m["bytes_per_run"] > 0 for m in result["memory"])
    return result


def test_bench_tiny_workload_without_torch(tmp_path):
    result = _bench(tmp_path, "--over_realization=1", "--notorch")
    assert {r["implementation"] for r in result["records"]} == {"specjax", "jax_per_seed_loop"}
    assert [e["over_realization"] for e in result["evaluation"]] == [1]
    assert 0 < result["evaluation"][0]["eval_share_of_epoch"] < 1


@pytest.mark.slow
def test_bench_tiny_workload_with_torch_baseline(tmp_path):
    result = _bench(tmp_path, "--over_realization=1,2")
    impls = {r["implementation"] for r in result["records"]}
    if "torch_per_seed_loop" in impls:
        assert {"torch_per_seed_loop_1core", "torch_per_seed_loop_threaded"} <= impls
        assert result["speedup_vs_per_seed_loop"] > 0
        assert result["speedup_vs_per_seed_loop_threaded_by_dtype"]["float64"] > 0
    else:
        assert any("torch" in note for note in result["notes"])
