"""specjax: teacher-student training dynamics of deep ReLU networks in JAX (Tian, ICML 2020).

Subpackages: :mod:`specjax.core` (networks, teachers, data, metrics), :mod:`specjax.engine` (a run as pure
functions and its compiled program), :mod:`specjax.sweep` (plan, train, record, checkpoint, summary),
:mod:`specjax.theory` (closed forms, Lemma 1, theorem reports, population flow). Plotting and figures
(:mod:`specjax.figures`), the convolutional real-data experiment (:mod:`specjax.realdata`, Flax) and the benchmark
(:mod:`specjax.bench`) are imported explicitly by name.
"""

from specjax import config, core, engine, errors, store, sweep, theory
from specjax.config import default_config
from specjax.core.networks import Hidden, Params, apply, forward
from specjax.engine import Hparams, Program, Spec, seed_key
from specjax.errors import SpecjaxError
from specjax.sweep import SweepResult, load_results, run_sweep

__all__ = [
    "Hidden",
    "Hparams",
    "Params",
    "Program",
    "Spec",
    "SpecjaxError",
    "SweepResult",
    "apply",
    "config",
    "core",
    "default_config",
    "enable_float64",
    "engine",
    "errors",
    "forward",
    "load_results",
    "run_sweep",
    "seed_key",
    "store",
    "sweep",
    "theory",
]


def enable_float64() -> None:
    """Switches on ``jax_enable_x64``; call before any JAX array is created (float64 runs need it)."""
    import jax

    jax.config.update("jax_enable_x64", True)
