"""Mergeable statistics of row blocks, for fitting layers in passes over data.

Each statistic is computed on one block of rows and merged with another
block's exactly (counts, extremes and sums; sums only up to floating-point
rounding), so a pass over data split into any number of blocks, merged in any
order, fits the same layer. Nothing here imports Dask: the Dask front end
(:mod:`destructors._dask`) schedules the blocks and the merges.

- :class:`MinMax`: row count and per-feature extremes.
- :class:`Moments`: count, mean, co-moment matrix (merged with Chan's
  update, which stays accurate far from the origin) and the largest squared
  row norm; enough for PCA.
- :class:`Histograms`: fine per-feature histograms of one or more affine
  images ``(Y - shift) @ matrix.T`` of the block, with exact extremes and
  shifted first and second moments; enough for the marginal CDFs and for the
  marginal KL divergences that rank rotations.
"""

from typing import NamedTuple

import numpy as np
from numba import njit

_HALF_LOG_2PI = 0.5 * np.log(2.0 * np.pi)

# Bins per feature of the first histogram of a pass. Knots built from it
# agree with the sorted-sample knots to a fraction of a bin (a few 1e-4 of
# the range, see ``histogram_knots``).
HIST_BINS = 2**14


@njit(nogil=True, cache=True)
def _histogram_kernel(Y, edges, n_edges, uniform, shift, counts, lo, hi, s1, s2,
                      track, bin_lo, bin_hi):
    """Accumulate per-feature counts, extremes and shifted moments of ``Y``.

    Bins are ``[edges[j, k], edges[j, k + 1])``; values beyond the end edges
    fall into the end bins. A uniform grid is searched by arithmetic plus a
    correcting step, any other by bisection, so the bin always agrees with
    ``edges``. With ``track``, ``bin_lo``/``bin_hi`` (shaped like
    ``counts``) also get the extremes of each bin.
    """
    n, d = Y.shape
    for j in range(d):
        m = n_edges[j]
        first = edges[j, 0]
        scale = (m - 1) / (edges[j, m - 1] - first)
        for i in range(n):
            y = Y[i, j]
            if uniform:
                t = (y - first) * scale
                if t <= 0.0:
                    k = 0
                elif t >= m - 2:
                    k = m - 2
                else:
                    k = int(t)
                while k > 0 and y < edges[j, k]:
                    k -= 1
                while k < m - 2 and y >= edges[j, k + 1]:
                    k += 1
            else:
                a, b = 0, m - 1
                while b - a > 1:
                    mid = (a + b) >> 1
                    if edges[j, mid] <= y:
                        a = mid
                    else:
                        b = mid
                k = a
            counts[j, k] += 1
            if track:
                if y < bin_lo[j, k]:
                    bin_lo[j, k] = y
                if y > bin_hi[j, k]:
                    bin_hi[j, k] = y
            if y < lo[j]:
                lo[j] = y
            if y > hi[j]:
                hi[j] = y
            v = y - shift[j]
            s1[j] += v
            s2[j] += v * v


