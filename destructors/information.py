"""Information measures from Gaussianization: TC, entropy, MI and KL divergence.

Rotation-Based Iterative Gaussianization turns multivariate information
estimation into a sequence of one-dimensional problems. Write
``KL(p_x || N(0, I)) = TC(x) + sum_d KL(p_{x_d} || N(0, 1))``. A marginal
Gaussianization zeroes the marginal terms and leaves the total correlation
``TC`` (multi-information: sum of marginal entropies minus the joint
entropy) unchanged; a rotation keeps the joint entropy and moves part of the
total correlation into marginal non-Gaussianity, which the next marginal
step removes. Each layer's reduction is therefore a difference of
one-dimensional entropies, and the reductions add up to ``TC(x)`` once the
data are Gaussian. Everything else follows:

- ``entropy(X) = sum_d H(x_d) - TC(X)``;
- ``mutual_information(X, Y) = TC([f_X(X), f_Y(Y)])`` with ``f_X``, ``f_Y``
  Gaussianizations of each block (MI is invariant to invertible maps of
  each block);
- ``kl_divergence(X, Y) = KL(f_Y(X) || N(0, I))``, the non-Gaussianity of
  ``X`` pushed through ``Y``'s Gaussianization.

All values are in nats (``base=2`` for bits).

Discrete, rounded or duplicated data are refused with a ValueError saying
what was found (a feature with more than 10 equal values, more than 1 %
duplicated rows), or dequantized with ``dequantize=True``: one rule for the
four measures, :mod:`destructors.discrete`, whose docstring gives the
measurements behind it. Fewer rows than features, and data whose range
overflows float64, are refused too.

Estimator
---------
Each layer is a :class:`MarginalGaussianizer` (unsmoothed, so the map is
exactly equivariant to rescaling and shifting a feature) followed by a
rotation. The first layer uses one knot per sample, which turns the raw
marginals, however skewed or heavy-tailed, into exact normal scores, and
PCA, so Gaussian data are done in one layer. Later layers choose, like
:class:`GreedyRotation`, among PCA and four random rotations the one that
exposes the most marginal non-Gaussianity, but judge the candidates on one
half of the rows and measure the reduction on the other half: measured on
the rows it was chosen on, the winner's luck would count as dependence.

A layer's reduction is ``sum_d [H(y0_d) - H(y_d)] + log|det W| - log|det
W0| - TC0``: ``y`` is the layer's output, ``y0`` the output of the same
layer on the Gaussianized data with every column shuffled independently
(same marginals, no dependence; in the first layer the rotation is refitted
on them, which cancels the ``~D (D - 1) / (4 n)`` nats a PCA fitted to
sample correlations would add), ``W`` and ``W0`` the linear maps and
``TC0`` the total correlation ``W0`` gives independent Gaussian columns
(zero for a rotation). The entropies are histogram estimates; their bias is
common to both terms and cancels, in particular the large one due to
in-sample Gaussianized columns being far more regular than a random sample.

Fitting stops after ten layers in a row that are not significant, and those
are dropped. A layer is significant if its reduction exceeds three times
the noise of one layer on Gaussian data of the same shape,
``sigma = s(n) sqrt(2 D)`` with ``s(n) ~ 1.15 n**-0.8`` (see
:func:`destructors._entropy.negentropy_noise`; ``n`` is the number of
measured rows), or if the mean reduction of the last ten layers exceeds
``3 sigma / sqrt(10)`` (slow but persistent progress).

Bias
----
- Gaussian data: the estimate is essentially the Gaussian-copula one (the
  first layer), unbiased to within its sampling error: about 1 % of ``TC``
  at ``n = 5000`` for ``D`` up to 50.
- Non-Gaussian dependence: Gaussianization converges slowly in many
  dimensions and only significant layers count, so ``TC`` is
  *under*-estimated, by an amount that grows with ``D`` and shrinks with
  ``n``: a few hundredths of a nat in two or three dimensions (0.01-0.05
  at ``n = 5000``), tenths of a nat in ten (measured: 0.25-0.35 nats, 13-18
  % of ``TC``, for a ten-dimensional Student t; 0.4-1.0 nats for a linear
  mixture of ten non-Gaussian sources, at ``n`` from 20000 down to 1000).
  For :func:`entropy` this is a positive bias of the same size.
- Small ``n``: one layer's noise is about ``4e-3 sqrt(2 D)`` nats at
  ``n = 1000`` (``7e-4 sqrt(2 D)`` at 20000); dependence weaker than that is
  not detected (independent features give exactly zero most of the time),
  and the first layer's sampling error grows as ``1 / sqrt(n)``.
- Marginal entropies (for :func:`entropy`) use the one-dimensional
  k-nearest-neighbour estimate, whose bias is a few thousandths of a nat;
  its standard deviation, about ``sqrt(Var[log p(x_d)] / n)`` per feature,
  is the main random error of :func:`entropy` in few dimensions.
- :func:`kl_divergence` pushes ``X`` through a density model fitted on
  ``Y``; the model's own error where ``X`` has mass adds to the estimate
  (positive for two samples of one distribution: 0.02-0.03 nats in two or
  three dimensions at ``n = 5000``, up to 0.09 at ``n = 1000``).

The benchmark ``benchmarks/bench_information.py`` measures these errors
against closed forms and a k-nearest-neighbour reference.
"""

