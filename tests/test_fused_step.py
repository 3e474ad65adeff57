"""The fused single step of a dense cell (plastic.neural.fused_step) against the eager step.

Every comparison runs the same cell twice from the same seed, once with the
fused step switched off (the eager path: the connection's gather and the
neuron's step, tested on their own elsewhere) and once with it, and asks for
the same tensors bit for bit: output spikes, voltage, the recorded windows,
the trainer's weight change. The fused kernel runs compiled by numba where
numba is installed, and as plain Python otherwise (the same function, one
Python operation per element), so the integration is tested either way.
"""

from __future__ import annotations

import copy
import math
import pickle
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import plastic.neural.fused_step as fused_module
from plastic import (
    IF,
    LIF,
    STDP,
    AdaptiveLIF,
    Cell,
    DeltaCurrent,
    ExponentialCurrent,
    LinearDense,
    LinearLateral,
    Monitor,
    Serial,
)
from plastic.functional.fused_step import DONE, compiled_linear_neuron_step, entry_point, linear_neuron_step
from plastic.neural.fused_step import (
    fused_step_available,
    fused_step_enabled,
    fused_step_refusal,
    set_fused_step,
)
from plastic.observe.reducers import WindowReducer

pytestmark = pytest.mark.usefixtures("no_grad")

KERNELS = ["python", pytest.param("numba", marks=pytest.mark.skipif(
    compiled_linear_neuron_step() is None, reason="numba is not installed"))]  # fmt: skip


class CountingKernel:
    """The step kernel, counting the steps it took (``DONE``) and the calls it refused with a reason;
    ``direct_calls`` of them went to the compiled code without numba's dispatcher (:meth:`entry_point`)."""

    def __init__(self, kernel: Callable[..., int]) -> None:
        self.kernel = kernel
        self.calls = 0  # steps written
        self.refused = 0
        self.direct_calls = 0

    def __call__(self, *args: Any) -> int:
        return self._count(self.kernel(*args))

    def _count(self, status: int) -> int:
        if status == DONE:
            self.calls += 1
        else:
            self.refused += 1
        return status

    def entry_point(self, kernel: Callable[..., int], arguments: tuple[Any, ...]) -> Callable[..., int] | None:
        """What the fused step gets for ``plastic.functional.fused_step.entry_point``: the counted entry
        point of the counted kernel (None for the plain Python one)."""
        assert kernel is self
        entry = entry_point(self.kernel, arguments)
        if entry is None:
            return None
        direct = entry

        def counted(*args: Any) -> int:
            self.direct_calls += 1
            return self._count(direct(*args))

        return counted


@pytest.fixture(params=KERNELS)
def kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingKernel]:
    """Cells built in the test take the fused step through this kernel (compiled or plain Python)."""
    chosen = compiled_linear_neuron_step() if request.param == "numba" else linear_neuron_step
    assert chosen is not None
    counting = CountingKernel(chosen)
    monkeypatch.setattr(fused_module, "compiled_linear_neuron_step", lambda: counting)
    monkeypatch.setattr(fused_module, "entry_point", counting.entry_point)
    set_fused_step(True)
    yield counting
    set_fused_step(True)


def build(
    seed: int,
    *,
    batch: int = 1,
    inputs: int = 12,
    outputs: int = 7,
    dtype: torch.dtype = torch.float64,
    neuron: str = "lif",
    neuron_kwargs: dict[str, Any] | None = None,
    bias: bool = False,
    amplitude: float = 1.0,
    layout: str = "input_major",
    window: int = 20,
    trainer: bool = True,
) -> tuple[Cell, STDP | None]:
    torch.manual_seed(seed)
    connection = LinearDense(
        inputs, outputs, batch_size=batch, bias=bias, weight_init=(0.0, 0.6), weight_layout=layout,
        synapse_kwargs={"amplitude": amplitude}, dtype=dtype,
    )  # fmt: skip
    if bias:
        connection.bias.data.uniform_(-0.2, 0.2)
    kinds = {"lif": LIF, "if": IF, "adaptive": AdaptiveLIF}
    cell = Cell(connection, kinds[neuron](outputs, batch_size=batch, dtype=dtype, **(neuron_kwargs or {})))
    if not trainer:
        return cell, None
    cell.make_updater(params=["weight"])
    stdp = STDP(tau_pre=3.0, tau_post=4.0, window=window, eta_post=0.01, eta_pre=0.012)
    stdp.register_cell("cell", cell)
    return cell, stdp


def trains(seed: int, steps: int, batch: int, inputs: int, rate: float) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return list((torch.rand(steps, batch, inputs, generator=generator) < rate).unbind(0))