class Grid:
    """Per-feature bin edges: NaN-padded rows, ``n_edges[j]`` valid in row ``j``.

    Parameters
    ----------
    edges : ndarray of shape (n_features, max_edges)
        Increasing edges of each feature.
    n_edges : ndarray of shape (n_features,)
        Valid edges per feature (at least 2).
    uniform : bool
        Whether every row is equally spaced (searched by arithmetic).

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._stats import Grid
    >>> grid = Grid.uniform(np.array([0.0]), np.array([1.0]), 4)
    >>> grid.edges.tolist()
    [[0.0, 0.25, 0.5, 0.75, 1.0]]
    """

    def __init__(self, edges, n_edges, uniform):
        self.edges = np.ascontiguousarray(edges, dtype=np.float64)
        self.n_edges = np.asarray(n_edges, dtype=np.int64)
        self.uniform = bool(uniform)

    @classmethod
    def uniform(cls, lo, hi, n_bins=HIST_BINS):
        """Equal bins over ``[lo[j], hi[j]]``, widened when the range is empty."""
        lo = np.asarray(lo, dtype=np.float64)
        hi = np.asarray(hi, dtype=np.float64)
        width = hi - lo
        pad = np.where(width > 0, 0.0, np.maximum(np.abs(lo), 1.0))
        lo, hi = lo - pad, hi + pad
        t = np.linspace(0.0, 1.0, n_bins + 1)
        edges = lo[:, None] + (hi - lo)[:, None] * t
        edges[:, -1] = hi
        if not np.all(np.diff(edges, axis=1) > 0):
            raise ValueError("values too large to histogram in float64; rescale the data.")
        return cls(edges, np.full(lo.shape[0], n_bins + 1), True)

    def feature(self, j):
        """Edges of feature ``j``."""
        return self.edges[j, : self.n_edges[j]]

    def refined(self, counts, max_mass, sub_bins=256):
        """Split every bin holding more than ``max_mass`` of its feature's rows.

        Returns a new (non-uniform) grid, or ``None`` when no bin is that heavy.
        """
        rows, split = [], False
        for j in range(self.edges.shape[0]):
            e = self.feature(j)
            c = counts[j, : e.size - 1]
            heavy = np.flatnonzero(c > max_mass * max(c.sum(), 1))
            if heavy.size:
                split = True
                t = np.linspace(0.0, 1.0, sub_bins + 1)[1:-1]
                inner = (e[heavy, None] + (e[heavy + 1] - e[heavy])[:, None] * t).ravel()
                e = np.unique(np.r_[e, inner])
            rows.append(e)
        if not split:
            return None
        width = max(r.size for r in rows)
        edges = np.full((len(rows), width), np.nan)
        for j, r in enumerate(rows):
            edges[j, : r.size] = r
        return Grid(edges, [r.size for r in rows], False)


class HistogramStats(NamedTuple):
    """Merged :class:`Histograms` statistics of ``k`` images of ``d`` features.

    Attributes
    ----------
    n : int
        Rows.
    counts : ndarray of shape (k, d, n_bins)
        Bin counts.
    min, max : ndarray of shape (k, d)
        Per-feature extremes.
    s1, s2 : ndarray of shape (k, d)
        Sums of ``y - shift`` and of its square.
    shift : ndarray of shape (k, d)
        Shift of the moment sums (the grid centres).
    bin_min, bin_max : ndarray of shape (k, d, n_bins) or None
        Per-bin extremes, when asked for.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._stats import Grid, Histograms
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> stats = Histograms([Grid.uniform(X.min(0), X.max(0))]).compute(X)
    >>> stats.n, stats.counts.shape[:2], int(stats.counts.sum())
    (100, (1, 2), 200)
    """

    n: int
    counts: np.ndarray
    min: np.ndarray
    max: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    shift: np.ndarray
    bin_min: np.ndarray = None
    bin_max: np.ndarray = None

    def image(self, c):
        """The statistics of image ``c`` alone (as a one-image record)."""
        arrays = (getattr(self, f) for f in self._fields[1:])
        return HistogramStats(self.n, *(None if a is None else a[c : c + 1] for a in arrays))


class FeatureHistogram(NamedTuple):
    """One feature's histogram, as :func:`~destructors.marginal.histogram_knots` reads it.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._stats import Grid, Histograms, feature_histograms
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> grid = Grid.uniform(X.min(0), X.max(0))
    >>> first = feature_histograms(Histograms([grid]).compute(X), grid)[0]
    >>> int(first.counts.sum()), bool(first.x_min == X[:, 0].min())
    (100, True)
    """

    edges: np.ndarray
    counts: np.ndarray
    x_min: float
    x_max: float
    std: float
    bin_min: np.ndarray = None
    bin_max: np.ndarray = None


class MomentStats(NamedTuple):
    """Count, mean, co-moment and largest squared norm of the rows.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._stats import Moments
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> stats = Moments().compute(X)
    >>> stats.n, bool(np.allclose(stats.mean, X.mean(axis=0)))
    (100, True)
    """

    n: int
    mean: np.ndarray
    comoment: np.ndarray
    max_sq_norm: float


