"""Dask front end: apply, sample and fit destructors on Dask arrays.

Imported only when a method of a destructor receives a ``dask.array.Array``
(or ``sample`` is given ``chunks``), so ``import destructors`` never imports
Dask. Install it with ``pip install destructors[dask]``.

Applying a fitted model
    ``transform``, ``inverse_transform``, ``transform_log_det``,
    ``score_samples`` and ``score`` map every block of rows with
    ``map_blocks`` (columns in one chunk) and return lazy arrays; the fitted
    model is one task of the graph, shipped once to each worker. Inside a
    worker thread the Numba kernels run serially (see
    :mod:`destructors._kernels`), so the scheduler's threads or processes
    are the only parallelism. Validation is the NumPy path's: number of
    dimensions, features and a numeric dtype when the graph is built;
    finiteness of the input and of the output per block when it runs (a
    ``ValueError`` on the client).

Sampling
    ``sample(n, random_state, chunks=...)`` draws block ``i`` from the
    ``i``-th child of ``np.random.SeedSequence(seed).spawn(n_blocks)``, so
    the values depend on ``random_state`` and ``chunks`` only, never on the
    number of workers or the scheduler.

Fitting on data larger than memory
    ``fit`` makes passes over the data: each pass pushes every block through
    the layers fitted so far (the source is read again, nothing is
    persisted), computes mergeable statistics of the training rows
    (:mod:`destructors._stats`) and merges them in a tree. Passes per layer:

    - :class:`MarginalGaussianizer`: a fine histogram (2**14 bins per
      feature) of its input, which needs a min/max pass first unless bounds
      are known; the histogram of the previous layer's output is reused
      when there is one (after a :class:`GreedyRotation`), so 0 to 2 passes,
      plus at most two refining passes when a bin is too heavy for the knots
      (atoms or extreme tails, in practice only on the raw data);
    - :class:`PCARotation`: one pass (count, mean, co-moments);
    - :class:`RandomRotation`: none;
    - :class:`GreedyRotation`: two (moments for the PCA candidate, then
      histograms of all candidates, whose marginal KL divergences pick the
      winner; the winner's histogram feeds the next marginal map);
    - :class:`DeepDestructor`/:class:`RBIG`: the passes of each layer, and
      ``tc_reduction_`` needs a histogram of each layer's output (free after
      a greedy rotation, one pass otherwise). Train and validation scores
      ride along with the next pass; one last pass scores the last layer.

    So the default RBIG layer (marginal map + greedy rotation) costs two
    passes, plus two for the first layer's min/max and histogram; with
    ``refit=True`` after early stopping the chosen depth is fitted again on
    all rows. Layer ``l`` re-applies the ``l - 1`` earlier layers to every
    block, so a fit of ``L`` layers costs ``O(L**2)`` layer applications.

    Memory per worker: a few copies of one block (input, each layer's
    output, the log-determinant), the fitted prefix, and the statistics of
    the blocks being merged: ``8 * n_features**2`` bytes for moments, and
    ``8 * 2**14 * n_features`` bytes per histogrammed image for histograms
    (five images for a greedy rotation: 6.5 MB at 10 features). Neither
    grows with the number of rows.

    Early stopping holds out rows with a seeded Bernoulli mask per block
    (``SeedSequence(seed, spawn_key=(block,))``): reproducible, independent
    of workers, and spread over the whole data even when it is sorted; the
    held-out fraction is ``validation_fraction`` in expectation.
"""

import copy
import numbers
import time
import uuid

import dask
import dask.array as da
import numpy as np
from sklearn.base import clone

from ._compat import check_is_fitted
from ._stats import Grid, Histograms, MinMax, Moments, feature_histograms, kl_to_normal
from .base import (
    _check_finite_output,
    check_random_state,
    spawn_seeds,
    standard_normal_log_pdf,
)
from .composite import CompositeDestructor
from .deep import DeepDestructor, _seed_layer, _StoppingRule
from .marginal import MarginalGaussianizer
from .rotation import GreedyRotation, PCARotation, RandomRotation

