"""Density destructors: exact, fast, non-neural density models.

A destructor is an invertible map from data to a standard normal, built from
marginal Gaussianizations and rotations fitted greedily. It transforms,
inverts, samples and gives exact log-likelihoods.
"""

from .base import BaseDestructor
from .composite import CompositeDestructor
from .deep import RBIG, DeepDestructor
from .information import entropy, kl_divergence, mutual_information, total_correlation
from .marginal import MarginalGaussianizer
from .mixture import GaussianMixtureDestructor
from .rotation import GreedyRotation, ICARotation, PCARotation, RandomRotation

__all__ = [
    "RBIG",
    "BaseDestructor",
    "CompositeDestructor",
    "DeepDestructor",
    "GaussianMixtureDestructor",
    "GreedyRotation",
    "ICARotation",
    "MarginalGaussianizer",
    "PCARotation",
    "RandomRotation",
    "entropy",
    "kl_divergence",
    "mutual_information",
    "total_correlation",
]
__version__ = "0.1.0"
