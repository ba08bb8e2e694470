"""The paper's figures: cached results, the numbers behind each figure, drivers, plots and :func:`make_figure`.

``python -m specjax.figures --figure=N --workdir=DIR [--scale=small] [--config.<field>=value]``; research code
calls :func:`make_figure`. Modules: :mod:`~specjax.figures.cache` (configs and cached results),
:mod:`~specjax.figures.numbers` (reductions), :mod:`~specjax.figures.drivers` (one per figure),
:mod:`~specjax.figures.plots` and :mod:`~specjax.figures.plots_dynamics` (drawing), :mod:`~specjax.figures.make`.
"""

from specjax.figures.cache import SCALES, load_config
from specjax.figures.make import FIGURES, FigureOutput, make_figure, variant_suffix

__all__ = ["FIGURES", "SCALES", "FigureOutput", "load_config", "make_figure", "variant_suffix"]
