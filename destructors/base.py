"""The destructor interface shared by every layer and every composite.

A destructor is a fitted bijection ``f`` from data space to a standard normal
latent space. Subclasses implement ``_fit``, ``_forward`` and ``_inverse`` on
validated float64 arrays; ``_forward`` and ``_inverse`` return the output
together with the per-sample log|det J| of the map they apply, so value and
log-determinant are always computed in the same pass.
"""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin, TransformerMixin
from sklearn.utils import check_random_state as _sklearn_check_random_state

from ._compat import _fit_context, check_is_fitted, validate_data

_LOG_2PI = np.log(2.0 * np.pi)


def standard_normal_log_pdf(Z):
    """Log-density of the standard multivariate normal, row by row.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features)
        Points in latent space.

    Returns
    -------
    log_pdf : ndarray of shape (n_samples,)
        ``log N(z; 0, I)`` for each row.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors.base import standard_normal_log_pdf
    >>> float(standard_normal_log_pdf(np.zeros((1, 2)))[0])  # -log(2 pi)
    -1.8378...
    """
    Z = np.asarray(Z, dtype=np.float64)
    return -0.5 * (np.einsum("ij,ij->i", Z, Z) + Z.shape[1] * _LOG_2PI)


def _is_dask(X):
    """Whether ``X`` is a Dask collection, checked without importing Dask."""
    return type(X).__module__.partition(".")[0] == "dask" and hasattr(X, "__dask_graph__")


def _dask_backend():
    """The Dask front end (imports Dask: only call it with a Dask input)."""
    try:
        from . import _dask
    except ImportError as exc:  # sample(chunks=...) without Dask installed
        raise ImportError("Dask support needs `pip install destructors[dask]`.") from exc
    return _dask


def _check_finite_output(values, what):
    """Raise instead of letting an overflow leak out as inf or NaN."""
    if not np.all(np.isfinite(values)):
        raise ValueError(
            f"{what} produced non-finite values: the input lies so far outside "
            "the training range that the result overflows float64."
        )


