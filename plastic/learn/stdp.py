"""Pair STDP in trace form on cells: dense and convolutional, window by window.

Presynaptic traces ``x_pre`` (``tau_pre``) and postsynaptic traces ``x_post``
(``tau_post``), cumulative (``pairing="all"``, all-to-all) or nearest
(``pairing="nearest"``, the symmetric nearest-neighbour scheme; also
``"symmetric"``); traces include the current step's spike::

    at a post spike:  dw_ij += eta_post * f_post(w_ij) * sum_b s_post[b,i] * x_pre[b,j]
    at a pre spike:   dw_ij -= eta_pre  * f_pre(w_ij)  * sum_b x_post[b,i] * s_pre[b,j]

(``sum_b`` is the ``batch_reduction``: sum, mean or a callable). Hebbian:
``eta_post > 0`` and ``eta_pre > 0``; a negative rate moves its term to the
other side. The nearest-neighbour schemes ``"presynaptic_centred"`` and
``"restricted"`` of Morrison, Diesmann & Gerstner (2008, Fig. 7) count other
pairs (:mod:`plastic.functional.pairing_schemes`) and carry their
:class:`~plastic.functional.pairing_schemes.PairingState` as buffers of the
cell's state (``steps_since_pre``/``steps_since_post``, int64, or
``pending_pre`` ``[B, G, O, K, P]``). Convolutions take the presynaptic quantities over each output
position's receptive field and sum over positions. The weight dependences
``f_post``/``f_pre`` are callables of the weight (``None``: 1), e.g.
``Bounding("soft", w_min=0, w_max=1).upper_factor`` for multiplicative STDP.

Each call consumes the spikes recorded since the previous call and carries the
traces, so the update does not depend on how often the trainer is called.
With all-to-all pairing, no weight dependence and an updater whose bounding is
``none`` (sum or mean over calls), the window is ONE matrix product
(:func:`~plastic.functional.stdp.stdp_window_net`); sparse spikes switch to an
event-driven product automatically (``method="auto"``).

References: Bi & Poo (1998), J. Neurosci. 18:10464; Song, Miller & Abbott
(2000), Nat. Neurosci. 3:919; Morrison, Diesmann & Gerstner (2008), Biol.
Cybern. 98:459.
"""

from __future__ import annotations

import functools
import math
from typing import TypedDict, cast

import attrs
import torch
from torch import Tensor

from plastic.functional.attrs_validators import finite, one_of, positive
from plastic.functional.bilinear import BatchReduction, View
from plastic.functional.bounding import Bounding
from plastic.functional.event_forward import is_input_major
from plastic.functional.pair_products import Method
from plastic.functional.pairing_schemes import (
    STATEFUL_PAIRINGS,
    STDP_PAIRINGS,
    PairingState,
    initial_pairing_state,
)
from plastic.functional.receptive import grouped_to_weight
from plastic.functional.stdp import METHODS, stdp_window, stdp_window_net
from plastic.functional.stdp_checks import finite_change_limit, largest_magnitude, pair_change_bound
from plastic.functional.stdp_engine import pre_event_window_update, uses_pre_event_product
from plastic.functional.traces import decay_factor
from plastic.functional.window_bags import sums_write_into
from plastic.learn.base import CellState, Unit
from plastic.learn.one_sample_window import learn_one_sample_window
from plastic.learn.window import WindowRuleParams, WindowTrainer
from plastic.neural.buffers import set_plain
from plastic.neural.connection_base import Connection

__all__ = ["STDP", "STDPParams", "signed_terms"]


