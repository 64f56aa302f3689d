"""Marginal Gaussianization: each feature through its own monotone map to N(0, 1)."""

import numbers
import warnings

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import ndtri
from sklearn.base import OneToOneFeatureMixin

from ._compat import Interval, StrOptions
from ._fitkernels import KNOT_TIE_REL, interp_pair, knot_cdfs
from ._fused import MarginalStep
from ._kernels import bucket_table, piecewise_linear
from ._sorting import sort_rows
from ._stats import Histograms, feature_histograms
from .base import BaseDestructor, FeatureWarning, check_random_state
from .registry import register_layer

# At most this many passes to refine a streamed histogram (atoms, heavy tails).
_MAX_REFINE = 2

# Gauss-Hermite rule (probabilists' weights, normalised) for smoothing the
# empirical CDF with a Gaussian kernel: E[F_n(x - h e)], e ~ N(0, 1).
_GH_NODES, _GH_WEIGHTS = hermegauss(24)
_GH_WEIGHTS = _GH_WEIGHTS / _GH_WEIGHTS.sum()


def _silverman_spread(std, q1, q3):
    """Robust spread for Silverman's rule: min(std, IQR / 1.349), or std."""
    return min(std, (q3 - q1) / 1.349) if q3 > q1 else std


def _sorted_quantile(x_sorted, q):
    """``np.quantile(x_sorted, q)`` (its default, linear method) of sorted data.

    The same virtual index and the same two-sided interpolation as NumPy's,
    so the same number, without NumPy's partition of an already sorted copy.
    """
    n = x_sorted.shape[0]
    index = n * q + (1.0 + q * -1.0) - 1.0  # NumPy's index for alpha = beta = 1
    below = min(max(int(np.floor(index)), 0), n - 1)
    above = min(below + 1, n - 1)
    t = index - below
    a, b = x_sorted[below], x_sorted[above]
    diff = b - a
    return b - diff * (1.0 - t) if t >= 0.5 else a + diff * t


def _silverman_scale(x_sorted):
    """Silverman's spread of a sorted sample."""
    q1, q3 = _sorted_quantile(x_sorted, 0.25), _sorted_quantile(x_sorted, 0.75)
    return _silverman_spread(x_sorted.std(), q1, q3)


def _knots_from_cdf(x, cdf, sf, n, n_knots, bandwidth):
    """Knots of the map ``Phi^{-1}(F)`` from an empirical CDF on a grid.

    ``F`` is piecewise linear through ``(x, cdf)`` (``x`` non-decreasing,
    ``cdf`` non-decreasing inside ``(0, 1)``), and ``sf`` holds ``1 - cdf``
    computed without cancellation. The sorted-sample path passes the sample
    and its plotting positions; the histogram path passes bin edges and
    cumulative counts. ``n`` sets the quantile levels (``0.5 / n`` to
    ``1 - 0.5 / n``) and ``bandwidth`` the Gaussian kernel (0: none).
    """
    m = max(2, min(int(n_knots), n))
    levels = np.linspace(0.5 / n, 1.0 - 0.5 / n, m)
    xk = np.interp(levels, cdf, x)
    # Runs of knots equal up to rounding are one knot (see KNOT_TIE_REL).
    gaps = np.diff(xk) > KNOT_TIE_REL * np.maximum(np.abs(xk[1:]), np.abs(xk[:-1]))
    starts = np.flatnonzero(np.r_[True, gaps])
    if starts.size < 2:
        c = x[0]
        return np.array([c - 1.0, c + 1.0]), np.array([-1.0, 1.0])
    if bandwidth > 0:
        xk = xk[starts]
        shifted = xk[:, None] - bandwidth * _GH_NODES
        cdf_s, sf_s = interp_pair(shifted, x, cdf, sf, (0.0, 1.0), (1.0, 0.0))
        cdf_k, sf_k = cdf_s @ _GH_WEIGHTS, sf_s @ _GH_WEIGHTS
        tiny = np.finfo(np.float64).tiny
        zk = np.where(
            cdf_k < 0.5, ndtri(np.maximum(cdf_k, tiny)), -ndtri(np.maximum(sf_k, tiny))
        )
        keep = np.r_[True, np.diff(zk) > 0]
        if np.count_nonzero(keep) >= 2:
            return xk[keep], zk[keep]
        return _knots_from_cdf(x, cdf, sf, n, n_knots, 0.0)
    zk = np.add.reduceat(ndtri(levels), starts) / np.diff(np.r_[starts, m])
    return xk[starts], zk


