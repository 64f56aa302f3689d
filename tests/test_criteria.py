"""Model criteria (n_parameters_, bic, aic) and exact marginal densities."""

import numpy as np
import pandas as pd
import pytest
from _helpers import skewed_data
from example_layers import ExampleSinhArcsinh
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from destructors import (
    RBIG,
    CompositeDestructor,
    DeepDestructor,
    GaussianMixtureDestructor,
    GreedyRotation,
    ICARotation,
    MarginalGaussianizer,
    PCARotation,
    RandomRotation,
)


def _clusters(n, seed):
    """Three well-separated correlated Gaussian clusters in 3-D."""
    rng = np.random.default_rng(seed)
    centres = np.array([[-6.0, 0.0, 2.0], [0.0, 5.0, -3.0], [6.0, -2.0, 0.0]])
    A = np.array([[1.0, 0.4, 0.0], [0.0, 0.8, 0.3], [0.2, 0.0, 0.6]])
    labels = rng.integers(0, 3, size=n)
    return centres[labels] + rng.normal(size=(n, 3)) @ A


# -- n_parameters_, bic, aic ----------------------------------------------------


@pytest.mark.parametrize("n_components", [1, 3])
def test_gaussian_mixture_criteria_equal_sklearn(n_components):
    X = _clusters(600, seed=0)
    layer = GaussianMixtureDestructor(n_components=n_components, random_state=0).fit(X)
    mixture = layer.mixture_
    assert layer.n_parameters_ == mixture._n_parameters()
    X_new = _clusters(300, seed=1)
    for data in (X, X_new):
        assert layer.bic(data) == pytest.approx(mixture.bic(data), rel=1e-12)
        assert layer.aic(data) == pytest.approx(mixture.aic(data), rel=1e-12)


def test_bic_chooses_the_number_of_clusters():
    X = _clusters(900, seed=2)
    bics = [GaussianMixtureDestructor(n_components=k, random_state=0).fit(X).bic(X)
            for k in range(1, 6)]
    assert int(np.argmin(bics)) + 1 == 3
    # Against the next best, by a margin far beyond rounding.
    assert sorted(bics)[1] - min(bics) > 10.0


def test_criteria_are_minus_twice_the_log_likelihood_plus_the_penalty():
    X = skewed_data(400, 3, seed=3)
    model = RBIG(max_layers=4, early_stopping=False, tol=None, random_state=0).fit(X)
    total = model.score_samples(X).sum()
    k = model.n_parameters_
    assert model.bic(X) == pytest.approx(-2.0 * total + k * np.log(400), rel=1e-12)
    assert model.aic(X) == pytest.approx(-2.0 * total + 2.0 * k, rel=1e-12)


def test_layer_counts():
    X = skewed_data(500, 4, seed=4)
    d = 4
    marginal = MarginalGaussianizer(n_knots=17).fit(X)
    assert marginal.n_parameters_ == int(marginal.n_knots_.sum()) == 17 * d
    assert PCARotation().fit(X).n_parameters_ == d + d * (d - 1) // 2
    assert PCARotation(whiten=True).fit(X).n_parameters_ == d + d * (d + 1) // 2
    assert ICARotation(random_state=0).fit(X).n_parameters_ == d + d * d
    assert RandomRotation(random_state=0).fit(X).n_parameters_ == 0
    greedy = GreedyRotation(random_state=0).fit(X)
    expected = d + d * (d - 1) // 2 if greedy.chosen_ == "pca" else 0
    assert greedy.n_parameters_ == expected
    # Gaussian data: PCA wins, and its count is PCA's.
    gaussian = np.random.default_rng(0).normal(size=(2000, 3)) @ np.diag([1.0, 2.0, 3.0])
    greedy = GreedyRotation(random_state=0).fit(gaussian)
    assert greedy.chosen_ == "pca" and greedy.n_parameters_ == 3 + 3


def test_composite_and_deep_counts_are_sums_of_their_layers():
    X = skewed_data(600, 3, seed=5)
    composite = CompositeDestructor(
        [MarginalGaussianizer(n_knots=12), PCARotation(), GaussianMixtureDestructor(2)]
    ).fit(X)
    parts = [layer.n_parameters_ for layer in composite.layers_]
    assert parts == [36, 6, 1 + 6 + 12]
    assert composite.n_parameters_ == sum(parts)
    deep = RBIG(max_layers=6, early_stopping=False, tol=None, random_state=0).fit(X)
    assert deep.n_layers_ == 6
    assert deep.n_parameters_ == sum(layer.n_parameters_ for layer in deep.layers_)
    # Truncating the layers is honoured.
    deep.layers_ = deep.layers_[:2]
    assert deep.n_parameters_ == sum(layer.n_parameters_ for layer in deep.layers_)
    nested = DeepDestructor(composite, max_layers=2, early_stopping=False, tol=None).fit(X)
    assert nested.n_parameters_ == sum(layer.n_parameters_ for layer in nested.layers_)


