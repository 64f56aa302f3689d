"""Numba kernels of the fit: rotate rows and score their marginals in one pass.

Choosing a rotation (:func:`destructors.rotation.score_candidates`) rotates
the data by each candidate and sums the histogram estimates of
``KL(marginal || N(0, 1))`` of the result
(:func:`destructors._entropy.marginal_kl_to_normal`, the NumPy reference of
these kernels). Here the scored rows are gathered once as columns; each
candidate's rotated columns are computed with the innermost loop along the
rows (it vectorizes), then each column's extremes, sum of squares and
histogram are gathered from its contiguous values: no temporary arrays
beyond a candidate's buffers, one call for all candidates.

The rotation is the arithmetic of the fused kernel's affine step
(:mod:`destructors._fused`): ``t = x - pre``, then ``sum_b matrix[a, b] *
t[b]`` in order of ``b``, plus ``post``; only the loops are exchanged. So a
rotated row is bit-for-bit the layer's own ``_forward`` output and can be
kept as that output; the histogram bins are those of the reference (the
same ``floor((x - lo) / width)``), so the scores agree with it to
rounding. Each candidate is computed by one thread from start to end, so
the scores do not depend on the number of threads.

The marginal fit's searches (:func:`knot_cdfs`) are here too: the
quantile knots of sorted samples and the kernel-smoothed CDF at them.

This module works on arrays only and imports no estimator.
"""

import math

import numpy as np
from numba import njit, prange

from ._kernels import parallel_and_serial, use_parallel

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
# Two scores closer than this fraction of the best's size (at least 1) are a
# tie, decided by order: the last bits of two sums (which differ between
# BLAS builds, compilers and thread counts) must never choose a model.
TIE_MARGIN = 1e-9
# Two knot abscissae closer than this many float64 epsilons (relative to the
# larger) are one value: distinct data can meet within a few ulps by
# construction (a pair of rows with swapped normal scores, rotated by 45
# degrees), and whether they meet exactly is decided by rounding, which
# must not decide how many knots a map has.
KNOT_TIE_REL = 16 * np.finfo(np.float64).eps
# Below this many multiply-adds in all, one thread: on the 2-core machine
# under load, scoring 5 candidates on 20,000 x 7 rows took 7.8 ms of CPU on
# two threads against 5.6 ms on one, with no gain in wall time.
_PARALLEL_MIN_WORK = 50_000_000
# Below this many sample values, the knot searches run on one thread: on the
# loaded 2-core machine 30,000 x 7 took 2.7 ms of CPU serially and 6.8 ms
# on two threads, with no gain in wall time.
_KNOTS_PARALLEL_MIN = 2_000_000


@njit(cache=True)
def _kl_columns(Z, lo, hi, sq, counts, kl):
    """Histogram ``KL(column || N(0, 1))`` of each column of ``Z`` (see the reference).

    One sweep over the rows in memory order fills every column's histogram
    (``counts`` has a row per column), then each column's entropy.
    """
    m, d = Z.shape
    n_bins = counts.shape[1]
    width = np.empty(d)
    for a in range(d):
        width[a] = (hi[a] - lo[a]) / n_bins
        for k in range(n_bins):
            counts[a, k] = 0
    for r in range(m):
        for a in range(d):
            if not hi[a] > lo[a]:
                continue  # constant: no bins (its KL is set below)
            k = int(math.floor((Z[r, a] - lo[a]) / width[a]))
            if k < 0:
                k = 0
            elif k > n_bins - 1:
                k = n_bins - 1
            counts[a, k] += 1
    for a in range(d):
        if not hi[a] > lo[a]:
            kl[a] = np.inf  # a constant column: entropy -inf
            continue
        plogp = 0.0
        occupied = 0
        for k in range(n_bins):
            c = counts[a, k]
            if c > 0:
                p = c / m
                plogp += p * math.log(p)
                occupied += 1
        entropy = -plogp + math.log(width[a]) + (occupied - 1) / (2.0 * m)
        value = -entropy + _HALF_LOG_2PI + 0.5 * (sq[a] / m)
        kl[a] = max(value, 0.0)


@njit(inline="always", cache=True)
def knots_distinct(prev, v):
    """Whether knot ``v`` lies beyond ``prev`` by more than rounding (:data:`KNOT_TIE_REL`)."""
    return v - prev > KNOT_TIE_REL * max(abs(prev), abs(v))


