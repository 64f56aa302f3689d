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

Knots are stored flat, each step padded only to its own width, so a
program of one wide step (one knot per sample) and many narrow ones costs
the sum of their sizes, not the widest times the number of steps.

This module works on arrays only and imports no estimator.
"""

from dataclasses import dataclass, field

import numpy as np
from numba import prange

from ._kernels import _segment, bucket_table, parallel_and_serial, use_parallel

# Rows per chunk: a chunk of a few hundred rows of tens of features fits in L1/L2.
_CHUNK = 256
_MARGINAL, _AFFINE = 0, 1


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
               mats, pre, post, const_log_det, out, log_det):
    n, d = X.shape
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    for c in prange(n_chunks):
        r0 = c * _CHUNK
        r1 = min(n, r0 + _CHUNK)
        rows = r1 - r0
        buf = X[r0:r1].copy()
        acc = np.zeros(rows)
        tmp = np.empty(d)
        for s in range(kinds.shape[0]):
            i = index[s]
            if kinds[s] == _MARGINAL:
                w = widths[i]
                o, so, bo, ne = knot_off[i], seg_off[i], bucket_off[i], n_edges[i]
                xs = knots_x[o:o + d * w].reshape((d, w))
                fs = knots_z[o:o + d * w].reshape((d, w))
                sl = slope[so:so + d * (w - 1)].reshape((d, w - 1))
                lsl = log_slope[so:so + d * (w - 1)].reshape((d, w - 1))
                bk = buckets[bo:bo + d * ne].reshape((d, ne))
                # Feature-major: one feature's knots stay in L1 across the chunk.
                for j in range(d):
                    for r in range(rows):
                        x = buf[r, j]
                        k = _segment(xs, j, counts[i, j], x, lo[i, j], scale[i, j], bk)
                        buf[r, j] = fs[j, k] + sl[j, k] * (x - xs[j, k])
                        acc[r] += lsl[j, k]
            else:
                mat = mats[i]
                for r in range(rows):
                    for a in range(d):
                        tmp[a] = buf[r, a] - pre[i, a]
                    for a in range(d):
                        total = 0.0
                        for b in range(d):
                            total += mat[a, b] * tmp[b]
                        buf[r, a] = total + post[i, a]
                    acc[r] += const_log_det[i]
        out[r0:r1] = buf
        log_det[r0:r1] = acc


# No fastmath: reassociating or contracting the sums would let the fused and
# the stand-alone paths round differently (see the module docstring). Two
# compilations under their own names, so Numba's cache keeps them apart.
_run_steps_parallel, _run_steps_serial = parallel_and_serial(_run_steps)


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
        flat([m.table[2] for m in marginals], np.int32),
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
    def _run(X, args):
        X = np.ascontiguousarray(X, dtype=np.float64)
        out = np.empty_like(X)
        log_det = np.empty(X.shape[0])
        kernel = _run_steps_parallel if use_parallel(X.size) else _run_steps_serial
        kernel(X, *args, out, log_det)
        return out, log_det

    def forward(self, X):
        """Push rows through all steps; return ``(Z, log_det)``."""
        return self._run(X, self._forward_args)

    def inverse(self, Z):
        """Invert all steps; return ``(X, log_det of the inverse)``."""
        if self._inverse_args is None:
            inverse = [s.inverse() for s in reversed(self.steps)]
            self._inverse_args = _compile(inverse, self.n_features)
        return self._run(Z, self._inverse_args)
