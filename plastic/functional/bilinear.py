"""Shared plumbing of the bilinear (trace-product) rules: views, layout, batch reduction, checks.

Every trace rule of :mod:`plastic.functional` (pair STDP, triplet STDP,
MSTDP/MSTDP-ET, integer STDP) ends in the same bilinear form over a window::

    out[g, o, k] = reduce_b sum_{t, p} post[t, b, g, o, p] * pre[t, b, g, k, p]

where the layer-shaped quantities are arranged by a receptive view
(:mod:`plastic.functional.receptive`): presynaptic ``[N, *in_shape]`` ->
``[N, G, K, P]``, postsynaptic ``[N, *out_shape]`` -> ``[N, G, O, P]``, the
weight seen as ``[G, O, K]``. This module holds what those rules share:

* :data:`View` / :class:`ReceptiveView`: the ``view=`` argument of every rule,
  ``None`` (dense), a :class:`~plastic.functional.receptive.ConvGeometry`, or
  any object with ``pre_view``/``post_view`` (a connection);
* :class:`SynapseLayout`: a view bound to the layer shapes (checks them, knows
  the weight's shape and ``[G, O, K]``, and forms the products);
* :data:`PAIRINGS` and :func:`pairing_traces`: the two trace recurrences
  (``"all"``: cumulative, all-to-all pairing; ``"nearest"``: set to ``A`` at a
  spike, nearest-spike pairing; Morrison, Diesmann & Gerstner 2008);
* the batch reduction (``"sum"``, ``"mean"`` or a callable reducing dim 0)
  and the argument checks shared by the rules.

Reference: A. Morrison, M. Diesmann & W. Gerstner (2008), "Phenomenological
models of synaptic plasticity based on spike timing", Biol. Cybern. 98:459-478
(trace formulation and pairing schemes).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import torch
from einops import rearrange
from torch import Tensor

from plastic.functional.receptive import (
    ConvGeometry,
    conv_output_shape,
    conv_post_view,
    conv_pre_view,
    dense_post_view,
    dense_pre_view,
    grouped_to_weight,
    weight_to_grouped,
)
from plastic.functional.traces import trace_cumulative_window, trace_nearest_window
from plastic.functional.validation import check_spikes, check_tensor

__all__ = [
    "PAIRINGS",
    "BATCH_REDUCTIONS",
    "BatchReduction",
    "WeightFactor",
    "ReceptiveView",
    "View",
    "SynapseLayout",
    "pairing_traces",
    "check_batch_reduction",
    "reduce_batch",
    "check_window_spikes",
    "check_state_tensor",
    "compute_dtype",
]

#: ``"all"``: cumulative traces (all-to-all pairing); ``"nearest"``: traces set
#: to the jump at a spike (nearest-spike pairing).
PAIRINGS = ("all", "nearest")
BATCH_REDUCTIONS = ("sum", "mean")

WeightFactor = Callable[[Tensor], Tensor]
BatchReduction = str | Callable[[Tensor], Tensor]


@runtime_checkable
class ReceptiveView(Protocol):
    """Anything with the receptive views of a connection (a connection itself).

    ``pre_view``: ``[N, *in_shape]`` -> ``[N, G, K, P]``;
    ``post_view``: ``[N, *out_shape]`` -> ``[N, G, O, P]``.
    """

    def pre_view(self, pre: Tensor) -> Tensor: ...

    def post_view(self, post: Tensor) -> Tensor: ...


#: ``None`` (dense: every input to every output), a :class:`ConvGeometry`, or
#: a :class:`ReceptiveView` (e.g. the connection).
View = ConvGeometry | ReceptiveView | None


def pairing_traces(
    spikes: Tensor, decay: float | Tensor, amplitude: float, initial: Tensor, pairing: str
) -> tuple[Tensor, Tensor]:
    """Traces of a window ``spikes`` ``[T, *shape]`` from ``initial`` ``[*shape]``, including each step's spike::

        "all":     x_t = a * x_{t-1} + A * s_t
        "nearest": x_t = A where s_t, else a * x_{t-1}

    ``decay`` is ``a`` (per step), ``amplitude`` the jump ``A``. Returns
    ``(traces [T, *shape], last [*shape])``.
    """
    recurrence = trace_cumulative_window if pairing == "all" else trace_nearest_window
    return recurrence(spikes, decay, amplitude, initial=initial)


# --------------------------------------------------------------------------- layout


class SynapseLayout:
    """A receptive view bound to the layer shapes: how spikes map onto a weight seen as ``[G, O, K]``.

    Dense (``view is None``): presynaptic ``[N, N_in]``, postsynaptic
    ``[N, N_out]``, weight ``[N_out, N_in]``. A :class:`ConvGeometry`:
    presynaptic ``[N, C_in, *spatial]``, postsynaptic ``[N, C_out, *out_spatial]``,
    weight ``[C_out, C_in/groups, *kernel]``. A :class:`ReceptiveView` (a
    connection): its own ``pre_view``/``post_view``; the weight's shape is that
    of its ``weight`` attribute, or ``[G*O, K]`` when it has none. Every
    bilinear update is ``dw[g, o, k] = sum_{n, p} post[n, g, o, p] * pre[n, g, k, p]``.

    Build it with :meth:`infer`, which checks the shapes.
    """

    def __init__(
        self,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...],
        view: View,
        grouped_shape: tuple[int, int, int],
        weight_shape: tuple[int, ...],
    ) -> None:
        self.in_shape = in_shape
        self.out_shape = out_shape
        self.view = view
        self.grouped_shape = grouped_shape
        self.weight_shape = weight_shape

    @classmethod
    def infer(
        cls,
        in_shape: Sequence[int],
        out_shape: Sequence[int],
        view: View,
        *,
        pre_name: str = "spikes_pre",
        post_name: str = "spikes_post",
        device: torch.device | str | None = None,
    ) -> "SynapseLayout":
        """Check that the layer shapes (without time and batch) fit the view.

        A :class:`ReceptiveView` is asked for the views of one zero sample (on
        ``device``) to learn ``G``, ``O``, ``K``; an ``in_shape``/``out_shape``
        attribute on it (a connection) is checked against the spikes first.
        """
        in_shape, out_shape = tuple(in_shape), tuple(out_shape)
        if view is None:
            if len(in_shape) != 1:
                raise ValueError(f"{pre_name}: a dense layer expects one feature dimension, got {in_shape}")
            if len(out_shape) != 1:
                raise ValueError(f"{post_name}: a dense layer expects one feature dimension, got {out_shape}")
            return cls(in_shape, out_shape, None, (1, out_shape[0], in_shape[0]), (out_shape[0], in_shape[0]))
        if isinstance(view, ConvGeometry):
            if len(in_shape) != view.dims + 1 or in_shape[0] != view.in_channels:
                raise ValueError(
                    f"{pre_name}: expected [C_in={view.in_channels}, {view.dims} spatial dims] "
                    f"after time and batch, got {in_shape}"
                )
            expected_out = (view.out_channels, *conv_output_shape(view, in_shape[1:]))
            if out_shape != expected_out:
                raise ValueError(f"{post_name}: expected {expected_out} after time and batch, got {out_shape}")
            grouped = (view.groups, view.out_channels // view.groups, view.receptive_size)
            return cls(in_shape, out_shape, view, grouped, tuple(view.weight_shape))
        if isinstance(view, ReceptiveView):
            return cls._from_receptive_view(in_shape, out_shape, view, pre_name, post_name, device)
        raise TypeError(
            "view: expected None (dense), a ConvGeometry or an object with pre_view and "
            f"post_view, got {type(view).__name__}"
        )

    @classmethod
    def _from_receptive_view(
        cls,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...],
        view: ReceptiveView,
        pre_name: str,
        post_name: str,
        device: torch.device | str | None,
    ) -> "SynapseLayout":
        for name, shape, attribute in ((pre_name, in_shape, "in_shape"), (post_name, out_shape, "out_shape")):
            expected = getattr(view, attribute, None)
            if expected is not None and tuple(expected) != shape:
                raise ValueError(
                    f"{name}: expected {tuple(expected)} (the view's {attribute}) after time and batch, got {shape}"
                )
        pre = view.pre_view(torch.zeros((1, *in_shape), device=device))
        post = view.post_view(torch.zeros((1, *out_shape), device=device))
        if pre.ndim != 4 or post.ndim != 4:
            raise ValueError(
                "view: expected pre_view -> [N, G, K, P] and post_view -> [N, G, O, P], got "
                f"{tuple(pre.shape)} and {tuple(post.shape)}"
            )
        if pre.shape[1] != post.shape[1] or pre.shape[3] != post.shape[3]:
            raise ValueError(
                f"{post_name}: its receptive view [N, G, O, P] = {tuple(post.shape)} does not match the "
                f"presynaptic view [N, G, K, P] = {tuple(pre.shape)} (groups G and positions P must agree)"
            )
        groups, outputs, inputs = int(pre.shape[1]), int(post.shape[2]), int(pre.shape[2])
        weight = getattr(view, "weight", None)
        weight_shape = tuple(weight.shape) if isinstance(weight, Tensor) else (groups * outputs, inputs)
        if math.prod(weight_shape) != groups * outputs * inputs or weight_shape[0] % groups:
            raise ValueError(
                f"view: its weight of shape {weight_shape} does not group into [G, O, K] = "
                f"{(groups, outputs, inputs)}"
            )
        return cls(in_shape, out_shape, view, (groups, outputs, inputs), weight_shape)

    @property
    def dense(self) -> bool:
        """Whether this is the plain dense layout (every input to every output)."""
        return self.view is None

    @property
    def groups(self) -> int:
        return self.grouped_shape[0]

    def pre(self, values: Tensor) -> Tensor:
        """``[N, *in_shape]`` -> ``[N, G, K, P]``."""
        if self.view is None:
            return dense_pre_view(values)
        if isinstance(self.view, ConvGeometry):
            return conv_pre_view(values, self.view)
        return self.view.pre_view(values)

    def post(self, values: Tensor) -> Tensor:
        """``[N, *out_shape]`` -> ``[N, G, O, P]``."""
        if self.view is None:
            return dense_post_view(values)
        if isinstance(self.view, ConvGeometry):
            return conv_post_view(values, self.view)
        return self.view.post_view(values)

    def to_weight(self, grouped: Tensor) -> Tensor:
        """``[G, O, K]`` -> the weight's shape."""
        return grouped_to_weight(grouped, self.weight_shape)

    def to_grouped(self, weight_shaped: Tensor) -> Tensor:
        """The weight's shape -> ``[G, O, K]``."""
        return weight_to_grouped(weight_shaped, self.groups)

    def factor(self, function: WeightFactor | None, weight: Tensor | None, name: str) -> Tensor | None:
        """Weight-dependence factor ``function(weight)`` as ``[G, O, K]`` (None: identity, factor 1)."""
        if function is None:
            return None
        if weight is None:
            raise ValueError(f"weight: required when {name} is given")
        if not callable(function):
            raise TypeError(f"{name}: expected a callable f(w) or None, got {type(function).__name__}")
        value = function(weight)
        if not isinstance(value, Tensor) or value.shape != weight.shape:
            raise ValueError(f"{name}: f(w) must return a tensor of the weight's shape {tuple(weight.shape)}")
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name}: f(w) returned NaN or inf")
        return self.to_grouped(value)

    def check_weight(self, weight: Tensor | None, device: torch.device | None = None) -> None:
        """``weight`` (if given): a finite tensor of the weight's shape on ``device``."""
        if weight is not None:
            check_tensor(weight, "weight", shape=self.weight_shape, finite=True, device=device)

    def bilinear(
        self,
        post_values: Tensor,
        pre_values: Tensor,
        batch_reduction: BatchReduction = "sum",
        factor: Tensor | None = None,
    ) -> Tensor:
        """``reduce_b factor * sum_{t, p} post (x) pre`` as ``[G, O, K]``.

        ``post_values`` ``[T, B, *out_shape]``, ``pre_values`` ``[T, B, *in_shape]``.
        ``"sum"`` and ``"mean"`` contract ``T*B*P`` in one product; a callable
        reduction needs the per-sample products ``[B, G, O, K]`` first.
        """
        if not isinstance(batch_reduction, str):
            per_sample = self.per_sample(post_values, pre_values)
            if factor is not None:
                per_sample = per_sample * factor
            return reduce_batch(per_sample, batch_reduction)
        steps, batch = post_values.shape[:2]
        post = self.post(post_values.reshape(steps * batch, *self.out_shape))
        pre = self.pre(pre_values.reshape(steps * batch, *self.in_shape))
        result = torch.einsum("ngop,ngkp->gok", post, pre)
        if factor is not None:
            result = result * factor
        return result / batch if batch_reduction == "mean" else result

    def per_sample(self, post_values: Tensor, pre_values: Tensor) -> Tensor:
        """``sum_{t, p} post (x) pre`` per sample: ``[B, G, O, K]`` (memory ``B*G*O*K``)."""
        steps = post_values.shape[0]
        post = self.post(post_values.flatten(0, 1))
        pre = self.pre(pre_values.flatten(0, 1))
        post = rearrange(post, "(t b) g o p -> b g o (t p)", t=steps)
        pre = rearrange(pre, "(t b) g k p -> b g k (t p)", t=steps)
        return torch.einsum("bgop,bgkp->bgok", post, pre)


