"""Resume: a sweep killed at any moment and re-run gives bit-identical results; workdirs are never mixed up.

The subprocess tests run the real command line, kill it with SIGKILL (no clean-up code runs), and re-run the same
command. Every array of ``results/*.npz`` and all of ``summary.json`` must equal an uninterrupted sweep's bit for
bit. The subprocesses share a JAX persistent compilation cache, so only the first one compiles.
"""

import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, TINY, WORKER, Interrupt, assert_same_results, interrupt_after, small_config, snapshot

from specjax import store, sweep
from specjax.engine import make_mesh
from specjax.sweep import checkpoint

# One shape group; 2 polarities x 2 learning rates x 3 seeds; 4 epochs x 50 steps in chunks of 2 steps, so the
# sweep writes 100 checkpoints and a kill lands mid-sweep.
CLI_OVERRIDES = ("--config.over_realization=(2,)", "--config.chunk_steps=2")
TOTAL_CHUNKS = 4 * 50 // 2


# ----------------------------------------------------------------------------------------------------------------
# The real command line, killed with SIGKILL.


@pytest.fixture(scope="module")
def cli_env(request):
    # Compiled programs persist in pytest's cache folder: only the first subprocess of the first session compiles.
    cache = request.config.cache.mkdir(f"jax_compilation_cache_{WORKER}")
    return {
        **os.environ,
        "XLA_FLAGS": "",
        "PYTHONUNBUFFERED": "1",
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }


def sweep_command(workdir: Path) -> list[str]:
    return [sys.executable, "-m", "specjax.sweep", f"--config={TINY}", f"--workdir={workdir}", *CLI_OVERRIDES]


