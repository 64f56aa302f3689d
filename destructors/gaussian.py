"""A single Gaussian with a shrunk covariance, as one exact affine layer.

``N(x; mu, Sigma)`` is the density of the affine map ``z = (x - mu) @ W.T``
with ``W = L^{-1}`` for the Cholesky factor ``Sigma = L L^T``: ``z`` is
standard normal and ``log|det W| = -sum(log diag(L))``. With few rows in
many dimensions the sample covariance is noisy (singular below ``n = d``),
and its held-out likelihood falls far below what the data allow; shrinking
the correlation matrix toward the identity (by Ledoit and Wolf's estimate
of the best shrinkage, or the oracle approximating shrinkage) gives a
Gaussian that generalizes. It is the floor a flexible model should never fall below
on small data.
"""

import numpy as np
from scipy.linalg import cholesky, solve_triangular
from sklearn.covariance import ledoit_wolf, oas

from ._compat import StrOptions
from .registry import register_layer
from .rotation import _LinearDestructor


@register_layer("gaussian", "layer")
class GaussianDestructor(_LinearDestructor):
    """Whiten by a fitted Gaussian: the exact density of one multivariate normal.

    The layer is ``z = (x - mean_) @ matrix_.T`` with ``matrix_ = L^{-1}``
    for the Cholesky factor ``L`` of ``covariance_``, so
    :meth:`score_samples` is ``log N(x; mean_, covariance_)``. Its
    covariance is shrunk toward ``trace / d`` times the identity by default,
    the estimate to use with few rows in many dimensions.

    Parameters
    ----------
    covariance : {"ledoit-wolf", "oas", "empirical"}, default="ledoit-wolf"
        The estimate of the correlation matrix of the standardized features:
        Ledoit-Wolf or OAS shrinkage toward the identity
        (:func:`sklearn.covariance.ledoit_wolf`, :func:`~sklearn.covariance.oas`),
        or the maximum-likelihood (biased) sample correlation, which needs
        full rank. The variances are the sample variances in every case.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
        The training mean.
    covariance_ : ndarray of shape (n_features, n_features)
        The fitted covariance.
    shrinkage_ : float
        The weight of the identity in the shrunk correlation matrix (0 for
        ``"empirical"``).
    matrix_ : ndarray of shape (n_features, n_features)
        ``L^{-1}``, lower triangular.
    log_det_ : float
        ``log|det matrix_| = -0.5 * log det covariance_``.
    n_features_in_ : int
        Number of features seen during fit.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import multivariate_normal
    >>> from destructors import GaussianDestructor
    >>> X = np.random.default_rng(0).normal(size=(40, 10))
    >>> X[:, 1:] += X[:, :1]  # correlated features, 40 rows in 10-D
    >>> g = GaussianDestructor().fit(X)
    >>> 0.0 < g.shrinkage_ < 1.0
    True
    >>> ref = multivariate_normal(g.mean_, g.covariance_).logpdf(X)
    >>> bool(np.allclose(g.score_samples(X), ref))
    True
    """

    _parameter_constraints: dict = {
        "covariance": [StrOptions({"ledoit-wolf", "oas", "empirical"})],
    }

    def __init__(self, covariance="ledoit-wolf"):
        self.covariance = covariance

    def _fit(self, X):
        mean = X.mean(axis=0)
        with np.errstate(over="ignore", invalid="ignore"):
            centred = X - mean
            scale = np.sqrt(np.mean(centred * centred, axis=0))
        if not np.all(np.isfinite(scale)):
            raise ValueError(
                "GaussianDestructor: the variance of the training data overflows "
                "float64; rescale the data."
            )
        # Shrink the correlation matrix, not the covariance: shrinking toward
        # the mean variance times the identity would let the feature of the
        # largest scale set the target for all, so the fit would depend on
        # the units of the features. A constant feature keeps scale 0 and is
        # refused below.
        unit = np.where(scale > 0, scale, 1.0)
        standardized = centred / unit
        if self.covariance == "empirical":
            corr, shrinkage = standardized.T @ standardized / X.shape[0], 0.0
        else:
            estimate = ledoit_wolf if self.covariance == "ledoit-wolf" else oas
            corr, shrinkage = estimate(standardized, assume_centered=True)
        d = X.shape[1]
        corr = np.asarray(corr, dtype=np.float64).reshape(d, d)
        cov = corr * unit[:, None] * unit[None, :]
        try:
            L_corr = cholesky(corr, lower=True)
        except np.linalg.LinAlgError:
            L_corr = None
        if L_corr is None or np.min(scale) == 0 or np.min(np.diag(L_corr)) ** 2 <= 1e-12:
            raise ValueError(
                f"GaussianDestructor(covariance={self.covariance!r}) needs a full-rank "
                "covariance, and the training data lie in a lower-dimensional subspace "
                "(or a feature is constant); use covariance='ledoit-wolf', or drop the "
                "redundant or constant features."
            )
        self.mean_ = mean
        self.covariance_ = cov
        self.shrinkage_ = float(shrinkage)
        L = L_corr * unit[:, None]  # the Cholesky factor of cov = D corr D
        inverse = solve_triangular(L, np.eye(d), lower=True)
        return self._set_matrix(inverse, mean, L)

    def _n_parameters(self):
        # A mean and a symmetric covariance, as a one-component
        # GaussianMixture counts them.
        d = self.n_features_in_
        return d + d * (d + 1) // 2
