"""SIGINT and SIGTERM during a sweep: noted when they arrive, acted on at the next safe point.

A signal that interrupted XLA mid-compilation or mid-transfer could leave the runtime in a state where the
interpreter's exit crashes; instead the handler only records the signal, and the sweep checks it between chunks
(after the chunk's programs finished and, if due, its checkpoint was written), then raises :class:`Interrupted`.
The command line turns that into one line and exit status ``128 + signal`` (130 for Ctrl-C, 143 for SIGTERM).
"""

from __future__ import annotations

import contextlib
import signal
import threading


class Interrupted(KeyboardInterrupt):
    """The sweep stopped at a safe point after SIGINT or SIGTERM; re-running the same command resumes it."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class _Pending:
    signum: int | None = None
    error: Exception | None = None


_pending = _Pending()


def request_stop(error: Exception) -> None:
    """Asks the training loop to stop at its next safe point and raise ``error`` there (for example a peer process
    of a multi-controller sweep died: :class:`specjax.errors.PeerLost`)."""
    _pending.error = error


def check() -> None:
    """Raises :class:`Interrupted` if SIGINT or SIGTERM arrived since :func:`deferred` began, or the error of a
    :func:`request_stop`."""
    if _pending.signum is not None:
        signum, _pending.signum = _pending.signum, None
        raise Interrupted(signum)
    if _pending.error is not None:
        error, _pending.error = _pending.error, None
        raise error


def requested() -> bool:
    """Whether the loop should checkpoint and stop at its next safe point."""
    return _pending.signum is not None or _pending.error is not None


@contextlib.contextmanager
def deferred():
    """Within the block, SIGINT and SIGTERM are recorded for :func:`check` instead of interrupting at once.

    A second SIGINT while one is pending interrupts at once (the usual Ctrl-C twice). Only the main thread can
    install handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if _pending.signum is not None and signum == signal.SIGINT:
            raise Interrupted(signum)
        _pending.signum = signum

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    _pending.signum = None
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
