"""The window recorders that a fused cell step writes itself (:mod:`plastic.neural.fused_step`).

A trainer's monitors of ``connection.synspike`` and ``neuron.spike`` record
each step into the ring of a :class:`~plastic.observe.reducers.WindowReducer`.
Where the recorder's call would copy the step straight into that ring, the
fused step's native call writes it there instead; :func:`window_ring` says
where, at every step, reading anew what can change between steps (the
monitor, its gate, its reducer, the reducer's shape, hooks and ring) and
keeping the ring's storage as an array while its tensor and memory stay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from plastic.neural.observable import own_call_hooks
from plastic.observe.reducers import WindowReducer

if TYPE_CHECKING:
    from plastic.observe.monitors import AttributeRecorder

__all__ = ["KeptRing", "window_ring"]


def window_ring(
    recorder: AttributeRecorder, training: bool, shape: torch.Size
) -> tuple[dict[str, Any], KeptRing] | None:
    """The attributes and :class:`KeptRing` of the reducer that ``recorder`` would record into now after a
    call of a module whose ``training`` is ``training``, where the recorder's call with a plain bool CPU
    tensor of ``shape`` that records no graph would copy it straight into its ring
    (:meth:`WindowReducer.record_step <plastic.observe.reducers.WindowReducer.record_step>`: a plain window
    reducer without hooks, recording that shape, on a bool CPU storage) and that storage can be written
    through an array (contiguous, ``[steps, *shape]``); None otherwise (call the recorder).

    Torch's global hooks are not read: the fused step checked them for this step.
    """
    # what AttributeRecorder.__call__ reads first: the monitor, its gate for the call, its reducer
    monitor = recorder.monitor()
    if monitor is None:
        return None
    monitor_state = monitor.__dict__
    gate = monitor_state["train_only"]
    if not monitor_state["enabled"] or (gate is not None and training != (gate == "train")):
        return None
    reducer = monitor_state["_modules"]["reducer"]
    if type(reducer) is not WindowReducer:
        return None
    state = reducer.__dict__
    # WindowReducer.fits_step for such a value: its dtype, device and grad are known, its shape is given
    if not state["_shape_fixed"] or state["_shape"] != shape or own_call_hooks(state):
        return None
    history = state["_modules"]["history"]
    data: Tensor = history._buffers["data"]  # registered by RingBuffer
    kept: KeptRing | None = state.get("_fused_ring")
    if kept is None or kept.data is not data or kept.history is not history or kept.pointer != data.data_ptr():
        kept = state["_fused_ring"] = KeptRing(history, data)
    return None if kept.array is None else (state, kept)


class KeptRing:
    """A window recorder's ring as the fused step writes it, kept in its reducer's attributes (made again
    by :func:`window_ring` when the reducer holds another ring, the ring another storage tensor or that
    tensor another memory).

    ``array``: the storage ``[steps, *shape]`` as a C-contiguous, aligned and writeable bool array, or
    None where it is not one (a storage of another dtype, device or layout: the recorder is called).
    Copies and pickles of the reducer get an empty one (the array would not be the copy's memory).
    """

    __slots__ = ("array", "data", "history", "history_state", "pointer")

    def __init__(self, history: Any = None, data: Tensor | None = None) -> None:
        self.history = history  # the reducer's RingBuffer (not the reducer: no reference cycle)
        self.history_state: dict[str, Any] = {} if history is None else history.__dict__
        self.data = data
        self.pointer = -1 if data is None else data.data_ptr()
        self.array: Any = None
        # checked once per storage tensor and memory: a ring's storage is rebound, never changed in place
        # (RingBuffer keeps its slot views while the tensor stays, too)
        if data is not None and data.dtype == torch.bool and data.is_cpu and data.is_contiguous():
            array = data.detach().numpy()
            if array.flags.carray and array.ndim == 3:  # C-contiguous, aligned and writeable
                self.array = array

    def __deepcopy__(self, memo: dict[int, Any]) -> KeptRing:
        return KeptRing()

    def __reduce__(self) -> tuple[type[KeptRing], tuple[()]]:
        return (KeptRing, ())
