"""Each process gets its share of the machine's cores: --cpus, and the processes of one machine split its cores."""

import json
import os
import subprocess
import sys

import pytest
from helpers import CLI_ENV, ROOT, TINY, assert_refusal

from specjax import cli

LOCAL = ["--coordinator_address=127.0.0.1:12345", "--num_processes=2"]


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        ([], {}, 8),  # alone: every usable core
        (["--cpus=3"], {}, 3),
        ([], {"SPECJAX_CPUS": "2"}, 2),
        ([*LOCAL, "--process_id=0"], {}, 4),  # two processes here: half the cores each
        ([*LOCAL, "--process_id=1"], {}, 4),
        (["--coordinator_address", "localhost:1", "--num_processes", "4", "--process_id", "3"], {}, 2),
        (
            [],
            {"SPECJAX_COORDINATOR_ADDRESS": "127.0.0.1:9", "SPECJAX_NUM_PROCESSES": "2", "SPECJAX_PROCESS_ID": "1"},
            4,
        ),
        (
            ["--coordinator_address=node7.cluster:1", "--num_processes=2", "--process_id=1"],
            {},
            8,
        ),  # other hosts
        ([*LOCAL, "--process_id=1", "--cpus=1"], {}, 1),  # --cpus wins
        ([*LOCAL, "--process_id=5"], {}, 8),  # invalid: the flag checks refuse it later
        (["--coordinator_address=127.0.0.1:1", "--num_processes=16", "--process_id=3"], {}, 1),
    ],
)
def test_cpu_layout(argv, env, expected):
    assert cli.cpu_layout(argv, env, list(range(8))) == expected


def _devices_in_child(args: list[str]) -> dict:
    """Devices and affinity of a fresh process configured by :func:`cli.configure_cpu_devices` with ``args``."""
    code = (
        "import json, os, sys; from specjax import cli; cli.configure_cpu_devices(argv=sys.argv[1:]); import jax; "
        "print(json.dumps({'devices': len(jax.devices()), 'cores': sorted(os.sched_getaffinity(0))}))"
    )
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores")
def test_two_local_processes_each_take_their_share_unpinned():
    """Half the cores each as devices, affinity left alone: pinned to one core, XLA compiled the quickstart's
    evaluation differently and two processes' results differed from one process's in the last float32 bit."""
    cores = sorted(os.sched_getaffinity(0))
    share = len(cores) // 2
    first = _devices_in_child([*LOCAL, "--process_id=0"])
    second = _devices_in_child([*LOCAL, "--process_id=1"])
    assert first == second == {"devices": share, "cores": cores}


@pytest.mark.parametrize(("value", "shown"), [("abc", "'abc'"), ("0", "0")])
def test_a_bad_cpus_variable_is_refused_like_the_flag(tmp_path, value, shown):
    wd = tmp_path / "wd"
    proc = subprocess.run(
        [sys.executable, "-m", "specjax.sweep", f"--config={TINY}", f"--workdir={wd}"],
        env={**CLI_ENV, "SPECJAX_CPUS": value},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert_refusal(
        proc.returncode,
        proc.stdout,
        proc.stderr,
        "specjax.sweep",
        rf"SPECJAX_CPUS: must be an integer >= 1, got {shown}",
    )
    assert not wd.exists()


def test_local_launcher_splits_the_cores_between_its_shards():
    from specjax.launch import job

    assert job.cpus_per_shard("local", None, 2, 8) == 4
    assert job.cpus_per_shard("local", None, 16, 8) == 1
    assert job.cpus_per_shard("local", 3, 2, 8) == 3  # --cpus_per_shard wins
    assert job.cpus_per_shard("slurm", None, 2, 8) is None  # a cluster job takes its allocation's cores
