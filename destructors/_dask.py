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
    the layers fitted since the last checkpoint (see below), computes
    mergeable statistics of the training rows (:mod:`destructors._stats`)
    and merges them in a tree. Passes per layer:

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
    all rows. A deep fit checkpoints the rows after every layer: one more
    pass applies the new layer and persists the result (with the summed
    log-det as an extra column) on the cluster, and later passes start
    there, so ``L`` layers cost ``O(L)`` layer applications. This holds a
    copy of the data (one more column) in the cluster's memory, which
    distributed workers spill to disk when short; with
    ``DESTRUCTORS_DASK_PERSIST=0`` nothing is persisted and each pass
    replays every earlier layer (``O(L**2)``, same results).

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
import os
import time
import uuid

import dask
import dask.array as da
import numpy as np

from ._compat import check_is_fitted
from ._stats import Grid, Histograms, MinMax, kl_to_normal
from .base import (
    _check_finite_output,
    capability,
    check_random_state,
    standard_normal_log_pdf,
)
from .deep import LayerRecord
from .registry import registered_layers

# Partial statistics merged per task when reducing a pass.
_FAN_IN = 8
# Persist the rows after every layer of a deep fit (see _Stream.checkpoint);
# DESTRUCTORS_DASK_PERSIST=0 replays all earlier layers instead (no memory).
_PERSIST = os.environ.get("DESTRUCTORS_DASK_PERSIST", "1") != "0"


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
    log_density = model._score_rows(_checked(block))
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


def _split_block(block, folded):
    """A block's rows and the log-det its folded layers already added."""
    if folded:
        # Checkpointed blocks hold the rows after the folded layers and, in
        # their last column, the log-det those layers added.
        return block[:, :-1], block[:, -1].copy()
    return _checked(block), np.zeros(block.shape[0])


def _advance_block(block, layers, folded):
    """Push a block through ``layers``; keep the summed log-det as a last column."""
    X, log_det = _split_block(block, folded)
    with np.errstate(over="ignore", invalid="ignore"):  # reported below
        for layer in layers:
            X, ld = layer._forward(X)
            log_det += ld
    _check_finite_output(X, "fit")
    _check_finite_output(log_det, "fit")
    return np.column_stack([X, log_det])


