"""LearnedRotation: the objective it climbs, orthogonality, directions, Dask fit."""

import warnings
from itertools import pairwise

import numpy as np
import pytest
from _helpers import assert_round_trip
from scipy import stats
from scipy.special import ndtri
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from destructors import RBIG, GreedyRotation, LearnedRotation
from destructors._entropy import marginal_kl_to_normal
from destructors._stats import RowSample, sample_rows
from destructors.learned import normal_scores, orthonormalize, wasserstein_objective
from destructors.rotation import _reference_direction
from destructors.utils import check_destructor


def hidden_sources(n, d, seed, rotation_seed=0):
    """A uniform and an exponential source (unit variance) among Gaussians, rotated.

    Returns the data and the rotation: row ``j`` of ``Q`` is the direction of
    source ``j``, so the non-Gaussian directions are ``Q[0]`` and ``Q[1]``.
    """
    rng = np.random.default_rng(seed)
    S = np.column_stack([rng.uniform(-np.sqrt(3), np.sqrt(3), n),
                         rng.exponential(size=n) - 1.0,
                         rng.normal(size=(n, d - 2))])
    Q = np.linalg.qr(np.random.default_rng(100 + rotation_seed).normal(size=(d, d)))[0]
    return S @ Q, Q


@pytest.fixture(scope="module")
def sources():
    X, Q = hidden_sources(3000, 5, seed=0)
    X_fresh, _ = hidden_sources(3000, 5, seed=1)
    return X, X_fresh, Q


# -- the objective -------------------------------------------------------------------


def test_objective_is_the_squared_wasserstein_distance_to_the_normal():
    # Independent computation: sorted projections against scipy's quantiles.
    rng = np.random.default_rng(0)
    Y = rng.gamma(2.0, size=(300, 2))
    q_ref = ndtri((np.arange(1, 301) - 0.5) / 300)
    expected = sum(np.mean((np.sort(Y[:, j]) - q_ref) ** 2) for j in range(2))
    q = normal_scores(300)
    np.testing.assert_allclose(q, q_ref, rtol=1e-13, atol=1e-15)
    value, _ = wasserstein_objective(Y, q)
    assert value == pytest.approx(expected, rel=1e-12)
    # The distance of the normal scores themselves is zero, and a direction
    # and its opposite are equally far (N(0, 1) is symmetric).
    assert wasserstein_objective(q[:, None].copy(), q)[0] == 0.0
    assert wasserstein_objective(-Y, q)[0] == pytest.approx(value, rel=1e-12)


def test_gradient_matches_finite_differences():
    # d/dw W2^2(X w) = 2/m sum_i (y_(i) - q_i) x_(i); the sort order does not
    # change for a step of 1e-6 on continuous data.
    rng = np.random.default_rng(1)
    X = np.column_stack([rng.exponential(size=500), rng.normal(size=500),
                         rng.uniform(size=500)])
    q = normal_scores(500)
    w = np.array([0.6, 0.0, 0.8])
    _, residual = wasserstein_objective(X @ w[:, None], q)
    gradient = 2.0 / 500 * (residual[:, 0] @ X)
    h = 1e-6
    for v in np.eye(3):
        up = wasserstein_objective(X @ (w + h * v)[:, None], q)[0]
        down = wasserstein_objective(X @ (w - h * v)[:, None], q)[0]
        assert (up - down) / (2 * h) == pytest.approx(gradient @ v, rel=1e-6, abs=1e-9)


# -- the fit -------------------------------------------------------------------------


def test_objective_rises_from_the_start_and_the_matrix_is_orthogonal(sources):
    X, _, _ = sources
    rot = LearnedRotation(n_steps=15, select="last", random_state=0).fit(X)
    path = rot.objective_path_
    assert rot.n_iter_ == path.size - 1 >= 3
    assert np.all(np.diff(path) > 0)  # only improving steps are taken
    # The final, re-orthonormalized matrix keeps the gain up to its rounding.
    assert rot.objective_ >= path[-1] * (1 - 1e-12)
    assert rot.objective_ > 1.5 * path[0]
    Q = rot.matrix_
    np.testing.assert_allclose(Q @ Q.T, np.eye(5), atol=1e-12)
    np.testing.assert_allclose(rot.inverse_matrix_, Q.T, atol=0)
    assert abs(rot.log_det_) < 1e-12
    # The sign rule: every direction points along the fixed generic direction.
    assert np.all(Q @ _reference_direction(5) > 0)
    assert_round_trip(rot, X, rtol=1e-12)


