"""Numba kernels for monotone piecewise-linear maps, with NumPy references.

A marginal map of feature ``j`` is given by strictly increasing knots
``xp[j, :m]`` and ``fp[j, :m]`` (``m = counts[j]``) and is linear between
knots and beyond the end knots (the end segments' slopes continue, so the map
is a bijection of the whole real line). Slopes and their logs are computed
once at fit time, so a kernel call does one search, one multiply-add and one
add per element, and returns the value together with the summed log-slope of
each row (the log|det J| of the map).

The same kernel runs the inverse: swap ``xp`` and ``fp``, invert the slopes
and negate their logs.
"""

import contextlib
import os
import threading
import types

import numpy as np
from numba import njit, prange

# Below this many elements thread start-up costs more than it saves.
_PARALLEL_MIN_ELEMENTS = 20_000

# The process that imported this module. A process forked from it (e.g. a
# ``multiprocessing`` "fork" worker) has another pid: it inherits the
# parent's threading-layer state, and GNU OpenMP (Numba's "omp" layer, the
# default where TBB is absent) kills a forked child that starts a parallel
# region after the parent did. Numba's threading layer is process-wide user
# configuration, so it is left alone; such children run serially instead,
# which also keeps a pool of forked workers from oversubscribing the cores.
_IMPORT_PID = os.getpid()


def use_parallel(n_elements):
    """Whether a kernel call on ``n_elements`` elements may run in parallel.

    The one place that decides between the parallel and the serial
    compilation of a kernel (both compute the same numbers, independent of
    the thread count). Serial for small arrays (thread start-up costs more
    than it saves), for calls from non-main threads (a Dask threaded
    scheduler: launching parallel regions from several threads at once is
    not safe in every Numba threading layer) and in a process forked after
    this module was imported (see ``_IMPORT_PID``).

    Parameters
    ----------
    n_elements : int
        Size of the input array.

    Returns
    -------
    parallel : bool
        True to call the parallel compilation.

    Examples
    --------
    >>> from destructors._kernels import use_parallel
    >>> use_parallel(10), use_parallel(10**6)
    (False, True)
    """
    minimum = max(_PARALLEL_MIN_ELEMENTS, getattr(_LOCAL, "min_elements", 0))
    return (
        n_elements >= minimum
        and threading.current_thread() is threading.main_thread()
        and os.getpid() == _IMPORT_PID
    )


_LOCAL = threading.local()


@contextlib.contextmanager
def parallel_min_elements(n_elements):
    """A context in which this thread's kernel calls run in parallel only from ``n_elements``.

    For loops of many small calls: a deep model's stacking loop calls a few
    kernels per layer on the same moderate array, and between the calls the
    idle Numba threads wait for work on the cores the loop's own NumPy work
    needs. The numbers do not change (every kernel gives the same ones on
    any number of threads), only which compilation runs.

    Parameters
    ----------
    n_elements : int
        The threshold inside the context (the default one still applies
        where it is higher).

    Examples
    --------
    >>> from destructors._kernels import parallel_min_elements, use_parallel
    >>> with parallel_min_elements(10**7):
    ...     inside = use_parallel(10**6)
    >>> inside, use_parallel(10**6)
    (False, True)
    """
    previous = getattr(_LOCAL, "min_elements", 0)
    _LOCAL.min_elements = n_elements
    try:
        yield
    finally:
        _LOCAL.min_elements = previous


def parallel_and_serial(func, **options):
    """Compile one kernel source twice: parallel, and serial releasing the GIL.

    Numba's on-disk cache keys an entry by the function's name, source and
    signature, not by the compile options, so two ``njit(cache=True)``
    wrappers of one function share one entry and whichever compiled first
    is loaded for both (a "serial" kernel that opens parallel regions, or a
    "parallel" one that does not). Each compilation here wraps a copy of
    ``func`` under its own qualified name, hence its own cache entry.

    Parameters
    ----------
    func : function
        The kernel, a plain Python function using ``prange``.
    **options : dict
        Extra ``njit`` options of both compilations (e.g. ``fastmath``), so
        that both compute the same numbers.

    Returns
    -------
    parallel, serial : numba dispatchers
        ``njit(parallel=True, cache=True, **options)`` and
        ``njit(parallel=False, nogil=True, cache=True, **options)`` of copies
        of ``func``.
    """

    def renamed(suffix):
        copy = types.FunctionType(
            func.__code__, func.__globals__, func.__name__, func.__defaults__, func.__closure__
        )
        copy.__qualname__ = f"{func.__qualname__}_{suffix}"
        copy.__doc__ = func.__doc__
        return copy

    parallel = njit(parallel=True, cache=True, **options)(renamed("parallel"))
    serial = njit(parallel=False, nogil=True, cache=True, **options)(renamed("serial"))
    return parallel, serial


