"""Peer-library rows: SpikingJelly, BindsNET, inferno, on the same recorded spikes.

Every peer is fed the spike trains ``run.py`` generated once (float {0, 1},
``[T, B, ...]``) as *recorded* spikes, so each row does the learning-rule work
only, and its weight change is compared with ours (``max|dw|`` column):

* SpikingJelly (``spikingjelly.activation_based.learning.STDPLearner``, and
  its per-step functions ``functional.learning.stdp_linear_step`` /
  ``stdp_conv2d_step``): traces ``tr = tr - tr/tau + s`` (Euler decay
  ``1 - 1/tau``), ``dw = f_post(w) * sum s_post (x) tr_pre - f_pre(w) * sum
  tr_post (x) s_pre`` summed over batch (and positions). Its default
  ``f(w) = w`` makes the rule multiplicative; the rows pass ``f = 1``
  (additive), which is our ``stdp_window(..., exact=False)`` net change:
  reference ``"euler"``.
* BindsNET (``bindsnet.learning.PostPre`` on a ``Connection`` between two
  ``Input`` layers that replay the recorded trains; additive traces
  ``x = x * exp(-dt/tau) + s``, ``w -= nu0 * s_pre^T x_post``,
  ``w += nu1 * x_pre^T s_post`` each step, batch sum): reference ``"exact"``;
  the weight change of the window is ``w_after - w_before`` (nu = (1, 1), no
  clamping, so the per-step in-place updates sum to the fixed-weight change).
* inferno (``inferno.learn.STDP`` and ``KernelSTDP`` trainers on a cell whose
  neuron replays the recorded postsynaptic trains).

A row whose library is missing, or whose construction fails, shows
"unavailable: <reason>". Nothing here is copied into ``plastic``; the peers
are only called.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable

import torch
from torch import Tensor, nn

from benchmarks.common import ConvCase, DenseCase, NetworkCase, PeerUnavailable, Prepared

Data = dict[str, Tensor]
RowFunction = Callable[..., Prepared]

_TORCHVISION_STUBBED = False


# ----------------------------------------------------------------- importing


def _import(name: str) -> types.ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as error:  # any import failure makes the row unavailable
        raise PeerUnavailable(f"{type(error).__name__}: {error}".splitlines()[0][:160]) from error


def _stub_torchvision() -> None:
    """Let ``import bindsnet`` succeed without torchvision.

    BindsNET's package ``__init__`` imports its dataset and plotting helpers,
    which import torchvision at module level; the learning rules and models
    timed here never call it. The registry's torchvision wheels link the CUDA
    torch libraries and cannot load beside a CPU torch, so when torchvision is
    missing we register an empty stand-in whose attributes raise on use.
    """
    global _TORCHVISION_STUBBED
    try:
        importlib.import_module("torchvision")
        return
    except Exception:
        pass
    for key in [key for key in sys.modules if key == "torchvision" or key.startswith("torchvision.")]:
        del sys.modules[key]

    def unusable(name: str) -> type:
        """A class standing for any name imported from the stub (may be subclassed); raises when built."""

        def refuse(self: object, *args: object, **kwargs: object) -> None:
            raise RuntimeError(f"{name}: torchvision is not installed in the benchmark environment (stub)")

        return type(name.rsplit(".", 1)[-1], (), {"__init__": refuse})

    class _Missing(types.ModuleType):
        def __getattr__(self, attribute: str) -> object:
            if attribute.startswith("__"):
                raise AttributeError(attribute)
            return unusable(f"{self.__name__}.{attribute}")

    parent = None
    for name in ("torchvision", "torchvision.transforms", "torchvision.datasets", "torchvision.utils"):
        module = _Missing(name)
        module.__path__ = []  # a package, so that submodule imports resolve to the stubs
        sys.modules[name] = module
        if parent is None:
            parent = module
        else:
            setattr(parent, name.split(".")[1], module)
    _TORCHVISION_STUBBED = True


def _bindsnet() -> types.ModuleType:
    _stub_torchvision()
    return _import("bindsnet")


def _bindsnet_note() -> str:
    return "torchvision stubbed (dataset helpers only); " if _TORCHVISION_STUBBED else ""


def import_status() -> dict[str, str]:
    """``{library: "ok <version>" | "unavailable: <reason>"}`` for the install script and the JSON."""
    status = {}
    for label, loader, module in (
        ("spikingjelly", lambda: _import("spikingjelly.activation_based.learning"), "spikingjelly"),
        ("bindsnet", _bindsnet, "bindsnet"),
        ("inferno", lambda: _import("inferno.learn"), "inferno"),
    ):
        try:
            loader()
        except PeerUnavailable as error:
            status[label] = f"unavailable: {error}"
            continue
        try:
            from importlib.metadata import version

            distribution = {"inferno": "inferno-ai"}.get(module, module)
            status[label] = f"ok {version(distribution)}"
        except Exception:
            status[label] = "ok"
        if label == "bindsnet" and _TORCHVISION_STUBBED:
            status[label] += " (torchvision stubbed)"
    return status


# ------------------------------------------------------------- SpikingJelly


def _sj_learner(step_mode: str, synapse: nn.Module, tau: float) -> object:
    learning = _import("spikingjelly.activation_based.learning")
    return learning.STDPLearner(
        step_mode, synapse, nn.Identity(), tau_pre=tau, tau_post=tau, f_pre=_additive, f_post=_additive
    )


def _additive(weight: Tensor) -> float:
    """Weight dependence 1 (additive STDP): SpikingJelly's default ``f(w) = w`` scales dw by the weight."""
    return 1.0


