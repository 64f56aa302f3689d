"""Fewer rows per layer: does fitting each marginal map on a fresh subsample pay?

Issue 11's fit target (1000 damped layers on 30,000 x 7 rows at least 10x
faster than its starting point) is out of reach of the exact per-layer work
(``benchmarks/README.md``, Fit); the one way left is less work per layer.
This script measures what that costs in held-out likelihood, with the
public knob that does it: ``RBIG(subsample=m)`` fits each layer's marginal
maps on ``m`` rows drawn afresh for that layer (seeded by the layer), and
pushes every row through them.

For each family (``bench_fit.shaped`` at three sizes, two moons and an
S-curve of 30,000 rows) and each ``m``, two fits:

- ``RBIG(rotation="greedy", max_layers=1000, early_stopping=False,
  tol=None)`` (the fit target's model), scored on held-out rows after 200,
  500 and 1000 layers, and its time per layer;
- ``RBIG(subsample=m)`` with the defaults (learned rotation, early
  stopping, refit), its held-out score and fit time.

Run ``python benchmarks/bench_layer_subsample.py`` (about 6 minutes;
``--quick`` for a smoke run, which writes nothing). Writes
``results/layer_subsample.md``.
"""

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import make_moons, make_s_curve

from destructors import RBIG
from destructors.base import standard_normal_log_pdf

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "layer_subsample.md"
sys.path.insert(0, str(HERE))
from bench_fit import shaped  # noqa: E402

FAMILIES = ("shaped 30,000 x 7", "shaped 20,000 x 10", "shaped 50,000 x 4", "moons", "S-curve")
CHECKPOINTS = (200, 500, 1000)


def family(name, quick):
    """Training and held-out rows (10,000) of one family."""
    n_test = 2000 if quick else 10_000
    if name.startswith("shaped"):
        n, d = {"shaped 30,000 x 7": (30_000, 7), "shaped 20,000 x 10": (20_000, 10),
                "shaped 50,000 x 4": (50_000, 4)}[name]
        n = 6000 if quick else n
        X = shaped(n + n_test, d, d + 11)
    else:
        n = 6000 if quick else 30_000
        make = make_moons if name == "moons" else make_s_curve
        X = make(n + n_test, noise=0.08 if name == "moons" else 0.1, random_state=3)[0]
    return X[:n], X[n:]


def depth_scores(model, X_test, checkpoints):
    """Held-out mean log-likelihood after each checkpoint's number of layers."""
    Z, log_det = X_test, np.zeros(X_test.shape[0])
    out = {}
    for i, layer in enumerate(model.layers_):
        Z, ld = layer._forward(Z)
        log_det = log_det + ld
        if i + 1 in checkpoints:
            out[i + 1] = float(np.mean(standard_normal_log_pdf(Z) + log_det))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run; writes nothing")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    layers = 60 if args.quick else 1000
    checkpoints = (20, 40, 60) if args.quick else CHECKPOINTS
    subsamples = (None, 2000) if args.quick else (None, 10_000, 5_000)
    load_start = os.getloadavg()
    # Compile (or load) every kernel first.
    warm = shaped(3000, 3, 0)
    RBIG(max_layers=3, random_state=0).fit(warm)
    RBIG(rotation="greedy", max_layers=3, random_state=0).fit(warm)
    rows = []
    for name in FAMILIES:
        X, X_test = family(name, args.quick)
        for m in subsamples:
            size = {} if m is None else {"subsample": m}
            start = time.perf_counter()
            deep = RBIG(rotation="greedy", max_layers=layers, early_stopping=False, tol=None,
                        random_state=0, **size).fit(X)
            per_layer = (time.perf_counter() - start) / layers
            scores = depth_scores(deep, X_test, checkpoints)
            start = time.perf_counter()
            default = RBIG(random_state=0, **size).fit(X)
            seconds = time.perf_counter() - start
            rows.append((name, X.shape, m, per_layer, scores, float(default.score(X_test)),
                         default.n_layers_, seconds))
            print(rows[-1], flush=True)
    load_end = os.getloadavg()
    lines = [
        "# Fewer rows per layer (`RBIG(subsample=m)`)",
        "",
        f"Load average at the start: {' '.join(f'{v:.2f}' for v in load_start)}; at the end: "
        f"{' '.join(f'{v:.2f}' for v in load_end)}. 2 cores. Held-out mean log-likelihood "
        f"(nats) on {X_test.shape[0]:,} rows; `m` is the rows each layer's marginal maps are "
        "fitted on (all rows when empty).",
        "",
        "| data | m | greedy, fixed depth: ms/layer | "
        + " | ".join(f"held out at {c}" for c in checkpoints)
        + " | default RBIG: held out | layers | fit s |",
        "|---|---:|---:|" + "---:|" * len(checkpoints) + "---:|---:|---:|",
    ]
    for name, shape, m, per_layer, scores, test, n_layers, seconds in rows:
        cells = " | ".join(f"{scores[c]:.4f}" for c in checkpoints)
        label = f"{name} ({shape[0]:,} x {shape[1]})" if not name.startswith("shaped") else name
        lines.append(f"| {label} | {'' if m is None else f'{m:,}'} | {1e3 * per_layer:.2f} | "
                     f"{cells} | {test:.4f} | {n_layers} | {seconds:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        RESULTS.write_text(text)


if __name__ == "__main__":
    main()
