"""The conductance-based LIF neuron against its equations integrated step by step in plain Python:
conductances held over each step, the linear equation solved exactly over it, a spike at the
threshold and a reset."""

from __future__ import annotations

import math

import attrs
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plastic.functional.conductance_lif import ConductanceLIFParams, conductance_lif_step, conductance_lif_window
from plastic.neural.cell import Cell
from plastic.neural.conductance_lif import ConductanceLIF
from plastic.neural.connections import LinearDense

F64 = torch.float64


def reference_run(excitatory, inhibitory, params: ConductanceLIFParams, dt: float, v0: float):
    """Plain Python: one neuron, lists of conductances; returns (spikes, voltages)."""
    p = params
    v, spikes, voltages = v0, [], []
    for g_e, g_i in zip(excitatory, inhibitory, strict=True):
        total = 1.0 + g_e + g_i
        target = (p.v_rest + g_e * p.e_excitatory + g_i * p.e_inhibitory) / total
        h = target + (v - target) * math.exp(-total * dt / p.tau)
        fired = h >= p.v_threshold
        v = p.v_reset if fired else h
        spikes.append(fired)
        voltages.append(v)
    return spikes, voltages


def conductances(steps: int, batch: int, neurons: int, seed: int, scale: float) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(steps, batch, neurons, generator=generator, dtype=F64) * scale


