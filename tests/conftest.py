"""Test set-up: float64 on, implicit rank promotion an error, 4 fake CPU devices, and a compilation cache.

All must happen before JAX creates its backend or any array, hence at import time of this file. With
``jax_numpy_rank_promotion="raise"``, an operation between arrays of different ranks (``(n,) + (n, 1)``) fails
instead of silently broadcasting: library code broadcasts explicitly. The persistent compilation cache lives in
pytest's cache folder, one per worker process: tests that build the same program (same spec, same shapes) compile
it once per session instead of once per test, and a second session on the same checkout starts warm.
"""

import os

_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:  # kept if the caller chose a count
    os.environ["XLA_FLAGS"] = f"{_flags} --xla_force_host_platform_device_count=4".strip()
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
from helpers import ROOT, WORKER  # noqa: E402  (after the set-up above: helpers imports no JAX arrays)

jax.config.update("jax_compilation_cache_dir", str(ROOT / ".pytest_cache" / "jax" / WORKER))  # one per worker
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


#: The longest test files of the default suite (cold, 2 cores, 2026-12-03), collected first: ``--dist loadfile`` hands
#: files to the two workers in collection order, and a long file started last kept one worker busy for minutes
#: after the other had finished.
LONGEST_FIRST = ("test_cli.py", "test_figures.py", "test_scaleout.py", "test_named.py", "test_train.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the other files keep their order
