"""Multi-controller sweeps: N processes (``jax.distributed``) train one sweep into one workdir on a shared filesystem.

Runs are independent, so the N processes are the N shards of :mod:`specjax.sweep.shards`: process ``i`` trains
shard ``i`` on its own local devices (no program spans processes; nothing is communicated inside the training
loop) under its own lock and checkpoints. The distributed runtime's key-value store only orders three moments:
process 0 prepares the workdir (``config.json``) before the others start, every process reports its shard done, and
process 0 merges (``results/``, ``summary.json``, the figure) while the others wait. Killing every process and
re-running the same commands resumes.

A process that dies is noticed by the others within the heartbeat timeout (:func:`initialize`; JAX's
``jax_enable_recoverability`` keeps the survivors alive instead of aborting them): a watchdog thread sees it missing
from the live processes, the survivors checkpoint at the next chunk and stop with one line naming it
(:class:`PeerLost`), at the latest :data:`STOP_GRACE_S` seconds later.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from specjax.errors import SweepError
from specjax.sweep import signals

#: Seconds a survivor may take to reach a safe point after a peer died before it exits anyway.
STOP_GRACE_S = 120.0
#: Heartbeat timeout (seconds) of :func:`initialize` unless given: a dead process is noticed within about this.
HEARTBEAT_TIMEOUT_S = 30
#: Exit status of a survivor that could not reach a safe point within :data:`STOP_GRACE_S`.
EXIT_PEER_LOST = 3


class PeerLost(SweepError):
    """Another process of a multi-controller sweep stopped; re-running the same commands on every process resumes."""


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    auto: bool = False,
    timeout_s: int = HEARTBEAT_TIMEOUT_S,
) -> bool:
    """``jax.distributed.initialize`` with bounded timeouts and survivors kept alive when a process dies.

    Args:
      coordinator_address, num_processes, process_id: explicit cluster (``host:port`` of process 0).
      auto: call ``jax.distributed.initialize()`` without them, so SLURM, Open MPI or a TPU slice is detected.
      timeout_s: heartbeat timeout: how long a silent process may go unnoticed; also bounds start-up (10x, for
        processes started a little apart) and shutdown.

    Returns:
      whether ``jax.distributed`` was initialised (``False``: no address and not ``auto``).
    """
    if not coordinator_address and not auto:
        return False
    import jax

    try:  # survivors of a dead process keep running (and stop cleanly) instead of being aborted by the runtime
        jax.config.update("jax_enable_recoverability", True)
    except AttributeError:  # older JAX: the runtime aborts them itself after the heartbeat timeout
        pass
    explicit = {}
    if coordinator_address:
        if num_processes is None or process_id is None:
            raise SweepError("distributed: --coordinator_address needs --num_processes and --process_id too")
        explicit = dict(coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id)
    jax.distributed.initialize(
        **explicit,
        initialization_timeout=10 * timeout_s,
        heartbeat_timeout_seconds=timeout_s,
        shutdown_timeout_seconds=timeout_s,
    )
    return True


def _client():
    from jax._src import distributed

    client = distributed.global_state.client
    if client is None:
        raise SweepError("distributed: jax.distributed is not initialised")
    return client


class Watchdog:
    """Polls the live processes every ``poll_s`` seconds; on a missing one records the failure, prints one line and,
    if the sweep has not stopped :data:`STOP_GRACE_S` seconds later, exits with :data:`EXIT_PEER_LOST`."""

    def __init__(self, emit, poll_s: float = 1.0):
        import jax

        self.count, self.index = jax.process_count(), jax.process_index()
        self.emit = emit
        self.poll_s = poll_s
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="specjax-watchdog", daemon=True)

    def __enter__(self) -> Watchdog:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join(timeout=5 * self.poll_s)

    def _run(self) -> None:
        client = _client()
        if not hasattr(client, "get_live_nodes"):  # older JAX: its own heartbeat aborts the survivors
            return
        everyone = list(range(self.count))
        while not self.stopped.wait(self.poll_s):
            try:
                live = client.get_live_nodes(everyone)
            except Exception:  # noqa: BLE001 -- the coordinator (process 0) is gone: any runtime error means that
                live = {} if self.index else {0: 0}
            dead = [i for i in everyone if i not in live]
            if dead:
                failure = (
                    f"process(es) {', '.join(map(str, dead))} of {self.count} stopped (no heartbeat); this process "
                    "stops at its next checkpoint; re-run the same commands on every process to resume"
                )
                signals.request_stop(PeerLost(failure))  # the training loop checkpoints and raises it
                self.emit(failure)
                if not self.stopped.wait(STOP_GRACE_S):
                    print(f"{failure}; exiting without a safe point", file=sys.stderr, flush=True)
                    os._exit(EXIT_PEER_LOST)
                return


def _wait_key(client, key: str, what: str) -> str:
    """Waits for ``key`` in the key-value store, checking for a dead peer every second."""
    while True:
        signals.check()
        try:
            return client.blocking_key_value_get(key, 1000)
        except Exception as e:  # noqa: BLE001 -- a timeout (poll again) or a lost coordinator
            if "DEADLINE_EXCEEDED" not in str(e) and "timed out" not in str(e).lower():
                time.sleep(1)
                signals.check()
                first = str(e).splitlines()[0]
                raise PeerLost(f"distributed: lost the coordinator while waiting for {what} ({first})") from None


def run_processes(cfg, workdir: str | Path, *, overwrite: bool = False, progress=print):
    """Trains ``cfg`` across every process of the initialised ``jax.distributed`` cluster into ``workdir``.

    Call it on every process with the same arguments. Process ``i`` trains shard ``i`` of ``jax.process_count()``
    on its local devices; process 0 prepares the workdir, merges, and returns the :class:`SweepResult`; the others
    return ``None`` once it has merged.

    Raises:
      PeerLost: another process stopped (after checkpointing this one's progress).
    """
    import jax

    from specjax import config as config_lib
    from specjax.sweep import shards
    from specjax.sweep.plan import plan_groups
    from specjax.sweep.run import check_runtime
    from specjax.sweep.workdir import check_workdir_path, prepare_workdir, sweep_id

    count, index = jax.process_count(), jax.process_index()
    prefix = f"[process {index}/{count}] "

    def say(text: str) -> None:
        if progress is not None:
            progress(prefix + text)

    config_lib.validate(cfg)
    check_runtime(cfg)
    ident = sweep_id(cfg)
    client = _client()
    tag = f"specjax/{ident}"
    wd = check_workdir_path(workdir)
    with Watchdog(lambda m: print(prefix + m, file=sys.stderr, flush=True)):
        if index == 0:
            with shards.workdir_lock_waiting(wd):
                prepare_workdir(cfg, wd, overwrite)
            client.key_value_set(f"{tag}/prepared", "1", allow_overwrite=True)
        else:
            _wait_key(client, f"{tag}/prepared", "process 0 to prepare the workdir")
        shards.run_shard(cfg, wd, count, index, progress=progress, prepare=False, merge_results=False, label="process")
        client.key_value_set(f"{tag}/done/{index}", "1", allow_overwrite=True)
        for j in range(count):
            _wait_key(client, f"{tag}/done/{j}", f"process {j} to finish")
        result = None
        if index == 0:
            plans = plan_groups(cfg, 1, False)
            with shards.workdir_lock_waiting(wd):
                result = shards.merge_if_complete(cfg, plans, wd, ident, count, say)
            client.key_value_set(f"{tag}/merged", "1", allow_overwrite=True)
        else:
            _wait_key(client, f"{tag}/merged", "process 0 to merge the results")
    client.wait_at_barrier(f"{tag}/end", 60_000)  # process 0 (the coordinator) leaves last
    say("done")
    return result


__all__ = ["EXIT_PEER_LOST", "PeerLost", "Watchdog", "initialize", "run_processes"]
