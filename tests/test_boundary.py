"""The boundary layer: exact log/logit maps, supports kept by samples."""

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.datasets import load_breast_cancer

from destructors import RBIG, CompositeDestructor, MarginalGaussianizer
from destructors.boundary import Boundary
from destructors.utils import check_destructor


def _rbig():
    return RBIG(max_layers=10, early_stopping=False, tol=None, random_state=0)


def _macro_like(n, seed):
    """Positive, skewed, dependent series near zero (as macrodata's rates).

    Column 0 imitates ``tbilrate`` (minimum near 0.1, long right tail),
    column 1 ``unemp`` (positive, away from zero), column 2 ``infl`` (any sign).
    """
    rng = np.random.default_rng(seed)
    g = rng.normal(size=(n, 3))
    rate = 0.1 + np.exp(1.2 + 0.8 * g[:, 0])
    unemp = 3.0 + np.exp(0.8 + 0.3 * (0.6 * g[:, 0] + 0.8 * g[:, 1]))
    infl = 1.5 * rate / rate.mean() + 2.0 * g[:, 2]
    return np.column_stack([rate, unemp, infl])


def test_maps_and_log_dets_are_exact():
    X = np.array([[0.5, 3.0, 0.2, -1.0], [2.0, 9.0, 0.9, 4.0]])
    layer = Boundary(lower=[0.0, 1.0, 0.0, np.nan], upper=[np.nan, 10.0, 1.0, np.inf]).fit(X)
    Z, ld = layer.transform_log_det(X)
    expected = np.column_stack([np.log(X[:, 0]),
                                np.log((X[:, 1] - 1.0) / (10.0 - X[:, 1])),
                                np.log(X[:, 2] / (1.0 - X[:, 2])),
                                X[:, 3]])
    np.testing.assert_allclose(Z, expected, rtol=1e-14)
    # d/dx of each map, written out by hand.
    slopes = np.column_stack([1.0 / X[:, 0],
                              9.0 / ((X[:, 1] - 1.0) * (10.0 - X[:, 1])),
                              1.0 / (X[:, 2] * (1.0 - X[:, 2])),
                              np.ones(2)])
    np.testing.assert_allclose(ld, np.log(slopes).sum(axis=1), rtol=1e-13)
    X_back, ld_inv = layer._inverse(Z)
    np.testing.assert_allclose(X_back, X, rtol=1e-14)
    np.testing.assert_allclose(ld_inv, -ld, rtol=1e-13)


def test_upper_only_and_precision_near_the_bounds():
    x = np.array([[-1e-12], [-0.5], [-30.0]])
    layer = Boundary(upper=0.0).fit(x)
    Z, ld = layer.transform_log_det(x)
    np.testing.assert_allclose(Z[:, 0], -np.log(-x[:, 0]), rtol=1e-14)
    np.testing.assert_allclose(ld, -np.log(-x[:, 0]), rtol=1e-14)
    np.testing.assert_allclose(layer.inverse_transform(Z), x, rtol=1e-12)
    # Both sides of a logit keep relative precision within 1e-12 of the bound.
    u = np.array([[1e-12], [0.5], [1.0 - 1e-12]])
    logit = Boundary(lower=0.0, upper=1.0).fit(u)
    back = logit.inverse_transform(logit.transform(u))
    np.testing.assert_allclose(back[[0, 1]], u[[0, 1]], rtol=1e-10)
    np.testing.assert_allclose(1.0 - back[2], 1.0 - u[2], rtol=1e-4)  # 1 - u has 4 digits


def test_logit_normal_density_integrates_to_one():
    rng = np.random.default_rng(0)
    x = rng.beta(2.0, 5.0, size=(600, 1)) * 4.0 + 1.0  # support (1, 5)
    for model in (Boundary(lower=1.0, upper=5.0),
                  CompositeDestructor([Boundary(lower=1.0, upper=5.0), MarginalGaussianizer()])):
        model.fit(x)
        grid = np.linspace(1.0, 5.0, 400_001)[1:-1]  # the density is 0 at the bounds
        mass = np.trapezoid(np.exp(model.score_samples(grid[:, None])), grid)
        assert mass == pytest.approx(1.0, abs=1e-4), model
    # Alone, the layer is the logit-normal density: N(logit) times the slope.
    alone = Boundary(lower=1.0, upper=5.0).fit(x)
    t = np.array([1.3, 2.0, 4.9])
    u = (t - 1.0) / 4.0
    expected = norm.logpdf(np.log(u / (1 - u))) - np.log(4.0 * u * (1 - u))
    np.testing.assert_allclose(alone.score_samples(t[:, None]), expected, rtol=1e-12)


