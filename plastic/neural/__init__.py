"""Stateful modules: neurons, synapses, connections, cells, layers, encoders.

The public classes of the submodules are exported here
(``from plastic.neural import LIF, Cell, LinearDense``).
"""

from plastic.neural.adex import AdEx
from plastic.neural.cell import Cell, Serial
from plastic.neural.classifiers import MaxRateClassifier
from plastic.neural.competition import Competition, WinnerTakeAll
from plastic.neural.conductance_lif import ConductanceLIF
from plastic.neural.connections import Connection, Conv1d, Conv2d, LinearDense, LinearDirect, LinearLateral
from plastic.neural.encoders import BernoulliEncoder, LatencyEncoder, PoissonEncoder
from plastic.neural.escape_noise import EscapeNoiseNeuron
from plastic.neural.history import RingBuffer
from plastic.neural.layers import Delay, SynapseFilter, VotingLayer
from plastic.neural.neurons import IF, LIF, AdaptiveLIF, SpikingNeuron
from plastic.neural.synapses import DeltaCurrent, ExponentialCurrent, SpikeFilterCurrent, Synapse
from plastic.neural.updater import Updater

__all__ = [
    "IF",
    "LIF",
    "AdEx",
    "AdaptiveLIF",
    "BernoulliEncoder",
    "Cell",
    "Competition",
    "ConductanceLIF",
    "Connection",
    "Conv1d",
    "Conv2d",
    "Delay",
    "DeltaCurrent",
    "EscapeNoiseNeuron",
    "ExponentialCurrent",
    "LatencyEncoder",
    "LinearDense",
    "LinearDirect",
    "LinearLateral",
    "MaxRateClassifier",
    "PoissonEncoder",
    "RingBuffer",
    "Serial",
    "SpikeFilterCurrent",
    "SpikingNeuron",
    "Synapse",
    "SynapseFilter",
    "Updater",
    "VotingLayer",
    "WinnerTakeAll",
]
