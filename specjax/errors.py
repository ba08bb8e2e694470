"""The one error base of specjax: every refusal the library raises derives from :class:`SpecjaxError`.

The command-line programs catch :class:`SpecjaxError` (and nothing broader) and print its message as one line on
stderr with exit status 2; anything else is a bug and keeps its traceback. Each subclass also derives from
``ValueError``, so research code that caught ``ValueError`` keeps working.
"""

from __future__ import annotations


class SpecjaxError(ValueError):
    """Base of every error specjax raises on purpose; the message names the field, argument or path at fault."""


class ConfigError(SpecjaxError):
    """A configuration value is invalid; the message names the field (``config.<field>: ...``)."""


class StoreError(SpecjaxError):
    """A result, checkpoint or output file is missing, corrupted, foreign, or cannot be written; names the file."""


class SweepError(SpecjaxError):
    """A sweep cannot start: its workdir holds another sweep, is locked, or is not a sweep's folder."""


class FigureError(SpecjaxError):
    """A figure cannot be made from what was asked (unknown figure or scale, bad results)."""


class ArgumentError(SpecjaxError):
    """An argument of a library function is invalid (wrong type, out of range, not in the sweep); the message names
    the argument as the function's signature spells it and, where there are few, its valid values."""


class ConfigFlagError(SpecjaxError):
    """A bad ``--config`` file or override, found before absl parses the flags."""


class DistributedFlagError(SpecjaxError):
    """A multi-process flag or ``SPECJAX_*`` variable that cannot work, found before anything starts."""


class PeerLost(SweepError):
    """Another process of a multi-controller sweep stopped; re-running the same commands on every process resumes."""


class PeersMissing(SweepError):
    """Not every process of a multi-controller sweep connected within the start-up window. The runtime is left
    half-connected, so the command line exits at once (:attr:`exit_at_once`) instead of shutting it down."""

    exit_at_once = True


class FlowDivergenceError(SpecjaxError):
    """The integrated population flow is not a descent: its loss rose between records (the RK4 step is too large)."""
