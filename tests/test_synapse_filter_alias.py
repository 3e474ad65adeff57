"""SynapseFilter.w: SpikingJelly's name of the learnable parameter, an alias of weight."""

import pytest
import torch
from torch import nn

from plastic.neural.layers import SynapseFilter


def test_w_reads_weight():
    layer = SynapseFilter(4.0, learnable=True)
    assert layer.w is layer.weight
    assert [name for name, _ in layer.named_parameters()] == ["weight"]


def test_w_writes_weight():
    layer = SynapseFilter(4.0, learnable=True)
    replacement = nn.Parameter(torch.tensor(0.0))
    layer.w = replacement
    assert layer.weight is replacement and layer.w is replacement
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    assert layer.tau == pytest.approx(2.0)


def test_w_of_a_fixed_filter_is_missing():
    with pytest.raises(AttributeError):
        _ = SynapseFilter(4.0).w
