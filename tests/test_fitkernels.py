"""Fit-side kernels: one-pass candidate scoring and the marginal fit's helpers.

Each kernel is checked against its NumPy reference: the scores against
``marginal_kl_to_normal`` of the rotated rows, the rotation against the fused
affine step (bit for bit), the quantile and the paired interpolation against
``np.quantile`` and ``np.interp`` (exactly), so the fitted maps are the ones
the NumPy path gives.
"""

import numba
import numpy as np
import pytest
from _helpers import skewed_data

from destructors import RBIG, GreedyRotation, PCARotation, RandomRotation
from destructors._entropy import marginal_kl_to_normal
from destructors._fitkernels import (
    _score_all_parallel,
    _score_all_serial,
    first_best,
    interp_pair,
    marginal_kl,
    ranked_by_score,
    rotate,
    rotated_marginal_kl,
)
from destructors.marginal import _sorted_quantile
from destructors.rotation import score_candidates


def _candidates(X, n_random=3):
    fitted = [PCARotation().fit(X)] + [RandomRotation(random_state=s).fit(X)
                                       for s in range(n_random)]
    return (fitted, np.stack([c.matrix_ for c in fitted]), np.stack([c.shift_ for c in fitted]))


@pytest.mark.parametrize("rows", [None, "subset"])
def test_scores_match_the_numpy_reference(rows):
    X = skewed_data(3000, 4, seed=1)
    fitted, mats, shifts = _candidates(X)
    idx = None if rows is None else np.sort(np.random.default_rng(0).choice(3000, 700, False))
    scores, best = rotated_marginal_kl(X, mats, shifts, rows=idx, keep_best=True)
    part = X if idx is None else X[idx]
    expected = [marginal_kl_to_normal(c.transform(part)).sum() for c in fitted]
    np.testing.assert_allclose(scores, expected, rtol=1e-12)
    # The kept rows are the winner's own output, bit for bit.
    np.testing.assert_array_equal(best, fitted[int(np.argmax(expected))].transform(part))


def test_rotate_is_the_fused_affine_step_bit_for_bit():
    X = skewed_data(2000, 5, seed=2)
    for layer in (PCARotation().fit(X), RandomRotation(random_state=4).fit(X)):
        np.testing.assert_array_equal(rotate(X, layer.matrix_, layer.shift_), layer.transform(X))


def test_marginal_kl_matches_the_reference_and_flags_constant_columns():
    Z = skewed_data(5000, 3, seed=3)
    np.testing.assert_allclose(marginal_kl(Z), marginal_kl_to_normal(Z), rtol=1e-12)
    Z[:, 1] = 2.0
    assert np.isinf(marginal_kl(Z)[1]) and np.isinf(marginal_kl_to_normal(Z)[1])


def test_parallel_and_serial_scoring_agree_exactly():
    X = skewed_data(4000, 6, seed=4)
    fitted, mats, shifts = _candidates(X, n_random=4)
    none = np.zeros(0, np.int64)
    sub = np.sort(np.random.default_rng(1).choice(X.shape[0], 1500, replace=False))
    rest = np.setdiff1d(np.arange(X.shape[0]), sub)
    out = {}
    for name, kernel in (("serial", _score_all_serial), ("parallel", _score_all_parallel)):
        for scored, every_row, unscored in ((none, False, none), (sub, True, rest)):
            scores, best = np.empty(5), np.empty(X.shape)
            kernel(X, scored, mats, shifts, np.zeros_like(shifts), 64, True, scores, best,
                   every_row, unscored)
            out[name, every_row] = scores, best
    for every_row in (False, True):
        np.testing.assert_array_equal(out["serial", every_row][0], out["parallel", every_row][0])
        np.testing.assert_array_equal(out["serial", every_row][1], out["parallel", every_row][1])
        # Every row is the winner's own output, bit for bit, scored or not.
        scores, best = out["serial", every_row]
        winner = fitted[int(np.argmax(scores))]
        np.testing.assert_array_equal(best, winner.transform(X))


