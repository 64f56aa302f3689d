"""Dask benchmark: fit on 10 million rows, score 50 million, on a local cluster.

Run ``python benchmarks/bench_dask.py`` (``--quick`` for a smoke run, which
writes nothing). It starts a ``LocalCluster`` of two single-threaded
worker processes on 127.0.0.1, and

1. fits ``RBIG(max_layers=5, early_stopping=False, tol=None)`` (a fixed depth
   keeps the run to a few minutes) on 10,000,000 x 10 rows generated lazily,
   block by block, reporting the passes and seconds of each layer;
2. scores 10,000,000 and 50,000,000 rows of the same lazily generated
   distribution with the fitted model (``score_samples(X).mean()``),
   reporting rows per second;
3. checks the model: held-out mean log-likelihood (1,000,000 fresh rows) of
   the Dask fit and of the in-memory fit of the same 10,000,000 rows with
   the same parameters (after the cluster is closed).

Each worker's resident memory is sampled every 20 ms by a thread inside it;
the tables give each worker's peak above its idle size, also in units of one
block (``chunk`` rows x 10 features x 8 bytes). The source is never
persisted: every pass regenerates the blocks, as a re-read of files would.
The table is written to ``benchmarks/results/dask.md``.

``--deep`` runs the depth test instead: a 200-layer damped fit (RBIG
defaults, ``damping=0.3``, greedy rotations, ``early_stopping=False,
tol=None`` so the depth is fixed) with the rows pushed through each new
layer persisted on the cluster (``DESTRUCTORS_DASK_PERSIST``, default on),
reporting passes per layer and the seconds per layer of layers 1-50 against
151-200: with persistence the total time is linear in the depth. Its table
goes to ``benchmarks/results/dask_deep.md``.
"""

import argparse
import os
import platform
import threading
import time
from pathlib import Path

import dask.array as da
import numpy as np
import psutil
from distributed import Client, LocalCluster

from destructors import RBIG

RESULTS = Path(__file__).parent / "results" / "dask.md"
RESULTS_DEEP = Path(__file__).parent / "results" / "dask_deep.md"
N_FEATURES = 10


# -- data ------------------------------------------------------------------
def _shape_block(z):
    """Correlated, skewed, heavy-tailed features from standard normals."""
    x = np.empty_like(z)
    x[:, 0] = np.exp(0.6 * z[:, 0])
    for j in range(1, z.shape[1]):
        if j % 3 == 1:
            x[:, j] = 0.8 * x[:, j - 1] + z[:, j]
        elif j % 3 == 2:
            x[:, j] = np.sinh(0.7 * z[:, j]) - 0.5 * x[:, j - 1]
        else:
            x[:, j] = (0.5 + 0.5 * np.abs(x[:, j - 1])) * z[:, j]  # heteroscedastic
    return x


def lazy_data(n_rows, chunk, seed):
    """``n_rows`` x 10 rows, generated per block when a task needs them."""
    z = da.random.default_rng(seed).standard_normal((n_rows, N_FEATURES), chunks=(chunk, -1))
    return z.map_blocks(_shape_block, dtype=np.float64)


# -- per-worker memory ----------------------------------------------------------
def _start_sampler(dask_worker, interval=0.02):
    """Sample this worker process's RSS in a daemon thread; keep the peak."""
    proc = psutil.Process()
    state = {"peak": proc.memory_info().rss, "stop": False}

    def loop():
        while not state["stop"]:
            state["peak"] = max(state["peak"], proc.memory_info().rss)
            time.sleep(interval)

    old = getattr(dask_worker, "_bench_rss", None)
    if old is not None:
        old["stop"] = True
    dask_worker._bench_rss = state
    threading.Thread(target=loop, daemon=True).start()
    return state["peak"]


def _read_peak(dask_worker):
    return dask_worker._bench_rss["peak"]


class PeakMemory:
    """Peak RSS of each worker during a ``with`` block, above its start."""

    def __init__(self, client):
        self.client = client

    def __enter__(self):
        self.client.run(lambda dask_worker: __import__("gc").collect())
        self.start = self.client.run(_start_sampler)
        return self

    def __exit__(self, *exc):
        time.sleep(0.1)
        peak = self.client.run(_read_peak)
        self.peaks = {w: peak[w] - self.start[w] for w in sorted(peak)}
        self.idle = {w: self.start[w] for w in sorted(peak)}


def _mib(n_bytes):
    return n_bytes / 2**20


def _record(path, lines, quick):
    """Write the table, unless this is a smoke run (it would replace the recorded one)."""
    if quick:
        print("smoke run (--quick): the recorded results are left as they are")
        return
    path.parent.mkdir(exist_ok=True)
    path.write_text("\n".join(lines))
    print(f"written to {path}")


