"""The workdir of a sweep: its lock, its preparation (resume, refuse or start fresh), identity and provenance.

A workdir holds ``config.json`` (the resolved config, the sweep's identity hash, versions, git commit),
``checkpoints/``, ``results/``, ``summary.json``, ``metrics.jsonl`` and the figure. Re-running the same config
resumes; another config is refused unless ``overwrite``; a folder that is not a sweep's is always refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import ml_collections
import numpy as np

from specjax import config as config_lib
from specjax import store
from specjax.errors import StoreError, SweepError

#: What a sweep writes at the top of its workdir besides ``config.json``; ``--overwrite`` removes exactly these.
WORKDIR_DIRS = ("checkpoints", "results")
WORKDIR_FILES = ("summary.json", "metrics.jsonl", "success_rate.png", "success_rate.pdf")

#: Config fields that do not change a sweep's numbers: a workdir is resumed even if they differ.
RESUME_INDEPENDENT_FIELDS = ("checkpoint_every_s", "memory_budget_gb")


def resume_identity(plain_config: dict | None) -> dict | None:
    """The config without :data:`RESUME_INDEPENDENT_FIELDS`, for comparing a workdir's sweep with the asked one."""
    if plain_config is None:
        return None
    return {k: v for k, v in plain_config.items() if k not in RESUME_INDEPENDENT_FIELDS}


def sweep_id(cfg: ml_collections.ConfigDict) -> str:
    """The sweep's identity: SHA-256 (16 hex digits) of the resolved config fields that fix its numbers.

    Written into ``config.json``, every checkpoint and every results file, so a file from another sweep is never
    mixed into this one's results.
    """
    plain = resume_identity(config_lib.to_plain(cfg))
    return hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()[:16]


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).resolve().parent
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance() -> dict:
    """Package versions, git commit, platform and devices."""
    import flax
    import optax

    return {
        "versions": {
            "python": sys.version.split()[0],
            "jax": jax.__version__,
            "numpy": np.__version__,
            "optax": optax.__version__,
            "flax": flax.__version__,
            "ml_collections": getattr(ml_collections, "__version__", "unknown"),
        },
        "git_commit": _git_commit(),
        "platform": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
    }


class WorkdirLock:
    """Exclusive ``flock`` on a workdir (or on one lock file in it), held while a sweep uses it.

    The kernel releases it when the process dies, even by SIGKILL.
    """

    def __init__(self, path: Path, what: str = "workdir"):
        self.path = path
        self.what = what
        self.fd: int | None = None

    def __enter__(self) -> Path:
        try:
            import fcntl
        except ImportError:  # not POSIX: no locking
            return self.path
        flags = os.O_RDONLY if self.path.is_dir() else os.O_RDWR | os.O_CREAT
        self.fd = os.open(self.path, flags, 0o666)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            self.fd = None
            raise SweepError(
                f"{self.path}: {self.what} is in use by another running sweep; wait for it or stop it"
            ) from None
        return self.path

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the lock
            self.fd = None


def check_workdir_path(workdir: str | Path) -> Path:
    """Refuses a workdir path that exists as a non-directory or whose parts are files, before any compute.

    Raises:
      SweepError: ``workdir`` (or a folder it needs) exists and is not a directory.
      StoreError: ``workdir`` cannot be created or written (name too long, read-only, ...).
    """
    workdir = Path(workdir)
    _check_workdir_kind(workdir)
    store.check_writable(workdir)
    return workdir


def workdir_lock(workdir: str | Path) -> WorkdirLock:
    """Creates ``workdir`` if needed (proving it writable) and returns a context manager that locks it.

    Two sweeps never share a workdir at once: the second one stops with :class:`SweepError`.
    """
    return WorkdirLock(check_workdir_path(workdir))


def _clear(workdir: Path) -> None:
    """Removes what a sweep writes (folders, links to folders, files) or refuses before removing anything.

    Everything to remove is first renamed into one hidden folder of the workdir (renames within a folder either all
    succeed or are undone), then that folder is deleted; a link is removed, not followed.
    """
    names = [n for n in (*WORKDIR_DIRS, *WORKDIR_FILES) if os.path.lexists(workdir / n)]
    if not names:
        return
    trash = workdir / f".overwrite-{os.getpid()}"
    moved: list[str] = []
    try:
        trash.mkdir()
        for n in names:
            os.replace(workdir / n, trash / n)
            moved.append(n)
    except OSError as e:
        for n in reversed(moved):
            os.replace(trash / n, workdir / n)
        shutil.rmtree(trash, ignore_errors=True)
        raise StoreError(
            f"{workdir}: --overwrite cannot remove the previous sweep ({e.strerror}); nothing was changed"
        ) from None
    shutil.rmtree(trash, ignore_errors=True)


