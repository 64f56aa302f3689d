"""Linear layers: PCA (optionally whitening), ICA, random and greedy rotations."""

import warnings

import numpy as np
import pytest
from _helpers import (
    assert_change_of_variables,
    assert_round_trip,
    far_points,
    global_random_state_unchanged,
    skewed_data,
)
from scipy.stats import multivariate_normal
from sklearn.base import clone
from sklearn.decomposition import FastICA

from destructors import GreedyRotation, ICARotation, PCARotation, RandomRotation
from destructors._fitkernels import first_best
from destructors.rotation import score_candidates

ROTATIONS = [
    PCARotation(),
    PCARotation(whiten=True),
    ICARotation(random_state=0),
    RandomRotation(random_state=0),
    RandomRotation(proper=True, random_state=0),
    GreedyRotation(random_state=0),
]
IDS = ["pca", "pca-whiten", "ica", "random", "random-proper", "greedy"]


def _mixed_sources(n, seed):
    """Independent uniform and Laplace sources through a fixed mixing matrix."""
    rng = np.random.default_rng(seed)
    S = np.column_stack([rng.uniform(-1, 1, n), rng.laplace(size=n), rng.uniform(-1, 1, n)])
    A = np.array([[1.0, 0.5, 0.2], [0.3, 1.0, -0.4], [0.1, 0.2, 2.0]])
    return S, S @ A.T + [1.0, -2.0, 0.5]


@pytest.mark.parametrize("rotation", ROTATIONS, ids=IDS)
def test_round_trip_inside_and_far_outside(rotation):
    X = skewed_data(1000, 4, seed=0)
    model = clone(rotation).fit(X)
    assert_round_trip(model, X)
    assert_round_trip(model, far_points(X, seed=1))


@pytest.mark.parametrize("rotation", ROTATIONS, ids=IDS)
def test_affine_map_with_constant_log_det(rotation):
    X = skewed_data(800, 3, seed=2)
    model = clone(rotation).fit(X)
    P = far_points(X, seed=3)
    Z, log_det = model.transform_log_det(P)
    # An affine map: z(x) = z(0) + J x with J read off the basis vectors.
    z0 = model.transform(np.zeros((1, 3)))
    J = model.transform(np.eye(3)) - z0
    np.testing.assert_allclose(Z, z0 + P @ J, rtol=1e-10, atol=1e-10 * np.abs(P).max())
    np.testing.assert_allclose(log_det, np.linalg.slogdet(J)[1], rtol=0, atol=1e-10)
    assert_change_of_variables(model, P[:20], min_kept=1.0)


@pytest.mark.parametrize(
    "rotation",
    [
        RandomRotation(random_state=0),
        RandomRotation(proper=True, random_state=0),
        GreedyRotation(random_state=0),
        PCARotation(),
    ],
    ids=["random", "random-proper", "greedy", "pca"],
)
@pytest.mark.parametrize("d", [1, 2, 5])
def test_rotations_are_orthogonal(rotation, d):
    X = skewed_data(300, d, seed=4)
    model = clone(rotation).fit(X)
    Q = model.transform(np.eye(d)) - model.transform(np.zeros((1, d)))
    np.testing.assert_allclose(Q @ Q.T, np.eye(d), atol=1e-12)
    assert model.log_det_ == pytest.approx(0.0, abs=1e-12)
    # Lengths of differences are preserved.
    P = far_points(X, seed=5)
    np.testing.assert_allclose(
        np.linalg.norm(model.transform(P) - model.transform(X[:1]), axis=1),
        np.linalg.norm(P - X[:1], axis=1),
        rtol=1e-12,
    )


def test_random_rotation_reproducible_and_seed_dependent():
    X = np.zeros((2, 4))
    Q0 = RandomRotation(random_state=0).fit(X).matrix_
    np.testing.assert_array_equal(RandomRotation(random_state=0).fit(X).matrix_, Q0)
    rs = np.random.RandomState(0)
    np.testing.assert_array_equal(RandomRotation(random_state=rs).fit(X).matrix_, Q0)
    assert not np.allclose(RandomRotation(random_state=1).fit(X).matrix_, Q0)


