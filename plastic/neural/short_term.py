"""Tsodyks-Markram short-term plasticity as a synapse kind (``synapse="tsodyks_markram"``).

A :class:`~plastic.neural.synapses.Synapse` whose spikes are scaled by the
fraction of resources they release (:mod:`plastic.functional.short_term`),
so every connection that takes a ``synapse=`` kind gets depressing or
facilitating synapses::

    r_t = u_t x_t-           (at a spike; u_t after its facilitation step)
    I_t = exp(-dt/tau) I_{t-1} + A r_t     (tau = None: I_t = A r_t)

Buffers beyond the base class: ``resources`` (``x``) and ``utilisation``
(``u``), ``[B, *shape]``, saved in the state dict and reset to the rest state
(1 and 0) by :meth:`TsodyksMarkramCurrent.reset`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from plastic.functional.short_term import (
    ShortTermState,
    rest_state,
    short_term_parameters,
    short_term_step,
)
from plastic.functional.traces import decay_factor, trace_cumulative_step
from plastic.neural.buffers import rebind_buffer
from plastic.neural.synapses import SYNAPSE_KINDS, Synapse, _amplitude

__all__ = ["TsodyksMarkramCurrent"]


class TsodyksMarkramCurrent(Synapse):
    """Depressing or facilitating synapse of Tsodyks & Markram (see the module docstring).

    Args:
        shape: presynaptic shape (without the batch).
        utilisation_increment: ``U`` in ``(0, 1]``, the utilisation a spike adds (of ``1 - u``).
        tau_recovery: recovery time constant of the resources (time units, > 0).
        tau_facilitation: decay time constant of the utilisation (time units,
            > 0), or ``None`` for a purely depressing synapse (``u = U`` at every spike).
        tau: decay of the postsynaptic current (time units, > 0), or ``None``:
            the current is the efficacy ``A r`` of the step's spikes only.
        amplitude: ``A``, the current of a spike that releases all resources.
        dt, max_delay, interpolation, tolerance, batch_size, step_mode, device, dtype:
            see :class:`~plastic.neural.synapses.Synapse`.

    References: Tsodyks & Markram (1997), PNAS 94:719; Tsodyks, Pawelzik &
    Markram (1998), Neural Comput. 10:821.
    """

    resources: Tensor
    utilisation: Tensor

    def __init__(
        self,
        shape: int | Sequence[int],
        utilisation_increment: float = 0.5,
        tau_recovery: float = 800.0,
        tau_facilitation: float | None = None,
        tau: float | None = None,
        amplitude: float = 1.0,
        *,
        dt: float = 1.0,
        max_delay: float = 0.0,
        interpolation: str = "previous",
        tolerance: float = 1e-7,
        batch_size: int = 1,
        step_mode: str = "single",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        parameters = short_term_parameters(utilisation_increment, tau_recovery, tau_facilitation, dt)
        current_decay = 0.0 if tau is None else float(decay_factor(dt, tau))
        amplitude = _amplitude(amplitude)
        super().__init__(
            shape, dt=dt, max_delay=max_delay, interpolation=interpolation, tolerance=tolerance,
            batch_size=batch_size, step_mode=step_mode, device=device, dtype=dtype,
        )  # fmt: skip
        self.parameters_short_term = parameters
        self.utilisation_increment = parameters.utilisation_increment
        self.tau_recovery = float(tau_recovery)
        self.tau_facilitation = None if tau_facilitation is None else float(tau_facilitation)
        self.tau = None if tau is None else float(tau)
        self.amplitude = amplitude
        self.current_decay = current_decay
        rest = rest_state(self.state)
        self.register_buffer("resources", rest.resources)
        self.register_buffer("utilisation", rest.utilisation)

    def reset(self) -> None:
        """Forget every spike and current; resources back to 1, utilisation to 0."""
        super().reset()
        if "resources" in self._buffers:  # the base constructor resets before they exist
            rest = rest_state(self.state)
            rebind_buffer(self, "resources", rest.resources)
            rebind_buffer(self, "utilisation", rest.utilisation)

    def detach(self) -> None:
        super().detach()
        self.resources = self.resources.detach()
        self.utilisation = self.utilisation.detach()

    def _step(self, values: Tensor, state: ShortTermState, current: Tensor) -> tuple[Tensor, ShortTermState]:
        released, state = short_term_step(values, state, self.parameters_short_term)
        return trace_cumulative_step(current, released, self.current_decay, self.amplitude), state

    def _integrate(self, values: Tensor, owned: bool = False) -> Tensor:
        state = ShortTermState(self.resources, self.utilisation)
        current = self.state
        if self._step_mode == "single":
            current, state = self._step(values, state, current)
            currents = current
        else:
            steps = []
            for t in range(values.shape[0]):
                current, state = self._step(values[t], state, current)
                steps.append(current)
            currents = torch.stack(steps)
        rebind_buffer(self, "state", current)
        rebind_buffer(self, "resources", state.resources)
        rebind_buffer(self, "utilisation", state.utilisation)
        return currents

    def extra_repr(self) -> str:
        return (
            f"U={self.utilisation_increment}, tau_recovery={self.tau_recovery}, "
            f"tau_facilitation={self.tau_facilitation}, tau={self.tau}, amplitude={self.amplitude}, "
            + super().extra_repr()
        )


# a kind for every connection's ``synapse=`` argument (plastic/__init__ imports this module)
SYNAPSE_KINDS["tsodyks_markram"] = TsodyksMarkramCurrent
