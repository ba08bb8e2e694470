"""Scale-out: array-job shards and multi-process sweeps give the one-process sweep's results bit for bit; the
GPU/TPU plan (one block per group, no CPU GEMM layout) gives the CPU plan's numbers to rounding."""

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from helpers import assert_same_sweep_results, tiny_config

from specjax import config as config_lib
from specjax import sweep
from specjax.errors import ConfigError, StoreError, SweepError
from specjax.sweep import checkpoint, plan, shards
from specjax.sweep.run import local_mesh
from specjax.sweep.workdir import WorkdirLock, prepare_workdir

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "experiments" / "configs" / "tiny.py"


# Two groups x 2 polarities x 2 lrs x 5 seeds = 40 runs of 4 epochs x 20 steps; d=9: shapes no other test compiles.
def scaleout_config(**overrides):
    return tiny_config(**{"d": 9, "seeds": 5, "steps_per_epoch": 20, **overrides})


@functools.cache
def two_devices():
    """Every in-process sweep here runs on these 2 devices (1 on a single GPU): the same blocks, so each program
    compiles once."""
    return local_mesh(min(2, len(jax.local_devices())))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The one-process sweep on 2 devices."""
    cfg = scaleout_config()
    return sweep.run_sweep(cfg, tmp_path_factory.mktemp("one"), progress=None, mesh=two_devices())


def test_assign_shards_is_a_disjoint_balanced_cover_of_whole_blocks():
    cfg = scaleout_config(over_realization=(1, 2, 5), seeds=7, runs_per_block=2)
    cfg2 = scaleout_config(over_realization=(1, 2, 5), seeds=7, runs_per_block=2)
    runs = 4 * 7
    costs = [plan.step_cost(p.spec) for p in plan.plan_groups(cfg, 1, False)]
    for n in (1, 2, 3, 5, 60):
        shares = plan.assign_shards(cfg, n)
        assert shares == plan.assign_shards(cfg2, n)  # a pure function of the config
        assert len(shares) == n
        covered = {g: [] for g in range(3)}
        for pieces in shares:
            for g, r in pieces:
                assert r.start % 2 == 0 and (r.stop % 2 == 0 or r.stop == runs)  # whole units of runs_per_block
                covered[g] += list(r)
        for g in range(3):
            assert sorted(covered[g]) == list(range(runs))  # every run exactly once
        loads = [sum(costs[g] * len(r) for g, r in pieces) for pieces in shares]
        total, unit = sum(loads), 2 * max(costs)
        assert max(loads) <= total / n + unit  # within one unit of perfect balance
    assert sum(1 for pieces in plan.assign_shards(cfg, 60) if not pieces) == 60 - 3 * 14  # more shards than units


def test_shards_in_any_order_merge_to_the_one_process_results(tmp_path, reference):
    cfg = scaleout_config()
    wd = tmp_path / "w"
    lines = []
    assert shards.run_shard(cfg, wd, 3, 2, progress=lines.append, mesh=two_devices()) is None
    with pytest.raises(StoreError, match=r"shard\(s\) 0, 1 of 3 have not finished"):
        sweep.load_results(wd)
    assert shards.run_shard(cfg, wd, 3, 0, progress=lines.append, mesh=two_devices()) is None
    merged = shards.run_shard(cfg, wd, 3, 1, progress=lines.append, mesh=two_devices())
    assert merged is not None
    assert_same_sweep_results(merged, reference)
    assert_same_sweep_results(sweep.load_results(wd), reference)
    assert all(line.startswith("[shard ") for line in lines)
    assert any("merging" in line for line in lines)
    layout = json.loads((wd / "checkpoints" / "shard0of3" / "done.json").read_text())["layout"]
    assert layout["devices"] == 2 and layout["groups"]  # each shard records the layout it trained in
    # Re-running a finished shard trains and writes nothing.
    files = {p: p.stat().st_mtime_ns for p in wd.rglob("*") if p.is_file() and not p.name.endswith(".lock")}
    again = []
    assert shards.run_shard(cfg, wd, 3, 0, progress=again.append, mesh=two_devices()) is not None
    assert again[0].endswith("already finished") and not any("epoch" in line for line in again)
    changed = [p for p in files if p.name != "config.json" and p.stat().st_mtime_ns != files[p]]
    assert changed == []


def test_shard_refusals(tmp_path):
    cfg = scaleout_config(epochs=2, over_realization=(1,))
    wd = tmp_path / "w"
    with pytest.raises(ConfigError, match="shard_index"):
        shards.run_shard(cfg, wd, 2, 2, progress=None, mesh=two_devices())
    shards.run_shard(cfg, wd, 2, 0, progress=None, mesh=two_devices())
    with pytest.raises(SweepError, match="different config"):  # a shard of another sweep
        shards.run_shard(
            scaleout_config(epochs=2, over_realization=(1,), lr=(0.2,)), wd, 2, 1, progress=None, mesh=two_devices()
        )
    with pytest.raises(SweepError, match="--num_shards=2"):  # the shard count is part of the identity
        shards.run_shard(cfg, wd, 3, 1, progress=None, mesh=two_devices())
    with WorkdirLock(shards.lock_path(wd, (1, 2))):  # shard 1 running elsewhere: refused, shard 0 is not blocked
        with pytest.raises(SweepError, match="shard 1 of 2 is in use"):
            shards.run_shard(cfg, wd, 2, 1, progress=None, mesh=two_devices())
        shards.run_shard(cfg, wd, 2, 0, progress=None, mesh=two_devices())


def test_interrupted_shard_resumes_bit_identically(tmp_path, reference):
    cfg = scaleout_config(chunk_steps=10)
    wd = tmp_path / "w"

    class Stop(Exception):
        pass

    def stop_at_third_epoch(line: str) -> None:
        if "epoch 3/" in line:
            raise Stop

    shards.run_shard(cfg, wd, 2, 1, progress=None, mesh=two_devices())
    with pytest.raises(Stop):
        shards.run_shard(cfg, wd, 2, 0, progress=stop_at_third_epoch, mesh=two_devices())
    held = list((wd / "checkpoints" / "shard0of2").glob("group*_wave*.npz"))
    assert held, "the interrupted shard left no checkpoint"
    lines = []
    merged = shards.run_shard(cfg, wd, 2, 0, progress=lines.append, mesh=two_devices())
    assert any("resuming" in line for line in lines)
    ref = sweep.run_sweep(cfg, None, progress=None, mesh=two_devices())  # chunk_steps differs from `reference`
    assert_same_sweep_results(merged, ref)


@pytest.mark.slow
def test_accelerator_plan_gives_the_cpu_numbers():
    """The GPU/TPU path forced on CPU: one block per group and the plain backward layout. Not bit-identical (the
    transposes round differently); float64 agrees to 1e-9 relative (measured: 8e-12 at worst)."""
    cfg = scaleout_config(runs_per_block=0, over_realization=(2,), epochs=1, snapshot_epochs=())
    n = two_devices().devices.size
    cpu_plans = plan.plan_groups(cfg, n, accelerator=False)
    acc_plans = plan.plan_groups(cfg, n, accelerator=True)
    assert [p.block for p in cpu_plans] == [8 * n] and all(p.spec.cpu_gemm_layout for p in cpu_plans)
    assert [p.block for p in acc_plans] == [20] and not any(p.spec.cpu_gemm_layout for p in acc_plans)
    cpu = sweep.run_sweep(cfg, None, progress=None, mesh=two_devices(), accelerator=False)
    acc = sweep.run_sweep(cfg, None, progress=None, mesh=two_devices(), accelerator=True)
    assert cpu.summary["groups"][0]["success_rate"] == acc.summary["groups"][0]["success_rate"]
    for a, b in zip(acc.arrays, cpu.arrays, strict=True):
        for k in a:
            if a[k].dtype.kind == "f":
                np.testing.assert_allclose(a[k], b[k], rtol=1e-9, atol=1e-12, err_msg=k)
            else:
                np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_memory_budget_from_the_device_and_matmul_precision_recorded(tmp_path):
    class Device:
        def memory_stats(self):
            return {"bytes_limit": 10 * 2**30}

    auto = scaleout_config(memory_budget_gb=0.0)
    assert plan.memory_budget_bytes(auto, True, 2, Device()) == int(0.8 * 10 * 2**30) * 2
    assert plan.memory_budget_bytes(auto, False, 2, Device()) == 8 * 2**30
    assert plan.memory_budget_bytes(scaleout_config(memory_budget_gb=1.5), True, 2, Device()) == int(1.5 * 2**30)
    with pytest.raises(ConfigError, match="matmul_precision"):
        config_lib.validate(scaleout_config(matmul_precision="tf32"))
    prepare_workdir(scaleout_config(matmul_precision="high"), tmp_path, overwrite=False)
    assert json.loads((tmp_path / "config.json").read_text())["config"]["matmul_precision"] == "high"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes(wd: Path, overrides: list[str], count: int = 2, timeout_s: int = 5):
    env = os.environ | {"XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    port = _free_port()
    args = [
        sys.executable, "-m", "specjax.sweep", f"--config={TINY}", f"--workdir={wd}", "--config.d=9",
        "--config.seeds=5", "--config.steps_per_epoch=20", *overrides, f"--coordinator_address=127.0.0.1:{port}",
        f"--num_processes={count}", f"--distributed_timeout_s={timeout_s}",
    ]  # fmt: skip
    return [
        subprocess.Popen(
            [*args, f"--process_id={i}"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for i in range(count)
    ]


@pytest.mark.slow
def test_two_processes_give_the_one_process_results(tmp_path, reference):
    wd = tmp_path / "w"
    procs = _processes(wd, [])
    outs = [p.communicate(timeout=120)[0] for p in procs]
    for i, (p, out) in enumerate(zip(procs, outs, strict=True)):
        assert p.returncode == 0, out
        progress = [line for line in out.splitlines() if " epoch " in line]
        assert progress and all(line.startswith(f"[process {i}/2] ") for line in progress)
    assert "wrote" in outs[0] and "wrote" not in outs[1]  # process 0 alone writes the shared files
    assert (wd / "success_rate.png").exists()
    assert_same_sweep_results(sweep.load_results(wd), reference)


@pytest.mark.slow
def test_a_dead_process_stops_the_other_and_rerunning_resumes(tmp_path):
    wd = tmp_path / "w"
    overrides = ["--config.chunk_steps=2", "--config.epochs=12"]
    procs = _processes(wd, overrides)
    ckpt = wd / "checkpoints" / "shard1of2" / "group1_wave0.npz"
    deadline = time.monotonic() + 120
    while not ckpt.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    procs[1].send_signal(signal.SIGKILL)
    start = time.monotonic()
    out0 = procs[0].communicate(timeout=60)[0]
    procs[1].wait()
    assert procs[0].returncode == 2, out0
    assert time.monotonic() - start < 30  # heartbeat 5 s + one chunk
    assert "error: process(es) 1 of 2 stopped" in out0.splitlines()[-1]
    procs = _processes(wd, overrides)
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert "resuming checkpoints/shard1of2/group1_wave0.npz" in outs[1], outs[1]
    cfg = scaleout_config(chunk_steps=2, epochs=12)
    assert_same_sweep_results(sweep.load_results(wd), sweep.run_sweep(cfg, None, progress=None, mesh=two_devices()))


def test_checkpoint_of_another_shard_is_refused(tmp_path):
    cfg = scaleout_config(epochs=2, over_realization=(1,))
    plans = plan.plan_groups(cfg, 2, False)
    mine = shards.shard_plans(cfg, plans, (0, 2))
    path = checkpoint.checkpoint_path(tmp_path, mine[0], 0)
    assert path == tmp_path / "checkpoints" / "shard0of2" / "group0_wave0.npz"
    layout = checkpoint.checkpoint_layout(mine[0], mine[0].waves[0])
    z = {"format": np.array(checkpoint.CHECKPOINT_FORMAT), "sweep_id": np.array("x"), **layout}
    z["num_shards"] = np.array(3)
    with pytest.raises(StoreError, match="shard 0 of 3"):
        checkpoint.check_identity(path, z, "x", layout)


@pytest.mark.slow
def test_device_check_runs_end_to_end_at_tiny_scale(tmp_path):
    """experiments/device_check.sh on CPU with SPECJAX_DEVICE_CHECK_SCALE=tiny: every phase ok, one JSON, a table."""
    env = os.environ | {"SPECJAX_DEVICE_CHECK_SCALE": "tiny", "XLA_FLAGS": ""}
    out = subprocess.run(
        ["bash", str(ROOT / "experiments" / "device_check.sh"), str(tmp_path)],
        capture_output=True, text=True, timeout=400, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "device_check.json").read_text())
    assert result["scale"] == "tiny" and result["backend"] == "cpu"
    for phase in ("tests", "bench", "kernels", "sweep"):
        assert result[phase]["status"] == "ok", (phase, result[phase])
    assert result["sweep"]["finished"]
    kernels = result["kernels"]["by_group"]["x1/float64"]
    assert kernels["compile_s"] > 0 and kernels["kernels_per_step"]["total"] > 0
    assert out.stdout.strip().splitlines()[-1] == f"wrote {tmp_path / 'device_check.json'}"