# Partial statistics merged per task when reducing a pass.
_FAN_IN = 8
# At most this many passes to refine a marginal histogram.
_MAX_REFINE = 2


# -- input -------------------------------------------------------------------
def as_rows(X, n_features=None):
    """Check a Dask array's shape and dtype; put its columns in one chunk.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Numeric data.
    n_features : int or None, default=None
        Required number of columns.

    Returns
    -------
    X : dask.array.Array
        The same data chunked by rows only.

    Examples
    --------
    >>> import dask.array as da
    >>> from destructors._dask import as_rows
    >>> as_rows(da.zeros((10, 4), chunks=(5, 2))).chunks
    ((5, 5), (4,))
    """
    if not isinstance(X, da.Array):
        raise TypeError(
            f"Expected a dask.array.Array, got {type(X).__name__}; convert a Dask "
            "DataFrame with .to_dask_array(lengths=True)."
        )
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2D Dask array of shape (n_samples, n_features), got {X.ndim}D."
        )
    if X.dtype.kind not in "biuf":
        raise ValueError(f"Dask array dtype {X.dtype} is not numeric (bool, int or float).")
    if np.isnan(X.shape[1]) or X.shape[1] < 1:
        raise ValueError("The Dask array needs a known, positive number of columns.")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(
            f"X has {X.shape[1]} features, but the destructor is expecting "
            f"{n_features} features as input."
        )
    if X.shape[0] == 0:
        raise ValueError("Found a Dask array with 0 samples.")
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    return X


def _checked(block):
    """A block as float64, refusing NaN and infinity."""
    X = np.asarray(block, dtype=np.float64)
    if not np.all(np.isfinite(X)):
        raise ValueError("Input X contains NaN or infinity (in a block of the Dask array).")
    return X


def _model_task(estimator):
    """The fitted model as one task, copied so later refits leave results alone."""
    name = f"{type(estimator).__name__.lower()}-{uuid.uuid4().hex}"
    return dask.delayed(copy.deepcopy(estimator), name=name, traverse=False)


def _out_dtype(X):
    return np.float32 if X.dtype == np.float32 else np.float64


# -- applying a fitted model ------------------------------------------------
def _forward_block(block, model, what):
    X = _checked(block)
    with np.errstate(over="ignore", invalid="ignore"):
        Z, log_det = model._forward(X)
    _check_finite_output(Z, what)
    _check_finite_output(log_det, what)
    return Z, log_det


def _transform_block(block, model, dtype):
    return _forward_block(block, model, "transform")[0].astype(dtype, copy=False)


def _transform_log_det_block(block, model):
    Z, log_det = _forward_block(block, model, "transform")
    return np.column_stack([Z, log_det])


def _score_block(block, model):
    Z, log_det = _forward_block(block, model, "transform")
    with np.errstate(over="ignore", invalid="ignore"):
        log_density = standard_normal_log_pdf(Z) + log_det
    _check_finite_output(log_density, "score_samples")
    return log_density


def _inverse_block(block, model, dtype):
    Z = _checked(block)
    with np.errstate(over="ignore", invalid="ignore"):
        X, _ = model._inverse(Z)
    _check_finite_output(X, "inverse_transform")
    return X.astype(dtype, copy=False)


def _prepare(estimator, X):
    check_is_fitted(estimator)
    return as_rows(X, estimator.n_features_in_)


