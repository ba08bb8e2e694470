"""``python -m specjax.launch``: shards submitted through submitit's local executor (real subprocesses) give the
one-process sweep's results bit for bit; a failed shard is reported with its logs, and re-launching resumes."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny_config

from specjax import sweep
from specjax.sweep import shards
from specjax.sweep.run import local_mesh
from specjax.sweep.workdir import WorkdirLock, prepare_workdir

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "experiments" / "configs" / "tiny.py"
# One shape group x 2 polarities x 2 lrs x 5 seeds, 2 epochs x 20 steps; d=10: shapes no other test compiles.
OVERRIDES = {"d": 10, "seeds": 5, "over_realization": (2,), "epochs": 2, "steps_per_epoch": 20}


def _launch(wd: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    args = [f"--config.{k}={v}" for k, v in OVERRIDES.items()]
    cmd = [sys.executable, "-m", "specjax.launch", f"--config={TINY}", f"--workdir={wd}", *args, *extra]
    env = {k: v for k, v in (env or os.environ).items() if k != "JAX_COMPILATION_CACHE_DIR"} | {"XLA_FLAGS": ""}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.slow
def test_local_array_job_matches_one_process_and_reports_failed_shards(tmp_path):
    """Also: every job uses the launcher's --compilation_cache (jobs ignored it and compiled everything afresh), and
    --wait prints the shards' states as they change."""
    pytest.importorskip("submitit")
    wd = tmp_path / "w"
    cache = tmp_path / "cache"
    flags = ("--num_shards=2", "--executor=local", "--cpus_per_shard=2", "--wait", f"--compilation_cache={cache}")
    prepare_workdir(tiny_config(**OVERRIDES), wd, overwrite=False)
    with WorkdirLock(shards.lock_path(wd, (1, 2))):  # shard 1 "running elsewhere": its job fails
        out = _launch(wd, *flags)
    assert out.returncode == 2, out.stderr
    failed = [line for line in out.stderr.splitlines() if line.startswith("shard 1 (job ")]
    assert len(failed) == 1 and "is in use" in failed[0] and "_log.err" in failed[0], out.stderr
    assert "1 of 2 shard(s) failed" in out.stderr.splitlines()[-1]
    with pytest.raises(sweep.StoreError, match=r"shard\(s\) 1 of 2 have not finished"):
        sweep.load_results(wd)

    out = _launch(wd, *flags)  # resume: shard 0 does nothing, shard 1 trains and merges
    assert out.returncode == 0, out.stderr
    assert "all 2 shard(s) finished" in out.stdout
    assert any(p.is_file() for p in cache.rglob("*")), "the jobs compiled without the launcher's cache"
    states = [line for line in out.stdout.splitlines() if "] shards: " in line]
    assert states and states[-1].endswith("shards: 2 done, 0 running, 0 queued, 0 failed of 2"), out.stdout
    logs = "".join(p.read_text() for p in (wd / ".launch").glob("*_log.out"))
    assert "[shard 0/2] already finished" in logs and "merging" in logs
    assert (wd / "success_rate.png").exists()

    reference = sweep.run_sweep(tiny_config(**OVERRIDES), None, progress=None, mesh=local_mesh(2))
    merged = sweep.load_results(wd)
    assert merged.summary == reference.summary
    for a, b in zip(merged.arrays, reference.arrays, strict=True):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f"), k


def test_missing_submitit_is_one_line_naming_the_extra(tmp_path):
    (tmp_path / "submitit.py").write_text("raise ImportError('No module named submitit')\n")
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    out = _launch(tmp_path / "w", "--num_shards=2", "--executor=local", env=env)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "specjax.launch: error: submitit is not installed: the launcher needs the cluster extra "
        "(pip install 'specjax[cluster]')"
    ]
    assert not (tmp_path / "w" / "config.json").exists()  # refused before anything was written