@njit(cache=True)
def tie_slack(best):
    """How far below ``best`` a score still ties with it: ``TIE_MARGIN * max(1, |best|)``.

    Zero for an infinite (or NaN) ``best``: that is matched exactly, and
    ``best`` minus the slack stays a number.

    Examples
    --------
    >>> from destructors._fitkernels import tie_slack
    >>> tie_slack(0.5), tie_slack(-float("inf"))
    (1e-09, 0.0)
    """
    if not math.isfinite(best):
        return 0.0
    return TIE_MARGIN * max(1.0, abs(best))


@njit(cache=True)
def first_best(scores):
    """Index of the first score that ties with the largest (see :data:`TIE_MARGIN`).

    The choice of every "pick the best candidate" in the library: the
    earliest candidate (the simpler or the default, where the order says so)
    within :func:`tie_slack` of the largest finite score, so that a choice
    never turns on rounding. An infinite largest score is matched exactly;
    NaN scores are never chosen; with no number at all, the first.

    Parameters
    ----------
    scores : ndarray of shape (n_candidates,)
        Larger is better.

    Returns
    -------
    index : int

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._fitkernels import first_best
    >>> first_best(np.array([1.0, 1.0 + 1e-12, 0.5]))  # equal up to rounding
    0
    >>> first_best(np.array([1.0, 1.1, np.nan]))
    1
    """
    top = -np.inf
    for s in scores:
        if s > top:
            top = s
    if top == np.inf or top == -np.inf:
        for i in range(scores.shape[0]):
            if scores[i] == top:
                return i
        return 0
    floor = top - tie_slack(top)
    for i in range(scores.shape[0]):
        if scores[i] >= floor:
            return i
    return 0


def ranked_by_score(scores):
    """Indices from the best score to the worst, ties (:func:`tie_slack`) by position.

    The order of repeated :func:`first_best` picks: the earliest remaining
    candidate within the slack of the best remaining one comes next, so
    two scores equal up to rounding keep their given order, which an
    (even stable) argsort would leave to the last bit.

    Parameters
    ----------
    scores : array-like of shape (n_candidates,)
        Larger is better.

    Returns
    -------
    order : ndarray of int of shape (n_candidates,)

    Examples
    --------
    >>> from destructors._fitkernels import ranked_by_score
    >>> ranked_by_score([0.5, 1.0, 1.0 + 1e-12]).tolist()
    [1, 2, 0]
    """
    remaining = np.asarray(scores, dtype=np.float64)
    position = np.arange(remaining.shape[0])
    order = np.empty(remaining.shape[0], dtype=np.int64)
    for r in range(order.shape[0]):
        i = first_best(remaining)
        order[r] = position[i]
        remaining, position = np.delete(remaining, i), np.delete(position, i)
    return order


@njit(cache=True)
def _column_stats(Z, lo, hi, sq):
    """Column minima, maxima and sums of squares of ``Z`` in one sweep (rows in order)."""
    m, d = Z.shape
    for a in range(d):
        lo[a] = np.inf
        hi[a] = -np.inf
        sq[a] = 0.0
    for r in range(m):
        for a in range(d):
            v = Z[r, a]
            if v < lo[a]:
                lo[a] = v
            if v > hi[a]:
                hi[a] = v
            sq[a] += v * v


@njit(cache=True)
def _marginal_kl_kernel(Z, n_bins, kl):
    d = Z.shape[1]
    lo, hi, sq = np.empty(d), np.empty(d), np.empty(d)
    _column_stats(Z, lo, hi, sq)
    _kl_columns(Z, lo, hi, sq, np.empty((d, n_bins), dtype=np.int64), kl)


