"""One policy for discrete, tied and duplicated data.

Densities, entropies and total correlations are defined for continuous
data. Rounded, integer, boolean or repeated rows put mass on points, where
the differential entropy is ``-inf``; the estimators then return absurd
values (984 nats of total correlation for three independent fair bits)
instead of failing. This module decides, once for the whole library, which
data are continuous enough, and turns discrete data into continuous data
when asked (:func:`dequantize`).

- :func:`describe_discreteness` measures: per feature, the number of
  distinct values, the size of the largest group of equal values and the
  resolution (grid spacing); for the rows, the number of exact duplicates
  and how many of them are *repeated* rows rather than rounding.
- :func:`check_continuous` applies the rule: returns the data unchanged,
  raises a ValueError that says what was found and what to do, or, with
  ``dequantize=True``, returns a dequantized copy.
- :func:`dequantize` adds seeded uniform noise of one grid cell.

The rule
--------
Data pass silently when

1. no feature has more than ``MAX_TIES = 10`` equal values, and
2. at most ``MAX_DUPLICATED_FRACTION = 1 %`` of the rows are exact copies
   of an earlier row.

Everything else is refused with a message naming the features (and their
numbers of distinct values and largest groups of equal values) or the
number of duplicated rows. With ``dequantize=True`` tied features are
dequantized instead; rows that are *repeated* are refused even then,
because no noise of one grid cell makes them continuous. Duplicated rows
count as repeated when some tied feature is off a grid: the median gap
between its consecutive distinct values exceeds ``GRID_RATIO = 4`` times
the smallest gap. On a grid (rounded, integer, boolean values) the ratio
is 1 where the grid is dense; for ``m`` distinct continuous values it is
about ``0.7 m`` (the spacings are nearly exponential), so bootstrap
resamples of 30 or more distinct rows are recognised almost surely (of 10
distinct rows, about four times in five).

Ties and duplicates are decided by true equality of data values only; no
floating-point tolerance enters those counts.

Measurements behind the rule
----------------------------
A correlated Gaussian (correlation 0.5 between every pair) rounded to a
grid of ``step`` standard deviations; errors of the estimates on the
rounded data against the closed form, next to the errors on the same data
dequantized (two seeds each):

- Total correlation tolerates far more ties than entropy, but no single
  statistic separates harmless from harmful ties across dimensions. Raw
  errors stayed at noise level (below 0.02 nats) up to the largest group of
  equal values ``m = 132`` (``d = 2, n = 5000``, step 0.06, 46 % duplicated
  rows), ``m = 96`` (``d = 3, n = 2000``, 3 % duplicated rows) and ``m =
  147`` (``d = 5, n = 1000``, 1 % duplicated rows), then broke down: +-0.03
  nats at ``d = 2`` with 69 % duplicated rows, +0.05 to +0.24 at ``d = 3``
  with 20-44 %, +0.2 at ``d = 5`` with only 4.7 %, then tens to hundreds of
  nats at coarser grids. Dequantized, the errors stayed below 0.02 nats up
  to a step of 0.3 standard deviations (beyond, dequantizing changes the
  distribution itself: -0.04 to -0.24 nats at a step of one deviation).
- Entropy (k-nearest-neighbour marginals, ``k = 10``) is undefined as soon
  as a feature repeats a value more than ``k`` times (zero neighbour
  distances), and with up to 8-9 equal values it is biased low by 0.01-0.03
  nats compared with the dequantized data (``n = 2000-5000``), inside its
  noise.
- Duplicated rows of otherwise continuous data (a fraction of the rows
  replaced by copies of others; ``d = 3``, ``n = 2000``) leave total
  correlation at noise level up to 15 % but bias entropy downwards by
  about 0.9 nats times the duplicated fraction: -0.01 at 1 %, -0.02 at
  2 %, -0.05 at 5 %, -0.14 at 15 %. 1 % keeps the bias at the estimator's
  noise (0.01 nats at ``n = 2000``).
- Bootstrap resamples (150 distinct Gaussian rows drawn 1000 times) gave
  26.8-75 nats of total correlation for independent features: repeated
  rows are refused whatever the other statistics say.

So the limit is set by the measures that need it most (entropy, and the
k-NN marginals of KL divergence), and the same limit applies to all four
measures and to model fits, so one dataset is accepted or refused
everywhere alike.

Real tables shipped with scikit-learn are rounded and all exceed it: the
largest groups of equal values are 29 in iris (150 rows, one duplicated
row), 15 in wine (178 rows), 13 in breast_cancer (569 rows, exact zeros)
and 235 in diabetes (442 rows, a binary feature). Their total correlation
on the raw tables against three dequantizations: iris 1.55 vs 1.41-1.59,
wine 3.47 vs 3.44-3.46, breast_cancer 39.6 vs 39.4-40.2, diabetes 3.51 vs
3.62-3.71. Wine and breast_cancer would be harmless, diabetes is not
(its binary feature), and for iris the dequantization noise itself moves
the estimate by 0.18 nats: the answer depends on how the rounding is
undone, which the caller should know and choose (``dequantize=True``).

Dequantization
--------------
:func:`dequantize` adds to every value ``v`` of a feature uniform noise on
``(v - h/2, v + h/2)``, ``h`` the feature's resolution: the smallest
positive gap between its sorted distinct values (1 for integers that
include two consecutive values, 1 for booleans). The noisy value is
nearer to ``v`` than to any other value of the feature, so rounding to the
nearest original value recovers the data exactly, and the dequantized
variable keeps every dependence of the discrete one: the total correlation
and mutual information of dequantized data *are* the multi-information
and mutual information of the discrete variables (zero for independent
bits), and the entropy is the discrete entropy plus ``sum_d log h_d``.

Limits of the resolution rule: one unusually close pair of values makes
``h`` small for the whole feature (the noise then fills only part of each
gap, and the density stays spiky); values on an irregular set rather than
a grid are treated alike. Pass ``resolution`` explicitly when the rounding
is known.
"""

