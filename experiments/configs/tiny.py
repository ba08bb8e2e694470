"""A seconds-long config for tests: two shape groups, two polarities, two learning rates, 3 seeds."""

from specjax.config import default_config


def get_config():
    cfg = default_config()
    cfg.d, cfg.m, cfg.c = 8, 3, 4
    cfg.over_realization = (1, 2)
    cfg.teacher_polarity = (0.0, 1.0)
    cfg.lr = (0.05, 0.1)
    cfg.seeds = 3
    cfg.n_train, cfg.n_eval = 256, 256
    cfg.batch_size = 8
    cfg.epochs, cfg.steps_per_epoch = 4, 50
    cfg.init_scale = (0.1,)
    cfg.dtype = "float64"
    cfg.runs_per_block = 4
    cfg.snapshot_epochs = (2,)
    cfg.checkpoint_every_s = 0.0  # after every chunk: the resume tests kill it at chosen chunks
    return cfg