class MinMax:
    """Row count and per-feature minimum and maximum.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._stats import MinMax
    >>> a = MinMax.compute(np.array([[0.0, 5.0], [2.0, 1.0]]))
    >>> n, lo, hi = MinMax.merge(a, MinMax.compute(np.array([[-1.0, 3.0]])))
    >>> n, lo.tolist(), hi.tolist()
    (3, [-1.0, 1.0], [2.0, 5.0])
    """

    @staticmethod
    def compute(Y):
        """Statistics of one block."""
        if Y.shape[0] == 0:
            return 0, np.full(Y.shape[1], np.inf), np.full(Y.shape[1], -np.inf)
        return Y.shape[0], Y.min(axis=0), Y.max(axis=0)

    @staticmethod
    def merge(a, b):
        """Statistics of two blocks together."""
        return a[0] + b[0], np.minimum(a[1], b[1]), np.maximum(a[2], b[2])


class Moments:
    """Count, mean, co-moment ``sum (y - mean)(y - mean)^T`` and max ``|y|^2``.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._stats import Moments
    >>> Y = np.random.default_rng(0).normal(size=(100, 2)) + 1e6
    >>> n, mean, comoment, _ = Moments.merge(Moments.compute(Y[:30]), Moments.compute(Y[30:]))
    >>> bool(np.allclose(comoment / n, np.cov(Y.T, bias=True)))
    True
    """

    @staticmethod
    def compute(Y):
        """Statistics of one block."""
        d = Y.shape[1]
        if Y.shape[0] == 0:
            return MomentStats(0, np.zeros(d), np.zeros((d, d)), 0.0)
        mean = Y.mean(axis=0)
        centred = Y - mean
        return MomentStats(Y.shape[0], mean, centred.T @ centred,
                           float(np.max(np.einsum("ij,ij->i", Y, Y))))

    @staticmethod
    def merge(a, b):
        """Statistics of two blocks together (Chan et al.'s pairwise update)."""
        na, nb = a[0], b[0]
        if na == 0 or nb == 0:
            return b if na == 0 else a
        n = na + nb
        delta = b[1] - a[1]
        mean = a[1] + delta * (nb / n)
        comoment = a[2] + b[2] + np.outer(delta, delta) * (na * nb / n)
        return MomentStats(n, mean, comoment, max(a[3], b[3]))


class Histograms:
    """Fine per-feature histograms of affine images of a block.

    Image ``c`` is ``(Y - shifts[c]) @ matrices[c].T`` (``None`` for the
    identity); its histogram uses ``grids[c]``.

    Parameters
    ----------
    grids : list of Grid
        One grid per image.
    maps : list of (matrix, shift) or None
        Affine images; ``None`` means the block itself (one grid).
    bin_extremes : bool, default=False
        Also keep the smallest and largest value in each bin (three times
        the memory of the counts), which makes the knots of sparse tails and
        of tied values exact (see :func:`~destructors.marginal.histogram_knots`).

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._stats import Grid, Histograms
    >>> Y = np.random.default_rng(0).normal(size=(1000, 2))
    >>> stats = Histograms([Grid.uniform([-5.0, -5.0], [5.0, 5.0], 10)])
    >>> result = stats.compute(Y)
    >>> int(result.counts.sum()), result.n
    (2000, 1000)
    """

    def __init__(self, grids, maps=None, bin_extremes=False):
        self.grids = list(grids)
        self.maps = maps
        self.bin_extremes = bin_extremes

    def compute(self, Y):
        """Statistics of one block."""
        n, d = Y.shape
        k = len(self.grids)
        width = max(g.edges.shape[1] for g in self.grids)
        counts = np.zeros((k, d, width - 1), dtype=np.int64)
        lo = np.full((k, d), np.inf)
        hi = np.full((k, d), -np.inf)
        s1 = np.zeros((k, d))
        s2 = np.zeros((k, d))
        shifts = np.empty((k, d))
        shape = counts.shape if self.bin_extremes else (k, 1, 1)
        bin_lo, bin_hi = np.full(shape, np.inf), np.full(shape, -np.inf)
        for c, grid in enumerate(self.grids):
            if self.maps is None or self.maps[c] is None:
                image = Y
            else:
                matrix, shift = self.maps[c]
                image = (Y - shift) @ matrix.T
            shifts[c] = self.centres(grid)
            _histogram_kernel(
                np.ascontiguousarray(image), grid.edges, grid.n_edges, grid.uniform,
                shifts[c], counts[c], lo[c], hi[c], s1[c], s2[c],
                self.bin_extremes, bin_lo[c], bin_hi[c],
            )
        if not self.bin_extremes:
            bin_lo = bin_hi = None
        return HistogramStats(n, counts, lo, hi, s1, s2, shifts, bin_lo, bin_hi)

    @staticmethod
    def centres(grid):
        """Per-feature shift of the accumulated moments: the grid's midpoint."""
        first = grid.edges[:, 0]
        last = grid.edges[np.arange(grid.edges.shape[0]), grid.n_edges - 1]
        return 0.5 * (first + last)

    @staticmethod
    def merge(a, b):
        """Statistics of two blocks together."""
        extremes = (None, None)
        if a.bin_min is not None:
            extremes = (np.minimum(a.bin_min, b.bin_min), np.maximum(a.bin_max, b.bin_max))
        return HistogramStats(
            a.n + b.n, a.counts + b.counts, np.minimum(a.min, b.min), np.maximum(a.max, b.max),
            a.s1 + b.s1, a.s2 + b.s2, a.shift, *extremes,
        )


