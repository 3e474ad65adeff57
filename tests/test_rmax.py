"""R-max (Vasilaki et al. 2009): the window against its equations stepped synapse by synapse in plain
Python (dense and conv sites, every reward shape, batch reductions), window == step loop, chunked
windows, the policy gradient of an escape-noise neuron's own spike train (autograd), the trainer's
life cycle (every step == once, per-sample rewards, checkpoint, errors) and the figure's task."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
import torch
from helpers import ScriptedNeuron, assert_close_relative, conv_specs, make_cell, synapse_sites
from hypothesis import example, given
from hypothesis import strategies as st

from plastic.functional.escape_noise import EscapeNoiseParams, escape_noise_initial_state, escape_noise_window
from plastic.functional.rmax import RmaxParameters, RmaxState, rmax_step, rmax_window
from plastic.learn.rmax import Rmax
from plastic.neural.cell import Cell
from plastic.neural.connections import LinearDense
from plastic.neural.escape_noise import EscapeNoiseNeuron

F64 = torch.float64


def plain_rmax(sites, weight_shape, pre, post, probability, reward, parameters, dt):
    """Per-sample weight changes ``[B, *weight_shape]``, stepping x, q, e and dw synapse site by site."""
    steps, batch = pre.shape[:2]
    exact = parameters.exact_decay
    a_x = math.exp(-dt / parameters.tau_psp) if exact else 1 - dt / parameters.tau_psp
    tau_e = parameters.tau_eligibility
    a_e = (math.exp(-dt / tau_e) if exact else 1 - dt / tau_e) if math.isfinite(tau_e) else 1.0
    change = np.zeros((batch, *weight_shape))
    for b in range(batch):
        traces = {}
        eligibility = np.zeros(weight_shape)
        for t in range(steps):
            # the PSP trace of every presynaptic neuron, including this step's spike
            for index in np.ndindex(*pre.shape[2:]):
                traces[index] = a_x * traces.get(index, 0.0) + parameters.amplitude_psp * float(pre[(t, b, *index)])
            eligibility = eligibility * a_e
            for weight_index, post_index, pre_index in sites:
                if pre_index is None:
                    continue
                p = float(probability[(t, b, *post_index)])
                if math.isinf(parameters.tau_c):
                    q = 0.0
                else:
                    q = p / (1 + parameters.tau_c / dt * p)
                eligibility[weight_index] += (float(post[(t, b, *post_index)]) - q) * traces[pre_index]
            change[b] += parameters.learning_rate * float(reward[t, b]) * eligibility
    return change


def _reward_table(reward, steps, batch):
    if not isinstance(reward, torch.Tensor) or reward.ndim == 0:
        return np.full((steps, batch), float(reward))
    if reward.ndim == 2:
        return np.broadcast_to(reward.numpy(), (steps, batch))
    if reward.shape[0] == steps and steps != batch:
        return np.broadcast_to(reward.numpy()[:, None], (steps, batch))
    return np.broadcast_to(reward.numpy()[None, :], (steps, batch))


parameters_strategy = st.builds(
    RmaxParameters,
    tau_psp=st.floats(2.0, 30.0),
    amplitude_psp=st.floats(0.2, 2.0),
    tau_eligibility=st.one_of(st.floats(2.0, 100.0), st.just(math.inf)),
    tau_c=st.one_of(st.just(0.0), st.floats(0.5, 20.0), st.just(math.inf)),
    learning_rate=st.floats(-2.0, 2.0),
    exact_decay=st.booleans(),
)


@given(
    parameters=parameters_strategy,
    spec=conv_specs,
    steps=st.integers(1, 7),
    batch=st.integers(1, 3),
    reward_kind=st.sampled_from(["scalar", "per_step", "per_sample", "table"]),
    reduction=st.sampled_from(["sum", "mean", "amax"]),
    seed=st.integers(0, 2**31 - 1),
)
@example(  # a negative eta with a non-linear reduction: eta must scale each sample before the amax
    parameters=RmaxParameters(tau_psp=2.0, tau_eligibility=math.inf, tau_c=0.0, learning_rate=-1.0),
    spec=None, steps=1, batch=2, reward_kind="scalar", reduction="amax", seed=0,
)  # fmt: skip
def test_window_matches_the_equations_stepped_per_synapse(parameters, spec, steps, batch, reward_kind, reduction, seed):
    cell = make_cell(spec, batch, 1.0)
    connection = cell.connection
    generator = torch.Generator().manual_seed(seed)
    pre = torch.rand(steps, batch, *connection.in_shape, generator=generator) < 0.4
    post = torch.rand(steps, batch, *connection.out_shape, generator=generator) < 0.3
    probability = torch.rand(steps, batch, *connection.out_shape, generator=generator, dtype=F64)
    reward = {
        "scalar": 0.7,
        "per_step": torch.randn(steps, generator=generator, dtype=F64),
        "per_sample": torch.randn(batch, generator=generator, dtype=F64),
        "table": torch.randn(steps, batch, generator=generator, dtype=F64),
    }[reward_kind]
    if reward_kind in ("per_step", "per_sample") and steps == batch and steps > 1:
        reward = reward.unsqueeze(1) if reward_kind == "per_step" else reward.unsqueeze(0)
    batch_reduction = (lambda x: x.amax(0)) if reduction == "amax" else reduction
    out = rmax_window(pre, post, probability, reward, None, parameters, dt=1.0, view=connection,
                      batch_reduction=batch_reduction)  # fmt: skip
    table = _reward_table(reward, steps, batch)
    expected = plain_rmax(synapse_sites(connection), tuple(connection.weight.shape), pre.numpy(), post.numpy(),
                          probability.numpy(), table, parameters, 1.0)  # fmt: skip
    reduce = {"sum": lambda a: a.sum(0), "mean": lambda a: a.mean(0), "amax": lambda a: a.max(0)}[reduction]
    assert_close_relative(out.update, reduce(expected), rel=1e-9)


@given(parameters=parameters_strategy, steps=st.integers(1, 9), batch=st.integers(1, 3),
       dtype=st.sampled_from([F64, torch.float32]), cuts=st.lists(st.integers(0, 9), max_size=3),
       seed=st.integers(0, 2**31 - 1))  # fmt: skip
def test_window_equals_step_loop_and_chunked_windows(parameters, steps, batch, dtype, cuts, seed):
    generator = torch.Generator().manual_seed(seed)
    pre = torch.rand(steps, batch, 4, generator=generator) < 0.4
    post = torch.rand(steps, batch, 3, generator=generator) < 0.3
    probability = torch.rand(steps, batch, 3, generator=generator).to(dtype)
    reward = torch.randn(steps, batch, generator=generator).to(dtype)
    whole = rmax_window(pre, post, probability, reward, None, parameters)
    state, total = None, torch.zeros_like(whole.update)
    for t in range(steps):
        step = rmax_step(pre[t], post[t], probability[t], reward[t], state, parameters)
        total, state = total + step.update, step.state
    rel = 1e-12 if dtype == F64 else 1e-6
    scale = max(float(whole.update.abs().max()), 1e-30)
    assert float((total - whole.update).abs().max()) <= rel * 10 * scale
    assert torch.equal(state.trace_pre, whole.state.trace_pre)
    assert_close_relative(state.eligibility_trace, whole.state.eligibility_trace, rel=10 * rel)
    bounds = [0, *sorted(min(c, steps) for c in cuts), steps]
    state, chunked = None, torch.zeros_like(whole.update)
    for start, stop in itertools.pairwise(bounds):
        part = rmax_window(pre[start:stop], post[start:stop], probability[start:stop], reward[start:stop], state,
                           parameters)  # fmt: skip
        chunked, state = chunked + part.update, part.state
    assert float((chunked - whole.update).abs().max()) <= rel * 10 * scale
    assert_close_relative(state.eligibility_trace, whole.state.eligibility_trace, rel=10 * rel)


def test_hand_computed_single_synapse():
    """One pre spike at 0 (A = 1, tau_psp = 10), a post spike at 1 with p = 0.2 there, p = 0.1 at 0,
    tau_e = inf, tau_c = 0, reward 1 at step 1 only: dw = (0 - 0.1) * 1 + (1 - 0.2) * exp(-0.1)."""
    pre = torch.tensor([[[1.0]], [[0.0]]])
    post = torch.tensor([[[0.0]], [[1.0]]])
    probability = torch.tensor([[[0.1]], [[0.2]]], dtype=F64)
    parameters = RmaxParameters(tau_psp=10.0, tau_eligibility=math.inf)
    out = rmax_window(pre, post, probability, torch.tensor([0.0, 1.0], dtype=F64), None, parameters)
    assert out.update.item() == pytest.approx(-0.1 + 0.8 * math.exp(-0.1), rel=1e-12)
    # tau_c = inf: the Hebbian rule, the post spike times the trace only
    hebbian = rmax_window(pre, post, probability, torch.tensor([0.0, 1.0], dtype=F64), None,
                          RmaxParameters(tau_psp=10.0, tau_eligibility=math.inf, tau_c=math.inf))  # fmt: skip
    assert hebbian.update.item() == pytest.approx(math.exp(-0.1), rel=1e-12)
    # tau_c = 5 ms, dt = 1: q = p / (1 + 5 p)
    mixed = rmax_window(pre, post, probability, torch.tensor([0.0, 1.0], dtype=F64), None,
                        RmaxParameters(tau_psp=10.0, tau_eligibility=math.inf, tau_c=5.0))  # fmt: skip
    q0, q1 = 0.1 / 1.5, 0.2 / 2.0
    assert mixed.update.item() == pytest.approx(-q0 + (1 - q1) * math.exp(-0.1), rel=1e-12)


def test_policy_gradient_of_the_neurons_own_spike_train():
    """With tau_psp = tau_membrane, A = epsilon_0 / delta_u, tau_c = 0 and no eligibility decay, the
    eligibility at the end of a window is the gradient (autograd) of the log-likelihood of the spikes
    the neuron fired, up to the small-p approximation p ~ rho dt (relative error of order p)."""
    params = EscapeNoiseParams(tau_membrane=8.0, epsilon_0=1.0, theta=-60.0, delta_u=4.0, rho_0=40.0,
                               refractory=0.0, eta_0=-2.0)  # fmt: skip
    generator = torch.Generator().manual_seed(0)
    steps, batch, n_in, n_out = 400, 4, 6, 3
    pre = torch.rand(steps, batch, n_in, generator=generator, dtype=F64) < 0.05
    weight = (torch.rand(n_out, n_in, generator=generator, dtype=F64) * 1.5).requires_grad_(True)
    uniform = torch.rand(steps, batch, n_out, generator=generator, dtype=F64)
    inputs = torch.einsum("oi,tbi->tbo", weight, pre.to(F64))
    out = escape_noise_window(inputs, escape_noise_initial_state((batch, n_out), dtype=F64), params, dt=1.0,
                              uniform=uniform)  # fmt: skip
    spikes, p = out.spikes, out.probability
    log_likelihood = torch.where(spikes, torch.log(p), torch.log1p(-p)).sum()
    (gradient,) = torch.autograd.grad(log_likelihood, weight)
    last_only = torch.zeros(steps, dtype=F64)
    last_only[-1] = 1.0
    rule = RmaxParameters(tau_psp=8.0, amplitude_psp=1.0 / 4.0, tau_eligibility=math.inf, tau_c=0.0)
    eligibility = rmax_window(pre, spikes, p.detach(), last_only, None, rule).update
    assert int(spikes.sum()) > 20
    largest = float(p.detach().max())
    assert largest < 0.05
    assert_close_relative(eligibility, gradient, rel=2 * largest)


# ----------------------------------------------------------------------------- trainer


def _escape_cell(batch, *, seed=0, n_in=5, n_out=3):
    neuron = EscapeNoiseNeuron(n_out, batch_size=batch, seed=seed, theta=-60.0, rho_0=50.0, dtype=F64)
    cell = Cell(LinearDense(n_in, n_out, batch_size=batch, dtype=F64), neuron)
    with torch.no_grad():  # the same weights in every cell built here
        cell.connection.weight.copy_(torch.rand(n_out, n_in, generator=torch.Generator().manual_seed(9)) * 4.0)
    cell.make_updater()
    return cell


def _net(cell):
    potentiation, depression = cell.updater.pending("weight")
    return potentiation - depression


def test_trainer_matches_the_functional_on_the_recorded_window():
    cell = _escape_cell(2)
    trainer = Rmax(learning_rate=0.3, tau_psp=10.0, tau_eligibility=50.0, tau_c=2.0, window=64)
    trainer.register_cell("c", cell)
    generator = torch.Generator().manual_seed(1)
    pre = (torch.rand(40, 2, 5, generator=generator) < 0.3).to(F64)
    cell.step_mode = "window"
    cell(pre)
    reward = torch.randn(40, 2, generator=generator, dtype=F64)
    trainer(reward)
    expected = rmax_window(pre, cell.neuron.spike, cell.neuron.spike_probability, reward, None,
                           trainer.get_unit("c").state.params.rule(), view=cell.connection)  # fmt: skip
    assert torch.allclose(_net(cell), expected.update, rtol=1e-12, atol=1e-15)


@given(seed=st.integers(0, 2**31 - 1), splits=st.lists(st.integers(0, 30), max_size=3),
       per_sample=st.booleans())  # fmt: skip
def test_trainer_every_step_or_in_chunks_equals_once(seed, splits, per_sample):
    generator = torch.Generator().manual_seed(seed)
    steps, batch = 30, 3
    pre = (torch.rand(steps, batch, 5, generator=generator) < 0.3).to(F64)
    reward = torch.randn(steps, batch, generator=generator, dtype=F64)
    if per_sample:
        reward = reward[0].expand(steps, batch)
    results = []
    for bounds in ([0, steps], list(range(steps + 1)), [0, *sorted({min(s, steps) for s in splits}), steps]):
        cell = _escape_cell(batch, seed=5)
        trainer = Rmax(learning_rate=0.1, tau_eligibility=20.0)
        trainer.register_cell("c", cell)
        cell.step_mode = "window"
        for start, stop in itertools.pairwise(bounds):
            if stop == start:
                continue
            cell(pre[start:stop])
            trainer(reward[start] if (per_sample and stop - start == 1) else reward[start:stop])
        results.append(_net(cell))
    assert_close_relative(results[1], results[0], rel=1e-12)
    assert_close_relative(results[2], results[0], rel=1e-12)


def test_trainer_checkpoint_conv_and_errors():
    cell = _escape_cell(2)
    trainer = Rmax(learning_rate=0.1)
    trainer.register_cell("c", cell)
    cell.step_mode = "window"
    cell(torch.ones(4, 2, 5, dtype=F64))
    trainer(1.0)
    saved = copy.deepcopy(trainer.state_dict())
    assert saved["states.c.eligibility_trace"].shape == (2, 1, 3, 5)
    fresh = Rmax(learning_rate=0.1)
    fresh.register_cell("c", _escape_cell(2))
    fresh.load_state_dict(saved)
    assert torch.equal(fresh.get_unit("c").state.eligibility_trace, trainer.get_unit("c").state.eligibility_trace)
    # a bad reward is refused before anything changes
    before = _net(cell).clone()
    cell(torch.ones(4, 2, 5, dtype=F64))
    with pytest.raises(ValueError, match=r"^reward"):
        trainer(torch.ones(3, 3, dtype=F64))
    assert torch.equal(_net(cell), before)
    trainer(torch.tensor([1.0, -1.0], dtype=F64))  # per sample: still consumable after the refusal
    # neurons without a firing probability are refused
    plain = Cell(LinearDense(5, 3), ScriptedNeuron(3))
    plain.make_updater()
    with pytest.raises(ValueError, match=r"^cell"):
        Rmax().register_cell("p", plain)
    with pytest.raises(ValueError, match="tau_c"):
        Rmax(tau_c=-1.0)
    # a convolution of escape-noise neurons
    from plastic.neural.connections import Conv1d

    conv = Conv1d(1, 2, 3, in_size=6, batch_size=2, dtype=F64, weight_init=(0.0, 2.0))
    conv_cell = Cell(conv, EscapeNoiseNeuron(conv.out_shape, batch_size=2, seed=0, dtype=F64, theta=-65.0))
    conv_cell.make_updater()
    conv_trainer = Rmax()
    conv_trainer.register_cell("conv", conv_cell)
    conv_cell.step_mode = "window"
    conv_cell((torch.rand(10, 2, 1, 6) < 0.5).to(F64))
    conv_trainer(1.0)
    assert conv_trainer.get_unit("conv").state.eligibility_trace.shape == (2, 1, 2, 3)


def test_bad_functional_inputs_get_named_errors():
    pre = torch.zeros(3, 2, 4, dtype=torch.bool)
    post = torch.zeros(3, 2, 3, dtype=torch.bool)
    p = torch.full((3, 2, 3), 0.1)
    with pytest.raises(ValueError, match=r"^probability_post"):
        rmax_window(pre, post, torch.full((3, 2, 3), 1.5), 1.0)
    with pytest.raises(ValueError, match=r"^probability_post"):
        rmax_window(pre, post, p[:2], 1.0)
    with pytest.raises(ValueError, match=r"^reward"):
        rmax_window(pre, post, p, torch.ones(5))
    with pytest.raises(TypeError, match=r"^state"):
        rmax_window(pre, post, p, 1.0, (1, 2))
    bad_state = RmaxState(torch.zeros(2, 4), torch.zeros(2, 1, 3, 5))
    with pytest.raises(ValueError, match=r"^state\.eligibility_trace"):
        rmax_window(pre, post, p, 1.0, bad_state)
    with pytest.raises(ValueError, match="tau_eligibility"):
        RmaxParameters(tau_eligibility=0.0)
    with pytest.raises(ValueError, match=r"^reward"):
        rmax_step(pre[0], post[0], p[0], torch.ones(3))


def test_figure_task_learns(tmp_path):
    pytest.importorskip("matplotlib")
    from plastic.zoo.figures_rmax import main, run_task

    result = run_task(batches=40, seed=0)
    early, late = np.mean(result["correct"][:10]), np.mean(result["correct"][-10:])
    assert late > early + 0.2, (early, late)
    path = main(tmp_path, batches=4)
    assert path.exists() and path.stat().st_size > 0
