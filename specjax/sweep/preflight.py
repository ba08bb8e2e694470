"""The preflight of a sweep: what it will cost (runs, blocks, waves, memory, time) and whether it can run at all,
decided before anything is allocated; ``--dry_run`` prints it."""

from __future__ import annotations

import math
import os

import jax
import ml_collections

from specjax import config as config_lib
from specjax.errors import ConfigError
from specjax.sweep.plan import GroupPlan, bytes_per_run, eval_epochs, least_padding_runs_per_block, step_cost
from specjax.sweep.progress import format_duration
from specjax.sweep.schema import expected_shapes, recorded, spec_of

#: The step counter of a run is int32: a sweep longer than this many steps per run cannot be represented.
MAX_STEPS = 2**31 - 1
#: More runs than this in one sweep is refused (seed keys, padding and result arrays are host-side per run).
MAX_RUNS = 2**22
#: Throughput assumed for the estimate before anything is measured, in FLOP-equivalents of
#: :func:`specjax.sweep.plan.step_cost` per second per CPU device: the paper's float64 sweep on the 2-core CPU ran at
#: 22.9 ps per FLOP-equivalent with 2 devices (see :data:`specjax.sweep.plan.STEP_OVERHEAD_FLOPS`).
ASSUMED_COST_PER_S = 2.2e10
#: Seconds to compile one shape group's programs when the persistent cache is cold (measured: 10 s for 2 groups).
COMPILE_S_PER_GROUP = 5.0


def host_memory_bytes() -> int:
    """Physical memory of this host (``0`` if unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def device_memory_bytes(device=None) -> int:
    """Memory of one device: ``memory_stats()['bytes_limit']`` on accelerators, the host's memory on CPU."""
    device = device or jax.local_devices()[0]
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    return host_memory_bytes()


def history_bytes_per_run(cfg: ml_collections.ConfigDict, plan: GroupPlan) -> int:
    """Host memory of one run's recorded history (every array of :func:`specjax.sweep.schema.recorded`: each
    evaluation and snapshot), 8 bytes per number (float64 upper bound)."""
    history = set(recorded())
    shapes = expected_shapes(cfg, plan).items()
    return sum(8 * math.prod(shape[2:]) for name, (shape, _) in shapes if spec_of(name) in history)


def check(cfg: ml_collections.ConfigDict, plans: list[GroupPlan], num_devices: int) -> None:
    """Refuses a sweep that cannot run, in one line naming the fields to change.

    Raises:
      ConfigError: too many steps per run (int32 step counter), too many runs, a block larger than a device's
        memory, or results larger than the host's memory.
    """
    steps = cfg.epochs * cfg.steps_per_epoch
    if steps > MAX_STEPS:
        raise ConfigError(
            f"config.epochs: {cfg.epochs} epochs x {cfg.steps_per_epoch} steps_per_epoch = {steps} steps per run "
            f"exceeds the step counter's limit {MAX_STEPS}"
        )
    runs = sum(p.runs for p in plans)
    if runs > MAX_RUNS:
        raise ConfigError(
            f"config.seeds: {cfg.seeds} seeds x {len(plans[0].settings)} settings x {len(plans)} groups = {runs} runs "
            f"exceeds {MAX_RUNS}; lower seeds or the swept values"
        )
    device = device_memory_bytes()
    host = host_memory_bytes()
    fields = "seeds, d, widths (m, teacher_widths, over_realization), runs_per_block, n_train, n_eval"
    for p in plans:
        per_block = bytes_per_run(p.spec) * p.block // max(num_devices, 1)
        if device and per_block > device:
            raise ConfigError(
                f"config.runs_per_block: one block of the x{p.over_realization} group needs "
                f"{per_block / 2**30:.1f} GiB per device, more than the device's {device / 2**30:.1f} GiB; "
                f"change {fields}"
            )
    results = sum(history_bytes_per_run(cfg, p) * p.runs for p in plans)
    if host and results > host:
        raise ConfigError(
            f"config.seeds: the sweep's recorded results need {results / 2**30:.1f} GiB, more than this host's "
            f"{host / 2**30:.1f} GiB; change {fields}, epochs/eval_every or record_corr"
        )


