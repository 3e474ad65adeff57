"""Synapse kinds: presynaptic spikes in, synaptic currents out.

Each kind is a :class:`~plastic.neural.synapse_base.Synapse` (the shared
machinery: step and window modes, the bounded spike and current histories,
reads at per-synapse delays, deferred steps; see
:mod:`plastic.neural.synapse_base`) with its own current recurrence.

Kinds (``S_t`` the spikes of step ``t``, ``I_t`` the current):

* :class:`DeltaCurrent`: ``I_t = A * S_t``.
* :class:`ExponentialCurrent`: ``I_t = exp(-dt/tau) * I_{t-1} + A * S_t``
  (the cumulative trace of :mod:`plastic.functional.traces`).
* :class:`SpikeFilterCurrent`: ``I_t = I_{t-1} - (1 - S_t) * I_{t-1}/tau + S_t``
  (Fang et al.'s synapse filter), optionally with a learnable ``1/tau``.

References: Gerstner, Kistler, Naud, Paninski (2014), *Neuronal Dynamics*,
ch. 3.1 (current-based synapses); Fang et al. (2020), "Exploiting neuron and
synapse filter dynamics in spatial temporal learning of deep spiking neural
network", IJCAI 2020, arXiv:2003.02944 (spike filter).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from plastic.functional.traces import (
    decay_factor,
    spike_filter_step,
    spike_filter_window,
    trace_cumulative_step,
    trace_cumulative_window,
)
from plastic.functional.validation import check_choice, check_in_range, check_positive
from plastic.neural.buffers import rebind_buffer
from plastic.neural.synapse_base import SPIKE_INTERPOLATIONS as SPIKE_INTERPOLATIONS
from plastic.neural.synapse_base import STEP_MODES as STEP_MODES
from plastic.neural.synapse_base import Synapse as Synapse
from plastic.neural.synapse_base import check_batch_size as check_batch_size
from plastic.neural.synapse_base import history_capacity as history_capacity

# the base and its helpers above are re-exported (``X as X``): importable from here as before the split
__all__ = ["STEP_MODES", "DeltaCurrent", "ExponentialCurrent", "SpikeFilterCurrent", "Synapse"]


def _amplitude(value: object) -> float:
    result = check_in_range(value, "amplitude", -math.inf, math.inf)
    if not math.isfinite(result):
        raise ValueError(f"amplitude: expected a finite number, got {value!r}")
    return result


class DeltaCurrent(Synapse):
    """Instantaneous current: ``I_t = A * S_t``.

    Args:
        shape: presynaptic shape (without the batch).
        amplitude: ``A``, the charge one spike delivers (current units).
        dt, max_delay, interpolation, tolerance, batch_size, step_mode, device, dtype: see
            :class:`Synapse`.

    Reference: Gerstner et al. (2014), *Neuronal Dynamics*, sec. 3.1.
    """

    def __init__(
        self,
        shape: int | Sequence[int],
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
        amplitude = _amplitude(amplitude)
        super().__init__(
            shape,
            dt=dt,
            max_delay=max_delay,
            interpolation=interpolation,
            tolerance=tolerance,
            batch_size=batch_size,
            step_mode=step_mode,
            device=device,
            dtype=dtype,
        )
        self.amplitude = amplitude

    def pass_through(self, spikes: Tensor) -> Tensor | None:
        state: Tensor = self._buffers["state"]  # type: ignore[assignment]  # registered in __init__
        if not (
            self._step_mode == "single"
            and self.capacity == 1
            and type(spikes) is Tensor
            and spikes.dtype == torch.bool
            and spikes.shape == state.shape
            and spikes.device == state.device
        ):
            return None
        # the checks of check_spikes for a bool step (shape (batch_size, *shape): the state's)
        self._defer(spikes)
        return spikes

    def _deferred_currents(self, values: Tensor) -> Tensor:
        return values if self.amplitude == 1.0 else values.mul_(self.amplitude)

    def _integrate(self, values: Tensor, owned: bool = False) -> Tensor:
        if owned:  # a fresh conversion of bool spikes: scale it in place (nothing when A = 1)
            currents = values if self.amplitude == 1.0 else values.mul_(self.amplitude)
        else:
            currents = values * self.amplitude
        rebind_buffer(self, "state", currents if self._step_mode == "single" else currents[-1])
        return currents

    def extra_repr(self) -> str:
        return f"amplitude={self.amplitude}, " + super().extra_repr()


class ExponentialCurrent(Synapse):
    """Exponentially decaying current: ``I_t = exp(-dt/tau) * I_{t-1} + A * S_t``.

    The cumulative trace of the spikes (:func:`plastic.functional.traces.
    trace_cumulative_step`); a spike adds ``A`` at its own step.

    Args:
        shape: presynaptic shape (without the batch).
        tau: synaptic time constant in time units (same unit as ``dt``), ``> 0``.
        amplitude: ``A`` (current units).
        dt, max_delay, interpolation, tolerance, batch_size, step_mode, device, dtype: see
            :class:`Synapse`; ``interpolation`` may also be ``"exp_decay"`` (a read
            between steps decays the earlier sample over the remaining time, exact
            for this current).

    Reference: Gerstner et al. (2014), *Neuronal Dynamics*, sec. 3.1
    (exponential synaptic current).
    """

    INTERPOLATIONS: ClassVar[tuple[str, ...]] = ("previous", "nearest", "linear", "exp_decay")

    def __init__(
        self,
        shape: int | Sequence[int],
        tau: float,
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
        tau = check_positive(tau, "tau")
        amplitude = _amplitude(amplitude)
        super().__init__(
            shape,
            dt=dt,
            max_delay=max_delay,
            interpolation=interpolation,
            tolerance=tolerance,
            batch_size=batch_size,
            step_mode=step_mode,
            device=device,
            dtype=dtype,
        )
        self.tau = tau
        self.amplitude = amplitude
        self.decay = float(decay_factor(self.dt, self.tau))

    def _interpolation_tau(self) -> float | None:
        return self.tau

    def _integrate(self, values: Tensor, owned: bool = False) -> Tensor:
        if self._step_mode == "single":
            rebind_buffer(self, "state", trace_cumulative_step(self.state, values, self.decay, self.amplitude))
            return self.state
        currents, self.state = trace_cumulative_window(values, self.decay, self.amplitude, initial=self.state)
        return currents

    def extra_repr(self) -> str:
        return f"tau={self.tau}, amplitude={self.amplitude}, " + super().extra_repr()


class SpikeFilterCurrent(Synapse):
    """Spike filter: ``I_t = I_{t-1} - (1 - S_t) * I_{t-1} / tau + S_t``.

    Between spikes the current decays by ``1 - 1/tau`` per step; at a spike it
    keeps its value and gains 1. ``tau`` is in steps, as in Fang et al. (and
    :class:`plastic.neural.layers.SynapseFilter`); ``dt`` only converts delays.

    Learnable variant: ``1/tau = sigmoid(w)`` with the parameter
    ``inverse_tau_logit`` ``w`` initialised to ``w_0 = -log(tau - 1)``
    (``sigmoid(w_0) = 1/tau``); requires ``tau > 1``. The fixed variant
    requires ``tau >= 1``.

    Args:
        shape: presynaptic shape (without the batch).
        tau: time constant in steps.
        learnable: make ``1/tau`` trainable (by gradient).
        dt, max_delay, interpolation, tolerance, batch_size, step_mode, device, dtype: see
            :class:`Synapse`.

    Reference: Fang, Yu, Chen, Huang, Masquelier, Tian (2020), IJCAI,
    arXiv:2003.02944.
    """

    def __init__(
        self,
        shape: int | Sequence[int],
        tau: float,
        learnable: bool = False,
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
        learnable = bool(learnable)
        if learnable:
            tau = check_in_range(tau, "tau", 1.0, math.inf, inclusive=False)
        else:
            tau = check_in_range(tau, "tau", 1.0, math.inf)
            if math.isinf(tau):
                raise ValueError(f"tau: expected a finite value >= 1 (steps), got {tau}")
        super().__init__(
            shape,
            dt=dt,
            max_delay=max_delay,
            interpolation=interpolation,
            tolerance=tolerance,
            batch_size=batch_size,
            step_mode=step_mode,
            device=device,
            dtype=dtype,
        )
        self.learnable = learnable
        self._initial_tau = tau
        if learnable:
            self.inverse_tau_logit = nn.Parameter(
                torch.tensor(-math.log(tau - 1.0), dtype=self.state.dtype, device=self.state.device)
            )

    @property
    def inverse_tau(self) -> float | Tensor:
        """``1/tau``: a float, or ``sigmoid(inverse_tau_logit)`` with its gradient."""
        if self.learnable:
            return torch.sigmoid(self.inverse_tau_logit)
        return 1.0 / self._initial_tau

    @property
    def tau(self) -> float:
        """The time constant in steps (a plain number)."""
        if self.learnable:
            return float(1.0 / torch.sigmoid(self.inverse_tau_logit.detach()))
        return self._initial_tau

    def _integrate(self, values: Tensor, owned: bool = False) -> Tensor:
        if self._step_mode == "single":
            rebind_buffer(self, "state", spike_filter_step(self.state, values, self.inverse_tau))
            return self.state
        currents, self.state = spike_filter_window(values, self.state, self.inverse_tau)
        return currents

    def extra_repr(self) -> str:
        return f"tau={self.tau}, learnable={self.learnable}, " + super().extra_repr()


def make_synapse(
    kind: str,
    shape: int | Sequence[int],
    **kwargs: object,
) -> Synapse:
    """Build a synapse by name: ``"delta"``, ``"exponential"`` or ``"spike_filter"``."""
    check_choice(kind, "synapse", tuple(SYNAPSE_KINDS))
    return SYNAPSE_KINDS[kind](shape, **kwargs)  # type: ignore[arg-type]


#: synapse kinds by name
SYNAPSE_KINDS: dict[str, type[Synapse]] = {
    "delta": DeltaCurrent,
    "exponential": ExponentialCurrent,
    "spike_filter": SpikeFilterCurrent,
}
