"""Marginal Gaussianization: each feature through its own monotone map to N(0, 1)."""

import numbers
import warnings

import numpy as np
from scipy.special import ndtri
from sklearn.base import OneToOneFeatureMixin
from sklearn.utils import check_random_state

from ._compat import Interval, StrOptions
from ._kernels import piecewise_linear
from .base import BaseDestructor


def gaussian_knots(x_sorted, n_knots):
    """Knots of a monotone map pushing one sorted sample toward N(0, 1).

    The knot abscissae are sample quantiles at ``n_knots`` levels spread
    evenly over ``[0.5/n, 1 - 0.5/n]`` (so the end knots are the sample
    minimum and maximum) and the ordinates are the normal quantiles of those
    levels. Runs of tied abscissae (discrete data) are merged into one knot
    whose ordinate is the mean of theirs, as QuantileTransformer averages its
    two interpolations, so the map stays strictly increasing.

    Working in Gaussian space, never in a uniform one, keeps the inverse
    exact near the extremes: no value rounds to a CDF of exactly 1.

    Parameters
    ----------
    x_sorted : ndarray of shape (n,)
        Sorted finite sample, ``n >= 2``.
    n_knots : int
        Number of quantile levels (at most ``n`` are used).

    Returns
    -------
    xk, zk : ndarray of shape (m,)
        Strictly increasing knots, ``m >= 2``; ``m == 2`` with a slope of
        one for a constant sample.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors.marginal import gaussian_knots
    >>> xk, zk = gaussian_knots(np.sort(np.random.default_rng(0).normal(size=1000)), 21)
    >>> bool(np.all(np.diff(xk) > 0) and np.all(np.diff(zk) > 0))
    True
    >>> float(zk[10])  # the median level maps to 0
    0.0
    """
    n = x_sorted.shape[0]
    m = max(2, min(int(n_knots), n))
    levels = np.linspace(0.5 / n, 1.0 - 0.5 / n, m)
    positions = (np.arange(n) + 0.5) / n
    xk = np.interp(levels, positions, x_sorted)
    zk = ndtri(levels)
    # Merge ties: keep the first of each run, average its ordinates.
    starts = np.flatnonzero(np.r_[True, np.diff(xk) > 0])
    if starts.size < 2:
        c = x_sorted[0]
        return np.array([c - 1.0, c + 1.0]), np.array([-1.0, 1.0])
    zk = np.add.reduceat(zk, starts) / np.diff(np.r_[starts, m])
    return xk[starts], zk


def _pack_knots(knots):
    """Stack ragged per-feature knots into padded arrays the kernel reads."""
    counts = np.array([xk.size for xk, _ in knots], dtype=np.int64)
    width = int(counts.max())
    xp = np.full((len(knots), width), np.nan)
    fp = np.full((len(knots), width), np.nan)
    for j, (xk, zk) in enumerate(knots):
        xp[j, : xk.size] = xk
        fp[j, : zk.size] = zk
    with np.errstate(invalid="ignore"):
        slope = np.diff(fp, axis=1) / np.diff(xp, axis=1)
        log_slope = np.log(slope)
    return xp, fp, slope, log_slope, counts


class MarginalGaussianizer(OneToOneFeatureMixin, BaseDestructor):
    """Push each feature through its estimated CDF and the normal quantile.

    Each feature ``j`` gets a strictly increasing map
    ``z = Phi^{-1}(F_j(x))`` represented in Gaussian space as a piecewise
    linear function through ``n_knots`` quantile knots (see
    :func:`gaussian_knots`). Beyond the outermost knots the end slopes
    continue, i.e. the tails are modelled as Gaussian tails, so every finite
    ``x`` maps to a finite ``z`` and back: the map is a bijection of the real
    line, never clipped. The log-derivative is that of the applied map, so
    the implied density ``N(z(x)) |z'(x)|`` integrates to exactly one.

    Parameters
    ----------
    n_knots : int or "auto", default="auto"
        Resolution of each marginal map: the number of quantile knots. Fewer
        knots give a smoother, more regularized CDF. ``"auto"`` uses
        ``clip(sqrt(n_samples), 10, 1000)``.
    subsample : int, default=200_000
        Maximum number of rows used to estimate the quantiles; larger inputs
        are subsampled without replacement (as in ``QuantileTransformer``).
    random_state : int, RandomState instance or None, default=None
        Seed for the subsample.

    Attributes
    ----------
    knots_x_, knots_z_ : ndarray of shape (n_features, max_knots)
        Knots of each feature's map, NaN-padded past ``n_knots_[j]``.
    n_knots_ : ndarray of shape (n_features,)
        Number of knots per feature after merging ties.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    sklearn.preprocessing.QuantileTransformer : Clips the tails and has no
        derivative; this class has both tails and exact log-derivatives.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors import MarginalGaussianizer
    >>> X = np.random.default_rng(0).exponential(size=(2000, 2))
    >>> mg = MarginalGaussianizer().fit(X)
    >>> Z = mg.transform(X)
    >>> bool(abs(Z.mean()) < 0.05 and abs(Z.std() - 1) < 0.05)
    True
    >>> bool(np.allclose(mg.inverse_transform(mg.transform([[50.0, -3.0]])),
    ...                  [[50.0, -3.0]]))  # far outside the data: still exact
    True
    """

    _parameter_constraints: dict = {
        "n_knots": [Interval(numbers.Integral, 2, None, closed="left"), StrOptions({"auto"})],
        "subsample": [Interval(numbers.Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, n_knots="auto", subsample=200_000, random_state=None):
        self.n_knots = n_knots
        self.subsample = subsample
        self.random_state = random_state

    def _fit(self, X):
        n = X.shape[0]
        if n > self.subsample:
            rng = check_random_state(self.random_state)
            X = X[rng.choice(n, self.subsample, replace=False)]
            n = self.subsample
        if self.n_knots == "auto":
            n_knots = int(np.clip(np.sqrt(n), 10, 1000))
        else:
            n_knots = self.n_knots
        X_sorted = np.sort(X, axis=0)
        knots = [gaussian_knots(X_sorted[:, j], n_knots) for j in range(X.shape[1])]
        self._warn_degenerate(X_sorted, knots)
        (self.knots_x_, self.knots_z_, self._slope, self._log_slope, self.n_knots_) = (
            _pack_knots(knots)
        )
        self._inv_slope = 1.0 / self._slope
        return self

    def _warn_degenerate(self, X_sorted, knots):
        n_unique = 1 + np.count_nonzero(np.diff(X_sorted, axis=0) > 0, axis=0)
        constant = np.flatnonzero(n_unique == 1)
        if constant.size:
            warnings.warn(
                f"Features {constant.tolist()} are constant; they are shifted to "
                "zero with unit slope. A constant has no density.",
                UserWarning,
                stacklevel=4,
            )
        discrete = np.flatnonzero((n_unique > 1) & (n_unique <= 0.1 * X_sorted.shape[0]))
        if discrete.size:
            warnings.warn(
                f"Features {discrete.tolist()} take few distinct values "
                f"({n_unique[discrete].tolist()}); a density of discrete data is "
                "not meaningful. Consider dequantizing (adding uniform noise).",
                UserWarning,
                stacklevel=4,
            )

    def _forward(self, X):
        return piecewise_linear(
            X, self.knots_x_, self.knots_z_, self._slope, self._log_slope, self.n_knots_
        )

    def _inverse(self, Z):
        return piecewise_linear(
            Z, self.knots_z_, self.knots_x_, self._inv_slope, -self._log_slope, self.n_knots_
        )
