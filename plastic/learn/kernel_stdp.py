"""Kernel STDP in event-time form, with and without synaptic delays.

Monitors keep, per neuron, the time elapsed since its most recent spike
(``e``, NaN before any spike). When the trainer is called, normally once after
a batch, every synapse (and, for convolutions, every receptive position) gets

    delta = e_pre - e_post             (= t_post_spike - t_pre_spike)
    delta = e_pre - e_post - d         (delay-adjusted rules, delay d)

and two spike-time kernels give the update:

    v = K_post(delta, **kernel_post_kwargs) + K_pre(delta, **kernel_pre_kwargs)
    potentiation = sum_positions max(v, 0),  depression = sum_positions max(-v, 0)

(positive and negative parts are taken per kernel; NaN adds nothing), reduced
over the batch (``batch_reduction``, mean by default) and written into the
cell's updater. The default kernels are ``K_post = eta_post exp(-|delta| /
tau_post) [delta >= 0]`` and ``K_pre = eta_pre exp(-|delta| / tau_pre)
[delta < 0]``: Hebbian with ``eta_post > 0`` and ``eta_pre < 0``.

A presynaptic neuron that has not fired since the monitors were last cleared
adds nothing by default (``unfired_pre="ignore"``: its time is NaN). With
``unfired_pre="late"`` it counts as firing after every postsynaptic spike:
``e_pre = -inf``, so ``delta = -inf`` and the pair takes ``K_pre(-inf)``
(the first-spike STDP of Masquelier & Thorpe 2007 and Kheradpisheh et al.
2018, where an input silent during a presentation is depressed; with the
decaying default kernels ``K_pre(-inf) = 0`` and nothing changes).

* :class:`KernelSTDP`: any kernels; ``delayed=True`` reads presynaptic event
  times at the synapses' current (learned) delays from the presynaptic
  history, within ``interp_tolerance``.
* :class:`DelayAdjustedKernelSTDP`: ``delta`` minus the learned delay, writes
  the weight. :class:`DelayAdjustedKernelSTDPD`: the same ``delta``, writes
  the delay (kept within ``[0, max_delay]`` by the updater's clamp).
* :class:`DelayAdjustedSTDP`, :class:`DelayAdjustedSTDPD`: the exponential
  kernels built in; the signs of ``lr_post`` and ``lr_pre`` choose the
  behaviour: Hebbian (+, -), anti-Hebbian (-, +), potentiation only (+, +),
  depression only (-, -).

References: Bi & Poo (1998), J. Neurosci. 18(24); Song, Miller & Abbott (2000),
Nat. Neurosci. 3(9); delay learning after Hazan et al. (2022) and the
"STDP of delays" of Nadafian & Ganjtabesh (2020).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import attrs
from torch import Tensor

from plastic.functional.attrs_validators import (
    callable_of,
    finite_values,
    keyword_dict,
    keyword_mapping,
    non_negative,
    one_of,
    positive_values,
)
from plastic.functional.kernel_stdp import KernelSplit, exponential_split, kernel_pair_sums, kernel_split
from plastic.functional.kernels import exp_post, exp_pre
from plastic.functional.receptive import grouped_to_weight, weight_to_grouped
from plastic.learn.base import CellState, IndependentCellTrainer, Unit, check_batch_reduction, reduce_batch
from plastic.neural.cell import Cell
from plastic.neural.connections import Connection
from plastic.observe.monitors import Monitor
from plastic.observe.reducers import EventTimeReducer

__all__ = [
    "DelayAdjustedKernelSTDP",
    "DelayAdjustedKernelSTDPD",
    "DelayAdjustedSTDP",
    "DelayAdjustedSTDPD",
    "KernelSTDP",
]


#: a spike-time kernel ``kernel(delta, **kwargs)``
_kernel = callable_of("a kernel callable(delta, **kwargs)")
#: how a delayed presynaptic time is read between steps
_interpolation = one_of("previous", "nearest")
#: what a presynaptic neuron without a spike since the last clear contributes
_unfired_pre = one_of("ignore", "late")
#: the pre monitor's event time before any spike, for each ``unfired_pre``
_UNFIRED_PRE_INITIAL = {"ignore": "nan", "late": "-inf"}


@attrs.frozen
class KernelSTDPParams:
    """Hyperparameters of :class:`KernelSTDP` (times in the unit of ``dt``).

    ``kernel_post``/``kernel_pre``: callables ``kernel(delta, **kwargs)``;
    their keyword arguments in ``kernel_post_kwargs``/``kernel_pre_kwargs``
    (tensors become buffers of the cell's state; a tensor with the weight's
    shape is a per-synapse value). ``batch_reduction``: ``mean``, ``sum``,
    ``amax``, ``amin``, ``median`` or a callable reducing dimension 0.
    ``delayed``: read presynaptic times at the connection's current delays.
    ``interp_tolerance``: delays within this of an integer number of steps
    read that step exactly. ``interpolation``: ``previous`` or ``nearest``.
    ``unfired_pre``: ``"ignore"`` (a presynaptic neuron without a spike since
    the last clear adds nothing) or ``"late"`` (it counts as firing after
    every postsynaptic spike, ``delta = -inf``; see the module docs).
    """

    kernel_post: Callable[..., Tensor] = attrs.field(default=exp_post, validator=_kernel)
    kernel_pre: Callable[..., Tensor] = attrs.field(default=exp_pre, validator=_kernel)
    kernel_post_kwargs: Mapping[str, Any] = attrs.field(factory=dict, converter=keyword_dict, validator=keyword_mapping)
    kernel_pre_kwargs: Mapping[str, Any] = attrs.field(factory=dict, converter=keyword_dict, validator=keyword_mapping)
    batch_reduction: str | Callable[[Tensor], Tensor] = attrs.field(default="mean", validator=check_batch_reduction)
    delayed: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    interp_tolerance: float = attrs.field(default=1e-7, validator=non_negative)
    interpolation: str = attrs.field(default="previous", validator=_interpolation)
    unfired_pre: str = attrs.field(default="ignore", validator=_unfired_pre)


@attrs.frozen
class ExponentialSTDPParams:
    """Hyperparameters of the exponential-kernel rules (times in units of ``dt``).

    ``lr_post``: amplitude of the causal branch (post after pre, delta >= 0);
    ``lr_pre``: amplitude of the acausal branch (delta < 0); ``tau_post``,
    ``tau_pre``: their time constants. Signs choose the behaviour (see module
    docs). Tensors are allowed (per-synapse values with the weight's shape).
    """

    lr_post: float | Tensor = attrs.field(default=1.0, validator=finite_values)
    lr_pre: float | Tensor = attrs.field(default=-1.0, validator=finite_values)
    tau_post: float | Tensor = attrs.field(default=20.0, validator=positive_values)
    tau_pre: float | Tensor = attrs.field(default=20.0, validator=positive_values)
    batch_reduction: str | Callable[[Tensor], Tensor] = attrs.field(default="mean", validator=check_batch_reduction)
    interp_tolerance: float = attrs.field(default=1e-7, validator=non_negative)
    interpolation: str = attrs.field(default="previous", validator=_interpolation)

    @property
    def delayed(self) -> bool:
        return False

    @property
    def unfired_pre(self) -> str:
        return "ignore"


class KernelSTDP(IndependentCellTrainer):
    """Kernel STDP on the most recent pre and post spike times (see module docs).

    Example::

        trainer = KernelSTDP(kernel_post=my_kernel, kernel_post_kwargs={"width": 5.0})
        trainer.register_cell("hidden", cell, batch_reduction="sum")
        with torch.no_grad():  # plasticity only: no autograd graph
            ...                # run the network
            trainer()          # potentiation and depression into cell.updater
            trainer.update()   # apply, bounded
    """

    Params: ClassVar[type] = KernelSTDPParams
    requires = ("weight",)
    #: subtract the connection's delay from delta
    adjust_for_delay = False
    #: the connection parameter the update is written to
    target = "weight"

    # -- registration ------------------------------------------------------
    def uses_delays(self, params: Any) -> bool:
        return self.adjust_for_delay or bool(params.delayed)

    def check_cell(self, name: str, cell: Cell, params: Any) -> None:
        connection = cell.connection
        if self.uses_delays(params):
            if not isinstance(getattr(connection, "delay", None), Tensor):
                raise ValueError(
                    f"cell: {type(self).__name__} needs a connection with delays; "
                    f"{type(connection).__name__} {name!r} has none (construct it with delay=max_delay)"
                )
            if connection.weight.ndim > 2:
                raise ValueError(
                    f"cell: delay rules support dense and direct connections, not {type(connection).__name__}"
                )

    def init_state(self, state: CellState, cell: Cell) -> None:
        post_function, post_kwargs, pre_function, pre_kwargs = self.kernel_spec(state.params)
        state.register_kwargs("kernel_post", self._layout_kwargs(post_kwargs, cell))
        state.register_kwargs("kernel_pre", self._layout_kwargs(pre_kwargs, cell))
        state.kernel_post_function = post_function
        state.kernel_pre_function = pre_function

    @staticmethod
    def _layout_kwargs(kwargs: Mapping[str, Any], cell: Cell) -> dict[str, Any]:
        """Per-synapse tensors (the weight's shape) to the ``[G, O, K, 1]`` layout."""
        weight_shape = tuple(cell.connection.weight.shape)
        result = {}
        for key, value in kwargs.items():
            if isinstance(value, Tensor) and value.ndim > 0 and tuple(value.shape) == weight_shape:
                value = weight_to_grouped(value, cell.connection.groups).unsqueeze(-1)
            result[key] = value
        return result

    def kernel_spec(
        self, params: Any
    ) -> tuple[Callable[..., Tensor], dict[str, Any], Callable[..., Tensor], dict[str, Any]]:
        return params.kernel_post, dict(params.kernel_post_kwargs), params.kernel_pre, dict(params.kernel_pre_kwargs)

    def make_monitors(self, cell: Cell, params: Any) -> dict[str, Monitor]:
        dt = cell.dt
        # event times in the weight's floating dtype: they meet the delays (and
        # a float64 network keeps float64 times)
        dtype = cell.connection.weight.dtype if cell.connection.weight.is_floating_point() else None

        def event_times(duration: float = 0.0, initial: str = "nan") -> EventTimeReducer:
            reducer = EventTimeReducer(dt, initial=initial, duration=duration)
            return reducer if dtype is None else reducer.to(dtype)

        pre_initial = _UNFIRED_PRE_INITIAL[params.unfired_pre]
        # only training-mode steps are recorded: an evaluating cell leaves no trace
        post = self.pool.get_or_create(cell, "neuron.spike", event_times, hook="post", train_only="train")
        if self.uses_delays(params):
            # emission times of presynaptic spikes, with a history long enough
            # to read them back at any delay up to max_delay
            max_delay = float(cell.connection.max_delay)
            pre = self.pool.get_or_create(
                cell,
                "connection.synapse.spike",
                lambda: event_times(max_delay, pre_initial),
                hook="post",
                train_only="train",
            )
        else:
            pre = self.pool.get_or_create(
                cell, "connection.synspike", lambda: event_times(initial=pre_initial), hook="post", train_only="train"
            )
        return {"post": post, "pre": pre}

    # -- learning ----------------------------------------------------------
    def presynaptic_times(self, unit: Unit) -> Tensor:
        """Presynaptic event times in the receptive layout ``[B, G, O|1, K, P]``."""
        connection = unit.cell.connection
        reducer = unit.monitors["pre"].reducer
        params = unit.state.params
        if params.delayed:
            # time since the spike arrived at each synapse, at the current delays
            delay = _delay(connection)
            times = reducer.view(delay, tolerance=params.interp_tolerance)  # [B, *weight.shape]
            if delay.ndim == 1:  # one-to-one: per-synapse times have the input's shape
                return connection.pre_view(times, fill=math.nan).unsqueeze(2)
            return connection.pre_view(times, fill=math.nan)
        times = reducer.peek()
        view = connection.pre_view(times, fill=math.nan)
        return view if view.ndim == 5 else view.unsqueeze(2)

    def deltas(self, unit: Unit) -> Tensor:
        """``t_post - t_pre`` (minus the delay where adjusted), ``[B, G, O, K, P]``."""
        connection = unit.cell.connection
        post_times = connection.post_view(unit.monitors["post"].reducer.peek()).unsqueeze(3)
        delta = self.presynaptic_times(unit) - post_times
        if self.adjust_for_delay:
            # in place: ``delta`` is a fresh tensor of the full [B, G, O, K, P] shape
            delta.sub_(self._grouped_delay(unit).unsqueeze(-1))
        return delta

    @staticmethod
    def _grouped_delay(unit: Unit) -> Tensor:
        connection = unit.cell.connection
        return weight_to_grouped(_delay(connection), connection.groups)

    def kernel_split(self, state: CellState) -> KernelSplit:
        """``delta -> (potentiation, depression)`` of the cell's kernels.

        The built-in exponential kernels with number-valued parameters take
        :func:`~plastic.functional.kernel_stdp.exponential_split` (one
        exponential per element, in place); any other pair is evaluated as
        given (:func:`~plastic.functional.kernel_stdp.kernel_split`, which also
        raises the kernels' own argument errors).
        """
        post_kwargs, pre_kwargs = state.kwargs("kernel_post"), state.kwargs("kernel_pre")
        if _exponential_parameters(state, post_kwargs, pre_kwargs):
            parameters = {
                "eta_post": post_kwargs.get("eta_post", 1.0),
                "tau_post": post_kwargs.get("tau_post", 20.0),
                "eta_pre": pre_kwargs.get("eta_pre", -1.0),
                "tau_pre": pre_kwargs.get("tau_pre", 20.0),
            }
            return lambda delta: exponential_split(delta, **parameters)
        return kernel_split(state.kernel_post_function, state.kernel_pre_function, post_kwargs, pre_kwargs)

    def learn(self, unit: Unit) -> None:
        state = unit.state
        connection = unit.cell.connection
        split = self.kernel_split(state)
        reduction = state.params.batch_reduction
        if reduction in ("sum", "mean") and not _per_synapse_kwargs(state):
            # sums over samples and positions without a [B, G, O, K, P] tensor
            times_post = connection.post_view(unit.monitors["post"].reducer.peek())
            times_pre = self.presynaptic_times(unit)
            delay = self._grouped_delay(unit).to(times_pre.dtype) if self.adjust_for_delay else None
            potentiation, depression = kernel_pair_sums(times_pre, times_post.to(times_pre.dtype), split, delay=delay)
            if reduction == "mean":
                samples = times_post.shape[0]
                potentiation, depression = potentiation.div_(samples), depression.div_(samples)
        else:
            potentiation, depression = split(self.deltas(unit))
            # sum over receptive positions (dense: the one position as it is), then over the batch
            potentiation = potentiation.squeeze(-1) if potentiation.shape[-1] == 1 else potentiation.sum(-1)
            depression = depression.squeeze(-1) if depression.shape[-1] == 1 else depression.sum(-1)
            potentiation = reduce_batch(potentiation, reduction)
            depression = reduce_batch(depression, reduction)
        parameter = getattr(connection, self.target)
        unit.updater.accumulate(
            self.target,
            potentiation=grouped_to_weight(potentiation, parameter.shape).to(parameter.dtype),
            depression=grouped_to_weight(depression, parameter.shape).to(parameter.dtype),
        )


def _delay(connection: Connection) -> Tensor:
    # check_cell refused connections without delays for the rules that read them
    delay = connection.delay
    if delay is None:
        raise ValueError(f"cell: the rule reads delays; {type(connection).__name__} has none")
    return delay.detach()


def _plain_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _per_synapse_kwargs(state: CellState) -> bool:
    """Whether a kernel parameter has more than one value (e.g. one per synapse)."""
    return any(
        isinstance(value, Tensor) and value.numel() > 1
        for kwargs in (state.kwargs("kernel_post"), state.kwargs("kernel_pre"))
        for value in kwargs.values()
    )


def _exponential_parameters(state: CellState, post_kwargs: Mapping[str, Any], pre_kwargs: Mapping[str, Any]) -> bool:
    """Whether the kernels are the built-in exponentials with plain-number parameters."""
    if state.kernel_post_function is not exp_post or state.kernel_pre_function is not exp_pre:
        return False
    if not set(post_kwargs) <= {"eta_post", "tau_post"} or not set(pre_kwargs) <= {"eta_pre", "tau_pre"}:
        return False
    values = (*post_kwargs.values(), *pre_kwargs.values())
    if not all(_plain_number(value) for value in values):
        return False
    return bool(post_kwargs.get("tau_post", 20.0) > 0 and pre_kwargs.get("tau_pre", 20.0) > 0)


class DelayAdjustedKernelSTDP(KernelSTDP):
    """Kernel STDP on ``delta = t_post - t_pre - d``; writes the weight."""

    adjust_for_delay = True
    # the delay is read, not written: fixed (learn_delay=False) delays are fine
    requires = ("weight",)


class DelayAdjustedKernelSTDPD(KernelSTDP):
    """STDP of delays: the delay-adjusted ``delta`` written to the delay.

    Positive kernel values lengthen the delay, negative ones shorten it; the
    updater keeps delays within ``[0, max_delay]`` (``cell.make_updater``
    clamps the delay parameter there).
    """

    adjust_for_delay = True
    requires = ("delay",)
    target = "delay"


class _ExponentialKernels:
    """Mix-in: the exponential kernels built from ``lr_*`` and ``tau_*``."""

    Params: ClassVar[type] = ExponentialSTDPParams

    def kernel_spec(
        self, params: Any
    ) -> tuple[Callable[..., Tensor], dict[str, Any], Callable[..., Tensor], dict[str, Any]]:
        return (
            exp_post,
            {"eta_post": params.lr_post, "tau_post": params.tau_post},
            exp_pre,
            {"eta_pre": params.lr_pre, "tau_pre": params.tau_pre},
        )


class DelayAdjustedSTDP(_ExponentialKernels, DelayAdjustedKernelSTDP):
    """Delay-adjusted STDP with exponential kernels; writes the weight."""


class DelayAdjustedSTDPD(_ExponentialKernels, DelayAdjustedKernelSTDPD):
    """Delay-adjusted STDP of delays with exponential kernels; writes the delay."""
