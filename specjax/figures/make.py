""":func:`make_figure`: names a figure's outputs, checks them, and runs its row of the figures' table (``table.py``).

For each figure (7, 8, 9, 10, 11, 12, 13, population) the row's driver gets its results from
:mod:`specjax.figures.cache` (the config ``specjax/figures/configs/<name>.py:<scale>``, its sweep run through
:func:`specjax.sweep.run_sweep`, or the population / real-data experiment, unless finished results are already in
``DIR/<name>-<scale>/``; an interrupted sweep resumes), its ``numbers`` function reduces them
(:mod:`specjax.figures.drivers`, :mod:`specjax.figures.numbers`), and its ``plot`` function draws the figure with
:mod:`specjax.figures.plots`, :mod:`specjax.figures.plots_dynamics` or :mod:`specjax.figures.plots_conv`:

* ``DIR/fig<N>.png`` and ``.pdf``: the figure;
* ``DIR/fig<N>.json``: the numbers behind it (the paper's claim in figures: success rates, L-shape statistics, ...);
* ``DIR/<name>-<scale>/``: the results (``config.json``, ``results/``, ``summary.json`` for a sweep) and
  ``timing.json`` (wall seconds spent computing them, summed over resumptions).

A config that differs from the shipped one (``--config.<field>=value``, ``--seeds``) is a *variant*: every file
and folder above gets the suffix :func:`variant_suffix` (e.g. ``fig9+seeds=4.png`` and ``fig9_10-small+seeds=4/``),
so a variant never overwrites another's files. Figures 9 and 10 share one sweep (``fig9_10``). Scales: ``test``
(seconds; the test suite), ``small`` (minutes on 2 CPU cores), ``paper`` (the paper's settings).
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import ml_collections

from specjax import store
from specjax.errors import FigureError, StoreError
from specjax.figures import table
from specjax.figures.cache import SCALES, jsonable, load_config, plain_config
from specjax.figures.checks import check_figure_config
from specjax.sweep.progress import ProgressFn

__all__ = ["SCALES", "FigureError", "FigureOutput", "load_config", "make_figure", "variant_suffix"]

#: Config fields left out of a variant's name (they still belong to its identity in ``config.json``).
UNNAMED_FIELDS = ("data_directory",)
#: A variant name longer than this is replaced by a hash of the overridden fields.
MAX_SUFFIX = 80


@dataclasses.dataclass(frozen=True)
class FigureOutput:
    """What :func:`make_figure` returns.

    Attributes:
      figure: figure name (``'7'`` ... ``'population'``).
      scale: the config's scale (``'test'``, ``'small'``, ``'paper'``; ``'cifar10'`` for Fig. 13 on CIFAR-10).
      variant: :func:`variant_suffix` of the config (``''`` for the shipped one).
      paths: the PNG and PDF written.
      numbers_path: the JSON file of ``numbers``.
      numbers: the numbers behind the figure.
      data: the reduced arrays the figure shows (a :mod:`specjax.figures.drivers` record); not written.
      results: the results folder.
      compute_seconds: wall seconds spent computing its results (summed over resumptions), ``None`` if unknown.
      computed_now: whether this call trained anything.
    """

    figure: str
    scale: str
    variant: str
    paths: list[Path]
    numbers_path: Path
    numbers: dict
    data: Any
    results: Path
    compute_seconds: float | None
    computed_now: bool

    def summary_line(self) -> str:
        """One line: the figure, where its results are and whether they were computed now."""
        how = "computed now" if self.computed_now else "loaded"
        if self.compute_seconds is not None:
            how += f", {self.compute_seconds:.0f} s of compute in all"
        return f"figure {self.figure} ({self.scale}{self.variant}): results in {self.results} ({how})"


def _format_value(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(_format_value(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def variant_suffix(shipped: ml_collections.ConfigDict, cfg: ml_collections.ConfigDict) -> str:
    """The name of what ``cfg`` changes in the shipped config: ``''``, or ``+field=value`` per changed field (sorted;
    sequences comma-separated), or ``+`` and a 10-digit hash when that would exceed :data:`MAX_SUFFIX` characters or
    hold characters other than letters, digits and ``._,=+-``.

    Raises:
      FigureError: ``cfg`` has a field the shipped config does not.
    """
    base, new = plain_config(shipped), plain_config(cfg)
    extra = sorted(set(new) - set(base))
    if extra:
        raise FigureError(f"config: unknown field(s) {extra} for this figure")
    changed = sorted(k for k in new if new[k] != base[k] and k not in UNNAMED_FIELDS)
    if not changed:
        return ""
    suffix = "".join(f"+{k}={_format_value(new[k])}" for k in changed)
    if len(suffix) > MAX_SUFFIX or any(not (ch.isalnum() or ch in "._,=+-") for ch in suffix):
        digest = hashlib.sha256(repr([(k, new[k]) for k in changed]).encode()).hexdigest()[:10]
        suffix = f"+{digest}"
    return suffix


def _check_output_paths(workdir: Path, prefixes: list[str], results: Path) -> None:
    """Refuses, before any compute, output paths that are directories and a results path that is a file."""
    store.check_writable(workdir)
    for prefix in prefixes:
        for ext in ("png", "pdf", "json"):
            path = workdir / f"{prefix}.{ext}"
            if path.is_dir():
                raise StoreError(f"{path}: the figure's path is a directory; move it away")
    if results.exists() and not results.is_dir():
        raise StoreError(f"{results}: the results folder's path is a file; move it away")


def make_figure(
    figure: str,
    workdir: str | Path,
    scale: str = "small",
    progress: ProgressFn = print,
    config: ml_collections.ConfigDict | None = None,
    seeds: int | None = None,
) -> FigureOutput:
    """Makes one figure in ``workdir``, computing its results first if they are not there.

    Args:
      figure: a figure's name in :data:`specjax.figures.table.FIGURES`.
      workdir: output folder (created).
      scale: names the shipped config (``configs/<name>.py:<scale>``) and the results folder ``<name>-<scale>``.
      progress: called with progress lines; ``None`` for silence.
      config: the config to use (default: the shipped one); what it changes names the outputs
        (:func:`variant_suffix`).
      seeds: sets the config's number of seeds (a variant like ``--config.seeds``); not for figure 13.

    Raises:
      FigureError: unknown figure or scale, a config with unknown fields, results of another config in the
        results folder.
      ConfigError: a config field the figure cannot use (:func:`specjax.figures.checks.check_figure_config`),
        refused before anything is created.
      StoreError: an output path is a directory or cannot be written, or a results file is bad (names the file).
      config.ConfigError, sweep.SweepError: as :func:`specjax.sweep.run_sweep`.
    """
    figure = str(figure)
    row = table.figure(figure)
    if scale not in row.scales:
        raise FigureError(f"scale: unknown value {scale!r}; expected one of {SCALES}")
    name = row.config
    shipped = load_config(name, scale)
    cfg = ml_collections.ConfigDict(config.to_dict()) if config is not None else load_config(name, scale)
    if seeds is not None:
        if figure == "13" or isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
            raise FigureError(f"seeds: {seeds!r} is not a seed count for figure {figure}")
        cfg.seeds = seeds
    variant = variant_suffix(shipped, cfg)
    check_figure_config(figure, cfg)  # every field that can be wrong, before anything is created
    workdir = Path(workdir)
    directory = workdir / f"{name}-{scale}{variant}"
    prefix = f"{row.prefix}{variant}"
    _check_output_paths(workdir, [prefix], directory)
    cached = row.driver(cfg, directory, progress)
    figure_numbers, data = row.numbers(cfg, cached.value)
    paths = row.plot(data, cfg, workdir / prefix)
    numbers = {
        "figure": figure,
        "scale": scale,
        "variant": variant,
        "seeds": int(cfg.seeds) if "seeds" in cfg else None,
        "results": directory.name,
        "compute_seconds": cached.compute_seconds,
        **figure_numbers,
    }
    numbers_path = workdir / f"{prefix}.json"
    store.save_json(numbers_path, jsonable(numbers))
    return FigureOutput(
        figure,
        scale,
        variant,
        list(paths),
        numbers_path,
        numbers,
        data,
        cached.directory,
        cached.compute_seconds,
        cached.computed_now,
    )
