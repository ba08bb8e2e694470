"""Fig. 11 (focus shifting): each student's correlation to each teacher over training, three seeds.

The paper gives m=5 teacher nodes and a polarized teacher (p > 0); its other settings are unknown (THEORY.md section
7). ``paper`` uses the two-layer reference settings (d=100, C=50, SGD lr 0.01, batch 16, 10000 training points,
10^5 steps, float64) with m=5, polarity 1, 1x over-realization (5 students, each of which must end on its own teacher)
and 3 seeds, and records the full teacher x student correlation matrix every 100 steps (``record_corr='all'``; an
"epoch" here is 100 steps, because focus shifts happen within the reference's first few 1000-step epochs).
``small``: d=50, C=20, float32, 10^4 steps at lr 0.02, recorded every 50 steps; ``test``: seconds.

Sweep alone: ``python -m specjax.sweep --config=experiments/configs/fig11.py:small --workdir=DIR``; sweep and plot:
``python -m specjax.figures --figure=11 --scale=small --workdir=DIR``.
"""

from specjax.config import default_config

SCALES = ("test", "small", "paper")


def get_config(scale: str = "paper"):
    if scale not in SCALES:
        raise ValueError(f"scale: unknown value {scale!r}; expected one of {SCALES}")
    cfg = default_config()
    cfg.teacher = "two_layer"
    cfg.m = 5
    cfg.over_realization = (1,)
    cfg.teacher_polarity = (1.0,)
    cfg.seeds = 3
    cfg.record_corr = "all"
    cfg.num_devices, cfg.runs_per_block = 1, 3  # three runs in one block on one device (no padding)
    if scale == "paper":
        cfg.d, cfg.c = 100, 50
        cfg.lr = (0.01,)
        cfg.n_train, cfg.n_eval = 10000, 10000
        cfg.epochs, cfg.steps_per_epoch = 1000, 100
        cfg.dtype = "float64"
    elif scale == "small":
        cfg.d, cfg.c = 50, 20
        cfg.lr = (0.02,)
        cfg.n_train, cfg.n_eval = 10000, 4000
        cfg.epochs, cfg.steps_per_epoch = 200, 50
        cfg.dtype = "float32"
    else:
        cfg.d, cfg.c = 20, 10
        cfg.lr = (0.05,)
        cfg.n_train, cfg.n_eval = 2000, 1000
        cfg.epochs, cfg.steps_per_epoch = 60, 25
        cfg.dtype = "float32"
    return cfg
