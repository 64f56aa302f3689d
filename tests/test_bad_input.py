"""Bad input gives a ValueError that names the problem, never NaN or inf."""

import re
import warnings

import numpy as np
import pytest
from _helpers import skewed_data
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

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

ESTIMATORS = {
    "marginal": MarginalGaussianizer(),
    "pca": PCARotation(),
    "pca-whiten": PCARotation(whiten=True),
    "ica": ICARotation(random_state=0),
    "random": RandomRotation(random_state=0),
    "greedy": GreedyRotation(random_state=0),
    "composite": CompositeDestructor([MarginalGaussianizer(), PCARotation(whiten=True)]),
    "deep": DeepDestructor(max_layers=3, random_state=0),
    "rbig": RBIG(max_layers=3, random_state=0),
}
# Maps that can stretch space (a marginal map, whitening, unmixing): far
# enough out, their outputs overflow. Pure rotations preserve lengths.
EXPANDING = ["marginal", "pca-whiten", "ica", "composite", "deep", "rbig"]
METHODS = ["transform", "score_samples", "inverse_transform"]

_FITTED = {}


def _fitted(name, scale=1.0):
    """A fitted clone of ``ESTIMATORS[name]`` on 3-column data, cached."""
    key = (name, scale)
    if key not in _FITTED:
        X = skewed_data(300, 3, seed=0) * scale
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _FITTED[key] = clone(ESTIMATORS[name]).fit(X)
    return _FITTED[key]


def _with(value, row=0, col=1):
    X = skewed_data(5, 3, seed=1)
    X[row, col] = value
    return X


BAD_INPUTS = {
    "nan": (_with(np.nan), r"NaN"),
    "inf": (_with(np.inf), r"infinity"),
    "minus-inf": (_with(-np.inf), r"infinity"),
    "wrong-n-features": (np.ones((4, 2)), r"X has 2 features, but \w+ is expecting 3"),
    "strings": (np.array([["a", "b", "c"], ["d", "e", "f"]]), r"could not convert string"),
    "mixed-objects": (
        np.array([[1.0, "x", 2.0], [3.0, 4.0, 5.0]], dtype=object),
        r"could not convert string",
    ),
    "complex": (np.ones((3, 3)) + 1j, r"[Cc]omplex"),
    "1d": (np.ones(3), r"Expected 2D array, got 1D array"),
    "3d": (np.ones((2, 3, 2)), r"dim 3"),
    "no-samples": (np.ones((0, 3)), r"0 sample\(s\)"),
}


@pytest.mark.parametrize("bad", list(BAD_INPUTS))
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_bad_input_after_fit(name, method, bad):
    X, message = BAD_INPUTS[bad]
    model = _fitted(name)
    with pytest.raises(ValueError, match=message):
        getattr(model, method)(X)


FIT_INPUTS = {
    **{k: v for k, v in BAD_INPUTS.items() if k != "wrong-n-features"},
    "one-sample": (np.ones((1, 3)), r"1 sample\(s\) .* minimum of 2 is required"),
}


@pytest.mark.parametrize("bad", list(FIT_INPUTS))
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_bad_input_to_fit(name, bad):
    X, message = FIT_INPUTS[bad]
    with pytest.raises(ValueError, match=message):
        clone(ESTIMATORS[name]).fit(X)


