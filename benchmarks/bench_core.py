"""Core benchmark: density quality on moons and digits, and kernel throughput.

Run ``python benchmarks/bench_core.py`` (add ``--quick`` for a smoke run).
It prints a table and writes it to ``benchmarks/results/core.md``.

Targets (issue "core library"):

- moons, 10,000 train / 5,000 test: mean held-out log-likelihood >= -0.50
  nats, every test point finite, fit time < 2 s;
- digits + U[0, 1) noise, 1,500 train / 297 test: >= -105 nats, all finite;
- throughput through a fitted model on 1,000,000 x 10 rows, in
  element-layers per second, Numba path >= 5x the same computation done with
  ``np.interp`` and ``scipy.special.ndtri`` per column.

Speed is reported as ratios measured in the same run, since machines are
shared and noisy.
"""

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.special import ndtr, ndtri
from sklearn.datasets import load_digits, make_moons
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KernelDensity

from destructors import RBIG, MarginalGaussianizer
from destructors._kernels import piecewise_linear_reference
from destructors.base import standard_normal_log_pdf

RESULTS = Path(__file__).parent / "results" / "core.md"
_HALF_LOG_2PI = 0.5 * np.log(2 * np.pi)


def moons():
    X, _ = make_moons(10000, noise=0.05, random_state=0)
    X_test, _ = make_moons(5000, noise=0.05, random_state=1)
    return X, X_test


def digits():
    X = load_digits().data
    rng = np.random.default_rng(0)
    X = X + rng.uniform(size=X.shape)
    perm = rng.permutation(X.shape[0])
    return X[perm[:1500]], X[perm[1500:]]


def _timed_fit(model, X):
    start = time.perf_counter()
    model.fit(X)
    return model, time.perf_counter() - start


def quality_rows(quick):
    # Compile the Numba kernels first, so fit times are steady-state times.
    RBIG(max_layers=2, random_state=0).fit(moons()[0])
    rows = []
    for name, (X, X_test), target in [("moons", moons(), -0.50), ("digits", digits(), -105.0)]:
        models = {
            "RBIG (defaults)": RBIG(random_state=0),
            "RBIG classic (PCA, no smoothing, full steps)": RBIG(
                rotation="pca", smoothing=0.0, damping=1.0, first_damping=None,
                random_state=0,
            ),
            "single Gaussian": GaussianMixture(1, covariance_type="full", random_state=0),
        }
        if not quick:
            grid = {"bandwidth": np.geomspace(0.02, 2.0, 12)}
            models["KDE (bandwidth by 5-fold CV)"] = GridSearchCV(KernelDensity(), grid, cv=5)
        for label, model in models.items():
            model, seconds = _timed_fit(model, X)
            scores = model.score_samples(X_test)
            finite = np.isfinite(scores)
            layers = getattr(model, "n_layers_", "")
            ok = ""
            if label == "RBIG (defaults)":
                ok = "yes" if (scores.mean() >= target and finite.all()) else "NO"
                if name == "moons" and seconds >= 2.0:
                    ok = "NO (fit time)"
            rows.append(
                (name, label, f"{scores[finite].mean():.3f}", f"{finite.mean():.4f}",
                 str(layers), f"{seconds:.2f}", f">= {target}" if ok else "", ok)
            )
    return rows


def classic_marginal(mg, X):
    """RBIG's usual marginal step in NumPy: CDF by np.interp, then ndtri.

    The same map as MarginalGaussianizer (the knots' CDF levels are
    ``ndtr(knots_z_)``), with the log-derivative from the piecewise-constant
    density and the normal log-pdf.
    """
    Z = np.empty_like(X)
    log_det = np.zeros(X.shape[0])
    for j in range(X.shape[1]):
        m = mg.n_knots_[j]
        xk, uk = mg.knots_x_[j, :m], ndtr(mg.knots_z_[j, :m])
        Z[:, j] = ndtri(np.interp(X[:, j], xk, uk))
        density = np.interp(X[:, j], xk[:-1], np.diff(uk) / np.diff(xk))
        log_det += np.log(density) + 0.5 * Z[:, j] ** 2 + _HALF_LOG_2PI
    return Z, log_det


def reference_score(model, X, marginal_step):
    """score_samples of a fitted RBIG with the marginal steps done in NumPy."""
    log_det = np.zeros(X.shape[0])
    for block in model.layers_:
        marginal, rotation = block.layers_
        X, ld = marginal_step(marginal, X)
        log_det += ld
        X, ld = rotation._forward(X)
        log_det += ld
    return standard_normal_log_pdf(X) + log_det


def _best_time(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def throughput_rows(quick):
    n_rows, n_features = (100_000 if quick else 1_000_000), 10
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(n_features, n_features))
    X_fit = np.tanh(rng.standard_t(4, size=(20_000, n_features))) @ mix
    X = np.tanh(rng.standard_t(4, size=(n_rows, n_features))) @ mix
    model = RBIG(max_layers=10, early_stopping=False, tol=None, random_state=0).fit(X_fit)
    n_layers = model.n_layers_
    mg = MarginalGaussianizer().fit(X)
    cases = [
        ("one marginal layer", n_rows * n_features, {
            "Numba kernel": lambda: mg.transform_log_det(X),
            "NumPy: np.interp + ndtri per column": lambda: classic_marginal(mg, X),
            "NumPy reference of the same map": lambda: piecewise_linear_reference(
                X, mg.knots_x_, mg.knots_z_, mg.n_knots_),
        }),
        (f"RBIG score_samples ({n_layers} layers)", n_rows * n_features * n_layers, {
            "Numba kernel": lambda: model.score_samples(X),
            "NumPy: np.interp + ndtri per column": lambda: reference_score(
                model, X, classic_marginal),
        }),
    ]
    rows = []
    for case, work, fns in cases:
        for fn in fns.values():  # warm-up (JIT compilation, caches)
            fn()
        times = {label: _best_time(fn, 3) for label, fn in fns.items()}
        base = times["NumPy: np.interp + ndtri per column"]
        for label, seconds in times.items():
            rows.append((case, label, f"{work / seconds / 1e6:.1f}", f"{base / seconds:.2f}x"))
    return rows, n_rows


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    args = parser.parse_args(argv)
    quality = _table(
        ["data", "model", "held-out log-lik (nats)", "finite fraction", "layers",
         "fit s", "target", "met"],
        quality_rows(args.quick),
    )
    speed_rows, n_rows = throughput_rows(args.quick)
    speed = _table(
        ["computation", "implementation", "M element-layers/s", "speed-up vs np.interp+ndtri"],
        speed_rows,
    )
    text = (
        "### Density quality (held-out mean log-likelihood)\n\n" + quality
        + f"\n\n### Throughput ({n_rows:,} x 10 rows)\n\n" + speed + "\n"
    )
    print(text)
    if not args.quick:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(text)
        print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
