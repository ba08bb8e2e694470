"""Fig. 12 (strong teachers are learned first): each teacher's best correlation over training, m=20, 5x.

``paper``: the two-layer reference settings (d=100, C=50, SGD lr 0.01, batch 16, 10000 training points, 10^5 steps,
float64) with m=20, 5x over-realization (100 students), teacher polarity 1 and 2, 8 seeds (the paper shows one run;
its polarity is not given, THEORY.md section 7), evaluated every 500 steps (an "epoch" here) so that the order in
which teachers are matched is resolved. ``small``: m=10, d=50, C=20, 4 seeds, float32, 2x10^4 steps at lr 0.02,
evaluated every 200 steps; ``test``: seconds.

Sweep alone: ``python -m specjax.sweep --config=experiments/configs/fig12.py:small --workdir=DIR``; sweep and plot:
``python -m specjax.figures --figure=12 --scale=small --workdir=DIR``.
"""

from specjax.config import default_config

SCALES = ("test", "small", "paper")


def get_config(scale: str = "paper"):
    if scale not in SCALES:
        raise ValueError(f"scale: unknown value {scale!r}; expected one of {SCALES}")
    cfg = default_config()
    cfg.teacher = "two_layer"
    cfg.over_realization = (5,)
    cfg.teacher_polarity = (1.0, 2.0)
    if scale == "paper":
        cfg.d, cfg.m, cfg.c = 100, 20, 50
        cfg.seeds = 8
        cfg.lr = (0.01,)
        cfg.n_train, cfg.n_eval = 10000, 10000
        cfg.epochs, cfg.steps_per_epoch = 200, 500
        cfg.dtype = "float64"
    elif scale == "small":
        cfg.d, cfg.m, cfg.c = 50, 10, 20
        cfg.seeds = 4
        cfg.lr = (0.02,)
        cfg.n_train, cfg.n_eval = 10000, 4000
        cfg.epochs, cfg.steps_per_epoch = 100, 200
        cfg.runs_per_block = 4
        cfg.dtype = "float32"
    else:
        cfg.d, cfg.m, cfg.c = 20, 8, 10
        cfg.teacher_polarity = (1.0,)
        cfg.seeds = 4
        cfg.lr = (0.05,)
        cfg.n_train, cfg.n_eval = 2000, 1000
        cfg.epochs, cfg.steps_per_epoch = 50, 50
        cfg.runs_per_block = 1
        cfg.dtype = "float32"
    return cfg
