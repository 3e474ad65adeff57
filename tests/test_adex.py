"""The AdEx neuron of Clopath et al. (2010) against its equations integrated step by step in
plain Python: Euler for u and w, exact (or Euler) decays for z and V_T, a spike detected at
v_peak, held at v_spike for ceil(spike_duration / dt) steps, then the reset with the jumps."""

from __future__ import annotations

import math

import attrs
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plastic.functional.adex import AdExParams, adex_initial_state, adex_step, adex_window
from plastic.neural.adex import AdEx
from plastic.neural.cell import Cell
from plastic.neural.connections import LinearDense
from plastic.observe.monitors import Monitor
from plastic.observe.reducers import WindowReducer

F64 = torch.float64


def reference_run(currents, params: AdExParams, dt: float):
    """Plain Python: one neuron, a list of input currents (pA); returns (spikes, voltages)."""
    p = params
    a_z = math.exp(-dt / p.tau_afterpotential) if p.exact else 1 - dt / p.tau_afterpotential
    a_vt = math.exp(-dt / p.tau_threshold) if p.exact else 1 - dt / p.tau_threshold
    plateau_steps = max(1, math.ceil(p.spike_duration / dt - 1e-9))
    u, w, z, vt, left = p.v_rest, 0.0, 0.0, p.v_threshold_rest, 0
    spikes, voltages = [], []
    for current in currents:
        fired = False
        if left >= 2:  # inside the spike's plateau: u held, w frozen
            u = p.v_spike
            left -= 1
        else:
            if left == 1:  # the plateau ended: reset and jumps
                u, w, z, vt = p.v_reset, w + p.adaptation_jump, p.afterpotential, p.v_threshold_max
            du = (
                (
                    -p.leak_conductance * (u - p.v_rest)
                    + p.leak_conductance * p.slope_factor * math.exp((u - vt) / p.slope_factor)
                    - w
                    + z
                    + current
                )
                * dt
                / p.capacitance
            )
            w = w + (p.adaptation_coupling * (u - p.v_rest) - w) * dt / p.tau_adaptation
            h = u + du
            fired = h >= p.v_peak
            u = p.v_spike if fired else h
            left = plateau_steps if fired else 0
        z = z * a_z
        vt = p.v_threshold_rest + (vt - p.v_threshold_rest) * a_vt
        spikes.append(fired)
        voltages.append(u)
    return spikes, voltages


def drive(steps: int, batch: int, neurons: int, seed: int) -> torch.Tensor:
    """Input currents (pA): noise around a suprathreshold mean, with a few strong pulses."""
    generator = torch.Generator().manual_seed(seed)
    currents = 500.0 + 300.0 * torch.rand(steps, batch, neurons, generator=generator, dtype=F64)
    pulses = torch.rand(steps, batch, neurons, generator=generator, dtype=F64) < 0.02
    return currents + pulses * 3e4


@settings(deadline=None, max_examples=15)
@given(
    dt=st.sampled_from([0.5, 1.0]),
    exact=st.booleans(),
    spike_duration=st.sampled_from([0.5, 1.0, 2.0, 2.5]),
    adaptation_jump=st.sampled_from([0.805, 80.5]),
    seed=st.integers(0, 2**31 - 1),
)
def test_window_matches_the_equations_in_plain_python(dt, exact, spike_duration, adaptation_jump, seed):
    params = AdExParams(exact=exact, spike_duration=spike_duration, adaptation_jump=adaptation_jump)
    currents = drive(200, 2, 3, seed)
    result = adex_window(currents, adex_initial_state((2, 3), params, dtype=F64), params, dt=dt)
    assert result.spikes.any()
    for b in range(2):
        for i in range(3):
            spikes, voltages = reference_run(currents[:, b, i].tolist(), params, dt)
            assert result.spikes[:, b, i].tolist() == spikes
            torch.testing.assert_close(
                result.voltages[:, b, i], torch.tensor(voltages, dtype=F64), rtol=1e-12, atol=1e-9
            )


