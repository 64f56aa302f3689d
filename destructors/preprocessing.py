"""scikit-learn scalers as destructors: their Jacobians counted in the density.

``Pipeline([StandardScaler(), RBIG()]).score_samples`` is the density of the
*scaled* data: the pipeline drops the scaler's Jacobian, so models behind
different scalers cannot be compared (and ``GridSearchCV`` picks whichever
scaler shrinks the data most). :class:`ScalerDestructor` wraps a
scikit-learn transformer whose map is a per-feature affine function
``t(x) = (x - c) * m`` (``StandardScaler``, ``MinMaxScaler``,
``MaxAbsScaler``, ``RobustScaler``, or any other with that form): it fits
the transformer, reads the affine map off the fitted transformer itself and
reports ``log|det J| = sum_j log|m_j|``, so a
:class:`~destructors.CompositeDestructor` that contains it is the exact
density in data units. :func:`make_destructor_pipeline` builds such a chain.

The map is recognised by what the fitted transformer does, not by its
class: two evaluations per feature give ``c`` and ``m``, and the map is
accepted only if it reproduces the transformer's output on the training
data and on points outside it, feature by feature. A transformer of any
other form (``QuantileTransformer``, ``PowerTransformer``, ``PCA``) is
refused with a ValueError naming it; write a destructor for it instead (see
"Writing a layer" in the README).
"""

import numpy as np
from sklearn.base import OneToOneFeatureMixin, clone

from ._fused import AffineStep
from .base import BaseDestructor
from .registry import register_layer

__all__ = ["ScalerDestructor", "as_destructor", "make_destructor_pipeline"]

# The affine map read off the transformer must reproduce its output to this
# relative precision: far above float64 rounding of a scaler (about 1e-16
# per operation), far below any non-linear transformer's departure.
_AFFINE_RTOL = 1e-9


def _affine_form(transformer, X, name):
    """``(centre, multiplier)`` with ``transform(x) = (x - centre) * multiplier``.

    Raises a ValueError naming the transformer when its fitted map is not of
    that form (not per-feature, not affine, or not invertible).
    """
    d = X.shape[1]

    def apply(A):
        out = transformer.transform(A)
        if hasattr(out, "toarray"):  # a sparse result
            out = out.toarray()
        out = np.asarray(out, dtype=np.float64)
        if out.shape != A.shape:
            raise ValueError(
                f"{name} maps {A.shape[1]} features to an output of shape {out.shape}: "
                "only a transformer that maps each feature to itself by an affine map "
                "has a known log|det J|."
            )
        return out

    lo, hi = X.min(axis=0), X.max(axis=0)
    # Two distinct abscissae per feature (a constant feature gets a unit step).
    hi = np.where(hi > lo, hi, lo + np.maximum(1.0, np.abs(lo)))
    t_lo, t_hi = apply(np.vstack([lo, hi]))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        multiplier = (t_hi - t_lo) / (hi - lo)
        centre = lo - t_lo / multiplier
    if not (np.all(np.isfinite(multiplier)) and np.all(multiplier != 0)
            and np.all(np.isfinite(centre))):
        raise ValueError(
            f"{name} maps some feature to a constant (or overflows): it is not "
            "invertible, so the density of the chain is not defined."
        )
    # Check the form where it matters: the training rows, points beyond them,
    # and rows that set each feature to its extremes in turn (a transformer
    # that mixes features fails these).
    span = hi - lo
    probes = [X, np.vstack([lo - span, hi + span, lo - 10.0 * span, hi + 10.0 * span])]
    flip = np.where(np.arange(d) % 2 == 0, lo, hi)
    probes.append(np.vstack([flip, np.where(np.arange(d) % 2 == 0, hi, lo)]))
    for A in probes:
        got = apply(A)
        expected = (A - centre) * multiplier
        scale = np.abs(multiplier) * (np.abs(A - centre) + span)
        if not np.all(np.abs(got - expected) <= _AFFINE_RTOL * scale):
            raise ValueError(
                f"{name} is not a per-feature affine map t(x) = (x - c) * m, so its "
                "log|det J| is unknown and a chain through it would report a wrong "
                "density. Affine scalers (StandardScaler, MinMaxScaler, MaxAbsScaler, "
                "RobustScaler) are accepted; for a non-linear map use a destructor "
                "(MarginalGaussianizer, Boundary) or write one (README: 'Writing a "
                "layer')."
            )
    return centre, multiplier