def transform(estimator, X):
    """Lazy ``estimator.transform(X)``, block by block (see the module docs).

    Parameters
    ----------
    estimator : BaseDestructor
        A fitted destructor.
    X : dask.array.Array of shape (n_samples, n_features)
        Data.

    Returns
    -------
    Z : dask.array.Array of shape (n_samples, n_features)
        Latent points, float32 for float32 input, else float64.

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> from destructors import PCARotation
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> rot = PCARotation().fit(X)
    >>> Z = rot.transform(da.from_array(X, chunks=30))
    >>> bool(np.allclose(Z.compute(), rot.transform(X)))
    True
    """
    X = _prepare(estimator, X)
    dtype = _out_dtype(X)
    return X.map_blocks(
        _transform_block, _model_task(estimator), dtype,
        dtype=dtype, meta=np.empty((0, X.shape[1]), dtype=dtype),
    )


def transform_log_det(estimator, X):
    """Lazy ``estimator.transform_log_det(X)``: ``(Z, log_det)``, computed together.

    Parameters
    ----------
    estimator : BaseDestructor
        A fitted destructor.
    X : dask.array.Array of shape (n_samples, n_features)
        Data.

    Returns
    -------
    Z : dask.array.Array of shape (n_samples, n_features)
        Latent points, float64.
    log_det : dask.array.Array of shape (n_samples,)
        log|det J| of each row.

    Examples
    --------
    >>> import dask, dask.array as da, numpy as np
    >>> from destructors import PCARotation
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> Z, log_det = PCARotation(whiten=True).fit(X).transform_log_det(da.from_array(X, 30))
    >>> Z, log_det = dask.compute(Z, log_det)
    >>> Z.shape, log_det.shape
    ((100, 2), (100,))
    """
    X = _prepare(estimator, X)
    d = X.shape[1]
    both = X.map_blocks(
        _transform_log_det_block, _model_task(estimator),
        chunks=(X.chunks[0], (d + 1,)), dtype=np.float64, meta=np.empty((0, d + 1)),
    )
    return both[:, :d], both[:, d]


def score_samples(estimator, X):
    """Lazy ``estimator.score_samples(X)``.

    Parameters
    ----------
    estimator : BaseDestructor
        A fitted destructor.
    X : dask.array.Array of shape (n_samples, n_features)
        Points to score.

    Returns
    -------
    log_density : dask.array.Array of shape (n_samples,)
        Log-density of each row.

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> from destructors import PCARotation
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> rot = PCARotation(whiten=True).fit(X)
    >>> lazy = rot.score_samples(da.from_array(X, chunks=30))
    >>> bool(np.allclose(lazy.compute(), rot.score_samples(X)))
    True
    """
    X = _prepare(estimator, X)
    return X.map_blocks(
        _score_block, _model_task(estimator),
        drop_axis=1, dtype=np.float64, meta=np.empty((0,)),
    )


def score(estimator, X):
    """Lazy mean log-likelihood: a 0-d Dask array (``float(result)`` computes it).

    Parameters
    ----------
    estimator : BaseDestructor
        A fitted destructor.
    X : dask.array.Array of shape (n_samples, n_features)
        Points to score.

    Returns
    -------
    score : dask.array.Array of shape ()
        Mean of :func:`score_samples`.

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> from destructors import PCARotation
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> rot = PCARotation(whiten=True).fit(X)
    >>> bool(np.isclose(float(rot.score(da.from_array(X, chunks=30))), rot.score(X)))
    True
    """
    return score_samples(estimator, X).mean()


def inverse_transform(estimator, X):
    """Lazy ``estimator.inverse_transform(X)``.

    Parameters
    ----------
    estimator : BaseDestructor
        A fitted destructor.
    X : dask.array.Array of shape (n_samples, n_features)
        Latent points.

    Returns
    -------
    X_original : dask.array.Array of shape (n_samples, n_features)
        Points in data space, float32 for float32 input, else float64.

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> from destructors import PCARotation
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> rot = PCARotation().fit(X)
    >>> Z = rot.transform(da.from_array(X, chunks=30))
    >>> bool(np.allclose(rot.inverse_transform(Z).compute(), X))
    True
    """
    Z = _prepare(estimator, X)
    dtype = _out_dtype(Z)
    return Z.map_blocks(
        _inverse_block, _model_task(estimator), dtype,
        dtype=dtype, meta=np.empty((0, Z.shape[1]), dtype=dtype),
    )