@njit(cache=True)
def _rotate_columns(G, mat, pre, post, T, out):
    """``out[a] = sum_b mat[a, b] * (G[b] - pre[b]) + post[a]``, whole columns at a time.

    ``G`` holds the rows to rotate as columns (``G[b, r]`` is feature ``b``
    of row ``r``). Each output element is the fused affine step's
    arithmetic in its order (``t = x - pre``, the sum over ``b`` in order
    from 0, then ``+ post``), so the same number; only the loops are
    exchanged, so that the innermost runs along contiguous rows and
    vectorizes.
    """
    d, m = G.shape
    shifted = False
    for b in range(d):
        shifted = shifted or pre[b] != 0.0
    if shifted:
        for b in range(d):
            for r in range(m):
                T[b, r] = G[b, r] - pre[b]
    else:
        T = G  # x - 0.0 is x, even for -0.0
    for a in range(d):
        acc = out[a]
        c = mat[a, 0]
        t = T[0]
        for r in range(m):
            acc[r] = 0.0 + c * t[r]  # (0.0 + -0.0 is 0.0, as the sum from 0 gives)
        for b in range(1, d):
            c = mat[a, b]
            t = T[b]
            for r in range(m):
                acc[r] += c * t[r]
        p = post[a]
        for r in range(m):
            acc[r] = acc[r] + p


# Rows per block of _rotate_blocked: its column buffers stay in the L1 cache.
_ROTATE_BLOCK = 256


@njit(cache=True)
def _rotate_blocked(X, rows, mat, pre, post, out, in_place=False):
    """``out[r] = (X[rows[r]] - pre) @ mat.T + post`` by blocks of rows turned into columns.

    :func:`_rotate_columns` on each block of rows (gathered as columns,
    then written back as rows): the fused affine step's numbers, with the
    innermost loops along contiguous rows. With ``in_place`` the rows are
    written to ``out[rows[r]]`` instead (``out`` then has ``X``'s shape).
    """
    m = rows.shape[0] if in_place else out.shape[0]
    d = X.shape[1]
    G = np.empty((d, _ROTATE_BLOCK))
    T = np.empty((d, _ROTATE_BLOCK))
    Zc = np.empty((d, _ROTATE_BLOCK))
    for start in range(0, m, _ROTATE_BLOCK):
        size = min(_ROTATE_BLOCK, m - start)
        g, t, z = G[:, :size], T[:, :size], Zc[:, :size]
        for r in range(size):
            i = start + r if rows.shape[0] == 0 else rows[start + r]
            for b in range(d):
                g[b, r] = X[i, b]
        _rotate_columns(g, mat, pre, post, t, z)
        for r in range(size):
            o = rows[start + r] if in_place else start + r
            for a in range(d):
                out[o, a] = z[a, r]


@njit(cache=True)
def _kl_of_columns(Zc, counts, index):
    """Summed histogram ``KL(column || N(0, 1))`` of the rows of ``Zc`` (one column each).

    The arithmetic of :func:`_kl_columns` (extremes, sum of squares in row
    order, the same bins), on contiguous columns.
    """
    d, m = Zc.shape
    n_bins = counts.shape[0]
    # Each column's extremes and sum of squares in row order, all columns in
    # one loop: their d chains of additions run side by side.
    los, his, sqs = np.empty(d), np.empty(d), np.empty(d)
    _column_stats(Zc.T, los, his, sqs)
    total = 0.0
    for a in range(d):
        z = Zc[a]
        lo, hi, sq = los[a], his[a], sqs[a]
        if not hi > lo:
            total += np.inf  # a constant column: entropy -inf
            continue
        width = (hi - lo) / n_bins
        for r in range(m):
            k = int(math.floor((z[r] - lo) / width))
            index[r] = min(max(k, 0), n_bins - 1)
        for k in range(n_bins):
            counts[k] = 0
        for r in range(m):
            counts[index[r]] += 1
        plogp = 0.0
        occupied = 0
        for k in range(n_bins):
            c = counts[k]
            if c > 0:
                p = c / m
                plogp += p * math.log(p)
                occupied += 1
        entropy = -plogp + math.log(width) + (occupied - 1) / (2.0 * m)
        value = -entropy + _HALF_LOG_2PI + 0.5 * (sq / m)
        total += max(value, 0.0)
    return total


