"""Apply a fitted deep model: the fused kernel against baselines, in one run.

``python benchmarks/bench_apply.py`` (``--quick`` for a smoke run) fits a
default :class:`~destructors.RBIG` per dimension on 20,000 rows, then pushes
1,000,000 rows (200,000 at d = 10, whose default model has ~360 layers, to
keep the run short on a loaded 2-core machine; see ``_ROWS``) through it with

- the library's ``transform_log_det`` and ``score_samples`` (the fused
  kernel; ``score_samples`` takes the score-only path);
- a minimal hand-written Numba kernel doing the same work on the same knots
  and layers (bucket lookup, short walk to the segment, value and
  log-slope, d x d product), the target's yardstick (>= 0.6 of it);
- the old fused kernel, a copy of the one at commit 037f220 (256-row chunks
  allocated and copied per chunk, 4 buckets per knot with a binary search);
- the naive NumPy layer path (``np.interp`` to the CDF, ``ndtri``, a second
  ``np.interp`` for the log-slope, then the matrix product), target >= 10x;

and measures the memory ``score_samples`` adds (tracemalloc peak over the
input's size; the Numba scratch, a few 64 KiB buffers per thread, is not
seen by tracemalloc and is listed apart). Every variant's result is checked
against the library's before it is timed. Writes ``results/apply.md``.
"""

import argparse
import os
import pathlib
import pickle
import time
import tracemalloc

import numba
import numpy as np
from numba import njit, prange
from scipy.special import ndtr, ndtri

from destructors import RBIG
from destructors._fused import AffineStep, MarginalStep
from destructors.base import fused_steps, standard_normal_log_pdf

RESULTS = pathlib.Path(__file__).parent / "results" / "apply.md"
_N_FIT = 20_000
_ROWS = {2: 1_000_000, 10: 200_000, 64: 1_000_000}
_HALF_LOG_2PI = 0.5 * np.log(2.0 * np.pi)


def make_data(n, d, seed):
    """Heavy-tailed, correlated rows, one mixing matrix for every seed.

    Seed 0 (the fitting rows) continues the generator that drew the matrix.
    """
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(d, d))
    rng = rng if seed == 0 else np.random.default_rng(seed)
    return np.tanh(rng.standard_t(4, size=(n, d))) @ mix


# -- the old fused kernel (commit 037f220), kept verbatim to compare ---------
@njit(inline="always", cache=True)
def _old_segment(xp, j, m, x, lo, scale, buckets):
    n_buckets = buckets.shape[1] - 1
    t = (x - lo) * scale
    if not (t > 0.0):
        k = 0
    elif not (t < n_buckets):
        k = m - 2
    else:
        b = int(t)
        a = buckets[j, b]
        c = buckets[j, b + 1] + 1
        while c - a > 1:
            mid = (a + c) >> 1
            if xp[j, mid] <= x:
                a = mid
            else:
                c = mid
        k = min(a, m - 2)
    while k > 0 and x < xp[j, k]:
        k -= 1
    while k < m - 2 and x >= xp[j, k + 1]:
        k += 1
    return k


@njit(parallel=True, cache=True)
def _old_run_steps(X, kinds, index, widths, knot_off, seg_off, n_edges, bucket_off, counts,
                   lo, scale, knots_x, knots_z, slope, log_slope, buckets,
                   mats, pre, post, const_log_det, out, log_det):
    n, d = X.shape
    chunk = 256
    n_chunks = (n + chunk - 1) // chunk
    for c in prange(n_chunks):
        r0 = c * chunk
        r1 = min(n, r0 + chunk)
        rows = r1 - r0
        buf = X[r0:r1].copy()
        acc = np.zeros(rows)
        tmp = np.empty(d)
        for s in range(kinds.shape[0]):
            i = index[s]
            if kinds[s] == 0:
                w = widths[i]
                o, so, bo, ne = knot_off[i], seg_off[i], bucket_off[i], n_edges[i]
                xs = knots_x[o:o + d * w].reshape((d, w))
                fs = knots_z[o:o + d * w].reshape((d, w))
                sl = slope[so:so + d * (w - 1)].reshape((d, w - 1))
                lsl = log_slope[so:so + d * (w - 1)].reshape((d, w - 1))
                bk = buckets[bo:bo + d * ne].reshape((d, ne))
                for j in range(d):
                    for r in range(rows):
                        x = buf[r, j]
                        k = _old_segment(xs, j, counts[i, j], x, lo[i, j], scale[i, j], bk)
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


