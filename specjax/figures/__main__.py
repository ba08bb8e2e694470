"""``python -m specjax.figures``: the figures' command line over :func:`specjax.figures.make_figure`."""

from __future__ import annotations

import json
import time

from specjax.errors import FigureError
from specjax.figures.cache import jsonable
from specjax.figures.drivers import FIGURES, SCALES, load_config, make_figure


def main(argv: list[str]) -> None:
    """absl main: make the figure named by ``--figure`` in ``--workdir``."""
    from absl import flags

    from specjax import enable_float64

    if len(argv) > 1:
        raise FigureError(f"unexpected argument(s) {argv[1:]}")
    f = flags.FLAGS
    enable_float64()
    config = None
    if f.data_directory:
        if f.figure != "13":
            raise FigureError("--data_directory applies to --figure=13 only")
        config = load_config("fig13", "cifar10")
        config.data_directory = f.data_directory
    start = time.perf_counter()
    out = make_figure(
        f.figure, f.workdir, f.scale, progress=lambda s: print(s, flush=True), config=config, seeds=f.seeds
    )
    elapsed = time.perf_counter() - start
    source = f"results in {out.numbers['results']}/ " + ("computed now" if out.computed_now else "loaded")
    if out.compute_seconds is not None:
        source += f", {out.compute_seconds:.0f} s of compute in all"
    print(f"figure {out.figure} ({out.scale}) in {elapsed:.0f} s ({source}): {', '.join(str(p) for p in out.paths)}")
    print(json.dumps(jsonable({k: v for k, v in out.numbers.items() if k != "shifts_per_seed"}))[:2000])


def run_cli() -> None:
    """Entry point of ``python -m specjax.figures``."""
    from absl import flags

    from specjax import cli

    cli.configure_cpu_devices()
    flags.DEFINE_enum("figure", None, list(FIGURES), "Which figure to make.")
    flags.DEFINE_string("workdir", None, "Output folder: figures here, results in <config>-<scale>/ below it.")
    flags.DEFINE_enum("scale", "small", list(SCALES), "test: seconds; small: minutes on 2 cores; paper: the paper's.")
    flags.DEFINE_string("data_directory", None, "Figure 13 only: CIFAR-10 python batches; runs the CIFAR setting.")
    flags.DEFINE_integer(
        "seeds", None, "Override the config's number of seeds (results in <config>-<scale>-<N>seeds/)."
    )
    flags.mark_flags_as_required(["figure", "workdir"])

    def guarded(argv):
        try:
            main(argv)
        except FigureError as e:
            cli.fail("specjax.figures", str(e))

    cli.run(guarded, "specjax.figures")


if __name__ == "__main__":
    run_cli()
