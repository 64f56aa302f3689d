"""The destructor interface shared by every layer and every composite.

A destructor is a fitted bijection ``f`` from data space to a standard normal
latent space. Subclasses implement ``_fit``, ``_forward`` and ``_inverse`` on
validated float64 arrays; ``_forward`` and ``_inverse`` return the output
together with the per-sample log|det J| of the map they apply, so value and
log-determinant are always computed in the same pass.

The layer protocol
------------------
Required of every destructor:

- ``_fit(X) -> self`` on a validated float64 array;
- ``_forward(X) -> (Z, log_det)`` and ``_inverse(Z) -> (X, log_det)``.

Optional capabilities, each declared by the layer that defines it and
read through :func:`capability`, never guessed from a class:

- ``_fused_steps() -> list of MarginalStep/AffineStep``: the map as plain
  arrays, so runs of layers execute in one kernel (:mod:`destructors._fused`);
- ``_fit_stream(stream)``: fit from mergeable statistics of a chunked data
  source (the Dask fit), appending itself to the stream;
- ``_output_bounds(box, max_sq_norm) -> (lo, hi) or None``: a box that holds
  the outputs of inputs inside ``box`` (or of norm at most
  ``sqrt(max_sq_norm)``), so a stream can skip a min/max pass;
- ``_n_parameters() -> int``: the number of free parameters estimated from
  the data (for :meth:`BaseDestructor.bic` and ``n_parameters_``);
- ``_marginal_log_density(X, features, rest) -> log_density``: the exact
  log-density of the marginal of ``features`` (see
  :meth:`BaseDestructor.marginal_score_samples`);
- ``_log_density(X) -> log p(x)``: ``log N(f(x)) + log|det J_f(x)|`` of
  validated rows without storing ``f(x)`` (``score_samples`` then needs
  memory for its result only).
- ``_refit_forward(X, keep) -> (layer, Z, log_det)``: a clone of this
  fitted chain fitted on ``X`` in which the fitted steps that ``keep``
  accepts are reused as they are (a deep model's refit that keeps the
  rotations it searched, ``refit="marginals"``).

A capability describes the map of the class that defines it: a subclass
that overrides ``_forward``/``_inverse`` (or ``_fit``, for the statistics
fit) without defining the capability again loses it, so no path can run a
parent's map in place of the layer's own.
"""

import functools
import numbers
import os
import sys
import warnings
import weakref

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin, TransformerMixin
from sklearn.utils import check_array
from sklearn.utils import check_random_state as _sklearn_check_random_state

from ._compat import (
    _fit_context,
    _get_container_adapter,
    _get_feature_names,
    check_is_fitted,
    validate_data,
)

_LOG_2PI = np.log(2.0 * np.pi)
# Values derived from fitted attributes (see BaseDestructor._derived).
_DERIVED = weakref.WeakKeyDictionary()
# Constructor parameter names of each class (see BaseDestructor._get_param_names).
_PARAM_NAMES = weakref.WeakKeyDictionary()


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


# What each optional capability describes: a subclass that overrides one of
# these methods below the class that defined the capability loses it.
_DESCRIBES = {
    "_fused_steps": ("_forward", "_inverse"),
    "_fit_stream": ("_fit", "_fit_forward", "_forward", "_inverse"),
    "_refit_forward": ("_fit", "_fit_forward", "_forward", "_inverse"),
    "_output_bounds": ("_forward",),
    "_n_parameters": ("_forward", "_inverse"),
    "_marginal_log_density": ("_forward", "_inverse"),
    "_log_density": ("_forward",),
}


def capability(layer, name):
    """The layer's bound capability ``name``, or None when it has none.

    Parameters
    ----------
    layer : BaseDestructor
        Any destructor.
    name : str
        A capability named in the module docstring, e.g. ``"_fused_steps"``.

    Returns
    -------
    method : callable or None
        ``None`` if no class of ``layer`` defines it, or if a subclass below
        the defining class overrides a method the capability describes.

    Examples
    --------
    >>> from destructors import MarginalGaussianizer
    >>> from destructors.base import capability
    >>> capability(MarginalGaussianizer(), "_fused_steps") is not None
    True
    >>> class Shifted(MarginalGaussianizer):
    ...     def _forward(self, X):
    ...         Z, log_det = super()._forward(X)
    ...         return Z + 1.0, log_det
    >>> capability(Shifted(), "_fused_steps") is None  # its map is its own
    True
    """
    cls = type(layer)
    owner = next((k for k in cls.__mro__ if name in vars(k)), None)
    if owner is None:
        return None
    if any(getattr(cls, m, None) is not getattr(owner, m, None) for m in _DESCRIBES[name]):
        return None
    return getattr(layer, name)


