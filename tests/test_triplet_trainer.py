"""TripletSTDP on cells against a naive per-step, per-sample reference."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import make_lif_cell
from hypothesis import given
from hypothesis import strategies as st

from plastic.learn.triplet import TripletSTDP
from plastic.neural.cell import Cell
from plastic.neural.connections import Conv1d, LinearDirect
from plastic.neural.neurons import LIF

# plasticity only: cells step under torch.no_grad(), as a plasticity run should (GradModeWarning)
pytestmark = pytest.mark.usefixtures("no_grad")

PARAMS = {"tau_plus": 16.8, "tau_minus": 33.7, "tau_x": 101.0, "tau_y": 125.0, "a2_plus": 5e-10, "a3_plus": 6.2e-3,
              "a2_minus": 7e-3, "a3_minus": 2.3e-4}  # fmt: skip


def triplet_reference(
    pre, post, *, dt, pairing, tau_plus, tau_minus, tau_x, tau_y, a2_plus, a3_plus, a2_minus, a3_minus
):
    """Per step, per sample, explicit outer products. pre [T, B, N_in], post [T, B, N_out] (0/1 floats)."""
    steps, batch, n_in = pre.shape
    n_out = post.shape[2]
    a = {name: math.exp(-dt / tau) for name, tau in
         (("plus", tau_plus), ("minus", tau_minus), ("x", tau_x), ("y", tau_y))}  # fmt: skip
    r1 = torch.zeros(batch, n_in, dtype=torch.float64)
    r2 = torch.zeros(batch, n_in, dtype=torch.float64)
    o1 = torch.zeros(batch, n_out, dtype=torch.float64)
    o2 = torch.zeros(batch, n_out, dtype=torch.float64)
    potentiation = torch.zeros(n_out, n_in, dtype=torch.float64)
    depression = torch.zeros(n_out, n_in, dtype=torch.float64)

    def advance(trace, spikes, decay):
        if pairing == "all":
            return trace * decay + spikes
        return torch.where(spikes > 0, torch.ones_like(trace), trace * decay)

    for t in range(steps):
        o2_before, r2_before = o2 * a["y"], r2 * a["x"]
        r1 = advance(r1, pre[t], a["plus"])
        r2 = advance(r2, pre[t], a["x"])
        o1 = advance(o1, post[t], a["minus"])
        o2 = advance(o2, post[t], a["y"])
        for b in range(batch):
            potentiation += torch.outer(post[t, b] * (a2_plus + a3_plus * o2_before[b]), r1[b])
            depression += torch.outer(o1[b], pre[t, b] * (a2_minus + a3_minus * r2_before[b]))
    return potentiation, depression


def run(cell, trainer, inputs, *, per_step):
    """Drive the cell with ``inputs`` [T, B, ...], call the trainer, return the recorded spikes."""
    pres, posts = [], []
    if per_step:
        cell.step_mode = "single"
        for t in range(inputs.shape[0]):
            cell(inputs[t])
            pres.append(cell.connection.synspike.clone())
            posts.append(cell.neuron.spike.clone())
            trainer()
        return torch.stack(pres).double(), torch.stack(posts).double()
    cell.step_mode = "window"
    cell(inputs)
    trainer()
    return cell.connection.synspike.clone().double(), cell.neuron.spike.clone().double()


def random_spikes(shape, rate, seed, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=generator) < rate).to(dtype)


@given(
    n_in=st.integers(1, 5), n_out=st.integers(1, 4), batch=st.integers(1, 3), steps=st.integers(1, 25),
    rate=st.floats(0.05, 0.7), dt=st.sampled_from([0.5, 1.0, 2.0]), pairing=st.sampled_from(["all", "nearest"]),
    scale=st.floats(0.3, 3.0), seed=st.integers(0, 2**16),
)  # fmt: skip
def test_matches_naive_reference(n_in, n_out, batch, steps, rate, dt, pairing, scale, seed):
    params = {**PARAMS, "tau_plus": 16.8 * scale, "tau_y": 125.0 / scale, "a2_plus": 5e-3}
    cell = make_lif_cell(n_in, n_out, batch, seed=seed)
    trainer = TripletSTDP(pairing=pairing, window=64, **params)
    cell.connection.dt = dt
    cell.neuron.dt = dt
    trainer.register_cell("c", cell)
    pre, post = run(cell, trainer, random_spikes((steps, batch, n_in), rate, seed), per_step=False)
    expected_pot, expected_dep = triplet_reference(pre, post, dt=cell.dt, pairing=pairing, **params)
    potentiation, depression = cell.updater.pending("weight")
    torch.testing.assert_close(potentiation, expected_pot, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(depression, expected_dep, rtol=1e-9, atol=1e-12)


@given(steps=st.integers(2, 20), batch=st.integers(1, 3), seed=st.integers(0, 2**16),
       pairing=st.sampled_from(["all", "nearest"]))  # fmt: skip
def test_every_step_equals_one_call(steps, batch, seed, pairing):
    inputs = random_spikes((steps, batch, 4), 0.4, seed)
    results = []
    for per_step in (True, False):
        cell = make_lif_cell(4, 3, batch, seed=seed)
        trainer = TripletSTDP(pairing=pairing, window=32, a2_plus=1e-2)
        trainer.register_cell("c", cell)
        spikes = run(cell, trainer, inputs, per_step=per_step)
        results.append((spikes, cell.updater.pending("weight")))
    (spikes_a, pending_a), (spikes_b, pending_b) = results
    torch.testing.assert_close(spikes_a, spikes_b)
    torch.testing.assert_close(pending_a, pending_b, rtol=1e-12, atol=1e-14)


def test_float32_within_1e5():
    cell32 = make_lif_cell(5, 3, 2, dtype=torch.float32, seed=3)
    trainer = TripletSTDP(window=64, a2_plus=1e-2)
    trainer.register_cell("c", cell32)
    pre, post = run(cell32, trainer, random_spikes((40, 2, 5), 0.4, 3, torch.float32), per_step=False)
    assert post.sum() > 0
    expected_pot, expected_dep = triplet_reference(pre, post, dt=1.0, pairing="all", **{**PARAMS, "a2_plus": 1e-2})
    potentiation, depression = cell32.updater.pending("weight")
    torch.testing.assert_close(potentiation.double(), expected_pot, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(depression.double(), expected_dep, rtol=1e-5, atol=1e-7)


def unfold_explicit(x, kernel, stride, padding, dilation):
    """[T, B, C, L] -> [T, B, P, C, kernel] with zero padding, by explicit indexing."""
    steps, batch, channels, length = x.shape
    positions = (length + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    out = torch.zeros(steps, batch, positions, channels, kernel, dtype=x.dtype)
    for p in range(positions):
        for j in range(kernel):
            index = p * stride + j * dilation - padding
            if 0 <= index < length:
                out[:, :, p, :, j] = x[..., index]
    return out


@given(
    kernel=st.integers(1, 3), stride=st.integers(1, 2), padding=st.integers(0, 2), dilation=st.integers(1, 2),
    groups=st.sampled_from([1, 2]), batch=st.integers(1, 2), seed=st.integers(0, 2**16),
)  # fmt: skip
def test_conv_equals_dense_on_unfolded_input(kernel, stride, padding, dilation, groups, batch, seed):
    length, c_in, c_out = 7, 2, 4
    generator = torch.Generator().manual_seed(seed)
    connection = Conv1d(
        c_in,
        c_out,
        kernel,
        stride,
        padding,
        dilation,
        groups,
        in_size=length,
        batch_size=batch,
        dtype=torch.float64,
        weight_init=lambda w: w.copy_(torch.rand(w.shape, generator=generator, dtype=w.dtype)),
    )
    neuron = LIF(connection.out_shape, tau=2.0, v_threshold=0.3, batch_size=batch, dtype=torch.float64)
    cell = Cell(connection, neuron)
    cell.make_updater()
    params = {**PARAMS, "a2_plus": 1e-2}
    trainer = TripletSTDP(window=32, **params)
    trainer.register_cell("c", cell)
    pre, post = run(cell, trainer, random_spikes((12, batch, c_in, length), 0.4, seed), per_step=False)
    unfolded = unfold_explicit(pre, kernel, stride, padding, dilation)  # [T, B, P, C_in, k]
    positions = unfolded.shape[2]
    per_group_in, per_group_out = c_in // groups, c_out // groups
    expected_pot = torch.zeros(connection.weight.shape, dtype=torch.float64)
    expected_dep = torch.zeros_like(expected_pot)
    for g in range(groups):
        outs = slice(g * per_group_out, (g + 1) * per_group_out)
        ins = slice(g * per_group_in, (g + 1) * per_group_in)
        for p in range(positions):
            # each output position is a dense layer on its receptive field
            dense_pre = unfolded[:, :, p, ins, :].reshape(pre.shape[0], batch, -1)
            dense_post = post[:, :, outs, p]
            pot, dep = triplet_reference(dense_pre, dense_post, dt=1.0, pairing="all", **params)
            expected_pot[outs] += pot.reshape(per_group_out, per_group_in, kernel)
            expected_dep[outs] += dep.reshape(per_group_out, per_group_in, kernel)
    potentiation, depression = cell.updater.pending("weight")
    torch.testing.assert_close(potentiation, expected_pot, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(depression, expected_dep, rtol=1e-9, atol=1e-12)


def test_mean_reduction_and_weight_dependence():
    cell = make_lif_cell(4, 3, 3, seed=5)
    trainer = TripletSTDP(window=32, a2_plus=1e-2, batch_reduction="mean",
                          weight_dependence_post=lambda w: 1.0 - w, weight_dependence_pre=lambda w: w)  # fmt: skip
    trainer.register_cell("c", cell)
    pre, post = run(cell, trainer, random_spikes((15, 3, 4), 0.5, 5), per_step=False)
    pot, dep = triplet_reference(pre, post, dt=1.0, pairing="all", **{**PARAMS, "a2_plus": 1e-2})
    weight = cell.connection.weight.detach()
    potentiation, depression = cell.updater.pending("weight")
    torch.testing.assert_close(potentiation, pot / 3 * (1 - weight), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(depression, dep / 3 * weight, rtol=1e-9, atol=1e-12)


def test_state_dict_round_trip_and_reset():
    cell = make_lif_cell(3, 2, 1, seed=1)
    trainer = TripletSTDP(window=32)
    trainer.register_cell("c", cell)
    run(cell, trainer, random_spikes((10, 1, 3), 0.5, 1), per_step=False)
    state = trainer.state_dict()
    assert "states.c.trace_pre_pair" in state and "states.c.trace_post_triplet" in state
    trainer.clear()
    assert "trace_pre_pair" not in dict(trainer.states["c"].named_buffers())


def test_refuses_bad_input():
    with pytest.raises(ValueError, match=r"^tau_plus"):
        TripletSTDP(tau_plus=-1.0)
    with pytest.raises(ValueError, match=r"^pairing"):
        TripletSTDP(pairing="all_to_all")
    with pytest.raises(TypeError):
        TripletSTDP(unknown=1.0)
    direct = Cell(LinearDirect(3), LIF(3))
    direct.make_updater()
    with pytest.raises(ValueError, match=r"^cell"):
        TripletSTDP().register_cell("d", direct)
