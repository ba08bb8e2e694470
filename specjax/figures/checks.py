"""Every check of a figure's config that can fail, run by :func:`specjax.figures.make_figure` before anything is
created: no workdir, results folder or lock file exists when a figure's config is refused.

A sweep figure's config must pass :func:`specjax.config.validate` and also have the shape its figure draws (which
swept fields may hold several values, which teacher); the population figure's must also be a setting the closed-form
flow covers (:func:`specjax.theory.population.comparable_problems`) with an RK4 step that divides an evaluation
interval; Fig. 13's must pass :func:`specjax.realdata.check_conv_config`, CIFAR-10 batch files included.
"""

from __future__ import annotations

import ml_collections

from specjax import config as config_lib
from specjax.errors import ConfigError

#: Per sweep figure: the swept fields that may hold several values (every other one must hold one), and the
#: teacher it draws (``None``: any). Figures 7, 9, 10 and 12 label their curves and numbers by teacher polarity
#: alone, so a second learning rate would silently overwrite half of them; 8 and 11 draw one setting.
SWEEP_SHAPES: dict[str, tuple[tuple[str, ...], str | None]] = {
    "7": (("over_realization", "teacher_polarity"), None),
    "8": ((), "deep"),
    "9": (("over_realization", "teacher_polarity"), None),
    "10": (("over_realization", "teacher_polarity"), None),
    "11": ((), "two_layer"),
    "12": (("teacher_polarity",), "two_layer"),
}
#: The population figure's own field (not a sweep field): the RK4 step of the flow, in SGD steps' worth of time.
RK4_FIELD = "rk4_step_sgd_steps"


def _values(cfg: ml_collections.ConfigDict, field: str) -> tuple:
    value = cfg[field]
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def check_sweep_shape(figure: str, cfg: ml_collections.ConfigDict, several: tuple[str, ...], teacher: str | None):
    """Refuses a validated sweep config whose swept fields or teacher the figure cannot draw.

    Raises:
      ConfigError: a field outside ``several`` holds several values, or the teacher is not ``teacher``.
    """
    for field in ("over_realization", *config_lib.SWEPT_FIELDS):
        values = _values(cfg, field)
        if len(values) > 1 and field not in several:
            may = f"only {' and '.join(several)} may hold several values" if several else "it draws one setting"
            raise ConfigError(
                f"config.{field}: figure {figure} takes one value ({may}), got {values!r}; "
                "make one figure per value instead"
            )
    if teacher is not None and cfg.teacher != teacher:
        raise ConfigError(f"config.teacher: figure {figure} draws a {teacher!r} teacher, got {cfg.teacher!r}")


def population_sweep_config(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The population config without its own field :data:`RK4_FIELD`: the sweep config of its runs."""
    return ml_collections.ConfigDict({k: v for k, v in cfg.items() if k != RK4_FIELD})


def check_population_config(cfg: ml_collections.ConfigDict) -> None:
    """Refuses a population-figure config the SGD-vs-flow comparison cannot run as it says.

    Raises:
      ConfigError: a bad sweep field, several values where the comparison runs one setting, a setting outside the
        closed form's (bias-free two-layer ReLU teacher on Gaussian data, SGD or GD, no schedule), or an RK4 step
        that is not a positive divisor of ``steps_per_epoch`` (the records' interval).
    """
    from specjax.engine import Spec
    from specjax.theory import population

    if RK4_FIELD not in cfg:
        raise ConfigError(f"config.{RK4_FIELD}: missing")
    rk4 = cfg[RK4_FIELD]
    sweep_cfg = population_sweep_config(cfg)
    config_lib.validate(sweep_cfg)
    check_sweep_shape("population", sweep_cfg, (), None)
    for field, problem in population.comparable_problems(Spec.from_config(sweep_cfg, sweep_cfg.over_realization[0])):
        raise ConfigError(f"config.{field}: {problem}, for the population flow's closed form")
    steps = sweep_cfg.steps_per_epoch
    if isinstance(rk4, bool) or not isinstance(rk4, int) or rk4 < 1 or steps % rk4:
        raise ConfigError(
            f"config.{RK4_FIELD}: must be a positive integer dividing steps_per_epoch={steps} (the RK4 step in SGD "
            f"steps' time), got {rk4!r}"
        )


def check_figure_config(figure: str, cfg: ml_collections.ConfigDict) -> None:
    """Every check of ``figure``'s config (see the module docstring); cheap, and nothing is created.

    Raises:
      ConfigError: naming the first bad field (``config.<field>: ...``).
      FileNotFoundError: Fig. 13 on CIFAR-10 without its batch files (names the missing one).
    """
    if figure in SWEEP_SHAPES:
        config_lib.validate(cfg)
        check_sweep_shape(figure, cfg, *SWEEP_SHAPES[figure])
    elif figure == "population":
        check_population_config(cfg)
    elif figure == "13":
        from specjax.realdata.experiment import check_conv_config

        check_conv_config(cfg)