import dataclasses
from dataclasses import dataclass

import numpy as np
from sklearn.utils import check_array

from ._stats import DistinctRowSample
from .base import check_random_state

__all__ = [
    "GRID_RATIO",
    "MAX_DUPLICATED_FRACTION",
    "MAX_TIES",
    "DiscretenessReport",
    "check_continuous",
    "dequantize",
    "describe_discreteness",
    "resolution",
]

MAX_TIES = 10
MAX_DUPLICATED_FRACTION = 0.01
GRID_RATIO = 4.0
# Noise fills the cell but for a margin this small, so that float64
# rounding of ``v + noise`` cannot reach the midpoint to a neighbour.
_SHRINK = 1.0 - 1e-6


def _as_2d(X, name):
    X = check_array(
        X, dtype=np.float64, ensure_2d=False, ensure_all_finite=True, input_name=name,
        ensure_min_samples=1,
    )
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D, got an array of shape {X.shape}.")
    return X


@dataclass(frozen=True)
class DiscretenessReport:
    """What :func:`describe_discreteness` found in a data set.

    Attributes
    ----------
    n_samples, n_features : int
        Shape of the data.
    n_distinct : ndarray of int, shape (n_features,)
        Number of distinct values of each feature.
    max_ties : ndarray of int, shape (n_features,)
        Size of each feature's largest group of equal values (1: no ties).
    resolution : ndarray of float, shape (n_features,)
        Smallest positive gap between the sorted distinct values of each
        feature (``inf`` for a constant feature).
    n_duplicated_rows : int
        Rows that are exact copies of an earlier row.
    median_gap : ndarray of float, shape (n_features,)
        Median gap between consecutive distinct values (``inf`` for a
        constant feature).
    n_repeated_rows : int
        The duplicated rows that rounding does not explain: all of them if
        some tied feature is off a grid (see :attr:`off_grid_features`), as
        in bootstrap resamples of continuous data; zero otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors.discrete import describe_discreteness
    >>> X = np.round(np.random.default_rng(0).normal(size=(300, 2)), 1)
    >>> report = describe_discreteness(X)
    >>> report.resolution.tolist(), bool(report.max_ties.min() > 1)
    ([0.1, 0.1], True)
    """

    n_samples: int
    n_features: int
    n_distinct: np.ndarray
    max_ties: np.ndarray
    resolution: np.ndarray
    median_gap: np.ndarray
    n_duplicated_rows: int
    n_repeated_rows: int

    @property
    def tied_features(self):
        """Indices of the features with at least one repeated value."""
        return np.flatnonzero(self.max_ties > 1)

    @property
    def off_grid_features(self):
        """Tied features whose distinct values are not on a grid.

        Their median gap exceeds ``GRID_RATIO`` times their resolution: the
        values are continuous and the ties come from repeated rows (for
        ``m`` distinct continuous values the ratio is about ``0.7 m``),
        not from rounding (ratio 1 on a dense grid).
        """
        return np.flatnonzero(
            (self.max_ties > 1) & (self.median_gap > GRID_RATIO * self.resolution)
        )

    @property
    def discrete_features(self):
        """Indices of the features repeating a value more than ``MAX_TIES`` times."""
        return np.flatnonzero(self.max_ties > MAX_TIES)

    @property
    def max_duplicated_rows(self):
        """The most duplicated rows the rule lets pass."""
        return int(np.floor(MAX_DUPLICATED_FRACTION * self.n_samples))

    @property
    def too_many_duplicates(self):
        """More duplicated rows than allowed (in 1-D they are ties, judged per feature)."""
        return self.n_features > 1 and self.n_duplicated_rows > self.max_duplicated_rows

    @property
    def too_many_repeats(self):
        return self.n_repeated_rows > self.max_duplicated_rows

    @property
    def is_continuous(self):
        """Whether the data pass the rule as they are."""
        return self.discrete_features.size == 0 and not self.too_many_duplicates

    def describe(self, name="X"):
        """One sentence per problem found (empty string if none)."""
        parts = []
        feats = self.discrete_features
        if feats.size:
            shown = feats[:10]
            detail = ", ".join(
                f"{j} ({self.n_distinct[j]} distinct values, {self.max_ties[j]} equal)"
                for j in shown
            )
            more = f" and {feats.size - shown.size} more" if feats.size > shown.size else ""
            parts.append(
                f"features {detail}{more} of {name} have more than {MAX_TIES} "
                "equal values"
            )
        if self.too_many_repeats or (self.too_many_duplicates and self.n_features > 1):
            parts.append(
                f"{self.n_duplicated_rows} of its {self.n_samples} rows "
                f"({100.0 * self.n_duplicated_rows / self.n_samples:.1f} %) are exact "
                f"copies of other rows (at most {100 * MAX_DUPLICATED_FRACTION:g} % "
                "allowed)"
            )
        return "; ".join(parts)


