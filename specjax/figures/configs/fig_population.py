"""SGD vs the exact population gradient flow from the same initial student (THEORY.md sections 5-6).

The closed-form flow needs a bias-free hidden layer and Gaussian inputs, so the teacher and student have no hidden
biases (output biases kept). ``paper``: the two-layer reference settings otherwise (d=100, C=50, x ~ N(0, 1.5^2 I),
SGD lr 0.01, batch 16 from 10000 training points, student init N(0, 0.005^2), 10^5 steps, float64) with m=10,
2x over-realization, teacher polarity 1 and 4 seeds, recorded every 250 steps; the RK4 step is 2 SGD steps' time
(``t = lr * steps``). ``small``: d=50, C=20, m=5, 2x10^4 steps at lr 0.02; ``test``: seconds.

Run with ``python -m specjax.figures --figure=population --scale=small --workdir=DIR``.
"""

from specjax.config import default_config

SCALES = ("test", "small", "paper")


def get_config(scale: str = "paper"):
    if scale not in SCALES:
        raise ValueError(f"scale: unknown value {scale!r}; expected one of {SCALES}")
    cfg = default_config()
    cfg.teacher = "two_layer"
    cfg.use_bias = False
    cfg.over_realization = (2,)
    cfg.teacher_polarity = (1.0,)
    cfg.seeds = 4
    cfg.rk4_step_sgd_steps = 2  # RK4 step of the flow, in SGD steps' worth of time (not a sweep field)
    if scale == "paper":
        cfg.d, cfg.m, cfg.c = 100, 10, 50
        cfg.lr = (0.01,)
        cfg.n_train, cfg.n_eval = 10000, 1000
        cfg.epochs, cfg.steps_per_epoch = 400, 250
        cfg.dtype = "float64"
    elif scale == "small":
        cfg.d, cfg.m, cfg.c = 50, 5, 20
        cfg.lr = (0.02,)
        cfg.n_train, cfg.n_eval = 10000, 1000
        cfg.epochs, cfg.steps_per_epoch = 200, 100
        cfg.dtype = "float64"
    else:
        cfg.d, cfg.m, cfg.c = 20, 4, 10
        cfg.seeds = 2
        cfg.lr = (0.05,)
        cfg.n_train, cfg.n_eval = 2000, 256
        cfg.epochs, cfg.steps_per_epoch = 60, 50
        cfg.dtype = "float64"
    return cfg
