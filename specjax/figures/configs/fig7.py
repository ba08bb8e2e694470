"""Fig. 7 (L-shape): best teacher correlation vs fan-out norm of every student.

``paper``: the two-layer setting (:mod:`specjax.figures.configs.common`) restricted to Fig. 7's panels: m=10,
over-realization 1, 2, 5, 10, teacher polarity 0, 1, 2, 32 seeds. ``small``: the same layout, 8 seeds (a few minutes
on 2 CPU cores); ``test``: m=5, 1x and 5x, polarity 0 and 1, 4 seeds (seconds).

Sweep alone: ``python -m specjax.sweep --config=specjax/figures/configs/fig7.py:small --workdir=DIR``; sweep and
plot: ``python -m specjax.figures --figure=7 --scale=small --workdir=DIR``.
"""

from specjax.figures.configs.common import SCALES, two_layer_config

__all__ = ["SCALES", "get_config"]


def get_config(scale: str = "paper"):
    if scale == "test":
        return two_layer_config(
            scale, m=5, over_realization=(1, 5), teacher_polarity=(0.0, 1.0), seeds=4, runs_per_block=2
        )
    cfg = two_layer_config(scale, m=10, over_realization=(1, 2, 5, 10), teacher_polarity=(0.0, 1.0, 2.0))
    cfg.seeds = 32 if scale == "paper" else 8
    if scale == "small":
        cfg.runs_per_block = 4
    return cfg
