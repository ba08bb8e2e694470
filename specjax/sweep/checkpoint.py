"""Stage 4 of a sweep, checkpoints: the format of a wave's checkpoint, and saving, loading and checking it.

One atomically replaced ``checkpoints/group<g>_wave<w>.npz`` per wave holds every block's
:class:`~specjax.engine.RunState`, the summed training statistics of the evaluation interval in progress, the
history so far, the chunk counter, and what ties it to its sweep: the sweep's identity hash
(:func:`specjax.sweep.workdir.sweep_id`), the wave's layout (block size and padded run range) and the names of the
recorded arrays (:func:`specjax.sweep.schema.recorded_names`: a checkpoint written by a version that records other
quantities is refused by name, instead of resuming into results that lack them). Teachers and data
are not stored: they are pure functions of the seed keys, rebuilt bit for bit on resume. A checkpoint of another
sweep or layout is refused with one line naming it (never resumed: a foreign file in a workdir means files were
moved or mixed, and silently retraining would hide that).
"""

from __future__ import annotations

import re
from pathlib import Path

import jax
import ml_collections
import numpy as np

from specjax import store
from specjax.errors import StoreError
from specjax.sweep.plan import GroupPlan, assign_shards
from specjax.sweep.record import History
from specjax.sweep.schema import recorded_names

CHECKPOINT_FORMAT = 4
CHECKPOINT_KEYS = (
    "format",
    "sweep_id",
    "recorded",
    "chunks_done",
    "done",
    "num_blocks",
    "block",
    "wave_start",
    "wave_stop",
)


def shard_dir(workdir: Path, shard: tuple[int, int]) -> Path:
    """``workdir/checkpoints/shard<i>of<N>``: checkpoints, results and completion mark of shard ``(i, N)``."""
    return workdir / "checkpoints" / f"shard{shard[0]}of{shard[1]}"


