"""All-pairs kernel STDP on cells: every pre/post spike pair of the recorded steps counts.

At each call the trainer takes the steps its cells recorded since the previous
call (``connection.synspike`` and ``neuron.spike``, ``[T, B, *shape]``) and
adds, for every synapse (and every receptive position of a convolution), the
kernel value of every pair of a presynaptic spike at step ``u`` and a
postsynaptic spike at step ``t`` of the same sample::

    v(delta) = K_post(delta, **kernel_post_kwargs) + K_pre(delta, **kernel_pre_kwargs)
    delta    = (t - u) * dt                              (= t_post - t_pre)

    potentiation[i, j] = R_b sum_p sum_{t, u} s_post[t, b, i, p] s_pre[u, b, j, p] max(v_k(delta), 0)
    depression[i, j]   = R_b sum_p sum_{t, u} s_post[t, b, i, p] s_pre[u, b, j, p] max(-v_k(delta), 0)

where the positive and negative parts are taken per kernel ``v_k`` (as in
:class:`~plastic.learn.kernel_stdp.KernelSTDP`; ``kernel_pre=None`` uses one
kernel) and ``R_b`` is the ``batch_reduction`` (``"sum"`` or ``"mean"``). The
pairs are never enumerated: :func:`plastic.functional.all_pairs.all_pairs_window`
filters the presynaptic trains with the split kernels along time (Toeplitz
product or FFT) and ends in one matrix product over ``T*B`` (``T*B*P`` for
convolutions, through the connection's receptive views).

Pairs straddling two calls
--------------------------
With ``carry_steps = 0`` (default) each call stands alone: a pair with one
spike before the call's first step is not counted. With ``carry_steps = H``
the trainer keeps the last ``H`` recorded steps of both trains (buffers of the
cell's state) and also counts the pairs between them and the new steps (each
pair exactly once). Every pair at most ``H`` steps apart is therefore counted
however the calls fall, and calling after every step equals calling once
after the run when the kernel vanishes beyond ``H`` steps; a pair farther
apart that straddles a call counts only if its earlier spike is among the
last ``H`` steps before that call. Choose ``H`` to cover the kernel's
support. The kept steps are cleared with the trainer (``clear()``) and
dropped when the batch size changes.

Differences with the trace form: with the exponential kernels, all-pairs
kernel STDP over a window equals cumulative-trace STDP started from zero
traces, except that a simultaneous pair (``delta = 0``) belongs to
``exp_post`` only, whereas the trace form counts it in both terms; a
``kernel_pre`` that includes ``delta = 0`` reproduces the trace form exactly.

Kernels depend on the lag only here: their keyword arguments are numbers or
one-element tensors (tensors become buffers of the cell's state, so
``trainer.to()`` moves them). Per-synapse kernel parameters need the event-time
form (:class:`~plastic.learn.kernel_stdp.KernelSTDP`).

References: Song, Miller & Abbott (2000), Nat. Neurosci. 3:919 (all-to-all
additive STDP); Morrison, Diesmann & Gerstner (2008), Biol. Cybern. 98:459
(pairing schemes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

import attrs
import torch
from torch import Tensor

from plastic.functional.all_pairs import all_pairs_window
from plastic.functional.attrs_validators import Validator, callable_of, keyword_dict, keyword_mapping, one_of
from plastic.functional.kernels import exp_post, exp_pre
from plastic.functional.receptive import grouped_to_weight
from plastic.learn.base import CellState, Unit
from plastic.learn.window import WindowTrainer, check_window
from plastic.neural.cell import Cell

__all__ = ["AllPairsKernelSTDP", "AllPairsKernelSTDPParams"]


#: a spike-time kernel ``kernel(delta, **kwargs)``
_kernel = callable_of("a kernel callable(delta, **kwargs)")
_optional_kernel: Validator = attrs.validators.optional(_kernel)


def _lag_only_kwargs(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    keyword_mapping(instance, attribute, value)  # raises unless a mapping with string keys
    for key, item in cast("Mapping[str, object]", value).items():
        if isinstance(item, Tensor) and item.numel() != 1:
            raise ValueError(
                f"{attribute.name}: {key!r} has shape {tuple(item.shape)}; all-pairs kernels depend on "
                "the lag only (one-element tensors or numbers; per-synapse values need KernelSTDP)"
            )


def _carry(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attribute.name}: expected an int >= 0 (steps kept across calls), got {value!r}")


@attrs.frozen
class AllPairsKernelSTDPParams:
    """Hyperparameters of :class:`AllPairsKernelSTDP` (times in the unit of ``dt``).

    kernel_post, kernel_pre: ``kernel(delta, **kwargs)`` with ``delta =
        t_post - t_pre``; each is split into its positive (potentiation) and
        negative (depression) part. ``kernel_pre=None``: ``kernel_post`` alone.
        Defaults: the exponential kernels (Hebbian with their default rates).
    kernel_post_kwargs, kernel_pre_kwargs: their keyword arguments (numbers
        or one-element tensors, which become buffers of the cell's state).
    batch_reduction: ``"sum"`` (default) or ``"mean"`` over samples.
    window: most steps a cell may run between two calls (recording capacity).
    carry_steps: steps of both trains kept across calls so that pairs
        straddling a call and at most this many steps apart are counted
        (0: every call stands alone).
    filter_method: ``"auto"``, ``"matmul"`` (Toeplitz) or ``"fft"``.
    method: final product, ``"auto"``, ``"dense"`` or ``"sparse"``.
    """

    kernel_post: Callable[..., Tensor] = attrs.field(default=exp_post, validator=_kernel)
    kernel_pre: Callable[..., Tensor] | None = attrs.field(default=exp_pre, validator=_optional_kernel)
    kernel_post_kwargs: Mapping[str, Any] = attrs.field(
        factory=dict, converter=keyword_dict, validator=_lag_only_kwargs
    )
    kernel_pre_kwargs: Mapping[str, Any] = attrs.field(factory=dict, converter=keyword_dict, validator=_lag_only_kwargs)
    batch_reduction: str = attrs.field(default="sum", validator=one_of("sum", "mean"))
    window: int = attrs.field(default=1000, validator=check_window)
    carry_steps: int = attrs.field(default=0, validator=_carry)
    filter_method: str = attrs.field(default="auto", validator=one_of("auto", "matmul", "fft"))
    method: str = attrs.field(default="auto", validator=one_of("auto", "dense", "sparse"))


class AllPairsKernelSTDP(WindowTrainer):
    """Every pre/post spike pair of the recorded steps contributes ``K(t_post - t_pre)`` (see module docs).

    Example::

        trainer = AllPairsKernelSTDP(kernel_post=mexican_hat, kernel_pre=None,
                                     kernel_post_kwargs={"amplitude": 1e-3, "sigma": 5.0})
        trainer.register_cell("hidden", cell, carry_steps=30)
        with torch.no_grad():   # plasticity only: no autograd graph
            cell(spikes)        # any number of steps, single or window mode
            trainer()           # the pairs of the new steps into cell.updater
            trainer.update()
    """

    Params = AllPairsKernelSTDPParams
    carried_names = ("history_pre", "history_post")

    def init_state(self, state: CellState, cell: Cell) -> None:
        params = state.params
        state.register_kwargs("kernel_post", params.kernel_post_kwargs)
        state.register_kwargs("kernel_pre", params.kernel_pre_kwargs)
        super().init_state(state, cell)

    def _history(self, state: CellState, name: str, fresh: Tensor) -> Tensor:
        """Kept steps ``[H', B, *shape]`` matching ``fresh`` (empty if none or resized)."""
        kept = getattr(state, name, None)
        if not isinstance(kept, Tensor) or tuple(kept.shape[1:]) != tuple(fresh.shape[1:]) or kept.dtype != fresh.dtype:
            return fresh[:0]
        return kept.to(fresh.device)

    def learn_window(self, unit: Unit, windows: dict[str, Tensor]) -> None:
        state = unit.state
        params = state.params
        connection = unit.cell.connection
        weight = connection.weight
        new_pre, new_post = windows["pre"], windows["post"]
        kept_pre = self._history(state, "history_pre", new_pre)
        kept_post = self._history(state, "history_post", new_post)
        if kept_pre.shape[0] != kept_post.shape[0]:  # cleared separately: drop the history
            kept_pre, kept_post = new_pre[:0], new_post[:0]
        kept = kept_pre.shape[0]

        kernels = [params.kernel_post]
        kernel_kwargs = [state.kwargs("kernel_post")]
        if params.kernel_pre is not None:
            kernels.append(params.kernel_pre)
            kernel_kwargs.append(state.kwargs("kernel_pre"))
        common = {
            "kernel": kernels,
            "kernel_kwargs": kernel_kwargs,
            "dt": unit.cell.dt,
            "view": connection,
            "batch_reduction": params.batch_reduction,
            "filter_method": params.filter_method,
            "method": params.method,
            "dtype": weight.dtype,
        }
        if kept == 0:
            result = all_pairs_window(new_pre, new_post, **common)
            potentiation, depression = result.potentiation, result.depression
        else:
            # pairs with the post spike in the new steps (pre anywhere), then pairs with the
            # pre spike in the new steps and the post spike in the kept ones: each pair once
            spikes_pre = torch.cat([kept_pre, new_pre])
            spikes_post = torch.cat([kept_post, new_post])
            post_new = spikes_post.clone()
            post_new[:kept] = False
            post_kept = spikes_post.clone()
            post_kept[kept:] = False
            pre_new = spikes_pre.clone()
            pre_new[:kept] = False
            first = all_pairs_window(spikes_pre, post_new, **common)
            second = all_pairs_window(pre_new, post_kept, **common)
            potentiation = first.potentiation + second.potentiation
            depression = first.depression + second.depression

        if params.carry_steps:
            spikes_pre = torch.cat([kept_pre, new_pre])[-params.carry_steps :]
            spikes_post = torch.cat([kept_post, new_post])[-params.carry_steps :]
            state.register_buffer("history_pre", spikes_pre.clone())
            state.register_buffer("history_post", spikes_post.clone())
        with torch.no_grad():
            potentiation = grouped_to_weight(potentiation, weight.shape).to(weight.dtype)
            depression = grouped_to_weight(depression, weight.shape).to(weight.dtype)
        unit.updater.accumulate("weight", potentiation=potentiation, depression=depression)
