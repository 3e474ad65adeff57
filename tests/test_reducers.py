"""Reducers against independent references: brute-force loops and closed forms."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from plastic.observe.reducers import (
    CumulativeAverageReducer,
    CumulativeTraceReducer,
    EMAReducer,
    EventTimeReducer,
    NearestTraceReducer,
    PassthroughReducer,
    WindowReducer,
)

DTS = st.sampled_from([0.1, 0.25, 0.5, 1.0, 2.0])
SHAPES = st.sampled_from([(1,), (3,), (2, 3), (2, 2, 2)])


def spike_train(steps: int, shape: tuple[int, ...], rate: float, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand((steps, *shape), generator=generator) < rate


def split_points(steps: int, seed: int) -> list[int]:
    """Random chunk boundaries of a window (chunks may be empty)."""
    generator = torch.Generator().manual_seed(seed + 1)
    cuts = sorted(torch.randint(0, steps + 1, (3,), generator=generator).tolist())
    return [0, *cuts, steps]


# ---------------------------------------------------------------- references
def event_time_reference(spikes: torch.Tensor, dt: float, initial: float = math.nan) -> torch.Tensor:
    """Plain loops: steps since the last spike (inclusive) times dt, per element and step."""
    steps = spikes.shape[0]
    flat = spikes.reshape(steps, -1)
    out = torch.full(flat.shape, initial, dtype=torch.float64)
    for element in range(flat.shape[1]):
        last = None
        for t in range(steps):
            if bool(flat[t, element]):
                last = t
            if last is not None:
                out[t, element] = (t - last) * dt
    return out.reshape(spikes.shape)


def delayed_event_time_reference(
    spikes: torch.Tensor, now: int, delays: torch.Tensor, dt: float, tolerance: float, nearest: bool
) -> torch.Tensor:
    """Time since the latest spike arrived (spike at s arrives at s*dt + d), per element.

    ``spikes`` is ``[T, B, *rest]``; ``delays`` broadcasts with ``rest`` and may
    add leading dimensions (per synapse); the result is ``[B, *broadcast]``.
    """
    batch, rest = spikes.shape[1], spikes.shape[2:]
    per = torch.broadcast_shapes(rest, delays.shape)
    extra = len(per) - len(rest)
    history = spikes[: now + 1].reshape(now + 1, batch, *(1,) * extra, *rest).expand(now + 1, batch, *per)
    flat = history.reshape(now + 1, -1)
    flat_delays = delays.expand(batch, *per).reshape(-1)
    out = torch.full((flat.shape[1],), math.nan, dtype=torch.float64)
    for element in range(flat.shape[1]):
        lag = float(flat_delays[element]) / dt
        if abs(lag - round(lag)) <= tolerance:  # tolerance in steps
            lag = float(round(lag))
        if nearest:
            lag = float(math.floor(lag + 0.5))
        arrived = [s for s in range(now + 1) if bool(flat[s, element]) and s + lag <= now]
        if arrived:
            out[element] = (now - max(arrived) - lag) * dt
    return out.reshape(batch, *per)


def cumulative_closed_form(values: torch.Tensor, decay: float, amplitude: float) -> torch.Tensor:
    """x_t = sum_{s <= t} a^(t-s) * A * v_s, as an explicit sum over the past."""
    values = values.to(torch.float64)
    out = torch.zeros_like(values)
    for t in range(values.shape[0]):
        for s in range(t + 1):
            out[t] += decay ** (t - s) * amplitude * values[s]
    return out


def nearest_closed_form(spikes: torch.Tensor, decay: float, amplitude: float) -> torch.Tensor:
    """x_t = A * a^(t - last spike), 0 before any spike, per element."""
    steps = spikes.shape[0]
    flat = spikes.reshape(steps, -1)
    out = torch.zeros(flat.shape, dtype=torch.float64)
    for element in range(flat.shape[1]):
        last = None
        for t in range(steps):
            if bool(flat[t, element]):
                last = t
            if last is not None:
                out[t, element] = amplitude * decay ** (t - last)
    return out.reshape(spikes.shape)


def run_single(reducer, values: torch.Tensor) -> list[torch.Tensor]:
    seen = []
    for step in values:
        reducer(step)
        seen.append(reducer.peek())
    return seen


def run_chunks(reducer, values: torch.Tensor, cuts: list[int]) -> list[tuple[int, torch.Tensor]]:
    """Feed windows between cuts; returns (last step index, peek) after each non-empty chunk."""
    seen = []
    for start, stop in itertools.pairwise(cuts):
        reducer(values[start:stop], window=True)
        if stop > start:
            seen.append((stop - 1, reducer.peek()))
    return seen


def tensor_bytes(module: torch.nn.Module) -> int:
    return sum(buffer.numel() * buffer.element_size() for buffer in module.buffers())


# ---------------------------------------------------------------- event time
@given(
    shape=SHAPES,
    steps=st.integers(1, 30),
    rate=st.floats(0.0, 1.0),
    dt=DTS,
    seed=st.integers(0, 2**16),
)
def test_event_time_matches_brute_force(shape, steps, rate, dt, seed):
    spikes = spike_train(steps, shape, rate, seed)
    expected = event_time_reference(spikes, dt)
    single = run_single(EventTimeReducer(dt), spikes)
    for t in range(steps):
        torch.testing.assert_close(single[t].double(), expected[t], equal_nan=True)
    windowed = EventTimeReducer(dt)
    for t, value in run_chunks(windowed, spikes, split_points(steps, seed)):
        torch.testing.assert_close(value, single[t], equal_nan=True, atol=0, rtol=0)


def test_event_time_hand_case_and_initial_values():
    spikes = torch.tensor([[0, 0], [1, 0], [0, 0], [0, 1], [0, 0]], dtype=torch.bool)
    expected = [[math.nan, math.nan], [0.0, math.nan], [0.5, math.nan], [1.0, 0.0], [1.5, 0.5]]
    reducer = EventTimeReducer(dt=0.5)
    for step, row in zip(spikes, expected, strict=True):
        reducer(step)
        torch.testing.assert_close(reducer.peek(), torch.tensor(row), equal_nan=True)
    for initial, value in (("inf", math.inf), ("zero", 0.0)):
        reducer = EventTimeReducer(dt=0.5, initial=initial)
        reducer(spikes[:3], window=True)
        torch.testing.assert_close(reducer.peek(), torch.tensor([0.5, value]))


def test_event_time_nan_before_first_spike():
    reducer = EventTimeReducer(dt=1.0)
    reducer(torch.zeros(10, 4, dtype=torch.bool), window=True)
    assert torch.isnan(reducer.peek()).all()
    reducer(torch.tensor([True, False, False, False]))
    assert reducer.peek()[0] == 0 and torch.isnan(reducer.peek()[1:]).all()


def test_event_time_criterion_on_values():
    voltage = torch.tensor([[0.2, 1.5], [1.1, 0.0], [0.3, 0.9]])
    reducer = EventTimeReducer(dt=1.0, criterion=lambda v: v > 1.0)
    reducer(voltage, window=True)
    torch.testing.assert_close(reducer.peek(), torch.tensor([1.0, 2.0]))


@given(
    shape=st.sampled_from([(3,), (2, 3), (1, 2, 2)]),
    per_synapse=st.booleans(),
    steps=st.integers(1, 25),
    rate=st.floats(0.05, 0.9),
    dt=DTS,
    max_delay_steps=st.integers(0, 6),
    nearest=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_event_time_delayed_reads_match_brute_force(
    shape, per_synapse, steps, rate, dt, max_delay_steps, nearest, seed
):
    spikes = spike_train(steps, shape, rate, seed)
    duration = max_delay_steps * dt
    generator = torch.Generator().manual_seed(seed + 7)
    # one delay per element without the batch, or per synapse (2 outputs x the elements)
    delay_shape = ((2,) if per_synapse else ()) + shape[1:]
    # half integer multiples of dt (some nudged inside the tolerance), half fractional
    integral = torch.randint(0, max_delay_steps + 1, delay_shape, generator=generator).double() * dt
    nudge = (torch.rand(delay_shape, generator=generator).double() - 0.5) * 1e-8
    fractional = torch.rand(delay_shape, generator=generator).double() * duration
    delays = torch.where(torch.rand(delay_shape, generator=generator) < 0.5, integral + nudge, fractional)
    delays = delays.clamp(0.0, duration).float()  # the reducer's dtype; the reference reads the same values
    # the cast may round the duration itself up past it (float32 0.3 is 0.30000001): the next float32 down
    # keeps every delay inside the history (the rounded-up duration has its own test below)
    delays = torch.where(delays.double() > duration, delays.nextafter(torch.zeros_like(delays)), delays)
    tolerance = 1e-7
    interpolation = "nearest" if nearest else "previous"
    single = EventTimeReducer(dt, duration=duration, interpolation=interpolation, tolerance=tolerance)
    for t in range(steps):
        single(spikes[t])
        expected = delayed_event_time_reference(spikes, t, delays, dt, tolerance, nearest)
        torch.testing.assert_close(single.view(delays), expected.float(), equal_nan=True)
    windowed = EventTimeReducer(dt, duration=duration, interpolation=interpolation, tolerance=tolerance)
    cuts = split_points(steps, seed)
    for start, stop in itertools.pairwise(cuts):
        windowed(spikes[start:stop], window=True)
        if stop > start:
            expected = delayed_event_time_reference(spikes, stop - 1, delays, dt, tolerance, nearest)
            torch.testing.assert_close(windowed.view(delays), expected.float(), equal_nan=True)


def test_event_time_delayed_read_hand_case():
    # one presynaptic neuron (B = 1, N_in = 1) spiking at step 1, dt = 1; now = step 5
    reducer = EventTimeReducer(dt=1.0, duration=4.0)
    reducer(torch.tensor([0, 1, 0, 0, 0, 0], dtype=torch.bool).reshape(6, 1, 1), window=True)
    # four synapses (N_out = 4) with their own delays: [N_out, N_in] against [B, N_in]
    delays = torch.tensor([[0.0], [1.0], [2.5], [4.0]])
    # arrival at 1 + d; time since = 5 - 1 - d = 4 - d (all arrived)
    torch.testing.assert_close(reducer.view(delays), torch.tensor([[[4.0], [3.0], [1.5], [0.0]]]))
    reducer(torch.tensor([[True]]))  # now 6, a new spike at 6 arrives at 6 + d
    torch.testing.assert_close(reducer.view(torch.tensor([[0.0], [0.5], [3.0]])), torch.tensor([[[0.0], [4.5], [2.0]]]))


def test_event_time_tolerance_snaps_delays():
    # tolerance is in steps: with dt = 0.5 a tolerance of 1e-6 steps is 5e-7 time units
    reducer = EventTimeReducer(dt=0.5, duration=1.5, tolerance=1e-6)
    reducer(torch.tensor([[1], [0], [0]], dtype=torch.bool), window=True)  # spike at step 0, now step 2
    # 1.0 + 4e-7 (0.8e-6 steps past 2 steps): snapped to 2 steps, the spike (arrival at step 2) is seen
    torch.testing.assert_close(reducer.view(1.0 + 4e-7), torch.tensor([0.0]))
    # outside the tolerance, or without one, the spike has not arrived yet
    assert torch.isnan(reducer.view(1.0 + 1e-6)).all()
    assert torch.isnan(reducer.view(1.0 + 4e-7, tolerance=0.0)).all()


# ---------------------------------------------------------------- traces
@given(
    shape=SHAPES,
    steps=st.integers(1, 20),
    rate=st.floats(0.0, 1.0),
    dt=DTS,
    tau=st.floats(2.0, 30.0),
    amplitude=st.floats(-2.0, 2.0),
    exact=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_cumulative_trace_closed_form(shape, steps, rate, dt, tau, amplitude, exact, seed):
    spikes = spike_train(steps, shape, rate, seed)
    decay = math.exp(-dt / tau) if exact else 1.0 - dt / tau
    expected = cumulative_closed_form(spikes, decay, amplitude)
    reducer = CumulativeTraceReducer(dt, tau, amplitude=amplitude, exact=exact)
    single = run_single(reducer, spikes)
    for t in range(steps):
        torch.testing.assert_close(single[t].double(), expected[t], atol=1e-5, rtol=1e-5)
    windowed = CumulativeTraceReducer(dt, tau, amplitude=amplitude, exact=exact)
    for t, value in run_chunks(windowed, spikes, split_points(steps, seed)):
        assert torch.equal(value, single[t])


@given(
    shape=SHAPES,
    steps=st.integers(1, 20),
    rate=st.floats(0.0, 1.0),
    dt=DTS,
    tau=st.floats(2.0, 30.0),
    amplitude=st.floats(0.1, 2.0),
    exact=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_nearest_trace_closed_form(shape, steps, rate, dt, tau, amplitude, exact, seed):
    spikes = spike_train(steps, shape, rate, seed)
    decay = math.exp(-dt / tau) if exact else 1.0 - dt / tau
    expected = nearest_closed_form(spikes, decay, amplitude)
    reducer = NearestTraceReducer(dt, tau, amplitude=amplitude, exact=exact)
    single = run_single(reducer, spikes.float())  # {0, 1} floats are spikes too
    for t in range(steps):
        torch.testing.assert_close(single[t].double(), expected[t], atol=1e-6, rtol=1e-5)
    windowed = NearestTraceReducer(dt, tau, amplitude=amplitude, exact=exact)
    for t, value in run_chunks(windowed, spikes, split_points(steps, seed)):
        assert torch.equal(value, single[t])


@given(steps=st.integers(1, 15), scale=st.floats(-3.0, 3.0), seed=st.integers(0, 2**16))
def test_cumulative_trace_of_values_and_criterion(steps, scale, seed):
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(steps, 2, 3, generator=generator, dtype=torch.float64)
    decay = math.exp(-1.0 / 5.0)
    reducer = CumulativeTraceReducer(1.0, 5.0, amplitude=0.5, scale=scale)
    single = run_single(reducer, values)
    expected = cumulative_closed_form(values * scale, decay, 0.5)
    for t in range(steps):
        torch.testing.assert_close(single[t], expected[t])
    assert single[0].dtype == torch.float64  # state follows the float input
    criterion = CumulativeTraceReducer(1.0, 5.0, amplitude=0.5, scale=scale, criterion=lambda v: v > 0.3)
    criterion(values, window=True)
    torch.testing.assert_close(criterion.peek(), cumulative_closed_form(values > 0.3, decay, 0.5)[-1])


def test_trace_delayed_read_exp_decay():
    reducer = CumulativeTraceReducer(dt=1.0, tau=4.0, duration=3.0)
    reducer(torch.tensor([[1.0], [0.0], [0.0], [0.0]]), window=True)  # x_t = exp(-t/4)
    for delay in (0.0, 1.0, 1.5, 2.25, 3.0):
        # the trace at time 3 - delay, between samples it decays from the earlier sample
        torch.testing.assert_close(reducer.view(delay), torch.tensor([math.exp(-(3 - delay) / 4.0)]))


# ---------------------------------------------------------------- rates, passthrough, window
@given(steps=st.integers(1, 20), alpha=st.floats(0.01, 1.0), seed=st.integers(0, 2**16))
def test_ema_reference_and_window(steps, alpha, seed):
    generator = torch.Generator().manual_seed(seed)
    values = torch.rand(steps, 3, generator=generator, dtype=torch.float64)
    expected = values[0].clone()
    for t in range(1, steps):
        expected = (1 - alpha) * expected + alpha * values[t]
    single = run_single(EMAReducer(alpha), values)
    torch.testing.assert_close(single[-1], expected)
    windowed = EMAReducer(alpha)
    for t, value in run_chunks(windowed, values, split_points(steps, seed)):
        assert torch.equal(value, single[t])


@given(steps=st.integers(1, 30), seed=st.integers(0, 2**16))
def test_cumulative_average_reference_and_window(steps, seed):
    spikes = spike_train(steps, (2, 3), 0.4, seed)
    single = run_single(CumulativeAverageReducer(), spikes)
    for t in range(steps):
        expected = spikes[: t + 1].double().sum(0) / (t + 1)
        torch.testing.assert_close(single[t].double(), expected, atol=1e-6, rtol=1e-6)
    windowed = CumulativeAverageReducer()
    for t, value in run_chunks(windowed, spikes, split_points(steps, seed)):
        assert torch.equal(value, single[t])


@given(steps=st.integers(1, 12), keep=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_window_reducer_keeps_last_steps(steps, keep, seed):
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(steps, 2, generator=generator)
    single, windowed = WindowReducer(keep), WindowReducer(keep)
    run_single(single, values)
    run_chunks(windowed, values, split_points(steps, seed))
    expected = torch.zeros(keep, 2)
    held = min(steps, keep)
    expected[keep - held :] = values[steps - held :]
    assert torch.equal(single.peek(), expected) and torch.equal(windowed.peek(), expected)
    assert single.count == held == windowed.count
    assert single.total == steps == windowed.total
    single.clear()
    assert single.total == 0 and single.count == 0


@pytest.mark.parametrize("interpolation", ["previous", "nearest", "linear"])
def test_passthrough_delayed_reads(interpolation):
    values = torch.tensor([1.0, 2.0, 4.0, 8.0, 16.0])
    reducer = PassthroughReducer(dt=0.5, duration=1.5, interpolation=interpolation)
    reducer(values[:, None], window=True)
    assert torch.equal(reducer.peek(), torch.tensor([16.0]))
    history = values.tolist()[::-1]  # lag 0 first
    for delay in (0.0, 0.25, 0.5, 0.75, 1.2, 1.5):
        lag = delay / 0.5
        if interpolation == "previous":
            expected = history[math.ceil(lag)]
        elif interpolation == "nearest":
            expected = history[math.floor(lag + 0.5)]
        else:
            fraction = lag - math.floor(lag)
            expected = (1 - fraction) * history[math.floor(lag)] + fraction * history[math.ceil(lag)]
        torch.testing.assert_close(reducer.view(delay), torch.tensor([expected]))


def test_passthrough_keeps_dtype_and_zero_before_run():
    reducer = PassthroughReducer(dt=1.0, duration=3.0)
    reducer(torch.tensor([True, False]))
    assert reducer.peek().dtype == torch.bool
    assert torch.equal(reducer.view(2.0), torch.tensor([False, False]))


# ---------------------------------------------------------------- state, devices, memory
@pytest.mark.parametrize(
    "make",
    [
        lambda: EventTimeReducer(0.5, duration=2.0),
        lambda: PassthroughReducer(0.5, duration=1.0),
        lambda: CumulativeTraceReducer(0.5, 4.0, duration=1.0),
        lambda: NearestTraceReducer(0.5, 4.0),
        lambda: EMAReducer(0.2),
        lambda: CumulativeAverageReducer(),
        lambda: WindowReducer(4),
    ],
)
def test_state_dict_round_trip_into_fresh_reducer(make):
    spikes = spike_train(12, (2, 3), 0.3, 3)
    original = make()
    original(spikes[:7], window=True)
    fresh = make()
    fresh.load_state_dict(original.state_dict())
    assert fresh.shape == original.shape
    original(spikes[7:], window=True)
    fresh(spikes[7:], window=True)
    torch.testing.assert_close(fresh.peek(), original.peek(), equal_nan=True, atol=0, rtol=0)
    if not isinstance(original, WindowReducer):
        torch.testing.assert_close(
            fresh.view(0.5 if original.history is not None else 0.0),
            original.view(0.5 if original.history is not None else 0.0),
            equal_nan=True,
            atol=0,
            rtol=0,
        )
    # a shape change is still refused after loading
    with pytest.raises(ValueError, match=r"^value"):
        fresh(torch.zeros(3, 2, dtype=torch.bool))


def test_to_moves_state_dtype():
    reducer = CumulativeTraceReducer(1.0, 4.0, duration=2.0)
    reducer(torch.tensor([True, False]))
    reducer.to(torch.float64)
    assert reducer.peek().dtype == torch.float64 and reducer.history.data.dtype == torch.float64
    reducer(torch.tensor([False, True]))
    torch.testing.assert_close(reducer.peek(), torch.tensor([math.exp(-0.25), 1.0], dtype=torch.float64))


def test_clear_restores_initial_state_and_frees_shape():
    reducer = EventTimeReducer(1.0, duration=2.0)
    reducer(torch.tensor([True, False]))
    reducer.clear()
    assert torch.isnan(reducer.peek()).all() and reducer.history.count == 0
    reducer(torch.tensor([[False, True, True]]))  # a new shape is accepted after clear
    assert reducer.shape == (1, 3)


@pytest.mark.parametrize(
    "make",
    [
        lambda: EventTimeReducer(1.0, duration=5.0),
        lambda: PassthroughReducer(1.0, duration=5.0),
        lambda: CumulativeTraceReducer(1.0, 4.0, duration=5.0),
        lambda: NearestTraceReducer(1.0, 4.0),
        lambda: EMAReducer(0.2),
        lambda: CumulativeAverageReducer(),
        lambda: WindowReducer(8),
    ],
)
def test_memory_does_not_grow(make):
    reducer = make()
    spikes = spike_train(1000, (2, 4), 0.2, 0)
    reducer(spikes, window=True)
    held = tensor_bytes(reducer)
    for _ in range(20):
        reducer(spikes, window=True)
    for step in spikes[:100]:
        reducer(step)
    assert tensor_bytes(reducer) == held


# ---------------------------------------------------------------- bad input
def snapshot(reducer) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in reducer.state_dict().items() if isinstance(value, torch.Tensor)}


def assert_same_state(reducer, before) -> None:
    after = snapshot(reducer)
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(
            before[key].nan_to_num(-1.0) if before[key].is_floating_point() else before[key],
            after[key].nan_to_num(-1.0) if after[key].is_floating_point() else after[key],
        )


@pytest.mark.parametrize(
    "make, bad, match",
    [
        (lambda: EventTimeReducer(1.0, duration=2.0), torch.tensor([0.0, math.nan]), "^value"),
        (lambda: EventTimeReducer(1.0), torch.tensor([0.0, 0.5]), "^value"),
        (lambda: EventTimeReducer(1.0, criterion=lambda v: v > 0), torch.tensor([0.0, math.nan]), "^value"),
        (lambda: CumulativeTraceReducer(1.0, 3.0, duration=2.0), torch.tensor([0.0, math.nan]), "^value"),
        (lambda: CumulativeTraceReducer(1.0, 3.0), torch.tensor([math.inf, 0.0]), "^value"),
        (lambda: NearestTraceReducer(1.0, 3.0), torch.tensor([2.0, 0.0]), "^value"),
        (lambda: EMAReducer(0.3), torch.tensor([math.nan, 0.0]), "^value"),
        (lambda: CumulativeAverageReducer(), torch.tensor([math.nan, 0.0]), "^value"),
        (lambda: EventTimeReducer(1.0), torch.tensor([0.0, 1.0, 0.0]), "^value"),  # shape change
        (lambda: WindowReducer(3), torch.zeros(2, 2), "^value"),  # shape change
    ],
)
def test_bad_values_raise_and_leave_state(make, bad, match):
    reducer = make()
    reducer(torch.tensor([1.0, 0.0]))
    before = snapshot(reducer)
    with pytest.raises(ValueError, match=match):
        reducer(bad)
    with pytest.raises(ValueError, match=match):
        reducer(bad[None].expand(3, *bad.shape), window=True)
    assert_same_state(reducer, before)


def test_bad_parameters_raise_named_errors():
    with pytest.raises(ValueError, match=r"^dt"):
        EventTimeReducer(0.0)
    with pytest.raises(ValueError, match=r"^dt"):
        CumulativeTraceReducer(-1.0, 3.0)
    with pytest.raises(ValueError, match=r"^tau"):
        CumulativeTraceReducer(1.0, 0.0)
    with pytest.raises(ValueError, match=r"^tau"):
        NearestTraceReducer(1.0, -2.0)
    with pytest.raises(ValueError, match=r"^tau"):
        CumulativeTraceReducer(1.0, 0.5, exact=False)  # Euler needs tau >= dt
    with pytest.raises(ValueError, match=r"^initial"):
        EventTimeReducer(1.0, initial="minus")
    with pytest.raises(ValueError, match=r"^duration"):
        EventTimeReducer(1.0, duration=-1.0)
    with pytest.raises(ValueError, match=r"^interpolation"):
        EventTimeReducer(1.0, interpolation="linear")
    with pytest.raises(ValueError, match=r"^alpha"):
        EMAReducer(0.0)
    with pytest.raises(ValueError, match=r"^alpha"):
        EMAReducer(1.5)
    with pytest.raises(ValueError, match=r"^steps"):
        WindowReducer(0)
    with pytest.raises(ValueError, match=r"^tau"):
        PassthroughReducer(1.0, 2.0, interpolation="exp_decay")


def test_bad_delays_and_criteria():
    reducer = EventTimeReducer(1.0, duration=2.0)
    with pytest.raises(RuntimeError, match="nothing observed"):
        reducer.view(0.0)
    reducer(torch.tensor([[True, False]]))
    with pytest.raises(ValueError, match=r"^delay"):
        reducer.view(2.5)
    with pytest.raises(ValueError, match=r"^delay"):
        reducer.view(torch.tensor([-1.0, 0.0]))
    with pytest.raises(ValueError, match=r"^delay"):
        reducer.view(torch.zeros(3))
    broken = CumulativeTraceReducer(1.0, 2.0, criterion=lambda v: v * 2)
    with pytest.raises(TypeError, match=r"^criterion"):
        broken(torch.tensor([1.0]))
    with pytest.raises(ValueError, match=r"^value"):
        EventTimeReducer(1.0)(torch.tensor(True), window=True)
    with pytest.raises(TypeError, match=r"^value"):
        EventTimeReducer(1.0)([1, 0])


def test_passthrough_per_synapse_delays_add_dimensions_after_batch():
    # samples [B=2, N_in=3] at steps 0..4 hold 10*t + (b, n) codes; delays [N_out=4, N_in=3]
    codes = torch.arange(6.0).reshape(2, 3)
    values = torch.stack([10.0 * t + codes for t in range(5)])
    reducer = PassthroughReducer(dt=1.0, duration=4.0)
    reducer(values, window=True)
    delays = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 0.0], [1.0, 1.0, 1.0], [4.0, 2.0, 3.0]])
    read = reducer.view(delays)
    assert read.shape == (2, 4, 3)
    for b in range(2):
        for o in range(4):
            for n in range(3):
                step = 4 - int(delays[o, n])
                assert read[b, o, n] == 10.0 * step + codes[b, n]


def test_a_float32_delay_of_the_whole_duration_reads_the_oldest_step() -> None:
    # dt = 0.1, a history of 3 steps: float32 0.3 is 0.30000001, 1.2e-7 steps past the history; it is the
    # duration, read as the float64 0.3 is: the event time 3 steps ago (the spike of step 0 at t = 0.0)
    reducer = EventTimeReducer(0.1, duration=0.3, interpolation="previous")
    for spike in ([True, False], [False, True], [False, False], [False, False]):
        reducer(torch.tensor([spike]))
    float64_read = reducer.view(0.3)
    float32_read = reducer.view(torch.tensor([0.3, 0.3], dtype=torch.float32))
    torch.testing.assert_close(float32_read, float64_read, equal_nan=True)  # no event yet: NaN
    assert float32_read[0, 0].item() == pytest.approx(0.0)
    assert math.isnan(float32_read[0, 1].item())  # its first spike came one step later
    with pytest.raises(ValueError, match=r"^delay: expected finite values in \[0, duration"):
        reducer.view(torch.tensor([0.31, 0.3], dtype=torch.float32))  # a real step past the history