@pytest.mark.parametrize("dt", [0.1, 1.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_window_matches_the_equations_in_plain_python(dt, seed):
    params = ConductanceLIFParams(tau=15.0, v_rest=-65.0, v_threshold=-50.0, v_reset=-62.0, e_inhibitory=-80.0)
    excitatory = conductances(300, 2, 3, seed, 1.2)
    inhibitory = conductances(300, 2, 3, seed + 10, 0.8)
    start = torch.full((2, 3), -65.0, dtype=F64)
    result = conductance_lif_window(excitatory, start, params, inhibitory=inhibitory, dt=dt)
    fired = 0
    for b in range(2):
        for n in range(3):
            spikes, voltages = reference_run(
                excitatory[:, b, n].tolist(), inhibitory[:, b, n].tolist(), params, dt, -65.0
            )
            assert result.spikes[:, b, n].tolist() == spikes
            assert result.voltages[:, b, n].tolist() == pytest.approx(voltages, rel=1e-12, abs=1e-12)
            fired += sum(spikes)
    assert fired > 0  # the comparison saw spikes and resets
    assert torch.equal(result.voltage, result.voltages[-1])


def test_hand_computed_steps():
    params = ConductanceLIFParams()  # Song et al.: tau 20, rest -70, threshold -54, reset -60, E_e 0, E_i -70
    # g_e = 1 from rest: g = 2, V_inf = -35, V = -35 + (-70 + 35) exp(-2 / 20)
    spike, voltage = conductance_lif_step(torch.tensor([1.0], dtype=F64), torch.tensor([-70.0], dtype=F64), params)
    assert not spike.item()
    assert voltage.item() == pytest.approx(-35.0 - 35.0 * math.exp(-0.1), rel=1e-14)
    # an inhibitory conductance at the rest potential only shunts: from -60 with g_i = 3 the
    # potential relaxes to -70 four times faster than the leak alone
    _, voltage = conductance_lif_step(
        torch.tensor([0.0], dtype=F64),
        torch.tensor([-60.0], dtype=F64),
        params,
        inhibitory=torch.tensor([3.0], dtype=F64),
    )
    assert voltage.item() == pytest.approx(-70.0 + 10.0 * math.exp(-4 * 1.0 / 20.0), rel=1e-14)
    # g_e = 9 from -55: V_inf = -7, H = -7 - 48 exp(-0.5) = -36.1 >= -54: a spike, reset to -60
    spike, voltage = conductance_lif_step(torch.tensor([9.0], dtype=F64), torch.tensor([-55.0], dtype=F64), params)
    assert spike.item() and voltage.item() == -60.0


def test_constant_conductance_settles_at_the_closed_form():
    params = ConductanceLIFParams()
    g_e, g_i = 0.2, 0.5  # V_inf = (-70 - 35) / 1.7 = -61.8 mV, below threshold: no spike
    excitatory = torch.full((400, 1, 1), g_e, dtype=F64)
    inhibitory = torch.full((400, 1, 1), g_i, dtype=F64)
    result = conductance_lif_window(
        excitatory, torch.full((1, 1), -70.0, dtype=F64), params, inhibitory=inhibitory, dt=1.0
    )
    assert not result.spikes.any()
    target = (-70.0 + g_e * 0.0 + g_i * -70.0) / (1 + g_e + g_i)
    assert result.voltage.item() == pytest.approx(target, abs=1e-9)
    # after t steps the distance to V_inf has shrunk by exp(-t (1 + g_e + g_i) / tau)
    assert result.voltages[9].item() == pytest.approx(target + (-70.0 - target) * math.exp(-10 * 1.7 / 20), rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    scale_e=st.floats(0.0, 1e3),
    scale_i=st.floats(0.0, 1e3),
    dt=st.floats(0.05, 5.0),
    seed=st.integers(0, 2**16),
)
def test_the_potential_stays_between_the_reversal_potentials(scale_e, scale_i, dt, seed):
    # the exponential step never overshoots, however large the conductance (forward Euler would)
    params = ConductanceLIFParams(v_threshold=10.0, v_reset=-60.0)  # threshold above E_e: no spike
    excitatory = conductances(50, 2, 4, seed, scale_e)
    inhibitory = conductances(50, 2, 4, seed + 1, scale_i)
    result = conductance_lif_window(
        excitatory, torch.full((2, 4), -70.0, dtype=F64), params, inhibitory=inhibitory, dt=dt
    )
    assert float(result.voltages.min()) >= -70.0 - 1e-9
    assert float(result.voltages.max()) <= 0.0 + 1e-9


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_module_window_equals_the_step_loop(dtype):
    excitatory = conductances(120, 3, 4, 5, 1.5).to(dtype)
    inhibitory = conductances(120, 3, 4, 6, 1.0).to(dtype)
    window = ConductanceLIF(4, batch_size=3, step_mode="window", dtype=dtype, store_voltage_sequence=True)
    single = ConductanceLIF(4, batch_size=3, dtype=dtype)
    out = window(excitatory, inhibitory)
    steps = torch.stack([single(excitatory[t], inhibitory[t]) for t in range(120)])
    assert torch.equal(out, steps)
    assert out.sum() > 0
    assert torch.allclose(window.voltage, single.voltage, rtol=1e-5, atol=1e-4)
    assert window.voltage_sequence.shape == (120, 3, 4)
    assert torch.equal(window.spike, out.bool())


def test_cell_passes_the_inhibitory_conductance_to_the_neuron():
    connection = LinearDense(
        6, 2, synapse="exponential", synapse_kwargs={"tau": 5.0, "amplitude": 0.3},
        step_mode="window", weight_init=(0.5, 1.0),
    )  # fmt: skip
    cell = Cell(connection, ConductanceLIF(2, step_mode="window"))
    generator = torch.Generator().manual_seed(3)
    spikes = torch.rand(200, 1, 6, generator=generator) < 0.3
    inhibitory = torch.rand(200, 1, 2, generator=generator)
    out = cell(spikes, inhibitory=inhibitory)
    # the same neuron driven by hand with the connection's output (a fresh synapse state)
    connection.reset()
    neuron = ConductanceLIF(2, step_mode="window")
    expected = neuron(connection(spikes), inhibitory)
    assert torch.equal(out, expected)
    assert out.sum() > 0
    # without inhibition the neuron fires more
    cell.reset()
    assert cell(spikes).sum() > out.sum()


def test_state_dict_to_reset_and_batch_size():
    neuron = ConductanceLIF((2, 3), v_rest=-65.0, batch_size=2)
    assert torch.equal(neuron.voltage, torch.full((2, 2, 3), -65.0))
    neuron(torch.full((2, 2, 3), 2.0))
    state = neuron.state_dict()
    assert set(state) == {"voltage"}
    other = ConductanceLIF((2, 3), v_rest=-65.0, batch_size=2)
    other.load_state_dict(state)
    assert torch.equal(other.voltage, neuron.voltage)
    neuron.to(F64)
    assert neuron.voltage.dtype == F64 and neuron.spike.dtype == torch.bool
    neuron.reset()
    assert torch.equal(neuron.voltage, torch.full((2, 2, 3), -65.0, dtype=F64))
    neuron.batch_size = 5
    assert neuron.voltage.shape == (5, 2, 3) and not neuron.spike.any()


def test_bad_input_names_the_argument_and_leaves_the_state():
    neuron = ConductanceLIF(3, batch_size=2)
    neuron(torch.full((2, 3), 0.5))
    before = neuron.voltage.clone()
    with pytest.raises(ValueError, match="excitatory: expected conductances >= 0"):
        neuron(torch.tensor([[0.1, -0.2, 0.0], [0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="inhibitory: expected the shape"):
        neuron(torch.zeros(2, 3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="inhibitory: expected conductances >= 0"):
        neuron(torch.zeros(2, 3), torch.full((2, 3), -1.0))
    with pytest.raises(ValueError, match="excitatory: expected finite"):
        neuron(torch.full((2, 3), float("nan")))
    with pytest.raises(ValueError, match="inputs"):
        neuron(torch.zeros(3, 3))  # batch size 3, the neuron's is 2
    with pytest.raises(TypeError, match="inputs: expected dtype"):
        neuron(torch.zeros(2, 3, dtype=F64))
    assert torch.equal(neuron.voltage, before)
    with pytest.raises(ValueError, match="v_reset"):
        ConductanceLIFParams(v_reset=-50.0, v_threshold=-54.0)
    with pytest.raises(TypeError, match="unknown parameter"):
        ConductanceLIF(3, v_thresh=-50.0)
    with pytest.raises(TypeError, match="params"):
        conductance_lif_step(torch.zeros(1), torch.zeros(1), attrs.asdict(ConductanceLIFParams()))  # type: ignore[arg-type]
