"""Results and checkpoints on disk: NumPy ``.npz`` arrays and JSON, written atomically, never pickled.

Every writer writes to a temporary file in the destination folder, flushes and ``fsync``\\ s it, then renames it
over the destination, so a reader (or a resumed sweep) sees either the old file or the new one, never a torn one.
Every reader raises :class:`StoreError` naming the file when it is missing, truncated or not what it should be.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

import numpy as np

from specjax.errors import StoreError

TMP_SUFFIX = ".tmp"


def _umask() -> int:
    """The process umask, read without changing it where ``/proc`` allows."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Writes ``path`` with ``write(file)`` (a binary file object) through a temporary file in its folder,
    ``fsync``, rename, then ``fsync`` of the folder.

    A process killed at any moment (even by SIGKILL) leaves either the old file or the new one, never a torn one;
    at worst a stray ``.<name>.*.tmp`` file, which :func:`remove_stale_temporaries` deletes. The new file gets the
    usual ``0o666 & ~umask`` permissions (``mkstemp`` alone would make it private): every file specjax writes
    (results, checkpoints, JSON, figures, reports) goes through here, so colleagues on a shared filesystem can read
    what the umask lets them.

    Raises:
      StoreError: the file cannot be written (the message names it and gives the system's reason).
    """
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except OSError as e:
        raise StoreError(f"{path}: cannot write ({e.strerror or e})") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _fsync_dir(directory: Path) -> None:
    """Makes a rename in ``directory`` durable (a no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temporaries(directory: str | Path) -> list[Path]:
    """Deletes the ``.<name>.*.tmp`` files a killed writer may have left in ``directory``; returns them."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    stale = [p for p in directory.glob(f".*{TMP_SUFFIX}") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def save_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Writes ``arrays`` to ``path`` atomically (uncompressed ``.npz``)."""
    bad_keys = [k for k in arrays if not isinstance(k, str) or not k]
    if bad_keys:
        raise StoreError(f"{path}: array names must be non-empty strings, got {bad_keys[:3]!r}")
    clean = {k: np.asarray(v) for k, v in arrays.items()}
    for k, v in clean.items():
        if v.dtype == object:
            raise StoreError(f"{path}: array {k!r} has dtype object; only numeric arrays are stored")
    atomic_write(Path(path), lambda f: np.savez(f, **clean))


# What a damaged archive raises from ``zipfile`` and ``np.load``: a damaged zip directory entry gives
# NotImplementedError (compression method, version needed, flag bits 5 and 6) or RuntimeError (the encrypted flag).
_UNREADABLE = (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, NotImplementedError, RuntimeError)


def _reason(e: BaseException, limit: int = 200) -> str:
    """The first line of ``e``'s message, cut to ``limit`` characters (a damaged name can hold a whole archive)."""
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_npz(path: str | Path, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Reads every array of an ``.npz`` file into memory (``allow_pickle=False``).

    Raises:
      StoreError: missing, truncated or corrupted file (including a damaged zip directory entry: unknown
        compression method, encrypted flag, version needed), object arrays, or a ``required`` key absent.
    """
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: file not found")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError(f"holds a single {type(loaded).__name__}, not an .npz archive")
        with loaded as z:
            out = {k: z[k] for k in z.files}  # reads every member in full, so zip CRC errors surface here
    except MemoryError as e:  # a damaged .npy header can claim an absurd shape
        raise StoreError(f"{path}: not a readable .npz file (an array too large for memory: {_reason(e)})") from None
    except _UNREADABLE as e:
        raise StoreError(f"{path}: not a readable .npz file ({type(e).__name__}: {_reason(e)})") from None
    missing = [k for k in required if k not in out]
    if missing:
        raise StoreError(f"{path}: missing array(s) {missing}")
    return out


def jsonable(obj):
    """``obj`` with NumPy arrays and scalars, tuples and non-string keys turned into plain JSON types.

    Dicts (keys become ``str``), lists and tuples (become lists) are converted recursively; anything else is returned
    as is. The one conversion behind :func:`save_json` and the figures' numbers.
    """
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    return obj


def _finite(obj):
    """Replaces NaN/inf by ``None`` so the file is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def save_json(path: str | Path, obj) -> None:
    """Writes ``obj`` as indented strict JSON (NaN/inf become ``null``; see :func:`jsonable`), atomically.

    Raises:
      StoreError: ``obj`` holds a value JSON cannot store, or the file cannot be written (names the file).
    """
    try:
        text = json.dumps(_finite(jsonable(obj)), indent=1, allow_nan=False)
    except TypeError as e:
        raise StoreError(f"{path}: cannot store as JSON ({e})") from None
    atomic_write(Path(path), lambda f: f.write(text.encode() + b"\n"))


def load_json(path: str | Path) -> dict:
    """Reads a JSON object. Raises :class:`StoreError` naming the file if it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: file not found")
    try:
        obj = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
        raise StoreError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise StoreError(f"{path}: expected a JSON object")
    return obj


def check_writable(directory: str | Path) -> Path:
    """Creates ``directory`` if needed and proves it writable with a probe file; raises ``StoreError`` if not."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe.", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise StoreError(f"{directory}: workdir cannot be written ({e.strerror or e})") from None
    return directory