def sparse_trains(seed: int, steps: int, batch: int, inputs: int, count: int = 2) -> list[torch.Tensor]:
    """``count`` spikes per sample and step: under the gather's density limit where ``count < 0.3 inputs``."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.rand(steps, batch, inputs, generator=generator).argsort(-1)
    return list((order < count).unbind(0))


def run(
    fused: bool, spikes: list[torch.Tensor], currents: list[torch.Tensor] | None = None, train_every: int = 0,
    prepare: Callable[[Cell], None] | None = None, eager_steps: range = range(0),
    actions: dict[int, Callable[[Cell, STDP | None], None]] | None = None, **build_kwargs: Any,
) -> dict[str, Any]:  # fmt: skip
    """Step a new cell over ``spikes`` (fused step on or off, off for the ``eager_steps``); what it gave and
    what it holds. ``prepare``: called on the new cell before its first step; ``actions[index]``: on the
    cell and its trainer before step ``index``."""
    set_fused_step(fused)
    cell, stdp = build(0, **build_kwargs)
    if prepare is not None:
        prepare(cell)
    outputs = []
    for index, step in enumerate(spikes):
        if actions is not None and index in actions:
            actions[index](cell, stdp)
        set_fused_step(fused and index not in eager_steps)
        outputs.append(cell(step) if currents is None else cell(step, currents[index]))
        if stdp is not None and train_every and (index + 1) % train_every == 0:
            stdp()
            stdp.update()
    result: dict[str, Any] = {
        "outputs": torch.stack(outputs),
        "voltage": cell.neuron.voltage.clone(),
        "spike": cell.neuron.spike.clone(),
        "synspike": cell.connection.synspike.clone(),
        "syncurrent": cell.connection.syncurrent.clone(),
        "weight": cell.connection.weight.detach().clone(),
    }
    buffers = cell.neuron._buffers
    for name in ("refractory_remaining", "theta"):
        if name in buffers:
            result[name] = buffers[name].clone()
    if stdp is not None:
        for name, monitor in stdp.get_unit("cell").monitors.items():
            reducer = monitor.reducer
            assert isinstance(reducer, WindowReducer)
            # with whether the recording's shape is fixed (a step of another shape refused until cleared)
            result[f"ring {name}"] = (reducer.peek().clone(), reducer.count, reducer.total, reducer._shape_fixed)
    set_fused_step(True)
    return result


def assert_same(fused: dict[str, Any], eager: dict[str, Any]) -> None:
    assert fused.keys() == eager.keys()
    for name, value in eager.items():
        if isinstance(value, tuple):
            assert torch.equal(fused[name][0], value[0]), name
            assert fused[name][1:] == value[1:], name
        else:
            assert fused[name].dtype == value.dtype, name
            assert torch.equal(fused[name], value), name


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batch=st.integers(1, 3),
    inputs=st.integers(1, 24),
    outputs=st.integers(1, 12),
    rate=st.floats(0.0, 0.25),
    steps=st.integers(1, 14),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    neuron=st.sampled_from(["lif", "if", "adaptive"]),
    refractory=st.integers(0, 4),
    theta_plus=st.sampled_from([0.0, 0.05]) | st.floats(0.0, 0.7),
    tau_theta=st.sampled_from([math.inf]) | st.floats(1.5, 200.0),
    theta_start=st.booleans(),
    tau=st.floats(1.2, 30.0),
    v_threshold=st.floats(0.1, 1.5),
    v_reset=st.sampled_from([0.0, -0.0, -0.3, 0.05]),  # below every drawn V_th (a hard reset needs it)
    reset=st.sampled_from(["hard", "soft"]),
    decay_input=st.booleans(),
    bias=st.booleans(),
    amplitude=st.sampled_from([1.0, 0.7, -1.3]),
    with_current=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_fused_step_equals_the_eager_step(
    kernel: CountingKernel, batch: int, inputs: int, outputs: int, rate: float, steps: int, dtype: torch.dtype,
    neuron: str, refractory: int, theta_plus: float, tau_theta: float, theta_start: bool, tau: float,
    v_threshold: float, v_reset: float, reset: str, decay_input: bool, bias: bool, amplitude: float,
    with_current: bool, seed: int,
) -> None:  # fmt: skip
    """Drawn shapes, rates, dtypes, neuron parameters (refractory periods of 0-4 steps, adaptive thresholds
    with ``theta_plus`` 0 or not, ``tau_theta`` inf (a decay of 1) or not, ``theta`` starting at 0 or
    drawn), bias, amplitude and other currents, with an STDP trainer recording and applying its change
    every 5 steps: the fused run equals the eager one (spikes, voltage, counter, theta, windows, weight)."""
    spikes = trains(seed, steps, batch, inputs, rate)
    generator = torch.Generator().manual_seed(seed + 1)
    currents = None
    if with_current:
        currents = list((torch.rand(steps, batch, outputs, generator=generator, dtype=dtype) - 0.3).unbind(0))
    neuron_kwargs: dict[str, Any] = {
        "v_threshold": v_threshold, "v_reset": v_reset, "reset": reset, "refractory": float(refractory)
    }  # fmt: skip
    if neuron != "if":
        neuron_kwargs |= {"tau": tau, "decay_input": decay_input}
    prepare = None
    if neuron == "adaptive":
        neuron_kwargs |= {"theta_plus": theta_plus, "tau_theta": tau_theta}
        if theta_start:
            theta = torch.rand(outputs, generator=generator, dtype=dtype) * 0.6 - 0.1

            def prepare(cell: Cell) -> None:
                cell.neuron.theta = theta.clone()

    kwargs = {"batch": batch, "inputs": inputs, "outputs": outputs, "dtype": dtype, "neuron": neuron,
              "neuron_kwargs": neuron_kwargs, "bias": bias, "amplitude": amplitude, "prepare": prepare}  # fmt: skip
    eager = run(False, spikes, currents, train_every=5, **kwargs)
    calls_before, refused_before, direct_before = kernel.calls, kernel.refused, kernel.direct_calls
    fused = run(True, spikes, currents, train_every=5, **kwargs)
    assert_same(fused, eager)
    # the eager gather's density limit (0.3 of the batch's inputs): below it every step is fused
    if all(int(step.sum()) < 0.3 * step.numel() for step in spikes):
        assert kernel.calls - calls_before == steps
    # numba's machine code is called directly at every step without a current, through its dispatcher
    # at every step with one; the plain Python kernel as it is
    kernel_calls = kernel.calls - calls_before + kernel.refused - refused_before
    direct = 0 if with_current or kernel.kernel is linear_neuron_step else kernel_calls
    assert kernel.direct_calls - direct_before == direct


def test_fused_step_hand_computed(kernel: CountingKernel) -> None:
    """One LIF neuron (tau = 2, V_th = 1, hard reset to 0) fed by inputs 0, 1, 2 of ten (weights 0.5,
    0.25, 1.5; the others 0), ``H = V + (X - V) / 2`` by hand, and the trainer's window rings holding
    the steps. At most two spikes of ten: under the gather's density limit (0.3), every step is fused."""
    cell, stdp = build(0, inputs=10, outputs=1, window=4, neuron_kwargs={"tau": 2.0})
    assert stdp is not None
    weight = torch.zeros(1, 10, dtype=torch.float64)
    weight[0, :3] = torch.tensor([0.5, 0.25, 1.5])
    cell.connection.weight.data.copy_(weight)
    spiking = [[0, 2], [1], [0]]
    steps = [[index in inputs for index in range(10)] for inputs in spiking]
    # X = 2: H = 1 >= 1 fires, V = 0; X = 0.25: H = V = 0.125; X = 0.5: H = 0.125 + 0.375 / 2 = 0.3125
    expected_spikes, expected_voltages = [1.0, 0.0, 0.0], [0.0, 0.125, 0.3125]
    for step, spike, voltage in zip(steps, expected_spikes, expected_voltages, strict=True):
        assert cell(torch.tensor([step])).tolist() == [[spike]]
        assert cell.neuron.voltage.tolist() == [[voltage]]
    assert (kernel.calls, kernel.refused) == (3, 0)
    monitors = stdp.get_unit("cell").monitors
    assert monitors["pre"].reducer.peek()[1:, 0].tolist() == steps
    assert monitors["post"].reducer.peek()[1:, 0, 0].tolist() == [True, False, False]
    assert monitors["pre"].reducer.total == 3


