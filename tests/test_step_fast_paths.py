"""Tests of the per-step fast paths (issue 9, case B4): the unchecked neuron step
and the neuron modules' single steps without a graph, bool spikes into synapses,
ring-buffer pushes through kept slot views, small bool-to-float conversions,
the reducers' and monitors' per-step path, and the demo network built with
them.

References are independent of the code under test: per-element Python loops
over the equations of DESIGN.md (float64, so that Python's double arithmetic
is the tensors' arithmetic, operation for operation), Python lists for ring
buffers, and for the demo network the loop it ran before (a
``LinearLateral``, float inputs, float spikes into the inhibition).
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from plastic.functional.neurons import (
    NeuronParams,
    NeuronState,
    neuron_step_state,
    neuron_step_unchecked,
)
from plastic.functional.traces import SMALL_SPIKES, spike_values
from plastic.neural.history import RingBuffer
from plastic.neural.neurons import IF, LIF, AdaptiveLIF
from plastic.neural.synapses import DeltaCurrent
from plastic.observe.monitors import Monitor
from plastic.observe.reducers import WindowReducer

# ----------------------------------------------------------------------------
# Independent reference: one neuron step, element by element
# ----------------------------------------------------------------------------


def reference_step(
    inputs: list[list[float]],
    voltage: list[list[float]],
    remaining: list[list[int]] | None,
    theta: list[float] | None,
    *,
    kind: str,
    tau: float,
    v_threshold: float,
    v_reset: float,
    reset: str,
    n_refractory: int,
    theta_plus: float,
    theta_decay: float,
    decay_input: bool = True,
) -> tuple[list[list[float]], list[list[float]], list[list[int]] | None, list[float] | None]:
    """Spikes, voltage, refractory counters and theta after one step (DESIGN equations)."""
    batch, size = len(inputs), len(inputs[0])
    spikes = [[0.0] * size for _ in range(batch)]
    new_voltage = [[0.0] * size for _ in range(batch)]
    new_remaining = None if remaining is None else [[0] * size for _ in range(batch)]
    for b in range(batch):
        for i in range(size):
            v, x = voltage[b][i], inputs[b][i]
            if kind == "lif":
                h = v + (x - (v - v_reset)) / tau if decay_input else v - (v - v_reset) / tau + x
            else:
                h = v + x
            refractory = remaining is not None and remaining[b][i] > 0
            if refractory:
                h = v
            threshold = v_threshold if theta is None else v_threshold + theta[i]
            s = 1.0 if (h - threshold >= 0 and not refractory) else 0.0
            spikes[b][i] = s
            if reset == "hard":
                new_voltage[b][i] = v_reset if s else h
            else:
                new_voltage[b][i] = h - s * threshold
            if new_remaining is not None:
                new_remaining[b][i] = n_refractory if s else max(remaining[b][i] - 1, 0)  # type: ignore[index]
    new_theta = None
    if theta is not None:
        new_theta = [theta[i] * theta_decay + theta_plus * sum(spikes[b][i] for b in range(batch)) for i in range(size)]
    return spikes, new_voltage, new_remaining, new_theta


step_settings = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["lif", "if"]),
        "tau": st.floats(1.0, 40.0),
        "decay_input": st.booleans(),
        "v_threshold": st.sampled_from([0.3, 1.0, 2.5]),
        "v_reset": st.sampled_from([0.0, -0.5, 0.1]),
        "reset": st.sampled_from(["hard", "soft"]),
        "n_refractory": st.integers(0, 3),
        "adaptive": st.booleans(),
        "theta_plus": st.sampled_from([0.0, 0.02, 0.5]),
        "theta_decay": st.sampled_from([1.0, 0.9, math.exp(-1 / 1e7)]),
        "batch": st.integers(1, 3),
        "size": st.integers(1, 4),
        "seed": st.integers(0, 2**16),
    }
)


def _params(settings: dict) -> NeuronParams:
    return NeuronParams(
        kind=settings["kind"], tau=settings["tau"], v_threshold=settings["v_threshold"],
        v_reset=settings["v_reset"], reset=settings["reset"], refractory_steps=settings["n_refractory"],
        theta_plus=settings["theta_plus"], theta_decay=settings["theta_decay"],
        decay_input=settings["decay_input"],
    )  # fmt: skip


def _valid(settings: dict) -> bool:
    if settings["reset"] == "hard":
        return settings["v_threshold"] > settings["v_reset"]
    return settings["v_threshold"] > 0


@given(settings=step_settings)
def test_unchecked_step_matches_the_elementwise_reference(settings):
    if not _valid(settings):
        return
    params = _params(settings)
    generator = torch.Generator().manual_seed(settings["seed"])
    batch, size = settings["batch"], settings["size"]
    voltage = (torch.rand(batch, size, generator=generator, dtype=torch.float64) - 0.3) * 2
    remaining = (
        torch.randint(0, 3, (batch, size), generator=generator, dtype=torch.int32)
        if settings["n_refractory"] else None
    )  # fmt: skip
    theta = torch.rand(size, generator=generator, dtype=torch.float64) * 0.1 if settings["adaptive"] else None
    for _ in range(5):
        inputs = torch.randn(batch, size, generator=generator, dtype=torch.float64) * 3
        state = NeuronState(voltage, remaining, theta)
        spike, fired, new_state = neuron_step_unchecked(inputs, state, params)
        expected = reference_step(
            inputs.tolist(), voltage.tolist(), None if remaining is None else remaining.tolist(),
            None if theta is None else theta.tolist(),
            kind=settings["kind"], tau=params.tau, v_threshold=params.v_threshold, v_reset=params.v_reset,
            reset=params.reset, n_refractory=params.refractory_steps, theta_plus=params.theta_plus,
            theta_decay=params.theta_decay, decay_input=params.decay_input,
        )  # fmt: skip
        assert spike.dtype == torch.float64 and fired.dtype == torch.bool
        assert spike.tolist() == expected[0]
        assert fired.tolist() == [[s == 1.0 for s in row] for row in expected[0]]
        assert new_state.voltage.tolist() == expected[1]
        if remaining is not None:
            assert new_state.refractory_remaining.dtype == torch.int32
            assert new_state.refractory_remaining.tolist() == expected[2]
        else:
            assert new_state.refractory_remaining is None
        if theta is not None:
            assert new_state.theta.tolist() == pytest.approx(expected[3], rel=0, abs=0)
        # the checked entry gives the same forward values
        checked_spike, checked_state = neuron_step_state(inputs, state, params)
        assert torch.equal(checked_spike, spike)
        assert torch.equal(checked_state.voltage, new_state.voltage)
        voltage, remaining, theta = new_state
    # the inputs' state was never written in place
    assert voltage is new_state.voltage


def test_unchecked_step_writes_no_input_in_place():
    params = NeuronParams(kind="lif", tau=2.0, v_threshold=0.5, refractory_steps=2, theta_plus=0.1)
    voltage = torch.tensor([[0.4, 0.1, 0.0]], dtype=torch.float64)
    remaining = torch.tensor([[0, 1, 0]], dtype=torch.int32)
    theta = torch.tensor([0.0, 0.2, 0.1], dtype=torch.float64)
    inputs = torch.tensor([[1.0, 5.0, 0.2]], dtype=torch.float64)
    before = [t.clone() for t in (voltage, remaining, theta, inputs)]
    spike, fired, state = neuron_step_unchecked(inputs, NeuronState(voltage, remaining, theta), params)
    for original, copy_before in zip((voltage, remaining, theta, inputs), before, strict=True):
        assert torch.equal(original, copy_before)
    # hand-computed: h = v + (x - v) / 2 = [0.7, (refractory) 0.1, 0.1]; thresholds 0.5, 0.7, 0.6
    assert spike.tolist() == [[1.0, 0.0, 0.0]]
    assert fired.dtype == torch.bool and fired.tolist() == [[True, False, False]]
    assert state.voltage.tolist() == [[0.0, 0.1, 0.1]]
    assert state.refractory_remaining.tolist() == [[2, 0, 0]]
    assert state.theta.tolist() == [0.1, 0.2, 0.1]


# ----------------------------------------------------------------------------
# Neuron modules: single steps without a graph
# ----------------------------------------------------------------------------


def _module(kind: str, batch: int) -> torch.nn.Module:
    common = {"v_threshold": 0.6, "v_reset": 0.0, "batch_size": batch, "dtype": torch.float64}
    if kind == "if":
        return IF(4, refractory=1.0, **common)
    if kind == "lif":
        return LIF(4, tau=3.0, reset="soft", **common)
    return AdaptiveLIF(4, tau=5.0, refractory=2.0, theta_plus=0.05, tau_theta=50.0, **common)


@pytest.mark.parametrize("kind", ["if", "lif", "adaptive"])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("mode", ["no_grad", "eval"])
def test_module_steps_match_the_reference(kind, batch, mode):
    module = _module(kind, batch)
    params = module.params
    generator = torch.Generator().manual_seed(batch)
    voltage = module.voltage.tolist()
    remaining = module.refractory_remaining.tolist() if params.refractory_steps else None
    theta = module.theta.tolist() if kind == "adaptive" else None
    if mode == "eval":
        module.eval()
    for _ in range(12):
        inputs = torch.rand(batch, 4, generator=generator, dtype=torch.float64)
        if mode == "eval":
            # eval mode: no graph even for inputs that require one
            spikes = module(inputs.requires_grad_())
        else:
            with torch.no_grad():
                spikes = module(inputs)
        assert not spikes.requires_grad
        expected_spikes, voltage, remaining, theta = reference_step(
            inputs.tolist(), voltage, remaining, theta, kind=params.kind, tau=params.tau,
            v_threshold=params.v_threshold, v_reset=params.v_reset, reset=params.reset,
            n_refractory=params.refractory_steps, theta_plus=params.theta_plus, theta_decay=params.theta_decay,
        )  # fmt: skip
        assert spikes.tolist() == expected_spikes
        assert module.spike.dtype == torch.bool
        assert module.spike.tolist() == [[s == 1.0 for s in row] for row in expected_spikes]
        assert module.voltage.tolist() == voltage
        if remaining is not None:
            assert module.refractory_remaining.tolist() == remaining
        if theta is not None:
            assert module.theta.tolist() == theta


def test_module_step_with_a_graph_gives_the_same_forward():
    with_graph, without = _module("adaptive", 2), _module("adaptive", 2)
    generator = torch.Generator().manual_seed(0)
    for _ in range(10):
        inputs = torch.rand(2, 4, generator=generator, dtype=torch.float64)
        graph_spikes = with_graph(inputs.clone().requires_grad_())
        with torch.no_grad():
            spikes = without(inputs)
        assert graph_spikes.requires_grad and not spikes.requires_grad
        assert torch.equal(graph_spikes.detach(), spikes)
        for name in ("voltage", "refractory_remaining", "theta", "spike"):
            assert torch.equal(getattr(with_graph, name).detach(), getattr(without, name))


def test_module_step_without_graph_checks_inputs_before_any_change():
    module = _module("adaptive", 2)
    with torch.no_grad():
        module(torch.rand(2, 4, dtype=torch.float64))
        saved = {name: getattr(module, name).clone() for name in ("voltage", "refractory_remaining", "theta", "spike")}
        bad_inputs = [
            (torch.full((2, 4), math.nan, dtype=torch.float64), ValueError),
            (torch.full((2, 4), math.inf, dtype=torch.float64), ValueError),
            (torch.zeros(3, 4, dtype=torch.float64), ValueError),
            (torch.zeros(2, 4, dtype=torch.float32), TypeError),
            (torch.zeros(2, 4, dtype=torch.bool), TypeError),
            ([[0.0] * 4] * 2, TypeError),
        ]
        for inputs, error in bad_inputs:
            with pytest.raises(error, match=r"^inputs"):
                module(inputs)
            for name, value in saved.items():
                assert torch.equal(getattr(module, name), value)


def test_module_step_without_graph_checks_the_state_layout():
    module = _module("adaptive", 2)
    module.voltage = torch.zeros(3, 4, dtype=torch.float64)  # another batch size, set by hand
    with torch.no_grad(), pytest.raises(ValueError, match=r"^state\.voltage"):
        module(torch.zeros(2, 4, dtype=torch.float64))
    module = _module("adaptive", 2)
    module.theta = torch.zeros(5, dtype=torch.float64)
    with torch.no_grad(), pytest.raises(ValueError, match=r"^state\.theta"):
        module(torch.zeros(2, 4, dtype=torch.float64))
    module = _module("adaptive", 2)
    module.refractory_remaining = torch.zeros(2, 4)  # a float counter
    with torch.no_grad(), pytest.raises(TypeError, match=r"^state\.refractory_remaining"):
        module(torch.zeros(2, 4, dtype=torch.float64))


# ----------------------------------------------------------------------------
# Synapses: bool steps
# ----------------------------------------------------------------------------


def test_bool_steps_give_the_currents_of_float_steps():
    generator = torch.Generator().manual_seed(1)
    from_bool, from_float = DeltaCurrent(5, amplitude=0.5, batch_size=2), DeltaCurrent(5, amplitude=0.5, batch_size=2)
    for _ in range(4):
        fired = torch.rand(2, 5, generator=generator) < 0.4
        currents = from_bool(fired)
        expected = [[0.5 if f else 0.0 for f in row] for row in fired.tolist()]
        assert currents.tolist() == expected
        assert torch.equal(from_float(fired.float()), currents)
        assert from_bool.spike is fired or torch.equal(from_bool.spike, fired)
        assert torch.equal(from_bool.spike_history.newest(), fired)
        assert from_bool.current_history.newest().tolist() == expected


def test_bool_steps_are_checked():
    synapse = DeltaCurrent(5, batch_size=2)
    with pytest.raises(ValueError, match=r"^spikes"):
        synapse(torch.zeros(3, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"^spikes"):
        synapse(torch.zeros(2, 4, dtype=torch.bool))
    assert synapse.spike_history.count == 0


# ----------------------------------------------------------------------------
# Ring buffers: pushes through kept slot views
# ----------------------------------------------------------------------------


def _held(reference: list[list[float]], capacity: int) -> list[list[float]]:
    return reference[-capacity:]


def test_pushes_follow_every_rebinding_of_the_storage():
    capacity = 3
    ring = RingBuffer(capacity, (2,))
    reference: list[list[float]] = []

    def push(value: float) -> None:
        ring.push(torch.full((2,), value, dtype=ring.data.dtype))
        reference.append([value, value])

    def check() -> None:
        held = _held(reference, capacity)
        assert ring.window(len(held)).tolist() == held

    for value in range(5):
        push(float(value))
        check()
    ring.to(torch.float64)  # a new storage tensor: later pushes must land there
    assert ring.data.dtype == torch.float64
    push(10.0)
    check()
    duplicate = copy.deepcopy(ring)
    duplicate.push(torch.full((2,), 99.0, dtype=torch.float64))
    check()  # the copy writes its own storage
    assert duplicate.newest().tolist() == [99.0, 99.0]
    loaded = RingBuffer(capacity, (2,), dtype=torch.float64)
    loaded.push(torch.full((2,), -1.0, dtype=torch.float64))
    loaded.load_state_dict(ring.state_dict())
    loaded.push(torch.full((2,), 20.0, dtype=torch.float64))
    assert loaded.window(capacity).tolist() == [*_held(reference, capacity)[1:], [20.0, 20.0]]
    ring.reshape_storage((4,))
    reference.clear()
    for value in (7.0, 8.0):
        ring.push(torch.full((4,), value, dtype=torch.float64))
        reference.append([value] * 4)
    assert ring.window(2).tolist() == reference
    assert "_slot_views" not in ring.__getstate__()


def test_push_window_past_the_capacity_keeps_the_last_samples():
    ring = RingBuffer(3, (1,))
    ring.push(torch.tensor([1.0]))
    ring.push_window(torch.arange(10.0).reshape(10, 1))
    assert ring.count == 3
    assert ring.window(3).flatten().tolist() == [7.0, 8.0, 9.0]
    ring.push(torch.tensor([42.0]))  # the pointer went back to slot 0
    assert ring.window(3).flatten().tolist() == [8.0, 9.0, 42.0]
    assert "_pointer" not in ring._buffers and isinstance(ring.__dict__["_pointer"], int)


# ----------------------------------------------------------------------------
# Bool spikes as floats, small and large
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("numel", [1, 300, SMALL_SPIKES, SMALL_SPIKES + 1, 5000])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_spike_values_of_bool_spikes(numel, dtype):
    fired = torch.rand(numel, generator=torch.Generator().manual_seed(numel)) < 0.3
    values = spike_values(fired, dtype)
    assert values.dtype == dtype and values.shape == fired.shape
    assert values.tolist() == [1.0 if f else 0.0 for f in fired.tolist()]
    assert values.data_ptr() != fired.data_ptr()


# ----------------------------------------------------------------------------
# Reducers and monitors: the per-step path
# ----------------------------------------------------------------------------


def test_window_reducer_records_steps_like_a_list():
    reducer = WindowReducer(4)
    generator = torch.Generator().manual_seed(2)
    reference = []
    for _ in range(6):
        value = torch.rand(2, 3, generator=generator) < 0.5
        reducer(value)
        reference.append(value.tolist())
    assert reducer.total == 6
    assert reducer.peek().tolist() == reference[-4:]
    with pytest.raises(ValueError, match=r"^value"):
        reducer(torch.zeros(3, 3, dtype=torch.bool))
    reducer.clear()
    reducer(torch.ones(5, dtype=torch.bool))  # cleared: another shape is accepted
    assert reducer.shape == (5,)


def test_reducer_keeps_no_graph_of_what_it_observes():
    reducer = WindowReducer(2)
    value = torch.ones(3, requires_grad=True) * 2.0
    reducer(value)
    reducer(value)
    kept = reducer.peek()
    assert not kept.requires_grad and kept.tolist() == [[2.0] * 3] * 2
    assert not reducer.history.data.requires_grad


def test_monitor_records_the_same_with_and_without_grad_mode():
    neuron = LIF(3, tau=2.0, v_threshold=0.5)
    recorded = WindowReducer(10)
    monitor = Monitor(recorded, neuron, "spike")
    generator = torch.Generator().manual_seed(3)
    reference = []
    for step in range(8):
        inputs = torch.rand(1, 3, generator=generator)
        with torch.set_grad_enabled(step % 2 == 0):
            neuron(inputs)
        reference.append(neuron.spike.tolist())
    assert monitor.reducer.peek()[-8:].tolist() == reference
    assert recorded.total == 8


# ----------------------------------------------------------------------------
# The demo network
# ----------------------------------------------------------------------------


def _reference_present(network, images, *, learn: bool, lateral) -> torch.Tensor:
    """The demo's presentation as it ran before: float inputs and spikes, a LinearLateral."""
    config = network.config
    batch = images.shape[0]
    rates = images / 16.0 * config.max_rate
    from plastic.functional.encoders import poisson_encode

    inputs = poisson_encode(rates, config.steps, 1.0, generator=network.generator).to(torch.float32)
    network.cell.reset()
    lateral.reset()
    counts = torch.zeros(batch, config.neurons)
    spikes = torch.zeros(batch, config.neurons)
    with torch.no_grad():
        for t in range(config.steps):
            spikes = network.cell(inputs[t], lateral(spikes))
            counts += spikes
        if learn:
            network.trainer()
            network.trainer.update()
    return counts


