"""Scalers inside a density chain: their Jacobians counted, their maps checked.

What must agree, and why: RBIG's first layer is a marginal Gaussianization
built from the empirical quantiles of each feature (and a bandwidth
proportional to each feature's spread), so an increasing affine map of the
features in front of it changes its knots by the same map and nothing else.
A chain ``[scaler, RBIG]`` is then RBIG's own density in data units, up to
float64 rounding, at every point that is not a knot. Training rows are
knots, where the slope is one-sided and rounding may pick the other side,
so the comparison is on fresh rows.
"""

import numpy as np
import pytest
from _helpers import skewed_data
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    PolynomialFeatures,
    QuantileTransformer,
    RobustScaler,
    StandardScaler,
)

from destructors import RBIG, CompositeDestructor, MarginalGaussianizer
from destructors.preprocessing import ScalerDestructor, make_destructor_pipeline
from destructors.utils import check_destructor

SCALERS = [StandardScaler(), MinMaxScaler(), MaxAbsScaler(), RobustScaler()]
IDS = [type(s).__name__ for s in SCALERS]


def _rbig():
    return RBIG(max_layers=8, early_stopping=False, tol=None, random_state=0)


def _data(seed, n=600):
    # Features on very different scales and offsets, as real tables have.
    return skewed_data(n, 3, seed) * [1.0, 250.0, 0.01] + [0.0, 1e4, -3.0]


