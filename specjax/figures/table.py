"""The paper's figures, one :class:`Figure` row each: the config, the driver, the numbers, the plot, the scales.

A new figure is one row of :data:`FIGURES` plus its functions: a config in ``configs/`` (or an existing one), and
in :mod:`specjax.figures.drivers` its ``numbers`` and ``plot`` functions; the driver is one of
:mod:`specjax.figures.cache`'s (``sweep_results`` for a sweep). :func:`specjax.figures.make.make_figure` and
``python -m specjax.figures`` read everything from the row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ml_collections

from specjax.errors import FigureError
from specjax.figures import drivers
from specjax.figures.cache import SCALES, Cached, conv_results, population_results, sweep_results
from specjax.sweep.progress import ProgressFn


@dataclasses.dataclass(frozen=True)
class Figure:
    """One figure.

    Attributes:
      name: what ``--figure`` and :func:`specjax.figures.make_figure` call it (``'7'``, ..., ``'population'``).
      config: its config file in ``specjax/figures/configs/`` (without ``.py``), with one config per scale.
      driver: ``(cfg, directory, progress) -> Cached``: computes its results in ``directory`` or loads them
        (:mod:`specjax.figures.cache`).
      numbers: ``(cfg, results) -> (numbers, data)``: the numbers behind the figure (JSON-able) and the reduced
        arrays it shows (:mod:`specjax.figures.drivers`).
      plot: ``(data, cfg, prefix) -> paths``: draws ``prefix.png`` and ``.pdf``.
      scales: the scales its config defines.
      output: the figure files' name (``<output>.png``, ``.pdf``, ``.json``); default ``fig<name>``.
    """

    name: str
    config: str
    driver: Callable[[ml_collections.ConfigDict, Path, ProgressFn | None], Cached]
    numbers: Callable[[ml_collections.ConfigDict, Any], tuple[dict, Any]]
    plot: Callable[[Any, ml_collections.ConfigDict, Path], list[Path]]
    scales: tuple[str, ...] = SCALES
    output: str = ""

    @property
    def prefix(self) -> str:
        """The figure files' name without suffix and variant."""
        return self.output or f"fig{self.name}"


#: Every figure, in the order ``--figure`` lists them. Figures 9 and 10 share one sweep (config ``fig9_10``).
FIGURES: tuple[Figure, ...] = (
    Figure("7", "fig7", sweep_results, drivers.fig7_numbers, drivers.fig7_plot),
    Figure("8", "fig8", sweep_results, drivers.fig8_numbers, drivers.fig8_plot),
    Figure("9", "fig9_10", sweep_results, drivers.fig9_numbers, drivers.fig9_plot),
    Figure("10", "fig9_10", sweep_results, drivers.fig10_numbers, drivers.fig10_plot),
    Figure("11", "fig11", sweep_results, drivers.fig11_numbers, drivers.fig11_plot),
    Figure("12", "fig12", sweep_results, drivers.fig12_numbers, drivers.fig12_plot),
    Figure("13", "fig13", conv_results, drivers.fig13_numbers, drivers.fig13_plot, (*SCALES, "cifar10")),
    Figure(
        "population",
        "fig_population",
        population_results,
        drivers.population_numbers,
        drivers.population_plot,
        output="figpopulation",
    ),
)


def names() -> tuple[str, ...]:
    """The figures' names, in table order."""
    return tuple(f.name for f in FIGURES)


def figure(name: str) -> Figure:
    """The row of the figure called ``name``.

    Raises:
      FigureError: no figure has that name (names the ones that exist).
    """
    for f in FIGURES:
        if f.name == name:
            return f
    raise FigureError(f"figure: unknown value {name!r}; expected one of {names()}")