# -- phases ------------------------------------------------------------------------
def fit_phase(client, n_rows, chunk, n_layers):
    """A fixed-depth fit (the short run's and the depth test's): model, seconds, memory."""
    X = lazy_data(n_rows, chunk, seed=1)
    model = RBIG(rotation="greedy", max_layers=n_layers, early_stopping=False, tol=None,
                 random_state=0, verbose=1)
    with PeakMemory(client) as mem:
        start = time.perf_counter()
        model.fit(X)
        seconds = time.perf_counter() - start
    return model, seconds, mem


def score_phase(client, model, n_rows, chunk):
    X = lazy_data(n_rows, chunk, seed=2)
    with PeakMemory(client) as mem:
        start = time.perf_counter()
        mean = float(model.score(X))
        seconds = time.perf_counter() - start
    return mean, seconds, mem


def generate_only(client, n_rows, chunk):
    """Seconds to generate the rows alone, to separate it from the work on them."""
    X = lazy_data(n_rows, chunk, seed=2)
    start = time.perf_counter()
    X.sum().compute()
    return time.perf_counter() - start


def quality_check(model, n_rows, chunk, n_test):
    """Held-out scores of the Dask fit and of the NumPy fit of the same rows."""
    X = lazy_data(n_rows, chunk, seed=1).compute(scheduler="sync")  # the rows fitted
    X_test = lazy_data(n_test, chunk, seed=3).compute(scheduler="sync")
    eager = RBIG(rotation="greedy", max_layers=model.max_layers, early_stopping=False, tol=None,
                 random_state=0)
    start = time.perf_counter()
    eager.fit(X)
    seconds = time.perf_counter() - start
    return model.score(X_test), eager.score(X_test), seconds


def _window(log, lo, hi):
    """Mean passes and seconds per layer of layers ``lo..hi`` (1-based, inclusive)."""
    part = log[lo - 1:hi]
    return (sum(p for p, _ in part) / len(part), sum(s for _, s in part) / len(part))


