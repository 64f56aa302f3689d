"""Held-out model choice: fit a few candidate destructors, keep the best, refit.

No single destructor is best on all data: a deep damped RBIG wins on
smooth non-Gaussian data with many rows, a Gaussian-mixture front on
clustered data, and a shrunk Gaussian on a few hundred rows in many
dimensions, where anything more flexible overfits. :class:`AutoDestructor`
scores each candidate by the mean log-likelihood of rows it was not fitted
on, keeps the best and refits it on all rows.

How the rows are split (``cv="auto"``): the standard error of a held-out
mean log-likelihood shrinks as one over the square root of the number of
held-out rows, and candidates differ by tenths of a nat, so the choice
needs a few hundred held-out rows. With at least
:data:`MIN_ROWS_HOLDOUT` rows one split holding out ``validation_fraction``
(by default 20 %, i.e. at least 200 rows) is enough; below that, 5-fold
cross-validation holds out every row once, so the choice rests on all
``n`` rows instead of a fifth of them, for five fits per candidate, which
is affordable because the fits are small.
"""

import numbers
import time
import warnings

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, clone

# The module, not its names: deep.py reads the registry (so imports this module)
# while its classes are still being defined.
from . import deep
from ._compat import Interval, StrOptions
from ._fitkernels import tie_slack
from .base import BaseDestructor, check_random_state
from .discrete import fit_policy
from .gaussian import GaussianDestructor
from .mixture import GaussianMixtureDestructor, KernelDensityDestructor
from .registry import register_layer

#: With fewer rows, ``cv="auto"`` cross-validates instead of holding out one split.
MIN_ROWS_HOLDOUT = 1000
#: Folds of ``cv="auto"`` on small data.
AUTO_FOLDS = 5
# Fewer rows than this cannot be split to choose: the first candidate is fitted.
_MIN_ROWS_CHOICE = 10


def default_candidates():
    """The candidates :class:`AutoDestructor` compares when given none.

    In order (an earlier candidate wins when the best leads it by no more
    than one paired standard error, so the simplest comes first):

    - ``"gaussian"``: :class:`~destructors.gaussian.GaussianDestructor`
      with a Ledoit-Wolf shrunk covariance, the floor on small data;
    - ``"mixture"``: a :class:`GaussianMixtureDestructor` alone (its
      number of components chosen on held-out rows, the average of two
      fits from different seeds, ``n_average=2``): the front of
      ``"mixture-rbig"`` below without refinement, so refinement is kept
      only where held-out rows gain from it;
    - ``"rbig"``: ``RBIG()``, damped layers after an undamped first one,
      learned directions (:class:`~destructors.LearnedRotation`);
    - ``"rbig-damped"``: ``RBIG(first_damping=None)``, every layer damped,
      better where the raw marginals are already near Gaussian;
    - ``"mixture-rbig"``: a :class:`GaussianMixtureDestructor` front (its
      number of components chosen on held-out rows) refined by damped RBIG
      layers kept only while held-out rows gain, for clustered data;
    - ``"rbig-greedy"``: ``RBIG(rotation="greedy")``, the best of PCA and
      random rotations at each layer (:class:`~destructors.GreedyRotation`),
      RBIG's rotation before the learned one, level or better on some small
      and 2-D data (``benchmarks/bench_rotation_default.py``);
    - ``"kde"``: a :class:`~destructors.KernelDensityDestructor` (bandwidth
      by leave-one-out likelihood), for sharp edges and flat parts (uniform
      cells, bounded supports) that smooth models round off.

    Returns
    -------
    candidates : list of (str, destructor)
        Named, unfitted templates.

    Examples
    --------
    >>> from destructors.auto import default_candidates
    >>> [name for name, _ in default_candidates()][:4]
    ['gaussian', 'mixture', 'rbig', 'rbig-damped']
    """
    candidates = [
        ("gaussian", GaussianDestructor()),
        ("mixture", GaussianMixtureDestructor(n_average=2)),
        ("rbig", deep.RBIG()),
        ("rbig-damped", deep.RBIG(first_damping=None)),
        ("mixture-rbig", deep.RBIG(front=GaussianMixtureDestructor(n_average=2),
                                   first_damping=None)),
        ("rbig-greedy", deep.RBIG(rotation="greedy")),
        ("kde", KernelDensityDestructor()),
    ]
    return candidates


def _named(candidates):
    """``(name, estimator)`` pairs from estimators or pairs, names unique."""
    pairs = []
    for i, item in enumerate(candidates):
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            name, estimator = item
        else:
            name, estimator = f"{i}:{type(item).__name__}", item
        if not isinstance(estimator, BaseDestructor):
            raise ValueError(
                f"AutoDestructor candidate {i} is {type(estimator).__name__}, not a "
                "destructor: a candidate must be a BaseDestructor (an invertible map "
                "with exact log-determinants), so that its held-out likelihood is a "
                "density."
            )
        pairs.append((name, estimator))
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise ValueError(f"AutoDestructor candidate names must be unique, got {names}.")
    return pairs