def test_fused_step_hand_computed_refractory_and_adaptive(kernel: CountingKernel) -> None:
    """Two samples of one AdaptiveLIF neuron (tau = 2, V_th = 1, hard reset to 0, refractory 2 steps,
    theta_plus = 0.5, tau_theta = inf: no decay) fed by inputs 0, 1, 2 of ten (weights 2, 1, 0.5), by
    hand: ``H = V + (X - V) / 2`` unless refractory (``H = V``), a spike where ``H >= 1 + theta``, the
    counter 2 after a spike and one less per step, theta + 0.5 per spike of either sample."""
    neuron_kwargs = {"tau": 2.0, "refractory": 2.0, "theta_plus": 0.5, "tau_theta": math.inf}
    cell, _ = build(0, batch=2, inputs=10, outputs=1, neuron="adaptive", neuron_kwargs=neuron_kwargs)
    weight = torch.zeros(1, 10, dtype=torch.float64)
    weight[0, :3] = torch.tensor([2.0, 1.0, 0.5])
    cell.connection.weight.data.copy_(weight)
    spiking = [([0], [2]), ([0], [0]), ([0], [0]), ([0, 1], [0]), ([0, 1], [0])]
    # step 1: X = 2, 0.5: H = 1 >= 1 fires (r = 2), H = 0.25; theta 0.5
    # step 2: sample 0 refractory (V = 0, r = 1); X = 2: H = 0.25 + 1.75 / 2 = 1.125 < 1.5
    # step 3: sample 0 refractory (r = 0); H = 1.125 + 0.875 / 2 = 1.5625 >= 1.5 fires (r = 2); theta 1
    # step 4: X = 3: H = 1.5 < 2; sample 1 refractory (V = 0, r = 1)
    # step 5: H = 1.5 + 1.5 / 2 = 2.25 >= 2 fires (r = 2); sample 1 refractory (r = 0); theta 1.5
    expected = [
        ([1.0, 0.0], [0.0, 0.25], [2, 0], 0.5),
        ([0.0, 0.0], [0.0, 1.125], [1, 0], 0.5),
        ([0.0, 1.0], [0.0, 0.0], [0, 2], 1.0),
        ([0.0, 0.0], [1.5, 0.0], [0, 1], 1.0),
        ([1.0, 0.0], [0.0, 0.0], [2, 0], 1.5),
    ]
    for inputs, (spikes, voltages, remaining, theta) in zip(spiking, expected, strict=True):
        step = torch.tensor([[index in sample for index in range(10)] for sample in inputs])
        assert cell(step)[:, 0].tolist() == spikes
        assert cell.neuron.voltage[:, 0].tolist() == voltages
        assert cell.neuron.refractory_remaining[:, 0].tolist() == remaining
        assert cell.neuron.refractory_remaining.dtype == torch.int32
        assert cell.neuron.theta.tolist() == [theta]
    assert (kernel.calls, kernel.refused) == (5, 0)
    # a decay of exp(-1 / 4), no spike (sample 0 refractory, sample 1: H = 3 / 2 < 1 + 1.5): theta 1.5 exp(-1 / 4)
    cell.neuron.params = attrs.evolve(cell.neuron.params, theta_decay=math.exp(-1 / 4))
    cell(torch.tensor([[index in (0, 1) for index in range(10)]] * 2))
    assert cell.neuron.theta.tolist() == [1.5 * math.exp(-1 / 4)]
    # theta_plus = 0 without decay: theta stays the same tensor (as the eager step leaves it)
    cell.neuron.params = attrs.evolve(cell.neuron.params, theta_plus=0.0, theta_decay=1.0)
    theta = cell.neuron.theta
    cell(torch.tensor([[index == 0 for index in range(10)]] * 2))
    assert cell.neuron.theta is theta
    assert kernel.calls == 7