def test_hand_computed_first_step_and_one_forced_spike():
    params = AdExParams()
    p = params
    state = adex_initial_state((1, 1), params, dtype=F64)
    fired, state = adex_step(torch.full((1, 1), 100.0, dtype=F64), state, params, dt=1.0)
    # from rest: only the exponential term and the input drive u
    expected = -70.6 + (30.0 * 2.0 * math.exp((-70.6 + 50.4) / 2.0) + 100.0) / 281.0
    assert not fired.item()
    assert state.voltage.item() == pytest.approx(expected, rel=1e-14)
    assert state.adaptation.item() == 0.0  # u' = E_L: no subthreshold adaptation yet
    # the pulse step integrates w from u_1 = expected; the plateau freezes it; the reset adds b
    w_reset = 4.0 * (expected + 70.6) / 144.0 + p.adaptation_jump
    # a pulse fires in its step: u = v_spike for 2 steps (dt 1 ms), the third starts from v_reset
    steps = [3e4, 0.0, 0.0, 0.0]
    voltages, spikes = [], []
    for current in steps:
        fired, state = adex_step(torch.full((1, 1), current, dtype=F64), state, params, dt=1.0)
        voltages.append(state.voltage.item())
        spikes.append(bool(fired.item()))
    assert spikes == [True, False, False, False]
    assert voltages[:2] == [29.4, 29.4]
    # the reset step: z = I_sp drove it, then decayed once; V_T = V_T,max relaxed once
    assert state is not None
    z_after_reset = p.afterpotential * math.exp(-1 / 40.0) ** 2  # reset step and the step after
    assert state.afterpotential.item() == pytest.approx(z_after_reset, rel=1e-12)
    # the reset step: from v_reset with V_T = V_T,max, z = I_sp and w = w_reset
    reset_step = (
        p.v_reset + (-30.0 * (p.v_reset + 70.6) + 60.0 * math.exp((p.v_reset + 30.4) / 2.0) - w_reset + 400.0) / 281.0
    )
    assert voltages[2] == pytest.approx(reset_step, rel=1e-13)


def test_constant_current_adapts_and_the_rheobase():
    neuron = AdEx(1, step_mode="window", dtype=F64)
    assert neuron(torch.full((1000, 1, 1), 500.0, dtype=F64)).sum() == 0  # below the rheobase: no spike
    neuron.reset()
    spikes = neuron(torch.full((400, 1, 1), 800.0, dtype=F64))[:, 0, 0]
    times = spikes.nonzero().flatten()
    intervals = times.diff()
    assert len(times) >= 5
    assert torch.all(intervals[1:] >= intervals[:-1])  # the threshold and after-potential slow it down


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_module_window_equals_the_step_loop_bit_for_bit(dtype):
    currents = drive(120, 2, 4, seed=3).to(dtype)
    windowed = AdEx(4, batch_size=2, step_mode="window", dtype=dtype, store_voltage_sequence=True)
    stepped = AdEx(4, batch_size=2, dtype=dtype, store_voltage_sequence=True)
    out_window = windowed(currents)
    voltages_window = windowed.voltage_sequence
    out_steps, voltages_steps = [], []
    for t in range(currents.shape[0]):
        out_steps.append(stepped(currents[t]))
        voltages_steps.append(stepped.voltage_sequence.clone())
    assert torch.equal(out_window, torch.stack(out_steps))
    assert torch.equal(voltages_window, torch.stack(voltages_steps))
    for name in ("voltage", "adaptation", "afterpotential", "threshold", "plateau"):
        assert torch.equal(getattr(windowed, name), getattr(stepped, name)), name
    assert torch.equal(windowed.spike[-1], stepped.spike)  # a window keeps [T, B, *shape], a step [B, *shape]


