"""``python -m specjax.bench``: the benchmark's command line (see :mod:`specjax.bench.measure`)."""

from specjax.bench.measure import run_cli

if __name__ == "__main__":
    run_cli()