def test_switching_between_fused_and_eager_steps(kernel: CountingKernel) -> None:
    """Steps 4-6 and 11 eager, the others fused (each continuing from the state the other stored): the run
    equals the all-eager one, for Diehl & Cook style cells (refractory, adaptive, with a current)."""
    spikes = sparse_trains(11, 14, 2, 12)
    generator = torch.Generator().manual_seed(12)
    currents = list((torch.rand(14, 2, 7, generator=generator, dtype=torch.float64) - 0.4).unbind(0))
    kwargs: dict[str, Any] = {"batch": 2, "neuron": "adaptive", "train_every": 5,
                              "neuron_kwargs": {"refractory": 3.0, "theta_plus": 0.2, "tau_theta": 20.0}}  # fmt: skip
    eager = run(False, spikes, currents, **kwargs)
    switched = run(True, spikes, currents, eager_steps=range(4, 7), **kwargs)
    assert_same(switched, eager)
    assert kernel.calls == 11
    twice = run(True, spikes, currents, eager_steps=range(11, 12), **kwargs)
    assert_same(twice, eager)
    assert kernel.calls == 11 + 13


@pytest.mark.parametrize("neuron", ["lif", "adaptive"])
def test_a_step_that_fails_changes_nothing(kernel: CountingKernel, neuron: str) -> None:
    """NaN in the weight (the neurons' input) or in ``current``: the eager step's ValueError, nothing written
    (the refractory counter and theta of an adaptive neuron included)."""
    neuron_kwargs = {"refractory": 2.0, "theta_plus": 0.1, "tau_theta": 10.0} if neuron == "adaptive" else None
    cell, stdp = build(0, neuron=neuron, neuron_kwargs=neuron_kwargs)
    assert stdp is not None
    for step in trains(1, 5, 1, 12, 0.2):
        cell(step)
    buffers = cell.neuron._buffers
    names = [name for name in ("refractory_remaining", "theta") if name in buffers]
    assert names == (["refractory_remaining", "theta"] if neuron == "adaptive" else [])
    before = {
        "voltage": cell.neuron.voltage.clone(),
        "state": [(buffers[name], buffers[name].clone()) for name in names],
        "spike": cell.neuron.spike,
        "synspike": cell.connection.synspike,
        "rings": [(m.reducer.peek().clone(), m.reducer.total) for m in stdp.get_unit("cell").monitors.values()],
    }
    calls = kernel.calls
    one_spike = torch.arange(12).reshape(1, 12) == 3
    with pytest.raises(ValueError, match="current: expected finite values"):
        cell(one_spike, torch.full((1, 7), float("nan"), dtype=torch.float64))
    cell.connection.weight.data[:, 3] = float("inf")
    with pytest.raises(ValueError, match="inputs: expected finite values"):
        cell(one_spike)
    assert kernel.calls == calls and kernel.refused == 2
    assert torch.equal(cell.neuron.voltage, before["voltage"])
    for (tensor, values), name in zip(before["state"], names, strict=True):
        assert buffers[name] is tensor and torch.equal(tensor, values)
    assert cell.neuron.spike is before["spike"]
    assert cell.connection.synspike is before["synspike"]
    for monitor, (ring, total) in zip(stdp.get_unit("cell").monitors.values(), before["rings"], strict=True):
        assert torch.equal(monitor.reducer.peek(), ring)
        assert monitor.reducer.total == total


def test_fallbacks_take_the_eager_step(kernel: CountingKernel) -> None:
    """Cells outside the fused step's conditions step eagerly (the kernel writes nothing), with the same
    results as with the fused step switched off."""
    spikes = sparse_trains(3, 8, 2, 12)

    def int64_counter(cell: Cell) -> None:  # the eager step's arithmetic in int64
        cell.neuron.refractory_remaining = torch.zeros(2, 7, dtype=torch.int64)

    cases: list[dict[str, Any]] = [
        {"layout": "output_major"},
        {"neuron_kwargs": {"refractory": 2.0}, "prepare": int64_counter},
        {"dtype": torch.float16},
    ]
    for kwargs in cases:
        calls = kernel.calls
        assert_same(run(True, spikes, batch=2, **kwargs), run(False, spikes, batch=2, **kwargs))
        assert kernel.calls == calls, kwargs
    # spikes at or above the gather's density limit (0.3): refused by the kernel, the dense product taken
    dense = trains(4, 4, 1, 12, 0.9)
    refused = kernel.refused
    assert_same(run(True, dense), run(False, dense))
    assert kernel.refused == refused + 4


def test_grad_mode_hooks_and_the_switch_take_the_eager_step(kernel: CountingKernel) -> None:
    cell, _ = build(0)
    step = sparse_trains(5, 1, 1, 12)[0]
    with torch.enable_grad():
        cell(step)
    seen: list[torch.Tensor] = []
    handle = cell.neuron.register_forward_hook(lambda module, args, output: seen.append(output))
    cell(step)
    handle.remove()
    pre = Monitor(WindowReducer(4), cell, "connection.synspike", hook="pre")
    cell(step)
    pre.remove()
    set_fused_step(False)
    assert not fused_step_enabled() and not fused_step_available()
    cell(step)
    set_fused_step(True)
    assert kernel.calls == 0 and len(seen) == 1
    cell(step)
    assert kernel.calls == 1
    with pytest.raises(TypeError, match="enabled: expected a bool"):
        set_fused_step(1)  # type: ignore[arg-type]
    assert fused_step_enabled()