def _sj_learner_row(synapse: nn.Module, case: DenseCase | ConvCase, data: Data) -> Prepared:
    """``STDPLearner("m")`` with the recorded window put into its monitors; ``run()`` = ``step()``."""
    device = data["pre"].device
    synapse = synapse.to(device)
    learner = _sj_learner("m", synapse, case.tau)
    pre, post = data["pre"], data["post"]

    def run() -> Tensor:
        learner.reset()  # fresh traces: one window from zero, as ours
        learner.in_spike_monitor.records.append(pre)
        learner.out_spike_monitor.records.append(post)
        return learner.step(on_grad=False)

    return Prepared(run, reference="euler", note="STDPLearner('m').step(on_grad=False), records set directly")


def sj_learner_dense(case: DenseCase, data: Data) -> Prepared:
    return _sj_learner_row(nn.Linear(case.n_in, case.n_out, bias=False), case, data)


def sj_learner_conv(case: ConvCase, data: Data) -> Prepared:
    return _sj_learner_row(nn.Conv2d(case.in_channels, case.out_channels, case.kernel, bias=False), case, data)


def sj_step_dense(case: DenseCase, data: Data) -> Prepared:
    """``stdp_linear_step`` called once per time step, traces carried, ``dw`` summed."""
    functional = _import("spikingjelly.activation_based.functional.learning")
    pre, post = data["pre"], data["post"]
    weight = torch.zeros(case.n_out, case.n_in, device=pre.device)

    def run() -> Tensor:
        traces = (torch.zeros_like(pre[0]), torch.zeros_like(post[0]))
        total = torch.zeros_like(weight)
        for pre_t, post_t in zip(pre, post, strict=True):
            delta, traces = functional.stdp_linear_step(
                pre_t,
                post_t,
                traces,
                weight,
                tau_pre=case.tau,
                tau_post=case.tau,
                f_pre=_additive,
                f_post=_additive,
            )
            total += delta
        return total

    return Prepared(run, reference="euler", note="functional.learning.stdp_linear_step per step")


def sj_step_conv(case: ConvCase, data: Data) -> Prepared:
    """``stdp_conv2d_step`` per time step (no padding in B2, so the input needs none)."""
    functional = _import("spikingjelly.activation_based.functional.learning")
    pre, post = data["pre"], data["post"]
    weight = torch.zeros(case.out_channels, case.in_channels, case.kernel, case.kernel, device=pre.device)

    def run() -> Tensor:
        traces = (torch.zeros_like(pre[0]), torch.zeros_like(post[0]))
        total = torch.zeros_like(weight)
        for pre_t, post_t in zip(pre, post, strict=True):
            delta, traces = functional.stdp_conv2d_step(
                pre_t,
                post_t,
                traces,
                weight,
                stride=(1, 1),
                tau_pre=case.tau,
                tau_post=case.tau,
                f_pre=_additive,
                f_post=_additive,
            )
            total += delta
        return total

    return Prepared(run, reference="euler", note="functional.learning.stdp_conv2d_step per step")


# ------------------------------------------------------------------ BindsNET


