"""Outlier detection by density: flag the points where a destructor's density is low.

A fitted destructor gives the exact log-density ``log p(x)`` of every point,
so it ranks points by how plausible the model finds them. The detector here
wraps any destructor in scikit-learn's outlier-detector conventions (those of
:class:`~sklearn.ensemble.IsolationForest`): ``score_samples`` is higher for
more normal points, ``decision_function = score_samples - offset_`` is
negative for outliers, and ``predict`` returns ``-1`` for outliers and ``+1``
for inliers.
"""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin, clone

from ._compat import Interval, StrOptions, _fit_context, check_is_fitted, validate_data
from .base import BaseDestructor, check_random_state

# contamination="auto": the share of the model's own draws flagged, i.e. the
# false-alarm rate on data that follow the fitted density exactly.
AUTO_FALSE_ALARM_RATE = 0.01
# Draws of the model that place the "auto" threshold (its 1 % quantile then
# has a relative standard error of about 10 % in probability).
_N_AUTO_DRAWS = 10_000


class DestructorOutlierDetector(OutlierMixin, BaseEstimator):
    """Flag low-density points as outliers, with any destructor as the density.

    The destructor (by default :class:`~destructors.RBIG`) is fitted to the
    training data; the outlier score of a point is its exact log-density
    ``log p(x)``, and points whose log-density is below ``offset_`` are
    outliers.

    Parameters
    ----------
    destructor : destructor or None, default=None
        The density model, cloned before fitting; ``None`` means
        ``RBIG(random_state=random_state)``.
    contamination : "auto" or float in (0, 0.5], default="auto"
        Where the threshold ``offset_`` lies. A float is the share of
        training rows to flag: ``offset_`` is that quantile of their
        log-densities (as for :class:`~sklearn.ensemble.IsolationForest`),
        so ``predict`` flags that share of the training rows (to within one
        row, when no two rows tie). ``"auto"`` needs no guess of the share
        of outliers: ``offset_`` is the log-density below which the fitted
        model itself puts 1 % of its mass (``AUTO_FALSE_ALARM_RATE``),
        estimated from 10,000 of its samples. Then a point drawn from the
        model is flagged with probability 1 %, whatever the dimension and
        the data, and the share flagged on the training rows measures how
        many of them the model finds implausible.
    random_state : int, RandomState instance or None, default=None
        Seeds the default RBIG and the model draws of ``"auto"``.

    Attributes
    ----------
    destructor_ : destructor
        The fitted density model.
    offset_ : float
        The log-density threshold: ``decision_function = score_samples -
        offset_``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    sklearn.ensemble.IsolationForest : The same conventions, with an
        isolation-depth score instead of a density.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors import DestructorOutlierDetector
    >>> X = np.random.default_rng(0).normal(size=(500, 2))
    >>> detector = DestructorOutlierDetector(contamination=0.05, random_state=0).fit(X)
    >>> float(np.mean(detector.predict(X) == -1))  # the stated share of the rows
    0.05
    >>> detector.predict([[0.0, 0.0], [5.0, 5.0]]).tolist()
    [1, -1]
    """

    _parameter_constraints: dict = {
        "destructor": [None, BaseDestructor],
        "contamination": [StrOptions({"auto"}), Interval(numbers.Real, 0, 0.5, closed="right")],
        "random_state": ["random_state"],
    }

    def __init__(self, destructor=None, *, contamination="auto", random_state=None):
        self.destructor = destructor
        self.contamination = contamination
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the density model and place the threshold.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (finite, numeric, at least two rows).
        y : None
            Ignored.

        Returns
        -------
        self : DestructorOutlierDetector
            The fitted detector.
        """
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2,
                          ensure_all_finite=True)
        rng = check_random_state(self.random_state)
        if self.destructor is None:
            from .deep import RBIG  # (imported on use: deep imports Numba kernels)

            destructor = RBIG(random_state=int(rng.randint(0, 2**31 - 1)))
        else:
            destructor = clone(self.destructor)
        self.destructor_ = destructor.fit(X)
        if self.contamination == "auto":
            draws = self.destructor_.sample(_N_AUTO_DRAWS, random_state=rng)
            reference = self.destructor_.score_samples(draws)
            self.offset_ = float(np.percentile(reference, 100.0 * AUTO_FALSE_ALARM_RATE))
        else:
            scores = self.destructor_.score_samples(X)
            self.offset_ = float(np.percentile(scores, 100.0 * self.contamination))
        return self

    def score_samples(self, X):
        """Log-density of each point under the fitted model (lower is more abnormal).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``log p(x)``, as the destructor's ``score_samples``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite=True)
        return self.destructor_.score_samples(X)

    def decision_function(self, X):
        """Log-density above the threshold: negative for outliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to score.

        Returns
        -------
        decision : ndarray of shape (n_samples,)
            ``score_samples(X) - offset_``.
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """``-1`` for outliers (log-density below ``offset_``), ``+1`` for inliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to classify.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            ``+1`` or ``-1`` for each row.
        """
        decision = self.decision_function(X)
        labels = np.ones(decision.shape[0], dtype=int)
        labels[decision < 0] = -1
        return labels