@njit(inline="always", cache=True)
def _segment(xp, m, x, lo, scale, buckets):
    """Index of the segment of one feature's knots ``xp[:m]`` that holds ``x``.

    ``buckets`` (one feature's row of :func:`bucket_table`) records the
    segment at each edge of a uniform grid over the knots' range. With many
    buckets per knot almost every bucket holds at most one knot, and the
    lookup is one multiply, one table read and one comparison, without a
    branch that depends on the data; only a bucket over clustered knots
    falls back to a binary search between its edges' segments.

    Every input gives an index in ``[0, m - 2]``: ``t`` is clamped into the
    grid with comparisons that a NaN fails, so a NaN ``x`` (or a NaN ``t``,
    e.g. ``0 * inf`` when the grid scale overflows) lands in bucket 0, fails
    the comparison with the next knot and takes the first segment, its value
    staying NaN; ``+-inf`` land in the end segments.
    """
    n_buckets = buckets.shape[0] - 1
    t = (x - lo) * scale
    t = t if t > 0.0 else 0.0  # also NaN
    t = t if t < n_buckets - 1 else n_buckets - 1.0  # also +inf
    b = int(t)
    a = np.int64(buckets[b])
    c = np.int64(buckets[b + 1])
    if c - a > 1:  # clustered knots: binary search between the edges' segments
        c += 1
        while c - a > 1:
            mid = (a + c) >> 1
            if xp[mid] <= x:
                a = mid
            else:
                c = mid
        k = a
    else:  # a <= m - 2, so xp[a + 1] is a valid knot
        k = a + np.int64(x >= xp[a + 1])
    k = min(k, m - 2)
    # Rounding in t can land one bucket off: step to the true segment.
    while k > 0 and x < xp[k]:
        k -= 1
    while k < m - 2 and x >= xp[k + 1]:
        k += 1
    return k


def _piecewise_linear(X, xp, fp, slope, log_slope, counts, lo, scale, buckets, out, log_det):
    n, d = X.shape
    for i in prange(n):
        acc = 0.0
        for j in range(d):
            x = X[i, j]
            k = _segment(xp[j], counts[j], x, lo[j], scale[j], buckets[j])
            out[i, j] = fp[j, k] + slope[j, k] * (x - xp[j, k])
            acc += log_slope[j, k]
        log_det[i] = acc


# Grid resolution of the knot search: with 16 buckets per knot almost every
# bucket holds at most one knot, so the lookup needs no data-dependent
# branch; the cap bounds a feature's table (128 KiB) when there are very
# many knots, where a bucket then holds a few knots and is binary-searched.
_BUCKETS_PER_KNOT = 16
_MAX_BUCKETS = 1 << 16


def bucket_table(xp, counts, buckets_per_knot=_BUCKETS_PER_KNOT):
    """Search accelerator for :func:`piecewise_linear`.

    Splits each feature's knot range into a uniform grid and records, at
    every grid edge, the segment that holds it, so a lookup is one multiply,
    one table read and (where a bucket holds one knot at most) one
    comparison.

    Parameters
    ----------
    xp : ndarray of shape (n_features, max_knots)
        Knots (NaN-padded past ``counts``).
    counts : ndarray of shape (n_features,)
        Valid knots per feature.
    buckets_per_knot : int, default=16
        Grid resolution relative to ``max_knots``; at most 65,536 buckets.

    Returns
    -------
    lo, scale : ndarray of shape (n_features,)
        Grid origin and ``n_buckets / range`` per feature.
    buckets : ndarray of shape (n_features, n_buckets + 1)
        Segment index at each grid edge: int16 (half the memory) when every
        index fits, int32 otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._kernels import bucket_table
    >>> lo, scale, buckets = bucket_table(np.array([[0.0, 1.0, 3.0]]), np.array([3]), 1)
    >>> buckets.tolist()
    [[0, 1, 1, 1]]
    """
    n_buckets = int(min(buckets_per_knot * xp.shape[1], _MAX_BUCKETS))
    lo = np.empty(xp.shape[0])
    scale = np.empty(xp.shape[0])
    dtype = np.int16 if xp.shape[1] <= np.iinfo(np.int16).max else np.int32
    buckets = np.empty((xp.shape[0], n_buckets + 1), dtype=dtype)
    for j, m in enumerate(counts):
        knots = xp[j, :m]
        lo[j] = knots[0]
        scale[j] = n_buckets / (knots[-1] - knots[0])
        edges = knots[0] + np.arange(n_buckets + 1) / scale[j]
        segment = np.searchsorted(knots, edges, side="right") - 1
        buckets[j] = np.clip(segment, 0, m - 2)
    return lo, scale, buckets