def feature_histograms(result, grid, image=0):
    """Per-feature histograms of one image.

    The records :meth:`MarginalGaussianizer._fit_histograms` reads.

    Parameters
    ----------
    result : HistogramStats
        Merged :class:`Histograms` statistics.
    grid : Grid
        The grid of that image.
    image : int, default=0
        Which image.

    Returns
    -------
    features : list of FeatureHistogram
        One per feature; ``bin_min`` and ``bin_max`` are ``None`` without
        per-bin extremes.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._stats import Grid, Histograms, feature_histograms
    >>> grid = Grid.uniform([0.0], [1.0], 4)
    >>> result = Histograms([grid]).compute(np.array([[0.1], [0.9]]))
    >>> edges, counts, lo, hi, std, _, _ = feature_histograms(result, grid)[0]
    >>> counts.tolist(), lo, hi, round(std, 6)
    ([1, 0, 0, 1], 0.1, 0.9, 0.4)
    """
    n = result.n
    mean = result.s1[image] / n
    var = np.maximum(result.s2[image] / n - mean**2, 0.0)
    out = []
    for j in range(grid.edges.shape[0]):
        e = grid.feature(j)
        bins = slice(0, e.size - 1)
        extremes = (
            (result.bin_min[image, j, bins], result.bin_max[image, j, bins])
            if result.bin_min is not None else (None, None)
        )
        out.append(FeatureHistogram(
            e, result.counts[image, j, bins],
            float(result.min[image, j]), float(result.max[image, j]),
            float(np.sqrt(var[j])), *extremes,
        ))
    return out


def kl_to_normal(result, grid, image=0):
    """Per-feature ``KL(marginal || N(0, 1))`` from merged histogram statistics.

    Mirrors :func:`destructors._entropy.marginal_kl_to_normal`: the entropy
    uses ``ceil(sqrt(n))`` equal bins over ``[min, max]`` with the
    Miller-Madow correction, their counts read off the fine histogram (its
    cumulative counts interpolated linearly inside each fine bin), and the
    second moment is exact.

    Parameters
    ----------
    result : HistogramStats
        Merged :class:`Histograms` statistics.
    grid : Grid
        The grid of that image.
    image : int, default=0
        Which image.

    Returns
    -------
    kl : ndarray of shape (n_features,)
        Non-negative estimates (``inf`` for a constant feature).

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._entropy import marginal_kl_to_normal
    >>> from destructors._stats import Grid, Histograms, kl_to_normal
    >>> Y = np.random.default_rng(0).gamma(2.0, size=(20000, 2))
    >>> grid = Grid.uniform(Y.min(axis=0), Y.max(axis=0))
    >>> kl = kl_to_normal(Histograms([grid]).compute(Y), grid)
    >>> bool(np.allclose(kl, marginal_kl_to_normal(Y), atol=2e-3))
    True
    """
    n = result.n
    shift = result.shift[image]
    second = result.s2[image] / n + 2.0 * shift * result.s1[image] / n + shift**2
    n_bins = int(np.ceil(np.sqrt(n)))
    kl = np.empty(grid.edges.shape[0])
    for j in range(kl.size):
        lo, hi = result.min[image, j], result.max[image, j]
        if hi <= lo:
            kl[j] = np.inf
            continue
        e = grid.feature(j)
        counts = result.counts[image, j, : e.size - 1]
        x = np.r_[lo, np.clip(e[1:-1], lo, hi), hi]
        cum = np.r_[0.0, np.cumsum(counts)[:-1], n]
        coarse = np.diff(np.interp(np.linspace(lo, hi, n_bins + 1), x, cum))
        p = coarse[coarse > 1e-9] / n
        width = (hi - lo) / n_bins
        entropy = -np.sum(p * np.log(p / width)) + (p.size - 1) / (2.0 * n)
        kl[j] = -entropy + _HALF_LOG_2PI + 0.5 * second[j]
    return np.maximum(kl, 0.0)


