"""Quickstart: a small two-layer sweep that shows the paper's Fig. 9 trend in ~40 s on 2 idle CPU cores.

m=10 teacher nodes, d=50, C=20; over-realization 1 and 5; polarity 0, 1, 2; 8 seeds; float32.
"""

from specjax.config import default_config


def get_config():
    cfg = default_config()
    cfg.d, cfg.m, cfg.c = 50, 10, 20
    cfg.over_realization = (1, 5)
    cfg.teacher_polarity = (0.0, 1.0, 2.0)
    cfg.seeds = 8
    cfg.lr = (0.02,)
    cfg.n_train, cfg.n_eval = 10000, 4000
    cfg.epochs, cfg.steps_per_epoch = 20, 2000
    cfg.dtype = "float32"
    return cfg