@pytest.mark.parametrize("n_scored", [700, 3000])
def test_every_row_output_reuses_the_scored_rows_bit_for_bit(n_scored):
    X = skewed_data(3000, 4, seed=11)
    fitted, mats, shifts = _candidates(X)
    rows = np.random.default_rng(2).permutation(3000)[:n_scored]  # unsorted; all rows at 3000
    scores, best = rotated_marginal_kl(X, mats, shifts, rows=rows, keep_best=True,
                                       every_row=True)
    np.testing.assert_array_equal(scores, rotated_marginal_kl(X, mats, shifts, rows=rows))
    np.testing.assert_array_equal(best, fitted[int(np.argmax(scores))].transform(X))


def test_sorted_quantile_is_numpys():
    rng = np.random.default_rng(5)
    for n in [2, 3, 4, 5, 7, 10, 101, 1000, 4097]:
        x = np.sort(rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 3))
        for q in (0.25, 0.75):
            assert _sorted_quantile(x, q) == np.quantile(x, q)


def test_interp_pair_is_two_numpy_interps():
    rng = np.random.default_rng(6)
    x = np.sort(np.round(rng.standard_normal(500), 1))  # ties, as in rounded data
    f = (np.arange(500) + 0.5) / 500
    s = np.concatenate([rng.standard_normal((40, 24)).ravel() * 2.0, x[::7]])
    fs, gs = interp_pair(s, x, f, 1.0 - f, (0.0, 1.0), (1.0, 0.0))
    np.testing.assert_array_equal(fs, np.interp(s, x, f, left=0.0, right=1.0))
    np.testing.assert_array_equal(gs, np.interp(s, x, 1.0 - f, left=1.0, right=0.0))


def test_score_candidates_keeps_its_meaning_for_any_layer():
    # A candidate that is not one affine step goes through its own _forward.
    from destructors import CompositeDestructor, MarginalGaussianizer

    X = skewed_data(1500, 3, seed=7)
    rows = np.arange(0, 1500, 2)
    odd = CompositeDestructor([MarginalGaussianizer(), PCARotation()])
    scores = score_candidates([PCARotation(), odd], X, rows)
    fitted = [PCARotation().fit(X), odd]
    expected = [marginal_kl_to_normal(c.transform(X[rows])).sum() for c in fitted]
    np.testing.assert_allclose(scores, expected, rtol=1e-12)


def _square(n, seed):
    """Independent uniforms rotated by 30 degrees: PCA's axes are arbitrary,
    the rotation back to the square's sides exposes two uniform marginals."""
    t = np.pi / 6
    R = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return np.random.default_rng(seed).uniform(-1, 1, size=(n, 2)) @ R.T


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_subsample_scoring_picks_the_full_winner_on_clear_cases(seed):
    X = _square(30_000, seed)
    full = GreedyRotation(n_random=6, random_state=seed, subsample=10**9).fit(X)
    sub = GreedyRotation(n_random=6, random_state=seed, subsample=3000).fit(X)
    gap = np.sort(full.candidate_scores_)[-1] - np.sort(full.candidate_scores_)[-2]
    assert gap > 0.01  # a clear case: the best candidate wins by a margin
    np.testing.assert_array_equal(sub.matrix_, full.matrix_)
    # The subsample scores estimate the same quantities.
    np.testing.assert_allclose(sub.candidate_scores_, full.candidate_scores_, atol=0.02)


@pytest.mark.parametrize("n", [1500, 6000])
def test_greedy_fit_output_is_its_transform(n):
    X = skewed_data(n, 3, seed=8)
    layer = GreedyRotation(random_state=0, subsample=3000)
    Z, log_det = layer._fit_forward(X)
    np.testing.assert_array_equal(Z, layer.transform(X))
    np.testing.assert_array_equal(log_det, layer.transform_log_det(X)[1])