def shard_folders(workdir: Path) -> list[tuple[int, int]]:
    """``(index, count)`` of every shard folder ``checkpoints/shard<i>of<N>/``, sorted; any other entry (a stray
    ``shard0of2.bak``, the shards' lock files) is ignored."""
    folder = Path(workdir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = re.fullmatch(r"shard(\d+)of(\d+)", p.name)
        if m and p.is_dir() and int(m.group(1)) < int(m.group(2)):
            found.append((int(m.group(1)), int(m.group(2))))
    return sorted(found, key=lambda s: (s[1], s[0]))


def shard_result_paths(workdir: Path, cfg: ml_collections.ConfigDict, shard: tuple[int, int]) -> list[Path]:
    """``checkpoints/shard<i>of<N>/group<g>.npz`` for every group shard ``shard = (i, N)`` trains a share of: the
    files the merge needs from it (:func:`specjax.sweep.plan.assign_shards`)."""
    return [shard_dir(workdir, shard) / f"group{g}.npz" for g, _ in assign_shards(cfg, shard[1])[shard[0]]]


def grow_dir(workdir: Path) -> Path:
    """``workdir/checkpoints/grow``: a grown sweep's copy of the sweep it grew from (``from/``) and its checkpoints
    (:mod:`specjax.sweep.grow`)."""
    return workdir / "checkpoints" / "grow"


def checkpoint_path(workdir: Path, plan: GroupPlan, wave: int) -> Path:
    """``workdir/checkpoints/group<g>_wave<w>.npz``; a shard's in its :func:`shard_dir`; a grown sweep's
    ``checkpoints/grow/group<g>_<stage>_wave<w>.npz``."""
    if plan.stage is not None:
        return grow_dir(workdir) / f"group{plan.index}_{plan.stage}_wave{wave}.npz"
    folder = workdir / "checkpoints" if plan.shard is None else shard_dir(workdir, plan.shard)
    return folder / f"group{plan.index}_wave{wave}.npz"


def checkpoint_layout(plan: GroupPlan, runs: range) -> dict[str, int]:
    """What a wave's checkpoint must match besides the sweep: block size and the wave's (padded) run range, and
    for a shard its index and the shard count.

    The block is ``runs_per_block`` x devices, so a checkpoint written with another device count does not match.
    """
    layout = {"block": plan.block, "wave_start": runs.start, "wave_stop": runs.stop}
    if plan.shard is not None:
        layout |= {"shard_index": plan.shard[0], "num_shards": plan.shard[1]}
    return layout


def check_identity(path: Path, z: dict[str, np.ndarray], sweep: str, layout: dict[str, int]) -> None:
    """Refuses a checkpoint of another format, sweep or layout.

    Raises:
      StoreError: naming ``path`` and what differs.
    """
    if int(z["format"]) != CHECKPOINT_FORMAT:
        raise StoreError(
            f"{path}: checkpoint format {int(z['format'])} is not this version's ({CHECKPOINT_FORMAT}); "
            "use --overwrite to start fresh"
        )
    held_id = str(z["sweep_id"])
    if held_id != sweep:
        raise StoreError(
            f"{path}: checkpoint belongs to another sweep (identity {held_id}, this sweep is {sweep}); "
            "it was copied or left here by mistake: delete it to retrain its wave, or use --overwrite"
        )
    held = {k: int(z[k]) for k in layout if k in z}
    if any(k in layout and int(z[k]) != layout[k] for k in ("shard_index", "num_shards")) or (
        "num_shards" in z and "num_shards" not in layout
    ):
        raise StoreError(
            f"{path}: checkpoint was written by shard {int(z.get('shard_index', 0))} of {int(z.get('num_shards', 1))}, "
            f"not by shard {layout.get('shard_index', 0)} of {layout.get('num_shards', 1)}; resume with the same "
            "--num_shards, or use --overwrite"
        )
    if held != layout:
        raise StoreError(
            f"{path}: checkpoint was written for blocks of {held.get('block')} runs (runs_per_block x devices) "
            f"and runs {held.get('wave_start')}..{held.get('wave_stop')}, this sweep has blocks of {layout['block']} "
            f"and runs {layout['wave_start']}..{layout['wave_stop']}; resume with the same number of devices "
            "(config.num_devices) or use --overwrite"
        )
    held_names, names = [str(n) for n in np.atleast_1d(z["recorded"])], list(recorded_names())
    if held_names != names:
        missing, extra = sorted(set(names) - set(held_names)), sorted(set(held_names) - set(names))
        raise StoreError(
            f"{path}: checkpoint records {held_names}, this version records {names} (missing {missing}, extra "
            f"{extra}); it was written by another version: delete it to retrain its wave, or use --overwrite"
        )


def check_checkpoints(workdir: Path, plans: list[GroupPlan], sweep: str) -> None:
    """Reads every existing checkpoint of the sweep in full before any training, so a damaged or foreign one stops
    the sweep at once, with its name, instead of after hours of other groups' work.

    Raises:
      StoreError: a checkpoint is truncated or corrupted (zip CRC), lacks arrays, or belongs elsewhere.
    """
    for plan in plans:
        for wave, runs in enumerate(plan.waves):
            path = checkpoint_path(workdir, plan, wave)
            if path.exists() or path.is_symlink():
                try:
                    z = store.load_npz(path, required=CHECKPOINT_KEYS)
                    check_identity(path, z, sweep, checkpoint_layout(plan, runs))
                except StoreError as e:
                    raise StoreError(
                        f"{e}; delete that file to retrain its wave, or use --overwrite to start the sweep afresh"
                    ) from None


def checkpoint_progress(path: Path) -> tuple[int, bool]:
    """``(chunks_done, done)`` of a checkpoint, reading only those two arrays (``--dry_run``, after
    :func:`check_checkpoints` has read the file in full).

    Raises:
      StoreError: the file or the arrays cannot be read.
    """
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as z:
            return int(z["chunks_done"]), bool(z["done"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise StoreError(f"{path}: cannot read the checkpoint's progress ({type(e).__name__})") from None


def save_checkpoint(
    path: Path,
    blocks_state: list,
    history: History,
    chunks_done: int,
    pending_stats,
    done: bool,
    sweep: str,
    layout: dict[str, int],
) -> None:
    """Writes the full state of a wave after ``chunks_done`` chunks, atomically (see the module docstring)."""
    arrays = {
        "format": np.array(CHECKPOINT_FORMAT),
        "sweep_id": np.array(sweep),
        "recorded": np.array(recorded_names()),
        "chunks_done": np.array(chunks_done),
        "done": np.array(done),
        "num_blocks": np.array(len(blocks_state)),
        **{k: np.array(v) for k, v in layout.items()},
    }
    for b, state in enumerate(blocks_state):
        for i, leaf in enumerate(jax.tree.leaves(jax.device_get(state))):
            arrays[f"state/{b}/{i}"] = np.asarray(leaf)
    if pending_stats is not None:
        for i, leaf in enumerate(jax.tree.leaves(pending_stats)):
            arrays[f"stats/{i}"] = np.asarray(leaf)
    for k, v in history.stacked().items():
        arrays[f"history/{k}"] = v
    store.save_npz(path, arrays)


def load_checkpoint(path: Path, template_states: list, stats_template, sweep: str, layout: dict[str, int]):
    """Inverse of :func:`save_checkpoint`; checks the identity, the layout and every leaf's shape and dtype.

    Returns:
      ``(block_states, history, chunks_done, done, pending_stats)``.

    Raises:
      StoreError: unreadable file or a mismatch (names the file and the array).
    """
    z = store.load_npz(path, required=CHECKPOINT_KEYS)
    check_identity(path, z, sweep, layout)
    if int(z["num_blocks"]) != len(template_states):
        raise StoreError(f"{path}: checkpoint holds {int(z['num_blocks'])} blocks, expected {len(template_states)}")

    def restore(prefix, template):
        leaves, treedef = jax.tree.flatten(template)
        out = []
        for i, leaf in enumerate(leaves):
            key = f"{prefix}/{i}"
            if key not in z:
                raise StoreError(f"{path}: missing array {key!r}")
            arr = z[key]
            if arr.shape != leaf.shape or arr.dtype != leaf.dtype:
                raise StoreError(
                    f"{path}: array {key!r} has shape {arr.shape} {arr.dtype}, expected {leaf.shape} {leaf.dtype}"
                )
            out.append(arr)
        return jax.tree.unflatten(treedef, out)

    states = [restore(f"state/{b}", t) for b, t in enumerate(template_states)]
    stats = restore("stats", stats_template) if "stats/0" in z else None
    history = History({k[len("history/") :]: v for k, v in z.items() if k.startswith("history/")})
    return states, history, int(z["chunks_done"]), bool(z["done"]), stats
