"""Bounded and positive features: log and logit maps onto the real line.

A density model of the real line gives mass to impossible values: samples
of an interest rate below zero, of a non-negative measurement below zero.
:class:`Boundary` maps each feature with a support ``(a, b)`` onto the
whole line before the other layers see it,

- ``y = log(x - a)`` for a feature bounded below only,
- ``y = -log(b - x)`` for one bounded above only,
- ``y = log(x - a) - log(b - x)`` (a logit) for one bounded on both sides,
- ``y = x`` for an unbounded one,

with the exact log|det J| of each, so a chain
``CompositeDestructor([Boundary(...), RBIG()])`` is a density on the box
and its samples stay inside it. The layer is opt-in: ``Boundary()`` with no
bounds is the identity.
"""

import numbers

import numpy as np
from sklearn.base import OneToOneFeatureMixin

from ._compat import Interval, StrOptions
from .base import BaseDestructor
from .registry import register_layer

__all__ = ["Boundary"]

_RULES = ("auto", "data")


def _detect(X, rule, margin, side):
    """Bounds detected from the training data by ``rule`` (see :class:`Boundary`).

    ``side`` is -1 for lower bounds and +1 for upper bounds; NaN means none.
    """
    lo, hi = X.min(axis=0), X.max(axis=0)
    span = hi - lo
    # A constant feature has no spread to widen by: use its magnitude (or 1).
    span = np.where(span > 0, span, np.maximum(np.abs(lo), 1.0))
    if rule == "data":
        return lo - margin * span if side < 0 else hi + margin * span
    # "auto": a feature whose values all lie on one side of zero is bounded
    # there, at zero when no value touches it, else widened by the margin so
    # the zeros sit strictly inside the support.
    if side < 0:
        return np.where(lo > 0, 0.0, np.where(lo == 0, -margin * span, np.nan))
    return np.where(hi < 0, 0.0, np.where(hi == 0, margin * span, np.nan))


