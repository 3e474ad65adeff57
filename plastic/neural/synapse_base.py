"""The synapse base class: checked steps and windows, bounded histories, delayed reads, deferred steps.

:class:`Synapse` is what every synapse kind of :mod:`plastic.neural.synapses`
shares. It receives the presynaptic spikes of a group of inputs,
``[B, *shape]`` per step (``step_mode="single"``) or ``[T, B, *shape]`` per
window (``step_mode="window"``), has a subclass turn them into a current
(``_integrate``) and keeps the most recent spikes and currents in two
preallocated ring buffers (:class:`~plastic.neural.history.RingBuffer`) so
that connections with per-synapse delays can read them back ``d`` time units
later.

Delays. ``max_delay`` (time units, like ``dt``) sets the history capacity to
``ceil(max_delay/dt) + 1`` samples (1 without delays). ``spike_at(delay)`` and
``current_at(delay)`` read the history at continuous lags ``delay/dt`` steps
back from the newest step (:meth:`RingBuffer.read`): ``interpolation`` is
``"previous"`` (the sample at or before ``t - delay``: a spike emitted at step
``s`` with a delay of 2.5 steps arrives at step ``s + 3``), ``"nearest"``
(halves go to the earlier sample) or, for currents, ``"linear"`` (and
``"exp_decay"`` for the exponential current, exact between steps). Lags
within ``tolerance`` steps of an integer are read at that integer (at least
the rounding error of the delay's dtype: a float32 delay of 0.3 ms at
``dt = 0.1`` reads lag 3). Spikes are
only ever read with ``previous`` or ``nearest``: with ``interpolation="linear"``
or ``"exp_decay"`` spike reads use ``previous``. Nothing arrives from before the
first step (reads beyond the history give 0).

A ``delay`` tensor broadcasts with ``shape`` aligned on the right and may add
leading dimensions: a ``[B, N_in]`` history read at ``[N_out, N_in]`` delays
gives ``[B, N_out, N_in]`` (batch first).

Storage never grows: each step writes one slot of each ring buffer.

Deferred currents. A :class:`~plastic.neural.synapses.DeltaCurrent` without delays (a history of one
step) is memoryless: its current is ``A * S_t`` and its histories hold only
that step. Its :meth:`~Synapse.pass_through` takes one step of bool spikes
without computing them: the spikes are kept, and ``state``, ``current`` and
the two histories are written from them when first read (attribute access,
``state_dict``, ``.to()``, a delayed read). A connection that computes its
output from the spikes themselves (the gather forward of an input-major
weight) then never pays for a current nobody reads. What is read is what the
plain forward would have written, bit for bit.

Gradients: float spikes that carry a (surrogate) gradient pass it to the
current returned by ``forward``; the recurrent state keeps its graph across
calls until :meth:`Synapse.reset` or :meth:`Synapse.detach`. Histories hold
detached copies, so delayed reads carry no gradient to the spikes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, cast

import torch
from torch import Tensor, nn
from torch.nn.modules import module as _module_implementation

from plastic.functional.traces import (
    spike_values,
)
from plastic.functional.validation import (
    check_choice,
    check_count,
    check_in_range,
    check_non_negative,
    check_positive,
    check_spikes,
    check_tensor,
)
from plastic.neural.buffers import rebind_buffer
from plastic.neural.history import RingBuffer
from plastic.neural.step_mode import STEP_MODES, StepModeMixin

__all__ = ["SPIKE_INTERPOLATIONS", "STEP_MODES", "Synapse", "check_batch_size", "history_capacity"]

SPIKE_INTERPOLATIONS = ("previous", "nearest")


def _shape(value: int | Sequence[int], name: str = "shape") -> tuple[int, ...]:
    if isinstance(value, bool):  # an int to Python, not a size
        raise TypeError(f"{name}: expected an int or a sequence of ints, got {value!r}")
    if isinstance(value, int):
        value = (value,)
    try:
        result = tuple(value)
    except TypeError:
        raise TypeError(f"{name}: expected an int or a sequence of ints, got {value!r}") from None
    if not result or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in result):
        raise ValueError(f"{name}: expected one or more ints >= 1, got {value!r}")
    return result


def check_batch_size(value: object) -> int:
    """A batch size: an int >= 1."""
    return check_count(value, "batch_size")


def check_tolerance(value: object) -> float:
    """A delayed read's snapping tolerance, in steps: a float in ``[0, 0.5)`` (half a step would snap
    a lag halfway between two steps to either)."""
    return check_in_range(value, "tolerance", 0.0, 0.5, inclusive=(True, False))


def history_capacity(max_delay: float, dt: float) -> int:
    """Samples needed to read lags up to ``max_delay/dt``: ``ceil(max_delay/dt) + 1``.

    Computed in float64 exactly as the largest lag is (``0.3/0.1 =
    3.0000000000000004`` gives 5 slots), so that no read falls off the end
    whatever the tolerance.
    """
    if max_delay <= 0:
        return 1
    return math.ceil(max_delay / dt) + 1


class Synapse(StepModeMixin, nn.Module):
    """Base class: validation, histories, delayed reads, step modes (``step_mode``: :class:`StepModeMixin`).

    Subclasses implement :meth:`_integrate` (the current recurrence).

    Args:
        shape: shape of the presynaptic group, without the batch.
        dt: step length in time units (ms by convention), ``> 0``.
        max_delay: longest delay that will be read, in time units (``>= 0``).
        interpolation: how reads between steps are made (see the module
            docstring); one of :attr:`INTERPOLATIONS`.
        tolerance: lags within this many steps of an integer read that
            integer exactly (``[0, 0.5)``).
        batch_size: samples per step (``>= 1``).
        step_mode: ``"single"`` (``[B, *shape]`` per call) or ``"window"``
            (``[T, B, *shape]``).
        device, dtype: where the state lives and its floating dtype.

    Buffers: ``state`` (``I_{t-1}``, ``[B, *shape]``); the ring buffers
    ``spike_history`` (bool) and ``current_history``; ``spike`` and
    ``current`` (the last forward's input spikes, bool, and output currents,
    window-shaped in window mode; not saved in the state dict).
    """

    INTERPOLATIONS: ClassVar[tuple[str, ...]] = ("previous", "nearest", "linear")

    state: Tensor
    spike: Tensor
    current: Tensor

    def __init__(
        self,
        shape: int | Sequence[int],
        *,
        dt: float = 1.0,
        max_delay: float = 0.0,
        interpolation: str = "previous",
        tolerance: float = 1e-7,
        batch_size: int = 1,
        step_mode: str = "single",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.shape = _shape(shape)
        self.dt = check_positive(dt, "dt")
        self.max_delay = check_non_negative(max_delay, "max_delay")
        self.interpolation = str(check_choice(interpolation, "interpolation", self.INTERPOLATIONS))
        self.tolerance = check_tolerance(tolerance)
        self.step_mode = step_mode
        self._batch_size = check_batch_size(batch_size)
        dtype = torch.get_default_dtype() if dtype is None else dtype
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype: expected a floating-point torch.dtype, got {dtype!r}")
        self.capacity = history_capacity(self.max_delay, self.dt)
        sample = (self._batch_size, *self.shape)
        self.spike_history = RingBuffer(self.capacity, sample, torch.bool, device)
        self.current_history = RingBuffer(self.capacity, sample, dtype, device)
        self.register_buffer("state", torch.zeros(sample, dtype=dtype, device=device))
        self.register_buffer("spike", torch.zeros(sample, dtype=torch.bool, device=device), persistent=False)
        self.register_buffer("current", torch.zeros(sample, dtype=dtype, device=device), persistent=False)
        # True while the last step's state, current and histories are still to be written from its
        # spikes (pass_through); a plain attribute, read at every step
        self._deferred = False

    # ------------------------------------------------------------------ deferred steps

    #: what a deferred step has not written yet (read through __getattr__, which settles first)
    deferred_attributes: ClassVar[frozenset[str]] = frozenset({"state", "current", "spike_history", "current_history"})

    def pass_through(self, spikes: Tensor) -> Tensor | None:
        """One single step of bool spikes whose currents are written only when read; ``None`` if not possible.

        Memoryless synapses without delays (:class:`DeltaCurrent` with a
        one-step history) keep the spikes as the step's record and return
        them (checked: bool, ``[B, *shape]``, on the state's device); the
        caller computes its output from them. Everything else (other kinds,
        delays, window mode, float spikes) returns ``None``: call
        :meth:`forward` then. See the module notes ("Deferred currents").
        """
        return None

    def _defer(self, spikes: Tensor) -> None:
        """Keep the checked bool ``spikes`` as this single step's record, its state, current and histories
        written when first read (:meth:`_settle`): :meth:`pass_through`'s step, or a fused cell step's."""
        if type(spikes) is Tensor and not _module_implementation._global_buffer_registration_hooks:
            self._buffers["spike"] = spikes  # what rebind_buffer does for this registered buffer, without its call
        else:
            rebind_buffer(self, "spike", spikes)
        self.__dict__["_deferred"] = True

    def _settle(self) -> None:
        """Write the state, current and histories of a deferred step (nothing if none is pending)."""
        state = self.__dict__
        if not state.get("_deferred"):
            return
        state["_deferred"] = False
        fired = cast(Tensor, self._buffers["spike"])
        values = spike_values(fired, cast(Tensor, self._buffers["state"]).dtype)
        currents = self._deferred_currents(values)
        rebind_buffer(self, "state", currents)
        rebind_buffer(self, "current", currents)
        histories = self._modules
        spike_history = cast(RingBuffer, histories["spike_history"])
        current_history = cast(RingBuffer, histories["current_history"])
        spike_history._push_checked(cast(Tensor, spike_history._buffers["data"]), fired)
        current_history._push_checked(cast(Tensor, current_history._buffers["data"]), currents)

    def _deferred_currents(self, values: Tensor) -> Tensor:
        """The currents of a deferred step from its spikes as values (owned, no graph)."""
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        # a deferred step is written before anything reads what it did not write
        if name in Synapse.deferred_attributes and self.__dict__.get("_deferred"):
            self._settle()
        return super().__getattr__(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in Synapse.deferred_attributes and self.__dict__.get("_deferred"):
            self._settle()  # a pending step must not overwrite what is set now
        super().__setattr__(name, value)

    def _save_to_state_dict(self, destination: dict[str, Any], prefix: str, keep_vars: bool) -> None:
        self._settle()  # before the histories (children) are saved
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_deferred"] = False  # the loaded state replaces a pending step
        super()._load_from_state_dict(*args, **kwargs)

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> Synapse:
        self._settle()  # in the dtype the step ran in, then converted with everything else
        # nn.Module._apply has no annotations in torch (what .to(), .double(), ... call)
        return cast(Synapse, super()._apply(fn, recurse))  # type: ignore[no-untyped-call]

    # ------------------------------------------------------------------ configuration

    @property
    def batch_size(self) -> int:
        """Samples per step. Setting it reallocates and resets all state."""
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self._batch_size = check_batch_size(value)
        sample = (self._batch_size, *self.shape)
        self.spike_history.reshape_storage(sample)
        self.current_history.reshape_storage(sample)
        self.state = self.state.new_zeros(sample)
        self.reset()

    @property
    def spike_interpolation(self) -> str:
        """The interpolation used for spike reads (``previous`` unless ``nearest``)."""
        return self.interpolation if self.interpolation in SPIKE_INTERPOLATIONS else "previous"

    # ------------------------------------------------------------------ state

    def reset(self) -> None:
        """Forget every spike and current (histories cleared, state zero)."""
        sample = (self._batch_size, *self.shape)
        self.__dict__["_deferred"] = False  # nothing pending survives a reset
        self.spike_history.clear()
        self.current_history.clear()
        # a fresh tensor: the old state may hold an autograd graph
        dtype, device = self.state.dtype, self.state.device
        rebind_buffer(self, "state", torch.zeros(sample, dtype=dtype, device=device))
        rebind_buffer(self, "spike", torch.zeros(sample, dtype=torch.bool, device=device))
        rebind_buffer(self, "current", torch.zeros(sample, dtype=dtype, device=device))

    def detach(self) -> None:
        """Cut the autograd history of the state (truncated backpropagation through time)."""
        self.state = self.state.detach()
        self.current = self.current.detach()

    # ------------------------------------------------------------------ validation

    def check_spikes(self, spikes: object, name: str = "spikes") -> Tensor:
        """Validate an input for the current step mode; returns bool spikes.

        Steps ``[B, *shape]`` (``B == batch_size``) or windows
        ``[T, B, *shape]`` with ``T >= 1``, on the state's device.
        """
        expected: tuple[int, ...] = (self._batch_size, *self.shape)
        if (
            self._step_mode == "single"
            and type(spikes) is Tensor
            and spikes.dtype == torch.bool
            and spikes.shape == expected
            and spikes.device == cast(Tensor, self._buffers["state"]).device  # registered in __init__
        ):
            return spikes  # bool steps (the spikes of other modules): the checks below, without the general path
        if self._step_mode == "window":
            expected = (-1, *expected)
        fired = check_spikes(spikes, name, shape=expected, device=self.state.device)
        if self._step_mode == "window" and fired.shape[0] == 0:
            raise ValueError(f"{name}: expected a window of at least one step, got shape {tuple(fired.shape)}")
        return fired

    def check_delay(self, delay: object, name: str = "delay") -> Tensor:
        """Validate delays (time units): finite, in ``[0, max_delay]``, broadcasting with ``shape``."""
        tensor = check_tensor(delay, name, floating=True, finite=True, device=self.state.device)
        trailing = tensor.shape[max(tensor.ndim - len(self.shape), 0) :]
        try:
            torch.broadcast_shapes(trailing, self.shape)
        except RuntimeError:
            raise ValueError(
                f"{name}: shape {tuple(tensor.shape)} does not broadcast with the synapse shape {self.shape}"
            ) from None
        if tensor.numel():
            slack = self.tolerance * self.dt
            if bool((tensor < -slack).any()) or bool((tensor > self.max_delay + slack).any()):
                raise ValueError(
                    f"{name}: expected values in [0, max_delay={self.max_delay}], "
                    f"got [{float(tensor.min())}, {float(tensor.max())}]"
                )
        return tensor

    def _check_interpolation(self, interpolation: str | None, *, spikes: bool) -> str:
        if interpolation is None:
            return self.spike_interpolation if spikes else self.interpolation
        allowed = SPIKE_INTERPOLATIONS if spikes else self.INTERPOLATIONS
        return str(check_choice(interpolation, "interpolation", allowed))

    # ------------------------------------------------------------------ dynamics

    def _integrate(self, values: Tensor, owned: bool = False) -> Tensor:
        """Currents for ``values`` (float spikes, one step or a window); updates ``state``.

        ``owned``: ``values`` is a fresh tensor of this call (converted from
        bool spikes, no autograd graph) that the synapse may write into or keep.
        """
        raise NotImplementedError

    def _interpolation_tau(self) -> float | None:
        """Time constant for ``exp_decay`` reads (None: not supported)."""
        return None

    def _advance(self, spikes: Tensor, fired: Tensor) -> Tensor:
        # floats keep their autograd graph (surrogate gradients); bool becomes the state dtype
        dtype = cast(Tensor, self._buffers["state"]).dtype  # without nn.Module.__getattr__ (every step)
        if spikes.is_floating_point():
            values, owned = spikes.to(dtype), False
        else:
            values, owned = spike_values(fired, dtype), True
        currents = self._integrate(values, owned)
        rebind_buffer(self, "spike", fired)
        rebind_buffer(self, "current", currents)
        return currents

    def _push(self, fired: Tensor, currents: Tensor) -> None:
        histories = self._modules  # the two ring buffers, without nn.Module.__getattr__
        spike_history = cast(RingBuffer, histories["spike_history"])
        current_history = cast(RingBuffer, histories["current_history"])
        if self._step_mode == "single":
            # a checked step of the sample's shape (check_spikes) and its currents: straight into the slots
            spike_history._push_checked(spike_history._buffers["data"], fired)  # type: ignore[arg-type]
            current_history._push_checked(current_history._buffers["data"], currents.detach())  # type: ignore[arg-type]
        else:
            spike_history.push_window(fired)
            current_history.push_window(currents.detach())

    def forward(self, spikes: Tensor) -> Tensor:
        """Advance by one step or window; returns the currents ``[(T,) B, *shape]``."""
        fired = self.check_spikes(spikes)
        self._settle()  # a pending step first (its history is the past of this one)
        currents = self._advance(spikes, fired)
        self._push(fired, currents)
        return currents

    def forward_delayed(self, spikes: Tensor, delay: Tensor, *, check_delay: bool = True) -> tuple[Tensor, Tensor]:
        """Advance like :meth:`forward`, then read spikes and currents at ``delay``.

        Returns ``(spikes, currents)`` as they arrive after ``delay`` time
        units, for every step: ``[B, *batch_free]`` in single mode,
        ``[T, B, *batch_free]`` in window mode, where ``batch_free`` is the
        broadcast of ``shape`` and ``delay.shape`` (e.g. ``[N_out, N_in]``).
        Spikes use :attr:`spike_interpolation`, currents ``interpolation``.
        ``check_delay=False`` skips the value checks of ``delay`` (callers
        that already keep it finite and within ``[0, max_delay]``, such as
        connections, save a device synchronisation per step).
        """
        fired = self.check_spikes(spikes)
        if check_delay:
            delay = self.check_delay(delay)
        self._settle()
        currents = self._advance(spikes, fired)
        if self._step_mode == "single":
            self._push(fired, currents)
            return (
                self._read_spikes(delay, self.spike_interpolation, self.tolerance),
                self._read_currents(delay, self.interpolation, self.tolerance),
            )
        lags, leading, tolerance = self._lags(delay, self.tolerance)
        spike_reads = self.spike_history.read_window(fired, lags, self.spike_interpolation, tolerance)
        current_reads = self.current_history.read_window(
            currents.detach(),
            lags,
            self.interpolation,
            tolerance,
            dt=self.dt,
            tau=self._interpolation_tau(),
        )
        return self._batch_first(spike_reads, leading, 1), self._batch_first(current_reads, leading, 1)

    # ------------------------------------------------------------------ delayed reads

    def _lags(self, delay: Tensor, tolerance: float) -> tuple[Tensor, int, float]:
        """Lags in steps laid out for the history ``[B, *shape]`` (leading dims added),
        and the tolerance to read them with.

        A float32 delay carries a rounding error of up to ``eps * d/dt`` steps
        (``0.3`` is stored as ``0.30000001``), so the tolerance is at least
        twice that: a delay meant as an integer number of steps reads that step.
        """
        max_lag = self.max_delay / self.dt
        # within the validated slack of [0, max_delay]; the top stays below capacity
        lags = (delay.to(torch.float64) / self.dt).clamp(0.0, max_lag)
        rounding = 2.0 * torch.finfo(delay.dtype).eps * max_lag
        leading = max(delay.ndim - len(self.shape), 0)
        if leading:
            # [*lead, *shape] -> [*lead, 1, *shape]: the 1 meets the history's batch
            lags = lags.reshape(*delay.shape[:leading], 1, *delay.shape[leading:])
        return lags, leading, min(max(tolerance, rounding), 0.49)

    @staticmethod
    def _batch_first(values: Tensor, leading: int, offset: int = 0) -> Tensor:
        # [(T,) *lead, B, ...] -> [(T,) B, *lead, ...]
        return values.movedim(offset + leading, offset) if leading else values

    def spike_at(self, delay: Tensor, interpolation: str | None = None, tolerance: float | None = None) -> Tensor:
        """Spikes (bool) that arrive now after ``delay`` time units, ``[B, *broadcast]``.

        Reads the spike history at lags ``delay/dt`` steps back from the last
        step pushed; ``interpolation`` is ``previous`` or ``nearest``.
        """
        method = self._check_interpolation(interpolation, spikes=True)
        tolerance = self.tolerance if tolerance is None else check_tolerance(tolerance)
        return self._read_spikes(self.check_delay(delay), method, tolerance)

    def current_at(self, delay: Tensor, interpolation: str | None = None, tolerance: float | None = None) -> Tensor:
        """Currents ``delay`` time units before the last step, ``[B, *broadcast]``."""
        method = self._check_interpolation(interpolation, spikes=False)
        tolerance = self.tolerance if tolerance is None else check_tolerance(tolerance)
        return self._read_currents(self.check_delay(delay), method, tolerance)

    def _read_spikes(self, delay: Tensor, method: str, tolerance: float) -> Tensor:
        lags, leading, tolerance = self._lags(delay, tolerance)
        return self._batch_first(self.spike_history.read(lags, method, tolerance), leading)

    def _read_currents(self, delay: Tensor, method: str, tolerance: float) -> Tensor:
        lags, leading, tolerance = self._lags(delay, tolerance)
        values = self.current_history.read(lags, method, tolerance, dt=self.dt, tau=self._interpolation_tau())
        return self._batch_first(values, leading)

    def extra_repr(self) -> str:
        return (
            f"shape={self.shape}, dt={self.dt}, max_delay={self.max_delay}, "
            f"interpolation={self.interpolation!r}, batch_size={self._batch_size}, "
            f"step_mode={self._step_mode!r}"
        )
