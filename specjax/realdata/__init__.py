"""Fig. 13's real-data experiment: image data, conv teacher and students (Flax), the experiment.

Modules: :mod:`~specjax.realdata.images` (digits, CIFAR-10, augmentation), :mod:`~specjax.realdata.convnets` (the
conv net, channel strength, pruning), :mod:`~specjax.realdata.teacher` (epoch scan, teacher training),
:mod:`~specjax.realdata.students` (vmapped student training and evaluation), :mod:`~specjax.realdata.experiment`
(settings and :func:`run_conv_experiment`); the figure is drawn by :mod:`specjax.figures.plots_conv`. Conv layers
are numbered from 1 in every result name (``best_correlation_l1`` is the layer that reads the image).
"""

from specjax.realdata.experiment import (
    CONV_EXPERIMENT_SCALES,
    DATASETS,
    ConvExperimentConfig,
    check_conv_config,
    load_dataset,
    run_conv_experiment,
)
from specjax.realdata.students import STUDENT_OPTIMIZERS, layer_key, train_students
from specjax.realdata.teacher import TeacherHistory, make_train_epoch, train_teacher

__all__ = [
    "CONV_EXPERIMENT_SCALES",
    "DATASETS",
    "STUDENT_OPTIMIZERS",
    "ConvExperimentConfig",
    "TeacherHistory",
    "check_conv_config",
    "layer_key",
    "load_dataset",
    "make_train_epoch",
    "run_conv_experiment",
    "train_students",
    "train_teacher",
]
