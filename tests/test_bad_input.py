"""The bad-input matrix: every public entry point refuses bad input by name and changes nothing.

Each case builds a small experiment that has already run (neuron voltages,
synapse states, monitor buffers, carried traces and pending updater
accumulators are all non-trivial), snapshots every piece of state (state
dicts, non-persistent output buffers, hook counts, registered cells, RNG
states), makes one bad call, checks the exception type and that the message
starts with the name of the offending argument, and compares the snapshot.

Cases that reveal a missing check or a state change in the code under test
are marked ``xfail(strict=True)`` with the reason (reported for a fix).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from plastic.learn.kernel_stdp import KernelSTDP
from plastic.learn.stdp import STDP
from plastic.neural.cell import Cell
from plastic.neural.connections import Conv1d, Conv2d, LinearDense
from plastic.neural.encoders import BernoulliEncoder, PoissonEncoder
from plastic.neural.neurons import LIF
from plastic.neural.observable import Observable
from plastic.neural.synapses import make_synapse
from plastic.neural.updater import Updater
from plastic.observe.monitors import Monitor, MonitorPool
from plastic.observe.reducers import (
    CumulativeAverageReducer,
    CumulativeTraceReducer,
    EventTimeReducer,
    NearestTraceReducer,
    WindowReducer,
)

B = 2  # batch
NAN = math.nan


def world() -> SimpleNamespace:
    """A small experiment that has run a few steps, with updates pending."""
    torch.manual_seed(0)
    w = SimpleNamespace()
    w.cell = Cell(
        LinearDense(6, 4, synapse="exponential", synapse_kwargs={"tau": 5.0}, weight_init=(0.0, 1.0), batch_size=B),
        LIF(4, tau=3.0, v_threshold=2.5, batch_size=B),
    )
    w.cell.make_updater(clamp=(0.0, 1.0))
    w.conv = Cell(
        Conv2d(2, 3, 3, padding=1, in_size=(4, 4), weight_init=(0.0, 0.6), batch_size=B),
        LIF((3, 4, 4), tau=3.0, v_threshold=0.8, batch_size=B),
    )
    w.conv.make_updater()
    w.delayed = Cell(
        LinearDense(6, 4, delay=3.0, learn_delay_init="uniform", weight_init=(0.0, 1.0), batch_size=B),
        LIF(4, tau=3.0, v_threshold=0.8, batch_size=B),
    )
    w.delayed.make_updater(params=["weight"])
    w.kernel = KernelSTDP()
    w.kernel.register_cell("dense", w.cell)
    w.kernel.register_cell("delayed", w.delayed, delayed=True)
    w.stdp = STDP(window=8)
    w.stdp.register_cell("dense", w.cell)
    w.stdp.register_cell("conv", w.conv)
    w.monitor = Monitor(CumulativeTraceReducer(tau=4.0), w.cell, "neuron.spike")
    w.event = EventTimeReducer(duration=2.0)
    w.trace = CumulativeTraceReducer(tau=4.0)
    w.nearest = NearestTraceReducer(tau=4.0)
    w.average = CumulativeAverageReducer()
    w.window = WindowReducer(4)
    w.synapse = make_synapse("exponential", (6,), tau=5.0, dt=1.0, max_delay=3.0, batch_size=B)
    w.synced = Updater(w.cell.connection, all_reduce="sum")
    w.generator = torch.Generator().manual_seed(3)
    w.bernoulli = BernoulliEncoder(3, generator=w.generator)
    w.poisson = PoissonEncoder(3, dt=1.0, generator=w.generator)

    @torch.no_grad()  # plasticity only: no autograd graph through the neuron states
    def run(steps: int) -> None:
        for _ in range(steps):
            spikes = (torch.rand(B, 6, generator=w.generator) < 0.5).float()
            w.cell(spikes)
            w.delayed(spikes)
            w.conv((torch.rand(B, 2, 4, 4, generator=w.generator) < 0.5).float())
            for reducer in (w.event, w.trace, w.nearest):
                reducer(spikes[:, :3])
            w.average(torch.rand(B, 3, generator=w.generator))
            w.window(spikes)
            w.synapse.forward_delayed(spikes, torch.full((4, 6), 1.0))

    run(3)
    w.kernel()
    w.stdp()  # accumulated into the updaters, not applied
    w.synced.accumulate("weight", potentiation=torch.full((4, 6), 0.5))
    run(2)
    return w


def _modules(w: SimpleNamespace) -> dict[str, nn.Module]:
    return {name: value for name, value in vars(w).items() if isinstance(value, nn.Module)}


def snapshot(w: SimpleNamespace) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for name, module in _modules(w).items():
        for key, value in module.state_dict().items():
            state[f"{name}.{key}"] = value.clone() if isinstance(value, Tensor) else value
        for key, value in module.named_buffers():  # non-persistent outputs (spike, synspike) too
            state[f"{name}.buffer.{key}"] = value.clone()
        for path, submodule in module.named_modules():
            observers = submodule.step_observer_count() if isinstance(submodule, Observable) else 0
            state[f"{name}.hooks.{path}"] = (
                len(submodule._forward_hooks),
                len(submodule._forward_pre_hooks),
                observers,
            )
    for name in ("cell", "conv", "delayed"):
        state[f"{name}.updater"] = {k: v.clone() for k, v in getattr(w, name).updater.state_dict().items()}
    state["trainers"] = (w.kernel.names, w.stdp.names)
    # (the global RNG is left out: building a connection draws its initial weights from it)
    state["rng.generator"] = w.generator.get_state()
    return state


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Tensor):
        if not isinstance(b, Tensor) or a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.is_floating_point():
            return torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num())
        return torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def assert_unchanged(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert before.keys() == after.keys(), sorted(set(before) ^ set(after))
    changed = [key for key in before if not _same(before[key], after[key])]
    assert not changed, f"state changed by a failed call: {changed}"


def test_the_world_is_not_trivial() -> None:
    w = world()
    assert w.cell.updater.has_pending() and w.conv.updater.has_pending() and w.synced.has_pending()
    assert bool((w.cell.neuron.voltage != 0).any())
    assert bool((w.cell.connection.synapse.state != 0).any())
    assert w.stdp.monitors["dense"]["pre"].reducer.total == 5
    assert "trace_pre" in w.stdp.states["dense"]._buffers
    assert bool((w.trace.peek() != 0).any())


# ------------------------------------------------------------------ the matrix


@dataclass(frozen=True)
class Case:
    call: Callable[[SimpleNamespace], object]
    error: type[Exception]
    pattern: str  # regex searched in the message; usually "^<argument>: "
    setup: Callable[[SimpleNamespace], object] | None = None  # runs before the snapshot


def arg(name: str) -> str:
    return rf"^{name}: "


def nan_like(shape: tuple[int, ...], value: float = NAN) -> Tensor:
    return torch.full(shape, value)


def xfail(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=reason)


W_SHAPE = (4, 6)

CASES: dict[str, Case | Any] = {
    # ---- neurons
    "neuron-nan-input": Case(lambda w: w.cell.neuron(nan_like((B, 4))), ValueError, arg("inputs")),
    "neuron-inf-input": Case(lambda w: w.cell.neuron(nan_like((B, 4), math.inf)), ValueError, arg("inputs")),
    "neuron-wrong-shape": Case(lambda w: w.cell.neuron(torch.ones(B + 1, 4)), ValueError, arg("inputs")),
    "neuron-wrong-dtype": Case(
        lambda w: w.cell.neuron(torch.ones(B, 4, dtype=torch.float64)), TypeError, arg("inputs")
    ),
    "neuron-integer-input": Case(
        lambda w: w.cell.neuron(torch.ones(B, 4, dtype=torch.int64)), TypeError, arg("inputs")
    ),
    "neuron-other-device": Case(lambda w: w.cell.neuron(torch.ones(B, 4, device="meta")), ValueError, arg("inputs")),
    "neuron-window-needs-time-dim": Case(
        lambda w: w.cell.neuron(torch.ones(B, 4)),
        ValueError,
        arg("inputs"),
        setup=lambda w: setattr(w.cell.neuron, "step_mode", "window"),
    ),
    "neuron-tau-below-one-step": Case(lambda w: LIF(4, tau=0.5), ValueError, arg("tau")),
    "neuron-tau-nan": Case(lambda w: LIF(4, tau=NAN), ValueError, arg("tau")),
    "neuron-dt-zero": Case(lambda w: LIF(4, dt=0.0), ValueError, arg("dt")),
    "neuron-dt-negative": Case(lambda w: LIF(4, dt=-1.0), ValueError, arg("dt")),
    "neuron-refractory-negative": Case(lambda w: LIF(4, refractory=-1.0), ValueError, arg("refractory")),
    "neuron-batch-size-zero": Case(lambda w: setattr(w.cell.neuron, "batch_size", 0), ValueError, arg("batch_size")),
    # ---- connections and cells
    "dense-nan-spikes": Case(lambda w: w.cell(nan_like((B, 6))), ValueError, arg("spikes")),
    "dense-half-spikes": Case(lambda w: w.cell(torch.full((B, 6), 0.5)), ValueError, arg("spikes")),
    "dense-spikes-of-two": Case(lambda w: w.cell(torch.full((B, 6), 2.0)), ValueError, arg("spikes")),
    "dense-wrong-shape": Case(lambda w: w.cell(torch.ones(B, 5)), ValueError, arg("spikes")),
    "dense-other-device": Case(lambda w: w.cell(torch.ones(B, 6, device="meta")), ValueError, arg("spikes")),
    "dense-window-without-time-dim": Case(
        lambda w: w.cell(torch.ones(B, 6)),
        ValueError,
        arg("spikes"),
        setup=lambda w: setattr(w.cell, "step_mode", "window"),
    ),
    "conv-wrong-spatial-size": Case(lambda w: w.conv(torch.ones(B, 2, 3, 4)), ValueError, arg("spikes")),
    "conv-half-spikes": Case(lambda w: w.conv(torch.full((B, 2, 4, 4), 0.5)), ValueError, arg("spikes")),
    "delayed-nan-spikes": Case(lambda w: w.delayed(nan_like((B, 6))), ValueError, arg("spikes")),
    "dense-dt-zero": Case(lambda w: LinearDense(6, 4, dt=0.0), ValueError, arg("dt")),
    "dense-negative-delay": Case(lambda w: LinearDense(6, 4, delay=-1.0), ValueError, arg("delay")),
    "conv-delays-refused": Case(lambda w: Conv1d(2, 3, 3, in_size=8, delay=2.0), ValueError, arg("delay")),
    "conv-groups-not-dividing": Case(lambda w: Conv1d(2, 3, 3, in_size=8, groups=2), ValueError, arg("groups")),
    "cell-neuron-shape-mismatch": Case(lambda w: Cell(LinearDense(6, 4), LIF(5)), ValueError, arg("neuron")),
    "cell-current-wrong-shape": Case(lambda w: w.cell(torch.ones(B, 6), torch.ones(B, 5)), ValueError, arg("current")),
    "cell-step-mode-unknown": Case(lambda w: setattr(w.cell, "step_mode", "bogus"), ValueError, arg("step_mode")),
    "cell-current-nan": Case(lambda w: w.cell(torch.ones(B, 6), nan_like((B, 4))), ValueError, arg("current")),
    "cell-current-other-device": Case(
        lambda w: w.cell(torch.ones(B, 6), torch.ones(B, 4, device="meta")), ValueError, arg("current")
    ),
    "cell-current-wrong-dtype": Case(
        lambda w: w.cell(torch.ones(B, 6), torch.ones(B, 4, dtype=torch.float64)), TypeError, arg("current")
    ),
    # ---- synapses
    "synapse-tau-zero": Case(
        lambda w: LinearDense(6, 4, synapse="exponential", synapse_kwargs={"tau": 0.0}), ValueError, arg("tau")
    ),
    "synapse-unknown-kind": Case(lambda w: LinearDense(6, 4, synapse="bogus"), ValueError, arg("synapse")),
    "synapse-kwargs-owned-by-connection": Case(
        lambda w: LinearDense(6, 4, synapse="exponential", synapse_kwargs={"tau": 2.0, "dt": 2.0}),
        ValueError,
        arg("synapse_kwargs"),
    ),
    "synapse-kwargs-unknown-name": Case(
        lambda w: LinearDense(6, 4, synapse="exponential", synapse_kwargs={"tau": 2.0, "bogus": 1.0}),
        TypeError,
        arg("synapse_kwargs"),
    ),
    "synapse-nan-spikes": Case(
        lambda w: w.synapse.forward_delayed(nan_like((B, 6)), torch.ones(4, 6)), ValueError, arg("spikes")
    ),
    "synapse-delay-beyond-max": Case(
        lambda w: w.synapse.forward_delayed(torch.ones(B, 6), torch.full((4, 6), 5.0)), ValueError, arg("delay")
    ),
    "synapse-delay-nan": Case(
        lambda w: w.synapse.forward_delayed(torch.ones(B, 6), nan_like((4, 6))), ValueError, arg("delay")
    ),
    "synapse-read-beyond-max-delay": Case(
        lambda w: w.synapse.spike_at(torch.full((6,), 5.0)), ValueError, arg("delay")
    ),
    # ---- reducers
    "event-time-half-spikes": Case(lambda w: w.event(torch.full((B, 3), 0.5)), ValueError, arg("value")),
    "event-time-nan": Case(lambda w: w.event(nan_like((B, 3))), ValueError, arg("value")),
    "event-time-shape-changed": Case(lambda w: w.event(torch.ones(B, 4)), ValueError, arg("value")),
    "event-time-other-device": Case(lambda w: w.event(torch.ones(B, 3, device="meta")), ValueError, arg("value")),
    "event-time-window-flag-not-bool": Case(lambda w: w.event(torch.ones(B, 3), window=1), TypeError, arg("window")),
    "event-time-window-0d": Case(lambda w: w.event(torch.tensor(1.0), window=True), ValueError, arg("value")),
    "event-time-view-beyond-duration": Case(lambda w: w.event.view(3.0), ValueError, arg("delay")),
    "event-time-view-other-device": Case(
        lambda w: w.event.view(torch.ones(3, device="meta")), ValueError, arg("delay")
    ),
    "event-time-dt-zero": Case(lambda w: EventTimeReducer(dt=0.0), ValueError, arg("dt")),
    "event-time-negative-duration": Case(lambda w: EventTimeReducer(duration=-1.0), ValueError, arg("duration")),
    "trace-inf": Case(lambda w: w.trace(nan_like((B, 3), math.inf)), ValueError, arg("value")),
    "trace-complex": Case(lambda w: w.trace(torch.ones(B, 3, dtype=torch.complex64)), TypeError, arg("value")),
    "trace-tau-zero": Case(lambda w: CumulativeTraceReducer(tau=0.0), ValueError, arg("tau")),
    "trace-euler-tau-below-dt": Case(lambda w: CumulativeTraceReducer(tau=0.5, exact=False), ValueError, arg("tau")),
    "trace-dt-negative": Case(lambda w: CumulativeTraceReducer(dt=-1.0), ValueError, arg("dt")),
    "nearest-half-spikes": Case(lambda w: w.nearest(torch.full((B, 3), 0.5)), ValueError, arg("value")),
    "average-nan": Case(lambda w: w.average(nan_like((B, 3))), ValueError, arg("value")),
    "window-shape-changed": Case(lambda w: w.window(torch.ones(B, 5)), ValueError, arg("value")),
    "window-steps-zero": Case(lambda w: WindowReducer(0), ValueError, arg("steps")),
    # ---- monitors
    "monitor-unknown-path": Case(
        lambda w: Monitor(EventTimeReducer(), w.cell, "neuron.bogus.x"), ValueError, arg("target")
    ),
    "monitor-output-needs-post-hook": Case(
        lambda w: Monitor(EventTimeReducer(), w.cell, "output", hook="pre"), ValueError, arg("hook")
    ),
    "monitor-not-a-reducer": Case(lambda w: Monitor(3, w.cell, "output"), TypeError, arg("reducer")),  # type: ignore[arg-type]
    "monitor-train-only-unknown": Case(
        lambda w: Monitor(EventTimeReducer(), w.cell, "output", train_only="bogus"), ValueError, arg("train_only")
    ),
    "monitor-pool-factory-not-reducer": Case(
        lambda w: MonitorPool().get_or_create(w.cell, "neuron.spike", lambda: 3), TypeError, arg("reducer_factory")
    ),
    # ---- updaters
    "updater-nan-potentiation": Case(
        lambda w: w.cell.updater.accumulate("weight", potentiation=nan_like(W_SHAPE)), ValueError, arg("potentiation")
    ),
    "updater-negative-depression": Case(
        lambda w: w.cell.updater.accumulate("weight", depression=-torch.ones(W_SHAPE)), ValueError, arg("depression")
    ),
    "updater-good-potentiation-bad-depression": Case(
        lambda w: w.cell.updater.accumulate("weight", torch.ones(W_SHAPE), nan_like(W_SHAPE)),
        ValueError,
        arg("depression"),
    ),
    "updater-wrong-shape": Case(
        lambda w: w.cell.updater.accumulate("weight", torch.ones(3, 3)), ValueError, arg("potentiation")
    ),
    "updater-other-device": Case(
        lambda w: w.cell.updater.accumulate("weight", torch.ones(W_SHAPE, device="meta")),
        ValueError,
        arg("potentiation"),
    ),
    "updater-integer-magnitudes": Case(
        lambda w: w.cell.updater.accumulate("weight", torch.ones(W_SHAPE, dtype=torch.int64)),
        TypeError,
        arg("potentiation"),
    ),
    "updater-other-float-dtype": Case(
        lambda w: w.cell.updater.accumulate("weight", torch.ones(W_SHAPE, dtype=torch.float64)),
        TypeError,
        arg("potentiation"),
    ),
    "updater-unknown-name": Case(
        lambda w: w.cell.updater.accumulate("bias", torch.ones(W_SHAPE)), ValueError, arg("name")
    ),
    "updater-clamp-reversed": Case(lambda w: Updater(w.cell.connection, clamp=(1.0, 0.0)), ValueError, arg("clamp")),
    "updater-unknown-reduction": Case(
        lambda w: Updater(w.cell.connection, reduction="median"), ValueError, arg("reduction")
    ),
    "updater-unknown-all-reduce": Case(
        lambda w: Updater(w.cell.connection, all_reduce="max"), ValueError, arg("all_reduce")
    ),
    "updater-unknown-parameter": Case(
        lambda w: Updater(w.cell.connection, params=("bogus",)), ValueError, arg("params")
    ),
    "updater-apply-without-process-group": Case(lambda w: w.synced.apply(), ValueError, arg("all_reduce")),
    "updater-to-grad-scale-zero": Case(lambda w: w.cell.updater.to_grad(scale=0.0), ValueError, arg("scale")),
    # ---- trainers
    "kernel-unknown-default": Case(lambda w: KernelSTDP(bogus=1.0), TypeError, r"unknown hyperparameter.*'bogus'"),
    "kernel-unknown-override": Case(
        lambda w: w.kernel.register_cell("other", w.conv, bogus=1.0), TypeError, r"unknown hyperparameter.*'bogus'"
    ),
    "kernel-override-out-of-range": Case(
        lambda w: w.kernel.register_cell("other", w.conv, interp_tolerance=-1.0), ValueError, arg("interp_tolerance")
    ),
    "kernel-duplicate-name": Case(lambda w: w.kernel.register_cell("dense", w.conv), ValueError, arg("name")),
    "kernel-dotted-name": Case(lambda w: w.kernel.register_cell("a.b", w.conv), ValueError, arg("name")),
    "kernel-not-a-cell": Case(lambda w: w.kernel.register_cell("other", w.conv.connection), TypeError, arg("cell")),
    "kernel-delayed-without-delays": Case(
        lambda w: w.kernel.register_cell("other", w.conv, delayed=True), ValueError, arg("cell")
    ),
    "kernel-kernel-not-callable": Case(lambda w: KernelSTDP(kernel_post=3), TypeError, arg("kernel_post")),
    "kernel-kwargs-not-a-mapping": Case(
        lambda w: KernelSTDP(kernel_post_kwargs=3), TypeError, arg("kernel_post_kwargs")
    ),
    "kernel-batch-reduction-unknown": Case(
        lambda w: KernelSTDP(batch_reduction="bogus"), ValueError, arg("batch_reduction")
    ),
    "stdp-tau-zero": Case(lambda w: STDP(tau_pre=0.0), ValueError, arg("tau_pre")),
    "stdp-eta-nan": Case(lambda w: STDP(eta_post=NAN), ValueError, arg("eta_post")),
    "stdp-pairing-unknown": Case(lambda w: STDP(pairing="bogus"), ValueError, arg("pairing")),
    "stdp-window-zero": Case(lambda w: STDP(window=0), ValueError, arg("window")),
    "stdp-override-tau-out-of-range": Case(
        lambda w: w.stdp.register_cell("other", w.delayed, tau_post=-1.0), ValueError, arg("tau_post")
    ),
    "stdp-cell-with-delays": Case(lambda w: w.stdp.register_cell("other", w.delayed), ValueError, arg("cell")),
    "stdp-window-overflow": Case(
        lambda w: w.stdp(), RuntimeError, r"window", setup=lambda w: [w.cell(torch.ones(B, 6)) for _ in range(7)]
    ),
    "stdp-window-overflow-in-a-later-cell": Case(
        lambda w: w.stdp(), RuntimeError, r"window", setup=lambda w: [w.conv(torch.ones(B, 2, 4, 4)) for _ in range(7)]
    ),
    # ---- encoders (their generator state must not move either)
    "bernoulli-probability-above-one": Case(
        lambda w: w.bernoulli(torch.full((B, 3), 1.5)), ValueError, arg("probabilities")
    ),
    "bernoulli-nan": Case(lambda w: w.bernoulli(nan_like((B, 3))), ValueError, arg("probabilities")),
    "poisson-negative-rate": Case(lambda w: w.poisson(torch.full((B, 3), -1.0)), ValueError, arg("rates")),
    "poisson-dt-zero": Case(lambda w: PoissonEncoder(3, dt=0.0), ValueError, arg("dt")),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_input_is_refused_by_name_and_changes_nothing(case: Case) -> None:
    w = world()
    if case.setup is not None:
        with torch.no_grad():  # steps of the world are plasticity only (see world())
            case.setup(w)
    before = snapshot(w)
    with pytest.raises(case.error, match=case.pattern):
        case.call(w)
    assert_unchanged(before, snapshot(w))


def test_the_matrix_is_wide_enough() -> None:
    assert len(CASES) >= 40
    families = {name.split("-")[0] for name in CASES}
    assert {
        "neuron",
        "dense",
        "conv",
        "cell",
        "synapse",
        "event",
        "trace",
        "monitor",
        "updater",
        "kernel",
        "stdp",
    } <= families


def test_trainer_before_any_step_learns_nothing() -> None:
    """Called before its cells ran a step, a trainer has nothing to learn from: no accumulation, no change.

    (``IndependentCellTrainer.forward`` skips units with nothing recorded; the
    update that follows applies nothing.)
    """
    torch.manual_seed(0)
    cell = Cell(LinearDense(6, 4, weight_init=(0.0, 1.0), batch_size=B), LIF(4, batch_size=B))
    cell.make_updater()
    kernel, stdp = KernelSTDP(), STDP()
    kernel.register_cell("c", cell)
    stdp.register_cell("c", cell)
    weight = cell.connection.weight.detach().clone()
    states = [{k: v.clone() if isinstance(v, Tensor) else v for k, v in t.state_dict().items()} for t in (kernel, stdp)]
    for trainer in (kernel, stdp):
        trainer()
        trainer.update()
    assert cell.updater.count("weight") == (0, 0)
    assert torch.equal(cell.connection.weight, weight)
    for trainer, state in zip((kernel, stdp), states, strict=True):
        assert _same(state, {k: v.clone() if isinstance(v, Tensor) else v for k, v in trainer.state_dict().items()})