def test_other_observers_are_called_after_the_step(kernel: CountingKernel) -> None:
    """Monitors the fused call does not write (an output target, another attribute, a second recorder
    of the same attribute, one gated off in eval mode) record what they record after an eager step."""

    def recorded(fused: bool) -> list[torch.Tensor]:
        set_fused_step(fused)
        cell, stdp = build(0, batch=2)
        monitors = [
            Monitor(WindowReducer(6), cell, "output"),
            Monitor(WindowReducer(6), cell, "neuron.voltage"),
            Monitor(WindowReducer(6), cell, "neuron.spike"),
            Monitor(WindowReducer(6), cell, "connection.synspike", train_only="eval"),
        ]
        for index, step in enumerate(sparse_trains(6, 9, 2, 12)):
            if index == 5:
                cell.eval()  # the trainer's monitors (train_only="train") stop, the last one starts
            cell(step)
        assert stdp is not None
        rings = [monitor.reducer.peek() for monitor in (*monitors, *stdp.get_unit("cell").monitors.values())]
        totals = [monitor.reducer.total for monitor in monitors]
        set_fused_step(True)
        return [*rings, torch.tensor(totals)]

    eager = recorded(False)
    fused = recorded(True)
    assert kernel.calls == 9
    for index, (fused_ring, eager_ring) in enumerate(zip(fused, eager, strict=True)):
        assert torch.equal(fused_ring, eager_ring), index


def test_copies_and_pickles_step_on_their_own_memory(kernel: CountingKernel) -> None:
    """A deep copy or an unpickled cell (after fused steps) steps from its own state: the original and
    the copies go on alike, and the copies' steps leave the original's state alone."""
    cell, _ = build(0, trainer=False)
    spikes = sparse_trains(7, 12, 1, 12)
    for step in spikes[:4]:
        cell(step)
    copies = [copy.deepcopy(cell), pickle.loads(pickle.dumps(cell))]
    voltage = cell.neuron.voltage.clone()
    for other in copies:
        for step in spikes[4:8]:
            other(step)
    assert torch.equal(cell.neuron.voltage, voltage)
    for step in spikes[4:8]:
        cell(step)
    for other in copies:
        assert torch.equal(other.neuron.voltage, cell.neuron.voltage)
        assert not np.shares_memory(other.neuron.voltage.numpy(), cell.neuron.voltage.numpy())


def test_a_new_weight_memory_is_followed(kernel: CountingKernel) -> None:
    """``weight.data = ...`` (new memory) between steps: the next fused step reads the new weight."""
    spikes = sparse_trains(8, 6, 1, 12)

    def stepped(fused: bool) -> torch.Tensor:
        set_fused_step(fused)
        cell, _ = build(0, trainer=False)
        outputs = [cell(step) for step in spikes[:3]]
        connection = cell.connection
        connection.weight.data = (connection.weight.detach() * 3.0).T.contiguous().T  # input-major again
        outputs += [cell(step) for step in spikes[3:]]
        set_fused_step(True)
        return torch.stack([*outputs, cell.neuron.voltage])

    assert torch.equal(stepped(True), stepped(False))
    assert kernel.calls == 6


def test_a_state_in_unaligned_memory_goes_through_the_dispatcher(kernel: CountingKernel) -> None:
    """A voltage set from outside in memory that numba's machine code for the step's types does not take
    (unaligned float64): that step goes through numba's dispatcher, which types its arguments, and equals
    the eager step; the next ones, from the state it stored, call the machine code directly again."""
    spikes = sparse_trains(17, 6, 1, 12)
    memory = bytearray(8 * 7 + 8)

    def unaligned_voltage(cell: Cell, stdp: STDP | None) -> None:
        voltage = torch.frombuffer(memory, dtype=torch.float64, count=7, offset=1).view(1, 7)
        assert voltage.data_ptr() % 8 != 0
        voltage.copy_(cell.neuron.voltage)
        cell.neuron.voltage = voltage

    eager = run(False, spikes, actions={3: unaligned_voltage})
    calls, direct = kernel.calls, kernel.direct_calls
    fused = run(True, spikes, actions={3: unaligned_voltage})
    assert_same(fused, eager)
    assert kernel.calls - calls == 6
    assert kernel.direct_calls - direct == (0 if kernel.kernel is linear_neuron_step else 5)


def test_entry_point_is_none_for_a_python_function() -> None:
    assert entry_point(linear_neuron_step, (np.zeros(3),)) is None


def test_without_numba_every_step_is_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    """No compiler (numba not installed): nothing fused, the same results."""
    monkeypatch.setattr(fused_module, "compiled_linear_neuron_step", lambda: None)
    assert not fused_step_available()
    spikes = sparse_trains(9, 6, 1, 12)
    assert_same(run(True, spikes), run(False, spikes))
    cell, _ = build(0)
    cell(spikes[0])
    assert cell.__dict__["_fused_plan"].kernel is None


def test_inference_mode_takes_the_fused_step(kernel: CountingKernel) -> None:
    """Under ``torch.inference_mode()`` (no graph either) the fused step runs, with the eager values."""
    spikes = sparse_trains(10, 5, 1, 12)

    def stepped(fused: bool) -> torch.Tensor:
        set_fused_step(fused)
        cell, _ = build(0)
        with torch.inference_mode():
            outputs = [cell(step) for step in spikes]
        set_fused_step(True)
        return torch.stack([*outputs, cell.neuron.voltage])

    assert torch.equal(stepped(True), stepped(False))
    assert kernel.calls == 5


def test_serial_cells_reset_and_a_new_batch_size(kernel: CountingKernel) -> None:
    """Two cells in a ``Serial`` with a trainer each, reset and resized mid-run: the fused run equals
    the eager one (every state rebuilt by ``reset`` or a new batch size is followed)."""

    def stepped(fused: bool) -> list[torch.Tensor]:
        set_fused_step(fused)
        first, first_trainer = build(0, inputs=24, outputs=12, batch=2)
        second, second_trainer = build(1, inputs=12, outputs=5, batch=2)
        network = Serial(first, second)
        outputs = [network(step) for step in sparse_trains(11, 6, 2, 24, count=3)]
        network.reset()
        outputs += [network(step) for step in sparse_trains(12, 4, 2, 24, count=3)]
        trainers = [first_trainer, second_trainer]
        for trainer in trainers:
            assert trainer is not None
            trainer()
            trainer.update()
            trainer.clear()  # the recorded shape changes with the batch size
        network.batch_size = 3
        outputs += [network(step) for step in sparse_trains(13, 5, 3, 24, count=3)]
        for trainer in trainers:
            assert trainer is not None
            trainer()
            trainer.update()
        set_fused_step(True)
        return [*outputs, first.connection.weight.detach(), second.connection.weight.detach(), second.neuron.voltage]

    eager, fused = stepped(False), stepped(True)
    assert kernel.calls >= 15  # the first cell's 15 steps at least (the second's inputs may be dense)
    for index, (fused_value, eager_value) in enumerate(zip(fused, eager, strict=True)):
        assert torch.equal(fused_value, eager_value), index