def train_seconds(cfg: ml_collections.ConfigDict, plan: GroupPlan, num_devices: int, fraction: float = 1.0) -> float:
    """Estimated seconds to train ``fraction`` of a plan's padded runs' steps and evaluations (no compilation), by the
    CPU cost model :data:`ASSUMED_COST_PER_S`."""
    ws = plan.spec.student_widths
    eval_flops = 2 * cfg.n_eval * sum(a * b for a, b in zip(ws[:-1], ws[1:], strict=True)) * len(eval_epochs(cfg))
    work = plan.padded_runs * (config_lib.total_steps(cfg) * step_cost(plan.spec) + eval_flops)
    return fraction * work / (ASSUMED_COST_PER_S * max(num_devices, 1))


def padding(plan: GroupPlan) -> str:
    """``'32 slots, 8 padding = 25 %'``: the runs slots a plan trains and how many of them are padding."""
    pad = plan.padded_runs - len(plan.trained)
    return f"{plan.padded_runs} slots, {pad} padding = {100 * pad / max(plan.padded_runs, 1):.0f} %"


def describe_group(cfg: ml_collections.ConfigDict, p: GroupPlan, num_devices: int) -> str:
    """One group (or share) of the plan: runs, blocks, padding, waves, memory per block and wave, estimated time."""
    block_mib = bytes_per_run(p.spec) * p.block / 2**20
    seconds = train_seconds(cfg, p, num_devices) + COMPILE_S_PER_GROUP
    return (
        f"x{p.over_realization}: {len(p.trained)} runs in {p.padded_runs // p.block} block(s) of {p.block} "
        f"({padding(p)}), {len(p.waves)} wave(s); {block_mib:,.1f} MiB per block, "
        f"{block_mib * p.blocks_per_wave:,.1f} MiB per wave; ~{format_duration(seconds)}"
    )


def describe(cfg: ml_collections.ConfigDict, plans: list[GroupPlan], num_devices: int) -> str:
    """The plan as text: per group its runs, blocks, padding, waves, memory and estimated time; then totals."""
    lines = [
        f"sweep: {len(plans)} group(s) x {len(plans[0].settings)} setting(s) x {cfg.seeds} seed(s) "
        f"on {num_devices} device(s)"
    ]
    lines += [f"  {describe_group(cfg, p, num_devices)}" for p in plans]
    slots = sum(p.padded_runs for p in plans)
    pad = slots - sum(len(p.trained) for p in plans)
    if pad and not cfg.runs_per_block and plans[0].spec.cpu_gemm_layout:
        best = least_padding_runs_per_block(plans[0].runs, num_devices)
        if best != plans[0].block // max(num_devices, 1):
            trial = [p.runs for p in plans]
            left = sum(math.ceil(r / (best * num_devices)) * best * num_devices - r for r in trial)
            lines.append(
                f"  padding: {pad} of {slots} slots ({100 * pad / slots:.0f} %); --config.runs_per_block={best} pads "
                f"{left} (numbers then differ from the default blocks' in the last bits)"
            )
    total_s = sum(train_seconds(cfg, p, num_devices) + COMPILE_S_PER_GROUP for p in plans)
    results = sum(history_bytes_per_run(cfg, p) * p.runs for p in plans)
    lines.append(
        f"total: {sum(p.runs for p in plans)} runs x {config_lib.total_steps(cfg)} steps, {len(eval_epochs(cfg))} "
        f"evaluations; results {results / 2**20:,.1f} MiB; estimated {format_duration(total_s)} "
        "(CPU cost model, cold compilation cache; the progress lines' ETA uses measured rates)"
    )
    return "\n".join(lines)
