"""Event-time kernel STDP: the summed kernel values of the most recent spike pairs.

Each neuron's monitor holds the time elapsed since its most recent spike
(``e``; NaN before any spike). For every synapse ``(o, k)`` of group ``g`` and
every sample ``b`` and receptive position ``p`` (one position for dense
connections) the rule evaluates the signed kernel value of

    delta[b, g, o, k, p] = e_pre[b, g, k, p] - e_post[b, g, o, p]  (- d[g, o, k])

(``= t_post - t_pre``, minus the synaptic delay in delay-adjusted rules), splits
it into potentiation and depression magnitudes (:func:`kernel_split`,
:func:`exponential_split`) and sums them over samples and positions::

    potentiation[g, o, k] = sum_{b, p} split(delta[b, g, o, k, p])[0]
    depression[g, o, k]   = sum_{b, p} split(delta[b, g, o, k, p])[1]

:func:`kernel_pair_sums` computes these sums in one of two exact ways:

* **grouped by postsynaptic time** (``method="grouped"``): when the presynaptic
  time does not depend on ``o`` and no per-synapse delay is subtracted,
  ``delta`` takes its value from only ``U`` distinct postsynaptic times
  ``v_1 < ... < v_U`` (a stepped simulation gives at most one per step of the
  recorded history). The split is evaluated on ``[B*P, G, U, K]`` instead of
  ``[B*P, G, O, K]``,

      R[n, g, u, k] = split(e_pre[n, g, k] - v_u),

  and each postsynaptic neuron collects the row of its own time with one
  sparse product (one nonzero per neuron, sample and position)::

      sums[g, o, :] = sum_n R[n, g, index(e_post[n, g, o]), :]

  Postsynaptic neurons without a spike (NaN) collect nothing, as their kernel
  values are NaN. The split must be elementwise (its value at an element
  depends on that element's ``delta`` only), as every kernel of
  :mod:`plastic.functional.kernels` with number-valued parameters is.
* **direct** (``method="direct"``): ``delta`` evaluated for every synapse, a
  few samples at a time into one reused buffer of about ``chunk_elements``
  elements (cache-sized, no ``[B, G, O, K, P]`` temporaries).

``method="auto"`` takes the grouped form when it applies and ``U <= O / 2``.

References: Bi & Poo (1998), J. Neurosci. 18:10464; Song, Miller & Abbott
(2000), Nat. Neurosci. 3:919 (exponential window); the event-time form of
kernel STDP in DESIGN.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

import torch
from einops import rearrange
from torch import Tensor

from plastic.functional.kernels import Kernel, split_kernel_values
from plastic.functional.pair_products import event_product
from plastic.functional.validation import check_choice, check_same_device, check_tensor

__all__ = [
    "CHUNK_ELEMENTS",
    "KernelSplit",
    "exponential_split",
    "kernel_pair_sums",
    "kernel_split",
]

#: ``delta -> (potentiation, depression)``, elementwise, both ``>= 0`` and finite
#: where ``delta`` is NaN (zero there); may overwrite ``delta``.
KernelSplit = Callable[[Tensor], tuple[Tensor, Tensor]]

#: elements of one chunk of the direct and grouped evaluations (4 MiB of float32)
CHUNK_ELEMENTS = 1 << 20


def exponential_split(
    delta: Tensor,
    eta_post: float = 1.0,
    tau_post: float = 20.0,
    eta_pre: float = -1.0,
    tau_pre: float = 20.0,
) -> tuple[Tensor, Tensor]:
    """Split values of the default exponential kernels, in ``delta``'s own storage.

    The same values, element by element, as
    ``split_kernel_values(exp_post(delta, eta_post, tau_post))`` plus
    ``split_kernel_values(exp_pre(delta, eta_pre, tau_pre))``: at each ``delta``
    only one kernel is nonzero (``delta >= 0``: ``eta_post * exp(-delta /
    tau_post)``; ``delta < 0``: ``eta_pre * exp(delta / tau_pre)``; NaN:
    neither), so one exponential per element serves both. Since ``max(eta * m,
    0) = eta * m`` for ``eta >= 0`` and ``max(-eta * m, 0) = |eta| * m`` for
    ``eta < 0`` (``m >= 0``), each branch goes whole to the side its rate's sign
    chooses.

    Args:
        delta: ``t_post - t_pre`` (floating; overwritten: it holds one of the
            results on return).
        eta_post, eta_pre: amplitudes of the causal and acausal branch (numbers).
        tau_post, tau_pre: their time constants (unit of ``dt``, > 0).

    Returns:
        ``(potentiation, depression)``, each ``>= 0``, of ``delta``'s shape.
    """
    delta = check_tensor(delta, "delta", floating=True)
    for name, value in (("eta_post", eta_post), ("eta_pre", eta_pre)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise TypeError(f"{name}: expected a finite number, got {value!r}")
    for name, value in (("tau_post", tau_post), ("tau_pre", tau_pre)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or math.isinf(value):
            raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    causal = delta >= 0  # NaN (no spike) is in neither branch
    magnitude = delta.abs_()
    if tau_post == tau_pre:
        magnitude.div_(-tau_post)
    else:
        magnitude.div_(torch.where(causal, -float(tau_post), -float(tau_pre)))
    magnitude.exp_().nan_to_num_(nan=0.0)  # exp(-|delta| / tau) in [0, 1]; no spike: 0
    # a product with the mask and a difference rather than masked selections (several
    # times faster on CPU), exact all the same: m * 1 = m, m * 0 = 0, m - m = 0, m - 0 = m
    causal_part = magnitude * causal
    acausal_part = magnitude.sub_(causal_part)
    if eta_post not in (1.0, -1.0):
        causal_part.mul_(abs(eta_post))
    if eta_pre not in (1.0, -1.0):
        acausal_part.mul_(abs(eta_pre))
    if eta_post >= 0 and eta_pre >= 0:
        return causal_part.add_(acausal_part), torch.zeros_like(causal_part)
    if eta_post < 0 and eta_pre < 0:
        return torch.zeros_like(causal_part), causal_part.add_(acausal_part)
    if eta_post >= 0:
        return causal_part, acausal_part
    return acausal_part, causal_part


def kernel_split(
    kernel_post: Kernel,
    kernel_pre: Kernel,
    kernel_post_kwargs: Mapping[str, Any] | None = None,
    kernel_pre_kwargs: Mapping[str, Any] | None = None,
) -> KernelSplit:
    """The split of two kernels: ``delta -> (potentiation, depression)``.

    ``potentiation = max(K_post, 0) + max(K_pre, 0)`` and ``depression =
    max(-K_post, 0) + max(-K_pre, 0)``, NaN counted as 0
    (:func:`~plastic.functional.kernels.split_kernel_values`), the kernels
    called as ``kernel(delta, **kwargs)``.
    """
    post_kwargs = dict(kernel_post_kwargs or {})
    pre_kwargs = dict(kernel_pre_kwargs or {})

    def split(delta: Tensor) -> tuple[Tensor, Tensor]:
        potentiation_post, depression_post = split_kernel_values(kernel_post(delta, **post_kwargs))
        potentiation_pre, depression_pre = split_kernel_values(kernel_pre(delta, **pre_kwargs))
        return potentiation_post.add_(potentiation_pre), depression_post.add_(depression_pre)

    return split


def _check_layout(times_pre: Tensor, times_post: Tensor, delay: Tensor | None) -> tuple[int, ...]:
    times_pre = check_tensor(times_pre, "times_pre", floating=True, ndim=5)
    times_post = check_tensor(times_post, "times_post", floating=True, ndim=4)
    batch, groups, outputs, positions = times_post.shape
    lead, pre_groups, pre_outputs, inputs, pre_positions = times_pre.shape
    if (lead, pre_groups, pre_positions) != (batch, groups, positions) or pre_outputs not in (1, outputs):
        raise ValueError(
            f"times_pre: expected shape [B, G, 1 or O, K, P] matching times_post [B, G, O, P] = "
            f"{list(times_post.shape)}, got {list(times_pre.shape)}"
        )
    if times_pre.dtype != times_post.dtype:
        raise TypeError(f"times_post: expected the dtype of times_pre ({times_pre.dtype}), got {times_post.dtype}")
    if delay is not None:
        check_tensor(delay, "delay", floating=True, shape=(groups, outputs, inputs))
        check_same_device(times_pre=times_pre, times_post=times_post, delay=delay)
    else:
        check_same_device(times_pre=times_pre, times_post=times_post)
    return batch, groups, outputs, inputs, positions


def kernel_pair_sums(
    times_pre: Tensor,
    times_post: Tensor,
    split: KernelSplit,
    *,
    delay: Tensor | None = None,
    method: Literal["auto", "grouped", "direct"] = "auto",
    chunk_elements: int = CHUNK_ELEMENTS,
) -> tuple[Tensor, Tensor]:
    """Potentiation and depression of event-time kernel STDP, summed over samples and positions.

    Args:
        times_pre: presynaptic event times ``[B, G, 1, K, P]`` (or ``[B, G, O,
            K, P]`` when each synapse sees its own presynaptic time, e.g. read
            at its delay); NaN: no spike.
        times_post: postsynaptic event times ``[B, G, O, P]``; NaN: no spike.
        split: ``delta -> (potentiation, depression)``, elementwise
            (:func:`kernel_split`, :func:`exponential_split`).
        delay: per-synapse delays ``[G, O, K]`` subtracted from ``delta``
            (delay-adjusted rules), or None.
        method: ``"grouped"`` (by postsynaptic time; needs ``[B, G, 1, K, P]``
            presynaptic times and no ``delay``), ``"direct"``, or ``"auto"``
            (see the module docs).
        chunk_elements: elements per chunk of the evaluation (> 0).

    Returns:
        ``(potentiation, depression)``, each ``[G, O, K]`` and ``>= 0``.
    """
    _batch, _groups, outputs, _inputs, _positions = _check_layout(times_pre, times_post, delay)
    check_choice(method, "method", ("auto", "grouped", "direct"))
    if isinstance(chunk_elements, bool) or not isinstance(chunk_elements, int) or chunk_elements <= 0:
        raise ValueError(f"chunk_elements: expected an int > 0, got {chunk_elements!r}")
    groupable = times_pre.shape[2] == 1 and delay is None
    if method == "grouped" and not groupable:
        raise ValueError(
            "method: 'grouped' needs presynaptic times of shape [B, G, 1, K, P] and no delay; use 'direct' or 'auto'"
        )
    if method != "direct" and groupable:
        samples_pre = rearrange(times_pre, "b g 1 k p -> (b p) g k")
        samples_post = rearrange(times_post, "b g o p -> (b p) g o")
        spiked = ~torch.isnan(samples_post)
        values, index = torch.unique(samples_post[spiked], return_inverse=True)
        if method == "grouped" or 2 * values.numel() <= outputs:
            return _grouped_sums(samples_pre, spiked, values, index, split, chunk_elements)
    return _direct_sums(times_pre, times_post, split, delay, chunk_elements)


def _direct_sums(
    times_pre: Tensor, times_post: Tensor, split: KernelSplit, delay: Tensor | None, chunk_elements: int
) -> tuple[Tensor, Tensor]:
    """Every synapse's ``delta``, a few samples at a time into one reused buffer."""
    batch, groups, outputs, positions = times_post.shape
    inputs = times_pre.shape[3]
    per_sample = groups * outputs * inputs * positions
    step = max(1, min(batch, chunk_elements // max(per_sample, 1)))
    potentiation = times_pre.new_zeros(groups, outputs, inputs)
    depression = times_pre.new_zeros(groups, outputs, inputs)
    buffer = times_pre.new_empty(step, groups, outputs, inputs, positions)
    post = times_post.unsqueeze(3)  # [B, G, O, 1, P]
    delay_view = None if delay is None else delay.unsqueeze(-1)  # [G, O, K, 1]
    for start in range(0, batch, step):
        stop = min(batch, start + step)
        delta = buffer[: stop - start]
        torch.sub(times_pre[start:stop], post[start:stop], out=delta)
        if delay_view is not None:
            delta.sub_(delay_view)
        chunk_potentiation, chunk_depression = split(delta)
        # sum over the chunk's samples and positions in one reduction each
        potentiation.add_(chunk_potentiation.sum(dim=(0, 4)))
        depression.add_(chunk_depression.sum(dim=(0, 4)))
    return potentiation, depression


def _grouped_sums(
    samples_pre: Tensor,
    spiked: Tensor,
    values: Tensor,
    index: Tensor,
    split: KernelSplit,
    chunk_elements: int,
) -> tuple[Tensor, Tensor]:
    """The grouped form: split on ``[n, G, U, K]``, collected per neuron by a sparse product.

    ``samples_pre`` ``[N, G, K]``, ``spiked`` ``[N, G, O]`` (postsynaptic
    neurons with a time), ``values`` ``[U]`` their distinct times, ``index``
    the position in ``values`` of each time of ``spiked``.
    """
    samples, groups, inputs = samples_pre.shape
    outputs = spiked.shape[2]
    distinct = values.numel()
    potentiation = samples_pre.new_zeros(groups, outputs, inputs)
    depression = samples_pre.new_zeros(groups, outputs, inputs)
    if distinct == 0:  # no postsynaptic spike anywhere
        return potentiation, depression
    # one-hot of each neuron's time: event_product collects, for each (g, o), the rows
    # (n, g, u) of the neurons' own times (one sparse entry per spiked neuron)
    time_index = torch.zeros(spiked.shape, dtype=torch.long, device=spiked.device)
    time_index[spiked] = index
    step = max(1, min(samples, chunk_elements // (groups * distinct * inputs)))
    buffer = samples_pre.new_empty(step, groups, distinct, inputs)
    one_hot = torch.empty(step, groups, outputs, distinct, dtype=torch.bool, device=spiked.device)
    values_view = values.view(1, 1, distinct, 1)
    for start in range(0, samples, step):
        stop = min(samples, start + step)
        count = stop - start
        delta = buffer[:count]
        torch.sub(samples_pre[start:stop].unsqueeze(2), values_view, out=delta)
        chunk_potentiation, chunk_depression = split(delta)
        events = one_hot[:count].zero_()
        events.scatter_(3, time_index[start:stop].unsqueeze(3), spiked[start:stop].unsqueeze(3))
        # [n, G, U, K] -> [n, G, K, U]: the time plays the receptive position of the product
        event_product(events, chunk_potentiation.transpose(2, 3), out=potentiation)
        event_product(events, chunk_depression.transpose(2, 3), out=depression)
    return potentiation, depression
