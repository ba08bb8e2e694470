"""The benchmark's baselines: the per-seed jitted JAX loop and the reference's per-seed PyTorch loop.

* **jax per-seed loop** (:func:`measure_jax_loop`): the same specjax step function jitted for one run (no vmap),
  seeds one after another, one run in flight per device;
* **torch per-seed loop** (:func:`measure_torch`): the reference's hand-written forward/backward loop
  (``recon_two_layer.py``) in PyTorch, one seed after another: :math:`h=\\mathrm{relu}([X,1]W_1)`, :math:`f=[h,1]W_2`,
  :math:`g=f^*-f`, :math:`W\\mathrel{+}=\\eta\\,\\hat f^\\top g/B` with a batch of 16 drawn with replacement from
  10k training points; ``processes`` such loops at once (one per core, ``torch.set_num_threads(1)``), rates summed,
  or one process with torch's default intra-op threads. Needs ``pip install torch==2.13.0`` (the ``bench`` extra).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import random
import time

from specjax.bench.measure import Rate, best_rate, hparams


def measure_jax_loop(spec, steps: int, repeats: int) -> Rate:
    """Run-steps/s of a jitted single-run :func:`train_steps` (no vmap), one run in flight per device."""
    import functools

    import jax
    import jax.numpy as jnp

    from specjax.engine.run import init_run, seed_key, train_steps

    devices = jax.devices()
    hp = jax.tree.map(lambda a: a[0], hparams(1, spec.dtype))
    init = jax.jit(functools.partial(init_run, spec))
    step = jax.jit(functools.partial(train_steps, spec, steps), donate_argnums=(0,))
    runs = []
    for i, dev in enumerate(devices):
        teacher, data, state = jax.device_put(init(hp, seed_key(1, jnp.int32(i))), dev)
        runs.append([state, teacher, data, jax.device_put(hp, dev)])

    def one_round():
        for r in runs:
            r[0], _ = step(*r)
        jax.block_until_ready([r[0] for r in runs])

    one_round()
    return best_rate(one_round, len(devices) * steps, repeats, len(devices))


def torch_worker(
    d: int, m: int, c: int, n: int, n_train: int, dtype: str, steps: int, seed: int, threads: int = 1
) -> tuple[int, float, float]:
    """One process: the reference loop for ``steps`` iterations. Returns ``(steps, wall s, CPU s)``.

    ``threads``: torch intra-op threads; 0 keeps torch's default (one per core, how the reference runs unmodified).
    """
    import torch

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    random.seed(seed)
    dt = torch.float64 if dtype == "float64" else torch.float32
    batch, lr = 16, 0.01
    ones = torch.ones(n_train, 1, dtype=dt)
    x_train = torch.cat([torch.randn(n_train, d, dtype=dt) * 1.5, ones], 1)  # [X, 1]
    teacher_w1 = torch.randn(d + 1, m, dtype=dt)
    teacher_w2 = torch.randn(m + 1, c, dtype=dt)
    y_train = torch.cat([torch.relu(x_train @ teacher_w1), ones], 1) @ teacher_w2
    w1 = torch.randn(d + 1, n, dtype=dt) * 0.005
    w2 = torch.randn(n + 1, c, dtype=dt) * 0.005
    ones_b = torch.ones(batch, 1, dtype=dt)

    rows = range(n_train)

    def run(k):
        nonlocal w1, w2
        for _ in range(k):
            idx = torch.tensor(random.choices(rows, k=batch))  # the reference's sampling with replacement
            x, y = x_train[idx], y_train[idx]
            h = torch.relu(x @ w1)
            h1 = torch.cat([h, ones_b], 1)
            g2 = y - h1 @ w2  # f* - f
            _loss = 0.5 * (g2 * g2).sum() / batch
            g1 = (g2 @ w2[:-1].T) * (h > 0)
            w2 += lr * (h1.T @ g2) / batch
            w1 += lr * (x.T @ g1) / batch

    run(20)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    run(steps)
    return steps, time.perf_counter() - t0, time.process_time() - c0


def measure_torch(spec, steps: int, processes: int, threads: int = 1) -> Rate:
    """Run-steps/s of ``processes`` concurrent torch loops with ``threads`` threads each (summed; 0: torch default)."""
    ctx = multiprocessing.get_context("spawn")
    n = spec.student_widths[1]
    args = (spec.d, spec.teacher_widths[0], spec.c, n, spec.n_train, spec.dtype, steps)
    per_process = [(*args, seed, threads) for seed in range(processes)]
    with concurrent.futures.ProcessPoolExecutor(max_workers=processes, mp_context=ctx) as pool:
        results = list(pool.map(torch_worker, *zip(*per_process, strict=True)))
    return Rate(sum(k / w for k, w, _ in results), sum(k / c for k, _, c in results))


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True