import numbers
import time

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import Bunch, check_array

from ._compat import check_is_fitted
from ._entropy import (
    gaussian_total_correlation,
    knn_entropy,
    marginal_entropy,
    negentropy_noise,
)
from ._fitkernels import first_best
from ._fused import AffineStep, MarginalStep
from .base import check_random_state, fused_steps, spawn_seeds, standard_normal_log_pdf
from .composite import CompositeDestructor
from .deep import RBIG, DeepDestructor, LayerRecord, stack_layers
from .discrete import MAX_TIES, check_continuous, describe_discreteness
from .marginal import MarginalGaussianizer
from .rotation import PCARotation, RandomRotation, score_candidates

__all__ = ["entropy", "kl_divergence", "mutual_information", "total_correlation"]

_MIN_SAMPLES = 20
_N_NEIGHBORS = 10
_N_RANDOM = 4
_PATIENCE = 10
_MAX_LAYERS = 300
_Z = 3.0
_HALF_LOG_2PI = 0.5 * np.log(2.0 * np.pi)


# -- validation ---------------------------------------------------------------


def _check_data(X, name="X"):
    """Validate one data block: finite floats, 2-D (1-D is one feature)."""
    X = check_array(
        X, dtype=np.float64, ensure_2d=False, ensure_all_finite=True, input_name=name
    )
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D, got an array of shape {X.shape}.")
    if X.shape[0] < _MIN_SAMPLES:
        raise ValueError(
            f"{name} has {X.shape[0]} samples; information estimates need at "
            f"least {_MIN_SAMPLES}."
        )
    if X.shape[1] < 1:
        raise ValueError(f"{name} has no features.")
    with np.errstate(over="ignore"):
        constant = np.flatnonzero(np.ptp(X, axis=0) == 0)
    if constant.size:
        raise ValueError(
            f"Features {constant.tolist()} of {name} are constant: a constant "
            "has no density, so its differential entropy is -inf and its total "
            "correlation with anything is undefined. Drop these features."
        )
    _check_float_range(X, name)
    return X


def _check_float_range(X, name):
    """Refuse data whose spread overflows or whose spacing underflows float64."""
    with np.errstate(over="ignore"):
        spread = np.max(X, axis=0) - np.min(X, axis=0)
    huge = np.flatnonzero(~np.isfinite(spread))
    if huge.size:
        raise ValueError(
            f"Features {huge.tolist()} of {name} span a range that overflows "
            "float64 (values near 1e308): the estimates cannot be computed at "
            "this scale. Rescale the data (with one factor for every sample you "
            "compare, e.g. X / 1e300 and Y / 1e300) before estimating."
        )
    tiny = np.flatnonzero(spread < np.finfo(np.float64).tiny * X.shape[0])
    if tiny.size:
        raise ValueError(
            f"Features {tiny.tolist()} of {name} span a range so small (near "
            "1e-308) that their spacings underflow float64. Rescale the data "
            "(with one factor for every sample you compare) before estimating."
        )


def _check_rows(n_samples, n_features, what):
    """More rows than features: fewer give singular correlations."""
    if n_samples <= n_features:
        raise ValueError(
            f"{what} has {n_samples} rows for {n_features} features: too few rows "
            "for the number of features. The estimates need more rows than "
            "features (n rows span at most n - 1 dimensions, so the correlation "
            "matrix is singular and the total correlation diverges); use more "
            "rows or fewer features."
        )


def _check_discrete(X, name, dequantize, rs):
    """The library's rule for ties and duplicated rows (destructors.discrete).

    Returns ``X`` unchanged, raises, or with ``dequantize`` returns a
    dequantized copy (noise drawn from ``rs``, which is left untouched when
    nothing needs dequantizing, so continuous data give the same results
    with either setting).
    """
    if not isinstance(dequantize, (bool, np.bool_)):
        raise ValueError(f"dequantize must be True or False, got {dequantize!r}.")
    X, _ = check_continuous(X, name=name, dequantize=bool(dequantize), random_state=rs)
    return X


def _check_measure_data(X, name, dequantize, rs):
    """Full validation of one data block of a measure."""
    X = _check_data(X, name)
    X = _check_discrete(X, name, dequantize, rs)
    _check_rows(X.shape[0], X.shape[1], name)
    return X


def _scale(base):
    """Factor converting nats to the requested unit."""
    if base is None:
        return 1.0
    if (
        isinstance(base, bool)
        or not isinstance(base, numbers.Real)
        or not np.isfinite(base)
        or base <= 0
        or base == 1
    ):
        raise ValueError(
            f"base must be None (nats) or a positive number other than 1, got {base!r}."
        )
    return 1.0 / np.log(float(base))


def _check_estimator(estimator):
    """``None`` or a DeepDestructor (RBIG included); tell if it is fitted."""
    if estimator is None:
        return False
    if not isinstance(estimator, DeepDestructor):
        raise ValueError(
            "estimator must be None or a DeepDestructor such as RBIG, got "
            f"{type(estimator).__name__}."
        )
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True


