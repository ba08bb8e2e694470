"""Scale-out paths refuse bad input in one line and leave nothing torn (issue 19): multi-process flags and peers,
stray and damaged shard folders, a wrong shard count, the launcher's executor and resources.

Processes run on 127.0.0.1 as in tests/test_scaleout.py; command-line refusals go through
:func:`helpers.run_module_cases` (one interpreter start for many cases).
"""

import os
import shutil
import socket
import subprocess
import sys

import pytest
from helpers import CLI_ENV, ROOT, TINY, assert_refusal, listing, run_module, run_module_cases, tiny_config

from specjax import cli, store, sweep
from specjax.errors import PeerLost, SpecjaxError, StoreError, SweepError
from specjax.sweep import checkpoint, shards
from specjax.sweep.run import local_mesh
from specjax.sweep.workdir import prepare_workdir

SWEEP = "specjax.sweep"
LAUNCH = "specjax.launch"


def shard_config(**overrides):
    """One shape group x 2 polarities x 2 lrs x 5 seeds, 2 epochs x 20 steps (the shapes of
    tests/test_scaleout.py::test_shard_refusals, so the program is compiled once per session)."""
    return tiny_config(**{"d": 9, "seeds": 5, "steps_per_epoch": 20, "epochs": 2, "over_realization": (1,)} | overrides)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- multi-process: flags (19.3), a peer that never arrives (19.2), peers with another config (19.1) ---------------


def test_distributed_flags_are_refused_in_one_line_before_anything_starts(tmp_path):
    address = f"--coordinator_address=127.0.0.1:{_free_port()}"
    cases = [
        ([address, "--num_processes=2", "--process_id=2"], r"--process_id: must be in \[0, 2\) for --num_processes=2"),
        ([address, "--num_processes=0", "--process_id=0"], r"--num_processes: must be an integer >= 1, got 0$"),
        ([address, "--num_processes=2", "--process_id=-1"], r"--process_id: must be an integer >= 0, got -1$"),
        (["--num_processes=2", "--process_id=0"], r"--num_processes: a multi-process sweep needs --coordinator_addr"),
        (["--coordinator_address=localhost", "--num_processes=2", "--process_id=0"], r"expected HOST:PORT of process"),
        ([address, "--num_processes=2", "--process_id=0", "--distributed_timeout_s=0"], r"--distributed_timeout_s:"),
    ]
    if not any(k in os.environ for k in ("SLURM_JOB_ID", "OMPI_COMM_WORLD_SIZE")):  # no cluster for auto to find
        cases.append((["--distributed=auto"], r"--distributed=auto needs SLURM, Open MPI or a TPU slice"))
    argvs = [[f"--config={TINY}", f"--workdir={tmp_path / str(i)}", *a] for i, (a, _) in enumerate(cases)]
    for i, (r, (_, pattern)) in enumerate(zip(run_module_cases(SWEEP, argvs), cases, strict=True)):
        assert_refusal(r["rc"], r["stdout"], r["stderr"], SWEEP, pattern)
        assert not (tmp_path / str(i)).exists()