@attrs.frozen
class STDPParams(WindowRuleParams):
    """Hyperparameters of :class:`STDP` (times in the unit of ``dt``, ms).

    eta_post: rate of the post-spike (potentiation) term.
    eta_pre: rate of the pre-spike (depression) term.
    tau_pre, tau_post: trace time constants.
    amplitude_pre, amplitude_post: trace jump at a spike.
    pairing: ``"all"`` (cumulative traces), ``"nearest"`` (= ``"symmetric"``),
        ``"presynaptic_centred"`` or ``"restricted"`` (Morrison et al. 2008, Fig. 7).
    exact: decay ``exp(-dt/tau)`` (True) or the Euler ``1 - dt/tau``.
    weight_dependence_post, weight_dependence_pre: ``f_post(w)``, ``f_pre(w)``.
    batch_reduction: ``"sum"`` (default), ``"mean"`` or a callable on dim 0.
    window: most steps the cell may run between two calls.
    method: ``"auto"``, ``"dense"`` or ``"sparse"`` products.
    fuse: ``None`` (auto), True or False: the one-product window form.
    """

    pairing: str = attrs.field(default="all", validator=one_of(*STDP_PAIRINGS), kw_only=True)
    eta_post: float = attrs.field(default=1.0, validator=finite)
    eta_pre: float = attrs.field(default=1.0, validator=finite)
    tau_pre: float = attrs.field(default=20.0, validator=positive)
    tau_post: float = attrs.field(default=20.0, validator=positive)
    amplitude_pre: float = attrs.field(default=1.0, validator=finite)
    amplitude_post: float = attrs.field(default=1.0, validator=finite)
    method: str = attrs.field(default="auto", validator=one_of(*METHODS))
    fuse: bool | None = attrs.field(default=None, validator=one_of(None, True, False))


class TraceWindowArguments(TypedDict, total=False):
    """The keyword arguments :func:`~plastic.functional.stdp.stdp_window` and ``stdp_window_net`` share."""

    tau_pre: float
    tau_post: float
    dt: float
    exact: bool
    amplitude_pre: float
    amplitude_post: float
    view: View
    batch_reduction: BatchReduction
    method: Method


def signed_terms(*terms: Tensor) -> tuple[Tensor, Tensor]:
    """Signed contributions to (potentiation, depression) magnitudes.

    Each term is a signed change; its positive part is potentiation and its
    negative part (negated) depression.
    """
    if len(terms) == 1:  # two passes: max(t, 0) and max(t, 0) - t = max(-t, 0), both exact
        potentiation = terms[0].clamp(min=0)
        return potentiation, potentiation - terms[0]
    # sum() starts from the int 0: with tensor terms the sums are tensors
    return (
        cast(Tensor, sum(term.clamp(min=0) for term in terms)),
        cast(Tensor, sum((-term).clamp(min=0) for term in terms)),
    )


@functools.lru_cache(maxsize=64)
def _trace_decays(dt: float, tau_pre: float, tau_post: float, exact: bool) -> tuple[float, float]:
    """The per-step decays of the two traces (:func:`~plastic.functional.traces.decay_factor`), cached:
    every window of a cell asks for the same ones."""
    return decay_factor(dt, tau_pre, exact=exact), decay_factor(dt, tau_post, exact=exact)


def _grouped_shape(state: CellState, connection: Connection, weight: Tensor | None = None) -> torch.Size:
    """The shape of ``connection.weight_grouped()`` (``[G, O, K]``), kept in ``state`` for the
    connection and weight shape it was read for: its rearranged view costs more than the rest of a
    one-sample window's bookkeeping. ``weight``: ``connection.weight``, where the caller has it."""
    shape = (connection.weight if weight is None else weight).shape
    cached = state.__dict__.get("grouped_shape")
    if cached is None or cached[0] is not connection or cached[1] != shape:
        cached = (connection, shape, connection.weight_grouped().shape)
        set_plain(state, "grouped_shape", cached)
    return cast(torch.Size, cached[2])


