"""Synapses: currents against naive per-step references, window == steps,
delayed reads against brute-force history lookups, bounded storage, bad input,
state_dict and dtype moves."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from plastic.neural.synapses import DeltaCurrent, ExponentialCurrent, SpikeFilterCurrent, Synapse

KINDS = ("delta", "exponential", "spike_filter", "spike_filter_learnable")


def build(kind: str, shape, **kwargs) -> Synapse:
    if kind == "delta":
        return DeltaCurrent(shape, amplitude=kwargs.pop("amplitude", 0.7), **kwargs)
    if kind == "exponential":
        return ExponentialCurrent(shape, tau=kwargs.pop("tau", 3.0), amplitude=kwargs.pop("amplitude", 1.5), **kwargs)
    if kind == "spike_filter":
        return SpikeFilterCurrent(shape, tau=kwargs.pop("tau", 2.5), **kwargs)
    return SpikeFilterCurrent(shape, tau=kwargs.pop("tau", 2.5), learnable=True, **kwargs)


def reference_currents(kind: str, spikes: torch.Tensor, dt: float = 1.0) -> torch.Tensor:
    """Naive per-step recurrences in float64 (parameters as in ``build``)."""
    values = spikes.to(torch.float64)
    current = torch.zeros(values.shape[1:], dtype=torch.float64)
    out = []
    for step in values:
        if kind == "delta":
            current = 0.7 * step
        elif kind == "exponential":
            current = math.exp(-dt / 3.0) * current + 1.5 * step
        else:
            current = current - (1 - step) * current / 2.5 + step
        out.append(current)
    return torch.stack(out)


def random_spikes(generator: torch.Generator, shape, p: float = 0.4, as_float: bool = False) -> torch.Tensor:
    spikes = torch.rand(shape, generator=generator) < p
    return spikes.to(torch.float32) if as_float else spikes


def buffer_bytes(module: torch.nn.Module) -> int:
    return sum(b.nelement() * b.element_size() for _, b in module.named_buffers(remove_duplicate=False))


# ---------------------------------------------------------------------------- currents


def test_delta_hand_case():
    synapse = DeltaCurrent(3, amplitude=2.0)
    out = synapse(torch.tensor([[1, 0, 1]]))
    assert out.tolist() == [[2.0, 0.0, 2.0]]
    assert synapse.spike.tolist() == [[True, False, True]]
    assert synapse.current.tolist() == [[2.0, 0.0, 2.0]]


def test_exponential_hand_case():
    synapse = ExponentialCurrent(1, tau=2.0, amplitude=1.0, dt=1.0)
    a = math.exp(-0.5)
    values = [synapse(torch.tensor([[s]], dtype=torch.bool)).item() for s in (1, 0, 1, 0)]
    expected = [1.0, a, a * a + 1.0, a * (a * a + 1.0)]
    assert values == pytest.approx(expected, rel=1e-6)


def test_spike_filter_hand_case():
    # I_t = I - (1 - S) I / tau + S with tau = 4: 1, 0.75, 1.75, 1.3125
    synapse = SpikeFilterCurrent(1, tau=4.0)
    values = [synapse(torch.tensor([[s]], dtype=torch.bool)).item() for s in (1, 0, 1, 0)]
    assert values == pytest.approx([1.0, 0.75, 1.75, 1.3125], rel=1e-7)


def test_learnable_spike_filter_init_and_gradient():
    synapse = SpikeFilterCurrent(2, tau=4.0, learnable=True, step_mode="window")
    assert float(torch.sigmoid(synapse.inverse_tau_logit.detach())) == pytest.approx(0.25, rel=1e-6)
    assert synapse.inverse_tau_logit.item() == pytest.approx(-math.log(3.0), rel=1e-6)
    assert synapse.tau == pytest.approx(4.0, rel=1e-6)
    out = synapse(torch.tensor([[[1.0, 0.0]], [[0.0, 0.0]], [[0.0, 1.0]]]))
    out.sum().backward()
    # d/dk of (1 + (1 - k) + (1 - k)^2) and of 1 at k = 1/4: -1 - 2 (1 - k) = -2.5; dk/dw = k (1 - k)
    assert synapse.inverse_tau_logit.grad.item() == pytest.approx(-2.5 * 0.25 * 0.75, rel=1e-5)


@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
def test_matches_naive_reference_and_window_equals_steps(kind, data):
    shape = tuple(data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=2), label="shape"))
    batch = data.draw(st.integers(1, 3), label="batch")
    steps = data.draw(st.integers(1, 6), label="steps")
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]), label="dtype")
    as_float = data.draw(st.booleans(), label="float spikes")
    split = data.draw(st.integers(0, steps), label="split")
    generator = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16), label="seed"))
    spikes = random_spikes(generator, (steps, batch, *shape), as_float=as_float)

    single = build(kind, shape, batch_size=batch).to(dtype)
    stepped = torch.stack([single(step) for step in spikes])
    window = build(kind, shape, batch_size=batch, step_mode="window").to(dtype)
    # two windows: the state carries across them
    parts = [window(part) for part in (spikes[:split], spikes[split:]) if part.shape[0]]
    windowed = torch.cat(parts)

    assert stepped.dtype == dtype and windowed.dtype == dtype
    expected = reference_currents(kind.replace("_learnable", ""), spikes)
    # the learnable 1/tau = sigmoid(w) was initialised in float32 before .to(float64)
    tolerance = 1e-6 if dtype == torch.float32 or kind.endswith("learnable") else 1e-12
    torch.testing.assert_close(stepped.to(torch.float64), expected, rtol=tolerance, atol=tolerance)
    torch.testing.assert_close(windowed, stepped, rtol=1e-6, atol=1e-7)
    assert window.spike.shape == spikes[split:].shape if split < steps else True
    assert torch.equal(window.current, parts[-1])
    torch.testing.assert_close(window.state, single.state)


def test_float_spikes_carry_gradient():
    synapse = ExponentialCurrent(3, tau=2.0)
    spikes = torch.tensor([[1.0, 0.0, 1.0]], requires_grad=True)
    synapse(spikes).sum().backward()
    assert spikes.grad.tolist() == [[1.0, 1.0, 1.0]]


# ---------------------------------------------------------------------------- delays


@pytest.mark.parametrize("dt", [1.0, 0.5, 0.25])
def test_integer_delay_arrives_delay_over_dt_steps_later(dt):
    delays = torch.tensor([0.0, 1.0, 2.0, 3.0])
    synapse = DeltaCurrent(4, max_delay=3.0, dt=dt)
    assert synapse.capacity == round(3.0 / dt) + 1
    arrivals = []
    for step in range(int(3.0 / dt) + 4):
        spike = torch.ones(1, 4, dtype=torch.bool) if step == 0 else torch.zeros(1, 4, dtype=torch.bool)
        synapse(spike)
        arrivals.append(synapse.spike_at(delays)[0])
    arrived_at = torch.stack(arrivals).to(torch.int64).argmax(0)
    assert arrived_at.tolist() == [round(d / dt) for d in delays.tolist()]
    assert torch.stack(arrivals).sum(0).tolist() == [1, 1, 1, 1]


def brute_force_lag(delay: float, dt: float, method: str) -> tuple[int, int, float]:
    """(earlier lag, later lag, fraction) for a delay, written from the documented semantics."""
    exact = delay / dt
    if method == "previous":
        lag = math.ceil(exact - 1e-9)
        return lag, lag, 0.0
    if method == "nearest":
        lag = math.floor(exact + 0.5)  # halves go to the earlier sample
        return lag, lag, 0.0
    return math.ceil(exact - 1e-9), math.floor(exact + 1e-9), exact - math.floor(exact + 1e-9)


@pytest.mark.parametrize("method", ["previous", "nearest", "linear"])
@pytest.mark.parametrize("step_mode", ["single", "window"])
def test_fractional_delays_against_brute_force(method, step_mode):
    dt, batch, n_out, n_in, steps = 0.5, 2, 3, 4, 10
    generator = torch.Generator().manual_seed(7)
    # multiples of 0.25 time units: lags k/2 steps, exactly representable
    delays = torch.randint(0, 9, (n_out, n_in), generator=generator).to(torch.float32) * 0.25
    spikes = random_spikes(generator, (steps, batch, n_in), p=0.5)
    synapse = ExponentialCurrent(
        n_in, tau=3.0, amplitude=1.5, dt=dt, max_delay=2.0, interpolation=method, batch_size=batch, step_mode=step_mode
    )
    if step_mode == "single":
        got = [synapse.forward_delayed(step, delays) for step in spikes]
        got_spikes = torch.stack([g[0] for g in got])
        got_currents = torch.stack([g[1] for g in got])
    else:
        first = synapse.forward_delayed(spikes[:4], delays)
        second = synapse.forward_delayed(spikes[4:], delays)
        got_spikes = torch.cat([first[0], second[0]])
        got_currents = torch.cat([first[1], second[1]])

    currents = reference_currents("exponential", spikes, dt=dt)
    expected_spikes = torch.zeros(steps, batch, n_out, n_in, dtype=torch.bool)
    expected_currents = torch.zeros(steps, batch, n_out, n_in, dtype=torch.float64)
    spike_method = "previous" if method == "linear" else method
    for t in range(steps):
        for b in range(batch):
            for o in range(n_out):
                for i in range(n_in):
                    d = float(delays[o, i])
                    lag, _, _ = brute_force_lag(d, dt, spike_method)
                    expected_spikes[t, b, o, i] = bool(spikes[t - lag, b, i]) if t - lag >= 0 else False
                    earlier, later, fraction = brute_force_lag(d, dt, method)
                    value_earlier = float(currents[t - earlier, b, i]) if t - earlier >= 0 else 0.0
                    value_later = float(currents[t - later, b, i]) if t - later >= 0 else 0.0
                    expected_currents[t, b, o, i] = (1 - fraction) * value_later + fraction * value_earlier
    assert got_spikes.dtype == torch.bool
    assert torch.equal(got_spikes, expected_spikes)
    torch.testing.assert_close(got_currents.to(torch.float64), expected_currents, rtol=1e-6, atol=1e-7)


def test_exp_decay_read_of_exponential_current_is_exact_between_steps():
    # one spike at step 0, tau = 2, dt = 1: I(t) = exp(-t/2) for continuous t >= 0
    synapse = ExponentialCurrent(1, tau=2.0, max_delay=3.0, interpolation="exp_decay")
    synapse(torch.ones(1, 1, dtype=torch.bool))
    for _ in range(3):
        synapse(torch.zeros(1, 1, dtype=torch.bool))
    # now t = 3; delay 1.25 reads t = 1.75
    value = synapse.current_at(torch.tensor([1.25])).item()
    assert value == pytest.approx(math.exp(-1.75 / 2.0), rel=1e-6)


def test_tolerance_snaps_near_integer_delays():
    synapse = DeltaCurrent(1, max_delay=3.0)
    synapse(torch.ones(1, 1, dtype=torch.bool))
    synapse(torch.zeros(1, 1, dtype=torch.bool))
    # lag 1 - 1e-9 would be "previous" -> 1 anyway; 1 + 1e-9 would be 2 without snapping
    assert synapse.spike_at(torch.tensor([1.0 + 1e-9], dtype=torch.float64)).item() is True
    assert synapse.spike_at(torch.tensor([1.0 + 1e-3], dtype=torch.float64)).item() is False


def test_float32_delays_on_a_decimal_grid_read_the_intended_step():
    # 0.3 is 0.30000001 in float32 and 0.3 / 0.1 = 3.0000000000000004 in float64: both mean 3 steps
    synapse = DeltaCurrent(3, dt=0.1, max_delay=0.3)
    delays = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float32)
    arrivals = []
    for step in range(6):
        synapse(torch.full((1, 3), step == 0))
        arrivals.append(synapse.spike_at(delays)[0])
    assert torch.stack(arrivals).to(torch.int64).argmax(0).tolist() == [1, 2, 3]


@pytest.mark.parametrize("step_mode", ["single", "window"])
def test_history_storage_is_bounded(step_mode):
    synapse = ExponentialCurrent((2, 3), tau=2.0, max_delay=4.0, dt=0.5, batch_size=2, step_mode=step_mode)
    delays = torch.full((5, 2, 3), 1.5)
    generator = torch.Generator().manual_seed(0)
    shape = (2, 2, 3) if step_mode == "single" else (7, 2, 2, 3)
    synapse.forward_delayed(random_spikes(generator, shape), delays)
    # (in window mode the last outputs ``spike``/``current`` are window-shaped)
    initial = buffer_bytes(synapse)
    for _ in range(1000 if step_mode == "single" else 150):
        synapse.forward_delayed(random_spikes(generator, shape), delays)
        assert buffer_bytes(synapse) == initial
    assert buffer_bytes(synapse.spike_history) + buffer_bytes(synapse.current_history) == (
        synapse.capacity * 2 * 6 * (1 + 4)
    )
    assert synapse.capacity == 9


# ---------------------------------------------------------------------------- bad input


def snapshot(module: torch.nn.Module) -> dict:
    return {
        key: (value.clone() if isinstance(value, torch.Tensor) else copy.deepcopy(value))
        for key, value in module.state_dict().items()
    }


def assert_same_state(before: dict, module: torch.nn.Module) -> None:
    after = module.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, after[key]), key
        else:
            assert value == after[key], key


@pytest.mark.parametrize(
    ("bad", "error", "pattern"),
    [
        (torch.tensor([[0.5, 0.0, 1.0]]), ValueError, "^spikes"),
        (torch.tensor([[float("nan"), 0.0, 1.0]]), ValueError, "^spikes"),
        (torch.zeros(1, 4, dtype=torch.bool), ValueError, "^spikes"),
        (torch.zeros(2, 3, dtype=torch.bool), ValueError, "^spikes"),
        (torch.zeros(1, 3, dtype=torch.complex64), TypeError, "^spikes"),
        ([[0, 1, 0]], TypeError, "^spikes"),
    ],
)
def test_bad_spikes_raise_and_leave_state(bad, error, pattern):
    synapse = ExponentialCurrent(3, tau=2.0, max_delay=2.0)
    synapse(torch.tensor([[1, 0, 1]]))
    before = snapshot(synapse)
    with pytest.raises(error, match=pattern):
        synapse(bad)
    with pytest.raises(error, match=pattern):
        synapse.forward_delayed(bad, torch.zeros(3))
    assert_same_state(before, synapse)


def test_bad_delays_raise_and_leave_state():
    synapse = DeltaCurrent(3, max_delay=2.0)
    synapse(torch.tensor([[1, 0, 1]]))
    before = snapshot(synapse)
    spikes = torch.zeros(1, 3, dtype=torch.bool)
    for delay, pattern in [
        (torch.tensor([0.0, 2.5, 1.0]), "^delay"),
        (torch.tensor([0.0, -1.0, 1.0]), "^delay"),
        (torch.tensor([0.0, float("nan"), 1.0]), "^delay"),
        (torch.zeros(4), "^delay"),
    ]:
        with pytest.raises(ValueError, match=pattern):
            synapse.forward_delayed(spikes, delay)
        with pytest.raises(ValueError, match=pattern):
            synapse.spike_at(delay)
    with pytest.raises(TypeError, match=r"^delay"):
        synapse.current_at(torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"^interpolation"):
        synapse.spike_at(torch.zeros(3), interpolation="linear")
    assert_same_state(before, synapse)


def test_window_of_zero_steps_raises():
    synapse = DeltaCurrent(3, step_mode="window")
    with pytest.raises(ValueError, match=r"^spikes"):
        synapse(torch.zeros(0, 1, 3, dtype=torch.bool))


@pytest.mark.parametrize(
    ("factory", "error", "pattern"),
    [
        (lambda: SpikeFilterCurrent(3, tau=1.0, learnable=True), ValueError, "^tau"),
        (lambda: SpikeFilterCurrent(3, tau=0.5, learnable=True), ValueError, "^tau"),
        (lambda: SpikeFilterCurrent(3, tau=0.5), ValueError, "^tau"),
        (lambda: ExponentialCurrent(3, tau=0.0), ValueError, "^tau"),
        (lambda: ExponentialCurrent(3, tau=float("nan")), ValueError, "^tau"),
        (lambda: DeltaCurrent(3, dt=0.0), ValueError, "^dt"),
        (lambda: DeltaCurrent(3, dt=-1.0), ValueError, "^dt"),
        (lambda: DeltaCurrent(3, max_delay=-1.0), ValueError, "^max_delay"),
        (lambda: DeltaCurrent(3, interpolation="cubic"), ValueError, "^interpolation"),
        (lambda: DeltaCurrent(3, interpolation="exp_decay"), ValueError, "^interpolation"),
        (lambda: DeltaCurrent(3, batch_size=0), ValueError, "^batch_size"),
        (lambda: DeltaCurrent(0), ValueError, "^shape"),
        (lambda: DeltaCurrent(3, step_mode="both"), ValueError, "^step_mode"),
        (lambda: DeltaCurrent(3, amplitude=float("inf")), ValueError, "^amplitude"),
        (lambda: DeltaCurrent(3, dtype=torch.int64), TypeError, "^dtype"),
    ],
)
def test_bad_construction(factory, error, pattern):
    with pytest.raises(error, match=pattern):
        factory()


# ---------------------------------------------------------------------------- state


@pytest.mark.parametrize("kind", KINDS)
def test_state_dict_round_trip_continues_identically(kind):
    generator = torch.Generator().manual_seed(3)
    first = build(kind, (2, 2), max_delay=2.0, batch_size=2)
    for _ in range(5):
        first(random_spikes(generator, (2, 2, 2)))
    second = build(kind, (2, 2), max_delay=2.0, batch_size=2)
    second.load_state_dict(first.state_dict())
    delays = torch.tensor([[0.0, 1.0], [2.0, 1.5]])
    for _ in range(4):
        spikes = random_spikes(generator, (2, 2, 2))
        a = first.forward_delayed(spikes, delays)
        b = second.forward_delayed(spikes, delays)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("kind", KINDS)
def test_to_float64_moves_all_state(kind):
    synapse = build(kind, 3, max_delay=1.0).to(torch.float64)
    assert synapse.state.dtype == torch.float64
    assert synapse.current_history.data.dtype == torch.float64
    assert synapse.spike_history.data.dtype == torch.bool
    out = synapse(torch.tensor([[1, 0, 1]]))
    assert out.dtype == torch.float64
    assert synapse.current_at(torch.ones(3, dtype=torch.float64)).dtype == torch.float64
    for parameter in synapse.parameters():
        assert parameter.dtype == torch.float64


def test_reset_and_batch_size():
    synapse = ExponentialCurrent(3, tau=2.0, max_delay=2.0, batch_size=2)
    synapse(torch.ones(2, 3, dtype=torch.bool))
    synapse.reset()
    assert synapse.state.abs().sum() == 0
    assert synapse.spike_at(torch.zeros(3)).sum() == 0
    synapse.batch_size = 4
    assert synapse.state.shape == (4, 3)
    assert synapse.spike_history.data.shape == (synapse.capacity, 4, 3)
    assert synapse(torch.ones(4, 3, dtype=torch.bool)).shape == (4, 3)
    with pytest.raises(ValueError, match=r"^batch_size"):
        synapse.batch_size = 0
