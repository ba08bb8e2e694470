"""Fig. 12 (strong teachers are learned first): each teacher's best correlation over training at 5x.

``paper``: the two-layer setting (:mod:`specjax.figures.configs.common`) with m=20, 5x over-realization (100
students), teacher polarity 1 and 2, 8 seeds (the paper shows one run; its polarity is not given), 10^5 steps
evaluated every 500 (an "epoch" here) so that the order in which teachers are matched is resolved. ``small``: m=10,
4 seeds, 2x10^4 steps evaluated every 200; ``test``: m=8, polarity 1, 4 seeds (seconds).

Sweep alone: ``python -m specjax.sweep --config=specjax/figures/configs/fig12.py:small --workdir=DIR``; sweep and
plot: ``python -m specjax.figures --figure=12 --scale=small --workdir=DIR``.
"""

from specjax.figures.configs.common import SCALES, two_layer_config

__all__ = ["SCALES", "get_config"]


def get_config(scale: str = "paper"):
    if scale == "paper":
        return two_layer_config(
            scale, m=20, over_realization=(5,), teacher_polarity=(1.0, 2.0), seeds=8, epochs=200, steps_per_epoch=500
        )
    if scale == "small":
        return two_layer_config(
            scale,
            m=10,
            over_realization=(5,),
            teacher_polarity=(1.0, 2.0),
            seeds=4,
            epochs=100,
            steps_per_epoch=200,
            runs_per_block=4,
        )
    return two_layer_config(
        scale,
        m=8,
        over_realization=(5,),
        teacher_polarity=(1.0,),
        seeds=4,
        epochs=50,
        steps_per_epoch=50,
        runs_per_block=1,
    )