def _check_method(method):
    if method not in ("gaussianization", "likelihood"):
        raise ValueError(
            f"method must be 'gaussianization' or 'likelihood', got {method!r}."
        )


# -- per-layer reductions -----------------------------------------------------


def _describes(layer, kind):
    """Whether a fitted layer declares itself one fused step of ``kind``."""
    steps = fused_steps(layer)
    return steps is not None and len(steps) == 1 and isinstance(steps[0], kind)


def _layer_steps(layer):
    """``(marginal, [linear, ...])`` of a fitted layer, or a ValueError.

    The reductions need a per-feature marginal map followed by affine maps;
    each step says what it is through its fused description.
    """
    steps = getattr(layer, "layers_", None)
    if (
        steps is None
        or len(steps) < 2
        or not _describes(steps[0], MarginalStep)
        or not all(_describes(s, AffineStep) for s in steps[1:])
    ):
        raise ValueError(
            "Information estimates need layers made of a MarginalGaussianizer "
            "followed by linear maps (PCARotation, RandomRotation, "
            f"GreedyRotation, ICARotation); got {layer!r}."
        )
    return steps[0], steps[1:]


def _shuffle_columns(G, rng, groups=None):
    """Permute rows independently per column (or per group of columns).

    Same marginals, no dependence between the groups; within a group the
    joint distribution is kept.
    """
    n, d = G.shape
    if groups is None:
        order = rng.permuted(np.tile(np.arange(n), (d, 1)), axis=1).T
        return np.take_along_axis(G, order, axis=0)
    G0 = np.empty_like(G)
    for group in groups:
        G0[:, group] = G[rng.permutation(n)][:, group]
    return G0


def _layer_reduction(layer, X, rng, refit, groups=None):
    """Total correlation a fitted layer removes from ``X``; also its output.

    See the module docstring: histogram entropies of the output and of the
    output of the shuffled input, so that the estimator's bias cancels; with
    ``refit`` the linear maps are refitted on the shuffled data, so the
    optimism of fitting them (a PCA fitted to sample correlations) cancels
    too. With ``groups`` (lists of column indices) whole groups are shuffled
    instead of single columns: the baseline then keeps the dependence inside
    each group and the reduction measures only the dependence between them.
    """
    marginal, linears = _layer_steps(layer)
    G, _ = marginal._forward(X)
    Y, Y0 = G, _shuffle_columns(G, rng, groups)
    log_det = log_det0 = 0.0
    W0 = np.eye(G.shape[1])
    for step in linears:
        Y, ld = step._forward(Y)
        step0 = clone(step).fit(Y0) if refit else step
        Y0, ld0 = step0._forward(Y0)
        log_det += float(ld[0])
        log_det0 += float(ld0[0])
        W0 = fused_steps(step0)[0].matrix @ W0
    H, H0 = marginal_entropy(Y), marginal_entropy(Y0)
    finite = np.isfinite(H) & np.isfinite(H0)
    variances = G.var(axis=0)
    null_tc = gaussian_total_correlation(W0 @ (variances[:, None] * W0.T))
    reduction = np.sum(H0[finite] - H[finite]) + log_det - log_det0 - null_tc
    return float(reduction), Y


def _walk(model, X, rng):
    """Per-layer reductions of a fitted DeepDestructor on data ``X``."""
    reductions = []
    for i, layer in enumerate(model.layers_):
        reduction, X = _layer_reduction(layer, X, rng, refit=(i == 0))
        reductions.append(reduction)
    return np.asarray(reductions), X


def _default_estimator():
    """The density model the measures fit when given none.

    The greedy rotation, not RBIG's default learned one: the measures'
    accuracy was established with it (``benchmarks/bench_information.py``),
    and the learned rotation did not estimate total correlation better
    there (10-D Student-t: closer at 1,000 rows, +0.07 against +0.19 nats,
    farther at 5,000, +0.26 against +0.18; ``benchmarks/results/learned.md``).
    """
    return RBIG(rotation="greedy")


def _information_layer(rotation, seed, n_knots="auto"):
    marginal = MarginalGaussianizer(n_knots=n_knots, smoothing=0.0, random_state=seed)
    return CompositeDestructor([marginal, rotation])


