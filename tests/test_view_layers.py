"""``view=`` takes torch layers: the same dw as their ``layer_geometry``."""

import pytest
import torch
from torch import nn

from plastic.functional.stdp import stdp_step, stdp_window
from plastic.learn.learners import layer_geometry

LAYERS = [
    (nn.Conv1d(2, 4, 3, stride=2, padding=1), (2, 11)),
    (nn.Conv2d(2, 4, (3, 2), dilation=(1, 2), groups=2, padding="same"), (2, 6, 7)),
    (nn.Conv2d(2, 4, 3, padding=1, padding_mode="circular"), (2, 5, 5)),
    (nn.Linear(6, 3), (6,)),
]


def _post_shape(layer, in_shape):
    with torch.no_grad():
        return tuple(layer(torch.zeros(1, *in_shape)).shape[1:])


@pytest.mark.parametrize(("layer", "in_shape"), LAYERS)
def test_layer_as_view_equals_its_geometry(layer, in_shape):
    generator = torch.Generator().manual_seed(3)
    out_shape = _post_shape(layer, in_shape)
    pre = torch.rand(5, 2, *in_shape, generator=generator) < 0.3
    post = torch.rand(5, 2, *out_shape, generator=generator) < 0.3
    by_layer = stdp_window(pre, post, tau_pre=5.0, tau_post=5.0, view=layer)
    by_geometry = stdp_window(pre, post, tau_pre=5.0, tau_post=5.0, view=layer_geometry(layer))
    for a, b in zip(by_layer, by_geometry, strict=True):
        torch.testing.assert_close(a, b)
    step_layer = stdp_step(pre[0], post[0], tau_pre=5.0, tau_post=5.0, view=layer)
    step_geometry = stdp_step(pre[0], post[0], tau_pre=5.0, tau_post=5.0, view=layer_geometry(layer))
    for a, b in zip(step_layer, step_geometry, strict=True):
        torch.testing.assert_close(a, b)


def test_bad_view_type_names_view():
    pre = torch.zeros(3, 1, 4, dtype=torch.bool)
    post = torch.zeros(3, 1, 2, dtype=torch.bool)
    with pytest.raises(TypeError, match="view"):
        stdp_window(pre, post, tau_pre=5.0, tau_post=5.0, view=nn.ReLU())
    with pytest.raises(TypeError, match="view"):
        stdp_window(pre, post, tau_pre=5.0, tau_post=5.0, view="conv")
