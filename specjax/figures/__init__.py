"""The paper's figures: drivers that compute or load each figure's results, the numbers behind them, and plots.

``python -m specjax.figures --figure=N --workdir=DIR [--scale=small]``; research code calls :func:`make_figure`.
"""

from specjax.figures.drivers import FIGURES, SCALES, FigureOutput, load_config, make_figure

__all__ = ["FIGURES", "SCALES", "FigureOutput", "load_config", "make_figure"]