# -- sampling ----------------------------------------------------------------
def _root_entropy(random_state):
    """An integer seed for the ``SeedSequence`` of a lazy sample."""
    if random_state is None:
        return np.random.SeedSequence().entropy
    if isinstance(random_state, numbers.Integral):
        return int(random_state)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    return int(check_random_state(random_state).randint(0, 2**63 - 1, dtype=np.int64))


def _sample_block(model, seed, n_rows):
    Z = np.random.default_rng(seed).standard_normal((n_rows, model.n_features_in_))
    with np.errstate(over="ignore", invalid="ignore"):
        X, _ = model._inverse(Z)
    _check_finite_output(X, "sample")
    return X


def sample(estimator, n_samples, random_state, chunks):
    """Lazy samples: block ``i`` is drawn from the ``i``-th spawned seed.

    Parameters
    ----------
    estimator : BaseDestructor
        A fitted destructor.
    n_samples : int
        Number of samples.
    random_state : int, RandomState instance, Generator or None
        Root seed (an integer is used as is; a generator or RandomState gives
        one draw).
    chunks : int, tuple of int or str
        Rows per block, as ``dask.array`` chunks (e.g. ``1_000_000``).

    Returns
    -------
    X : dask.array.Array of shape (n_samples, n_features)
        Samples; the same for the same ``random_state`` and ``chunks``
        whatever the scheduler or number of workers.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors import PCARotation
    >>> rot = PCARotation().fit(np.random.default_rng(0).normal(size=(100, 2)))
    >>> lazy = rot.sample(1000, random_state=0, chunks=300)
    >>> lazy.chunks
    ((300, 300, 300, 100), (2,))
    >>> bool(np.array_equal(lazy.compute(), rot.sample(1000, 0, chunks=300).compute()))
    True
    """
    rows = da.core.normalize_chunks(chunks, shape=(n_samples,), dtype=np.float64)[0]
    seeds = np.random.SeedSequence(_root_entropy(random_state)).spawn(len(rows))
    model = _model_task(estimator)
    d = estimator.n_features_in_
    blocks = [
        da.from_delayed(
            dask.delayed(_sample_block, pure=True)(model, seed, n_rows),
            shape=(n_rows, d), dtype=np.float64, meta=np.empty((0, d)),
        )
        for seed, n_rows in zip(seeds, rows, strict=True)
    ]
    return da.concatenate(blocks, axis=0)


# -- passes over the data ---------------------------------------------------
class _Stop(Exception):
    """Raised before a pass when the depth search has already decided to stop."""


def _block_pass(block, index, layers, holdout, score_at, stats):
    """One block's contribution to a pass (see :meth:`_Stream.run`)."""
    X = _checked(block)
    n = X.shape[0]
    val = None
    if holdout is not None:
        fraction, seed = holdout
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
        val = rng.random(n) < fraction
    log_det = np.zeros(n)
    scores = {}

    def record(k):
        ll = standard_normal_log_pdf(X) + log_det
        if val is None:
            scores[k] = np.array([ll.sum(), n, 0.0, 0.0])
        else:
            scores[k] = np.array([ll[~val].sum(), n - val.sum(), ll[val].sum(), val.sum()])

    if 0 in score_at:
        record(0)
    with np.errstate(over="ignore", invalid="ignore"):  # reported below
        for k, layer in enumerate(layers, 1):
            X, ld = layer._forward(X)
            log_det += ld
            if k in score_at:
                record(k)
    _check_finite_output(X, "fit")
    _check_finite_output(log_det, "fit")
    train = X if val is None else X[~val]
    return {
        "n": np.array([train.shape[0], n - train.shape[0]]),
        "scores": scores,
        "stats": [s.compute(train) for s in stats],
        "merge": [s.merge for s in stats],
    }


