"""specjax: teacher-student training dynamics of deep ReLU networks in JAX (Tian, ICML 2020)."""

from specjax import metrics, networks
from specjax.networks import Hidden, Params, apply, forward

__all__ = ["Hidden", "Params", "apply", "forward", "metrics", "networks", "enable_float64"]


def enable_float64() -> None:
    """Switches on ``jax_enable_x64``; call before any JAX array is created (float64 runs need it)."""
    import jax

    jax.config.update("jax_enable_x64", True)
