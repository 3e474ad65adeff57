"""Receptive views: one layout that serves dense and convolutional connections.

A connection's weight is seen as ``[G, O, K]``: ``G`` groups, ``O`` output
channels per group and ``K`` receptive inputs per output channel (for a conv:
input channels per group times kernel positions). Quantities are arranged to
match:

* presynaptic ``[N, *in_shape]``  -> ``[N, G, K, P]``
* postsynaptic ``[N, *out_shape]`` -> ``[N, G, O, P]``

where ``P`` is the number of output positions (1 for dense). Every bilinear
learning rule is then ``dw[g, o, k] = sum_{n, p} post[n, g, o, p] * pre[n, g, k, p]``
(one batched matrix product over ``N * P``), and every kernel rule is an
elementwise function of ``pre[:, :, None] - post[..., None, :]``. ``N`` is any
flattened leading size: the batch, or time times batch for a window.

Padding follows ``torch.nn.Conv1d``/``Conv2d`` exactly: ``padding_mode`` is one
of ``zeros``, ``reflect``, ``replicate``, ``circular``; ``padding`` an int, a
tuple, ``"valid"`` or ``"same"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

import attrs
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from plastic.functional.validation import check_count

__all__ = [
    "ConvGeometry",
    "TorchLayer",
    "as_conv_geometry",
    "conv_output_shape",
    "conv_post_view",
    "conv_pre_view",
    "dense_post_view",
    "dense_pre_view",
    "grouped_to_weight",
    "layer_geometry",
    "resolve_view",
    "weight_to_grouped",
]

_ViewT = TypeVar("_ViewT")

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _tuple(value: int | Sequence[int], dims: int, name: str) -> tuple[int, ...]:
    if isinstance(value, bool):  # not iterable: the TypeError tuple() raised, with the name
        raise TypeError(f"{name}: expected an int or {dims} ints, got {value!r}")
    if isinstance(value, int):
        return (value,) * dims
    result = tuple(value)
    if len(result) != dims or not all(isinstance(v, int) and not isinstance(v, bool) for v in result):
        raise ValueError(f"{name}: expected an int or {dims} ints, got {value!r}")
    return result


def _positive_ints(values: tuple[int, ...], name: str) -> None:
    if any(v < 1 for v in values):
        raise ValueError(f"{name}: expected values >= 1, got {values}")


@attrs.frozen
class ConvGeometry:
    """The shape of a 1-d or 2-d convolution, validated once.

    ``dims`` is 1 or 2. ``padding`` is normalised to explicit per-side amounts
    ``(left, right)`` per spatial dimension in ``padding_pairs``.
    """

    dims: int
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    padding_mode: str
    padding_pairs: tuple[tuple[int, int], ...]

    @classmethod
    def create(
        cls,
        dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] | str = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        padding_mode: str = "zeros",
    ) -> ConvGeometry:
        if dims not in (1, 2):
            raise ValueError(f"dims: expected 1 or 2, got {dims!r}")
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            check_count(value, name)
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"groups: expected a divisor of in_channels ({in_channels}) and "
                f"out_channels ({out_channels}), got {groups}"
            )
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode: expected one of {list(PADDING_MODES)}, got {padding_mode!r}")
        kernel = _tuple(kernel_size, dims, "kernel_size")
        strides = _tuple(stride, dims, "stride")
        dilations = _tuple(dilation, dims, "dilation")
        _positive_ints(kernel, "kernel_size")
        _positive_ints(strides, "stride")
        _positive_ints(dilations, "dilation")
        if isinstance(padding, str):
            if padding == "valid":
                pairs = tuple((0, 0) for _ in range(dims))
            elif padding == "same":
                if any(s != 1 for s in strides):
                    raise ValueError("padding: 'same' requires stride 1, as in torch.nn.Conv")
                same_pairs = []
                for k, d in zip(kernel, dilations, strict=True):
                    total = d * (k - 1)
                    # torch puts the odd extra element on the right side
                    same_pairs.append((total // 2, total - total // 2))
                pairs = tuple(same_pairs)
            else:
                raise ValueError(f"padding: expected an int, ints, 'valid' or 'same', got {padding!r}")
        else:
            amounts = _tuple(padding, dims, "padding")
            if any(p < 0 for p in amounts):
                raise ValueError(f"padding: expected values >= 0, got {amounts}")
            pairs = tuple((p, p) for p in amounts)
        return cls(dims, in_channels, out_channels, kernel, strides, dilations, groups, padding_mode, pairs)

    @property
    def receptive_size(self) -> int:
        """K: inputs per output channel (input channels per group x kernel positions)."""
        return (self.in_channels // self.groups) * math.prod(self.kernel_size)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    def pad(self, inputs: Tensor, fill: float = 0.0) -> Tensor:
        """Pad ``[N, C, *spatial]`` exactly as torch's Conv module does.

        ``fill`` replaces the zeros of ``padding_mode="zeros"``: quantities
        that are not linear in the spikes (event times) pad with NaN, "no event".
        """
        if all(p == (0, 0) for p in self.padding_pairs):
            return inputs
        # F.pad takes the last dimension first
        flat = [amount for pair in reversed(self.padding_pairs) for amount in pair]
        if self.padding_mode == "zeros":
            return F.pad(inputs, flat, value=fill)
        return F.pad(inputs, flat, mode=self.padding_mode)


#: The torch layers taken wherever a view (``view=``) or a geometry is expected.
TorchLayer = nn.Linear | nn.Conv1d | nn.Conv2d


def _conv_layer_geometry(conv: nn.Conv1d | nn.Conv2d) -> ConvGeometry:
    padding = conv.padding if isinstance(conv.padding, str) else tuple(conv.padding)
    return ConvGeometry.create(
        1 if isinstance(conv, nn.Conv1d) else 2,
        conv.in_channels, conv.out_channels, tuple(conv.kernel_size), tuple(conv.stride),
        padding, tuple(conv.dilation), conv.groups, conv.padding_mode,
    )  # fmt: skip


def layer_geometry(layer: nn.Module) -> ConvGeometry | None:
    """The receptive geometry of a torch layer: ``None`` (dense) for an
    ``nn.Linear``, the :class:`ConvGeometry` of an ``nn.Conv1d``/``nn.Conv2d``
    (kernel, stride, padding, dilation, groups, padding_mode). ``TypeError``
    for anything else."""
    if isinstance(layer, nn.Linear):
        return None
    if isinstance(layer, nn.Conv1d | nn.Conv2d):
        return _conv_layer_geometry(layer)
    raise TypeError(f"layer: expected nn.Linear, nn.Conv1d or nn.Conv2d, got {type(layer).__name__}")


def resolve_view(view: _ViewT) -> _ViewT | ConvGeometry | None:
    """A ``view=`` argument with torch layers turned into the internal geometry.

    ``nn.Linear``, ``nn.Conv1d`` and ``nn.Conv2d`` give their
    :func:`layer_geometry`; anything else is returned as it is, for the rule
    to accept or refuse.
    """
    if isinstance(view, TorchLayer):
        return layer_geometry(view)
    return view


def as_conv_geometry(geometry: ConvGeometry | nn.Conv1d | nn.Conv2d) -> ConvGeometry:
    """A convolution's :class:`ConvGeometry`, given itself or as the ``nn.Conv1d``/``nn.Conv2d`` layer."""
    if isinstance(geometry, ConvGeometry):
        return geometry
    if isinstance(geometry, nn.Conv1d | nn.Conv2d):
        return _conv_layer_geometry(geometry)
    raise TypeError(f"geometry: expected a ConvGeometry, an nn.Conv1d or an nn.Conv2d, got {type(geometry).__name__}")


