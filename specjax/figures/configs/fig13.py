"""Fig. 13 (real data): a pruned convolutional teacher on scikit-learn's 8x8 digits and over-realized students.

The settings are :data:`specjax.realdata.experiment.CONV_EXPERIMENT_SCALES` (``small``, ``paper``; ``--data_directory`` with
the figures command selects the ``cifar10`` one) as a ConfigDict, plus ``seed`` (the experiment's PRNG seed);
``test`` shrinks ``small`` to seconds. Run with ``python -m specjax.figures --figure=13 --scale=small --workdir=DIR``.
"""

import dataclasses

import ml_collections

from specjax.realdata import experiment as realdata

SCALES = ("test", "small", "paper", "cifar10")


def get_config(scale: str = "paper"):
    if scale not in SCALES:
        raise ValueError(f"scale: unknown value {scale!r}; expected one of {SCALES}")
    base = realdata.CONV_EXPERIMENT_SCALES["small" if scale == "test" else scale]
    if scale == "test":
        base = dataclasses.replace(
            base, teacher_channels=(8, 8, 8), teacher_epochs=3, student_epochs=3, num_seeds=1, over_realizations=(1, 2)
        )
    cfg = ml_collections.ConfigDict(dataclasses.asdict(base))
    cfg.seed = 0
    return cfg
