"""No recompilation inside a sweep, and the automatic split of a grid into waves under a memory budget."""

import re

import jax
import pytest
from helpers import assert_groups_close, tiny_config

from specjax import sweep
from specjax.engine import make_mesh

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"  # an XLA compilation
CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"  # an executable loaded from the persistent cache (conftest.py)
LOWERING_EVENT = "/jax/core/compile/jaxpr_to_mlir_module_duration"  # a program lowered (new to this process)


class CompileCounter:
    """Counts executables built while active: XLA compilations plus persistent-cache loads (``jax.monitoring``).

    Either one means JAX did not find the program in its in-memory cache, i.e. a (re)compilation of the sweep.
    """

    def __init__(self):
        self.count = 0

    def on_duration(self, event: str, duration: float, **kwargs) -> None:
        if event == COMPILE_EVENT:
            self.count += 1

    def on_event(self, event: str, **kwargs) -> None:
        if event == CACHE_HIT_EVENT:
            self.count += 1

    def __enter__(self):
        jax.monitoring.register_event_duration_secs_listener(self.on_duration)
        jax.monitoring.register_event_listener(self.on_event)
        return self

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self.on_duration)
        jax.monitoring.unregister_event_listener(self.on_event)


def _multi_wave_config(**overrides):
    # d=5: shapes no other test compiles. 6 runs per group in blocks of 2 on one device; a budget below one
    # block's memory gives one block per wave, 3 waves per group; 2 chunks per evaluation, 2 evaluations.
    return tiny_config(d=5, lr=(0.1,), runs_per_block=2, chunk_steps=25, epochs=2, memory_budget_gb=1e-6, **overrides)


def test_waves_split_when_the_grid_exceeds_the_memory_budget():
    cfg = _multi_wave_config()
    plans = sweep.plan_groups(cfg, num_devices=1)
    per_run = sweep.bytes_per_run(plans[0].spec)
    assert per_run > cfg.memory_budget_gb * 2**30
    assert [len(p.waves) for p in plans] == [3, 3]
    roomy = _multi_wave_config()
    roomy.memory_budget_gb = 8.0
    assert [len(p.waves) for p in sweep.plan_groups(roomy, num_devices=1)] == [1, 1]


def test_no_recompilation_after_the_first_chunk_of_each_shape_group():
    cfg = _multi_wave_config()
    counts: list[tuple[int, int, int]] = []  # (group, wave, compilations so far) at every evaluation line
    with CompileCounter() as counter:

        def progress(line: str) -> None:
            m = re.search(r"group (\d+)/\d+, wave (\d+)\]", line)
            if m:
                counts.append((int(m.group(1)), int(m.group(2)), counter.count))

        split = sweep.run_sweep(cfg, None, progress=progress, mesh=make_mesh(1))
    groups = sorted({g for g, _, _ in counts})
    assert groups == [1, 2]
    for g in groups:
        seen = [(w, c) for gg, w, c in counts if gg == g]
        assert len({w for w, _ in seen}) == 3  # every wave reported
        first = seen[0][1]
        assert all(c == first for _, c in seen), f"group {g} recompiled after its first chunk: {seen}"
    assert counts[0][2] > 0  # the first chunk of a new shape group does compile (the counter works)

    cfg.memory_budget_gb = 8.0  # one wave per group: the same numbers
    whole = sweep.run_sweep(cfg, None, progress=None, mesh=make_mesh(1))
    for a, b in zip(split.arrays, whole.arrays, strict=True):
        assert_groups_close(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.slow
def test_a_shape_group_compiles_three_programs():
    """init (keys derived inside), train and evaluate: nothing else is compiled per group (14 programs for two groups
    before the keys and inputs moved into the init program; 6 now)."""
    cfg = tiny_config(d=7, lr=(0.1,), epochs=1, chunk_steps=25, runs_per_block=2, snapshot_epochs=())
    lowered = []  # one event per program lowered for compilation, whether XLA then compiles it or loads it from cache

    def on_duration(event: str, duration: float, **kwargs) -> None:
        if event == LOWERING_EVENT:
            lowered.append(event)

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    try:
        sweep.run_sweep(cfg, None, progress=None, mesh=make_mesh(1))
    finally:
        jax.monitoring.unregister_event_duration_listener(on_duration)
    assert len(lowered) == 3 * len(cfg.over_realization)
