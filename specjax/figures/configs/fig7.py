"""Fig. 7 (L-shape): best teacher correlation vs fan-out norm of every student (THEORY.md section 7).

``paper``: the reference's two-layer sweep restricted to Fig. 7's panels: d=100, m=10, C=50, over-realization
1, 2, 5, 10, teacher polarity 0, 1, 2, 32 seeds, SGD lr 0.01, batch 16 from 10000 training points, 100 epochs x 1000
steps, float64. ``small`` keeps the layout with d=50, C=20, 8 seeds and 20 epochs x 2000 steps at lr 0.02 in float32
(a few minutes on 2 CPU cores); ``test`` is a seconds-long version for the test suite.

Run the sweep alone with ``python -m specjax.sweep --config=experiments/configs/fig7.py:small --workdir=DIR``, or
sweep and plot with ``python -m specjax.figures --figure=7 --scale=small --workdir=DIR``.
"""

from specjax.config import default_config

SCALES = ("test", "small", "paper")


def get_config(scale: str = "paper"):
    if scale not in SCALES:
        raise ValueError(f"scale: unknown value {scale!r}; expected one of {SCALES}")
    cfg = default_config()
    cfg.teacher = "two_layer"
    cfg.m = 10
    cfg.teacher_polarity = (0.0, 1.0, 2.0)
    if scale == "paper":
        cfg.d, cfg.c = 100, 50
        cfg.over_realization = (1, 2, 5, 10)
        cfg.seeds = 32
        cfg.lr = (0.01,)
        cfg.n_train, cfg.n_eval = 10000, 10000
        cfg.epochs, cfg.steps_per_epoch = 100, 1000
        cfg.dtype = "float64"
    elif scale == "small":
        cfg.d, cfg.c = 50, 20
        cfg.over_realization = (1, 2, 5, 10)
        cfg.seeds = 8
        cfg.lr = (0.02,)
        cfg.n_train, cfg.n_eval = 10000, 4000
        cfg.epochs, cfg.steps_per_epoch = 20, 2000
        cfg.dtype = "float32"
        cfg.runs_per_block = 4
    else:
        cfg.d, cfg.m, cfg.c = 20, 5, 10
        cfg.over_realization = (1, 5)
        cfg.teacher_polarity = (0.0, 1.0)
        cfg.seeds = 4
        cfg.lr = (0.05,)
        cfg.n_train, cfg.n_eval = 2000, 1000
        cfg.epochs, cfg.steps_per_epoch = 10, 500
        cfg.dtype = "float32"
        cfg.runs_per_block = 2
    return cfg