def fused_steps(layer):
    """The fused description of a fitted layer, or None if it has none.

    Parameters
    ----------
    layer : BaseDestructor
        A fitted destructor.

    Returns
    -------
    steps : list of MarginalStep or AffineStep, or None
        The steps whose composition is the layer's forward map.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors import PCARotation
    >>> from destructors.base import fused_steps
    >>> steps = fused_steps(PCARotation().fit(np.eye(3)))
    >>> type(steps[0]).__name__
    'AffineStep'
    """
    describe = capability(layer, "_fused_steps")
    return None if describe is None else describe()


def _dask_aware(method):
    """Send a Dask array to the Dask front end's function of the same name.

    The one place where the array type picks the implementation: the
    decorated method is the NumPy path.
    """

    @functools.wraps(method)
    def dispatch(self, X, *args, **kwargs):
        if _is_dask(X):
            return getattr(_dask_backend(), method.__name__)(self, X)
        return method(self, X, *args, **kwargs)

    return dispatch


def _check_finite_output(values, what):
    """Raise instead of letting an overflow leak out as inf or NaN.

    ``values`` is the output of a method (``what``) on finite, validated
    input, so a non-finite value can only come from float64 overflow: a
    value beyond +-1.8e308 becomes inf, and a difference or product of two
    such infinities (``inf - inf``, ``0 * inf``) becomes NaN.
    """
    finite = np.isfinite(values)
    if np.all(finite):
        return
    finite = np.asarray(finite)
    bad = ~finite.reshape(finite.shape[0], -1).all(axis=1) if finite.ndim else ~finite[None]
    rows = f"{int(bad.sum())} of {bad.size} rows, the first row {int(np.argmax(bad))}"
    if what == "sample":
        cause = (
            "the fitted inverse map overflows float64 at these draws (the model "
            "spans values near the float64 limit); refit on rescaled data."
        )
    elif what == "fit":
        cause = (
            "the training data, mapped through the layers fitted so far, overflow "
            "float64; rescale the training data."
        )
    else:
        cause = (
            "the input lies so far outside the training range that the result "
            "overflows float64 (to inf, or to NaN where infinities cancel); "
            "rescale the input, or fit on data that covers it."
        )
    raise ValueError(f"{what} produced non-finite values ({rows}): {cause}")


class FeatureWarning(UserWarning):
    """A warning about some features of the data a layer was fitted on.

    A layer inside a model sees either the data's columns (the first layer)
    or latent features, so it names features by index and attaches the
    distinct values that prompted the warning. The top-level ``fit``
    (:meth:`BaseDestructor.fit`) names by its column a feature whose values
    are all values of that column of the data, and reports each warning
    once.

    Parameters
    ----------
    template : str
        The message, with ``{features}`` where the features are named.
    features : list of int
        Indices of the features.
    values : list of ndarray or None, default=None
        The distinct values of each feature (None: unknown, never named).

    Examples
    --------
    >>> import numpy as np
    >>> from destructors.base import FeatureWarning
    >>> w = FeatureWarning("{features} are constant.", [2], [np.array([1.0])])
    >>> str(w)
    'Features [2] are constant.'
    >>> str(w.named(np.array(["a", "b", "c"]), np.ones((3, 3))))
    "Features ['c'] (columns [2]) are constant."
    """

    def __init__(self, template, features, values=None):
        self.template = template
        self.features = [int(j) for j in features]
        self.values = values
        super().__init__(template.format(features=f"Features {self.features}"))

    def named(self, names, X):
        """The same warning, naming the features that are columns of ``X``.

        Parameters
        ----------
        names : ndarray of str or None
            Column names of the data.
        X : ndarray of shape (n_samples, n_features)
            The data.

        Returns
        -------
        warning : FeatureWarning
            Itself when no feature can be named.
        """
        if names is None or self.values is None:
            return self
        labels, columns = [], []
        for j, values in zip(self.features, self.values, strict=True):
            if j < X.shape[1] and np.all(np.isin(values, X[:, j])):
                labels.append(str(names[j]))
                columns.append(j)
            else:
                labels.append(j)
        if not columns:
            return self
        named = FeatureWarning(self.template, self.features, self.values)
        named.args = (self.template.format(features=f"Features {labels} (columns {columns})"),)
        return named