def test_samples_of_positive_data_stay_positive():
    X = _macro_like(800, 1)
    plain = _rbig().fit(X)
    bounded = CompositeDestructor([Boundary(lower="auto"), _rbig()]).fit(X)
    np.testing.assert_array_equal(bounded.layers_[0].lower_[:2], [0.0, 0.0])
    assert np.isnan(bounded.layers_[0].lower_[2])  # infl takes both signs
    S_plain, S = plain.sample(20_000, random_state=0), bounded.sample(20_000, random_state=0)
    assert (S_plain[:, 0] <= 0).any()  # the trap: a real-line model leaves the support
    assert (S[:, :2] > 0).all()
    assert (S[:, 2] < 0).any()  # the unbounded column is left free
    X_new = _macro_like(400, 2)
    # Respecting the support does not cost likelihood on fresh data.
    assert bounded.score(X_new) > plain.score(X_new) - 0.05


def test_breast_cancer_nonnegative_features_stay_in_the_support():
    X = load_breast_cancer().data
    layer = Boundary(lower="auto").fit(X)
    zeros = (X.min(axis=0) == 0)
    assert zeros.sum() == 6  # the concavity features hold exact zeros
    np.testing.assert_array_equal(layer.lower_[~zeros], 0.0)
    span = np.ptp(X, axis=0)
    np.testing.assert_allclose(layer.lower_[zeros], -0.1 * span[zeros], rtol=1e-15)
    model = CompositeDestructor([Boundary(lower="auto"),
                                 RBIG(max_layers=5, early_stopping=False, tol=None,
                                      random_state=0)]).fit(X)
    S = model.sample(5000, random_state=1)
    assert (S > layer.lower_).all()
    assert (S[:, ~zeros] > 0).all()


def test_data_rule_bounds():
    rng = np.random.default_rng(3)
    X = rng.uniform(2.0, 6.0, size=(300, 2))
    layer = Boundary(lower="data", upper="data", margin=0.25).fit(X)
    lo, hi = X.min(axis=0), X.max(axis=0)
    np.testing.assert_allclose(layer.lower_, lo - 0.25 * (hi - lo))
    np.testing.assert_allclose(layer.upper_, hi + 0.25 * (hi - lo))
    S = CompositeDestructor([layer, MarginalGaussianizer()]).fit(X).sample(5000, random_state=0)
    assert ((S > layer.lower_) & (S < layer.upper_)).all()


def test_check_destructor_with_declared_bounds():
    rng = np.random.default_rng(4)
    # Outside rows of the check reach 50 % of the range beyond the data:
    # the data sit well inside the support.
    X = 10.0 + rng.lognormal(0.0, 0.3, size=(400, 3)) + [0.0, 2.0, 4.0]
    report = check_destructor(Boundary(lower=0.0, upper=40.0), X,
                              X_1d=rng.beta(2, 3, size=500) * 40.0)
    assert "mass_1d" in report.passed and "round_trip" in report.passed
    report = check_destructor(Boundary(lower=0.0), X, X_1d=rng.gamma(2.0, size=500))
    assert "change_of_variables" in report.passed
    check_destructor(CompositeDestructor([Boundary(lower=0.0, upper=40.0),
                                          MarginalGaussianizer()]), X,
                     X_1d=rng.beta(2, 3, size=500) * 40.0)


def test_no_bounds_is_the_identity():
    X = np.random.default_rng(5).normal(size=(50, 2))
    Z, ld = Boundary().fit(X).transform_log_det(X)
    np.testing.assert_array_equal(Z, X)
    np.testing.assert_array_equal(ld, 0.0)


def test_clear_errors():
    X = np.column_stack([np.linspace(0.5, 2.0, 20), np.linspace(-1.0, 1.0, 20)])
    with pytest.raises(ValueError, match=r"feature 1 has values outside its support \(0.0, inf\)"):
        Boundary(lower=0.0).fit(X)
    with pytest.raises(ValueError, match="feature 0 has values outside its support.*max 2.0"):
        Boundary(upper=[1.0, np.nan]).fit(X)
    with pytest.raises(ValueError, match="3 values, but the data have 2 features"):
        Boundary(lower=[0.0, 0.0, 0.0]).fit(X)
    with pytest.raises(ValueError, match="lower bound 3.0 not below its upper bound 1.0"):
        Boundary(lower=[3.0, np.nan], upper=[1.0, np.nan]).fit(X)
    with pytest.raises(ValueError, match="margin"):
        Boundary(lower="data", margin=0.0).fit(X)
    with pytest.raises(ValueError, match="lower"):
        Boundary(lower="positive").fit(X)
    layer = Boundary(lower=[0.0, -2.0]).fit(X)
    with pytest.raises(ValueError, match="feature 0 .* density is zero there"):
        layer.transform(np.array([[-0.1, 0.0]]))
    with pytest.raises(ValueError, match="feature 0 .* density is zero there"):
        layer.score_samples(np.array([[0.0, 0.0]]))  # on the bound: outside an open support
