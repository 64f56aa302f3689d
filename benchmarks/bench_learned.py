"""Learned-direction rotations in RBIG: held-out likelihood, fit time, information.

Run ``python benchmarks/bench_learned.py`` (``--quick`` for a smoke run on
small data, which writes nothing unless ``--output`` is given). It prints
markdown tables and writes them to ``benchmarks/results/learned.md``.

Measured:

- held-out mean log-likelihood (nats, data units, ± its standard error over
  the test rows; KL to the truth where the density is known) of ``RBIG()``
  (greedy rotation, the default ``damping=0.3``) against
  ``RBIG(rotation="learned")`` with the layer's defaults and a few
  variants of its parameters, each fitted with ``random_state=0``; fit
  time, layers fitted (the depth search and the refit) and seconds per
  fitted layer;
- on data with one known non-Gaussian direction hidden by a rotation, the
  summed marginal KL the first rotation exposes (greedy vs learned);
- total correlation of a 10-D Student-t(5) (truth 1.883 nats, the case the
  information measures under-estimate) by ``total_correlation`` with its
  default Gaussianization and with RBIG estimators of each rotation.

Data are those of ``bench_quality.py`` (imported from it): two moons (the
split of ``bench_core.py``), wine and breast_cancer (70/30, seed 0), digits
(dequantized, 1,500 / 297), and, with 5,000 training and 5,000 test rows,
Gaussian mixtures (5-D and 10-D), a Student t (5-D), a Beta product (4-D), a
banana (4-D) and rotated independent sources (6-D: uniform, exponential,
Laplace and three Gaussians, mixed by a random rotation); all of known
density but moons and the real data.
"""

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).parent))
import bench_quality as bq  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from destructors import RBIG, GreedyRotation, LearnedRotation  # noqa: E402
from destructors._entropy import marginal_kl_to_normal  # noqa: E402
from destructors.registry import register_layer, unregister_layer  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "learned.md"
# Training rows of the synthetic data (5,000 test rows): half of
# bench_quality.py's, so the whole run fits in about half an hour on two
# shared cores.
N_SYNTHETIC = 5000


def rotated_sources(d=6, seed=70, n_train=bq.N_TRAIN, n_test=bq.N_TEST):
    """Uniform, exponential and Laplace sources and Gaussians, mixed by a rotation."""
    rng = np.random.default_rng(seed)
    dists = [stats.uniform(-np.sqrt(3), 2 * np.sqrt(3)), stats.expon(-1.0),
             stats.laplace(scale=1 / np.sqrt(2))] + [stats.norm()] * (d - 3)
    Q = np.linalg.qr(rng.normal(size=(d, d)))[0]

    def draw(n):
        return np.column_stack([dist.rvs(size=n, random_state=rng) for dist in dists])

    S, S_test = draw(n_train), draw(n_test)
    logp = np.sum([dist.logpdf(S_test[:, j]) for j, dist in enumerate(dists)], axis=0)
    return S @ Q, S_test @ Q, logp


def datasets(quick):
    if quick:
        return {
            "moons (2k)": lambda: bq.moons(2000),
            "rotated sources 6-D (2k)": lambda: rotated_sources(n_train=2000),
            "wine": bq.wine,
        }
    return {
        "moons": bq.moons,
        "wine": bq.wine,
        "breast_cancer": bq.breast_cancer,
        "digits": bq.digits,
        "GMM 5-D (5k)": lambda: bq.gaussian_mixture(5, 6, seed=50, n_train=N_SYNTHETIC),
        "GMM 10-D (5k)": lambda: bq.gaussian_mixture(10, 8, seed=60, n_train=N_SYNTHETIC),
        "Student t 5-D (5k)": lambda: bq.student_t(n_train=N_SYNTHETIC),
        "Beta product 4-D (5k)": lambda: bq.beta_product(n_train=N_SYNTHETIC),
        "banana 4-D (5k)": lambda: bq.banana(n_train=N_SYNTHETIC),
        "rotated sources 6-D (5k)": lambda: rotated_sources(n_train=N_SYNTHETIC),
    }


# Rotations compared: registry name -> LearnedRotation parameters (None: greedy).
def variants(quick):
    if quick:
        return {"greedy": None, "learned": {}}
    return {
        "greedy": None,
        "learned": {},
        'learned select="last"': {"select": "last"},
    }


def _variant_class(params):
    """LearnedRotation with other defaults (RBIG builds its rotations by name)."""
    merged = {**LearnedRotation().get_params(), **params}

    class Variant(LearnedRotation):
        def __init__(self, n_directions=merged["n_directions"], n_steps=merged["n_steps"],
                     subsample=merged["subsample"], n_random=merged["n_random"],
                     select=merged["select"], random_state=None):
            super().__init__(n_directions, n_steps, subsample, n_random, select, random_state)

    return Variant


