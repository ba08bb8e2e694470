"""Figs. 9 and 10 (success rate per teacher node; eval loss curves): the paper's two-layer m=20 sweep.

``paper``: THEORY.md section 7's README sweep at m=20: d=100, C=50, over-realization 1, 2, 5, 10, teacher polarity
0, 0.5, ..., 2.5 (Fig. 9 shows 0.5-2.5, Fig. 10 all), 32 seeds, SGD lr 0.01, batch 16 from 10000 training points,
10000 eval points, 100 epochs x 1000 steps, float64 (the same sweep as ``two_layer.py``). ``small`` keeps the layout
with d=50, m=10, C=20, polarity 0, 1, 1.5, 2, 2.5, 8 seeds and 20 epochs x 2000 steps at lr 0.02 in float32;
``test`` is a seconds-long version for the test suite.

Sweep alone: ``python -m specjax.sweep --config=experiments/configs/fig9_10.py:small --workdir=DIR``; sweep and plot:
``python -m specjax.figures --figure=9 --scale=small --workdir=DIR`` (then ``--figure=10`` reuses the sweep).
"""

from specjax.config import default_config

SCALES = ("test", "small", "paper")


def get_config(scale: str = "paper"):
    if scale not in SCALES:
        raise ValueError(f"scale: unknown value {scale!r}; expected one of {SCALES}")
    cfg = default_config()
    cfg.teacher = "two_layer"
    if scale == "paper":
        cfg.d, cfg.m, cfg.c = 100, 20, 50
        cfg.over_realization = (1, 2, 5, 10)
        cfg.teacher_polarity = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5)
        cfg.seeds = 32
        cfg.lr = (0.01,)
        cfg.n_train, cfg.n_eval = 10000, 10000
        cfg.epochs, cfg.steps_per_epoch = 100, 1000
        cfg.dtype = "float64"
    elif scale == "small":
        cfg.d, cfg.m, cfg.c = 50, 10, 20
        cfg.over_realization = (1, 2, 5, 10)
        cfg.teacher_polarity = (0.0, 1.0, 1.5, 2.0, 2.5)
        cfg.seeds = 8
        cfg.lr = (0.02,)
        cfg.n_train, cfg.n_eval = 10000, 4000
        cfg.epochs, cfg.steps_per_epoch = 20, 2000
        cfg.dtype = "float32"
        cfg.runs_per_block = 4
    else:
        cfg.d, cfg.m, cfg.c = 20, 5, 10
        cfg.over_realization = (1, 5)
        cfg.teacher_polarity = (0.0, 2.0)
        cfg.seeds = 4
        cfg.lr = (0.05,)
        cfg.n_train, cfg.n_eval = 2000, 1000
        cfg.epochs, cfg.steps_per_epoch = 10, 500
        cfg.dtype = "float32"
        cfg.runs_per_block = 2
    return cfg
