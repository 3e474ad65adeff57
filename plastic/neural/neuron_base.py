"""The base class of the neuron modules: state, validation, single-step and window forward.

:class:`SpikingNeuron` holds the state of a group of neurons (``voltage``, the
refractory counter, the adaptive threshold) and advances it with
:mod:`plastic.functional.neurons`; :mod:`plastic.neural.neurons` defines the
kinds (``IF``, ``LIF``, ``AdaptiveLIF``) and documents the equations, units
and gradients.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import attrs
import torch
from torch import Tensor, nn
from torch.nn.modules import module as _module_implementation

from plastic.functional.neuron_equations import step_operands
from plastic.functional.neuron_params import _check_params, _check_state
from plastic.functional.neurons import (
    NeuronParams,
    NeuronState,
    neuron_step_state,
    neuron_step_unchecked,
    neuron_window_state,
)
from plastic.functional.surrogate import SurrogateGradient
from plastic.functional.validation import all_finite, check_int_at_least, check_shape, check_tensor
from plastic.neural.buffers import rebind_buffer
from plastic.neural.compiled import CompiledStep
from plastic.neural.step_mode import STEP_MODES, StepModeMixin

__all__ = ["STEP_MODES", "NeuronModule", "SpikingNeuron"]

P = TypeVar("P", bound=attrs.AttrsInstance)
# refractory counters: integer tensors (what the functional state check accepts)
_COUNTER_DTYPES = (torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64)


def check_neuron_shape(shape: int | Sequence[int]) -> tuple[int, ...]:
    """A neuron group's ``shape`` argument as a tuple of sizes >= 1 (an int is one dimension)."""
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


def _state_dtype(dtype: object) -> torch.dtype:
    """The floating dtype a neuron's state is built in (``None``: torch's default)."""
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype: expected a floating-point torch.dtype, got {dtype!r}")
    return dtype


def _params_with_overrides(params: object, params_type: type[P], overrides: dict[str, Any], owner: str) -> P:
    """``params`` (``None``: ``params_type()``) with the fields in ``overrides`` replaced.

    A ``TypeError`` names ``params`` for another type and ``owner`` for an unknown field.
    """
    if params is None:
        params = params_type()
    if not isinstance(params, params_type):
        raise TypeError(f"params: expected {params_type.__name__} or None, got {type(params).__name__}")
    known = {field.name for field in attrs.fields(params_type)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"{owner}: unknown parameter(s) {unknown}; expected some of {sorted(known)}")
    evolved: P = attrs.evolve(cast(Any, params), **overrides)  # attrs' plugin types evolve on attrs classes only
    return evolved


