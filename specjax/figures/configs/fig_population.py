"""SGD vs the exact population gradient flow from the same initial student (docs/theory.md §5-§6).

The closed-form flow needs a bias-free hidden layer and Gaussian inputs, so the teacher and student have no hidden
biases (output biases kept). ``paper``: the two-layer setting (:mod:`specjax.figures.configs.common`) otherwise,
with m=10, 2x over-realization, teacher polarity 1, 4 seeds, 1000 evaluation points, 10^5 steps recorded every 250;
the RK4 step is 2 SGD steps' time (``t = lr * steps``). ``small``: m=5, 2x10^4 steps recorded every 100; ``test``:
seconds. Every scale runs in float64, which the flow's comparison needs.

Run with ``python -m specjax.figures --figure=population --scale=small --workdir=DIR``.
"""

from specjax.figures.configs.common import SCALES, check_scale, two_layer_config

__all__ = ["SCALES", "get_config"]

#: Per scale: (m, seeds, evaluation points, epochs, steps per epoch).
SIZES = {"paper": (10, 4, 1000, 400, 250), "small": (5, 4, 1000, 200, 100), "test": (4, 2, 256, 60, 50)}


def get_config(scale: str = "paper"):
    check_scale(scale)
    m, seeds, n_eval, epochs, steps_per_epoch = SIZES[scale]
    cfg = two_layer_config(
        scale,
        m=m,
        use_bias=False,
        over_realization=(2,),
        teacher_polarity=(1.0,),
        seeds=seeds,
        n_eval=n_eval,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        dtype="float64",
    )
    cfg.rk4_step_sgd_steps = 2  # RK4 step of the flow, in SGD steps' worth of time (not a sweep field)
    return cfg