def test_deep_fit_is_deterministic_and_independent_of_thread_count():
    X = skewed_data(25_000, 3, seed=9)  # above the scoring subsample
    X_test = skewed_data(500, 3, seed=10)
    scores = []
    previous = numba.get_num_threads()
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS), 1):
            numba.set_num_threads(threads)
            model = RBIG(max_layers=4, early_stopping=False, tol=None, random_state=0).fit(X)
            scores.append(model.score_samples(X_test))
    finally:
        numba.set_num_threads(previous)
    np.testing.assert_array_equal(scores[0], scores[1])
    np.testing.assert_array_equal(scores[0], scores[2])


def test_pca_covariance_from_blocks_matches_numpy():
    from destructors import rotation

    X = skewed_data(rotation._COV_BLOCK + 5000, 3, seed=11)
    layer = PCARotation().fit(X)
    expected = np.cov(X, rowvar=False, bias=True)
    Q = layer.matrix_
    np.testing.assert_allclose(Q @ expected @ Q.T, np.diag(layer.explained_variance_),
                               atol=1e-10 * expected.max())


def _sorted_rows(X):
    XT = np.ascontiguousarray(X.T)
    XT.sort(axis=1)
    return XT


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_compiled_marginal_knots_are_the_numpy_knots_bit_for_bit(smoothing):
    from destructors.marginal import _sample_knots, gaussian_knots

    rng = np.random.default_rng(8)
    cases = [
        skewed_data(3000, 4, seed=8),
        np.round(rng.normal(size=(2000, 3)), 1),  # ties: merged knots
        np.c_[np.full(300, 2.5), rng.standard_t(1, size=300)],  # a constant, heavy tails
        rng.normal(size=(3, 2)),  # fewer rows than knots
    ]
    for X in cases:
        XT = _sorted_rows(X)
        for n_knots in (10, 55, 1000):
            with np.errstate(all="ignore"):
                knots, n_unique = _sample_knots(XT, n_knots, smoothing)
            for j, (xk, zk) in enumerate(knots):
                ref_x, ref_z = gaussian_knots(XT[j], n_knots, smoothing)
                np.testing.assert_array_equal(xk, ref_x)
                np.testing.assert_array_equal(zk, ref_z)
            assert n_unique.tolist() == [np.unique(col).size for col in XT]


def test_knot_cdfs_serial_and_parallel_agree_exactly():
    from destructors._fitkernels import _knot_cdfs_parallel, _knot_cdfs_serial
    from destructors.marginal import _GH_NODES

    XT = _sorted_rows(skewed_data(5000, 5, seed=9))
    d, n = XT.shape
    levels = np.linspace(0.5 / n, 1.0 - 0.5 / n, 71)
    shifts = np.linspace(0.01, 0.1, d)[:, None] * _GH_NODES
    positions = (np.arange(n) + 0.5) / n
    out = []
    for kernel in (_knot_cdfs_serial, _knot_cdfs_parallel):
        arrays = [np.empty((d, 71)), np.empty((d, 71), np.int64), np.empty(d, np.int64),
                  np.zeros((d, 71, 24)), np.zeros((d, 71, 24)), np.empty(d, np.int64)]
        kernel(XT, levels, positions, 1.0 - positions, shifts, np.ones(d, bool), *arrays)
        out.append(arrays)
    for a, b in zip(*out, strict=True):
        np.testing.assert_array_equal(a, b)


def test_pca_moments_are_numpys_bit_for_bit():
    from destructors._fitkernels import centred_covariance, column_means

    for seed, shape in enumerate([(5000, 7), (65_536, 3), (10, 2)]):
        X = skewed_data(*shape, seed=seed) * 10.0 ** (3 * seed)
        mean = X.mean(axis=0)
        np.testing.assert_array_equal(column_means(X), mean)
        np.testing.assert_array_equal(centred_covariance(X, mean),
                                      np.cov(X - mean, rowvar=False, bias=True))