def bindsnet_postpre(case: DenseCase, data: Data) -> Prepared:
    """``PostPre`` on a ``Connection`` between two ``Input`` layers replaying the trains.

    ``run()``: zero the weight and the layers' state, then per step the two
    layers' forward (spikes + traces) and ``connection.update()`` (the rule),
    as ``Network.run`` would do them, without the connection's current
    computation (not part of the rule, and not done by the other rows).
    """
    _bindsnet()
    nodes = _import("bindsnet.network.nodes")
    topology = _import("bindsnet.network.topology")
    learning = _import("bindsnet.learning")
    network_module = _import("bindsnet.network")
    pre, post = data["pre"], data["post"]
    device = pre.device
    network = network_module.Network(dt=1.0, batch_size=case.batch)
    source = nodes.Input(n=case.n_in, traces=True, traces_additive=True, tc_trace=case.tau)
    target = nodes.Input(n=case.n_out, traces=True, traces_additive=True, tc_trace=case.tau)
    network.add_layer(source, name="X")
    network.add_layer(target, name="Y")
    connection = topology.Connection(
        source, target, w=torch.zeros(case.n_in, case.n_out), update_rule=learning.PostPre, nu=(1.0, 1.0)
    )
    network.add_connection(connection, source="X", target="Y")
    network.to(device)

    def run() -> Tensor:
        connection.w.zero_()
        # zero the traces only: Input.forward keeps the given tensor as its ``s``,
        # and reset_state_variables() would zero that (the recorded data) in place
        source.x.zero_()
        target.x.zero_()
        for pre_t, post_t in zip(pre, post, strict=True):
            source.forward(pre_t)
            target.forward(post_t)
            connection.update(learning=True)
        return connection.w.t()

    return Prepared(
        run, reference="exact",
        note=_bindsnet_note() + "Input->Input Connection, PostPre nu=(1,1), additive traces, per-step update()",
    )  # fmt: skip


def bindsnet_diehl_cook(case: NetworkCase, data: Data) -> Prepared:
    """``bindsnet.models.DiehlAndCook2015`` at B4 size, one presentation with learning on."""
    _bindsnet()
    models = _import("bindsnet.models")
    inputs = data["input"]
    network = models.DiehlAndCook2015(
        n_inpt=case.n_in, n_neurons=case.n_neurons, dt=1.0, batch_size=case.batch, norm=case.n_in / 10.0
    )
    network.to(inputs.device)
    network.train(True)

    def run() -> None:
        # a copy: the Input layer keeps the step tensors as its state, which the reset zeroes
        network.run(inputs={"X": inputs.clone()}, time=case.steps)
        network.reset_state_variables()

    return Prepared(
        run, reference=None, samples=case.batch,
        note=_bindsnet_note() + f"network.run(time={case.steps}) + reset, learning on (PostPre, norm)",
    )  # fmt: skip


# ------------------------------------------------------------------- inferno


def _inferno_layer(case: DenseCase, data: Data, *, delays: bool) -> tuple[object, object, Callable[[], None]]:
    """An inferno ``Serial(LinearDense, LIF)`` whose neuron replays ``data["post"]``.

    Returns ``(layer, cell, replay)``; ``replay()`` runs the window through the
    layer (which drives the trainer's monitors).
    """
    neural = _import("inferno.neural")
    pre, post = data["pre"], data["post"]

    class ReplayLIF(neural.LIF):
        """inferno's LIF whose spikes are the recorded ones (the monitors read ``spike``)."""

        step = 0

        def forward(self, inputs: Tensor, **kwargs: object) -> Tensor:
            spikes = post[ReplayLIF.step].bool()
            # inferno's ``spike`` is "refractory counter at its maximum"
            self.refrac = torch.where(
                spikes, torch.full_like(self.refrac, self.refrac_t), torch.zeros_like(self.refrac)
            )
            return spikes

    connection = neural.LinearDense(
        (case.n_in,), (case.n_out,), 1.0,
        synapse=neural.DeltaCurrent.partialconstructor(1.0),
        delay=case.max_delay if delays else None,
        batch_size=case.batch,
    )  # fmt: skip
    neuron = ReplayLIF(
        (case.n_out,), 1.0, rest_v=-60.0, reset_v=-65.0, thresh_v=-50.0, refrac_t=2.0,
        time_constant=20.0, resistance=1.0, batch_size=case.batch,
    )  # fmt: skip
    layer = neural.Serial(connection, neuron)
    if delays:
        with torch.no_grad():
            connection.delay.copy_(data["delay"])

    def replay() -> None:
        for step in range(pre.shape[0]):
            ReplayLIF.step = step
            layer(pre[step].bool())

    return layer, layer.cell, replay


def _inferno_pending(cell: object) -> Tensor:
    """The weight change inferno's updater would apply (applied to a zero weight, then read)."""
    connection = cell.connection
    with torch.no_grad():
        connection.weight.zero_()
    connection.update()  # apply the accumulated update, then clear the accumulators
    return connection.weight.detach().clone()


