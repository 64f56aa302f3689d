"""Marginal Gaussianization: each feature through its own monotone map to N(0, 1)."""

import numbers
import warnings

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import ndtri
from sklearn.base import OneToOneFeatureMixin
from sklearn.utils import check_random_state

from ._compat import Interval, StrOptions
from ._kernels import bucket_table, piecewise_linear
from .base import BaseDestructor

# Gauss-Hermite rule (probabilists' weights, normalised) for smoothing the
# empirical CDF with a Gaussian kernel: E[F_n(x - h e)], e ~ N(0, 1).
_GH_NODES, _GH_WEIGHTS = hermegauss(24)
_GH_WEIGHTS = _GH_WEIGHTS / _GH_WEIGHTS.sum()


def _silverman_scale(x_sorted):
    """Robust spread for Silverman's rule: min(std, IQR / 1.349), or std."""
    std = x_sorted.std()
    q1, q3 = np.quantile(x_sorted, [0.25, 0.75])
    return min(std, (q3 - q1) / 1.349) if q3 > q1 else std


def gaussian_knots(x_sorted, n_knots, smoothing=0.0):
    """Knots of a monotone map pushing one sorted sample toward N(0, 1).

    The knot abscissae are sample quantiles at ``n_knots`` levels spread
    evenly over ``[0.5/n, 1 - 0.5/n]`` (so the end knots are the sample
    minimum and maximum); runs of tied abscissae (discrete data) are merged
    into one knot. The ordinates are normal quantiles ``Phi^{-1}(F(x_k))`` of
    the CDF estimate ``F``: the empirical CDF interpolated through the
    plotting positions ``(i + 0.5) / n``, convolved with a Gaussian kernel of
    bandwidth ``smoothing`` times Silverman's rule (a kernel-smoothed CDF; no
    convolution when ``smoothing == 0``, tied knots then get the mean of
    their levels, as QuantileTransformer averages its two interpolations).

    Upper-tail ordinates come from the smoothed survival function, so no
    level rounds to a CDF of exactly 1 and the inverse stays exact near the
    extremes: the map works in Gaussian space, never in a uniform one.

    Parameters
    ----------
    x_sorted : ndarray of shape (n,)
        Sorted finite sample, ``n >= 2``.
    n_knots : int
        Number of quantile levels (at most ``n`` are used).
    smoothing : float, default=0.0
        Kernel bandwidth as a multiple of Silverman's rule of thumb.

    Returns
    -------
    xk, zk : ndarray of shape (m,)
        Strictly increasing knots, ``m >= 2``; for a constant sample ``c``,
        ``xk = [c - 1, c + 1]`` and ``zk = [-1, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors.marginal import gaussian_knots
    >>> x = np.sort(np.random.default_rng(0).normal(size=1000))
    >>> xk, zk = gaussian_knots(x, 21, smoothing=0.3)
    >>> bool(np.all(np.diff(xk) > 0) and np.all(np.diff(zk) > 0))
    True
    >>> float(gaussian_knots(x, 21)[1][10])  # the median level maps to 0
    0.0
    """
    n = x_sorted.shape[0]
    m = max(2, min(int(n_knots), n))
    levels = np.linspace(0.5 / n, 1.0 - 0.5 / n, m)
    positions = (np.arange(n) + 0.5) / n
    xk = np.interp(levels, positions, x_sorted)
    starts = np.flatnonzero(np.r_[True, np.diff(xk) > 0])
    if starts.size < 2:
        c = x_sorted[0]
        return np.array([c - 1.0, c + 1.0]), np.array([-1.0, 1.0])
    h = smoothing * 0.9 * _silverman_scale(x_sorted) * n**-0.2
    if h > 0:
        xk = xk[starts]
        shifted = xk[:, None] - h * _GH_NODES
        cdf = np.interp(shifted, x_sorted, positions, left=0.0, right=1.0) @ _GH_WEIGHTS
        sf = np.interp(shifted, x_sorted, 1.0 - positions, left=1.0, right=0.0) @ _GH_WEIGHTS
        tiny = np.finfo(np.float64).tiny
        zk = np.where(cdf < 0.5, ndtri(np.maximum(cdf, tiny)), -ndtri(np.maximum(sf, tiny)))
        keep = np.r_[True, np.diff(zk) > 0]
        if np.count_nonzero(keep) >= 2:
            return xk[keep], zk[keep]
        return gaussian_knots(x_sorted, n_knots, 0.0)
    zk = np.add.reduceat(ndtri(levels), starts) / np.diff(np.r_[starts, m])
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
    smoothing : float, default=0.3
        Bandwidth of the Gaussian kernel that smooths the empirical CDF, as a
        multiple of Silverman's rule-of-thumb bandwidth; ``0`` uses the
        empirical CDF itself. Smoothing trades bias for variance: it lowers
        the held-out cost of each layer so more layers help.
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
        "smoothing": [Interval(numbers.Real, 0, None, closed="left")],
        "subsample": [Interval(numbers.Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, n_knots="auto", smoothing=0.3, subsample=200_000, random_state=None):
        self.n_knots = n_knots
        self.smoothing = smoothing
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
        knots = [
            gaussian_knots(X_sorted[:, j], n_knots, self.smoothing)
            for j in range(X.shape[1])
        ]
        self._warn_degenerate(X_sorted, knots)
        (self.knots_x_, self.knots_z_, self._slope, self._log_slope, self.n_knots_) = (
            _pack_knots(knots)
        )
        self._inv_slope = 1.0 / self._slope
        self._forward_table = bucket_table(self.knots_x_, self.n_knots_)
        self._inverse_table = bucket_table(self.knots_z_, self.n_knots_)
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
            X, self.knots_x_, self.knots_z_, self._slope, self._log_slope, self.n_knots_,
            self._forward_table,
        )

    def _inverse(self, Z):
        return piecewise_linear(
            Z, self.knots_z_, self.knots_x_, self._inv_slope, -self._log_slope, self.n_knots_,
            self._inverse_table,
        )