def _declared(value, d, what):
    """Per-feature bounds from a declared number or array (NaN or inf: none)."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        bounds = np.full(d, float(value))
    else:
        try:
            bounds = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"{what} must be None, 'auto', 'data', a number or one number per "
                f"feature, got {value!r}."
            ) from None
        if bounds.ndim == 0:
            bounds = np.full(d, float(bounds))
        if bounds.shape != (d,):
            raise ValueError(
                f"{what} has {bounds.size} values, but the data have {d} features: "
                "declare one bound per feature (NaN for none)."
            )
    return np.where(np.isinf(bounds), np.nan, bounds)


@register_layer("boundary", "layer")
class Boundary(OneToOneFeatureMixin, BaseDestructor):
    """Map bounded and positive features onto the real line (log, logit).

    Each feature with a lower bound ``a`` and/or an upper bound ``b`` is
    mapped by ``log(x - a)``, ``-log(b - x)`` or ``log(x - a) - log(b - x)``
    (see the module docstring); features without bounds pass unchanged.
    Put it first in a chain, ``CompositeDestructor([Boundary(lower="auto"),
    RBIG()])``: the chain's density is zero outside the bounds and every
    sample lies inside them (on a bound only where float64 rounds a value
    within one unit in the last place of it).

    Parameters
    ----------
    lower, upper : None, float, array-like of shape (n_features,), "auto" or "data"
        The bounds of the support, declared or detected from the training
        data:

        - ``None``: no bound;
        - a number, or one number per feature (``NaN`` or an infinity for
          none): declared bounds; training data on or beyond them raise a
          ValueError;
        - ``"auto"``: a feature whose training values are all positive
          (``lower``) or all negative (``upper``) is bounded at 0; one whose
          values are all non-negative and touch 0 (non-positive, for
          ``upper``) gets the bound ``-margin * range`` (``+margin * range``)
          so the zeros lie inside; any other feature gets none;
        - ``"data"``: every feature is bounded at its training minimum
          (maximum) widened by ``margin * range``.

        ``range`` is the training maximum minus minimum (for a constant
        feature, its magnitude, at least 1).
    margin : float, default=0.1
        Widening of detected bounds, as a fraction of each feature's range.

    Attributes
    ----------
    lower_, upper_ : ndarray of shape (n_features,)
        The bounds in use; ``NaN`` where a feature has none.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of str
        Column names seen during fit, when they were strings.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors import RBIG, CompositeDestructor
    >>> from destructors.boundary import Boundary
    >>> rng = np.random.default_rng(0)
    >>> X = np.column_stack([rng.lognormal(size=500), rng.beta(2, 5, size=500)])
    >>> model = CompositeDestructor([Boundary(lower=0.0, upper=[np.nan, 1.0]),
    ...                              RBIG(max_layers=5, early_stopping=False,
    ...                                   tol=None, random_state=0)]).fit(X)
    >>> S = model.sample(2000, random_state=0)
    >>> bool((S[:, 0] > 0).all() and ((S[:, 1] > 0) & (S[:, 1] < 1)).all())
    True
    >>> Boundary(lower="auto").fit(X).lower_.tolist()  # both columns are positive
    [0.0, 0.0]

    Data outside declared bounds are refused:

    >>> Boundary(upper=0.5).fit(X)
    Traceback (most recent call last):
    ...
    ValueError: Boundary: feature 0 has values outside its support ...
    """

    _parameter_constraints: dict = {
        "lower": [None, StrOptions(set(_RULES)), numbers.Real, "array-like"],
        "upper": [None, StrOptions(set(_RULES)), numbers.Real, "array-like"],
        "margin": [Interval(numbers.Real, 0, None, closed="neither")],
    }

    def __init__(self, lower=None, upper=None, margin=0.1):
        self.lower = lower
        self.upper = upper
        self.margin = margin

    def _bounds(self, value, X, side, what):
        d = X.shape[1]
        if value is None:
            return np.full(d, np.nan)
        if isinstance(value, str):
            return _detect(X, value, self.margin, side)
        return _declared(value, d, what)

    def _fit(self, X):
        lower = self._bounds(self.lower, X, -1, "lower")
        upper = self._bounds(self.upper, X, +1, "upper")
        both = ~np.isnan(lower) & ~np.isnan(upper)
        crossed = both & (lower >= np.where(both, upper, np.inf))
        if crossed.any():
            j = int(np.flatnonzero(crossed)[0])
            raise ValueError(
                f"Boundary: feature {j} has lower bound {float(lower[j])!r} not below its "
                f"upper bound {float(upper[j])!r}."
            )
        self.lower_, self.upper_ = lower, upper
        self._check_support(X, "fit")
        return self

    def _check_support(self, X, where):
        """Raise when a value lies on or beyond a bound (zero density there)."""
        with np.errstate(invalid="ignore"):
            outside = (X <= self.lower_) | (X >= self.upper_)  # NaN bounds: False
        if not outside.any():
            return
        j = int(np.flatnonzero(outside.any(axis=0))[0])
        col = X[:, j]
        a, b = self.lower_[j], self.upper_[j]
        support = f"({'-inf' if np.isnan(a) else repr(float(a))}, "
        support += f"{'inf' if np.isnan(b) else repr(float(b))})"
        if where == "fit":
            hint = (
                "declare wider bounds, or use lower/upper='auto' or 'data' to detect "
                "them from the data."
            )
        else:
            hint = "the model's density is zero there and no latent point corresponds."
        raise ValueError(
            f"Boundary: feature {j} has values outside its support {support} "
            f"({int(outside[:, j].sum())} of {col.size} rows; min {float(col.min())!r}, "
            f"max {float(col.max())!r}): {hint}"
        )

    def _forward(self, X):
        self._check_support(X, "transform")
        a, b = self.lower_, self.upper_
        Z = X.copy()
        log_det = np.zeros(X.shape[0])
        for j in range(X.shape[1]):
            has_a, has_b = not np.isnan(a[j]), not np.isnan(b[j])
            if has_a and has_b:
                la, lb = np.log(X[:, j] - a[j]), np.log(b[j] - X[:, j])
                Z[:, j] = la - lb
                log_det += np.log(b[j] - a[j]) - la - lb
            elif has_a:
                Z[:, j] = np.log(X[:, j] - a[j])
                log_det -= Z[:, j]
            elif has_b:
                Z[:, j] = -np.log(b[j] - X[:, j])
                log_det += Z[:, j]
        return Z, log_det

    def _inverse(self, Z):
        a, b = self.lower_, self.upper_
        X = Z.copy()
        log_det = np.zeros(Z.shape[0])
        for j in range(Z.shape[1]):
            has_a, has_b = not np.isnan(a[j]), not np.isnan(b[j])
            z = Z[:, j]
            if has_a and has_b:
                width = b[j] - a[j]
                # Add the small side to the nearer bound, so values near either
                # bound keep their precision: expit(-|z|) = exp(-softplus(|z|)).
                small = width * np.exp(-np.logaddexp(0.0, np.abs(z)))
                X[:, j] = np.where(z < 0, a[j] + small, b[j] - small)
                log_det += np.log(width) - np.logaddexp(0.0, z) - np.logaddexp(0.0, -z)
            elif has_a:
                X[:, j] = a[j] + np.exp(z)
                log_det += z
            elif has_b:
                X[:, j] = b[j] - np.exp(-z)
                log_det -= z
        return X, log_det