def test_a_layer_without_a_count_has_no_criteria():
    X = skewed_data(300, 2, seed=6)
    layer = ExampleSinhArcsinh().fit(X)
    assert not hasattr(layer, "n_parameters_")
    with pytest.raises(AttributeError, match="ExampleSinhArcsinh does not declare"):
        layer.bic(X)
    composite = CompositeDestructor([MarginalGaussianizer(), ExampleSinhArcsinh()]).fit(X)
    with pytest.raises(AttributeError, match=r"layer 1 \(ExampleSinhArcsinh\)"):
        composite.aic(X)

    # A subclass with its own map loses the parent's count.
    class Shifted(PCARotation):
        def _forward(self, X):
            Z, log_det = super()._forward(X)
            return Z + 1.0, log_det

    assert not hasattr(Shifted().fit(X), "n_parameters_")
    with pytest.raises(AttributeError, match="not fitted"):
        PCARotation().n_parameters_  # noqa: B018


# -- marginal densities ---------------------------------------------------------


def _mixture_marginal(mixture, X, features):
    """log of sum_m w_m N(x; mu_m[S], Sigma_m[S, S]), by SciPy."""
    S = np.asarray(features)
    terms = [
        np.log(w) + multivariate_normal(mu[S], cov[np.ix_(S, S)]).logpdf(X)
        for w, mu, cov in zip(mixture.weights_, mixture.means_, mixture.covariances_,
                              strict=True)
    ]
    return logsumexp(np.column_stack(terms).reshape(len(X), -1), axis=1)


@pytest.mark.parametrize("features", [[0], [2], [0, 2], [2, 1]])
def test_gaussian_mixture_marginal_equals_the_marginal_mixture(features):
    X = _clusters(800, seed=7)
    layer = GaussianMixtureDestructor(n_components=3, random_state=0).fit(X)
    X_test = _clusters(50, seed=8)[:, features]
    np.testing.assert_allclose(
        layer.marginal_score_samples(X_test, features),
        _mixture_marginal(layer.mixture_, X_test, features),
        rtol=1e-10, atol=1e-10,
    )


def test_gaussian_mixture_1d_marginal_integrates_to_one():
    X = _clusters(800, seed=9)
    layer = GaussianMixtureDestructor(n_components=3, random_state=0).fit(X)
    for j in range(3):
        grid = np.linspace(X[:, j].min() - 15.0, X[:, j].max() + 15.0, 40_001)
        density = np.exp(layer.marginal_score_samples(grid[:, None], [j]))
        assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-6)


def test_marginal_layers_then_a_mixture_give_exact_marginals():
    # The marginal of (x0, x2) is the integral of the full density over x1.
    X = skewed_data(1000, 3, seed=10)
    model = CompositeDestructor(
        [MarginalGaussianizer(), GaussianMixtureDestructor(n_components=2, random_state=0)]
    ).fit(X)
    points = X[:3][:, [0, 2]]
    # The density jumps at the knots of the piecewise-linear marginal maps, so
    # the trapezoid error is first order in the step: about 1e-5 here.
    grid = np.linspace(X[:, 1].min() - 20.0, X[:, 1].max() + 20.0, 200_001)
    for point, value in zip(points, model.marginal_score_samples(points, [0, 2]),
                            strict=True):
        full = np.column_stack([np.full_like(grid, point[0]), grid,
                                np.full_like(grid, point[1])])
        integral = np.trapezoid(np.exp(model.score_samples(full)), grid)
        assert value == pytest.approx(np.log(integral), abs=1e-4)
    # A marginal layer alone: its 1-D marginals integrate to 1.
    marginal = MarginalGaussianizer().fit(X)
    lo, hi = marginal.inverse_transform(np.full((2, 3), [[-9.0], [9.0]]))[:, 0]
    grid = np.linspace(lo, hi, 100_001)  # the mass beyond is 2e-19
    mass = np.trapezoid(np.exp(marginal.marginal_score_samples(grid[:, None], [0])), grid)
    assert mass == pytest.approx(1.0, abs=1e-5)