def conv_output_shape(geometry: ConvGeometry | nn.Conv1d | nn.Conv2d, in_spatial: Sequence[int]) -> tuple[int, ...]:
    """Output spatial size for an input spatial size."""
    geometry = as_conv_geometry(geometry)
    out = []
    for size, (left, right), k, s, d in zip(
        in_spatial, geometry.padding_pairs, geometry.kernel_size, geometry.stride, geometry.dilation, strict=True
    ):
        span = size + left + right - d * (k - 1) - 1
        if span < 0:
            raise ValueError(
                f"inputs: spatial size {tuple(in_spatial)} is smaller than the dilated kernel "
                f"{geometry.kernel_size} (dilation {geometry.dilation}) after padding"
            )
        out.append(span // s + 1)
    return tuple(out)


def dense_pre_view(pre: Tensor) -> Tensor:
    """``[N, N_in]`` -> ``[N, 1, N_in, 1]``."""
    return rearrange(pre, "n k -> n 1 k 1")


def dense_post_view(post: Tensor) -> Tensor:
    """``[N, N_out]`` -> ``[N, 1, N_out, 1]``."""
    return rearrange(post, "n o -> n 1 o 1")


def conv_pre_view(pre: Tensor, geometry: ConvGeometry | nn.Conv1d | nn.Conv2d, fill: float = 0.0) -> Tensor:
    """``[N, C_in, *spatial]`` -> ``[N, G, K, P]`` (im2col, grouped).

    Linear in ``pre``, so a trace of the unfolded input equals the unfolded
    trace: traces are kept at the layer's shape and unfolded only when needed.
    ``fill`` is the value of zero padding (NaN for event times).
    """
    geometry = as_conv_geometry(geometry)
    padded = geometry.pad(pre.to(torch.get_default_dtype()) if pre.dtype == torch.bool else pre, fill)
    if geometry.dims == 1:
        columns = F.unfold(
            padded.unsqueeze(2),
            kernel_size=(1, geometry.kernel_size[0]),
            dilation=(1, geometry.dilation[0]),
            stride=(1, geometry.stride[0]),
        )
    else:
        columns = F.unfold(padded, kernel_size=geometry.kernel_size, dilation=geometry.dilation, stride=geometry.stride)
    return rearrange(columns, "n (g k) p -> n g k p", g=geometry.groups)


def conv_post_view(post: Tensor, geometry: ConvGeometry | nn.Conv1d | nn.Conv2d) -> Tensor:
    """``[N, C_out, *out_spatial]`` -> ``[N, G, O, P]``."""
    geometry = as_conv_geometry(geometry)
    flat = post.reshape(post.shape[0], post.shape[1], -1)
    return rearrange(flat, "n (g o) p -> n g o p", g=geometry.groups)


def weight_to_grouped(weight: Tensor, groups: int = 1) -> Tensor:
    """Dense ``[O, K]`` or conv ``[C_out, C_in/g, *k]`` -> ``[G, O/G, K]``."""
    return rearrange(weight.reshape(weight.shape[0], -1), "(g o) k -> g o k", g=groups)


def grouped_to_weight(grouped: Tensor, weight_shape: Sequence[int]) -> Tensor:
    """Inverse of :func:`weight_to_grouped`."""
    return rearrange(grouped, "g o k -> (g o) k").reshape(tuple(weight_shape))
