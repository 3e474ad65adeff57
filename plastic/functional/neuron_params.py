"""The neuron's hyperparameters and state: :class:`NeuronParams`, :class:`NeuronState`.

:class:`NeuronParams` holds the hyperparameters of one neuron step in step
units (validated when built); :class:`NeuronState` the state carried from
step to step; :class:`NeuronWindowResult` what a window returns. The checks of
a state against the inputs it is stepped with live here too, shared by the
step form (:mod:`plastic.functional.neurons`), the window form
(:mod:`plastic.functional.neuron_window`) and the neuron modules. The
equations are in :mod:`plastic.functional.neurons`' module doc.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import attrs
import torch
from torch import Tensor

from plastic.functional.attrs_validators import int_at_least, non_negative, one_of
from plastic.functional.surrogate import ATan, SurrogateGradient
from plastic.functional.validation import (
    check_in_range,
    check_positive,
    check_shape,
    check_tensor,
)

__all__ = ["NEURON_KINDS", "RESET_MODES", "NeuronParams", "NeuronState", "NeuronWindowResult", "Threshold"]

NEURON_KINDS = ("lif", "if")
RESET_MODES = ("hard", "soft")

Threshold = float | Tensor


def _finite_real(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_in_range(value, attribute.name, -math.inf, math.inf, inclusive=False)


def _tau_validator(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    tau = check_positive(value, "tau")
    if tau < 1:
        raise ValueError(f"tau: expected a membrane time constant >= 1 (in steps), got {value!r}")


def _surrogate_validator(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, SurrogateGradient):
        raise TypeError(f"surrogate: expected a SurrogateGradient (e.g. ATan(), Sigmoid()), got {value!r}")


def _bool_validator(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{attribute.name}: expected a bool, got {value!r}")


def _decay_validator(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_in_range(value, attribute.name, 0.0, 1.0, inclusive=(False, True))


@attrs.frozen
class NeuronParams:
    """Hyperparameters of one neuron step, in step units.

    Parameters
    ----------
    kind:
        ``"lif"`` (leaky) or ``"if"`` (no leak).
    tau:
        Membrane time constant in steps, ``>= 1`` (LIF only; ignored by IF).
    v_threshold:
        Firing threshold ``V_th`` (voltage units).
    v_reset:
        Reset and resting potential ``V_reset`` (voltage units). A hard reset
        needs ``v_threshold > v_reset``; a soft reset needs ``v_threshold > 0``
        (otherwise subtracting it does not lower the voltage).
    reset:
        ``"hard"`` or ``"soft"``.
    surrogate:
        Surrogate gradient of the Heaviside step.
    detach_reset:
        Detach the spike used in the reset (no gradient through the reset).
    refractory_steps:
        Refractory period ``n`` in steps (``0``: none). See the module doc.
    theta_plus:
        Threshold increment per spike (voltage units) of the adaptive
        threshold; used only where a ``theta`` state is given.
    theta_decay:
        Per-step decay factor of ``theta``, in ``(0, 1]``
        (``exp(-dt / tau_theta)``, :func:`theta_decay_factor`).
    decay_input:
        Whether the LIF charge divides the input by ``tau`` too (``True``,
        the default: ``H = V + (X - (V - V_reset)) / tau``) or adds it whole
        (``False``: ``H = V - (V - V_reset) / tau + X``), as SpikingJelly's
        option of the same name. Ignored by IF.
    """

    kind: str = attrs.field(default="lif", validator=one_of(*NEURON_KINDS))
    tau: float = attrs.field(default=2.0, validator=_tau_validator)
    v_threshold: float = attrs.field(default=1.0, validator=_finite_real)
    v_reset: float = attrs.field(default=0.0, validator=_finite_real)
    reset: str = attrs.field(default="hard", validator=one_of(*RESET_MODES))
    surrogate: SurrogateGradient = attrs.field(factory=ATan, validator=_surrogate_validator)
    detach_reset: bool = attrs.field(default=False, validator=_bool_validator)
    refractory_steps: int = attrs.field(default=0, validator=int_at_least(0))
    theta_plus: float = attrs.field(default=0.0, validator=non_negative)
    theta_decay: float = attrs.field(default=1.0, validator=_decay_validator)
    decay_input: bool = attrs.field(default=True, validator=_bool_validator)

    def __attrs_post_init__(self) -> None:
        if self.reset == "hard" and not self.v_threshold > self.v_reset:
            raise ValueError(
                f"v_threshold: expected a value > v_reset ({self.v_reset}) with a hard reset, got {self.v_threshold}"
            )
        if self.reset == "soft" and not self.v_threshold > 0:
            raise ValueError(f"v_threshold: expected a value > 0 with a soft reset, got {self.v_threshold}")


class NeuronState(NamedTuple):
    """State carried from step to step.

    ``voltage`` ``[B, *shape]`` (float); ``refractory_remaining`` ``[B, *shape]``
    (integer, steps left in the refractory period) or ``None``; ``theta``
    ``[*shape]`` (float, adaptive threshold offset shared by the batch) or
    ``None`` (no adaptation).
    """

    voltage: Tensor
    refractory_remaining: Tensor | None = None
    theta: Tensor | None = None


class NeuronWindowResult(NamedTuple):
    """``spikes`` and ``voltages`` ``[T, B, *shape]`` and the state after the
    last step (``state.voltage`` equals ``voltages[-1]`` but is its own tensor;
    the initial voltage when ``T = 0``)."""

    spikes: Tensor
    voltages: Tensor
    state: NeuronState


# ----------------------------------------------------------------------------
# Checks shared by the step and window forms and the modules
# ----------------------------------------------------------------------------


def _check_state(
    state: NeuronState, inputs: Tensor, voltage_shape: tuple[int, ...], name: str, *, finite: bool = True
) -> None:
    """Kinds, shapes, dtypes and devices of ``state`` against ``inputs``; with ``finite`` also its values."""
    if not isinstance(state, NeuronState):
        raise TypeError(f"{name}: expected a NeuronState, got {type(state).__name__}")
    voltage = check_tensor(state.voltage, f"{name}.voltage", floating=True, finite=finite)
    check_shape(voltage, f"{name}.voltage", voltage_shape)
    if voltage.dtype != inputs.dtype:
        raise TypeError(f"{name}.voltage: expected dtype {inputs.dtype} (the inputs'), got {voltage.dtype}")
    if voltage.device != inputs.device:
        raise ValueError(f"{name}.voltage: expected a tensor on {inputs.device} (the inputs'), got {voltage.device}")
    if state.refractory_remaining is not None:
        remaining = check_tensor(state.refractory_remaining, f"{name}.refractory_remaining", device=inputs.device)
        check_shape(remaining, f"{name}.refractory_remaining", voltage_shape)
        if remaining.is_floating_point() or remaining.is_complex() or remaining.dtype == torch.bool:
            raise TypeError(f"{name}.refractory_remaining: expected an integer tensor, got dtype {remaining.dtype}")
    if state.theta is not None:
        theta = check_tensor(state.theta, f"{name}.theta", floating=True, finite=finite, device=inputs.device)
        check_shape(theta, f"{name}.theta", voltage_shape[1:])
        if theta.dtype != inputs.dtype:
            raise TypeError(f"{name}.theta: expected dtype {inputs.dtype} (the inputs'), got {theta.dtype}")


def _check_params(params: object) -> NeuronParams:
    if not isinstance(params, NeuronParams):
        raise TypeError(f"params: expected a NeuronParams, got {type(params).__name__}")
    return params


def _initial_remaining(params: NeuronParams, state: NeuronState) -> Tensor | None:
    """The refractory counter in use: ``None`` without a refractory period."""
    if params.refractory_steps == 0:
        return None
    if state.refractory_remaining is None:
        return torch.zeros(state.voltage.shape, dtype=torch.int32, device=state.voltage.device)
    return state.refractory_remaining