def test_monitor_records_the_voltage_with_its_plateau_in_both_modes():
    records = []
    for mode in ("single", "window"):
        connection = LinearDense(2, 3, dtype=F64, weight_init=(0.0, 0.0), step_mode=mode)
        cell = Cell(connection, AdEx(3, dtype=F64, store_voltage_sequence=True, step_mode=mode))
        monitor = Monitor(WindowReducer(50), cell, "neuron.voltage_sequence")
        current = drive(50, 1, 3, seed=7)
        spikes = torch.zeros(50, 1, 2, dtype=F64)
        if mode == "window":
            cell(spikes, current)
        else:
            for t in range(50):
                cell(spikes[t], current[t])
        records.append(monitor.reducer.peek().clone())
    assert torch.equal(records[0], records[1])
    assert (records[0] == 29.4).any()  # the spike's plateau is in the recorded voltage


def test_state_dict_to_reset_and_batch_size():
    neuron = AdEx(3, batch_size=2, step_mode="window", store_voltage_sequence=True, v_reset=-55.0)
    neuron(drive(60, 2, 3, seed=1).float())
    saved = neuron.state_dict()
    assert set(saved) == {"voltage", "adaptation", "afterpotential", "threshold", "plateau"}
    fresh = AdEx(3, batch_size=2, step_mode="window", v_reset=-55.0)
    fresh.load_state_dict(saved)
    following = drive(30, 2, 3, seed=2).float()
    assert torch.equal(fresh(following), neuron(following))
    moved = neuron.to(F64)
    assert moved.voltage.dtype == F64 and moved.plateau.dtype == torch.int32
    assert moved.voltage_sequence.dtype == F64
    neuron.reset()
    assert torch.all(neuron.voltage == -70.6) and torch.all(neuron.plateau == 0)
    assert neuron.voltage_sequence is None
    neuron.batch_size = 5
    assert neuron.voltage.shape == (5, 3) and neuron.threshold.shape == (5, 3)
    assert neuron.params.v_reset == -55.0


def test_bad_input_names_the_argument_and_leaves_the_state():
    neuron = AdEx(3, batch_size=2, dtype=F64)
    neuron(torch.full((2, 3), 700.0, dtype=F64))
    before = {name: value.clone() for name, value in neuron.state_dict().items()}
    bad_inputs = [
        (torch.zeros(3, 3, dtype=F64), ValueError),  # batch size
        (torch.zeros(2, 3, dtype=torch.float32), TypeError),  # dtype
        (torch.full((2, 3), math.nan, dtype=F64), ValueError),  # NaN
        (torch.zeros(2, 3, dtype=torch.int64), TypeError),
    ]
    for inputs, error in bad_inputs:
        with pytest.raises(error, match="inputs"):
            neuron(inputs)
    for name, value in neuron.state_dict().items():
        assert torch.equal(value, before[name]), name
    with pytest.raises(ValueError, match="v_reset"):
        AdEx(3, v_reset=30.0)
    with pytest.raises(ValueError, match="v_threshold_max"):
        AdExParams(v_threshold_max=-60.0)
    with pytest.raises(ValueError, match="spike_duration"):
        AdExParams(spike_duration=0.0)
    with pytest.raises(ValueError, match="tau_threshold"):
        AdEx(3, exact=False, tau_threshold=0.5, dt=1.0)
    with pytest.raises(TypeError, match="unknown"):
        AdEx(3, tau=10.0)
    with pytest.raises(RuntimeError, match="store_voltage_sequence"):
        _ = AdEx(3).voltage_sequence
    with pytest.raises(TypeError, match="state"):
        adex_step(torch.zeros(1, 1), None, AdExParams())  # type: ignore[arg-type]  # the error under test
    state = adex_initial_state((1, 1), AdExParams())
    with pytest.raises(ValueError, match=r"state\.voltage"):
        adex_step(torch.zeros(1, 2), state, AdExParams())
    assert attrs.fields(AdExParams).v_peak.default == 20.0
