"""Fig. 13 (real data): a pruned convolutional teacher on scikit-learn's 8x8 digits and over-realized students.

The settings are :data:`specjax.realdata.experiment.CONV_EXPERIMENT_SCALES` as a ConfigDict, plus ``seed`` (the
experiment's PRNG seed): ``test`` (the test suite's), ``small``, ``paper``, and ``cifar10`` (selected by the figures
command's ``--data_directory``). Run with ``python -m specjax.figures --figure=13 --scale=small --workdir=DIR``.
"""

import dataclasses

import ml_collections

from specjax.realdata.experiment import CONV_EXPERIMENT_SCALES

SCALES = ("test", "small", "paper", "cifar10")


def get_config(scale: str = "paper"):
    if scale not in SCALES:
        raise ValueError(f"scale: unknown value {scale!r}; expected one of {SCALES}")
    cfg = ml_collections.ConfigDict(dataclasses.asdict(CONV_EXPERIMENT_SCALES[scale]))
    cfg.seed = 0
    return cfg
