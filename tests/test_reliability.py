"""A sweep's data can be trusted: checkpoints tied to their sweep, overwrite of linked folders, waves of hundreds
of blocks, signals at any moment, and truthful ETAs."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, TINY, WORKER, assert_same_results, tiny_config

from specjax import store, sweep
from specjax.engine import make_mesh
from specjax.sweep.progress import format_duration


def small(**overrides):
    base = dict(over_realization=(1,), teacher_polarity=(0.0,), seeds=2, epochs=2, chunk_steps=25, runs_per_block=2)
    return tiny_config(**(base | overrides))


@pytest.mark.slow
def test_a_checkpoint_of_another_sweep_is_refused_by_name(tmp_path):
    mesh = make_mesh(1)
    a, b = tmp_path / "seed1", tmp_path / "seed2"
    sweep.run_sweep(small(seed=1), a, progress=None, mesh=mesh)
    sweep.run_sweep(small(seed=2), b, progress=None, mesh=mesh)
    foreign = b / "checkpoints" / "group0_wave0.npz"
    (a / "checkpoints" / "group0_wave0.npz").write_bytes(foreign.read_bytes())
    (a / "summary.json").unlink()
    with pytest.raises(store.StoreError, match=r"group0_wave0\.npz: checkpoint belongs to another sweep"):
        sweep.run_sweep(small(seed=1), a, progress=None, mesh=mesh)
    # the results file of the seed-2 sweep is refused by load_results too
    (a / "results" / "group0.npz").write_bytes((b / "results" / "group0.npz").read_bytes())
    (a / "summary.json").write_bytes((b / "summary.json").read_bytes())
    with pytest.raises(store.StoreError, match=r"group0\.npz: results of another sweep"):
        sweep.load_results(a)


def test_overwrite_removes_a_linked_checkpoints_folder_and_never_resumes_it(tmp_path):
    mesh = make_mesh(1)
    wd = tmp_path / "wd"
    sweep.run_sweep(small(lr=(0.05,)), wd, progress=None, mesh=mesh)
    elsewhere = tmp_path / "big_disk" / "checkpoints"  # moved to a bigger disk, linked back
    elsewhere.parent.mkdir()
    (wd / "checkpoints").rename(elsewhere)
    (wd / "checkpoints").symlink_to(elsewhere)
    assert (elsewhere / "group0_wave0.npz").exists()
    lines = []
    result = sweep.run_sweep(small(lr=(0.1,)), wd, overwrite=True, progress=lines.append, mesh=mesh)
    assert not any("resuming" in line for line in lines)
    assert not (wd / "checkpoints").is_symlink() and (wd / "checkpoints").is_dir()
    fresh = sweep.run_sweep(small(lr=(0.1,)), None, progress=None, mesh=mesh)
    for k, v in fresh.arrays[0].items():
        np.testing.assert_array_equal(result.arrays[0][k], v, strict=True)
    assert sweep.load_results(wd).summary["groups"][0]["lr"] == 0.1


@pytest.mark.slow
def test_a_wave_of_hundreds_of_blocks_finishes_and_matches_a_small_sweep(tmp_path, env):
    """768 runs (6 polarities x 128 seeds) in 384 blocks of 1 run x 2 devices, all in one wave, through the command
    line (2 single-threaded CPU devices). Before programs in flight were bounded, 48 blocks already aborted XLA's
    CPU runtime ("Termination timeout for all reduce", exit 134)."""
    wide = (
        "--config.over_realization=(1,)",
        "--config.teacher_polarity=(0.,0.5,1.,1.5,2.,2.5)",
        "--config.lr=(0.05,)",
        "--config.epochs=1",
        "--config.steps_per_epoch=10",
        "--config.runs_per_block=1",
        "--config.snapshot_epochs=()",
    )

    def run(workdir, seeds):
        argv = [sys.executable, "-m", "specjax.sweep", f"--config={TINY}", f"--workdir={workdir}", *wide]
        proc = subprocess.run([*argv, f"--config.seeds={seeds}"], capture_output=True, text=True, env=env, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return store.load_npz(workdir / "results" / "group0.npz")

    big, few = run(tmp_path / "big", 128), run(tmp_path / "few", 3)
    assert big["eval_loss"].shape == (6, 128, 2)
    for k in ("eval_loss", "best_teacher_corr_l1", "student_W_l1", "teacher_W_l2", "diverged_at"):
        np.testing.assert_array_equal(big[k][:, :3], few[k], strict=True)


def test_eta_past_a_day_shows_days():
    assert format_duration(11 * 86400 + 4 * 3600 + 6 * 60 + 47) == "11d 04:06:47"
    assert format_duration(3599.6) == "01:00:00"
    assert format_duration(-3) == "00:00:00"


# ----------------------------------------------------------------------------------------------------------------
# Signals through the real command line.

OVERRIDES = ("--config.over_realization=(2,)", "--config.chunk_steps=10", "--config.epochs=2")


def command(workdir: Path) -> list[str]:
    return [sys.executable, "-m", "specjax.sweep", f"--config={TINY}", f"--workdir={workdir}", *OVERRIDES]


@pytest.fixture(scope="module")
def env(request):
    cache = request.config.cache.mkdir(f"jax_compilation_cache_{WORKER}")
    return {**os.environ, "XLA_FLAGS": "", "PYTHONUNBUFFERED": "1", "JAX_COMPILATION_CACHE_DIR": str(cache)}


def signal_when(workdir: Path, env, signum: int, ready) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(
        command(workdir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )
    deadline = time.monotonic() + 300
    while not ready(workdir):
        if proc.poll() is not None:  # ended before the moment came: it must have finished normally
            out, err = proc.communicate()
            assert proc.returncode == 0, err[-2000:]
            return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        assert time.monotonic() < deadline
        time.sleep(0.002)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.slow
def test_sigint_and_sigterm_at_any_moment_exit_cleanly_and_resume_bit_identically(tmp_path, env):
    reference = tmp_path / "reference"
    done = subprocess.run(command(reference), capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    wd = tmp_path / "wd"
    ckpt = wd / "checkpoints" / "group0_wave0.npz"

    def chunks(path):
        try:
            return int(store.load_npz(path)["chunks_done"])
        except store.StoreError:
            return -1

    moments = [
        (signal.SIGINT, lambda w: (w / "config.json").exists()),  # first compilation
        (signal.SIGTERM, lambda w: chunks(ckpt) >= 2),  # training
        (signal.SIGTERM, lambda w: chunks(ckpt) >= 8 and not (w / "summary.json").exists()),  # evaluation/writes
    ]
    for signum, ready in moments:
        if (wd / "summary.json").exists():
            break
        proc = signal_when(wd, env, signum, ready)
        if proc.returncode == 0:  # the sweep finished before the signal landed
            break
        assert proc.returncode == 128 + signum, proc.stderr[-2000:]
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert lines[-1].endswith("re-run the same command to resume"), proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr and "Fatal" not in proc.stderr
    final = subprocess.run(command(wd), capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert final.returncode == 0, final.stderr[-2000:]
    assert_same_results(reference, wd)


def test_load_results_checks_every_field_and_array_against_the_schema(tmp_path):
    wd = tmp_path / "wd"
    sweep.run_sweep(small(), wd, progress=None, mesh=make_mesh(1))
    config_json, results = wd / "config.json", wd / "results" / "group0.npz"
    good_config, good_results = config_json.read_bytes(), results.read_bytes()

    held = json.loads(good_config)
    held["config"]["seeds"] = "two"
    config_json.write_text(json.dumps(held))
    with pytest.raises(store.StoreError, match=r"config\.json: config\.seeds: .two. is of type str"):
        sweep.load_results(wd)
    held["config"]["seeds"], held["config"]["over_realization"] = 2, {"a": 1}
    config_json.write_text(json.dumps(held))
    with pytest.raises(store.StoreError, match=r"config\.json: .*over_realization"):
        sweep.load_results(wd)
    config_json.write_bytes(good_config)

    arrays = store.load_npz(results)
    for name, bad, pattern in (
        ("eval_loss", arrays["eval_loss"][:, :1], r"array 'eval_loss' has shape \(2, 1, 3\)"),
        ("diverged_at", arrays["diverged_at"].astype(np.float64), r"array 'diverged_at' .* dtype float64"),
        ("best_teacher_corr_l1", arrays["best_teacher_corr_l1"][..., :2], r"array 'best_teacher_corr_l1' has shape"),
    ):
        store.save_npz(results, {**arrays, name: bad})
        with pytest.raises(store.StoreError, match=rf"group0\.npz: {pattern}"):
            sweep.load_results(wd)
    store.save_npz(results, {k: v for k, v in arrays.items() if k != "corr_l1"})
    with pytest.raises(store.StoreError, match=r"group0\.npz: missing array 'corr_l1'"):
        sweep.load_results(wd)
    results.write_bytes(good_results)
    assert sweep.load_results(wd).arrays[0]["eval_loss"].shape == (2, 2, 3)


def test_library_inputs_that_cannot_be_satisfied_are_refused_naming_the_argument():
    import jax
    import jax.numpy as jnp

    from specjax.core import teachers
    from specjax.theory import reports

    with pytest.raises(ValueError, match=r"m: 20 pairwise-distinct .* d=1 .*only 8 exist"):
        teachers.two_layer_teacher(jax.random.key(0), 1, 20, 3, 0.0)  # looped on the device forever before
    teacher = teachers.two_layer_teacher(jax.random.key(0), 5, 3, 2, 0.0)
    student = teachers.gaussian_student(jax.random.key(1), (5, 6, 2), 0.1, True)
    with pytest.raises(ValueError, match=r"student_index: \[7\] out of range; the student layer has 6 nodes"):
        reports.pair_geometry(teacher, student, jnp.array([0, 1, 7]))
    traced = jax.jit(reports.pair_geometry)(teacher, student, jnp.array([0, 1, 7]))
    assert np.isnan(traced.weight_angle[2]) and np.isfinite(traced.weight_angle[:2]).all()