# Constants of the splitmix64 finalizer (Steele, Lea & Flood 2014): a
# bijective mixing of 64-bit integers whose outputs look uniform.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def row_keys(rows, seed):
    """Seeded pseudo-random 64-bit keys of global row indices.

    A row's key depends only on its index and the seed, so the rows with
    the smallest keys are the same subsample however the data are split
    into blocks (see :class:`RowSample`).

    Parameters
    ----------
    rows : ndarray of int
        Global row indices (non-negative).
    seed : int
        Seed, in ``[0, 2**63)``.

    Returns
    -------
    keys : ndarray of uint64
        One key per row.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._stats import row_keys
    >>> bool((row_keys(np.arange(5), 0) == row_keys(np.arange(5), 0)).all())
    True
    """
    x = np.asarray(rows, dtype=np.uint64) + np.full(1, seed, dtype=np.uint64) * _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _MIX1  # uint64 arrays wrap modulo 2**64
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def sample_rows(rows, size, seed):
    """The ``size`` rows of ``rows`` with the smallest keys, in increasing order.

    A uniform random subset without replacement (all rows when there are at
    most ``size``). Equal keys (a 64-bit collision) are ordered by row index,
    so the choice is never left to chance.

    Parameters
    ----------
    rows : ndarray of int
        Global row indices, without repeats.
    size : int
        Rows to keep.
    seed : int
        Seed of :func:`row_keys`.

    Returns
    -------
    chosen : ndarray of int
        Sorted subset of ``rows``.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._stats import sample_rows
    >>> sample_rows(np.arange(10), 3, seed=0).size
    3
    """
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size <= size:
        return np.sort(rows)
    order = np.lexsort((rows, row_keys(rows, seed)))
    return np.sort(rows[order[:size]])


class RowSample:
    """A seeded subsample of at most ``size`` rows, chosen by global row index.

    A row is kept when its key (:func:`row_keys` of its index in the whole
    data) is among the ``size`` smallest: the bottom-k sample, which merges
    exactly, so the kept rows, and their order (by index), do not depend on
    how the data are split into blocks. It needs each block's global row
    indices (``needs_rows``); the result equals
    ``Y[sample_rows(np.arange(n), size, seed)]`` on the whole data.

    Parameters
    ----------
    size : int
        Rows to keep.
    seed : int
        Seed of the keys.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._stats import RowSample, sample_rows
    >>> Y = np.random.default_rng(0).normal(size=(100, 2))
    >>> stat = RowSample(10, seed=3)
    >>> parts = [stat.compute(Y[i:i + 30], np.arange(i, min(i + 30, 100)))
    ...          for i in range(0, 100, 30)]
    >>> merged = parts[0]
    >>> for part in parts[1:]:
    ...     merged = stat.merge(merged, part)
    >>> bool(np.array_equal(merged.Y, Y[sample_rows(np.arange(100), 10, 3)]))
    True
    """

    needs_rows = True

    def __init__(self, size, seed):
        self.size = int(size)
        self.seed = int(seed)

    def compute(self, Y, rows):
        """The block's candidates: its rows with the smallest keys."""
        keep = np.searchsorted(rows, sample_rows(rows, self.size, self.seed))
        return RowSampleStats(np.asarray(rows, dtype=np.int64)[keep], Y[keep])

    def merge(self, a, b):
        """The rows of two blocks' samples with the smallest keys."""
        rows = np.concatenate([a.rows, b.rows])
        order = np.argsort(rows, kind="stable")
        rows, Y = rows[order], np.concatenate([a.Y, b.Y])[order]
        keep = np.searchsorted(rows, sample_rows(rows, self.size, self.seed))
        return RowSampleStats(rows[keep], Y[keep])


