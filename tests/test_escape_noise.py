"""Escape-noise SRM0 neurons: the step against the equations integrated neuron by neuron in plain
Python (same uniform draws), window == step loop bit for bit, the module's generator, firing
statistics at rest, state dicts, devices and dtypes, named errors with the state unchanged."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from plastic.functional.escape_noise import (
    EscapeNoiseParams,
    escape_noise_initial_state,
    escape_noise_step,
    escape_noise_window,
)
from plastic.neural.cell import Cell
from plastic.neural.connections import LinearDense
from plastic.neural.escape_noise import EscapeNoiseNeuron
from plastic.observe.monitors import Monitor
from plastic.observe.reducers import WindowReducer

F64 = torch.float64


def plain_python(inputs, uniform, params, dt):
    """Spikes, probabilities and voltages ``[T][B][N]`` from the SRM0 equations, one neuron at a time."""
    steps, batch, size = len(inputs), len(inputs[0]), len(inputs[0][0])
    decay_m = math.exp(-dt / params.tau_membrane)
    decay_eta = math.exp(-dt / params.tau_after_potential)
    ratio = params.refractory / dt
    refractory = round(ratio) if abs(ratio - round(ratio)) < 1e-9 else math.ceil(ratio)
    spikes = [[[False] * size for _ in range(batch)] for _ in range(steps)]
    probability = [[[0.0] * size for _ in range(batch)] for _ in range(steps)]
    voltage = [[[0.0] * size for _ in range(batch)] for _ in range(steps)]
    for b in range(batch):
        for n in range(size):
            psp, after, blocked = 0.0, 0.0, 0
            for t in range(steps):
                psp = psp * decay_m + inputs[t][b][n]
                felt = after * decay_eta
                u = params.u_rest + params.epsilon_0 * psp + felt
                rate = params.rho_0 * math.exp((u - params.theta) / params.delta_u)
                p = 0.0 if blocked > 0 else 1.0 - math.exp(-rate * dt / 1000.0)
                fired = uniform[t][b][n] < p
                after = params.eta_0 if fired else felt
                blocked = refractory if fired else max(blocked - 1, 0)
                spikes[t][b][n], probability[t][b][n], voltage[t][b][n] = fired, p, u
    return spikes, probability, voltage


params_strategy = st.builds(
    EscapeNoiseParams,
    tau_membrane=st.floats(1.0, 30.0),
    epsilon_0=st.floats(0.5, 5.0),
    u_rest=st.just(-70.0),
    theta=st.floats(-60.0, -45.0),
    delta_u=st.floats(1.0, 6.0),
    rho_0=st.floats(20.0, 500.0),
    eta_0=st.floats(-10.0, 0.0),
    tau_after_potential=st.floats(2.0, 20.0),
    refractory=st.sampled_from([0.0, 1.0, 2.5]),
)


@given(params=params_strategy, steps=st.integers(1, 20), batch=st.integers(1, 3), size=st.integers(1, 4),
       dt=st.sampled_from([0.5, 1.0]), seed=st.integers(0, 2**31 - 1))  # fmt: skip
def test_window_matches_the_equations_integrated_in_plain_python(params, steps, batch, size, dt, seed):
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.rand(steps, batch, size, generator=generator, dtype=F64) * 8.0
    uniform = torch.rand(steps, batch, size, generator=generator, dtype=F64)
    state = escape_noise_initial_state((batch, size), dtype=F64)
    out = escape_noise_window(inputs, state, params, dt=dt, uniform=uniform)
    spikes, probability, voltage = plain_python(inputs.tolist(), uniform.tolist(), params, dt)
    # a draw within rounding of its probability could go either way: none of those here
    assert torch.allclose(out.probability, torch.tensor(probability, dtype=F64), rtol=1e-12, atol=1e-15)
    assert torch.allclose(out.voltage, torch.tensor(voltage, dtype=F64), rtol=1e-12, atol=1e-12)
    margin = (uniform - out.probability).abs().min()
    if margin > 1e-12:
        assert torch.equal(out.spikes, torch.tensor(spikes))


@given(
    params=params_strategy,
    steps=st.integers(0, 12),
    batch=st.integers(1, 3),
    dtype=st.sampled_from([F64, torch.float32]),
    seed=st.integers(0, 2**31 - 1),
)
def test_window_equals_the_step_loop_bit_for_bit(params, steps, batch, dtype, seed):
    generator = torch.Generator().manual_seed(seed)
    inputs = (torch.rand(steps, batch, 3, generator=generator) * 10.0).to(dtype)
    uniform = torch.rand(steps, batch, 3, generator=generator).to(dtype)
    state = escape_noise_initial_state((batch, 3), dtype=dtype)
    window = escape_noise_window(inputs, state, params, dt=1.0, uniform=uniform)
    for t in range(steps):
        step = escape_noise_step(inputs[t], state, params, dt=1.0, uniform=uniform[t])
        assert torch.equal(step.spike, window.spikes[t])
        assert torch.equal(step.probability, window.probability[t])
        assert torch.equal(step.voltage, window.voltage[t])
        state = step.state
    for mine, theirs in zip(state, window.state, strict=True):
        assert torch.equal(mine, theirs)


def test_module_single_and_window_modes_agree_and_seeds_reproduce():
    inputs = torch.rand(30, 2, 5, generator=torch.Generator().manual_seed(1)) * 6.0
    single = EscapeNoiseNeuron(5, seed=3, batch_size=2, refractory=2.0, eta_0=-4.0)
    window = EscapeNoiseNeuron(5, seed=3, batch_size=2, refractory=2.0, eta_0=-4.0, step_mode="window")
    steps = torch.stack([single(inputs[t]) for t in range(30)])
    assert torch.equal(window(inputs), steps)
    assert torch.equal(window.spike, steps.bool())
    assert window.spike_probability.shape == (30, 2, 5)
    for name in ("psp", "after_potential", "refractory_remaining", "voltage"):
        assert torch.equal(getattr(single, name), getattr(window, name)), name
    other = EscapeNoiseNeuron(5, seed=4, batch_size=2, step_mode="window", refractory=2.0, eta_0=-4.0)
    assert not torch.equal(other(inputs), steps)


def test_firing_probability_at_rest():
    """With no input the neuron fires with p = 1 - exp(-rho_0 e^((u_rest - theta)/delta_u) dt/1000) per step."""
    neuron = EscapeNoiseNeuron(200, seed=0, batch_size=50, refractory=0.0, rho_0=200.0, theta=-65.0,
                               step_mode="window")  # fmt: skip
    spikes = neuron(torch.zeros(100, 50, 200))
    p = 1.0 - math.exp(-200.0 * math.exp(-5.0 / 5.0) / 1000.0)
    assert torch.allclose(neuron.spike_probability, torch.full_like(neuron.spike_probability, p))
    count = spikes.numel()
    assert abs(float(spikes.mean()) - p) < 5 * math.sqrt(p * (1 - p) / count)


def test_refractory_period_and_after_potential():
    neuron = EscapeNoiseNeuron(1, refractory=3.0, eta_0=-10.0, tau_after_potential=5.0, rho_0=1e9, theta=-70.0,
                               step_mode="window", seed=0)  # fmt: skip
    spikes = neuron(torch.zeros(8, 1, 1))
    # certain to fire when allowed (rho_0 huge): steps 0, 4 (after 3 refractory steps)
    assert spikes[:, 0, 0].tolist() == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    # the after-potential of the spike at 0, felt at 1 as eta_0 * exp(-1/5)
    assert neuron.spike_probability[1:4].eq(0).all()
    neuron.reset()
    neuron.step_mode = "single"
    neuron(torch.zeros(1, 1))
    neuron(torch.zeros(1, 1))
    assert neuron.voltage.item() == pytest.approx(-70.0 - 10.0 * math.exp(-0.2), rel=1e-6)


def test_state_dict_round_trip_continues_identically():
    inputs = torch.rand(20, 3, 4, generator=torch.Generator().manual_seed(5)) * 6.0
    first = EscapeNoiseNeuron(4, batch_size=3, seed=7, step_mode="window", eta_0=-3.0)
    first(inputs[:10])
    saved = {key: value.clone() for key, value in first.state_dict().items()}
    generator_state = first.generator.get_state()
    expected = first(inputs[10:])
    second = EscapeNoiseNeuron(4, batch_size=3, seed=99, step_mode="window", eta_0=-3.0)
    second.load_state_dict(saved)
    second.generator.set_state(generator_state)
    assert torch.equal(second(inputs[10:]), expected)
    assert set(saved) == {"psp", "after_potential", "refractory_remaining", "voltage"}


def test_to_dtype_moves_the_state_and_keeps_the_counter():
    neuron = EscapeNoiseNeuron(3, batch_size=2)
    neuron.to(F64)
    assert neuron.psp.dtype == F64 and neuron.voltage.dtype == F64
    assert neuron.refractory_remaining.dtype == torch.int32
    neuron(torch.zeros(2, 3, dtype=F64))
    assert neuron.spike_probability.dtype == F64
    neuron.batch_size = 4
    assert neuron.psp.shape == (4, 3) and neuron.voltage.eq(-70.0).all()


def test_in_a_cell_with_a_monitor_of_the_probability():
    neuron = EscapeNoiseNeuron(2, batch_size=3, seed=0)
    cell = Cell(LinearDense(4, 2, batch_size=3), neuron)
    monitor = Monitor(WindowReducer(10), cell, "neuron.spike_probability")
    cell.step_mode = "window"
    cell(torch.ones(5, 3, 4))
    assert torch.equal(monitor.reducer.recent(5), neuron.spike_probability)


def test_bad_input_gets_named_errors_and_leaves_the_state():
    neuron = EscapeNoiseNeuron(3, batch_size=2, seed=0)
    neuron(torch.ones(2, 3))
    before = {key: value.clone() for key, value in neuron.state_dict().items()}
    generator_state = neuron.generator.get_state()
    for bad, error in (
        (torch.ones(3, 3), ValueError),
        (torch.ones(2, 3, dtype=F64), TypeError),
        (torch.full((2, 3), float("nan")), ValueError),
        ([1.0, 2.0], TypeError),
    ):
        with pytest.raises(error, match=r"^inputs"):
            neuron(bad)
    for key, value in neuron.state_dict().items():
        assert torch.equal(value, before[key])
    assert torch.equal(neuron.generator.get_state(), generator_state)  # nothing drawn
    with pytest.raises(ValueError, match="delta_u"):
        EscapeNoiseNeuron(3, delta_u=0.0)
    with pytest.raises(ValueError, match="refractory"):
        EscapeNoiseNeuron(3, refractory=-1.0)
    with pytest.raises(TypeError, match="generator"):
        EscapeNoiseNeuron(3, generator=0)
    with pytest.raises(ValueError, match="step_mode"):
        EscapeNoiseNeuron(3, step_mode="steps")
    state = escape_noise_initial_state((2, 3))
    with pytest.raises(ValueError, match=r"^uniform"):
        escape_noise_step(torch.ones(2, 3), state, EscapeNoiseParams(), dt=1.0, uniform=torch.full((2, 3), 1.0))
    with pytest.raises(ValueError, match=r"^uniform"):
        escape_noise_step(torch.ones(2, 3), state, EscapeNoiseParams(), dt=1.0, uniform=torch.zeros(3, 3))
    with pytest.raises(TypeError, match=r"^state"):
        escape_noise_step(torch.ones(2, 3), (1, 2), EscapeNoiseParams(), dt=1.0, uniform=torch.zeros(2, 3))
    with pytest.raises(TypeError, match=r"^params"):
        escape_noise_step(torch.ones(2, 3), state, None, dt=1.0, uniform=torch.zeros(2, 3))


def test_voltage_sequence_when_asked():
    neuron = EscapeNoiseNeuron(2, batch_size=1, seed=0, step_mode="window", store_voltage_sequence=True)
    neuron(torch.ones(4, 1, 2))
    assert neuron.voltage_sequence.shape == (4, 1, 2)
    assert torch.equal(neuron.voltage_sequence[-1], neuron.voltage)
    with pytest.raises(RuntimeError, match="voltage_sequence"):
        _ = EscapeNoiseNeuron(2).voltage_sequence  # the read itself raises
