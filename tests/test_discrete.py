"""Discrete, tied and duplicated data: one policy (destructors.discrete).

The reproducers of the silent wrong results (984 nats of total correlation
for three fair bits, 26.8 for a bootstrap resample, ...) are kept here: each
now raises a ValueError that names what was found, or gives a sane value
with ``dequantize=True``.
"""

import warnings

import numpy as np
import pytest
from _helpers import global_random_state_unchanged

from destructors.discrete import (
    MAX_TIES,
    DiscretenessReport,
    check_continuous,
    dequantize,
    describe_discreteness,
    resolution,
)
from destructors.information import (
    entropy,
    kl_divergence,
    mutual_information,
    total_correlation,
)


def _bits(seed, n=300, d=3):
    return np.random.default_rng(seed).integers(0, 2, size=(n, d)).astype(bool)


def _bootstrap(seed, n_distinct=150, n=1000, d=3):
    rng = np.random.default_rng(seed)
    G = rng.normal(size=(n_distinct, d))
    return G[rng.integers(0, n_distinct, size=n)]


# -- reproducers -------------------------------------------------------------------------


def test_three_fair_bits_are_refused_then_dequantized_to_zero_total_correlation():
    with pytest.raises(ValueError) as info:
        total_correlation(_bits(0), random_state=0)
    message = str(info.value)
    for part in ("Features 0 (2 distinct values", "more than 10 equal values",
                 "292 of its 300 rows", "dequantize=True",
                 "destructors.discrete.dequantize", "drop these features"):
        assert part in message
    for seed in range(3):
        # Independent bits: no dependence, so zero within the noise floor.
        assert abs(total_correlation(_bits(seed), dequantize=True, random_state=seed)) < 0.05


@pytest.mark.parametrize("dequantize_", [False, True])
def test_bootstrap_resample_is_refused_even_with_dequantize(dequantize_):
    with pytest.raises(ValueError, match="repeated rows") as info:
        total_correlation(_bootstrap(0), dequantize=dequantize_, random_state=0)
    assert "850 of its 1000 rows" in str(info.value)
    assert "np.unique(X, axis=0)" in str(info.value)


def test_entropy_of_repeated_rows_is_refused_like_the_other_measures():
    X = np.repeat(np.random.default_rng(0).normal(size=(30, 2)), 10, axis=0)
    messages = []
    def likelihood(A, **kw):
        return entropy(A, method="likelihood", **kw)

    for call in (entropy, total_correlation, likelihood):
        with pytest.raises(ValueError, match="repeated rows") as info:
            call(X, random_state=0)
        messages.append(str(info.value))
    assert len(set(messages)) == 1  # one rule, one message
    assert "270 of its 300 rows" in messages[0]
    with pytest.raises(ValueError, match="repeated rows"):
        entropy(X, dequantize=True, random_state=0)


def test_kl_divergence_against_a_bootstrap_resample_is_refused():
    G = np.random.default_rng(1).normal(size=(1000, 3))
    with pytest.raises(ValueError, match="of Y have more than 10 equal values") as info:
        kl_divergence(G, _bootstrap(0), random_state=0)
    assert "repeated rows" in str(info.value)


def test_mutual_information_of_ternary_and_gaussian():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 3, size=(1000, 1))
    g = rng.normal(size=(1000, 1))
    with pytest.raises(ValueError, match=r"Features 0 \(3 distinct values, \d+ equal\) of X"):
        mutual_information(t, g, random_state=0)
    assert abs(mutual_information(t, g, dequantize=True, random_state=0)) < 0.05


def test_discrete_mutual_information_is_kept_by_dequantizing():
    # x uniform on {0..3}, y = x + a fair bit: I = H(y) - log 2 = 0.866.
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, size=10000)
    y = x + rng.integers(0, 2, size=10000)
    mi = mutual_information(x, y, dequantize=True, random_state=0)
    # Piecewise-uniform dependence is hard for Gaussianization: measured
    # 0.65 at n = 2000, 0.73 at n = 10000 (an under-estimate, as documented).
    assert 0.6 < mi < 0.9


