"""Exact population gradient flow of the two-layer ReLU net, and the same start trained by SGD (docs/theory.md §5-6).

Under :math:`x\\sim N(0,s^2I_d)` with a bias-free hidden layer, the population gradient
:math:`\\dot{\\mathcal W}=-\\nabla J` has the closed form
:func:`specjax.theory.closed_forms.population_negative_gradient` ("angle-based dynamics": every term is a
function of angles and norms, Theorem 6). This module integrates it on device:

* :func:`rk4_integrate`: classical fixed-step Runge-Kutta 4, one ``lax.scan`` over records with an inner
  ``lax.scan`` over steps;
* :func:`adaptive_integrate`: adaptive Dormand-Prince 5(4) with a PID step-size controller from ``diffrax``;
* :func:`make_population_flow`: returns a pure ``flow(student0, teacher, data_std, t_final) -> FlowRecord`` that
  records every student's angle to every teacher and the norms :math:`\\|w_j\\|`, :math:`\\|v_j\\|` over time.
  Vmap it over initial conditions: ``jax.jit(jax.vmap(flow, in_axes=(0, None, None, None)))(students0, teacher,
  s, t)``.
* :func:`make_sgd_flow_comparison`: trains a run of the engine (:mod:`specjax.engine.run`) with SGD on its finite data
  and integrates the population flow from the *same* initial student, both recorded on one time axis
  :math:`t=\\eta\\cdot\\text{steps}` (gradient flow is the :math:`\\eta\\to0` limit of GD/SGD in that time).

Parameters use the :mod:`specjax.core.networks` layout: ``((W1 (d, n), None), (W2 (n, C), c (C,) or None))``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from specjax import engine
from specjax.core import networks
from specjax.core.networks import Params
from specjax.errors import FlowDivergenceError
from specjax.theory import closed_forms

Array = jax.Array
VectorField = Callable[[Array, object], object]


class FlowRecord(NamedTuple):
    """A trajectory of the two-layer student, sampled at ``T`` times (leading axis ``T``).

    Attributes:
      time: ``(T,)`` gradient-flow time.
      angles: ``(T, n, m)`` angle :math:`\\angle(w_j,w^*_k)` between student ``j`` and teacher ``k``.
      weight_norms: ``(T, n)`` :math:`\\|w_j\\|`.
      fan_out_norms: ``(T, n)`` :math:`\\|v_j\\|`.
      loss: ``(T,)`` population loss :func:`specjax.theory.closed_forms.population_loss` (exact, also for SGD iterates).
      students: the parameters with leading axis ``T``, or ``None`` if not kept.
    """

    time: Array
    angles: Array
    weight_norms: Array
    fan_out_norms: Array
    loss: Array
    students: Params | None

    @property
    def balancedness(self) -> Array:
        """:math:`\\|w_j\\|^2-\\|v_j\\|^2`, ``(T, n)``: conserved by the flow (Eqn 8)."""
        return self.weight_norms**2 - self.fan_out_norms**2


def record_trajectory(
    time: Array, students: Params, teacher: Params, data_std: Array, keep_students: bool = False
) -> FlowRecord:
    """:class:`FlowRecord` of a sequence of students (e.g. SGD snapshots or ODE states).

    Args:
      time: ``(T,)``.
      students: parameters with leading axis ``T``.
      teacher: bias-free-hidden-layer teacher.
      data_std: ``s``.
      keep_students: store ``students`` in the record.
    """

    def one(student):
        weights, fan_out = student[0][0], student[1][0]
        return (
            closed_forms.angle_matrix(weights, teacher[0][0]),
            jnp.linalg.norm(weights, axis=0),
            jnp.linalg.norm(fan_out, axis=1),
            closed_forms.population_loss(student, teacher, data_std),
        )

    angles, weight_norms, fan_out_norms, loss = jax.vmap(one)(students)
    return FlowRecord(time, angles, weight_norms, fan_out_norms, loss, students if keep_students else None)


def population_vector_field(teacher: Params, data_std: Array) -> VectorField:
    """The autonomous field :math:`(t,\\mathcal W)\\mapsto-\\nabla J(\\mathcal W)` for a fixed teacher."""

    def field(t, student):
        del t
        return closed_forms.population_negative_gradient(student, teacher, data_std)

    return field


def _axpy(scale, step, state):
    return jax.tree.map(lambda s, k: s + scale * k, state, step)


def rk4_step(field: VectorField, t: Array, state, dt: Array):
    """One classical Runge-Kutta-4 step of :math:`\\dot y=f(t,y)` on a pytree ``state``."""
    k1 = field(t, state)
    k2 = field(t + dt / 2, _axpy(dt / 2, k1, state))
    k3 = field(t + dt / 2, _axpy(dt / 2, k2, state))
    k4 = field(t + dt, _axpy(dt, k3, state))
    increment = jax.tree.map(lambda a, b, c, e: (a + 2 * b + 2 * c + e) / 6, k1, k2, k3, k4)
    return _axpy(dt, increment, state)


def rk4_integrate(field: VectorField, state0, t_final: Array, num_records: int, steps_per_record: int):
    """Fixed-step RK4 from ``t = 0`` to ``t_final``, recording ``num_records + 1`` equally spaced states.

    Args:
      field: :math:`f(t, y)` on pytrees.
      state0: initial pytree.
      t_final: final time (may be traced).
      num_records: number of recording intervals (static).
      steps_per_record: RK4 steps per interval (static); the step is ``t_final / (num_records * steps_per_record)``.

    Returns:
      ``(times (T,), states)`` with ``T = num_records + 1`` and a leading ``T`` axis on every leaf.
    """
    dt = jnp.asarray(t_final) / (num_records * steps_per_record)

    def interval(carry, _):
        t, state = carry

        def step(inner, _):
            t_in, y = inner
            return (t_in + dt, rk4_step(field, t_in, y, dt)), None

        (t, state), _ = jax.lax.scan(step, (t, state), None, length=steps_per_record)
        return (t, state), state

    t0 = jnp.zeros_like(dt)
    _, states = jax.lax.scan(interval, (t0, state0), None, length=num_records)
    states = jax.tree.map(lambda first, rest: jnp.concatenate([first[None], rest]), state0, states)
    times = jnp.arange(num_records + 1, dtype=dt.dtype) * (dt * steps_per_record)
    return times, states


class AdaptiveStats(NamedTuple):
    """Step counts of :func:`adaptive_integrate` (scalars)."""

    accepted_steps: Array
    rejected_steps: Array


def adaptive_integrate(
    field: VectorField,
    state0,
    save_times: Array,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    max_steps: int = 100_000,
    initial_step: float | None = None,
):
    """Adaptive Dormand-Prince 5(4) (``diffrax.Dopri5`` with a ``PIDController``) from ``save_times[0]``.

    Args:
      field: :math:`f(t, y)` on pytrees.
      state0: initial pytree, at ``save_times[0]``.
      save_times: ``(T,)`` increasing times at which to return the state.
      rtol, atol: local error tolerances.
      max_steps: step budget; exceeding it raises at run time.
      initial_step: first trial step; ``None`` lets diffrax choose.

    Returns:
      ``(states, stats)``: states with a leading ``T`` axis, and :class:`AdaptiveStats`.

    Raises:
      ImportError: ``diffrax`` is not installed (the fixed-step path needs only JAX).
    """
    try:  # Imported here so that the rest of the module works without the optional ODE library.
        import diffrax
    except ImportError as error:
        raise ImportError("adaptive_integrate needs diffrax: pip install diffrax") from error
    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, y, args: field(t, y)),
        diffrax.Dopri5(),
        t0=save_times[0],
        t1=save_times[-1],
        dt0=initial_step,
        y0=state0,
        saveat=diffrax.SaveAt(ts=save_times),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps,
    )
    stats = AdaptiveStats(solution.stats["num_accepted_steps"], solution.stats["num_rejected_steps"])
    return solution.ys, stats


def make_population_flow(
    num_records: int,
    method: str = "rk4",
    steps_per_record: int = 10,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    max_steps: int = 100_000,
    keep_students: bool = False,
) -> Callable[[Params, Params, Array], FlowRecord]:
    """A pure ``flow(student0, teacher, data_std, t_final) -> FlowRecord`` of the exact population gradient flow.

    Static settings are fixed here (a new value compiles a new program); ``data_std`` and the horizon ``t_final``
    are arguments of ``flow`` and may be traced (vmapped).

    Args:
      num_records: the record holds ``num_records + 1`` equally spaced times, ``0`` and ``t_final`` included.
      method: ``'rk4'`` (fixed step, ``steps_per_record`` steps per interval) or ``'adaptive'`` (Dormand-Prince,
        ``rtol``/``atol``/``max_steps``).
      keep_students: also return the parameters at each record.

    Returns:
      ``flow(student0, teacher, data_std, t_final)``; ``student0`` and ``teacher`` are two-layer nets with
      bias-free hidden layers (output biases allowed). Vmap ``flow`` over initial conditions.
    """
    if method not in ("rk4", "adaptive"):
        raise ValueError(f"method: unknown value {method!r}; expected 'rk4' or 'adaptive'")

    def flow(student0: Params, teacher: Params, data_std: Array, t_final: Array) -> FlowRecord:
        field = population_vector_field(teacher, data_std)
        if method == "rk4":
            times, states = rk4_integrate(field, student0, t_final, num_records, steps_per_record)
        else:
            dtype = student0[0][0].dtype
            times = jnp.linspace(0.0, t_final, num_records + 1, dtype=dtype)
            states, _ = adaptive_integrate(field, student0, times, rtol, atol, max_steps)
        return record_trajectory(times, states, teacher, data_std, keep_students)

    return flow


# ---------------------------------------------------------------------------------------------------------------
# SGD on finite data next to the population flow.


#: Largest rise of the flow's loss between records, relative to its initial loss, that
#: :func:`make_sgd_flow_comparison` tolerates (rounding); the exact flow's loss never rises (it is a gradient flow).
FLOW_LOSS_RISE_RTOL = 1e-8


def check_flow_descends(time: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """Host-side check of a recorded flow; returns ``loss`` unchanged.

    Args:
      time: ``(..., T)`` record times; must increase strictly (a learning rate of 0 gives a constant time axis).
      loss: ``(..., T)`` the flow's population loss at those times.

    Raises:
      FlowDivergenceError: the time axis does not increase, or the loss rises between two records by more than
        :data:`FLOW_LOSS_RISE_RTOL` times the initial loss.
    """
    time, loss = np.asarray(time), np.asarray(loss)
    time = np.broadcast_to(time, np.broadcast_shapes(time.shape, loss.shape))
    if not np.all(np.diff(time, axis=-1) > 0):
        raise FlowDivergenceError(
            "SGD-vs-flow: record times must increase (learning rate > 0 and steps_per_record > 0); "
            f"got times {time.reshape(-1, time.shape[-1])[0].tolist()}"
        )
    flat_time, flat_loss = time.reshape(-1, time.shape[-1]), loss.reshape(-1, loss.shape[-1])
    rise = np.diff(flat_loss, axis=-1) - FLOW_LOSS_RISE_RTOL * np.abs(flat_loss[:, :1])
    rise = np.where(np.isnan(rise), np.inf, rise)  # NaN counts as a rise
    if np.any(rise > 0):
        run, record = np.unravel_index(np.argmax(rise), rise.shape)
        raise FlowDivergenceError(
            "SGD-vs-flow: the population flow's loss increases between records "
            f"(run {run}: {flat_loss[run, record]:.6g} at t={flat_time[run, record]:.6g} -> "
            f"{flat_loss[run, record + 1]:.6g} at t={flat_time[run, record + 1]:.6g}); the RK4 step is too large "
            "for this field: raise flow_steps_per_record"
        )
    return loss


class SgdFlowComparison(NamedTuple):
    """One run trained by SGD and the population flow from its initial student, on one time axis.

    Attributes:
      time: ``(T,)`` :math:`t=\\eta\\cdot\\text{steps}` (times :math:`2/C` for the ``'mse'`` loss convention).
      steps: ``(T,)`` SGD steps done at each record.
      sgd: :class:`FlowRecord` of the SGD iterates (its ``loss`` is the exact population loss).
      flow: :class:`FlowRecord` of the population flow.
      teacher: the run's teacher.
    """

    time: Array
    steps: Array
    sgd: FlowRecord
    flow: FlowRecord
    teacher: Params


def comparable_problems(spec: engine.Spec) -> list[tuple[str, str]]:
    """What keeps ``spec`` outside the closed form's setting, as ``(config field, problem)`` pairs (empty if none)."""
    problems = []
    if spec.teacher != "two_layer" or len(spec.teacher_widths) != 1:
        problems.append(("teacher", "must be 'two_layer'"))
    if spec.use_bias:
        problems.append(("use_bias", "must be False (closed forms need a bias-free hidden layer)"))
    if spec.data != "gaussian":
        problems.append(("data", "must be 'gaussian'"))
    if spec.activation != networks.RELU:
        problems.append(("activation", "must be 'relu'"))
    if spec.optimizer not in ("sgd", "gd"):
        problems.append(("optimizer", "must be 'sgd' or 'gd' (the flow is their small-step limit)"))
    if spec.lr_boundaries:
        problems.append(("lr_schedule_epochs", "must be empty (no learning-rate schedule: time is lr * steps)"))
    return problems


