"""SynapseFilter, Delay, VotingLayer and MaxRateClassifier against hand-computed
cases and naive per-step / per-element loops written here."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from plastic.neural.classifiers import MaxRateClassifier
from plastic.neural.layers import Delay, SynapseFilter, VotingLayer

DTYPES = st.sampled_from([torch.float32, torch.float64])


def random_spikes(seed: int, shape: tuple[int, ...], probability: float = 0.4) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=generator) < probability


def filter_reference(spikes: list[float], tau: float, current: float = 0.0) -> list[float]:
    """The spike filter of one element, in plain Python floats."""
    out = []
    for s in spikes:
        current = current - (1.0 - s) * current / tau + s
        out.append(current)
    return out


# ---------------------------------------------------------------- SynapseFilter


def test_synapse_filter_hand_computed_train() -> None:
    # tau = 2: I1 = 0 + 1 = 1; I2 = 1 - 1/2 = 0.5; I3 = 0.5 + 1 = 1.5 (no decay at a
    # spike); I4 = 1.5 - 0.75 = 0.75.
    spikes = torch.tensor([[True], [False], [True], [False]])[:, :, None]  # [T=4, B=1, N=1]
    layer = SynapseFilter(2.0, step_mode="window")
    currents = layer(spikes)
    assert currents.flatten().tolist() == [1.0, 0.5, 1.5, 0.75]
    assert layer.current.flatten().tolist() == [0.75]
    # tau = 4, two neurons, as single steps: [1, 0], [1, 1], [0, 0], [0, 1]
    layer = SynapseFilter(4.0)
    steps = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]], [[0.0, 0.0]], [[0.0, 1.0]]])
    outputs = [layer(step).flatten().tolist() for step in steps]
    # neuron 0: 1, 2, 1.5, 1.125; neuron 1: 0, 1, 0.75, 1.75
    assert outputs == [[1.0, 0.0], [2.0, 1.0], [1.5, 0.75], [1.125, 1.75]]


@given(
    steps=st.integers(1, 6),
    batch=st.integers(1, 3),
    neurons=st.integers(1, 4),
    tau=st.floats(1.0, 20.0),
    learnable=st.booleans(),
    dtype=DTYPES,
    seed=st.integers(0, 2**16),
)
def test_synapse_filter_window_equals_single_steps_and_reference(
    steps: int, batch: int, neurons: int, tau: float, learnable: bool, dtype: torch.dtype, seed: int
) -> None:
    if learnable and tau <= 1.0:
        tau = 1.5
    spikes = random_spikes(seed, (steps, batch, neurons)).to(dtype)
    # .to(dtype): a learnable 1/tau is a parameter, stored in the network's dtype.
    window_layer = SynapseFilter(tau, learnable, step_mode="window").to(dtype)
    single_layer = SynapseFilter(tau, learnable).to(dtype)
    with torch.no_grad():
        window = window_layer(spikes)
        single = torch.stack([single_layer(step) for step in spikes])
    assert window.dtype == dtype and single.dtype == dtype
    torch.testing.assert_close(window, single)
    torch.testing.assert_close(window_layer.current, single_layer.current)
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    if learnable:  # the parameter w0 = -log(tau - 1) is rounded to float32 at creation
        tau = 1.0 + math.exp(-window_layer.weight.item())
    for b in range(batch):
        for n in range(neurons):
            expected = filter_reference(spikes[:, b, n].tolist(), tau)
            assert window[:, b, n].tolist() == pytest.approx(expected, rel=tolerance, abs=tolerance)


def test_synapse_filter_window_continues_across_calls() -> None:
    spikes = random_spikes(3, (7, 2, 3))
    whole = SynapseFilter(3.0, step_mode="window")(spikes)
    layer = SynapseFilter(3.0, step_mode="window")
    parts = torch.cat([layer(spikes[:3]), layer(spikes[3:])])
    torch.testing.assert_close(parts, whole)


def test_synapse_filter_learnable_initial_tau_and_gradient() -> None:
    tau = 3.0
    layer = SynapseFilter(tau, learnable=True, step_mode="window").double()
    assert layer.weight.item() == pytest.approx(-math.log(2.0))
    assert layer.tau == pytest.approx(3.0)
    w0 = layer.weight.item()  # -log(2) rounded to float32 at creation
    spikes = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0], dtype=torch.float64)[:, None, None]
    coefficients = torch.tensor([0.3, -1.0, 2.0, 0.5, 1.5], dtype=torch.float64)[:, None, None]
    loss = (layer(spikes) * coefficients).sum()
    loss.backward()
    # Independent reference: the recurrence written out with k = sigmoid(w).
    w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    k = 1.0 / (1.0 + torch.exp(-w))
    current = torch.zeros((), dtype=torch.float64)
    reference_loss = torch.zeros((), dtype=torch.float64)
    for s, c in zip([1.0, 0.0, 0.0, 1.0, 0.0], [0.3, -1.0, 2.0, 0.5, 1.5], strict=True):
        current = current - (1.0 - s) * current * k + s
        reference_loss = reference_loss + c * current
    reference_loss.backward()
    assert loss.item() == pytest.approx(reference_loss.item(), rel=1e-12)
    assert layer.weight.grad.item() == pytest.approx(w.grad.item(), rel=1e-10)

    # Central finite difference in w of the closed-form per-step loss.
    def closed_loss(weight: float) -> float:
        inv = 1.0 / (1.0 + math.exp(-weight))
        return sum(
            c * i for c, i in zip([0.3, -1.0, 2.0, 0.5, 1.5], filter_reference([1, 0, 0, 1, 0], 1.0 / inv), strict=True)
        )

    eps = 1e-6
    finite = (closed_loss(w0 + eps) - closed_loss(w0 - eps)) / (2 * eps)
    assert layer.weight.grad.item() == pytest.approx(finite, rel=1e-6)


def test_synapse_filter_learnable_gradient_single_mode_over_steps() -> None:
    layer = SynapseFilter(2.0, learnable=True).double()
    total = torch.zeros((), dtype=torch.float64)
    for s in [1.0, 0.0, 0.0]:
        total = total + layer(torch.tensor([[s]], dtype=torch.float64)).sum()
    total.backward()
    # I = 1, 1 - k, (1 - k)^2, k = sigmoid(w) = 1/2; d/dk of the sum = -1 - 2(1 - k) = -2;
    # dk/dw = k(1 - k) = 1/4, so the gradient is -0.5.
    assert layer.weight.grad.item() == pytest.approx(-0.5)


def test_synapse_filter_float_spikes_keep_gradients() -> None:
    spikes = torch.tensor([[[1.0]], [[0.0]], [[1.0]]], requires_grad=True)
    layer = SynapseFilter(2.0, step_mode="window")
    currents = layer(spikes)
    currents[-1].sum().backward()
    # I3 = I2 - (1 - S3) I2 / 2 + S3 with I2 = I1 - (1 - S2) I1 / 2 + S2, I1 = S1.
    # dI3/dS3 = 1 + I2/2 = 1.25; dI3/dI2 = 1 - (1 - S3)/2 = 1; dI2/dS2 = 1 + I1/2 = 1.5;
    # dI2/dI1 = 1/2; dI1/dS1 = 1.
    assert spikes.grad.flatten().tolist() == pytest.approx([0.5, 1.5, 1.25])


def test_synapse_filter_rejects_bad_input_without_changing_state() -> None:
    with pytest.raises(ValueError, match=r"^tau"):
        SynapseFilter(1.0, learnable=True)
    with pytest.raises(ValueError, match=r"^tau"):
        SynapseFilter(0.5)
    with pytest.raises(ValueError, match=r"^tau"):
        SynapseFilter(float("nan"))
    with pytest.raises(ValueError, match=r"^step_mode"):
        SynapseFilter(2.0, step_mode="multi")
    layer = SynapseFilter(2.0)
    layer(torch.tensor([[1.0, 0.0]]))
    before = layer.current.clone()
    with pytest.raises(ValueError, match=r"^inputs"):
        layer(torch.tensor([[0.5, 0.0]]))
    with pytest.raises(ValueError, match=r"^inputs"):
        layer(torch.tensor([[float("nan"), 0.0]]))
    with pytest.raises(ValueError, match=r"^inputs"):
        layer(torch.tensor([[1.0, 0.0, 1.0]]))
    with pytest.raises(TypeError, match=r"^inputs"):
        layer([[1.0, 0.0]])
    torch.testing.assert_close(layer.current, before)
    layer.reset()
    assert layer(torch.tensor([[1.0, 0.0, 1.0]])).shape == (1, 3)


def test_synapse_filter_state_dict_round_trip_and_to() -> None:
    layer = SynapseFilter(3.0, learnable=True)
    spikes = random_spikes(5, (6, 2, 3))
    for step in spikes[:3]:
        layer(step)
    with torch.no_grad():
        layer.weight.add_(0.25)
    saved = copy.deepcopy(layer.state_dict())
    assert set(saved) == {"weight", "current"}
    restored = SynapseFilter(3.0, learnable=True)
    restored.load_state_dict(saved)
    with torch.no_grad():
        for step in spikes[3:]:
            torch.testing.assert_close(restored(step), layer(step))
    moved = restored.to(torch.float64)
    assert moved.current.dtype == torch.float64 and moved.weight.dtype == torch.float64
    moved.reset()
    assert moved.current.ndim == 0 and moved(spikes[0]).dtype == torch.float64


# ------------------------------------------------------------------------ Delay


@given(
    steps=st.integers(1, 8),
    delay=st.integers(0, 5),
    batch=st.integers(1, 2),
    neurons=st.integers(1, 3),
    split=st.integers(0, 8),
    dtype=DTYPES,
    seed=st.integers(0, 2**16),
)
def test_delay_shift_single_equals_window(
    steps: int, delay: int, batch: int, neurons: int, split: int, dtype: torch.dtype, seed: int
) -> None:
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn((steps, batch, neurons), generator=generator, dtype=dtype)
    # Reference: y[t] = x[t - d], zeros before, element by element.
    expected = torch.zeros_like(inputs)
    for t in range(steps):
        if t - delay >= 0:
            expected[t] = inputs[t - delay]
    window = Delay(delay, step_mode="window")(inputs)
    assert torch.equal(window, expected)
    single_layer = Delay(delay)
    single = torch.stack([single_layer(step) for step in inputs])
    assert torch.equal(single, expected)
    # A mix: single steps first, then a window, continue one another.
    split = min(split, steps)
    mixed_layer = Delay(delay)
    head = [mixed_layer(step) for step in inputs[:split]]
    mixed_layer.step_mode = "window"
    tail = mixed_layer(inputs[split:])
    assert torch.equal(torch.cat([torch.stack(head), tail]) if head else tail, expected)


def test_delay_hand_case_and_bool_spikes() -> None:
    layer = Delay(2)
    spikes = [torch.tensor([[True, False]]), torch.tensor([[False, True]]), torch.tensor([[True, True]])]
    outputs = [layer(s).tolist() for s in spikes]
    assert outputs == [[[False, False]], [[False, False]], [[True, False]]]


def test_delay_gradient_passes_through() -> None:
    inputs = torch.randn(5, 1, 2, requires_grad=True)
    weights = torch.arange(10.0).view(5, 1, 2)
    (Delay(2, step_mode="window")(inputs) * weights).sum().backward()
    # d/dx[t] = weights[t + 2] for t + 2 < 5, else 0.
    expected = torch.zeros(5, 1, 2)
    expected[:3] = weights[2:]
    assert torch.equal(inputs.grad, expected)
    inputs.grad = None
    layer = Delay(2)
    total = sum((layer(inputs[t]) * weights[t]).sum() for t in range(5))
    total.backward()
    assert torch.equal(inputs.grad, expected)


def test_delay_bounded_state_and_bad_input() -> None:
    layer = Delay(3)
    for _ in range(10):
        layer(torch.ones(2, 4))
    assert layer.history.shape == (3, 2, 4)
    with pytest.raises(ValueError, match=r"^delay_steps"):
        Delay(-1)
    with pytest.raises(TypeError, match=r"^delay_steps"):
        Delay(1.5)
    before = layer.history.clone()
    with pytest.raises(ValueError, match=r"^inputs"):
        layer(torch.ones(2, 5))
    with pytest.raises(ValueError, match=r"^inputs"):
        layer(torch.full((2, 4), float("nan")))
    with pytest.raises(TypeError, match=r"^inputs"):
        layer(torch.ones(2, 4, dtype=torch.float64))
    assert torch.equal(layer.history, before)
    layer.reset()
    assert layer(torch.ones(1, 5)).shape == (1, 5)


def test_delay_state_dict_round_trip() -> None:
    inputs = torch.randn(9, 2, 3)
    layer = Delay(4)
    for t in range(6):  # ring position != 0
        layer(inputs[t])
    saved = copy.deepcopy(layer.state_dict())
    restored = Delay(4)
    restored.load_state_dict(saved)
    for t in range(6, 9):
        assert torch.equal(restored(inputs[t]), layer(inputs[t]))
    assert torch.equal(restored(inputs[0]), inputs[5])


# ------------------------------------------------------------------ VotingLayer


def test_voting_layer_hand_case() -> None:
    inputs = torch.tensor([[1.0, 3.0, 0.0, 0.0, 2.0, 4.0], [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]])
    assert VotingLayer(2)(inputs).tolist() == [[2.0, 0.0, 3.0], [1.0, 0.5, 0.0]]
    torch.testing.assert_close(VotingLayer(3)(inputs), torch.tensor([[4.0 / 3.0, 2.0], [1.0, 0.0]]))
    window = torch.stack([inputs, 2 * inputs])
    out = VotingLayer(2, step_mode="window")(window)
    assert out.shape == (2, 2, 3) and out[1].tolist() == [[4.0, 0.0, 6.0], [2.0, 1.0, 0.0]]
    spikes = torch.tensor([[True, False, True, True]])
    assert VotingLayer(2)(spikes).tolist() == [[0.5, 1.0]]


def test_voting_layer_bad_input() -> None:
    with pytest.raises(ValueError, match=r"^inputs"):
        VotingLayer(4)(torch.ones(2, 6))
    with pytest.raises(ValueError, match=r"^voting_size"):
        VotingLayer(0)
    with pytest.raises(ValueError, match=r"^inputs"):
        VotingLayer(2, step_mode="window")(torch.ones(2, 6))


# ------------------------------------------------------------ MaxRateClassifier


def assignments_reference(counts: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[int]:
    """Per neuron, per class loops: mean count per seen class, argmax, -1 if all zero."""
    result = []
    for n in range(counts.shape[1]):
        best_class, best_value = -1, 0.0
        for k in range(num_classes):
            rows = [s for s in range(counts.shape[0]) if int(labels[s]) == k]
            if not rows:
                continue
            mean = sum(float(counts[s, n]) for s in rows) / len(rows)
            if mean > best_value:
                best_class, best_value = k, mean
        result.append(best_class)
    return result


def test_classifier_hand_built_assignments_and_predictions() -> None:
    # 5 neurons, 4 classes; class 3 never appears in training.
    counts = torch.tensor(
        [
            [4.0, 0.0, 1.0, 0.0, 0.0],  # class 0
            [2.0, 0.0, 1.0, 0.0, 0.0],  # class 0
            [0.0, 5.0, 3.0, 0.0, 0.0],  # class 1
            [1.0, 1.0, 6.0, 0.0, 0.0],  # class 2
        ]
    )
    labels = torch.tensor([0, 0, 1, 2])
    classifier = MaxRateClassifier(5, 4).fit(counts, labels)
    # means: neuron 0 -> (3, 0, 1), neuron 1 -> (0, 5, 1), neuron 2 -> (1, 3, 6),
    # neuron 3 never fires -> -1; neuron 4 -> -1.
    assert classifier.assignments.tolist() == [0, 1, 2, -1, -1]
    test_counts = torch.tensor([[1.0, 2.0, 0.0, 9.0, 9.0], [3.0, 0.0, 4.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    scores = classifier.scores(test_counts)
    assert scores[:, :3].tolist() == [[1.0, 2.0, 0.0], [3.0, 0.0, 4.0], [0.0, 0.0, 0.0]]
    assert scores[:, 3].tolist() == [-math.inf] * 3
    assert classifier.predict(test_counts).tolist() == [1, 2, 0]
    # Proportions: neuron 0 -> 3/4 for class 0, neuron 1 -> 5/6 for class 1,
    # neuron 2 -> 6/10 for class 2.
    proportional = classifier.scores(test_counts, proportion=True)
    torch.testing.assert_close(
        proportional[:, :3], torch.tensor([[0.75, 2 * 5 / 6, 0.0], [2.25, 0.0, 2.4], [0.0, 0.0, 0.0]])
    )
    assert classifier.predict(test_counts, proportion=True).tolist() == [1, 2, 0]


def test_classifier_mean_over_group_members() -> None:
    # Two neurons per class: the score is the group's mean count.
    counts = torch.tensor([[5.0, 3.0, 0.0, 0.0], [0.0, 0.0, 2.0, 4.0]])
    classifier = MaxRateClassifier(4, 2).fit(counts, torch.tensor([0, 1]))
    assert classifier.assignments.tolist() == [0, 0, 1, 1]
    assert classifier.scores(torch.tensor([[1.0, 2.0, 6.0, 0.0]])).tolist() == [[1.5, 3.0]]
    assert classifier.predict(torch.tensor([[1.0, 2.0, 6.0, 0.0]])).tolist() == [1]


@given(
    samples=st.integers(1, 12),
    neurons=st.integers(1, 5),
    classes=st.integers(1, 4),
    batches=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_classifier_incremental_equals_fit_and_reference(
    samples: int, neurons: int, classes: int, batches: int, seed: int
) -> None:
    generator = torch.Generator().manual_seed(seed)
    counts = torch.randint(0, 4, (samples, neurons), generator=generator).float()
    labels = torch.randint(0, classes, (samples,), generator=generator)
    fitted = MaxRateClassifier(neurons, classes).fit(counts, labels)
    assert fitted.assignments.tolist() == assignments_reference(counts, labels, classes)
    incremental = MaxRateClassifier(neurons, classes)
    for chunk_counts, chunk_labels in zip(counts.chunk(batches), labels.chunk(batches), strict=True):
        incremental.update(chunk_counts, chunk_labels)
    assert incremental.response_sums.shape == (classes, neurons)
    incremental.assign()
    assert torch.equal(incremental.assignments, fitted.assignments)


def test_classifier_bad_input_and_state() -> None:
    classifier = MaxRateClassifier(3, 2)
    with pytest.raises(RuntimeError):
        classifier.predict(torch.ones(1, 3))
    with pytest.raises(RuntimeError):
        classifier.assign()
    counts = torch.tensor([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]])
    classifier.update(counts, torch.tensor([0, 1]))
    sums = classifier.response_sums.clone()
    with pytest.raises(ValueError, match=r"^labels"):
        classifier.update(counts, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match=r"^labels"):
        classifier.update(counts, torch.tensor([0, -1]))
    with pytest.raises(ValueError, match=r"^labels"):
        classifier.update(counts, torch.tensor([0, 1, 1]))
    with pytest.raises(TypeError, match=r"^labels"):
        classifier.update(counts, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"^spike_counts"):
        classifier.update(torch.ones(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"^spike_counts"):
        classifier.update(-counts, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"^spike_counts"):
        classifier.update(torch.full((2, 3), float("nan")), torch.tensor([0, 1]))
    assert torch.equal(classifier.response_sums, sums)
    assert classifier.class_samples.tolist() == [1, 1]
    with pytest.raises(ValueError, match=r"^num_classes"):
        MaxRateClassifier(3, 0)


def test_classifier_state_dict_round_trip() -> None:
    counts = torch.tensor([[3.0, 0.0, 1.0], [0.0, 2.0, 1.0], [1.0, 0.0, 0.0]])
    labels = torch.tensor([0, 1, 0])
    classifier = MaxRateClassifier(3, 2).fit(counts, labels)
    restored = MaxRateClassifier(3, 2)
    restored.load_state_dict(copy.deepcopy(classifier.state_dict()))
    assert torch.equal(restored.assignments, classifier.assignments)
    probe = torch.tensor([[1.0, 2.0, 0.0], [2.0, 0.0, 5.0]])
    assert torch.equal(restored.predict(probe), classifier.predict(probe))
    assert torch.equal(restored.predict(probe, proportion=True), classifier.predict(probe, proportion=True))
    restored.reset()
    assert restored.assignments.tolist() == [-1, -1, -1] and restored.class_samples.sum() == 0


def test_figures_are_drawn(tmp_path: Path) -> None:
    from plastic.zoo.figures_layers import main

    paths = main(tmp_path)
    assert [p.name for p in paths] == ["synapse_filter.png", "poisson_raster.png"]
    assert all(p.stat().st_size > 1000 for p in paths)
