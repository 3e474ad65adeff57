"""The one-sample pair STDP window of an input-major dense cell, with what its windows share kept.

A cell stepped one sample at a time and trained every ``T`` steps (issue 15,
S2: 784 -> 400, ``T = 100``) spends as long on the bookkeeping around the
compiled window sums (:func:`~plastic.functional.window_bags.pre_event_sums`)
as on the sums: the filter tables looked up, a dozen tensors converted for
numba, fresh small outputs, a dozen small tensor operations around them, the
new traces in temporaries then copied. Every window of a unit with the same
hyperparameters, ``dt``, window length and shapes needs the same tables and
the same scratch arrays, so :class:`OneSampleWindowPlan` keeps them (and the
arrays of the updater's accumulator and of the carried traces, for as long
as those are the same tensors), and :func:`learn_one_sample_window` runs the
window with them: the same calls of the same compiled sums on the same values
as :meth:`~plastic.learn.stdp.STDP._pre_event_window`, the same updater call,
and the traces' small operations by two compiled loops
(:mod:`plastic.functional.window_traces`) and one torch call that round as
the plain path's operations do, written in place: the same accumulator and
traces bit for bit. Anything it does not take (another
layout, batch, dtype, device, non-finite traces, a first window) is left to
the plain path, which checks and refuses as before.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from plastic.functional.event_forward import is_input_major
from plastic.functional.stdp_checks import finite_change_limit, pair_change_bound
from plastic.functional.stdp_engine import decay_powers, pre_event_tables, uses_pre_event_product
from plastic.functional.traces import decay_factor
from plastic.functional.window_bags import compiled_pre_event_sums, sums_write_into
from plastic.functional.window_traces import WindowTraceKernels, compiled_window_traces
from plastic.learn.base import Unit
from plastic.neural.buffers import set_plain
from plastic.neural.connection_base import Connection

__all__ = ["OneSampleWindowPlan", "learn_one_sample_window"]


def _flat_array(tensor: Tensor) -> Any:
    """The tensor's elements as a one-dimensional numpy array of the same memory."""
    return tensor.view(tensor.numel()).numpy()


def _flat_view(tensor: Tensor) -> Tensor:
    return tensor.view(tensor.numel())


def _no_plan() -> None:
    return None


