"""Fused kernel: rows pushed through a run of layers while in cache.

A layer that can be fused describes its map as plain arrays, one *step*
each (:class:`MarginalStep`: per-feature monotone piecewise-linear maps;
:class:`AffineStep`: ``y = (x - pre) @ matrix.T + post``). A
:class:`FusedProgram` stacks the steps of a run of layers and takes a chunk
of rows through all of them while the chunk sits in cache, fusing each
knot search, the affine maps and the log-det sum.

Both paths do the same arithmetic: the marginal step is the formula of
:func:`destructors._kernels.piecewise_linear` with the same segment search,
and an affine layer applied on its own runs this very kernel with its one
step. So a layer's output is bit-for-bit the same whether it runs alone or
fused with others; only the log-det sum is associated differently (to
rounding). Without that, a value computed one ulp differently could land
across a knot, where the map's slope jumps.

The kernel holds each chunk feature-major in scratch that every parallel
task allocates once, so a feature's knot search and the affine products
(summed in the same order as a row at a time, so they vectorize along rows
without reassociation) run over contiguous rows. Its score-only mode
(:meth:`FusedProgram.log_density`) adds ``log N(z; 0, I)`` to each row's
log-det while the chunk is in cache and never stores the latent rows.
A row's result depends on nothing but the row: not on the chunk size, the
task split or the thread count.

Knots are stored flat, each step padded only to its own width, so a
program of one wide step (one knot per sample) and many narrow ones costs
the sum of their sizes, not the widest times the number of steps.

This module works on arrays only and imports no estimator.
"""

from dataclasses import dataclass, field

import numba
import numpy as np
from numba import prange

from ._kernels import _segment, bucket_table, parallel_and_serial, use_parallel

# Elements per chunk: the chunk and its scratch copy (2 x 64 KiB) stay in L2.
_CHUNK_ELEMENTS = 8192
_MARGINAL, _AFFINE = 0, 1
_LOG_2PI = np.log(2.0 * np.pi)


@dataclass(frozen=True, eq=False)
class MarginalStep:
    """Fused form of a marginal layer: each feature through its own knots.

    Feature ``j`` maps ``x`` to ``knots_z[j, k] + slope[j, k] * (x -
    knots_x[j, k])`` on the segment ``k`` that holds ``x`` (end segments
    extend to infinity); the log-det adds ``log_slope[j, k]``.

    Parameters
    ----------
    knots_x, knots_z : ndarray of shape (n_features, width)
        Strictly increasing knots over the first ``counts[j]`` entries.
    counts : ndarray of shape (n_features,)
        Valid knots per feature, at least 2.
    slope, log_slope : ndarray of shape (n_features, width - 1)
        Segment slopes and their logs.
    table, inverse_table : tuple or None, default=None
        ``bucket_table(knots_x, counts)`` and ``bucket_table(knots_z,
        counts)``, computed when needed if not given.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._fused import FusedProgram, MarginalStep
    >>> xk, zk = np.array([[0.0, 1.0]]), np.array([[0.0, 2.0]])
    >>> step = MarginalStep(xk, zk, np.array([2]), np.array([[2.0]]), np.log([[2.0]]))
    >>> Z, log_det = FusedProgram([step]).forward(np.array([[0.25]]))
    >>> float(Z[0, 0])
    0.5
    """

    knots_x: np.ndarray
    knots_z: np.ndarray
    counts: np.ndarray
    slope: np.ndarray
    log_slope: np.ndarray
    table: tuple = field(default=None)
    inverse_table: tuple = field(default=None)

    def __post_init__(self):
        if self.table is None:
            object.__setattr__(self, "table", bucket_table(self.knots_x, self.counts))

    def inverse(self):
        """The step of the inverse map (knots swapped, slopes inverted)."""
        with np.errstate(divide="ignore"):  # NaN padding past the valid knots
            inverse_slope = 1.0 / self.slope
        return MarginalStep(self.knots_z, self.knots_x, self.counts, inverse_slope,
                            -self.log_slope, self.inverse_table, self.table)


@dataclass(frozen=True, eq=False)
class AffineStep:
    """Fused form of an affine layer: ``y = (x - pre) @ matrix.T + post``.

    Parameters
    ----------
    matrix : ndarray of shape (n_features, n_features)
        The linear part.
    inverse_matrix : ndarray of shape (n_features, n_features)
        Its inverse.
    pre, post : ndarray of shape (n_features,)
        Shifts before and after the linear part.
    log_det : float
        ``log|det matrix|``, added to every row.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors._fused import AffineStep, FusedProgram
    >>> step = AffineStep(2.0 * np.eye(2), 0.5 * np.eye(2), np.ones(2), np.zeros(2),
    ...                   2.0 * np.log(2.0))
    >>> FusedProgram([step]).forward(np.array([[2.0, 3.0]]))[0].tolist()
    [[2.0, 4.0]]
    """

    matrix: np.ndarray
    inverse_matrix: np.ndarray
    pre: np.ndarray
    post: np.ndarray
    log_det: float

    def inverse(self):
        """The step of the inverse map."""
        return AffineStep(self.inverse_matrix, self.matrix, self.post, self.pre, -self.log_det)