def test_start_is_the_best_greedy_candidate(sources):
    X, _, _ = sources
    start = LearnedRotation(n_steps=0, random_state=3).fit(X)
    assert start.n_iter_ == 0 and start.objective_path_.size == 1
    assert start.candidate_scores_.shape == (5,)
    # Its matrix is the winning candidate's, up to the order and signs of rows.
    learned = LearnedRotation(n_steps=10, select="last", random_state=3).fit(X)
    np.testing.assert_array_equal(learned.candidate_scores_, start.candidate_scores_)
    assert learned.objective_ > start.objective_


def test_learned_directions_beat_the_greedy_start_on_hidden_sources(sources):
    X, X_fresh, Q_true = sources
    learned = LearnedRotation(random_state=0).fit(X)
    start = LearnedRotation(n_steps=0, random_state=0).fit(X)
    greedy = GreedyRotation(random_state=0).fit(X)
    # Non-Gaussianity exposed for the next marginal step, on fresh rows. The
    # sources expose about 0.45 nats (uniform 0.18, exponential 0.27); a
    # random rotation of them exposes only a fraction.
    exposed = {name: marginal_kl_to_normal(r.transform(X_fresh)).sum()
               for name, r in [("learned", learned), ("start", start), ("greedy", greedy)]}
    truth = marginal_kl_to_normal(X_fresh @ Q_true.T).sum()
    assert exposed["learned"] > exposed["start"] + 0.1
    assert exposed["learned"] > exposed["greedy"] + 0.1
    assert exposed["learned"] > 0.8 * truth
    # The two most non-Gaussian learned directions are the sources' (|cos| > 0.97).
    cosines = np.abs(learned.matrix_ @ Q_true[:2].T)
    assert np.all(cosines.max(axis=0) > 0.97)


def test_a_few_directions_in_many_features():
    X, Q_true = hidden_sources(3000, 12, seed=2)
    rot = LearnedRotation(n_directions=1, random_state=0).fit(X)
    assert rot.n_directions_ == 1
    assert np.all(np.diff(rot.objective_path_) > 0)
    np.testing.assert_allclose(rot.matrix_ @ rot.matrix_.T, np.eye(12), atol=1e-12)
    # The optimized row comes first and finds the source farthest from N(0, 1)
    # in W2 (the exponential's skewed tail; the uniform's W2 is a tenth of it).
    assert abs(rot.matrix_[0] @ Q_true[1]) > 0.99
    # All directions: both sources.
    rot = LearnedRotation(random_state=0).fit(X)
    assert np.all(np.abs(rot.matrix_ @ Q_true[:2].T).max(axis=0) > 0.99)
    # More directions than features: all of them.
    assert LearnedRotation(n_directions=50, n_steps=1, random_state=0).fit(
        X[:, :3]).n_directions_ == 3


def test_fit_uses_a_bounded_subsample(sources):
    X, _, _ = sources
    rot = LearnedRotation(subsample=500, random_state=0).fit(X)
    # The fit sees exactly the seeded subsample: refitting on those rows
    # alone, with all of them kept, gives the same matrix.
    seeds = rot._seeds()
    rows = sample_rows(np.arange(X.shape[0]), 500, seeds[0])
    assert rows.size == 500
    alone = LearnedRotation(subsample=500, random_state=0)
    alone.n_features_in_ = X.shape[1]
    alone._fit_rows(X[rows], seeds[1])
    np.testing.assert_array_equal(alone.matrix_, rot.matrix_)