def run_to_end(workdir: Path, env) -> subprocess.CompletedProcess:
    proc = subprocess.run(sweep_command(workdir), capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def chunks_done(path: Path) -> int:
    """Chunk counter of a checkpoint, or -1 while it does not exist (it is replaced atomically, so never torn)."""
    try:
        return int(store.load_npz(path)["chunks_done"])
    except store.StoreError:
        return -1


def run_and_kill(workdir: Path, env, kill_when) -> int:
    """Starts the sweep, SIGKILLs it as soon as ``kill_when(checkpoint_path)`` is true; returns the chunk counter
    found in the checkpoint after the kill. Fails if the sweep ended before it could be killed."""
    ckpt = workdir / "checkpoints" / "group0_wave0.npz"
    proc = subprocess.Popen(
        sweep_command(workdir), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 600
        while not kill_when(ckpt):
            assert proc.poll() is None, f"sweep ended before the kill: {proc.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (workdir / "summary.json").exists()
    return chunks_done(ckpt)


@pytest.mark.slow
def test_sigkill_mid_sweep_then_rerun_is_bit_identical(tmp_path, cli_env):
    """Kill 1: as soon as the first checkpoint appears. Kill 2: at a random chunk. Then finish; compare."""
    reference = tmp_path / "reference"
    run_to_end(reference, cli_env)

    wd = tmp_path / "killed"
    at_first = run_and_kill(wd, cli_env, lambda ckpt: ckpt.exists())
    assert 0 <= at_first < TOTAL_CHUNKS

    rng = random.Random(int.from_bytes(os.urandom(4), "little"))
    target = rng.randint(at_first + 1, TOTAL_CHUNKS - 1)
    at_random = run_and_kill(wd, cli_env, lambda ckpt: chunks_done(ckpt) >= target)
    assert target <= at_random < TOTAL_CHUNKS, (target, at_random)

    proc = run_to_end(wd, cli_env)
    assert f"resuming checkpoints/group0_wave0.npz: at chunk {at_random}/{TOTAL_CHUNKS}" in proc.stdout
    assert_same_results(reference, wd)
    assert not list(wd.rglob("*.tmp")), "stray temporary files left after the resume"


@pytest.mark.slow
@pytest.mark.parametrize("repeat", range(3))
def test_sigkill_at_random_wall_clock_moments(tmp_path, cli_env, repeat):
    """Kills at random instants (possibly inside a checkpoint write), three times, then finishes; compare."""
    reference = tmp_path / "reference"
    run_to_end(reference, cli_env)
    wd = tmp_path / "killed"
    rng = random.Random(int.from_bytes(os.urandom(4), "little"))
    for _ in range(3):
        start = {}

        def when(ckpt, start=start):
            if not ckpt.exists():
                return False
            start.setdefault("t", time.monotonic() + rng.uniform(0.0, 0.5))
            return time.monotonic() >= start["t"]

        if (wd / "summary.json").exists():
            break
        try:
            run_and_kill(wd, cli_env, when)
        except AssertionError:
            if not (wd / "summary.json").exists():
                raise
    run_to_end(wd, cli_env)
    assert_same_results(reference, wd)


# ----------------------------------------------------------------------------------------------------------------
# In-process: interruption, refusal of another config, overwrite, repair of damaged results.


@pytest.fixture(scope="module")
def mesh():
    return make_mesh(4)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, mesh):
    wd = tmp_path_factory.mktemp("reference")
    result = sweep.run_sweep(small_config(), wd, progress=None, mesh=mesh)
    return wd, result


def test_interrupted_in_process_resumes_bit_identical(tmp_path, reference, mesh):
    wd = tmp_path / "wd"
    for lines in (1, 2):  # interrupted after epoch 1, then (resumed) after one more epoch
        with pytest.raises(Interrupt):
            sweep.run_sweep(small_config(), wd, progress=interrupt_after(lines), mesh=mesh)
        assert not (wd / "summary.json").exists()
    lines = []
    result = sweep.run_sweep(small_config(), wd, progress=lines.append, mesh=mesh)
    assert any(line.startswith("resuming checkpoints/group0_wave0.npz: at chunk") for line in lines), lines
    assert_same_results(reference[0], wd)
    for k, v in reference[1].arrays[0].items():
        np.testing.assert_array_equal(result.arrays[0][k], v, strict=True)


def test_checkpoint_interval_limits_writes_and_is_not_part_of_the_identity(tmp_path, reference, mesh, monkeypatch):
    """With ``checkpoint_every_s`` longer than the sweep, a wave is checkpointed only at its start and its end (not
    after each of its 8 chunks); an interrupted sweep resumes from the start checkpoint under another interval and
    gives the same bits."""
    saved = []
    real_save = checkpoint.save_checkpoint
    monkeypatch.setattr(checkpoint, "save_checkpoint", lambda path, *a: saved.append(a[2]) or real_save(path, *a))
    wd = tmp_path / "wd"
    with pytest.raises(Interrupt):
        sweep.run_sweep(small_config(checkpoint_every_s=1e9), wd, progress=interrupt_after(2), mesh=mesh)
    assert saved == [0]  # chunks_done of each write: the start only, although 4 chunks (2 epochs) had run
    saved.clear()
    lines = []
    sweep.run_sweep(small_config(checkpoint_every_s=0.0), wd, progress=lines.append, mesh=mesh)
    assert any(line.startswith("resuming checkpoints/group0_wave0.npz: at chunk 0/8") for line in lines), lines
    assert saved == list(range(1, 9))
    assert_same_results(reference[0], wd)


def test_workdir_of_another_config_is_refused_and_untouched(reference, mesh):
    wd = reference[0]
    before = snapshot(wd)
    with pytest.raises(sweep.SweepError, match=r"different config \(fields \['lr'\]\).*--overwrite"):
        sweep.run_sweep(small_config(lr=(0.2,)), wd, progress=None, mesh=mesh)
    assert snapshot(wd) == before


def test_overwrite_starts_fresh(tmp_path, reference, mesh):
    wd = tmp_path / "wd"
    sweep.run_sweep(small_config(lr=(0.2,)), wd, progress=None, mesh=mesh)
    (wd / "results" / "stale.npz").write_bytes(b"old")
    lines = []
    sweep.run_sweep(small_config(), wd, overwrite=True, progress=lines.append, mesh=mesh)
    assert not any("resuming" in line for line in lines)
    assert not (wd / "results" / "stale.npz").exists()
    assert_same_results(reference[0], wd)


def test_finished_sweep_rerun_repairs_damaged_results(tmp_path, reference, mesh):
    wd = tmp_path / "wd"
    sweep.run_sweep(small_config(), wd, progress=None, mesh=mesh)
    results = wd / "results" / "group0.npz"
    results.write_bytes(results.read_bytes()[: results.stat().st_size // 2])  # truncated
    with pytest.raises(store.StoreError, match="group0.npz: not a readable .npz file"):
        sweep.load_results(wd)
    (wd / "summary.json").write_text("{ not json")
    with pytest.raises(store.StoreError, match="summary.json: not valid JSON"):
        sweep.load_results(wd)
    lines = []
    sweep.run_sweep(small_config(), wd, progress=lines.append, mesh=mesh)  # from the finished checkpoint
    assert lines == ["resuming checkpoints/group0_wave0.npz: finished"]
    assert_same_results(reference[0], wd)


def test_load_results_returns_what_run_sweep_returned(reference):
    wd, result = reference
    loaded = sweep.load_results(wd)
    assert loaded.summary == json.loads((wd / "summary.json").read_text())
    assert loaded.config.to_dict() == result.config.to_dict()
    for a, b in zip(loaded.arrays, result.arrays, strict=True):
        assert sorted(a) == sorted(b)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], strict=True)


def test_a_second_sweep_on_a_busy_workdir_is_refused(reference, mesh):
    wd = reference[0]
    before = snapshot(wd)
    with sweep.workdir_lock(wd):
        with pytest.raises(sweep.SweepError, match="in use by another running sweep"):
            sweep.run_sweep(small_config(), wd, progress=None, mesh=mesh)
    assert snapshot(wd) == before


def test_checkpoint_from_another_device_count_is_refused(tmp_path, reference):
    wd = tmp_path / "wd"
    wd.mkdir()
    for name in ("config.json",):
        (wd / name).write_bytes((reference[0] / name).read_bytes())
    (wd / "checkpoints").mkdir()
    ckpt = wd / "checkpoints" / "group0_wave0.npz"
    ckpt.write_bytes((reference[0] / "checkpoints" / "group0_wave0.npz").read_bytes())
    before = snapshot(wd)
    with pytest.raises(store.StoreError, match=r"group0_wave0.npz: checkpoint was written for blocks of 8 runs"):
        sweep.run_sweep(small_config(), wd, progress=None, mesh=make_mesh(2))
    assert snapshot(wd) == before  # checked before anything is written


@pytest.mark.slow
def test_soak_memory_is_flat(tmp_path):
    """A shortened experiments/soak.py (200 chunks, a checkpoint after each): RSS grows by less than 10 MiB."""
    spec = importlib.util.spec_from_file_location("soak", ROOT / "experiments" / "soak.py")
    soak = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(soak)
    report = soak.soak(str(tmp_path / "soak"), epochs=200, steps_per_epoch=50, seeds=2)
    assert report["checkpoints_written"] == 201 and report["diverged_runs"] == 0
    assert report["rss_mb_at_end"] - report["rss_mb_at_10_percent"] < 10