def test_fused_step_refusal_names_why(kernel: CountingKernel, monkeypatch: pytest.MonkeyPatch) -> None:
    """``fused_step_refusal(cell)`` names the first unmet condition, and None for a cell that is fused."""
    cell, _ = build(0)
    assert fused_step_refusal(cell) is None
    step = sparse_trains(14, 1, 1, 12)[0]
    cell(step)
    assert kernel.calls == 1  # None: the step is indeed fused
    cases: list[tuple[Cell, str]] = [
        (build(0, layout="output_major")[0], "not input-major"),
        (build(0, dtype=torch.float16)[0], "float16"),
        (Cell(LinearDense(12, 7, weight_layout="input_major", synapse=ExponentialCurrent(12, tau=2.0)), LIF(7)),
         "ExponentialCurrent"),
        (Cell(LinearDense(12, 7, weight_layout="input_major", delay=3.0), LIF(7)), "delays"),
        (Cell(LinearLateral(7, weight_layout="input_major"), LIF(7)), "weight mask"),
    ]  # fmt: skip
    window_cell, _ = build(0)
    window_cell.step_mode = "window"
    cases.append((window_cell, "window mode"))
    compiled_cell, _ = build(0)
    compiled_cell.neuron.compile_step()
    cases.append((compiled_cell, "compiled"))
    for other, reason in cases:
        refusal = fused_step_refusal(other)
        assert refusal is not None and reason in refusal, (reason, refusal)
    handle = cell.neuron.register_forward_hook(lambda module, args, output: None)
    assert "forward hook" in (fused_step_refusal(cell) or "")
    handle.remove()
    pre = Monitor(WindowReducer(4), cell, "connection.synspike", hook="pre")
    assert "pre-step observer" in (fused_step_refusal(cell) or "")
    pre.remove()
    with torch.enable_grad():
        assert "grad is enabled" in (fused_step_refusal(cell) or "")
    set_fused_step(False)
    assert "switched off" in (fused_step_refusal(cell) or "")
    set_fused_step(True)
    monkeypatch.setattr(fused_module, "compiled_linear_neuron_step", lambda: None)
    assert "numba is not installed" in (fused_step_refusal(cell) or "")


def test_compiles_without_a_cache_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where numba finds nowhere to cache (it raises RuntimeError at decoration), the step compiles
    uncached and still equals the eager step."""
    numba = pytest.importorskip("numba")
    real_njit = numba.njit

    def njit_without_locator(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("cache"):
            raise RuntimeError("cannot cache function: no locator available")
        return real_njit(*args, **kwargs)

    monkeypatch.setattr(numba, "njit", njit_without_locator)
    compiled = compiled_linear_neuron_step.__wrapped__()  # past functools.cache: compiled anew
    assert compiled is not None
    counting = CountingKernel(compiled)
    monkeypatch.setattr(fused_module, "compiled_linear_neuron_step", lambda: counting)
    spikes = sparse_trains(15, 4, 1, 12)
    assert_same(run(True, spikes), run(False, spikes))
    assert counting.calls == 4


def test_a_kernel_that_cannot_run_leaves_the_cell_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    """A compiler error at the call (argument types numba refuses) writes nothing: one RuntimeWarning,
    then the cell steps eagerly, with the eager values."""
    calls = []

    def refusing(*args: Any) -> int:
        calls.append(1)
        raise TypeError("no matching definition for these argument types")

    monkeypatch.setattr(fused_module, "compiled_linear_neuron_step", lambda: refusing)
    spikes = sparse_trains(16, 5, 1, 12)
    eager = run(False, spikes)
    with pytest.warns(RuntimeWarning, match="fused step could not run for this cell"):
        fused = run(True, spikes)
    assert_same(fused, eager)
    assert len(calls) == 1


def test_voltage_sequence_is_stored_as_after_an_eager_step(kernel: CountingKernel) -> None:
    """A neuron built with ``store_voltage_sequence=True``: its ``voltage_sequence`` (what a monitor of
    ``neuron.voltage_sequence`` records) after each fused step is the eager one."""
    spikes = sparse_trains(17, 6, 2, 12)

    def recorded(fused: bool) -> list[torch.Tensor]:
        set_fused_step(fused)
        torch.manual_seed(0)
        connection = LinearDense(12, 7, batch_size=2, weight_init=(0.0, 0.6), weight_layout="input_major")
        cell = Cell(connection, LIF(7, batch_size=2, store_voltage_sequence=True))
        monitor = Monitor(WindowReducer(6), cell, "neuron.voltage_sequence")
        for step in spikes:
            cell(step)
        set_fused_step(True)
        return [cell.neuron.voltage_sequence.clone(), monitor.reducer.peek()]

    eager, fused = recorded(False), recorded(True)
    assert kernel.calls == 6
    assert all(torch.equal(a, b) for a, b in zip(fused, eager, strict=True))


def monitor_of(stdp: STDP | None, name: str) -> Monitor:
    """The trainer's monitor ``name`` (``"pre"``: ``connection.synspike``, ``"post"``: ``neuron.spike``)."""
    assert stdp is not None
    monitor = stdp.get_unit("cell").monitors[name]
    assert isinstance(monitor, Monitor)
    return monitor


