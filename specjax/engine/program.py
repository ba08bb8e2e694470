"""The compiled program of a shape group: init, train and evaluate jit(vmap)-ed over runs and sharded on a mesh.

Also the 1-D device mesh (axis ``'runs'``) and the FLOP count of a step (the sweep's ETA and the benchmark).
"""

from __future__ import annotations

import functools

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from specjax.engine.run import Spec, evaluate, init_run, seed_key, train_steps


class Program:
    """The compiled, vmapped, sharded functions of one :class:`Spec`.

    Every argument and result has a leading runs axis whose length must be a multiple of the number of devices
    in ``mesh``; it is sharded over the mesh axis ``'runs'``. Each function compiles once per distinct runs-axis
    length (keep blocks a fixed size to avoid recompiling).

    ``init(hp, keys)`` builds runs from their keys; ``init_seeds(hp, seed_index, base_seed)`` from seed indices,
    deriving each key (:func:`~specjax.engine.run.seed_key`) inside the program, which saves the sweep the small
    programs that derive keys and convert inputs on the device (the same keys, so the same numbers).

    Args:
      spec: static settings.
      chunk_steps: steps per :meth:`train` call.
      mesh: 1-D device mesh with axis ``'runs'``; default: all devices.
    """

    def __init__(self, spec: Spec, chunk_steps: int, mesh: Mesh | None = None):
        self.spec = spec
        self.chunk_steps = int(chunk_steps)
        self.mesh = mesh if mesh is not None else make_mesh()
        runs = NamedSharding(self.mesh, PartitionSpec("runs"))
        self.sharding = runs
        self.init = jax.jit(jax.vmap(functools.partial(init_run, spec)), out_shardings=runs)
        self.init_seeds = jax.jit(
            jax.vmap(
                lambda hp, seed_index, base_seed: init_run(spec, hp, seed_key(base_seed, seed_index)), (0, 0, None)
            ),
            out_shardings=runs,
        )
        self.train = jax.jit(
            jax.vmap(functools.partial(train_steps, spec, self.chunk_steps)), out_shardings=runs, donate_argnums=(0,)
        )
        self.evaluate = jax.jit(jax.vmap(functools.partial(evaluate, spec)), out_shardings=runs)

    @property
    def num_devices(self) -> int:
        return self.mesh.devices.size

    def place(self, tree):
        """Puts host arrays on the mesh, runs axis sharded."""
        return jax.device_put(tree, self.sharding)


def make_mesh(num_devices: int = 0) -> Mesh:
    """1-D mesh with axis ``'runs'`` over the first ``num_devices`` devices (0 = all)."""
    devices = jax.devices()
    if num_devices:
        if num_devices > len(devices):
            raise ValueError(f"num_devices: {num_devices} requested but only {len(devices)} available")
        devices = devices[:num_devices]
    return Mesh(np.array(devices), ("runs",))


def flops_per_step(spec: Spec) -> int:
    """Floating-point operations of one training step of one run (forward + backward matmuls and bias adds).

    Counted as :math:`2B\\,n_{l-1}n_l` per matrix product: forward, the weight gradient, and the input gradient of
    every layer but the first. The minibatch gather and elementwise work are not counted.
    """
    ws = spec.student_widths
    batch = spec.n_train if spec.optimizer == "gd" else spec.batch_size
    macs = 0
    for l, (a, b) in enumerate(zip(ws[:-1], ws[1:], strict=True)):
        macs += a * b * (3 if l > 0 else 2)
    return 2 * batch * macs
