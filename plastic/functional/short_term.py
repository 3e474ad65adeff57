"""Short-term plasticity of Tsodyks & Markram: depressing and facilitating synapses.

Each presynaptic input keeps a fraction of available resources ``x``
(1 at rest) and a utilisation ``u`` (0 at rest). Between spikes::

    dx/dt = (1 - x) / tau_recovery          dU/dt = -u / tau_facilitation

and at a presynaptic spike (in this order)::

    u <- u + U (1 - u)        (facilitation: ``u`` is the value used by this spike)
    r  = u x                  (the fraction of resources released)
    x <- x - r

The synaptic efficacy of the spike is ``A * r``. Without facilitation
(``tau_facilitation = None``, i.e. 0) ``u`` is ``U`` at every spike and the
synapse only depresses (Tsodyks & Markram 1997); with a long
``tau_facilitation`` and a small ``U`` it facilitates (Tsodyks, Pawelzik &
Markram 1998).

On a grid of step ``dt`` each step first relaxes ``x`` and ``u`` by the exact
factors ``exp(-dt/tau)`` of the equations above, then applies the spike of
that step, so two spikes ``k`` steps apart see exactly the decays of
``k * dt``. The state is per presynaptic input, shared by all the synapses it
makes (NEST's ``tsodyks_synapse_hom``, Brian2's per-presynaptic variables).

References: M. V. Tsodyks and H. Markram (1997), "The neural code between
neocortical pyramidal neurons depends on neurotransmitter release
probability", PNAS 94:719-723; M. Tsodyks, K. Pawelzik and H. Markram (1998),
"Neural networks with dynamic synapses", Neural Comput. 10:821-835.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from plastic.functional.validation import check_in_range, check_positive, check_tensor

__all__ = [
    "ShortTermParameters",
    "ShortTermState",
    "rest_state",
    "short_term_parameters",
    "short_term_step",
    "short_term_window",
]


class ShortTermState(NamedTuple):
    """``resources`` ``x`` and ``utilisation`` ``u``, ``[B, *shape]`` each (rest: 1 and 0)."""

    resources: Tensor
    utilisation: Tensor


class ShortTermParameters(NamedTuple):
    """``U`` in ``(0, 1]`` and the per-step relaxation factors of ``x`` and ``u``."""

    utilisation_increment: float
    recovery_decay: float
    facilitation_decay: float


def short_term_parameters(
    utilisation_increment: float, tau_recovery: float, tau_facilitation: float | None, dt: float
) -> ShortTermParameters:
    """Validate ``U``, ``tau_recovery`` (> 0) and ``tau_facilitation`` (> 0, or ``None``: none)."""
    increment = check_in_range(utilisation_increment, "utilisation_increment", 0.0, 1.0, inclusive=(False, True))
    dt = check_positive(dt, "dt")
    recovery = math.exp(-dt / check_positive(tau_recovery, "tau_recovery"))
    facilitation = (
        0.0 if tau_facilitation is None else math.exp(-dt / check_positive(tau_facilitation, "tau_facilitation"))
    )
    return ShortTermParameters(increment, recovery, facilitation)


def rest_state(like: Tensor) -> ShortTermState:
    """The state at rest (``x = 1``, ``u = 0``) shaped and typed like ``like``."""
    return ShortTermState(torch.ones_like(like), torch.zeros_like(like))


def short_term_step(
    spikes: Tensor, state: ShortTermState, parameters: ShortTermParameters
) -> tuple[Tensor, ShortTermState]:
    """One step: relax, then release at the spikes; returns ``(released r, new state)``.

    ``spikes``: ``[B, *shape]`` 0/1 values in the state's dtype (or bool).
    """
    spikes = check_tensor(spikes, "spikes", shape=tuple(state.resources.shape))
    fired = spikes.to(state.resources.dtype)
    increment, recovery, facilitation = parameters
    resources = 1.0 - (1.0 - state.resources) * recovery
    utilisation = state.utilisation * facilitation
    utilisation = utilisation + fired * (increment * (1.0 - utilisation))
    released = fired * (utilisation * resources)
    return released, ShortTermState(resources - released, utilisation)


def short_term_window(
    spikes: Tensor, state: ShortTermState, parameters: ShortTermParameters
) -> tuple[Tensor, ShortTermState]:
    """:func:`short_term_step` over a window ``[T, B, *shape]``; returns ``(released [T, ...], last state)``.

    The recurrence is nonlinear in the state, so it runs step by step; the
    values are those of the step form, operation for operation.
    """
    spikes = check_tensor(spikes, "spikes", shape=(-1, *state.resources.shape))
    released = []
    for t in range(spikes.shape[0]):
        step_released, state = short_term_step(spikes[t], state, parameters)
        released.append(step_released)
    return torch.stack(released), state
