"""``python -m specjax.report`` (and the ``specjax-report`` script): one self-contained HTML page of a finished
sweep (:func:`specjax.report.write_report`).

    python -m specjax.report --workdir=runs/quickstart [--out=runs/quickstart/report.html]

Never imported by the package: ``-m`` runs it exactly once.
"""

from __future__ import annotations

PROG = "specjax.report"


def main(argv: list[str]) -> None:
    """absl main: write the report of ``--workdir``."""
    from absl import flags

    from specjax import enable_float64
    from specjax.errors import ConfigError
    from specjax.report import write_report

    if len(argv) > 1:
        raise ConfigError(f"unexpected argument(s) {argv[1:]}")
    f = flags.FLAGS
    enable_float64()
    print(f"wrote {write_report(f.workdir, f.out)}")


def run_cli() -> None:
    """Entry point of ``python -m specjax.report`` and the ``specjax-report`` script."""
    from absl import flags

    from specjax import cli

    cli.configure_cpu_devices()
    flags.DEFINE_string("workdir", None, "A finished sweep's folder.")
    flags.DEFINE_string("out", None, "The HTML file to write (default: <workdir>/report.html).")
    flags.mark_flags_as_required(["workdir"])
    cli.run(main, PROG)


if __name__ == "__main__":
    run_cli()
