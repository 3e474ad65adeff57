"""The reward-modulated R-max rule (Vasilaki et al. 2009) for escape-noise neurons, dense and conv.

A neuron with escape noise (:mod:`plastic.functional.escape_noise`) fires at
step ``t`` with probability ``p_t``; its membrane potential is linear in the
weights, ``du_t/dw_ij = epsilon_0 * (PSP trace of input j)``. The gradient of
the log-likelihood of its own spike train with respect to ``w_ij`` is then,
for small ``p``, ``sum_t (s_t - p_t) * x_j(t)`` with the presynaptic PSP
trace ``x`` (times ``1/delta_u``, absorbed in the amplitude or the learning
rate). R-max accumulates that in an eligibility trace and lets the reward
turn it into a weight change (a policy gradient)::

    x_t   = a_x * x_{t-1} + A * s_pre_t                  a_x = exp(-dt / tau_psp)
    q_t   = p_t / (1 + (tau_c / dt) * p_t)
    e_t   = a_e * e_{t-1} + (s_post_t - q_t) (x) x_t        a_e = exp(-dt / tau_eligibility)
    dw    = eta * sum_t sum_b r_{b,t} * e_{b,t}

per sample ``b`` and synapse ``post i <- pre j`` (summed over output
positions for a convolution). ``tau_c = 0`` is the policy-gradient rule
(``q = p``); as ``tau_c`` grows the subtracted expectation vanishes and the
rule becomes reward-modulated Hebbian learning (``tau_c = inf``: ``q = 0``):
the family Vasilaki et al. (2009) compare, as BindsNET's ``Rmax``
parametrises it (BindsNET's default ``tau_c = 5`` ms; its Euler decay
``1 - dt/tau_e`` is ``exact_decay=False`` here). For the exact gradient of
an escape-noise neuron take ``tau_psp = tau_membrane`` and ``A = epsilon_0 /
delta_u``. The reward at ``t`` multiplies the eligibility including step
``t``'s own term (as BindsNET applies it).

Reward: a scalar, ``[T]``, ``[B]``, ``[T, B]`` (``[T, 1]``/``[1, B]``) over a
window, a scalar or ``[B]`` for a step (the broadcasting of
:func:`plastic.functional.reward.broadcast_reward`).

Window form. Everything is linear in the eligibility increments ``c_u (x) x_u``
(``c = s_post - q``), so with the anti-causal reward filter
``f_u = sum_{t >= u} a_e^(t - u) r_t``::

    sum_t r_t e_t = a_e f_0 E + sum_u f_u c_u (x) x_u
    e_{T-1}       = a_e^T E   + sum_u a_e^(T-1-u) c_u (x) x_u

(``E`` the carried eligibility): one product over ``T*B*P`` for the change
and one per-sample product for the new eligibility ``[B, G, O, K]``.

References: E. Vasilaki, N. Frémaux, R. Urbanczik, W. Senn & W. Gerstner
(2009), "Spike-based reinforcement learning in continuous state and action
space: when policy gradient methods fail", PLoS Comput. Biol. 5:e1000586;
N. Frémaux, H. Sprekeler & W. Gerstner (2010), J. Neurosci. 30:13326
(R-max); BindsNET's ``Rmax`` learning rule.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import attrs
import torch
from torch import Tensor

from plastic.functional.attrs_validators import finite, non_negative_or_infinite, positive
from plastic.functional.bilinear import (
    BatchReduction,
    View,
    check_rule_inputs,
    reduce_batch,
    step_as_window,
)
from plastic.functional.reward import _step_reward, broadcast_reward
from plastic.functional.traces import decay_factor, trace_anticausal_window, trace_cumulative_window
from plastic.functional.validation import check_tensor

__all__ = ["RmaxParameters", "RmaxState", "RmaxUpdate", "rmax_step", "rmax_window"]


@attrs.frozen
class RmaxParameters:
    """Hyperparameters of R-max (module docstring).

    tau_psp: time constant of the presynaptic PSP trace (ms, > 0; the neurons'
        ``tau_membrane`` for the exact gradient).
    amplitude_psp: jump ``A`` of the PSP trace per presynaptic spike
        (``epsilon_0 / delta_u`` for the exact gradient, 1/mV; default 1).
    tau_eligibility: ``tau_e`` of the eligibility trace (ms, > 0; inf: no decay).
    tau_c: ``tau_c`` (ms, >= 0, inf allowed): 0 is the policy gradient, inf
        reward-modulated Hebbian learning.
    learning_rate: ``eta`` (weight units per reward unit and eligibility unit).
    exact_decay: decays ``exp(-dt/tau)`` (True) or the Euler ``1 - dt/tau``.
    """

    tau_psp: float = attrs.field(default=10.0, validator=positive)
    amplitude_psp: float = attrs.field(default=1.0, validator=finite)
    tau_eligibility: float = attrs.field(default=25.0, validator=non_negative_or_infinite)
    tau_c: float = attrs.field(default=0.0, validator=non_negative_or_infinite)
    learning_rate: float = attrs.field(default=1.0, validator=finite)
    exact_decay: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))

    def __attrs_post_init__(self) -> None:
        if self.tau_eligibility == 0:
            raise ValueError("tau_eligibility: expected a time constant > 0 (inf allowed), got 0")


class RmaxState(NamedTuple):
    """Carried state: the PSP trace ``trace_pre`` ``[B, *in_shape]`` and the per-sample
    ``eligibility_trace`` ``[B, G, O, K]`` after the last step."""

    trace_pre: Tensor
    eligibility_trace: Tensor


class RmaxUpdate(NamedTuple):
    """The signed weight change (the weight's shape) and the :class:`RmaxState` to carry."""

    update: Tensor
    state: RmaxState


def _expected_rate(probability: Tensor, tau_c: float, dt: float) -> Tensor:
    """``q = p / (1 + (tau_c / dt) p)`` (``tau_c = inf``: 0)."""
    if math.isinf(tau_c):
        return torch.zeros_like(probability)
    if tau_c == 0:
        return probability
    return probability / (1.0 + (tau_c / dt) * probability)


def rmax_window(
    spikes_pre: Tensor,
    spikes_post: Tensor,
    probability_post: Tensor,
    reward: float | Tensor,
    state: RmaxState | None = None,
    parameters: RmaxParameters = RmaxParameters(),
    *,
    dt: float = 1.0,
    view: View = None,
    batch_reduction: BatchReduction = "sum",
) -> RmaxUpdate:
    """R-max over a window: ``dw = eta * sum_t sum_b r_{b,t} e_{b,t}`` (module docstring).

    Args:
        spikes_pre: ``[T, B, *in_shape]``; spikes_post: ``[T, B, *out_shape]`` (bool or {0, 1}).
        probability_post: ``[T, B, *out_shape]`` floats in ``[0, 1]``: each step's firing
            probability ``p_t`` of the postsynaptic neurons (an escape-noise neuron's
            ``spike_probability``). Its dtype is the computation's when no state is given.
        reward: scalar, ``[T]``, ``[B]``, ``[T, B]``, ``[T, 1]``, ``[1, B]``.
        state: carried :class:`RmaxState` (zeros when None).
        parameters: :class:`RmaxParameters`; dt: step length (ms, > 0).
        view: None (dense), a ConvGeometry or a connection.
        batch_reduction: ``"sum"``, ``"mean"`` or a callable reducing dim 0 of ``[B, G, O, K]``.

    Returns:
        :class:`RmaxUpdate`: the signed change in the weight's shape and the new state.
    """
    checked = check_rule_inputs(
        spikes_pre, spikes_post, parameters, RmaxParameters, view=view, dt=dt, batch_reduction=batch_reduction,
        state=state, state_fields=(("trace_pre", "pre"), ("eligibility_trace", "grouped")),
        state_expected="an RmaxState (trace_pre, eligibility_trace)",
    )  # fmt: skip
    pre, post, layout = checked.pre, checked.post, checked.layout
    probability = check_tensor(
        probability_post, "probability_post", shape=post.shape, floating=True, finite=True, device=pre.device
    )
    if probability.numel() and not bool(((probability >= 0) & (probability <= 1)).all()):
        raise ValueError("probability_post: expected probabilities in [0, 1]")
    dtype = checked.state[0].dtype if checked.state is not None else probability.dtype
    if probability.dtype != dtype:
        raise TypeError(f"probability_post: expected dtype {dtype} (the state's), got {probability.dtype}")
    steps, batch = pre.shape[:2]
    table = broadcast_reward(reward, steps, batch, dtype=dtype, device=pre.device)
    p = parameters
    if checked.state is None:
        trace_pre = torch.zeros((batch, *layout.in_shape), dtype=dtype, device=pre.device)
        eligibility = torch.zeros((batch, *layout.grouped_shape), dtype=dtype, device=pre.device)
    else:
        trace_pre, eligibility = checked.state

    if steps == 0:  # no step: no change, the state as it was
        zero = torch.zeros(layout.grouped_shape, dtype=dtype, device=pre.device)
        return RmaxUpdate(layout.to_weight(zero), RmaxState(trace_pre.clone(), eligibility.clone()))
    decay_psp = decay_factor(dt, p.tau_psp, exact=p.exact_decay)
    decay_eligibility = float(decay_factor(dt, p.tau_eligibility, exact=p.exact_decay))
    x_pre, last_trace = trace_cumulative_window(pre, decay_psp, p.amplitude_psp, initial=trace_pre)
    post_factor = post.to(dtype) - _expected_rate(probability, p.tau_c, dt)  # c_u = s_post - q
    out_ones = (1,) * len(layout.out_shape)
    filtered = trace_anticausal_window(table, decay_eligibility, dtype=dtype)  # f_u
    weighted = post_factor * filtered.reshape(steps, batch, *out_ones)
    carried_weight = decay_eligibility * filtered[0]
    if isinstance(checked.batch_reduction, str):
        change = layout.bilinear(weighted, x_pre, "sum") + torch.einsum("b,bgok->gok", carried_weight, eligibility)
        if checked.batch_reduction == "mean":
            change = change / batch
        change = change * p.learning_rate
    else:
        # eta before the reduction: a callable (amax, ...) need not commute with a negative eta
        per_sample = layout.per_sample(weighted, x_pre) + carried_weight.reshape(-1, 1, 1, 1) * eligibility
        change = reduce_batch(per_sample * p.learning_rate, checked.batch_reduction)

    # the new eligibility: a_e^T E + sum_u a_e^(T-1-u) c_u (x) x_u, per sample
    exponents = torch.arange(steps - 1, -1, -1, dtype=dtype, device=pre.device)
    ages = torch.pow(torch.as_tensor(decay_eligibility, dtype=dtype, device=pre.device), exponents)
    new_eligibility = layout.per_sample(post_factor * ages.reshape(steps, 1, *out_ones), x_pre)
    new_eligibility = new_eligibility + decay_eligibility**steps * eligibility
    return RmaxUpdate(layout.to_weight(change), RmaxState(last_trace, new_eligibility))


def rmax_step(
    spike_pre: Tensor,
    spike_post: Tensor,
    probability_post: Tensor,
    reward: float | Tensor,
    state: RmaxState | None = None,
    parameters: RmaxParameters = RmaxParameters(),
    *,
    dt: float = 1.0,
    view: View = None,
    batch_reduction: BatchReduction = "sum",
) -> RmaxUpdate:
    """One R-max step: ``spike_pre`` ``[B, *in_shape]``, ``spike_post`` and ``probability_post``
    ``[B, *out_shape]``, ``reward`` a scalar or ``[B]``; ``dw = eta * sum_b r_b e_b`` with this
    step's eligibility. Equal to :func:`rmax_window` with ``T = 1``."""
    if not isinstance(probability_post, Tensor):
        raise TypeError(f"probability_post: expected a torch.Tensor, got {type(probability_post).__name__}")

    def one_step(spikes_pre: Tensor, spikes_post: Tensor) -> RmaxUpdate:
        # called with the checked spikes ([1, B, ...]), so B is known for the reward's check
        return rmax_window(
            spikes_pre, spikes_post, probability_post.unsqueeze(0), _step_reward(reward, spikes_pre.shape[1]),
            state, parameters, dt=dt, view=view, batch_reduction=batch_reduction,
        )  # fmt: skip

    return step_as_window(one_step, spike_pre, spike_post)
