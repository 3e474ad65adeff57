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
node; see :func:`plastic.functional.neurons.neuron_window_state`).

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

import contextlib
from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor, nn

from plastic.functional.neuron_params import _check_params, _check_state
from plastic.functional.neurons import (
    NeuronParams,
    NeuronState,
    neuron_step_state,
    neuron_step_unchecked,
    neuron_window_state,
    refractory_steps,
    theta_decay_factor,
)
from plastic.functional.surrogate import DEFAULT_SURROGATE, SurrogateGradient
from plastic.functional.validation import all_finite, check_choice, check_positive, check_shape, check_tensor
from plastic.neural.buffers import rebind_buffer

__all__ = ["IF", "LIF", "STEP_MODES", "AdaptiveLIF", "SpikingNeuron"]

STEP_MODES = ("single", "window")
# refractory counters: integer tensors (what the functional state check accepts)
_COUNTER_DTYPES = (torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64)


def _neuron_shape(shape: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        result = tuple(shape)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"shape: expected an int or a tuple of ints, got {shape!r}") from None
    if not result or not all(isinstance(s, int) and not isinstance(s, bool) for s in result):
        raise TypeError(f"shape: expected an int or a non-empty tuple of ints, got {shape!r}")
    if any(s < 1 for s in result):
        raise ValueError(f"shape: expected sizes >= 1, got {result}")
    return result


def _tau_in_steps(tau: float, dt: float) -> float:
    """A membrane time constant in time units as a number of steps (>= 1)."""
    tau = check_positive(tau, "tau")
    dt = check_positive(dt, "dt")
    steps = tau / dt
    if steps < 1.0 - 1e-12:
        raise ValueError(f"tau: expected a membrane time constant >= dt ({dt}), got {tau}")
    return max(steps, 1.0)


def _batch_size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"batch_size: expected an int, got {value!r}")
    if value < 1:
        raise ValueError(f"batch_size: expected a value >= 1, got {value}")
    return value


