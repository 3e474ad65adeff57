"""The presynaptic-event form of the one-product STDP change (issue 15, S2): an input-major
weight's change written input by input, from the events of both sides.

References: ``stdp_window_net``'s post-event product of the same window (the plain path; float64,
equal to rounding since the sums run in another order) and the pair sums of all-to-all STDP with
carried traces written out pair by pair in plain Python; for the events grouped by column, the
nonzeros of the transpose.
"""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plastic.functional.bilinear import event_positions_by_column
from plastic.functional.stdp import stdp_window_net
from plastic.functional.stdp_engine import pre_event_window_product, uses_pre_event_product
from plastic.functional.traces import decay_factor
from plastic.learn.stdp import STDP
from plastic.neural.cell import Cell
from plastic.neural.connections import LinearDense
from plastic.neural.neurons import LIF
from plastic.neural.updater import Updater


def _pair_reference(pre, post, trace_pre, trace_post, decay_pre, decay_post, eta_post, eta_pre):
    """``dw[o][i]`` of all-to-all pair STDP with carried traces, pair by pair in plain Python (one sample)."""
    steps, n_in, n_out = len(pre), len(pre[0]), len(post[0])
    change = [[0.0] * n_in for _ in range(n_out)]
    for o in range(n_out):
        for i in range(n_in):
            total = 0.0
            for t in range(steps):
                if post[t][o]:  # pairs with this post spike: earlier and simultaneous pre spikes, the carried trace
                    total += eta_post * (
                        sum(decay_pre ** (t - u) for u in range(t + 1) if pre[u][i])
                        + decay_pre ** (t + 1) * trace_pre[i]
                    )
                if pre[t][i]:  # pairs with this pre spike: earlier and simultaneous post spikes, the carried trace
                    total -= eta_pre * (
                        sum(decay_post ** (t - u) for u in range(t + 1) if post[u][o])
                        + decay_post ** (t + 1) * trace_post[o]
                    )
            change[o][i] = total
    return change


