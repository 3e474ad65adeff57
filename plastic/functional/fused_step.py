"""One single step of a dense cell in one native call: the gather of the spiking inputs' weights, the
neuron step and the window recorders' writes (the fused step of :mod:`plastic.neural.fused_step`).

A cell with a delta synapse, an input-major weight and an IF or LIF neuron
computes, at each single step of bool spikes ``s[b, i]``::

    X[b, o] = A * sum_{i: s[b, i]} W^T[i, o]  (+ bias[o])  (+ current[b, o])    (i increasing)
    H[b, o] = V[b, o] + X[b, o]                                 (IF)
            = V + (X - (V - V_reset)) / tau                     (LIF, decay_input)
            = (V - (V - V_reset) / tau) + X                     (LIF, not decay_input)
    S[b, o] = [H >= V_th]
    V'[b, o] = V_reset where S, else H       (hard reset)
             = H - S * V_th                  (soft reset)

:func:`linear_neuron_step` writes ``S`` (as numbers and as bool), ``V'`` and
the step's slots of two recording rings in one pass, with the operations of
the eager step (:func:`~plastic.functional.event_forward.gather_linear`, then
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

__all__ = [
    "CURRENT_NOT_FINITE",
    "DONE",
    "INPUTS_NOT_FINITE",
    "TOO_DENSE",
    "compiled_linear_neuron_step",
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
AMPLITUDE, TAU, V_RESET, V_THRESHOLD = 0, 1, 2, 3


def linear_neuron_step(
    spikes: Any,
    rows: Any,
    bias: Any,
    current: Any,
    voltage: Any,
    constants: Any,
    flags: Any,
    limit: float,
    spike_out: Any,
    fired_out: Any,
    voltage_out: Any,
    ring_pre: Any,
    slot_pre: int,
    ring_post: Any,
    slot_post: int,
) -> int:
    """One step of the equations of the module docstring; returns :data:`DONE` or why nothing was written.

    Args:
        spikes: bool ``[B, N_in]``, the presynaptic spikes.
        rows: ``[N_in, N_out]``, the transpose of the input-major weight ``W``.
        bias: ``[N_out]``, read when ``flags[4]``.
        current: ``[B, N_out]``, the cell's other input, read when ``flags[5]``.
        voltage: ``[B, N_out]``, ``V`` before the step (not written).
        constants: ``A, tau, V_reset, V_th`` in the state's dtype.
        flags: bool ``[7]``: LIF (else IF), ``decay_input``, ``V_reset`` is +0
            (``V - V_reset`` is ``V``), hard reset (else soft), bias, current,
            ``A != 1`` (the sums are scaled only then).
        limit: the spike count from which the gather is not taken.
        spike_out, fired_out, voltage_out: ``[B, N_out]`` outputs: ``S`` in
            the state's dtype, ``S`` as bool, ``V'``.
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
    has_current = flags[5]
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
        if count > 0 and flags[6]:
            for o in range(outputs):
                drive[b, o] *= amplitude
        if flags[4]:
            for o in range(outputs):
                drive[b, o] = drive[b, o] + bias[o]
        if has_current:
            for o in range(outputs):
                drive[b, o] = drive[b, o] + current[b, o]
    if not _all_finite(drive):
        return INPUTS_NOT_FINITE
    # the charge H into voltage_out, one loop per form (loops without branches: vectorised)
    tau, v_reset, threshold = constants[TAU], constants[V_RESET], constants[V_THRESHOLD]
    if not flags[0]:  # IF
        for b in range(batch):
            for o in range(outputs):
                voltage_out[b, o] = voltage[b, o] + drive[b, o]
    elif flags[1] and flags[2]:  # LIF, decay_input, V_reset = +0
        for b in range(batch):
            for o in range(outputs):
                voltage_out[b, o] = voltage[b, o] + (drive[b, o] - voltage[b, o]) / tau
    elif flags[1]:  # LIF, decay_input
        for b in range(batch):
            for o in range(outputs):
                voltage_out[b, o] = voltage[b, o] + (drive[b, o] - (voltage[b, o] - v_reset)) / tau
    elif flags[2]:  # LIF, V_reset = +0
        for b in range(batch):
            for o in range(outputs):
                voltage_out[b, o] = (voltage[b, o] - voltage[b, o] / tau) + drive[b, o]
    else:  # LIF
        for b in range(batch):
            for o in range(outputs):
                voltage_out[b, o] = (voltage[b, o] - (voltage[b, o] - v_reset) / tau) + drive[b, o]
    # fire, then reset H in place
    one, zero = spike_out.dtype.type(1), spike_out.dtype.type(0)
    for b in range(batch):
        for o in range(outputs):
            h = voltage_out[b, o]
            fired = h >= threshold
            fired_out[b, o] = fired
            spike_out[b, o] = one if fired else zero
    if flags[3]:  # hard reset
        for b in range(batch):
            for o in range(outputs):
                voltage_out[b, o] = v_reset if fired_out[b, o] else voltage_out[b, o]
    else:  # soft reset: H - S * V_th
        for b in range(batch):
            for o in range(outputs):
                voltage_out[b, o] = voltage_out[b, o] - spike_out[b, o] * threshold
    if slot_pre >= 0:
        ring_pre[slot_pre] = spikes
    if slot_post >= 0:
        ring_post[slot_post] = fired_out
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

    Compiled once per process and argument types (cached on disk by numba
    where the package directory is writable).
    """
    try:
        import numba
    except ImportError:
        return None
    # numba resolves a function's globals when it compiles it: the step is compiled as a copy whose
    # globals hold the compiled helper (the module's own functions stay plain Python)
    step_globals = {**linear_neuron_step.__globals__, "_all_finite": numba.njit(cache=True)(_all_finite)}
    step = types.FunctionType(linear_neuron_step.__code__, step_globals, linear_neuron_step.__name__)
    compiled: Callable[..., int] = numba.njit(cache=True)(step)
    return compiled