@pytest.mark.parametrize("scaler", SCALERS, ids=IDS)
def test_chain_is_rbig_in_data_units(scaler):
    X, X_new = _data(0), _data(1, 300)
    plain = _rbig().fit(X)
    chain = CompositeDestructor([scaler, _rbig()]).fit(X)
    assert isinstance(chain.layers_[0], ScalerDestructor)
    # The same density in data units (it differs from the pipeline's, below).
    np.testing.assert_allclose(chain.score_samples(X_new), plain.score_samples(X_new),
                               rtol=0, atol=1e-7)
    # Sampling and inversion go back through the scaler to data units.
    np.testing.assert_allclose(chain.sample(200, random_state=3),
                               plain.sample(200, random_state=3), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(chain.inverse_transform(chain.transform(X_new)), X_new,
                               rtol=1e-10, atol=1e-10 * np.abs(X_new).max())


@pytest.mark.parametrize("scaler", SCALERS, ids=IDS)
def test_pipeline_drops_exactly_the_scaler_log_det(scaler):
    # The trap the README documents: Pipeline scores the scaled data.
    X, X_new = _data(2), _data(3, 200)
    chain = make_destructor_pipeline(scaler, _rbig()).fit(X)
    pipe = make_pipeline(scaler, _rbig()).fit(X)
    log_det = chain.layers_[0].log_det_
    expected = np.sum(np.log(np.abs(chain.layers_[0].multiplier_)))
    assert log_det == pytest.approx(expected, rel=1e-14)
    assert abs(log_det) > 1.0  # the scales differ: the trap is not a no-op here
    np.testing.assert_allclose(pipe.score_samples(X_new) + log_det,
                               chain.score_samples(X_new), rtol=0, atol=1e-7)


def test_scaler_log_det_matches_the_sklearn_parameters():
    X = _data(4)
    std = ScalerDestructor(StandardScaler()).fit(X)
    np.testing.assert_allclose(std.multiplier_, 1.0 / X.std(axis=0), rtol=1e-12)
    np.testing.assert_allclose(std.centre_, X.mean(axis=0), rtol=1e-12, atol=1e-12)
    mm = ScalerDestructor(MinMaxScaler(feature_range=(-2, 3))).fit(X)
    np.testing.assert_allclose(mm.multiplier_, 5.0 / np.ptp(X, axis=0), rtol=1e-12)
    # Our arithmetic reproduces the scaler's own transform.
    sk = MinMaxScaler(feature_range=(-2, 3)).fit(X)
    np.testing.assert_allclose(mm.transform(X), sk.transform(X), rtol=0, atol=1e-12)


def test_mass_one_in_1d():
    rng = np.random.default_rng(5)
    x = 1e3 + 50.0 * rng.lognormal(size=(800, 1))  # far from unit scale
    for scaler in SCALERS:
        model = CompositeDestructor([scaler, MarginalGaussianizer()]).fit(x)
        lo, hi = np.sort(model.inverse_transform(np.array([[-8.0], [8.0]])).ravel())
        grid = np.linspace(lo, hi, 200_001)
        mass = np.trapezoid(np.exp(model.score_samples(grid[:, None])), grid)
        assert mass == pytest.approx(1.0, abs=1e-3), type(scaler).__name__


def test_mass_one_in_2d():
    rng = np.random.default_rng(6)
    u = rng.normal(size=(1500, 2))
    X = np.column_stack([u[:, 0], 0.6 * u[:, 0] + np.sinh(0.5 * u[:, 1])]) * [200.0, 0.05]
    model = make_destructor_pipeline(MinMaxScaler(), RBIG(max_layers=4, early_stopping=False,
                                                          tol=None, random_state=0)).fit(X)
    # A box of 8 data spreads each way holds all but a negligible mass of
    # Gaussian-tailed marginals; the grid is fine against the knot spacing.
    centre, spread = X.mean(axis=0), X.std(axis=0)
    gx = np.linspace(centre[0] - 8 * spread[0], centre[0] + 8 * spread[0], 1201)
    gy = np.linspace(centre[1] - 8 * spread[1], centre[1] + 8 * spread[1], 1201)
    XX, YY = np.meshgrid(gx, gy, indexing="ij")
    dens = np.exp(model.score_samples(np.column_stack([XX.ravel(), YY.ravel()])))
    mass = np.trapezoid(np.trapezoid(dens.reshape(XX.shape), gy, axis=1), gx)
    assert mass == pytest.approx(1.0, abs=5e-3)


def test_grid_search_over_scalers_reports_the_same_scores():
    X = _data(7, 500)
    grid = {"layers": [[s, _rbig()] for s in SCALERS] + [[_rbig()]]}
    cv = KFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(CompositeDestructor([_rbig()]), grid, cv=cv).fit(X)
    scores = search.cv_results_["mean_test_score"]
    np.testing.assert_allclose(scores, scores[-1], rtol=0, atol=1e-7)
    # The Pipeline equivalent ranks the scalers by how much they shrink the data.
    pipe_grid = {"standardscaler": [s for s in SCALERS] + ["passthrough"]}
    pipe = GridSearchCV(make_pipeline(StandardScaler(), _rbig()), pipe_grid, cv=cv).fit(X)
    assert np.ptp(pipe.cv_results_["mean_test_score"]) > 5.0


@pytest.mark.parametrize("scaler", [StandardScaler(), MinMaxScaler()], ids=["std", "minmax"])
def test_check_destructor(scaler):
    report = check_destructor(ScalerDestructor(scaler))
    assert "fused" in report.passed and "mass_1d" in report.passed


def test_other_affine_transformers_are_accepted_by_what_they_do():
    # A decreasing affine map, from a transformer that is no scaler class.
    flip = FunctionTransformer(lambda A: 3.0 - 2.0 * A, inverse_func=lambda A: (3.0 - A) / 2.0)
    X = _data(8, 300)
    layer = ScalerDestructor(flip).fit(X)
    np.testing.assert_allclose(layer.multiplier_, -2.0)
    assert layer.log_det_ == pytest.approx(3 * np.log(2.0), rel=1e-14)
    chain = CompositeDestructor([flip, MarginalGaussianizer()]).fit(X)
    plain = CompositeDestructor([MarginalGaussianizer()]).fit(X)
    X_new = _data(9, 100)
    np.testing.assert_allclose(chain.score_samples(X_new), plain.score_samples(X_new),
                               rtol=0, atol=1e-8)


@pytest.mark.parametrize(
    ("transformer", "match"),
    [
        (QuantileTransformer(n_quantiles=50), "QuantileTransformer.*not a per-feature affine"),
        (FunctionTransformer(np.log1p), "FunctionTransformer.*not a per-feature affine"),
        (PCA(), "PCA.*not a per-feature affine"),
        (PolynomialFeatures(), "PolynomialFeatures.*maps 3 features to an output of shape"),
        (FunctionTransformer(lambda A: 0.0 * A), "maps some feature to a constant"),
    ],
    ids=["quantile", "log1p", "pca", "polynomial", "constant"],
)
def test_unknown_transformers_get_a_clear_error(transformer, match):
    X = np.abs(_data(10, 200))
    for model in (CompositeDestructor([transformer, _rbig()]),
                  make_destructor_pipeline(transformer, _rbig())):
        with pytest.raises(ValueError, match=match):
            model.fit(X)


def test_non_transformers_get_a_clear_error():
    with pytest.raises(ValueError, match="layer 0 is 'passthrough', not a destructor"):
        CompositeDestructor(["passthrough", _rbig()]).fit(_data(11, 50))
    with pytest.raises(ValueError, match="make_destructor_pipeline layer 1 is 3"):
        make_destructor_pipeline(StandardScaler(), 3)
    with pytest.raises(ValueError, match="at least one step"):
        make_destructor_pipeline()


def test_templates_and_input_are_not_modified():
    X = _data(12, 200)
    before = X.copy()
    scaler = StandardScaler()
    model = CompositeDestructor([scaler, MarginalGaussianizer()]).fit(X)
    assert not hasattr(scaler, "mean_")  # the template was cloned, not fitted
    assert model.layers_[0].scaler is not scaler
    np.testing.assert_array_equal(X, before)


def test_safe_model_file_round_trip(tmp_path):
    from destructors.persistence import load_model, save_model

    X, X_new = _data(13, 300), _data(14, 50)
    model = make_destructor_pipeline(ScalerDestructor(), MarginalGaussianizer()).fit(X)
    save_model(tmp_path / "m.destructor", model)
    loaded = load_model(tmp_path / "m.destructor").model
    np.testing.assert_array_equal(loaded.score_samples(X_new), model.score_samples(X_new))
    # A scikit-learn template is no registered class: a clear refusal (pickle it instead).
    with pytest.raises(ValueError, match="StandardScaler is not registered"):
        save_model(tmp_path / "n.destructor",
                   make_destructor_pipeline(StandardScaler(), MarginalGaussianizer()).fit(X))
