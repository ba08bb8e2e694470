"""The paper's two-layer settings at each scale, written once; the two-layer figure configs start from them.

``paper`` is the reference code's two-layer setting (``recon_two_layer.py``; the paper's Sec. 6 and docs/results.md):
d=100, C=50, SGD lr 0.01 with batch 16 from 10000 training points, 10000 evaluation points, 100 epochs x 1000 steps,
float64. ``small`` keeps the layout at d=50, C=20, lr 0.02, 4000 evaluation points, 20 epochs x 2000 steps in
float32 (minutes on 2 CPU cores); ``test`` is seconds long (d=20, C=10, lr 0.05, 2000/1000 points, 10 x 500 steps).
"""

from specjax.config import default_config

SCALES = ("test", "small", "paper")

#: The fields each scale sets; a figure config overrides what it needs on top.
TWO_LAYER = {
    "paper": dict(
        d=100, c=50, lr=(0.01,), n_train=10000, n_eval=10000, epochs=100, steps_per_epoch=1000, dtype="float64"
    ),
    "small": dict(d=50, c=20, lr=(0.02,), n_train=10000, n_eval=4000, epochs=20, steps_per_epoch=2000, dtype="float32"),
    "test": dict(d=20, c=10, lr=(0.05,), n_train=2000, n_eval=1000, epochs=10, steps_per_epoch=500, dtype="float32"),
}


def check_scale(scale: str, scales: tuple[str, ...] = SCALES) -> None:
    """Raises ``ValueError`` for a scale not in ``scales``."""
    if scale not in scales:
        raise ValueError(f"scale: unknown value {scale!r}; expected one of {scales}")


def two_layer_config(scale: str, **fields):
    """:func:`specjax.config.default_config` with the two-layer teacher, :data:`TWO_LAYER` at ``scale``, then
    ``fields``."""
    check_scale(scale)
    cfg = default_config()
    cfg.teacher = "two_layer"
    for name, value in {**TWO_LAYER[scale], **fields}.items():
        if name not in cfg:
            raise KeyError(f"{name}: not a config field")
        cfg[name] = value
    return cfg
