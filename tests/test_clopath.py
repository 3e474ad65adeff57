"""Voltage-based STDP (Clopath et al. 2010) against its equations run synapse by synapse in plain
Python: the filters u_minus, u_plus (a u + (1 - a) u_t), the trace x_bar (jump 1/tau_x), the
filters read d steps back, depression A_LTD [u_minus - theta_minus]_+ at presynaptic spikes,
potentiation A_LTP dt x_bar [u - theta_plus]_+ [u_plus - theta_minus]_+ at every step,
optional homeostatic A_LTD; dense and convolutional cells, in one window, step by step and in chunks."""

from __future__ import annotations

import math

import attrs
import numpy as np
import pytest
import torch
from helpers import (
    F64,
    assert_close_relative,
    conv_specs,
    drive,
    feed_values,
    make_voltage_cell,
    synapse_sites,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from plastic.functional.clopath import (
    ClopathParameters,
    clopath_initial_state,
    clopath_step,
    clopath_window,
    voltage_with_spikes,
)
from plastic.functional.receptive import grouped_to_weight
from plastic.learn.clopath import CARRIED, ClopathSTDP
from plastic.neural.adex import AdEx
from plastic.neural.cell import Cell
from plastic.neural.connections import LinearDense
from plastic.neural.neurons import LIF
from plastic.testing.invariants import FunctionalRule, check_rule

make_cell = make_voltage_cell
feed = feed_values


def draw_voltage(generator, shape):
    """Membrane potentials around the thresholds: rest, depolarised stretches and spike plateaus."""
    level = -75.0 + 45.0 * torch.rand(shape, generator=generator, dtype=F64)
    spiking = torch.rand(shape, generator=generator) < 0.15
    return torch.where(spiking, torch.full_like(level, 29.4), level)


def event_loop_reference(connection, pre, voltage, rule: ClopathParameters, dt: float):
    """Summed over the batch, synapse by synapse: (potentiation, depression, final filters, trace)."""
    pre, voltage = pre.numpy().astype(float), voltage.numpy()
    steps, batch = pre.shape[:2]
    delay = round(rule.filter_delay / dt)

    def decay(tau):
        return math.exp(-dt / tau) if rule.exact else 1.0 - dt / tau

    a_minus, a_plus, a_x, a_h = (
        decay(rule.tau_minus),
        decay(rule.tau_plus),
        decay(rule.tau_x),
        decay(rule.tau_homeostasis),
    )
    u_minus = np.full(voltage.shape[1:], rule.v_rest)
    u_plus = np.full(voltage.shape[1:], rule.v_rest)
    depolarisation = np.zeros(voltage.shape[1:])
    trace = np.zeros(pre.shape[1:])
    past_minus = [u_minus.copy() for _ in range(delay)]
    past_plus = [u_plus.copy() for _ in range(delay)]
    potentiation = np.zeros(tuple(connection.weight.shape))
    depression = np.zeros(tuple(connection.weight.shape))
    sites = synapse_sites(connection)
    for t in range(steps):
        u = voltage[t]
        u_minus = a_minus * u_minus + (1 - a_minus) * u
        u_plus = a_plus * u_plus + (1 - a_plus) * u
        if rule.homeostasis:  # without it the average is not kept (it stays 0)
            depolarisation = a_h * depolarisation + (1 - a_h) * (u - rule.v_rest)
        trace = a_x * trace + pre[t] / rule.tau_x
        past_minus.append(u_minus.copy())
        past_plus.append(u_plus.copy())
        read_minus, read_plus = past_minus.pop(0), past_plus.pop(0)
        for b in range(batch):
            for weight_index, post_index, pre_index in sites:
                if pre_index is None:
                    continue
                post_at, pre_at = (b, *post_index), (b, *pre_index)
                amplitude = rule.a_ltd
                if rule.homeostasis:
                    amplitude = rule.a_ltd * depolarisation[post_at] ** 2 / rule.u_ref_squared
                depression[weight_index] += amplitude * pre[t][pre_at] * max(read_minus[post_at] - rule.theta_minus, 0)
                potentiation[weight_index] += (
                    rule.a_ltp * dt * trace[pre_at]
                    * max(u[post_at] - rule.theta_plus, 0) * max(read_plus[post_at] - rule.theta_minus, 0)
                )  # fmt: skip
    return potentiation, depression, u_minus, u_plus, trace, depolarisation


def pending(cell):
    potentiation, depression = cell.updater.pending("weight")
    return potentiation, depression


rules = st.builds(
    lambda tau_minus, tau_plus, tau_x, delay, exact, homeostasis, theta_minus, theta_plus: (
        {
            "tau_minus": tau_minus,
            "tau_plus": tau_plus,
            "tau_x": tau_x,
            "exact": exact,
            "homeostasis": homeostasis,
            "theta_minus": theta_minus,
            "theta_plus": theta_plus,
            "tau_homeostasis": 50.0,
            "a_ltd": 0.3,
            "a_ltp": 0.02,
        },
        delay,
    ),
    st.floats(2.0, 20.0),
    st.floats(2.0, 20.0),
    st.floats(2.0, 30.0),
    st.integers(0, 3),
    st.booleans(),
    st.booleans(),
    st.floats(-72.0, -60.0),
    st.floats(-50.0, -20.0),
)


@settings(deadline=None, max_examples=25)
@given(
    steps=st.integers(1, 8),
    batch=st.integers(1, 3),
    dt=st.sampled_from([0.5, 1.0]),
    seed=st.integers(0, 2**31 - 1),
    spec=conv_specs,
    drawn=rules,
)
def test_window_matches_the_event_loop(steps, batch, dt, seed, spec, drawn):
    options, delay = drawn
    generator = torch.Generator().manual_seed(seed)
    cell = make_cell(spec, batch, dt)
    pre = torch.rand(steps, batch, *cell.connection.in_shape, generator=generator) < 0.4
    voltage = draw_voltage(generator, (steps, batch, *cell.connection.out_shape))
    trainer = ClopathSTDP(filter_delay=delay * dt, **options)
    trainer.register_cell("c", cell)
    feed(cell, pre, voltage)
    trainer()
    rule = trainer.get_unit("c").state.params.rule()
    expected = event_loop_reference(cell.connection, pre, voltage, rule, dt)
    potentiation, depression = pending(cell)
    assert_close_relative(potentiation, expected[0], rel=1e-12)
    assert_close_relative(depression, expected[1], rel=1e-12)
    state = trainer.get_unit("c").state
    for name, value in zip(("u_minus", "u_plus", "trace_pre", "depolarisation"), expected[2:], strict=True):
        assert_close_relative(getattr(state, f"clopath_{name}"), value, rel=1e-12)


@pytest.mark.parametrize("dtype", [F64, torch.float32])
@pytest.mark.parametrize("spec", [None, {"in_size": (4,), "kernel": 2, "stride": 1, "padding": 1, "groups": 2,
                                         "padding_mode": "zeros"}])  # fmt: skip
def test_every_step_and_chunks_equal_one_window(dtype, spec):
    generator = torch.Generator().manual_seed(11)
    results = []
    for chunks in ("once", "every step", (3, 4, 9)):
        cell = make_cell(spec, 2, 1.0, dtype=dtype)
        trainer = ClopathSTDP(filter_delay=3.0, homeostasis=True, tau_homeostasis=20.0, a_ltd=0.1, a_ltp=0.01)
        trainer.register_cell("c", cell)
        if not results:
            pre = torch.rand(13, 2, *cell.connection.in_shape, generator=generator) < 0.3
            voltage = draw_voltage(generator, (13, 2, *cell.connection.out_shape)).to(dtype)
        drive(cell, trainer, (pre, voltage), chunks, feed=feed)
        state = trainer.get_unit("c").state
        results.append((pending(cell), [getattr(state, name).clone() for name in CARRIED]))
    rel = 1e-12 if dtype == F64 else 1e-6
    for terms, carried in results[1:]:
        for term, reference in zip(terms, results[0][0], strict=True):
            assert_close_relative(term, reference.numpy(), rel=rel)
        for value, reference in zip(carried, results[0][1], strict=True):
            assert torch.equal(value, reference)  # the carried filters: the same recurrence, bit for bit


def test_hand_computed_constant_depolarisation():
    # u held at V from t = 0 (rest before), no delay, theta_minus = v_rest = 0, theta_plus = 0:
    # u_minus_t = V (1 - a_-^(t+1)), u_plus_t = V (1 - a_+^(t+1)); one presynaptic spike at step k
    rule = ClopathParameters(theta_minus=0.0, theta_plus=0.0, v_rest=0.0, filter_delay=0.0, a_ltd=0.5, a_ltp=0.25)
    V, k, steps, dt = 3.0, 2, 6, 1.0
    pre = torch.zeros(steps, 1, 1, dtype=torch.bool)
    pre[k] = True
    voltage = torch.full((steps, 1, 1), V, dtype=F64)
    result = clopath_window(pre, voltage, None, rule, dt=dt)
    a_minus, a_plus, a_x = math.exp(-1 / 10), math.exp(-1 / 7), math.exp(-1 / 15)
    depression = 0.5 * V * (1 - a_minus ** (k + 1))
    potentiation = sum(0.25 * a_x ** (t - k) / 15 * V * V * (1 - a_plus ** (t + 1)) for t in range(k, steps))
    assert result.depression.item() == pytest.approx(depression, rel=1e-13)
    assert result.potentiation.item() == pytest.approx(potentiation, rel=1e-13)
    # the filters read 2 steps back: the depression sees u_minus of step k - 2
    delayed = clopath_window(pre, voltage, None, ClopathParameters(**{**_fields(rule), "filter_delay": 2.0}), dt=dt)
    assert delayed.depression.item() == pytest.approx(0.5 * V * (1 - a_minus ** (k - 1)), rel=1e-13)
    # homeostasis: A_LTD u_bar_bar_k^2 / u_ref^2 with u_bar_bar_k = V (1 - a_h^(k+1))
    homeostatic = clopath_window(
        pre, voltage, None, ClopathParameters(**{**_fields(rule), "homeostasis": True, "tau_homeostasis": 100.0}), dt=dt
    )
    mean = V * (1 - math.exp(-1 / 100) ** (k + 1))
    assert homeostatic.depression.item() == pytest.approx(depression * mean**2 / 60.0, rel=1e-12)


def _fields(rule):
    return attrs.asdict(rule)


def test_step_form_is_the_window_of_one_step():
    generator = torch.Generator().manual_seed(5)
    pre = torch.rand(7, 2, 3, generator=generator) < 0.4
    voltage = draw_voltage(generator, (7, 2, 4))
    whole = clopath_window(pre, voltage, dt=0.5, parameters=ClopathParameters(filter_delay=1.0))
    state = clopath_initial_state(2, (3,), (4,), ClopathParameters(filter_delay=1.0), dt=0.5, dtype=F64)
    total_potentiation = torch.zeros_like(whole.potentiation)
    total_depression = torch.zeros_like(whole.depression)
    for t in range(7):
        step = clopath_step(pre[t], voltage[t], state, ClopathParameters(filter_delay=1.0), dt=0.5)
        total_potentiation += step.potentiation
        total_depression += step.depression
        state = step.state
    assert_close_relative(total_potentiation, whole.potentiation.numpy(), rel=1e-13)
    assert_close_relative(total_depression, whole.depression.numpy(), rel=1e-13)
    for value, reference in zip(state, whole.state, strict=True):
        assert torch.equal(value, reference)


def scripted_voltage(post, rest=-70.6, spike=29.4):
    """The voltage a scripted neuron has: at rest, at the plateau where it spikes."""
    return rest + post * (spike - rest)


def clopath_rule(pre, post, *, state=None, view=None, batch_reduction="sum"):
    voltage = scripted_voltage(post)
    result = clopath_window(
        pre, voltage, state, ClopathParameters(filter_delay=0.0, a_ltd=0.1, a_ltp=0.01),
        view=view, batch_reduction=batch_reduction,
    )  # fmt: skip
    shape = view.weight_shape if view is not None else (post.shape[2], pre.shape[2])
    terms = (grouped_to_weight(result.potentiation, shape), grouped_to_weight(result.depression, shape))
    return terms, result.state


def test_the_rule_invariants_with_a_scripted_voltage():
    # a postsynaptic spike is one step at the plateau value, the voltage rests otherwise; with the
    # filters read without delay the rule is causal: pre before post potentiates, post before pre depresses
    report = check_rule(FunctionalRule(clopath_rule, stateful=True, reductions=("sum", "mean"), rtol=1e-9))
    assert report.passed


def test_lif_route_puts_the_spike_voltage_back():
    generator = torch.Generator().manual_seed(2)
    pre = torch.rand(40, 1, 3, generator=generator) < 0.3
    cell = Cell(
        LinearDense(3, 2, dtype=F64, weight_init=(0.0, 0.0)),
        LIF(2, tau=10.0, v_threshold=-50.0, v_reset=-70.0, dtype=F64, store_voltage_sequence=True),
    )
    cell.make_updater()
    trainer = ClopathSTDP(spike_voltage=20.0, v_rest=-70.0, theta_minus=-70.0, filter_delay=0.0)
    trainer.register_cell("lif", cell)
    current = 10.0 + 25.0 * torch.rand(40, 1, 2, generator=generator, dtype=F64)  # mV above the reset
    cell.step_mode = "window"
    with torch.no_grad():  # plasticity only
        cell(pre.double(), current)
    trainer()
    spikes, voltage = cell.neuron.spike, cell.neuron.voltage_sequence
    assert spikes.any()
    expected = clopath_window(
        pre, voltage_with_spikes(voltage, spikes, 20.0), None,
        trainer.get_unit("lif").state.params.rule(),
    )  # fmt: skip
    potentiation, depression = pending(cell)
    assert_close_relative(potentiation, expected.potentiation.reshape(2, 3).numpy(), rel=1e-13)
    assert_close_relative(depression, expected.depression.reshape(2, 3).numpy(), rel=1e-13)
    assert potentiation.sum() > 0


def test_checkpoint_resumes_the_carried_filters():
    generator = torch.Generator().manual_seed(4)
    pre = torch.rand(20, 1, 3, generator=generator) < 0.4
    voltage = draw_voltage(generator, (20, 1, 2))
    uninterrupted = make_cell(None, 1, 1.0)
    trainer = ClopathSTDP(homeostasis=True, a_ltd=0.1)
    trainer.register_cell("c", uninterrupted)
    feed(uninterrupted, pre[:12], voltage[:12])
    trainer()
    saved = {
        key: value.clone() if isinstance(value, torch.Tensor) else value for key, value in trainer.state_dict().items()
    }
    feed(uninterrupted, pre[12:], voltage[12:])
    trainer()
    resumed_cell = make_cell(None, 1, 1.0)
    resumed = ClopathSTDP(homeostasis=True, a_ltd=0.1)
    resumed.register_cell("c", resumed_cell)
    resumed.load_state_dict(saved)
    feed(resumed_cell, pre[12:], voltage[12:])
    resumed()
    first = clopath_window(pre[:12], voltage[:12], None, ClopathParameters(homeostasis=True, a_ltd=0.1))
    second = clopath_window(pre[12:], voltage[12:], first.state, ClopathParameters(homeostasis=True, a_ltd=0.1))
    potentiation, depression = pending(resumed_cell)
    assert_close_relative(potentiation, second.potentiation.reshape(2, 3).numpy(), rel=1e-13)
    assert_close_relative(depression, second.depression.reshape(2, 3).numpy(), rel=1e-13)
    for name in CARRIED:
        assert torch.equal(getattr(resumed.get_unit("c").state, name), getattr(trainer.get_unit("c").state, name))


def test_adex_cell_end_to_end_window_equals_steps():
    # the paper's neuron in a cell, recorded through the pool's monitors, window vs single steps
    generator = torch.Generator().manual_seed(9)
    pre = torch.rand(60, 2, 4, generator=generator) < 0.2
    current = 400.0 + 500.0 * torch.rand(60, 2, 3, generator=generator, dtype=F64)
    results = []
    for mode in ("window", "single"):
        cell = Cell(
            LinearDense(4, 3, dtype=F64, batch_size=2, weight_init=(0.0, 50.0)),
            AdEx(3, dtype=F64, batch_size=2, store_voltage_sequence=True),
        )
        torch.manual_seed(0)
        with torch.no_grad():
            cell.connection.weight.copy_(torch.linspace(0.0, 50.0, 12, dtype=F64).reshape(3, 4))
        cell.make_updater()
        trainer = ClopathSTDP()
        trainer.register_cell("adex", cell)
        cell.step_mode = mode
        if mode == "window":
            cell(pre.double(), current)
            trainer()
        else:
            for t in range(60):
                cell(pre[t].double(), current[t])
                trainer()
        results.append(pending(cell))
    for term, reference in zip(results[1], results[0], strict=True):
        assert_close_relative(term, reference.numpy(), rel=1e-12)
    assert results[0][0].sum() > 0 and results[0][1].sum() > 0


def test_bad_input_is_named_and_leaves_the_state():
    cell = make_cell(None, 1, 1.0)
    trainer = ClopathSTDP()
    trainer.register_cell("c", cell)
    feed(cell, torch.zeros(3, 1, 3, dtype=torch.bool), torch.full((3, 1, 2), -60.0, dtype=F64))
    trainer()
    carried = {
        name: value.clone() for name, value in trainer.state_dict().items()
        if name.startswith("states.") and isinstance(value, torch.Tensor)
    }  # fmt: skip
    assert carried
    feed(cell, torch.zeros(2, 1, 3, dtype=torch.bool), torch.full((2, 1, 2), math.nan, dtype=F64))
    with pytest.raises(ValueError, match="voltage_post"):
        trainer()
    for name, value in trainer.state_dict().items():
        if name in carried:  # the trainer's carried state (the monitors did record the bad step)
            assert torch.equal(value, carried[name]), name
    assert all(term.abs().sum() == 0 for term in pending(cell))

    lif_cell = Cell(LinearDense(3, 2), LIF(2))
    lif_cell.make_updater()
    with pytest.raises(ValueError, match="store_voltage_sequence"):
        ClopathSTDP().register_cell("lif", lif_cell)
    with pytest.raises(ValueError, match="filter_delay"):
        ClopathSTDP(filter_delay=0.7).register_cell("c", make_cell(None, 1, 0.5))
    with pytest.raises(ValueError, match="tau_plus"):
        ClopathSTDP(exact=False, tau_plus=0.5).register_cell("c", make_cell(None, 1, 1.0))
    with pytest.raises(ValueError, match="pairing"):
        ClopathSTDP(pairing="nearest")
    with pytest.raises(ValueError, match="tau_minus"):
        ClopathSTDP(tau_minus=0.0)
    with pytest.raises(ValueError, match="spikes_pre"):
        clopath_window(torch.full((2, 1, 3), 0.5), torch.zeros(2, 1, 2))
    with pytest.raises(ValueError, match="voltage_post"):
        clopath_window(torch.zeros(2, 1, 3), torch.zeros(3, 1, 2))
    with pytest.raises(TypeError, match="voltage_post"):
        clopath_window(torch.zeros(2, 1, 3), torch.zeros(2, 1, 2, dtype=torch.int64))
    state = clopath_initial_state(1, (3,), (2,), ClopathParameters(), dtype=torch.float32)
    with pytest.raises(ValueError, match=r"state\.u_minus_delayed"):
        clopath_window(torch.zeros(2, 1, 3), torch.zeros(2, 1, 2), state._replace(u_minus_delayed=torch.zeros(1, 1, 2)))