def _merge_passes(*parts):
    out = parts[0]
    for part in parts[1:]:
        scores = dict(out["scores"])
        for k, v in part["scores"].items():
            scores[k] = scores[k] + v if k in scores else v
        out = {
            "n": out["n"] + part["n"],
            "scores": scores,
            "stats": [m(a, b) for m, a, b in zip(out["merge"], out["stats"], part["stats"],
                                                 strict=True)],
            "merge": out["merge"],
        }
    return out


class _Stream:
    """Training rows of a Dask array pushed through the layers fitted so far.

    ``layers`` are fitted leaf destructors applied, in order, to every block
    of each pass. ``bounds`` (per-feature ``(lo, hi)`` holding every training
    row of the current output) and ``hist`` (``(grid, statistics)`` of it)
    are what the last layer left known, so the next layer can skip passes.
    """

    def __init__(self, X, holdout=None):
        self.X = X
        self.blocks = X.to_delayed().ravel().tolist()
        self.holdout = holdout
        self.layers = []
        self.bounds = None
        self.hist = None
        self.pending = set()
        self.scores = {}
        self.n = None
        self.n_val = None
        self.n_passes = 0
        self.stop = lambda: False
        self.on_scores = lambda: None

    @property
    def n_features(self):
        return self.X.shape[1]

    def append(self, layer, bounds=None, hist=None):
        """Add a fitted leaf and what is known about the new output."""
        self.layers.append(layer)
        self.bounds = bounds
        self.hist = hist

    def run(self, *stats):
        """One pass: merged statistics of the training rows at the output.

        Also computes the train/validation scores at the prefix lengths in
        ``pending`` (mean of ``log N(y) + log|det|``), stored in ``scores``.
        """
        if self.stop():
            raise _Stop
        layers = dask.delayed(
            tuple(self.layers), name=f"destructor-layers-{uuid.uuid4().hex}", traverse=False
        )
        score_at = frozenset(self.pending)
        parts = [
            dask.delayed(_block_pass, pure=False)(b, i, layers, self.holdout, score_at, stats)
            for i, b in enumerate(self.blocks)
        ]
        while len(parts) > 1:
            parts = [
                dask.delayed(_merge_passes, pure=False)(*parts[i : i + _FAN_IN])
                for i in range(0, len(parts), _FAN_IN)
            ]
        (result,) = dask.compute(parts[0])
        self.n_passes += 1
        n_train, n_val = (int(v) for v in result["n"])
        if self.n is None:
            self._check_counts(n_train, n_val)
        self.n, self.n_val = n_train, n_val
        for k, (s_train, c_train, s_val, c_val) in result["scores"].items():
            self.scores[k] = (s_train / c_train, s_val / c_val if c_val else None)
        self.pending -= set(score_at)
        if score_at:
            self.on_scores()
        return result["stats"]

    def _check_counts(self, n_train, n_val):
        if self.holdout is not None and (n_val < 1 or n_train < 2):
            raise ValueError(
                f"early_stopping held out {n_val} of {n_train + n_val} samples, leaving "
                f"{n_train} to fit; pass more samples or early_stopping=False."
            )
        if n_train < 2:
            raise ValueError(f"Found {n_train} sample(s) while a minimum of 2 is required.")

    def histograms(self):
        """``(grid, statistics)`` of the current output, computing it if needed."""
        if self.hist is None:
            if self.bounds is None:
                _, lo, hi = self.run(MinMax())[0]
                self.bounds = (lo, hi)
            grid = Grid.uniform(*self.bounds)
            self.hist = (grid, self.run(Histograms([grid], bin_extremes=True))[0])
        return self.hist


def _pick(result, image):
    """One image's share of merged :class:`Histograms` statistics."""
    return {k: (v if np.ndim(v) == 0 else v[image : image + 1]) for k, v in result.items()}


