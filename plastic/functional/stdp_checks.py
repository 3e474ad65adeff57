"""The argument checks of the pair STDP rules (:mod:`plastic.functional.stdp`), before any computation.

:func:`check_stdp_inputs` checks every argument of :func:`~plastic.functional.stdp.stdp_step`,
:func:`~plastic.functional.stdp.stdp_window` and :func:`~plastic.functional.stdp.stdp_window_net`
in order, with errors that name the argument, and returns them resolved (:class:`CheckedInputs`):
bool spike windows, the carried traces (zeros when not given), per-step decays
(given directly or ``exp(-dt/tau)`` / ``1 - dt/tau``), the trace jumps as floats.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from plastic.functional.bilinear import check_batch_reduction, check_window_spikes
from plastic.functional.pair_products import METHODS
from plastic.functional.pairing_schemes import STATEFUL_PAIRINGS, STDP_PAIRINGS
from plastic.functional.traces import decay_factor
from plastic.functional.validation import check_choice, check_positive, check_same_device, check_tensor

__all__ = [
    "CheckedInputs",
    "Scalar",
    "check_carried_together",
    "check_real",
    "check_stdp_inputs",
    "finite_change_limit",
    "largest_magnitude",
    "pair_change_bound",
    "resolve_decay",
]

Scalar = float | Tensor


def resolve_decay(
    decay: Scalar | None, tau: Scalar | None, dt: float, exact: bool, side: str, trace_shape: torch.Size
) -> Scalar:
    """The per-step decay of one side: given directly, or ``decay_factor(dt, tau, exact)``."""
    if decay is not None and tau is not None:
        raise ValueError(f"decay_{side}: give decay_{side} or tau_{side}, not both")
    if decay is None:
        if tau is None:
            raise ValueError(f"decay_{side}: expected decay_{side} or tau_{side} (with dt)")
        decay = decay_factor(dt, tau, exact=exact)
        name = f"tau_{side}"
    else:
        name = f"decay_{side}"
    if isinstance(decay, Tensor):
        check_tensor(decay, name, floating=True, finite=True)
        if decay.numel() and not bool(((decay >= 0) & (decay <= 1)).all()):
            raise ValueError(f"{name}: expected decay factors in [0, 1]")
        try:
            broadcast = torch.broadcast_shapes(decay.shape, trace_shape)
        except RuntimeError:
            broadcast = None
        if broadcast != trace_shape:
            raise ValueError(
                f"{name}: shape {tuple(decay.shape)} does not broadcast to the trace shape {tuple(trace_shape)}"
            )
        return decay
    if isinstance(decay, bool) or not isinstance(decay, (int, float)):
        raise TypeError(f"{name}: expected a real number or a tensor, got {type(decay).__name__}")
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"{name}: expected a decay factor in [0, 1], got {decay!r}")
    return float(decay)


def check_real(value: object, name: str) -> float:
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite real number, got {value!r}")
    return float(value)


class CheckedInputs(NamedTuple):
    spikes_pre: Tensor  # bool [T, B, *in]
    spikes_post: Tensor  # bool [T, B, *out]
    trace_pre: Tensor  # [B, *in]
    trace_post: Tensor  # [B, *out]
    decay_pre: Scalar
    decay_post: Scalar
    amplitude_pre: float
    amplitude_post: float
    pairing_state: object = None  # checked against the layout by _stdp_window


def check_stdp_inputs(
    spikes_pre: object,
    spikes_post: object,
    trace_pre: object,
    trace_post: object,
    *,
    window: bool,
    decay_pre: Scalar | None,
    decay_post: Scalar | None,
    tau_pre: Scalar | None,
    tau_post: Scalar | None,
    dt: float,
    exact: bool,
    amplitude_pre: object,
    amplitude_post: object,
    batch_reduction: object,
    method: object,
    pairing: object = "all",
    pairing_state: object = None,
) -> CheckedInputs:
    """Every argument check of the pair rules, before any computation (errors name the argument).

    ``window``: spikes ``[T, B, *shape]`` (else one step ``[B, *shape]``,
    named ``spike_pre``/``spike_post``, returned as a window of one step).
    Missing traces become zeros; ``tau``/``dt`` become per-step decays.
    """
    lead = 2 if window else 1
    pre, post = check_window_spikes(spikes_pre, spikes_post, step=not window)
    dt = check_positive(dt, "dt")
    if not isinstance(exact, bool):
        raise TypeError(f"exact: expected a bool, got {type(exact).__name__}")
    check_batch_reduction(batch_reduction)
    check_choice(method, "method", METHODS)
    state_pre_shape, state_post_shape = pre.shape[lead - 1 :], post.shape[lead - 1 :]
    traces = {}
    for name, value, shape in (
        ("trace_pre", trace_pre, state_pre_shape),
        ("trace_post", trace_post, state_post_shape),
    ):
        if value is not None:
            traces[name] = check_tensor(value, name, shape=shape, floating=True, finite=True)
    if len(traces) == 2 and traces["trace_pre"].dtype != traces["trace_post"].dtype:
        raise TypeError(
            f"trace_post: expected the dtype of trace_pre ({traces['trace_pre'].dtype}), "
            f"got {traces['trace_post'].dtype}"
        )
    check_same_device(spikes_pre=pre, **traces)
    check_choice(pairing, "pairing", STDP_PAIRINGS)
    check_carried_together(pairing, pairing_state, sorted(traces))
    dtype = next((t.dtype for t in traces.values()), torch.get_default_dtype())
    if "trace_pre" not in traces:
        traces["trace_pre"] = torch.zeros(state_pre_shape, dtype=dtype, device=pre.device)
    if "trace_post" not in traces:
        traces["trace_post"] = torch.zeros(state_post_shape, dtype=dtype, device=pre.device)
    resolved_pre = resolve_decay(decay_pre, tau_pre, dt, exact, "pre", state_pre_shape)
    resolved_post = resolve_decay(decay_post, tau_post, dt, exact, "post", state_post_shape)
    if pairing == "presynaptic_centred" and isinstance(resolved_pre, Tensor):
        if resolved_pre.numel() != 1:
            name = "decay_pre" if decay_pre is not None else "tau_pre"
            raise ValueError(
                f"{name}: the 'presynaptic_centred' scheme needs one presynaptic decay for all neurons, "
                f"got shape {tuple(resolved_pre.shape)}"
            )
        resolved_pre = float(resolved_pre.item())
    amplitude_pre = check_real(amplitude_pre, "amplitude_pre")
    amplitude_post = check_real(amplitude_post, "amplitude_post")
    if not window:
        pre, post = pre.unsqueeze(0), post.unsqueeze(0)
    return CheckedInputs(
        pre, post, traces["trace_pre"], traces["trace_post"], resolved_pre, resolved_post, amplitude_pre,
        amplitude_post, pairing_state,
    )  # fmt: skip


def check_carried_together(pairing: object, pairing_state: object, given_traces: list[str]) -> None:
    """A stateful scheme continues from its traces and its pairing state together (all or none)."""
    if pairing in STATEFUL_PAIRINGS:
        if pairing_state is None and given_traces:
            raise ValueError(
                f"pairing_state: the {pairing!r} scheme carries a PairingState besides the traces; "
                f"pass the one returned with {given_traces[0]} (or neither)"
            )
        if pairing_state is not None and len(given_traces) < 2:
            missing = "trace_pre" if "trace_pre" not in given_traces else "trace_post"
            raise ValueError(
                f"{missing}: the {pairing!r} scheme continues from the traces and the pairing_state "
                "returned together; pass both traces with it"
            )
    elif pairing_state is not None:
        raise ValueError(
            f"pairing_state: only the schemes {list(STATEFUL_PAIRINGS)} carry one; pairing {pairing!r} expects None"
        )


def pair_change_bound(
    steps: int,
    batch: int,
    eta_post: float,
    eta_pre: float,
    amplitude_pre: float,
    amplitude_post: float,
    decay_pre: float,
    decay_post: float,
    trace_pre: Tensor | float,
    trace_post: Tensor | float,
) -> float:
    """An upper bound on ``|dw|`` of one window of all-to-all pair STDP without weight dependence.

    For 0/1 spikes, ``steps`` steps of ``batch`` samples (summed or averaged),
    carried traces ``trace_pre`` / ``trace_post`` and per-step decays of
    magnitude at most 1, every trace stays within ``M + |A| T`` (``M`` its
    carried magnitude, ``|A|`` its jump), and each synapse pairs at most ``B T``
    spikes of each side::

        |dw| <= B T (|eta_post| (M_pre + |A_pre| T) + |eta_pre| (M_post + |A_post| T))

    Every partial sum of the change is within it as well (up to rounding), so
    a bound far below the dtype's largest value proves the change finite: the
    one-product window skips a pass over it (issue 15). ``inf`` (or NaN) where
    a decay exceeds 1 in magnitude (Euler decays with ``dt > 2 tau``) or a
    trace is not finite. A trace may be given as its ``M`` already
    (:func:`largest_magnitude`, a caller that also needs it).
    """
    if abs(decay_pre) > 1.0 or abs(decay_post) > 1.0:
        return math.inf
    largest_pre = largest_magnitude(trace_pre) if isinstance(trace_pre, Tensor) else trace_pre
    largest_post = largest_magnitude(trace_post) if isinstance(trace_post, Tensor) else trace_post
    reach_pre = largest_pre + abs(amplitude_pre) * steps
    reach_post = largest_post + abs(amplitude_post) * steps
    return batch * steps * (abs(eta_post) * reach_pre + abs(eta_pre) * reach_post)


def finite_change_limit(dtype: torch.dtype) -> float:
    """The largest :func:`pair_change_bound` that proves a change of ``dtype`` finite: a thousandth of
    the dtype's largest value (room for the rounding of the partial sums)."""
    return torch.finfo(dtype).max / 1000


def largest_magnitude(values: Tensor) -> float:
    """``max |values|`` as a float: 0 for an empty tensor, NaN or inf where an element is (NaN
    propagates through the maximum), so it is finite exactly where every element is."""
    return float(values.abs().max()) if values.numel() else 0.0
