"""Spiking neuron modules: ``IF``, ``LIF`` and ``AdaptiveLIF``.

Each module holds the state of a group of neurons of shape ``shape`` for a
batch of ``batch_size`` samples and advances it with the charge-fire-reset
math of :mod:`plastic.functional.neurons`::

    LIF charge  H_t = V_{t-1} + (X_t - (V_{t-1} - V_reset)) * dt / tau    (decay_input=True, default)
                H_t = V_{t-1} - (V_{t-1} - V_reset) * dt / tau + X_t    (decay_input=False)
    IF charge   H_t = V_{t-1} + X_t
    fire        S_t = [H_t >= V_th (+ theta_{t-1})]                  (Heaviside(0) = 1)
    hard reset  V_t = S_t * V_reset + (1 - S_t) * H_t
    soft reset  V_t = H_t - S_t * V_th (+ theta_{t-1})

``step_mode="single"``: ``forward`` takes ``[B, *shape]`` and returns the
spikes of one step. ``step_mode="window"``: ``forward`` takes ``[T, B,
*shape]`` (time first) and runs the fused window recurrence (one autograd
node; see :func:`plastic.functional.neurons.neuron_window_state`). The
state handling, checks and forward shared by the kinds are the base class
:class:`SpikingNeuron` (:mod:`plastic.neural.neuron_base`, re-exported here).

Units: voltages and inputs in the same voltage unit (e.g. mV); ``dt``,
``tau``, ``refractory`` and ``tau_theta`` in time units (ms by convention),
as everywhere in plastic. ``dt`` converts ``tau`` to ``tau/dt`` steps (the
DESIGN charge equation is written per step, with ``tau`` in steps when
``dt = 1``), ``refractory`` to ``ceil(refractory/dt)`` steps and ``tau_theta``
to the decay ``exp(-dt/tau_theta)`` per step.

Gradients: in training mode with grad enabled the returned float spikes carry
the surrogate gradient and the voltage state keeps its graph across calls
(backpropagation through time over several forwards; call ``reset()`` or
``detach()`` to cut it). In eval mode, or under ``torch.no_grad()``, the
neuron runs without building any graph and the returned spikes have no
gradient; the forward values are identical.

References: Gerstner et al. (2014), *Neuronal Dynamics*; Diehl & Cook (2015),
Front. Comput. Neurosci. 9:99 (adaptive threshold, refractory period).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from plastic.functional.neurons import NeuronParams, refractory_steps, theta_decay_factor
from plastic.functional.surrogate import DEFAULT_SURROGATE, SurrogateGradient
from plastic.functional.validation import check_positive
from plastic.neural.neuron_base import STEP_MODES, SpikingNeuron

__all__ = ["IF", "LIF", "STEP_MODES", "AdaptiveLIF", "SpikingNeuron"]


def _tau_in_steps(tau: float, dt: float) -> float:
    """A membrane time constant in time units as a number of steps (>= 1)."""
    tau = check_positive(tau, "tau")
    dt = check_positive(dt, "dt")
    steps = tau / dt
    if steps < 1.0 - 1e-12:
        raise ValueError(f"tau: expected a membrane time constant >= dt ({dt}), got {tau}")
    return max(steps, 1.0)


class IF(SpikingNeuron):
    """Integrate-and-fire neurons: ``H_t = V_{t-1} + X_t``, then fire and reset.

    Parameters
    ----------
    shape:
        Neuron shape without the batch (int or tuple).
    v_threshold:
        Threshold (voltage units). Default 1.0.
    v_reset:
        Reset potential (voltage units); must be below ``v_threshold`` for a
        hard reset. Default 0.0.
    reset:
        ``"hard"`` (``V = V_reset`` after a spike) or ``"soft"`` (``V -= V_th``).
    surrogate:
        Surrogate gradient of the Heaviside step. Default ``ATan(alpha=2)``.
    detach_reset:
        No gradient through the reset.
    refractory:
        Refractory period in time units (``>= 0``), ``ceil(refractory/dt)`` steps.
    dt:
        Step length in time units (``> 0``).
    batch_size, step_mode, device, dtype:
        See :class:`SpikingNeuron`.
    store_voltage_sequence:
        Keep the voltage of every step of the last forward as
        ``voltage_sequence`` (``[T, B, *shape]`` after a window, ``[B,
        *shape]`` after a single step; after the reset). Default ``False``:
        nothing kept. See :attr:`SpikingNeuron.voltage_sequence`.
    """

    def __init__(
        self,
        shape: int | Sequence[int],
        *,
        v_threshold: float = 1.0,
        v_reset: float = 0.0,
        reset: str = "hard",
        surrogate: SurrogateGradient = DEFAULT_SURROGATE,
        detach_reset: bool = False,
        refractory: float = 0.0,
        dt: float = 1.0,
        batch_size: int = 1,
        step_mode: str = "single",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        store_voltage_sequence: bool = False,
    ) -> None:
        params = NeuronParams(
            kind="if",
            v_threshold=v_threshold,
            v_reset=v_reset,
            reset=reset,
            surrogate=surrogate,
            detach_reset=detach_reset,
            refractory_steps=refractory_steps(refractory, dt),
        )
        super().__init__(
            shape,
            params,
            refractory=refractory,
            dt=dt,
            adaptive=False,
            batch_size=batch_size,
            step_mode=step_mode,
            device=device,
            dtype=dtype,
            store_voltage_sequence=store_voltage_sequence,
        )


class LIF(SpikingNeuron):
    """Leaky integrate-and-fire neurons:
    ``H_t = V_{t-1} + (X_t - (V_{t-1} - V_reset)) / tau``, then fire and reset.

    Parameters
    ----------
    shape:
        Neuron shape without the batch (int or tuple).
    tau:
        Membrane time constant in time units (``>= dt``; ``tau = dt`` means
        no memory). Default 2.0. The charge equation uses ``tau / dt`` steps.
    decay_input:
        ``True`` (default): the input leaks with the voltage, ``H_t = V_{t-1}
        + (X_t - (V_{t-1} - V_reset)) / tau``. ``False``: the input is added
        whole, ``H_t = V_{t-1} - (V_{t-1} - V_reset) / tau + X_t`` (SpikingJelly's
        ``decay_input=False``; the same neuron as ``True`` driven by ``tau / dt * X``
        up to rounding).
    v_threshold, v_reset, reset, surrogate, detach_reset, refractory, dt,
    batch_size, step_mode, device, dtype, store_voltage_sequence:
        As for :class:`IF`. ``v_reset`` is also the resting potential.
    """

    def __init__(
        self,
        shape: int | Sequence[int],
        *,
        tau: float = 2.0,
        decay_input: bool = True,
        v_threshold: float = 1.0,
        v_reset: float = 0.0,
        reset: str = "hard",
        surrogate: SurrogateGradient = DEFAULT_SURROGATE,
        detach_reset: bool = False,
        refractory: float = 0.0,
        dt: float = 1.0,
        batch_size: int = 1,
        step_mode: str = "single",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        store_voltage_sequence: bool = False,
    ) -> None:
        params = NeuronParams(
            kind="lif",
            tau=_tau_in_steps(tau, dt),
            decay_input=decay_input,
            v_threshold=v_threshold,
            v_reset=v_reset,
            reset=reset,
            surrogate=surrogate,
            detach_reset=detach_reset,
            refractory_steps=refractory_steps(refractory, dt),
        )
        super().__init__(
            shape,
            params,
            refractory=refractory,
            dt=dt,
            adaptive=False,
            batch_size=batch_size,
            step_mode=step_mode,
            device=device,
            dtype=dtype,
            store_voltage_sequence=store_voltage_sequence,
        )

    @property
    def tau(self) -> float:
        """Membrane time constant in time units."""
        return self.params.tau * self.dt


class AdaptiveLIF(SpikingNeuron):
    """LIF neurons with an adaptive threshold (Diehl & Cook 2015 excitatory
    neurons).

    The threshold of step ``t`` is ``V_th + theta_{t-1}``; after the step::

        theta_t = theta_{t-1} * exp(-dt / tau_theta) + theta_plus * sum_b S_t[b]

    ``theta`` ``[*shape]`` is shared by the whole batch (every sample's spikes
    raise it), survives ``reset()`` (Diehl & Cook keep it across samples) and
    is cleared by ``reset(theta=True)``. It is non-differentiable state.

    Parameters
    ----------
    tau, decay_input, v_threshold, v_reset, reset, surrogate, detach_reset,
    refractory, dt, batch_size, step_mode, device, dtype, store_voltage_sequence:
        As for :class:`LIF`.
    theta_plus:
        Threshold increment per spike (voltage units, ``>= 0``). Default 0.05
        (Diehl & Cook: 0.05 mV).
    tau_theta:
        Time constant of the threshold decay (time units, ``> 0``, may be
        ``inf``). Default 1e7 (Diehl & Cook: 1e7 ms).

    Diehl & Cook's excitatory neurons, in mV and ms with ``dt = 0.5``:
    ``AdaptiveLIF(n, tau=100 / 0.5, v_threshold=-52, v_reset=-65,
    refractory=5, dt=0.5, theta_plus=0.05, tau_theta=1e7)`` (their reset and
    rest potentials are both -65 mV; their threshold ``v_thresh - 20 mV +
    theta`` with ``theta`` starting at 20 mV is ``v_threshold=-52`` with
    ``theta`` starting at 0 here; their synapses are conductance-based, these
    neurons take currents).
    """

    def __init__(
        self,
        shape: int | Sequence[int],
        *,
        tau: float = 2.0,
        decay_input: bool = True,
        v_threshold: float = 1.0,
        v_reset: float = 0.0,
        reset: str = "hard",
        surrogate: SurrogateGradient = DEFAULT_SURROGATE,
        detach_reset: bool = False,
        refractory: float = 0.0,
        dt: float = 1.0,
        theta_plus: float = 0.05,
        tau_theta: float = 1e7,
        batch_size: int = 1,
        step_mode: str = "single",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        store_voltage_sequence: bool = False,
    ) -> None:
        params = NeuronParams(
            kind="lif",
            tau=_tau_in_steps(tau, dt),
            decay_input=decay_input,
            v_threshold=v_threshold,
            v_reset=v_reset,
            reset=reset,
            surrogate=surrogate,
            detach_reset=detach_reset,
            refractory_steps=refractory_steps(refractory, dt),
            theta_plus=theta_plus,
            theta_decay=theta_decay_factor(tau_theta, dt),
        )
        super().__init__(
            shape,
            params,
            refractory=refractory,
            dt=dt,
            adaptive=True,
            batch_size=batch_size,
            step_mode=step_mode,
            device=device,
            dtype=dtype,
            store_voltage_sequence=store_voltage_sequence,
        )
        self.tau_theta = float(tau_theta)

    @property
    def tau(self) -> float:
        """Membrane time constant in time units."""
        return self.params.tau * self.dt

    @property
    def theta_plus(self) -> float:
        return self.params.theta_plus

    def reset(self, theta: bool = False) -> None:
        """Restore the batched state; also zero ``theta`` when ``theta=True``."""
        super().reset()
        if theta:
            self.theta = torch.zeros_like(self.theta)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, theta_plus={self.params.theta_plus}, tau_theta={self.tau_theta}"
