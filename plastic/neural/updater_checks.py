"""The checks of :class:`~plastic.neural.updater.Updater`'s arguments, per parameter.

Settings given once or as ``{parameter name: setting}`` (:func:`per_name`),
bounding, clamp pairs, masks and accumulated magnitudes, and the dotted
parameter paths of a module and the buffer names they give (:func:`resolve_path`,
:func:`buffer_key`, :func:`buffer_names`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from plastic.functional.bounding import Bounding
from plastic.functional.validation import check_tensor

__all__ = [
    "BufferNames",
    "accumulator_key",
    "buffer_key",
    "buffer_names",
    "check_bounding",
    "check_clamp_pair",
    "check_magnitude",
    "check_mask",
    "check_masks",
    "check_param_names",
    "check_real_like",
    "count_key",
    "mask_key",
    "per_name",
    "resolve_path",
]

ClampBounds = tuple[float | None, float | None]


def buffer_key(name: str) -> str:
    # Buffer names may not contain "."; dotted parameter paths are flattened.
    return name.replace(".", "__")


class BufferNames(NamedTuple):
    """The buffer names of one parameter's accumulators, counts and mask."""

    potentiation: str
    depression: str
    potentiation_count: str
    depression_count: str
    mask: str


@functools.cache
def accumulator_key(name: str, kind: str) -> str:
    """The buffer name of ``name``'s ``kind`` (potentiation or depression) accumulator."""
    return f"{buffer_key(name)}_{kind}"


@functools.cache
def count_key(name: str, kind: str) -> str:
    """The buffer name of the count of ``name``'s ``kind`` accumulator."""
    return f"{accumulator_key(name, kind)}_count"


@functools.cache
def mask_key(name: str) -> str:
    """The buffer name of ``name``'s mask."""
    return f"{buffer_key(name)}_mask"


@functools.cache
def buffer_names(name: str) -> BufferNames:
    """The buffer names of parameter ``name`` (formatted once per name: an updater reads them several
    times per call)."""
    return BufferNames(
        accumulator_key(name, "potentiation"),
        accumulator_key(name, "depression"),
        count_key(name, "potentiation"),
        count_key(name, "depression"),
        mask_key(name),
    )


def resolve_path(module: nn.Module, name: str) -> object:
    target: object = module
    for part in name.split("."):
        target = getattr(target, part, None)
        if target is None:
            return None
    return target


def check_clamp_pair(value: object, name: str) -> ClampBounds:
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ValueError(f"{name}: expected a pair (w_min, w_max) with None for no bound, got {value!r}")
    low, high = value
    for bound_value in (low, high):
        if bound_value is not None and (isinstance(bound_value, bool) or not isinstance(bound_value, int | float)):
            raise TypeError(f"{name}: expected real bounds or None, got {value!r}")
    if low is not None and high is not None and not float(low) <= float(high):
        raise ValueError(f"{name}: expected w_min <= w_max, got {value!r}")
    return (
        None if low is None else float(low),
        None if high is None else float(high),
    )


def check_bounding(value: object, name: str) -> Bounding:
    if not isinstance(value, Bounding):
        raise TypeError(f"{name}: expected a Bounding, got {type(value).__name__}")
    return value


def per_name(
    value: object,
    argument: str,
    names: tuple[str, ...],
    check: Callable[[object, str], object],
) -> dict[str, object]:
    """Expand a single setting or a dict per name into a dict over ``names``."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        result = {}
        for name, item in value.items():
            if name not in names:
                raise ValueError(f"{argument}: {name!r} is not one of params {list(names)}")
            result[name] = check(item, argument)
        return result
    checked = check(value, argument)
    return dict.fromkeys(names, checked)


def check_mask(value: object, name: str, param: Tensor) -> Tensor:
    mask = check_tensor(value, "mask", shape=param.shape, device=param.device)
    if mask.dtype != torch.bool:
        if mask.is_complex() or not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(f"mask: {name!r} expected bool or {{0, 1}} values")
        mask = mask != 0
    return mask.detach().clone()


def check_param_names(module: nn.Module, params: object) -> tuple[str, ...]:
    """``params``: a sequence of distinct names of tensors of ``module`` (dotted paths reach submodules)."""
    if isinstance(params, str) or not isinstance(params, Sequence):
        raise TypeError(f"params: expected a sequence of parameter names, got {params!r}")
    names = tuple(params)
    if not names:
        raise ValueError("params: expected at least one parameter name")
    if len(set(names)) != len(names):
        raise ValueError(f"params: duplicate names in {list(names)}")
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"params: expected names as str, got {name!r}")
        if not isinstance(resolve_path(module, name), Tensor):
            raise ValueError(f"params: {name!r} is not a parameter or tensor attribute of {type(module).__name__}")
    return names


def check_masks(mask: object, names: tuple[str, ...], module: nn.Module) -> dict[str, Tensor]:
    """``mask``: None or a dict of masks per name of ``names`` (:func:`check_mask`)."""
    if mask is None:
        return {}
    if not isinstance(mask, Mapping):
        raise TypeError(f"mask: expected a dict of tensors per name, got {type(mask).__name__}")
    masks = {}
    for name, value in mask.items():
        if name not in names:
            raise ValueError(f"mask: {name!r} is not one of params {list(names)}")
        masks[name] = check_mask(value, name, resolve_path(module, name))  # type: ignore[arg-type]
    return masks


def check_real_like(value: object, argument: str, param: Tensor) -> Tensor:
    """A real tensor of ``param``'s shape and device (and dtype, for a floating ``param``)."""
    tensor = check_tensor(value, argument, shape=param.shape, device=param.device)
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise TypeError(f"{argument}: expected a real-valued tensor, got dtype {tensor.dtype}")
    if param.is_floating_point() and tensor.dtype != param.dtype:
        # no silent casts: a float64 rule on a float32 weight is a mistake
        raise TypeError(f"{argument}: expected dtype {param.dtype} (the parameter's), got dtype {tensor.dtype}")
    return tensor


def check_magnitude(value: object, argument: str, param: Tensor) -> Tensor:
    tensor = check_real_like(value, argument, param)
    if tensor.numel():
        if tensor.is_floating_point():
            # one pass: NaN propagates into both extremes and fails both comparisons
            low, high = torch.aminmax(tensor)
            valid = bool(low >= 0) and bool(high < float("inf"))
        else:
            valid = bool((tensor >= 0).all())
        if not valid:
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise ValueError(f"{argument}: expected finite values, found NaN or inf")
            raise ValueError(f"{argument}: expected non-negative magnitudes, found negative values")
    return tensor