def _feature_stats(X):
    n, d = X.shape
    n_distinct = np.empty(d, dtype=np.int64)
    max_ties = np.empty(d, dtype=np.int64)
    res = np.full(d, np.inf)
    median_gap = np.full(d, np.inf)
    for j in range(d):
        values, counts = np.unique(X[:, j], return_counts=True)
        n_distinct[j] = values.size
        max_ties[j] = counts.max()
        if values.size > 1:
            gaps = np.diff(values)
            res[j], median_gap[j] = gaps.min(), np.median(gaps)
    return n_distinct, max_ties, res, median_gap


def _tied_resolution(X):
    """Each feature's resolution where it has ties, else 0 (no noise)."""
    _, max_ties, h, _ = _feature_stats(X)
    return np.where((max_ties > 1) & np.isfinite(h), h, 0.0)


def describe_discreteness(X, *, name="X"):
    """Measure the ties and duplicated rows of a data set.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Finite data (1-D is one feature).
    name : str, default="X"
        Name used in error messages.

    Returns
    -------
    report : DiscretenessReport
        Per-feature distinct values, largest groups of equal values and
        resolutions; duplicated and repeated rows.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors.discrete import describe_discreteness
    >>> X = np.random.default_rng(0).integers(0, 2, size=(300, 3))
    >>> report = describe_discreteness(X)
    >>> report.n_distinct.tolist(), report.resolution.tolist()
    ([2, 2, 2], [1.0, 1.0, 1.0])
    >>> report.n_duplicated_rows, report.n_repeated_rows, report.is_continuous
    (292, 0, False)
    >>> G = np.random.default_rng(0).normal(size=(150, 2))
    >>> describe_discreteness(G[np.arange(300) % 150]).n_repeated_rows
    150
    """
    X = _as_2d(X, name)
    n, d = X.shape
    stats = _feature_stats(X)
    n_dup = 0
    if np.all(stats[1] > 1):  # a duplicated row has ties in every feature
        n_dup = n - np.unique(X, axis=0).shape[0]
    report = DiscretenessReport(n, d, *stats, int(n_dup), 0)
    if n_dup and report.off_grid_features.size:
        report = dataclasses.replace(report, n_repeated_rows=int(n_dup))
    return report