def ring_of(stdp: STDP | None, name: str) -> Any:
    """The ring buffer of the trainer's monitor ``name``."""
    reducer = monitor_of(stdp, name).reducer
    assert isinstance(reducer, WindowReducer)
    return reducer.history


def replaced_by_copy(copier: Callable[[Any], Any]) -> Callable[[Cell, STDP | None], None]:
    def replace(cell: Cell, stdp: STDP | None) -> None:
        monitor = monitor_of(stdp, "pre")
        monitor.reducer = copier(monitor.reducer)

    return replace


def storage_copied(cell: Cell, stdp: STDP | None) -> None:
    """The post ring's storage rebound to a copy of it (a new tensor and memory, the same values)."""
    ring = ring_of(stdp, "post")
    ring.data = ring.data.clone()


def non_contiguous_storage(cell: Cell, stdp: STDP | None) -> None:
    """The pre ring's storage as a strided view (every other column of a wider tensor), values kept."""
    ring = ring_of(stdp, "pre")
    steps, batch, inputs = ring.data.shape
    wide = torch.zeros(steps, batch, 2 * inputs, dtype=torch.bool)
    wide[:, :, ::2] = ring.data
    ring.data = wide[:, :, ::2]


def storage_of_another_dtype(cell: Cell, stdp: STDP | None) -> None:
    """The pre ring's storage as bfloat16 (the reducer converts the steps to it; numpy has no such dtype)."""
    ring = ring_of(stdp, "pre")
    ring.data = ring.data.to(torch.bfloat16)


# what the fused step reads anew at every step of the window recorders: changed between steps, each is
# followed as the eager step follows it (the recorders written by the call, or called, or not recording)
RECORDER_CHANGES: dict[str, dict[int, Callable[[Cell, STDP | None], None]]] = {
    "disabled and enabled": {3: lambda cell, stdp: monitor_of(stdp, "pre").disable(),
                             7: lambda cell, stdp: monitor_of(stdp, "pre").enable()},
    "eval and train (train_only gate)": {3: lambda cell, stdp: cell.eval(), 6: lambda cell, stdp: cell.train()},
    "gate changed": {2: lambda cell, stdp: setattr(monitor_of(stdp, "post"), "train_only", "eval"),
                     6: lambda cell, stdp: setattr(monitor_of(stdp, "post"), "train_only", None)},
    "ring cleared": {4: lambda cell, stdp: monitor_of(stdp, "post").clear(), 8: lambda cell, stdp: stdp.clear()},
    "storage replaced": {3: storage_copied},
    "storage not contiguous": {3: non_contiguous_storage},
    "storage of another dtype": {3: storage_of_another_dtype},
    "reducer deep-copied": {3: replaced_by_copy(copy.deepcopy)},
    "reducer pickled": {3: replaced_by_copy(lambda reducer: pickle.loads(pickle.dumps(reducer)))},
}  # fmt: skip


@pytest.mark.parametrize("change", RECORDER_CHANGES)
def test_window_recorders_follow_changes_between_steps(kernel: CountingKernel, change: str) -> None:
    """The trainer's monitors disabled, gated off, cleared, their ring's storage replaced (by a copy, a
    strided view, another dtype) or their reducer by a copy between fused steps: the rings and their
    counts equal the eager run's, and every step is still fused."""
    spikes = sparse_trains(18, 12, 1, 12)
    actions = RECORDER_CHANGES[change]
    # no training: the trainer refuses recordings that disagree on their steps (one monitor disabled)
    eager = run(False, spikes, actions=actions)
    fused = run(True, spikes, actions=actions)
    assert_same(fused, eager)
    assert kernel.calls == 12


@pytest.mark.parametrize("in_place", [False, True])
def test_replaced_ring_storage_is_written_not_the_old_one(kernel: CountingKernel, in_place: bool) -> None:
    """After ``data`` of a recorder's ring is rebound to a copy, or given the copy's memory in place (the
    same tensor, ``data.data = copy``), the fused steps write the copy and leave the old memory as it was."""
    cell, stdp = build(0, trainer=True)
    spikes = sparse_trains(19, 6, 1, 12)
    for step in spikes[:3]:
        cell(step)
    ring = ring_of(stdp, "pre")
    storage = ring.data
    old = storage.detach()  # the old memory, whatever the storage tensor holds next
    kept = old.clone()
    if in_place:
        storage.data = old.clone()
        assert ring.data is storage and storage.data_ptr() != old.data_ptr()
    else:
        ring.data = old.clone()
    for step in spikes[3:]:
        cell(step)
    assert torch.equal(old, kept)
    assert kernel.calls == 6
    # slots 0-5 hold the six steps' spikes in order (a window of 20 steps)
    assert torch.equal(ring.data[:6], torch.stack(spikes))