def _score_all(X, rows, mats, pres, posts, n_bins, keep, scores, best_out, every_row, rest):
    """Summed marginal KL of each candidate's rotated rows; keep the best's rows.

    With ``keep``, ``every_row`` and ``rows`` given, ``best_out`` (of
    ``X``'s shape) receives the winner's output on every row of ``X``: its
    scored rows from its scoring buffers, the others (``rest``) rotated.
    """
    n_cand = mats.shape[0]
    m = X.shape[0] if rows.shape[0] == 0 else rows.shape[0]
    d = X.shape[1]
    every_row = keep and every_row and rows.shape[0] > 0
    # The scored rows once as columns; then each candidate independently
    # (any thread may take any one) in its own column buffers, all of them
    # kept when the winner's scored rows are reused (a subsample, so bounded).
    G = np.empty((d, m))
    for r in range(m):
        i = r if rows.shape[0] == 0 else rows[r]
        for b in range(d):
            G[b, r] = X[i, b]
    kept = np.empty((n_cand if every_row else 0, d, m))
    for c in prange(n_cand):
        T = np.empty((d, m))
        Zc = kept[c] if every_row else np.empty((d, m))
        _rotate_columns(G, mats[c], pres[c], posts[c], T, Zc)
        scores[c] = _kl_of_columns(Zc, np.empty(n_bins, dtype=np.int64),
                                   np.empty(m, dtype=np.int64))
    if keep:
        # The first best (PCA, listed first, wins ties), decided after all
        # scores are known, so the choice is independent of the schedule.
        best = first_best(scores)
        if every_row:
            # Its scored rows as computed (the affine step's numbers, see
            # _rotate_columns), the others rotated now: a third of the
            # rotation work at the default subsample, not all of it again.
            Zb = kept[best]
            for r in range(m):
                i = rows[r]
                for a in range(d):
                    best_out[i, a] = Zb[a, r]
            if rest.shape[0] > 0:  # (no rows means all rows to _rotate_blocked)
                _rotate_blocked(X, rest, mats[best], pres[best], posts[best], best_out, True)
        else:
            # Its rows rotated once more in row order (the same arithmetic,
            # so the same numbers) rather than every candidate's kept.
            _rotate_blocked(X, rows, mats[best], pres[best], posts[best], best_out)


_score_all_parallel, _score_all_serial = parallel_and_serial(_score_all)