class BaseDestructor(TransformerMixin, DensityMixin, BaseEstimator):
    """Base class for destructors: invertible maps of data to N(0, I).

    Subclasses implement

    - ``_fit(X)``: fit on a validated float64 array, return ``self``;
    - ``_forward(X) -> (Z, log_det)``: the map and its per-sample
      log|det Jacobian|;
    - ``_inverse(Z) -> (X, log_det)``: the inverse map and *its* log|det|.

    Everything public (validation, dtype handling, likelihoods, sampling) is
    written once here.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors import PCARotation
    >>> X = np.random.default_rng(0).normal(size=(100, 3))
    >>> rot = PCARotation().fit(X)
    >>> Z, log_det = rot.transform_log_det(X)
    >>> bool(np.allclose(rot.inverse_transform(Z), X))
    True
    """

    _parameter_constraints: dict = {}

    # -- fitting -----------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the destructor to data.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)
            Training data, finite and numeric, at least two samples. A Dask
            array is never loaded whole: each layer is fitted from exact,
            mergeable statistics gathered in passes over it (see
            :mod:`destructors._dask`), and the fitted model is the same small
            in-memory estimator.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted destructor.
        """
        if _is_dask(X):
            return _dask_backend().fit(self, X)
        X = validate_data(
            self, X, dtype=np.float64, ensure_min_samples=2, ensure_all_finite=True
        )
        return self._fit(X)

    def _fit_forward(self, X):
        """Fit on a validated float64 array and return ``_forward`` of it.

        Composites use this so that each layer's output is computed once.
        """
        self._validate_params()
        self.n_features_in_ = X.shape[1]
        self._fit(X)
        return self._forward(X)

    def _validate(self, X):
        check_is_fitted(self)
        return validate_data(
            self,
            X,
            reset=False,
            dtype=np.float64,
            ensure_all_finite=True,
        )

    @staticmethod
    def _out_dtype(X):
        dtype = getattr(X, "dtype", None)
        return np.float32 if dtype == np.float32 else np.float64

    # -- maps ----------------------------------------------------------------
    def transform_log_det(self, X):
        """Map data to latent space and return the log|det J| of the map.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)
            Data to transform; a Dask array gives lazy Dask results.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_features)
            Latent points, float64.
        log_det : ndarray of shape (n_samples,)
            log|det df/dx| at each row.

        Examples
        --------
        >>> import numpy as np
        >>> from destructors import PCARotation
        >>> X = np.random.default_rng(0).normal(size=(50, 2)) * [1.0, 3.0]
        >>> _, log_det = PCARotation(whiten=True).fit(X).transform_log_det(X)
        >>> bool(np.allclose(log_det, log_det[0]))  # linear map: constant
        True
        """
        if _is_dask(X):
            return _dask_backend().transform_log_det(self, X)
        Xv = self._validate(X)
        with np.errstate(over="ignore", invalid="ignore"):  # reported below
            Z, log_det = self._forward(Xv)
        _check_finite_output(Z, "transform")
        _check_finite_output(log_det, "transform")
        return Z, log_det

    def transform(self, X):
        """Map data to latent space (toward a standard normal).

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)
            Data to transform; a Dask array gives a lazy Dask array, mapped
            block by block.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_features)
            Latent points, with the dtype of ``X`` (float32 or float64).
        """
        if _is_dask(X):
            return _dask_backend().transform(self, X)
        Z, _ = self.transform_log_det(X)
        return Z.astype(self._out_dtype(X), copy=False)

    def inverse_transform(self, X):
        """Map latent points back to data space.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)
            Latent points; a Dask array gives a lazy Dask array.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            Points in data space, with the dtype of the input.
        """
        if _is_dask(X):
            return _dask_backend().inverse_transform(self, X)
        Zv = self._validate(X)
        with np.errstate(over="ignore", invalid="ignore"):  # reported below
            Xo, _ = self._inverse(Zv)
        _check_finite_output(Xo, "inverse_transform")
        return Xo.astype(self._out_dtype(X), copy=False)

    # -- density -------------------------------------------------------------
    def score_samples(self, X):
        """Exact log-density of each sample under the fitted model.

        ``log p(x) = log N(f(x); 0, I) + log|det J_f(x)|``.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)
            Points to score; a Dask array gives a lazy Dask array.

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
            Natural-log density at each row, float64.
        """
        if _is_dask(X):
            return _dask_backend().score_samples(self, X)
        Z, log_det = self.transform_log_det(X)
        with np.errstate(over="ignore", invalid="ignore"):  # reported below
            log_density = standard_normal_log_pdf(Z) + log_det
        _check_finite_output(log_density, "score_samples")
        return log_density

    def score(self, X, y=None):
        """Mean log-likelihood of the samples (higher is better).

        It is a mean, not a sum, so scores of data sets of different sizes
        compare, and ``GridSearchCV`` selects by held-out log-likelihood.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)
            Points to score.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Mean of :meth:`score_samples`; for a Dask array, a lazy 0-d Dask
            array (``float(score)`` computes it).
        """
        if _is_dask(X):
            return _dask_backend().score(self, X)
        return float(np.mean(self.score_samples(X)))

    def sample(self, n_samples=1, random_state=None, *, chunks=None):
        """Draw samples from the fitted density.

        Standard normal draws are pushed through the inverse map.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.
        random_state : int, RandomState instance, Generator or None
            Seed for this call only; the global NumPy state is never used.
        chunks : int, tuple of int, str or None, default=None
            Rows per block of a lazy ``dask.array.Array`` to return instead
            of an ndarray (needs Dask). Block ``i`` is drawn from the
            ``i``-th seed spawned from one ``np.random.SeedSequence``, so the
            values depend on ``random_state`` and ``chunks`` only, not on the
            scheduler or the number of workers (nor do they equal the
            in-memory draw).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Samples in data space.
        """
        check_is_fitted(self)
        if not isinstance(n_samples, numbers.Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
        if chunks is not None:
            return _dask_backend().sample(self, int(n_samples), random_state, chunks)
        Z = _standard_normal(random_state, (int(n_samples), self.n_features_in_))
        with np.errstate(over="ignore", invalid="ignore"):  # reported below
            X, _ = self._inverse(Z)
        _check_finite_output(X, "sample")
        return X

    def _more_tags(self):  # scikit-learn < 1.6
        return {"preserves_dtype": [np.float64, np.float32]}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def check_random_state(seed):
    """A ``RandomState`` from a seed, an instance, or ``None``.

    As scikit-learn's, except that ``None`` gives a fresh generator seeded
    from the operating system instead of NumPy's global one: the library
    never draws from, or advances, the global random state.

    Parameters
    ----------
    seed : None, int or RandomState instance
        The seed.

    Returns
    -------
    rng : numpy.random.RandomState
        A generator.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors.base import check_random_state
    >>> state = np.random.get_state()[1].copy()
    >>> _ = check_random_state(None).normal()
    >>> bool((np.random.get_state()[1] == state).all())
    True
    """
    if seed is None:
        return np.random.RandomState(np.random.SeedSequence().generate_state(1)[0])
    return _sklearn_check_random_state(seed)


def _standard_normal(random_state, shape):
    """Standard normal draws from a seed, RandomState or Generator."""
    if isinstance(random_state, np.random.Generator):
        return random_state.standard_normal(shape)
    return check_random_state(random_state).standard_normal(shape)


def spawn_seeds(random_state, n):
    """Independent integer seeds for ``n`` sub-estimators, from one state.

    Parameters
    ----------
    random_state : int, RandomState instance or None
        The parent state.
    n : int
        How many seeds.

    Returns
    -------
    seeds : ndarray of shape (n,)
        Integers in ``[0, 2**31)``.

    Examples
    --------
    >>> from destructors.base import spawn_seeds
    >>> bool((spawn_seeds(0, 3) == spawn_seeds(0, 3)).all())
    True
    """
    return check_random_state(random_state).randint(0, 2**31 - 1, size=n)