def _run_steps(X, kinds, index, widths, knot_off, seg_off, n_edges, bucket_off, counts,
               lo, scale, knots_x, knots_z, slope, log_slope, buckets,
               mats, pre, post, const_log_det, chunk, n_tasks, score_only, out, log_det):
    n, d = X.shape
    n_chunks = (n + chunk - 1) // chunk
    per_task = (n_chunks + n_tasks - 1) // n_tasks
    for task in prange(n_tasks):
        # Scratch allocated once per task, not per chunk. A chunk is held
        # feature-major (one feature's rows contiguous), so the knot search
        # of a feature and the affine products run along contiguous rows.
        buf = np.empty((d, chunk))
        tmp = np.empty((d, chunk))
        acc = np.empty(chunk)
        for c in range(task * per_task, min(n_chunks, (task + 1) * per_task)):
            r0 = c * chunk
            rows = min(n, r0 + chunk) - r0
            for r in range(rows):
                for j in range(d):
                    buf[j, r] = X[r0 + r, j]
                acc[r] = 0.0
            for s in range(kinds.shape[0]):
                i = index[s]
                if kinds[s] == _MARGINAL:
                    w = widths[i]
                    o, so, bo, ne = knot_off[i], seg_off[i], bucket_off[i], n_edges[i]
                    # One feature at a time: its knots stay in L1 across the chunk.
                    for j in range(d):
                        xs = knots_x[o + j * w:o + (j + 1) * w]
                        fs = knots_z[o + j * w:o + (j + 1) * w]
                        sl = slope[so + j * (w - 1):so + (j + 1) * (w - 1)]
                        lsl = log_slope[so + j * (w - 1):so + (j + 1) * (w - 1)]
                        bk = buckets[bo + j * ne:bo + (j + 1) * ne]
                        m, lo_j, scale_j = counts[i, j], lo[i, j], scale[i, j]
                        for r in range(rows):
                            x = buf[j, r]
                            k = _segment(xs, m, x, lo_j, scale_j, bk)
                            buf[j, r] = fs[k] + sl[k] * (x - xs[k])
                            acc[r] += lsl[k]
                else:
                    # Row-wise ``sum_b mat[a, b] * (x[b] - pre[b])`` summed in the
                    # order b = 0, 1, ... (no reassociation, no FMA), as one row at
                    # a time would; the loops run along rows so they vectorize.
                    mat = mats[i]
                    for b in range(d):
                        p = pre[i, b]
                        for r in range(rows):
                            tmp[b, r] = buf[b, r] - p
                    for a in range(d):
                        for r in range(rows):
                            buf[a, r] = 0.0
                        for b in range(d):
                            m_ab = mat[a, b]
                            for r in range(rows):
                                buf[a, r] += m_ab * tmp[b, r]
                        q = post[i, a]
                        for r in range(rows):
                            buf[a, r] += q
                    ld = const_log_det[i]
                    for r in range(rows):
                        acc[r] += ld
            if score_only:
                # log N(z; 0, I) + log_det per row: the latent rows are never stored.
                for r in range(rows):
                    total = 0.0
                    for j in range(d):
                        total += buf[j, r] * buf[j, r]
                    log_det[r0 + r] = -0.5 * (total + d * _LOG_2PI) + acc[r]
            else:
                for r in range(rows):
                    for j in range(d):
                        out[r0 + r, j] = buf[j, r]
                    log_det[r0 + r] = acc[r]


# No fastmath: reassociating or contracting the sums would let the fused and
# the stand-alone paths round differently (see the module docstring). Two
# compilations under their own names, so Numba's cache keeps them apart.
_run_steps_parallel, _run_steps_serial = parallel_and_serial(_run_steps)


def _bucket_dtype(marginals):
    """One dtype for all bucket tables: int16 (half the memory) when all are."""
    ok = all(m.table[2].dtype == np.int16 for m in marginals)
    return np.int16 if ok else np.int32