def rotated_marginal_kl(X, matrices, pres, posts=None, rows=None, keep_best=False,
                        every_row=False):
    """Summed histogram ``KL(marginal || N(0, 1))`` of ``(X[rows] - pre) @ matrix.T + post``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Float64 data.
    matrices : ndarray of shape (n_candidates, n_features, n_features)
        One linear map per candidate.
    pres : ndarray of shape (n_candidates, n_features)
        Shifts subtracted before each map.
    posts : ndarray of shape (n_candidates, n_features) or None, default=None
        Shifts added after each map; ``None`` means zeros.
    rows : ndarray of int or None, default=None
        Rows to score; ``None`` means all, in order.
    keep_best : bool, default=False
        Also return the rotated rows of the first best-scoring candidate.
    every_row : bool, default=False
        With ``keep_best``, return the winner's output on every row of
        ``X`` (in order), not only on ``rows``: the scored rows' output is
        reused from the scoring, the others are rotated.

    Returns
    -------
    scores : ndarray of shape (n_candidates,)
        As ``marginal_kl_to_normal(Z).sum()`` for each candidate's output
        ``Z``, to rounding.
    best_rows : ndarray of shape (n_rows, n_features)
        Only with ``keep_best``: the winner's rotated rows (of all of ``X``
        with ``every_row``), bit-for-bit the output of the fused affine step.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._entropy import marginal_kl_to_normal
    >>> from destructors._fitkernels import rotated_marginal_kl
    >>> X = np.random.default_rng(0).exponential(size=(1000, 2))
    >>> Q = np.array([[[1.0, 0.0], [0.0, 1.0]], [[0.6, 0.8], [-0.8, 0.6]]])
    >>> scores = rotated_marginal_kl(X, Q, np.zeros((2, 2)))
    >>> bool(np.isclose(scores[1], marginal_kl_to_normal(X @ Q[1].T).sum()))
    True
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    matrices = np.ascontiguousarray(matrices, dtype=np.float64)
    pres = np.ascontiguousarray(pres, dtype=np.float64)
    posts = np.zeros_like(pres) if posts is None else np.ascontiguousarray(posts, np.float64)
    rows = np.zeros(0, np.int64) if rows is None else np.ascontiguousarray(rows, np.int64)
    n_rows = X.shape[0] if rows.size == 0 else rows.size
    d = X.shape[1]
    n_cand = matrices.shape[0]
    scores = np.empty(n_cand)
    every_row = bool(keep_best and every_row and rows.size)
    rest = np.zeros(0, np.int64)
    if every_row:
        unscored = np.ones(X.shape[0], dtype=bool)
        unscored[rows] = False
        rest = np.flatnonzero(unscored)
    best = np.empty((X.shape[0] if every_row else n_rows, d) if keep_best else (0, d))
    n_bins = int(np.ceil(np.sqrt(n_rows)))
    work = n_cand * n_rows * d * d
    parallel = work >= _PARALLEL_MIN_WORK and n_cand > 1
    kernel = _score_all_parallel if parallel and use_parallel(work) else _score_all_serial
    kernel(X, rows, matrices, pres, posts, n_bins, keep_best, scores, best, every_row, rest)
    return (scores, best) if keep_best else scores


def marginal_kl(Z):
    """Histogram ``KL(column || N(0, 1))`` of each column, as the NumPy reference.

    :func:`destructors._entropy.marginal_kl_to_normal` in two sweeps over
    the rows (extremes and sums of squares, then the histograms) and no
    temporaries (to rounding).

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features)
        Samples, at least two rows.

    Returns
    -------
    kl : ndarray of shape (n_features,)
        Non-negative estimates (``inf`` for a constant column).

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._entropy import marginal_kl_to_normal
    >>> from destructors._fitkernels import marginal_kl
    >>> Z = np.random.default_rng(0).gamma(2.0, size=(5000, 3))
    >>> bool(np.allclose(marginal_kl(Z), marginal_kl_to_normal(Z)))
    True
    """
    Z = np.ascontiguousarray(Z, dtype=np.float64)
    kl = np.empty(Z.shape[1])
    _marginal_kl_kernel(Z, int(np.ceil(np.sqrt(Z.shape[0]))), kl)
    return kl


def rotate(X, matrix, pre, post=None):
    """``(X - pre) @ matrix.T + post``, bit-for-bit as the fused affine step, on one thread.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Float64 data.
    matrix : ndarray of shape (n_features, n_features)
        The linear map.
    pre, post : ndarray of shape (n_features,)
        Shifts before and after it (``post=None``: zeros).

    Returns
    -------
    Z : ndarray of shape (n_samples, n_features)
        The rotated rows.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._fitkernels import rotate
    >>> rotate(np.array([[1.0, 2.0]]), np.array([[0.0, 1.0], [1.0, 0.0]]), np.zeros(2)).tolist()
    [[2.0, 1.0]]
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    d = X.shape[1]
    post = np.zeros(d) if post is None else np.asarray(post, dtype=np.float64)
    out = np.empty_like(X)
    _rotate_blocked(X, np.zeros(0, np.int64), np.ascontiguousarray(matrix, dtype=np.float64),
                    np.ascontiguousarray(pre, dtype=np.float64),
                    np.ascontiguousarray(post, dtype=np.float64), out)
    return out


@njit(inline="always", cache=True)
def _interp2(v, x, f, g, f_left, f_right, g_left, g_right):
    """``np.interp(v, x, f)`` and ``np.interp(v, x, g)`` at one point, one search.

    The arithmetic of NumPy's ``interp`` (segment ``j`` with ``x[j] <= v <
    x[j + 1]``, ``slope * (v - x[j]) + f[j]``, exact hits return ``f[j]``,
    the other end when that is NaN), so the same numbers; ``x`` sorted.
    """
    n = x.shape[0]
    if v < x[0]:
        return f_left, g_left
    if v > x[n - 1]:
        return f_right, g_right
    if v == x[n - 1]:
        return f[n - 1], g[n - 1]
    # The last j <= n - 2 with x[j] <= v (x[0] <= v < x[n - 1] here), by a
    # binary search whose step is a select, not a branch the data decide.
    j = 0
    length = n - 1
    while length > 1:
        half = length >> 1
        j = j + half if x[j + half] <= v else j
        length -= half
    if x[j] == v:
        return f[j], g[j]
    dx = x[j + 1] - x[j]
    return _interp_segment(v, x, f, j, dx), _interp_segment(v, x, g, j, dx)