def _linear_bounds(layer, box=None, max_sq_norm=None):
    """Outer bounds of ``(y - shift) @ matrix.T`` over a box or a ball of inputs."""
    A, s = layer.matrix_, layer.shift_
    lo = np.full(A.shape[0], -np.inf)
    hi = np.full(A.shape[0], np.inf)
    if max_sq_norm is not None:
        r = np.linalg.norm(A, axis=1) * (np.sqrt(max_sq_norm) + np.linalg.norm(s))
        lo, hi = -r, r
    if box is not None:
        a, b = A * (box[0] - s), A * (box[1] - s)
        lo = np.maximum(lo, np.minimum(a, b).sum(axis=1))
        hi = np.minimum(hi, np.maximum(a, b).sum(axis=1))
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        return None
    pad = 1e-9 * np.maximum(hi - lo, np.maximum(np.abs(lo), np.abs(hi)))
    return lo - pad, hi + pad


# -- fitting each kind of layer ---------------------------------------------
def _overrides(estimator, cls, *methods):
    """Whether ``estimator`` changes how ``cls`` fits (then stats cannot fit it)."""
    return any(getattr(type(estimator), m) is not getattr(cls, m) for m in methods)


def _fit_marginal(layer, stream):
    grid, result = stream.histograms()
    m = layer._resolution(min(stream.n, layer.subsample))
    for _ in range(_MAX_REFINE):
        # Refine until no bin holds more than half the mass between two knots.
        finer = grid.refined(result["counts"][0], 0.5 / max(m - 1, 1))
        if finer is None:
            break
        grid, result = finer, stream.run(Histograms([finer], bin_extremes=True))[0]
    layer._fit_histograms(feature_histograms(result, grid))
    ends, _ = layer._forward(np.vstack([result["min"][0], result["max"][0]]))
    stream.append(layer, bounds=(ends[0], ends[1]))


def _fit_pca(layer, stream):
    n, mean, comoment, max_sq = stream.run(Moments())[0]
    with np.errstate(over="ignore", invalid="ignore"):
        layer._fit_moments(mean, comoment / n)
    stream.append(layer, bounds=_linear_bounds(layer, stream.bounds, max_sq))


def _fit_random(layer, stream):
    layer._fit(np.zeros((2, stream.n_features)))  # only the dimension is used
    stream.append(layer, bounds=_linear_bounds(layer, stream.bounds))


def _fit_greedy(layer, stream):
    d = stream.n_features
    n, mean, comoment, max_sq = stream.run(Moments())[0]
    pca = PCARotation()
    pca.n_features_in_ = d
    with np.errstate(over="ignore", invalid="ignore"):
        pca._fit_moments(mean, comoment / n)
    candidates = [pca] + layer._random_candidates()
    for candidate in candidates[1:]:
        candidate.n_features_in_ = d
        candidate._fit(np.zeros((2, d)))  # only the dimension is used
    bounds = [_linear_bounds(c, stream.bounds, max_sq) for c in candidates]
    if any(b is None for b in bounds):
        raise ValueError("GreedyRotation: the data are too large for float64; rescale them.")
    grids = [Grid.uniform(*b) for b in bounds]
    maps = [(c.matrix_, c.shift_) for c in candidates]
    result = stream.run(Histograms(grids, maps))[0]
    scores = [kl_to_normal(result, g, image=c).sum() for c, g in enumerate(grids)]
    layer._choose(candidates, scores)
    best = int(np.argmax(layer.candidate_scores_))
    bounds = (result["min"][best], result["max"][best])
    stream.append(layer, bounds=bounds, hist=(grids[best], _pick(result, best)))


def _fit_composite(layer, stream):
    if len(layer.layers) == 0:
        raise ValueError("CompositeDestructor needs at least one layer.")
    layer._n_features_out = stream.n_features
    layer.layers_ = []
    for template in layer.layers:
        sub = clone(template)
        fit_layer(sub, stream)
        layer.layers_.append(sub)