# Frames in these folders are the library's (and scikit-learn's wrappers of
# fit); a warning is attributed to the first frame outside them.
_INTERNAL_DIRS = tuple(
    os.path.dirname(os.path.abspath(path)) + os.sep
    for path in (__file__, sys.modules["sklearn"].__file__)
)


def _caller_stacklevel():
    """``stacklevel`` that points a warning at the user's line.

    The depth from a warning to the user's call differs by path (a subclass
    overriding ``fit``, the Dask dispatch, scikit-learn's fit context), so it
    is counted, not written down: the first frame outside this package and
    scikit-learn, as seen from the function that calls ``warnings.warn``.
    """
    frame = sys._getframe(2)
    level = 2
    while frame is not None and frame.f_code.co_filename.startswith(_INTERNAL_DIRS):
        frame = frame.f_back
        level += 1
    return level


def _report_once(caught, names, X):
    """Re-issue recorded warnings once each, features named where they are columns.

    A feature warning repeats in later layers of a deep model (its layers
    see the same degenerate feature, mapped): one key per template and
    feature indices reports it once, as the first layer, which sees the
    data's columns, worded it.
    """
    seen = set()
    for record in caught:
        message = record.message
        if isinstance(message, FeatureWarning):
            message = message.named(names, X)
            key = (type(message), message.template, tuple(message.features))
        else:
            key = (type(message), str(message))
        if key not in seen:
            seen.add(key)
            warnings.warn(message, stacklevel=_caller_stacklevel())


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

    @classmethod
    def _get_param_names(cls):
        # scikit-learn reads the constructor's signature on every call; a deep
        # model's stacking loop clones, seeds and validates a few layers a
        # layer (some 0.7 ms of signature reading), so each class's names
        # are read once.
        names = _PARAM_NAMES.get(cls)
        if names is None:
            names = _PARAM_NAMES[cls] = tuple(super()._get_param_names())
        return list(names)

    # -- derived state -------------------------------------------------------
    def _derived(self, name, build, *deps):
        """A value computed from fitted attributes, cached but never pickled.

        The cache is keyed on the identity of ``deps`` (the fitted objects
        it is computed from), so replacing or truncating them (a new
        ``layers_`` list, say) rebuilds it instead of serving a stale copy.
        It lives outside the estimator's ``__dict__``, so it is neither
        pickled, nor copied, nor seen as a change of state.
        """
        cache = _DERIVED.setdefault(self, {})
        hit = cache.get(name)
        if hit is not None and len(hit[0]) == len(deps) and all(
            a is b for a, b in zip(hit[0], deps, strict=True)
        ):
            return hit[1]
        value = build()
        cache[name] = (deps, value)
        return value

    # -- fitting -----------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    @_dask_aware
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
        X = validate_data(
            self, X, dtype=np.float64, ensure_min_samples=2, ensure_all_finite=True
        )
        # The layers' warnings, collected so that each is reported once (a
        # deep model's layers repeat them) and names the data's columns.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self._fit(X)
        _report_once(caught, getattr(self, "feature_names_in_", None), X)
        return self

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

    def _validate_latent(self, Z):
        """Validate latent points: named, if at all, as ``transform``'s output.

        Latent points are not data: a DataFrame of them carries the output
        names of :meth:`transform` (``get_feature_names_out()``), and an
        array none, so neither is checked against the data's column names.
        """
        check_is_fitted(self)
        names = _get_feature_names(Z)
        if names is not None and hasattr(self, "get_feature_names_out"):
            expected = np.asarray(self.get_feature_names_out(), dtype=object)
            if names.shape != expected.shape or not np.all(names == expected):
                raise ValueError(
                    f"{type(self).__name__}.inverse_transform takes latent points, whose "
                    f"columns are named as transform's output {_shown(expected)}; got "
                    f"columns {_shown(names)}."
                )
        Zv = check_array(Z, dtype=np.float64, ensure_all_finite=True)
        if Zv.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {Zv.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return Zv

    def _data_container(self, X, original=None):
        """``X`` in data space as ``set_output`` asks: named by the data's columns."""
        adapter = _get_container_adapter("transform", self)
        if adapter is None:  # "default": the array itself
            return X
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            names = np.asarray([f"x{i}" for i in range(X.shape[1])], dtype=object)
        return adapter.create_container(X, original, columns=names)

    @staticmethod
    def _out_dtype(X):
        dtype = getattr(X, "dtype", None)
        return np.float32 if dtype == np.float32 else np.float64

    # -- maps ----------------------------------------------------------------
    @_dask_aware
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
        Xv = self._validate(X)
        with np.errstate(over="ignore", invalid="ignore"):  # reported below
            Z, log_det = self._forward(Xv)
        _check_finite_output(Z, "transform")
        _check_finite_output(log_det, "transform")
        return Z, log_det

    @_dask_aware
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
        Z, _ = self.transform_log_det(X)
        return Z.astype(self._out_dtype(X), copy=False)

    @_dask_aware
    def inverse_transform(self, X):
        """Map latent points back to data space.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)
            Latent points; a Dask array gives a lazy Dask array.

        Returns
        -------
        X_original : ndarray or DataFrame of shape (n_samples, n_features)
            Points in data space, with the dtype of the input; a DataFrame
            with the data's column names (and the input's index) after
            ``set_output(transform="pandas")``.

        Examples
        --------
        >>> import pandas as pd
        >>> from destructors import PCARotation
        >>> df = pd.DataFrame({"a": [0.0, 1.0, 3.0], "b": [1.0, 0.0, 4.0]})
        >>> rot = PCARotation().set_output(transform="pandas").fit(df)
        >>> rot.inverse_transform(rot.transform(df)).columns.tolist()
        ['a', 'b']
        """
        Zv = self._validate_latent(X)
        with np.errstate(over="ignore", invalid="ignore"):  # reported below
            Xo, _ = self._inverse(Zv)
        _check_finite_output(Xo, "inverse_transform")
        return self._data_container(Xo.astype(self._out_dtype(X), copy=False), X)

    # -- density -------------------------------------------------------------
    @_dask_aware
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
        log_density = self._score_rows(self._validate(X))
        _check_finite_output(log_density, "score_samples")
        return log_density

    def _score_rows(self, X):
        """``log N(f(x)) + log|det J|`` of validated rows, unchecked.

        The one computation of a log-density, so every path that scores
        (in memory, Dask blocks) gives the same bits.
        """
        score = capability(self, "_log_density")
        with np.errstate(over="ignore", invalid="ignore"):  # the callers check
            if score is not None:  # chunk by chunk: the latent array is never stored
                return score(X)
            Z, log_det = self._forward(X)
            return standard_normal_log_pdf(Z) + log_det

    @_dask_aware
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
        return float(np.mean(self.score_samples(X)))

    # -- model criteria and marginals ------------------------------------------
    @property
    def n_parameters_(self):
        """Number of free parameters the fit estimated from the data.

        Each layer declares its own count (an ``_n_parameters`` method, see
        the module docstring) and a composite or deep model sums those of its
        layers: a :class:`~destructors.MarginalGaussianizer` counts one per
        knot per feature, a rotation fitted to the data ``d (d - 1) / 2``
        for its orthogonal axes plus ``d`` for the mean it centres on (``d``
        more scales when whitening; ``d * d + d`` for ICA's general matrix),
        a random rotation none (it is drawn, not estimated), and a
        :class:`~destructors.GaussianMixtureDestructor` as many as its
        ``GaussianMixture``. A model with a layer that declares no count
        has no ``n_parameters_`` (``AttributeError``).

        Examples
        --------
        >>> import numpy as np
        >>> from destructors import PCARotation
        >>> PCARotation().fit(np.random.default_rng(0).normal(size=(50, 3))).n_parameters_
        6
        """
        check_is_fitted(self)
        count = capability(self, "_n_parameters")
        if count is None:
            raise AttributeError(
                f"{type(self).__name__} does not declare its number of parameters (a "
                "layer declares it with an `_n_parameters` method), so n_parameters_, "
                "bic and aic are not available for it."
            )
        return int(count())

    def bic(self, X):
        """Bayesian information criterion of the model on ``X`` (lower is better).

        ``-2 * sum_i log p(x_i) + n_parameters_ * log(n_samples)``, as
        :meth:`sklearn.mixture.GaussianMixture.bic`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, usually the training data.

        Returns
        -------
        bic : float
            The criterion.

        Examples
        --------
        >>> import numpy as np
        >>> from destructors import GaussianMixtureDestructor
        >>> X = np.random.default_rng(0).normal(size=(200, 2))
        >>> layer = GaussianMixtureDestructor(n_components=2, random_state=0).fit(X)
        >>> bool(np.isclose(layer.bic(X), layer.mixture_.bic(X)))
        True
        """
        return self._criterion(X, lambda n: np.log(n))

    def aic(self, X):
        """Akaike information criterion of the model on ``X`` (lower is better).

        ``-2 * sum_i log p(x_i) + 2 * n_parameters_``, as
        :meth:`sklearn.mixture.GaussianMixture.aic`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, usually the training data.

        Returns
        -------
        aic : float
            The criterion.

        Examples
        --------
        >>> import numpy as np
        >>> from destructors import MarginalGaussianizer
        >>> X = np.random.default_rng(0).normal(size=(400, 2))
        >>> mg = MarginalGaussianizer(n_knots=10).fit(X)
        >>> bool(np.isclose(mg.aic(X), -2 * mg.score_samples(X).sum() + 2 * 20))
        True
        """
        return self._criterion(X, lambda n: 2.0)

    def _criterion(self, X, penalty):
        """``-2 * log-likelihood + n_parameters_ * penalty(n_samples)``."""
        n_parameters = self.n_parameters_  # fails first, before any scoring
        log_density = self.score_samples(X)
        n = log_density.shape[0]
        return float(-2.0 * np.sum(log_density) + n_parameters * penalty(n))

    def marginal_score_samples(self, X, features):
        """Exact log-density of the marginal distribution of some features.

        Available where the marginal has a closed form: for the whole set
        of features (any model), and for any subset when the model is made
        of layers that each map every feature on its own
        (:class:`~destructors.MarginalGaussianizer`,
        :class:`~destructors.ScalerDestructor`), optionally ending in
        one layer whose own marginals are closed-form
        (:class:`~destructors.GaussianMixtureDestructor`: the marginal of a
        Gaussian mixture is the mixture of its components' marginals). After
        a layer that mixes features (any rotation), the marginal is an
        integral over the other features with no closed form: so RBIG and
        other deep models raise ``NotImplementedError``, even though their
        first layer is marginal.

        Parameters
        ----------
        X : array-like of shape (n_samples, len(features))
            Values of the chosen features only, in the order of ``features``.
        features : sequence of int or str
            Distinct feature indices, or names when the model was fitted on
            a DataFrame with string column names.

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
            ``log p(x_features)`` at each row.

        Raises
        ------
        NotImplementedError
            Where the marginal has no closed form (the message names the
            layer in the way).

        Examples
        --------
        >>> import numpy as np
        >>> from scipy.stats import norm
        >>> from destructors import GaussianMixtureDestructor
        >>> X = np.random.default_rng(0).normal(size=(500, 3)) * [1.0, 2.0, 3.0]
        >>> layer = GaussianMixtureDestructor(n_components=1).fit(X)
        >>> x1 = np.array([[0.5], [4.0]])
        >>> sd = np.sqrt(layer.mixture_.covariances_[0, 1, 1])
        >>> mean = layer.mixture_.means_[0, 1]
        >>> bool(np.allclose(layer.marginal_score_samples(x1, [1]),
        ...                  norm.logpdf(x1[:, 0], mean, sd)))
        True
        """
        check_is_fitted(self)
        features = self._feature_indices(features)
        X = check_array(X, dtype=np.float64, ensure_all_finite=True, ensure_min_samples=1)
        if X.shape[1] != len(features):
            raise ValueError(
                f"X has {X.shape[1]} columns but {len(features)} features were named: "
                "X holds the values of the named features only, in their order."
            )
        with np.errstate(over="ignore", invalid="ignore"):  # reported below
            if np.array_equal(np.sort(features), np.arange(self.n_features_in_)):
                # Every feature: the marginal is the model's own density.
                X_all = np.empty_like(X)
                X_all[:, features] = X
                Z, log_det = self._forward(X_all)
                log_density = standard_normal_log_pdf(Z) + log_det
            else:
                marginal = capability(self, "_marginal_log_density")
                if marginal is None:
                    raise NotImplementedError(
                        f"The marginal density of a subset of features is not available "
                        f"for {type(self).__name__}: it has no closed form there (see "
                        "marginal_score_samples)."
                    )
                log_density = marginal(X, features, None)
        _check_finite_output(log_density, "marginal_score_samples")
        return log_density

    def _feature_indices(self, features):
        """Distinct feature indices from indices or fitted feature names."""
        d = self.n_features_in_
        names = getattr(self, "feature_names_in_", None)
        if isinstance(features, (str, numbers.Integral)) or not hasattr(features, "__len__"):
            raise ValueError(
                f"features must be a sequence of feature indices or names, got {features!r}."
            )
        indices = []
        for f in features:
            if isinstance(f, str):
                if names is None or f not in names:
                    raise ValueError(f"Unknown feature name {f!r}: the model was fitted on "
                                     + ("unnamed features." if names is None
                                        else f"{list(names)}."))
                indices.append(int(np.flatnonzero(names == f)[0]))
            elif isinstance(f, numbers.Integral) and not isinstance(f, (bool, np.bool_)):
                if not 0 <= f < d:
                    raise ValueError(f"Feature index {f} is out of range for {d} features.")
                indices.append(int(f))
            else:
                raise ValueError(f"A feature must be an index or a name, got {f!r}.")
        if not indices or len(set(indices)) != len(indices):
            raise ValueError(f"features must be distinct and at least one, got {features!r}.")
        return np.asarray(indices)

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
        X : ndarray or DataFrame of shape (n_samples, n_features)
            Samples in data space; a DataFrame with the data's column names
            after ``set_output(transform="pandas")``.
        """
        check_is_fitted(self)
        # bool is an Integral, but sample(True) is a mistake, not one sample.
        if (
            isinstance(n_samples, (bool, np.bool_))
            or not isinstance(n_samples, numbers.Integral)
            or n_samples < 1
        ):
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
        if chunks is not None:
            # A number of rows per block (alone or as a 1-tuple) must be >= 1,
            # or Dask's -1 (one block); Dask divides by it, so 0 would surface
            # as a ZeroDivisionError. Strings and explicit block sizes are
            # Dask's to check.
            rows = chunks[0] if isinstance(chunks, (tuple, list)) and len(chunks) == 1 else chunks
            if isinstance(rows, (bool, np.bool_)) or (
                isinstance(rows, numbers.Real) and rows != -1 and not rows >= 1
            ):
                raise ValueError(
                    "chunks must be a positive number of rows per block (or -1 for "
                    f"one block, or a Dask chunks spec such as 'auto'), got {chunks!r}."
                )
            return _dask_backend().sample(self, int(n_samples), random_state, chunks)
        Z = _standard_normal(random_state, (int(n_samples), self.n_features_in_))
        with np.errstate(over="ignore", invalid="ignore"):  # reported below
            X, _ = self._inverse(Z)
        _check_finite_output(X, "sample")
        return self._data_container(X)

    def _more_tags(self):  # scikit-learn < 1.6
        return {"preserves_dtype": [np.float64, np.float32]}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def _shown(names, most=6):
    """Column names for a message, the first few of a long list."""
    names = [str(n) for n in names]
    more = f", ... ({len(names)} in all)" if len(names) > most else ""
    return "[" + ", ".join(repr(n) for n in names[:most]) + more + "]"


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