def test_random_rotation_is_haar_distributed():
    # Over the Haar measure on O(d): E[Q] = 0, E[Q_ij^2] = 1/d, and in 2-D
    # both determinants occur equally often; SO(d) only has det = +1.
    d, n = 3, 300
    X = np.zeros((2, d))
    Qs = np.array([RandomRotation(random_state=s).fit(X).matrix_ for s in range(n)])
    se = np.sqrt(1.0 / (d * n))  # standard error of a mean of Q_ij
    assert np.all(np.abs(Qs.mean(axis=0)) < 5 * se)
    assert np.all(np.abs((Qs**2).mean(axis=0) - 1.0 / d) < 5 * np.sqrt(2.0 / n) / d)
    dets2 = [
        np.linalg.det(RandomRotation(random_state=s).fit(np.zeros((2, 2))).matrix_)
        for s in range(200)
    ]
    n_neg = np.sum(np.array(dets2) < 0)
    assert abs(n_neg - 100) < 5 * np.sqrt(200 * 0.25)
    dets_so = [
        np.linalg.det(RandomRotation(proper=True, random_state=s).fit(X).matrix_)
        for s in range(50)
    ]
    np.testing.assert_allclose(dets_so, 1.0, atol=1e-12)


def test_pca_rotates_onto_decreasing_variances():
    X = skewed_data(2000, 4, seed=6)
    model = PCARotation().fit(X)
    Z = model.transform(X)
    eigval = np.linalg.eigvalsh(np.cov(X, rowvar=False, bias=True))[::-1]
    np.testing.assert_allclose(np.cov(Z, rowvar=False, bias=True), np.diag(eigval), atol=1e-10)
    np.testing.assert_allclose(model.explained_variance_, eigval, rtol=1e-10)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-10)


def test_pca_whitening_gives_identity_covariance_and_its_log_det():
    X = skewed_data(2000, 4, seed=7) * [1.0, 10.0, 0.1, 3.0]
    model = PCARotation(whiten=True).fit(X)
    Z = model.transform(X)
    np.testing.assert_allclose(np.cov(Z, rowvar=False, bias=True), np.eye(4), atol=1e-10)
    eigval = np.linalg.eigvalsh(np.cov(X, rowvar=False, bias=True))
    assert model.log_det_ == pytest.approx(-0.5 * np.log(eigval).sum(), abs=1e-10)
    _, log_det = model.transform_log_det(X[:5])
    np.testing.assert_allclose(log_det, -0.5 * np.log(eigval).sum(), atol=1e-10)
    # On Gaussian data the whitened model is the maximum-likelihood Gaussian.
    rng = np.random.default_rng(8)
    cov = np.array([[2.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 0.5]])
    G = rng.multivariate_normal([1.0, -1.0, 0.0], cov, size=500)
    fitted = PCARotation(whiten=True).fit(G)
    mle = multivariate_normal(G.mean(axis=0), np.cov(G, rowvar=False, bias=True))
    P = far_points(G, seed=9)[:40]
    np.testing.assert_allclose(fitted.score_samples(P), mle.logpdf(P), rtol=1e-9)


def test_pca_whitening_rejects_rank_deficient_data():
    rng = np.random.default_rng(10)
    X = rng.normal(size=(100, 2)) @ [[1.0, 2.0, 3.0], [0.5, 1.0, 1.5]]  # rank 1
    with pytest.raises(ValueError, match="full-rank"):
        PCARotation(whiten=True).fit(X)


