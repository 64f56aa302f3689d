"""Refit after early stopping: full, none, or the marginals only (rotations kept).

Run ``python benchmarks/bench_refit.py`` (``--quick`` for a smoke run, which
writes nothing). For each data family and split seed, default ``RBIG`` is
fitted three times, with ``refit=True`` (the default), ``refit=False`` and
``refit="marginals"`` (the searched rotations kept, every other step refitted
on all rows), and scored on held-out rows. The table gives each variant's
mean held-out log-likelihood minus the full refit's on the same rows, its
paired standard error, and the fit times. Families: this benchmark's
skewed, heavy-tailed features (``bench_fit.shaped``) at three sizes, two
moons and an S-curve (scikit-learn generators), and breast_cancer and
digits (shipped with scikit-learn, dequantized with uniform noise of each
feature's resolution (1 for a constant one), 70 / 30 split). Writes ``results/refit.md``.
"""

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, make_moons, make_s_curve

from destructors import RBIG
from destructors.discrete import resolution

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "refit.md"
sys.path.insert(0, str(HERE))
from bench_fit import shaped  # noqa: E402

VARIANTS = (True, False, "marginals")


def family(name, seed, quick):
    """Training and held-out rows of one family and split."""
    rng = np.random.default_rng(seed)
    n_test = 4000 if quick else 20_000
    if name.startswith("shaped"):
        n, d = {"shaped 10,000 x 10": (10_000, 10), "shaped 30,000 x 7": (30_000, 7),
                "shaped 5,000 x 4": (5_000, 4)}[name]
        n = min(n, 3000) if quick else n
        X = shaped(n + n_test, d, seed * 7 + d)
    elif name in ("moons", "S-curve"):
        n = 1000 if quick else 5000
        make = make_moons if name == "moons" else make_s_curve
        X = make(n + n_test, noise=0.08 if name == "moons" else 0.1, random_state=seed)[0]
    else:
        X = (load_breast_cancer() if name == "breast_cancer" else load_digits()).data
        step = resolution(X)
        step = np.where(np.isfinite(step), step, 1.0)  # a constant feature: any width
        X = X + rng.uniform(-0.5, 0.5, X.shape) * step
        X = X[rng.permutation(X.shape[0])]
        n = int(0.7 * X.shape[0])
    return X[:n], X[n:]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (writes nothing)")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    names = ["shaped 10,000 x 10", "shaped 30,000 x 7", "shaped 5,000 x 4", "moons",
             "S-curve", "breast_cancer", "digits"]
    seeds = range(1 if args.quick else args.seeds)
    if args.quick:
        names = names[2:4]
    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    warnings.simplefilter("ignore")
    rows = []
    for name in names:
        for seed in seeds:
            X, X_test = family(name, seed, args.quick)
            scores, seconds = {}, {}
            for refit in VARIANTS:
                start = time.perf_counter()
                model = RBIG(random_state=seed, refit=refit).fit(X)
                seconds[refit] = time.perf_counter() - start
                scores[refit] = model.score_samples(X_test)
            cells = [name, str(seed), f"{scores[True].mean():.4f}"]
            for refit in (False, "marginals"):
                diff = scores[refit] - scores[True]
                cells += [f"{diff.mean():+.4f} ± {diff.std() / np.sqrt(diff.size):.4f}"]
            cells += [" / ".join(f"{seconds[r]:.1f}" for r in VARIANTS)]
            rows.append(cells)
            print(" | ".join(cells), flush=True)
    lines = [
        "# Refit after early stopping",
        "",
        f"Machine: {os.cpu_count()} cores, shared; load average {load_before} at the start, "
        + " ".join(f"{v:.2f}" for v in os.getloadavg()) + " at the end.",
        "",
        "| data | seed | refit=True: held-out log-lik | refit=False minus it (± s.e.) | "
        'refit="marginals" minus it (± s.e.) | fit s: True / False / "marginals" |',
        "|---|---:|---:|---:|---:|---:|",
    ] + ["| " + " | ".join(r) + " |" for r in rows] + [""]
    print("\n".join(lines))
    if args.quick:
        print("smoke run (--quick): the recorded results are left as they are")
        return 0
    RESULTS.write_text("\n".join(lines))
    print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