@pytest.mark.parametrize("scale", [1e200, 1e250, 1e300, 1e-300])
def test_kl_divergence_at_extreme_scales_is_finite_or_refused_clearly(scale):
    rng = np.random.default_rng(0)
    X = rng.normal(0.5, 1.5, size=(2000, 2))
    Y = rng.normal(size=(2000, 2))
    try:
        value = kl_divergence(X * scale, Y * scale, random_state=0)
    except ValueError as exc:
        assert "Rescale" in str(exc), str(exc)
        return
    assert np.isfinite(value)
    assert value == pytest.approx(kl_divergence(X, Y, random_state=0), abs=0.15)


def test_kl_divergence_range_overflow_names_the_scale():
    X = np.random.default_rng(0).uniform(-1.0, 1.0, size=(500, 2)) * 1.7e308
    with pytest.raises(ValueError, match="overflows float64.*Rescale"):
        kl_divergence(X, X[::-1], random_state=0)


def test_kl_divergence_of_very_different_scales_names_the_scale_not_discreteness():
    X = np.random.default_rng(0).normal(size=(500, 2))
    with pytest.raises(ValueError) as info:
        kl_divergence(X, 1e150 * X, random_state=0)
    message = str(info.value)
    assert "different scales" in message and "1e+150" in message
    assert "not a discrete-data problem" in message


def test_kl_divergence_with_boolean_y_is_refused_not_inf():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 2))
    with pytest.raises(ValueError, match="of Y have more than 10 equal values.*dequantize=True"):
        kl_divergence(X, X > 0, random_state=0)


def test_too_few_rows_for_the_features_is_named():
    W = np.random.default_rng(0).normal(size=(30, 40))
    with pytest.raises(ValueError, match=r"30 rows for 40 features: too few rows"):
        mutual_information(W[:, :20], W[:, 20:], random_state=0)
    with pytest.raises(ValueError, match="too few rows"):
        total_correlation(W, random_state=0)
    with pytest.raises(ValueError, match="too few rows"):
        mutual_information(W[:, :1], W[:, 1:30], random_state=0)  # 30 features


# -- the rule ----------------------------------------------------------------------------


def test_continuous_data_pass_silently_and_unchanged():
    X = np.random.default_rng(0).normal(size=(2000, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, report = check_continuous(X)
        assert out is X
        assert report.is_continuous and report.n_duplicated_rows == 0
        assert report.tied_features.size == 0
        tc = total_correlation(X, random_state=0)
        # dequantize=True changes nothing (and draws nothing) when not needed.
        assert total_correlation(X, dequantize=True, random_state=0) == tc
        assert entropy(X, dequantize=True, random_state=0) == entropy(X, random_state=0)


def test_mild_ties_pass_and_heavy_ties_are_refused():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 2))
    fine = np.round(X, 3)  # a few ties, at most a handful of equal values
    report = describe_discreteness(fine)
    assert report.tied_features.size == 2 and report.max_ties.max() <= MAX_TIES
    assert check_continuous(fine)[1].is_continuous
    coarse = np.round(X, 1)
    with pytest.raises(ValueError, match="more than 10 equal values"):
        check_continuous(coarse)
    # One duplicated row in 200 passes (at most 1 %), three do not.
    Y = rng.normal(size=(200, 2))
    Y[1] = Y[0]
    assert check_continuous(Y)[1].n_duplicated_rows == 1
    Y[2:4] = Y[0]
    with pytest.raises(ValueError, match="3 of its 200 rows"):
        check_continuous(Y)


