"""The paper's two-layer sweep (Figs. 7, 9, 10; docs/theory.md §7, recon_two_layer.py README sweep).

d=100, m=20, C=50, over-realization 1,2,5,10 x polarity 0..2.5 x 32 seeds; SGD lr 0.01, batch 16 from a fixed set of
10000 training points; 10000 eval points; x ~ N(0, 1.5^2 I); 100 epochs x 1000 steps; float64.
"""

from specjax.config import default_config


def get_config():
    cfg = default_config()
    cfg.teacher = "two_layer"
    cfg.d, cfg.m, cfg.c = 100, 20, 50
    cfg.over_realization = (1, 2, 5, 10)
    cfg.teacher_polarity = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5)
    cfg.seeds, cfg.seed = 32, 1
    cfg.lr = (0.01,)
    cfg.batch_size = 16
    cfg.n_train, cfg.n_eval = 10000, 10000
    cfg.data_std = (1.5,)
    cfg.epochs, cfg.steps_per_epoch = 100, 1000
    cfg.dtype = "float64"
    return cfg