def test_hooks_on_a_recorders_reducer_see_its_steps(kernel: CountingKernel) -> None:
    """A forward hook on a recorder's reducer: that recorder is called for the steps it is on (the hook sees
    each of them, as after eager steps) while the call still writes the other recorder; a global forward
    hook makes the steps eager."""

    def stepped(fused: bool) -> tuple[dict[str, Any], list[int]]:
        seen: list[int] = []

        def add_hook(cell: Cell, stdp: STDP | None) -> None:
            reducer = monitor_of(stdp, "pre").reducer
            handle = reducer.register_forward_hook(lambda module, args, output: seen.append(len(seen)))
            reducer.__dict__["test handle"] = handle

        def remove_hook(cell: Cell, stdp: STDP | None) -> None:
            monitor_of(stdp, "pre").reducer.__dict__.pop("test handle").remove()

        result = run(fused, sparse_trains(20, 10, 1, 12), train_every=5, actions={3: add_hook, 6: remove_hook})
        return result, seen

    eager, eager_seen = stepped(False)
    fused, fused_seen = stepped(True)
    assert_same(fused, eager)
    assert len(eager_seen) == len(fused_seen) == 3
    assert kernel.calls == 10
    handle = torch.nn.modules.module.register_module_forward_hook(lambda module, args, output: None)
    try:
        cell, _ = build(0)
        cell(sparse_trains(21, 1, 1, 12)[0])
    finally:
        handle.remove()
    assert kernel.calls == 10


def test_a_recording_of_another_shape_is_refused_as_after_an_eager_step(kernel: CountingKernel) -> None:
    """A new batch size with the trainer's recordings not cleared: the step is taken, then the recorder
    refuses the value of another shape (the monitor's ValueError), as after an eager step, and the rings
    keep the old steps."""

    def stepped(fused: bool) -> list[torch.Tensor]:
        set_fused_step(fused)
        cell, stdp = build(0, batch=1)
        for step in sparse_trains(22, 3, 1, 12):
            cell(step)
        cell.batch_size = 2
        with pytest.raises(ValueError, match=r"value: expected shape \(1, 12\)"):
            cell(sparse_trains(23, 1, 2, 12)[0])
        set_fused_step(True)
        rings = [monitor_of(stdp, name).reducer.peek() for name in ("pre", "post")]
        return [cell.neuron.voltage, cell.connection.synspike, *rings]

    eager = stepped(False)
    fused = stepped(True)
    assert kernel.calls == 4
    assert all(torch.equal(a, b) for a, b in zip(fused, eager, strict=True))


@pytest.mark.filterwarnings("ignore:overflow encountered in scalar subtract:RuntimeWarning")  # the plain kernel's wrap
def test_refractory_counters_at_the_int32_limits_wrap_as_the_eager_step(kernel: CountingKernel) -> None:
    """Counters set from outside at INT32_MIN (r - 1 wraps to INT32_MAX in int32, as torch.sub does, then
    stays: refractory), -1, 0, 1 and INT32_MAX: the fused steps give the eager steps' counters and spikes."""
    limits = torch.tensor([[-(2**31), -1, 0, 1, 2**31 - 1, 0, 2]], dtype=torch.int32)

    def prepare(cell: Cell) -> None:
        cell.neuron.refractory_remaining = limits.clone()

    spikes = sparse_trains(5, 4, 1, 12, count=3)
    kwargs: dict[str, Any] = {"batch": 1, "neuron": "lif", "neuron_kwargs": {"refractory": 2.0}}
    eager = run(False, spikes, prepare=prepare, **kwargs)
    fused = run(True, spikes, prepare=prepare, **kwargs)
    assert_same(fused, eager)
    assert kernel.calls == 4
    # by hand: INT32_MIN - 1 wraps to INT32_MAX (then one less per step); negative counters clamp to 0
    remaining = fused["refractory_remaining"][0].tolist()
    assert remaining[0] == 2**31 - 1 - 3 and remaining[4] == 2**31 - 1 - 4


def test_modules_replaced_between_steps_are_followed(kernel: CountingKernel) -> None:
    """The cell's neuron, its connection's synapse and the connection itself replaced between fused steps
    (each by a new module of the same kind with other numbers): the next steps read the new module, as
    the eager steps do."""

    def new_neuron(cell: Cell, stdp: STDP | None) -> None:
        cell.neuron = LIF(7, batch_size=1, tau=3.0, v_threshold=0.4, dtype=torch.float64)

    def new_synapse(cell: Cell, stdp: STDP | None) -> None:
        cell.connection.synapse = DeltaCurrent(12, amplitude=-0.8, dtype=torch.float64)

    def new_connection(cell: Cell, stdp: STDP | None) -> None:
        torch.manual_seed(5)
        cell.connection = LinearDense(
            12, 7, batch_size=1, weight_init=(0.2, 0.6), weight_layout="input_major", dtype=torch.float64
        )

    spikes = sparse_trains(24, 10, 1, 12, count=3)
    actions = {3: new_neuron, 5: new_synapse, 7: new_connection}
    eager = run(False, spikes, actions=actions, trainer=False)
    fused = run(True, spikes, actions=actions, trainer=False)
    assert_same(fused, eager)
    assert kernel.calls == 10


def test_buffer_registration_hooks_see_the_steps_buffers(kernel: CountingKernel) -> None:
    """A global buffer registration hook: the steps are eager (the kernel is not called) and the hook sees
    each buffer a step stores (the synapse's deferred spikes, the connection's record, the neuron's state
    and spikes), with the values of the fused steps of a cell without the hook."""
    spikes = sparse_trains(25, 3, 1, 12)
    seen: list[tuple[str, str]] = []
    cell, _ = build(0, trainer=False)
    handle = torch.nn.modules.module.register_module_buffer_registration_hook(
        lambda module, name, buffer: seen.append((type(module).__name__, name))
    )
    try:
        outputs = [cell(step) for step in spikes]
    finally:
        handle.remove()
    assert kernel.calls == 0
    for name in [("DeltaCurrent", "spike"), ("LinearDense", "synspike"), ("LIF", "voltage"), ("LIF", "spike")]:
        assert seen.count(name) == 3, name
    twin, _ = build(0, trainer=False)
    assert torch.equal(torch.stack(outputs), torch.stack([twin(step) for step in spikes]))
    assert kernel.calls == 3
    assert torch.equal(cell.neuron.voltage, twin.neuron.voltage)
