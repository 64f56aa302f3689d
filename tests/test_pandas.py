"""pandas in and out: latent columns in, data columns out; warnings by column name."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler

from destructors import RBIG, CompositeDestructor, MarginalGaussianizer, PCARotation
from destructors.base import BaseDestructor, FeatureWarning
from destructors.boundary import Boundary


def _frame():
    iris = load_iris(as_frame=True).data
    rng = np.random.default_rng(0)
    # Continuous (no ties), and a non-default index that must be kept.
    df = iris + rng.uniform(-0.05, 0.05, size=iris.shape)
    df.index = pd.RangeIndex(100, 100 + len(df), name="row")
    return df


MODELS = {
    "marginal": lambda: MarginalGaussianizer(),
    "pca": lambda: PCARotation(),
    "rbig": lambda: RBIG(max_layers=6, early_stopping=False, tol=None, random_state=0),
    "chain": lambda: CompositeDestructor([Boundary(lower="auto"), StandardScaler(),
                                          RBIG(max_layers=4, early_stopping=False, tol=None,
                                               random_state=0)]),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_exact_round_trip_with_dataframes(name):
    df = _frame()
    model = MODELS[name]().set_output(transform="pandas").fit(df)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "feature names" warning on the way
        Z = model.transform(df)
        assert isinstance(Z, pd.DataFrame)
        assert list(Z.columns) == list(model.get_feature_names_out())
        back = model.inverse_transform(Z)
        from_array = model.inverse_transform(Z.to_numpy())
    assert isinstance(back, pd.DataFrame)
    assert list(back.columns) == list(df.columns)
    assert back.index.equals(df.index)
    np.testing.assert_allclose(back.to_numpy(), df.to_numpy(), rtol=1e-12, atol=1e-12)
    # The array path is the same arithmetic, and the default output an array.
    np.testing.assert_array_equal(from_array.to_numpy(), back.to_numpy())
    model.set_output(transform="default")
    plain = model.inverse_transform(Z.to_numpy())
    assert isinstance(plain, np.ndarray)
    np.testing.assert_array_equal(plain, back.to_numpy())


def test_sample_follows_set_output():
    df = _frame()
    model = RBIG(max_layers=4, early_stopping=False, tol=None, random_state=0).fit(df)
    S = model.sample(7, random_state=3)
    assert isinstance(S, np.ndarray)
    model.set_output(transform="pandas")
    S_df = model.sample(7, random_state=3)
    assert list(S_df.columns) == list(df.columns)
    np.testing.assert_array_equal(S_df.to_numpy(), S)
    # Scored as data, the samples need no renaming.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = model.score_samples(S_df)
    np.testing.assert_array_equal(scores, model.set_output(transform="default")
                                  .score_samples(pd.DataFrame(S, columns=df.columns)))


def test_unnamed_fit_gives_sklearn_default_names():
    X = _frame().to_numpy()
    model = MarginalGaussianizer().set_output(transform="pandas").fit(X)
    assert list(model.sample(2, random_state=0).columns) == ["x0", "x1", "x2", "x3"]
    back = model.inverse_transform(model.transform(X))
    np.testing.assert_allclose(back.to_numpy(), X, rtol=1e-12)


def test_wrong_latent_columns_are_named_in_the_error():
    df = _frame()
    model = PCARotation().fit(df)
    with pytest.raises(ValueError, match=r"latent points.*\['pcarotation0', 'pcarotation1'"):
        model.inverse_transform(df)  # data columns, not latent ones
    with pytest.raises(ValueError, match="X has 3 features, but PCARotation is expecting 4"):
        model.inverse_transform(np.zeros((2, 3)))
    # Unnamed (integer) columns are positions, as an array's.
    Z = model.transform(df)
    np.testing.assert_array_equal(model.inverse_transform(pd.DataFrame(Z)),
                                  model.inverse_transform(Z))


def _fit_warnings(model, X):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X)
    return [w for w in caught if issubclass(w.category, FeatureWarning)]


def test_warnings_name_columns_once():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({
        "income": rng.lognormal(size=400),
        "age": rng.integers(20, 30, size=400).astype(float),  # 10 values
        "flag": np.ones(400),                                  # constant
    })
    rbig = RBIG(max_layers=6, early_stopping=False, tol=None, random_state=0)
    caught = _fit_warnings(rbig, df)
    messages = [str(w.message) for w in caught]
    assert len(messages) == len(set(messages))  # six layers, each message once
    assert sum("['age'] (columns [1]) take few distinct values" in m for m in messages) == 1
    assert sum("['flag'] (columns [2]) are constant" in m for m in messages) == 1
    assert not any("income" in m for m in messages)
    # The warning points at the caller's line, not inside the library.
    assert all(w.filename == __file__ for w in caught)
    # Without names, by index (and still once).
    by_index = [str(w.message) for w in _fit_warnings(MarginalGaussianizer(), df.to_numpy())]
    assert sorted(m.split(" ", 2)[1] for m in by_index) == ["[1]", "[2]"]


class _Reverse(BaseDestructor):
    """Reverses the feature order: latent feature j is data column d - 1 - j."""

    def _fit(self, X):
        return self

    def _forward(self, X):
        return X[:, ::-1].copy(), np.zeros(X.shape[0])

    def _inverse(self, Z):
        return Z[:, ::-1].copy(), np.zeros(Z.shape[0])


def _ages(seed, n=400):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"age": rng.integers(20, 30, size=n).astype(float),
                         "income": rng.lognormal(size=n)})


def test_latent_features_are_not_named_as_columns():
    # Latent feature 1 holds the ages: it is not the column 'income'.
    caught = _fit_warnings(CompositeDestructor([_Reverse(), MarginalGaussianizer()]), _ages(3))
    assert [str(w.message).split(" take")[0] for w in caught] == ["Features [1]"]


def test_a_column_warned_about_in_later_layers_is_reported_once():
    # The second marginal layer sees the ages mapped by the first: the same
    # feature, reported once, by its name.
    chain = CompositeDestructor([MarginalGaussianizer(), MarginalGaussianizer()])
    caught = _fit_warnings(chain, _ages(4))
    assert [str(w.message).split(" take")[0] for w in caught] == [
        "Features ['age'] (columns [0])"]
