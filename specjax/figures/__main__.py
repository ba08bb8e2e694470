"""``python -m specjax.figures``: the figures' command line over :func:`specjax.figures.make_figure`.

    python -m specjax.figures --figure=9 --scale=small --workdir=runs/figures [--config.lr=0.05] [--seeds=4]

``--figure`` and ``--scale`` choose the shipped config (``specjax/figures/configs/<name>.py:<scale>``);
``--config.<field>=value`` overrides its fields as with ``python -m specjax.sweep``. A changed config is a variant:
its results folder and figure files get a suffix naming the changes (:func:`specjax.figures.make.variant_suffix`),
so it never overwrites another variant's files. Prints the files written and one summary line; the numbers are in
the figure's JSON file.
"""

from __future__ import annotations

import time

from specjax.errors import FigureError
from specjax.figures import table
from specjax.figures.cache import CONFIG_DIR, SCALES
from specjax.figures.make import make_figure

PROG = "specjax.figures"


def _flag_value(argv: list[str], name: str) -> str | None:
    """The last value given as ``--name=VALUE`` or ``--name VALUE`` in ``argv``, or ``None``."""
    value = None
    for i, arg in enumerate(argv):
        if arg.startswith(f"--{name}="):
            value = arg.split("=", 1)[1]
        elif arg == f"--{name}" and i + 1 < len(argv):
            value = argv[i + 1]
    return value


def with_config_flag(argv: list[str]) -> list[str]:
    """``argv`` with ``--config=<the figure's config file>:<scale>`` inserted, chosen by ``--figure``, ``--scale``
    (default ``small``) and ``--data_directory`` (Fig. 13 on CIFAR-10: the ``cifar10`` scale).

    Raises:
      FigureError: ``--config`` itself is given (only ``--config.<field>`` overrides are).
    """
    if any(a == "--config" or a.startswith("--config=") for a in argv[1:]):
        raise FigureError("--config: chosen by --figure and --scale; give only --config.<field>=value overrides")
    figure, scale = _flag_value(argv, "figure"), _flag_value(argv, "scale") or "small"
    if figure not in table.names() or scale not in SCALES:
        return argv  # absl reports the bad --figure or --scale
    if figure == "13" and _flag_value(argv, "data_directory"):
        scale = "cifar10"
    return [argv[0], f"--config={CONFIG_DIR / table.figure(figure).config}.py:{scale}", *argv[1:]]


def main(argv: list[str]) -> None:
    """absl main: make the figure named by ``--figure`` in ``--workdir``."""
    from absl import flags

    from specjax import enable_float64

    if len(argv) > 1:
        raise FigureError(f"unexpected argument(s) {argv[1:]}")
    f = flags.FLAGS
    cfg, scale = f.config, f.scale
    if f.data_directory:
        if f.figure != "13":
            raise FigureError("--data_directory applies to --figure=13 only")
        cfg.data_directory, scale = f.data_directory, "cifar10"
    enable_float64()
    start = time.perf_counter()
    out = make_figure(f.figure, f.workdir, scale, progress=lambda s: print(s, flush=True), config=cfg, seeds=f.seeds)
    for path in (*out.paths, out.numbers_path):
        print(f"wrote {path}")
    print(f"{out.summary_line()}; {time.perf_counter() - start:.0f} s")


def run_cli() -> None:
    """Entry point of ``python -m specjax.figures`` and the ``specjax-figures`` script."""
    import sys

    from absl import flags
    from ml_collections import config_flags

    from specjax import cli

    cli.configure_cpu_devices()
    flags.DEFINE_enum("figure", None, list(table.names()), "Which figure to make.")
    flags.DEFINE_string("workdir", None, "Output folder: figures here, results in <config>-<scale>[+variant]/ below.")
    flags.DEFINE_enum("scale", "small", list(SCALES), "test: seconds; small: minutes on 2 cores; paper: the paper's.")
    flags.DEFINE_string("data_directory", None, "Figure 13 only: CIFAR-10 python batches; runs the CIFAR setting.")
    flags.DEFINE_integer("seeds", None, "Number of seeds (the same as --config.seeds; names a variant).")
    config_flags.DEFINE_config_file("config", None, "Set by --figure, --scale; override with --config.<field>=value.")
    flags.mark_flags_as_required(["figure", "workdir"])
    try:
        sys.argv = with_config_flag(sys.argv)
    except FigureError as e:
        cli.fail(PROG, str(e))
    cli.run(main, PROG)


if __name__ == "__main__":
    run_cli()