def test_pca_rotation_is_the_same_for_c_and_fortran_ordered_rows():
    X = skewed_data(3000, 4, seed=10)
    c = PCARotation().fit(X)
    f = PCARotation().fit(np.asfortranarray(X))
    np.testing.assert_allclose(c.matrix_, f.matrix_, rtol=0, atol=1e-12)


def test_haar_draws_are_scipys():
    from scipy.stats import ortho_group

    from destructors.rotation import _haar_draw

    for d in (1, 2, 5, 9):
        for seed in (0, 7, 2**31 - 2):
            expected = (np.ones((1, 1)) if d == 1
                        else ortho_group.rvs(d, random_state=np.random.RandomState(seed)))
            np.testing.assert_array_equal(_haar_draw(d, seed), expected)
    # A reused generator does not carry one draw's state into the next.
    first = _haar_draw(4, 3)
    _haar_draw(4, 11)
    np.testing.assert_array_equal(_haar_draw(4, 3), first)


def test_greedy_rotation_candidates_are_the_listed_layers():
    # The fast path draws the arrays of PCARotation and the seeded
    # RandomRotations and scores them as score_candidates scores the layers.
    X = skewed_data(1500, 3, seed=11)
    rot = GreedyRotation(n_random=3, random_state=5).fit(X)
    seeds = np.random.RandomState(5).randint(0, 2**31 - 1, size=3)
    layers = [PCARotation()] + [RandomRotation(random_state=s) for s in seeds]
    np.testing.assert_allclose(rot.candidate_scores_, score_candidates(layers, X), rtol=1e-12)
    best = layers[int(np.argmax(rot.candidate_scores_))]
    np.testing.assert_array_equal(rot.matrix_, best.matrix_)


def test_parallel_min_elements_scopes_the_kernel_choice():
    from destructors._kernels import parallel_min_elements, use_parallel

    with parallel_min_elements(10**9):
        assert not use_parallel(10**8)
        with parallel_min_elements(10):
            assert use_parallel(10**6)
        assert not use_parallel(10**8)
    assert use_parallel(10**6)


def test_first_best_ties_go_to_the_earliest_and_nan_never_wins():
    # Equal up to rounding (a relative 1e-12 apart): the earliest, whichever
    # of the two the last bit favours.
    assert first_best(np.array([0.3, 0.3 * (1 + 1e-12), 0.1])) == 0
    assert first_best(np.array([0.3 * (1 + 1e-12), 0.3, 0.1])) == 0
    # A real lead (1e-6 relative, a thousand times the margin) wins.
    assert first_best(np.array([0.3, 0.3 * (1 + 1e-6)])) == 1
    # Large scores: the margin is relative, so rounding of 1e4-sized sums ties.
    assert first_best(np.array([1e4, 1e4 + 1e-7])) == 0
    assert first_best(np.array([np.nan, -np.inf, 2.0])) == 2
    assert first_best(np.array([-np.inf, np.inf, 5.0, np.inf])) == 1
    assert first_best(np.array([-np.inf, -np.inf])) == 0
    assert first_best(np.array([np.nan, np.nan])) == 0
    # The same answer as the argmax wherever there is a clear winner.
    rng = np.random.default_rng(0)
    for _ in range(200):
        scores = rng.normal(size=7)
        assert first_best(scores) == int(np.argmax(scores))


def test_ranking_keeps_scores_equal_up_to_rounding_in_their_given_order():
    scores = np.array([0.5, 1.0 + 1e-12, 1.0, 0.25, 1.0 - 1e-12, np.nan])
    # An argsort would put index 1 first: it is ahead by rounding only.
    assert np.argsort(-scores[:5], kind="stable")[0] == 1
    assert ranked_by_score(scores).tolist() == [1, 2, 4, 0, 3, 5]
    # Clear differences still order by value.
    assert ranked_by_score([0.1, 0.3, 0.2]).tolist() == [1, 2, 0]