@register_layer("scaler", "layer")
class ScalerDestructor(OneToOneFeatureMixin, BaseDestructor):
    """A scikit-learn affine scaler as a destructor that reports its Jacobian.

    The wrapped transformer is cloned and fitted; its fitted map, which must
    be ``t(x) = (x - c) * m`` feature by feature, is read off the fitted
    transformer (see the module docstring) and applied with
    ``log|det J| = sum_j log|m_j|``. On its own it is the density of the
    scaled data as a standard normal, which is rarely a good model: use it
    as the first layer of a :class:`~destructors.CompositeDestructor` (or
    :func:`make_destructor_pipeline`), whose density then stays exact in
    data units.

    Parameters
    ----------
    scaler : transformer or None, default=None
        An unfitted scikit-learn transformer with ``fit`` and ``transform``
        whose fitted map is per-feature affine; ``None`` means
        ``StandardScaler()``. It is cloned, never fitted in place.

    Attributes
    ----------
    centre_ : ndarray of shape (n_features,)
        ``c`` of the map ``(x - c) * m``.
    multiplier_ : ndarray of shape (n_features,)
        ``m`` of the map.
    log_det_ : float
        ``sum_j log|m_j|``, the log|det J| of every row.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of str
        Column names seen during fit, when they were strings.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.preprocessing import MinMaxScaler
    >>> from destructors.preprocessing import ScalerDestructor
    >>> X = np.array([[0.0, 10.0], [2.0, 30.0], [4.0, 50.0]])
    >>> layer = ScalerDestructor(MinMaxScaler()).fit(X)
    >>> layer.transform(X)[2].tolist()
    [1.0, 1.0]
    >>> bool(np.isclose(layer.log_det_, -np.log(4.0) - np.log(40.0)))
    True

    A transformer that is not per-feature affine is refused by name:

    >>> from sklearn.preprocessing import QuantileTransformer
    >>> ScalerDestructor(QuantileTransformer(n_quantiles=3)).fit(X)
    Traceback (most recent call last):
    ...
    ValueError: QuantileTransformer(n_quantiles=3) is not a per-feature affine map ...
    """

    _parameter_constraints: dict = {"scaler": "no_validation"}

    def __init__(self, scaler=None):
        self.scaler = scaler

    def _template(self):
        if self.scaler is None:
            from sklearn.preprocessing import StandardScaler

            return StandardScaler()
        if not (hasattr(self.scaler, "fit") and hasattr(self.scaler, "transform")):
            raise ValueError(
                f"ScalerDestructor needs a scikit-learn transformer (with fit and "
                f"transform), got {self.scaler!r}."
            )
        return self.scaler

    def _fit(self, X):
        template = self._template()
        name = repr(template)
        scaler = clone(template)
        if hasattr(scaler, "set_output"):
            scaler.set_output(transform="default")  # arrays in, arrays out
        scaler.fit(X)
        # Only the arrays of the map are kept (a safe model file holds them;
        # it cannot hold a scikit-learn estimator).
        self.centre_, self.multiplier_ = _affine_form(scaler, X, name)
        self._inverse_multiplier = 1.0 / self.multiplier_
        self.log_det_ = float(np.sum(np.log(np.abs(self.multiplier_))))
        return self

    # The arithmetic is that of the fused kernel's affine step with a diagonal
    # matrix (off-diagonal products are exact zeros), so the two paths agree
    # to the bit.
    def _forward(self, X):
        return (X - self.centre_) * self.multiplier_, np.full(X.shape[0], self.log_det_)

    def _inverse(self, Z):
        return Z * self._inverse_multiplier + self.centre_, np.full(Z.shape[0], -self.log_det_)

    def _fused_steps(self):
        d = self.centre_.shape[0]
        return [AffineStep(np.diag(self.multiplier_), np.diag(self._inverse_multiplier),
                           self.centre_, np.zeros(d), self.log_det_)]

    def _n_parameters(self):
        # A centre and a scale per feature, as the scalers estimate them
        # (MaxAbsScaler's centre is fixed at 0, and is counted all the same).
        return 2 * self.centre_.shape[0]

    def _marginal_log_density(self, X, features, rest):
        # Feature j of the output depends on feature j of the input only.
        Z = (X - self.centre_[features]) * self.multiplier_[features]
        log_det = float(np.sum(np.log(np.abs(self.multiplier_[features]))))
        if rest is None:
            return -0.5 * np.sum(Z * Z + np.log(2.0 * np.pi), axis=1) + log_det
        return rest(Z, features) + log_det


