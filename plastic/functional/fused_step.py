"""One single step of a dense cell in one native call: the gather of the spiking inputs' weights, the
neuron step and the window recorders' writes (the fused step of :mod:`plastic.neural.fused_step`).

A cell with a delta synapse, an input-major weight and an IF or LIF neuron
(optionally with a refractory period of ``n`` steps, counter ``r``, and an
adaptive threshold ``theta[o]`` shared by the batch) computes, at each single
step of bool spikes ``s[b, i]``::

    X[b, o] = A * sum_{i: s[b, i]} W^T[i, o]  (+ bias[o])  (+ current[b, o])    (i increasing)
    H[b, o] = V[b, o] + X[b, o]                                 (IF)
            = V + (X - (V - V_reset)) / tau                     (LIF, decay_input)
            = (V - (V - V_reset) / tau) + X                     (LIF, not decay_input)
    H[b, o] = V[b, o] where r[b, o] > 0                         (refractory)
    T[o] = theta[o] + V_th                                       (adaptive; else T = V_th)
    S[b, o] = [H >= T] and not r[b, o] > 0
    V'[b, o] = V_reset where S, else H       (hard reset)
             = H - S * T                     (soft reset)
    r'[b, o] = n where S, else max(r - 1, 0)
    theta'[o] = theta * theta_decay + theta_plus * sum_b S[b, o]

:func:`linear_neuron_step` writes ``S`` (as numbers and as bool), ``V'``,
``r'``, ``theta'`` and the step's slots of two recording rings in one pass,
with the operations of the eager step
(:func:`~plastic.functional.event_forward.gather_linear`, then
:func:`~plastic.functional.neurons.neuron_step_unchecked`) in the same order
and the same precision, so its results are those of the eager step, bit for
bit. It is plain Python over numpy arrays, written so that numba compiles it
(:func:`compiled_linear_neuron_step`); uncompiled it still runs (one Python
operation per element: slow, but what the tests check where numba is not
installed).

The gather is taken, as in the eager step, only while the spikes are sparse:
with ``limit`` spikes or more in the batch nothing is written and
:data:`TOO_DENSE` is returned (the dense product is then the faster one, and
its sums are ordered differently).
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any

try:
    import numpy as np
except ImportError:  # pragma: no cover - numpy comes with the usual torch installs; numba needs it
    np = None  # type: ignore[assignment]  # None: no numba either (compiled_linear_neuron_step gives None)

from plastic.functional.numba_kernels import numba_compiled

__all__ = [
    "CURRENT_NOT_FINITE",
    "DONE",
    "INPUTS_NOT_FINITE",
    "TOO_DENSE",
    "compiled_linear_neuron_step",
    "entry_point",
    "linear_neuron_step",
]

#: :func:`linear_neuron_step`'s results: the step was written
DONE = 0
#: nothing written: ``limit`` spikes or more (take the dense product)
TOO_DENSE = 1
#: nothing written: the other input ``current`` holds NaN or inf
CURRENT_NOT_FINITE = 2
#: nothing written: the neurons' input ``X`` is not finite (NaN or inf weights, or an overflow)
INPUTS_NOT_FINITE = 3

# the indices of the numbers in ``constants`` (each in the state's dtype, as the eager step's operands)
AMPLITUDE, TAU, V_RESET, V_THRESHOLD, THETA_DECAY, THETA_PLUS = 0, 1, 2, 3, 4, 5
# the indices of ``flags``
(IS_LIF, DECAY_INPUT, V_RESET_IS_PLUS_ZERO, HARD_RESET, HAS_BIAS, HAS_CURRENT, SCALED, REFRACTORY, ADAPTIVE,
 THETA_CHANGES, THETA_DECAYS) = range(11)  # fmt: skip


def linear_neuron_step(
    spikes: Any,
    rows: Any,
    bias: Any,
    current: Any,
    voltage: Any,
    remaining: Any,
    theta: Any,
    constants: Any,
    flags: Any,
    refractory_steps: int,
    limit: float,
    spike_out: Any,
    fired_out: Any,
    voltage_out: Any,
    remaining_out: Any,
    theta_out: Any,
    ring_pre: Any,
    slot_pre: int,
    ring_post: Any,
    slot_post: int,
) -> int:
    """One step of the equations of the module docstring; returns :data:`DONE` or why nothing was written.

    Args:
        spikes: bool ``[B, N_in]``, the presynaptic spikes.
        rows: ``[N_in, N_out]``, the transpose of the input-major weight ``W``.
        bias: ``[N_out]``, read when ``flags[HAS_BIAS]``.
        current: ``[B, N_out]``, the cell's other input, read when ``flags[HAS_CURRENT]``.
        voltage: ``[B, N_out]``, ``V`` before the step (not written).
        remaining: int32 ``[B, N_out]``, the refractory counter ``r`` (not
            written), read when ``flags[REFRACTORY]``.
        theta: ``[N_out]``, the adaptive threshold (not written), read when ``flags[ADAPTIVE]``.
        constants: ``A, tau, V_reset, V_th, theta_decay, theta_plus`` in the state's dtype.
        flags: bool ``[11]`` (the indices named in this module): LIF (else
            IF), ``decay_input``, ``V_reset`` is +0 (``V - V_reset`` is
            ``V``), hard reset (else soft), bias, current, ``A != 1`` (the
            sums are scaled only then), refractory period, adaptive
            threshold, ``theta`` changes (else ``theta_out`` is not
            written: ``theta_plus = 0`` and ``theta_decay = 1``),
            ``theta_decay != 1`` (the product is taken only then).
        refractory_steps: ``n``, the counter's value after a spike.
        limit: the spike count from which the gather is not taken.
        spike_out, fired_out, voltage_out, remaining_out: ``[B, N_out]``
            outputs: ``S`` in the state's dtype, ``S`` as bool, ``V'``, ``r'``
            (written when refractory).
        theta_out: ``[N_out]``, ``theta'`` (written when ``theta`` changes).
        ring_pre, slot_pre: ``spikes`` is written into ``ring_pre[slot_pre]``
            (``slot_pre < 0``: no ring); likewise ``S`` into ``ring_post``.
    """
    batch, inputs = spikes.shape
    outputs = rows.shape[1]
    count = 0
    for b in range(batch):
        for i in range(inputs):
            if spikes[b, i]:
                count += 1
    if count >= limit:
        return TOO_DENSE
    has_current = flags[HAS_CURRENT]
    if has_current and not _all_finite(current):
        return CURRENT_NOT_FINITE
    amplitude = constants[AMPLITUDE]
    drive = np.zeros((batch, outputs), dtype=rows.dtype)
    for b in range(batch):
        for i in range(inputs):
            if spikes[b, i]:
                for o in range(outputs):
                    drive[b, o] += rows[i, o]
        # the eager gather scales its sums only when something spiked (otherwise its zeros are new)
        if count > 0 and flags[SCALED]:
            for o in range(outputs):
                drive[b, o] *= amplitude
        if flags[HAS_BIAS]:
            for o in range(outputs):
                drive[b, o] = drive[b, o] + bias[o]
        if has_current:
            for o in range(outputs):
                drive[b, o] = drive[b, o] + current[b, o]
    if not _all_finite(drive):
        return INPUTS_NOT_FINITE
    # the charge H into voltage_out, one loop per form (loops without branches: vectorised)
    tau, v_reset = constants[TAU], constants[V_RESET]
    if not flags[IS_LIF]:
        for b in range(batch):
            for o in range(outputs):
                voltage_out[b, o] = voltage[b, o] + drive[b, o]
    elif flags[DECAY_INPUT] and flags[V_RESET_IS_PLUS_ZERO]:
        for b in range(batch):
            for o in range(outputs):
                voltage_out[b, o] = voltage[b, o] + (drive[b, o] - voltage[b, o]) / tau
    elif flags[DECAY_INPUT]:
        for b in range(batch):
            for o in range(outputs):
                voltage_out[b, o] = voltage[b, o] + (drive[b, o] - (voltage[b, o] - v_reset)) / tau
    elif flags[V_RESET_IS_PLUS_ZERO]:
        for b in range(batch):
            for o in range(outputs):
                voltage_out[b, o] = (voltage[b, o] - voltage[b, o] / tau) + drive[b, o]
    else:
        for b in range(batch):
            for o in range(outputs):
                voltage_out[b, o] = (voltage[b, o] - (voltage[b, o] - v_reset) / tau) + drive[b, o]
    refractory = flags[REFRACTORY]
    if refractory:  # a refractory neuron keeps its voltage: H = V where r > 0
        for b in range(batch):
            for o in range(outputs):
                voltage_out[b, o] = voltage[b, o] if remaining[b, o] > 0 else voltage_out[b, o]
    # the threshold T of each neuron: theta + V_th rounded in the state's dtype, as the eager torch.add
    thresholds = np.full(outputs, constants[V_THRESHOLD], dtype=rows.dtype)
    if flags[ADAPTIVE]:
        for o in range(outputs):
            thresholds[o] = theta[o] + thresholds[o]
    # fire (never while refractory), then reset H in place
    one, zero = spike_out.dtype.type(1), spike_out.dtype.type(0)
    for b in range(batch):
        for o in range(outputs):
            fired = voltage_out[b, o] >= thresholds[o]
            if refractory:
                fired = fired and not remaining[b, o] > 0
            fired_out[b, o] = fired
            spike_out[b, o] = one if fired else zero
    if flags[HARD_RESET]:
        for b in range(batch):
            for o in range(outputs):
                voltage_out[b, o] = v_reset if fired_out[b, o] else voltage_out[b, o]
    else:  # soft reset: H - S * T
        for b in range(batch):
            for o in range(outputs):
                voltage_out[b, o] = voltage_out[b, o] - spike_out[b, o] * thresholds[o]
    if refractory:
        # (r - 1) in the counter's int32, wrapping as torch.sub does, then clamped at 0; n where fired
        for b in range(batch):
            for o in range(outputs):
                remaining_out[b, o] = remaining[b, o] - 1
        for b in range(batch):
            for o in range(outputs):
                left = remaining_out[b, o]
                remaining_out[b, o] = refractory_steps if fired_out[b, o] else (left if left > 0 else 0)
    if flags[THETA_CHANGES]:
        # theta * theta_decay (skipped at a decay of 1, where it is exact) + theta_plus * count, the
        # count of the batch's spikes exact in the state's dtype, each product and sum rounded there
        counts = np.zeros(outputs, dtype=rows.dtype)
        for b in range(batch):
            for o in range(outputs):
                counts[o] += spike_out[b, o]
        theta_decay, theta_plus = constants[THETA_DECAY], constants[THETA_PLUS]
        if flags[THETA_DECAYS]:
            for o in range(outputs):
                theta_out[o] = theta[o] * theta_decay + theta_plus * counts[o]
        else:
            for o in range(outputs):
                theta_out[o] = theta[o] + theta_plus * counts[o]
    # element by element: numba's slice assignment (ring[slot] = values) takes its general broadcasting
    # path, measured 0.5 us for these two copies at 784 and 400 values, against about none for the loops
    if slot_pre >= 0:
        for b in range(batch):
            for i in range(inputs):
                ring_pre[slot_pre, b, i] = spikes[b, i]
    if slot_post >= 0:
        for b in range(batch):
            for o in range(outputs):
                ring_post[slot_post, b, o] = fired_out[b, o]
    return DONE


def _all_finite(values: Any) -> bool:
    """No NaN or inf in the 2-d ``values``: one pass without an early exit, which vectorises."""
    bad = False
    for b in range(values.shape[0]):
        for o in range(values.shape[1]):
            bad |= not np.isfinite(values[b, o])
    return not bad


@functools.cache
def compiled_linear_neuron_step() -> Callable[..., int] | None:
    """:func:`linear_neuron_step` compiled by numba (``plastic[fast]``), or None where numba is not installed.

    Compiled once per process and argument types, and cached on disk by
    numba where it can (:func:`~plastic.functional.numba_kernels.numba_compiled`).
    """
    return numba_compiled(_compile)


def entry_point(kernel: Callable[..., int], arguments: tuple[Any, ...]) -> Callable[..., int] | None:
    """The machine code of ``kernel`` (:func:`compiled_linear_neuron_step`) for the numba types of
    ``arguments``, compiled now (or read from numba's cache) where it is not yet; None where ``kernel`` is
    not a numba function or does not compile for these types.

    Calling it skips numba's dispatcher, which types every argument of every
    call to choose the machine code (about 0.5 us of a step's 20
    arguments). It does not check its arguments: call it only with
    arguments of exactly these types (arrays of the same dtype, number of
    dimensions and layout, C-contiguous, aligned and writeable; numbers of
    the same Python type). Arrays of another number of dimensions, in
    particular, would be read out of bounds.
    """
    try:
        import numba
        from numba.core.registry import CPUDispatcher
    except ImportError:
        return None
    if not isinstance(kernel, CPUDispatcher):
        return None
    typeof: Callable[[Any], Any] = numba.typeof
    try:
        entry: Callable[..., int] = kernel.compile(tuple(typeof(argument) for argument in arguments))
    except Exception:  # numba's typing or lowering errors: the dispatcher's call reports them
        return None
    return entry


def _compile(numba: Any, cache: bool) -> Callable[..., int]:
    # numba resolves a function's globals when it compiles it: the step is compiled as a copy whose
    # globals hold the compiled helper (the module's own functions stay plain Python)
    step_globals = {**linear_neuron_step.__globals__, "_all_finite": numba.njit(cache=cache)(_all_finite)}
    step = types.FunctionType(linear_neuron_step.__code__, step_globals, linear_neuron_step.__name__)
    compiled: Callable[..., int] = numba.njit(cache=cache)(step)
    return compiled