def fit_rbig(X, X_test, name, params):
    rotation = "greedy" if params is None else "learned" if not params else "bench-variant"
    if rotation == "bench-variant":
        register_layer("bench-variant", "rotation")(_variant_class(params))
    try:
        model = RBIG(rotation=rotation, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            start = time.perf_counter()
            model.fit(X)
            seconds = time.perf_counter() - start
        ll = model.score_samples(X_test)
    finally:
        if rotation == "bench-variant":
            unregister_layer("bench-variant", "rotation")
    fitted = len(model.train_score_) + model.n_layers_
    return dict(ll=ll, seconds=seconds, kept=model.n_layers_, fitted=fitted)


def likelihood_table(quick):
    names, configs = datasets(quick), variants(quick)
    rows, gains = [], {c: [] for c in configs}
    for dname, load in names.items():
        X, X_test, truth = load()
        results = {c: fit_rbig(X, X_test, c, p) for c, p in configs.items()}
        base = results["greedy"]["ll"].mean()
        for c, r in results.items():
            gain = r["ll"].mean() - base
            gains[c].append(gain)
            per_layer = 1e3 * r["seconds"] / r["fitted"]
            rows.append([dname, c, bq._fmt(r["ll"]),
                         "" if truth is None else bq._fmt(r["ll"], truth),
                         f"{gain:+.3f}", f"{r['seconds']:.1f}", r["kept"], r["fitted"],
                         f"{per_layer:.0f}"])
            print(" | ".join(str(v) for v in rows[-1]), flush=True)
    table = bq._table(["data", "rotation", "held-out loglik", "KL to truth", "gain vs greedy",
                       "fit s", "layers kept", "layers fitted", "ms / fitted layer"], rows)
    summary = bq._table(
        ["rotation", "median gain", "mean gain", "worst gain", "datasets improved"],
        [[c, f"{np.median(g):+.3f}", f"{np.mean(g):+.3f}", f"{np.min(g):+.3f}",
          f"{sum(v > 0 for v in g)}/{len(g)}"] for c, g in gains.items()])
    return table, summary


def exposure_table(quick):
    """Marginal KL exposed by one rotation of rotated sources (known directions)."""
    n = 2000 if quick else 10_000
    # Fresh rows of the same rotation: the test split.
    X, X_eval, _ = rotated_sources(n_train=n)
    rows = []
    for name, rot in [("greedy", GreedyRotation(random_state=0)),
                      ("learned", LearnedRotation(random_state=0))]:
        start = time.perf_counter()
        rot.fit(X)
        seconds = time.perf_counter() - start
        exposed = marginal_kl_to_normal(rot.transform(X_eval)).sum()
        rows.append([name, f"{exposed:.3f}", f"{1e3 * seconds:.0f}"])
    # The sources themselves (rotated_sources' first draw is the rotation).
    S = np.linalg.qr(np.random.default_rng(70).normal(size=(6, 6)))[0]
    rows.append(["true sources", f"{marginal_kl_to_normal(X_eval @ S.T).sum():.3f}", ""])
    return bq._table(["rotation", "summed marginal KL on fresh rows", "fit ms"], rows)


def information_table(quick):
    from destructors.information import total_correlation

    d, nu = 10, 5.0
    truth = None
    rows = []
    sizes = [2000] if quick else [1000, 5000]
    for n in sizes:
        rng = np.random.default_rng(80 + n)
        A = np.linalg.qr(rng.normal(size=(d, d)))[0] * np.exp(rng.uniform(-0.7, 0.7, d))
        shape = A @ A.T
        dist = stats.multivariate_t(shape=shape, df=nu)
        X = dist.rvs(size=n, random_state=rng)
        truth = _t_total_correlation(shape, nu)
        for name, est in [("default (PCA, then greedy)", None),
                          ("RBIG(rotation='greedy')", RBIG(rotation="greedy")),
                          ("RBIG(rotation='learned')", RBIG(rotation="learned"))]:
            start = time.perf_counter()
            tc = total_correlation(X, estimator=est, random_state=0)
            seconds = time.perf_counter() - start
            rows.append([n, name, f"{truth:.3f}", f"{tc:.3f}", f"{tc - truth:+.3f}",
                         f"{seconds:.1f}"])
            print(" | ".join(str(v) for v in rows[-1]), flush=True)
    return bq._table(["n", "estimator", "truth", "estimate", "error", "s"], rows)


def _t_total_correlation(shape, nu):
    """Closed-form total correlation of a multivariate t (sum of marginal H - joint H)."""
    from scipy.special import digamma, gammaln

    d = shape.shape[0]

    def h(dim, logdet):
        return (0.5 * logdet + 0.5 * dim * np.log(nu * np.pi) + gammaln(nu / 2)
                - gammaln((nu + dim) / 2)
                + (nu + dim) / 2 * (digamma((nu + dim) / 2) - digamma(nu / 2)))

    marg = sum(h(1, np.log(shape[j, j])) for j in range(d))
    return marg - h(d, np.linalg.slogdet(shape)[1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--skip-information", action="store_true")
    args = parser.parse_args(argv)
    # Compile the Numba kernels first, so fit times are steady-state times.
    RBIG(max_layers=2, rotation="learned", random_state=0).fit(bq.moons(500)[0])
    load_before = bq._load()
    started = time.perf_counter()
    table, summary = likelihood_table(args.quick)
    exposure = exposure_table(args.quick)
    info = "" if args.skip_information else information_table(args.quick)
    text = "\n\n".join([
        "# Learned-direction rotations (benchmarks/bench_learned.py)",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"{load_before} before, {bq._load()} after; {time.perf_counter() - started:.0f} s.",
        "## Held-out log-likelihood of RBIG by rotation (random_state=0)", table,
        "## Gain over the greedy rotation, per rotation", summary,
        "## Non-Gaussianity one rotation exposes (rotated sources 6-D)", exposure,
        *(["## Total correlation of a 10-D Student-t(5)", info] if info else []),
    ]) + "\n"
    print(text)
    out = args.output if args.output is not None else (None if args.quick else RESULTS)
    if out is not None:
        out.write_text(text)


if __name__ == "__main__":
    main()