def test_marginal_of_every_feature_is_the_density():
    X = skewed_data(500, 3, seed=11)
    model = RBIG(max_layers=3, early_stopping=False, tol=None, random_state=0).fit(X)
    np.testing.assert_allclose(model.marginal_score_samples(X, [0, 1, 2]),
                               model.score_samples(X), rtol=1e-12)
    order = [2, 0, 1]
    np.testing.assert_allclose(model.marginal_score_samples(X[:, order], order),
                               model.score_samples(X), rtol=1e-12)


def test_marginal_is_refused_where_features_are_mixed():
    X = skewed_data(500, 3, seed=12)
    rbig = RBIG(max_layers=3, early_stopping=False, tol=None, random_state=0).fit(X)
    with pytest.raises(NotImplementedError, match="mixes features"):
        rbig.marginal_score_samples(X[:, :1], [0])
    with pytest.raises(NotImplementedError, match="not available for PCARotation"):
        PCARotation().fit(X).marginal_score_samples(X[:, :2], [0, 1])
    # A mixture that is not the last layer: its latent is not N(0, I).
    chain = CompositeDestructor(
        [GaussianMixtureDestructor(n_components=1), MarginalGaussianizer()]
    ).fit(X)
    with pytest.raises(NotImplementedError, match="only as the last layer"):
        chain.marginal_score_samples(X[:, :1], [0])


def test_marginal_feature_names_and_bad_input():
    X = skewed_data(400, 3, seed=13)
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    layer = GaussianMixtureDestructor(n_components=2, random_state=0).fit(df)
    np.testing.assert_allclose(layer.marginal_score_samples(X[:, [2, 0]], ["c", "a"]),
                               layer.marginal_score_samples(X[:, [2, 0]], [2, 0]))
    for features, match in [
        (["z"], "Unknown feature name"),
        ([3], "out of range"),
        ([0, 0], "distinct"),
        ([], "distinct"),
        (0, "sequence"),
        ([1.5], "index or a name"),
    ]:
        with pytest.raises(ValueError, match=match):
            layer.marginal_score_samples(X[:, :1], features)
    with pytest.raises(ValueError, match="2 features were named"):
        layer.marginal_score_samples(X[:, :1], [0, 1])
    with pytest.raises(ValueError, match="NaN"):
        layer.marginal_score_samples(np.array([[np.nan]]), [0])


# -- the layers added later: learned rotation, Gaussian, scalers ---------------------


def test_learned_gaussian_and_scaler_counts():
    from sklearn.preprocessing import MinMaxScaler

    from destructors import GaussianDestructor, LearnedRotation, ScalerDestructor

    X = skewed_data(600, 5, seed=11)
    d = 5
    assert GaussianDestructor().fit(X).n_parameters_ == d + d * (d + 1) // 2
    assert ScalerDestructor(MinMaxScaler()).fit(X).n_parameters_ == 2 * d
    for k in (2, None):
        learned = LearnedRotation(n_directions=k, random_state=0).fit(X)
        k_used = learned.n_directions_
        if learned.chosen_ == "pca":
            expected = d + d * (d - 1) // 2
        else:
            expected = d * k_used - k_used * (k_used + 1) // 2
        assert learned.n_parameters_ == expected


def test_scaler_then_mixture_marginal_is_the_mixture_marginal_in_data_units():
    # x -> (x - c) m, then a mixture: the marginal of x_S is the mixture's
    # marginal at the scaled point times prod |m_S|.
    from sklearn.preprocessing import StandardScaler

    from destructors import ScalerDestructor

    X = _clusters(800, seed=12)
    chain = CompositeDestructor(
        [ScalerDestructor(StandardScaler()), GaussianMixtureDestructor(n_components=3,
                                                                        random_state=0)]
    ).fit(X)
    scaler, mixture = chain.layers_
    features = [2, 0]
    X_test = _clusters(40, seed=13)[:, features]
    Z = (X_test - scaler.centre_[features]) * scaler.multiplier_[features]
    expected = _mixture_marginal(mixture.mixture_, Z, features) + np.sum(
        np.log(np.abs(scaler.multiplier_[features]))
    )
    np.testing.assert_allclose(chain.marginal_score_samples(X_test, features), expected,
                               rtol=1e-10, atol=1e-10)
    # And in 1-D it integrates to one in data units.
    grid = np.linspace(X[:, 1].min() - 15.0, X[:, 1].max() + 15.0, 40_001)
    density = np.exp(chain.marginal_score_samples(grid[:, None], [1]))
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-6)