def test_demo_presentations_equal_the_previous_network():
    from plastic.neural.connections import LinearLateral
    from plastic.zoo.demo import DemoConfig, DigitNetwork

    # raw images (pixel_sum=None): the reference encodes them as the demo did
    config = DemoConfig(neurons=12, steps=25, batch_size=2, max_rate=500.0, w_init=0.6, pixel_sum=None).resolved()
    images = torch.rand(6, 64, generator=torch.Generator().manual_seed(4)) * 16
    ours = DigitNetwork(config, torch.device("cpu"), torch.Generator().manual_seed(5))
    previous = DigitNetwork(config, torch.device("cpu"), torch.Generator().manual_seed(5))
    lateral = LinearLateral(config.neurons, batch_size=2, weight_init=(0.0, 0.0))
    with torch.no_grad():
        lateral.weight.fill_(-config.w_inh)
        lateral.weight.mul_(lateral.weight_mask)
    # the masked weight, sign of zero included
    masked = lateral.weight * lateral.weight_mask
    assert torch.equal(ours.lateral.weight, masked)
    assert torch.equal(torch.signbit(ours.lateral.weight), torch.signbit(masked))
    spiked = 0.0
    for index in range(3):
        chunk = images[2 * index : 2 * index + 2]
        counts, _ = ours.present(chunk, learn=True)
        expected = _reference_present(previous, chunk, learn=True, lateral=lateral)
        assert torch.equal(counts, expected)
        spiked += float(counts.sum())
        assert torch.equal(ours.cell.connection.weight, previous.cell.connection.weight)
        assert torch.equal(ours.cell.neuron.theta, previous.cell.neuron.theta)
    assert spiked > 0  # the comparison saw spikes (and inhibition)
    ours.cell.eval()
    previous.cell.eval()
    counts, _ = ours.present(images[:2], learn=False)
    assert counts.shape == (2, 12)