@njit(inline="always", cache=True)
def _cdf_pair_from(v, x, hint):
    """``np.interp`` of the plotting positions and of one minus them at ``v``, from a hint.

    The positions ``(i + 0.5) / n`` and ``1 - (i + 0.5) / n`` are computed
    where needed, as NumPy computes them (``(arange(n) + 0.5) / n``), so
    only the sample is read: the searches stay in cache. Ends as the
    empirical CDF's: 0 and 1 below the sample, 1 and 0 above it. The search
    starts at ``hint`` (``x[hint] <= v`` whenever ``v >= x[0]``), gallops,
    then bisects the last stride: the same segment as a full search (the
    last ``j <= n - 2`` with ``x[j] <= v``) in a few cached steps when the
    queries come in increasing order. Returns both values and that segment,
    the next query's hint.
    """
    n = x.shape[0]
    if v < x[0]:
        return 0.0, 1.0, hint
    if v > x[n - 1]:
        return 1.0, 0.0, hint
    if v == x[n - 1]:
        p = (n - 1 + 0.5) / n
        return p, 1.0 - p, hint
    lo = hint  # x[lo] <= v < x[n - 1]
    step = 1
    hi = lo + 1
    while hi < n - 1 and x[hi] <= v:
        lo = hi
        step *= 2
        hi = lo + step
    if hi > n - 1:
        hi = n - 1
    while hi - lo > 1:  # x[lo] <= v < x[hi]
        mid = (lo + hi) >> 1
        if x[mid] <= v:
            lo = mid
        else:
            hi = mid
    j = lo
    p0 = (j + 0.5) / n
    if x[j] == v:
        return p0, 1.0 - p0, j
    p1 = (j + 1 + 0.5) / n
    dx = x[j + 1] - x[j]
    return (_segment_value(v, x, j, dx, p0, p1), _segment_value(v, x, j, dx, 1.0 - p0, 1.0 - p1),
            j)


@njit(inline="always", cache=True)
def _segment_value(v, x, j, dx, f0, f1):
    """NumPy's ``interp`` on segment ``j`` with ordinates ``f0``, ``f1``."""
    slope = (f1 - f0) / dx
    r = slope * (v - x[j]) + f0
    if np.isnan(r):
        r = slope * (v - x[j + 1]) + f1
        if np.isnan(r) and f0 == f1:
            r = f0
    return r


@njit(inline="always", cache=True)
def _interp_segment(v, x, f, j, dx):
    slope = (f[j + 1] - f[j]) / dx
    r = slope * (v - x[j]) + f[j]
    if np.isnan(r):
        r = slope * (v - x[j + 1]) + f[j + 1]
        if np.isnan(r) and f[j] == f[j + 1]:
            r = f[j]
    return r


@njit(cache=True)
def _interp_pair(s, x, f, g, f_left, f_right, g_left, g_right, out_f, out_g):
    """:func:`_interp2` at every point of ``s``."""
    for i in range(s.shape[0]):
        out_f[i], out_g[i] = _interp2(s[i], x, f, g, f_left, f_right, g_left, g_right)


def interp_pair(s, x, f, g, f_ends, g_ends):
    """Two ``np.interp`` calls on one sorted abscissa, sharing the search.

    Parameters
    ----------
    s : ndarray
        Points to evaluate (any shape).
    x : ndarray of shape (n,)
        Sorted abscissae (ties allowed).
    f, g : ndarray of shape (n,)
        Ordinates.
    f_ends, g_ends : tuple of float
        ``(left, right)`` values beyond the ends, as ``np.interp``'s.

    Returns
    -------
    fs, gs : ndarray of the shape of ``s``
        ``np.interp(s, x, f, *f_ends)`` and ``np.interp(s, x, g, *g_ends)``.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._fitkernels import interp_pair
    >>> x = np.array([0.0, 1.0, 1.0, 3.0]); f = np.arange(4.0); g = 1.0 - f
    >>> s = np.array([-1.0, 0.5, 1.0, 2.0, 4.0])
    >>> fs, gs = interp_pair(s, x, f, g, (0.0, 1.0), (1.0, 0.0))
    >>> bool(np.array_equal(fs, np.interp(s, x, f, 0.0, 1.0)))
    True
    """
    s = np.asarray(s, dtype=np.float64)
    flat = np.ascontiguousarray(s.ravel())
    out_f, out_g = np.empty_like(flat), np.empty_like(flat)
    _interp_pair(flat, np.ascontiguousarray(x, dtype=np.float64),
                 np.ascontiguousarray(f, dtype=np.float64),
                 np.ascontiguousarray(g, dtype=np.float64),
                 float(f_ends[0]), float(f_ends[1]), float(g_ends[0]), float(g_ends[1]),
                 out_f, out_g)
    return out_f.reshape(s.shape), out_g.reshape(s.shape)


