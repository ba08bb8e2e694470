"""Fig. 8 (deep L-shape, bottom-up): per layer, best teacher correlation vs sqrt(E_x beta_kk) at several epochs.

``paper``: the reference deep experiment (``deep.py``; the paper's Sec. 6): teacher 50-75-100-125 on d=20, 100
outputs, x ~ N(0, 10^2 I), 10x student, SGD batch 64 from 200000 points (3125 steps per epoch), lr 0.2 then 0.1 from
epoch 20, MSE loss, U(+-1/sqrt(fan_in)) student init, float32, 100 epochs, snapshots at epochs 0, 1, 2, 5, 10, 20,
50, 100. ``small``: teacher 10-15-20-25, 5x student, 25 outputs, 20000 points, 20 epochs x 1000 steps (lr halved at
epoch 10), snapshots at 0, 1, 2, 5, 10, 20; ``test``: seconds.

Sweep alone: ``python -m specjax.sweep --config=specjax/figures/configs/fig8.py:small --workdir=DIR``; sweep and plot:
``python -m specjax.figures --figure=8 --scale=small --workdir=DIR``.
"""

from specjax.config import default_config
from specjax.figures.configs.common import SCALES, check_scale

__all__ = ["SCALES", "get_config"]


def get_config(scale: str = "paper"):
    check_scale(scale)
    cfg = default_config()
    cfg.teacher = "deep"
    cfg.teacher_polarity = (0.0,)
    cfg.student_init = "uniform"
    cfg.data_std = (10.0,)
    cfg.batch_size = 64
    cfg.lr = (0.2,)
    cfg.loss = "mse"
    cfg.seeds, cfg.seed = 1, 2351
    cfg.dtype = "float32"
    # One run on one device (a second would train a padding copy). Splitting the paper-scale run over both cores of
    # the 2-core CPU (--config.num_devices=0 --config.devices_per_run=2) measured 0.73-0.81x as fast
    # (docs/performance.md); it is how the paper-scale figure in docs/results.md was made.
    cfg.runs_per_block, cfg.num_devices = 1, 1
    if scale == "paper":
        cfg.d, cfg.c = 20, 100
        cfg.teacher_widths = (50, 75, 100, 125)
        cfg.over_realization = (10,)
        cfg.n_train, cfg.n_eval = 200000, 10240
        cfg.lr_schedule_epochs, cfg.lr_schedule_scales = (20,), (0.5,)
        cfg.epochs, cfg.steps_per_epoch = 100, 3125
        cfg.snapshot_epochs = (1, 2, 5, 10, 20, 50)
    elif scale == "small":
        cfg.d, cfg.c = 20, 25
        cfg.teacher_widths = (10, 15, 20, 25)
        cfg.over_realization = (5,)
        cfg.n_train, cfg.n_eval = 20000, 4096
        cfg.lr_schedule_epochs, cfg.lr_schedule_scales = (10,), (0.5,)
        cfg.epochs, cfg.steps_per_epoch = 20, 1000
        cfg.snapshot_epochs = (1, 2, 5, 10)
    else:
        cfg.d, cfg.c = 10, 8
        cfg.teacher_widths = (5, 6, 7)
        cfg.over_realization = (3,)
        cfg.n_train, cfg.n_eval = 4000, 1024
        cfg.lr_schedule_epochs, cfg.lr_schedule_scales = (5,), (0.5,)
        cfg.epochs, cfg.steps_per_epoch = 10, 200
        cfg.snapshot_epochs = (1, 2, 5)
    return cfg
