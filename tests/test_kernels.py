"""The Numba piecewise-linear kernel against its NumPy reference.

CI also runs this file with ``NUMBA_DISABLE_JIT=1``, so array sizes stay
small enough for the pure-Python path of the kernels.
"""

import os
import pathlib
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import pytest

from destructors import _kernels
from destructors._kernels import piecewise_linear, piecewise_linear_reference


def _pack(xs, fs):
    """NaN-padded knot arrays with slopes, as a fitted layer stores them."""
    counts = np.array([x.size for x in xs], dtype=np.int64)
    width = int(counts.max())
    xp = np.full((len(xs), width), np.nan)
    fp = np.full((len(xs), width), np.nan)
    for j, (x, f) in enumerate(zip(xs, fs, strict=True)):
        xp[j, : x.size], fp[j, : f.size] = x, f
    with np.errstate(invalid="ignore"):
        slope = np.diff(fp, axis=1) / np.diff(xp, axis=1)
        log_slope = np.log(slope)
    return xp, fp, slope, log_slope, counts


def random_knots(seed, n_features=6, max_knots=40):
    """Ragged, strictly increasing knots with slopes over orders of magnitude.

    Feature 0 has the minimum of two knots, the last one the maximum; one
    feature has knots clustered near zero plus a far outlier, so most
    segments share one cell of any uniform grid over its range.
    """
    rng = np.random.default_rng(seed)
    counts = rng.integers(2, max_knots + 1, size=n_features)
    counts[0], counts[-1] = 2, max_knots
    xs, fs = [], []
    for m in counts:
        xs.append(rng.normal(scale=3.0) + np.cumsum(rng.exponential(size=m)))
        fs.append(rng.normal() + np.cumsum(np.exp(rng.normal(scale=2.0, size=m))))
    xs[1] = np.r_[np.cumsum(np.full(counts[1] - 1, 1e-6)), 1e4]
    return _pack(xs, fs)