def _old_table(xp, counts, buckets_per_knot=4):
    n_buckets = buckets_per_knot * xp.shape[1]
    lo, scale = np.empty(xp.shape[0]), np.empty(xp.shape[0])
    buckets = np.empty((xp.shape[0], n_buckets + 1), dtype=np.int32)
    for j, m in enumerate(counts):
        knots = xp[j, :m]
        lo[j], scale[j] = knots[0], n_buckets / (knots[-1] - knots[0])
        edges = knots[0] + np.arange(n_buckets + 1) / scale[j]
        buckets[j] = np.clip(np.searchsorted(knots, edges, side="right") - 1, 0, m - 2)
    return lo, scale, buckets


def old_program(steps, d):
    """The old kernel's arguments for ``steps``, with the old 4-per-knot tables."""
    marginals = [s for s in steps if isinstance(s, MarginalStep)]
    affines = [s for s in steps if isinstance(s, AffineStep)]
    tables = [_old_table(m.knots_x, m.counts) for m in marginals]
    kinds = np.array([0 if isinstance(s, MarginalStep) else 1 for s in steps])
    index = np.zeros(len(steps), dtype=np.int64)
    index[kinds == 0] = np.arange(len(marginals))
    index[kinds == 1] = np.arange(len(affines))
    widths = np.array([m.knots_x.shape[1] for m in marginals], dtype=np.int64)
    n_edges = np.array([t[2].shape[1] for t in tables], dtype=np.int64)
    offsets = [np.r_[0, np.cumsum(d * v)[:-1]].astype(np.int64)
               for v in (widths, widths - 1, n_edges)]

    def flat(arrays, dtype=np.float64):
        return np.concatenate([np.ravel(a) for a in arrays] + [np.zeros(0)]).astype(dtype)

    def stack(arrays, shape, dtype=np.float64):
        return np.stack(arrays).astype(dtype) if arrays else np.zeros((0, *shape), dtype)

    args = (kinds, index, widths, offsets[0], offsets[1], n_edges, offsets[2],
            stack([m.counts for m in marginals], (d,), np.int64),
            stack([t[0] for t in tables], (d,)), stack([t[1] for t in tables], (d,)),
            *[flat([getattr(m, a) for m in marginals])
              for a in ("knots_x", "knots_z", "slope", "log_slope")],
            flat([t[2] for t in tables], np.int32),
            stack([a.matrix for a in affines], (d, d)), stack([a.pre for a in affines], (d,)),
            stack([a.post for a in affines], (d,)), np.array([a.log_det for a in affines]))

    def run(X):
        out, log_det = np.empty_like(X), np.empty(X.shape[0])
        _old_run_steps(X, *args, out, log_det)
        return out, log_det

    return run