# One Python source, two compilations (see use_parallel for which runs when).
# The serial one releases the GIL, so worker threads run it side by side.
_piecewise_linear_parallel, _piecewise_linear_serial = parallel_and_serial(_piecewise_linear)


def piecewise_linear(X, xp, fp, slope, log_slope, counts, table=None):
    """Apply per-feature monotone piecewise-linear maps with their log-slopes.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Inputs, float64.
    xp, fp : ndarray of shape (n_features, max_knots)
        Knot abscissae and ordinates, strictly increasing along each row over
        the first ``counts[j]`` entries.
    slope, log_slope : ndarray of shape (n_features, max_knots - 1)
        ``(fp[k+1] - fp[k]) / (xp[k+1] - xp[k])`` and its log.
    counts : ndarray of shape (n_features,)
        Number of valid knots per feature (at least 2).
    table : tuple or None, default=None
        ``bucket_table(xp, counts)``, computed here when not given; fitted
        layers store it so that each call skips that work.

    Returns
    -------
    Y : ndarray of shape (n_samples, n_features)
        Mapped values.
    log_det : ndarray of shape (n_samples,)
        Sum over features of the log-slope at each element.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._kernels import piecewise_linear
    >>> xp = np.array([[0.0, 1.0, 2.0]]); fp = np.array([[0.0, 2.0, 3.0]])
    >>> slope = np.diff(fp) / np.diff(xp)
    >>> Y, ld = piecewise_linear(np.array([[-1.0], [0.5], [3.0]]), xp, fp,
    ...                          slope, np.log(slope), np.array([3]))
    >>> Y.ravel().tolist()
    [-2.0, 1.0, 4.0]
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    out = np.empty_like(X)
    log_det = np.empty(X.shape[0])
    if use_parallel(X.size):
        kernel = _piecewise_linear_parallel
    else:
        kernel = _piecewise_linear_serial
    lo, scale, buckets = bucket_table(xp, counts) if table is None else table
    kernel(X, xp, fp, slope, log_slope, counts, lo, scale, buckets, out, log_det)
    return out, log_det


def piecewise_linear_reference(X, xp, fp, counts):
    """Pure NumPy reference for :func:`piecewise_linear` (used in tests).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Inputs.
    xp, fp : ndarray of shape (n_features, max_knots)
        Knots, as in :func:`piecewise_linear`.
    counts : ndarray of shape (n_features,)
        Valid knots per feature.

    Returns
    -------
    Y : ndarray of shape (n_samples, n_features)
        Mapped values.
    log_det : ndarray of shape (n_samples,)
        Summed log-slopes.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._kernels import piecewise_linear_reference
    >>> Y, ld = piecewise_linear_reference(np.array([[3.0]]),
    ...     np.array([[0.0, 1.0, 2.0]]), np.array([[0.0, 2.0, 3.0]]), [3])
    >>> float(Y[0, 0]), float(ld[0])
    (4.0, 0.0)
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.empty_like(X)
    log_det = np.zeros(X.shape[0])
    for j, m in enumerate(counts):
        x_knots, f_knots = xp[j, :m], fp[j, :m]
        s = np.diff(f_knots) / np.diff(x_knots)
        k = np.clip(np.searchsorted(x_knots, X[:, j], side="right") - 1, 0, m - 2)
        Y[:, j] = f_knots[k] + s[k] * (X[:, j] - x_knots[k])
        log_det += np.log(s[k])
    return Y, log_det
