"""Greedy deep destructors: fit a layer, push the data through, repeat."""

import numbers
import time

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, clone

from ._compat import Interval, StrOptions
from ._entropy import marginal_kl_to_normal
from .base import BaseDestructor, check_random_state, spawn_seeds, standard_normal_log_pdf
from .composite import ChainMixin, CompositeDestructor
from .marginal import MarginalGaussianizer
from .registry import get_layer, layer_names, register_layer
from .rotation import PCARotation


def _seed_layer(layer, seed):
    """Give every ``random_state`` parameter of a fresh clone its own seed."""
    params = {k: seed for k in layer.get_params(deep=True) if k.endswith("random_state")}
    layer.set_params(**params)
    return layer


class _StoppingRule:
    """The depth decision, shared by the in-memory and the Dask fits.

    Fed one layer at a time; with early stopping it tracks the best held-out
    score, otherwise the RBIG rule on the total correlation each layer
    removed. ``n_keep`` is the depth to keep.
    """

    def __init__(self, estimator):
        self.early_stopping = estimator.early_stopping
        self.tol = estimator.tol
        self.patience = estimator.n_iter_no_change
        self.best, self.n_keep, self.n_seen, self.stale = -np.inf, 0, 0, 0

    def update(self, validation_score=None, tc_reduction=None):
        """Record the next layer; return True once fitting should stop."""
        self.n_seen += 1
        tol = 0.0 if self.tol is None else self.tol
        if self.early_stopping:
            improved = validation_score > self.best + tol
            if validation_score > self.best:
                self.best, self.n_keep = validation_score, self.n_seen
        else:
            improved = self.tol is None or tc_reduction >= tol
            if improved:
                self.n_keep = self.n_seen
        self.stale = 0 if improved else self.stale + 1
        return self.stale >= self.patience


