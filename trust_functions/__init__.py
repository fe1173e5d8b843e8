"""Trust functions: one module each over ``base.py``; importing this package registers them for the CLI."""

from trust_functions.base import TrustFunction
from trust_functions.confidence import InternalConfidence
from trust_functions.entropy import Entropy
from trust_functions.icl import ICLConfidence
from trust_functions.ntf import NeuralTrustFunction
from trust_functions.probe import LinearProbe
from trust_functions.reward_model import RewardModel
from trust_functions.simple import GroundTruth, Naive, Random

__all__ = ["Entropy", "GroundTruth", "ICLConfidence", "InternalConfidence", "LinearProbe", "Naive", "NeuralTrustFunction",
           "Random", "RewardModel", "TrustFunction"]