def _compile(steps, d):
    """Flat argument arrays of the kernel for a list of steps."""
    marginals = [s for s in steps if isinstance(s, MarginalStep)]
    affines = [s for s in steps if isinstance(s, AffineStep)]
    kinds = np.array([_MARGINAL if isinstance(s, MarginalStep) else _AFFINE for s in steps],
                     dtype=np.int64)
    index = np.zeros(len(steps), dtype=np.int64)
    index[kinds == _MARGINAL] = np.arange(len(marginals))
    index[kinds == _AFFINE] = np.arange(len(affines))
    widths = np.array([m.knots_x.shape[1] for m in marginals], dtype=np.int64)
    n_edges = np.array([m.table[2].shape[1] for m in marginals], dtype=np.int64)
    knot_off = np.r_[0, np.cumsum(d * widths)[:-1]].astype(np.int64)
    seg_off = np.r_[0, np.cumsum(d * (widths - 1))[:-1]].astype(np.int64)
    bucket_off = np.r_[0, np.cumsum(d * n_edges)[:-1]].astype(np.int64)

    def flat(arrays, dtype=np.float64):
        return (np.concatenate([np.ravel(a) for a in arrays]).astype(dtype)
                if arrays else np.zeros(0, dtype))

    def rows(arrays, shape, dtype=np.float64):
        return (np.ascontiguousarray(np.stack(arrays), dtype=dtype)
                if arrays else np.zeros((0, *shape), dtype))

    return (
        kinds, index, widths, knot_off, seg_off, n_edges, bucket_off,
        rows([m.counts for m in marginals], (d,), np.int64),
        rows([m.table[0] for m in marginals], (d,)),
        rows([m.table[1] for m in marginals], (d,)),
        flat([m.knots_x for m in marginals]), flat([m.knots_z for m in marginals]),
        flat([m.slope for m in marginals]), flat([m.log_slope for m in marginals]),
        flat([m.table[2] for m in marginals], _bucket_dtype(marginals)),
        rows([a.matrix for a in affines], (d, d)),
        rows([a.pre for a in affines], (d,)),
        rows([a.post for a in affines], (d,)),
        np.array([a.log_det for a in affines], dtype=np.float64),
    )


def _n_features(step):
    return step.knots_x.shape[0] if isinstance(step, MarginalStep) else step.matrix.shape[0]


class FusedProgram:
    """A run of fused steps, applied forwards or backwards in one kernel.

    Parameters
    ----------
    steps : list of MarginalStep or AffineStep
        The steps of the forward map, in order, all of one dimension.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors import RBIG
    >>> from destructors._fused import FusedProgram
    >>> from destructors.base import fused_steps
    >>> X = np.random.default_rng(0).gamma(2.0, size=(500, 3))
    >>> model = RBIG(max_layers=3, early_stopping=False, random_state=0).fit(X)
    >>> Z, log_det = FusedProgram(fused_steps(model)).forward(X)
    >>> bool(np.array_equal(Z, model.transform(X)))
    True
    """

    def __init__(self, steps):
        if not steps:
            raise ValueError("A FusedProgram needs at least one step.")
        self.n_features = _n_features(steps[0])
        if any(_n_features(s) != self.n_features for s in steps):
            raise ValueError("The steps of a FusedProgram must share one dimension.")
        self.steps = list(steps)
        self._forward_args = _compile(self.steps, self.n_features)
        self._inverse_args = None  # compiled on first use

    @staticmethod
    def _run(X, args, score_only=False):
        X = np.ascontiguousarray(X, dtype=np.float64)
        n, d = X.shape
        out = np.empty((0, d)) if score_only else np.empty_like(X)
        log_det = np.empty(n)
        chunk = max(16, _CHUNK_ELEMENTS // max(d, 1))
        n_chunks = -(-n // chunk)
        if use_parallel(X.size):
            kernel = _run_steps_parallel
            # A few tasks per thread balance the load; each allocates its
            # scratch once. The split never changes a row's result.
            n_tasks = max(1, min(n_chunks, 4 * numba.get_num_threads()))
        else:
            kernel, n_tasks = _run_steps_serial, 1
        kernel(X, *args, chunk, n_tasks, score_only, out, log_det)
        return out, log_det

    def forward(self, X):
        """Push rows through all steps; return ``(Z, log_det)``."""
        return self._run(X, self._forward_args)

    def log_density(self, X):
        """``log N(Z; 0, I) + log_det`` of the forward map, without storing ``Z``.

        Each chunk of rows is scored while it is in cache, so scoring needs
        memory for the result only, not for the latent array.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
            Standard normal log-density of each row's image plus the log|det J|
            of the steps.

        Examples
        --------
        >>> import numpy as np
        >>> from destructors._fused import AffineStep, FusedProgram
        >>> step = AffineStep(2.0 * np.eye(1), 0.5 * np.eye(1), np.zeros(1), np.zeros(1),
        ...                   np.log(2.0))
        >>> float(FusedProgram([step]).log_density(np.zeros((1, 1)))[0])  # log N(0) + log 2
        -0.225791...
        """
        return self._run(X, self._forward_args, score_only=True)[1]

    def inverse(self, Z):
        """Invert all steps; return ``(X, log_det of the inverse)``."""
        if self._inverse_args is None:
            inverse = [s.inverse() for s in reversed(self.steps)]
            self._inverse_args = _compile(inverse, self.n_features)
        return self._run(Z, self._inverse_args)
