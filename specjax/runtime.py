"""The multi-process runtime's start: ``jax.distributed.initialize`` with a bounded start-up and survivors kept alive.

Every command line calls :func:`initialize` (through :func:`specjax.cli.maybe_initialize_distributed`) before
anything touches a JAX backend; a multi-controller sweep (:mod:`specjax.sweep.distribute`) then runs over the
processes. Start-up is bounded: the processes must all connect within :data:`STARTUP_FACTOR` heartbeat timeouts,
else each stops with one line (:class:`~specjax.errors.PeersMissing`) instead of XLA's abort.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading

from specjax.errors import PeersMissing, SweepError

#: Heartbeat timeout (seconds) of :func:`initialize` unless given: a dead process is noticed within about this.
HEARTBEAT_TIMEOUT_S = 30
#: The start-up window is this many heartbeat timeouts: every process must connect within it.
STARTUP_FACTOR = 10


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
