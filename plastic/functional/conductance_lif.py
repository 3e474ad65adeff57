"""The conductance-based leaky integrate-and-fire neuron: step and window.

Continuous time (Dayan & Abbott 2001, chapter 5; the neuron of Song,
Miller & Abbott 2000)::

    tau_m dV/dt = (E_L - V) + g_e (E_e - V) + g_i (E_i - V)

``g_e`` and ``g_i`` are the excitatory and inhibitory synaptic conductances in
units of the leak conductance (dimensionless, ``>= 0``): a synapse's input
pulls ``V`` towards its reversal potential, the more the farther ``V`` is
from it. A spike when ``V`` reaches ``V_th``; ``V`` is then set to ``V_reset``.

Discrete time (step ``dt``): the conductances of step ``t`` are held over
the step and the (then linear) equation is integrated exactly over it::

    g_t   = 1 + g_e,t + g_i,t
    V_inf = (E_L + g_e,t E_e + g_i,t E_i) / g_t
    H_t   = V_inf + (V_{t-1} - V_inf) exp(-g_t dt / tau_m)
    S_t   = [H_t >= V_th];   V_t = V_reset where S_t, else H_t

(the exponential Euler step: stable whatever the conductance, where forward
Euler overshoots once ``g_t dt / tau_m > 1``). The connection that feeds the
neuron gives the conductances: with an exponential synapse
(:class:`~plastic.neural.synapses.ExponentialCurrent`, ``tau`` = the
synapse's decay, ``amplitude`` = the conductance of one spike at weight 1)
``g_e,t = sum_j w_j g_j,t`` with ``g_j`` jumping at each spike of input ``j``.

Units: mV and ms; conductances relative to the leak conductance.

Defaults: the neuron of Song, Miller & Abbott (2000): ``tau_m`` = 20 ms,
``E_L`` = -70 mV, ``V_th`` = -54 mV, ``V_reset`` = -60 mV, ``E_e`` = 0 mV,
``E_i`` = -70 mV.

References: P. Dayan and L. F. Abbott (2001), Theoretical Neuroscience, MIT
Press; S. Song, K. D. Miller and L. F. Abbott (2000), "Competitive Hebbian
learning through spike-timing-dependent synaptic plasticity", Nat. Neurosci.
3:919-926.
"""

from __future__ import annotations

from typing import NamedTuple

import attrs
import torch
from torch import Tensor

from plastic.functional.attrs_validators import finite, positive
from plastic.functional.validation import check_positive, check_tensor

__all__ = [
    "ConductanceLIFParams",
    "ConductanceLIFWindowResult",
    "conductance_lif_step",
    "conductance_lif_window",
]


@attrs.frozen
class ConductanceLIFParams:
    """Hyperparameters of the conductance-based LIF neuron (mV, ms).

    tau: membrane time constant ``tau_m`` (ms, > 0).
    v_rest: leak reversal (resting) potential ``E_L`` (mV).
    v_threshold: spike threshold ``V_th`` (mV).
    v_reset: the potential after a spike ``V_reset`` (mV, < ``v_threshold``).
    e_excitatory: reversal potential of the excitatory conductance ``E_e`` (mV).
    e_inhibitory: reversal potential of the inhibitory conductance ``E_i`` (mV).
    """

    tau: float = attrs.field(default=20.0, validator=positive)
    v_rest: float = attrs.field(default=-70.0, validator=finite)
    v_threshold: float = attrs.field(default=-54.0, validator=finite)
    v_reset: float = attrs.field(default=-60.0, validator=finite)
    e_excitatory: float = attrs.field(default=0.0, validator=finite)
    e_inhibitory: float = attrs.field(default=-70.0, validator=finite)

    def __attrs_post_init__(self) -> None:
        if self.v_reset >= self.v_threshold:
            raise ValueError(f"v_reset: expected a value < v_threshold ({self.v_threshold}), got {self.v_reset}")


class ConductanceLIFWindowResult(NamedTuple):
    """:func:`conductance_lif_window`'s result: ``spikes`` (bool ``[T, B, *shape]``),
    ``voltages`` (``V_t`` of every step, after the reset) and ``voltage`` (``V`` after the last step)."""

    spikes: Tensor
    voltages: Tensor
    voltage: Tensor


def _check_conductance(value: object, name: str, min_ndim: int) -> Tensor:
    tensor = check_tensor(value, name, min_ndim=min_ndim, floating=True, finite=True)
    if tensor.numel() and bool((tensor < 0).any()):
        raise ValueError(f"{name}: expected conductances >= 0, found {tensor.min().item()}")
    return tensor


