"""specjax: teacher-student training dynamics of deep ReLU networks in JAX (Tian, ICML 2020).

The library modules re-exported here are pure JAX/NumPy. Plotting (``specjax.plots``, ``specjax.figures``), the
convolutional real-data experiment (``specjax.realdata``, Flax) and the benchmark (``specjax.bench``) are imported
explicitly by name.
"""

from specjax import (
    analysis,
    config,
    data,
    lemma1,
    metrics,
    networks,
    population,
    store,
    sweep,
    teachers,
    theory,
    train,
)
from specjax.config import default_config
from specjax.networks import Hidden, Params, apply, forward
from specjax.sweep import SweepResult, load_results, run_sweep
from specjax.train import Hparams, Program, Spec, seed_key

__all__ = [
    "Hidden",
    "Hparams",
    "Params",
    "Program",
    "Spec",
    "SweepResult",
    "analysis",
    "apply",
    "config",
    "data",
    "default_config",
    "enable_float64",
    "forward",
    "lemma1",
    "load_results",
    "metrics",
    "networks",
    "population",
    "run_sweep",
    "seed_key",
    "store",
    "sweep",
    "teachers",
    "theory",
    "train",
]


def enable_float64() -> None:
    """Switches on ``jax_enable_x64``; call before any JAX array is created (float64 runs need it)."""
    import jax

    jax.config.update("jax_enable_x64", True)
