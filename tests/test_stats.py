"""Mergeable statistics and histogram knots: exact merges, agreement with samples.

Nothing here needs Dask: these are the statistics a pass over a Dask array
merges, checked against the same quantities computed on the whole array.
"""

import numpy as np
import pytest
from _helpers import skewed_data

from destructors._entropy import marginal_kl_to_normal
from destructors._stats import (
    Grid,
    Histograms,
    MinMax,
    Moments,
    _histogram_kernel,
    feature_histograms,
    kl_to_normal,
)
from destructors.marginal import gaussian_knots, histogram_knots


def _merged(stat, X, splits):
    parts = [stat.compute(block) for block in np.array_split(X, splits)]
    out = parts[0]
    for part in parts[1:]:
        out = stat.merge(out, part)
    return out


@pytest.mark.parametrize("splits", [1, 3, 17])
def test_minmax_and_moments_merge_to_whole_array_values(splits):
    X = skewed_data(5000, 4, seed=0) + 1e6  # far from the origin: Chan's update
    n, lo, hi = _merged(MinMax, X, splits)
    assert n == 5000
    np.testing.assert_array_equal(lo, X.min(axis=0))
    np.testing.assert_array_equal(hi, X.max(axis=0))
    n, mean, comoment, max_sq = _merged(Moments, X, splits)
    np.testing.assert_allclose(mean, X.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(comoment / n, np.cov(X.T, bias=True), rtol=1e-9)
    np.testing.assert_allclose(max_sq, np.max(np.sum(X**2, axis=1)), rtol=1e-14)


def test_empty_blocks_merge_as_nothing():
    X = skewed_data(100, 2, seed=1)
    empty = X[:0]
    for stat in (MinMax, Moments):
        whole = stat.compute(X)
        for a, b in zip(stat.merge(stat.compute(empty), whole), whole, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("splits", [1, 5])
def test_histograms_count_like_numpy(splits):
    X = skewed_data(4000, 3, seed=2)
    grid = Grid.uniform(X.min(axis=0), X.max(axis=0), 97)
    result = _merged(Histograms([grid]), X, splits)
    for j, (edges, counts, lo, hi, std, bin_min, bin_max) in enumerate(
        feature_histograms(result, grid)
    ):
        expected, _ = np.histogram(X[:, j], bins=edges)
        np.testing.assert_array_equal(counts, expected)
        assert (lo, hi) == (X[:, j].min(), X[:, j].max())
        assert bin_min is None and bin_max is None
        np.testing.assert_allclose(std, X[:, j].std(), rtol=1e-10)


def test_histograms_of_affine_images_and_refined_grids():
    X = skewed_data(3000, 3, seed=3)
    Q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    shift = X.mean(axis=0)
    image = (X - shift) @ Q.T
    grid = Grid.uniform(image.min(axis=0) - 1, image.max(axis=0) + 1, 50)
    result = Histograms([grid], [(Q, shift)]).compute(X)
    heavy = result.counts[0]
    finer = grid.refined(heavy, max_mass=0.05, sub_bins=8)
    assert finer is not None and not finer.uniform
    assert np.all(finer.n_edges > grid.n_edges)
    refined = Histograms([finer], [(Q, shift)]).compute(X)
    for j in range(3):
        expected, _ = np.histogram(image[:, j], bins=finer.feature(j))
        np.testing.assert_array_equal(refined.counts[0, j, : finer.n_edges[j] - 1], expected)
    assert grid.refined(heavy, max_mass=1.0) is None


def test_histogram_kernel_python_path_matches_compiled():
    # The CI runs kernels without the JIT only for test_kernels/test_fused.
    X = skewed_data(500, 2, seed=4)
    for grid in (Grid.uniform(X.min(axis=0), X.max(axis=0), 16),
                 Grid.uniform(X.min(axis=0), X.max(axis=0), 4).refined(
                     np.full((2, 4), 100), 0.1, sub_bins=3)):
        outputs = []
        for kernel in (_histogram_kernel, _histogram_kernel.py_func):
            counts = np.zeros((2, grid.edges.shape[1] - 1), dtype=np.int64)
            lo, hi = np.full(2, np.inf), np.full(2, -np.inf)
            s1, s2 = np.zeros(2), np.zeros(2)
            bin_lo, bin_hi = np.full(counts.shape, np.inf), np.full(counts.shape, -np.inf)
            kernel(X, grid.edges, grid.n_edges, grid.uniform, np.zeros(2), counts, lo, hi, s1,
                   s2, True, bin_lo, bin_hi)
            outputs.append((counts, lo, hi, s1, s2, bin_lo, bin_hi))
        for a, b in zip(*outputs, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_kl_from_histogram_mirrors_the_sample_estimate(seed):
    X = skewed_data(50000, 4, seed=seed)
    grid = Grid.uniform(X.min(axis=0), X.max(axis=0))
    kl = kl_to_normal(Histograms([grid]).compute(X), grid)
    np.testing.assert_allclose(kl, marginal_kl_to_normal(X), atol=2e-3)
    constant = np.ones((10, 1))
    grid = Grid.uniform([1.0], [1.0])
    assert kl_to_normal(Histograms([grid]).compute(constant), grid)[0] == np.inf


@pytest.mark.parametrize("extremes", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
@pytest.mark.parametrize("dist", ["normal", "gamma", "t3", "discrete"])
def test_histogram_knots_match_sorted_sample_knots(dist, smoothing, extremes):
    rng = np.random.default_rng(5)
    x = {
        "normal": rng.normal(size=50000),
        "gamma": rng.gamma(2.0, size=50000),
        "t3": rng.standard_t(3, size=50000),
        "discrete": rng.poisson(3.0, size=50000).astype(float),
    }[dist]
    grid = Grid.uniform([x.min()], [x.max()])
    result = Histograms([grid], bin_extremes=extremes).compute(x[:, None])
    edges, counts, lo, hi, std, bin_min, bin_max = feature_histograms(result, grid)[0]
    xk, zk = histogram_knots(edges, counts, 224, smoothing, x_min=lo, x_max=hi, std=std,
                             bin_min=bin_min, bin_max=bin_max)
    xs, zs = gaussian_knots(np.sort(x), 224, smoothing)
    assert np.all(np.diff(xk) > 0) and np.all(np.diff(zk) > 0)
    if dist == "discrete" and not extremes:
        # Without per-bin extremes an atom spreads over its (narrow) bin.
        assert np.all(np.abs(xk - np.round(xk)) <= np.ptp(x) / 2**14)
        return
    # Exact where a bin holds one value (tails, atoms), else within two bins.
    np.testing.assert_allclose(xk, xs, atol=2 * np.ptp(x) / 2**14)
    np.testing.assert_allclose(zk, zs, atol=2e-3)
    np.testing.assert_array_equal(xk[[0, -1]], xs[[0, -1]])


def test_histogram_knots_of_a_constant_and_of_one_bin():
    xk, zk = histogram_knots(np.array([0.0, 1.0, 2.0]), np.array([0, 7]), 10, x_min=1.5,
                             x_max=1.5)
    np.testing.assert_array_equal(xk, [0.5, 2.5])
    np.testing.assert_array_equal(zk, [-1.0, 1.0])
    with pytest.raises(ValueError, match="at least one sample"):
        histogram_knots(np.array([0.0, 1.0]), np.array([0]), 10)


def test_distinct_row_sample_counts_copies_whatever_the_chunking():
    from destructors._stats import DistinctRowSample, content_keys
    from destructors.discrete import describe_discreteness

    rng = np.random.default_rng(3)
    distinct = rng.normal(size=(400, 3))
    distinct[5] = [-0.0, 1.0, 2.0]  # -0.0 and 0.0 are one value
    X = np.repeat(distinct, rng.integers(1, 4, size=400), axis=0)
    X[-1] = [0.0, 1.0, 2.0]
    X = X[rng.permutation(X.shape[0])]
    # Every distinct row sampled: the exact count of copies.
    whole = _merged(DistinctRowSample(1000), X, 1)
    assert whole.n_rows() == X.shape[0]
    assert whole.n_duplicated() == describe_discreteness(X).n_duplicated_rows
    # A sample of 50 distinct rows: the same rows and counts for any blocks,
    # each count that of its row in the whole data.
    small = [_merged(DistinctRowSample(50, seed=1), X, k) for k in (1, 3, 7, 50)]
    for other in small[1:]:
        np.testing.assert_array_equal(other.keys, small[0].keys)
        np.testing.assert_array_equal(other.counts, small[0].counts)
    keys, counts = np.unique(content_keys(X, 1), return_counts=True)
    np.testing.assert_array_equal(small[0].keys, keys[:50])
    np.testing.assert_array_equal(small[0].counts, counts[:50])