def gaussian_knots(x_sorted, n_knots, smoothing=0.0):
    """Knots of a monotone map pushing one sorted sample toward N(0, 1).

    The knot abscissae are sample quantiles at ``n_knots`` levels spread evenly over ``[0.5/n,
    1 - 0.5/n]`` (so the end knots are the sample minimum and maximum); runs of abscissae tied
    up to rounding (16 float64 epsilons, relative; discrete data) are merged into one knot. The
    ordinates are normal quantiles ``Phi^{-1}(F(x_k))`` of the CDF estimate ``F``: the
    empirical CDF interpolated through the plotting positions ``(i + 0.5) / n``, convolved with
    a Gaussian kernel of bandwidth ``smoothing`` times Silverman's rule (a kernel-smoothed CDF;
    no convolution when ``smoothing == 0``, tied knots then get the mean of their levels, as
    QuantileTransformer averages its two interpolations).

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

    See Also
    --------
    histogram_knots : The same knots from a histogram, for data too large
        to sort.

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
    positions = (np.arange(n) + 0.5) / n
    bandwidth = smoothing * 0.9 * _silverman_scale(x_sorted) * n**-0.2 if smoothing > 0 else 0.0
    return _knots_from_cdf(x_sorted, positions, 1.0 - positions, n, n_knots, bandwidth)


def _sample_knots(XT, n_knots, smoothing):
    """:func:`gaussian_knots` of every row of ``XT`` (each a sorted sample), and distinct counts.

    The same numbers as ``gaussian_knots(XT[j], n_knots, smoothing)`` for
    each ``j``: the searches run in one compiled pass over all features
    (:func:`destructors._fitkernels.knot_cdfs`, one feature a thread), and
    the rest is the same NumPy arithmetic on the same arrays.
    """
    d, n = XT.shape
    m = max(2, min(int(n_knots), n))
    levels = np.linspace(0.5 / n, 1.0 - 0.5 / n, m)
    bandwidth = np.zeros(d)
    if smoothing > 0:
        std = XT.std(axis=1)
        for j in range(d):
            q1, q3 = _sorted_quantile(XT[j], 0.25), _sorted_quantile(XT[j], 0.75)
            bandwidth[j] = smoothing * 0.9 * _silverman_spread(std[j], q1, q3) * n**-0.2
    smooth = bandwidth > 0
    xk, starts, counts, cdf_s, sf_s, n_unique = knot_cdfs(
        XT, levels, bandwidth[:, None] * _GH_NODES, smooth)
    tiny = np.finfo(np.float64).tiny
    knots = []
    for j in range(d):
        c = counts[j]
        if c < 2:
            knots.append((np.array([XT[j, 0] - 1.0, XT[j, 0] + 1.0]), np.array([-1.0, 1.0])))
            continue
        if smooth[j]:
            cdf_k, sf_k = cdf_s[j, :c] @ _GH_WEIGHTS, sf_s[j, :c] @ _GH_WEIGHTS
            zk = np.where(
                cdf_k < 0.5, ndtri(np.maximum(cdf_k, tiny)), -ndtri(np.maximum(sf_k, tiny))
            )
            keep = np.empty(c, dtype=bool)
            keep[0] = True
            np.greater(zk[1:], zk[:-1], out=keep[1:])  # np.r_[True, np.diff(zk) > 0]
            if np.count_nonzero(keep) >= 2:
                knots.append((xk[j, :c][keep], zk[keep]))
                continue
        first = starts[j, :c]
        zk = np.add.reduceat(ndtri(levels), first) / np.diff(np.append(first, m))
        knots.append((xk[j, :c].copy(), zk))
    return knots, n_unique


def histogram_knots(
    edges, counts, n_knots, smoothing=0.0, *, x_min=None, x_max=None, std=None,
    n_effective=None, bin_min=None, bin_max=None,
):
    """Knots of :func:`gaussian_knots` from a histogram of one feature.

    For data too large to sort (such as a Dask array): the samples of each
    bin are taken as evenly spread inside it (between its smallest and
    largest value when they are given), each at its plotting position
    ``(i + 0.5) / n`` as in :func:`gaussian_knots`, and the empirical CDF is
    linear between them, from ``0.5 / n`` at the exact sample minimum to
    ``1 - 0.5 / n`` at the maximum. With the per-bin extremes, bins of one
    or two samples (sparse tails) and bins of one tied value (atoms) give
    exactly the sorted-sample CDF. With fine bins (thousands per
    feature) the knots agree with those of the sorted sample to within a
    fraction of a bin.

    Parameters
    ----------
    edges : ndarray of shape (n_bins + 1,)
        Increasing bin edges (not necessarily equally spaced).
    counts : ndarray of shape (n_bins,)
        Number of samples in each bin ``[edges[k], edges[k + 1])``.
    n_knots : int
        Number of quantile levels.
    smoothing : float, default=0.0
        Kernel bandwidth as a multiple of Silverman's rule of thumb.
    x_min, x_max : float or None, default=None
        Exact sample minimum and maximum (they lie in the first and last
        occupied bins); ``None`` uses the edges of those bins.
    std : float or None, default=None
        Sample standard deviation for Silverman's rule; ``None`` estimates
        it from the histogram.
    n_effective : int or None, default=None
        Sample size that sets the quantile levels and the bandwidth, as
        ``n`` does in :func:`gaussian_knots` (e.g. a subsample size); ``None``
        uses the total count.
    bin_min, bin_max : ndarray of shape (n_bins,) or None, default=None
        Smallest and largest sample in each bin (any value for empty bins).

    Returns
    -------
    xk, zk : ndarray of shape (m,)
        Strictly increasing knots, ``m >= 2``.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors.marginal import gaussian_knots, histogram_knots
    >>> x = np.random.default_rng(0).normal(size=100_000)
    >>> counts, edges = np.histogram(x, bins=2**14)
    >>> xk, zk = histogram_knots(edges, counts, 101, 0.3, x_min=x.min(), x_max=x.max())
    >>> xs, zs = gaussian_knots(np.sort(x), 101, 0.3)
    >>> bool(np.max(np.abs(zk - zs)) < 1e-3)
    True
    """
    edges = np.asarray(edges, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    occupied = np.flatnonzero(counts)
    if occupied.size == 0:
        raise ValueError("histogram_knots needs a histogram with at least one sample.")
    lo = edges[occupied[0]] if x_min is None else float(x_min)
    hi = edges[occupied[-1] + 1] if x_max is None else float(x_max)
    # The sorted path puts sample i at level (i + 0.5) / n. Here the c samples
    # of a bin are taken as evenly spread inside it: its first and last sample
    # are two grid points (one for a lone sample), at the bin's extremes when
    # known, and the exact sample extremes replace the outermost points.
    c = counts[occupied]
    below = np.cumsum(c) - c
    if bin_min is not None and bin_max is not None:
        first = np.asarray(bin_min, dtype=np.float64)[occupied]
        last = np.asarray(bin_max, dtype=np.float64)[occupied]
    else:
        left, right = edges[occupied], edges[occupied + 1]
        pad = 0.5 * (right - left) / c
        first, last = left + pad, right - pad
    x = np.column_stack([first, last]).ravel()
    level = np.column_stack([below + 0.5, below + c - 0.5]).ravel()
    keep = np.column_stack([np.ones(c.size, dtype=bool), c > 1]).ravel()
    x, level = x[keep], level[keep]
    x[0], x[-1] = lo, hi
    x = np.minimum.accumulate(np.maximum.accumulate(x)[::-1])[::-1]
    cdf = level / total
    sf = (total - level) / total
    n = int(round(total)) if n_effective is None else int(min(n_effective, total))
    if smoothing > 0:
        if std is None:
            mid = 0.5 * (edges[:-1] + edges[1:])
            mean = counts @ mid / total
            std = np.sqrt(max(counts @ (mid - mean) ** 2 / total, 0.0))
        q1, q3 = np.interp([0.25, 0.75], cdf, x)
        bandwidth = smoothing * 0.9 * _silverman_spread(std, q1, q3) * n**-0.2
    else:
        bandwidth = 0.0
    return _knots_from_cdf(x, cdf, sf, n, n_knots, bandwidth)


# Quartiles of N(0, 1): the knots' interquartile range gives the feature's scale.
_Q3 = 0.6744897501960817


def damped_knots(xk, zk, damping):
    """Knots of ``(1 - damping) u + damping g``: a partial step toward N(0, 1).

    ``g`` is the map through ``(xk, zk)`` and ``u = (x - m) / s`` the feature
    standardized by the map's own median ``m = g^-1(0)`` and quartile spread
    ``s`` (both read off the knots, so a streamed fit and an in-memory fit
    damp alike). The result is again strictly increasing and piecewise
    linear, with the same abscissae.

    Parameters
    ----------
    xk, zk : ndarray of shape (m,)
        Strictly increasing knots of ``g``.
    damping : float in (0, 1]
        Fraction of the step taken; 1 returns ``zk``.

    Returns
    -------
    zk_damped : ndarray of shape (m,)
        Ordinates of the damped map.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors.marginal import damped_knots
    >>> xk = np.array([0.0, 1.0, 4.0]); zk = np.array([-1.0, 0.0, 1.0])
    >>> damped_knots(xk, zk, 1.0).tolist()
    [-1.0, 0.0, 1.0]
    >>> bool(np.all(np.diff(damped_knots(xk, zk, 0.3)) > 0))
    True
    """
    if damping == 1.0:
        return zk
    median = np.interp(0.0, zk, xk)
    lo, hi = np.interp([-_Q3, _Q3], zk, xk)
    spread = (hi - lo) / (2.0 * _Q3)
    if not spread > 0:
        spread = 0.5 * (xk[-1] - xk[0])
    return (1.0 - damping) * (xk - median) / spread + damping * zk


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


@register_layer("gaussianizer", "marginal")
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
    damping : float in (0, 1], default=1.0
        Fraction of the step toward N(0, 1) taken: each feature maps to
        ``(1 - damping) u + damping g(x)``, with ``g`` the full map and ``u``
        the feature standardized by the map's median and quartiles (see
        :func:`damped_knots`). Still piecewise linear and exact; many small
        steps (say 0.3) can generalize better than few full ones.

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
        "damping": [Interval(numbers.Real, 0, 1, closed="right")],
    }

    def __init__(self, n_knots="auto", smoothing=0.3, subsample=200_000, random_state=None,
                 damping=1.0):
        self.n_knots = n_knots
        self.smoothing = smoothing
        self.subsample = subsample
        self.random_state = random_state
        self.damping = damping

    @classmethod
    def from_knots(cls, knots, **params):
        """A fitted layer from per-feature knots, without data.

        Parameters
        ----------
        knots : list of (xk, zk) pairs
            For each feature, strictly increasing abscissae and ordinates
            (at least two each) of its piecewise-linear map in Gaussian space.
        **params : dict
            Constructor parameters; ``damping`` applies to the given knots.

        Returns
        -------
        layer : MarginalGaussianizer
            Fitted.

        Examples
        --------
        >>> import numpy as np
        >>> from destructors import MarginalGaussianizer
        >>> mg = MarginalGaussianizer.from_knots([([0.0, 2.0], [-1.0, 1.0])])
        >>> mg.transform([[1.0], [4.0]]).ravel().tolist()
        [0.0, 3.0]
        """
        checked = []
        for j, (xk, zk) in enumerate(knots):
            xk, zk = np.asarray(xk, dtype=np.float64), np.asarray(zk, dtype=np.float64)
            if (xk.ndim != 1 or xk.shape != zk.shape or xk.size < 2
                    or not (np.all(np.diff(xk) > 0) and np.all(np.diff(zk) > 0))):
                raise ValueError(
                    f"knots of feature {j} must be two strictly increasing 1-D arrays "
                    "of one length, at least 2."
                )
            checked.append((xk, zk))
        if not checked:
            raise ValueError("from_knots needs the knots of at least one feature.")
        layer = cls(**params)
        layer._validate_params()
        layer.n_features_in_ = len(checked)
        return layer._set_knots(checked)

    def _resolution(self, n):
        """Number of quantile levels for a fit on ``n`` rows."""
        if self.n_knots == "auto":
            return int(np.clip(np.sqrt(n), 10, 1000))
        return self.n_knots

    def _fit(self, X):
        n = X.shape[0]
        if n > self.subsample:
            rng = check_random_state(self.random_state)
            X = X[rng.choice(n, self.subsample, replace=False)]
            n = self.subsample
        n_knots = self._resolution(n)
        # One sorted row per feature (a contiguous row sorts faster than a
        # column), in a copy: X.T of Fortran-ordered data is the data itself.
        XT = np.array(X.T, order="C")
        sort_rows(XT)
        # Extreme scales overflow the spread estimate; _set_knots rejects them.
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            knots, n_unique = _sample_knots(XT, n_knots, self.smoothing)
        self._warn_degenerate(n_unique, n, XT.T)
        return self._set_knots(knots)

    def _fit_histograms(self, histograms):
        """Fit from per-feature histograms instead of a sample.

        ``histograms`` holds, for each feature, ``(edges, counts, x_min,
        x_max, std, bin_min, bin_max)`` of all rows (see
        :func:`histogram_knots`; the per-bin extremes may be ``None``). The
        total count ``n`` is used in full for the CDF, while
        ``min(n, subsample)`` sets the resolution (``n_knots="auto"``) and
        the bandwidth, so the model has the complexity of an in-memory fit on
        the same rows.
        """
        n = int(round(np.sum(histograms[0][1])))
        n_eff = min(n, self.subsample)
        n_knots = self._resolution(n_eff)
        knots = []
        n_unique = np.full(len(histograms), n_eff)
        for j, (edges, counts, x_min, x_max, std, bin_min, bin_max) in enumerate(histograms):
            knots.append(histogram_knots(
                edges, counts, n_knots, self.smoothing, x_min=x_min, x_max=x_max,
                std=std, n_effective=n_eff, bin_min=bin_min, bin_max=bin_max,
            ))
            occupied = np.flatnonzero(counts)
            if x_min == x_max:
                n_unique[j] = 1
            elif bin_min is not None and np.all(bin_min[occupied] == bin_max[occupied]):
                n_unique[j] = occupied.size  # one value per bin: exact
        self._warn_degenerate(n_unique, n_eff)
        return self._set_knots(knots)

    def _fit_stream(self, stream):
        """Fit from a fine histogram of the stream's output (chunked data)."""
        grid, result = stream.histograms()
        m = self._resolution(min(stream.n, self.subsample))
        for _ in range(_MAX_REFINE):
            # Refine until no bin holds more than half the mass between two knots.
            finer = grid.refined(result.counts[0], 0.5 / max(m - 1, 1))
            if finer is None:
                break
            grid, result = finer, stream.run(Histograms([finer], bin_extremes=True))[0]
        self._fit_histograms(feature_histograms(result, grid))
        ends, _ = self._forward(np.vstack([result.min[0], result.max[0]]))
        stream.append(self, bounds=(ends[0], ends[1]))

    def _set_knots(self, knots):
        knots = [(xk, damped_knots(xk, zk, self.damping)) for xk, zk in knots]
        with np.errstate(over="ignore", under="ignore", divide="ignore"):
            packed = _pack_knots(knots)
        (self.knots_x_, self.knots_z_, self._slope, self._log_slope, self.n_knots_) = packed
        valid = np.arange(self._slope.shape[1]) < (self.n_knots_[:, None] - 1)
        slopes = self._slope[valid]
        ends = self.knots_x_[np.arange(len(knots)), self.n_knots_ - 1]
        with np.errstate(over="ignore", divide="ignore"):
            ok = np.isfinite(slopes) & (slopes > 0) & np.isfinite(1.0 / slopes)
            ok = ok.all() and np.all(np.isfinite(ends - self.knots_x_[:, 0]))
        if not ok:
            raise ValueError(
                "MarginalGaussianizer cannot represent these data in float64: the "
                "spacing of their quantiles overflows or underflows the slopes of the "
                "map. Rescale the features (e.g. divide by their spread) before fitting."
            )
        self._inv_slope = 1.0 / self._slope
        self._forward_table = bucket_table(self.knots_x_, self.n_knots_)
        self.__dict__.pop("_inverse_table", None)  # built when first inverted
        return self

    def _inverse_search(self):
        """The inverse map's search table, built on first use: fitting never inverts.

        (Models saved before it was built lazily hold it as ``_inverse_table``.)
        """
        table = self.__dict__.get("_inverse_table")
        if table is not None:
            return table
        return self._derived("inverse_table", lambda: bucket_table(self.knots_z_, self.n_knots_),
                             self.knots_z_, self.n_knots_)

    def _warn_degenerate(self, n_unique, n, X_sorted=None):
        # FeatureWarning carries the distinct values, so the top-level fit can
        # name the features that are the data's columns.
        def values(features):
            if X_sorted is None:
                return None
            return [np.unique(X_sorted[:, j]) for j in features]

        constant = np.flatnonzero(n_unique == 1)
        if constant.size:
            warnings.warn(
                FeatureWarning(
                    "{features} are constant; they are shifted to zero with unit slope. "
                    "A constant has no density.",
                    constant, values(constant),
                ),
                stacklevel=4,
            )
        discrete = np.flatnonzero((n_unique > 1) & (n_unique <= 0.1 * n))
        if discrete.size:
            warnings.warn(
                FeatureWarning(
                    f"{{features}} take few distinct values ({n_unique[discrete].tolist()}); "
                    "a density of discrete data is not meaningful. Consider dequantizing "
                    "(adding uniform noise): RBIG(dequantize=True) or "
                    "destructors.discrete.dequantize(X).",
                    discrete, values(discrete),
                ),
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
            self._inverse_search(),
        )

    def _fused_steps(self):
        return [MarginalStep(self.knots_x_, self.knots_z_, self.n_knots_, self._slope,
                             self._log_slope, self._forward_table, self._inverse_search())]

    def _n_parameters(self):
        # One per knot: a monotone piecewise-linear map through m knots is
        # fixed by their m estimated positions (the levels follow from them);
        # the linear tails continue the end slopes, with nothing more to fit.
        return int(np.sum(self.n_knots_))

    def _marginal_log_density(self, X, features, rest):
        # Each output feature depends on its own input feature only, so the
        # marginal of ``features`` is the latent's marginal there times the
        # product of their derivatives.
        Z, log_det = piecewise_linear(
            X, self.knots_x_[features], self.knots_z_[features], self._slope[features],
            self._log_slope[features], self.n_knots_[features],
        )
        if rest is None:
            return -0.5 * np.sum(Z * Z + np.log(2.0 * np.pi), axis=1) + log_det
        return rest(Z, features) + log_det