class OneSampleWindowPlan:
    """What the one-sample windows of one unit share while its hyperparameters, ``dt``, window length,
    shapes and dtype stay: the decays, the window's filter tables (:func:`pre_event_tables`) as numpy
    arrays, ``a_post^T``, scratch outputs of the sums, and the numpy arrays of the tensors the sums read
    and write (the updater's accumulator, the carried traces), each kept with the tensor, its address
    and strides it was made for. Not copied or pickled with the state (a copy starts without one)."""

    def __init__(
        self,
        params: Any,
        dt: float,
        steps: int,
        inputs: int,
        outputs: int,
        dtype: torch.dtype,
        kernel: Any,
        trace_kernels: WindowTraceKernels,
    ) -> None:
        self.params, self.dt, self.steps, self.inputs, self.outputs, self.dtype = (
            params,
            dt,
            steps,
            inputs,
            outputs,
            dtype,
        )
        self.kernel = kernel
        self.trace_kernels = trace_kernels
        self.decay_pre = decay_factor(dt, params.tau_pre, exact=params.exact)
        self.decay_post = decay_factor(dt, params.tau_post, exact=params.exact)
        # the scalars of the trace loops in the dtype, as torch converts a Python scalar for its tensors
        scalar = torch.empty((), dtype=dtype).numpy().dtype.type
        self.amplitude_post = scalar(float(params.amplitude_post))
        self.negative_eta_pre = scalar(-float(params.eta_pre))
        cpu = torch.device("cpu")
        tables = pre_event_tables(
            steps, self.decay_pre, self.decay_post, float(params.amplitude_pre), float(params.amplitude_post),
            float(params.eta_post), float(params.eta_pre), dtype, cpu, inputs,
        )  # fmt: skip
        self.tables = tables  # kept: the arrays below are views of its tensors
        self.filter_rows = tables.filter_rows.numpy()
        self.post_powers = tables.post_powers.numpy()
        self.carry_columns = tables.carry_columns.numpy()
        self.carry_scale = tables.carry_scale
        # a_post^T as pre_event_window_update multiplies by it: the dtype's value of decay_powers, not the
        # Python float a_post ** T
        self.power_post = decay_powers(self.decay_post, steps, dtype, cpu)[steps].numpy()[()]
        # the bound under which the change is finite by construction (STDP._bounded_change)
        self.finite_limit = finite_change_limit(dtype)
        self.post_decayed = torch.empty(outputs, dtype=dtype)
        self.sums = torch.empty(inputs, 2, dtype=dtype)
        self.carried_post = torch.empty(outputs, dtype=dtype)
        self.post_decayed_array = self.post_decayed.numpy()
        self.sums_array = self.sums.numpy()
        self.carried_post_array = self.carried_post.numpy()
        self.last_pre_sums = self.sums[:, 0]
        self.arrays: dict[str, tuple[Tensor, int, tuple[int, ...], Any]] = {}

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return _no_plan, ()

    def matches(self, params: Any, dt: float, steps: int, inputs: int, outputs: int, dtype: torch.dtype) -> bool:
        return (
            params is self.params
            and dt == self.dt
            and steps == self.steps
            and inputs == self.inputs
            and outputs == self.outputs
            and dtype == self.dtype
        )

    def kept(self, role: str, tensor: Tensor, make: Callable[[Tensor], Any]) -> Any:
        """``make(tensor)`` as kept under ``role``, made anew when ``tensor`` is another tensor, or the
        same one moved to other memory or strides."""
        kept = self.arrays.get(role)
        if kept is not None and kept[0] is tensor and kept[1] == tensor.data_ptr() and kept[2] == tensor.stride():
            return kept[3]
        value = make(tensor)
        self.arrays[role] = (tensor, tensor.data_ptr(), tensor.stride(), value)
        return value

    def array(self, role: str, tensor: Tensor) -> Any:
        """The kept numpy array of ``tensor`` under ``role`` (flattened)."""
        return self.kept(role, tensor, _flat_array)

    def spike_array(self, role: str, spikes: Tensor, steps: int, width: int) -> Any:
        """``spikes`` ``[T, 1, ...]`` as a numpy array ``[T, width]``: a slice of the kept array of the
        recording they are a view of (a monitor's ring: no tensor call), else converted."""
        base = spikes._base
        if base is not None and base.is_contiguous() and spikes.is_contiguous() and base.dtype == spikes.dtype:
            start = spikes.storage_offset() - base.storage_offset()
            if start >= 0 and start + steps * width <= base.numel():
                return self.kept(role, base, _flat_array)[start : start + steps * width].reshape(steps, width)
        return spikes.reshape(steps, width).numpy()

    def change_array(self, accumulator: Tensor, shape: torch.Size) -> Any:
        """The numpy array ``[N_in, N_out]`` the compiled sums write the change into, of the updater's
        empty accumulator (weight-shaped) viewed as ``shape`` ``[1, N_out, N_in]``, or None where
        :meth:`~plastic.learn.stdp.STDP._pre_event_window` would not write it there (another layout,
        a window the pre-event product does not take, sums that do not write into it)."""
        kept = self.arrays.get("change")
        if (
            kept is not None
            and kept[0] is accumulator
            and kept[1] == accumulator.data_ptr()
            and kept[2] == accumulator.stride()
        ):
            return kept[3]
        if accumulator.is_contiguous() or not is_input_major(accumulator):
            return None
        buffer = accumulator.view(shape)
        if not (uses_pre_event_product(buffer, self.steps, 1) and sums_write_into(buffer[0].T)):
            return None
        array = buffer[0].T.numpy()
        self.arrays["change"] = (accumulator, accumulator.data_ptr(), accumulator.stride(), array)
        return array


def _plan(unit: Unit, steps: int, inputs: int, outputs: int, dtype: torch.dtype) -> OneSampleWindowPlan | None:
    """The unit's plan for these windows (kept in its state), or None where the compiled sums do not run."""
    params, dt = unit.state.params, unit.cell.dt
    plan = unit.state.__dict__.get("one_sample_window_plan")
    if isinstance(plan, OneSampleWindowPlan) and plan.matches(params, dt, steps, inputs, outputs, dtype):
        return plan
    kernel = compiled_pre_event_sums() if dtype in (torch.float32, torch.float64) else None
    trace_kernels = compiled_window_traces()
    if kernel is None or trace_kernels is None:
        return None
    plan = OneSampleWindowPlan(params, dt, steps, inputs, outputs, dtype, kernel, trace_kernels)
    set_plain(unit.state, "one_sample_window_plan", plan)
    return plan