# -- a minimal hand-written fused kernel: the yardstick ----------------------
@njit(parallel=True, cache=True)
def _minimal(X, xk, zk, sl, lsl, m, lo, scale, bk, mat, pre, ld_const, out, log_det):
    n, d = X.shape
    n_layers, n_buckets = xk.shape[0], bk.shape[2] - 1
    rows = max(16, 8192 // d)  # a chunk of rows stays in cache through all layers
    for c in prange((n + rows - 1) // rows):
        r0, r1 = c * rows, min(n, (c + 1) * rows)
        z = X[r0:r1].copy()
        acc = np.zeros(r1 - r0)
        y = np.empty(d)
        for L in range(n_layers):
            for j in range(d):
                for r in range(r1 - r0):
                    x = z[r, j]
                    t = min(max((x - lo[L, j]) * scale[L, j], 0.0), n_buckets - 1.0)
                    k = np.int64(bk[L, j, int(t)])
                    while k < m[L, j] - 2 and x >= xk[L, j, k + 1]:
                        k += 1
                    while k > 0 and x < xk[L, j, k]:
                        k -= 1
                    z[r, j] = zk[L, j, k] + sl[L, j, k] * (x - xk[L, j, k])
                    acc[r] += lsl[L, j, k]
            for r in range(r1 - r0):
                for a in range(d):
                    y[a] = z[r, a] - pre[L, a]
                for a in range(d):
                    total = 0.0
                    for b in range(d):
                        total += mat[L, a, b] * y[b]
                    z[r, a] = total
                acc[r] += ld_const[L]
        out[r0:r1] = z
        log_det[r0:r1] = acc


def minimal_program(steps):
    """The minimal kernel on the model's knots, for (marginal, affine) layers."""
    marginals, affines = steps[0::2], steps[1::2]
    assert all(isinstance(s, MarginalStep) for s in marginals)
    assert all(isinstance(a, AffineStep) and not a.post.any() for a in affines)
    assert len({m.knots_x.shape[1] for m in marginals}) == 1  # one width: stack

    def stack(name):
        return np.ascontiguousarray(np.stack([getattr(m, name) for m in marginals]))

    tables = [m.table for m in marginals]
    args = (stack("knots_x"), stack("knots_z"), stack("slope"), stack("log_slope"),
            stack("counts").astype(np.int64), np.stack([t[0] for t in tables]),
            np.stack([t[1] for t in tables]), np.stack([t[2] for t in tables]),
            np.stack([a.matrix for a in affines]), np.stack([a.pre for a in affines]),
            np.array([a.log_det for a in affines]))

    def run(X):
        out, log_det = np.empty_like(X), np.empty(X.shape[0])
        _minimal(X, *args, out, log_det)
        return out, log_det

    return run


# -- the naive NumPy layer path ----------------------------------------------
def numpy_program(model, n_layers=None):
    """Per layer: np.interp to the CDF, ndtri, np.interp of the log-slope, matmul."""
    layers = []
    for block in model.layers_[:n_layers]:
        marginal, rotation = block.layers_
        cols = []
        for j in range(marginal.n_knots_.size):
            m = marginal.n_knots_[j]
            xk, uk = marginal.knots_x_[j, :m], ndtr(marginal.knots_z_[j, :m])
            cols.append((xk, uk, np.diff(uk) / np.diff(xk)))
        layers.append((cols, rotation.matrix_, rotation.shift_, rotation.log_det_))

    def run(X):
        Z, log_det = np.empty_like(X), np.zeros(X.shape[0])
        for cols, matrix, shift, ld in layers:
            for j, (xk, uk, density) in enumerate(cols):
                Z[:, j] = ndtri(np.interp(X[:, j], xk, uk))
                log_det += (np.log(np.interp(X[:, j], xk[:-1], density))
                            + 0.5 * Z[:, j] ** 2 + _HALF_LOG_2PI)
            X = (Z - shift) @ matrix.T
            log_det += ld
        return X, log_det

    return run


def _best(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _score_memory(model, X):
    """Peak bytes allocated (tracemalloc) by score_samples, and by the old way."""
    model.score_samples(X[:1000])
    result = {}
    def old_way():
        Z, log_det = model.transform_log_det(X)
        return standard_normal_log_pdf(Z) + log_det

    for label, fn in [("score_samples (score only)", lambda: model.score_samples(X)),
                      ("transform_log_det, then log N(Z) + log_det (old)", old_way)]:
        tracemalloc.start()
        fn()
        result[label] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return result


def fitted_model(d, n_fit, cache):
    """A default RBIG fitted on ``n_fit`` rows (pickled in ``cache`` if given)."""
    path = cache and pathlib.Path(cache) / f"rbig_d{d}_n{n_fit}.pkl"
    if path and path.exists():
        return pickle.loads(path.read_bytes()), float("nan")
    start = time.perf_counter()
    # The greedy rotation, as when the tables in benchmarks/README.md were
    # measured (RBIG's default was then "greedy").
    model = RBIG(rotation="greedy", random_state=0).fit(make_data(n_fit, d, 0))
    fit_s = time.perf_counter() - start
    if path:
        path.write_bytes(pickle.dumps(model))
    return model, fit_s


def run_dimension(d, quick, cache=None, rows=None, memory_only=False):
    n = rows or ((_ROWS[d] // 20) if quick else _ROWS[d])
    model, fit_s = fitted_model(d, _N_FIT // 4 if quick else _N_FIT, cache)
    X = make_data(n, d, 1)
    steps = fused_steps(model)
    variants = {
        "fused kernel: transform_log_det": model.transform_log_det,
        "fused kernel: score_samples (score only)": model.score_samples,
        "minimal hand-written Numba kernel": minimal_program(steps),
        "old fused kernel (037f220)": old_program(steps, d),
        "NumPy: np.interp + ndtri + matmul per layer": numpy_program(model),
    }
    Z, log_det = model.transform_log_det(X)
    score = model.score_samples(X)
    for label, fn in variants.items():  # compile, and check every variant
        got = fn(X[:5000])
        if label.endswith("(score only)"):
            np.testing.assert_allclose(got, score[:5000], rtol=1e-10, atol=1e-8)
        elif label.startswith("NumPy"):
            # Another interpolation between knots (in the CDF, not linear in z):
            # close to the library's on one layer, not bitwise.
            first, _ = model.layers_[0].transform_log_det(X[:5000])
            gap = np.median(np.abs(numpy_program(model, 1)(X[:5000])[0] - first))
            assert gap < 0.05, gap
        else:
            tol = 0 if label.startswith("old") else 1e-6
            np.testing.assert_allclose(got[0], Z[:5000], rtol=0, atol=tol)
            np.testing.assert_allclose(got[1], log_det[:5000], rtol=1e-10, atol=1e-8)
    repeat = 2
    times = {}
    for label, fn in variants.items() if not memory_only else ():
        rows = n if not label.startswith("NumPy") else max(n // 10, 1000)
        times[label] = _best(lambda fn=fn, rows=rows: fn(X[:rows]), repeat) * n / rows
    memory = _score_memory(model, X)
    return dict(d=d, n=n, layers=model.n_layers_, fit_s=fit_s, times=times,
                memory=memory, input_bytes=X.nbytes)


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--dims", default="2,10,64", help="comma-separated dimensions")
    parser.add_argument("--rows", type=int, default=None, help="rows to apply (all d)")
    parser.add_argument("--model-cache", default=None,
                        help="folder to pickle the fitted models in, and reuse them from")
    parser.add_argument("--memory-only", action="store_true",
                        help="measure the memory of scoring only (prints, writes nothing)")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    results = [run_dimension(int(d), args.quick, args.model_cache, args.rows, args.memory_only)
               for d in args.dims.split(",")]
    rows, memory_rows = [], []
    for res in results:
        t = res["times"]
        if not t:
            for label, peak in res["memory"].items():
                memory_rows.append((f"{res['d']}", f"{res['n']:,}", label,
                                    f"{peak / 2**20:.1f}", f"{peak / res['input_bytes']:.3f}"))
            continue
        minimal = t["minimal hand-written Numba kernel"]
        naive = t["NumPy: np.interp + ndtri + matmul per layer"]
        old = t["old fused kernel (037f220)"]
        work = res["n"] * res["d"] * res["layers"]
        for label, seconds in t.items():
            rows.append((f"{res['d']}", f"{res['n']:,} x {res['layers']}", label,
                         f"{seconds:.3f}", f"{work / seconds / 1e6:.1f}",
                         f"{minimal / seconds:.2f}", f"{naive / seconds:.1f}x",
                         f"{old / seconds:.2f}x"))
        for label, peak in res["memory"].items():
            memory_rows.append((f"{res['d']}", f"{res['n']:,}", label,
                                f"{peak / 2**20:.1f}", f"{peak / res['input_bytes']:.3f}"))
    load_after = os.getloadavg()
    text = (
        f"Threads: {numba.get_num_threads()} (Numba); load average (1, 5, 15 min) "
        f"{load_before[0]:.1f}, {load_before[1]:.1f}, {load_before[2]:.1f} before and "
        f"{load_after[0]:.1f}, {load_after[1]:.1f}, {load_after[2]:.1f} after. "
        'Models: RBIG(rotation="greedy") fitted on '
        f"{_N_FIT if not args.quick else _N_FIT // 4:,} "
        "rows; fit s: " + ", ".join(f"d={r['d']} {r['fit_s']:.0f}" for r in results)
        + ". NumPy timed on a tenth of the rows and scaled.\n\n"
        + "### Apply (best of 2)\n\n"
        + _table(["d", "rows x layers", "implementation", "s", "M element-layers/s",
                  "vs minimal kernel", "vs NumPy", "vs old kernel"], rows)
        + "\n\n### Memory added by scoring (tracemalloc peak)\n\n"
        + _table(["d", "rows", "path", "peak MiB", "x input"], memory_rows) + "\n"
    )
    print(text)
    if not (args.quick or args.memory_only):
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(text)
        print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