@pytest.mark.parametrize("name", ["deep", "rbig"])
def test_too_few_samples_for_early_stopping(name):
    # Below 20 rows no split can choose the depth: the fit warns and stops by
    # the total-correlation rule, exactly as with early_stopping=False.
    X = skewed_data(2, 2, seed=2)
    with pytest.warns(UserWarning, match="too few to hold out a validation split"):
        model = clone(ESTIMATORS[name]).fit(X)
    assert model.validation_score_ is None
    reference = clone(ESTIMATORS[name]).set_params(early_stopping=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        reference.fit(X)
    X_new = skewed_data(4, 2, seed=3)
    np.testing.assert_array_equal(model.score_samples(X_new), reference.score_samples(X_new))
    assert np.all(np.isfinite(model.score_samples(X_new)))


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_single_sample_is_fine_after_fit(name):
    # Transforming or scoring one row is ordinary use, not an error.
    model = _fitted(name)
    x = skewed_data(1, 3, seed=4)
    assert np.all(np.isfinite(model.score_samples(x)))
    np.testing.assert_allclose(model.inverse_transform(model.transform(x)), x, rtol=1e-8)


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_unfitted_estimator_raises_not_fitted(name):
    model = clone(ESTIMATORS[name])
    for method in METHODS:
        with pytest.raises(NotFittedError):
            getattr(model, method)(np.ones((2, 3)))
    with pytest.raises(NotFittedError):
        model.sample(2)


@pytest.mark.parametrize("n_samples", [0, -1, 2.5, "3", None, True, False, np.True_])
@pytest.mark.parametrize("name", ["marginal", "pca", "rbig"])
def test_sample_rejects_non_positive_or_non_integer_counts(name, n_samples):
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        _fitted(name).sample(n_samples)


def test_sample_accepts_numpy_integers():
    model = _fitted("rbig")
    assert model.sample(np.int64(3), random_state=0).shape == (3, 3)


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_score_overflow_raises(name):
    # Finite outputs whose squares overflow: log N(z) would be -inf.
    model = _fitted(name)
    with pytest.raises(ValueError, match="score_samples produced non-finite values"):
        model.score_samples(np.full((2, 3), 1e200))


@pytest.mark.parametrize("value", [1e306, -1e306, 1.7e308])
@pytest.mark.parametrize("name", EXPANDING)
def test_transform_overflow_raises(name, value):
    model = _fitted(name, scale=1e-3)  # slopes of order 1e3
    X = np.full((2, 3), value)
    with pytest.raises(ValueError, match="transform produced non-finite values"):
        model.transform(X)
    with pytest.raises(ValueError, match="non-finite values"):
        model.score_samples(X)
    with pytest.raises(ValueError, match="non-finite values"):
        model.transform_log_det(X)


@pytest.mark.parametrize("value", [1e306, -1e306])
@pytest.mark.parametrize("name", EXPANDING)
def test_inverse_transform_overflow_raises(name, value):
    model = _fitted(name, scale=1e3)  # inverse slopes of order 1e3
    with pytest.raises(ValueError, match="inverse_transform produced non-finite values"):
        model.inverse_transform(np.full((2, 3), value))


@pytest.mark.parametrize("name", ["pca", "pca-whiten", "greedy", "ica"])
def test_covariance_overflow_at_fit_raises(name):
    X = skewed_data(100, 3, seed=5) * 1e200
    with pytest.raises(ValueError, match="covariance of the training data overflows"):
        clone(ESTIMATORS[name]).fit(X)


@pytest.mark.parametrize(
    "estimator, message",
    [
        (MarginalGaussianizer(n_knots=1), "n_knots"),
        (MarginalGaussianizer(smoothing=-1.0), "smoothing"),
        (MarginalGaussianizer(subsample=1), "subsample"),
        (PCARotation(whiten="yes"), "whiten"),
        (ICARotation(fun="tanh"), "fun"),
        (RandomRotation(random_state="seed"), "random_state"),
        (CompositeDestructor(layers="pca"), "layers"),
        (DeepDestructor(layer="pca"), "layer"),
        (DeepDestructor(validation_fraction=1.0), "validation_fraction"),
        (RBIG(rotation="svd"), "rotation"),
        (RBIG(max_layers=0), "max_layers"),
        (RBIG(tol=-1.0), "tol"),
    ],
)
def test_invalid_parameters_are_named(estimator, message):
    with pytest.raises(ValueError, match=rf"'{message}' parameter"):
        estimator.fit(skewed_data(50, 2, seed=6))


@pytest.mark.parametrize(
    "X",
    [
        np.r_[-1.7e308, np.linspace(-1.0, 1.0, 50), 1.7e308][:, None],
        1e-310 * np.linspace(-1.0, 1.0, 50)[:, None],
    ],
    ids=["range-overflows", "spread-underflows"],
)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_marginal_fit_rejects_data_whose_slopes_overflow(X):
    with pytest.raises(ValueError, match=r"(?i)overflow|underflow|rescale|float64"):
        MarginalGaussianizer().fit(X)


# -- NaN from an overflow inside the model ------------------------------------
@pytest.mark.parametrize(
    "row",
    [[1.7e308, -1.7e308, 1.7e308], [-1.7e308, 1.7e308, -1.7e308], [1.7e308] * 3],
)
@pytest.mark.parametrize("name", ["rbig", "deep", "composite"])
def test_overflow_to_nan_inside_model_is_refused(name, row):
    # Reproducer: a rotation of such a row overflows to inf - inf = NaN, which
    # the next marginal map used as a knot index (an out-of-bounds read). Now
    # the NaN goes through and the output check names the overflow; a row the
    # model maps to finite values is fine too.
    model = _fitted(name)
    X = np.array([row])
    for method in ("transform", "score_samples", "transform_log_det"):
        try:
            out = getattr(model, method)(X)
        except ValueError as exc:
            assert re.search(
                r"produced non-finite values \(1 of 1 rows.*overflows float64", str(exc)
            )
        else:
            assert all(np.all(np.isfinite(o)) for o in (out if isinstance(out, tuple) else [out]))


# -- ICARotation: singular or overflowing covariance --------------------------
def _with_columns(*columns):
    return np.column_stack(columns)


_RNG = np.random.default_rng(11)
_U, _V = _RNG.gamma(2.0, size=(2, 400))

SINGULAR = {
    "collinear": _with_columns(_U, 2.0 * _U, _V),
    "combination": _with_columns(_U, _V, _U - 3.0 * _V),
    "constant": _with_columns(_U, np.full(400, 7.0), _V),
    "few-samples": skewed_data(3, 3, seed=12),
    "wide": skewed_data(3, 5, seed=12),
}


@pytest.mark.parametrize("case", list(SINGULAR))
@pytest.mark.parametrize("name", ["ica", "pca-whiten"])
def test_singular_covariance_is_refused_by_whitening_layers(name, case):
    # ICA fitted these silently: round trip off by 0.03-2.2, score +29 nats.
    with pytest.raises(ValueError, match=r"needs a full-rank covariance"):
        clone(ESTIMATORS[name]).fit(SINGULAR[case])


@pytest.mark.parametrize(
    "column",
    [np.r_[1.7e308, np.zeros(399)], np.r_[1e308, -1e308, np.zeros(398)], np.full(400, 1.7e308)],
    ids=["one-1.7e308", "plus-minus-1e308", "all-1.7e308"],
)
def test_ica_refuses_overflowing_covariance_before_fastica(column):
    # These hung in FastICA's SVD, or failed with "array must not contain infs
    # or NaNs".
    X = _with_columns(_U, column, _V)
    with pytest.raises(ValueError, match=r"ICARotation.*overflows float64; rescale"):
        ICARotation(random_state=0).fit(X)


@pytest.mark.parametrize("scale", [1e-200, 1e150])
def test_ica_fits_any_representable_scale(scale):
    # The rank test is scale-free: tiny data whose covariance underflows are
    # not mistaken for singular ones.
    X = skewed_data(400, 3, seed=13) * scale
    model = ICARotation(random_state=0).fit(X)
    np.testing.assert_allclose(model.inverse_transform(model.transform(X)), X, rtol=1e-8)


@pytest.mark.parametrize(
    "error",
    [
        np.linalg.LinAlgError("SVD did not converge"),
        np.linalg.LinAlgError("Last 2 dimensions of the array must be square"),
        ValueError("array must not contain infs or NaNs"),
    ],
    ids=["svd", "square", "infs"],
)
def test_fastica_errors_are_explained(monkeypatch, error):
    import sklearn.decomposition

    def fail(self, X, y=None):
        raise error

    monkeypatch.setattr(sklearn.decomposition.FastICA, "fit", fail)
    with pytest.raises(ValueError, match=r"ICARotation could not unmix the training data") as info:
        ICARotation(random_state=0).fit(skewed_data(100, 3, seed=14))
    assert str(error) in str(info.value) and info.value.__cause__ is error


# -- RandomRotation: data too large to rotate and score -----------------------
@pytest.mark.parametrize("scale", [1e300, 1e200, -1e160])
def test_random_rotation_refuses_data_too_large_to_score(scale):
    # These fitted, and then every score of the training data itself failed.
    X = skewed_data(100, 3, seed=15) * scale
    with pytest.raises(ValueError, match=r"RandomRotation: the training data are too large"):
        RandomRotation(random_state=0).fit(X)


@pytest.mark.parametrize("scale", [1e150, 1e-300])
def test_random_rotation_scores_its_training_data(scale):
    X = skewed_data(100, 3, seed=15) * scale
    model = RandomRotation(random_state=0).fit(X)
    assert np.all(np.isfinite(model.score_samples(X)))


# -- sample(): counts and chunks ----------------------------------------------
@pytest.mark.parametrize(
    "chunks", [0, False, True, -5, 0.0, np.int64(0), (0,), [0], (True,), float("nan")]
)
def test_sample_rejects_bad_chunks(chunks):
    with pytest.raises(ValueError, match=r"chunks must be a positive number of rows"):
        _fitted("pca").sample(10, random_state=0, chunks=chunks)


@pytest.mark.parametrize("chunks", [3, np.int64(3), (3,), -1, "auto", ((4, 6),)])
def test_sample_accepts_dask_chunks(chunks):
    pytest.importorskip("dask.array")
    lazy = _fitted("pca").sample(np.int64(10), random_state=0, chunks=chunks)
    assert lazy.shape == (10, 3)
    assert np.all(np.isfinite(lazy.compute()))
