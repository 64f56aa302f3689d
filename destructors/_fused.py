"""Whole-model kernel: rows pushed through every layer while in cache.

A fitted RBIG-style model is a stack of [marginal map, affine map] blocks.
Applying it layer by layer streams the whole array through memory twice per
block; this kernel instead takes a chunk of rows through all blocks while the
chunk sits in cache, fusing each marginal search, the affine map and the
log-det sum. It computes exactly what the layer-by-layer path computes (the
tests compare them), so the layer objects remain the reference.
"""

import threading

import numpy as np
from numba import njit, prange

from ._kernels import _PARALLEL_MIN_ELEMENTS, _segment, bucket_table

# Rows per chunk: a chunk of a few hundred rows of tens of features fits in L1/L2.
_CHUNK = 256


def _run_blocks(X, xp, fp, slope, log_slope, counts, lo, scale, buckets,
                matrix, pre, post, const_log_det, linear_first, out, log_det):
    n, d = X.shape
    n_blocks = xp.shape[0]
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    for c in prange(n_chunks):
        r0 = c * _CHUNK
        r1 = min(n, r0 + _CHUNK)
        buf = X[r0:r1].copy()
        acc = np.zeros(r1 - r0)
        tmp = np.empty(d)
        for step in range(n_blocks):
            xs, fs, sl, lsl = xp[step], fp[step], slope[step], log_slope[step]
            cnt, lo_s, sc_s, bk = counts[step], lo[step], scale[step], buckets[step]
            mat, pre_s, post_s = matrix[step], pre[step], post[step]
            for half in range(2):
                if (half == 0) == linear_first:
                    # y = (v - pre) @ matrix.T + post, row by row
                    for r in range(r1 - r0):
                        for a in range(d):
                            tmp[a] = buf[r, a] - pre_s[a]
                        for a in range(d):
                            s = post_s[a]
                            for b in range(d):
                                s += mat[a, b] * tmp[b]
                            buf[r, a] = s
                        acc[r] += const_log_det[step]
                else:
                    # Feature-major: one feature's knots stay in L1 across the chunk.
                    for j in range(d):
                        for r in range(r1 - r0):
                            x = buf[r, j]
                            k = _segment(xs, j, cnt[j], x, lo_s[j], sc_s[j], bk)
                            buf[r, j] = fs[j, k] + sl[j, k] * (x - xs[j, k])
                            acc[r] += lsl[j, k]
        out[r0:r1] = buf
        log_det[r0:r1] = acc


_FLAGS = {"reassoc", "contract"}  # lets LLVM vectorize the affine sums; no NaN checks here
_run_blocks_parallel = njit(parallel=True, cache=True, fastmath=_FLAGS)(_run_blocks)
_run_blocks_serial = njit(parallel=False, nogil=True, cache=True)(_run_blocks)


def _contiguous(*arrays):
    return tuple(np.ascontiguousarray(a) for a in arrays)


def _pad_stack(arrays, width, fill):
    out = np.full((len(arrays), arrays[0].shape[0], width), fill)
    for i, a in enumerate(arrays):
        out[i, :, : a.shape[1]] = a
    return out


class FusedBlocks:
    """Stacked parameters of [MarginalGaussianizer, affine] blocks, both ways.

    Parameters
    ----------
    blocks : list of CompositeDestructor
        Fitted blocks, each ``layers_ == [marginal, affine]`` where the
        marginal has ``knots_x_``/``knots_z_`` and the affine map has
        ``matrix_``, ``inverse_matrix_``, ``shift_`` and ``log_det_``.

    Examples
    --------
    >>> import numpy as np
    >>> from destructors import RBIG
    >>> from destructors._fused import FusedBlocks
    >>> X = np.random.default_rng(0).gamma(2.0, size=(500, 3))
    >>> model = RBIG(max_layers=3, early_stopping=False, random_state=0).fit(X)
    >>> Z, ld = FusedBlocks(model.layers_).forward(X)
    >>> bool(np.allclose(Z, model.transform(X)))
    True
    """

    def __init__(self, blocks):
        marginals = [b.layers_[0] for b in blocks]
        linears = [b.layers_[1] for b in blocks]
        width = max(m.knots_x_.shape[1] for m in marginals)
        d = marginals[0].knots_x_.shape[0]
        counts = np.stack([m.n_knots_ for m in marginals])
        xs = _pad_stack([m.knots_x_ for m in marginals], width, np.nan)
        zs = _pad_stack([m.knots_z_ for m in marginals], width, np.nan)
        slope = _pad_stack([m._slope for m in marginals], width - 1, np.nan)
        log_slope = _pad_stack([m._log_slope for m in marginals], width - 1, np.nan)
        zeros = np.zeros((len(blocks), d))
        shifts = np.stack([lin.shift_ for lin in linears])
        log_dets = np.array([lin.log_det_ for lin in linears])
        self._forward_args = _contiguous(
            xs, zs, slope, log_slope, counts, *self._tables(xs, counts),
            np.stack([lin.matrix_ for lin in linears]), shifts, zeros, log_dets,
        ) + (False,)
        # The inverse runs the blocks in reverse, affine part first.
        rev = slice(None, None, -1)
        self._inverse_args = _contiguous(
            zs[rev], xs[rev], (1.0 / slope)[rev], -log_slope[rev], counts[rev],
            *(t[rev] for t in self._tables(zs, counts)),
            np.stack([lin.inverse_matrix_ for lin in linears])[rev], zeros, shifts[rev],
            -log_dets[rev],
        ) + (True,)

    @staticmethod
    def _tables(knots, counts):
        tables = [bucket_table(k, c) for k, c in zip(knots, counts, strict=True)]
        return tuple(np.stack(t) for t in zip(*tables, strict=True))

    @classmethod
    def from_layers(cls, blocks):
        """Stack ``blocks`` if each is [MarginalGaussianizer, affine], else None."""
        from .marginal import MarginalGaussianizer
        from .rotation import _LinearDestructor

        for block in blocks:
            layers = getattr(block, "layers_", None)
            if not (layers is not None and len(layers) == 2
                    and isinstance(layers[0], MarginalGaussianizer)
                    and isinstance(layers[1], _LinearDestructor)):
                return None
        return cls(blocks) if blocks else None

    @staticmethod
    def _run(X, args):
        X = np.ascontiguousarray(X, dtype=np.float64)
        out = np.empty_like(X)
        log_det = np.empty(X.shape[0])
        if (X.size >= _PARALLEL_MIN_ELEMENTS
                and threading.current_thread() is threading.main_thread()):
            kernel = _run_blocks_parallel
        else:
            kernel = _run_blocks_serial
        kernel(X, *args, out, log_det)
        return out, log_det

    def forward(self, X):
        """Push rows through all blocks; return ``(Z, log_det)``."""
        return self._run(X, self._forward_args)

    def inverse(self, Z):
        """Invert all blocks; return ``(X, log_det of the inverse)``."""
        return self._run(Z, self._inverse_args)