_FITTERS = [
    (CompositeDestructor, ("_fit", "_fit_forward", "_forward"), _fit_composite),
    (MarginalGaussianizer, ("_fit", "_forward"), _fit_marginal),
    (GreedyRotation, ("_fit", "_forward"), _fit_greedy),
    (PCARotation, ("_fit", "_forward"), _fit_pca),
    (RandomRotation, ("_fit", "_forward"), _fit_random),
]


def fit_layer(layer, stream):
    """Fit an unfitted destructor on the stream's output, appending its leaves.

    Parameters
    ----------
    layer : BaseDestructor
        A fresh (cloned) destructor of a supported kind.
    stream : _Stream
        The data and the layers already fitted.

    Returns
    -------
    layer : BaseDestructor
        The fitted destructor.

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> from destructors import PCARotation
    >>> from destructors._dask import _Stream, fit_layer
    >>> X = np.random.default_rng(0).normal(size=(100, 2)) * [1.0, 3.0]
    >>> stream = _Stream(da.from_array(X, chunks=(30, 2)))
    >>> rot = fit_layer(PCARotation(), stream)
    >>> bool(np.allclose(rot.matrix_, PCARotation().fit(X).matrix_)), stream.n_passes
    (True, 1)
    """
    layer._validate_params()
    layer.n_features_in_ = stream.n_features
    for cls, methods, fitter in _FITTERS:
        if isinstance(layer, cls) and not _overrides(layer, cls, *methods):
            fitter(layer, stream)
            return layer
    raise NotImplementedError(
        f"{type(layer).__name__} cannot be fitted on a Dask array: fitting from "
        "statistics supports CompositeDestructor, MarginalGaussianizer, PCARotation, "
        "RandomRotation and GreedyRotation (and DeepDestructor/RBIG stacking them). "
        "Fit it on a NumPy sample instead; the fitted model still applies to Dask arrays."
    )


# -- fitting entry points ---------------------------------------------------
def fit(estimator, X):
    """Fit a destructor on a Dask array from statistics gathered in passes.

    Parameters
    ----------
    estimator : BaseDestructor
        The destructor; its parameters are already validated.
    X : dask.array.Array of shape (n_samples, n_features)
        Training data.

    Returns
    -------
    estimator : BaseDestructor
        The fitted destructor: the same in-memory estimator a NumPy fit gives.

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> from destructors import MarginalGaussianizer
    >>> X = np.random.default_rng(0).gamma(2.0, size=(5000, 2))
    >>> lazy = MarginalGaussianizer().fit(da.from_array(X, chunks=(1000, 2)))
    >>> eager = MarginalGaussianizer().fit(X)
    >>> bool(abs(lazy.score(X) - eager.score(X)) < 1e-3)
    True
    """
    X = as_rows(X)
    if not np.isnan(X.shape[0]) and X.shape[0] < 2:
        raise ValueError(f"Found {X.shape[0]} sample(s) while a minimum of 2 is required.")
    if hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_
    estimator.n_features_in_ = X.shape[1]
    if isinstance(estimator, DeepDestructor) and not _overrides(
        estimator, DeepDestructor, "_fit", "_forward"
    ):
        return _fit_deep(estimator, X)
    if isinstance(estimator, DeepDestructor):
        fit_layer(estimator, _Stream(X))  # raises NotImplementedError
    stream = _Stream(X)
    fit_layer(estimator, stream)
    if stream.n is None:  # no pass was needed: still check the data
        stream.run()
    return estimator


