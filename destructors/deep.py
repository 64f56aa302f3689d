"""Greedy deep destructors: fit a layer, push the data through, repeat."""

import numbers
import time
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import metadata_routing
from threadpoolctl import threadpool_limits

from ._compat import Interval, StrOptions
from ._fitkernels import marginal_kl, tie_slack
from ._kernels import parallel_min_elements
from .base import (
    BaseDestructor,
    _caller_stacklevel,
    capability,
    check_random_state,
    spawn_seeds,
    standard_normal_log_pdf,
)
from .composite import ChainMixin, CompositeDestructor, check_layers
from .discrete import fit_policy, stream_fit_policy
from .marginal import MarginalGaussianizer
from .progress import FitProgress
from .registry import get_layer, layer_kind, register_layer, registered_names
from .rotation import PCARotation

# Below this many rows the fit stops by the RBIG rule instead of a held-out split.
_MIN_ROWS_EARLY_STOPPING = 20
# Inside the stacking loop, kernels on fewer elements than this run serially:
# 100 damped layers on 30,000 x 7 took 17.4 ms a layer (wall and CPU) with
# serial kernels against 30 ms with the marginal maps on two threads, on the
# loaded 2-core machine (the idle threads' waiting competes with the loop).
_STACK_PARALLEL_MIN = 2_000_000


def _warn_shared_rows(X_fit, X_val):
    """Report held-out rows that copy fitting rows: they flatter the held-out score."""
    seen = {row.tobytes() for row in np.ascontiguousarray(X_fit)}
    shared = sum(row.tobytes() in seen for row in np.ascontiguousarray(X_val))
    if shared:
        warnings.warn(
            f"{shared} of the {X_val.shape[0]} held-out rows are copies of fitting rows, "
            "so the held-out score that chooses the depth is optimistic; drop duplicated "
            "rows or pass dequantize=True.",
            UserWarning,
            stacklevel=4,
        )


def single_threaded_blas():
    """A context holding BLAS and LAPACK to one thread, as the stacking loop runs.

    A layer's products are small (``n x d`` by ``d x d``, covariances of
    ``d`` columns): on the project's busy 2-core machine a 30,000 x 7 by
    7 x 7 product took 8.5 ms of CPU on two OpenBLAS threads against 0.7 ms
    on one, and a 20k x 10 fit used 0.64 of the CPU time with one thread.
    The loop's parallelism, where it pays, is in the Numba kernels, whose
    results do not depend on the number of threads.

    Returns
    -------
    context : threadpoolctl.threadpool_limits
        Restores the previous limits on exit.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors.deep import single_threaded_blas
    >>> with single_threaded_blas():
    ...     product = np.ones((3, 2)) @ np.ones((2, 2))
    >>> product.tolist()
    [[2.0, 2.0], [2.0, 2.0], [2.0, 2.0]]
    """
    return threadpool_limits(limits=1, user_api="blas")


def _seed_layer(layer, seed):
    """Give every ``random_state`` parameter of a fresh clone its own seed."""
    params = {k: seed for k in layer.get_params(deep=True) if k.endswith("random_state")}
    layer.set_params(**params)
    return layer


@dataclass(frozen=True)
class LayerRecord:
    """What the stacking loop knows of one fitted layer.

    Attributes
    ----------
    train_score : float or None
        Mean log-likelihood of the fitting rows after the layer (None while
        a streamed source has not scored it yet).
    validation_score : float or None
        The same for the held-out rows, when there are any.
    tc_reduction : float
        Total correlation the layer removed, by the source's measure.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors import PCARotation
    >>> from destructors.deep import ArraySource
    >>> source = ArraySource(np.random.default_rng(0).normal(size=(200, 2)))
    >>> _ = source.fit(PCARotation())
    >>> record = source.records()[0]
    >>> record.validation_score is None, record.tc_reduction >= 0
    (True, True)
    """

    train_score: float | None
    validation_score: float | None
    tc_reduction: float