def test_determinism_with_random_state(sources):
    X, _, _ = sources
    a = LearnedRotation(subsample=1000, random_state=7).fit(X)
    b = LearnedRotation(subsample=1000, random_state=7).fit(X)
    np.testing.assert_array_equal(a.matrix_, b.matrix_)
    np.testing.assert_array_equal(a.objective_path_, b.objective_path_)
    c = LearnedRotation(subsample=1000, random_state=8).fit(X)
    assert not np.array_equal(a.candidate_scores_, c.candidate_scores_)
    # The input is left alone.
    X_copy = X.copy()
    LearnedRotation(random_state=0).fit(X)
    np.testing.assert_array_equal(X, X_copy)


@pytest.mark.parametrize("d", [2, 5])
def test_rounding_changes_of_the_data_do_not_change_the_climb(d):
    # A gradient climb with steps of a set angle multiplies a change of the
    # data by tens per step where the gradient is small (on these 5-D data
    # the matrices differed by 6e-10 unrounded); the rounded steps keep the
    # fit as close as the data are. The 2-D case is RBIG's first layer on
    # skewed data and on a standardized copy (rounding-level apart after the
    # marginal map), where the generators are exactly the trial angles (a
    # dyadic grid let the last bit choose a step in make_destructor_pipeline's
    # example, five layers deep; see _STEP_GRID).
    if d == 2:
        raw = np.random.default_rng(0).gamma(2.0, size=(400, 2)) * [1.0, 1000.0]
        params = dict(max_layers=1, early_stopping=False, tol=None, random_state=0)
        a = RBIG(**params).fit(raw).layers_[0].layers_[1]
        b = RBIG(**params).fit(StandardScaler().fit_transform(raw)).layers_[0].layers_[1]
    else:
        X, _ = hidden_sources(2000, d, seed=3)
        X_other = X * (1.0 + 1e-15 * np.sin(np.arange(X.size).reshape(X.shape)))
        a = LearnedRotation(select="last", random_state=0).fit(X)
        b = LearnedRotation(select="last", random_state=0).fit(X_other)
    assert a.objective_path_.size >= 2  # the climb did move
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_allclose(a.objective_path_, b.objective_path_, rtol=1e-12)
    np.testing.assert_allclose(a.matrix_, b.matrix_, rtol=0, atol=1e-12)


def test_few_rows_keep_the_start():
    X, _ = hidden_sources(60, 3, seed=5)
    rot = LearnedRotation(random_state=0).fit(X)
    assert rot.n_iter_ == 0 and len(rot.objective_path_) == 1
    # With enough rows the same data climb.
    X, _ = hidden_sources(400, 3, seed=5)
    assert LearnedRotation(random_state=0).fit(X).n_iter_ > 0


def test_orthonormalize_repairs_drift_and_fixes_signs():
    rng = np.random.default_rng(4)
    Q = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    drifted = Q + 1e-7 * rng.normal(size=(6, 6))
    fixed = orthonormalize(drifted)
    np.testing.assert_allclose(fixed @ fixed.T, np.eye(6), atol=1e-14)
    np.testing.assert_allclose(np.abs(fixed), np.abs(Q), atol=1e-6)
    # Flipping rows of the input does not change the output.
    np.testing.assert_allclose(orthonormalize(-drifted), fixed, atol=1e-14)


@pytest.mark.parametrize(
    ("params", "match"),
    [({"n_directions": 0}, "n_directions"), ({"n_steps": -1}, "n_steps"),
     ({"subsample": 1}, "subsample"), ({"n_random": 1.5}, "n_random")],
)
def test_bad_parameters_are_refused_by_name(params, match):
    with pytest.raises(ValueError, match=match):
        LearnedRotation(**params).fit(np.random.default_rng(0).normal(size=(50, 3)))


def test_overflowing_data_are_refused():
    with pytest.raises(ValueError, match="too large for float64"):
        LearnedRotation().fit(np.full((10, 3), 1e200) * np.arange(1, 11)[:, None])


# -- the library's machinery ---------------------------------------------------------


