"""Density destructors: exact, fast, non-neural density models.

A destructor is an invertible map from data to a standard normal, built from
marginal Gaussianizations and rotations fitted greedily. It transforms,
inverts, samples and gives exact log-likelihoods.

The public names below are imported on first use, so ``import destructors``
(and ``destructors --help``) stays fast and imports neither scikit-learn nor
Numba until an estimator is needed.
"""

import importlib

# Public name -> the module that defines it.
_EXPORTS = {
    "AutoDestructor": "auto",
    "BaseDestructor": "base",
    "Boundary": "boundary",
    "CompositeDestructor": "composite",
    "DeepDestructor": "deep",
    "DestructorOutlierDetector": "outlier",
    "RBIG": "deep",
    "GaussianDestructor": "gaussian",
    "GaussianMixtureDestructor": "mixture",
    "MarginalGaussianizer": "marginal",
    "GreedyRotation": "rotation",
    "KernelDensityDestructor": "mixture",
    "ICARotation": "rotation",
    "LearnedRotation": "learned",
    "PCARotation": "rotation",
    "RandomRotation": "rotation",
    "ScalerDestructor": "preprocessing",
    "make_destructor_pipeline": "preprocessing",
    "entropy": "information",
    "kl_divergence": "information",
    "mutual_information": "information",
    "total_correlation": "information",
}
# Modules whose classes register themselves as layers (see destructors.registry).
LAYER_MODULES = (
    "marginal", "rotation", "learned", "composite", "deep", "mixture", "gaussian",
    "preprocessing", "boundary", "auto",
)

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'destructors' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