class StoppingRule:
    """Held-out likelihood or the RBIG total-correlation rule, fed layer by layer.

    With ``early_stopping`` it tracks the best held-out score and stops after
    ``patience`` layers without an improvement of more than ``tol``;
    otherwise it keeps layers while the total correlation they remove is at
    least ``tol``. ``n_keep`` is the depth to keep (possibly zero: no layer
    helped), ``stop_at`` the number of layers seen when it stopped.

    Parameters
    ----------
    early_stopping : bool
        Which rule.
    tol : float or None
        Minimum improvement; ``None`` disables the RBIG rule.
    patience : int
        Layers without improvement before stopping.

    Examples
    --------
    >>> from destructors.deep import LayerRecord, StoppingRule
    >>> rule = StoppingRule(True, 0.0, patience=1)
    >>> [rule.update(LayerRecord(None, v, 0.0)) for v in (1.0, 2.0, 1.5)]
    [False, False, True]
    >>> rule.n_keep
    2
    """

    def __init__(self, early_stopping, tol, patience):
        self.early_stopping = early_stopping
        self.tol = tol
        self.patience = patience
        self.best, self.n_keep, self.n_seen, self.stale = -np.inf, 0, 0, 0
        self.stop_at = None

    def needs(self, record):
        """Whether ``record`` holds the numbers this rule decides on."""
        return not self.early_stopping or record.validation_score is not None

    @property
    def patience_left(self):
        """Layers without improvement still allowed (None: it never stops early)."""
        if not self.early_stopping and self.tol is None:
            return None
        return self.patience - self.stale

    def update(self, record):
        """Record the next layer; return True once fitting should stop."""
        self.n_seen += 1
        tol = 0.0 if self.tol is None else self.tol
        if self.early_stopping:
            score = record.validation_score
            # A new best must beat the old by more than a tie (tie_slack), so
            # that two depths scoring equal up to rounding keep the shorter.
            improved = score > self.best + max(tol, tie_slack(self.best))
            if score > self.best + tie_slack(self.best):
                self.best, self.n_keep = score, self.n_seen
        else:
            improved = self.tol is None or record.tc_reduction >= tol
            if improved:
                self.n_keep = self.n_seen
        self.stale = 0 if improved else self.stale + 1
        if self.stale >= self.patience:
            self.stop_at = self.n_seen
        return self.stop_at is not None


class FixedDepth:
    """The rule of a refit: exactly ``n_layers`` layers, whatever their scores.

    Parameters
    ----------
    n_layers : int
        The depth to fit.

    Examples
    --------
    >>> from destructors.deep import FixedDepth, LayerRecord
    >>> rule = FixedDepth(2)
    >>> [rule.update(LayerRecord(None, None, 0.0)) for _ in range(2)], rule.n_keep
    ([False, True], 2)
    """

    patience_left = None

    def __init__(self, n_layers):
        self.n_keep, self.n_seen, self.stop_at = n_layers, 0, None

    def needs(self, record):
        """Any record will do: none is read."""
        return True

    def update(self, record):
        """Count the layer; True once ``n_layers`` are fitted."""
        self.n_seen += 1
        if self.n_seen >= self.n_keep:
            self.stop_at = self.n_seen
        return self.stop_at is not None


class _RotationsKept:
    """A searched layer to refit on all rows with its rotations kept (``refit="marginals"``).

    Fitting it fits anew every step of the layer except those registered as
    rotations, which are the searched ones, applied as they are: the
    direction search, most of a learned or greedy layer's cost, is not
    repeated. ``refitted`` is the layer that results.
    """

    def __init__(self, searched):
        self.searched = searched
        self.refitted = None

    def _fit_forward(self, X):
        def keep(step):
            return layer_kind(step) == "rotation"

        if keep(self.searched):
            self.refitted = self.searched
            return self.searched._forward(X)
        refit = capability(self.searched, "_refit_forward")
        if refit is None:  # no steps to keep: fitted anew
            self.refitted = clone(self.searched)
            return self.refitted._fit_forward(X)
        self.refitted, Z, log_det = refit(X, keep)
        return Z, log_det