def test_passes_check_destructor():
    # It raises on any failed check; the fused path and (with Dask) the
    # streamed fit are checked too.
    report = check_destructor(LearnedRotation(random_state=0))
    assert "fused" in report.passed
    assert "stream" in report.passed or report.skipped["stream"] == "Dask is not installed"


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_rbig_takes_the_learned_rotation_by_default(sources):
    X, X_fresh, _ = sources
    model = RBIG(max_layers=4, early_stopping=False, random_state=0).fit(X)
    assert all(isinstance(layer.layers_[1], LearnedRotation) for layer in model.layers_)
    assert_round_trip(model, X_fresh, rtol=1e-9)
    # Its first layers expose more than greedy ones do, so the same depth
    # fits better (a Gaussian of these data scores log N, about -7.09).
    greedy = RBIG(rotation="greedy", max_layers=4, early_stopping=False,
                  random_state=0).fit(X)
    assert model.score(X_fresh) > greedy.score(X_fresh) + 0.05


@parametrize_with_checks([LearnedRotation(), LearnedRotation(n_directions=1, n_steps=2)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# -- Dask ----------------------------------------------------------------------------


def test_row_sample_does_not_depend_on_blocks():
    Y = np.random.default_rng(5).normal(size=(1000, 2))
    expected = Y[sample_rows(np.arange(1000), 64, seed=9)]
    stat = RowSample(64, seed=9)
    for cuts in ([0, 1000], [0, 10, 11, 500, 1000], list(range(0, 1001, 100))):
        parts = [stat.compute(Y[a:b], np.arange(a, b)) for a, b in pairwise(cuts)]
        merged = parts[0]
        for part in parts[1:]:
            merged = stat.merge(merged, part)
        np.testing.assert_array_equal(merged.Y, expected)
    # Uniform: each row is kept with probability 64 / 1000 (a binomial test
    # over 200 seeds, the rows in ten bands of 100).
    counts = np.zeros(10)
    for seed in range(200):
        counts += np.bincount(sample_rows(np.arange(1000), 64, seed) // 100, minlength=10)
    assert stats.chisquare(counts).pvalue > 1e-3


def test_dask_fit_equals_the_array_fit_whatever_the_chunking(sources):
    da = pytest.importorskip("dask.array")
    dask = pytest.importorskip("dask")
    X, _, _ = sources
    eager = LearnedRotation(subsample=1000, random_state=0).fit(X)
    with dask.config.set(scheduler="threads"):
        for rows in (700, 1300):
            lazy = LearnedRotation(subsample=1000, random_state=0).fit(
                da.from_array(X, chunks=(rows, X.shape[1])))
            np.testing.assert_array_equal(lazy.matrix_, eager.matrix_)
            np.testing.assert_array_equal(lazy.objective_path_, eager.objective_path_)


def test_rbig_with_learned_rotation_fits_on_dask():
    da = pytest.importorskip("dask.array")
    dask = pytest.importorskip("dask")
    X, _ = hidden_sources(3000, 3, seed=3)
    X_test, _ = hidden_sources(2000, 3, seed=4)
    params = dict(rotation="learned", max_layers=6, early_stopping=False, tol=None,
                  random_state=0)
    with dask.config.set(scheduler="threads"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lazy = RBIG(**params).fit(da.from_array(X, chunks=(700, 3)))
        eager = RBIG(**params).fit(X)
    assert lazy.n_layers_ == eager.n_layers_ == 6
    # The marginal maps come from histograms on Dask (see tests/test_dask.py):
    # close, not equal.
    assert abs(lazy.score(X_test) - eager.score(X_test)) < 0.02
    # The first rotation sees identical rows (the raw data through the first
    # marginal map, nearly equal): the same directions.
    np.testing.assert_allclose(np.abs(lazy.layers_[0].layers_[1].matrix_),
                               np.abs(eager.layers_[0].layers_[1].matrix_), atol=1e-2)


def test_safe_model_file_round_trip(sources, tmp_path):
    from destructors.persistence import load_model, save_model

    X, X_fresh, _ = sources
    rot = LearnedRotation(n_steps=3, random_state=0).fit(X)
    path = tmp_path / "learned.destructor"
    save_model(path, rot)
    loaded = load_model(path).model
    assert isinstance(loaded, LearnedRotation)
    np.testing.assert_array_equal(loaded.transform(X_fresh), rot.transform(X_fresh))
    np.testing.assert_array_equal(loaded.objective_path_, rot.objective_path_)
