"""Tsodyks-Markram short-term plasticity against the event equations integrated
in plain Python (exact relaxation between spikes), a closed-form steady state,
and the step form; the synapse kind through a connection."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plastic import LinearDense, TsodyksMarkramCurrent

F64 = torch.float64


def event_reference(spike_steps, steps, dt, U, tau_recovery, tau_facilitation, tau, amplitude):
    """Currents per step of one input from the event equations: x, u relax exactly over the time since
    the last update, then a spike facilitates u, releases u*x, and the current jumps by A*r."""
    x, u, current = 1.0, 0.0, 0.0
    out = []
    for t in range(steps):
        x = 1.0 - (1.0 - x) * math.exp(-dt / tau_recovery)
        u = 0.0 if tau_facilitation is None else u * math.exp(-dt / tau_facilitation)
        released = 0.0
        if t in spike_steps:
            u = u + U * (1.0 - u)
            released = u * x
            x = x - released
        current = (0.0 if tau is None else current * math.exp(-dt / tau)) + amplitude * released
        out.append(current)
    return out


parameters = {
    "U": st.floats(0.01, 1.0),
    "tau_recovery": st.floats(5.0, 1000.0),
    "tau_facilitation": st.one_of(st.none(), st.floats(5.0, 1000.0)),
    "tau": st.one_of(st.none(), st.floats(1.0, 20.0)),
    "dt": st.sampled_from([0.1, 0.5, 1.0]),
}


@settings(deadline=None, max_examples=40)
@given(**parameters, steps=st.integers(1, 60), rate=st.floats(0.02, 0.9), seed=st.integers(0, 2**31 - 1))
def test_step_form_matches_the_event_equations(U, tau_recovery, tau_facilitation, tau, dt, steps, rate, seed):
    generator = torch.Generator().manual_seed(seed)
    spikes = torch.rand(steps, 1, 1, generator=generator) < rate
    synapse = TsodyksMarkramCurrent(1, U, tau_recovery, tau_facilitation, tau, 2.0, dt=dt, dtype=F64)
    currents = [float(synapse(spikes[t])) for t in range(steps)]
    spike_steps = set(torch.nonzero(spikes.flatten()).flatten().tolist())
    expected = event_reference(spike_steps, steps, dt, U, tau_recovery, tau_facilitation, tau, 2.0)
    assert currents == pytest.approx(expected, rel=1e-10, abs=1e-12)


@settings(deadline=None, max_examples=30)
@given(
    **parameters,
    steps=st.integers(1, 20),
    batch=st.integers(1, 3),
    splits=st.lists(st.integers(1, 19), max_size=3),
    seed=st.integers(0, 2**31 - 1),
)
def test_window_equals_the_step_loop_bit_for_bit(
    U, tau_recovery, tau_facilitation, tau, dt, steps, batch, splits, seed
):
    generator = torch.Generator().manual_seed(seed)
    spikes = torch.rand(steps, batch, 2, 3, generator=generator) < 0.4

    def make():
        return TsodyksMarkramCurrent((2, 3), U, tau_recovery, tau_facilitation, tau, dt=dt, batch_size=batch, dtype=F64)

    stepped = make()
    step_currents = torch.stack([stepped(spikes[t]) for t in range(steps)])
    windowed = make()
    windowed.step_mode = "window"
    edges = sorted({min(s, steps) for s in splits} | {0, steps})
    window_currents = torch.cat([windowed(spikes[a:b]) for a, b in itertools.pairwise(edges) if b > a])
    assert torch.equal(window_currents, step_currents)
    assert torch.equal(windowed.resources, stepped.resources)
    assert torch.equal(windowed.utilisation, stepped.utilisation)


@pytest.mark.parametrize(("U", "tau_recovery", "period"), [(0.5, 800.0, 50), (0.2, 100.0, 20), (0.9, 300.0, 7)])
def test_depressing_regular_train_reaches_the_closed_form_steady_state(U, tau_recovery, period):
    # x before a spike in steady state: x* = (1 - e) / (1 - (1 - U) e), e = exp(-period dt / tau_recovery)
    decay = math.exp(-period / tau_recovery)
    released_steady = U * (1 - decay) / (1 - (1 - U) * decay)
    spikes = torch.zeros(period * 400, 1, 1, dtype=torch.bool)
    spikes[::period] = True
    synapse = TsodyksMarkramCurrent(1, U, tau_recovery, dtype=F64, step_mode="window")
    released = synapse(spikes).flatten()[::period]
    assert released[0].item() == pytest.approx(U, rel=1e-15)
    assert released[-1].item() == pytest.approx(released_steady, rel=1e-9)


def test_facilitating_synapse_grows_then_depressing_falls():
    spikes = torch.zeros(200, 1, 1, dtype=torch.bool)
    spikes[:200:25] = True  # 40 Hz, 8 spikes
    depressing = TsodyksMarkramCurrent(1, 0.5, 800.0, None, dtype=F64, step_mode="window")
    facilitating = TsodyksMarkramCurrent(1, 0.03, 130.0, 530.0, dtype=F64, step_mode="window")
    d = depressing(spikes).flatten()[:200:25]
    f = facilitating(spikes).flatten()[:200:25]
    assert torch.all(d[1:] < d[:-1])
    assert f[3] > 2 * f[0]


def test_through_a_connection_state_dict_and_reset():
    connection = LinearDense(
        3, 2, synapse="tsodyks_markram", dtype=F64,
        synapse_kwargs={"utilisation_increment": 0.4, "tau_recovery": 50.0, "amplitude": 1.5},
    )  # fmt: skip
    with torch.no_grad():
        connection.weight.copy_(torch.tensor([[1.0, 2.0, 0.0], [0.5, 0.0, -1.0]], dtype=F64))
    first = torch.tensor([[True, True, False]])
    current = connection(first)
    # delta efficacy: each spiking input releases U of its resources, A * U = 0.6
    torch.testing.assert_close(current, torch.tensor([[0.6 * 3.0, 0.6 * 0.5]], dtype=F64), rtol=1e-12, atol=0)
    synapse = connection.synapse
    assert synapse.resources.tolist() == [[0.6, 0.6, 1.0]]
    saved = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in connection.state_dict().items()}
    assert "synapse.resources" in saved and "synapse.utilisation" in saved
    connection(first)
    fresh = LinearDense(
        3, 2, synapse="tsodyks_markram", dtype=F64,
        synapse_kwargs={"utilisation_increment": 0.4, "tau_recovery": 50.0, "amplitude": 1.5},
    )  # fmt: skip
    fresh.load_state_dict(saved)
    assert torch.equal(fresh.synapse.resources, saved["synapse.resources"])
    synapse.reset()
    assert synapse.resources.tolist() == [[1.0, 1.0, 1.0]] and synapse.utilisation.tolist() == [[0.0, 0.0, 0.0]]
    synapse.batch_size = 4
    assert synapse.resources.shape == (4, 3)


def test_bad_input_names_the_argument_and_leaves_the_state():
    with pytest.raises(ValueError, match="utilisation_increment"):
        TsodyksMarkramCurrent(1, 0.0)
    with pytest.raises(ValueError, match="utilisation_increment"):
        TsodyksMarkramCurrent(1, 1.5)
    with pytest.raises(ValueError, match="tau_recovery"):
        TsodyksMarkramCurrent(1, 0.5, 0.0)
    with pytest.raises(ValueError, match="tau_facilitation"):
        TsodyksMarkramCurrent(1, 0.5, 100.0, -1.0)
    synapse = TsodyksMarkramCurrent(2, 0.5, 100.0, dtype=F64)
    synapse(torch.tensor([[True, False]]))
    before = synapse.resources.clone(), synapse.utilisation.clone(), synapse.state.clone()
    with pytest.raises(ValueError, match="spikes"):
        synapse(torch.ones(1, 3, dtype=torch.bool))
    assert all(
        torch.equal(a, b) for a, b in zip(before, (synapse.resources, synapse.utilisation, synapse.state), strict=True)
    )


def test_figure_script_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    from plastic.zoo.figures_short_term import main

    assert main(tmp_path).stat().st_size > 0
