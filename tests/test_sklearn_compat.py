"""scikit-learn citizenship: estimator checks, clone, Pipeline, search, pickle, pandas."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from _helpers import skewed_data, trapezoid_1d
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from destructors import (
    RBIG,
    CompositeDestructor,
    DeepDestructor,
    GreedyRotation,
    ICARotation,
    MarginalGaussianizer,
    PCARotation,
    RandomRotation,
)


def _all_estimators():
    """One instance of every public estimator, kept small for speed."""
    return [
        MarginalGaussianizer(),
        PCARotation(),
        PCARotation(whiten=True),
        ICARotation(),
        RandomRotation(),
        GreedyRotation(),
        CompositeDestructor([MarginalGaussianizer(), PCARotation()]),
        DeepDestructor(max_layers=3),
        RBIG(max_layers=3),
        RBIG(rotation="ica", max_layers=2),
    ]


# Checks each estimator is expected to fail, with the reason. Every estimator
# currently passes all of scikit-learn's checks, so the table is empty; add an
# entry here (class name -> {check name: reason}) only for a failure that is
# not a bug.
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


# FastICA does not converge on some of the checks' tiny data sets.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(_all_estimators(), expected_failed_checks=_expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _fitted(estimator, X):
    """A clone, every ``random_state`` (nested ones too) seeded, fitted on ``X``."""
    model = clone(estimator)
    seeds = {k: 0 for k in model.get_params(deep=True) if k.endswith("random_state")}
    model.set_params(**seeds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X)


ESTIMATOR_IDS = [
    "marginal",
    "pca",
    "pca-whiten",
    "ica",
    "random",
    "greedy",
    "composite",
    "deep",
    "rbig",
    "rbig-ica",
]


@pytest.mark.parametrize("estimator", _all_estimators(), ids=ESTIMATOR_IDS)
def test_clone_is_unfitted_with_same_params(estimator):
    X = skewed_data(300, 3, seed=0)
    model = _fitted(estimator, X)
    twin = clone(model)
    assert twin.get_params(deep=False).keys() == model.get_params(deep=False).keys()
    assert repr(twin) == repr(model)
    assert not hasattr(twin, "n_features_in_")


@pytest.mark.parametrize("estimator", _all_estimators(), ids=ESTIMATOR_IDS)
def test_pickle_round_trip_gives_identical_outputs(estimator):
    X = skewed_data(400, 3, seed=1)
    model = _fitted(estimator, X)
    restored = pickle.loads(pickle.dumps(model))
    Z = model.transform(X)
    np.testing.assert_array_equal(restored.transform(X), Z)
    np.testing.assert_array_equal(restored.inverse_transform(Z), model.inverse_transform(Z))
    np.testing.assert_array_equal(restored.score_samples(X), model.score_samples(X))
    np.testing.assert_array_equal(
        restored.sample(20, random_state=0), model.sample(20, random_state=0)
    )


@pytest.mark.parametrize("estimator", _all_estimators(), ids=ESTIMATOR_IDS)
def test_float32_and_float64(estimator):
    X = skewed_data(400, 3, seed=2)
    model = _fitted(estimator, X)
    X32 = X.astype(np.float32)
    Z32, Z64 = model.transform(X32), model.transform(X)
    assert Z32.dtype == np.float32 and Z64.dtype == np.float64
    np.testing.assert_allclose(Z32, model.transform(X32.astype(np.float64)), rtol=1e-5, atol=1e-5)
    assert model.inverse_transform(Z32).dtype == np.float32
    assert model.inverse_transform(Z64).dtype == np.float64
    scores = model.score_samples(X32)
    assert scores.dtype == np.float64
    np.testing.assert_allclose(scores, model.score_samples(X32.astype(np.float64)))
    # Fitting on float32 gives the float64 fit of the same (rounded) values.
    X32_as64 = X32.astype(np.float64)
    np.testing.assert_allclose(
        _fitted(estimator, X32).transform(X32),
        _fitted(estimator, X32_as64).transform(X32_as64),
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize("estimator", _all_estimators(), ids=ESTIMATOR_IDS)
def test_read_only_arrays(estimator):
    X = skewed_data(400, 3, seed=3)
    expected = _fitted(estimator, X)
    X_ro = X.copy()
    X_ro.setflags(write=False)
    model = _fitted(estimator, X_ro)
    Z = model.transform(X_ro)
    np.testing.assert_allclose(Z, expected.transform(X), rtol=1e-12, atol=1e-12)
    Z.setflags(write=False)
    np.testing.assert_allclose(model.inverse_transform(Z), X, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(model.score_samples(X_ro), expected.score_samples(X), rtol=1e-12)


@pytest.mark.parametrize("estimator", _all_estimators(), ids=ESTIMATOR_IDS)
def test_pandas_dataframe_input(estimator):
    X = skewed_data(400, 3, seed=4)
    df = pd.DataFrame(X, columns=["alpha", "beta", "gamma"])
    model = _fitted(estimator, df)
    np.testing.assert_array_equal(model.feature_names_in_, ["alpha", "beta", "gamma"])
    names = model.get_feature_names_out()
    assert len(names) == 3 and len(set(names)) == 3
    if isinstance(model, MarginalGaussianizer):
        np.testing.assert_array_equal(names, ["alpha", "beta", "gamma"])  # one-to-one
    else:
        prefix = type(model).__name__.lower()
        np.testing.assert_array_equal(names, [f"{prefix}{i}" for i in range(3)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "feature names" warning for a DataFrame
        Z = model.transform(df)
        scores = model.score_samples(df)
    np.testing.assert_allclose(Z, _fitted(estimator, X).transform(X), rtol=1e-12, atol=1e-12)
    assert scores.shape == (400,)
    out = clone(model).set_output(transform="pandas")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = out.fit(df).transform(df)
    assert isinstance(frame, pd.DataFrame)
    np.testing.assert_array_equal(frame.columns, names)
    np.testing.assert_allclose(frame.to_numpy(), Z, rtol=1e-12, atol=1e-12)


def test_pipeline_with_scaler():
    X = skewed_data(1500, 2, seed=5) * [5.0, 0.2] + [100.0, -3.0]
    pipe = make_pipeline(StandardScaler(), RBIG(max_layers=10, random_state=0)).fit(X)
    scaler, rbig = pipe[0], pipe[-1]
    X_scaled = scaler.transform(X)
    np.testing.assert_allclose(pipe.transform(X), rbig.transform(X_scaled), rtol=1e-12)
    np.testing.assert_allclose(pipe.inverse_transform(pipe.transform(X)), X, rtol=1e-10)
    # Pipeline.score_samples scores the scaled data and ignores the scaler's
    # Jacobian: the density of X itself is lower by sum(log scale_).
    pipe_scores = pipe.score_samples(X)
    np.testing.assert_allclose(pipe_scores, rbig.score_samples(X_scaled), rtol=1e-12)
    log_jacobian = -np.log(scaler.scale_).sum()
    exact = pipe_scores + log_jacobian
    assert pipe.score(X) == pytest.approx(rbig.score(X_scaled))
    assert np.mean(exact) == pytest.approx(pipe.score(X) + log_jacobian)


def test_pipeline_density_needs_the_scaler_jacobian_to_integrate_to_one():
    X = np.random.default_rng(6).gamma(2.0, size=(1000, 1)) * 5.0
    pipe = make_pipeline(StandardScaler(), RBIG(max_layers=5, random_state=0)).fit(X)
    scale = pipe[0].scale_[0]
    lo, hi = pipe.inverse_transform([[-9.0], [9.0]]).ravel()
    raw = trapezoid_1d(pipe, lo, hi, 200_001)
    assert raw == pytest.approx(scale, rel=1e-3)  # integrates to the scale, not 1
    assert raw / scale == pytest.approx(1.0, abs=1e-3)


def test_grid_search_selects_by_held_out_mean_log_likelihood():
    X = skewed_data(900, 2, seed=7)
    grid = {"n_knots": [3, 10, 40]}
    cv = KFold(3, shuffle=True, random_state=0)
    base = RBIG(max_layers=4, early_stopping=False, tol=None, random_state=0)
    search = GridSearchCV(base, grid, cv=cv).fit(X)
    # Recompute every cell by hand: fit on the training folds, mean held-out
    # log-likelihood on the test fold.
    by_hand = []
    for n_knots in grid["n_knots"]:
        fold_scores = [
            clone(base).set_params(n_knots=n_knots).fit(X[train]).score_samples(X[test]).mean()
            for train, test in cv.split(X)
        ]
        by_hand.append(np.mean(fold_scores))
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], by_hand, rtol=1e-12)
    assert search.best_params_["n_knots"] == grid["n_knots"][int(np.argmax(by_hand))]
    assert search.best_score_ == pytest.approx(max(by_hand))
    # The chosen model is refitted on all rows and scores as RBIG.score does.
    assert search.score(X) == pytest.approx(search.best_estimator_.score_samples(X).mean())