class NeuronModule(StepModeMixin, nn.Module):
    """What every neuron module shares: the step mode, the batch size, the ``spike`` and voltage
    sequence a monitor records, the checks of a forward's inputs against the state.

    Subclasses (:class:`SpikingNeuron`, :class:`~plastic.neural.adex.AdEx`, ...)
    set ``shape``, call :meth:`_configure` and :meth:`_register_outputs` in
    their constructor, keep a ``voltage`` buffer ``[B, *shape]`` (its dtype
    and device are the state's), end their :meth:`reset` with
    :meth:`_reset_outputs`, and rebind ``spike`` and ``_voltage_sequence``
    after each forward.
    """

    shape: tuple[int, ...]
    spike: Tensor
    _voltage_sequence: Tensor | None  # read as voltage_sequence
    _store_voltage_sequence: bool
    _batch_size: int

    def _configure(self, step_mode: str, batch_size: int, dtype: object) -> torch.dtype:
        """Set the step mode and the batch size (checked); returns the floating dtype of the
        state (``None``: torch's default)."""
        self.step_mode = step_mode
        dtype = _state_dtype(dtype)
        self._batch_size = check_int_at_least(batch_size, "batch_size", 1)
        return dtype

    @property
    def _state_shape(self) -> tuple[int, ...]:
        """``[B, *shape]``: the shape of a batched state buffer and of one step."""
        return (self._batch_size, *self.shape)

    def _register_outputs(self, device: torch.device | str | None, store_voltage_sequence: bool) -> None:
        """The record of the last forward, not state (not saved, moved by ``.to()``): ``spike``
        (bool ``[B, *shape]``) and ``_voltage_sequence`` (None until a forward stores it)."""
        self.register_buffer("spike", torch.zeros(self._state_shape, dtype=torch.bool, device=device), persistent=False)
        self.register_buffer("_voltage_sequence", None, persistent=False)
        self.store_voltage_sequence = store_voltage_sequence

    def _reset_outputs(self) -> None:
        """No spike (``[B, *shape]`` on the state's device) and no voltage sequence."""
        device = cast(Tensor, self._buffers["voltage"]).device
        rebind_buffer(self, "spike", torch.zeros(self._state_shape, dtype=torch.bool, device=device))
        self._voltage_sequence = None

    @property
    def batch_size(self) -> int:
        """Samples per step; setting it reallocates and resets the state (:meth:`reset`)."""
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self._batch_size = check_int_at_least(value, "batch_size", 1)
        self.reset()

    def reset(self) -> None:
        """Back to the resting state, every batched buffer sized by ``batch_size``."""
        raise NotImplementedError

    @property
    def store_voltage_sequence(self) -> bool:
        """Whether each forward keeps its voltages as :attr:`voltage_sequence`.
        Setting it (to either value) drops the sequence kept so far."""
        return self._store_voltage_sequence

    @store_voltage_sequence.setter
    def store_voltage_sequence(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"store_voltage_sequence: expected a bool, got {value!r}")
        self._store_voltage_sequence = value
        self._voltage_sequence = None

    @property
    def voltage_sequence(self) -> Tensor | None:
        """The membrane potential of every step of the last forward, after the reset.

        ``[T, B, *shape]`` after a window (the ``voltages`` of
        :func:`~plastic.functional.neurons.neuron_window_state`, no copy), and
        ``[B, *shape]`` after a single step (the voltage after the step: the
        ``voltage`` buffer itself), in the layout of the forward's spikes, as
        ``spike``. So a monitor on ``voltage_sequence`` records ``V_t`` per
        step in both step modes. ``V_t`` is the potential after the reset of
        step ``t`` (``V_reset`` where the neuron fired, with a hard reset): the
        state the next step integrates from, as SpikingJelly's ``v_seq``; the
        spikes tell where a reset happened. It carries the autograd graph when
        the forward built one (``detach()`` cuts it). ``None`` before the first
        forward and after :meth:`reset`. For :class:`~plastic.neural.adex.AdEx`
        ``V_t`` is ``u_t``: the plateau value ``v_spike`` from the step that
        fired to the end of the spike, then the reset and the after-depolarisation.

        Raises ``RuntimeError`` when ``store_voltage_sequence`` is ``False``
        (the neuron keeps nothing: set it, or build the neuron with
        ``store_voltage_sequence=True``).
        """
        if not self._store_voltage_sequence:
            raise RuntimeError(
                f"voltage_sequence: this {type(self).__name__} keeps no voltage sequence; build it with "
                "store_voltage_sequence=True (or set neuron.store_voltage_sequence = True)"
            )
        return self._buffers["_voltage_sequence"]

    def _check_inputs(self, inputs: Tensor) -> None:
        """``inputs``: a floating tensor laid out for the step mode (``[B, *shape]`` or
        ``[T, B, *shape]``) in the state's dtype and on its device (errors name ``inputs``)."""
        check_tensor(inputs, "inputs", floating=True)
        leading = (-1, self._batch_size) if self._step_mode == "window" else (self._batch_size,)
        check_shape(inputs, "inputs", (*leading, *self.shape))
        self._check_inputs_dtype_device(inputs)

    def _check_inputs_dtype_device(self, inputs: Tensor) -> None:
        voltage = cast(Tensor, self._buffers["voltage"])
        if inputs.dtype != voltage.dtype:
            raise TypeError(f"inputs: expected dtype {voltage.dtype} (the neuron's state), got {inputs.dtype}")
        if inputs.device != voltage.device:
            raise ValueError(f"inputs: expected a tensor on {voltage.device} (the neuron's state), got {inputs.device}")

    def _repr_batch(self) -> list[str]:
        """The ``extra_repr`` fields of the batch and the step mode (and a kept voltage sequence)."""
        fields = [f"batch_size={self._batch_size}", f"step_mode={self._step_mode!r}"]
        if self._store_voltage_sequence:
            fields.append("store_voltage_sequence=True")
        return fields