class RowSampleStats(NamedTuple):
    """Global indices (increasing) and values of the sampled rows.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._stats import RowSample
    >>> Y = np.arange(20.0).reshape(10, 2)
    >>> stats = RowSample(3, seed=0).compute(Y, np.arange(10))
    >>> stats.rows.size, bool(np.array_equal(stats.Y, Y[stats.rows]))
    (3, True)
    """

    rows: np.ndarray
    Y: np.ndarray


def content_keys(Y, seed):
    """Seeded pseudo-random 64-bit keys of rows' values: equal rows, equal keys.

    Each feature's float64 bits are mixed into the key in turn (``-0.0`` is
    taken as ``0.0``, which it equals), so a key depends only on the row's
    values and the seed, never on where the row is.

    Parameters
    ----------
    Y : ndarray of shape (n_rows, n_features)
        Finite float64 rows.
    seed : int
        Seed, in ``[0, 2**62)``.

    Returns
    -------
    keys : ndarray of uint64
        One key per row.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._stats import content_keys
    >>> keys = content_keys(np.array([[1.0, 2.0], [1.0, 2.0], [2.0, 1.0]]), 0)
    >>> bool(keys[0] == keys[1]), bool(keys[0] == keys[2])
    (True, False)
    """
    bits = (np.asarray(Y, dtype=np.float64) + 0.0).view(np.uint64)
    keys = np.zeros(bits.shape[0], dtype=np.uint64)
    for j in range(bits.shape[1]):
        keys = row_keys(keys ^ bits[:, j], seed + j)
    return keys


class DistinctRowSample:
    """How many copies of each of the ``size`` distinct rows with the smallest keys.

    The distinct rows are ranked by :func:`content_keys` of their values, a
    bottom-k sample of distinct rows that merges exactly: a row among the
    ``size`` smallest keys of the whole data is among them in every block
    that holds a copy, so its copies are all counted, whatever the
    chunking. Over the sampled rows, ``sum(counts - 1) / sum(counts)``
    estimates the share of rows that copy another (exact when the data
    hold at most ``size`` distinct rows); every copy of a row is sampled
    with it, so duplicates are not diluted as in a sample of rows.

    Parameters
    ----------
    size : int
        Distinct rows to keep.
    seed : int, default=0
        Seed of the keys.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._stats import DistinctRowSample
    >>> Y = np.repeat(np.arange(6.0).reshape(3, 2), [1, 2, 3], axis=0)
    >>> stat = DistinctRowSample(10)
    >>> result = stat.merge(stat.compute(Y[:4]), stat.compute(Y[4:]))
    >>> sorted(result.counts.tolist()), int(result.n_duplicated())
    ([1, 2, 3], 3)
    """

    def __init__(self, size, seed=0):
        self.size = int(size)
        self.seed = int(seed)

    def compute(self, Y):
        """The block's distinct rows with the smallest keys and their counts."""
        keys, counts = np.unique(content_keys(Y, self.seed), return_counts=True)
        return DistinctRowStats(keys[: self.size], counts[: self.size].astype(np.int64))

    def merge(self, a, b):
        """Counts added over both blocks, then the ``size`` smallest keys kept."""
        keys, inverse = np.unique(np.concatenate([a.keys, b.keys]), return_inverse=True)
        counts = np.zeros(keys.size, dtype=np.int64)
        np.add.at(counts, inverse, np.concatenate([a.counts, b.counts]))
        return DistinctRowStats(keys[: self.size], counts[: self.size])


class DistinctRowStats(NamedTuple):
    """Keys (increasing) of the sampled distinct rows and their numbers of copies.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._stats import DistinctRowSample
    >>> stats = DistinctRowSample(10).compute(np.array([[1.0, 2.0], [1.0, 2.0], [3.0, 4.0]]))
    >>> stats.n_rows(), stats.n_duplicated()
    (3, 1)
    """

    keys: np.ndarray
    counts: np.ndarray

    def n_rows(self):
        """Rows the sample covers (every copy of each sampled row)."""
        return int(self.counts.sum())

    def n_duplicated(self):
        """Rows of the sample that copy another row of it."""
        return int((self.counts - 1).sum())
