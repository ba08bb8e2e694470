"""The training engine: a run as pure functions (:mod:`~specjax.engine.run`) and its compiled form
(:mod:`~specjax.engine.program`)."""

from specjax.engine.program import Program, flops_per_step, make_mesh, state_sharding, with_devices_per_run
from specjax.engine.run import (
    HPARAM_DEFAULTS,
    HPARAM_LABELS,
    SWEPT,
    ChunkStats,
    EvalRecord,
    Hparams,
    RunState,
    Spec,
    SweptField,
    eval_inputs,
    evaluate,
    init_run,
    loss_and_grad,
    loss_fn,
    seed_key,
    train_steps,
)

__all__ = [
    "HPARAM_DEFAULTS",
    "HPARAM_LABELS",
    "SWEPT",
    "ChunkStats",
    "EvalRecord",
    "Hparams",
    "Program",
    "RunState",
    "Spec",
    "SweptField",
    "eval_inputs",
    "evaluate",
    "flops_per_step",
    "init_run",
    "loss_and_grad",
    "loss_fn",
    "make_mesh",
    "seed_key",
    "state_sharding",
    "train_steps",
    "with_devices_per_run",
]
