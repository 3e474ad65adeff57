"""Trainers: the plasticity rules as modules over a :class:`~plastic.neural.cell.Cell`.

The public classes of the submodules are exported here
(``from plastic.learn import STDP, TripletSTDP, KernelSTDP``).
"""

from plastic.learn.all_pairs import AllPairsKernelSTDP, AllPairsKernelSTDPParams
from plastic.learn.base import CellState, GradModeWarning, IndependentCellTrainer, Unit
from plastic.learn.clopath import ClopathSTDP, ClopathSTDPParams
from plastic.learn.homeostasis import Homeostasis, HomeostasisParams
from plastic.learn.integer import IntegerSTDP, IntegerSTDPParams
from plastic.learn.kernel_stdp import (
    DelayAdjustedKernelSTDP,
    DelayAdjustedKernelSTDPD,
    DelayAdjustedSTDP,
    DelayAdjustedSTDPD,
    KernelSTDP,
)
from plastic.learn.learners import LearnerParams, MSTDPETLearner, MSTDPLearner, RewardLearnerParams, STDPLearner
from plastic.learn.online import OnlineSTDP, OnlineSTDPParams
from plastic.learn.reward import MSTDP, MSTDPET, MSTDPETParams, MSTDPParams, RewardWindowTrainer
from plastic.learn.rmax import Rmax, RmaxParams
from plastic.learn.stdp import STDP, STDPParams
from plastic.learn.triplet import TripletSTDP, TripletSTDPParams
from plastic.learn.window import WindowRuleParams, WindowTrainer

__all__ = [
    "MSTDP",
    "MSTDPET",
    "STDP",
    "AllPairsKernelSTDP",
    "AllPairsKernelSTDPParams",
    "CellState",
    "ClopathSTDP",
    "ClopathSTDPParams",
    "DelayAdjustedKernelSTDP",
    "DelayAdjustedKernelSTDPD",
    "DelayAdjustedSTDP",
    "DelayAdjustedSTDPD",
    "GradModeWarning",
    "Homeostasis",
    "HomeostasisParams",
    "IndependentCellTrainer",
    "IntegerSTDP",
    "IntegerSTDPParams",
    "KernelSTDP",
    "LearnerParams",
    "MSTDPETLearner",
    "MSTDPETParams",
    "MSTDPLearner",
    "MSTDPParams",
    "OnlineSTDP",
    "OnlineSTDPParams",
    "RewardLearnerParams",
    "RewardWindowTrainer",
    "Rmax",
    "RmaxParams",
    "STDPLearner",
    "STDPParams",
    "TripletSTDP",
    "TripletSTDPParams",
    "Unit",
    "WindowRuleParams",
    "WindowTrainer",
]