class SpikingNeuron(NeuronModule):
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
    store_voltage_sequence:
        Keep the membrane potential of every step of the last forward as
        :attr:`voltage_sequence` (default ``False``: nothing is kept).

    Buffers: ``voltage`` ``[B, *shape]``; ``refractory_remaining`` ``[B,
    *shape]`` (int32, only with a refractory period); ``theta`` ``[*shape]``
    (adaptive only); ``spike`` (bool, the last forward's output, not saved in
    the state dict); ``_voltage_sequence`` (read as :attr:`voltage_sequence`,
    not saved in the state dict; ``None`` unless ``store_voltage_sequence``).
    """

    voltage: Tensor
    refractory_remaining: Tensor  # registered only with a refractory period
    theta: Tensor  # registered only when adaptive
    spike: Tensor
    _voltage_sequence: Tensor | None  # read as voltage_sequence

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
        store_voltage_sequence: bool = False,
    ) -> None:
        super().__init__()
        self.shape = check_neuron_shape(shape)
        if not isinstance(params, NeuronParams):
            raise TypeError(f"params: expected a NeuronParams, got {type(params).__name__}")
        self.params = params
        self.refractory = float(refractory)
        self.dt = float(dt)
        self.adaptive = adaptive
        dtype = self._configure(step_mode, batch_size, dtype)
        state_shape = self._state_shape
        self.register_buffer("voltage", torch.full(state_shape, params.v_reset, device=device, dtype=dtype))
        if params.refractory_steps > 0:
            self.register_buffer("refractory_remaining", torch.zeros(state_shape, device=device, dtype=torch.int32))
        if adaptive:
            self.register_buffer("theta", torch.zeros(self.shape, device=device, dtype=dtype))
        self._register_outputs(device, store_voltage_sequence)
        # what a single step without a graph runs: the eager function, or its compiled form
        self._step_function: Callable[..., tuple[Tensor, Tensor, NeuronState]] = neuron_step_unchecked

    def compile_step(self, enabled: bool = True, **options: Any) -> SpikingNeuron:
        """Run the single steps that need no graph through ``torch.compile`` (``enabled=False``: eagerly again).

        The step (:func:`~plastic.functional.neurons.neuron_step_unchecked`,
        a dozen elementwise operations) becomes one fused kernel; ``options``
        go to ``torch.compile`` (``mode="reduce-overhead"`` adds CUDA graphs
        on a GPU, ``dynamic=True`` avoids a compilation per batch size). The
        values are the eager step's (bit for bit in float64, tested); where
        compilation is unavailable the step runs eagerly and
        :attr:`compile_error` says why (:class:`~plastic.neural.compiled.CompiledStep`).
        Windows and steps that build a graph are not compiled. Returns ``self``.
        On a CPU the compiled call's overhead is about what it saves (see
        :mod:`plastic.neural.compiled`); it is meant for GPUs.
        """
        if not isinstance(enabled, bool):
            raise TypeError(f"enabled: expected a bool, got {enabled!r}")
        self._step_function = CompiledStep(neuron_step_unchecked, **options) if enabled else neuron_step_unchecked
        return self

    @property
    def compile_error(self) -> BaseException | None:
        """Why a compiled step fell back to eager (None: compiled, or never asked to compile)."""
        step = self._step_function
        return step.error if isinstance(step, CompiledStep) else None

    # -- configuration -------------------------------------------------------

    @property
    def batch_size(self) -> int:
        """Batch size of the state. Setting it reallocates and resets the
        batched state (``voltage``, ``refractory_remaining``, ``spike``);
        ``theta`` has no batch dimension and is kept."""
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self._batch_size = check_int_at_least(value, "batch_size", 1)
        state_shape = self._state_shape
        self.voltage = self.voltage.new_empty(state_shape)
        if self.params.refractory_steps > 0:
            self.refractory_remaining = self.refractory_remaining.new_empty(state_shape)
        self._reset_batched()  # fills them, and a new spike

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
        self._reset_outputs()

    def reset(self) -> None:
        """Restore the initial state: ``voltage = v_reset``, no neuron
        refractory, no spike, no voltage sequence. (``AdaptiveLIF.reset`` keeps
        ``theta`` unless asked.)"""
        self._reset_batched()

    def detach(self) -> None:
        """Cut the autograd graph carried by the state (truncated BPTT) and by the voltage sequence."""
        self.voltage = self.voltage.detach()
        sequence = self._buffers["_voltage_sequence"]
        if sequence is not None:
            self._voltage_sequence = sequence.detach()

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
        if self._step_mode == "window":
            super()._check_inputs(inputs)
            return
        # a single step: the message names the batch size
        check_tensor(inputs, "inputs", floating=True)
        expected = (self._batch_size, *self.shape)
        if tuple(inputs.shape) != expected:
            raise ValueError(
                f"inputs: expected shape {expected} ([batch_size, *shape] with batch_size="
                f"{self._batch_size} in single step mode), got {tuple(inputs.shape)}"
            )
        self._check_inputs_dtype_device(inputs)

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

    def _laid_out_state(self, inputs: Tensor) -> NeuronState:
        """The state to step ``inputs`` (checked against the voltage: a tensor of its shape, dtype and
        device) from, its layout checked.

        The state a step of this module stored is laid out for its next step
        (the step writes tensors of the checked inputs' layout), so the
        single step recognises it by identity and skips this: it runs when
        the state was set from outside (construction, ``.to()``, a new
        batch size, an assignment) and the first time after.
        """
        if not (inputs.dtype.is_floating_point and inputs.shape == (self._batch_size, *self.shape)):
            self._check_inputs(inputs)  # raises with the full message
        state = self._state()
        if not self._state_is_laid_out(state, inputs):
            _check_state(state, inputs, tuple(inputs.shape), "state", finite=False)
        self.__dict__["_laid_out"] = state
        return state

    def _forward_step_unchecked(self, inputs: Tensor) -> Tensor:
        """A single step without a graph: the inputs are checked here, the module's own state only for
        its layout (it holds what earlier steps computed from checked inputs)."""
        buffers = self._buffers  # the state without nn.Module.__getattr__ (this runs at every step)
        voltage: Tensor = buffers["voltage"]  # type: ignore[assignment]  # registered in __init__
        if not (
            type(inputs) is Tensor
            and inputs.shape == voltage.shape
            and inputs.dtype == voltage.dtype
            and inputs.device == voltage.device
        ):  # every check, with its message, where one of these fails
            check_tensor(inputs, "inputs", floating=True)
            if inputs.shape != (self._batch_size, *self.shape):
                self._check_inputs(inputs)  # raises with the full message (or a voltage of another shape)
            self._check_inputs_dtype_device(inputs)
        if not all_finite(inputs):
            raise ValueError("inputs: expected finite values, found NaN or inf")
        attributes = self.__dict__
        state = attributes.get("_laid_out")
        params = _check_params(self.params)
        operands = attributes.get("_step_operands")  # (params, their StepOperands for this layout)
        # the state the last step stored (the same tensors: its layout is known), else checked first
        if not (
            state is not None
            and voltage is state.voltage
            and (buffers["refractory_remaining"] if params.refractory_steps > 0 else None) is state.refractory_remaining
            and (buffers["theta"] if self.adaptive else None) is state.theta
        ):
            state = self._laid_out_state(inputs)
            operands = None  # a new layout: its operands are made again
        if operands is None or operands[0] is not params:
            operands = (params, step_operands(params, state.voltage, buffers.get("refractory_remaining")))
            attributes["_step_operands"] = operands
        if torch.is_grad_enabled():  # eval mode with inputs that require grad: no graph either
            with torch.no_grad():
                spikes, fired, new_state = self._step_function(inputs, state, params, operands[1])
        else:
            spikes, fired, new_state = self._step_function(inputs, state, params, operands[1])
        self._store_single_step(new_state, fired)
        return spikes

    def _store_single_step(self, new_state: NeuronState, fired: Tensor) -> None:
        """Store what a single step without a graph computed (this module's step, or the fused cell step
        of :mod:`plastic.neural.fused_step`): the state, the bool spikes ``fired``, the state's layout
        for the next step and, where kept, the voltage sequence."""
        if _module_implementation._global_buffer_registration_hooks:
            self._store(new_state)  # the hooks see every assignment (rebind_buffer's fallback)
            rebind_buffer(self, "spike", fired)
        else:  # what rebind_buffer does for registered buffers and plain tensors
            buffers = self._buffers
            buffers["voltage"] = new_state.voltage
            if new_state.refractory_remaining is not None:
                buffers["refractory_remaining"] = new_state.refractory_remaining
            if new_state.theta is not None:
                buffers["theta"] = new_state.theta
            buffers["spike"] = fired
        # what this step stored is laid out for the next one (the step's tensors follow the inputs')
        self.__dict__["_laid_out"] = new_state
        if self._store_voltage_sequence:
            rebind_buffer(self, "_voltage_sequence", new_state.voltage)

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
                voltages = new_state.voltage
            else:
                result = neuron_window_state(inputs, state, self.params)
                spikes, new_state, voltages = result.spikes, result.state, result.voltages
        self._store(new_state)
        rebind_buffer(self, "spike", spikes.detach() != 0)
        if self._store_voltage_sequence:
            rebind_buffer(self, "_voltage_sequence", voltages)
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
            *self._repr_batch(),
        ]
        return ", ".join(fields)