class ArraySource:
    """In-memory data for :func:`stack_layers`: rows pushed through each layer.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Fitting rows (validated float64).
    X_val : ndarray or None, default=None
        Held-out rows, scored after every layer.
    track : bool, default=True
        Record scores and total correlation per layer (a refit needs none).
    measure : callable or None, default=None
        ``measure(layer, X_before, X_after) -> float``, the total correlation
        a layer removed; default: the summed ``KL(marginal || N(0, 1))`` of
        its output, which the next marginal step removes.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors import PCARotation
    >>> from destructors.deep import ArraySource
    >>> source = ArraySource(np.random.default_rng(0).normal(size=(100, 2)))
    >>> source.fit(PCARotation())
    PCARotation()
    >>> len(source.records())
    1
    """

    def __init__(self, X, X_val=None, *, track=True, measure=None):
        self.X, self.X_val = X, X_val
        self.track = track
        self.measure = measure
        self.log_det = np.zeros(X.shape[0])
        self.log_det_val = None if X_val is None else np.zeros(X_val.shape[0])
        self._records = []

    def fit(self, layer, should_stop=None):
        """Fit ``layer`` on the current rows, push them through it, return it."""
        X_before = self.X if self.measure is not None else None
        # Hand the rows over (no reference kept here), so the layer's
        # composite can free them once its first step has read them.
        self.X, ld = layer._fit_forward(self._take_rows())
        if not self.track:
            return layer
        self.log_det += ld
        train = float(np.mean(standard_normal_log_pdf(self.X) + self.log_det))
        if self.measure is None:
            tc = float(marginal_kl(self.X).sum())
        else:
            tc = float(self.measure(layer, X_before, self.X))
        val = None
        if self.X_val is not None:
            self.X_val, ld = layer._forward(self.X_val)
            self.log_det_val += ld
            val = float(np.mean(standard_normal_log_pdf(self.X_val) + self.log_det_val))
        self._records.append(LayerRecord(train, val, tc))
        return layer

    def _take_rows(self):
        X, self.X = self.X, None
        return X

    def records(self):
        """Records of the layers fitted so far, in order."""
        return self._records

    def finish(self, n_layers):
        """Nothing is pending in memory; the rows are released (a refit has its own)."""
        self.X = self.X_val = None

    def describe(self, i):
        """One progress line for layer ``i``."""
        r = self._records[i]
        msg = f"layer {i + 1}: train {r.train_score:.4f}"
        if r.validation_score is not None:
            msg += f", validation {r.validation_score:.4f}"
        return msg + f", tc reduction {r.tc_reduction:.5f}"


@dataclass
class StackResult:
    """What :func:`stack_layers` returns.

    Attributes
    ----------
    layers : list of destructors
        Every layer fitted before the rule stopped.
    records : list of LayerRecord
        Their records.
    n_keep : int
        How many leading layers the rule keeps.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors import PCARotation
    >>> from destructors.deep import ArraySource, FixedDepth, stack_layers
    >>> source = ArraySource(np.random.default_rng(0).normal(size=(200, 2)))
    >>> result = stack_layers(lambda i: PCARotation(), source, FixedDepth(2), 5)
    >>> len(result.layers), len(result.records), result.n_keep
    (2, 2, 2)
    """

    layers: list
    records: list
    n_keep: int


