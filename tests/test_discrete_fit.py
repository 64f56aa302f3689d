"""The discrete-data policy in the density fit (see destructors.discrete)."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_wine

from destructors import RBIG


def test_three_valued_data_are_refused_not_fitted_into_a_fiction():
    # Reproducer: on integers(0, 3, (200, 3)) the fit ran 500 layers,
    # transform reached 5e60 and the held-out score (+170 nats) was a
    # fiction because held-out rows copied training rows.
    X = np.random.default_rng(0).integers(0, 3, (200, 3))
    with pytest.raises(ValueError, match="exact copies of other rows.*dequantize=True"):
        RBIG(random_state=0).fit(X)


def test_dequantized_fit_is_exact_and_sane():
    X = np.random.default_rng(0).integers(0, 3, (200, 3))
    model = RBIG(dequantize=True, random_state=0).fit(X)
    Z, log_det = model.transform_log_det(X)
    assert model.n_layers_ < 50 and np.all(np.abs(Z) < 10)
    np.testing.assert_allclose(model.inverse_transform(Z), X, atol=1e-9)
    # Fresh dequantized draws of the same cells score like the training ones
    # (no spikes at the integer points the fit never saw without noise).
    from destructors.discrete import dequantize

    fresh = dequantize(X, random_state=1)
    assert abs(model.score(fresh) - model.score(dequantize(X, random_state=2))) < 0.3
    # Seeded: the same noise and model each time.
    again = RBIG(dequantize=True, random_state=0).fit(X)
    np.testing.assert_array_equal(again.transform(X), Z)


def test_resampled_rows_are_refused_even_with_dequantize():
    # Reproducer: 150 distinct Gaussian rows resampled to 1000 fitted with no
    # warning and a round trip off by up to 4e-6.
    rng = np.random.default_rng(0)
    G = rng.normal(size=(150, 3))
    X = G[rng.integers(0, 150, 1000)]
    with pytest.raises(ValueError, match="copies of other rows"):
        RBIG(random_state=0).fit(X)
    with pytest.raises(ValueError):
        RBIG(dequantize=True, random_state=0).fit(X)


def test_held_out_copies_of_training_rows_are_reported():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1000, 2))
    X[990:] = X[:10]  # 1 % duplicated rows: allowed, but they may cross the split
    with pytest.warns(UserWarning, match="held-out rows are copies of fitting rows"):
        RBIG(random_state=3, max_layers=3).fit(X)


def test_rounded_real_tables_fit_as_before():
    # Ties from rounding to a few decimals keep the map exact: no refusal.
    X = load_wine().data
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model = RBIG(random_state=0).fit(X)
    Z = model.transform(X)
    np.testing.assert_allclose(model.inverse_transform(Z), X, rtol=1e-9, atol=1e-9)