def learn_one_sample_window(
    unit: Unit,
    spikes_pre: Tensor,
    spikes_post: Tensor,
    connection: Connection,
    weight: Tensor,
    grouped_shape: torch.Size,
) -> bool:
    """Learn one window ``[T, 1, *in]`` / ``[T, 1, *out]`` of an all-to-all one-product STDP unit (the
    caller checked :meth:`~plastic.learn.stdp.STDP.uses_one_product`) with its
    :class:`OneSampleWindowPlan`: the change into the updater's empty accumulator, the carried traces
    updated; True. False where it does not take the window (nothing done): the plain path learns it.

    Taken where the plain path takes the compiled pre-event window
    (:meth:`~plastic.learn.stdp.STDP._pre_event_window` writing into the
    accumulator) and both traces are carried already (not a first window):
    bool CPU spikes of one sample through an all-to-all connection whose
    float32/float64 input-major weight's accumulator is empty, carried
    traces of the window's shapes and the weight's dtype, contiguous, finite
    and without a graph. ``connection`` is the unit's connection, ``weight``
    its weight and ``grouped_shape`` its ``weight_grouped()`` shape.
    """
    steps, batch = spikes_pre.shape[:2]
    dtype = weight.dtype
    buffers = unit.state._buffers
    trace_pre, trace_post = buffers.get("trace_pre"), buffers.get("trace_post")
    if (
        batch != 1
        or trace_pre is None
        or trace_post is None
        or spikes_pre.dtype != torch.bool
        or spikes_post.dtype != torch.bool
        or spikes_post.shape[:2] != (steps, 1)
        or not (spikes_pre.is_cpu and spikes_post.is_cpu and trace_pre.is_cpu and trace_post.is_cpu)
        or trace_pre.shape != spikes_pre.shape[1:]
        or trace_post.shape != spikes_post.shape[1:]
        or trace_pre.dtype != dtype
        or trace_post.dtype != dtype
        or trace_pre.requires_grad
        or trace_post.requires_grad
        or not (trace_pre.is_contiguous() and trace_post.is_contiguous())
        or getattr(connection, "all_to_all", False) is not True
        or len(grouped_shape) != 3
    ):
        return False
    inputs, outputs = trace_pre.numel(), trace_post.numel()
    if not (inputs and outputs) or grouped_shape[0] != 1 or grouped_shape[1] != outputs or grouped_shape[2] != inputs:
        return False
    plan = _plan(unit, steps, inputs, outputs, dtype)
    if plan is None:
        return False
    # the carried traces' largest magnitudes, before the window (as stdp_checks.largest_magnitude gives
    # them, NaN where an element is): their finiteness (the plain path refuses others, with its message)
    # and the bound that proves the change finite (STDP._bounded_change); and -eta_pre x_post(-1) as
    # torch.mul(trace_post, -eta_pre) rounds it
    trace_pre_array = plan.array("trace_pre", trace_pre)
    trace_post_array = plan.array("trace_post", trace_post)
    largest_pre, largest_post = plan.trace_kernels.magnitudes_before(
        trace_pre_array, trace_post_array, plan.negative_eta_pre, plan.carried_post_array
    )
    if not (math.isfinite(largest_pre) and math.isfinite(largest_post)):
        return False
    params = plan.params
    bound = pair_change_bound(
        steps, 1, params.eta_post, params.eta_pre, params.amplitude_pre, params.amplitude_post,
        plan.decay_pre, plan.decay_post, largest_pre, largest_post,
    )  # fmt: skip
    known_finite = bound <= plan.finite_limit
    updater = unit.updater
    if "weight" not in updater.params:
        return False
    accumulator = updater.change_buffer("weight")
    if accumulator is None or accumulator.dtype != dtype:
        return False
    change = plan.change_array(accumulator, grouped_shape)
    if change is None:
        return False
    try:
        plan.kernel(
            plan.spike_array("spikes_pre", spikes_pre, steps, inputs),
            plan.spike_array("spikes_post", spikes_post, steps, outputs),
            plan.filter_rows, plan.post_powers, plan.carry_columns, trace_pre_array, plan.carried_post_array,
            True, plan.post_decayed_array, change, plan.sums_array,
        )  # fmt: skip
    except BaseException:
        accumulator.zero_()  # possibly written into: the updater's empty accumulator stays empty
        raise
    # the updater first: a refused change leaves the carried traces as they were
    updater.accumulate_signed("weight", accumulator, known_finite=known_finite, owned=True)
    # x_pre(T-1) = sums + a_pre^T x_pre(-1) and x_post(T-1) = a_post^T x_post(-1) + A_post post_decayed,
    # the operations of pre_event_window_product / pre_event_window_update, written into the traces: the
    # first as torch's add with alpha computes it (a fused multiply-add), the second's three roundings
    # in the dtype by a compiled loop (the same products and sum)
    flat_pre = plan.kept("flat_trace_pre", trace_pre, _flat_view)
    torch.add(plan.last_pre_sums, flat_pre, alpha=plan.carry_scale, out=flat_pre)
    plan.trace_kernels.post_trace_after(trace_post_array, plan.power_post, plan.amplitude_post, plan.post_decayed_array)
    return True
