"""The fused single step of a dense cell: a step of a recurrent network in one native call.

A cell stepping singly runs a dozen small tensor operations per step (the
gather of the spiking inputs' weights, the finiteness check, the neuron's
charge, fire and reset, the trainer monitors' copies), each costing a few
microseconds of dispatch on a one-sample step: far more than the arithmetic.
With numba installed (``pip install "plastic[fast]"``),
:meth:`Cell.__call__ <plastic.neural.cell.Cell.__call__>` runs such a step
as one compiled call (:func:`~plastic.functional.fused_step.linear_neuron_step`)
that writes the same values, bit for bit, as the eager step would: the
output spikes, the neuron's ``voltage`` and ``spike``, the connection's
``synspike`` (its ``syncurrent`` is written when read, as after an eager
step), the neuron's ``refractory_remaining`` and ``theta`` where it has
them, and the step's slots in the window recorders of the trainers'
monitors (``connection.synspike``, ``neuron.spike``).

The fused step is taken when all of these hold, and the eager step (the
same results) otherwise:

* numba is importable and the fused step is on (:func:`set_fused_step`;
  on by default);
* no graph is recorded (``torch.no_grad()`` or ``torch.inference_mode()``)
  and the tensors are float32 or float64 on the CPU;
* the connection is dense (:class:`~plastic.neural.connections.LinearDense`,
  or a lateral one without a mask) with ``weight_layout="input_major"``, no
  delays, a :class:`~plastic.neural.synapses.DeltaCurrent` synapse, and the
  step's spikes are bool ``[B, N_in]`` sparser than the gather's density
  limit (:data:`~plastic.functional.event_forward.GATHER_DENSITY`);
* the neuron is an :class:`~plastic.neural.neurons.IF`,
  :class:`~plastic.neural.neurons.LIF` or
  :class:`~plastic.neural.neurons.AdaptiveLIF` (any reset, threshold,
  ``tau``, ``decay_input``, refractory period, ``theta_plus``,
  ``tau_theta``), not compiled
  (:meth:`~plastic.neural.neuron_base.SpikingNeuron.compile_step`), its
  refractory counter int32 (as the module makes it) and its ``theta`` of
  the voltage's dtype;
* no forward hook and no pre step observer is on the cell, the connection,
  its synapse or the neuron. Monitors (post step observers) are fine: the
  trainers' window recorders are written by the fused call, every other
  observer is called after it as usual.

A step that fails (NaN or inf in ``current`` or in the neurons' input)
raises the eager step's ``ValueError`` and changes nothing.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

try:
    import numpy as np
except ImportError:  # pragma: no cover - numpy comes with the usual torch installs; numba needs it
    np = None  # type: ignore[assignment]  # None: numba cannot be there either, no plan is fused
import torch
from torch import Tensor
from torch.nn.modules import module as _module_implementation

from plastic.functional.fused_step import (
    CURRENT_NOT_FINITE,
    DONE,
    INPUTS_NOT_FINITE,
    compiled_linear_neuron_step,
    entry_point,
)
from plastic.functional.neuron_params import NeuronParams, NeuronState
from plastic.functional.neurons import neuron_step_unchecked
from plastic.neural.connection_base import Connection
from plastic.neural.connections import LinearDense
from plastic.neural.fused_recorders import KeptRing, window_ring
from plastic.neural.neuron_base import SpikingNeuron
from plastic.neural.observable import any_call_hooks
from plastic.neural.synapse_base import Synapse
from plastic.neural.synapses import DeltaCurrent
from plastic.observe.monitors import AttributeRecorder

if TYPE_CHECKING:
    from plastic.neural.cell import Cell

__all__ = ["fused_cell_step", "fused_step_available", "fused_step_enabled", "fused_step_refusal", "set_fused_step"]

_settings = {"enabled": True}


def set_fused_step(enabled: bool) -> None:
    """Switch the fused single step of cells on (the default) or off (every step eager)."""
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled: expected a bool, got {type(enabled).__name__}")
    _settings["enabled"] = enabled


def fused_step_enabled() -> bool:
    """Whether the fused single step is switched on (:func:`set_fused_step`)."""
    return _settings["enabled"]


def fused_step_available() -> bool:
    """Whether cells can take the fused single step: switched on and numba importable."""
    return _settings["enabled"] and compiled_linear_neuron_step() is not None


def fused_cell_step(cell: Cell, spikes: Tensor, current: Tensor | None, args: tuple[Any, ...]) -> Tensor | None:
    """``cell(spikes, current)`` as one fused call (the module docstring), its observers called; ``None``:
    not taken, nothing changed (call the cell as usual). ``args``: the call's positional arguments, for
    the observers."""
    if not _settings["enabled"] or torch.is_grad_enabled() or _module_implementation._global_buffer_registration_hooks:
        return None
    cell_state = cell.__dict__
    modules = cell._modules
    connection: Connection = modules["connection"]  # type: ignore[assignment]  # registered by Cell
    neuron: SpikingNeuron = modules["neuron"]  # type: ignore[assignment]
    synapse: Synapse = connection._modules["synapse"]  # type: ignore[assignment]  # registered by Connection
    key = _plan_key(connection, synapse, neuron)
    plan: _Plan | None = cell_state.get("_fused_plan")
    if plan is None or plan.key != key:
        plan = cell_state["_fused_plan"] = _make_plan(key, connection, synapse, neuron)
    kernel = plan.kernel
    if kernel is None or cell_state.get("_pre_step_observers") or any_call_hooks(cell, connection, synapse, neuron):
        return None
    voltage: Tensor = neuron._buffers["voltage"]  # type: ignore[assignment]  # registered by SpikingNeuron
    rows_array = plan.rows_array
    if type(spikes) is not Tensor or type(voltage) is not Tensor:
        return None
    spikes_shape, shape = spikes.shape, voltage.shape
    if len(spikes_shape) != 2:
        return None
    # the state's shape as a plain tuple: numpy makes arrays of it in a third of the time it takes for a
    # torch.Size (measured 0.16 us against 0.54)
    dims = (spikes_shape[0], plan.outputs)
    if not (
        spikes.dtype == torch.bool
        and spikes_shape[1] == plan.inputs
        and spikes.is_cpu
        and spikes.is_contiguous()
        and spikes_shape == synapse._buffers["state"].shape  # type: ignore[union-attr]  # registered
        and voltage.dtype == plan.dtype
        and shape == dims
        and voltage.is_cpu
        and voltage.is_contiguous()
        and not voltage.requires_grad
    ):
        return None
    if current is not None and not (
        type(current) is Tensor
        and current.shape == shape
        and current.dtype == plan.dtype
        and current.is_cpu
        and current.is_contiguous()
        and not current.requires_grad
    ):
        return None  # the eager step's checks, with their messages
    empty_bias = plan.empty_bias
    kept_voltage = _kept(cell_state, "_fused_voltage", voltage)
    # the compiled code is called without numba's dispatcher (plan.entry) where every argument has the type
    # it was compiled for (see _make_plan); a step with a current, or with state arrays of another layout
    # than those a step stores (a state set from outside, e.g. in unaligned memory), goes through the
    # dispatcher, which types them
    entry = plan.entry
    call = kernel if entry is None or current is not None or kept_voltage.layout != plan.voltage_layout else entry
    buffers = neuron._buffers
    remaining = theta = None
    remaining_array = remaining_out = _NO_COUNTER
    theta_array = theta_out = empty_bias
    if plan.refractory:
        remaining = buffers.get("refractory_remaining")
        if not (
            type(remaining) is Tensor
            and remaining.dtype == torch.int32
            and remaining.shape == shape
            and remaining.is_cpu
            and remaining.is_contiguous()
        ):
            return None  # another counter (the eager step's checks, or its arithmetic in another dtype)
        kept_remaining = _kept(cell_state, "_fused_remaining", remaining)
        remaining_array = kept_remaining.array
        if kept_remaining.layout != _COUNTER_LAYOUT:
            call = kernel
        remaining_out = np.empty(dims, dtype=_INT32)
    if plan.adaptive:
        theta = buffers.get("theta")
        if not (
            type(theta) is Tensor
            and theta.dtype == plan.dtype
            and theta.shape == shape[1:]
            and theta.is_cpu
            and theta.is_contiguous()
            and not theta.requires_grad
        ):
            return None
        kept_theta = _kept(cell_state, "_fused_theta", theta)
        theta_array = kept_theta.array
        if kept_theta.layout != plan.theta_layout:
            call = kernel
        if plan.theta_changes:
            theta_out = np.empty(plan.outputs, dtype=rows_array.dtype)
    state_dtype = rows_array.dtype
    spike_array = np.empty(dims, dtype=state_dtype)
    voltage_array = np.empty(dims, dtype=state_dtype)
    fired_array = np.empty(dims, dtype=_BOOL)
    # the window recorders written by the call (the steps' values are plain bool CPU tensors of these
    # shapes that record no graph), the other observers called after it
    observers = cell_state.get("_post_step_observers")
    ring_pre: KeptRing | None = None
    ring_post: KeptRing | None = None
    pre_state = post_state = _NO_REDUCER  # the reducers' attributes, where their rings are written
    pre_array = post_array = _NO_RING
    pre_slot = post_slot = -1
    others: list[Any] = []
    if observers:
        training = cell.training  # read once for the recorders' gates
        for hook in observers.values():
            if type(hook) is AttributeRecorder:
                path = hook.path
                if path == "connection.synspike" and ring_pre is None:
                    found = window_ring(hook, training, spikes_shape)
                    if found is not None:
                        pre_state, ring_pre = found
                        pre_array, pre_slot = ring_pre.array, ring_pre.history_state["_pointer"]
                        continue
                elif path == "neuron.spike" and ring_post is None:
                    found = window_ring(hook, training, shape)
                    if found is not None:
                        post_state, ring_post = found
                        post_array, post_slot = ring_post.array, ring_post.history_state["_pointer"]
                        continue
            others.append(hook)
    try:
        status = call(
            spikes.numpy(),
            rows_array,
            plan.bias_array,
            plan.empty_current if current is None else current.numpy(),
            kept_voltage.array,
            remaining_array,
            theta_array,
            plan.constants,
            plan.flags if current is None else plan.flags_with_current,
            plan.refractory_steps,
            plan.density * spikes_shape[0] * spikes_shape[1] if plan.density < 1.0 else math.inf,
            spike_array,
            fired_array,
            voltage_array,
            remaining_out,
            theta_out,
            pre_array,
            pre_slot,
            post_array,
            post_slot,
        )
    except Exception as error:  # numba refusing argument types that no check above foresaw
        # the compiler's error (numba's TypingError) comes before the call writes anything: this cell steps
        # eagerly from now on, and says so once
        plan.kernel = None
        warnings.warn(
            f"plastic's fused step could not run for this cell and is off for it ({type(error).__name__}: "
            f"{error}); it steps eagerly, with the same values",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    if status != DONE:
        if status == CURRENT_NOT_FINITE:
            raise ValueError("current: expected finite values, found NaN or inf")
        if status == INPUTS_NOT_FINITE:
            raise ValueError("inputs: expected finite values, found NaN or inf")
        return None  # too dense: the dense product
    # the next step's state, kept with its arrays; theta is the same tensor where it does not change
    new_voltage = _keep(cell_state, "_fused_voltage", voltage_array, plan.voltage_layout)
    new_remaining = None if remaining is None else _keep(cell_state, "_fused_remaining", remaining_out, _COUNTER_LAYOUT)
    new_theta = theta
    if theta is not None and plan.theta_changes:
        new_theta = _keep(cell_state, "_fused_theta", theta_out, plan.theta_layout)
    # what the eager step stores: the synapse's deferred step (Synapse.pass_through), the connection's
    # record (_pass_through_step), the neuron's state laid out for its next step
    synapse._defer(spikes)
    connection._buffers["synspike"] = spikes  # as _pass_through_step: no buffer registration hooks (checked)
    connection._defer_syncurrent()
    fired = torch.from_numpy(fired_array)
    neuron._store_single_step(NeuronState(new_voltage, new_remaining, new_theta), fired)
    # the rings' steps counted, as WindowReducer.record_step counts its copy
    if ring_pre is not None:
        ring_pre.history._advance()
        pre_state["_total"] += 1
    if ring_post is not None:
        ring_post.history._advance()
        post_state["_total"] += 1
    result = torch.from_numpy(spike_array)
    for hook in others:
        hook(cell, args, result)
    return result


class _Plan:
    """What a cell's fused step reads of its modules: made by :func:`_make_plan`, kept in the cell while
    :func:`_plan_key` gives the same ``key``. ``kernel`` None: the modules do not take the fused step.

    It holds the objects whose ids the key lists (no other object can take
    those ids while it lives). Copies and pickles of the cell get a plan
    that no key matches (made again at the next step).
    """

    __slots__ = (
        "adaptive", "bias_array", "constants", "density", "dtype", "empty_bias", "empty_current", "entry", "flags",
        "flags_with_current", "held", "inputs", "kernel", "key", "outputs", "refractory", "refractory_steps",
        "rows_array", "theta_changes", "theta_layout", "voltage_layout",
    )  # fmt: skip

    def __init__(
        self, key: tuple[Any, ...] = (), held: tuple[Any, ...] = (), kernel: Callable[..., int] | None = None
    ) -> None:
        self.key = key
        self.held = held
        self.kernel = kernel
        # the kernel's machine code for the argument types of a step without a current whose state arrays
        # have the layouts below (else the kernel: numba's dispatcher types each call's arguments)
        self.entry: Callable[..., int] | None = kernel
        self.dtype: torch.dtype | None = None
        self.rows_array: Any = None
        self.inputs = 0  # the weight's rows (rows_array.shape[0])
        self.outputs = 0  # its columns: the neurons
        self.bias_array: Any = None  # the bias's array, or empty_bias where there is none
        self.empty_bias: Any = None  # the placeholders of arrays a step does not use (_EMPTY)
        self.empty_current: Any = None
        self.density = 1.0
        self.constants: Any = None
        self.flags: Any = None
        self.flags_with_current: Any = None
        self.refractory = False  # the neuron has a refractory counter (refractory_steps > 0)
        self.refractory_steps = 0
        self.adaptive = False  # the neuron has a theta
        self.theta_changes = False  # theta_plus != 0 or theta_decay != 1 (else theta is kept as it is)
        self.voltage_layout: tuple[Any, int] = (None, 0)  # KeptArray.layout of the voltage [B, N_out]
        self.theta_layout: tuple[Any, int] = (None, 0)  # and of theta [N_out]

    def __deepcopy__(self, memo: dict[int, Any]) -> _Plan:
        return _Plan()

    def __reduce__(self) -> tuple[type[_Plan], tuple[()]]:
        return (_Plan, ())


def _plan_key(connection: Connection, synapse: Any, neuron: Any) -> tuple[Any, ...]:
    """What the plan of a cell follows: its modules, their tensors' memory, their parameters and modes
    (tensors and the neuron's parameters by ``id``: the plan holds them, see :func:`_plan_objects`; the
    modules and the step function as themselves, which compare by identity: no call of ``id``)."""
    parameters = connection._parameters
    weight: Tensor = parameters["weight"]  # type: ignore[assignment]  # registered by Connection
    bias = parameters.get("bias")
    neuron_state, synapse_state = neuron.__dict__, synapse.__dict__
    return (
        connection,
        synapse,
        neuron,
        id(weight),
        weight.data_ptr(),
        weight.stride(),
        id(bias),
        None if bias is None else bias.data_ptr(),
        connection.__dict__.get("delay", 0) is None,
        connection._buffers.get("weight_mask") is None,
        synapse_state.get("_step_mode"),
        synapse_state.get("capacity"),
        synapse_state.get("amplitude"),
        neuron_state.get("_step_mode"),
        neuron_state.get("_step_function"),
        id(neuron_state.get("params")),
        neuron_state.get("adaptive"),
    )


def _plan_objects(connection: Connection, synapse: Any, neuron: Any) -> tuple[Any, ...]:
    """The objects :func:`_plan_key` lists by id."""
    parameters = connection._parameters
    neuron_state = neuron.__dict__
    return (
        connection,
        synapse,
        neuron,
        parameters["weight"],
        parameters.get("bias"),
        neuron_state.get("_step_function"),
        neuron_state.get("params"),
    )


def _plan_refusal(connection: Connection, synapse: Any, neuron: Any) -> str | None:
    """Why the cell's modules do not take the fused step (the module docstring's conditions on them),
    or None where they do."""
    connection_type, neuron_type = type(connection), type(neuron)
    if (
        connection_type.forward is not _CONNECTION_FORWARD
        or connection_type._pass_through_step is not _PASS_THROUGH_STEP
    ):
        return f"the connection is a {connection_type.__name__}, not a dense one (LinearDense)"
    if connection.__dict__.get("delay", 0) is not None:
        return "the connection has per-synapse delays"
    if connection._buffers.get("weight_mask") is not None:
        return "the connection has a weight mask (a lateral connection)"
    if type(synapse) is not DeltaCurrent:
        return f"the synapse is a {type(synapse).__name__}, not a DeltaCurrent"
    if synapse.capacity != 1:
        return "the synapse keeps a history of more than one step"
    if synapse.__dict__["_step_mode"] != "single" or neuron.__dict__.get("_step_mode") != "single":
        return "the cell steps in window mode (step_mode='window')"
    params = neuron.__dict__.get("params")
    if (
        neuron_type.forward is not _NEURON_FORWARD
        or neuron_type._forward_step_unchecked is not _NEURON_STEP
        or type(params) is not NeuronParams
        or params.kind not in ("lif", "if")
    ):
        return f"the neuron is a {neuron_type.__name__}, not an IF, LIF or AdaptiveLIF"
    if neuron.__dict__["_step_function"] is not neuron_step_unchecked:
        return "the neuron's step is compiled (compile_step)"
    if params.refractory_steps > _INT32_MAX:
        return "the refractory period is longer than an int32 counter holds"
    weight: Tensor = connection._parameters["weight"]  # type: ignore[assignment]  # registered
    rows, _ = connection._gather_rows(weight)
    if rows is None:
        return "the weight is not input-major (weight_layout='input_major')"
    if not (rows.dtype in _EMPTY and rows.is_cpu):
        return f"the weight is {rows.dtype} on {rows.device}, not float32 or float64 on the CPU"
    bias = connection._parameters.get("bias")
    if not rows.is_contiguous() or (
        bias is not None and not (bias.dtype == rows.dtype and bias.is_cpu and bias.is_contiguous())
    ):
        return "the weight or the bias is not laid out for the fused step (contiguous, one dtype)"
    return None


def fused_step_refusal(cell: Cell) -> str | None:
    """Why the single steps of ``cell`` would not take the fused step now, or None where they would.

    Reads the switch, numba, the grad mode, hooks and pre observers, the
    cell's modules (its connection, synapse and neuron) and their
    parameters. A step can still step eagerly for what only it shows: spikes
    that are not a contiguous CPU bool tensor ``[B, N_in]`` of the cell's
    batch, or as dense as the gather's density limit or denser, another
    input ``current`` that does not match the state, a neuron state set from
    outside in another layout.
    """
    if not _settings["enabled"]:
        return "the fused step is switched off (set_fused_step(False))"
    if compiled_linear_neuron_step() is None:
        return _NO_NUMBA
    if torch.is_grad_enabled():
        return "grad is enabled: step under torch.no_grad() (a plasticity run records no graph)"
    modules = cell._modules
    connection: Connection = modules["connection"]  # type: ignore[assignment]  # registered by Cell
    neuron: SpikingNeuron = modules["neuron"]  # type: ignore[assignment]
    synapse: Synapse = connection._modules["synapse"]  # type: ignore[assignment]  # registered by Connection
    if cell.__dict__.get("_pre_step_observers"):
        return "a pre-step observer is attached (a monitor with hook='pre')"
    if _module_implementation._global_buffer_registration_hooks or any_call_hooks(cell, connection, synapse, neuron):
        return "a forward hook (or a compiled call, or a JIT trace) is on the cell or one of its modules"
    return _plan_refusal(connection, synapse, neuron)


def _make_plan(key: tuple[Any, ...], connection: Connection, synapse: Any, neuron: Any) -> _Plan:
    """The plan of the modules (what :func:`_plan_key` follows), with ``kernel`` None where they do not
    take the fused step (the module docstring's conditions, but for the hooks and the step's tensors,
    which are checked at every step)."""
    held = _plan_objects(connection, synapse, neuron)
    refusal = _plan_refusal(connection, synapse, neuron)
    kernel = compiled_linear_neuron_step()
    if refusal is not None or kernel is None:
        return _Plan(key, held)
    weight: Tensor = connection._parameters["weight"]  # type: ignore[assignment]  # registered
    bias = connection._parameters.get("bias")
    params: NeuronParams = neuron.__dict__["params"]  # checked by _plan_refusal
    rows, density = connection._gather_rows(weight)  # a dense connection (checked by _plan_refusal)
    amplitude = float(synapse.amplitude)
    adaptive = bool(neuron.adaptive)
    # as in _theta_after_step: theta_plus = 0 with a decay of 1 leaves theta itself
    theta_changes = adaptive and not (params.theta_plus == 0 and params.theta_decay == 1.0)
    numbers = (amplitude, params.tau, params.v_reset, params.v_threshold, params.theta_decay, params.theta_plus)
    # the numbers in the state's dtype, rounded as the eager step's operands are (step_operand)
    constants = torch.tensor(numbers, dtype=torch.float64).to(rows.dtype).numpy()
    flags = [
        params.kind == "lif",
        params.decay_input,
        params.v_reset == 0 and math.copysign(1.0, params.v_reset) > 0,  # V - V_reset is V exactly
        params.reset == "hard",
        bias is not None,
        False,  # no current: set in flags_with_current
        amplitude != 1.0,
        params.refractory_steps > 0,
        adaptive,
        theta_changes,
        params.theta_decay != 1.0,
    ]
    with_current = list(flags)
    with_current[5] = True
    plan = _Plan(key, held, kernel)
    plan.dtype = rows.dtype
    plan.rows_array = rows.numpy()
    plan.inputs, plan.outputs = plan.rows_array.shape
    plan.density = density
    plan.constants = constants
    plan.flags = np.array(flags, dtype=np.bool_)
    plan.flags_with_current = np.array(with_current, dtype=np.bool_)
    plan.refractory = params.refractory_steps > 0
    plan.refractory_steps = params.refractory_steps
    plan.adaptive = adaptive
    plan.theta_changes = theta_changes
    state_dtype = plan.rows_array.dtype
    plan.voltage_layout, plan.theta_layout = (state_dtype, 2), (state_dtype, 1)
    # the arguments of a step without a current whose state arrays have these layouts, for their types:
    # its spikes are a contiguous bool tensor's array (C-contiguous, writeable as torch makes it, aligned
    # as bool), its outputs new arrays (C-contiguous, aligned and writeable as numpy allocates them), its
    # numbers of these Python types
    state, fired, counter = np.empty((1, plan.outputs), state_dtype), np.empty((1, plan.outputs), _BOOL), _NO_COUNTER
    empty_bias, empty_current = plan.empty_bias, plan.empty_current = _EMPTY[rows.dtype]
    plan.bias_array = empty_bias if bias is None else bias.detach().numpy()
    spikes = np.zeros((1, plan.inputs), dtype=_BOOL)
    limit = density * 1 * plan.inputs if density < 1.0 else math.inf  # the step's expression, at B = 1
    sample = (
        spikes, plan.rows_array, plan.bias_array, empty_current, state, counter, empty_bias, constants, plan.flags,
        plan.refractory_steps, limit, state, fired, state, counter, empty_bias, _NO_RING, -1, _NO_RING, -1,
    )  # fmt: skip
    plan.entry = entry_point(kernel, sample) or kernel
    # the eager step keeps its operands while the state it stored is the one it finds; the fused steps
    # store that state too, in the layout of this plan: the operands are made again for it
    neuron.__dict__.pop("_step_operands", None)
    return plan


class KeptArray:
    """A tensor's memory as a numpy array, kept between steps in a module's attributes.

    Copies and pickles of the module get an empty one (the array would not
    be the copy's memory), and :func:`_kept` makes it again when the
    module holds another tensor or the tensor another memory (``.data =``).

    ``layout``: ``(dtype, dimensions)`` of the array where it is a
    C-contiguous, aligned and writeable ndarray (the arrays the compiled
    code is called with without its dispatcher), else None.
    """

    __slots__ = ("array", "layout", "pointer", "tensor")

    def __init__(self, tensor: Tensor | None = None) -> None:
        self.tensor = tensor
        self.pointer = -1 if tensor is None else tensor.data_ptr()
        array = None if tensor is None else tensor.detach().numpy()
        self.array: Any = array
        self.layout: tuple[Any, int] | None = None
        if array is not None and array.flags.carray:  # C-contiguous, aligned and writeable
            self.layout = (array.dtype, array.ndim)

    def __deepcopy__(self, memo: dict[int, Any]) -> KeptArray:
        return KeptArray()

    def __reduce__(self) -> tuple[type[KeptArray], tuple[()]]:
        return (KeptArray, ())


def _keep(state: dict[str, Any], name: str, array: Any, layout: tuple[Any, int]) -> Tensor:
    """A new tensor on ``array`` (memory a step wrote: a new ndarray of ``layout``), kept with its array as
    ``state[name]``."""
    tensor = torch.from_numpy(array)
    kept = state.get(name)
    if kept is None:
        kept = state[name] = KeptArray()
    kept.tensor, kept.pointer, kept.array, kept.layout = tensor, tensor.data_ptr(), array, layout
    return tensor


def _kept(state: dict[str, Any], name: str, tensor: Tensor) -> KeptArray:
    """The :class:`KeptArray` ``state[name]`` of ``tensor``'s memory (made where missing or stale).
    ``tensor`` must be a contiguous CPU tensor."""
    kept: KeptArray | None = state.get(name)
    if kept is None or kept.tensor is not tensor or kept.pointer != tensor.data_ptr():
        kept = state[name] = KeptArray(tensor)
    return kept


_CONNECTION_FORWARD = Connection.forward
_PASS_THROUGH_STEP = LinearDense._pass_through_step
_NEURON_FORWARD = SpikingNeuron.forward
_NEURON_STEP = SpikingNeuron._forward_step_unchecked
# placeholders of the arrays a step does not use (of the used ones' types: one compilation per dtype)
_EMPTY = {} if np is None else {
    dtype: (np.zeros(0, dtype=numpy), np.zeros((0, 0), dtype=numpy))
    for dtype, numpy in ((torch.float32, np.float32), (torch.float64, np.float64))
}  # fmt: skip
_NO_RING = None if np is None else np.zeros((0, 0, 0), dtype=np.bool_)
_NO_REDUCER: dict[str, Any] = {}  # never written: a ring's reducer attributes replace it where it is
_NO_COUNTER = None if np is None else np.zeros((0, 0), dtype=np.int32)
_BOOL = None if np is None else np.dtype(np.bool_)  # dtype objects: numpy reads them faster than types
_INT32 = None if np is None else np.dtype(np.int32)
_COUNTER_LAYOUT = (_INT32, 2)  # KeptArray.layout of a refractory counter [B, N_out]
_INT32_MAX = 2**31 - 1
_NO_NUMBA = 'numba is not installed (pip install "plastic[fast]")'