def deep_main(args):
    """The depth test (``--deep``): time per layer must not grow with depth."""
    block_mib = _mib(args.chunk * N_FEATURES * 8)
    data_mib = _mib(args.fit_rows * (N_FEATURES + 1) * 8)
    persist = os.environ.get("DESTRUCTORS_DASK_PERSIST", "1") != "0"
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, memory_limit=args.memory_limit,
    ) as cluster, Client(cluster) as client:
        warm = RBIG(rotation="greedy", max_layers=2, early_stopping=False, random_state=0)
        warm.fit(lazy_data(20_000, 10_000, seed=0))
        model, seconds, mem = fit_phase(client, args.fit_rows, args.chunk, args.layers)
    log = model._fit_log
    q = max(1, len(log) // 4)
    windows = [(1, q), (len(log) - q + 1, len(log))]
    lines = [
        "# Dask depth benchmark",
        "",
        f"Machine: {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, {platform.machine()}; "
        "LocalCluster of 2 worker processes x 1 thread on 127.0.0.1, memory limit "
        f"{args.memory_limit} per worker; load average before / after: "
        f"{args.load_before} / {' '.join(f'{v:.2f}' for v in os.getloadavg())}. "
        "The machine is shared with other jobs (see the load), so times are indicative; the ratio "
        "of the two windows is what counts.",
        f"Fit: {args.fit_rows:,} x {N_FEATURES} rows in blocks of {args.chunk:,} "
        f"({block_mib:.0f} MiB), `RBIG(max_layers={args.layers}, early_stopping=False, "
        "tol=None)` (defaults otherwise: damping 0.3, greedy rotations); rows after "
        f"each layer persisted: {'yes' if persist else 'no (DESTRUCTORS_DASK_PERSIST=0)'}"
        f" (the persisted copy, rows plus a log-det column: {data_mib:.0f} MiB).",
        "",
        "| layers | passes per layer | seconds per layer |",
        "|---|---:|---:|",
    ]
    for lo, hi in windows:
        passes, secs = _window(log, lo, hi)
        lines.append(f"| {lo}-{hi} | {passes:.2f} | {secs:.2f} |")
    ratio = _window(log, *windows[1])[1] / _window(log, *windows[0])[1]
    lines += [
        f"| all {len(log)} | {sum(p for p, _ in log) / len(log):.2f} | "
        f"{sum(s for _, s in log) / len(log):.2f} |",
        "",
        f"Total {seconds:.1f} s for {len(log)} layers; seconds per layer, last window / "
        f"first window: {ratio:.2f} (1.0 is linear total time; replaying all earlier "
        "layers would make it grow with depth).",
        "",
        "Peak memory above idle per worker: "
        + ", ".join(f"{_mib(v):.0f} MiB" for v in mem.peaks.values()) + ".",
        "",
        "Passes of the first 5 layers: " + ", ".join(str(p) for p, _ in log[:5]) + ".",
        "",
    ]
    print("\n".join(lines))
    _record(RESULTS_DEEP, lines, args.quick)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--fit-rows", type=int, default=10_000_000)
    parser.add_argument("--score-rows", type=int, nargs="+", default=[10_000_000, 50_000_000])
    parser.add_argument("--chunk", type=int, default=500_000, help="rows per block")
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--test-rows", type=int, default=1_000_000)
    parser.add_argument("--deep", action="store_true",
                        help="the depth test: a 200-layer damped fit (see the docstring)")
    parser.add_argument("--memory-limit", default="8GiB", help="per worker (--deep)")
    args = parser.parse_args(argv)
    if args.deep:
        args.load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
        if args.layers == 5:
            args.layers = 200
        if args.quick:
            args.fit_rows, args.chunk, args.layers = 100_000, 25_000, 20
        return deep_main(args)
    if args.quick:
        args.fit_rows, args.score_rows, args.chunk = 400_000, [200_000, 1_000_000], 100_000
        args.layers, args.test_rows = 3, 100_000
    block_mib = _mib(args.chunk * N_FEATURES * 8)

    lines = [
        "# Dask benchmark",
        "",
        f"Machine: {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, {platform.machine()}; "
        "LocalCluster of 2 worker processes x 1 thread on 127.0.0.1. Other jobs were "
        "running on the machine, so the times are indicative.",
        f"Blocks of {args.chunk:,} rows x {N_FEATURES} features "
        f"({block_mib:.0f} MiB of float64); data generated lazily per block, never "
        "persisted (every pass regenerates it).",
        "",
    ]
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, memory_limit="8GiB",
    ) as cluster, Client(cluster) as client:
        # Warm up: import and compile in the workers before timing.
        warm = RBIG(rotation="greedy", max_layers=2, early_stopping=False, random_state=0)
        warm.fit(lazy_data(20_000, 10_000, seed=0))
        float(warm.score(lazy_data(20_000, 10_000, seed=0)))

        model, fit_seconds, fit_mem = fit_phase(client, args.fit_rows, args.chunk, args.layers)
        fit_gen_seconds = generate_only(client, args.fit_rows, args.chunk)
        lines += [
            f"## Fit: {args.fit_rows:,} rows, RBIG(max_layers={args.layers}, "
            "early_stopping=False, tol=None), greedy rotations",
            "",
            "| layer | passes | seconds | rows/s per pass |",
            "|---:|---:|---:|---:|",
        ]
        for i, (passes, seconds) in enumerate(model._fit_log, 1):
            rate = args.fit_rows * passes / seconds
            lines.append(f"| {i} | {passes} | {seconds:.1f} | {rate:,.0f} |")
        lines += [
            f"| total | {sum(p for p, _ in model._fit_log)} | {fit_seconds:.1f} | |",
            "",
            f"Generating the {args.fit_rows:,} rows alone takes {fit_gen_seconds:.1f} s, "
            "and every pass regenerates them.",
            "",
            "Peak memory above idle per worker: "
            + ", ".join(f"{_mib(v):.0f} MiB ({_mib(v) / block_mib:.1f} blocks)"
                        for v in fit_mem.peaks.values())
            + "; idle: " + ", ".join(f"{_mib(v):.0f} MiB" for v in fit_mem.idle.values())
            + ".",
            "",
            f"## Score: `score_samples(X).mean()` with the {model.n_layers_}-layer model",
            "",
            "| rows | seconds | rows/s | generation alone (s) | peak above idle, worker 1 | "
            "worker 2 |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        print("\n".join(lines), flush=True)
        for n_rows in args.score_rows:
            gen_seconds = generate_only(client, n_rows, args.chunk)
            mean, seconds, mem = score_phase(client, model, n_rows, args.chunk)
            peaks = [f"{_mib(v):.0f} MiB ({_mib(v) / block_mib:.1f} blocks)"
                     for v in mem.peaks.values()]
            row = (f"| {n_rows:,} | {seconds:.1f} | {n_rows / seconds:,.0f} | "
                   f"{gen_seconds:.1f} | {' | '.join(peaks)} |")
            lines.append(row)
            print(row, f"(mean log-likelihood {mean:.4f})", flush=True)

    lazy_score, eager_score, eager_seconds = quality_check(
        model, args.fit_rows, args.chunk, args.test_rows
    )
    lines += [
        "",
        "## Quality",
        "",
        f"Held-out mean log-likelihood ({args.test_rows:,} fresh rows): Dask fit "
        f"{lazy_score:.4f}, in-memory fit of the same {args.fit_rows:,} rows "
        f"{eager_score:.4f} (difference {lazy_score - eager_score:+.4f} nats; the "
        f"in-memory fit took {eager_seconds:.1f} s in one process, data in RAM).",
        "",
    ]
    print("\n".join(lines[-4:]))
    _record(RESULTS, lines, args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
