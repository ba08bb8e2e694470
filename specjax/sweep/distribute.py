"""Multi-controller sweeps: N processes (``jax.distributed``) train one sweep into one workdir on a shared filesystem.

Runs are independent, so the N processes are the N shards of :mod:`specjax.sweep.shards`: process ``i`` trains
shard ``i`` on its own local devices (no program spans processes; nothing is communicated inside the training
loop) under its own lock and checkpoints. The distributed runtime's key-value store only orders four moments:
every process compares its sweep identity with the others' before anything is written (:func:`check_same_sweep`),
process 0 prepares the workdir (``config.json``) before the others start, every process reports its shard done, and
process 0 merges (``results/``, ``summary.json``, the figure) while the others wait. Killing every process and
re-running the same commands resumes.

Start-up is bounded: the processes must all connect within :data:`STARTUP_FACTOR` heartbeat timeouts, else each
stops with one line (:class:`PeersMissing`) instead of XLA's abort.

A process that dies is noticed by the others within the heartbeat timeout (:func:`initialize`; JAX's
``jax_enable_recoverability`` keeps the survivors alive instead of aborting them): a watchdog thread sees it missing
from the live processes, the survivors checkpoint at the next chunk and stop with one line naming it
(:class:`PeerLost`), at the latest :data:`STOP_GRACE_S` seconds later.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from specjax.errors import SweepError
from specjax.sweep import signals

#: Seconds a survivor may take to reach a safe point after a peer died before it exits anyway.
STOP_GRACE_S = 120.0
#: Heartbeat timeout (seconds) of :func:`initialize` unless given: a dead process is noticed within about this.
HEARTBEAT_TIMEOUT_S = 30
#: The start-up window is this many heartbeat timeouts: every process must connect within it.
STARTUP_FACTOR = 10
#: Exit status of a survivor that could not reach a safe point within :data:`STOP_GRACE_S`.
EXIT_PEER_LOST = 3
#: Key-value directory where a process that stops with an error leaves its message for the others.
FAILED_KEYS = "specjax/failed"


class PeerLost(SweepError):
    """Another process of a multi-controller sweep stopped; re-running the same commands on every process resumes."""


class PeersMissing(SweepError):
    """Not every process of a multi-controller sweep connected within the start-up window. The runtime is left
    half-connected, so the command line exits at once (:attr:`exit_at_once`) instead of shutting it down."""

    exit_at_once = True


def _start_runtime(explicit: dict, timeout_s: int, window_s: float) -> None:
    """``jax.distributed.initialize`` in a helper thread, waited for at most ``window_s`` seconds.

    XLA's own start-up timeout aborts the whole process (exit 134, a C++ stack) when a peer never arrives; it is set
    beyond ``window_s`` so that this wait ends first, with :class:`PeersMissing`. A runtime error (a bad address, a
    cluster that auto-detection cannot read) becomes :class:`SweepError`. The runtime's notice about recoverable
    tasks (which :func:`initialize` enables on purpose) is dropped from stderr; its other lines are kept.

    Raises:
      PeersMissing: the processes did not all connect within ``window_s``.
      SweepError: the runtime refused to start (its first line).
    """
    import jax

    outcome: dict = {}

    def start() -> None:
        try:
            jax.distributed.initialize(
                **explicit,
                initialization_timeout=int(window_s) + 60,
                heartbeat_timeout_seconds=timeout_s,
                shutdown_timeout_seconds=timeout_s,
            )
        except Exception as e:  # noqa: BLE001 -- reported in one line by the waiting thread
            outcome["error"] = e

    thread = threading.Thread(target=start, name="specjax-distributed-start", daemon=True)
    interrupted = False
    with _runtime_stderr_filtered():
        thread.start()
        try:
            thread.join(window_s)
        except KeyboardInterrupt:
            interrupted = True
    if thread.is_alive():
        count = explicit.get("num_processes")
        who = f"the {count} processes" if count else "the processes"
        where = explicit.get("coordinator_address") or "the coordinator"
        if interrupted:
            raise PeersMissing(f"distributed: interrupted while waiting for {who} to connect to {where}")
        raise PeersMissing(
            f"distributed: {who} did not all connect to {where} within {window_s:g} s ({STARTUP_FACTOR} x "
            "--distributed_timeout_s); "
            "start every process with the same --coordinator_address and --num_processes, one per --process_id"
        )
    if "error" in outcome:
        e = outcome["error"]
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        hint = ""
        if "coordinator_address" not in explicit:  # --distributed=auto, and JAX recognised no cluster
            hint = "; --distributed=auto needs SLURM, Open MPI or a TPU slice, else give --coordinator_address"
        raise SweepError(f"distributed: the runtime did not start ({type(e).__name__}: {first}){hint}") from None


@contextlib.contextmanager
def _runtime_stderr_filtered():
    """Captures file descriptor 2 while the runtime starts, then writes back every line but its notice about the
    experimental recoverable-task feature."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            log.seek(0)
            lines = log.read().decode(errors="replace").splitlines(keepends=True)
            kept = [line for line in lines if "recoverable task feature" not in line]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


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
      auto: call ``jax.distributed.initialize()`` without them, so SLURM, Open MPI or a TPU slice is detected (any
        of them given is used as is).
      timeout_s: heartbeat timeout: how long a silent process may go unnoticed; also bounds start-up
        (:data:`STARTUP_FACTOR` x, for processes started a little apart) and shutdown.

    Returns:
      whether ``jax.distributed`` was initialised (``False``: no address and not ``auto``).

    Raises:
      PeersMissing: a process did not connect within the start-up window (one line instead of XLA's abort).
      SweepError: missing or inconsistent cluster arguments, or the runtime did not start.
    """
    if not coordinator_address and not auto:
        return False
    import jax

    try:  # survivors of a dead process keep running (and stop cleanly) instead of being aborted by the runtime
        jax.config.update("jax_enable_recoverability", True)
    except AttributeError:  # older JAX: the runtime aborts them itself after the heartbeat timeout
        pass
    if coordinator_address and (num_processes is None or process_id is None):
        raise SweepError("distributed: --coordinator_address needs --num_processes and --process_id too")
    given = dict(coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id)
    explicit = {k: v for k, v in given.items() if v is not None}
    _start_runtime(explicit, timeout_s, STARTUP_FACTOR * timeout_s)
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


__all__ = [
    "EXIT_PEER_LOST",
    "PeerLost",
    "PeersMissing",
    "Watchdog",
    "check_same_sweep",
    "initialize",
    "report_failure",
    "run_processes",
]
