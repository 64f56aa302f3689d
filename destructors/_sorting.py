"""Sorting the rows of a float64 array: NumPy's sort, or a compiled radix sort where faster.

Every marginal fit sorts each feature's sample, once a layer, so in a deep
model the sort is a large share of the fit. NumPy's ``sort`` is a SIMD
quicksort on some CPUs and a scalar one on others: on the 2-core AMD EPYC
of 2026-12-02 (NumPy 2.4.6) it took 1.1 ms for 30,000 values, 37 % of a
greedy damped layer on 30,000 x 7, where an earlier machine sorted the
same in about 0.1 ms (by its recorded breakdown). The
least-significant-digit radix sort here (six passes of 11-bit digits over
order-preserving integer keys) sorts those values in 0.3 ms on the AMD
machine, and its work does not depend on SIMD sorting, so which is faster
depends on the machine: :func:`sort_rows` times both once per process
and uses the faster. Both give the same sorted values (a sort has one answer; only
the order of ``-0.0`` and ``0.0``, equal numbers, may differ, and NaNs,
last in both, may lose their payloads), so the choice changes the time,
never the fit.

This module works on arrays only and imports no estimator.
"""

import functools
import time

import numba
import numpy as np
from numba import njit, prange

from ._kernels import parallel_and_serial, use_parallel

_BITS = 11
_PASSES = 6  # 6 x 11 >= 64
_BUCKETS = 1 << _BITS
# Radix only where it is clearly faster than NumPy's sort on this machine.
_RADIX_ADVANTAGE = 0.8
# Below this many values in all, one thread (the rows are independent).
_PARALLEL_MIN = 500_000


@njit(inline="always", cache=True)
def _order_key(v, bits, zero_is_positive):
    """An unsigned key of the float ``v`` (whose bits are ``bits``) that orders as the number.

    Negative numbers get all bits flipped, the others the sign bit set; any
    NaN gets the largest key (NaNs go last, as NumPy sorts them). With
    ``zero_is_positive``, ``-0.0`` gets the key of ``0.0``: equal numbers,
    one key, so a stable order keeps them by position as NumPy's does.
    """
    sign = np.uint64(1) << np.uint64(63)
    if v != v:
        return ~np.uint64(0)
    if zero_is_positive and v == 0.0:
        return sign
    return ~bits if bits & sign else bits | sign


@njit(inline="always", cache=True)
def _float_of_key(k):
    """The bits of the float whose :func:`_order_key` is ``k`` (a NaN's: a quiet NaN)."""
    sign = np.uint64(1) << np.uint64(63)
    return k ^ sign if k & sign else ~k


@njit(cache=True)
def _lsd_sort(keys, spare, index, spare_index, counts):
    """Stable least-significant-digit radix sort of ``keys``, carrying ``index`` along.

    ``spare`` and ``spare_index`` are buffers of the same sizes (``index``
    and ``spare_index`` may be empty: nothing carried); ``counts`` is
    ``(_PASSES, _BUCKETS)``. The digit histograms are gathered in one sweep;
    a pass whose digit is the same for every key moves nothing and is
    skipped. Returns the arrays that hold the sorted keys and their index.
    """
    n = keys.shape[0]
    carry = index.shape[0] > 0
    mask = np.uint64(_BUCKETS - 1)
    counts[:, :] = 0
    for i in range(n):
        k = keys[i]
        for p in range(_PASSES):
            counts[p, (k >> np.uint64(_BITS * p)) & mask] += 1
    src, dst, src_i, dst_i = keys, spare, index, spare_index
    for p in range(_PASSES):
        c = counts[p]
        total = 0
        for q in range(_BUCKETS):
            t = c[q]
            if t == n:
                break  # one digit for all: nothing moves
            c[q] = total
            total += t
        if total < n:  # (that pass skipped)
            continue
        shift = np.uint64(_BITS * p)
        for i in range(n):
            k = src[i]
            q = (k >> shift) & mask
            dst[c[q]] = k
            if carry:
                dst_i[c[q]] = src_i[i]
            c[q] += 1
        src, dst, src_i, dst_i = dst, src, dst_i, src_i
    return src, src_i


@njit(cache=True)
def _radix_sort_row(x, spare, counts):
    """Sort the contiguous float64 row ``x`` in place (``spare``, ``counts``: buffers).

    The keys are written over the values' own bits, so one spare buffer of
    the row's size is all the extra memory.
    """
    bits = x.view(np.uint64)
    for i in range(x.shape[0]):
        bits[i] = _order_key(x[i], bits[i], False)
    none = np.empty(0, dtype=np.int64)
    done, _ = _lsd_sort(bits, spare, none, none, counts)
    for i in range(x.shape[0]):
        bits[i] = _float_of_key(done[i])


def _radix_sort_rows(XT):
    d, n = XT.shape
    for j in prange(d):
        spare = np.empty(n, dtype=np.uint64)
        counts = np.empty((_PASSES, _BUCKETS), dtype=np.int64)
        _radix_sort_row(XT[j], spare, counts)


_radix_sort_rows_parallel, _radix_sort_rows_serial = parallel_and_serial(_radix_sort_rows)


def _radix_sortable(XT):
    """Whether the radix sort can sort ``XT``'s rows in place (C-contiguous 2-D float64)."""
    return XT.dtype == np.float64 and XT.ndim == 2 and XT.flags.c_contiguous