class STDP(WindowTrainer):
    """Pair STDP with traces (see module docs).

    Example::

        trainer = STDP(eta_post=1e-2, eta_pre=1e-4, tau_pre=20.0, tau_post=20.0)
        trainer.register_cell("exc", cell)
        cell.step_mode = "window"
        with torch.no_grad():   # plasticity only: no autograd graph
            cell(spikes)        # [T, B, N_in]
            trainer()           # the window's update into cell.updater
            trainer.update()
    """

    Params = STDPParams
    #: the traces, and the pairing state of the stateful schemes (the fields of their pairing)
    carried_names = ("trace_pre", "trace_post", *PairingState._fields)

    @staticmethod
    def _carried_pairing(
        unit: Unit, spikes_pre: Tensor, spikes_post: Tensor, dtype: torch.dtype
    ) -> tuple[Tensor, Tensor, PairingState]:
        """The traces and pairing state a stateful scheme continues from: the carried ones, or
        all fresh (nothing carried yet, or a different batch size or dtype since)."""
        pairing = unit.state.params.pairing
        fields = ("steps_since_pre", "steps_since_post") if pairing == "restricted" else ("pending_pre",)
        buffers = unit.state._buffers
        carried = {name: buffers.get(name) for name in ("trace_pre", "trace_post", *fields)}
        batch = spikes_pre.shape[1]
        trace_pre, trace_post = carried.pop("trace_pre"), carried.pop("trace_post")
        if (
            trace_pre is not None
            and trace_post is not None
            and trace_pre.shape == spikes_pre.shape[1:]
            and trace_post.shape == spikes_post.shape[1:]
            and trace_pre.dtype == dtype
            and all(
                value is not None and value.shape[0] == batch and (value.dtype in (dtype, torch.int64))
                for value in carried.values()
            )
        ):
            return trace_pre, trace_post, PairingState(**carried)
        fresh = initial_pairing_state(
            pairing, spikes_pre=spikes_pre, spikes_post=spikes_post, view=unit.cell.connection, dtype=dtype
        )
        zeros_pre = torch.zeros(spikes_pre.shape[1:], dtype=dtype, device=spikes_pre.device)
        return zeros_pre, torch.zeros(spikes_post.shape[1:], dtype=dtype, device=spikes_pre.device), fresh

    def uses_one_product(self, unit: Unit) -> bool:
        params = unit.state.params
        if params.fuse is not None:
            if params.fuse and (
                params.pairing != "all" or params.weight_dependence_post or params.weight_dependence_pre
            ):
                raise ValueError("fuse: the one-product form needs pairing='all' and no weight dependence")
            return bool(params.fuse)
        updater = unit.updater
        bounding = updater.bounding.get("weight") if isinstance(updater.bounding, dict) else None
        # the updater holds Bounding instances (it checks them at construction)
        linear_bounding = bounding is None or (isinstance(bounding, Bounding) and bounding.kind == "none")
        linear_updater = linear_bounding and updater.reduction in ("sum", "mean")
        return (
            params.pairing == "all"
            and params.weight_dependence_post is None
            and params.weight_dependence_pre is None
            and linear_updater
            and not callable(params.batch_reduction)
        )

    @staticmethod
    def _change_buffer(unit: Unit, dtype: torch.dtype, steps: int, batch: int) -> tuple[Tensor, Tensor | None]:
        """A ``[G, O, K]`` buffer for the one-product change of a ``[steps, batch, ...]`` window, and the
        updater's accumulator it views (``None``: not the updater's own).

        While the updater's accumulators are empty, its potentiation buffer
        (:meth:`~plastic.neural.updater.Updater.change_buffer`, laid out like
        the weight): the change is computed where the updater keeps it, no
        copy; an input-major weight's, where the window's product writes that
        layout (:func:`~plastic.functional.stdp_engine.uses_pre_event_product`).
        Otherwise a scratch buffer kept across windows (the updater copies what
        it receives, so it is free again after each window): no fresh
        weight-sized allocation (and its page faults) per window. Not saved in
        the state dict.
        """
        connection = unit.cell.connection
        shape = _grouped_shape(unit.state, connection)
        updater = unit.updater
        if "weight" in updater.params:
            own = updater.change_buffer("weight")
            if own is not None and own.dtype == dtype:
                if own.is_contiguous():
                    return own.view(shape), own
                if is_input_major(own) and uses_pre_event_product(own.view(shape), steps, batch):
                    return own.view(shape), own
        buffer = unit.state._buffers.get("window_change")
        if (
            buffer is None
            or buffer.shape != shape
            or buffer.dtype != dtype
            or buffer.device != connection.weight.device
        ):
            buffer = torch.empty(shape, dtype=dtype, device=connection.weight.device)
            unit.state.register_buffer("window_change", buffer, persistent=False)
        return buffer, None

    @staticmethod
    def _pre_event_window(
        unit: Unit,
        spikes_pre: Tensor,
        spikes_post: Tensor,
        trace_pre: Tensor,
        trace_post: Tensor,
        fresh_post: bool,
        buffer: Tensor,
        traces_finite: bool,
    ) -> tuple[Tensor, Tensor, Tensor] | None:
        """The one-product window of a cell whose updater's empty accumulator is ``buffer`` where
        :func:`~plastic.functional.stdp.stdp_window_net` takes the pre-event product, without its
        argument checks; returns the change (the weight's shape, laid out like ``buffer``: ``buffer``
        itself where the compiled sums wrote it there, else a tensor of its own for the updater to take
        over) and the traces after the window, or None (not taken, nothing done).

        Taken for one sample of bool spikes through a dense connection whose
        input-major weight's accumulator is ``buffer``
        (:func:`~plastic.functional.stdp_engine.uses_pre_event_product`), with
        finite traces (``traces_finite``: the caller's
        :func:`~plastic.functional.stdp_checks.largest_magnitude` of each, a
        state dict may have set them) that record no graph: the spikes are this
        trainer's own recordings (time and batch sizes checked by
        :meth:`new_steps`), the traces its carried buffers (:meth:`carried`:
        shape and dtype), the rates, amplitudes and time constants its checked
        params. The same call of
        :func:`~plastic.functional.stdp_engine.pre_event_window_update` as the
        functional form makes, so the same values; everything else (and every
        refusal, with its message) goes through the functional form.
        """
        steps, batch = spikes_pre.shape[:2]
        if not (
            batch == 1
            and traces_finite
            and spikes_pre.dtype == torch.bool
            and spikes_post.dtype == torch.bool
            and spikes_post.shape[:2] == (steps, 1)
            and getattr(unit.cell.connection, "all_to_all", False) is True
            and uses_pre_event_product(buffer, steps, batch)
            and spikes_pre[0].numel() == buffer.shape[2]
            and spikes_post[0].numel() == buffer.shape[1]
            and spikes_pre.device == spikes_post.device == trace_pre.device
            and not (trace_pre.requires_grad or trace_post.requires_grad)
        ):
            return None
        params = unit.state.params
        decay_pre, decay_post = _trace_decays(unit.cell.dt, params.tau_pre, params.tau_post, params.exact)
        # the compiled sums write the change into the updater's empty accumulator itself; the torch bags
        # make a new tensor (written into the accumulator, it would cost one more pass), which it adopts
        out = buffer if sums_write_into(buffer[0].T) else None
        change, last_pre, last_post = pre_event_window_update(
            spikes_pre, spikes_post, trace_pre, trace_post, fresh_post, decay_pre, decay_post,
            float(params.amplitude_pre), float(params.amplitude_post), float(params.eta_post), float(params.eta_pre),
            out,
        )  # fmt: skip
        return change.view(unit.cell.connection.weight.shape), last_pre, last_post

    @staticmethod
    def _bounded_change(
        unit: Unit, spikes_pre: Tensor, spikes_post: Tensor, largest_pre: float, largest_post: float, dtype: torch.dtype
    ) -> bool:
        """Whether the one-product change of this window is finite by construction: bool spikes through a
        dense connection (each synapse pairs one input with one output), and
        :func:`~plastic.functional.stdp_checks.pair_change_bound` (from the largest magnitudes of the
        carried traces, before the window) a thousandth of the dtype's largest value or less."""
        if not (
            spikes_pre.dtype == torch.bool
            and spikes_post.dtype == torch.bool
            and dtype.is_floating_point
            and getattr(unit.cell.connection, "all_to_all", False) is True
        ):
            return False
        params = unit.state.params
        steps, batch = spikes_pre.shape[:2]
        bound = pair_change_bound(
            steps, batch, params.eta_post, params.eta_pre, params.amplitude_pre, params.amplitude_post,
            *_trace_decays(unit.cell.dt, params.tau_pre, params.tau_post, params.exact), largest_pre, largest_post,
        )  # fmt: skip
        return bound <= finite_change_limit(dtype)

    @staticmethod
    def _one_sample_window(
        unit: Unit, spikes_pre: Tensor, spikes_post: Tensor, connection: Connection, weight: Tensor
    ) -> bool:
        """Whether the window was learnt by :func:`~plastic.learn.one_sample_window.learn_one_sample_window`
        (a one-product unit's one-sample input-major window with the compiled sums and carried traces,
        the same values as the plain path with what its windows share kept); False: nothing done.
        ``connection`` and ``weight``: the unit's connection and its weight."""
        shape = _grouped_shape(unit.state, connection, weight)
        return learn_one_sample_window(unit, spikes_pre, spikes_post, connection, weight, shape)

    def learn_window(self, unit: Unit, windows: dict[str, Tensor]) -> None:
        params = unit.state.params
        connection = unit.cell.connection
        weight = connection.weight
        spikes_pre, spikes_post = windows["pre"], windows["post"]
        one_product = self.uses_one_product(unit)
        if one_product and self._one_sample_window(unit, spikes_pre, spikes_post, connection, weight):
            return
        dtype = weight.dtype
        # no carried postsynaptic trace yet (first window since a reset): zeros, and the
        # one-product form can skip its carried-trace term
        fresh_post = "trace_post" not in unit.state._buffers
        trace_pre = self.carried(unit.state, "trace_pre", spikes_pre, dtype)
        trace_post = self.carried(unit.state, "trace_post", spikes_post, dtype)
        common: TraceWindowArguments = {
            "tau_pre": params.tau_pre,
            "tau_post": params.tau_post,
            "dt": unit.cell.dt,
            "exact": params.exact,
            "amplitude_pre": params.amplitude_pre,
            "amplitude_post": params.amplitude_post,
            "view": connection,
            "batch_reduction": params.batch_reduction,
            "method": params.method,
        }
        change: Tensor | None = None
        known_finite = handed_over = False
        new_state: PairingState | None = None
        if one_product:
            # from the carried traces, before the window (one reduction each serves the bound and,
            # in the pre-event window, the finiteness of the traces)
            largest_pre, largest_post = largest_magnitude(trace_pre), largest_magnitude(trace_post)
            known_finite = self._bounded_change(unit, spikes_pre, spikes_post, largest_pre, largest_post, dtype)
            traces_finite = math.isfinite(largest_pre) and math.isfinite(largest_post)
            buffer, accumulator = self._change_buffer(unit, dtype, *spikes_pre.shape[:2])
            owned_by_updater = accumulator is not None
            fast = net = None
            try:
                if owned_by_updater:
                    fast = self._pre_event_window(
                        unit, spikes_pre, spikes_post, trace_pre, trace_post, fresh_post, buffer, traces_finite
                    )
                if fast is None:
                    net = stdp_window_net(
                        spikes_pre, spikes_post, trace_pre, None if fresh_post else trace_post,
                        eta_post=params.eta_post, eta_pre=params.eta_pre, out=buffer, **common,
                    )  # fmt: skip
            except BaseException:
                if owned_by_updater:
                    buffer.zero_()  # possibly written into: the updater's empty accumulator stays empty
                raise
            if fast is not None:
                # a change of its own, laid out like the empty accumulator: the updater takes it over
                change, *traces = fast
                handed_over = True
            else:
                assert net is not None  # the functional form ran (no pre-event window)
                # the updater's own accumulator is the change as it is (a view of it in the weight's shape)
                change = accumulator if accumulator is not None else grouped_to_weight(buffer, weight.shape)
                traces = [net.trace_pre, net.trace_post]
        else:
            if params.pairing in STATEFUL_PAIRINGS:
                trace_pre, trace_post, state = self._carried_pairing(unit, spikes_pre, spikes_post, dtype)
                result = stdp_window(
                    spikes_pre, spikes_post, trace_pre, trace_post, pairing=params.pairing, pairing_state=state,
                    **common,
                )  # fmt: skip
            else:
                result = stdp_window(spikes_pre, spikes_post, trace_pre, trace_post, pairing=params.pairing, **common)
            with torch.no_grad():
                factor_post = params.weight_dependence_post(weight) if params.weight_dependence_post else 1.0
                factor_pre = params.weight_dependence_pre(weight) if params.weight_dependence_pre else 1.0
                term_post = params.eta_post * factor_post * grouped_to_weight(result.potentiation, weight.shape)
                term_pre = -params.eta_pre * factor_pre * grouped_to_weight(result.depression, weight.shape)
            potentiation, depression = signed_terms(term_post, term_pre)
            traces = [result.trace_pre, result.trace_post]
            new_state = result.pairing_state
        # the updater first: it validates what it receives, and a refused change leaves the carried
        # traces as they were (the window is not consumed either)
        if change is not None:
            # one signed net change: the updater splits it into its accumulators in place
            unit.updater.accumulate_signed("weight", change, known_finite=known_finite, owned=handed_over)
        else:
            unit.updater.accumulate("weight", potentiation=potentiation, depression=depression)
        if new_state is not None:
            # a stateful scheme: its traces and new state are fresh tensors, kept as they are
            for name, value in zip(
                ("trace_pre", "trace_post", *PairingState._fields), (*traces, *new_state), strict=True
            ):
                if value is not None:
                    unit.state.register_buffer(name, value)
            return
        unit.state.trace_pre.copy_(traces[0])
        unit.state.trace_post.copy_(traces[1])
