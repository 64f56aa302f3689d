"""Composites and greedy deep destructors (RBIG): exact densities, stopping, seeding."""

import warnings

import numpy as np
import pytest
from _helpers import (
    assert_change_of_variables,
    assert_round_trip,
    far_points,
    gaussian_log_pdf,
    global_random_state_unchanged,
    skewed_data,
    trapezoid_1d,
    trapezoid_2d,
)
from sklearn.base import clone
from sklearn.datasets import make_moons
from sklearn.exceptions import NotFittedError
from sklearn.mixture import GaussianMixture
from sklearn.utils.validation import check_is_fitted

from destructors import (
    RBIG,
    CompositeDestructor,
    DeepDestructor,
    MarginalGaussianizer,
    PCARotation,
    RandomRotation,
)


def _moons(n, seed):
    return make_moons(n, noise=0.05, random_state=seed)[0]


MODELS = {
    "composite": CompositeDestructor([MarginalGaussianizer(), PCARotation(whiten=True)]),
    "deep-default": DeepDestructor(max_layers=10, random_state=0),
    "rbig-greedy": RBIG(max_layers=20, random_state=0),
    "rbig-pca": RBIG(rotation="pca", max_layers=20, random_state=0),
    "rbig-random": RBIG(rotation="random", max_layers=20, random_state=0),
    "rbig-ica": RBIG(rotation="ica", max_layers=4, random_state=0),
}