# ------------------------------------------------------------------------ reductions


def check_batch_reduction(value: object) -> BatchReduction:
    """``"sum"``, ``"mean"`` or a callable reducing dim 0."""
    if callable(value) or (isinstance(value, str) and value in BATCH_REDUCTIONS):
        return value  # type: ignore[return-value]
    raise ValueError(f"batch_reduction: expected 'sum', 'mean' or a callable reducing dim 0, got {value!r}")


def reduce_batch(per_sample: Tensor, batch_reduction: BatchReduction) -> Tensor:
    """Reduce ``[B, ...]`` over dim 0 with ``"sum"``, ``"mean"`` or a callable."""
    if batch_reduction == "sum":
        return per_sample.sum(0)
    if batch_reduction == "mean":
        return per_sample.mean(0)
    result = batch_reduction(per_sample)  # type: ignore[operator]
    if not isinstance(result, Tensor) or result.shape != per_sample.shape[1:]:
        raise ValueError(
            f"batch_reduction: a callable must reduce dim 0 of {tuple(per_sample.shape)} "
            f"to {tuple(per_sample.shape[1:])}"
        )
    return result


# ---------------------------------------------------------------------- validation


def check_window_spikes(
    spikes_pre: object, spikes_post: object, *, step: bool = False
) -> tuple[Tensor, Tensor]:
    """Spikes as bool: window ``[T, B, *shape]`` (or step ``[B, *shape]``), same T and B, same device."""
    leading = 1 if step else 2
    pre = check_spikes(spikes_pre, "spike_pre" if step else "spikes_pre", min_ndim=leading + 1)
    post = check_spikes(spikes_post, "spike_post" if step else "spikes_post", min_ndim=leading + 1)
    if pre.shape[:leading] != post.shape[:leading]:
        what = "batch size" if step else "time and batch sizes"
        raise ValueError(
            f"spikes_post: expected the {what} of spikes_pre {tuple(pre.shape[:leading])}, "
            f"got {tuple(post.shape[:leading])}"
        )
    if pre.device != post.device:
        raise ValueError(f"spikes_post: expected a tensor on {pre.device}, got {post.device}")
    return pre, post


def check_state_tensor(value: object, name: str, shape: Sequence[int], like: Tensor | None) -> Tensor:
    """A carried state tensor: floating, finite, of ``shape``, with the dtype and device of ``like``."""
    tensor = check_tensor(value, name, shape=shape, floating=True, finite=True)
    if like is not None and (tensor.dtype != like.dtype or tensor.device != like.device):
        raise ValueError(
            f"{name}: expected dtype {like.dtype} on {like.device}, got {tensor.dtype} on {tensor.device}"
        )
    return tensor


def compute_dtype(*candidates: object) -> torch.dtype:
    """The first floating tensor's dtype (state, weight, floating spikes), else torch's default."""
    for candidate in candidates:
        if isinstance(candidate, Tensor) and candidate.is_floating_point():
            return candidate.dtype
    return torch.get_default_dtype()