def _check_as_excitatory(tensor: Tensor, name: str, excitatory: Tensor) -> None:
    if tensor.dtype != excitatory.dtype or tensor.device != excitatory.device:
        raise ValueError(
            f"{name}: expected dtype {excitatory.dtype} on {excitatory.device} (as excitatory), "
            f"got {tensor.dtype} on {tensor.device}"
        )


def _check_arguments(
    excitatory: object, inhibitory: object, voltage: object, params: object, dt: object, window: bool
) -> tuple[Tensor, Tensor | None, Tensor, ConductanceLIFParams, float]:
    if not isinstance(params, ConductanceLIFParams):
        raise TypeError(f"params: expected ConductanceLIFParams, got {type(params).__name__}")
    dt = check_positive(dt, "dt")
    excitatory = _check_conductance(excitatory, "excitatory", 2 if window else 1)
    if inhibitory is not None:
        inhibitory = _check_conductance(inhibitory, "inhibitory", 1)
        if inhibitory.shape != excitatory.shape:
            raise ValueError(
                f"inhibitory: expected the shape of excitatory {tuple(excitatory.shape)}, got {tuple(inhibitory.shape)}"
            )
        _check_as_excitatory(inhibitory, "inhibitory", excitatory)
    step_shape = excitatory.shape[1:] if window else excitatory.shape
    voltage = check_tensor(voltage, "voltage", shape=step_shape, floating=True, finite=True)
    _check_as_excitatory(voltage, "voltage", excitatory)
    return excitatory, inhibitory, voltage, params, dt


def _coefficients(
    excitatory: Tensor, inhibitory: Tensor | None, params: ConductanceLIFParams, dt: float
) -> tuple[Tensor, Tensor]:
    """``(V_inf, exp(-g dt / tau_m))`` of every step: they depend on the conductances only."""
    total = excitatory + 1.0
    drive = excitatory * params.e_excitatory + params.v_rest
    if inhibitory is not None:
        total = total + inhibitory
        drive = drive + inhibitory * params.e_inhibitory
    return drive / total, torch.exp(total * (-dt / params.tau))


def _advance(voltage: Tensor, target: Tensor, decay: Tensor, params: ConductanceLIFParams) -> tuple[Tensor, Tensor]:
    charged = torch.addcmul(target, voltage - target, decay)
    fired = charged >= params.v_threshold
    return fired, torch.where(fired, params.v_reset, charged)


def conductance_lif_step(
    excitatory: Tensor,
    voltage: Tensor,
    params: ConductanceLIFParams,
    *,
    inhibitory: Tensor | None = None,
    dt: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """One step (module docstring) with conductances ``[B, *shape]`` (``inhibitory=None``: none).

    Returns ``(spikes, voltage)``: bool spikes and the new voltage ``V_t`` (a new
    tensor). The arguments are checked first (``ValueError``/``TypeError``
    naming ``excitatory``, ``inhibitory``, ``voltage``, ``params`` or ``dt``);
    conductances must be finite and ``>= 0``.
    """
    excitatory, inhibitory, voltage, params, dt = _check_arguments(excitatory, inhibitory, voltage, params, dt, False)
    target, decay = _coefficients(excitatory, inhibitory, params, dt)
    return _advance(voltage, target, decay, params)


def conductance_lif_window(
    excitatory: Tensor,
    voltage: Tensor,
    params: ConductanceLIFParams,
    *,
    inhibitory: Tensor | None = None,
    dt: float = 1.0,
) -> ConductanceLIFWindowResult:
    """The neuron over a window of conductances ``[T, B, *shape]`` from ``voltage`` ``[B, *shape]``.

    The target potentials and decays of all steps are computed at once (they
    depend on the conductances only); the reset makes the rest a recurrence, a
    loop over time. The same values as :func:`conductance_lif_step` step by
    step, to rounding. Checks as :func:`conductance_lif_step`.
    """
    excitatory, inhibitory, voltage, params, dt = _check_arguments(excitatory, inhibitory, voltage, params, dt, True)
    targets, decays = _coefficients(excitatory, inhibitory, params, dt)
    spikes = torch.empty(excitatory.shape, dtype=torch.bool, device=excitatory.device)
    voltages = torch.empty_like(excitatory)
    for t in range(excitatory.shape[0]):
        fired, voltage = _advance(voltage, targets[t], decays[t], params)
        spikes[t] = fired
        voltages[t] = voltage
    return ConductanceLIFWindowResult(spikes, voltages, voltage)
