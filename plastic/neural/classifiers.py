"""Read a label out of unsupervised spiking neurons: Diehl & Cook's max-rate assignment.

Assignment. With ``c[s, n]`` the spike count of neuron ``n`` on training sample
``s`` of label ``y_s``, each neuron's mean response to class ``k`` is::

    r[k, n] = (1 / |S_k|) * sum_{s in S_k} c[s, n],      S_k = {s : y_s = k}

and the neuron is assigned ``a_n = argmax_k r[k, n]`` over the classes seen in
training (``|S_k| > 0``). A neuron with ``r[k, n] = 0`` for every seen class
(it never fired) gets ``a_n = -1`` and takes no part in prediction. Ties go to
the lowest class index.

Prediction ("all" voting). For a sample with counts ``c[n]``::

    score[k] = (1 / |A_k|) * sum_{n in A_k} c[n],      A_k = {n : a_n = k}

and the label is ``argmax_k score[k]``; a class with no neuron (``|A_k| = 0``)
scores ``-inf``. The "proportion" variant weights each count by the share of
the neuron's mean response that goes to its class,
``p[n, k] = r[k, n] / sum_j r[j, n]``::

    score[k] = (1 / |A_k|) * sum_{n in A_k} c[n] * p[n, k]

Reference: Diehl & Cook (2015), "Unsupervised learning of digit recognition
using spike-timing-dependent plasticity", Front. Comput. Neurosci. 9:99
(section 2.5: "each neuron is assigned to the class for which it showed the
highest average response ... the predicted digit is the class whose assigned
neurons have the highest average firing rate").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from plastic.functional.validation import check_int_at_least, check_tensor

__all__ = ["MaxRateClassifier"]


class MaxRateClassifier(nn.Module):
    """Label neurons by the class they respond to most, predict by the best-responding group.

    Args:
        num_neurons: number of neurons ``N`` whose spike counts are read.
        num_classes: number of classes ``C``; labels are ``0 .. C-1``.

    Buffers (all in ``state_dict``):
        ``assignments`` (long ``[N]``): class of each neuron, ``-1`` unassigned.
        ``proportions`` (float ``[N, C]``): share of each neuron's mean
        response per class (for ``predict(..., proportion=True)``).
        ``response_sums`` (float ``[C, N]``) and ``class_samples`` (long ``[C]``):
        running sums for :meth:`update`; memory does not grow with the data.

    Use ``fit(counts, labels)`` on one training set, or ``update(counts,
    labels)`` per batch followed by ``assign()``. Spike counts are ``[S, N]``
    (samples, neurons): e.g. a window of output spikes summed over time.
    """

    assignments: Tensor
    proportions: Tensor
    response_sums: Tensor
    class_samples: Tensor

    def __init__(self, num_neurons: int, num_classes: int) -> None:
        super().__init__()
        self.num_neurons = check_int_at_least(num_neurons, "num_neurons", 1)
        self.num_classes = check_int_at_least(num_classes, "num_classes", 1)
        self.register_buffer("assignments", torch.full((num_neurons,), -1, dtype=torch.long))
        self.register_buffer("proportions", torch.zeros(num_neurons, num_classes))
        self.register_buffer("response_sums", torch.zeros(num_classes, num_neurons))
        self.register_buffer("class_samples", torch.zeros(num_classes, dtype=torch.long))

    # -- validation ---------------------------------------------------------------
    def _check_counts(self, spike_counts: Tensor) -> Tensor:
        check_tensor(spike_counts, "spike_counts", ndim=2, finite=True)
        if spike_counts.shape[1] != self.num_neurons:
            raise ValueError(
                f"spike_counts: expected shape (samples, {self.num_neurons}), got {tuple(spike_counts.shape)}"
            )
        if spike_counts.is_complex():
            raise TypeError(f"spike_counts: expected real counts, got dtype {spike_counts.dtype}")
        if spike_counts.device != self.assignments.device:
            raise ValueError(
                f"spike_counts: expected a tensor on {self.assignments.device} (the classifier's), "
                f"got {spike_counts.device}"
            )
        if spike_counts.numel() and bool((spike_counts < 0).any()):
            raise ValueError("spike_counts: expected non-negative counts")
        return spike_counts.to(self.response_sums.dtype)

    def _check_labels(self, labels: Tensor, samples: int) -> Tensor:
        check_tensor(labels, "labels", ndim=1, device=self.assignments.device)
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise TypeError(f"labels: expected an integer tensor, got dtype {labels.dtype}")
        if labels.shape[0] != samples:
            raise ValueError(f"labels: expected {samples} labels (one per row of spike_counts), got {labels.shape[0]}")
        if labels.numel() and bool(((labels < 0) | (labels >= self.num_classes)).any()):
            bad = labels[(labels < 0) | (labels >= self.num_classes)][0].item()
            raise ValueError(f"labels: expected values in [0, {self.num_classes - 1}], found {bad}")
        return labels.long()

    # -- training -----------------------------------------------------------------
    def update(self, spike_counts: Tensor, labels: Tensor) -> None:
        """Add a batch to the running per-class sums (``response_sums``, ``class_samples``)."""
        counts = self._check_counts(spike_counts)
        labels = self._check_labels(labels, counts.shape[0])
        self.response_sums.index_add_(0, labels, counts)
        self.class_samples += torch.bincount(labels, minlength=self.num_classes)

    def mean_responses(self) -> Tensor:
        """``r[k, n]``: mean count of neuron ``n`` over the samples of class ``k`` (NaN for unseen classes)."""
        seen = self.class_samples > 0
        divisor = self.class_samples.clamp(min=1).to(self.response_sums.dtype)
        means = self.response_sums / divisor[:, None]
        return means.masked_fill(~seen[:, None], float("nan"))

    def assign(self) -> Tensor:
        """Set ``assignments`` (and ``proportions``) from the accumulated sums; returns ``assignments``.

        Raises ``RuntimeError`` when nothing has been accumulated.
        """
        seen = self.class_samples > 0
        if not bool(seen.any()):
            raise RuntimeError("assign: no samples accumulated; call update() or fit() first")
        means = self.mean_responses()
        # Unseen classes cannot win: -inf before the argmax (ties: lowest index).
        best_value, best_class = means.masked_fill(~seen[:, None], float("-inf")).max(dim=0)
        assignments = torch.where(best_value > 0, best_class, torch.full_like(best_class, -1))
        seen_means = means.masked_fill(~seen[:, None], 0.0)
        totals = seen_means.sum(dim=0)
        proportions = (seen_means / totals.clamp(min=torch.finfo(totals.dtype).tiny)).T
        self.assignments.copy_(assignments)
        self.proportions.copy_(proportions)
        return self.assignments

    def fit(self, spike_counts: Tensor, labels: Tensor) -> MaxRateClassifier:
        """Assign from one training set (forgets earlier accumulations); returns ``self``."""
        counts = self._check_counts(spike_counts)
        labels = self._check_labels(labels, counts.shape[0])
        self.clear()
        self.update(counts, labels)
        self.assign()
        return self

    # -- inference ----------------------------------------------------------------
    def scores(self, spike_counts: Tensor, *, proportion: bool = False) -> Tensor:
        """Per-class scores ``[S, C]`` (mean count of each class's neurons; ``-inf`` for classes without neurons)."""
        counts = self._check_counts(spike_counts)
        assigned = self.assignments >= 0
        if not bool(assigned.any()):
            raise RuntimeError("predict: no neuron is assigned a class; call fit() or assign() first")
        # membership[n, k] = 1 where neuron n is assigned class k (rows of unassigned neurons are 0).
        membership = F.one_hot(self.assignments.clamp(min=0), self.num_classes).to(counts.dtype)
        membership = membership * assigned[:, None].to(counts.dtype)
        group_sizes = membership.sum(dim=0)
        weights = membership * self.proportions.to(counts.dtype) if proportion else membership
        sums = counts @ weights
        scores = sums / group_sizes.clamp(min=1)
        return scores.masked_fill(group_sizes == 0, float("-inf"))

    def predict(self, spike_counts: Tensor, *, proportion: bool = False) -> Tensor:
        """Predicted labels (long ``[S]``): the class whose neurons fired most on average.

        Ties (e.g. a sample with no spikes) go to the lowest class index.
        """
        return self.scores(spike_counts, proportion=proportion).argmax(dim=1)

    def forward(self, spike_counts: Tensor) -> Tensor:
        return self.predict(spike_counts)

    # -- state --------------------------------------------------------------------
    def clear(self) -> None:
        """Zero the running sums (keeps ``assignments``)."""
        self.response_sums.zero_()
        self.class_samples.zero_()

    def reset(self) -> None:
        """Back to the initial state: no sums, every neuron unassigned."""
        self.clear()
        self.assignments.fill_(-1)
        self.proportions.zero_()

    def extra_repr(self) -> str:
        return f"num_neurons={self.num_neurons}, num_classes={self.num_classes}"
