"""A plain jit(vmap(scan)) script of the "small sweep" workload, the yardstick for specjax's overhead.

The workload of ``python -m specjax.sweep --config=experiments/configs/quickstart.py --config.seeds=16
--config.epochs=5``: a two-layer teacher (d=50, m=10, C=20, unit-norm filters, fan-out norms (j+1)^-p for p in
{0, 1, 2}), students at over-realization 1 and 5 (N(0, 0.005^2) init), 16 seeds, 10k training points, batch 16,
SGD lr 0.02, 5 epochs x 2000 steps, evaluation on 4k points (loss, teacher x student correlations) after every
epoch, float32. One ``jit(vmap(...))`` per over-realization over all 48 runs, XLA's default CPU threading, no
checkpoints, no persistent cache. Run: ``python experiments/plain_sweep.py``; prints the wall time.
"""

import time

import jax
import jax.numpy as jnp

D, M, C, SEEDS, POLARITIES = 50, 10, 20, 16, (0.0, 1.0, 2.0)
N_TRAIN, N_EVAL, BATCH, LR, EPOCHS, STEPS = 10_000, 4_000, 16, 0.02, 5, 2_000


def forward(params, x):
    (w1, b1), (w2, b2) = params
    h = jax.nn.relu(x @ w1 + b1)
    return h @ w2 + b2, h


def init(key, polarity, width):
    kt1, kt2, ks1, ks2, kx, ke = jax.random.split(key, 6)
    w1 = jax.random.normal(kt1, (D, M))
    w1 = w1 / jnp.linalg.norm(w1, axis=0, keepdims=True)
    w2 = jax.random.normal(kt2, (M, C))
    w2 = w2 / jnp.linalg.norm(w2, axis=1, keepdims=True) * ((jnp.arange(M) + 1.0) ** -polarity)[:, None]
    teacher = ((w1, jnp.full((M,), -0.1)), (w2, jnp.zeros((C,))))
    student = (
        (0.005 * jax.random.normal(ks1, (D, width)), jnp.zeros((width,))),
        (0.005 * jax.random.normal(ks2, (width, C)), jnp.zeros((C,))),
    )
    x, x_eval = 1.5 * jax.random.normal(kx, (N_TRAIN, D)), 1.5 * jax.random.normal(ke, (N_EVAL, D))
    return teacher, student, (x, forward(teacher, x)[0], x_eval, forward(teacher, x_eval))


def loss(student, x, y):
    return 0.5 * jnp.mean(jnp.sum((forward(student, x)[0] - y) ** 2, axis=-1))


def train_epoch(student, data, key):
    x, y = data[0], data[1]

    def step(params, k):
        rows = jax.random.randint(k, (BATCH,), 0, N_TRAIN)
        grads = jax.grad(loss)(params, x[rows], y[rows])
        return jax.tree.map(lambda p, g: p - LR * g, params, grads), None

    return jax.lax.scan(step, student, jax.random.split(key, STEPS))[0]


def evaluate(student, data):
    x_eval, (y_eval, h_teacher) = data[2], data[3]
    out, h = forward(student, x_eval)
    t = (h_teacher - h_teacher.mean(0)) / (h_teacher.std(0) + 1e-10)
    s = (h - h.mean(0)) / (h.std(0) + 1e-10)
    return 0.5 * jnp.mean(jnp.sum((out - y_eval) ** 2, axis=-1)), (t.T @ s / N_EVAL).max(axis=1)


def main():
    start = time.perf_counter()
    keys = jax.random.split(jax.random.key(1), SEEDS)
    runs_p = jnp.repeat(jnp.asarray(POLARITIES), SEEDS)
    runs_k = jnp.tile(keys, len(POLARITIES))
    for over in (1, 5):
        teacher, student, data = jax.jit(jax.vmap(lambda k, p, w=over * M: init(k, p, w)))(runs_k, runs_p)
        train = jax.jit(jax.vmap(train_epoch))
        ev = jax.jit(jax.vmap(evaluate))
        history = [ev(student, data)]
        for epoch in range(EPOCHS):
            student = train(student, data, jax.vmap(lambda k, e=epoch: jax.random.fold_in(k, e))(runs_k))
            history.append(ev(student, data))
        loss_final, best = jax.device_get(history[-1])
        print(f"x{over}: median eval loss {float(jnp.median(loss_final)):.3g}, success {(best > 0.95).mean():.2f}")
    print(f"wall {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
