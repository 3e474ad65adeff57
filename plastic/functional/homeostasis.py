"""Rate homeostasis: move a parameter so that a neuron's firing rate approaches a target.

Firing-rate estimate, an exponential moving average of the spikes (in spikes
per step; divide by ``dt`` for a rate per unit time)::

    rate_t = rate_{t-1} + alpha * (s_t - rate_{t-1}),      0 < alpha <= 1

``alpha = 1 - exp(-dt/tau_rate)`` (:func:`rate_ema_alpha`) gives a time
constant ``tau_rate`` in the unit of ``dt``.

Homeostatic change per neuron, with the sign set by what the parameter does
to the rate::

    weight, bias (raising them raises the rate):  dp = eta * (rate_target - rate_observed)
    threshold    (raising it lowers the rate):    dp = eta * (rate_observed - rate_target)

So a neuron firing below target gets larger incoming weights / bias, and a
neuron firing above target gets a higher threshold. For weights the change is
per postsynaptic neuron; the caller broadcasts it over that neuron's row of
incoming weights (additively, or use :func:`synaptic_scaling_factor` for the
multiplicative synaptic scaling ``w <- w * (1 + eta * (rate_target - rate_observed))``).
``eta`` is in parameter units per (spike per step) of rate error.

Reference: G. G. Turrigiano (2008), "The self-tuning neuron: synaptic scaling
of excitatory synapses", Cell 135(3):422-435; G. G. Turrigiano et al. (1998),
Nature 391:892-896 (multiplicative synaptic scaling).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from plastic.functional.validation import (
    check_choice,
    check_in_range,
    check_non_negative,
    check_positive,
    check_spikes,
    check_tensor,
)

__all__ = [
    "HOMEOSTASIS_TARGETS",
    "homeostatic_change",
    "rate_ema_alpha",
    "rate_ema_step",
    "rate_ema_window",
    "synaptic_scaling_factor",
]

HOMEOSTASIS_TARGETS = ("weight", "bias", "threshold")


def rate_ema_alpha(dt: float, tau_rate: float) -> float:
    """``alpha = 1 - exp(-dt/tau_rate)``: the EMA weight for a rate time constant ``tau_rate`` (unit of ``dt``)."""
    dt = check_positive(dt, "dt")
    tau_rate = check_positive(tau_rate, "tau_rate")
    return -math.expm1(-dt / tau_rate)


def _check_rate(rate: object, name: str) -> Tensor:
    return check_tensor(rate, name, floating=True, finite=True)


def rate_ema_step(rate: Tensor, spikes: Tensor, alpha: float) -> Tensor:
    """One EMA step ``rate + alpha * (spikes - rate)`` (a new tensor).

    Args:
        rate: floating ``[B, *shape]`` (or any shape), spikes per step.
        spikes: bool or {0, 1}, the shape of ``rate``.
        alpha: in ``(0, 1]``.
    """
    rate = _check_rate(rate, "rate")
    spikes = check_spikes(spikes, "spikes", shape=rate.shape, device=rate.device)
    alpha = check_in_range(alpha, "alpha", 0.0, 1.0, inclusive=(False, True))
    return rate + alpha * (spikes.to(rate.dtype) - rate)


def rate_ema_window(rate: Tensor, spikes: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """The EMA over a window ``spikes`` ``[T, *rate.shape]``; returns ``(rates [T, ...], last)``.

    ``rates[t] = (1 - alpha) * rates[t-1] + alpha * spikes[t]``, ``rates[-1] = rate``.
    """
    rate = _check_rate(rate, "rate")
    spikes = check_spikes(spikes, "spikes", shape=(-1, *rate.shape), device=rate.device)
    alpha = check_in_range(alpha, "alpha", 0.0, 1.0, inclusive=(False, True))
    out = spikes.to(rate.dtype) * alpha
    previous = rate
    keep = 1.0 - alpha
    for t in range(out.shape[0]):
        out[t].add_(previous * keep)
        previous = out[t]
    return out, (out[-1].clone() if out.shape[0] else rate.clone())


def homeostatic_change(
    rate_observed: Tensor,
    rate_target: float | Tensor,
    learning_rate: float,
    *,
    target: str = "weight",
) -> Tensor:
    """Per-neuron change of the parameter named by ``target``.

    ``weight``/``bias``: ``eta * (rate_target - rate_observed)``;
    ``threshold``: ``eta * (rate_observed - rate_target)``.

    Args:
        rate_observed: floating, e.g. ``[*shape]`` or ``[B, *shape]`` (spikes per step).
        rate_target: a number or a tensor broadcastable to ``rate_observed``
            (same unit), >= 0.
        learning_rate: ``eta`` >= 0.
        target: ``"weight"``, ``"bias"`` or ``"threshold"``.
    """
    rate_observed = _check_rate(rate_observed, "rate_observed")
    check_choice(target, "target", HOMEOSTASIS_TARGETS)
    if isinstance(rate_target, Tensor):
        check_tensor(rate_target, "rate_target", finite=True, device=rate_observed.device)
        try:
            broadcast = torch.broadcast_shapes(rate_target.shape, rate_observed.shape)
        except RuntimeError:
            broadcast = None
        if broadcast != rate_observed.shape:
            raise ValueError(
                f"rate_target: expected a shape broadcastable to {tuple(rate_observed.shape)}, "
                f"got {tuple(rate_target.shape)}"
            )
        if bool((rate_target < 0).any()):
            raise ValueError("rate_target: expected values >= 0")
    else:
        check_non_negative(rate_target, "rate_target")
    eta = check_non_negative(learning_rate, "learning_rate")
    error = rate_target - rate_observed  # positive: firing below target
    return eta * (-error if target == "threshold" else error)


def synaptic_scaling_factor(rate_observed: Tensor, rate_target: float | Tensor, learning_rate: float) -> Tensor:
    """Multiplicative scaling factor ``1 + eta * (rate_target - rate_observed)`` per neuron
    (Turrigiano 1998); multiply each postsynaptic neuron's incoming weights by it."""
    return 1.0 + homeostatic_change(rate_observed, rate_target, learning_rate, target="weight")
