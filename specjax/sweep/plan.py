"""Stage 1 of a sweep, the plan: shape groups, blocks of runs, waves under the memory budget, and each run's inputs.

The grid is ``over_realization`` (one *shape group*, one compiled program each) x the swept settings (the
Cartesian product of the :class:`~specjax.engine.Hparams` fields) x ``seeds``. Inside a group the
``settings x seeds`` runs are flattened (run ``r`` is setting ``r // seeds``, seed ``r % seeds``), padded to a
multiple of the *block* (``runs_per_block`` per device x devices; padding repeats run 0 and is dropped from the
results), and trained block by block; if the group's data exceed ``memory_budget_gb`` its blocks train in
successive *waves*.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from specjax import config as config_lib
from specjax.engine import Hparams, Spec, flops_per_step, seed_key


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
    """

    index: int
    over_realization: int
    spec: Spec
    settings: tuple[Hparams, ...]
    seeds: int
    block: int
    blocks_per_wave: int

    @property
    def runs(self) -> int:
        return len(self.settings) * self.seeds

    @property
    def padded_runs(self) -> int:
        return math.ceil(self.runs / self.block) * self.block

    @property
    def waves(self) -> list[range]:
        """Run-index ranges (into the padded run list) of each wave."""
        size = self.block * self.blocks_per_wave
        return [range(s, min(s + size, self.padded_runs)) for s in range(0, self.padded_runs, size)]

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


def plan_groups(cfg: ml_collections.ConfigDict, num_devices: int) -> list[GroupPlan]:
    """Shape groups of a validated config, with block and wave sizes."""
    settings = tuple(config_lib.settings_grid(cfg))
    plans = []
    for i, over in enumerate(cfg.over_realization):
        spec = Spec.from_config(cfg, over)
        block = cfg.runs_per_block * num_devices
        runs = len(settings) * cfg.seeds
        budget_runs = int(cfg.memory_budget_gb * 2**30 // max(bytes_per_run(spec), 1))
        blocks_per_wave = max(1, min(math.ceil(runs / block), budget_runs // block))
        plans.append(GroupPlan(i, int(over), spec, settings, cfg.seeds, block, blocks_per_wave))
    return plans


def eval_epochs(cfg: ml_collections.ConfigDict) -> np.ndarray:
    """Epochs at which the sweep evaluates: ``0, eval_every, ..., epochs``."""
    return np.arange(0, cfg.epochs + 1, cfg.eval_every)


def snapshot_epochs(cfg: ml_collections.ConfigDict) -> np.ndarray:
    """Epochs at which parameters (and, with ``record_corr='snapshots'``, correlation matrices) are kept."""
    return np.array(sorted({0, cfg.epochs, *cfg.snapshot_epochs}))


def run_inputs(cfg: ml_collections.ConfigDict, plan: GroupPlan, runs: range) -> tuple[Hparams, jax.Array]:
    """Hparams and seed keys of padded run indices ``runs``.

    Run ``r`` is setting ``r // seeds`` and seed ``r % seeds``; padding (``r >= plan.runs``) repeats run 0.

    Returns:
      ``(hp, keys)``: :class:`~specjax.engine.Hparams` of ``(len(runs),)`` arrays and ``(len(runs),)`` keys.
    """
    idx = np.array([r if r < plan.runs else 0 for r in runs])
    setting_idx, seed_idx = idx // plan.seeds, idx % plan.seeds
    dt = plan.spec.float_dtype
    hp = Hparams(*(jnp.asarray([plan.settings[s][f] for s in setting_idx], dt) for f in range(len(Hparams._fields))))
    keys = jax.vmap(seed_key, (None, 0))(cfg.seed, jnp.asarray(seed_idx, jnp.int32))
    return hp, keys


#: Per-run-step overhead of the ETA's cost model, in FLOP-equivalents. Fitted to the paper's float64 two-layer
#: sweep on the 2-core CPU (2026-11-23, with per-epoch evaluation): 10.3 / 15.0 / 30.8 / 56.5 us per run-step at
#: 0.22 / 0.45 / 1.12 / 2.24 MFLOP (over-realization 1 / 2 / 5 / 10) is 5.2 us + 22.9 ps per FLOP, i.e. an overhead
#: worth ~225k FLOPs.
STEP_OVERHEAD_FLOPS = 225_000


def step_cost(spec: Spec) -> float:
    """Relative cost of one run-step (ETA, balancing): its FLOPs plus :data:`STEP_OVERHEAD_FLOPS`."""
    return float(flops_per_step(spec) + STEP_OVERHEAD_FLOPS)