def stack_layers(factory, source, rule, max_layers, verbose=0, *, progress=None,
                 phase="search"):
    """The greedy loop: fit layer ``i = factory(i)`` on the data so far, until the rule stops.

    Every deep model (in memory, streamed from Dask, or for the information
    measures) runs this one loop; they differ in the layer factory (which
    may vary layers by position), the data source and the stopping rule.
    A source may learn a layer's numbers later than its fit (a streamed
    source scores layer ``i`` in the pass that fits layer ``i + 1``), so
    decisions are taken in order as records become known, and a source may
    abandon a fit as soon as the rule has decided (``should_stop``).

    Parameters
    ----------
    factory : callable
        ``factory(i)`` returns the unfitted layer at position ``i``.
    source : ArraySource or a streamed source
        Has ``fit(layer, should_stop)`` (the fitted layer to keep, or None
        when the fit was abandoned), ``records()``,
        ``finish(n_layers)`` and ``describe(i)``.
    rule : StoppingRule or similar
        Has ``needs(record)``, ``update(record) -> bool``, ``n_keep`` and
        ``stop_at``.
    max_layers : int
        Upper bound on the number of layers.
    verbose : int, default=0
        Print one status line per layer when positive (through a
        :class:`~destructors.progress.FitProgress` made here when
        ``progress`` is None); from 2, also the source's own line.
    progress : FitProgress or None, default=None
        Receives every fitted layer, in order, with its record as far as the
        source knows it (:class:`~destructors.progress.LayerProgress`).
    phase : {"search", "refit"}, default="search"
        What this run of the loop is, for ``progress``: the search for the
        depth, or the refit of a chosen depth (with a
        :class:`FixedDepth` rule).

    Returns
    -------
    result : StackResult
        The fitted layers, their records and the depth to keep.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors import RandomRotation
    >>> from destructors.deep import ArraySource, StoppingRule, stack_layers
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> rule = StoppingRule(False, None, patience=1)
    >>> result = stack_layers(lambda i: RandomRotation(random_state=i), ArraySource(X),
    ...                       rule, max_layers=3)
    >>> len(result.layers), result.n_keep
    (3, 3)
    """
    layers = []
    n_decided = 0
    if progress is None and verbose:
        progress = FitProgress(verbose=verbose)
    if progress is not None:
        progress.begin(phase, max_layers)

    def decide():
        nonlocal n_decided
        known = source.records()
        while rule.stop_at is None and n_decided < len(known):
            if not rule.needs(known[n_decided]):
                break
            rule.update(known[n_decided])
            n_decided += 1
        return rule.stop_at is not None

    with single_threaded_blas(), parallel_min_elements(_STACK_PARALLEL_MIN):
        for i in range(max_layers):
            layer = source.fit(factory(i), decide)
            if layer is None:
                break
            layers.append(layer)
            stop = decide()
            if progress is not None:
                known = source.records()
                progress.report(i + 1, max_layers, known[i] if i < len(known) else None,
                                rule, last=stop or i + 1 == max_layers)
                if verbose >= 2 and i < len(known):
                    print(source.describe(i))
            if stop:
                break
    n_fitted = len(layers) if rule.stop_at is None else rule.stop_at
    source.finish(n_fitted)
    decide()
    if rule.stop_at is not None:
        n_fitted = min(n_fitted, rule.stop_at)
    return StackResult(layers[:n_fitted], source.records()[:n_fitted], rule.n_keep)


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
    front : destructor or None, default=None
        A destructor fitted first (for example a
        :class:`~destructors.GaussianMixtureDestructor`); the layers stacked
        after it refine it and, with ``early_stopping``, are kept only while
        the held-out rows gain, so the model may be the front alone. It
        counts as the first of ``layers_`` and of ``max_layers``.
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
    refit : bool or "marginals", default=True
        After early stopping, refit on all rows with the chosen depth.
        ``"marginals"`` refits every step except the rotations (steps
        registered as rotations), which are kept from the search: the
        direction search, most of a learned or greedy rotation's cost, is
        not repeated, and an ``RBIG()`` fit takes about a third less time. In
        a study of 7 data families (3 splits each; ``benchmarks/README.md``)
        its held-out score against the full refit's averaged -0.003 to
        +0.003 nats on the five larger families, +0.04 on breast_cancer
        and -0.10 (about 1.4 standard errors) on digits, while
        ``refit=False`` lost on most of them (1-1.7 nats on breast_cancer,
        0.1-0.7 on digits). Not available for Dask arrays.
    dequantize : bool, default=False
        What to do with data that fail the library's rule for discrete and
        duplicated data (:mod:`destructors.discrete`): ``False`` refuses
        more than 1 % duplicated rows (ties within a feature only warn);
        ``True`` adds seeded uniform noise over the data's resolution first,
        so the model is a density of the dequantized data.
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split and every layer.
    verbose : int, default=0
        Print a status line per layer when positive (layer ``k`` of
        ``max_layers``, scores, best depth, patience left, elapsed and
        remaining time), and the refit after early stopping; from 2, also
        the data source's own line. For a callback, see :meth:`fit`.

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

    # ``callback`` is an argument of this call, not data to route through a
    # meta-estimator: declaring it unused keeps scikit-learn from generating a
    # ``set_fit_request`` method for it.
    __metadata_request__fit = {"callback": metadata_routing.UNUSED}

    _parameter_constraints: dict = {
        "layer": [None, BaseDestructor],
        "front": [None, BaseDestructor],
        "max_layers": [Interval(numbers.Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [None, Interval(numbers.Real, 0, None, closed="left")],
        "refit": ["boolean", StrOptions({"marginals"})],
        "dequantize": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        layer=None,
        *,
        front=None,
        max_layers=500,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=20,
        tol=1e-3,
        refit=True,
        dequantize=False,
        random_state=None,
        verbose=0,
    ):
        self.layer = layer
        self.front = front
        self.max_layers = max_layers
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.refit = refit
        self.dequantize = dequantize
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y=None, *, callback=None):
        """Fit layer after layer until the stopping rule (see the class docstring).

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)
            Training data (see :meth:`BaseDestructor.fit`).
        y : None
            Ignored.
        callback : callable or None, default=None
            Called as ``callback(record)`` after every layer, in order, with
            a :class:`~destructors.progress.LayerProgress`: the phase
            (``"search"`` for the depth, ``"refit"`` for the refit on all
            rows after early stopping), layer ``k`` of at most
            ``max_layers``, train and held-out scores, the best depth so
            far, the patience left, the time elapsed and an estimate of
            the time that remains. It belongs to this call only (not to the
            model's parameters, so neither cloned nor saved).

        Returns
        -------
        self : object
            The fitted model.

        Examples
        --------
        >>> import numpy as np
        >>> from destructors import RBIG
        >>> X = np.random.default_rng(0).gamma(2.0, size=(500, 2))
        >>> seen = []
        >>> model = RBIG(max_layers=50, n_iter_no_change=3, random_state=0).fit(
        ...     X, callback=seen.append)
        >>> seen[-1].phase, seen[-1].layer == model.n_layers_
        ('refit', True)
        """
        self._progress_callback = callback  # read by _stack, for this call only
        try:
            return super().fit(X, y)
        finally:
            del self._progress_callback

    def _make_layer(self, position=0):
        """The unfitted layer at ``position`` (0 is the first); one template here."""
        if self.layer is None:
            return CompositeDestructor([MarginalGaussianizer(), PCARotation()])
        return self.layer

    def _fit(self, X):
        rng = check_random_state(self.random_state)
        seeds = spawn_seeds(rng, self.max_layers)
        X, duplicated = fit_policy(X, self.dequantize, rng)
        X_val, X_fit = None, X
        early_stopping = self.early_stopping
        if early_stopping and X.shape[0] < _MIN_ROWS_EARLY_STOPPING:
            # As scikit-learn's "auto" early stopping: a split of so few rows
            # cannot choose a depth, so the RBIG rule does.
            warnings.warn(
                f"{X.shape[0]} samples are too few to hold out a validation split "
                f"(early stopping needs at least {_MIN_ROWS_EARLY_STOPPING}); fitting "
                "with early_stopping=False, which stops by the total correlation rule.",
                UserWarning,
                stacklevel=3,
            )
            early_stopping = False
        if early_stopping:
            n_val = max(1, int(round(self.validation_fraction * X.shape[0])))
            perm = rng.permutation(X.shape[0])
            X_val, X_fit = X[perm[:n_val]], X[perm[n_val:]]
            if duplicated:  # (hashing every row costs memory: only when needed)
                _warn_shared_rows(X_fit, X_val)
        search = ArraySource(X_fit, X_val)
        del X_fit, X_val  # the source replaces its rows layer by layer: let them go
        return self._stack(seeds, search, lambda: ArraySource(X, track=False), early_stopping)

    def _fit_stream(self, stream):
        """Fit on a chunked source: the same loop, fed by passes over the data."""
        if stream.layers:
            raise NotImplementedError(
                f"{type(self).__name__} inside another model cannot be fitted on a "
                "Dask array; fit it at the top level."
            )
        if self.early_stopping and self.refit == "marginals":
            raise ValueError(
                'refit="marginals" is not available for Dask arrays (the kept rotations '
                "would need their own passes); use refit=True or refit=False."
            )
        stream_fit_policy(stream, self.dequantize)
        rng = check_random_state(self.random_state)
        seeds = spawn_seeds(rng, self.max_layers)
        holdout = None
        if self.early_stopping:
            holdout = (self.validation_fraction, int(rng.randint(0, 2**31 - 1)))
        self._stack(
            seeds, stream.restart(holdout).stacking_source(),
            lambda: stream.restart(None).stacking_source(track=False),
            self.early_stopping,
        )

    def _stack(self, seeds, search, refit_source, early_stopping):
        """Search the depth on ``search``, then refit on all rows if asked."""
        start = time.perf_counter()
        rule = StoppingRule(early_stopping, self.tol, self.n_iter_no_change)
        refit = bool(early_stopping and self.refit)
        progress = FitProgress(getattr(self, "_progress_callback", None), self.verbose,
                               refit=refit)
        factory = lambda i: self._new_layer(seeds[i], i)  # noqa: E731
        result = stack_layers(factory, search, rule, self.max_layers, self.verbose,
                              progress=progress)
        records = result.records
        self.train_score_ = np.asarray([r.train_score for r in records])
        self.validation_score_ = (
            np.asarray([r.validation_score for r in records]) if early_stopping else None
        )
        self.tc_reduction_ = np.asarray([r.tc_reduction for r in records])
        # (With tol=None and no early stopping the depth is max_layers by request.)
        criterion = early_stopping or self.tol is not None
        if criterion and rule.stop_at is None and rule.n_keep == self.max_layers:
            warnings.warn(
                f"{type(self).__name__} stopped at max_layers={self.max_layers} while the "
                "last layer still improved the fit; raise max_layers for a better model.",
                ConvergenceWarning,
                stacklevel=_caller_stacklevel(),
            )
        n_keep = max(result.n_keep, 1)
        layers = result.layers[:n_keep]
        # (passes, seconds) per layer fitted, where the source counts passes.
        log = list(getattr(search, "log", []))[: len(result.layers)]
        if refit:
            source = refit_source()
            if self.refit == "marginals":
                searched = layers
                layers = stack_layers(lambda i: _RotationsKept(searched[i]), source,
                                      FixedDepth(n_keep), n_keep, self.verbose,
                                      progress=progress, phase="refit").layers
                layers = [kept.refitted for kept in layers]
            else:
                layers = stack_layers(factory, source, FixedDepth(n_keep), n_keep,
                                      self.verbose, progress=progress, phase="refit").layers
            log += getattr(source, "log", [])
        self._set_layers(layers)
        self.fit_time_ = time.perf_counter() - start
        if log:
            self._fit_log = log
        return self

    def _set_layers(self, layers):
        """Keep fitted layers."""
        self.layers_ = layers
        self.n_layers_ = len(layers)
        self._n_features_out = self.n_features_in_

    @classmethod
    def from_layers(cls, layers, **params):
        """A fitted model made of already fitted layers, without fitting.

        Parameters
        ----------
        layers : list of fitted destructors
            Applied in order; all of one dimension.
        **params : dict
            Constructor parameters of the model (they describe how it would
            be refitted; the layers are used as given).

        Returns
        -------
        model : DeepDestructor
            Transforms, scores, inverts and samples with ``layers``. Its
            per-layer diagnostics (``train_score_`` ...) are empty arrays.

        Examples
        --------
        >>> import numpy as np
        >>> from destructors import DeepDestructor, PCARotation
        >>> X = np.random.default_rng(0).normal(size=(100, 2))
        >>> model = DeepDestructor.from_layers([PCARotation(whiten=True).fit(X)])
        >>> bool(np.allclose(model.transform(X), model.layers_[0].transform(X)))
        True
        """
        if not layers:
            raise ValueError("from_layers needs at least one fitted layer.")
        check_layers(layers, cls.__name__)
        dims = {getattr(layer, "n_features_in_", None) for layer in layers}
        if len(dims) != 1 or None in dims:
            raise ValueError("from_layers needs fitted layers of one dimension.")
        model = cls(**params)
        model.n_features_in_ = dims.pop()
        model._set_layers(list(layers))
        empty = np.zeros(0)
        model.train_score_, model.tc_reduction_ = empty, empty.copy()
        model.validation_score_ = None
        model.fit_time_ = 0.0
        return model

    def _new_layer(self, seed, position):
        # A front takes position 0; the layer factory numbers the layers after it.
        if self.front is not None:
            if position == 0:
                return _seed_layer(clone(self.front), int(seed))
            position -= 1
        return self._seeded_layer(position, int(seed))

    def _seeded_layer(self, position, seed):
        """A fresh unfitted layer at ``position``, every ``random_state`` in it ``seed``."""
        return _seed_layer(clone(self._make_layer(position)), seed)


@register_layer("rbig", "model")
class RBIG(DeepDestructor):
    """Rotation-Based Iterative Gaussianization.

    Each layer is a :class:`MarginalGaussianizer` followed by a rotation;
    layers are stacked greedily (see :class:`DeepDestructor` for the
    stopping rules and fitted attributes) until the data are standard normal.
    ``score_samples`` is the exact log-density of the fitted map.

    Parameters
    ----------
    rotation : {"learned", "greedy", "pca", "random", "ica"} or a registered name, \
            default="learned"
        Rotation after each marginal Gaussianization: ``"learned"``
        (:class:`LearnedRotation`) climbs from the best of PCA and a few
        random rotations toward the most non-Gaussian directions (better
        held-out likelihood on 8 of the 13 data sets of
        ``benchmarks/bench_quality.py``, within a standard error on the
        others, for 1.5-3 times the fit time); ``"greedy"``
        (:class:`GreedyRotation`) keeps that best start; ``"pca"`` is
        classic RBIG; ``"random"`` draws Haar rotations; ``"ica"`` runs
        FastICA (slow in many dimensions).
    n_knots : int or "auto", default="auto"
        Resolution of each marginal map (see :class:`MarginalGaussianizer`).
    smoothing : float, default=0.3
        Kernel smoothing of each marginal CDF (see
        :class:`MarginalGaussianizer`).
    subsample : int, default=200_000
        Rows used per marginal fit.
    damping : float in (0, 1], default=0.3
        Fraction of each marginal step taken (see
        :class:`MarginalGaussianizer`): smaller steps need more layers and
        generalize better. ``rotation="pca", damping=1.0, first_damping=None`` is classic
        RBIG. The default was chosen by held-out likelihood on 13 data sets
        (``benchmarks/bench_quality.py``): it beat full steps on all of them
        (median +0.21 nats) for about 4-6 times the fit time.
    first_damping : float in (0, 1] or None, default=1.0
        Damping of the first layer only (``None``: ``damping``). An undamped
        first layer removes the raw marginals' non-Gaussianity at once;
        damping it too cost 1.7 nats on breast_cancer and 10.6 on digits.
        With a ``front``, the first layer after it.
    front : destructor or None, default=None
        A destructor fitted before the RBIG layers, such as
        ``GaussianMixtureDestructor()``; RBIG layers after it are kept only
        while held-out rows gain (see :class:`DeepDestructor`). Pass
        ``first_damping=None`` with it: the front has taken the large step.
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
    refit : bool or "marginals", default=True
        Refit on all rows at the chosen depth after early stopping;
        ``"marginals"`` keeps the searched rotations and refits the
        marginal maps only (about a third faster; see
        :class:`DeepDestructor`).
    dequantize : bool, default=False
        What to do with data that fail the library's rule for discrete and
        duplicated data (:mod:`destructors.discrete`): ``False`` refuses
        more than 1 % duplicated rows (ties within a feature only warn);
        ``True`` adds seeded uniform noise over the data's resolution first,
        so the model is a density of the dequantized data.
    random_state : int, RandomState instance or None, default=None
        Seeds the split, the subsamples and the rotations.
    verbose : int, default=0
        Print a status line per layer when positive (see :class:`DeepDestructor`).

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
        "rotation": [registered_names("rotation")],
        "n_knots": [Interval(numbers.Integral, 2, None, closed="left"), StrOptions({"auto"})],
        "smoothing": [Interval(numbers.Real, 0, None, closed="left")],
        "subsample": [Interval(numbers.Integral, 2, None, closed="left")],
        "damping": [Interval(numbers.Real, 0, 1, closed="right")],
        "first_damping": [None, Interval(numbers.Real, 0, 1, closed="right")],
    }

    def __init__(
        self,
        rotation="learned",
        n_knots="auto",
        smoothing=0.3,
        subsample=200_000,
        *,
        damping=0.3,
        first_damping=1.0,
        front=None,
        max_layers=500,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=20,
        tol=1e-3,
        refit=True,
        dequantize=False,
        random_state=None,
        verbose=0,
    ):
        super().__init__(
            None,
            front=front,
            max_layers=max_layers,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            refit=refit,
            dequantize=dequantize,
            random_state=random_state,
            verbose=verbose,
        )
        self.rotation = rotation
        self.n_knots = n_knots
        self.smoothing = smoothing
        self.subsample = subsample
        self.damping = damping
        self.first_damping = first_damping

    def _make_layer(self, position=0, seed=None):
        damping = self.damping
        if position == 0 and self.first_damping is not None:
            damping = self.first_damping
        marginal = MarginalGaussianizer(
            n_knots=self.n_knots, smoothing=self.smoothing, subsample=self.subsample,
            damping=damping, random_state=seed,
        )
        rotation = get_layer(self.rotation, "rotation")()
        if seed is not None:
            rotation = _seed_layer(rotation, seed)
        return CompositeDestructor([marginal, rotation])

    def _seeded_layer(self, position, seed):
        # Made fresh with its seeds (the layer that seeding a clone of
        # _make_layer's gives, without the clone: this runs once a layer).
        if type(self)._make_layer is not RBIG._make_layer:
            return super()._seeded_layer(position, seed)
        return self._make_layer(position, seed)