def _knot_cdfs(XT, levels, positions, sf, shifts, smooth, xk, starts, counts, cdf_s, sf_s,
               n_unique):
    """Every feature's quantile knots and its smoothed CDF at them, one feature a thread.

    Row ``j`` of ``XT`` is feature ``j``'s sorted sample. As
    ``marginal._knots_from_cdf`` on the plotting positions: ``xk =
    np.interp(levels, positions, x)``, then the first of each run of values
    tied up to rounding (:data:`KNOT_TIE_REL`) kept (``starts`` their level
    indices, ``counts`` how many); where
    ``smooth[j]``, ``np.interp`` of the CDF and the survival function at ``xk -
    shift`` for every kept knot and node. ``n_unique`` counts distinct values.
    """
    d, n = XT.shape
    m = levels.shape[0]
    n_nodes = shifts.shape[1]
    for j in prange(d):
        x = XT[j]
        count = 0
        prev = 0.0
        for k in range(m):
            v = _interp2(levels[k], positions, x, x, x[0], x[n - 1], x[0], x[n - 1])[0]
            if k == 0 or knots_distinct(prev, v):
                xk[j, count] = v
                starts[j, count] = k
                count += 1
            prev = v
        counts[j] = count
        if count >= 2 and smooth[j]:
            # For each node the shifted knots increase with k: each search
            # starts where the previous knot's ended.
            hints = np.zeros(n_nodes, dtype=np.int64)
            for k in range(count):
                for g in range(n_nodes):
                    c, s, hints[g] = _cdf_pair_from(xk[j, k] - shifts[j, g], x, hints[g])
                    cdf_s[j, k, g] = c
                    sf_s[j, k, g] = s
        unique = 1
        for i in range(1, n):
            if x[i] > x[i - 1]:
                unique += 1
        n_unique[j] = unique


_knot_cdfs_parallel, _knot_cdfs_serial = parallel_and_serial(_knot_cdfs)


def knot_cdfs(XT, levels, shifts, smooth):
    """Quantile knots of sorted samples and their kernel-smoothed CDFs, all features at once.

    The search-heavy part of :func:`destructors.marginal.gaussian_knots` for
    every feature (the knots' levels, the merging of tied knots, and the
    ``np.interp`` of the empirical CDF and survival function at each knot
    shifted by each Gauss-Hermite node), compiled, one feature per thread
    (so the numbers do not depend on the number of threads). The same
    numbers as NumPy's ``interp``: the NumPy path of ``gaussian_knots`` is
    the reference.

    Parameters
    ----------
    XT : ndarray of shape (n_features, n)
        Each row a sorted finite sample, ``n >= 2``.
    levels : ndarray of shape (m,)
        Quantile levels, increasing.
    shifts : ndarray of shape (n_features, n_nodes)
        Per feature, the bandwidth times the nodes.
    smooth : ndarray of bool of shape (n_features,)
        Which features need the smoothed CDF (the others get zeros).

    Returns
    -------
    xk : ndarray of shape (n_features, m)
        Distinct knots, the first ``counts[j]`` of row ``j`` valid.
    starts : ndarray of shape (n_features, m)
        The level index of each distinct knot (the first of its run of ties).
    counts : ndarray of shape (n_features,)
        Distinct knots per feature.
    cdf, sf : ndarray of shape (n_features, m, n_nodes)
        The empirical CDF through the plotting positions ``(i + 0.5) / n``,
        and one minus it, at ``xk[j, k] - shifts[j, g]`` (zero and one
        beyond the sample), where ``smooth[j]`` and ``counts[j] >= 2``.
    n_unique : ndarray of shape (n_features,)
        Distinct values of each sample.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._fitkernels import knot_cdfs
    >>> x = np.sort(np.random.default_rng(0).normal(size=(1, 100)), axis=1)
    >>> levels = np.linspace(0.005, 0.995, 5)
    >>> out = knot_cdfs(x, levels, np.zeros((1, 3)), np.zeros(1, bool))
    >>> xk, starts, counts, cdf, sf, n_unique = out
    >>> bool(np.array_equal(xk[0], np.interp(levels, (np.arange(100) + 0.5) / 100, x[0])))
    True
    """
    XT = np.ascontiguousarray(XT, dtype=np.float64)
    levels = np.ascontiguousarray(levels, dtype=np.float64)
    shifts = np.ascontiguousarray(shifts, dtype=np.float64)
    smooth = np.ascontiguousarray(smooth, dtype=np.bool_)
    d, n = XT.shape
    m, n_nodes = levels.shape[0], shifts.shape[1]
    positions = (np.arange(n) + 0.5) / n
    sf_positions = 1.0 - positions
    xk = np.empty((d, m))
    starts = np.empty((d, m), dtype=np.int64)
    counts = np.empty(d, dtype=np.int64)
    cdf = np.zeros((d, m, n_nodes))
    sf = np.zeros((d, m, n_nodes))
    n_unique = np.empty(d, dtype=np.int64)
    parallel = d > 1 and XT.size >= _KNOTS_PARALLEL_MIN and use_parallel(XT.size)
    kernel = _knot_cdfs_parallel if parallel else _knot_cdfs_serial
    kernel(XT, levels, positions, sf_positions, shifts, smooth, xk, starts, counts, cdf, sf,
           n_unique)
    return xk, starts, counts, cdf, sf, n_unique