def _greedy_layer(Z, seed, rng):
    """Fit one layer whose rotation is chosen on half of the rows.

    The candidates are PCA and ``_N_RANDOM`` Haar rotations, all fitted on
    every row; the one whose output on rows ``A`` has the largest summed
    marginal KL to N(0, 1) (the most non-Gaussianity to remove, as in
    :class:`GreedyRotation`) wins. Returns the fitted layer, its output,
    log-determinant and the rows ``B`` on which the reduction is measured:
    choosing the best of several candidates on the same rows as the
    measurement would count the winner's luck as total correlation.
    """
    n = Z.shape[0]
    seeds = spawn_seeds(seed, _N_RANDOM + 1)
    marginal = MarginalGaussianizer(smoothing=0.0, random_state=int(seeds[0]))
    G, _ = marginal._fit_forward(Z)
    order = rng.permutation(n)
    rows_a, rows_b = order[: n // 2], order[n // 2 :]
    candidates = [PCARotation()] + [RandomRotation(random_state=int(s)) for s in seeds[1:]]
    scores = score_candidates(candidates, G, rows_a)
    winner = clone(candidates[int(first_best(np.asarray(scores, dtype=np.float64)))])
    layer = _information_layer(winner, int(seeds[0]))
    Z_next, log_det = layer._fit_forward(Z)
    return layer, Z_next, log_det, rows_b


class _NoiseFloorRule:
    """Stop after ``_PATIENCE`` layers in a row below the noise floor.

    A layer counts if its reduction beats ``_Z`` times the noise of one
    layer on Gaussian data (``sigma_first`` for the first layer, measured on
    all rows; ``sigma`` for later ones, measured on half), or if the layers
    of the last window do on average (slow, persistent structure).
    """

    def __init__(self, sigma_first, sigma):
        self.sigma_first, self.sigma = sigma_first, sigma
        self.reductions = []
        self.n_keep = self.stale = 0
        self.stop_at = None

    def needs(self, record):
        return True

    def update(self, record):
        i = len(self.reductions)
        self.reductions.append(record.tc_reduction)
        threshold = _Z * (self.sigma_first if i == 0 else self.sigma)
        window = self.reductions[max(1, i - _PATIENCE + 1) :]
        persistent = i >= _PATIENCE and np.mean(window) >= _Z * self.sigma / np.sqrt(_PATIENCE)
        if record.tc_reduction >= threshold or persistent:
            self.n_keep, self.stale = i + 1, 0
        else:
            self.stale += 1
        if self.stale >= _PATIENCE:
            self.stop_at = i + 1
        return self.stop_at is not None


class _InformationSource:
    """The data source of the information measures' stacking loop.

    The first layer is the one the factory gives (one knot per sample and
    PCA); later layers choose their rotation on one half of the rows
    (:func:`_greedy_layer`), and each layer's total-correlation reduction is
    measured against a shuffled baseline (:func:`_layer_reduction`).
    """

    def __init__(self, X, seeds, rng, groups):
        self.Z = X
        self.seeds, self.rng, self.groups = seeds, rng, groups
        self.log_det = np.zeros(X.shape[0])
        self._records = []

    def fit(self, layer, should_stop=None):
        i = len(self._records)
        if i == 0:
            Z_next, ld = layer._fit_forward(self.Z)
            reduction, _ = _layer_reduction(layer, self.Z, self.rng, refit=True,
                                            groups=self.groups)
        else:
            layer, Z_next, ld, rows_b = _greedy_layer(self.Z, int(self.seeds[i]), self.rng)
            reduction, _ = _layer_reduction(layer, self.Z[rows_b], self.rng, refit=False)
        self.Z = Z_next
        self.log_det += ld
        train = float(np.mean(standard_normal_log_pdf(self.Z) + self.log_det))
        self._records.append(LayerRecord(train, None, reduction))
        return layer

    def records(self):
        return self._records

    def finish(self, n_layers):
        """Nothing is pending."""

    def describe(self, i):
        return f"layer {i + 1}: reduction {self._records[i].tc_reduction:.5f}"


def _fit_gaussianization(X, seed, groups=None):
    """Greedy layers until the reductions reach the noise floor.

    Returns a fitted :class:`DeepDestructor` (its ``tc_reduction_`` holds
    the reductions of every layer tried) and the number of leading layers
    whose reductions count: the trailing ones below the noise floor are
    dropped. ``groups``: see :func:`_layer_reduction` (first layer only,
    where the dependence inside each group is exactly what a block's own
    Gaussianization left, e.g. none at all in-sample for whitened blocks).
    """
    start = time.perf_counter()
    n, d = X.shape
    seeds = spawn_seeds(seed, _MAX_LAYERS + 1)
    rng = np.random.default_rng(int(seeds[-1]))
    # Noise of one layer's reduction on Gaussian data: the first layer is
    # measured on all rows, later ones on half of them.
    rule = _NoiseFloorRule(
        negentropy_noise(n) * np.sqrt(2.0 * d), negentropy_noise(n - n // 2) * np.sqrt(2.0 * d)
    )

    def factory(i):
        # PCA, so Gaussian data are done in one layer, and one knot per
        # sample: the raw marginals, however skewed or heavy-tailed, become
        # exact normal scores, so no marginal non-Gaussianity is left for a
        # rotation to pass off as dependence. Later layers are chosen by the
        # source on half of the rows.
        return _information_layer(PCARotation(), int(seeds[0]), n_knots=n) if i == 0 else None

    result = stack_layers(factory, _InformationSource(X, seeds, rng, groups), rule, _MAX_LAYERS)
    n_keep = result.n_keep
    model = DeepDestructor.from_layers(
        result.layers[: max(n_keep, 1)],
        layer=_information_layer(PCARotation(), None),
        max_layers=_MAX_LAYERS,
        early_stopping=False,
        n_iter_no_change=_PATIENCE,
        tol=_Z * rule.sigma,
        random_state=seed,
    )
    model.train_score_ = np.asarray([r.train_score for r in result.records])
    model.tc_reduction_ = np.asarray([r.tc_reduction for r in result.records])
    model.fit_time_ = time.perf_counter() - start
    return model, n_keep


def _gaussianize(X, estimator, fitted, seed, groups=None):
    """Fit (or reuse) a Gaussianization of ``X``.

    Returns the model, the per-layer reductions, the number of leading
    reductions that count and their sum (the total correlation, nats).
    """
    if estimator is None:
        model, n_count = _fit_gaussianization(X, seed, groups)
        reductions = model.tc_reduction_
    else:
        if fitted:
            model = estimator
            if model.n_features_in_ != X.shape[1]:
                raise ValueError(
                    f"The fitted estimator expects {model.n_features_in_} "
                    f"features, the data have {X.shape[1]}."
                )
        else:
            model = clone(estimator).set_params(random_state=seed).fit(X)
        reductions, _ = _walk(model, X, np.random.default_rng(seed))
        n_count = reductions.size
    return model, reductions, n_count, float(np.sum(reductions[:n_count]))


# -- public measures ----------------------------------------------------------


def total_correlation(
    X, *, estimator=None, base=None, random_state=None, return_details=False, dequantize=False,
):
    """Total correlation (multi-information) of the features of ``X``.

    ``TC(X) = sum_d H(X_d) - H(X)``: zero if and only if the features are
    independent, invariant to any invertible map of each feature. Estimated
    as the sum over Gaussianization layers of the total correlation each
    layer removes (see the module docstring for the estimator and its bias).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Samples (a 1-D array is one feature), at least 20, no constant
        feature.
    estimator : DeepDestructor or None, default=None
        ``None`` fits the module's Gaussianization (first layer PCA, then
        greedy rotations, noise-floor stopping). An unfitted
        :class:`~destructors.DeepDestructor` or :class:`~destructors.RBIG`
        (with rotation layers) is cloned and fitted on ``X`` with its own
        stopping rule; a fitted one is used as is, ``X`` pushed through its
        layers (``X`` may then be held-out data). Either way every layer
        counts, measured on all rows: rotations chosen on those rows
        (:class:`GreedyRotation`, RBIG's default) then add a small positive
        bias per layer.
    base : float or None, default=None
        Logarithm base of the result: ``None`` for nats, ``2`` for bits.
    random_state : int, RandomState instance or None, default=None
        Seeds the layers and the shuffles; ``None`` is not reproducible.
    return_details : bool, default=False
        Also return a :class:`~sklearn.utils.Bunch` with the fitted
        ``estimator``, the per-layer ``layer_reductions`` (in the requested
        unit; only the first ``n_layers`` count) and ``n_layers``.
    dequantize : bool, default=False
        Discrete, rounded or tied data (a feature repeating a value more
        than 10 times, or more than 1 % duplicated rows; see
        :mod:`destructors.discrete`) raise a ValueError by default; ``True``
        adds seeded uniform noise of one grid cell to the tied features
        instead (:func:`destructors.discrete.dequantize`), which keeps the
        dependence between the discrete values. Repeated rows of
        continuous values (bootstrap resamples) are refused either way.

    Returns
    -------
    tc : float
        Estimated total correlation.
    details : Bunch
        Only with ``return_details=True``.

    See Also
    --------
    mutual_information : Total correlation between two blocks.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors.information import total_correlation
    >>> rng = np.random.default_rng(0)
    >>> cov = [[1.0, 0.8], [0.8, 1.0]]
    >>> X = rng.multivariate_normal([0, 0], cov, size=5000)
    >>> round(float(-0.5 * np.log(1 - 0.8**2)), 3)  # closed form
    0.511
    >>> tc = total_correlation(X, random_state=0)
    >>> bool(abs(tc - 0.511) < 0.03)
    True
    >>> bool(abs(total_correlation(X * [1e3, -2.0] + 7, random_state=0) - tc) < 1e-6)
    True

    Discrete data are refused unless dequantized; three independent fair
    bits have no total correlation:

    >>> bits = rng.integers(0, 2, size=(2000, 3)).astype(bool)
    >>> total_correlation(bits)
    Traceback (most recent call last):
    ...
    ValueError: Features 0 (2 distinct values, ... equal), ...
    >>> bool(abs(total_correlation(bits, dequantize=True, random_state=0)) < 0.05)
    True
    """
    rs = check_random_state(random_state)
    X = _check_measure_data(X, "X", dequantize, rs)
    scale = _scale(base)
    fitted = _check_estimator(estimator)
    seed = int(spawn_seeds(rs, 1)[0])
    model, reductions, n_count, tc = _gaussianize(X, estimator, fitted, seed)
    if not return_details:
        return tc * scale
    details = Bunch(
        total_correlation=tc * scale,
        estimator=model,
        layer_reductions=reductions * scale,
        n_layers=n_count,
    )
    return tc * scale, details


def entropy(
    X, *, estimator=None, method="gaussianization", base=None, random_state=None,
    return_details=False, dequantize=False,
):
    """Joint differential entropy of ``X``.

    With ``method="gaussianization"`` (default), ``H(X) = sum_d H(X_d) -
    TC(X)``: one-dimensional k-nearest-neighbour entropies of the features
    minus :func:`total_correlation`. With ``method="likelihood"``, the cross
    check: minus the mean held-out log-likelihood of a density model
    (two-fold: fit on one half, score the other, average). That is a
    cross-entropy, an upper bound on ``H`` by the model's KL divergence from
    the data.

    Rescaling feature ``d`` by ``a`` adds ``log|a|`` exactly; shifting it
    changes nothing.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Samples (a 1-D array is one feature), at least 20 and more than
        the number of features, no constant feature; discrete data: see
        ``dequantize``.
    estimator : DeepDestructor or None, default=None
        As in :func:`total_correlation`. For ``method="likelihood"`` it is
        the density model (cloned for each fold); ``None`` means
        ``RBIG(rotation="greedy", random_state=...)``, otherwise with its
        defaults.
    method : {"gaussianization", "likelihood"}, default="gaussianization"
        Which estimate.
    base : float or None, default=None
        Logarithm base: ``None`` for nats, ``2`` for bits.
    random_state : int, RandomState instance or None, default=None
        Seeds the fits and the shuffles.
    return_details : bool, default=False
        Also return a Bunch: ``marginal_entropies``, ``total_correlation``,
        ``estimator``, ``layer_reductions`` (gaussianization), or
        ``fold_entropies``, ``estimators`` (likelihood).
    dequantize : bool, default=False
        Discrete, rounded or tied data (a feature repeating a value more
        than 10 times, or more than 1 % duplicated rows; see
        :mod:`destructors.discrete`) raise a ValueError by default; ``True``
        adds seeded uniform noise of one grid cell to the tied features
        instead (:func:`destructors.discrete.dequantize`), which keeps the
        dependence between the discrete values. Repeated rows of
        continuous values (bootstrap resamples) are refused either way.
        The entropy of dequantized data is the discrete entropy plus the
        sum of the logarithms of the grid cells.

    Returns
    -------
    h : float
        Estimated entropy.
    details : Bunch
        Only with ``return_details=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors.information import entropy
    >>> rng = np.random.default_rng(0)
    >>> A = np.array([[1.0, 0.5], [0.2, 1.0]])
    >>> X = rng.uniform(size=(5000, 2)) @ A.T  # unit square, mixed
    >>> true = np.log(abs(np.linalg.det(A)))  # uniform sources: H = 0
    >>> bool(abs(entropy(X, random_state=0) - true) < 0.05)
    True

    Two fair dice, dequantized: the discrete entropy ``2 log 6`` (the grid
    cells have width 1):

    >>> dice = rng.integers(1, 7, size=(5000, 2))
    >>> bool(abs(entropy(dice, dequantize=True, random_state=0) - 2 * np.log(6)) < 0.05)
    True
    """
    rs = check_random_state(random_state)
    X = _check_measure_data(X, "X", dequantize, rs)
    scale = _scale(base)
    _check_method(method)
    fitted = _check_estimator(estimator)
    if method == "likelihood":
        return _likelihood_entropy(X, estimator, rs, scale, return_details)
    marginals = knn_entropy(X, _N_NEIGHBORS)
    seed = int(spawn_seeds(rs, 1)[0])
    model, reductions, _, tc = _gaussianize(X, estimator, fitted, seed)
    h = float(np.sum(marginals) - tc) * scale
    if not return_details:
        return h
    return h, Bunch(
        entropy=h,
        marginal_entropies=marginals * scale,
        total_correlation=tc * scale,
        estimator=model,
        layer_reductions=reductions * scale,
    )


def _check_pushed_forward(U, X, Y):
    """Name the cause when ``X`` collapses under the model of ``Y``.

    ``X`` passed the discreteness rule, so ties in ``U = f_Y(X)`` come from
    the model: ``X`` occupies a region of ``Y``'s space narrower than the
    float64 resolution of the map there (the samples' scales differ by many
    orders of magnitude), or lies far outside ``Y``'s range, where the map
    saturates.
    """
    report = describe_discreteness(U, name="f_Y(X)")
    collapsed = report.discrete_features
    if not collapsed.size:
        return
    ratio = np.std(Y, axis=0)[collapsed] / np.std(X, axis=0)[collapsed]
    ratios = ", ".join(f"{r:.3g}" for r in ratio)
    raise ValueError(
        f"Features {collapsed.tolist()} of X map to fewer distinct values under "
        f"the model of Y (more than {MAX_TIES} equal values of f_Y(X)), although "
        "X itself is continuous: X and Y are on such different scales (standard "
        f"deviation of Y / that of X: {ratios}) or so far apart that the model "
        "of Y cannot resolve X in float64. The divergence is then dominated by "
        "the difference in scale or location (of the order of the log of the "
        "scale ratio per feature) and cannot be estimated from these samples. "
        "This is not a discrete-data problem: compare samples on comparable "
        "scales that overlap."
    )


def _likelihood_entropy(X, estimator, rs, scale, return_details):
    seeds = spawn_seeds(rs, 3)
    template = _default_estimator() if estimator is None else estimator
    order = np.random.default_rng(int(seeds[0])).permutation(X.shape[0])
    halves = np.array_split(order, 2)
    folds, models = [], []
    for k, (fit_rows, score_rows) in enumerate([halves, halves[::-1]]):
        model = clone(template).set_params(random_state=int(seeds[k + 1])).fit(X[fit_rows])
        folds.append(-model.score(X[score_rows]))
        models.append(model)
    h = float(np.mean(folds)) * scale
    if not return_details:
        return h
    return h, Bunch(entropy=h, fold_entropies=np.asarray(folds) * scale, estimators=models)


def mutual_information(
    X, Y, *, estimator=None, base=None, random_state=None, return_details=False,
    dequantize=False,
):
    """Mutual information between the blocks ``X`` and ``Y``.

    Each block is Gaussianized on its own, then ``I(X; Y)`` is the total
    correlation of the concatenated latents ``[f_X(X), f_Y(Y)]``: MI is
    invariant to invertible maps of each block, and the Gaussianized blocks
    have no total correlation left inside. So the estimate is invariant to
    rescaling, shifting and (up to the resolution of the marginal maps) any
    monotone transform of each feature.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features_x)
        First block (1-D is one feature).
    Y : array-like of shape (n_samples, n_features_y)
        Second block, same rows.
    estimator : DeepDestructor or None, default=None
        ``None``: the module's Gaussianization for all three fits.
        Otherwise a template, cloned for each fit (a fitted estimator is
        cloned too: it cannot serve both blocks).
    base : float or None, default=None
        Logarithm base: ``None`` for nats, ``2`` for bits.
    random_state : int, RandomState instance or None, default=None
        Seeds the fits and the shuffles.
    return_details : bool, default=False
        Also return a Bunch with ``estimator_x``, ``estimator_y``,
        ``estimator_joint`` and the joint ``layer_reductions``.
    dequantize : bool, default=False
        Discrete, rounded or tied data (a feature repeating a value more
        than 10 times, or more than 1 % duplicated rows; see
        :mod:`destructors.discrete`) raise a ValueError by default; ``True``
        adds seeded uniform noise of one grid cell to the tied features
        instead (:func:`destructors.discrete.dequantize`), which keeps the
        dependence between the discrete values. Repeated rows of
        continuous values (bootstrap resamples) are refused either way.
        Each block is checked (and dequantized) on its own; the mutual
        information of dequantized blocks is that of the discrete values.

    Returns
    -------
    mi : float
        Estimated mutual information.
    details : Bunch
        Only with ``return_details=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors.information import mutual_information
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=4000)
    >>> y = 0.6 * x + 0.8 * rng.normal(size=4000)  # correlation 0.6
    >>> true = -0.5 * np.log(1 - 0.6**2)
    >>> bool(abs(mutual_information(x, np.exp(y), random_state=0) - true) < 0.03)
    True

    A die roll and a noisy copy of it: the information is the die's
    entropy minus what the noise hides. Independent discrete and continuous
    blocks give (nearly) zero once dequantized:

    >>> die = rng.integers(1, 7, size=4000)
    >>> mutual_information(die, rng.normal(size=4000))
    Traceback (most recent call last):
    ...
    ValueError: Features 0 (6 distinct values, ... equal) of X have more than 10 equal values...
    >>> mi = mutual_information(die, rng.normal(size=4000), dequantize=True, random_state=0)
    >>> bool(abs(mi) < 0.03)
    True
    """
    rs = check_random_state(random_state)
    X = _check_data(X, "X")
    Y = _check_data(Y, "Y")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"X and Y must have the same number of samples, got {X.shape[0]} "
            f"and {Y.shape[0]}."
        )
    _check_rows(X.shape[0], X.shape[1] + Y.shape[1], "[X, Y]")
    X = _check_discrete(X, "X", dequantize, rs)
    Y = _check_discrete(Y, "Y", dequantize, rs)
    scale = _scale(base)
    _check_estimator(estimator)
    template = None if estimator is None else clone(estimator)
    seeds = spawn_seeds(rs, 3)
    models = []
    latents = []
    for block, seed in zip((X, Y), seeds[:2], strict=True):
        model, _, _, _ = _gaussianize(block, template, False, int(seed))
        models.append(model)
        latents.append(model.transform(block))
    joint = np.hstack(latents)
    # The first layer's baseline shuffles the two blocks' rows against each
    # other, keeping each block as its Gaussianization left it (whitened
    # in-sample), so only spurious *cross* correlations are subtracted.
    groups = [np.arange(X.shape[1]), np.arange(X.shape[1], joint.shape[1])]
    model_j, reductions, _, mi = _gaussianize(joint, template, False, int(seeds[2]), groups)
    mi *= scale
    if not return_details:
        return mi
    return mi, Bunch(
        mutual_information=mi,
        estimator_x=models[0],
        estimator_y=models[1],
        estimator_joint=model_j,
        layer_reductions=reductions * scale,
    )


def kl_divergence(
    X, Y, *, estimator=None, base=None, random_state=None, return_details=False,
    dequantize=False,
):
    """Kullback-Leibler divergence ``KL(P_X || P_Y)`` from samples of each.

    A Gaussianization ``f`` is fitted on ``Y`` and ``X`` is pushed through
    it. KL divergence is invariant to a common invertible map, and ``f``
    maps ``P_Y`` to ``N(0, I)``, so ``KL(P_X || P_Y) = KL(U || N(0, I))``
    with ``U = f(X)``, which is ``TC(U) + sum_d KL(U_d || N(0, 1))``: the
    total correlation of ``U`` (:func:`total_correlation`) plus
    one-dimensional terms (k-nearest-neighbour entropy and the second
    moment).

    Strictly, the estimate is ``KL(P_X || Q)`` with ``Q`` the fitted model
    of ``Y``: the model's error where ``X`` has mass adds to it (positive
    for two samples of one distribution, of either sign otherwise; a few
    hundredths of a nat in two or three dimensions at ``n = 5000``, more
    where ``X`` reaches far into the tails of ``Y``).

    Parameters
    ----------
    X : array-like of shape (n_samples_x, n_features)
        Samples of ``P_X`` (1-D is one feature).
    Y : array-like of shape (n_samples_y, n_features)
        Samples of ``P_Y``, same features.
    estimator : DeepDestructor or None, default=None
        The density model of ``Y``, whose map ``f`` is used: ``None`` fits
        ``RBIG(rotation="greedy", random_state=...)``, otherwise with its
        defaults (kernel-smoothed
        marginal CDFs, depth chosen by held-out likelihood: what matters
        here is how well the model generalizes, in particular its tails,
        where ``X`` may put more mass than ``Y``); an unfitted estimator is
        cloned and fitted on ``Y``; a fitted one is taken as already fitted
        on ``Y``. The total correlation of ``U`` always uses the module's
        Gaussianization.
    base : float or None, default=None
        Logarithm base: ``None`` for nats, ``2`` for bits.
    random_state : int, RandomState instance or None, default=None
        Seeds the fits and the shuffles.
    return_details : bool, default=False
        Also return a Bunch with ``total_correlation`` and ``marginal_kl``
        (of ``U``), ``estimator_y`` and ``estimator_u``.
    dequantize : bool, default=False
        Discrete, rounded or tied data (a feature repeating a value more
        than 10 times, or more than 1 % duplicated rows; see
        :mod:`destructors.discrete`) raise a ValueError by default; ``True``
        adds seeded uniform noise of one grid cell to the tied features
        instead (:func:`destructors.discrete.dequantize`), which keeps the
        dependence between the discrete values. Repeated rows of
        continuous values (bootstrap resamples) are refused either way.
        Each sample is checked (and dequantized) on its own.

    Returns
    -------
    kl : float
        Estimated divergence (not clipped at zero: values slightly below
        zero mean "indistinguishable at this sample size").
    details : Bunch
        Only with ``return_details=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors.information import kl_divergence
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(1.0, 1.0, size=(4000, 1))
    >>> Y = rng.normal(0.0, 2.0, size=(4000, 1))
    >>> true = np.log(2.0) + (1 + 1) / (2 * 4) - 0.5  # KL(N(1, 1) || N(0, 4))
    >>> bool(abs(kl_divergence(X, Y, random_state=0) - true) < 0.03)
    True

    Samples of a discrete variable are refused; a boolean ``Y`` says so
    instead of returning ``inf``:

    >>> kl_divergence(X, Y > 0)
    Traceback (most recent call last):
    ...
    ValueError: Features 0 (2 distinct values, ... equal) of Y have more than 10 equal values...
    """
    rs = check_random_state(random_state)
    X = _check_measure_data(X, "X", dequantize, rs)
    Y = _check_measure_data(Y, "Y", dequantize, rs)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"X and Y must have the same number of features, got {X.shape[1]} "
            f"and {Y.shape[1]}."
        )
    scale = _scale(base)
    fitted = _check_estimator(estimator)
    seeds = spawn_seeds(rs, 2)
    if fitted:
        model_y = estimator
        if model_y.n_features_in_ != Y.shape[1]:
            raise ValueError(
                f"The fitted estimator expects {model_y.n_features_in_} features, "
                f"X and Y have {Y.shape[1]}."
            )
    else:
        template = _default_estimator() if estimator is None else estimator
        model_y = clone(template).set_params(random_state=int(seeds[0])).fit(Y)
    U = model_y.transform(X)
    _check_pushed_forward(U, X, Y)
    marginal_kl = -knn_entropy(U, _N_NEIGHBORS) + _HALF_LOG_2PI + 0.5 * np.mean(U**2, axis=0)
    model_u, _, _, tc = _gaussianize(U, None, False, int(seeds[1]))
    kl = (tc + float(np.sum(marginal_kl))) * scale
    if not np.isfinite(kl):
        raise ValueError(
            "The KL divergence estimate overflowed float64: X lies so far outside "
            "the range of Y, or the data are at so extreme a scale, that the "
            "model of Y cannot place it. Rescale both samples with one common "
            "factor, and compare samples that overlap."
        )
    if not return_details:
        return kl
    return kl, Bunch(
        kl_divergence=kl,
        total_correlation=tc * scale,
        marginal_kl=marginal_kl * scale,
        estimator_y=model_y,
        estimator_u=model_u,
    )
