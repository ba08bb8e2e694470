"""Multi-controller sweeps: N processes (``jax.distributed``) train one sweep into one workdir on a shared filesystem.

Runs are independent, so the N processes are the N shards of :mod:`specjax.sweep.shards`: process ``i`` trains
shard ``i`` on its own local devices (no program spans processes; nothing is communicated inside the training
loop) under its own lock and checkpoints. The distributed runtime's key-value store only orders four moments:
every process compares its sweep identity with the others' before anything is written (:func:`check_same_sweep`),
process 0 prepares the workdir (``config.json``) before the others start, every process reports its shard done, and
process 0 merges (``results/``, ``summary.json``, the figure) while the others wait. Killing every process and
re-running the same commands resumes.

The runtime is started by :func:`specjax.runtime.initialize` (bounded start-up: one line,
:class:`~specjax.errors.PeersMissing`, instead of XLA's abort), which the command lines call before anything else.
A process that dies is noticed by the others within the heartbeat timeout (JAX's ``jax_enable_recoverability``
keeps the survivors alive instead of aborting them): a watchdog thread sees it missing from the live processes, the
survivors checkpoint at the next chunk and stop with one line naming it (:class:`~specjax.errors.PeerLost`), at
the latest :data:`STOP_GRACE_S` seconds later.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

from specjax.errors import PeerLost, SweepError
from specjax.sweep import signals

#: Seconds a survivor may take to reach a safe point after a peer died before it exits anyway.
STOP_GRACE_S = 120.0
#: Exit status of a survivor that could not reach a safe point within :data:`STOP_GRACE_S`.
EXIT_PEER_LOST = 3
#: Key-value directory where a process that stops with an error leaves its message for the others.
FAILED_KEYS = "specjax/failed"


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
            reported = [f for f in _failures(client) if f[0] != self.index]
            try:
                live = client.get_live_nodes(everyone)
            except Exception:  # noqa: BLE001 -- the coordinator (process 0) is gone: any runtime error means that
                live = {} if self.index else {0: 0}
            dead = [i for i in everyone if i not in live]
            if (reported or dead) and not self.stopped.is_set():  # (a process leaving after the sweep is fine)
                if reported:  # it said why: that one line is the error this process stops with
                    error = _failure_error(reported)
                    failure = str(error)
                else:
                    failure = (
                        f"process(es) {', '.join(map(str, dead))} of {self.count} stopped (no heartbeat); this "
                        "process stops at its next checkpoint; re-run the same commands on every process to resume"
                    )
                    error = PeerLost(failure)
                    self.emit(failure)
                signals.request_stop(error)  # the training loop checkpoints and raises it
                if not self.stopped.wait(STOP_GRACE_S):
                    print(f"{failure}; exiting without a safe point", file=sys.stderr, flush=True)
                    os._exit(EXIT_PEER_LOST)
                return


def _failures(client) -> list[tuple[int, str]]:
    """``(process, message)`` of every process that stopped with an error (:func:`report_failure`), sorted."""
    try:
        pairs = client.key_value_dir_get(FAILED_KEYS)
    except Exception:  # noqa: BLE001 -- no such directory yet, or the runtime is going away
        return []
    found = []
    for key, value in pairs:
        tail = key.rstrip("/").rsplit("/", 1)[-1]
        if tail.isdigit():
            found.append((int(tail), value))
    return sorted(found)


def _failure_error(failures: list[tuple[int, str]]) -> PeerLost:
    j, message = failures[0]
    return PeerLost(f"distributed: process {j} stopped: {message}")


def report_failure(error: Exception) -> None:
    """Tells the other processes that this one stops with ``error`` (the command line calls it before exiting), so
    each of them stops with one line naming this process and its message, instead of waiting for it or being
    aborted by XLA when the coordinator leaves. This process first takes part in the runtime's start-up exchange
    (the others' backends wait for it); process 0 then leaves last (:func:`_leave_last`).
    """
    from jax._src import distributed

    client = distributed.global_state.client
    if client is None or getattr(error, "exit_at_once", False):
        return
    try:
        import jax

        index, count = jax.process_index(), jax.process_count()  # initialises the backend if it was not yet
        if not isinstance(error, PeerLost):  # (a peer's failure is that peer's to report)
            message = " ".join(str(error).split())
            client.key_value_set(f"{FAILED_KEYS}/{index}", message, allow_overwrite=True)
    except Exception:  # noqa: BLE001 -- the runtime is already gone: nobody to tell
        return
    if index == 0:
        _leave_last(client, count, timeout_s=STOP_GRACE_S)


def _wait_key(client, key: str, what: str) -> str:
    """Waits for ``key`` in the key-value store, checking every second for a dead peer or one that reported a
    failure."""
    while True:
        signals.check()
        try:
            return client.blocking_key_value_get(key, 1000)
        except Exception as e:  # noqa: BLE001 -- a timeout (poll again) or a lost coordinator
            if failures := _failures(client):
                raise _failure_error(failures) from None
            if "DEADLINE_EXCEEDED" not in str(e) and "timed out" not in str(e).lower():
                time.sleep(1)
                signals.check()
                first = str(e).splitlines()[0]
                raise PeerLost(f"distributed: lost the coordinator while waiting for {what} ({first})") from None


def check_same_sweep(client, cfg, index: int, count: int) -> None:
    """Every process publishes its sweep identity (and the config fields that fix it) in the runtime's key-value
    store and compares all of them before anything is written: processes started with different configs would
    otherwise each wait forever for the others' keys.

    Raises:
      SweepError: on every process, naming the processes that differ from process 0 and the fields.
    """
    from specjax import config as config_lib
    from specjax.sweep.workdir import resume_identity, sweep_id

    mine = {"sweep_id": sweep_id(cfg), "config": resume_identity(config_lib.to_plain(cfg))}
    client.key_value_set(f"specjax/identity/{index}", json.dumps(mine, sort_keys=True), allow_overwrite=True)
    held = [json.loads(_wait_key(client, f"specjax/identity/{j}", f"process {j}'s config")) for j in range(count)]
    _barrier(client, "specjax/identity", "every process to compare the configs")
    others = [j for j in range(count) if held[j]["sweep_id"] != held[0]["sweep_id"]]
    if others:
        first, other = held[0]["config"], held[others[0]]["config"]
        fields = sorted(k for k in set(first) | set(other) if first.get(k) != other.get(k))
        shown = "; ".join(f"{k}={other.get(k)!r} vs {first.get(k)!r}" for k in fields[:3])
        raise SweepError(
            f"distributed: process(es) {', '.join(map(str, others))} of {count} run another sweep than process 0 "
            f"(config fields {fields}: {shown}); start every process with the same --config and overrides"
        )


def _barrier(client, name: str, what: str, timeout_s: float = 60.0) -> None:
    """``wait_at_barrier`` with a runtime error (a peer gone, the timeout) turned into :class:`PeerLost`."""
    try:
        client.wait_at_barrier(name, int(1000 * timeout_s))
    except Exception as e:  # noqa: BLE001 -- the runtime raises its own error types
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise PeerLost(f"distributed: stopped while waiting for {what} ({first})") from None


def _leave_last(client, count: int, timeout_s: float = 10.0) -> None:
    """Process 0 hosts the runtime's service: it waits (at most ``timeout_s``) until the other processes have
    disconnected, since XLA aborts a process that finds the service gone while it shuts down."""
    if count == 1 or not hasattr(client, "get_live_nodes"):
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            live = client.get_live_nodes(list(range(count)))
        except Exception:  # noqa: BLE001 -- the runtime is going away: nothing to wait for
            return
        if set(live) <= {0}:
            return
        time.sleep(0.05)


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
    emit = lambda m: print(prefix + m, file=sys.stderr, flush=True)  # noqa: E731
    try:  # before anything is written: every process runs this sweep
        with Watchdog(emit):
            check_same_sweep(client, cfg, index, count)
    except SweepError:
        if index == 0:
            _leave_last(client, count)
        raise
    wd = check_workdir_path(workdir)
    with Watchdog(emit):
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
    _barrier(client, f"{tag}/end", "every process to finish")
    if index == 0:
        _leave_last(client, count)
    say("done")
    return result


__all__ = ["EXIT_PEER_LOST", "Watchdog", "check_same_sweep", "report_failure", "run_processes"]
