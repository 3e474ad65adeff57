"""Reward-modulated STDP (Florian 2007): MSTDP and MSTDP-ET, dense and conv, step and window.

Traces (``pairing="all"``: cumulative, all-to-all; ``"nearest"``: nearest-spike),
including the current step's spike::

    x_pre_t  = a_+ * x_pre_{t-1}  + A_plus  * s_pre_t       a_+ = exp(-dt/tau_plus)
    x_post_t = a_- * x_post_{t-1} + A_minus * s_post_t      a_- = exp(-dt/tau_minus)

Per-sample eligibility of synapse ``post i <- pre j`` (sample ``b``, summed
over output positions for a convolution)::

    z_{b,t} = f_post(w) * s_post_{b,t,i} * x_pre_{b,t,j} - f_pre(w) * x_post_{b,t,i} * s_pre_{b,t,j}

MSTDP: the reward at ``t`` acts on the eligibility formed up to the step
before (``z_{-1}`` is carried from the previous window, zero at the start)::

    dw_t = eta * sum_b r_{b,t} * z_{b,t-1}

MSTDP-ET (eligibility trace, ``c = exp(-dt/tau_e)``)::

    e_{b,t} = c * e_{b,t-1} + z_{b,t-1} / tau_e,     dw_t = eta * sum_b r_{b,t} * e_{b,t}

``eta`` is the learning rate (Florian's ``gamma``); ``A_plus``/``A_minus`` are
the trace amplitudes (Florian's ``A+`` and ``-A-``, both given here as
magnitudes). The batch reduction is ``"sum"`` (default, as written above),
``"mean"`` (divide by ``B``) or a callable reducing dim 0 of the per-sample
changes. The update is signed (the reward may be negative).

Reward broadcasting (``T`` steps, ``B`` samples):

* step form: a scalar (Python number or 0-d tensor) or ``[B]``;
* window form: a scalar, ``[T]`` (one reward per step, shared by the batch),
  ``[B]`` (one per sample, constant over the window), ``[T, B]``, or the
  explicit ``[T, 1]`` / ``[1, B]``. A 1-d reward is ambiguous when
  ``T == B > 1`` and is rejected: pass ``[T, 1]`` or ``[1, B]``.

Anything else raises a ``ValueError`` naming ``reward``.

Fast window form. Everything is linear in ``z``, so the window sum is
rewritten with a *weighted* reward per step and sample, and each term is one
product over the flattened ``T*B*P`` dimension::

    MSTDP:    sum_t r_t z_{t-1}  = r_0 Z + sum_{u<T-1} r_{u+1} z_u
    MSTDP-ET: sum_t r_t e_t      = (sum_t c^t r_t) E + sum_{u<T-1} q_u z_u,
              q_u = (1/tau_e) sum_{t>u} c^(t-1-u) r_t      (an anti-causal filter of r)

with ``z_u`` expanded as ``s_post (x) x_pre`` and ``x_post (x) s_pre``, the
weighted reward multiplying the postsynaptic factor. ``Z`` (last eligibility)
or ``E`` (eligibility trace for the next step) is the carried per-sample state.

Memory: the carried state ``eligibility`` (MSTDP: ``z`` of the last step) and
``eligibility_trace`` (MSTDP-ET: ``e`` that the next step's reward multiplies)
are per sample, ``[B, G, O, K]`` = ``B`` times the weight's size. This is
inherent to rules whose reward differs per sample. The window's weight change
itself never forms a per-sample tensor unless ``batch_reduction`` is a callable.

Reference: R. V. Florian (2007), "Reinforcement learning through modulation
of spike-timing-dependent synaptic plasticity", Neural Computation
19(6):1468-1502. Defaults follow the paper: ``tau_plus = tau_minus = 20`` ms,
``A_plus = A_minus = 1``, ``tau_e = 25`` ms.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Real
from typing import Generic, NamedTuple, TypeVar

import attrs
import torch
from torch import Tensor

from plastic.functional.attrs_validators import non_negative, one_of, positive
from plastic.functional.bilinear import (
    PAIRINGS,
    BatchReduction,
    SynapseLayout,
    View,
    WeightFactor,
    check_rule_inputs,
    pairing_traces,
    reduce_batch,
    step_as_window,
)
from plastic.functional.traces import decay_factor, trace_anticausal_window
from plastic.functional.validation import check_tensor

__all__ = [
    "MSTDPETState",
    "MSTDPState",
    "RewardSTDPParameters",
    "RewardState",
    "RewardUpdate",
    "broadcast_reward",
    "mstdp_et_step",
    "mstdp_et_window",
    "mstdp_step",
    "mstdp_window",
]


@attrs.frozen
class RewardSTDPParameters:
    """Hyperparameters of MSTDP / MSTDP-ET (defaults: Florian 2007).

    ``tau_plus``, ``tau_minus``, ``tau_eligibility`` (> 0) in the unit of
    ``dt`` (ms); ``a_plus``, ``a_minus`` (>= 0) trace amplitudes in weight units
    per spike pair; ``learning_rate`` (>= 0, Florian's ``gamma``) scales the
    reward-weighted eligibility; ``pairing`` ``"all"`` (cumulative traces,
    all-to-all) or ``"nearest"``;
    ``exact_decay`` ``exp(-dt/tau)`` or the Euler ``1 - dt/tau``.
    ``tau_eligibility`` is used by MSTDP-ET only.
    """

    tau_plus: float = attrs.field(default=20.0, validator=positive)
    tau_minus: float = attrs.field(default=20.0, validator=positive)
    a_plus: float = attrs.field(default=1.0, validator=non_negative)
    a_minus: float = attrs.field(default=1.0, validator=non_negative)
    learning_rate: float = attrs.field(default=1.0, validator=non_negative)
    tau_eligibility: float = attrs.field(default=25.0, validator=positive)
    pairing: str = attrs.field(default="all", validator=one_of(*PAIRINGS))
    exact_decay: bool = True


class MSTDPState(NamedTuple):
    """Carried MSTDP state: ``trace_pre`` ``[B, *in_shape]``, ``trace_post``
    ``[B, *out_shape]``, ``eligibility`` = ``z`` of the last step ``[B, G, O, K]``."""

    trace_pre: Tensor
    trace_post: Tensor
    eligibility: Tensor


class MSTDPETState(NamedTuple):
    """Carried MSTDP-ET state: traces as :class:`MSTDPState`, and
    ``eligibility_trace`` ``[B, G, O, K]``: the ``e`` that the next step's
    reward multiplies (it already includes the last step's ``z / tau_e``)."""

    trace_pre: Tensor
    trace_post: Tensor
    eligibility_trace: Tensor


RewardState = TypeVar("RewardState", MSTDPState, MSTDPETState)


class RewardUpdate(NamedTuple, Generic[RewardState]):
    """Signed weight change ``update`` (the weight's shape) and the state to carry
    (:class:`MSTDPState` from MSTDP, :class:`MSTDPETState` from MSTDP-ET)."""

    update: Tensor
    state: RewardState


def broadcast_reward(
    reward: float | Tensor,
    steps: int,
    batch: int,
    *,
    dtype: torch.dtype,
    device: torch.device,
    step: bool = False,
) -> Tensor:
    """The reward as a ``[T, B]`` table (module docstring for the accepted shapes).

    ``step=True`` accepts only a scalar or ``[B]`` (the step form).
    """
    accepted = "a scalar or [B]" if step else "a scalar, [T], [B], [T, B], [T, 1] or [1, B]"
    if isinstance(reward, Real) and not isinstance(reward, bool):
        value = float(reward)
        if not math.isfinite(value):
            raise ValueError(f"reward: expected a finite value, got {reward!r}")
        return torch.full((steps, batch), value, dtype=dtype, device=device)
    if not isinstance(reward, Tensor):
        raise TypeError(f"reward: expected a real number or a tensor ({accepted}), got {type(reward).__name__}")
    check_tensor(reward, "reward", finite=True)
    if reward.dtype == torch.bool or reward.is_complex():
        raise TypeError(f"reward: expected a real-valued tensor, got dtype {reward.dtype}")
    if reward.device != torch.device(device):
        raise ValueError(f"reward: expected a tensor on {device}, got {reward.device}")
    table = reward.to(dtype)
    shape = tuple(reward.shape)
    if reward.ndim == 0:
        return table.expand(steps, batch)
    if reward.ndim == 1:
        length = shape[0]
        if step:
            if length == batch:
                return table.unsqueeze(0)
        elif steps == batch and length == steps and steps > 1:
            raise ValueError(
                f"reward: a 1-d reward of length {length} is ambiguous when T == B == {steps}; "
                "pass [T, 1] (per step) or [1, B] (per sample)"
            )
        elif length == steps:
            return table.unsqueeze(1).expand(steps, batch)
        elif length == batch:
            return table.unsqueeze(0).expand(steps, batch)
    elif reward.ndim == 2 and not step and shape[0] in (1, steps) and shape[1] in (1, batch):
        return table.expand(steps, batch)
    raise ValueError(f"reward: expected {accepted} with T={steps}, B={batch}, got shape {shape}")


class _Prepared(NamedTuple):
    layout: SynapseLayout
    pre: Tensor
    post: Tensor
    reward: Tensor
    trace_pre: Tensor
    trace_post: Tensor
    carried: Tensor
    factor_post: Tensor | None
    factor_pre: Tensor | None
    batch_reduction: BatchReduction
    dtype: torch.dtype


def _prepare(
    spikes_pre: Tensor,
    spikes_post: Tensor,
    reward: float | Tensor,
    state: tuple[Tensor, ...] | None,
    parameters: RewardSTDPParameters,
    dt: float,
    view: View,
    weight: Tensor | None,
    f_post: WeightFactor | None,
    f_pre: WeightFactor | None,
    batch_reduction: BatchReduction,
    carried_name: str,
) -> _Prepared:
    """Validate everything (before any computation) and fill a zero state where none is given."""
    checked = check_rule_inputs(
        spikes_pre, spikes_post, parameters, RewardSTDPParameters, view=view, dt=dt, weight=weight,
        batch_reduction=batch_reduction, state=state, state_fields=(
            ("trace_pre", "pre"), ("trace_post", "post"), (carried_name, "grouped")
        ), state_expected=f"(trace_pre, trace_post, {carried_name})",
    )  # fmt: skip
    pre, layout, dtype = checked.pre, checked.layout, checked.dtype
    steps, batch = pre.shape[:2]
    table = broadcast_reward(reward, steps, batch, dtype=dtype, device=pre.device)
    factor_post, factor_pre = layout.factors(f_post, f_pre, weight)
    carried_state = checked.state
    if carried_state is None:
        carried_state = (
            torch.zeros((batch, *layout.in_shape), dtype=dtype, device=pre.device),
            torch.zeros((batch, *layout.out_shape), dtype=dtype, device=pre.device),
            torch.zeros((batch, *layout.grouped_shape), dtype=dtype, device=pre.device),
        )
    trace_pre, trace_post, carried = carried_state  # the three state_fields checked above
    return _Prepared(
        layout, pre, checked.post, table, trace_pre, trace_post, carried, factor_post, factor_pre,
        checked.batch_reduction, dtype,
    )  # fmt: skip


def _scaled(values: Tensor, factor: Tensor | None) -> Tensor:
    return values if factor is None else values * factor


def _modulated_update(
    prepared: _Prepared,
    parameters: RewardSTDPParameters,
    dt: float,
    carried_weight: Tensor,
    event_weight: Tensor,
    carry_decay: float,
    carry_weight: Tensor,
    state_type: type[RewardState],
) -> RewardUpdate[RewardState]:
    """The shared core of both rules.

    ``dw = eta * reduce_b [carried_weight_b * C_b + sum_u event_weight_{u,b} * z_{u,b}]``
    and the new carried state ``carry_decay * C + sum_u carry_weight_u * z_u``
    (``carry_weight`` covers the last ``len(carry_weight)`` steps).
    Returns the update in the weight's shape and ``state_type(trace_pre, trace_post, carried)``.
    """
    p, d = parameters, prepared
    layout, dtype = d.layout, d.dtype
    decay_pre = decay_factor(dt, p.tau_plus, exact=p.exact_decay)
    decay_post = decay_factor(dt, p.tau_minus, exact=p.exact_decay)
    x_pre, trace_pre = pairing_traces(d.pre, decay_pre, p.a_plus, d.trace_pre, p.pairing)
    x_post, trace_post = pairing_traces(d.post, decay_post, p.a_minus, d.trace_post, p.pairing)
    s_pre, s_post = d.pre.to(dtype), d.post.to(dtype)
    out_ones = (1,) * len(layout.out_shape)
    weighted = event_weight.reshape(*event_weight.shape, *out_ones)  # [T, B, 1...] over the post layer

    if isinstance(d.batch_reduction, str):
        update = layout.bilinear(s_post * weighted, x_pre, "sum", d.factor_post)
        update = update - layout.bilinear(x_post * weighted, s_pre, "sum", d.factor_pre)
        update = update + torch.einsum("b,bgok->gok", carried_weight, d.carried)
        if d.batch_reduction == "mean":
            update = update / d.pre.shape[1]
    else:
        per_sample = _scaled(layout.per_sample(s_post * weighted, x_pre), d.factor_post)
        per_sample = per_sample - _scaled(layout.per_sample(x_post * weighted, s_pre), d.factor_pre)
        per_sample = per_sample + carried_weight.reshape(-1, 1, 1, 1) * d.carried
        update = reduce_batch(per_sample, d.batch_reduction)

    # New carried state: per sample by nature (the reward of the next window differs per sample).
    recent = carry_weight.shape[0]
    last = carry_weight.reshape(recent, 1, *out_ones)
    carried = _scaled(layout.per_sample(s_post[-recent:] * last, x_pre[-recent:]), d.factor_post)
    carried = carried - _scaled(layout.per_sample(x_post[-recent:] * last, s_pre[-recent:]), d.factor_pre)
    if carry_decay != 0.0:
        carried = carried + carry_decay * d.carried
    return RewardUpdate(layout.to_weight(update * p.learning_rate), state_type(trace_pre, trace_post, carried))


def mstdp_window(
    spikes_pre: Tensor,
    spikes_post: Tensor,
    reward: float | Tensor,
    state: MSTDPState | None = None,
    parameters: RewardSTDPParameters = RewardSTDPParameters(),
    *,
    dt: float = 1.0,
    view: View = None,
    weight: Tensor | None = None,
    f_post: WeightFactor | None = None,
    f_pre: WeightFactor | None = None,
    batch_reduction: BatchReduction = "sum",
) -> RewardUpdate[MSTDPState]:
    """MSTDP over a window: ``dw = eta * sum_t sum_b r_{b,t} z_{b,t-1}``.

    Args:
        spikes_pre: ``[T, B, *in_shape]``; spikes_post: ``[T, B, *out_shape]`` (bool or {0, 1}).
        reward: scalar, ``[T]``, ``[B]``, ``[T, B]`` (module docstring).
        state: carried :class:`MSTDPState` (zeros when None).
        parameters: :class:`RewardSTDPParameters`; dt: step length (> 0).
        view: None (dense), a ConvGeometry or a connection (:data:`plastic.functional.bilinear.View`).
        weight: needed by ``f_post``/``f_pre``.
        batch_reduction: ``"sum"``, ``"mean"`` or a callable reducing dim 0.

    Returns:
        :class:`RewardUpdate` (signed update in the weight's shape, new :class:`MSTDPState`).
    """
    d = _prepare(
        spikes_pre,
        spikes_post,
        reward,
        state,
        parameters,
        dt,
        view,
        weight,
        f_post,
        f_pre,
        batch_reduction,
        "eligibility",
    )
    table = d.reward
    # z_u meets the reward of step u + 1; the last z waits for the next window.
    event_weight = torch.cat([table[1:], torch.zeros_like(table[:1])])
    carry_weight = torch.ones(1, dtype=d.dtype, device=table.device)
    return _modulated_update(d, parameters, dt, table[0], event_weight, 0.0, carry_weight, MSTDPState)


def mstdp_et_window(
    spikes_pre: Tensor,
    spikes_post: Tensor,
    reward: float | Tensor,
    state: MSTDPETState | None = None,
    parameters: RewardSTDPParameters = RewardSTDPParameters(),
    *,
    dt: float = 1.0,
    view: View = None,
    weight: Tensor | None = None,
    f_post: WeightFactor | None = None,
    f_pre: WeightFactor | None = None,
    batch_reduction: BatchReduction = "sum",
) -> RewardUpdate[MSTDPETState]:
    """MSTDP-ET over a window: ``e_t = c e_{t-1} + z_{t-1}/tau_e``, ``dw = eta * sum_t sum_b r_{b,t} e_{b,t}``.

    Arguments as :func:`mstdp_window`; ``parameters.tau_eligibility`` is ``tau_e``
    and ``c = exp(-dt/tau_e)`` (or ``1 - dt/tau_e`` with ``exact_decay=False``).
    Returns :class:`RewardUpdate` with a new :class:`MSTDPETState`.
    """
    d = _prepare(
        spikes_pre,
        spikes_post,
        reward,
        state,
        parameters,
        dt,
        view,
        weight,
        f_post,
        f_pre,
        batch_reduction,
        "eligibility_trace",
    )
    table = d.reward
    steps = table.shape[0]
    tau = parameters.tau_eligibility
    decay = decay_factor(dt, tau, exact=parameters.exact_decay)
    # filtered[t] = sum_{v >= t} c^(v - t) r_v (anti-causal), so that
    # sum_t r_t c^t = filtered[0] and q_u = filtered[u + 1] / tau_e.
    filtered = trace_anticausal_window(table, decay, dtype=d.dtype)
    event_weight = torch.cat([filtered[1:], torch.zeros_like(filtered[:1])]) / tau
    powers = torch.arange(steps - 1, -1, -1, dtype=d.dtype, device=table.device)
    carry_weight = torch.pow(torch.as_tensor(decay, dtype=d.dtype, device=table.device), powers) / tau
    return _modulated_update(d, parameters, dt, filtered[0], event_weight, decay**steps, carry_weight, MSTDPETState)


def _step_reward(reward: float | Tensor, batch: int) -> float | Tensor:
    """A step's reward (a scalar or ``[B]``) as the reward of a window of one step (``[1, B]``)."""
    if isinstance(reward, Tensor) and reward.ndim >= 1:
        if reward.ndim != 1 or reward.shape[0] != batch:
            raise ValueError(f"reward: expected a scalar or [B] with B={batch}, got shape {tuple(reward.shape)}")
        return reward.unsqueeze(0)
    return reward


def _step(
    window_function: Callable[..., RewardUpdate[RewardState]],
    spike_pre: Tensor,
    spike_post: Tensor,
    reward: float | Tensor,
    state: RewardState | None,
    parameters: RewardSTDPParameters,
    **kwargs: object,
) -> RewardUpdate[RewardState]:
    """The step form of ``window_function``: spikes ``[B, *shape]``, reward a scalar or ``[B]``."""

    def window_of_one_step(spikes_pre: Tensor, spikes_post: Tensor) -> RewardUpdate[RewardState]:
        # called with the checked spikes ([1, B, ...]), so B is known for the reward's check
        step_reward = _step_reward(reward, spikes_pre.shape[1])
        return window_function(spikes_pre, spikes_post, step_reward, state, parameters, **kwargs)

    return step_as_window(window_of_one_step, spike_pre, spike_post)


def mstdp_step(
    spike_pre: Tensor,
    spike_post: Tensor,
    reward: float | Tensor,
    state: MSTDPState | None = None,
    parameters: RewardSTDPParameters = RewardSTDPParameters(),
    *,
    dt: float = 1.0,
    view: View = None,
    weight: Tensor | None = None,
    f_post: WeightFactor | None = None,
    f_pre: WeightFactor | None = None,
    batch_reduction: BatchReduction = "sum",
) -> RewardUpdate[MSTDPState]:
    """One MSTDP step: ``spike_pre`` ``[B, *in_shape]``, ``spike_post`` ``[B, *out_shape]``,
    ``reward`` scalar or ``[B]``. ``dw = eta * sum_b r_b * state.eligibility_b``; the
    returned state holds this step's ``z``. Equal to :func:`mstdp_window` with ``T = 1``."""
    return _step(
        mstdp_window,
        spike_pre,
        spike_post,
        reward,
        state,
        parameters,
        dt=dt,
        view=view,
        weight=weight,
        f_post=f_post,
        f_pre=f_pre,
        batch_reduction=batch_reduction,
    )


def mstdp_et_step(
    spike_pre: Tensor,
    spike_post: Tensor,
    reward: float | Tensor,
    state: MSTDPETState | None = None,
    parameters: RewardSTDPParameters = RewardSTDPParameters(),
    *,
    dt: float = 1.0,
    view: View = None,
    weight: Tensor | None = None,
    f_post: WeightFactor | None = None,
    f_pre: WeightFactor | None = None,
    batch_reduction: BatchReduction = "sum",
) -> RewardUpdate[MSTDPETState]:
    """One MSTDP-ET step: ``dw = eta * sum_b r_b * e_b`` with ``e`` = ``state.eligibility_trace``;
    the returned trace is ``c * e + z_t / tau_e``. Equal to :func:`mstdp_et_window` with ``T = 1``."""
    return _step(
        mstdp_et_window,
        spike_pre,
        spike_post,
        reward,
        state,
        parameters,
        dt=dt,
        view=view,
        weight=weight,
        f_post=f_post,
        f_pre=f_pre,
        batch_reduction=batch_reduction,
    )