def _check_comparable(spec: engine.Spec) -> None:
    problems = comparable_problems(spec)
    if problems:
        raise ValueError("make_sgd_flow_comparison: " + "; ".join(f"{f} {why}" for f, why in problems))


def make_sgd_flow_comparison(
    spec: engine.Spec,
    num_records: int,
    steps_per_record: int,
    flow_steps_per_record: int | None = None,
    keep_students: bool = False,
) -> Callable[[engine.Hparams, Array], SgdFlowComparison]:
    """A pure ``compare(hp, key) -> SgdFlowComparison`` for one run of the engine; vmap it over keys/settings.

    The run is built by :func:`specjax.engine.run.init_run` from ``(spec, hp, key)`` -- teacher, finite training set and
    initial student exactly as in a sweep -- and trained by :func:`specjax.engine.run.train_steps` in
    ``num_records`` chunks of ``steps_per_record`` steps. The population flow starts from the same initial
    student and is integrated with RK4 (``flow_steps_per_record`` steps per record) to the same times.

    Args:
      spec: engine settings; must be a bias-free two-layer ReLU net on Gaussian data trained by ``'sgd'`` or
        ``'gd'`` without a schedule.
      num_records: number of record intervals.
      steps_per_record: SGD steps per interval.
      flow_steps_per_record: RK4 steps per interval; ``None`` (default) takes ``steps_per_record``, one RK4 step of
        length :math:`\\eta` per SGD step. That step is safe whenever SGD's is: SGD on the loss is stable only for
        :math:`\\eta\\lambda_{\\max}<2`, inside RK4's real stability interval :math:`h\\lambda<2.78`. (The former
        default of 10 RK4 steps per record of 100+ SGD steps let the "flow" loss rise and stall at 0.015-0.63.)
      keep_students: keep parameter snapshots in both records.

    Returns:
      ``compare(hp, key)``. ``hp.lr`` must be positive (no default: the time axis is :math:`\\eta\\cdot` steps).
      When the result is computed, :func:`check_flow_descends` runs on the host on the flow's loss: under ``jit``
      its :class:`FlowDivergenceError` reaches the caller wrapped in a ``jax.errors.JaxRuntimeError`` that
      carries its message.

    Raises:
      ValueError: ``spec`` is outside the closed form's setting.
      FlowDivergenceError: (when ``compare`` runs) the flow's loss rose between records, or ``hp.lr <= 0``.
    """
    _check_comparable(spec)
    if flow_steps_per_record is None:
        flow_steps_per_record = steps_per_record
    time_per_step_factor = 1.0 if spec.loss == "half_sse" else 2.0 / spec.c

    def compare(hp: engine.Hparams, key: Array) -> SgdFlowComparison:
        teacher, dataset, state = engine.init_run(spec, hp, key)
        student0 = state.student

        def chunk(run_state, _):
            run_state, _ = engine.train_steps(spec, steps_per_record, run_state, teacher, dataset, hp)
            return run_state, run_state.student

        _, snapshots = jax.lax.scan(chunk, state, None, length=num_records)
        students = jax.tree.map(lambda first, rest: jnp.concatenate([first[None], rest]), student0, snapshots)
        steps = jnp.arange(num_records + 1) * steps_per_record
        time = hp.lr * time_per_step_factor * steps
        field = population_vector_field(teacher, hp.data_std)
        flow_time, flow_states = rk4_integrate(field, student0, time[-1], num_records, flow_steps_per_record)
        record = functools.partial(
            record_trajectory, teacher=teacher, data_std=hp.data_std, keep_students=keep_students
        )
        flow = record(flow_time, flow_states)
        # The check runs on the host after the integration, under jit and vmap too (the loss passes through it).
        checked = jax.pure_callback(
            check_flow_descends,
            jax.ShapeDtypeStruct(flow.loss.shape, flow.loss.dtype),
            time,
            flow.loss,
            vmap_method="expand_dims",
        )
        return SgdFlowComparison(time, steps, record(time, students), flow._replace(loss=checked), teacher)

    return compare
