"""Fig. 11 (focus shifting): each student's correlation to each teacher node over training, three seeds.

The paper gives m=5 teacher nodes and a polarized teacher (p > 0); its other settings are not given. ``paper`` uses
the two-layer setting (:mod:`specjax.figures.configs.common`) with m=5, polarity 1, 1x over-realization (5 students,
each of which must end on its own teacher) and 3 seeds, 10^5 steps, and records the full teacher x student
correlation matrix every 100 steps (``record_corr='all'``; an "epoch" here is 100 steps, because focus shifts happen
within the reference's first few 1000-step epochs). ``small``: 10^4 steps recorded every 50; ``test``: seconds.

Sweep alone: ``python -m specjax.sweep --config=specjax/figures/configs/fig11.py:small --workdir=DIR``; sweep and
plot: ``python -m specjax.figures --figure=11 --scale=small --workdir=DIR``.
"""

from specjax.figures.configs.common import SCALES, check_scale, two_layer_config

__all__ = ["SCALES", "get_config"]

#: (epochs, steps per epoch) per scale: an evaluation every ``steps per epoch`` steps.
EVALUATIONS = {"paper": (1000, 100), "small": (200, 50), "test": (60, 25)}


def get_config(scale: str = "paper"):
    check_scale(scale)
    epochs, steps_per_epoch = EVALUATIONS[scale]
    cfg = two_layer_config(scale, m=5, over_realization=(1,), teacher_polarity=(1.0,), seeds=3, record_corr="all")
    cfg.epochs, cfg.steps_per_epoch = epochs, steps_per_epoch
    cfg.num_devices, cfg.runs_per_block = 1, 3  # three runs in one block on one device (no padding)
    return cfg