@njit(cache=True)
def _column_means(X, means):
    n, d = X.shape
    for a in range(d):
        means[a] = 0.0
    for i in range(n):
        for a in range(d):
            means[a] += X[i, a]
    for a in range(d):
        means[a] = means[a] / n


@njit(cache=True)
def _centre_twice(X, mean, out):
    n, d = X.shape
    again = np.zeros(d)
    for i in range(n):
        for a in range(d):
            v = X[i, a] - mean[a]
            out[i, a] = v
            again[a] += v
    for a in range(d):
        again[a] = again[a] / n
    for i in range(n):
        for a in range(d):
            out[i, a] -= again[a]


def column_means(X):
    """``X.mean(axis=0)`` of a C-ordered array, the same numbers, in one compiled sweep.

    NumPy sums a C-ordered array's columns row after row (the reduced axis
    is not the contiguous one), then divides by the count; so does this.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        C-contiguous float64 data (NumPy sums other layouts in another
        order, so their means may differ in the last bit).

    Returns
    -------
    means : ndarray of shape (n_features,)
        The column means.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._fitkernels import column_means
    >>> X = np.random.default_rng(0).normal(size=(1000, 3))
    >>> bool(np.array_equal(column_means(X), X.mean(axis=0)))
    True
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    means = np.empty(X.shape[1])
    _column_means(X, means)
    return means


def centred_covariance(X, mean):
    """``np.cov(X - mean, rowvar=False, bias=True)``, the same numbers, with one copy of ``X``.

    NumPy's ``cov`` copies ``X - mean``, centres the copy on its own column
    means and multiplies it by its transpose; here the two centrings are one
    compiled sweep into one buffer, then the same product (the same BLAS
    call on the same operands) and the same scaling.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        C-contiguous float64 data.
    mean : ndarray of shape (n_features,)
        What to subtract first (the column means, normally).

    Returns
    -------
    cov : ndarray of shape (n_features, n_features)
        The biased covariance of the centred data.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._fitkernels import centred_covariance
    >>> X = np.random.default_rng(0).normal(size=(1000, 3))
    >>> m = X.mean(axis=0)
    >>> bool(np.array_equal(centred_covariance(X, m), np.cov(X - m, rowvar=False, bias=True)))
    True
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    Y = np.empty_like(X)
    _centre_twice(X, np.ascontiguousarray(mean, dtype=np.float64), Y)
    Yt = Y.T
    cov = np.dot(Yt, Yt.T.conj())  # np.cov's own expression, so its BLAS call
    cov *= np.true_divide(1, X.shape[0])
    return cov
