"""The paper's figures: cached results, the numbers behind each figure, drivers, plots and :func:`make_figure`.

``python -m specjax.figures --figure=N --workdir=DIR [--scale=small] [--config.<field>=value]``; research code
calls :func:`make_figure`. Modules: :mod:`~specjax.figures.cache` (configs and cached results),
:mod:`~specjax.figures.table` (:data:`FIGURES`: one :class:`Figure` row per figure), :mod:`~specjax.figures.numbers`
(reductions), :mod:`~specjax.figures.drivers` (each figure's numbers and plot), :mod:`~specjax.figures.plots`,
:mod:`~specjax.figures.plots_dynamics` and :mod:`~specjax.figures.plots_conv` (drawing), :mod:`~specjax.figures.make`.
"""

from specjax.figures.cache import SCALES, load_config
from specjax.figures.make import FigureOutput, make_figure, variant_suffix
from specjax.figures.table import FIGURES, Figure

__all__ = ["FIGURES", "SCALES", "Figure", "FigureOutput", "load_config", "make_figure", "variant_suffix"]