def probe_points(xp, counts, seed, n_random=200):
    """Points inside and outside the knots, exactly at knots and at midpoints."""
    rng = np.random.default_rng(seed)
    d, m_max = xp.shape[0], int(counts.max())
    lo = np.array([xp[j, 0] for j in range(d)])
    hi = np.array([xp[j, counts[j] - 1] for j in range(d)])
    width = hi - lo
    inside = lo + width * rng.uniform(size=(n_random, d))
    below = lo - width * rng.exponential(size=(n_random // 4, d))
    below = np.vstack([below, lo - 1e6 * width, lo - 1e100])
    above = np.vstack([hi + width * rng.exponential(size=(n_random // 4, d)), hi + 1e6 * width])
    # Row i holds knot i (cycled) of every feature, and the midpoints after them.
    k = np.arange(m_max)[:, None] % counts[None, :]
    at_knots = xp[np.arange(d)[None, :], k]
    k2 = np.arange(m_max)[:, None] % (counts[None, :] - 1)
    mids = 0.5 * (xp[np.arange(d)[None, :], k2] + xp[np.arange(d)[None, :], k2 + 1])
    # The neighbouring floats of each knot, on either side.
    beside = [np.nextafter(at_knots, -np.inf), np.nextafter(at_knots, np.inf)]
    # Evenly spaced points over the knot range (where a search grid, if any,
    # puts its cell edges), with their neighbouring floats.
    even = [lo + width * (np.arange(n + 1)[:, None] / n) for n in (m_max, 4 * m_max, 1000)]
    even += [np.nextafter(e, s) for e in even for s in (-np.inf, np.inf)]
    return np.vstack([inside, below, above, at_knots, mids, *beside, *even])


def _inverse_args(xp, fp, slope, log_slope):
    """The inverse call: swap the knots, invert the slopes, negate the logs."""
    return fp, xp, 1.0 / slope, -log_slope


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_forward_matches_reference(seed):
    xp, fp, slope, log_slope, counts = random_knots(seed)
    X = probe_points(xp, counts, seed)
    Y, log_det = piecewise_linear(X, xp, fp, slope, log_slope, counts)
    Y_ref, log_det_ref = piecewise_linear_reference(X, xp, fp, counts)
    np.testing.assert_allclose(Y, Y_ref, rtol=1e-13, atol=0)
    np.testing.assert_allclose(log_det, log_det_ref, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_inverse_matches_reference_and_inverts(seed):
    xp, fp, slope, log_slope, counts = random_knots(seed)
    X = probe_points(xp, counts, seed)
    Y, log_det = piecewise_linear(X, xp, fp, slope, log_slope, counts)
    # Inverse at images of the probes and at the ordinate knots themselves.
    Y = np.vstack([Y, probe_points(fp, counts, seed + 100)])
    X_back, log_det_back = piecewise_linear(Y, *_inverse_args(xp, fp, slope, log_slope), counts)
    X_ref, log_det_ref = piecewise_linear_reference(Y, fp, xp, counts)
    np.testing.assert_allclose(X_back, X_ref, rtol=1e-12, atol=0)
    np.testing.assert_allclose(log_det_back, log_det_ref, rtol=1e-12, atol=1e-12)
    # A bijection: the inverse undoes the forward map and negates its log-det
    # (except where a point one float away from a knot has its image rounded
    # onto the knot's other side, so the inverse uses the neighbouring slope).
    n = X.shape[0]
    scale = np.maximum(np.abs(X), np.nanmax(np.abs(xp), axis=1) + 1.0)
    assert np.all(np.abs(X_back[:n] - X) <= 1e-9 * scale)
    same_segment = np.isclose(log_det_ref[:n], -log_det, rtol=1e-12, atol=1e-12)
    assert same_segment.mean() > 0.9
    np.testing.assert_allclose(
        log_det_back[:n][same_segment], -log_det[same_segment], rtol=1e-12, atol=1e-12
    )


def test_values_at_knots_are_the_ordinates():
    xp, fp, slope, log_slope, counts = random_knots(3)
    for j, m in enumerate(counts):
        X = np.repeat(xp[:, :1], m, axis=1).T.copy()  # other features at knot 0
        X[:, j] = xp[j, :m]
        Y, _ = piecewise_linear(X, xp, fp, slope, log_slope, counts)
        np.testing.assert_allclose(Y[:, j], fp[j, :m], rtol=1e-13, atol=1e-13)


def test_map_is_increasing_and_slopes_are_the_end_slopes_outside():
    xp, fp, slope, log_slope, counts = random_knots(4)
    d = xp.shape[0]
    lo = np.array([xp[j, 0] for j in range(d)])
    hi = np.array([xp[j, counts[j] - 1] for j in range(d)])
    grid = lo + (hi - lo) * np.linspace(-3.0, 4.0, 5001)[:, None]
    Y, log_det = piecewise_linear(grid, xp, fp, slope, log_slope, counts)
    assert np.all(np.diff(Y, axis=0) > 0)
    # Beyond the end knots the first and last segments continue.
    first = np.array([slope[j, 0] for j in range(d)])
    last = np.array([slope[j, counts[j] - 2] for j in range(d)])
    np.testing.assert_allclose(Y[0], fp[:, 0] + first * (grid[0] - lo), rtol=1e-12)
    f_hi = np.array([fp[j, counts[j] - 1] for j in range(d)])
    np.testing.assert_allclose(Y[-1], f_hi + last * (grid[-1] - hi), rtol=1e-12)
    np.testing.assert_allclose(log_det[0], np.log(first).sum(), rtol=1e-12)
    np.testing.assert_allclose(log_det[-1], np.log(last).sum(), rtol=1e-12)


def test_read_only_and_non_contiguous_inputs():
    xp, fp, slope, log_slope, counts = random_knots(5)
    X = probe_points(xp, counts, 5)
    expected = piecewise_linear(X, xp, fp, slope, log_slope, counts)
    arrays = [np.array(a) for a in (X, xp, fp, slope, log_slope, counts)]
    for a in arrays:
        a.setflags(write=False)
    got = piecewise_linear(*arrays)
    fortran = piecewise_linear(np.asfortranarray(X), xp, fp, slope, log_slope, counts)
    strided = piecewise_linear(np.repeat(X, 2, axis=0)[::2], xp, fp, slope, log_slope, counts)
    as32 = X[np.all(np.abs(X) < 1e30, axis=1)].astype(np.float32)
    from32 = piecewise_linear(as32, xp, fp, slope, log_slope, counts)
    for result in (got, fortran, strided):
        np.testing.assert_array_equal(result[0], expected[0])
        np.testing.assert_array_equal(result[1], expected[1])
    ref32 = piecewise_linear_reference(as32.astype(np.float64), xp, fp, counts)
    np.testing.assert_allclose(from32[0], ref32[0], rtol=1e-13)


class _Spy:
    """Wraps a kernel dispatcher and records the threads that called it."""

    def __init__(self, kernel):
        self.kernel = kernel
        self.threads = []

    def __call__(self, *args):
        self.threads.append(threading.current_thread())
        return self.kernel(*args)


@pytest.fixture
def spies(monkeypatch):
    parallel = _Spy(_kernels._piecewise_linear_parallel)
    serial = _Spy(_kernels._piecewise_linear_serial)
    monkeypatch.setattr(_kernels, "_piecewise_linear_parallel", parallel)
    monkeypatch.setattr(_kernels, "_piecewise_linear_serial", serial)
    return parallel, serial


def _large_input(xp, counts, seed):
    """At least ``_PARALLEL_MIN_ELEMENTS`` elements: enough for the parallel path."""
    d = xp.shape[0]
    n = -(-_kernels._PARALLEL_MIN_ELEMENTS // d) + 7
    X = probe_points(xp, counts, seed, n_random=n)
    assert X.size >= _kernels._PARALLEL_MIN_ELEMENTS
    return X


def test_parallel_path_matches_reference(spies):
    parallel, serial = spies
    xp, fp, slope, log_slope, counts = random_knots(6)
    X = _large_input(xp, counts, 6)
    Y, log_det = piecewise_linear(X, xp, fp, slope, log_slope, counts)
    assert len(parallel.threads) == 1 and not serial.threads
    Y_ref, log_det_ref = piecewise_linear_reference(X, xp, fp, counts)
    np.testing.assert_allclose(Y, Y_ref, rtol=1e-13, atol=0)
    np.testing.assert_allclose(log_det, log_det_ref, rtol=1e-13, atol=1e-13)
    inv = _inverse_args(xp, fp, slope, log_slope)
    X_back, log_det_back = piecewise_linear(Y, *inv, counts)
    assert len(parallel.threads) == 2
    X_ref, _ = piecewise_linear_reference(Y, fp, xp, counts)
    np.testing.assert_allclose(X_back, X_ref, rtol=1e-12, atol=0)
    same_segment = np.isclose(log_det_back, -log_det, rtol=1e-12, atol=1e-12)
    assert same_segment.mean() > 0.9
    # The serial path on the same data gives the very same numbers.
    small_rows = _kernels._PARALLEL_MIN_ELEMENTS // (2 * X.shape[1])
    Y_serial = np.vstack(
        [
            piecewise_linear(X[i : i + small_rows], xp, fp, slope, log_slope, counts)[0]
            for i in range(0, X.shape[0], small_rows)
        ]
    )
    assert serial.threads
    np.testing.assert_array_equal(Y_serial, Y)


def test_result_does_not_depend_on_thread_count():
    xp, fp, slope, log_slope, counts = random_knots(7)
    X = _large_input(xp, counts, 7)
    Y, log_det = piecewise_linear(X, xp, fp, slope, log_slope, counts)
    n_threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        Y1, log_det1 = piecewise_linear(X, xp, fp, slope, log_slope, counts)
    finally:
        numba.set_num_threads(n_threads)
    np.testing.assert_array_equal(Y1, Y)
    np.testing.assert_array_equal(log_det1, log_det)


def test_calls_from_worker_threads_use_serial_kernel(spies):
    parallel, serial = spies
    xp, fp, slope, log_slope, counts = random_knots(8)
    X = _large_input(xp, counts, 8)
    Y_ref, log_det_ref = piecewise_linear_reference(X, xp, fp, counts)

    # One non-main thread.
    box = {}
    worker = threading.Thread(
        target=lambda: box.update(out=piecewise_linear(X, xp, fp, slope, log_slope, counts))
    )
    worker.start()
    worker.join()
    np.testing.assert_allclose(box["out"][0], Y_ref, rtol=1e-13, atol=0)
    np.testing.assert_allclose(box["out"][1], log_det_ref, rtol=1e-13, atol=1e-13)
    assert not parallel.threads and serial.threads == [worker]

    # Several at once, as a threaded scheduler would call it.
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [
            pool.submit(piecewise_linear, X, xp, fp, slope, log_slope, counts) for _ in range(4)
        ]
        results = [f.result() for f in futures]
    for Y, log_det in results:
        np.testing.assert_array_equal(Y, box["out"][0])
        np.testing.assert_array_equal(log_det, box["out"][1])
    assert not parallel.threads


def test_nan_and_inf_inputs_give_nan_and_inf_values():
    # NaN fails every comparison of the segment search: it must land in a
    # valid segment (not int(NaN) as a bucket index) and stay NaN; +-inf take
    # the end segments. Finite inputs in the same call are unaffected.
    xp, fp, slope, log_slope, counts = random_knots(9)
    d = xp.shape[0]
    finite = probe_points(xp, counts, 9, n_random=20)
    special = np.array([np.nan, np.inf, -np.inf, 1.7e308, -1.7e308])
    bad = np.vstack([np.roll(np.resize(special, d), s) for s in range(special.size)])
    X = np.vstack([finite, bad, np.full((1, d), np.nan)])
    for args in [(xp, fp, slope, log_slope), _inverse_args(xp, fp, slope, log_slope)]:
        with np.errstate(invalid="ignore", over="ignore"):
            Y, log_det = piecewise_linear(X, *args, counts)
            Y_ref, _ = piecewise_linear_reference(X, args[0], args[1], counts)
        n = finite.shape[0]
        np.testing.assert_allclose(Y[:n], Y_ref[:n], rtol=1e-12, atol=0)
        assert np.array_equal(np.isnan(Y), np.isnan(X))
        np.testing.assert_array_equal(Y[np.isposinf(X)], np.inf)
        np.testing.assert_array_equal(Y[np.isneginf(X)], -np.inf)
        np.testing.assert_allclose(Y[~np.isnan(X)], Y_ref[~np.isnan(X)], rtol=1e-12, atol=0)
        # Infinite inputs get the end segments' log-slopes.
        first = np.array([args[3][j, 0] for j in range(d)])
        last = np.array([args[3][j, counts[j] - 2] for j in range(d)])
        rows = np.arange(n, n + special.size)
        expected = np.where(X[rows] > 0, last, first)
        ok = ~np.isnan(X[rows]).any(axis=1)
        np.testing.assert_allclose(log_det[rows][ok], expected[ok].sum(axis=1), rtol=1e-12)


def test_search_grid_whose_scale_overflows():
    # Knots so close that n_buckets / range overflows to inf: at the first
    # knot t = 0 * inf = NaN, which must still find the right segment.
    xp = np.array([[0.0, 1e-310, 2e-310, 3e-310]])
    fp = np.array([[0.0, 1.0, 2.0, 4.0]])
    with np.errstate(over="ignore", divide="ignore"):
        slope = np.diff(fp) / np.diff(xp)
        lo, scale, buckets = _kernels.bucket_table(xp, np.array([4]))
    assert np.isinf(scale[0])
    X = np.array([[0.0], [5e-311], [1e-310], [2.5e-310], [3e-310], [-1.0], [1.0]])
    counts = np.array([4])
    with np.errstate(over="ignore", invalid="ignore"):
        Y, _ = piecewise_linear(X, xp, fp, slope, np.log(slope), counts, (lo, scale, buckets))
        Y_ref, _ = piecewise_linear_reference(X, xp, fp, counts)
    np.testing.assert_allclose(Y, Y_ref, rtol=1e-12)


_BOUNDSCHECK_SCRIPT = r"""
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from _helpers import skewed_data
from destructors import RBIG, MarginalGaussianizer
from destructors._kernels import piecewise_linear

xp = np.array([[0.0, 1.0, 2.0]]); fp = np.array([[0.0, 2.0, 3.0]])
slope = np.diff(fp) / np.diff(xp)
X = np.array([[np.nan], [np.inf], [-np.inf], [1.5]])
Y, _ = piecewise_linear(X, xp, fp, slope, np.log(slope), np.array([3]))
print("kernel", Y.ravel().tolist())

X = skewed_data(300, 3, seed=0)
for model in (RBIG(max_layers=3, random_state=0), MarginalGaussianizer()):
    model.fit(X)
    for row in ([1.7e308, -1.7e308, 1.7e308], [np.nextafter(np.inf, 0)] * 3):
        for method in ("transform", "score_samples"):
            try:
                out = getattr(model, method)(np.array([row]))
                print("finite", bool(np.all(np.isfinite(out))))
            except ValueError as exc:
                print("ValueError:", exc)
"""


def test_overflowing_inputs_under_numba_boundscheck(tmp_path):
    # Reproducer: a rotation overflows to inf - inf = NaN, which then reached
    # int() in the segment search as an out-of-bounds index (a segfault, or
    # an IndexError under NUMBA_BOUNDSCHECK=1). A fresh cache directory makes
    # Numba compile with bounds checks instead of loading unchecked code.
    script = tmp_path / "overflow.py"
    script.write_text(_BOUNDSCHECK_SCRIPT)
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    tests_dir = pathlib.Path(__file__).parent
    root = tests_dir.parent
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, str(script), str(tests_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "IndexError" not in done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "kernel [nan, inf, -inf, 2.5]"
    assert len(lines) == 9
    # Each case is refused with the overflow message or gives finite values,
    # never NaN or inf; the first (RBIG's reproducer) overflows today.
    assert any(line.startswith("ValueError:") for line in lines[1:]), lines
    for line in lines[1:]:
        assert line == "finite True" or (
            line.startswith("ValueError:")
            and "produced non-finite values" in line
            and "overflows float64" in line
        ), line


@numba.njit
def _segments(xp, counts, lo, scale, buckets, X):
    """Segment index of every element, as the kernels find it."""
    n, d = X.shape
    k = np.empty((n, d), dtype=np.int64)
    for i in range(n):
        for j in range(d):
            k[i, j] = _kernels._segment(xp[j], counts[j], X[i, j], lo[j], scale[j], buckets[j])
    return k


def _old_segment(xp, m, x, lo, scale, buckets):
    """The search before the branch-free one (binary search in each bucket)."""
    n_buckets = buckets.shape[0] - 1
    t = (x - lo) * scale
    if not (t > 0.0):
        k = 0
    elif not (t < n_buckets):
        k = m - 2
    else:
        a, c = int(buckets[int(t)]), int(buckets[int(t) + 1]) + 1
        while c - a > 1:
            mid = (a + c) >> 1
            a, c = (mid, c) if xp[mid] <= x else (a, mid)
        k = min(a, m - 2)
    while k > 0 and x < xp[k]:
        k -= 1
    while k < m - 2 and x >= xp[k + 1]:
        k += 1
    return k


@pytest.mark.parametrize("buckets_per_knot", [1, 4, 16])
@pytest.mark.parametrize("seed", [0, 1])
def test_segment_search_is_exact_and_equals_the_old_search(seed, buckets_per_knot):
    # The segment is the last knot <= x (clipped to a valid segment; NaN takes
    # the first), whatever the grid's resolution: coarse grids take the
    # binary-search fallback, fine ones the one-comparison lookup.
    xp, fp, slope, log_slope, counts = random_knots(seed)
    X = probe_points(xp, counts, seed)
    X = np.vstack([X, np.full((1, X.shape[1]), np.nan), np.full((1, X.shape[1]), np.inf),
                   np.full((1, X.shape[1]), -np.inf)])
    lo, scale, buckets = _kernels.bucket_table(xp, counts, buckets_per_knot)
    got = _segments(xp, counts, lo, scale, buckets, X)
    for j, m in enumerate(counts):
        with np.errstate(invalid="ignore"):
            expected = np.clip(np.searchsorted(xp[j, :m], X[:, j], side="right") - 1, 0, m - 2)
        expected[np.isnan(X[:, j])] = 0
        np.testing.assert_array_equal(got[:, j], expected)
        # The old search, with the old table (4 buckets per knot), on a sample.
        old_table = _kernels.bucket_table(xp, counts, 4)
        rows = np.random.default_rng(seed).choice(X.shape[0], 300, replace=False)
        with np.errstate(invalid="ignore"):
            old = [_old_segment(xp[j], m, X[i, j], old_table[0][j], old_table[1][j],
                                old_table[2][j]) for i in rows]
        np.testing.assert_array_equal(got[rows, j], old)


def test_bucket_table_size_and_dtype():
    xp, _, _, _, counts = random_knots(0)
    lo, scale, buckets = _kernels.bucket_table(xp, counts)
    # Sixteen buckets per knot, int16 indices: 32 bytes a knot and feature.
    assert buckets.shape == (xp.shape[0], 16 * xp.shape[1] + 1)
    assert buckets.dtype == np.int16
    # Very many knots: the grid is capped (bounded memory) and indices widen.
    m = 40_000
    wide = np.cumsum(np.random.default_rng(0).exponential(size=(1, m)), axis=1)
    lo, scale, buckets = _kernels.bucket_table(wide, np.array([m]))
    assert buckets.shape == (1, 2**16 + 1) and buckets.dtype == np.int32
    X = np.r_[wide[0, ::97], np.nextafter(wide[0, ::89], -np.inf)][:, None]
    got = _segments(wide, np.array([m]), lo, scale, buckets, X)[:, 0]
    np.testing.assert_array_equal(
        got, np.clip(np.searchsorted(wide[0], X[:, 0], side="right") - 1, 0, m - 2))