def _block_pass(block, index, layers, holdout, score_at, stats, folded=0, start=None):
    """One block's contribution to a pass (see :meth:`_Stream.run`).

    The first ``folded`` layers are already applied in a checkpointed block;
    ``layers`` are the ones after them, and ``score_at`` counts from zero.
    ``start`` is the block's first global row index, given when a statistic
    ``needs_rows`` (it also receives the global indices of the training rows).
    """
    X, log_det = _split_block(block, folded)
    n = X.shape[0]
    rows = None if start is None else np.arange(start, start + n)
    val = None
    if holdout is not None:
        fraction, seed = holdout
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
        val = rng.random(n) < fraction
    scores = {}

    def record(k):
        ll = standard_normal_log_pdf(X) + log_det
        if val is None:
            scores[k] = np.array([ll.sum(), n, 0.0, 0.0])
        else:
            scores[k] = np.array([ll[~val].sum(), n - val.sum(), ll[val].sum(), val.sum()])

    if folded in score_at:
        record(folded)
    with np.errstate(over="ignore", invalid="ignore"):  # reported below
        for k, layer in enumerate(layers, folded + 1):
            X, ld = layer._forward(X)
            log_det += ld
            if k in score_at:
                record(k)
    _check_finite_output(X, "fit")
    _check_finite_output(log_det, "fit")
    train = X if val is None else X[~val]
    train_rows = rows if val is None or rows is None else rows[~val]
    return {
        "n": np.array([train.shape[0], n - train.shape[0]]),
        "scores": scores,
        "stats": [s.compute(train, train_rows) if getattr(s, "needs_rows", False)
                  else s.compute(train) for s in stats],
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

    def __init__(self, X, holdout=None, parent=None):
        self.X = X
        self.parent = parent
        self.source = X  # the rows after the first ``folded`` layers
        self.folded = 0
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

    @staticmethod
    def _layers_task(layers):
        return dask.delayed(
            tuple(layers), name=f"destructor-layers-{uuid.uuid4().hex}", traverse=False
        )

    def checkpoint(self):
        """Persist the rows pushed through every layer so far.

        Later passes then start from the persisted blocks instead of
        replaying all earlier layers, so a deep fit costs O(L) layer
        applications rather than O(L**2). The persisted copy has one more
        column (the summed log-det) and lives in the cluster's memory, spilled
        to disk by Dask's distributed workers when memory runs short.
        """
        if self.folded == len(self.layers):
            return
        d = self.n_features
        advanced = self.source.map_blocks(
            _advance_block, self._layers_task(self.layers[self.folded :]), self.folded,
            chunks=(self.source.chunks[0], (d + 1,)), dtype=np.float64,
            meta=np.empty((0, d + 1)),
        )
        self.source = advanced.persist()
        self.blocks = self.source.to_delayed().ravel().tolist()
        self.folded = len(self.layers)
        self.n_passes += 1

    def restart(self, holdout=None):
        """A fresh stream over the same data (for a model that runs its own passes)."""
        return _Stream(self.X, holdout, parent=self)

    def stacking_source(self, track=True, persist=None):
        """This stream as a data source of the stacking loop.

        With ``persist`` (default: on, unless ``DESTRUCTORS_DASK_PERSIST=0``)
        the rows are checkpointed after every layer.
        """
        return _StreamSource(self, track, _PERSIST if persist is None else persist)

    def fit(self, layer):
        """Fit ``layer`` on the current output and append it (see :func:`fit_layer`)."""
        return fit_layer(layer, self)

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
        layers = self._layers_task(self.layers[self.folded :])
        score_at = frozenset(self.pending)
        starts = [None] * len(self.blocks)
        if any(getattr(s, "needs_rows", False) for s in stats):
            starts = self._block_starts()
        parts = [
            dask.delayed(_block_pass, pure=False)(
                b, i, layers, self.holdout, score_at, stats, self.folded, start
            )
            for i, (b, start) in enumerate(zip(self.blocks, starts, strict=True))
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
        if self.parent is not None and self.parent.n is None:
            self.parent.n = n_train + n_val  # the data were checked
        for k, (s_train, c_train, s_val, c_val) in result["scores"].items():
            self.scores[k] = (s_train / c_train, s_val / c_val if c_val else None)
        self.pending -= set(score_at)
        if score_at:
            self.on_scores()
        return result["stats"]

    def _block_starts(self):
        """The first global row index of every block (for statistics that need rows)."""
        sizes = self.source.chunks[0]
        if any(np.isnan(c) for c in sizes):
            raise ValueError(
                "This fit needs the Dask array's chunk sizes (it samples rows by global "
                "index); call X.compute_chunk_sizes() first."
            )
        return [int(v) for v in np.cumsum((0,) + tuple(sizes))[:-1]]

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


def fit_layer(layer, stream):
    """Fit an unfitted destructor on the stream's output, appending its leaves.

    The layer fits itself from statistics through its ``_fit_stream``
    capability (see :mod:`destructors.base`); a layer without one cannot be
    fitted on a Dask array.

    Parameters
    ----------
    layer : BaseDestructor
        A fresh (cloned) destructor.
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
    fit_stream = capability(layer, "_fit_stream")
    if fit_stream is None:
        able = [e.cls.__name__ for e in registered_layers()
                if capability(e.cls.__new__(e.cls), "_fit_stream") is not None]
        raise NotImplementedError(
            f"{type(layer).__name__} cannot be fitted on a Dask array: it does not fit "
            f"from statistics (those that do: {', '.join(able)}). Fit it on a NumPy "
            "sample instead; the fitted model still applies to Dask arrays."
        )
    layer._validate_params()
    layer.n_features_in_ = stream.n_features
    fit_stream(stream)
    return layer


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
    stream = _Stream(X)
    fit_layer(estimator, stream)
    if stream.n is None:  # no pass was needed: still check the data
        stream.run()
    return estimator


class _StreamSource:
    """A stream as the data source of :func:`destructors.deep.stack_layers`.

    Scores arrive one pass late (they ride along with the next pass), so the
    records of the last layers become known only as later passes run; a fit
    is abandoned before its next pass once the rule has decided.
    """

    def __init__(self, stream, track=True, persist=True):
        self.stream = stream
        self.track = track
        self.persist = persist
        self.tc, self.ends = [], []
        self.log = []

    def fit(self, layer, should_stop=None):
        stream = self.stream
        stream.stop = should_stop or (lambda: False)
        stream.on_scores = should_stop or (lambda: None)
        t0, p0 = time.perf_counter(), stream.n_passes
        try:
            fit_layer(layer, stream)
            if self.persist:
                stream.checkpoint()
            if self.track:
                # The pass that histograms this layer's output (if one is
                # needed) also scores it.
                stream.pending.add(len(stream.layers))
                grid, result = stream.histograms()
        except _Stop:
            return None
        if self.track:
            self.ends.append(len(stream.layers))
            self.tc.append(float(kl_to_normal(result, grid).sum()))
        self.log.append((stream.n_passes - p0, time.perf_counter() - t0))
        return layer

    def _record(self, i):
        scores = self.stream.scores.get(self.ends[i])
        train, val = (None, None) if scores is None else scores
        return LayerRecord(train, val, self.tc[i])

    def records(self):
        return [self._record(i) for i in range(len(self.ends))]

    def finish(self, n_layers):
        """One last pass scores the layers still unscored."""
        if not self.track:  # (a refit scores nothing)
            return
        stream = self.stream
        missing = {self.ends[i] for i in range(n_layers) if self.ends[i] not in stream.scores}
        if missing:
            stream.stop = lambda: False
            stream.on_scores = lambda: None
            stream.pending = missing
            stream.run()

    def describe(self, i):
        passes, seconds = self.log[i]
        msg = f"layer {i + 1}: tc reduction {self.tc[i]:.5f}, {passes} passes, {seconds:.1f} s"
        scored = [k for k in range(i + 1) if self.ends[k] in self.stream.scores]
        if scored:
            train, val = self.stream.scores[self.ends[scored[-1]]]
            msg += f"; layer {scored[-1] + 1}: train {train:.4f}"
            if val is not None:
                msg += f", validation {val:.4f}"
        return msg
