"""plastic: synaptic plasticity for spiking neural networks in PyTorch.

The pure math lives in :mod:`plastic.functional`; stateful modules in
:mod:`plastic.neural`; monitors and reducers in :mod:`plastic.observe`;
trainers in :mod:`plastic.learn`; property tests for users in
:mod:`plastic.testing`. The names users need most are exported here.
"""

from plastic.functional.bounding import Bounding
from plastic.learn.all_pairs import AllPairsKernelSTDP
from plastic.learn.base import CellState, GradModeWarning, IndependentCellTrainer, Unit
from plastic.learn.clopath import ClopathSTDP
from plastic.learn.homeostasis import Homeostasis
from plastic.learn.inhibitory import InhibitorySTDP
from plastic.learn.integer import IntegerSTDP
from plastic.learn.kernel_stdp import (
    DelayAdjustedKernelSTDP,
    DelayAdjustedKernelSTDPD,
    DelayAdjustedSTDP,
    DelayAdjustedSTDPD,
    KernelSTDP,
)
from plastic.learn.learners import MSTDPETLearner, MSTDPLearner, STDPLearner
from plastic.learn.online import OnlineSTDP
from plastic.learn.rate_rules import BCM, Oja
from plastic.learn.reward import MSTDP, MSTDPET
from plastic.learn.rmax import Rmax
from plastic.learn.stdp import STDP
from plastic.learn.triplet import TripletSTDP
from plastic.learn.window import WindowTrainer
from plastic.neural.adex import AdEx
from plastic.neural.cell import Cell, Serial
from plastic.neural.classifiers import MaxRateClassifier
from plastic.neural.competition import Competition, WinnerTakeAll
from plastic.neural.conductance_lif import ConductanceLIF
from plastic.neural.connections import Conv1d, Conv2d, LinearDense, LinearDirect, LinearLateral
from plastic.neural.encoders import BernoulliEncoder, LatencyEncoder, PoissonEncoder
from plastic.neural.escape_noise import EscapeNoiseNeuron
from plastic.neural.fused_step import fused_step_available, fused_step_refusal, set_fused_step
from plastic.neural.layers import Delay, SynapseFilter, VotingLayer
from plastic.neural.neurons import IF, LIF, AdaptiveLIF
from plastic.neural.short_term import TsodyksMarkramCurrent
from plastic.neural.synapses import DeltaCurrent, ExponentialCurrent, SpikeFilterCurrent
from plastic.neural.updater import Updater
from plastic.observe.monitors import Monitor, MonitorPool
from plastic.observe.reducers import (
    CumulativeAverageReducer,
    CumulativeTraceReducer,
    EMAReducer,
    EventTimeReducer,
    NearestTraceReducer,
    PassthroughReducer,
    WindowReducer,
)

__version__ = "0.1.0"

__all__ = [
    "BCM",
    "IF",
    "LIF",
    "MSTDP",
    "MSTDPET",
    "STDP",
    "AdEx",
    "AdaptiveLIF",
    "AllPairsKernelSTDP",
    "BernoulliEncoder",
    "Bounding",
    "Cell",
    "CellState",
    "ClopathSTDP",
    "Competition",
    "ConductanceLIF",
    "Conv1d",
    "Conv2d",
    "CumulativeAverageReducer",
    "CumulativeTraceReducer",
    "Delay",
    "DelayAdjustedKernelSTDP",
    "DelayAdjustedKernelSTDPD",
    "DelayAdjustedSTDP",
    "DelayAdjustedSTDPD",
    "DeltaCurrent",
    "EMAReducer",
    "EscapeNoiseNeuron",
    "EventTimeReducer",
    "ExponentialCurrent",
    "GradModeWarning",
    "Homeostasis",
    "IndependentCellTrainer",
    "InhibitorySTDP",
    "IntegerSTDP",
    "KernelSTDP",
    "LatencyEncoder",
    "LinearDense",
    "LinearDirect",
    "LinearLateral",
    "MSTDPETLearner",
    "MSTDPLearner",
    "MaxRateClassifier",
    "Monitor",
    "MonitorPool",
    "NearestTraceReducer",
    "Oja",
    "OnlineSTDP",
    "PassthroughReducer",
    "PoissonEncoder",
    "Rmax",
    "STDPLearner",
    "Serial",
    "SpikeFilterCurrent",
    "SynapseFilter",
    "TripletSTDP",
    "TsodyksMarkramCurrent",
    "Unit",
    "Updater",
    "VotingLayer",
    "WindowReducer",
    "WindowTrainer",
    "WinnerTakeAll",
    "fused_step_available",
    "fused_step_refusal",
    "set_fused_step",
]  # fmt: skip