def inferno_stdp(case: DenseCase, data: Data) -> Prepared:
    """``inferno.learn.STDP`` (cumulative traces), trainer called every step, updater applied at the end."""
    learn = _import("inferno.learn")
    layer, cell, _ = _inferno_layer(case, data, delays=False)
    trainer = learn.STDP(
        lr_post=1.0, lr_pre=-1.0, tc_post=case.tau, tc_pre=case.tau, trace_mode="cumulative",
        batch_reduction=torch.sum,
    )  # fmt: skip
    cell.connection.updater = cell.connection.defaultupdater()
    trainer.register_cell("b1", cell)
    pre = data["pre"]
    neuron = cell.neuron

    def run() -> Tensor:
        # fresh traces: one window from zero, as ours (CellTrainer.clear() and
        # .monitors fail in inferno-ai 0.0.5; the pool's property works)
        for monitor in trainer.monitor_pool_.monitors:
            monitor.clear()
        for step in range(pre.shape[0]):
            type(neuron).step = step
            layer(pre[step].bool())
            trainer()
        return _inferno_pending(cell)

    return Prepared(run, reference="exact", note="STDP trainer per step + updater; includes the layer's forward")


def _inferno_kernel(case: DenseCase, data: Data, *, delayed: bool) -> Prepared:
    learn = _import("inferno.learn")
    _layer, cell, replay = _inferno_layer(case, data, delays=delayed)
    kernel_post, kernel_pre = _inferno_exp_kernels()
    trainer_class = learn.DelayAdjustedKernelSTDP if delayed else learn.KernelSTDP
    trainer = trainer_class(
        kernel_post=kernel_post, kernel_pre=kernel_pre,
        kernel_post_kwargs={"eta": 1.0, "tau": case.tau}, kernel_pre_kwargs={"eta": -1.0, "tau": case.tau},
        batch_reduction=torch.mean,
    )  # fmt: skip
    cell.connection.updater = cell.connection.defaultupdater()
    trainer.register_cell("b3", cell)
    replay()  # fills the event-time monitors (untimed)

    def run() -> Tensor:
        trainer()
        return _inferno_pending(cell)

    return Prepared(
        run, reference="delay" if delayed else "kernel",
        note=("DelayAdjustedKernelSTDP" if delayed else "KernelSTDP") + " trainer call + updater, exponential kernels",
    )  # fmt: skip


def _inferno_exp_kernels() -> tuple[Callable[..., Tensor], Callable[..., Tensor]]:
    """Exponential half-kernels in inferno's ``SpikeTimeHalfKernel`` calling form.

    Written here (the benchmark's own two lines) so that both libraries use
    the same kernel: ``K_post = eta exp(-|d|/tau) [d >= 0]``,
    ``K_pre = eta exp(-|d|/tau) [d < 0]``, NaN kept.
    """

    def kernel_post(delta: Tensor, eta: float, tau: float) -> Tensor:
        values = eta * torch.exp(-delta.abs() / tau)
        return torch.where(delta.isnan(), delta, torch.where(delta >= 0, values, torch.zeros_like(values)))

    def kernel_pre(delta: Tensor, eta: float, tau: float) -> Tensor:
        values = eta * torch.exp(-delta.abs() / tau)
        return torch.where(delta.isnan(), delta, torch.where(delta < 0, values, torch.zeros_like(values)))

    return kernel_post, kernel_pre


def inferno_kernel_stdp(case: DenseCase, data: Data) -> Prepared:
    return _inferno_kernel(case, data, delayed=False)


def inferno_delay_kernel_stdp(case: DenseCase, data: Data) -> Prepared:
    return _inferno_kernel(case, data, delayed=True)


# ------------------------------------------------------------------ registry

PEERS: dict[str, list[tuple[str, RowFunction]]] = {
    "B1": [
        ("SpikingJelly STDPLearner (multi-step)", sj_learner_dense),
        ("SpikingJelly stdp_linear_step (per step)", sj_step_dense),
        ("BindsNET PostPre on Connection", bindsnet_postpre),
        ("inferno STDP trainer", inferno_stdp),
    ],
    "B2": [
        ("SpikingJelly STDPLearner conv (multi-step)", sj_learner_conv),
        ("SpikingJelly stdp_conv2d_step (per step)", sj_step_conv),
    ],
    "B3": [
        ("inferno KernelSTDP trainer call", inferno_kernel_stdp),
        ("inferno DelayAdjustedKernelSTDP trainer call", inferno_delay_kernel_stdp),
    ],
    "B4": [
        ("BindsNET DiehlAndCook2015 training step", bindsnet_diehl_cook),
    ],
    # issue 15: the large sparse layer's window, BindsNET's per-step update on the same trains
    "S1 update": [
        ("BindsNET PostPre on Connection (whole window)", bindsnet_postpre),
    ],
}