def radix_sort_rows(XT):
    """Sort each row of ``XT`` in place by the compiled radix sort.

    Parameters
    ----------
    XT : ndarray of shape (n_rows, n)
        C-contiguous float64; NaNs allowed (they go last).

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._sorting import radix_sort_rows
    >>> XT = np.array([[3.0, -1.5, 0.25, -np.inf, 2.0]])
    >>> radix_sort_rows(XT)
    >>> XT.tolist()
    [[-inf, -1.5, 0.25, 2.0, 3.0]]
    """
    if not _radix_sortable(XT):
        raise ValueError("radix_sort_rows needs a C-contiguous 2-D float64 array.")
    parallel = XT.shape[0] > 1 and XT.size >= _PARALLEL_MIN and use_parallel(XT.size)
    (_radix_sort_rows_parallel if parallel else _radix_sort_rows_serial)(XT)


@functools.cache
def _radix_is_faster():
    """Whether the radix sort beats NumPy's sort here (timed once, on fixed data).

    With the JIT disabled the radix sort is plain Python, far slower: NumPy.
    """
    if numba.config.DISABLE_JIT:
        return False
    # Local seeded data (never the global random state), roughly the size of
    # a layer's sample; both sorts warmed up, then the best of three each.
    data = np.random.default_rng(0).standard_normal((2, 20_000))

    def best(sort):
        times = []
        for _ in range(4):
            rows = data.copy()
            start = time.perf_counter()
            sort(rows)
            times.append(time.perf_counter() - start)
        return min(times[1:])

    return best(_radix_sort_rows_serial) < _RADIX_ADVANTAGE * best(lambda r: r.sort(axis=1))


def sort_rows(XT):
    """Sort each row of ``XT`` in place, by whichever sort is faster on this machine.

    The same sorted values as ``XT.sort(axis=1)`` (see the module's
    docstring for the choice, made once per process).

    Parameters
    ----------
    XT : ndarray of shape (n_rows, n)
        C-contiguous float64.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._sorting import sort_rows
    >>> XT = np.random.default_rng(0).normal(size=(3, 1000))
    >>> expected = np.sort(XT, axis=1)
    >>> sort_rows(XT)
    >>> bool(np.array_equal(XT, expected))
    True
    """
    if _radix_is_faster() and _radix_sortable(XT):
        radix_sort_rows(XT)
    else:
        XT.sort(axis=1)


@njit(cache=True, nogil=True)
def _rank_residuals(Y, q, residual):
    m, k = Y.shape
    keys, spare = np.empty(m, dtype=np.uint64), np.empty(m, dtype=np.uint64)
    index, spare_index = np.empty(m, dtype=np.int64), np.empty(m, dtype=np.int64)
    counts = np.empty((_PASSES, _BUCKETS), dtype=np.int64)
    column = np.empty(m)
    bits = column.view(np.uint64)
    for j in range(k):
        for i in range(m):
            column[i] = Y[i, j]
        for i in range(m):
            keys[i] = _order_key(column[i], bits[i], True)
            index[i] = i
        _, order = _lsd_sort(keys, spare, index, spare_index, counts)
        for r in range(m):
            i = order[r]
            residual[i, j] = column[i] - q[r]


def rank_residuals_reference(Y, q):
    """Pure NumPy reference for :func:`rank_residuals` (a stable argsort).

    Parameters
    ----------
    Y : ndarray of shape (m, k)
        Values, one sample a column.
    q : ndarray of shape (m,)
        What the ``r``-th smallest value of a column is compared with.

    Returns
    -------
    residual : ndarray of shape (m, k)

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._sorting import rank_residuals_reference
    >>> rank_residuals_reference(np.array([[2.0], [0.0]]), np.array([-1.0, 1.0])).ravel().tolist()
    [1.0, 1.0]
    """
    order = np.argsort(Y, axis=0, kind="stable")
    residual = np.empty_like(Y)
    np.put_along_axis(residual, order, np.take_along_axis(Y, order, axis=0) - q[:, None],
                      axis=0)
    return residual


def rank_residuals(Y, q):
    """Each value minus ``q`` at its rank in its column: ``Y[i, j] - q[rank_j(i)]``.

    Ranks as a stable sort gives them (equal values, ``-0.0`` and ``0.0``
    included, by row; NaNs last), so the same numbers as
    :func:`rank_residuals_reference`, by the radix sort of this module: on
    2,000 x 8 it took a quarter of the time of NumPy's stable ``argsort``
    with its gathers (0.27 against 1.16 ms, 2026-12-02). With the JIT
    disabled (plain Python kernels, far slower), the reference runs.

    Parameters
    ----------
    Y : ndarray of shape (m, k)
        Float64 values, one sample a column.
    q : ndarray of shape (m,)
        What the ``r``-th smallest value of each column is compared with.

    Returns
    -------
    residual : ndarray of shape (m, k)

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._sorting import rank_residuals
    >>> Y = np.array([[3.0, 0.0], [1.0, -0.0], [2.0, 5.0]])
    >>> rank_residuals(Y, np.array([0.0, 1.0, 2.0])).tolist()
    [[1.0, 0.0], [1.0, -1.0], [1.0, 3.0]]
    """
    Y = np.asarray(Y, dtype=np.float64)
    q = np.ascontiguousarray(q, dtype=np.float64)
    if numba.config.DISABLE_JIT:
        return rank_residuals_reference(Y, q)
    residual = np.empty(Y.shape)
    _rank_residuals(Y, q, residual)
    return residual