class _Search:
    """Mirror of :meth:`DeepDestructor._search` fed layer by layer.

    Scores arrive one pass late (they ride along with the next pass), so
    decisions are taken in order as each layer's numbers become known.
    """

    def __init__(self, est, stream):
        self.est = est
        self.stream = stream
        self.tc, self.ends = [], []
        self.decided = 0
        self.rule = _StoppingRule(est)
        self.stop_at = None
        self.log = []

    def scores(self, i):
        return self.stream.scores.get(self.ends[i])

    def advance(self):
        """Take every decision whose numbers are known."""
        est = self.est
        while self.stop_at is None and self.decided < len(self.tc):
            i = self.decided
            score = self.scores(i)
            if est.early_stopping and score is None:
                return
            stop = self.rule.update(score[1] if est.early_stopping else None, self.tc[i])
            self.decided += 1
            if stop:
                self.stop_at = i

    def run(self, seeds):
        est, stream = self.est, self.stream
        stream.on_scores = self.advance
        stream.stop = lambda: self.stop_at is not None
        template = est._make_layer()
        layers = []
        for i, seed in enumerate(seeds):
            t0, p0 = time.perf_counter(), stream.n_passes
            layer = _seed_layer(clone(template), int(seed))
            try:
                fit_layer(layer, stream)
                # The pass that histograms this layer's output (if one is
                # needed) also scores it.
                stream.pending.add(len(stream.layers))
                grid, result = stream.histograms()
            except _Stop:
                break
            layers.append(layer)
            self.ends.append(len(stream.layers))
            self.tc.append(float(kl_to_normal(result, grid).sum()))
            self.log.append((stream.n_passes - p0, time.perf_counter() - t0))
            self.advance()
            if est.verbose:
                self._print(i)
            if self.stop_at is not None:
                break
        n_fitted = len(layers) if self.stop_at is None else self.stop_at + 1
        missing = {self.ends[i] for i in range(n_fitted) if self.scores(i) is None}
        if missing:
            stream.stop = lambda: False
            stream.pending = missing
            stream.run()
            self.advance()
            if self.stop_at is not None:
                n_fitted = min(n_fitted, self.stop_at + 1)
        self._record(n_fitted)
        n_keep = self.rule.n_keep
        if not est.early_stopping and est.tol is None:
            n_keep = n_fitted
        return layers[:n_fitted], max(n_keep, 1)

    def _print(self, i):
        passes, seconds = self.log[i]
        msg = f"layer {i + 1}: tc reduction {self.tc[i]:.5f}, {passes} passes, {seconds:.1f} s"
        scored = [k for k in range(i + 1) if self.scores(k) is not None]
        if scored:
            train, val = self.scores(scored[-1])
            msg += f"; layer {scored[-1] + 1}: train {train:.4f}"
            if val is not None:
                msg += f", validation {val:.4f}"
        print(msg)

    def _record(self, n_fitted):
        est = self.est
        est.train_score_ = np.asarray([self.scores(i)[0] for i in range(n_fitted)])
        est.validation_score_ = (
            np.asarray([self.scores(i)[1] for i in range(n_fitted)])
            if est.early_stopping else None
        )
        est.tc_reduction_ = np.asarray(self.tc[:n_fitted])


def _fit_deep(est, X):
    start = time.perf_counter()
    rng = check_random_state(est.random_state)
    seeds = spawn_seeds(rng, est.max_layers)
    holdout = None
    if est.early_stopping:
        holdout = (est.validation_fraction, int(rng.randint(0, 2**31 - 1)))
    search = _Search(est, _Stream(X, holdout))
    layers, n_keep = search.run(seeds)
    log = search.log[: len(layers)]
    if holdout is not None and est.refit:
        stream = _Stream(X)
        layers = []
        for seed in seeds[:n_keep]:
            t0, p0 = time.perf_counter(), stream.n_passes
            layers.append(fit_layer(_seed_layer(clone(est._make_layer()), int(seed)), stream))
            log.append((stream.n_passes - p0, time.perf_counter() - t0))
    else:
        layers = layers[:n_keep]
    est._set_layers(layers)
    est.fit_time_ = time.perf_counter() - start
    est._dask_fit_log = log
    return est
