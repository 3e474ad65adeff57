"""Connections: weighted sums against explicit loops, convolutions against
torch.nn.Conv1d/Conv2d, receptive views, delays against brute-force reads,
lateral masks, window == steps, bad input, state_dict and dtype moves."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from plastic.neural.connections import Conv1d, Conv2d, LinearDense, LinearDirect, LinearLateral
from plastic.neural.synapses import DeltaCurrent, ExponentialCurrent

SYNAPSES = {
    "delta": {},
    "exponential": {"tau": 2.0},
    "spike_filter": {"tau": 3.0},
}


def random_spikes(generator, shape, p=0.4, as_float=False):
    spikes = torch.rand(shape, generator=generator) < p
    return spikes.to(torch.float32) if as_float else spikes


def exponential_reference(spikes: torch.Tensor, tau: float, dt: float = 1.0) -> torch.Tensor:
    current = torch.zeros(spikes.shape[1:], dtype=torch.float64)
    out = []
    for step in spikes.to(torch.float64):
        current = math.exp(-dt / tau) * current + step
        out.append(current)
    return torch.stack(out)


def make(kind: str, synapse: str = "delta", delay=None, n_in: int = 4, n_out: int = 3, size: int = 0, **kwargs):
    """A connection of each kind; ``size`` enlarges the conv inputs."""
    synapse_kwargs = SYNAPSES[synapse]
    if kind == "dense":
        return LinearDense(n_in, n_out, synapse=synapse, synapse_kwargs=synapse_kwargs, delay=delay, **kwargs)
    if kind == "direct":
        return LinearDirect(n_in, synapse=synapse, synapse_kwargs=synapse_kwargs, delay=delay, **kwargs)
    if kind == "lateral":
        return LinearLateral(n_in, synapse=synapse, synapse_kwargs=synapse_kwargs, delay=delay, **kwargs)
    if kind == "conv1d":
        return Conv1d(
            2,
            4,
            3,
            stride=2,
            padding=1,
            padding_mode="circular",
            groups=2,
            in_size=7 + size,
            synapse=synapse,
            synapse_kwargs=synapse_kwargs,
            **kwargs,
        )
    return Conv2d(
        2,
        2,
        (2, 3),
        padding="same",
        padding_mode="reflect",
        dilation=(1, 2),
        in_size=(4 + size, 5),
        synapse=synapse,
        synapse_kwargs=synapse_kwargs,
        **kwargs,
    )


KINDS = ("dense", "direct", "lateral", "conv1d", "conv2d")
DELAYABLE = ("dense", "direct", "lateral")


# ---------------------------------------------------------------------------- dense family


def test_dense_against_explicit_loops():
    generator = torch.Generator().manual_seed(0)
    connection = LinearDense(4, 3, bias=True, synapse="exponential", synapse_kwargs={"tau": 2.0}, batch_size=2)
    spikes = random_spikes(generator, (5, 2, 4), p=0.5)
    outputs = torch.stack([connection(step) for step in spikes])
    currents = exponential_reference(spikes, 2.0)
    weight, bias = connection.weight.detach().double(), connection.bias.detach().double()
    expected = torch.zeros(5, 2, 3, dtype=torch.float64)
    for t in range(5):
        for b in range(2):
            for i in range(3):
                expected[t, b, i] = bias[i] + sum(weight[i, j] * currents[t, b, j] for j in range(4))
    torch.testing.assert_close(outputs.double(), expected, rtol=1e-6, atol=1e-6)
    assert torch.equal(connection.synspike, spikes[-1])
    torch.testing.assert_close(connection.syncurrent.double(), currents[-1], rtol=1e-6, atol=1e-7)


def test_direct_is_elementwise():
    connection = LinearDirect(3, bias=True, weight_init=lambda w: w.copy_(torch.tensor([2.0, -1.0, 0.5])))
    with torch.no_grad():
        connection.bias.copy_(torch.tensor([0.1, 0.2, 0.3]))
    out = connection(torch.tensor([[1.0, 1.0, 0.0]]))
    torch.testing.assert_close(out, torch.tensor([[2.1, -0.8, 0.3]]))
    assert connection.groups == 3


def test_lateral_mask_is_kept():
    connection = LinearLateral(3, weight_init=(0.5, 1.0))
    assert torch.equal(connection.weight_mask, 1 - torch.eye(3))
    assert torch.all(connection.weight.diagonal() == 0)
    assert torch.all(connection.weight.detach()[connection.weight_mask.bool()] >= 0.5)
    with torch.no_grad():
        connection.weight.copy_(torch.full((3, 3), 2.0))  # a diagonal written by mistake
    out = connection(torch.tensor([[1, 0, 1]]))
    # neuron 0 gets input 2 only from neuron 2, neuron 1 from 0 and 2, neuron 2 from 0
    assert out.tolist() == [[2.0, 4.0, 2.0]]
    assert "weight_mask" in connection.state_dict()
    assert LinearDense(3, 3).weight_mask is None


def test_weight_init_follows_torch():
    torch.manual_seed(5)
    reference = torch.nn.Linear(6, 4, bias=True)
    torch.manual_seed(5)
    connection = LinearDense(6, 4, bias=True)
    assert torch.equal(connection.weight, reference.weight)
    assert torch.equal(connection.bias, reference.bias)
    torch.manual_seed(5)
    conv_reference = torch.nn.Conv2d(2, 4, 3, groups=2, bias=True)
    torch.manual_seed(5)
    conv = Conv2d(2, 4, 3, groups=2, bias=True, in_size=(5, 5))
    assert torch.equal(conv.weight, conv_reference.weight)
    assert torch.equal(conv.bias, conv_reference.bias)
    ranged = LinearDense(50, 50, weight_init=(0.2, 0.3))
    assert ranged.weight.min() >= 0.2 and ranged.weight.max() <= 0.3


# ---------------------------------------------------------------------------- window == steps


@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
def test_window_equals_steps(kind, data):
    synapse = data.draw(st.sampled_from(list(SYNAPSES)), label="synapse")
    batch = data.draw(st.integers(1, 3), label="batch")
    steps = data.draw(st.integers(1, 5), label="steps")
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]), label="dtype")
    as_float = data.draw(st.booleans(), label="float spikes")
    delayed = kind in DELAYABLE and data.draw(st.booleans(), label="delayed")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    sizes = {
        "n_in": data.draw(st.integers(1, 5), label="n_in"),
        "n_out": data.draw(st.integers(1, 5), label="n_out"),
        "size": data.draw(st.integers(0, 3), label="conv size"),
    }
    torch.manual_seed(seed)
    single = make(
        kind,
        synapse,
        delay=2.0 if delayed else None,
        batch_size=batch,
        **sizes,
        **({"learn_delay_init": "uniform"} if delayed else {}),
    ).to(dtype)
    window = copy.deepcopy(single)
    window.step_mode = "window"
    generator = torch.Generator().manual_seed(seed)
    spikes = random_spikes(generator, (steps, batch, *single.in_shape), as_float=as_float)
    with torch.no_grad():
        stepped = torch.stack([single(step) for step in spikes])
        stepped_synspike = single.synspike
        windowed = window(spikes)
    assert windowed.shape == (steps, batch, *single.out_shape)
    assert windowed.dtype == dtype
    torch.testing.assert_close(windowed, stepped, rtol=1e-6, atol=1e-6)
    assert torch.equal(window.synspike[-1], stepped_synspike)
    expected_syn = (steps, batch, *(single.weight.shape if delayed else single.in_shape))
    assert window.synspike.shape == expected_syn and window.syncurrent.shape == expected_syn


# ---------------------------------------------------------------------------- convolutions

PADDINGS = st.sampled_from([0, 1, 2, "valid", "same"])


@given(data=st.data())
@pytest.mark.parametrize("dims", [1, 2])
def test_conv_matches_torch_and_views(dims, data):
    groups = data.draw(st.sampled_from([1, 2]), label="groups")
    in_channels = groups * data.draw(st.integers(1, 2), label="in per group")
    out_channels = groups * data.draw(st.integers(1, 2), label="out per group")
    kernel = tuple(data.draw(st.integers(1, 3), label="kernel") for _ in range(dims))
    dilation = tuple(data.draw(st.integers(1, 2), label="dilation") for _ in range(dims))
    padding = data.draw(PADDINGS, label="padding")
    if isinstance(padding, int) and dims == 2 and data.draw(st.booleans(), label="tuple padding"):
        padding = (padding, data.draw(st.integers(0, 2), label="padding 2"))
    stride = 1 if padding == "same" else tuple(data.draw(st.integers(1, 2), label="stride") for _ in range(dims))
    padding_mode = data.draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]), label="mode")
    size = tuple(data.draw(st.integers(5, 7), label="size") for _ in range(dims))
    batch = data.draw(st.integers(1, 2), label="batch")
    bias = data.draw(st.booleans(), label="bias")
    cls, torch_cls = (Conv1d, torch.nn.Conv1d) if dims == 1 else (Conv2d, torch.nn.Conv2d)
    connection = cls(
        in_channels,
        out_channels,
        kernel if dims == 2 else kernel[0],
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
        in_size=size if dims == 2 else size[0],
        bias=bias,
        batch_size=batch,
        step_mode="window",
    )
    reference = torch_cls(
        in_channels,
        out_channels,
        kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
        bias=bias,
    )
    with torch.no_grad():
        reference.weight.copy_(connection.weight)
        if bias:
            reference.bias.copy_(connection.bias)
    generator = torch.Generator().manual_seed(data.draw(st.integers(0, 100), label="seed"))
    spikes = random_spikes(generator, (2, batch, in_channels, *size), p=0.5)
    with torch.no_grad():
        out = connection(spikes)
        expected = reference(spikes.flatten(0, 1).float()).reshape(2, batch, *reference(spikes[0].float()).shape[1:])
    assert out.shape[2:] == connection.out_shape
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)

    # the receptive view contracted with the grouped weight is the convolution
    pre = connection.pre_view(spikes.flatten(0, 1).float())
    grouped = connection.weight_grouped()
    contracted = torch.einsum("ngkp,gok->ngop", pre, grouped.detach())
    no_bias = out - (connection.bias.view(-1, *(1,) * dims) if bias else 0)
    post = connection.post_view(no_bias.flatten(0, 1).detach())
    torch.testing.assert_close(contracted, post, rtol=1e-5, atol=1e-5)
    assert torch.equal(connection.ungroup(grouped), connection.weight)


def test_post_view_hand_case():
    connection = Conv1d(2, 4, 3, groups=2, in_size=5)  # out length 3, two output channels per group
    post = torch.arange(12.0).reshape(1, 4, 3)
    view = connection.post_view(post)
    assert view.shape == (1, 2, 2, 3)
    for g in range(2):
        for o in range(2):
            assert view[0, g, o].tolist() == post[0, 2 * g + o].tolist()


def test_pre_view_hand_case_conv1d():
    # one channel, kernel 2, stride 2, length 4: positions (0, 1) and (2, 3)
    connection = Conv1d(1, 1, 2, stride=2, in_size=4)
    view = connection.pre_view(torch.tensor([[[1.0, 2.0, 3.0, 4.0]]]))
    assert view.tolist() == [[[[1.0, 3.0], [2.0, 4.0]]]]


def test_dense_and_direct_views():
    dense = LinearDense(4, 3)
    pre = torch.randn(5, 4)
    assert torch.equal(dense.pre_view(pre)[:, 0, :, 0], pre)
    per_synapse = torch.randn(5, 3, 4)
    assert torch.equal(dense.pre_view(per_synapse)[:, 0, :, :, 0], per_synapse)
    assert dense.post_view(torch.randn(5, 3)).shape == (5, 1, 3, 1)
    assert torch.equal(dense.weight_grouped()[0], dense.weight)
    assert torch.equal(dense.ungroup(dense.weight_grouped()), dense.weight)
    direct = LinearDirect(4)
    assert direct.pre_view(torch.randn(5, 4)).shape == (5, 4, 1, 1)
    assert direct.pre_view(torch.randn(5, 4), per_synapse=True).shape == (5, 4, 1, 1, 1)
    assert direct.post_view(torch.randn(5, 4)).shape == (5, 4, 1, 1)
    assert direct.weight_grouped().shape == (4, 1, 1)
    assert torch.equal(direct.ungroup(direct.weight_grouped()), direct.weight)
    with pytest.raises(ValueError, match=r"^pre"):
        dense.pre_view(torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"^post"):
        dense.post_view(torch.randn(5, 4))


# ---------------------------------------------------------------------------- delays


@pytest.mark.parametrize("kind", DELAYABLE)
@pytest.mark.parametrize("step_mode", ["single", "window"])
def test_delayed_connection_against_brute_force(kind, step_mode):
    dt, batch, steps, max_delay = 0.5, 2, 9, 2.0
    torch.manual_seed(1)
    connection = make(
        kind, "exponential", delay=max_delay, dt=dt, batch_size=batch, learn_delay_init="uniform", step_mode=step_mode
    )
    with torch.no_grad():  # delays on the 0.5-step grid: lags k/2
        connection.delay.copy_(torch.round(connection.delay * 4) / 4)
    generator = torch.Generator().manual_seed(2)
    spikes = random_spikes(generator, (steps, batch, 4), p=0.5)
    with torch.no_grad():
        out = connection(spikes) if step_mode == "window" else torch.stack([connection(s) for s in spikes])
    currents = exponential_reference(spikes, 2.0, dt)
    weight = connection.weight.detach().double()
    delay = connection.delay.detach().double()
    mask = connection.weight_mask
    expected = torch.zeros(steps, batch, *connection.out_shape, dtype=torch.float64)
    for t in range(steps):
        for b in range(batch):
            for i in range(connection.out_shape[0]):
                sources = [i] if kind == "direct" else range(4)
                for j in sources:
                    if mask is not None and i == j:
                        continue
                    d = float(delay[i] if kind == "direct" else delay[i, j])
                    lag = math.ceil(d / dt - 1e-9)  # "previous": arrived once the whole delay has passed
                    if t - lag >= 0:
                        w = float(weight[i] if kind == "direct" else weight[i, j])
                        expected[t, b, i] += w * float(currents[t - lag, b, j])
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-6)
    synapse_shape = tuple(connection.weight.shape)
    last = connection.synspike[-1] if step_mode == "window" else connection.synspike
    assert last.shape == (batch, *synapse_shape)


def test_delay_parameter_is_clamped_and_stored():
    initial = torch.tensor([[-1.0, 0.5, 5.0]])
    connection = LinearDense(3, 1, delay=2.0, learn_delay_init=initial)
    assert connection.delay.tolist() == [[0.0, 0.5, 2.0]]
    assert connection.max_delay == 2.0
    assert isinstance(connection.delay, torch.nn.Parameter)
    uniform = LinearDense(30, 20, delay=3.0, learn_delay_init="uniform")
    assert uniform.delay.min() >= 0 and uniform.delay.max() <= 3.0
    assert LinearDense(3, 1).delay is None
    # a delay pushed out of range by a rule is read clamped
    with torch.no_grad():
        connection.delay.fill_(7.0)
    connection(torch.ones(1, 3))
    assert connection.clamped_delay().max() == 2.0


def test_integer_delay_through_connection_with_dt():
    dt = 0.25
    connection = LinearDirect(
        2, delay=1.0, dt=dt, weight_init=lambda w: w.fill_(1.0), learn_delay_init=torch.tensor([0.5, 1.0])
    )
    arrivals = []
    for step in range(8):
        spike = torch.ones(1, 2) if step == 0 else torch.zeros(1, 2)
        arrivals.append(connection(spike)[0])
    arrived = torch.stack(arrivals)
    assert arrived[:, 0].nonzero().flatten().tolist() == [2]
    assert arrived[:, 1].nonzero().flatten().tolist() == [4]


def test_conv_delay_is_rejected():
    with pytest.raises(ValueError, match=r"^delay"):
        Conv1d(1, 1, 2, in_size=4, delay=1.0)
    with pytest.raises(ValueError, match=r"^delay"):
        Conv2d(1, 1, 2, in_size=(4, 4), delay=1.0)


# ---------------------------------------------------------------------------- bad input, state


def full_state(module):
    return {k: v.clone() for k, v in module.state_dict().items() if isinstance(v, torch.Tensor)}


@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_raises_and_leaves_state(kind):
    connection = make(kind, "exponential", delay=1.0 if kind in DELAYABLE else None, batch_size=2)
    shape = (2, *connection.in_shape)
    connection(torch.ones(shape))
    before = full_state(connection)
    synspike = connection.synspike.clone()
    bad_values = torch.ones(shape)
    bad_values.view(-1)[0] = 0.5
    nan = torch.ones(shape)
    nan.view(-1)[0] = float("nan")
    for bad, error in [
        (bad_values, ValueError),
        (nan, ValueError),
        (torch.ones(3, *connection.in_shape), ValueError),  # batch size
        (torch.ones(2, 5), ValueError),  # shape
        (torch.ones(shape, dtype=torch.complex64), TypeError),
        (torch.ones(shape, device="meta"), ValueError),  # device
    ]:
        with pytest.raises(error, match=r"^spikes"):
            connection(bad)
    after = full_state(connection)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(connection.synspike, synspike)


@pytest.mark.parametrize(
    ("factory", "pattern"),
    [
        (lambda: LinearDense(3, 2, dt=0.0), "^dt"),
        (lambda: LinearDense(3, 2, delay=-1.0), "^delay"),
        (lambda: LinearDense(0, 2), "^in_features"),
        (lambda: LinearDirect(3, synapse="alpha"), "^synapse"),
        (lambda: LinearDense(3, 2, synapse="spike_filter", synapse_kwargs={"tau": 1.0, "learnable": True}), "^tau"),
        (lambda: LinearDense(3, 2, synapse_kwargs={"dt": 2.0}), "^synapse_kwargs"),
        (lambda: LinearDense(3, 2, synapse=DeltaCurrent(4)), "^synapse"),
        (lambda: LinearDense(3, 2, delay=2.0, synapse=DeltaCurrent(3, max_delay=1.0)), "^synapse"),
        (lambda: LinearDense(3, 2, learn_delay_init="normal", delay=1.0), "^learn_delay_init"),
        (lambda: LinearDense(3, 2, weight_init=(1.0, 0.0)), "^weight_init"),
        (lambda: Conv1d(2, 2, 3, groups=3, in_size=5), "^groups"),
        (lambda: Conv1d(1, 1, 3, padding=5, padding_mode="reflect", in_size=5), "^padding"),
        (lambda: Conv2d(1, 1, 7, in_size=(5, 5)), "^in_size"),
        (lambda: Conv2d(1, 1, 2, in_size=5), "^in_size"),
    ],
)
def test_bad_construction(factory, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        factory()


def test_custom_synapse_module():
    synapse = ExponentialCurrent(3, tau=4.0, max_delay=2.0)
    connection = LinearDense(3, 2, synapse=synapse, delay=2.0, batch_size=2, step_mode="window")
    assert connection.synapse is synapse
    assert synapse.batch_size == 2 and synapse.step_mode == "window"
    assert connection(torch.ones(4, 2, 3)).shape == (4, 2, 2)


@pytest.mark.parametrize("kind", KINDS)
def test_state_dict_round_trip_and_float64(kind):
    torch.manual_seed(0)
    delayed = kind in DELAYABLE
    first = make(
        kind,
        "spike_filter",
        delay=1.5 if delayed else None,
        batch_size=2,
        **({"learn_delay_init": "uniform"} if delayed else {}),
    )
    generator = torch.Generator().manual_seed(4)
    shape = (2, *first.in_shape)
    for _ in range(3):
        first(random_spikes(generator, shape))
    second = make(kind, "spike_filter", delay=1.5 if delayed else None, batch_size=2)
    second.load_state_dict(first.state_dict())
    for _ in range(3):
        spikes = random_spikes(generator, shape)
        assert torch.equal(first(spikes), second(spikes))

    wide = copy.deepcopy(first).to(torch.float64)
    for name, tensor in list(wide.named_parameters()) + list(wide.named_buffers()):
        if tensor.is_floating_point():
            assert tensor.dtype == torch.float64, name
    spikes = random_spikes(generator, shape)
    out64 = wide(spikes)
    out32 = first(spikes)
    assert out64.dtype == torch.float64 and wide.syncurrent.dtype == torch.float64
    torch.testing.assert_close(out64.float(), out32, rtol=1e-5, atol=1e-6)


def test_reset_and_batch_size_propagate():
    connection = LinearDense(3, 2, delay=1.0, synapse="exponential", synapse_kwargs={"tau": 2.0})
    connection(torch.ones(1, 3))
    connection.reset()
    assert connection.synapse.state.abs().sum() == 0
    assert connection.syncurrent.abs().sum() == 0
    connection.batch_size = 3
    assert connection.synapse.batch_size == 3
    assert connection.synspike.shape == (3, 2, 3)
    assert connection(torch.ones(3, 3)).shape == (3, 2)
    connection.step_mode = "window"
    assert connection.synapse.step_mode == "window"