def resolution(X):
    """Grid spacing of each feature: the smallest gap between distinct values.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Finite data (1-D is one feature).

    Returns
    -------
    h : ndarray of shape (n_features,)
        Resolutions; ``inf`` for a constant feature.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors.discrete import resolution
    >>> resolution(np.array([[0.0, 1.5], [2.0, 1.7], [3.0, 1.5]])).round(6).tolist()
    [1.0, 0.2]
    """
    return _feature_stats(_as_2d(X, "X"))[2]


def dequantize(X, *, resolution=None, random_state=None):
    """Seeded uniform noise of one grid cell on each feature with ties.

    Each value ``v`` of feature ``d`` becomes ``v + h_d (u - 1/2)`` with
    ``u`` uniform on (0, 1) (shrunk by one part in a million, so float64
    rounding cannot carry a value to its neighbour's cell) and ``h_d`` the
    feature's resolution. The noisy value is nearer to ``v`` than to any
    other value of the feature, so rounding back to the nearest original
    value gives the data exactly. See the module docstring for what the
    measures of dequantized data mean and for the limits of the rule.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Finite data (1-D is one feature; booleans and integers are fine).
    resolution : None, float or array-like of shape (n_features,), default=None
        ``None``: each feature's smallest positive gap between distinct
        values (:func:`resolution`), and only features with ties get
        noise. A number or one number per feature: that cell width for
        every feature (0 leaves a feature alone); it should not exceed the
        smallest gap if the values are to be recoverable.
    random_state : int, RandomState instance or None, default=None
        Seeds the noise; the global random state is never used.

    Returns
    -------
    X_new : ndarray of shape (n_samples, n_features), float64
        A new array (the input is not modified); 1-D input gives 2-D output.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors.discrete import dequantize
    >>> bits = np.random.default_rng(0).integers(0, 2, size=(1000, 2))
    >>> Y = dequantize(bits, random_state=0)
    >>> len(np.unique(Y[:, 0])), bool(np.all(np.round(Y) == bits))
    (1000, True)
    >>> bool(np.all(dequantize(bits, random_state=0) == Y))
    True
    """
    X = _as_2d(X, "X")
    n, d = X.shape
    if resolution is None:
        h = _tied_resolution(X)
    else:
        h = np.broadcast_to(np.asarray(resolution, dtype=np.float64), (d,)).copy()
        if not np.all(np.isfinite(h)) or np.any(h < 0):
            raise ValueError(
                f"resolution must be non-negative and finite, got {resolution!r}."
            )
    return _add_noise(X, h, random_state)


