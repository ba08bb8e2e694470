"""The compiled program of a shape group: init, train and evaluate jit(vmap)-ed over runs and sharded on a mesh.

Also the device mesh (axis ``'runs'``, and ``'width'`` when each run is split over several devices) and the FLOP
count of a step (the sweep's ETA and the benchmark).

Two layouts, one program:

* **runs** (the default): the runs axis is sharded over every device; each device trains whole runs. On CPU each
  device is one single-threaded core, which keeps a sweep of many small runs at its fastest.
* **runs x width**: a 2-D mesh ``('runs', 'width')``. Each run's student (its weights, biases and optimiser state)
  is split by output node over the ``'width'`` devices, so one large run (Fig. 8 at paper scale: ~1 GFLOP per SGD
  step) uses every core; XLA's SPMD partitioner inserts the few small collectives a step needs (the activations'
  all-gather, the back-propagated error's all-reduce). The numbers equal the one-device run's to rounding, not
  bit for bit (sums over a split axis are added in another order); see docs/performance.md.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from specjax.engine.run import Hparams, RunState, Spec, evaluate, init_run, seed_key, train_steps


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
      mesh: device mesh with axis ``'runs'`` (and optionally ``'width'``, see :func:`make_mesh`); default: all
        devices on the runs axis.
    """

    def __init__(self, spec: Spec, chunk_steps: int, mesh: Mesh | None = None):
        self.spec = spec
        self.chunk_steps = int(chunk_steps)
        self.mesh = mesh if mesh is not None else make_mesh()
        runs = NamedSharding(self.mesh, PartitionSpec("runs"))
        self.sharding = runs
        self.state_sharding = state_sharding(spec, self.mesh)
        init_out = (runs, runs, self.state_sharding)
        self.init = jax.jit(jax.vmap(functools.partial(init_run, spec)), out_shardings=init_out)
        self.init_seeds = jax.jit(
            jax.vmap(
                lambda hp, seed_index, base_seed: init_run(spec, hp, seed_key(base_seed, seed_index)), (0, 0, None)
            ),
            out_shardings=init_out,
        )
        self.train = jax.jit(
            jax.vmap(functools.partial(train_steps, spec, self.chunk_steps)),
            out_shardings=(self.state_sharding, runs),
            donate_argnums=(0,),
        )
        self.evaluate = jax.jit(jax.vmap(functools.partial(evaluate, spec)), out_shardings=runs)

    @property
    def num_devices(self) -> int:
        return self.mesh.devices.size

    @property
    def devices_per_run(self) -> int:
        """Devices each run is split over (the mesh's ``'width'`` axis; 1 without one)."""
        return dict(self.mesh.shape).get("width", 1)

    def place(self, tree):
        """Puts host arrays on the mesh, runs axis sharded (replicated over ``'width'``)."""
        return jax.device_put(tree, self.sharding)

    def place_state(self, state: RunState) -> RunState:
        """Puts a host :class:`RunState` (leading runs axis) on the mesh in the layout :meth:`train` expects."""
        return jax.device_put(state, self.state_sharding)


def make_mesh(num_devices: int = 0, devices_per_run: int = 1, devices=None) -> Mesh:
    """Mesh over the first ``num_devices`` of ``devices`` (default: ``jax.devices()``; 0 = all).

    ``devices_per_run = 1``: 1-D, axis ``'runs'``. Otherwise 2-D, axes ``('runs', 'width')`` of shape
    ``(num_devices // devices_per_run, devices_per_run)``: each run split over ``devices_per_run`` devices.
    """
    devices = list(jax.devices() if devices is None else devices)
    if num_devices:
        if num_devices > len(devices):
            raise ValueError(f"num_devices: {num_devices} requested but only {len(devices)} available")
        devices = devices[:num_devices]
    return with_devices_per_run(Mesh(np.array(devices), ("runs",)), devices_per_run)


def with_devices_per_run(mesh: Mesh, devices_per_run: int) -> Mesh:
    """``mesh``'s devices laid out as ``(runs, width)`` with ``devices_per_run`` devices on ``'width'`` (1: the
    1-D runs mesh)."""
    devices = mesh.devices.reshape(-1)
    if devices_per_run <= 1:
        return mesh if mesh.axis_names == ("runs",) else Mesh(devices, ("runs",))
    if devices.size % devices_per_run:
        raise ValueError(f"devices_per_run: {devices_per_run} does not divide the mesh's {devices.size} devices")
    return Mesh(devices.reshape(-1, devices_per_run), ("runs", "width"))


def state_sharding(spec: Spec, mesh: Mesh):
    """The :class:`RunState` layout on ``mesh``: runs axis on ``'runs'``; on a ``'width'`` axis, every student and
    optimiser-state leaf with a node axis (``W (runs, fan_in, fan_out)``, ``b (runs, fan_out)``) split by output
    node when the width divides ``fan_out``, everything else replicated.

    Returns:
      a pytree of :class:`NamedSharding` shaped like a vmapped :class:`RunState` (one ``NamedSharding`` for the
      whole state without a ``'width'`` axis).
    """
    width = dict(mesh.shape).get("width", 1)
    runs = NamedSharding(mesh, PartitionSpec("runs"))
    if width == 1:
        return runs  # a prefix of the whole state: the program is exactly the runs-only one
    shapes = jax.eval_shape(
        lambda: jax.vmap(functools.partial(init_run, spec))(
            Hparams.broadcast(1, dtype=spec.dtype), jax.vmap(seed_key, (None, 0))(0, jax.numpy.zeros(1, "uint32"))
        )[2]
    )

    def leaf(x) -> NamedSharding:
        if width > 1 and x.ndim >= 2 and x.shape[-1] % width == 0:
            return NamedSharding(mesh, PartitionSpec("runs", *([None] * (x.ndim - 2)), "width"))
        return runs

    return jax.tree.map(leaf, shapes)


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