def as_destructor(step, owner="CompositeDestructor", index=0):
    """A destructor for one step of a chain: itself, or a wrapped scaler.

    Parameters
    ----------
    step : destructor or transformer
        A :class:`~destructors.base.BaseDestructor` (returned as is) or a
        scikit-learn transformer (returned as :class:`ScalerDestructor`; its
        map is checked when the chain is fitted).
    owner : str, default="CompositeDestructor"
        Name of the chain, for the message.
    index : int, default=0
        Position of the step, for the message.

    Returns
    -------
    destructor : BaseDestructor
        Unfitted.

    Raises
    ------
    ValueError
        When ``step`` is neither a destructor nor a transformer.

    Examples
    --------
    >>> from sklearn.preprocessing import StandardScaler
    >>> from destructors.preprocessing import as_destructor
    >>> as_destructor(StandardScaler())
    ScalerDestructor(scaler=StandardScaler())
    >>> as_destructor("passthrough")
    Traceback (most recent call last):
    ...
    ValueError: CompositeDestructor layer 0 is 'passthrough', not a destructor ...
    """
    if isinstance(step, BaseDestructor):
        return step
    if hasattr(step, "fit") and hasattr(step, "transform") and not isinstance(step, type):
        return ScalerDestructor(step)
    raise ValueError(
        f"{owner} layer {index} is {step!r}, not a destructor or a scikit-learn "
        "transformer: a layer must be an invertible map that reports its log|det J| "
        "(a BaseDestructor, or an affine scaler such as StandardScaler), or its "
        "density would be wrong."
    )


def make_destructor_pipeline(*steps):
    """Chain scalers and destructors into one exact density model.

    The replacement for ``make_pipeline(scaler, RBIG())``, whose
    ``score_samples`` forgets the scaler's Jacobian: here each scikit-learn
    transformer is wrapped in :class:`ScalerDestructor`, so the chain's
    ``score_samples`` is the density in data units, and ``sample`` and
    ``inverse_transform`` go back through every step.

    Parameters
    ----------
    *steps : destructors or scikit-learn transformers
        In the order they are applied to data.

    Returns
    -------
    model : CompositeDestructor
        Unfitted.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.preprocessing import StandardScaler
    >>> from destructors import RBIG
    >>> from destructors.preprocessing import make_destructor_pipeline
    >>> rng = np.random.default_rng(0)
    >>> X, X_new = rng.gamma(2.0, size=(2, 400, 2)) * [1.0, 1000.0]
    >>> rbig = RBIG(max_layers=5, early_stopping=False, tol=None, random_state=0)
    >>> model = make_destructor_pipeline(StandardScaler(), rbig).fit(X)

    RBIG's first layer is a marginal Gaussianization, unchanged by an increasing
    affine map of each feature, so the chain is RBIG's own density in data units:

    >>> plain = rbig.fit(X)
    >>> bool(np.allclose(model.score_samples(X_new), plain.score_samples(X_new)))
    True
    """
    from .composite import CompositeDestructor

    if not steps:
        raise ValueError("make_destructor_pipeline needs at least one step.")
    return CompositeDestructor(
        [as_destructor(step, "make_destructor_pipeline", i) for i, step in enumerate(steps)]
    )