class SpikingNeuron(nn.Module):
    """Base class of the neuron modules (state handling, validation, forward).

    Parameters
    ----------
    shape:
        Neuron shape without the batch, an int or a tuple of ints.
    params:
        :class:`~plastic.functional.neurons.NeuronParams` in step units.
    refractory:
        Refractory period in time units (``>= 0``); stored for reference,
        ``params.refractory_steps`` is what the dynamics use.
    dt:
        Step length in time units (``> 0``).
    adaptive:
        Keep an adaptive threshold ``theta`` ``[*shape]``.
    batch_size, step_mode, device, dtype:
        Batch size of the state, ``"single"`` or ``"window"``, and where and in
        which floating dtype the state lives.

    Buffers: ``voltage`` ``[B, *shape]``; ``refractory_remaining`` ``[B,
    *shape]`` (int32, only with a refractory period); ``theta`` ``[*shape]``
    (adaptive only); ``spike`` (bool, the last forward's output, not saved in
    the state dict).
    """

    voltage: Tensor
    refractory_remaining: Tensor  # registered only with a refractory period
    theta: Tensor  # registered only when adaptive
    spike: Tensor

    def __init__(
        self,
        shape: int | Sequence[int],
        params: NeuronParams,
        *,
        refractory: float,
        dt: float,
        adaptive: bool,
        batch_size: int,
        step_mode: str,
        device: torch.device | str | None,
        dtype: torch.dtype | None,
    ) -> None:
        super().__init__()
        self.shape = _neuron_shape(shape)
        if not isinstance(params, NeuronParams):
            raise TypeError(f"params: expected a NeuronParams, got {type(params).__name__}")
        self.params = params
        self.refractory = float(refractory)
        self.dt = float(dt)
        self.adaptive = adaptive
        self.step_mode = step_mode
        dtype = torch.get_default_dtype() if dtype is None else dtype
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype: expected a floating-point torch.dtype, got {dtype!r}")
        self._batch_size = _batch_size(batch_size)
        state_shape = (self._batch_size, *self.shape)
        self.register_buffer("voltage", torch.full(state_shape, params.v_reset, device=device, dtype=dtype))
        if params.refractory_steps > 0:
            self.register_buffer("refractory_remaining", torch.zeros(state_shape, device=device, dtype=torch.int32))
        if adaptive:
            self.register_buffer("theta", torch.zeros(self.shape, device=device, dtype=dtype))
        self.register_buffer("spike", torch.zeros(state_shape, device=device, dtype=torch.bool), persistent=False)

    # -- configuration -------------------------------------------------------

    @property
    def step_mode(self) -> str:
        """``"single"`` (``[B, *shape]`` per call) or ``"window"`` (``[T, B, *shape]``)."""
        return self._step_mode

    @step_mode.setter
    def step_mode(self, value: str) -> None:
        self._step_mode = str(check_choice(value, "step_mode", STEP_MODES))

    @property
    def batch_size(self) -> int:
        """Batch size of the state. Setting it reallocates and resets the
        batched state (``voltage``, ``refractory_remaining``, ``spike``);
        ``theta`` has no batch dimension and is kept."""
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self._batch_size = _batch_size(value)
        state_shape = (self._batch_size, *self.shape)
        self.voltage = self.voltage.new_empty(state_shape)
        if self.params.refractory_steps > 0:
            self.refractory_remaining = self.refractory_remaining.new_empty(state_shape)
        self.spike = self.spike.new_empty(state_shape)
        self._reset_batched()

    @property
    def v_threshold(self) -> float:
        """Firing threshold (voltage units)."""
        return self.params.v_threshold

    @property
    def v_reset(self) -> float:
        """Reset and resting potential (voltage units)."""
        return self.params.v_reset

    @property
    def reset_mode(self) -> str:
        """``"hard"`` or ``"soft"``."""
        return self.params.reset

    @property
    def surrogate(self) -> SurrogateGradient:
        return self.params.surrogate

    @property
    def detach_reset(self) -> bool:
        return self.params.detach_reset

    @property
    def decay_input(self) -> bool:
        """Whether the LIF charge divides the input by ``tau`` (see :class:`LIF`)."""
        return self.params.decay_input

    @property
    def refractory_steps(self) -> int:
        """Refractory period in steps, ``ceil(refractory / dt)``."""
        return self.params.refractory_steps

    # -- state ---------------------------------------------------------------

    def _reset_batched(self) -> None:
        # New tensors rather than in-place fills: the old ones may be saved in
        # an autograd graph that is still to be backpropagated.
        rebind_buffer(self, "voltage", torch.full_like(self.voltage, self.params.v_reset).detach())
        if self.params.refractory_steps > 0:
            rebind_buffer(self, "refractory_remaining", torch.zeros_like(self.refractory_remaining))
        rebind_buffer(
            self, "spike", torch.zeros((self._batch_size, *self.shape), dtype=torch.bool, device=self.voltage.device)
        )

    def reset(self) -> None:
        """Restore the initial state: ``voltage = v_reset``, no neuron
        refractory, no spike. (``AdaptiveLIF.reset`` keeps ``theta`` unless asked.)"""
        self._reset_batched()

    def detach(self) -> None:
        """Cut the autograd graph carried by the state (truncated BPTT)."""
        self.voltage = self.voltage.detach()

    def _buffer(self, name: str) -> Tensor:
        """A registered state buffer, read without nn.Module.__getattr__ (this runs at every step)."""
        # the state buffers are registered as tensors in __init__ and rebound only to tensors
        return cast(Tensor, self._buffers[name])

    def _state(self) -> NeuronState:
        return NeuronState(
            self._buffer("voltage"),
            self._buffer("refractory_remaining") if self.params.refractory_steps > 0 else None,
            self._buffer("theta") if self.adaptive else None,
        )

    def _store(self, state: NeuronState) -> None:
        rebind_buffer(self, "voltage", state.voltage)
        if state.refractory_remaining is not None:
            rebind_buffer(self, "refractory_remaining", state.refractory_remaining)
        if state.theta is not None:
            rebind_buffer(self, "theta", state.theta)

    # -- dynamics ------------------------------------------------------------

    def _check_inputs(self, inputs: Tensor) -> None:
        check_tensor(inputs, "inputs", floating=True)
        if self._step_mode == "single":
            expected = (self._batch_size, *self.shape)
            if tuple(inputs.shape) != expected:
                raise ValueError(
                    f"inputs: expected shape {expected} ([batch_size, *shape] with batch_size="
                    f"{self._batch_size} in single step mode), got {tuple(inputs.shape)}"
                )
        else:
            check_tensor(inputs, "inputs", ndim=len(self.shape) + 2)
            check_shape(inputs, "inputs", (-1, self._batch_size, *self.shape))
        self._check_inputs_dtype_device(inputs)

    def _check_inputs_dtype_device(self, inputs: Tensor) -> None:
        voltage = self._buffer("voltage")
        if inputs.dtype != voltage.dtype:
            raise TypeError(f"inputs: expected dtype {voltage.dtype} (the neuron's state), got {inputs.dtype}")
        if inputs.device != voltage.device:
            raise ValueError(f"inputs: expected a tensor on {voltage.device} (the neuron's state), got {inputs.device}")

    def _state_is_laid_out(self, state: NeuronState, inputs: Tensor) -> bool:
        """Whether the state has the layout of a step of ``inputs`` (checked inputs: shape, dtype, device)."""
        voltage, remaining, theta = state
        if not (type(voltage) is Tensor and voltage.shape == inputs.shape):
            return False
        if remaining is not None and not (
            type(remaining) is Tensor
            and remaining.shape == inputs.shape
            and remaining.device == inputs.device
            and remaining.dtype in _COUNTER_DTYPES
        ):
            return False
        return theta is None or (
            type(theta) is Tensor
            and theta.shape == inputs.shape[1:]
            and theta.dtype == inputs.dtype
            and theta.device == inputs.device
        )

    def _forward_step_unchecked(self, inputs: Tensor) -> Tensor:
        """A single step without a graph: the inputs are checked here, the module's own state only for
        its layout (it holds what earlier steps computed from checked inputs)."""
        check_tensor(inputs, "inputs", floating=True)
        if inputs.shape != (self._batch_size, *self.shape):
            self._check_inputs(inputs)  # raises with the full message (or a voltage of another shape)
        self._check_inputs_dtype_device(inputs)
        if not all_finite(inputs):
            raise ValueError("inputs: expected finite values, found NaN or inf")
        state = self._state()
        if not self._state_is_laid_out(state, inputs):
            _check_state(state, inputs, tuple(inputs.shape), "state", finite=False)
        params = _check_params(self.params)
        if torch.is_grad_enabled():  # eval mode with inputs that require grad: no graph either
            with torch.no_grad():
                spikes, fired, new_state = neuron_step_unchecked(inputs, state, params)
        else:
            spikes, fired, new_state = neuron_step_unchecked(inputs, state, params)
        self._store(new_state)
        rebind_buffer(self, "spike", fired)
        return spikes

    def forward(self, inputs: Tensor) -> Tensor:
        """Advance the neurons by one step (``[B, *shape]``) or a window
        (``[T, B, *shape]``) and return float spikes of the same shape.

        Raises ``TypeError``/``ValueError`` naming ``inputs`` (wrong shape,
        batch size, dtype, device, NaN or inf) before any state changes.
        A single step that needs no gradient (eval mode, ``torch.no_grad()``
        or nothing requiring grad) checks the state's layout but not its
        values: the state is this module's, computed from checked inputs.
        """
        if self._step_mode == "single" and not (
            self.training
            and torch.is_grad_enabled()
            and (getattr(inputs, "requires_grad", False) or self._buffer("voltage").requires_grad)
        ):
            return self._forward_step_unchecked(inputs)
        self._check_inputs(inputs)
        state = self._state()
        graph = contextlib.nullcontext() if self.training else torch.no_grad()
        with graph:
            if self._step_mode == "single":
                spikes, new_state = neuron_step_state(inputs, state, self.params)
            else:
                result = neuron_window_state(inputs, state, self.params)
                spikes, new_state = result.spikes, result.state
        self._store(new_state)
        rebind_buffer(self, "spike", spikes.detach() != 0)
        return spikes

    def extra_repr(self) -> str:
        fields = [f"shape={self.shape}"]
        if self.params.kind == "lif":
            fields += [f"tau={self.params.tau}", f"decay_input={self.params.decay_input}"]
        fields += [
            f"v_threshold={self.params.v_threshold}",
            f"v_reset={self.params.v_reset}",
            f"reset={self.params.reset!r}",
            f"surrogate={self.params.surrogate}",
            f"detach_reset={self.params.detach_reset}",
            f"refractory={self.refractory}",
            f"dt={self.dt}",
            f"batch_size={self._batch_size}",
            f"step_mode={self._step_mode!r}",
        ]
        return ", ".join(fields)


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
    batch_size, step_mode, device, dtype:
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
    refractory, dt, batch_size, step_mode, device, dtype:
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

    theta: Tensor

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
