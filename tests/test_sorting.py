"""The radix sorts against NumPy's sorts: the same values, the same stable ranks.

These run with the JIT disabled too (CI), on small arrays, so the Python path
of every kernel is exercised.
"""

import numpy as np
import pytest

from destructors import MarginalGaussianizer, _sorting
from destructors._sorting import (
    _radix_sort_rows_parallel,
    _radix_sort_rows_serial,
    _rank_residuals,
    radix_sort_rows,
    rank_residuals,
    rank_residuals_reference,
    sort_rows,
)


def _awkward_rows(n, seed=0):
    """Rows that stress a float radix sort: signs, zeros, ties, infinities, subnormals, NaNs."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((8, n)) * np.exp(3.0 * rng.standard_normal((8, n)))
    X[1] = np.round(X[1])  # many ties
    X[2, ::3] = np.inf
    X[2, 1::3] = -np.inf
    X[3, : n // 2] = 5e-324  # subnormals of both signs around zero
    X[3, n // 2:] = -5e-324
    X[4] = 7.25  # one value: every pass skipped
    X[5, ::4] = np.nan
    X[6] = -np.abs(X[6])  # negative only
    X[7] = np.ldexp(1.0, rng.integers(-1000, 1000, n))  # powers of two: digits in the exponent
    return X


@pytest.mark.parametrize("n", [1, 2, 3, 50, 2500])
def test_radix_sort_gives_numpys_sorted_values_bit_for_bit(n):
    X = _awkward_rows(n)
    expected = np.sort(X, axis=1)
    got = X.copy()
    radix_sort_rows(got)
    np.testing.assert_array_equal(got, expected)
    # Bit for bit wherever the row holds no NaN (whose payload may change)
    # and no zero (NumPy may put 0.0 before -0.0, an equal number).
    plain = ~(np.isnan(expected) | (expected == 0.0)).any(axis=1)
    assert plain[[0, 2, 3, 4, 6, 7]].all()
    np.testing.assert_array_equal(got[plain].view(np.uint64), expected[plain].view(np.uint64))


def test_zeros_of_both_signs_sort_as_equal_numbers():
    x = np.array([[0.0, -1.0, -0.0, 2.0, 0.0, -0.0]])
    radix_sort_rows(x)
    assert x.tolist() == [[-1.0, 0.0, 0.0, 0.0, 0.0, 2.0]]
    # Every zero kept, with its sign: -0.0 sorts before 0.0 here.
    assert np.signbit(x[0, 1:5]).tolist() == [True, True, False, False]


def test_parallel_and_serial_radix_sorts_agree():
    X = _awkward_rows(3000, seed=1)
    a, b = X.copy(), X.copy()
    _radix_sort_rows_parallel(a)
    _radix_sort_rows_serial(b)
    np.testing.assert_array_equal(a.view(np.uint64), b.view(np.uint64))


def test_radix_sort_refuses_what_it_cannot_sort_in_place():
    with pytest.raises(ValueError, match="C-contiguous 2-D float64"):
        radix_sort_rows(np.zeros((3, 4), order="F"))
    with pytest.raises(ValueError, match="C-contiguous 2-D float64"):
        radix_sort_rows(np.zeros((3, 4), dtype=np.float32))


@pytest.mark.parametrize("radix", [True, False])
def test_sort_rows_gives_the_same_values_by_either_sort(radix, monkeypatch):
    monkeypatch.setattr(_sorting, "_radix_is_faster", lambda: radix)
    X = _awkward_rows(400, seed=2)
    got = X.copy()
    sort_rows(got)
    np.testing.assert_array_equal(got, np.sort(X, axis=1))
    # A layout the radix sort does not take is sorted by NumPy.
    F = np.asfortranarray(X)
    sort_rows(F)
    np.testing.assert_array_equal(F, np.sort(X, axis=1))


def test_a_marginal_fit_is_the_same_by_either_sort(monkeypatch):
    X = np.random.default_rng(3).standard_t(3, size=(2000, 3))
    X[:, 1] = np.round(X[:, 1], 2)  # ties
    fits = []
    for radix in (True, False):
        monkeypatch.setattr(_sorting, "_radix_is_faster", lambda radix=radix: radix)
        fits.append(MarginalGaussianizer(smoothing=0.3).fit(X))
    np.testing.assert_array_equal(fits[0].knots_x_, fits[1].knots_x_)
    np.testing.assert_array_equal(fits[0].knots_z_, fits[1].knots_z_)


def _tied_columns(m, seed=0):
    rng = np.random.default_rng(seed)
    Y = rng.standard_normal((m, 4))
    Y[::3, 0] = 0.0
    Y[1::3, 0] = -0.0  # equal to 0.0: ranked by row, as a stable sort does
    Y[:, 1] = np.round(Y[:, 1])
    Y[::5, 2] = np.nan
    return Y


@pytest.mark.parametrize("m", [1, 2, 9, 1000])
def test_rank_residuals_match_a_stable_argsort(m):
    Y = _tied_columns(m)
    q = np.sort(np.random.default_rng(1).standard_normal(m))
    expected = rank_residuals_reference(Y, q)
    np.testing.assert_array_equal(rank_residuals(Y, q), expected)
    # The kernel itself (the Python path when the JIT is disabled).
    got = np.empty_like(Y)
    _rank_residuals(Y, q, got)
    np.testing.assert_array_equal(got, expected)


def test_rank_residuals_pair_the_sorted_values_with_q():
    Y = np.random.default_rng(4).exponential(size=(500, 3))
    q = np.linspace(-2.0, 2.0, 500)
    residual = rank_residuals(Y, q)
    # Y - residual is q at each value's rank: sorted by Y, it is q itself.
    order = np.argsort(Y, axis=0)
    np.testing.assert_allclose(np.take_along_axis(Y - residual, order, axis=0),
                               np.repeat(q[:, None], 3, axis=1), atol=1e-12)
