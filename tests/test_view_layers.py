"""Torch layers wherever a view or a geometry is expected: ``view=`` of every rule, ``layer_geometry``, the conv
views. Each layer is compared with its geometry written out by hand (or dense for ``nn.Linear``)."""

import pytest
import torch
from torch import nn

from plastic.functional.inhibitory import inhibitory_stdp_window
from plastic.functional.integer import integer_stdp_window
from plastic.functional.rate_rules import bcm_window, oja_window
from plastic.functional.receptive import (
    ConvGeometry,
    as_conv_geometry,
    conv_output_shape,
    conv_post_view,
    conv_pre_view,
    layer_geometry,
)
from plastic.functional.reward import mstdp_et_window, mstdp_window
from plastic.functional.stdp import stdp_step, stdp_window, stdp_window_net
from plastic.functional.triplet import triplet_stdp_window
from plastic.learn import learners

# (layer, input shape without time and batch, its geometry written out: None for dense)
LAYERS = [
    (nn.Conv1d(2, 4, 3, stride=2, padding=1), (2, 11), ConvGeometry.create(1, 2, 4, 3, stride=2, padding=1)),
    (
        nn.Conv2d(2, 4, (3, 2), dilation=(1, 2), groups=2, padding="same"),
        (2, 6, 7),
        ConvGeometry.create(2, 2, 4, (3, 2), dilation=(1, 2), groups=2, padding="same"),
    ),
    (
        nn.Conv2d(2, 4, 3, padding=1, padding_mode="circular"),
        (2, 5, 5),
        ConvGeometry.create(2, 2, 4, 3, padding=1, padding_mode="circular"),
    ),
    (nn.Linear(6, 3), (6,), None),
]


def _post_shape(layer, in_shape):
    with torch.no_grad():
        return tuple(layer(torch.zeros(1, *in_shape)).shape[1:])


def _spikes(layer, in_shape, steps=5):
    generator = torch.Generator().manual_seed(3)
    out_shape = _post_shape(layer, in_shape)
    pre = torch.rand(steps, 2, *in_shape, generator=generator) < 0.3
    post = torch.rand(steps, 2, *out_shape, generator=generator) < 0.3
    return pre, post


def _assert_same(a, b):
    if isinstance(a, torch.Tensor):
        torch.testing.assert_close(a, b)
    elif isinstance(a, tuple | list):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    else:
        assert a == b


@pytest.mark.parametrize(("layer", "in_shape", "geometry"), LAYERS)
def test_layer_geometry_is_the_hand_written_geometry(layer, in_shape, geometry):
    assert layer_geometry(layer) == geometry
    assert learners.layer_geometry is layer_geometry  # still importable from the learners


@pytest.mark.parametrize(("layer", "in_shape", "geometry"), LAYERS)
def test_layer_as_view_equals_its_geometry(layer, in_shape, geometry):
    pre, post = _spikes(layer, in_shape)
    by_layer = stdp_window(pre, post, tau_pre=5.0, tau_post=5.0, view=layer)
    by_geometry = stdp_window(pre, post, tau_pre=5.0, tau_post=5.0, view=geometry)
    _assert_same(by_layer, by_geometry)
    step_layer = stdp_step(pre[0], post[0], tau_pre=5.0, tau_post=5.0, view=layer)
    step_geometry = stdp_step(pre[0], post[0], tau_pre=5.0, tau_post=5.0, view=geometry)
    _assert_same(step_layer, step_geometry)


def _weight(layer):
    return torch.rand(layer.weight.shape, generator=torch.Generator().manual_seed(4))


RULES = {
    "stdp_window_net": lambda pre, post, layer, view: stdp_window_net(pre, post, tau_pre=3.0, tau_post=3.0, view=view),
    "triplet": lambda pre, post, layer, view: triplet_stdp_window(pre, post, view=view),
    "mstdp": lambda pre, post, layer, view: mstdp_window(pre, post, 0.5, view=view),
    "mstdp_et": lambda pre, post, layer, view: mstdp_et_window(pre, post, 0.5, view=view),
    "inhibitory": lambda pre, post, layer, view: inhibitory_stdp_window(pre, post, view=view),
    "oja": lambda pre, post, layer, view: oja_window(pre, post, _weight(layer), view=view),
    "bcm": lambda pre, post, layer, view: bcm_window(pre, post, _weight(layer), view=view),
    "integer": lambda pre, post, layer, view: integer_stdp_window(
        pre, post, (_weight(layer) * 100).to(torch.int32), view=view, generator=torch.Generator().manual_seed(5)
    ),
}


@pytest.mark.parametrize("rule", sorted(RULES))
@pytest.mark.parametrize(("layer", "in_shape", "geometry"), LAYERS[:2] + LAYERS[3:])
def test_every_rule_takes_a_layer_as_view(rule, layer, in_shape, geometry):
    pre, post = _spikes(layer, in_shape)
    _assert_same(RULES[rule](pre, post, layer, layer), RULES[rule](pre, post, layer, geometry))


@pytest.mark.parametrize(("layer", "in_shape", "geometry"), LAYERS[:3])
def test_conv_views_take_the_layer(layer, in_shape, geometry):
    pre, post = _spikes(layer, in_shape, steps=1)
    assert conv_output_shape(layer, in_shape[1:]) == conv_output_shape(geometry, in_shape[1:])
    assert conv_output_shape(layer, in_shape[1:]) == _post_shape(layer, in_shape)[1:]
    assert torch.equal(conv_pre_view(pre[0], layer), conv_pre_view(pre[0], geometry))
    assert torch.equal(conv_post_view(post[0], layer), conv_post_view(post[0], geometry))
    assert as_conv_geometry(layer) == geometry and as_conv_geometry(geometry) is geometry


def test_bad_view_and_geometry_types_name_the_argument():
    pre = torch.zeros(3, 1, 4, dtype=torch.bool)
    post = torch.zeros(3, 1, 2, dtype=torch.bool)
    with pytest.raises(TypeError, match="view"):
        stdp_window(pre, post, tau_pre=5.0, tau_post=5.0, view=nn.ReLU())
    with pytest.raises(TypeError, match="view"):
        stdp_window(pre, post, tau_pre=5.0, tau_post=5.0, view="conv")
    with pytest.raises(TypeError, match=r"^layer"):
        layer_geometry(nn.Conv3d(1, 1, 1))
    with pytest.raises(TypeError, match=r"^geometry"):
        conv_pre_view(torch.zeros(1, 1, 4), nn.Linear(4, 2))
    with pytest.raises(TypeError, match=r"^geometry"):
        conv_output_shape(None, (4,))
