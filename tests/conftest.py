"""Test set-up: float64 on, and 4 fake CPU devices so sharding tests run on any machine.

Both must happen before JAX creates its backend, hence at import time of this file.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
