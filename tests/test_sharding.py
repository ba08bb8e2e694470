"""The runs axis sharded over 4 fake CPU devices (tests/conftest.py) gives the numbers of 1 device."""

import json
import os
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_groups_close, tiny_config

from specjax import sweep
from specjax.cli import maybe_initialize_distributed
from specjax.engine import Hparams, Program, Spec, make_mesh, seed_key

SPEC = Spec(d=6, teacher_widths=(3,), c=2, over_realization=2, n_train=96, n_eval=48, batch_size=8)


def _four_devices():
    """conftest.py gives the CPU backend 4 devices (unless XLA_FLAGS sets another count); on an accelerator backend
    the test needs 4 of them."""
    if jax.default_backend() == "cpu":
        assert len(jax.devices()) >= 4, os.environ.get("XLA_FLAGS")
    elif len(jax.devices()) < 4:
        pytest.skip(f"needs 4 {jax.default_backend()} devices")


def _train(program: Program, runs: int):
    keys = jax.vmap(seed_key, (None, 0))(5, jnp.arange(runs))
    hp = Hparams.broadcast(runs, teacher_polarity=1.0, lr=0.05, data_std=1.5, init_scale=0.1)
    hp, keys = program.place((hp, keys))
    teacher, data, state = program.init(hp, keys)
    for _ in range(2):
        state, stats = program.train(state, teacher, data, hp)
    return state, stats  # evaluation on 4 devices: test_sweep_on_four_devices_equals_sweep_on_one


@pytest.mark.slow
def test_program_shards_runs_over_four_devices_with_the_numbers_of_one():
    _four_devices()
    four = _train(Program(SPEC, 30, make_mesh(4)), runs=8)
    one = _train(Program(SPEC, 30, make_mesh(1)), runs=8)
    W = four[0].student[0][0]
    assert len(W.sharding.device_set) == 4
    assert W.addressable_shards[0].data.shape[0] == 2  # 8 runs / 4 devices
    for a, b in zip(jax.tree.leaves(jax.device_get(four)), jax.tree.leaves(jax.device_get(one)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.slow
def test_sweep_on_four_devices_equals_sweep_on_one():
    _four_devices()
    # d=7: a shape no other test compiles; one shape group, 2 polarities x 3 seeds.
    cfg = tiny_config(d=7, epochs=2, over_realization=(2,), lr=(0.1,))
    four = sweep.run_sweep(cfg, None, progress=None, mesh=make_mesh(4))
    one = sweep.run_sweep(cfg, None, progress=None, mesh=make_mesh(1))
    assert four.summary == one.summary
    for g4, g1 in zip(four.arrays, one.arrays, strict=True):
        assert_groups_close(g4, g1, rtol=1e-12, atol=1e-14)


def test_distributed_initialisation_single_process(monkeypatch):
    """``maybe_initialize_distributed`` is a no-op without a coordinator, and initialises a 1-process cluster with one
    (a real multi-host run cannot be tested on one machine)."""
    for name in ("SPECJAX_COORDINATOR_ADDRESS", "SPECJAX_NUM_PROCESSES", "SPECJAX_PROCESS_ID"):
        monkeypatch.delenv(name, raising=False)
    assert maybe_initialize_distributed() is False
    assert jax.process_count() == 1
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    env = os.environ | {
        "SPECJAX_COORDINATOR_ADDRESS": f"localhost:{port}",
        "SPECJAX_NUM_PROCESSES": "1",
        "SPECJAX_PROCESS_ID": "0",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
    }
    code = (
        "from specjax.cli import maybe_initialize_distributed; import jax; "
        "assert maybe_initialize_distributed(); print(jax.process_count(), jax.device_count())"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "2"]


# A deep spec whose hidden widths (8, 12, 16) and outputs (4) split evenly over 2 or 4 devices.
WIDE_SPEC = Spec(
    teacher="deep", d=6, teacher_widths=(4, 6, 8), c=4, over_realization=2, n_train=96, n_eval=48, batch_size=8
)


@pytest.mark.slow
def test_one_run_split_over_devices_by_width_equals_one_device():
    """devices_per_run: each run's nodes split over the 'width' axis; the numbers of one device to rounding."""
    _four_devices()
    split = Program(WIDE_SPEC, 30, make_mesh(4, devices_per_run=2))  # 2 run slots x 2 devices per run
    assert dict(split.mesh.shape) == {"runs": 2, "width": 2} and split.devices_per_run == 2
    wide, one = _train(split, runs=2), _train(Program(WIDE_SPEC, 30, make_mesh(1)), runs=2)
    W = wide[0].student[1][0]  # (runs, 8, 12): split by output node
    assert W.sharding.spec == jax.sharding.PartitionSpec("runs", None, "width")
    assert W.addressable_shards[0].data.shape == (1, 8, 6)
    for a, b in zip(jax.tree.leaves(jax.device_get(wide)), jax.tree.leaves(jax.device_get(one)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    state = split.place_state(jax.device_get(wide[0]))  # a resumed state goes back into the split layout
    assert state.student[1][0].sharding.spec == W.sharding.spec


def test_plan_splits_runs_over_devices_only_when_asked():
    from specjax.sweep import plan as plan_lib

    cfg = tiny_config(teacher="deep", teacher_widths=(4, 6, 8), seeds=1, teacher_polarity=(0.0,), lr=(0.05,))
    cfg.over_realization, cfg.runs_per_block = (2,), 1
    assert plan_lib.plan_groups(cfg, 4, accelerator=False)[0].devices_per_run == 1  # auto: whole runs per device
    cfg.devices_per_run = 4
    (p,) = plan_lib.plan_groups(cfg, 4, accelerator=False)
    assert (p.devices_per_run, p.block, p.padded_runs) == (4, 1, 1)  # one run on all 4 devices, no padding copy
    cfg.devices_per_run, cfg.seeds = 2, 2
    (p,) = plan_lib.plan_groups(cfg, 4, accelerator=False)
    assert (p.devices_per_run, p.block, p.padded_runs) == (2, 2, 2)  # 2 run slots of 2 devices
    cfg.devices_per_run = 3
    with pytest.raises(plan_lib.config_lib.ConfigError, match="devices_per_run: 3 does not divide the 4"):
        plan_lib.plan_groups(cfg, 4, accelerator=False)


@pytest.mark.slow
def test_sweep_with_runs_split_over_devices_records_its_layout(tmp_path):
    _four_devices()
    cfg = tiny_config(teacher="deep", teacher_widths=(4, 6, 8), d=6, epochs=2, seeds=1, over_realization=(2,))
    cfg.teacher_polarity, cfg.lr, cfg.runs_per_block = (0.0,), (0.05,), 1
    one = sweep.run_sweep(cfg, None, progress=None, mesh=make_mesh(1))
    cfg.devices_per_run = 4
    split = sweep.run_sweep(cfg, tmp_path / "w", progress=None, mesh=make_mesh(4))
    for a, b in zip(split.arrays, one.arrays, strict=True):  # the layout is part of the sweep's identity
        assert a.pop("sweep_id") != b.pop("sweep_id")
        assert_groups_close(a, b, rtol=1e-9, atol=1e-11)
    layout = json.loads((tmp_path / "w" / "config.json").read_text())["layout"]
    assert layout["devices"] == 4 and layout["groups"][0]["devices_per_run"] == 4 and layout["groups"][0]["block"] == 1