@settings(max_examples=30, deadline=None)
@given(
    steps=st.integers(1, 12),
    n_in=st.integers(1, 12),
    n_out=st.integers(1, 7),
    density_pre=st.floats(0.0, 0.6),
    density_post=st.floats(0.0, 0.6),
    tau_pre=st.floats(1.0, 30.0),
    tau_post=st.floats(1.0, 30.0),
    carried_post=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_pre_event_product_is_the_post_event_product(
    steps, n_in, n_out, density_pre, density_post, tau_pre, tau_post, carried_post, seed
):
    generator = torch.Generator().manual_seed(seed)
    pre = torch.rand(steps, 1, n_in, generator=generator) < density_pre
    post = torch.rand(steps, 1, n_out, generator=generator) < density_post
    trace_pre = torch.rand(1, n_in, generator=generator, dtype=torch.float64)
    trace_post = torch.rand(1, n_out, generator=generator, dtype=torch.float64) if carried_post else None
    rates = {"eta_post": 0.7, "eta_pre": 0.4}
    plain = stdp_window_net(pre, post, trace_pre, trace_post, tau_pre=tau_pre, tau_post=tau_post, **rates)
    out = torch.full((n_in, n_out), math.nan, dtype=torch.float64)  # every element is written
    decay_pre, decay_post = float(decay_factor(1.0, tau_pre)), float(decay_factor(1.0, tau_post))
    _, last_pre, _, post_decayed = pre_event_window_product(
        pre, post, trace_pre, trace_post, decay_pre, decay_post, 1.0, 1.0, rates["eta_post"], rates["eta_pre"], out
    )
    torch.testing.assert_close(out.T, plain.delta_weight[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(last_pre, plain.trace_pre, rtol=1e-12, atol=1e-12)
    # without out: the same values bit for bit, the change in a new tensor (the rank-2 term added in place)
    fresh = pre_event_window_product(
        pre, post, trace_pre, trace_post, decay_pre, decay_post, 1.0, 1.0, rates["eta_post"], rates["eta_pre"], None
    )
    assert fresh.change.shape == (n_in, n_out) and fresh.change.data_ptr() != out.data_ptr()
    assert torch.equal(fresh.change, out) and torch.equal(fresh.last_pre, last_pre)
    assert torch.equal(fresh.post_decayed, post_decayed)
    window_post = plain.trace_post - (0.0 if trace_post is None else trace_post * decay_post**steps)
    torch.testing.assert_close(post_decayed, window_post, rtol=1e-12, atol=1e-12)
    reference = _pair_reference(
        pre[:, 0].tolist(), post[:, 0].tolist(), trace_pre[0].tolist(),
        [0.0] * n_out if trace_post is None else trace_post[0].tolist(),
        decay_pre, decay_post, rates["eta_post"], rates["eta_pre"],
    )  # fmt: skip
    torch.testing.assert_close(out.T, torch.tensor(reference, dtype=torch.float64), rtol=1e-10, atol=1e-10)


@settings(max_examples=15, deadline=None)
@given(steps=st.integers(1, 9), n_in=st.integers(2, 12), n_out=st.integers(2, 6), seed=st.integers(0, 2**16))
def test_stdp_window_net_writes_an_input_major_out_in_its_layout(steps, n_in, n_out, seed):
    generator = torch.Generator().manual_seed(seed)
    pre = torch.rand(steps, 1, n_in, generator=generator) < 0.3
    post = torch.rand(steps, 1, n_out, generator=generator) < 0.3
    traces = torch.rand(1, n_in, generator=generator, dtype=torch.float64), torch.rand(1, n_out, dtype=torch.float64)
    plain = stdp_window_net(pre, post, *traces, tau_pre=4.0, tau_post=6.0)
    storage = torch.empty(n_in, n_out, dtype=torch.float64)
    out = storage.T.unsqueeze(0)  # [1, N_out, N_in], input-major
    assert uses_pre_event_product(out, steps, 1) and not uses_pre_event_product(out, steps, 2)
    update = stdp_window_net(pre, post, *traces, tau_pre=4.0, tau_post=6.0, out=out)
    assert update.delta_weight is out
    torch.testing.assert_close(out, plain.delta_weight, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(update.trace_post, plain.trace_post, rtol=1e-12, atol=1e-12)
    # two samples: the post-event product, copied into the input-major out
    pre2, post2 = pre.expand(steps, 2, n_in), post.expand(steps, 2, n_out)
    traces2 = traces[0].expand(2, n_in), traces[1].expand(2, n_out)
    update = stdp_window_net(pre2, post2, *traces2, tau_pre=4.0, tau_post=6.0, out=out)
    expected = stdp_window_net(pre2, post2, *traces2, tau_pre=4.0, tau_post=6.0).delta_weight
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_input_major_cell_learns_through_the_updaters_own_buffer():
    """An input-major cell's STDP change is written into the updater's accumulator (no scratch, no copy)."""
    results = []
    for layout in ("output_major", "input_major"):
        torch.manual_seed(0)
        connection = LinearDense(40, 7, weight_init=(0.0, 0.3), dtype=torch.float64, weight_layout=layout)
        cell = Cell(connection, LIF(7, tau=2.0, v_threshold=0.4, dtype=torch.float64))
        updater = cell.make_updater()
        trainer = STDP(tau_pre=5.0, tau_post=8.0, eta_post=0.01, eta_pre=0.012, window=20)
        trainer.register_cell("c", cell)
        trains = torch.rand(60, 1, 40, generator=torch.Generator().manual_seed(5)) < 0.15
        with torch.no_grad():
            for block in trains.split(20):
                for step in block:
                    cell(step)
                trainer()
                assert "window_change" not in trainer.get_unit("c").state._buffers
                assert isinstance(updater, Updater) and updater.has_pending("weight")
                trainer.update()
        results.append(connection.weight.detach().clone())
    torch.testing.assert_close(results[1], results[0], rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 9), columns=st.integers(1, 9), density=st.floats(0.0, 1.0), seed=st.integers(0, 2**16))
def test_event_positions_by_column_are_the_transposes_positions(rows, columns, density, seed):
    events = torch.rand(rows, columns, generator=torch.Generator().manual_seed(seed)) < density
    assert torch.equal(event_positions_by_column(events), events.T.reshape(-1).nonzero().view(-1))
