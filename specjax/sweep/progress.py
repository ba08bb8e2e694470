"""Progress of a sweep: one line per evaluation interval with the share done, run-steps/s, the ETA and how the
runs are doing (median eval loss, mean success rate, diverged count)."""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[[str], None]


def format_duration(seconds: float) -> str:
    """``hh:mm:ss``, with whole days in front past 24 hours (``3d 04:06:47``)."""
    seconds = max(0, round(seconds))
    days, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return f"{days}d {h:02d}:{m:02d}:{s:02d}" if days else f"{h:02d}:{m:02d}:{s:02d}"


class Progress:
    """Counts work and formats progress lines.

    Work is counted in run-steps weighted by :func:`specjax.sweep.plan.step_cost` (a wide group's step costs more
    than a narrow one's), so the ETA stays right across shape groups. Chunks that include compilation are not
    timed.
    """

    def __init__(self, total_work: float, emit: ProgressFn | None, prefix: str = ""):
        self.total = total_work
        self.done = 0.0
        self.emit = emit
        self.prefix = prefix
        self.work_measured = 0.0
        self.time_measured = 0.0
        self.group_steps = 0
        self.group_time = 0.0

    def start_group(self) -> None:
        self.group_steps, self.group_time = 0, 0.0

    def skip(self, work: float) -> None:
        self.done += work

    def advance(self, run_steps: int, cost: float, seconds: float, timed: bool) -> None:
        self.done += run_steps * cost
        if timed:
            self.work_measured += run_steps * cost
            self.time_measured += seconds
            self.group_steps += run_steps
            self.group_time += seconds

    @property
    def rate(self) -> float:
        """Run-steps per second of the current group (0 before a timed chunk)."""
        return self.group_steps / self.group_time if self.group_time > 0 else 0.0

    def eta_seconds(self) -> float | None:
        work_rate = self.work_measured / self.time_measured if self.time_measured > 0 else 0.0
        return None if work_rate <= 0 else (self.total - self.done) / work_rate

    def say(self, text: str) -> None:
        if self.emit is not None:
            self.emit(f"{self.prefix}{text}")

    def line(self, where: str, status: str = "") -> None:
        pct = 100.0 * self.done / max(self.total, 1)
        eta = self.eta_seconds()
        rate_s = f"{self.rate:,.0f} run-steps/s" if self.rate > 0 else "compiling"
        eta_s = "?" if eta is None else format_duration(eta)
        self.say(f"{where} | {pct:5.1f}% | {rate_s} | ETA {eta_s}{' | ' + status if status else ''}")