def test_pca_whitening_names_underflowing_variances_not_rank():
    # 1e-200 data square to zero: the error is about scale; the same data
    # at 1e-140 whiten exactly (their inverse round-trips).
    X = np.random.default_rng(10).normal(size=(200, 3))
    with pytest.raises(ValueError, match="underflow float64.*rescale"):
        PCARotation(whiten=True).fit(X * 1e-200)
    small = PCARotation(whiten=True).fit(X * 1e-140)
    Z = small.transform(X * 1e-140)
    np.testing.assert_allclose(Z.std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(small.inverse_transform(Z), X * 1e-140, rtol=1e-10)


def test_ica_log_det_is_that_of_the_unmixing_matrix():
    S, X = _mixed_sources(3000, seed=11)
    model = ICARotation(random_state=0).fit(X)
    ica = FastICA(whiten="unit-variance", random_state=0).fit(X)
    W = ica.components_
    assert model.log_det_ == pytest.approx(np.linalg.slogdet(W)[1], abs=1e-10)
    np.testing.assert_allclose(model.transform(X), ica.transform(X), rtol=1e-10, atol=1e-10)
    Z = model.transform(X)
    np.testing.assert_allclose(np.cov(Z, rowvar=False, bias=True), np.eye(3), atol=1e-8)
    # The sources are recovered up to order, sign and scale.
    corr = np.abs(np.corrcoef(Z.T, S.T)[:3, 3:])
    np.testing.assert_allclose(np.sort(corr.max(axis=1)), 1.0, atol=0.02)
    assert_round_trip(model, far_points(X, seed=12))
    assert_change_of_variables(model, X[:20], min_kept=1.0)


def test_ica_reproducible():
    _, X = _mixed_sources(500, seed=13)
    a = ICARotation(random_state=3).fit(X).transform(X)
    b = ICARotation(random_state=3).fit(X).transform(X)
    np.testing.assert_array_equal(a, b)


def test_greedy_rotation_keeps_the_best_candidate():
    X = skewed_data(1500, 3, seed=14)
    model = GreedyRotation(n_random=4, random_state=0).fit(X)
    assert model.candidate_scores_.shape == (5,)
    best = int(first_best(model.candidate_scores_))
    assert model.chosen_ == ("pca" if best == 0 else "random")
    if best == 0:
        expected = PCARotation().fit(X)
        np.testing.assert_allclose(model.transform(X), expected.transform(X), atol=1e-12)
    again = GreedyRotation(n_random=4, random_state=0).fit(X)
    np.testing.assert_array_equal(again.matrix_, model.matrix_)


@pytest.mark.parametrize("rotation", ROTATIONS, ids=IDS)
def test_seeded_fit_leaves_global_random_state_alone(rotation):
    X = skewed_data(300, 3, seed=15)
    with global_random_state_unchanged(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FastICA convergence on small data
        clone(rotation).fit(X).sample(3, random_state=0)


def _independent_uniforms_rotated(n, seed):
    """A square rotated by 30 degrees: isotropic covariance, so PCA's axes are
    arbitrary, while the rotation back to the square's sides makes both
    marginals uniform (far from normal)."""
    rng = np.random.default_rng(seed)
    t = np.pi / 6
    R = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return rng.uniform(-1, 1, size=(n, 2)) @ R.T


def test_greedy_rotation_scores_every_candidate_and_keeps_the_best():
    from destructors._entropy import marginal_kl_to_normal

    X = _independent_uniforms_rotated(4000, 0)
    model = GreedyRotation(n_random=8, random_state=3).fit(X)
    # Recompute each candidate's score independently of the layer.
    candidates = [PCARotation().fit(X)] + [c.fit(X) for c in model._random_candidates()]
    scores = [marginal_kl_to_normal(c.transform(X)).sum() for c in candidates]
    np.testing.assert_allclose(model.candidate_scores_, scores, rtol=1e-9)
    best = int(np.argmax(scores))
    np.testing.assert_array_equal(model.matrix_, candidates[best].matrix_)
    # Here a random direction beats PCA's arbitrary axes by a clear margin, so
    # a layer that always kept PCA would fail.
    assert model.chosen_ == "random"
    assert max(scores[1:]) > scores[0] + 0.05


def test_greedy_ties_up_to_rounding_go_to_pca():
    # On one centred feature every candidate is the same map (x, or x minus
    # a mean of rounding size), so their scores agree up to the last bits;
    # an exact argmax chose a random candidate on 8 of these 40 seeds, by
    # rounding alone. Ties go to the first candidate, PCA, on every seed.
    for seed in range(40):
        X = np.random.default_rng(seed).gamma(2.0, size=(500, 1))
        X = X - X.mean()
        model = GreedyRotation(random_state=seed).fit(X)
        scores = model.candidate_scores_
        assert np.ptp(scores) <= 1e-12 * scores.max()
        assert model.chosen_ == "pca"
        np.testing.assert_array_equal(model.shift_, PCARotation().fit(X).shift_)


def test_greedy_choice_matters_for_the_model():
    # On curved 2-D data the greedy choice gives a better held-out density
    # than PCA alone would (the margin is several times the seed-to-seed
    # spread of either model at this size).
    from sklearn.datasets import make_moons

    from destructors import RBIG

    X, _ = make_moons(3000, noise=0.05, random_state=0)
    X_test, _ = make_moons(3000, noise=0.05, random_state=1)
    greedy = RBIG(rotation="greedy", random_state=0).fit(X).score(X_test)
    pca = RBIG(rotation="pca", random_state=0).fit(X).score(X_test)
    assert greedy > pca + 0.05


def test_pca_axis_signs_do_not_hang_on_a_rounding_bit():
    # Every axis of a 2-D correlation matrix has two loadings of equal
    # magnitude; a sign rule by the largest loading then flipped with the
    # last bit of the data. The fitted map must not.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 2)) @ np.array([[1.0, 0.6], [0.0, 0.8]])
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    reference = PCARotation().fit(X).matrix_
    for k in range(40):
        nudged = X.copy()
        nudged[:, 1] *= 1.0 + (k - 20) * np.finfo(float).eps  # the old rule flipped 19 of 40
        np.testing.assert_allclose(PCARotation().fit(nudged).matrix_, reference, atol=1e-9)


def test_rank_deficient_pca_is_never_the_chosen_candidate():
    # Two rows in 2-D lie on a line: PCA's second axis holds only rounding
    # noise, which a marginal step after it would blow up to unit scale (a
    # fresh row off the line then left float64 a few layers later).
    X = np.array([[0.12573022, -0.13210486], [0.64042265, 0.10490012]])
    pca = PCARotation().fit(X)
    assert not pca.full_rank_
    assert PCARotation().fit(np.random.default_rng(0).normal(size=(50, 2))).full_rank_
    scores = score_candidates([PCARotation(), RandomRotation(random_state=0)], X)
    assert scores[0] == -np.inf and np.isfinite(scores[1])
    greedy = GreedyRotation(random_state=0).fit(X)
    assert greedy.chosen_ == "random"


def test_rank_deficiency_rule_is_the_same_for_arrays_streams_and_lone_candidates():
    dask_array = pytest.importorskip("dask.array")
    # Collinear features: PCA's third axis carries only rounding noise.
    rng = np.random.default_rng(1)
    A = rng.gamma(2.0, size=(600, 2))
    X = np.column_stack([A, A.sum(axis=1)])
    assert not PCARotation().fit(X).full_rank_
    eager = GreedyRotation(random_state=0).fit(X)
    lazy = GreedyRotation(random_state=0).fit(dask_array.from_array(X, chunks=(150, 3)))
    assert eager.chosen_ == lazy.chosen_ == "random"
    assert eager.candidate_scores_[0] == lazy.candidate_scores_[0] == -np.inf
    # A PCA that is the only candidate is still scored (nothing else to pick).
    assert np.isfinite(score_candidates([PCARotation()], X)[0])
    assert GreedyRotation(n_random=0).fit(X).chosen_ == "pca"