def _add_noise(X, h, random_state):
    u = check_random_state(random_state).random_sample(X.shape)
    with np.errstate(over="raise"):
        try:
            return X + (h * _SHRINK) * (u - 0.5)
        except FloatingPointError:
            raise ValueError(
                "Dequantization noise overflows float64 at this scale; rescale "
                "the data first."
            ) from None


def check_continuous(X, *, name="X", dequantize=False, random_state=None):
    """Apply the library's rule for discrete, tied and duplicated data.

    See the module docstring for the rule (no feature repeats a value more
    than ``MAX_TIES`` times; at most ``MAX_DUPLICATED_FRACTION`` of the
    rows are duplicates) and the measurements behind it.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Finite data (1-D is one feature).
    name : str, default="X"
        Name used in error messages.
    dequantize : bool, default=False
        If the data fail the rule: ``False`` raises, ``True`` returns a
        dequantized copy (:func:`dequantize`). Repeated rows (duplicates
        that rounding does not explain) are refused either way.
    random_state : int, RandomState instance or None, default=None
        Seeds the dequantization noise.

    Returns
    -------
    X_checked : ndarray of shape (n_samples, n_features), float64
        ``X`` as a 2-D float array (not a copy when it passes and already
        was one), or a dequantized copy.
    report : DiscretenessReport
        What was found in ``X`` (before any dequantization).

    Raises
    ------
    ValueError
        Naming the features or the duplicated rows and what to do.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors.discrete import check_continuous
    >>> bits = np.random.default_rng(0).integers(0, 2, size=(300, 3))
    >>> try:
    ...     check_continuous(bits)
    ... except ValueError as exc:
    ...     print(str(exc)[:66])
    Features 0 (2 distinct values, 163 equal), 1 (2 distinct values, 1
    >>> Y, report = check_continuous(bits, dequantize=True, random_state=0)
    >>> report.discrete_features.tolist(), len(np.unique(Y, axis=0))
    ([0, 1, 2], 300)
    >>> G = np.random.default_rng(0).normal(size=(500, 2))
    >>> check_continuous(G)[0] is G
    True
    """
    X = _as_2d(X, name)
    report = describe_discreteness(X, name=name)
    if report.is_continuous:
        return X, report
    found = report.describe(name)
    found = found[0].upper() + found[1:]
    if report.too_many_repeats:
        raise ValueError(
            f"{found}. These duplicates are repeated rows (the values of some "
            "features are not on a grid), as in a bootstrap resample: repeated "
            "rows put mass on single points, where densities and entropies are "
            "not defined, and dequantizing cannot make them continuous. Drop "
            "the duplicated rows (e.g. np.unique(X, axis=0)) or pass the "
            "original sample."
        )
    if dequantize:
        return _add_noise(X, _tied_resolution(X), random_state), report
    raise ValueError(
        f"{found}: {name} looks discrete (rounded, integer or boolean values), "
        "and the densities, entropies and information measures of discrete "
        "data are not defined. Pass dequantize=True (or call "
        "destructors.discrete.dequantize first) to add uniform noise of one "
        "grid cell, which keeps the dependence between the discrete values; or "
        "drop these features."
    )


