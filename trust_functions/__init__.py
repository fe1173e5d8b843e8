"""Trust functions: one module each over ``base.py``; importing this package registers them for the CLI.

``ROWS`` lists the rows ``compare`` can run, by each class's declared ``row`` key, in the table's order; a new
trust function joins the table by declaring ``row`` and ``title`` and being added here.
"""

from trust_functions.base import TrustFunction
from trust_functions.confidence import InternalConfidence
from trust_functions.entropy import Entropy
from trust_functions.icl import ICLConfidence
from trust_functions.knn import KNN
from trust_functions.mahalanobis import Mahalanobis, RelativeMahalanobis
from trust_functions.ntf import NeuralTrustFunction, StackedNTF
from trust_functions.probe import LinearProbe
from trust_functions.ptrue import PTrue
from trust_functions.reward_model import RewardModel
from trust_functions.sampling import SamplingAgreement
from trust_functions.simple import GroundTruth, Naive, Random

ROWS: dict[str, type[TrustFunction]] = {cls.row: cls for cls in (
    Naive, Random, Entropy, InternalConfidence, ICLConfidence, PTrue, SamplingAgreement, RewardModel, Mahalanobis,
    RelativeMahalanobis, KNN, LinearProbe, NeuralTrustFunction, StackedNTF, GroundTruth)}

__all__ = ["KNN", "ROWS", "Entropy", "GroundTruth", "ICLConfidence", "InternalConfidence", "LinearProbe",
           "Mahalanobis", "Naive", "NeuralTrustFunction", "PTrue", "Random", "RelativeMahalanobis", "RewardModel",
           "SamplingAgreement", "StackedNTF", "TrustFunction"]
