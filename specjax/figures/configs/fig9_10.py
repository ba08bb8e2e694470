"""Figs. 9 and 10 (success rate per teacher node; eval MSE curves): the paper's two-layer m=20 sweep.

``paper``: the two-layer setting (:mod:`specjax.figures.configs.common`) at m=20, over-realization 1, 2, 5, 10,
teacher polarity 0, 0.5, ..., 2.5 (Fig. 9 shows 0.5-2.5, Fig. 10 all), 32 seeds (the same sweep as
``experiments/configs/two_layer.py``). ``small`` keeps the layout with m=10, polarity 0, 1, 1.5, 2, 2.5 and 8 seeds;
``test``: m=5, 1x and 5x, polarity 0 and 2, 4 seeds (seconds).

Sweep alone: ``python -m specjax.sweep --config=specjax/figures/configs/fig9_10.py:small --workdir=DIR``; sweep and
plot: ``python -m specjax.figures --figure=9 --scale=small --workdir=DIR`` (then ``--figure=10`` reuses the sweep).
"""

from specjax.figures.configs.common import SCALES, two_layer_config

__all__ = ["SCALES", "get_config"]


def get_config(scale: str = "paper"):
    if scale == "paper":
        return two_layer_config(
            scale, m=20, over_realization=(1, 2, 5, 10), teacher_polarity=(0.0, 0.5, 1.0, 1.5, 2.0, 2.5), seeds=32
        )
    if scale == "small":
        return two_layer_config(
            scale,
            m=10,
            over_realization=(1, 2, 5, 10),
            teacher_polarity=(0.0, 1.0, 1.5, 2.0, 2.5),
            seeds=8,
            runs_per_block=4,
        )
    return two_layer_config(scale, m=5, over_realization=(1, 5), teacher_polarity=(0.0, 2.0), seeds=4, runs_per_block=2)
