"""IntegerSTDP on cells: a naive integer reference, reproducibility, integrality and bounds."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from plastic.learn.integer import IntegerSTDP
from plastic.neural.cell import Cell
from plastic.neural.connections import LinearDense
from plastic.neural.neurons import LIF, AdaptiveLIF

# plasticity only: cells step under torch.no_grad(), as a plasticity run should (GradModeWarning)
pytestmark = pytest.mark.usefixtures("no_grad")


def integer_reference(pre, post, weight, threshold, generator, *, scale, decay_pre, decay_post, shift, nu_pre,
                      nu_post, k, w_min, w_max, max_threshold):  # fmt: skip
    """One call: the draws of the documented protocol (depression values [T, B, N_out] first, then
    potentiation values [T, B, N_in], float32 uniforms), explicit loops over steps, samples, synapses."""
    steps, batch, n_in = pre.shape
    n_out = post.shape[2]
    uniform_dep = torch.rand((steps, batch, n_out), generator=generator, dtype=torch.float32)
    uniform_pot = torch.rand((steps, batch, n_in), generator=generator, dtype=torch.float32)

    def round_s(value, uniform):
        base, remainder = value >> k, value % (1 << k)
        return base + (1 if float(uniform) < remainder / (1 << k) else 0)

    x_pre = [[0] * n_in for _ in range(batch)]
    x_post = [[0] * n_out for _ in range(batch)]
    w = [[int(weight[i, j]) for j in range(n_in)] for i in range(n_out)]
    for t in range(steps):
        for b in range(batch):
            x_pre[b] = [scale if pre[t, b, j] else (decay_pre * x_pre[b][j]) >> shift for j in range(n_in)]
            x_post[b] = [scale if post[t, b, i] else (decay_post * x_post[b][i]) >> shift for i in range(n_out)]
            dep = [round_s(nu_pre * x_post[b][i], uniform_dep[t, b, i]) for i in range(n_out)]
            pot = [round_s(nu_post * x_pre[b][j], uniform_pot[t, b, j]) for j in range(n_in)]
            for i in range(n_out):
                for j in range(n_in):
                    w[i][j] += int(post[t, b, i]) * pot[j] - dep[i] * int(pre[t, b, j])
    for i in range(n_out):
        for j in range(n_in):
            if max_threshold is not None and threshold[i] > max_threshold:
                w[i][j] //= 2
            w[i][j] = min(max(w[i][j], w_min), w_max)
    return torch.tensor(w, dtype=torch.float64)


def make_cell(n_in, n_out, batch, seed, neuron=None):
    generator = torch.Generator().manual_seed(seed)
    connection = LinearDense(
        n_in,
        n_out,
        batch_size=batch,
        dtype=torch.float64,
        weight_init=lambda w: w.copy_(torch.randint(0, 40, w.shape, generator=generator)),
    )
    if neuron is None:
        neuron = LIF(n_out, tau=2.0, v_threshold=15.0, batch_size=batch, dtype=torch.float64)
    cell = Cell(connection, neuron)
    cell.make_updater()
    return cell


def random_spikes(shape, rate, seed):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < rate).double()


@given(
    n_in=st.integers(1, 4), n_out=st.integers(1, 3), batch=st.integers(1, 2), steps=st.integers(1, 12),
    rate=st.floats(0.1, 0.7), k=st.integers(0, 6), nu_pre=st.integers(0, 5), nu_post=st.integers(0, 5),
    decay=st.integers(100, 250), threshold=st.sampled_from([None, 10.0]), seed=st.integers(0, 2**16),
)  # fmt: skip
def test_matches_naive_reference(n_in, n_out, batch, steps, rate, k, nu_pre, nu_post, decay, threshold, seed):
    params = {
        "trace_scale": 100,
        "trace_decay_pre": decay,
        "trace_decay_post": decay - 50,
        "trace_decay_shift": 8,
        "nu_pre": nu_pre,
        "nu_post": nu_post,
        "rounding_shift": k,
        "w_min": 0,
        "w_max": 60,
        "max_threshold": threshold,
    }
    row_thresholds = torch.arange(n_out, dtype=torch.float64) * 8.0  # rows 2+ are over 10
    cell = make_cell(n_in, n_out, batch, seed)
    trainer = IntegerSTDP(generator=torch.Generator().manual_seed(seed), threshold=row_thresholds, window=32, **params)
    trainer.register_cell("c", cell)
    before = cell.connection.weight.detach().clone()
    cell.step_mode = "window"
    cell(random_spikes((steps, batch, n_in), rate, seed))
    pre, post = cell.connection.synspike.clone(), cell.neuron.spike.clone()
    trainer()
    trainer.update()
    reference_params = {key: value for key, value in params.items() if key not in ("trace_scale", "trace_decay_pre",
                        "trace_decay_post", "trace_decay_shift", "rounding_shift")}  # fmt: skip
    expected = integer_reference(
        pre,
        post,
        before,
        row_thresholds,
        torch.Generator().manual_seed(seed),
        scale=100,
        decay_pre=decay,
        decay_post=decay - 50,
        shift=8,
        k=k,
        **reference_params,
    )
    assert torch.equal(cell.connection.weight.detach(), expected)


def run_network(seed, steps=30, calls=3):
    neuron = AdaptiveLIF(4, tau=2.0, v_threshold=10.0, theta_plus=2.0, tau_theta=1e7, batch_size=2,
                         dtype=torch.float64)  # fmt: skip
    cell = make_cell(6, 4, 2, 0, neuron=neuron)
    trainer = IntegerSTDP(generator=torch.Generator().manual_seed(seed), nu_post=3, nu_pre=2, rounding_shift=5,
                          w_max=50, max_threshold=14.0, window=64)  # fmt: skip
    trainer.register_cell("c", cell)
    cell.step_mode = "window"
    for call in range(calls):
        cell(random_spikes((steps, 2, 6), 0.5, call))
        trainer()
        trainer.update()
    return cell.connection.weight.detach().clone(), neuron.theta.clone()


def test_bit_identical_with_the_same_seed_integral_and_bounded():
    first, theta = run_network(7)
    second, _ = run_network(7)
    assert torch.equal(first, second)
    assert torch.equal(first, first.round())
    assert float(first.min()) >= 0 and float(first.max()) <= 50
    assert bool((theta + 10.0 > 14.0).any())  # the halving path ran
    other, _ = run_network(8)
    assert not torch.equal(first, other)  # the draws matter


def test_every_step_equals_one_call_without_rounding():
    inputs = random_spikes((12, 2, 4), 0.5, 3)
    results = []
    for per_step in (True, False):
        cell = make_cell(4, 3, 2, 3)
        trainer = IntegerSTDP(rounding_shift=0, nu_pre=1, nu_post=1, window=32, w_max=10_000)
        trainer.register_cell("c", cell)
        if per_step:
            for t in range(inputs.shape[0]):
                cell(inputs[t])
                trainer()
        else:
            cell.step_mode = "window"
            cell(inputs)
            trainer()
        potentiation, depression = cell.updater.pending("weight")
        trainer.update()
        results.append((potentiation, depression, cell.connection.weight.detach().clone()))
    assert results[0][0].sum() > 0 and results[0][1].sum() > 0
    for per_step_value, window_value in zip(*results, strict=True):
        assert torch.equal(per_step_value, window_value)


def test_threshold_read_from_adaptive_neuron():
    neuron = AdaptiveLIF(3, tau=2.0, v_threshold=1.0, theta_plus=0.0, batch_size=1, dtype=torch.float64)
    neuron.theta = torch.tensor([0.0, 5.0, 0.0], dtype=torch.float64)
    cell = make_cell(4, 3, 1, 1, neuron=neuron)
    trainer = IntegerSTDP(max_threshold=3.0, nu_pre=0, nu_post=0)
    trainer.register_cell("c", cell)
    before = cell.connection.weight.detach().clone()
    cell(torch.zeros(1, 4, dtype=torch.float64))
    trainer()
    trainer.update()
    after = cell.connection.weight.detach()
    assert torch.equal(after[1], torch.floor(before[1] / 2))
    assert torch.equal(after[[0, 2]], before[[0, 2]])


def test_refuses_bad_configuration():
    cell = make_cell(3, 2, 1, 0)
    cell.connection.weight.data += 0.5
    with pytest.raises(ValueError, match=r"^cell"):
        IntegerSTDP().register_cell("c", cell)
    clamped = make_cell(3, 2, 1, 0)
    clamped.make_updater(clamp=(0.0, 10.0))
    with pytest.raises(ValueError, match=r"^cell"):
        IntegerSTDP().register_cell("c", clamped)
    with pytest.raises(TypeError, match=r"^generator"):
        IntegerSTDP(generator=3)
    with pytest.raises(ValueError, match=r"^trace_decay_pre"):
        IntegerSTDP(trace_decay_pre=300)
    with pytest.raises(TypeError, match=r"^nu_post"):
        IntegerSTDP(nu_post=0.5)
