"""The paper's deep experiment (Fig. 8; docs/theory.md §7, recon_multilayer.py).

Teacher 50-75-100-125 (input to output) on d=20, 100 outputs, x ~ N(0, 10^2 I); 10x student; plain SGD, batch 64 from
200000 training points (3125 steps per epoch), lr 0.2 for epochs 0-19 then 0.1; PyTorch's MSE loss convention;
student init U(+-1/sqrt(fan_in)); float32; 100 epochs.
"""

from specjax.config import default_config


def get_config():
    cfg = default_config()
    cfg.teacher = "deep"
    cfg.d, cfg.c = 20, 100
    cfg.teacher_widths = (50, 75, 100, 125)
    cfg.over_realization = (10,)
    cfg.teacher_polarity = (0.0,)
    cfg.student_init = "uniform"
    cfg.data_std = (10.0,)
    cfg.n_train, cfg.n_eval = 200000, 10240
    cfg.batch_size = 64
    cfg.lr = (0.2,)
    cfg.lr_schedule_epochs, cfg.lr_schedule_scales = (20,), (0.5,)
    cfg.loss = "mse"
    cfg.epochs, cfg.steps_per_epoch = 100, 3125
    cfg.seeds, cfg.seed = 1, 2351
    cfg.dtype = "float32"
    cfg.runs_per_block = 1
    cfg.snapshot_epochs = (1, 2, 5, 10, 20, 50)
    return cfg