@register_layer("deep", "model")
class DeepDestructor(ChainMixin, ClassNamePrefixFeaturesOutMixin, BaseDestructor):
    """Greedy engine: stack clones of one layer until the data look Gaussian.

    Layer ``l`` (a fresh clone of ``layer``, seeded from ``random_state``) is
    fitted on the output of layers ``1..l-1``; every fitted layer is kept, so
    the composed map runs forwards, backwards and gives exact likelihoods.
    Each layer needs only the data already pushed through the earlier ones,
    i.e. one pass per layer.

    Stopping, whichever comes first:

    - ``max_layers`` layers;
    - with ``early_stopping=True`` (default), a fraction
      ``validation_fraction`` of the rows is held out, and fitting stops when
      the held-out mean log-likelihood has not improved by more than ``tol``
      for ``n_iter_no_change`` layers; the best prefix is kept and, with
      ``refit=True``, refitted on all rows with that many layers;
    - with ``early_stopping=False`` and ``tol`` set, the RBIG rule: stop when
      the total correlation removed per layer (``tc_reduction_``) stays below
      ``tol`` for ``n_iter_no_change`` layers; trailing layers below ``tol``
      are dropped.

    Parameters
    ----------
    layer : destructor or None, default=None
        Template of one layer; ``None`` means
        ``CompositeDestructor([MarginalGaussianizer(), PCARotation()])``.
    max_layers : int, default=500
        Maximum number of layers.
    early_stopping : bool, default=True
        Choose the depth by held-out log-likelihood.
    validation_fraction : float in (0, 1), default=0.1
        Fraction of rows held out when ``early_stopping``.
    n_iter_no_change : int, default=20
        Patience of either stopping rule, in layers.
    tol : float or None, default=1e-3
        Minimum improvement, in nats: of the held-out mean log-likelihood
        with ``early_stopping``, else of ``tc_reduction_`` per layer.
        ``None`` disables the RBIG rule.
    refit : bool, default=True
        After early stopping, refit on all rows with the chosen depth.
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split and every layer.
    verbose : int, default=0
        Print one line per layer when positive.

    Attributes
    ----------
    layers_ : list of destructors
        The fitted layers, in order.
    n_layers_ : int
        Number of layers kept.
    train_score_ : ndarray of shape (n_layers_fitted,)
        Mean log-likelihood of the fitting rows after each layer fitted
        during the search (before truncation to ``n_layers_``).
    validation_score_ : ndarray of shape (n_layers_fitted,) or None
        Same for the held-out rows, with ``early_stopping``.
    tc_reduction_ : ndarray of shape (n_layers_fitted,)
        Estimated total correlation each layer removed: the summed
        KL(marginal || N(0, 1)) of its output, which the next marginal
        Gaussianization takes away.
    fit_time_ : float
        Seconds spent in :meth:`fit`.
    n_features_in_ : int
        Number of features seen during fit.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors import (CompositeDestructor, DeepDestructor,
    ...                          MarginalGaussianizer, RandomRotation)
    >>> X = np.random.default_rng(0).gamma(2.0, size=(1000, 3))
    >>> layer = CompositeDestructor([MarginalGaussianizer(), RandomRotation()])
    >>> model = DeepDestructor(layer, max_layers=5, random_state=0).fit(X)
    >>> model.n_layers_ <= 5
    True
    """

    _parameter_constraints: dict = {
        "layer": [None, BaseDestructor],
        "max_layers": [Interval(numbers.Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [None, Interval(numbers.Real, 0, None, closed="left")],
        "refit": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        layer=None,
        *,
        max_layers=500,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=20,
        tol=1e-3,
        refit=True,
        random_state=None,
        verbose=0,
    ):
        self.layer = layer
        self.max_layers = max_layers
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.refit = refit
        self.random_state = random_state
        self.verbose = verbose

    def _make_layer(self):
        if self.layer is None:
            return CompositeDestructor([MarginalGaussianizer(), PCARotation()])
        return self.layer

    def _fit(self, X):
        start = time.perf_counter()
        rng = check_random_state(self.random_state)
        seeds = spawn_seeds(rng, self.max_layers)
        X_val = None
        if self.early_stopping:
            n_val = max(1, int(round(self.validation_fraction * X.shape[0])))
            if X.shape[0] - n_val < 2:
                raise ValueError(
                    f"early_stopping holds out {n_val} of {X.shape[0]} samples, "
                    "leaving fewer than 2 to fit; pass more samples or "
                    "early_stopping=False."
                )
            perm = rng.permutation(X.shape[0])
            X_val, X_fit = X[perm[:n_val]], X[perm[n_val:]]
        else:
            X_fit = X

        layers, n_keep = self._search(X_fit, X_val, seeds)
        if X_val is not None and self.refit:
            layers = self._fit_fixed(X, seeds[:n_keep])
        else:
            layers = layers[:n_keep]
        self._set_layers(layers)
        self.fit_time_ = time.perf_counter() - start
        return self

    def _set_layers(self, layers):
        """Keep fitted layers (shared with the fit on Dask arrays)."""
        self.layers_ = layers
        self.n_layers_ = len(layers)
        self._n_features_out = self.n_features_in_

    def _new_layer(self, seed):
        return _seed_layer(clone(self._make_layer()), int(seed))

    def _search(self, X, X_val, seeds):
        """Fit layers one at a time, recording the diagnostics and the depth."""
        template = self._make_layer()
        layers = []
        train_score, val_score, tc_reduction = [], [], []
        log_det = np.zeros(X.shape[0])
        log_det_val = None if X_val is None else np.zeros(X_val.shape[0])
        rule = _StoppingRule(self)
        for i, seed in enumerate(seeds):
            layer = _seed_layer(clone(template), int(seed))
            X, ld = layer._fit_forward(X)
            log_det += ld
            layers.append(layer)
            train_score.append(np.mean(standard_normal_log_pdf(X) + log_det))
            tc_reduction.append(float(marginal_kl_to_normal(X).sum()))
            if X_val is not None:
                X_val, ld = layer._forward(X_val)
                log_det_val += ld
                val_score.append(np.mean(standard_normal_log_pdf(X_val) + log_det_val))
            stop = rule.update(val_score[-1] if val_score else None, tc_reduction[-1])
            if self.verbose:
                msg = f"layer {i + 1}: train {train_score[-1]:.4f}"
                if val_score:
                    msg += f", validation {val_score[-1]:.4f}"
                print(msg + f", tc reduction {tc_reduction[-1]:.5f}")
            if stop:
                break
        self.train_score_ = np.asarray(train_score)
        self.validation_score_ = np.asarray(val_score) if val_score else None
        self.tc_reduction_ = np.asarray(tc_reduction)
        return layers, max(rule.n_keep, 1)

    def _fit_fixed(self, X, seeds):
        template = self._make_layer()
        layers = []
        for seed in seeds:
            layer = _seed_layer(clone(template), int(seed))
            X, _ = layer._fit_forward(X)
            layers.append(layer)
        return layers


@register_layer("rbig", "model")
class RBIG(DeepDestructor):
    """Rotation-Based Iterative Gaussianization.

    Each layer is a :class:`MarginalGaussianizer` followed by a rotation;
    layers are stacked greedily (see :class:`DeepDestructor` for the
    stopping rules and fitted attributes) until the data are standard normal.
    ``score_samples`` is the exact log-density of the fitted map.

    Parameters
    ----------
    rotation : {"greedy", "pca", "random", "ica"}, default="greedy"
        Rotation after each marginal Gaussianization: ``"greedy"``
        (:class:`GreedyRotation`) keeps whichever of PCA and a few random
        rotations exposes the most non-Gaussianity; ``"pca"`` is classic
        RBIG; ``"random"`` draws Haar rotations; ``"ica"`` runs FastICA
        (slow in many dimensions).
    n_knots : int or "auto", default="auto"
        Resolution of each marginal map (see :class:`MarginalGaussianizer`).
    smoothing : float, default=0.3
        Kernel smoothing of each marginal CDF (see
        :class:`MarginalGaussianizer`).
    subsample : int, default=200_000
        Rows used per marginal fit.
    max_layers : int, default=500
        Maximum number of layers.
    early_stopping : bool, default=True
        Choose the depth by held-out log-likelihood.
    validation_fraction : float, default=0.1
        Fraction held out for early stopping.
    n_iter_no_change : int, default=20
        Patience of the stopping rule, in layers.
    tol : float or None, default=1e-3
        Minimum improvement per layer, in nats.
    refit : bool, default=True
        Refit on all rows at the chosen depth after early stopping.
    random_state : int, RandomState instance or None, default=None
        Seeds the split, the subsamples and the rotations.
    verbose : int, default=0
        Print one line per layer when positive.

    Attributes
    ----------
    layers_ : list of CompositeDestructor
        Fitted layers, each ``[MarginalGaussianizer, rotation]``.
    n_layers_ : int
        Number of layers kept.
    train_score_, validation_score_, tc_reduction_ : ndarray
        Per-layer diagnostics (see :class:`DeepDestructor`).
    fit_time_ : float
        Seconds spent in :meth:`fit`.
    n_features_in_ : int
        Number of features seen during fit.

    Examples
    --------
    >>> from sklearn.datasets import make_moons
    >>> from destructors import RBIG
    >>> X, _ = make_moons(2000, noise=0.05, random_state=0)
    >>> model = RBIG(random_state=0).fit(X)
    >>> X_test, _ = make_moons(1000, noise=0.05, random_state=1)
    >>> bool(model.score(X_test) > -1.0)  # a single Gaussian scores about -1.9
    True
    >>> model.sample(3, random_state=0).shape
    (3, 2)
    """

    _parameter_constraints: dict = {
        **{k: v for k, v in DeepDestructor._parameter_constraints.items() if k != "layer"},
        "rotation": [StrOptions(set(layer_names("rotation")))],
        "n_knots": [Interval(numbers.Integral, 2, None, closed="left"), StrOptions({"auto"})],
        "smoothing": [Interval(numbers.Real, 0, None, closed="left")],
        "subsample": [Interval(numbers.Integral, 2, None, closed="left")],
    }

    def __init__(
        self,
        rotation="greedy",
        n_knots="auto",
        smoothing=0.3,
        subsample=200_000,
        *,
        max_layers=500,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=20,
        tol=1e-3,
        refit=True,
        random_state=None,
        verbose=0,
    ):
        super().__init__(
            None,
            max_layers=max_layers,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            refit=refit,
            random_state=random_state,
            verbose=verbose,
        )
        self.rotation = rotation
        self.n_knots = n_knots
        self.smoothing = smoothing
        self.subsample = subsample

    def _make_layer(self):
        marginal = MarginalGaussianizer(
            n_knots=self.n_knots, smoothing=self.smoothing, subsample=self.subsample
        )
        return CompositeDestructor([marginal, get_layer(self.rotation, "rotation")()])
