"""Stage 1 of a sweep, the plan: shape groups, blocks of runs, waves under the memory budget, and each run's inputs.

The grid is ``over_realization`` (one *shape group*, one compiled program each) x the swept settings (the
Cartesian product of the :class:`~specjax.engine.Hparams` fields) x ``seeds``. Inside a group the
``settings x seeds`` runs are flattened (run ``r`` is setting ``r // seeds``, seed ``r % seeds``), padded to a
multiple of the *block* (``runs_per_block`` per device x devices; padding repeats run 0 and is dropped from the
results), and trained block by block; if the group's data exceed ``memory_budget_gb`` its blocks train in
successive *waves*. On a GPU/TPU (``accelerator``) a group's runs form one block by default (one vmap fills the
device) and the memory budget defaults to the device's memory.

A sharded sweep (array-job shards, or the processes of a multi-controller sweep) splits the runs with
:func:`assign_shards`: shard ``i`` trains one contiguous *share* of runs of some groups (:meth:`GroupPlan.for_share`).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import ml_collections
import numpy as np

from specjax import config as config_lib
from specjax.engine import Hparams, Spec, flops_per_step


@dataclasses.dataclass(frozen=True)
class GroupPlan:
    """How one shape group's runs are laid out.

    Attributes:
      index: position of the group in ``cfg.over_realization``.
      over_realization: student width multiple of the group.
      spec: the group's static settings (one compiled program).
      settings: the swept grid, one :class:`~specjax.engine.Hparams` of floats per setting.
      seeds: seeds per setting.
      block: runs per program call (``runs_per_block`` x devices).
      blocks_per_wave: blocks trained together (bounded by the memory budget).
      share: the runs this plan trains, ``None`` for all (a shard's share, see :func:`assign_shards`).
      shard: ``(shard_index, num_shards)`` of a sharded sweep, ``None`` otherwise (names its checkpoints).
      order: a grown sweep's runs to train (:mod:`specjax.sweep.grow`): the group's run indices, by position; the
        plan's blocks and waves then index positions, padding repeats the first. ``None`` otherwise.
      stage: a grown sweep's ``'continue'`` or ``'fresh'`` runs (names its checkpoints); ``None`` otherwise.
      devices_per_run: devices each run is split over (the mesh's ``'width'`` axis, see
        :func:`specjax.engine.program.make_mesh`); ``block`` is then a multiple of ``devices // devices_per_run``.
    """

    index: int
    over_realization: int
    spec: Spec
    settings: tuple[Hparams, ...]
    seeds: int
    block: int
    blocks_per_wave: int
    share: range | None = None
    shard: tuple[int, int] | None = None
    order: tuple[int, ...] | None = None
    stage: str | None = None
    devices_per_run: int = 1

    @property
    def runs(self) -> int:
        """Runs of the whole group (``settings x seeds``)."""
        return len(self.settings) * self.seeds

    @property
    def trained(self) -> range:
        """The runs this plan trains: the share, or the whole group (a grown sweep's plan: positions in ``order``)."""
        if self.order is not None:
            return range(len(self.order))
        return self.share if self.share is not None else range(self.runs)

    def run_at(self, r: int) -> int:
        """The group run trained at padded run index (or ``order`` position) ``r``."""
        if self.order is not None:
            return self.order[r] if r < len(self.order) else self.order[0]
        return r if r < self.runs else 0

    @property
    def padded_runs(self) -> int:
        """Runs trained, padding included (whole blocks)."""
        return math.ceil(len(self.trained) / self.block) * self.block

    @property
    def waves(self) -> list[range]:
        """Run-index ranges (into the padded run list) of each wave."""
        size = self.block * self.blocks_per_wave
        start, stop = self.trained.start, self.trained.start + self.padded_runs
        return [range(s, min(s + size, stop)) for s in range(start, stop, size)]

    def for_share(self, share: range, shard: tuple[int, int], whole_block_devices: int = 0) -> GroupPlan:
        """This group restricted to the runs ``share`` of shard ``shard = (index, count)``.

        Args:
          whole_block_devices: if > 0 (a GPU/TPU with ``runs_per_block = 0``), the share's runs form one block
            (a multiple of this many devices), up to the group's block size.
        """
        block = self.block
        if whole_block_devices:
            block = min(block, whole_block_devices * math.ceil(len(share) / whole_block_devices))
        waves = max(1, min(math.ceil(len(share) / block), self.block * self.blocks_per_wave // block))
        return dataclasses.replace(self, share=share, shard=shard, block=block, blocks_per_wave=waves)

    def blocks(self, runs: range) -> list[range]:
        """The block-sized run ranges of a wave."""
        return [range(s, min(s + self.block, runs.stop)) for s in range(runs.start, runs.stop, self.block)]


def bytes_per_run(spec: Spec) -> int:
    """Rough device memory of one run: data, parameters, optimiser state and evaluation temporaries."""
    item = 8 if spec.dtype == "float64" else 4
    ws = spec.student_widths
    params = sum(a * b + b for a, b in zip(ws[:-1], ws[1:], strict=True))
    teacher_hidden = sum(spec.teacher_widths)
    data = spec.n_train * (spec.d + spec.c) + spec.n_eval * (spec.d + spec.c + 2 * teacher_hidden)
    eval_tmp = spec.n_eval * (2 * sum(ws[1:-1]) + spec.c)
    opt = 3 if spec.optimizer == "adam" else 2
    return item * (data + eval_tmp + params * (2 + opt))


#: Runs per device of a block on CPU when ``runs_per_block`` is 0 (auto): 8-32 keep a run's weights in cache.
CPU_RUNS_PER_BLOCK = 8
#: Memory budget on CPU when ``memory_budget_gb`` is 0 (auto).
CPU_MEMORY_BUDGET_GB = 8.0
#: Share of an accelerator's memory (``memory_stats()['bytes_limit']``) the auto budget uses.
DEVICE_MEMORY_SHARE = 0.8


#: Most runs per device :func:`least_padding_runs_per_block` considers (more would push a run's weights out of cache).
CPU_MAX_RUNS_PER_BLOCK = 32


def least_padding_runs_per_block(runs: int, num_devices: int) -> int:
    """The ``runs_per_block`` that pads a group of ``runs`` runs on ``num_devices`` devices least: from
    ``min(8, ceil(runs / devices))`` to :data:`CPU_MAX_RUNS_PER_BLOCK` runs per device, the one with the fewest
    slots ``ceil(runs / (r x devices)) x r x devices``, the smallest of those (the quickstart's 24 runs on 2
    devices: 12, one block of 24 instead of two of 16 with 8 slots of padding).

    It is a suggestion (``--dry_run`` prints it), not the default: XLA's CPU kernels depend on the number of runs
    vmapped per device, so runs trained at another ``runs_per_block`` differ in the last bits (float32 quickstart,
    2 devices: 8 vs 16 runs per device changes parameters and losses, 8 vs 12 the gradient norm). With the default
    fixed at :data:`CPU_RUNS_PER_BLOCK`, a run's numbers do not depend on the grid, the devices, the shards or a
    growth; a sweep run with a chosen ``runs_per_block`` keeps those guarantees among sweeps with the same value.
    """
    devices = max(num_devices, 1)
    low = max(1, min(CPU_RUNS_PER_BLOCK, math.ceil(runs / devices)))
    slots = lambda r: math.ceil(runs / (r * devices)) * r * devices  # noqa: E731
    return min(range(low, CPU_MAX_RUNS_PER_BLOCK + 1), key=lambda r: (slots(r), r))


def is_accelerator(backend: str | None = None) -> bool:
    """Whether ``backend`` (default: JAX's default backend) is a GPU/TPU rather than the CPU."""
    return (backend or jax.default_backend()) != "cpu"


def memory_budget_bytes(cfg: ml_collections.ConfigDict, accelerator: bool, num_devices: int = 1, device=None) -> int:
    """The wave memory budget: ``memory_budget_gb`` if set, else (0 = auto) :data:`DEVICE_MEMORY_SHARE` of the
    devices' memory on an accelerator (``device.memory_stats()['bytes_limit']`` x ``num_devices``),
    :data:`CPU_MEMORY_BUDGET_GB` on CPU."""
    if cfg.memory_budget_gb:
        return int(cfg.memory_budget_gb * 2**30)
    if accelerator:
        device = device if device is not None else jax.local_devices()[0]
        stats = device.memory_stats() if hasattr(device, "memory_stats") else None
        if stats and stats.get("bytes_limit"):
            return int(DEVICE_MEMORY_SHARE * stats["bytes_limit"]) * num_devices
    return int(CPU_MEMORY_BUDGET_GB * 2**30)


def plan_groups(cfg: ml_collections.ConfigDict, num_devices: int, accelerator: bool | None = None) -> list[GroupPlan]:
    """Shape groups of a validated config, with block and wave sizes.

    Args:
      num_devices: devices of the mesh the blocks are sharded over.
      accelerator: plan for a GPU/TPU (``runs_per_block = 0``: a group's runs in one block, up to the memory
        budget); default: whether JAX's default backend is one. On CPU ``runs_per_block = 0`` means
        :data:`CPU_RUNS_PER_BLOCK` per device. It also picks the backward pass's layout
        (``Spec.cpu_gemm_layout``): the CPU GEMM layout only off an accelerator.
    """
    accelerator = is_accelerator() if accelerator is None else accelerator
    settings = tuple(config_lib.settings_grid(cfg))
    budget = memory_budget_bytes(cfg, accelerator, num_devices)
    plans = []
    for i, over in enumerate(cfg.over_realization):
        spec = dataclasses.replace(Spec.from_config(cfg, over), cpu_gemm_layout=not accelerator)
        runs = len(settings) * cfg.seeds
        budget_runs = int(budget // max(bytes_per_run(spec), 1))
        width = devices_per_run(cfg, spec, runs, num_devices, accelerator)
        run_slots = num_devices // width  # runs trained side by side (the mesh's 'runs' axis)
        if cfg.runs_per_block:
            block = cfg.runs_per_block * run_slots
        elif accelerator:  # the whole group in one block, or in equal blocks that each fit the budget
            per_block = math.ceil(runs / math.ceil(runs / max(budget_runs, 1)))
            block = run_slots * math.ceil(per_block / run_slots)
        elif width > 1:  # a few large runs: one per run slot
            block = run_slots
        else:
            block = CPU_RUNS_PER_BLOCK * num_devices
        blocks_per_wave = max(1, min(math.ceil(runs / block), budget_runs // block))
        plans.append(GroupPlan(i, int(over), spec, settings, cfg.seeds, block, blocks_per_wave, devices_per_run=width))
    return plans


def devices_per_run(cfg: ml_collections.ConfigDict, spec: Spec, runs: int, num_devices: int, accelerator: bool) -> int:
    """How many devices each run of a group is split over: ``cfg.devices_per_run``, or 1 when it is 0 (auto).

    Auto does not split: measured on the 2-core CPU (``python -m specjax.bench --nomain``, idle machine), one
    Fig. 8 paper-scale run (0.96 GFLOP per step, the largest the paper trains) ran at 107 run-steps/s on one
    single-threaded device and at 79-87 split over both (the ~13 collectives of a split step cost more than the
    second core saves); docs/performance.md. Splitting is there to be asked for where it pays (more cores per
    run, larger runs): measure with ``specjax.bench`` first.

    Raises:
      ConfigError: a ``cfg.devices_per_run`` that does not divide the devices.
    """
    if cfg.devices_per_run:
        if num_devices % cfg.devices_per_run:
            raise config_lib.ConfigError(
                f"config.devices_per_run: {cfg.devices_per_run} does not divide the {num_devices} devices in use "
                "(set config.num_devices, or 0 for automatic)"
            )
        return int(cfg.devices_per_run)
    return 1


def layout_record(plans: list[GroupPlan], num_devices: int) -> dict:
    """The layout a sweep trains in, as written to ``config.json``: devices, and per group its block, waves and
    devices per run (a run split over several devices gives the numbers of one device to rounding, not bit for
    bit, so results say which layout made them)."""
    return {
        "devices": int(num_devices),
        "platform": jax.default_backend(),
        "groups": [
            {
                "over_realization": p.over_realization,
                "block": p.block,
                "blocks_per_wave": p.blocks_per_wave,
                "devices_per_run": p.devices_per_run,
                "padded_runs": p.padded_runs,
            }
            for p in plans
        ],
    }


def assign_shards(cfg: ml_collections.ConfigDict, num_shards: int) -> list[list[tuple[int, range]]]:
    """Splits a sweep's runs into ``num_shards`` disjoint, cost-balanced shares; a pure function of the config.

    The groups' runs are laid end to end, each run weighted by its group's :func:`step_cost`, cut into units of
    ``runs_per_block`` runs (:data:`CPU_RUNS_PER_BLOCK` when 0; the last unit of a group may be shorter), and the
    line of units is cut into ``num_shards`` contiguous pieces of near-equal cost (each cut at the unit boundary
    nearest to its target). The result does not depend on any shard's devices, so shards on different machines
    agree on it.

    Returns:
      per shard, its ``(group index, runs)`` pieces (contiguous run ranges of a group); a shard may be empty when
      there are fewer units than shards.
    """
    unit = cfg.runs_per_block or CPU_RUNS_PER_BLOCK
    runs = len(config_lib.settings_grid(cfg)) * cfg.seeds
    units = []  # (group, start, stop, cost)
    for g, over in enumerate(cfg.over_realization):
        cost = step_cost(Spec.from_config(cfg, over))
        units += [(g, s, min(s + unit, runs), cost * (min(s + unit, runs) - s)) for s in range(0, runs, unit)]
    cumulative = np.cumsum([u[3] for u in units])
    total = float(cumulative[-1])
    cuts = [0]
    for k in range(1, num_shards):
        cut = int(np.argmin(np.abs(cumulative - total * k / num_shards))) + 1
        cuts.append(max(cut, cuts[-1]))
    cuts.append(len(units))
    shards = []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        pieces: dict[int, list[int]] = {}
        for g, s, e, _ in units[a:b]:
            lo_hi = pieces.setdefault(g, [s, e])
            lo_hi[1] = e
        shards.append([(g, range(lo, hi)) for g, (lo, hi) in pieces.items()])
    return shards


def eval_epochs(cfg: ml_collections.ConfigDict) -> np.ndarray:
    """Epochs at which the sweep evaluates: ``0, eval_every, ..., epochs``."""
    return np.arange(0, cfg.epochs + 1, cfg.eval_every)


def snapshot_epochs(cfg: ml_collections.ConfigDict) -> np.ndarray:
    """Epochs at which parameters (and, with ``record_corr='snapshots'``, correlation matrices) are kept."""
    return np.array(sorted({0, cfg.epochs, *cfg.snapshot_epochs}))


def run_inputs(cfg: ml_collections.ConfigDict, plan: GroupPlan, runs: range) -> tuple[Hparams, np.ndarray]:
    """Hparams and seed indices of padded run indices ``runs``, as host (NumPy) arrays.

    Run ``r`` is setting ``r // seeds`` and seed ``r % seeds``; padding (``r >= plan.runs``) repeats run 0 (a share's
    padding may also train real runs past its end; they are dropped like padding; a grown sweep's plan maps positions
    through ``plan.order``, :meth:`GroupPlan.run_at`). The run's key is
    ``seed_key(cfg.seed, seed_index)`` (:meth:`specjax.engine.Program.init_seeds` derives it on the device).

    Returns:
      ``(hp, seed_index)``: :class:`~specjax.engine.Hparams` of ``(len(runs),)`` arrays and ``(len(runs),)`` int32.
    """
    idx = np.array([plan.run_at(r) for r in runs])
    setting_idx, seed_idx = idx // plan.seeds, idx % plan.seeds
    dt = np.dtype(plan.spec.dtype)
    hp = Hparams(*(np.asarray([plan.settings[s][f] for s in setting_idx], dt) for f in range(len(Hparams._fields))))
    return hp, seed_idx.astype(np.int32)


#: Per-run-step overhead of the ETA's cost model, in FLOP-equivalents. Fitted to the paper's float64 two-layer
#: sweep on the 2-core CPU (2026-11-23, with per-epoch evaluation): 10.3 / 15.0 / 30.8 / 56.5 us per run-step at
#: 0.22 / 0.45 / 1.12 / 2.24 MFLOP (over-realization 1 / 2 / 5 / 10) is 5.2 us + 22.9 ps per FLOP, i.e. an overhead
#: worth ~225k FLOPs.
STEP_OVERHEAD_FLOPS = 225_000


def step_cost(spec: Spec) -> float:
    """Relative cost of one run-step (ETA, balancing): its FLOPs plus :data:`STEP_OVERHEAD_FLOPS`."""
    return float(flops_per_step(spec) + STEP_OVERHEAD_FLOPS)