def test_describe_discreteness_report():
    X = np.c_[np.arange(40) % 4, np.random.default_rng(0).normal(size=40)]
    report = describe_discreteness(X)
    assert isinstance(report, DiscretenessReport)
    assert report.n_samples == 40 and report.n_features == 2
    assert report.n_distinct.tolist() == [4, 40]
    assert report.max_ties.tolist() == [10, 1]
    assert report.resolution[0] == 1.0
    assert report.tied_features.tolist() == [0]
    assert report.discrete_features.tolist() == []  # exactly 10 equal values pass
    assert report.n_duplicated_rows == 0 and report.is_continuous
    bits = describe_discreteness(_bits(0))
    assert bits.n_duplicated_rows == 292 and bits.n_repeated_rows == 0
    assert bits.off_grid_features.size == 0
    boot = describe_discreteness(_bootstrap(0))
    assert boot.n_duplicated_rows == boot.n_repeated_rows == 850
    assert boot.off_grid_features.tolist() == [0, 1, 2]
    one_d = describe_discreteness(_bootstrap(0, d=1))
    assert one_d.n_repeated_rows == 850
    assert resolution(np.array([0.0, 0.5, 2.0, 2.0])).tolist() == [0.5]


def test_real_rounded_tables_need_dequantize():
    from sklearn.datasets import load_iris

    X = load_iris().data
    report = describe_discreteness(X)
    assert report.n_duplicated_rows == 1 and report.n_repeated_rows == 0
    assert report.max_ties.max() == 29
    with pytest.raises(ValueError, match="dequantize=True"):
        total_correlation(X, random_state=0)
    tc = total_correlation(X, dequantize=True, random_state=0)
    assert 1.2 < tc < 1.8  # measured: 1.41-1.59 over dequantization seeds


# -- dequantize --------------------------------------------------------------------------


def test_dequantized_data_have_no_ties_and_round_back_exactly():
    rng = np.random.default_rng(0)
    counts = rng.poisson(3.0, size=(2000, 2))
    rounded = np.round(rng.normal(size=(2000, 1)) * 5, 1)  # a 0.1 grid
    X = np.c_[counts, rounded]
    Y = dequantize(X, random_state=0)
    assert Y.dtype == np.float64 and Y.shape == X.shape
    assert describe_discreteness(Y).tied_features.size == 0
    assert np.all(np.round(Y[:, :2]) == counts)
    # Noise stays inside the cell: the nearest original value is the value.
    h = resolution(X)
    assert np.all(np.abs(Y - X) < h / 2)
    for j in range(3):
        values = np.unique(X[:, j])
        nearest = values[np.argmin(np.abs(Y[:, j, None] - values[None, :]), axis=1)]
        np.testing.assert_array_equal(nearest, X[:, j])


def test_dequantize_is_seeded_deterministic_and_leaves_input_and_global_state_alone():
    X = np.random.default_rng(0).integers(0, 5, size=(500, 2))
    X_before = X.copy()
    with global_random_state_unchanged():
        A = dequantize(X, random_state=3)
        B = dequantize(X, random_state=3)
        C = dequantize(X, random_state=4)
        dequantize(X)
        check_continuous(X, dequantize=True, random_state=None)
    np.testing.assert_array_equal(A, B)
    assert not np.array_equal(A, C)
    np.testing.assert_array_equal(X, X_before)
    assert A is not X and not np.shares_memory(A, X)


def test_dequantize_leaves_untied_features_alone_and_takes_a_resolution():
    rng = np.random.default_rng(0)
    X = np.c_[rng.integers(0, 3, size=100), rng.normal(size=100)]
    Y = dequantize(X, random_state=0)
    np.testing.assert_array_equal(Y[:, 1], X[:, 1])
    Z = dequantize(X, resolution=[0.5, 0.0], random_state=0)
    assert np.all(np.abs(Z[:, 0] - X[:, 0]) < 0.25)
    np.testing.assert_array_equal(Z[:, 1], X[:, 1])
    with pytest.raises(ValueError, match="resolution"):
        dequantize(X, resolution=-1.0)
    bool_out = dequantize(np.array([True, False] * 20))
    assert bool_out.shape == (40, 1) and np.all(np.round(bool_out[:, 0]) == [1, 0] * 20)


def test_dequantize_argument_is_validated():
    X = np.random.default_rng(0).normal(size=(100, 2))
    with pytest.raises(ValueError, match="dequantize must be True or False"):
        total_correlation(X, dequantize="yes")
