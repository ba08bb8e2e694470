"""The engine: vmapped grid == runs one at a time, same key == same numbers, update == -lr * jax.grad."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from specjax.core import data as data_lib
from specjax.core import networks
from specjax.engine import Hparams, Program, Spec, init_run, loss_fn, make_mesh, seed_key, train_steps

SPEC = Spec(d=8, teacher_widths=(3,), c=4, over_realization=2, n_train=128, n_eval=64, batch_size=8)


def _grid(runs):
    """Four runs: two seeds x two (polarity, lr) settings."""
    hp = Hparams(
        teacher_polarity=jnp.array([0.0, 0.0, 1.5, 1.5]),
        lr=jnp.array([0.05, 0.05, 0.1, 0.1]),
        data_std=jnp.full(4, 1.5),
        init_scale=jnp.full(4, 0.1),
        momentum=jnp.zeros(4),
        weight_decay=jnp.zeros(4),
    )
    keys = jax.vmap(seed_key, (None, 0))(7, jnp.array([0, 1, 0, 1]))
    return jax.tree.map(lambda a: a[:runs], (hp, keys))


def _train_program(program, hp, keys, chunks=3):
    teacher, data, state = program.init(*program.place((hp, keys)))
    for _ in range(chunks):
        state, stats = program.train(state, teacher, data, program.place(hp))
    return jax.device_get((state, stats, program.evaluate(state, data)))


def test_vmapped_grid_equals_runs_one_at_a_time():
    hp, keys = _grid(4)
    mesh1 = make_mesh(1)
    grid = _train_program(Program(SPEC, 40, mesh1), hp, keys)
    single = Program(SPEC, 40, mesh1)
    for r in range(4):
        one = _train_program(single, *jax.tree.map(lambda a, r=r: a[r : r + 1], (hp, keys)))
        for a, b in zip(jax.tree.leaves(grid), jax.tree.leaves(one), strict=True):
            np.testing.assert_allclose(np.asarray(a)[r], np.asarray(b)[0], rtol=1e-12, atol=1e-14)


def test_a_run_keeps_its_numbers_in_another_position_and_different_seeds_differ():
    """The same four runs in reverse order through the same program: each run's numbers follow its key, not its
    position in the vmapped batch (bit for bit); and seeds 0 and 1 of a setting differ."""
    hp, keys = _grid(4)
    program = Program(SPEC, 40, make_mesh(1))
    a = _train_program(program, hp, keys)
    b = _train_program(program, *jax.tree.map(lambda x: x[::-1], (hp, keys)))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y)[::-1], strict=True)
    W = np.asarray(a[0].student[0][0])
    assert not np.allclose(W[0], W[1])  # seeds 0 and 1


def test_sgd_update_equals_minus_lr_times_grad_of_the_loss():
    hp = Hparams.broadcast(1, teacher_polarity=1.0, lr=0.05, data_std=1.5, init_scale=0.1)
    hp = jax.tree.map(lambda a: a[0], hp)
    teacher, data, state = init_run(SPEC, hp, seed_key(3, 0))
    new_state, stats = train_steps(SPEC, 1, state, teacher, data, hp)
    x, y = data_lib.minibatch(data, jnp.int32(0), SPEC.batch_size, teacher, data_std=hp.data_std)
    grads = jax.grad(loss_fn, argnums=1)(SPEC, state.student, x, y)
    expected = jax.tree.map(lambda p, g: p - 0.05 * g, state.student, grads)
    for a, b in zip(jax.tree.leaves(new_state.student), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    assert int(new_state.step) == 1 and int(stats.steps) == 1
    np.testing.assert_allclose(stats.loss_sum, loss_fn(SPEC, state.student, x, y), rtol=1e-13)


def test_optimizers_are_optax_and_schedule_applies():
    import dataclasses

    from specjax.engine.run import make_optimizer

    hp = jax.tree.map(lambda a: a[0], Hparams.broadcast(1, lr=0.2, momentum=0.9, weight_decay=0.01))
    params = {"w": jnp.ones(3)}
    grads = {"w": jnp.full(3, 2.0)}
    spec = dataclasses.replace(SPEC, lr_boundaries=(2,), lr_scales=(0.5,))
    tx = make_optimizer(spec, hp)
    state = tx.init(params)
    steps = []
    for _ in range(3):
        upd, state = tx.update(grads, state, params)
        steps.append(float(upd["w"][0]))
    np.testing.assert_allclose(steps, [-0.4, -0.4, -0.2], rtol=1e-12)  # 0.2 then 0.1 from step 2
    for name in ("momentum", "adam"):
        ref = optax.sgd(0.2, momentum=0.9) if name == "momentum" else optax.adam(0.2)
        wd = dataclasses.replace(SPEC, optimizer=name, use_weight_decay=True)
        tx, tx_ref = make_optimizer(wd, hp), optax.chain(optax.add_decayed_weights(0.01), ref)
        s, s_ref = tx.init(params), tx_ref.init(params)
        for _ in range(2):
            u, s = tx.update(grads, s, params)
            u_ref, s_ref = tx_ref.update(grads, s_ref, params)
        np.testing.assert_allclose(u["w"], u_ref["w"], rtol=1e-12)


def test_full_batch_gd_uses_the_whole_training_set():
    import dataclasses

    spec = dataclasses.replace(SPEC, optimizer="gd")
    hp = jax.tree.map(lambda a: a[0], Hparams.broadcast(1, lr=0.05, data_std=1.5, init_scale=0.1))
    teacher, data, state = init_run(spec, hp, seed_key(3, 0))
    new_state, _ = train_steps(spec, 1, state, teacher, data, hp)
    grads = jax.grad(loss_fn, argnums=1)(spec, state.student, data.x_train, data.y_train)
    np.testing.assert_allclose(new_state.student[0][0], state.student[0][0] - 0.05 * grads[0][0], rtol=1e-12)


def test_fresh_samples_mode_and_uniform_data():
    import dataclasses

    spec = dataclasses.replace(SPEC, n_train=0, data="uniform")
    hp = jax.tree.map(lambda a: a[0], Hparams.broadcast(1, lr=0.05, data_std=2.0, init_scale=0.1))
    teacher, data, state = init_run(spec, hp, seed_key(3, 0))
    assert data.x_train.shape == (0, 8)
    x0, y0 = data_lib.minibatch(data, jnp.int32(0), 8, teacher, data_std=2.0, distribution="uniform")
    x1, _ = data_lib.minibatch(data, jnp.int32(1), 8, teacher, data_std=2.0, distribution="uniform")
    assert not np.allclose(x0, x1) and float(jnp.abs(x0).max()) <= 2.0 * np.sqrt(3)
    np.testing.assert_allclose(y0, networks.apply(teacher, x0))
    new_state, stats = train_steps(spec, 5, state, teacher, data, hp)
    assert int(stats.steps) == 5


def test_divergent_run_is_frozen_and_flagged():
    hp = jax.tree.map(lambda a: a[0], Hparams.broadcast(1, lr=1e6, data_std=1.5, init_scale=0.1))
    teacher, data, state = init_run(SPEC, hp, seed_key(3, 0))
    new_state, stats = train_steps(SPEC, 30, state, teacher, data, hp)
    at = int(new_state.diverged_at)
    assert 0 <= at < 30 and int(stats.steps) == at and int(new_state.step) == 30
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(new_state.student))
