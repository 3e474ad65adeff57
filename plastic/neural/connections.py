"""Connections: a synapse, then a weighted sum into the postsynaptic group.

Every connection owns a :mod:`synapse <plastic.neural.synapses>` that turns
presynaptic spikes into currents ``I`` (and keeps their history), and a
``weight`` that sums them into the postsynaptic input::

    dense    out[b, i]    = sum_j W[i, j] * I[b, j]                 (+ bias[i])
    direct   out[b, i]    = W[i] * I[b, i]
    lateral  out[b, i]    = sum_{j != i} W[i, j] * I[b, j]           (weight_mask)
    conv     out[b, c, x] = sum_{c', k} W[c, c', k] * I_pad[b, c', s*x + d*k]   (torch.nn.ConvNd)

With per-synapse delays ``d_ij`` (dense, direct, lateral)::

    out[b, i] = sum_j W[i, j] * I_j(t - d_ij)

where ``I_j(t - d)`` is read from the synapse's history
(:meth:`~plastic.neural.synapses.Synapse.forward_delayed`, interpolation and
tolerance of the synapse). ``delay`` is an ``nn.Parameter`` of the weight's
shape in time units (like ``dt``), kept within ``[0, max_delay]`` (it is
clamped into that range when read). Delays are learned by plasticity rules
(STDPD) through the updater; no gradient reaches them.

Shapes: steps ``[B, *in_shape]`` -> ``[B, *out_shape]`` (``step_mode="single"``),
windows ``[T, B, *in_shape]`` -> ``[T, B, *out_shape]`` (``"window"``, one
matrix product or one convolution over ``T * B``).

After ``forward``: ``synspike`` (bool) and ``syncurrent`` are the presynaptic
spikes and currents as they reach the weights: ``[(T,) B, *in_shape]``
without delays, ``[(T,) B, *weight.shape]`` per synapse with delays.

Receptive views (:mod:`plastic.functional.receptive`): a weight is seen as
``[G, O, K]``; ``pre_view`` arranges presynaptic ``[N, *in_shape]`` as
``[N, G, K, P]`` (per-synapse ``[N, *weight.shape]`` as ``[N, G, O, K, P]``),
``post_view`` postsynaptic ``[N, *out_shape]`` as ``[N, G, O, P]``.
Dense and lateral: ``G = 1, O = N_out, K = N_in, P = 1``; direct: ``G = N,
O = K = P = 1``; conv: ``G = groups``, ``K = C_in/G * prod(kernel)``, ``P`` the
output positions.

Weight initialisation follows torch (``nn.Linear``/``nn.ConvNd``: uniform in
``+-1/sqrt(fan_in)``, i.e. Kaiming uniform with ``a = sqrt(5)``), or
``weight_init``: a ``(low, high)`` range or a callable that fills the weight
in place (e.g. ``torch.nn.init.normal_``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor
from torch.nn.modules import module as _module_implementation

from plastic.functional import event_forward
from plastic.functional.event_forward import (
    EVENT_FORWARD_MAX_WEIGHT,
    GATHER_DENSITY,
    GATHER_DENSITY_LARGE,
    GATHER_MIN_WORK,
    event_linear,
    gather_rows,
    is_input_major,
    use_event_linear,
)
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

# the F401 names: importable from here before connection_base.py
from plastic.functional.validation import (  # noqa: F401
    check_choice,
    check_non_negative,
    check_positive,
    check_tensor,
)
from plastic.neural.buffers import rebind_buffer
from plastic.neural.connection_base import DELAY_INITS, Connection, WeightInit, check_count  # noqa: F401
from plastic.neural.synapses import SYNAPSE_KINDS, DeltaCurrent, Synapse, check_batch_size, make_synapse  # noqa: F401

__all__ = ["Connection", "Conv1d", "Conv2d", "LinearDense", "LinearDirect", "LinearLateral"]


class _LinearBase(Connection):
    """Dense weight ``[N_out, N_in]`` (dense and lateral)."""

    #: the receptive views are the plain all-to-all ones (``[N, N_in] -> [N, 1, N_in, 1]``):
    #: pair products may skip them and multiply the matrices directly
    all_to_all = True

    def _propagate(self, currents: Tensor) -> Tensor:
        # one matrix product over every leading dimension (B, or T and B)
        return F.linear(currents, self.effective_weight(), self.bias)

    def _propagate_spikes(self, spikes: Tensor, currents: Tensor) -> Tensor:
        # bool spikes through a delta synapse (currents = A * spikes): sparse spikes gather the
        # current from the spiking inputs' weights (plastic.functional.event_forward)
        synapse = self._modules["synapse"]
        if type(synapse) is DeltaCurrent and spikes.dtype == torch.bool:
            out = self._event_output(spikes, synapse.amplitude)
            if out is not None:
                return out
        return self._propagate(currents)

    def _pass_through_step(self, synapse: Synapse, spikes: Tensor) -> Tensor | None:
        if type(synapse) is not DeltaCurrent:
            return None
        fired = synapse.pass_through(spikes)
        if fired is None:
            return None
        amplitude = synapse.amplitude
        # any size: the dense product would first have to write the deferred currents (measured, one
        # sample: 64 -> 1000 11.1 against 13.5 us, 32 -> 16 10.6 against 10.8, 784 -> 400 11.6 against 26.4);
        # the gather first, as _event_output tries it (its tests without the ones a pass-through step
        # passes: bool spikes, no least work), which then decides where the gather declines
        weight: Tensor = self._parameters["weight"]  # type: ignore[assignment]  # registered in __init__
        rows, density = self._gather_rows(weight)
        out = None
        if (
            rows is not None
            and fired.shape[-1] == rows.shape[0]
            and self._buffers.get("weight_mask") is None
            and not (weight.requires_grad and torch.is_grad_enabled())
        ):
            out = gather_rows(fired, rows, amplitude, density)
            if out is not None and self.bias is not None:
                out = out + self.bias
        if out is None:
            out = self._event_output(fired, amplitude, min_work=0)
        buffers = self._buffers
        if _module_implementation._global_buffer_registration_hooks:
            rebind_buffer(self, "synspike", fired)  # the hooks see the assignment
        else:
            buffers["synspike"] = fired  # what rebind_buffer does for a registered buffer
        if out is None:  # the dense product: it needs the currents (the deferred step is written)
            currents = synapse.current
            rebind_buffer(self, "syncurrent", currents)
            self.__dict__["_syncurrent_deferred"] = False
            return self._propagate(currents)
        self._defer_syncurrent()
        return out

    def _event_output(self, spikes: Tensor, amplitude: float, min_work: int | None = None) -> Tensor | None:
        """``amplitude * spikes @ W^T (+ bias)`` of bool ``spikes`` from their events where that beats the
        dense product (:mod:`plastic.functional.event_forward`); ``None``: take the dense product.

        ``min_work``: the least ``rows x N_in x N_out`` for the gather (default
        :data:`~plastic.functional.event_forward.GATHER_MIN_WORK`).
        """
        parameters = self._parameters  # without nn.Module.__getattr__ (every step)
        weight: Tensor = parameters["weight"]  # type: ignore[assignment]  # registered in __init__
        rows, density = self._gather_rows(weight)
        if (
            rows is not None
            and self._buffers.get("weight_mask") is None
            and not (weight.requires_grad and torch.is_grad_enabled())
            and spikes.numel() * rows.shape[1] >= (GATHER_MIN_WORK if min_work is None else min_work)
            and spikes.shape[-1] == rows.shape[0]
            and spikes.dtype == torch.bool
        ):
            # each spike reads its input's row of the input-major weight; None: too dense
            out = gather_rows(spikes, rows, amplitude, density)
            if out is not None:
                return out if self.bias is None else out + self.bias
        if spikes.numel() < event_forward.EVENT_FORWARD_MIN_ROWS * spikes.shape[-1]:
            return None  # too few rows for the CSR product (use_event_linear's first test, without the weight)
        weight = self.effective_weight()
        if use_event_linear(spikes, weight):
            out = event_linear(spikes, weight, amplitude)
            return out if self.bias is None else out + self.bias
        return None

    def _gather_rows(self, weight: Tensor) -> tuple[Tensor | None, float]:
        """``weight.T`` (``[N_in, N_out]``, contiguous rows) of an input-major weight, else None, and the
        spike density below which the gather is taken for it
        (:data:`~plastic.functional.event_forward.GATHER_DENSITY`, or ``GATHER_DENSITY_LARGE`` above
        :data:`~plastic.functional.event_forward.EVENT_FORWARD_MAX_WEIGHT` elements).

        The layout test and the view are made once per weight tensor and kept
        while the parameter still holds that memory in that layout (the same
        parameter, data pointer, shape and strides: ``.to()`` or an assignment
        to ``weight.data`` make them again).
        """
        kept = self.__dict__.get("_rows_of")
        if (
            kept is not None
            and kept[0] is weight
            and kept[1] == weight.data_ptr()
            and kept[2] == weight.shape
            and kept[3] == weight.stride()
        ):
            return kept[4]  # type: ignore[no-any-return]  # (rows, density), made below
        rows = weight.detach().T if is_input_major(weight) else None
        density = GATHER_DENSITY_LARGE if weight.numel() > EVENT_FORWARD_MAX_WEIGHT else GATHER_DENSITY
        self.__dict__["_rows_of"] = (weight, weight.data_ptr(), weight.shape, weight.stride(), (rows, density))
        return rows, density

    def _propagate_delayed(self, currents: Tensor) -> Tensor:
        out = torch.einsum("...oi,oi->...o", currents, self.effective_weight())
        return out if self.bias is None else out + self.bias

    def pre_view(self, pre: Tensor, *, per_synapse: bool | None = None, fill: float = 0.0) -> Tensor:
        if self._is_per_synapse(pre, per_synapse):
            return rearrange(pre, "n o k -> n 1 o k 1")
        return dense_pre_view(pre)

    def post_view(self, post: Tensor) -> Tensor:
        return dense_post_view(self._check_post(post))

    def weight_grouped(self) -> Tensor:
        return weight_to_grouped(self.weight, 1)

    def ungroup(self, grouped: Tensor) -> Tensor:
        check_tensor(grouped, "grouped", shape=(1, *self.weight.shape))
        return grouped_to_weight(grouped, self.weight.shape)


class LinearDense(_LinearBase):
    """All-to-all connection: ``out = I @ W^T (+ bias)``, weight ``[N_out, N_in]``.

    Args:
        in_features: presynaptic neurons ``N_in``.
        out_features: postsynaptic neurons ``N_out``.
        bias: add a learnable bias ``[N_out]``.
        synapse: ``"delta"`` (also None), ``"exponential"``, ``"spike_filter"``
            or a :class:`~plastic.neural.synapses.Synapse` of shape ``(N_in,)``
            (its ``dt`` must match; with delays its ``max_delay`` must reach
            ``delay``; its ``step_mode`` and ``batch_size`` are set to the
            connection's).
        synapse_kwargs: keyword arguments of the named synapse (``tau``,
            ``amplitude``, ``learnable``, ``interpolation``, ``tolerance``).
        delay: the delay bound ``max_delay`` in time units (enables
            per-synapse delays), or None for none.
        learn_delay: delays are trainable (``delay.requires_grad`` and
            :meth:`Cell.make_updater` includes them).
        learn_delay_init: ``"zeros"``, ``"uniform"`` (in ``[0, max_delay]``)
            or a tensor of the weight's shape (clamped into range).
        weight_init: None (torch's init), a ``(low, high)`` range or a callable
            filling the weight in place.
        dt: step length in time units (``> 0``).
        batch_size, step_mode, device, dtype: state layout.
        weight_layout: how the ``[N_out, N_in]`` weight lies in memory:
            ``"output_major"`` (row by row, as ``nn.Linear``) or
            ``"input_major"`` (its transpose contiguous: each input's outgoing
            weights in one row). Every operation sees the same weight; with
            ``"input_major"`` sparse bool spikes through a delta synapse take
            the event-driven forward at any number of rows
            (:func:`~plastic.functional.event_forward.gather_linear`: each
            spike reads one row), which is what a step of a large, sparsely
            driven layer costs; ``weight.view(...)`` needs ``weight.T`` then.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = False,
        synapse: str | Synapse | None = "delta",
        synapse_kwargs: Mapping[str, object] | None = None,
        delay: float | None = None,
        learn_delay: bool = True,
        learn_delay_init: str | Tensor = "zeros",
        weight_init: WeightInit = None,
        dt: float = 1.0,
        batch_size: int = 1,
        step_mode: str = "single",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        weight_layout: str = "output_major",
    ) -> None:
        in_features = check_count(in_features, "in_features")
        out_features = check_count(out_features, "out_features")
        super().__init__(
            (in_features,),
            (out_features,),
            (out_features, in_features),
            in_features,
            1,
            bias=bias,
            synapse=synapse,
            synapse_kwargs=synapse_kwargs,
            delay=delay,
            learn_delay=learn_delay,
            delay_init=learn_delay_init,
            weight_init=weight_init,
            dt=dt,
            batch_size=batch_size,
            step_mode=step_mode,
            device=device,
            dtype=dtype,
            weight_layout=weight_layout,
        )


class LinearLateral(_LinearBase):
    """Lateral connection within one group: dense without self-connections.

    ``out[b, i] = sum_{j != i} W[i, j] * I[b, j]``; ``weight_mask`` (a buffer,
    ones with a zero diagonal) multiplies the weight in every forward, and the
    diagonal of ``weight`` is zero from construction (updaters leave masked
    entries unchanged). Arguments as :class:`LinearDense` with ``features``
    neurons on both sides.
    """

    def __init__(
        self,
        features: int,
        *,
        bias: bool = False,
        synapse: str | Synapse | None = "delta",
        synapse_kwargs: Mapping[str, object] | None = None,
        delay: float | None = None,
        learn_delay: bool = True,
        learn_delay_init: str | Tensor = "zeros",
        weight_init: WeightInit = None,
        dt: float = 1.0,
        batch_size: int = 1,
        step_mode: str = "single",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        weight_layout: str = "output_major",
    ) -> None:
        features = check_count(features, "features")
        super().__init__(
            (features,),
            (features,),
            (features, features),
            features,
            1,
            bias=bias,
            synapse=synapse,
            synapse_kwargs=synapse_kwargs,
            delay=delay,
            learn_delay=learn_delay,
            delay_init=learn_delay_init,
            weight_init=weight_init,
            dt=dt,
            batch_size=batch_size,
            step_mode=step_mode,
            device=device,
            dtype=dtype,
            weight_layout=weight_layout,
        )
        mask = 1.0 - torch.eye(features, dtype=self.weight.dtype, device=self.weight.device)
        self.weight_mask = mask
        with torch.no_grad():
            self.weight.masked_fill_(mask == 0, 0.0)


class LinearDirect(Connection):
    """One-to-one connection: ``out[b, i] = W[i] * I[b, i] (+ bias[i])``, weight ``[N]``.

    Receptive view: every neuron is its own group (``G = N``, ``O = K = P = 1``).
    Arguments as :class:`LinearDense` with ``features`` neurons on both sides
    (torch's init with ``fan_in = 1``: uniform in ``[-1, 1]``).
    """

    def __init__(
        self,
        features: int,
        *,
        bias: bool = False,
        synapse: str | Synapse | None = "delta",
        synapse_kwargs: Mapping[str, object] | None = None,
        delay: float | None = None,
        learn_delay: bool = True,
        learn_delay_init: str | Tensor = "zeros",
        weight_init: WeightInit = None,
        dt: float = 1.0,
        batch_size: int = 1,
        step_mode: str = "single",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        features = check_count(features, "features")
        super().__init__(
            (features,),
            (features,),
            (features,),
            1,
            features,
            bias=bias,
            synapse=synapse,
            synapse_kwargs=synapse_kwargs,
            delay=delay,
            learn_delay=learn_delay,
            delay_init=learn_delay_init,
            weight_init=weight_init,
            dt=dt,
            batch_size=batch_size,
            step_mode=step_mode,
            device=device,
            dtype=dtype,
        )

    def _propagate(self, currents: Tensor) -> Tensor:
        out = currents * self.weight
        return out if self.bias is None else out + self.bias

    _propagate_delayed = _propagate  # delayed currents have the weight's shape [N], too

    def pre_view(self, pre: Tensor, *, per_synapse: bool | None = None, fill: float = 0.0) -> Tensor:
        # [N] data is ambiguous (presynaptic = per synapse); presynaptic unless told
        if self._is_per_synapse(pre, bool(per_synapse)):
            return rearrange(pre, "n g -> n g 1 1 1")
        return rearrange(pre, "n g -> n g 1 1")

    def post_view(self, post: Tensor) -> Tensor:
        return rearrange(self._check_post(post), "n g -> n g 1 1")

    def weight_grouped(self) -> Tensor:
        return rearrange(self.weight, "g -> g 1 1")

    def ungroup(self, grouped: Tensor) -> Tensor:
        check_tensor(grouped, "grouped", shape=(self.weight.shape[0], 1, 1))
        return rearrange(grouped, "g 1 1 -> g")


class _ConvBase(Connection):
    """Convolution over ``[C_in, *spatial]``; padding exactly as ``torch.nn.ConvNd``.

    Subclasses set ``dims`` (1 or 2); the arguments are those of :class:`Conv1d`.
    """

    supports_delay = False
    dims: int
    geometry: ConvGeometry

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] | str = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        padding_mode: str = "zeros",
        *,
        in_size: int | Sequence[int],
        bias: bool = False,
        synapse: str | Synapse | None = "delta",
        synapse_kwargs: Mapping[str, object] | None = None,
        delay: float | None = None,
        weight_init: WeightInit = None,
        dt: float = 1.0,
        batch_size: int = 1,
        step_mode: str = "single",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if delay is not None:
            raise ValueError(f"delay: per-synapse delays are not supported by {type(self).__name__}; use delay=None")
        geometry, in_shape, out_shape = self._setup(
            self.dims, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, padding_mode, in_size
        )
        super().__init__(
            in_shape, out_shape, geometry.weight_shape, geometry.receptive_size, geometry.groups,
            bias=bias, synapse=synapse, synapse_kwargs=synapse_kwargs, delay=None,
            learn_delay=False, delay_init="zeros", weight_init=weight_init,
            dt=dt, batch_size=batch_size, step_mode=step_mode, device=device, dtype=dtype,
        )  # fmt: skip
        self.geometry = geometry

    def _setup(
        self,
        dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int],
        padding: int | Sequence[int] | str,
        dilation: int | Sequence[int],
        groups: int,
        padding_mode: str,
        in_size: int | Sequence[int],
    ) -> tuple[ConvGeometry, tuple[int, ...], tuple[int, ...]]:
        geometry = ConvGeometry.create(
            dims, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, padding_mode
        )
        if isinstance(in_size, int) and not isinstance(in_size, bool):
            spatial: tuple[int, ...] = (in_size,)
        else:
            spatial = tuple(cast(Sequence[int], in_size))  # a bool fails here (not iterable), as it did
        if len(spatial) != dims or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in spatial):
            raise ValueError(f"in_size: expected {dims} int(s) >= 1, got {in_size!r}")
        for size, (left, right) in zip(spatial, geometry.padding_pairs, strict=True):
            if padding_mode == "reflect" and max(left, right) >= size:
                raise ValueError(
                    f"padding: reflect padding {max(left, right)} must be smaller than the input size {size}"
                )
            if padding_mode == "circular" and max(left, right) > size:
                raise ValueError(f"padding: circular padding {max(left, right)} must not exceed the input size {size}")
        try:
            out_spatial = conv_output_shape(geometry, spatial)
        except ValueError as error:
            raise ValueError(f"in_size: {error}") from None
        return geometry, (in_channels, *spatial), (out_channels, *out_spatial)

    def _propagate(self, currents: Tensor) -> Tensor:
        leading = currents.shape[: currents.ndim - len(self.in_shape)]
        flat = currents.reshape(-1, *self.in_shape)  # (T B) folded into one conv batch
        padded = self.geometry.pad(flat)
        conv = F.conv1d if self.geometry.dims == 1 else F.conv2d
        out = conv(
            padded,
            self.weight,
            self.bias,
            stride=self.geometry.stride,
            padding=0,
            dilation=self.geometry.dilation,
            groups=self.geometry.groups,
        )
        return out.reshape(*leading, *self.out_shape)

    def pre_view(self, pre: Tensor, *, per_synapse: bool | None = None, fill: float = 0.0) -> Tensor:
        if per_synapse:
            raise ValueError("per_synapse: convolutions have no per-synapse data (no delays)")
        self._is_per_synapse(pre, False)
        return conv_pre_view(pre, self.geometry, fill)

    def post_view(self, post: Tensor) -> Tensor:
        return conv_post_view(self._check_post(post), self.geometry)

    def weight_grouped(self) -> Tensor:
        return weight_to_grouped(self.weight, self.geometry.groups)

    def ungroup(self, grouped: Tensor) -> Tensor:
        g, o = self.geometry.groups, self.geometry.out_channels // self.geometry.groups
        check_tensor(grouped, "grouped", shape=(g, o, self.geometry.receptive_size))
        return grouped_to_weight(grouped, self.weight.shape)

    def extra_repr(self) -> str:
        g = self.geometry
        return (
            f"{g.in_channels}, {g.out_channels}, kernel_size={g.kernel_size}, stride={g.stride}, "
            f"padding={g.padding_pairs}, dilation={g.dilation}, groups={g.groups}, "
            f"padding_mode={g.padding_mode!r}, " + super().extra_repr()
        )


class Conv1d(_ConvBase):
    """1-d convolution ``[C_in, L]`` -> ``[C_out, L_out]``, as ``torch.nn.Conv1d``.

    ``out[b, c, x] = bias[c] + sum_{c' in group(c), k} W[c, c', k] * I_pad[b, c', stride*x + dilation*k]``

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, padding_mode: as
            ``torch.nn.Conv1d`` (``padding``: int, tuple, ``"valid"`` or ``"same"``;
            ``padding_mode``: ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``).
        in_size: input length ``L`` (the state is allocated for it).
        bias, synapse, synapse_kwargs, weight_init, dt, batch_size, step_mode, device, dtype: as
            :class:`LinearDense`.
        delay: must be None (per-synapse delays are not supported for
            convolutions; a ``ValueError`` names ``delay`` otherwise).
    """

    dims = 1


class Conv2d(_ConvBase):
    """2-d convolution ``[C_in, H, W]`` -> ``[C_out, H_out, W_out]``, as ``torch.nn.Conv2d``.

    Arguments as :class:`Conv1d`, with ``in_size = (H, W)`` and per-dimension
    pairs allowed for ``kernel_size``, ``stride``, ``padding``, ``dilation``.
    """

    dims = 2
