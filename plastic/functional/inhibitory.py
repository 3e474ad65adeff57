"""Inhibitory STDP of Vogels, Sprekeler, Zenke, Clopath & Gerstner (2011).

A symmetric window with a constant depression per presynaptic spike, which
drives the postsynaptic rate to a target ``rho_0``. One trace per side,
``x_j`` (presynaptic) and ``x_i`` (postsynaptic), each decaying with ``tau``
and incremented by 1 at a spike::

    at a presynaptic spike of j:   w_ij += eta * (x_i - alpha)
    at a postsynaptic spike of i:  w_ij += eta * x_j
    alpha = 2 * rho_0 * tau

``w_ij >= 0`` is the strength of the inhibitory synapse (a conductance or a
current magnitude). Averaged over uncorrelated Poisson trains at rates
``rho_j``, ``rho_i`` the drift is ``eta * rho_j * (2 tau rho_i - alpha)``,
zero exactly at ``rho_i = rho_0``: more inhibition while the neuron fires
above the target, less below it.

Over a window this is pair STDP with ``tau_pre = tau_post = tau`` and
all-to-all traces: the potentiation is ``eta * (sum_t s_i x_j + sum_t x_i s_j)``,
both products of :func:`plastic.functional.stdp.stdp_window`, and the
depression ``eta * alpha * n_j``, with ``n_j`` the presynaptic spikes each
synapse saw (for a convolution: at every output position it feeds). Traces
include the current step's spike, as everywhere in plastic, so a pre and a
post spike in the same step count in both terms.

Times are in ms (the unit of ``dt``) and ``rho_0`` in Hz.

Reference: T. P. Vogels, H. Sprekeler, F. Zenke, C. Clopath and W. Gerstner
(2011), "Inhibitory plasticity balances excitation and inhibition in sensory
pathways and memory networks", Science 334:1569-1573 (``tau = 20`` ms,
``eta = 1e-4``, ``rho_0 = 5`` Hz, hence ``alpha = 0.2``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from plastic.functional.bilinear import BatchReduction, View
from plastic.functional.stdp import stdp_window
from plastic.functional.validation import check_non_negative, check_positive

__all__ = ["InhibitorySTDPUpdate", "inhibitory_depression_constant", "inhibitory_stdp_window"]


class InhibitorySTDPUpdate(NamedTuple):
    """Result of :func:`inhibitory_stdp_window`.

    ``potentiation``, ``depression``: non-negative magnitudes ``[G, O, K]``
    (already scaled by ``eta``); ``trace_pre``, ``trace_post``: the traces after
    the window's last step.
    """

    potentiation: Tensor
    depression: Tensor
    trace_pre: Tensor
    trace_post: Tensor


def inhibitory_depression_constant(target_rate: float, tau: float) -> float:
    """``alpha = 2 * rho_0 * tau`` with ``rho_0`` in Hz and ``tau`` in ms (dimensionless)."""
    target_rate = check_non_negative(target_rate, "target_rate")
    tau = check_positive(tau, "tau")
    return 2.0 * target_rate * tau / 1000.0


def inhibitory_stdp_window(
    spikes_pre: Tensor,
    spikes_post: Tensor,
    trace_pre: Tensor | None = None,
    trace_post: Tensor | None = None,
    *,
    eta: float = 1e-4,
    tau: float = 20.0,
    target_rate: float = 5.0,
    dt: float = 1.0,
    exact: bool = True,
    view: View = None,
    batch_reduction: BatchReduction = "sum",
) -> InhibitorySTDPUpdate:
    """The inhibitory STDP of Vogels et al. (2011) over a window (module docstring).

    Args:
        spikes_pre: ``[T, B, *in_shape]`` presynaptic (inhibitory) spikes.
        spikes_post: ``[T, B, *out_shape]`` postsynaptic spikes.
        trace_pre, trace_post: traces carried from before the window (``None``: zeros).
        eta: learning rate (weight units, >= 0).
        tau: the time constant of both traces (ms, > 0).
        target_rate: the target postsynaptic rate ``rho_0`` (Hz, >= 0).
        dt: step (ms, > 0).
        exact: decay ``exp(-dt/tau)`` (True) or the Euler ``1 - dt/tau``.
        view: ``None`` (dense), a :class:`~plastic.functional.receptive.ConvGeometry` or a connection.
        batch_reduction: ``"sum"``, ``"mean"`` or a callable reducing dim 0.

    Returns:
        :class:`InhibitorySTDPUpdate`; the weight change is ``potentiation - depression``.
    """
    eta = check_non_negative(eta, "eta")
    alpha = inhibitory_depression_constant(target_rate, tau)
    pairs = stdp_window(
        spikes_pre, spikes_post, trace_pre, trace_post,
        tau_pre=tau, tau_post=tau, dt=dt, exact=exact, pairing="all", view=view, batch_reduction=batch_reduction,
    )  # fmt: skip
    # n_j: the depression product of a postsynaptic trace held at 1 (decay 1, no spikes)
    # counts each presynaptic spike once per synapse it reaches, in the same layout and reduction
    held_at_one = torch.ones_like(pairs.trace_post)
    silent_post = torch.zeros_like(spikes_post, dtype=torch.bool)
    counts = stdp_window(
        spikes_pre, silent_post, None, held_at_one,
        decay_pre=1.0, decay_post=1.0, pairing="all", view=view, batch_reduction=batch_reduction,
    ).depression  # fmt: skip
    return InhibitorySTDPUpdate(
        eta * (pairs.potentiation + pairs.depression),
        (eta * alpha) * counts,
        pairs.trace_pre,
        pairs.trace_post,
    )