def _mean_se(values):
    """Mean and standard error of the mean of per-row scores."""
    mean = float(np.mean(values))
    se = float(np.std(values, ddof=1) / np.sqrt(values.size)) if values.size > 1 else np.nan
    return mean, se


@register_layer("auto", "model")
class AutoDestructor(ClassNamePrefixFeaturesOutMixin, BaseDestructor):
    """Choose a destructor by held-out likelihood among candidates, then refit it.

    Each candidate (a clone, every ``random_state`` in it set from this
    model's ``random_state``) is fitted on part of the rows and scored by
    the mean log-likelihood of the others; the best is refitted on all rows
    and is the model: :meth:`transform`, :meth:`inverse_transform`,
    :meth:`score_samples` and :meth:`sample` are those of
    ``best_estimator_``.

    Parameters
    ----------
    candidates : list or None, default=None
        Destructors to choose from, each an unfitted estimator or a
        ``(name, estimator)`` pair; ``None`` means
        :func:`default_candidates`. The earliest candidate whose held-out
        mean is within one paired standard error of the best is chosen (the
        one-standard-error rule: the best's lead over it is noise), so list
        simpler models first.
    cv : "auto", "holdout" or int >= 2, default="auto"
        How rows are held out: ``"holdout"``, one seeded split of
        ``validation_fraction``; an integer, that many folds; ``"auto"``,
        one split with at least :data:`MIN_ROWS_HOLDOUT` (1,000) rows, else
        5 folds (see the module docstring for why). With fewer than 10 rows
        nothing is held out and the first candidate is fitted.
    validation_fraction : float in (0, 1), default=0.2
        Share of rows held out by a single split.
    dequantize : bool, default=False
        Tied and duplicated rows follow the library's rule
        (:mod:`destructors.discrete`): ``False`` refuses more than 1 %
        duplicated rows, ``True`` adds seeded uniform noise over the data's
        resolution once, before any candidate sees the data.
    random_state : int, RandomState instance or None, default=None
        Seeds the split and every candidate (all candidates get the same
        seed, in the search and in the refit).
    verbose : int, default=0
        Print one line per candidate when positive.

    Attributes
    ----------
    candidate_scores_ : dict
        For each candidate name, a dict with ``"mean"`` (held-out mean
        log-likelihood, nats), ``"se"`` (its standard error over held-out
        rows), ``"fit_time"`` (seconds, all folds) and ``"error"`` (the
        message if the candidate failed to fit or score, else ``None``; a
        failed candidate has ``mean`` NaN and is never chosen).
    best_candidate_ : str
        Name of the chosen candidate.
    best_estimator_ : destructor
        The chosen candidate refitted on all rows.
    n_splits_ : int
        Number of fits per candidate in the search (1 for a single split,
        0 when there were too few rows to choose).
    fit_time_ : float
        Seconds spent in :meth:`fit`, search and refit.
    n_features_in_ : int
        Number of features seen during fit.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors import AutoDestructor, RBIG
    >>> from destructors import GaussianDestructor
    >>> X = np.random.default_rng(0).normal(size=(300, 3)) @ [[1, 0.5, 0], [0, 1, 0], [0, 0, 2]]
    >>> auto = AutoDestructor([GaussianDestructor(), RBIG(max_layers=5)], random_state=0)
    >>> auto.fit(X).best_candidate_
    '0:GaussianDestructor'
    >>> sorted(auto.candidate_scores_["1:RBIG"])
    ['error', 'fit_time', 'mean', 'se']
    >>> bool(np.allclose(auto.score_samples(X), auto.best_estimator_.score_samples(X)))
    True
    """

    _parameter_constraints: dict = {
        "candidates": [None, list, tuple],
        "cv": [Interval(numbers.Integral, 2, None, closed="left"),
               StrOptions({"auto", "holdout"})],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "dequantize": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        candidates=None,
        *,
        cv="auto",
        validation_fraction=0.2,
        dequantize=False,
        random_state=None,
        verbose=0,
    ):
        self.candidates = candidates
        self.cv = cv
        self.validation_fraction = validation_fraction
        self.dequantize = dequantize
        self.random_state = random_state
        self.verbose = verbose

    # -- the search ----------------------------------------------------------------
    def _splits(self, n, rng):
        """``(fit_rows, held_out_rows)`` index pairs for ``n`` rows."""
        if n < _MIN_ROWS_CHOICE:
            return []
        perm = rng.permutation(n)
        folds = self.cv
        if folds == "auto":
            folds = "holdout" if n >= MIN_ROWS_HOLDOUT else AUTO_FOLDS
        if folds == "holdout":
            n_val = min(n - 2, max(2, int(round(self.validation_fraction * n))))
            return [(perm[n_val:], perm[:n_val])]
        # Every fold keeps at least two rows held out and two to fit.
        folds = min(int(folds), n // 2)
        return [(np.concatenate([f for j, f in enumerate(parts) if j != i]), parts[i])
                for parts in [np.array_split(perm, folds)] for i in range(folds)]

    def _score_candidate(self, template, seed, X, splits):
        """Out-of-fold per-row log-likelihoods of one candidate, and seconds spent."""
        held_out = []
        start = time.perf_counter()
        for fit_rows, val_rows in splits:
            model = deep._seed_layer(clone(template), seed)
            with warnings.catch_warnings():
                # Search fits only rank the candidates; the refit's warnings are shown.
                warnings.simplefilter("ignore")
                model.fit(X[fit_rows])
                held_out.append(model.score_samples(X[val_rows]))
        return np.concatenate(held_out), time.perf_counter() - start

    def _fit(self, X):
        start = time.perf_counter()
        candidates = _named(default_candidates() if self.candidates is None else self.candidates)
        if not candidates:
            raise ValueError("AutoDestructor needs at least one candidate.")
        rng = check_random_state(self.random_state)
        # The library's policy on duplicated rows, applied once, before any split
        # (the same rule as DeepDestructor, reading this model's ``dequantize``).
        X, duplicated = fit_policy(X, self.dequantize, rng)
        seed = int(rng.randint(0, 2**31 - 1))
        # The few copies the rule allows are searched on once each: a held-out
        # copy of a fitting row would flatter a candidate, and a fold may hold
        # more than the rule's share of copies, so candidates would refuse it.
        X_search = np.unique(X, axis=0) if duplicated else X
        splits = self._splits(X_search.shape[0], rng)
        self.n_splits_ = len(splits)
        scores, held_out = {}, {}
        if not splits:
            warnings.warn(
                f"{X_search.shape[0]} distinct samples are too few to hold out rows and choose a "
                f"candidate (at least {_MIN_ROWS_CHOICE} are needed); fitting the first "
                f"candidate, {candidates[0][0]!r}.",
                UserWarning,
                stacklevel=3,
            )
        for name, template in candidates if splits else []:
            try:
                values, seconds = self._score_candidate(template, seed, X_search, splits)
                mean, se = _mean_se(values)
                error = None
                held_out[name] = values
            except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
                mean, se, seconds, error = np.nan, np.nan, np.nan, f"{type(exc).__name__}: {exc}"
            scores[name] = {"mean": mean, "se": se, "fit_time": seconds, "error": error}
            if self.verbose:
                about = error or f"{mean:.4f} +- {se:.4f} in {seconds:.2f} s"
                print(f"candidate {name}: {about}")
        self.candidate_scores_ = scores
        self.best_candidate_ = self._choose(candidates, scores, held_out)
        template = dict(candidates)[self.best_candidate_]
        self.best_estimator_ = deep._seed_layer(clone(template), seed).fit(X)
        self._n_features_out = X.shape[1]
        self.fit_time_ = time.perf_counter() - start
        return self

    @staticmethod
    def _choose(candidates, scores, held_out=None):
        """The earliest candidate within one paired standard error of the best.

        The one-standard-error rule: two candidates scored on the same
        held-out rows differ by the mean of their per-row differences, known
        to about its standard error; where the best's lead over an earlier
        (simpler) candidate is within that, the lead is noise and order
        decides. Without per-row scores, within rounding of the best.
        """
        if not scores:
            return candidates[0][0]
        means = {name: s["mean"] for name, s in scores.items() if np.isfinite(s["mean"])}
        if not means:
            failures = "; ".join(f"{name}: {s['error']}" for name, s in scores.items())
            raise ValueError(f"AutoDestructor: every candidate failed ({failures}).")
        top = next(name for name, _ in candidates if means.get(name) == max(means.values()))
        best = means[top]
        # A tie is decided by order, never by the last bits of two sums.
        slack = tie_slack(best)

        def margin(name):
            if not held_out or name not in held_out or top not in held_out:
                return slack
            diff = held_out[top] - held_out[name]
            if diff.size < 2 or not np.all(np.isfinite(diff)):
                return slack
            return max(slack, float(np.std(diff, ddof=1) / np.sqrt(diff.size)))

        return next(name for name, _ in candidates
                    if name in means and means[name] >= best - margin(name))

    # -- the map: the chosen candidate's -----------------------------------------------
    def _forward(self, X):
        return self.best_estimator_._forward(X)

    def _inverse(self, Z):
        return self.best_estimator_._inverse(Z)