def _check_workdir_kind(workdir: Path) -> None:
    """The refusals of :func:`check_workdir_path` that need no write: the workdir or a folder it needs is a file."""
    if workdir.exists() and not workdir.is_dir():
        raise SweepError(f"{workdir}: workdir exists and is not a directory")
    for sub in WORKDIR_DIRS:
        if (workdir / sub).exists() and not (workdir / sub).is_dir():
            raise SweepError(f"{workdir / sub}: exists and is not a directory; move it away or use another --workdir")


def assess_workdir(cfg: ml_collections.ConfigDict, workdir: str | Path, overwrite: bool, check=None, grow=None) -> str:
    """What :func:`prepare_workdir` will do with ``workdir``, decided without writing anything (``--dry_run`` and
    :func:`prepare_workdir` share it, so a dry run refuses exactly what the real command refuses).

    Args:
      check: called with the workdir when it will be resumed (reads every checkpoint).
      grow: ``grow(workdir, held, wanted)`` -> whether the held sweep is grown to ``cfg`` (raises if it is growth that
        cannot be done); :func:`specjax.sweep.grow.check` decides without writing, ``grow.prepare`` also acts.

    Returns:
      ``'new'`` (missing or empty folder), ``'resume'`` (the same sweep), ``'grow'`` or ``'overwrite'``.

    Raises:
      SweepError, StoreError: as :func:`prepare_workdir`.
    """
    workdir = Path(workdir)
    _check_workdir_kind(workdir)
    cfg_path = workdir / "config.json"
    wanted = resume_identity(config_lib.to_plain(cfg))
    if not cfg_path.exists():
        foreign = sorted(p.name for p in workdir.iterdir() if not p.name.startswith(".")) if workdir.exists() else []
        if foreign:
            raise SweepError(
                f"{workdir}: workdir is not empty ({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}) "
                "and holds no sweep (no config.json); use a new or empty --workdir"
            )
        return "new"
    if overwrite:
        return "overwrite"
    try:
        held = store.load_json(cfg_path).get("config")
        held = resume_identity(held if isinstance(held, dict) else None)
    except StoreError as e:
        raise SweepError(f"{e}; use --overwrite to start fresh") from None
    if held == wanted:
        if check is not None:
            check(workdir)
        return "resume"
    if grow is not None and held is not None and grow(workdir, held, wanted):
        return "grow"
    diff = sorted(k for k in set(held or {}) | set(wanted) if (held or {}).get(k) != wanted.get(k))
    raise SweepError(
        f"{workdir}: holds a sweep with a different config (fields {diff}); use another --workdir or --overwrite"
    )


def prepare_workdir(
    cfg: ml_collections.ConfigDict, workdir: str | Path, overwrite: bool, check=None, grow=None, layout=None
) -> Path:
    """Makes the workdir ready for ``cfg``: resume, grow, refuse, or (``overwrite``) start fresh; writes
    ``config.json``.

    * A new or empty folder is used as is.
    * A folder holding ``config.json`` with the same sweep (up to :data:`RESUME_INDEPENDENT_FIELDS`) is resumed.
    * A folder holding another config that ``grow(workdir, held, wanted)`` accepts (both configs as plain dicts
      without :data:`RESUME_INDEPENDENT_FIELDS`; it returns whether it prepared the growth, see
      :mod:`specjax.sweep.grow`) is grown.
    * A folder holding another config, or an unreadable ``config.json``, is refused unless ``overwrite``, which
      removes exactly what a sweep writes (links included; all or nothing) and nothing else.
    * A non-empty folder without ``config.json`` is always refused: it is not a sweep's.

    The decision is :func:`assess_workdir`'s. ``check(workdir)``, if given, runs when resuming, before anything is
    written (the sweep reads every checkpoint in full there). Call it while holding :func:`workdir_lock`.

    ``layout`` (:func:`specjax.sweep.plan.layout_record`), if given, is written into ``config.json`` too.

    Raises:
      SweepError: the folder cannot be used; the message says why and what to do.
      StoreError: the folder cannot be written, or a file in it is damaged or foreign.
    """
    workdir = check_workdir_path(workdir)
    if assess_workdir(cfg, workdir, overwrite, check, grow) == "overwrite":
        _clear(workdir)
    extra = {} if layout is None else {"layout": layout}
    store.save_json(
        workdir / "config.json",
        {"config": config_lib.to_plain(cfg), "sweep_id": sweep_id(cfg), **provenance(), **extra},
    )
    for sub in WORKDIR_DIRS:
        (workdir / sub).mkdir(exist_ok=True)
    # A killed write's temporaries; each shard's folder is cleaned by that shard under its own lock (shards.py).
    for folder in (workdir, *(workdir / sub for sub in WORKDIR_DIRS), workdir / "checkpoints" / "grow"):
        store.remove_stale_temporaries(folder)
    return workdir
