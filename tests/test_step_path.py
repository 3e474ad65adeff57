"""The per-step path of issue 15: step observers, the input-major weight and its event-driven forward,
the row-compressed event product, and the monitors' recording through observers.

References are independent of the code under test: the current summed input by
input in plain Python (float64, the order of the gather: exact), the dense
``F.linear`` of the same weight, torch forward hooks recording the same
attributes into plain lists, and the output-major connection of the same
weights for the input-major one.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import plastic.functional.pair_products as pair_products
from plastic.functional.event_forward import gather_linear, is_input_major
from plastic.functional.pair_products import event_product, pair_product
from plastic.learn.stdp import STDP
from plastic.neural.cell import Cell
from plastic.neural.connections import LinearDense
from plastic.neural.neurons import LIF
from plastic.neural.observable import Observable
from plastic.observe import Monitor, WindowReducer


def summed_in_input_order(spikes: torch.Tensor, rows: torch.Tensor, amplitude: float) -> list[list[float]]:
    """``I[n][o] = A * (((0 + R[j1][o]) + R[j2][o]) + ...)`` over the spiking inputs ``j1 < j2 < ...``."""
    flat = spikes.reshape(-1, spikes.shape[-1]).tolist()
    matrix = rows.double().tolist()
    out = []
    for row in flat:
        sums = [0.0] * len(matrix[0])
        for j, fired in enumerate(row):
            if fired:
                sums = [total + value for total, value in zip(sums, matrix[j], strict=True)]
        out.append([amplitude * total for total in sums])
    return out


# ---------------------------------------------------------------------------- gather_linear


@settings(max_examples=40, deadline=None)
@given(
    leading=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    n_in=st.integers(1, 40),
    n_out=st.integers(1, 9),
    density=st.floats(0.0, 0.6),
    amplitude=st.sampled_from([1.0, -0.5, 2.5]),
    seed=st.integers(0, 2**16),
)
def test_gather_linear_sums_the_spiking_inputs_rows(leading, n_in, n_out, density, amplitude, seed):
    generator = torch.Generator().manual_seed(seed)
    spikes = torch.rand(*leading, n_in, generator=generator) < density
    rows = torch.randn(n_in, n_out, generator=generator, dtype=torch.float64)
    out = gather_linear(spikes, rows, amplitude)
    assert out is not None and out.shape == (*leading, n_out) and out.dtype == torch.float64
    expected = torch.tensor(summed_in_input_order(spikes, rows, amplitude), dtype=torch.float64)
    assert torch.equal(out.reshape(-1, n_out), expected.reshape(-1, n_out))  # the same sums, in the same order
    # and the dense product to rounding, in float32 too
    torch.testing.assert_close(out, amplitude * spikes.double() @ rows, rtol=1e-12, atol=1e-12)
    single = gather_linear(spikes, rows.float(), amplitude)
    assert single is not None
    torch.testing.assert_close(single, amplitude * spikes.float() @ rows.float(), rtol=1e-5, atol=1e-5)


def test_gather_linear_declines_dense_spikes_and_bad_input():
    rows = torch.ones(10, 3)
    spikes = torch.zeros(2, 10, dtype=torch.bool)
    spikes[:, :3] = True  # density 0.3
    assert gather_linear(spikes, rows, density=0.3) is None
    # the default (1) gathers even where every input spikes: the rows' sums (found by hypothesis)
    every = torch.ones(2, rows.shape[0], dtype=torch.bool)
    torch.testing.assert_close(gather_linear(every, rows), rows.sum(0).expand(2, -1), rtol=1e-12, atol=1e-12)
    out = gather_linear(spikes, rows, density=0.31)
    assert out is not None and out.tolist() == [[3.0] * 3] * 2
    with pytest.raises(TypeError, match=r"^spikes"):
        gather_linear(spikes.float(), rows)
    with pytest.raises(ValueError, match=r"^spikes"):
        gather_linear(torch.zeros(2, 9, dtype=torch.bool), rows)


# ---------------------------------------------------------------------------- input-major weights


def _pair(n_in: int, n_out: int, batch: int, step_mode: str, dtype: torch.dtype, generator: torch.Generator, **kw):
    """The same weights, output-major and input-major."""
    plain = LinearDense(n_in, n_out, batch_size=batch, step_mode=step_mode, dtype=dtype, **kw)
    major = LinearDense(
        n_in, n_out, batch_size=batch, step_mode=step_mode, dtype=dtype, weight_layout="input_major", **kw
    )
    with torch.no_grad():
        weight = torch.randn(n_out, n_in, generator=generator, dtype=dtype)
        plain.weight.copy_(weight)
        major.weight.copy_(weight)
        if plain.bias is not None and major.bias is not None:
            major.bias.copy_(plain.bias)
    return plain, major


def test_input_major_weight_is_the_same_weight_laid_out_input_by_input():
    connection = LinearDense(5, 3, weight_layout="input_major")
    assert connection.weight.shape == (3, 5) and is_input_major(connection.weight)
    assert not is_input_major(LinearDense(5, 3).weight)
    # state dict round trip (also from and into an output-major connection), dtype and copies keep the layout
    plain = LinearDense(5, 3)
    connection.load_state_dict(plain.state_dict())
    assert torch.equal(connection.weight, plain.weight) and is_input_major(connection.weight)
    plain.load_state_dict(connection.state_dict())
    assert torch.equal(connection.weight, plain.weight)
    connection.double()
    assert connection.weight.dtype == torch.float64 and is_input_major(connection.weight)
    # the updater's accumulators follow the layout (the apply is one sequential pass)
    cell = Cell(connection, LIF(3, dtype=torch.float64))
    updater = cell.make_updater()
    assert updater.pending("weight")[0].stride() == connection.weight.stride()
    with pytest.raises(ValueError, match=r"^weight_layout"):
        LinearDense(5, 3, weight_layout="column")
    # a seed draws the same weight in either layout
    for weight_init in (None, (0.0, 0.5), torch.nn.init.normal_):
        torch.manual_seed(7)
        first = LinearDense(5, 3, weight_init=weight_init).weight
        torch.manual_seed(7)
        assert torch.equal(LinearDense(5, 3, weight_init=weight_init, weight_layout="input_major").weight, first)


@settings(max_examples=30, deadline=None)
@given(
    steps=st.integers(1, 4),
    batch=st.integers(1, 4),
    n_in=st.integers(2, 60),
    n_out=st.integers(1, 8),
    density=st.floats(0.0, 0.3),
    bias=st.booleans(),
    amplitude=st.sampled_from([1.0, 0.7]),
    window=st.booleans(),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=st.integers(0, 2**16),
)
def test_input_major_forward_equals_the_output_major_one(
    steps, batch, n_in, n_out, density, bias, amplitude, window, dtype, seed
):
    generator = torch.Generator().manual_seed(seed)
    mode = "window" if window else "single"
    plain, major = _pair(n_in, n_out, batch, mode, dtype, generator, bias=bias, synapse_kwargs={"amplitude": amplitude})
    spikes = torch.rand(steps, batch, n_in, generator=generator) < density
    # every size takes the gather (it is exact; the size rule only decides what is faster)
    with torch.no_grad(), pytest.MonkeyPatch.context() as patch:
        patch.setattr("plastic.neural.connections.GATHER_MIN_WORK", 0)
        patch.setattr("plastic.neural.connections.GATHER_DENSITY", 1.1)
        patch.setattr("plastic.neural.connections.GATHER_DENSITY_LARGE", 1.1)
        inputs = [spikes] if window else list(spikes)
        for step in inputs:
            expected, out = plain(step), major(step)
            rtol = 1e-12 if dtype == torch.float64 else 1e-5
            torch.testing.assert_close(out, expected, rtol=rtol, atol=rtol)
            assert torch.equal(major.synspike, plain.synspike) and torch.equal(major.syncurrent, plain.syncurrent)
        if not window and density > 0:
            # the gathered current is the inputs' rows summed in input order (exact in float64)
            rows = major.weight.T
            reference = torch.tensor(summed_in_input_order(spikes[-1], rows, amplitude), dtype=torch.float64)
            if bias:
                reference = reference + major.bias.double()
            if dtype == torch.float64:
                assert torch.equal(out, reference)


def test_input_major_cell_learns_what_the_output_major_cell_learns():
    generator = torch.Generator().manual_seed(3)
    trains = torch.rand(30, 2, 50, generator=generator) < 0.1
    results = []
    for layout in ("output_major", "input_major"):
        torch.manual_seed(0)
        connection = LinearDense(50, 6, batch_size=2, weight_init=(0.0, 0.3), dtype=torch.float64, weight_layout=layout)
        cell = Cell(connection, LIF(6, batch_size=2, tau=2.0, v_threshold=0.5, dtype=torch.float64))
        cell.make_updater(clamp=(0.0, 1.0))
        trainer = STDP(tau_pre=5.0, tau_post=5.0, eta_post=0.01, eta_pre=0.012, window=10)
        trainer.register_cell("c", cell)
        with torch.no_grad():
            for block in trains.split(10):
                for step in block:
                    cell(step)
                trainer()
                trainer.update()
        results.append(connection.weight.detach().clone())
    assert is_input_major(connection.weight)
    torch.testing.assert_close(results[1], results[0], rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------- event products


@settings(max_examples=30, deadline=None)
@given(
    count=st.integers(1, 12),
    rows=st.integers(1, 9),
    channels=st.integers(1, 7),
    density=st.floats(0.0, 0.5),
    seed=st.integers(0, 2**16),
)
def test_event_product_into_out_adds_only_the_rows_with_events(count, rows, channels, density, seed):
    generator = torch.Generator().manual_seed(seed)
    events = torch.rand(count, 1, rows, 1, generator=generator) < density
    values = torch.randn(count, 1, channels, 1, generator=generator, dtype=torch.float64)
    start = torch.randn(1, rows, channels, generator=generator, dtype=torch.float64)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pair_products, "ROW_CHUNK_ELEMENTS", 2 * channels)  # a few events per chunk
        out = event_product(events, values, out=start.clone())
    expected = start + torch.einsum("nr,nc->rc", events[:, 0, :, 0].double(), values[:, 0, :, 0])
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    untouched = ~events.any(0).reshape(rows)
    assert torch.equal(out[0, untouched], start[0, untouched])  # rows without events are not written


@pytest.mark.parametrize("method", ["sparse", "dense"])
def test_pair_product_accumulates_into_out(method):
    generator = torch.Generator().manual_seed(1)
    post = torch.rand(7, 2, 5, generator=generator) < 0.2
    pre = torch.randn(7, 2, 9, generator=generator, dtype=torch.float64)
    start = torch.randn(1, 5, 9, generator=generator, dtype=torch.float64)
    out = pair_product(post, pre, events="post", method=method, out=start.clone(), accumulate=True)
    expected = start + torch.einsum("tbo,tbk->ok", post.double(), pre)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"^accumulate"):
        pair_product(post, pre, events="post", accumulate=True)


# ---------------------------------------------------------------------------- step observers


class Doubler(Observable):
    def forward(self, value: torch.Tensor) -> torch.Tensor:
        return 2 * value


def test_step_observers_run_around_the_call_and_its_hooks():
    module = Doubler()
    calls: list[tuple] = []
    module.register_forward_pre_hook(lambda m, args: calls.append(("torch pre",)))
    module.register_forward_hook(lambda m, args, out: calls.append(("torch post",)))
    first = module.register_step_observer(lambda m, args: calls.append(("pre", args[0].item())), pre=True)
    module.register_step_observer(lambda m, args, out: calls.append(("post", args[0].item(), out.item())))
    assert module.step_observer_count() == 2
    assert module(torch.tensor(3.0)).item() == 6.0
    assert calls == [("pre", 3.0), ("torch pre",), ("torch post",), ("post", 3.0, 6.0)]
    first.remove()
    calls.clear()
    module(torch.tensor(1.0))
    assert calls == [("torch pre",), ("torch post",), ("post", 1.0, 2.0)] and module.step_observer_count() == 1
    with pytest.raises(TypeError, match=r"^hook"):
        module.register_step_observer(3)  # type: ignore[arg-type]


@settings(max_examples=15, deadline=None)
@given(batch=st.integers(1, 3), steps=st.integers(1, 12), density=st.floats(0.0, 1.0), seed=st.integers(0, 2**16))
def test_monitors_on_cells_record_what_forward_hooks_see(batch, steps, density, seed):
    """Monitors on a cell use step observers; the same attributes read by torch hooks after each call."""
    generator = torch.Generator().manual_seed(seed)
    cell = Cell(LinearDense(6, 4, batch_size=batch), LIF(4, batch_size=batch, v_threshold=0.2))
    pre = Monitor(WindowReducer(steps), cell, "connection.synspike")
    post = Monitor(WindowReducer(steps), cell, "neuron.spike", train_only="train")
    voltage = Monitor(WindowReducer(steps), cell, "neuron.voltage", hook="pre")
    assert not cell._forward_hooks and not cell._forward_pre_hooks and cell.step_observer_count() == 3
    seen: dict[str, list[torch.Tensor]] = {"pre": [], "post": [], "voltage": []}
    cell.register_forward_pre_hook(lambda m, args: seen["voltage"].append(m.neuron.voltage.clone()))
    cell.register_forward_hook(lambda m, args, out: seen["pre"].append(m.connection.synspike.clone()))
    cell.register_forward_hook(lambda m, args, out: seen["post"].append(m.neuron.spike.clone()))
    trains = torch.rand(steps, batch, 6, generator=generator) < density
    with torch.no_grad():
        for step in trains:
            cell(step)
    for key, monitor in (("pre", pre), ("post", post), ("voltage", voltage)):
        assert torch.equal(monitor.peek(), torch.stack(seen[key])), key
        assert monitor.reducer.total == steps
    cell.eval()
    cell(trains[0])
    assert post.reducer.total == steps and pre.reducer.total == steps + 1  # train_only gates as before
    pre.remove()
    assert cell.step_observer_count() == 2


def test_plain_modules_keep_forward_hooks():
    module = nn.Identity()
    monitor = Monitor(WindowReducer(3), module, "input")
    assert len(module._forward_hooks) == 1
    module(torch.ones(2))
    assert torch.equal(monitor.peek()[-1], torch.ones(2))


def test_dense_linear_reference():
    """The dense reference of the tests above is F.linear's own result (a sanity check of the helper)."""
    spikes = torch.tensor([[True, False, True]])
    rows = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=torch.float64)
    assert summed_in_input_order(spikes, rows, 1.0) == F.linear(spikes.double(), rows.T).tolist()


def test_cells_still_call_their_submodules_hooks():
    """A cell calls its connection's and neuron's forwards directly only while no hook is registered on them."""
    cell = Cell(LinearDense(5, 3), LIF(3, v_threshold=0.1))
    seen: list[str] = []
    cell.connection.register_forward_hook(lambda m, args, out: seen.append("connection"))
    cell.connection.synapse.register_forward_pre_hook(lambda m, args: seen.append("synapse"))
    handle = cell.neuron.register_forward_hook(lambda m, args, out: seen.append("neuron"))
    with torch.no_grad():
        spikes = cell(torch.ones(1, 5, dtype=torch.bool))
    assert seen == ["synapse", "connection", "neuron"]
    handle.remove()
    seen.clear()
    with torch.no_grad():
        again = cell(torch.ones(1, 5, dtype=torch.bool))
    assert seen == ["synapse", "connection"] and again.shape == spikes.shape