def _fit(name, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FastICA convergence warnings
        return clone(MODELS[name]).fit(X)


# -- invertibility and exact densities -------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
def test_round_trip_inside_and_far_outside(name):
    X = skewed_data(1500, 3, seed=0)
    model = _fit(name, X)
    assert_round_trip(model, X)
    assert_round_trip(model, far_points(X, seed=1))


@pytest.mark.parametrize("name", list(MODELS))
def test_score_samples_is_change_of_variables(name):
    X = skewed_data(1500, 3, seed=2)
    model = _fit(name, X)
    P = np.vstack([skewed_data(30, 3, seed=3), 2.0 * skewed_data(10, 3, seed=4)])
    assert_change_of_variables(model, P)


def test_change_of_variables_in_five_dimensions():
    X = skewed_data(2000, 5, seed=5)
    model = RBIG(max_layers=15, random_state=0).fit(X)
    assert_change_of_variables(model, skewed_data(40, 5, seed=6))


@pytest.mark.parametrize("name", ["rbig-greedy", "rbig-pca"])
def test_model_is_the_composition_of_its_layers(name):
    X = skewed_data(1000, 3, seed=7)
    model = _fit(name, X)
    P = far_points(X, seed=8)
    Z, log_det = P, np.zeros(P.shape[0])
    for layer in model.layers_:
        Z, ld = layer.transform_log_det(Z)
        log_det += ld
    Z_model, log_det_model = model.transform_log_det(P)
    np.testing.assert_allclose(Z_model, Z, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(log_det_model, log_det, rtol=1e-10, atol=1e-10)
    X_back = Z
    for layer in reversed(model.layers_):
        X_back = layer.inverse_transform(X_back)
    np.testing.assert_allclose(model.inverse_transform(Z), X_back, rtol=1e-10, atol=1e-10)


def test_composite_log_det_is_sum_of_layer_log_dets():
    X = skewed_data(1000, 3, seed=9)
    templates = [MarginalGaussianizer(), PCARotation(whiten=True), RandomRotation(random_state=0)]
    model = CompositeDestructor(templates).fit(X)
    Z, log_det = model.transform_log_det(X)
    expected_Z, expected_ld = X, 0.0
    for layer in model.layers_:
        expected_Z, ld = layer.transform_log_det(expected_Z)
        expected_ld = expected_ld + ld
    np.testing.assert_allclose(Z, expected_Z, rtol=1e-12)
    np.testing.assert_allclose(log_det, expected_ld, rtol=1e-12)
    # The templates were cloned, never fitted in place.
    for template, fitted in zip(templates, model.layers_, strict=True):
        assert fitted is not template
        with pytest.raises(NotFittedError):
            check_is_fitted(template)


@pytest.mark.parametrize("name", ["rbig-greedy", "rbig-pca"])
def test_density_integrates_to_one_in_1d(name):
    X = np.random.default_rng(10).gamma(2.0, size=(1500, 1))
    model = _fit(name, X)
    lo, hi = model.inverse_transform([[-9.0], [9.0]]).ravel()  # all but ~2e-19 of the mass
    assert abs(trapezoid_1d(model, lo, hi, 400_001) - 1.0) < 1e-3


@pytest.mark.parametrize("name", ["rbig-greedy", "rbig-pca"])
def test_density_integrates_to_one_in_2d(name):
    X = _moons(2000, seed=0)
    model = _fit(name, X)
    x_range, y_range = (-3.5, 4.5), (-3.0, 3.5)
    # The box holds the mass: model samples almost never leave it.
    S = model.sample(20000, random_state=0)
    outside = np.mean(
        (S[:, 0] < x_range[0])
        | (S[:, 0] > x_range[1])
        | (S[:, 1] < y_range[0])
        | (S[:, 1] > y_range[1])
    )
    assert outside < 1e-3
    assert abs(trapezoid_2d(model, x_range, y_range, 1001) - 1.0) < 0.01


# -- statistical quality -----------------------------------------------------


@pytest.mark.parametrize("rotation", ["greedy", "pca"])
def test_gaussian_data_likelihood_close_to_truth(rotation):
    rng = np.random.default_rng(11)
    A = rng.normal(size=(3, 3))
    cov = A @ A.T + 0.3 * np.eye(3)
    mean = rng.normal(size=3)
    X = rng.multivariate_normal(mean, cov, size=5000)
    X_test = rng.multivariate_normal(mean, cov, size=5000)
    model = RBIG(rotation=rotation, random_state=0).fit(X)
    true = gaussian_log_pdf(X_test, mean, cov).mean()
    assert true - 0.05 < model.score(X_test) < true + 0.01


def test_moons_likelihood_beats_the_best_gaussian():
    X, X_test = _moons(10000, seed=0), _moons(5000, seed=1)
    model = RBIG(random_state=0).fit(X)
    gaussian = GaussianMixture(1, random_state=0).fit(X)
    assert model.score(X_test) > gaussian.score(X_test) + 1.0


def test_samples_match_training_moments_and_quantiles():
    n, m = 5000, 20000
    X = skewed_data(n, 3, seed=12)
    model = RBIG(random_state=0).fit(X)
    S = model.sample(m, random_state=1)
    # Tolerance: 5 standard errors of a difference between statistics of n
    # training rows and m independent samples (the model is fitted to the
    # training rows, so their own error enters too).
    k = 5.0
    se_mean = np.sqrt(X.var(axis=0) * (1 / n + 1 / m))
    assert np.all(np.abs(S.mean(axis=0) - X.mean(axis=0)) < k * se_mean)
    Xc = X - X.mean(axis=0)
    products = Xc[:, :, None] * Xc[:, None, :]
    se_cov = np.sqrt(products.var(axis=0) * (1 / n + 1 / m))
    cov_gap = np.cov(S, rowvar=False, bias=True) - np.cov(X, rowvar=False, bias=True)
    assert np.all(np.abs(cov_gap) < k * se_cov)
    # Marginal quantiles: the training fraction below each sample quantile.
    levels = np.linspace(0.02, 0.98, 25)
    q = np.quantile(S, levels, axis=0)
    fraction = (X[None, :, :] <= q[:, None, :]).mean(axis=1)
    se_level = np.sqrt(levels * (1 - levels) * (1 / n + 1 / m))[:, None]
    assert np.all(np.abs(fraction - levels[:, None]) < k * se_level)


# -- stopping rules ------------------------------------------------------------


def test_max_layers_is_honoured():
    X = skewed_data(600, 2, seed=13)
    fixed = RBIG(max_layers=4, early_stopping=False, tol=None, random_state=0).fit(X)
    assert fixed.n_layers_ == len(fixed.layers_) == 4
    assert len(fixed.train_score_) == len(fixed.tc_reduction_) == 4
    early = RBIG(max_layers=3, n_iter_no_change=50, random_state=0).fit(X)
    assert 1 <= early.n_layers_ <= 3 and len(early.validation_score_) == 3


@pytest.mark.parametrize("refit", [True, False, "marginals"])
def test_early_stopping_keeps_the_best_validation_prefix(refit):
    X = _moons(3000, seed=2)
    patience, tol = 4, 1e-3
    model = RBIG(
        max_layers=80, n_iter_no_change=patience, tol=tol, refit=refit, random_state=0
    ).fit(X)
    val = model.validation_score_
    assert model.n_layers_ == len(model.layers_) == int(np.argmax(val)) + 1
    assert len(val) == len(model.train_score_) < 80
    # It stopped after ``patience`` layers in a row that did not beat the best
    # so far by ``tol``, right after one that did.
    L = len(val)
    running_best = np.maximum.accumulate(np.r_[-np.inf, val[:-1]])  # best before i
    improved = val > running_best + tol
    assert not improved[L - patience :].any()
    assert L == patience or improved[L - patience - 1]


def test_early_stopping_keeps_the_shorter_of_two_depths_equal_up_to_rounding():
    from destructors.deep import LayerRecord, StoppingRule

    # The fourth layer scores above the second only in the last bits (as a
    # rotation of Gaussian rows does): not a better model, so the shorter
    # depth is kept, and it does not reset the patience.
    rule = StoppingRule(True, 0.0, patience=3)
    for v in (1.0, 2.0, 1.5, 2.0 * (1 + 1e-13), 1.9):
        rule.update(LayerRecord(None, v, 0.0))
    assert rule.n_keep == 2
    assert rule.stop_at == 5
    # A real gain still counts, however small the tolerance.
    rule = StoppingRule(True, 0.0, patience=3)
    for v in (1.0, 2.0, 2.0 + 1e-6):
        rule.update(LayerRecord(None, v, 0.0))
    assert rule.n_keep == 3


def test_refit_marginals_keeps_the_searched_rotations_and_refits_the_rest():
    X = skewed_data(4000, 3, seed=15)
    X_test = skewed_data(4000, 3, seed=16)
    params = dict(max_layers=40, random_state=0)
    searched = RBIG(refit=False, **params).fit(X)
    kept = RBIG(refit="marginals", **params).fit(X)
    full = RBIG(refit=True, **params).fit(X)
    assert kept.n_layers_ == searched.n_layers_ == full.n_layers_
    # The rotations are the search's; each marginal map is refitted on all
    # rows (what fitting a fresh one on the rows reaching it gives).
    Y = X
    for s_layer, k_layer in zip(searched.layers_, kept.layers_, strict=True):
        (s_marg, s_rot), (k_marg, k_rot) = s_layer.layers_, k_layer.layers_
        np.testing.assert_array_equal(k_rot.matrix_, s_rot.matrix_)
        fresh = clone(s_marg).fit(Y)
        np.testing.assert_array_equal(k_marg.knots_x_, fresh.knots_x_)
        Y = k_layer.transform(Y)
    assert not np.array_equal(kept.layers_[0].layers_[0].knots_x_,
                              searched.layers_[0].layers_[0].knots_x_)
    # An exact density, and held out about as good as the full refit (the
    # 21 splits of benchmarks/README.md: within 0.0074 nats on data this size).
    assert_change_of_variables(kept, X_test[:5])
    assert abs(kept.score(X_test) - full.score(X_test)) < 0.02


@pytest.mark.parametrize("layer", [PCARotation(), MarginalGaussianizer()])
def test_refit_marginals_with_a_one_step_layer(layer):
    # A rotation layer is kept whole; any other layer is refitted whole.
    X = skewed_data(3000, 2, seed=17)
    params = dict(layer=layer, max_layers=6, tol=None, n_iter_no_change=6, random_state=0)
    searched = DeepDestructor(refit=False, **params).fit(X)
    kept = DeepDestructor(refit="marginals", **params).fit(X)
    full = DeepDestructor(refit=True, **params).fit(X)
    for a, b, c in zip(searched.layers_, kept.layers_, full.layers_, strict=True):
        if isinstance(layer, PCARotation):  # the search's, not the full refit's
            np.testing.assert_array_equal(b.matrix_, a.matrix_)
            assert not np.array_equal(b.matrix_, c.matrix_)
        else:
            np.testing.assert_array_equal(b.knots_x_, c.knots_x_)


def test_tol_rule_drops_trailing_layers_below_tol():
    X = skewed_data(2000, 3, seed=14)
    patience, tol = 3, 0.02
    model = RBIG(
        max_layers=60, early_stopping=False, tol=tol, n_iter_no_change=patience, random_state=0
    ).fit(X)
    tc = model.tc_reduction_
    assert model.validation_score_ is None
    above = np.flatnonzero(tc >= tol)
    assert model.n_layers_ == (above[-1] + 1 if above.size else 1)
    assert np.all(tc[model.n_layers_ :] < tol)
    assert len(tc) < 60 and len(tc) - model.n_layers_ == patience
    assert len(model.layers_) == model.n_layers_


# -- seeding, side effects -------------------------------------------------------


@pytest.mark.parametrize("rotation", ["greedy", "random", "pca"])
def test_reproducible_with_same_random_state(rotation):
    X = _moons(800, seed=3)
    a = RBIG(rotation=rotation, max_layers=8, random_state=7).fit(X)
    b = RBIG(rotation=rotation, max_layers=8, random_state=7).fit(X)
    assert a.n_layers_ == b.n_layers_
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    np.testing.assert_array_equal(a.validation_score_, b.validation_score_)
    np.testing.assert_array_equal(a.sample(50, random_state=1), b.sample(50, random_state=1))
    c = RBIG(rotation=rotation, max_layers=8, random_state=8).fit(X)
    # Another seed draws another validation split (and other rotations).
    assert not np.array_equal(c.validation_score_, a.validation_score_)


def test_deep_destructor_with_random_layers_reproducible():
    X = skewed_data(800, 3, seed=15)
    layer = CompositeDestructor([MarginalGaussianizer(), RandomRotation()])
    a = DeepDestructor(layer, max_layers=5, early_stopping=False, tol=None, random_state=0).fit(X)
    b = DeepDestructor(layer, max_layers=5, early_stopping=False, tol=None, random_state=0).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    # Every layer got its own rotation.
    rotations = [fitted.layers_[1].matrix_ for fitted in a.layers_]
    assert not np.allclose(rotations[0], rotations[1])


@pytest.mark.parametrize(
    "make",
    [
        lambda: RBIG(max_layers=8, random_state=0),
        lambda: RBIG(rotation="random", max_layers=8, random_state=0),
        lambda: DeepDestructor(
            CompositeDestructor([MarginalGaussianizer(subsample=100), RandomRotation()]),
            max_layers=4,
            random_state=0,
        ),
    ],
    ids=["rbig-greedy", "rbig-random", "deep-random-layer"],
)
def test_fit_does_not_touch_caller_data_or_global_random_state(make):
    X = skewed_data(700, 3, seed=16)
    X_copy = X.copy()
    with global_random_state_unchanged():
        model = make().fit(X)
        model.transform(X)
        model.score_samples(X)
        model.sample(10, random_state=0)
        model.sample(10, random_state=np.random.default_rng(0))
    np.testing.assert_array_equal(X, X_copy)  # neither modified nor shuffled


def test_template_layer_is_not_fitted_in_place():
    X = skewed_data(500, 3, seed=17)
    template = CompositeDestructor([MarginalGaussianizer(), RandomRotation()])
    params = template.get_params(deep=True)
    model = DeepDestructor(template, max_layers=3, random_state=0).fit(X)
    assert model.layer is template
    with pytest.raises(NotFittedError):
        check_is_fitted(template)
    for sub in template.layers:
        with pytest.raises(NotFittedError):
            check_is_fitted(sub)
    assert template.get_params(deep=True) == params  # not reseeded either
    assert all(fitted is not template for fitted in model.layers_)


def test_composite_exposes_layer_parameters():
    model = CompositeDestructor([MarginalGaussianizer(), RandomRotation()])
    params = model.get_params(deep=True)
    assert params["layers__0__n_knots"] == "auto"
    assert params["layers__1__random_state"] is None
    model.set_params(layers__0__n_knots=7, layers__1__random_state=3)
    assert model.layers[0].n_knots == 7 and model.layers[1].random_state == 3
    with pytest.raises(ValueError, match="layers__5__n_knots"):
        model.set_params(layers__5__n_knots=3)
    # A clone carries the nested values but not the objects.
    twin = clone(model)
    assert twin.layers[0] is not model.layers[0] and twin.layers[0].n_knots == 7


def test_empty_composite_is_rejected():
    with pytest.raises(ValueError, match="at least one layer"):
        CompositeDestructor([]).fit(skewed_data(20, 2, seed=18))


def test_max_layers_stopping_a_still_improving_fit_warns():
    from sklearn.datasets import make_moons
    from sklearn.exceptions import ConvergenceWarning

    from destructors import RBIG

    X, _ = make_moons(2000, noise=0.05, random_state=0)
    with pytest.warns(ConvergenceWarning, match="max_layers=2"):
        RBIG(max_layers=2, random_state=0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = RBIG(max_layers=200, random_state=0).fit(X)  # stops by itself
    assert model.n_layers_ < 200


def test_rbig_fresh_layers_are_seeded_clones_of_its_template():
    # RBIG builds each layer with its seeds instead of cloning and seeding
    # the template; the layers must be the same.
    from sklearn.base import clone

    from destructors.deep import _seed_layer

    for rotation in ("greedy", "pca", "random", "learned"):
        model = RBIG(rotation=rotation, damping=0.5, n_knots=33)
        for position in (0, 3):
            fresh = model._new_layer(1234, position)
            expected = _seed_layer(clone(model._make_layer(position)), 1234)
            assert repr(fresh.get_params(deep=True)) == repr(expected.get_params(deep=True))
