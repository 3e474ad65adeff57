"""Rate-based plasticity on spiking cells: Oja's rule and BCM with a sliding threshold.

Rates are exponential moving averages of the spikes, in spikes per step, the
recurrence of the EMA reducers (:func:`plastic.functional.homeostasis.rate_ema_window`,
``alpha = 1 - exp(-dt/tau_rate)``), carried between calls and including the
current step's spike. ``x_j`` is a presynaptic rate, ``y_i`` a postsynaptic
one. Every step contributes (and a window's change is the sum over its steps)::

    Oja (1982):  dw_ij = eta * (y_i x_j - y_i^2 w_ij)
    BCM (Bienenstock, Cooper & Munro 1982; the sliding threshold of Intrator & Cooper 1992):
                 dw_ij = eta * x_j * y_i (y_i - theta_i),
                 theta_i <- theta_i + beta (y_i^2 / y_0 - theta_i),  beta = 1 - exp(-dt/tau_threshold)

``theta`` moves after the step's rates and before the step's change. Oja's
decay term keeps ``|w_i|`` at 1 for a linear neuron and turns ``w_i`` to the
principal component of its inputs; BCM potentiates the inputs of a neuron
firing above ``theta`` and depresses them below it, and ``theta`` follows
``<y^2>``, which makes neurons selective. For a convolution the weights are
shared: the products sum over output positions, and Oja's decay sums
``y^2`` over every position of the output channel.

The per-step changes, on rates rather than spikes, are :func:`oja_change`
and :func:`bcm_change`; the window forms :func:`oja_window` and
:func:`bcm_window` compute the rates from spike trains and contract the
window in one product (dense or convolutional through ``view``).

References: E. Oja (1982), "Simplified neuron model as a principal component
analyzer", J. Math. Biol. 15:267-273; E. L. Bienenstock, L. N. Cooper and
P. W. Munro (1982), J. Neurosci. 2:32-48; N. Intrator and L. N. Cooper
(1992), Neural Networks 5:3-17.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch
from einops import reduce
from torch import Tensor

from plastic.functional.bilinear import SynapseLayout, View
from plastic.functional.homeostasis import rate_ema_alpha, rate_ema_window
from plastic.functional.validation import check_choice, check_non_negative, check_positive, check_tensor

__all__ = ["RateRuleUpdate", "bcm_change", "bcm_window", "oja_change", "oja_window"]

RateReduction = Literal["sum", "mean"]
RATE_REDUCTIONS: tuple[RateReduction, ...] = ("sum", "mean")


class RateRuleUpdate(NamedTuple):
    """``delta_weight`` (the weight's shape, signed), the carried ``rate_pre``, ``rate_post``
    (``[B, *shape]``) and, for BCM, ``threshold`` (``[B, *out_shape]``; None for Oja)."""

    delta_weight: Tensor
    rate_pre: Tensor
    rate_post: Tensor
    threshold: Tensor | None


def oja_change(rate_pre: Tensor, rate_post: Tensor, weight: Tensor, eta: float) -> Tensor:
    """One step of Oja's rule for a dense layer: ``eta * (y x^T - y^2 w)``, summed over the batch.

    ``rate_pre`` ``[B, N_in]``, ``rate_post`` ``[B, N_out]``, ``weight`` ``[N_out, N_in]``.
    """
    eta = check_non_negative(eta, "eta")
    hebbian = rate_post.T @ rate_pre
    decay = (rate_post * rate_post).sum(0).unsqueeze(1) * weight
    return eta * (hebbian - decay)


def bcm_change(rate_pre: Tensor, rate_post: Tensor, threshold: Tensor, eta: float) -> Tensor:
    """One step of BCM for a dense layer: ``eta * sum_b x y (y - theta)`` (``theta`` already moved)."""
    eta = check_non_negative(eta, "eta")
    return eta * ((rate_post * (rate_post - threshold)).T @ rate_pre)


def _checked(
    spikes_pre: Tensor, spikes_post: Tensor, view: View, batch_reduction: RateReduction
) -> tuple[SynapseLayout, Tensor, Tensor]:
    spikes_pre = check_tensor(spikes_pre, "spikes_pre", min_ndim=3)
    spikes_post = check_tensor(spikes_post, "spikes_post", min_ndim=3)
    if spikes_pre.shape[:2] != spikes_post.shape[:2]:
        raise ValueError(
            f"spikes_post: expected the [T, B] of spikes_pre {tuple(spikes_pre.shape[:2])}, "
            f"got {tuple(spikes_post.shape[:2])}"
        )
    check_choice(batch_reduction, "batch_reduction", RATE_REDUCTIONS)
    layout = SynapseLayout.infer(spikes_pre.shape[2:], spikes_post.shape[2:], view, device=spikes_pre.device)
    return layout, spikes_pre, spikes_post


def _rates(spikes: Tensor, carried: Tensor | None, alpha: float, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    initial = torch.zeros(spikes.shape[1:], dtype=dtype, device=spikes.device) if carried is None else carried
    return rate_ema_window(initial, spikes, alpha)


def oja_window(
    spikes_pre: Tensor,
    spikes_post: Tensor,
    weight: Tensor,
    rate_pre: Tensor | None = None,
    rate_post: Tensor | None = None,
    *,
    eta: float = 1e-3,
    tau_rate: float = 20.0,
    dt: float = 1.0,
    view: View = None,
    batch_reduction: RateReduction = "sum",
) -> RateRuleUpdate:
    """Oja's rule over a window of spikes ``[T, B, *shape]`` (module docstring).

    Args:
        spikes_pre, spikes_post: presynaptic and postsynaptic spikes (bool or {0, 1}).
        weight: the current weight (dense ``[N_out, N_in]`` or conv), held fixed over the window.
        rate_pre, rate_post: rates carried from before the window (``None``: zeros).
        eta: learning rate (>= 0, per step per (spike per step)^2).
        tau_rate: time constant of the rate EMAs (unit of ``dt``).
        dt: step (> 0).
        view: ``None`` (dense), a ConvGeometry or a connection.
        batch_reduction: ``"sum"`` or ``"mean"`` over the batch.
    """
    layout, spikes_pre, spikes_post = _checked(spikes_pre, spikes_post, view, batch_reduction)
    eta = check_non_negative(eta, "eta")
    layout.check_weight(weight)
    alpha = rate_ema_alpha(dt, tau_rate)
    rates_pre, last_pre = _rates(spikes_pre, rate_pre, alpha, weight.dtype)
    rates_post, last_post = _rates(spikes_post, rate_post, alpha, weight.dtype)
    hebbian = layout.bilinear(rates_post, rates_pre, batch_reduction)
    steps, batch = rates_post.shape[:2]
    squared = layout.post((rates_post * rates_post).reshape(steps * batch, *layout.out_shape))
    squared_sum = reduce(squared, "n g o p -> g o ()", "sum")
    if batch_reduction == "mean":
        squared_sum = squared_sum / batch
    delta = eta * (hebbian - squared_sum * layout.to_grouped(weight))
    return RateRuleUpdate(layout.to_weight(delta), last_pre, last_post, None)


def bcm_window(
    spikes_pre: Tensor,
    spikes_post: Tensor,
    weight: Tensor,
    rate_pre: Tensor | None = None,
    rate_post: Tensor | None = None,
    threshold: Tensor | None = None,
    *,
    eta: float = 1e-3,
    tau_rate: float = 20.0,
    tau_threshold: float = 1000.0,
    rate_reference: float = 1.0,
    dt: float = 1.0,
    view: View = None,
    batch_reduction: RateReduction = "sum",
) -> RateRuleUpdate:
    """BCM with a sliding threshold over a window of spikes ``[T, B, *shape]`` (module docstring).

    Args:
        spikes_pre, spikes_post: presynaptic and postsynaptic spikes (bool or {0, 1}).
        weight: the weight (only its shape, dtype and device are used: BCM does not depend on it).
        rate_pre, rate_post, threshold: state carried from before the window (``None``: zeros).
        eta: learning rate (>= 0).
        tau_rate: time constant of the rate EMAs (unit of ``dt``).
        tau_threshold: time constant of the threshold's average of ``y^2 / y_0`` (unit of ``dt``).
        rate_reference: ``y_0`` (spikes per step, > 0).
        dt: step (> 0).
        view: ``None`` (dense), a ConvGeometry or a connection.
        batch_reduction: ``"sum"`` or ``"mean"`` over the batch.
    """
    layout, spikes_pre, spikes_post = _checked(spikes_pre, spikes_post, view, batch_reduction)
    eta = check_non_negative(eta, "eta")
    reference = check_positive(rate_reference, "rate_reference")
    layout.check_weight(weight)
    dtype = weight.dtype
    alpha = rate_ema_alpha(dt, tau_rate)
    beta = -math.expm1(-check_positive(dt, "dt") / check_positive(tau_threshold, "tau_threshold"))
    rates_pre, last_pre = _rates(spikes_pre, rate_pre, alpha, dtype)
    rates_post, last_post = _rates(spikes_post, rate_post, alpha, dtype)
    theta = torch.zeros_like(last_post) if threshold is None else threshold
    modulation = torch.empty_like(rates_post)
    for t in range(rates_post.shape[0]):
        theta = theta + beta * (rates_post[t] * rates_post[t] / reference - theta)
        modulation[t] = rates_post[t] * (rates_post[t] - theta)
    delta = eta * layout.bilinear(modulation, rates_pre, batch_reduction)
    return RateRuleUpdate(layout.to_weight(delta), last_pre, last_post, theta)