def fit_policy(X, dequantize, rng):
    """The fit's policy for tied and duplicated rows, shared by every model.

    A density of duplicated rows is not defined, and held-out rows that
    copy training rows turn a choice made on held-out rows (a depth, a
    model) into a fiction: beyond the policy's share of duplicated rows the
    fit refuses, unless asked to dequantize. Ties within a feature (data
    rounded to a few decimals) keep the maps exact and invertible, so they
    only warn (the marginal layer does), while the information measures
    refuse them.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Validated training data.
    dequantize : bool
        The model's ``dequantize`` parameter.
    rng : numpy.random.RandomState
        The model's generator; one seed is drawn from it only when noise is
        added.

    Returns
    -------
    X : ndarray
        The data to fit (dequantized when asked and needed).
    duplicated : bool
        Whether the returned data hold duplicated rows.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors.discrete import fit_policy
    >>> grid = np.column_stack([np.arange(10.0), np.arange(10.0)[::-1]])
    >>> X = np.repeat(grid, 2, axis=0)   # every row twice
    >>> fit_policy(X, False, np.random.RandomState(0))
    Traceback (most recent call last):
    ...
    ValueError: 10 of the 20 training rows are exact copies of other rows: ...
    >>> Xd, duplicated = fit_policy(X, True, np.random.RandomState(0))
    >>> duplicated, bool(np.all(np.round(Xd) == X))
    (False, True)
    """
    report = describe_discreteness(X)
    if report.is_continuous:
        return X, report.n_duplicated_rows > 0
    if dequantize:
        seed = int(rng.randint(0, 2**31 - 1))
        return check_continuous(X, dequantize=True, random_state=seed)[0], False
    if report.too_many_duplicates:
        raise ValueError(
            f"{report.n_duplicated_rows} of the {report.n_samples} training rows are "
            + _DUPLICATES_REASON + " Pass dequantize=True (uniform noise over the data's "
            "resolution), call destructors.discrete.dequantize, or drop the duplicates."
        )
    return X, report.n_duplicated_rows > 0


_DUPLICATES_REASON = (
    "exact copies of other rows: a density of repeated points is not defined "
    "and held-out copies of training rows would make the choice made on held-out "
    "rows a fiction."
)
# Distinct rows whose copies the chunked check counts (every copy of each).
_STREAM_DISTINCT_ROWS = 100_000


def stream_fit_policy(stream, dequantize):
    """:func:`fit_policy` for chunked data (a Dask array), in one pass.

    Duplicated rows are counted on a sample of distinct rows with all their
    copies (:class:`destructors._stats.DistinctRowSample`; exact when the data
    hold at most 100,000 distinct rows), and beyond the same share the fit
    refuses. Dequantizing needs the data's resolution, estimated from all
    rows in memory, so ``dequantize=True`` is refused with the way to do it.

    Parameters
    ----------
    stream : destructors._dask._Stream
        The training data, before any layer.
    dequantize : bool
        The model's ``dequantize`` parameter.

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> from destructors._dask import _Stream
    >>> from destructors.discrete import stream_fit_policy
    >>> grid = np.column_stack([np.arange(10.0), np.arange(10.0)[::-1]])
    >>> X = da.from_array(np.repeat(grid, 2, axis=0), chunks=(7, 2))
    >>> stream_fit_policy(_Stream(X), False)
    Traceback (most recent call last):
    ...
    ValueError: 10 of the 20 training rows are exact copies of other rows: ...
    """
    if dequantize:
        raise ValueError(
            "dequantize=True needs the data in memory (the noise's scale is the data's "
            "resolution, estimated from all rows): fit on a NumPy array, or add the noise "
            "to each block yourself with destructors.discrete.dequantize, one resolution "
            "for all blocks (destructors.discrete.resolution of a sample) and a "
            "random_state of its own for each."
        )
    if stream.n_features < 2:
        return  # in one dimension copies are ties, which only warn
    sample = stream.run(DistinctRowSample(_STREAM_DISTINCT_ROWS))[0]
    n_rows, n_dup = sample.n_rows(), sample.n_duplicated()
    if n_dup > np.floor(MAX_DUPLICATED_FRACTION * n_rows):
        where = (
            f"the {n_rows} training rows" if n_rows == stream.n
            else f"{n_rows} training rows sampled (every copy of "
            f"{sample.keys.size:,} distinct rows)"
        )
        raise ValueError(
            f"{n_dup} of {where} are " + _DUPLICATES_REASON + " Dequantize the data "
            "(see destructors.discrete.dequantize) or drop the duplicates."
        )