def test_distributed_environment_variables_are_checked(monkeypatch):
    monkeypatch.setenv("SPECJAX_COORDINATOR_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("SPECJAX_PROCESS_ID", "0")
    monkeypatch.setenv("SPECJAX_NUM_PROCESSES", "abc")
    with pytest.raises(SpecjaxError, match=r"^SPECJAX_NUM_PROCESSES: must be an integer >= 1, got 'abc'$"):
        cli.maybe_initialize_distributed()
    monkeypatch.setenv("SPECJAX_NUM_PROCESSES", "2")
    monkeypatch.setenv("SPECJAX_PROCESS_ID", "2")
    with pytest.raises(SpecjaxError, match=r"^--process_id: must be in \[0, 2\)"):
        cli.maybe_initialize_distributed()


@pytest.mark.slow
def test_a_peer_that_never_arrives_is_one_line_not_an_abort(tmp_path):
    """Process 0 of 2 alone: XLA's own start-up timeout aborted it (exit 134, a C++ stack); now one line, exit 2,
    after the start-up window (10 x --distributed_timeout_s = 10 s), and nothing created."""
    address = f"127.0.0.1:{_free_port()}"
    argv = [f"--config={TINY}", f"--workdir={tmp_path / 'w'}", f"--coordinator_address={address}"]
    out = run_module(SWEEP, [*argv, "--num_processes=2", "--process_id=0", "--distributed_timeout_s=1"], timeout=120)
    pattern = rf"distributed: the 2 processes did not all connect to {address} within 10 s"
    assert_refusal(out.returncode, out.stdout, out.stderr, SWEEP, pattern)
    assert not (tmp_path / "w").exists()


class FakeClient:
    """The key-value store and barrier of ``jax.distributed``'s client, for one process, with the other processes'
    keys set beforehand."""

    def __init__(self, keys: dict[str, str]):
        self.keys = dict(keys)

    def key_value_set(self, key: str, value: str, allow_overwrite: bool = False) -> None:
        self.keys[key] = value

    def blocking_key_value_get(self, key: str, timeout_ms: int) -> str:
        if key not in self.keys:
            raise RuntimeError("DEADLINE_EXCEEDED: the key did not appear")
        return self.keys[key]

    def key_value_dir_get(self, folder: str) -> list[tuple[str, str]]:
        return [(k, v) for k, v in self.keys.items() if k.startswith(folder + "/")]

    def wait_at_barrier(self, name: str, timeout_ms: int) -> None:
        pass


def test_every_process_compares_the_sweep_identities_before_writing():
    import json

    from specjax import config as config_lib
    from specjax.sweep import distribute
    from specjax.sweep.workdir import resume_identity, sweep_id

    def published(cfg) -> str:
        return json.dumps({"sweep_id": sweep_id(cfg), "config": resume_identity(config_lib.to_plain(cfg))})

    mine, other = tiny_config(), tiny_config(lr=(0.2,))
    distribute.check_same_sweep(FakeClient({"specjax/identity/1": published(mine)}), mine, 0, 2)  # the same: passes
    client = FakeClient({"specjax/identity/0": published(mine), "specjax/identity/2": published(other)})
    with pytest.raises(SweepError, match=r"process\(es\) 2 of 3 run another sweep than process 0 \(config fields"):
        distribute.check_same_sweep(client, mine, 1, 3)
    # A process that refused (its config, its workdir) reports it; the others stop with its line instead of waiting.
    client = FakeClient({"specjax/failed/1": "config.lr: values must be > 0, got -1"})
    with pytest.raises(PeerLost, match=r"^distributed: process 1 stopped: config\.lr: values must be > 0"):
        distribute.check_same_sweep(client, mine, 0, 2)


@pytest.mark.slow
@pytest.mark.parametrize(
    "bad, pattern",
    [
        (
            ["--process_id=1", "--config.lr=(0.2,)"],
            [r"process\(es\) 1 of 2 run another sweep than process 0 \(config fields \['lr'\]: lr=\[0\.2\] vs"] * 2,
        ),
        (
            ["--process_id=0", "--config.lr=-1"],
            [r"error: config\.lr: values must be > 0", r"error: distributed: process 0 stopped: config\.lr: values"],
        ),
    ],
    ids=["another_config", "a_refused_config"],
)
def test_processes_started_with_different_configs_stop_in_one_line(tmp_path, bad, pattern):
    """Process 1 with another lr than process 0: both hung forever, each waiting for keys of its own sweep; now
    each stops with one line naming the process and the field, exit 2, before the workdir is created. Process 0
    refusing its config: process 1 died with tracebacks and XLA's abort; now it stops with process 0's line."""
    wd = tmp_path / "w"
    env = CLI_ENV | {"XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    argv = [
        sys.executable, "-m", SWEEP, f"--config={TINY}", f"--workdir={wd}",
        f"--coordinator_address=127.0.0.1:{_free_port()}", "--num_processes=2", "--distributed_timeout_s=5",
    ]  # fmt: skip
    index = int(bad[0].split("=")[1])
    extra = [bad if i == index else [f"--process_id={i}"] for i in range(2)]
    procs = [
        subprocess.Popen([*argv, *e], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for e in extra
    ]
    try:
        outs = [p.communicate(timeout=120) for p in procs]
    finally:  # (before the fix both waited forever)
        for p in procs:
            p.kill()
    for i, (p, (stdout, stderr)) in enumerate(zip(procs, outs, strict=True)):
        assert_refusal(p.returncode, stdout, stderr, SWEEP, pattern[0] if i == index else pattern[1])
    assert not wd.exists()


# --- shards: stray folders (19.4), lost results (19.5), torn temporaries (19.12), a wrong count (19.13) -----------


def test_stray_shard_folders_are_ignored_and_a_wrong_shard_count_writes_nothing(tmp_path):
    """``checkpoints/shard0of2.bak`` broke every shard command and ``load_results`` (``int('2.bak')``); a wrong
    ``--num_shards`` rewrote config.json before refusing and suggested ``--overwrite``, which shard commands refuse."""
    cfg = shard_config()
    wd = tmp_path / "w"
    prepare_workdir(cfg, wd, overwrite=False)
    for name in ("shard0of2", "shard1of2", "shard0of2.bak", "shard9of2", "shardXofY"):
        (wd / "checkpoints" / name).mkdir()
    (wd / "checkpoints" / "shard1of2.lock").touch()
    with pytest.raises(StoreError, match=r"unfinished: shard\(s\) 0, 1 of 2 have not finished$"):
        sweep.load_results(wd)
    before = listing(wd)
    with pytest.raises(SweepError, match=r"use --num_shards=2 .*another --workdir") as refusal:
        shards.run_shard(cfg, wd, 3, 0, progress=None, mesh=local_mesh(2))
    assert "overwrite" not in str(refusal.value)
    assert listing(wd) == before  # config.json not rewritten, nothing created
    assert checkpoint.shard_folders(wd) == [(0, 2), (1, 2)]


def test_torn_temporaries_in_grow_and_shard_folders_are_removed_on_restart(tmp_path):
    """A kill inside a write leaves ``.<name>.*.tmp``; restarting removes those of ``checkpoints/grow/`` and of the
    restarted shard's folder, as it did for the workdir, ``checkpoints/`` and ``results/``. Shard 59 of 60 trains
    nothing (more shards than blocks), so this costs no compilation."""
    cfg = shard_config()
    wd = tmp_path / "w"
    prepare_workdir(cfg, wd, overwrite=False)
    torn = [
        wd / "checkpoints" / "grow" / ".group0_fresh_wave0.npz.x1y2.tmp",
        wd / "checkpoints" / "shard59of60" / ".done.json.a1b2.tmp",
    ]
    other = wd / "checkpoints" / "shard3of60" / ".group0.npz.c3d4.tmp"  # another shard's write may be in progress
    for path in [*torn, other]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"torn")
    assert shards.run_shard(cfg, wd, 60, 59, progress=None, mesh=local_mesh(2)) is None
    assert [p for p in torn if p.exists()] == []
    assert other.exists()


def test_a_finished_shard_whose_files_were_deleted_is_named_and_rerunning_it_repairs(tmp_path):
    """Shard 0 finished, then its files were deleted (done.json kept): the merge stopped at "file not found" and
    ``load_results`` said "re-run any shard", which did not help. Now the other shard waits for shard 0,
    ``load_results`` names shard 0 and its command, and re-running it retrains it and merges, bit-identical."""
    cfg = shard_config()
    wd = tmp_path / "w"
    mesh = local_mesh(2)
    assert shards.run_shard(cfg, wd, 2, 0, progress=None, mesh=mesh) is None
    folder = checkpoint.shard_dir(wd, (0, 2))
    for path in folder.glob("*.npz"):
        path.unlink()
    lines = []
    assert shards.run_shard(cfg, wd, 2, 1, progress=lines.append, mesh=mesh) is None
    assert lines[-1] == "[shard 1/2] waiting for shard(s) 0 of 2; the last to finish writes the results"
    pattern = r"shard 0 of 2 finished but its results file\(s\) .*shard0of2/group0\.npz are missing: re-run that "
    with pytest.raises(StoreError, match=pattern + r"shard \(--num_shards=2 --shard_index=0\)"):
        sweep.load_results(wd)
    lines = []
    merged = shards.run_shard(cfg, wd, 2, 0, progress=lines.append, mesh=mesh)
    assert "results file(s) group0.npz are missing: retraining them" in lines[0]
    assert merged is not None
    reference = sweep.run_sweep(cfg, None, progress=None, mesh=mesh)
    assert merged.summary == reference.summary
    store.save_npz(folder / "group0.npz", {"x": store.load_npz(folder / "group0.npz")["diverged_at"]})
    (wd / "summary.json").unlink()  # a damaged piece found by the merge: named with the shard that retrains it
    with pytest.raises(StoreError, match=r"group0\.npz: missing array.*shard 0 of 2 wrote it: delete that file"):
        shards.run_shard(cfg, wd, 2, 1, progress=None, mesh=mesh)
    (folder / "group0.npz").unlink()  # as the line says: delete it and re-run shard 0 (its checkpoints are left)
    assert shards.run_shard(cfg, wd, 2, 0, progress=None, mesh=mesh).summary == reference.summary
    for i in range(2):  # shard folders cleaned up after the merge: a re-run shard trains nothing
        shutil.rmtree(checkpoint.shard_dir(wd, (i, 2)))
    lines = []
    assert shards.run_shard(cfg, wd, 2, 1, progress=lines.append, mesh=mesh).summary == reference.summary
    assert lines == ["[shard 1/2] the sweep is already merged (results/, summary.json): nothing to train"]


# --- the launcher: SLURM where there is none, counts no job can use (19.8) ----------------------------------------


def test_launcher_refuses_what_cannot_run_before_creating_anything(tmp_path):
    pytest.importorskip("submitit")
    cases = [
        (["--num_shards=2", "--cpus_per_shard=-1", "--executor=local"], r"--cpus_per_shard: must be an integer >= 1"),
        (["--num_shards=0", "--executor=local"], r"--num_shards: must be an integer >= 1, got 0$"),
        (["--timeout_min=0", "--executor=local"], r"--timeout_min: must be an integer >= 1, got 0$"),
        (["--gpus_per_shard=-2", "--executor=local"], r"--gpus_per_shard: must be an integer >= 0, got -2$"),
    ]
    if shutil.which("srun") is None or shutil.which("sbatch") is None:  # the default executor is slurm
        cases.append((["--num_shards=2"], r"--executor=slurm: SLURM is not installed here \(.*not found on PATH\)"))
    argvs = [[f"--config={TINY}", f"--workdir={tmp_path / str(i)}", *a] for i, (a, _) in enumerate(cases)]
    for i, (r, (_, pattern)) in enumerate(zip(run_module_cases(LAUNCH, argvs), cases, strict=True)):
        assert_refusal(r["rc"], r["stdout"], r["stderr"], LAUNCH, pattern)
        assert not (tmp_path / str(i)).exists()
    assert os.listdir(tmp_path) == []
