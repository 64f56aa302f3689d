"""Information measures from Gaussianization against closed forms and kNN.

Run ``python benchmarks/bench_information.py`` (add ``--quick`` for a smoke
run). It prints a table and writes it to
``benchmarks/results/information.md``.

Cases, each with an analytic truth:

- multivariate Gaussians with random covariances (random feature scales
  too), D in {2, 3, 10, 50}, n in {1000, 5000, 20000}: total correlation,
  entropy, and mutual information between the first ``D // 2`` features
  and the rest;
- independent uniform, Laplace and Student-t(5) sources mixed by a random
  invertible matrix: entropy ``sum_k H(s_k) + log|det A|``;
- multivariate Student-t(5): total correlation (closed form from the
  entropies of the multivariate and univariate t);
- mutual information of independent non-Gaussian blocks (truth 0) and of
  correlated Gaussian blocks before and after monotone transforms of every
  feature (truth unchanged);
- KL divergence between two samples of one distribution (truth 0) and
  between two Gaussians, one a random perturbation of the other (closed
  form).

Mixing matrices are ``Q1 diag(s) Q2`` with random rotations and
``log s ~ U(-0.7, 0.7)`` (condition number at most 4).

The reference is the k-nearest-neighbour family (k = 3) written on
scikit-learn's neighbour search in ``benchmarks/_knn.py``:
Kozachenko-Leonenko entropy, Kraskov (KSG) total correlation and mutual
information, and the Wang-Kulkarni-Verdu KL divergence. Each cell is the
mean over ``R`` seeded replicates (fresh samples, fresh covariance) of the
estimate and of the absolute error.
"""

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from _knn import knn_entropy, knn_kl_divergence, ksg_mutual_information, ksg_total_correlation
from scipy import stats
from scipy.special import digamma, gammaln

from destructors.information import entropy, kl_divergence, mutual_information

RESULTS = Path(__file__).parent / "results" / "information.md"


# -- cases with closed forms ----------------------------------------------------


def random_covariance(d, rng):
    """Wishart-type covariance with 2 d degrees of freedom, random scales."""
    A = rng.normal(size=(d, 2 * d)) / np.sqrt(2 * d)
    scales = np.exp(rng.uniform(-1.0, 1.0, size=d))
    return (A @ A.T) * np.outer(scales, scales)


def gaussian_truth(S, split):
    logdet = np.linalg.slogdet(S)[1]
    d = S.shape[0]
    h = 0.5 * (d * np.log(2 * np.pi * np.e) + logdet)
    tc = 0.5 * (np.sum(np.log(np.diag(S))) - logdet)
    mi = 0.5 * (
        np.linalg.slogdet(S[:split, :split])[1] + np.linalg.slogdet(S[split:, split:])[1] - logdet
    )
    return h, tc, mi


SOURCES = {
    "uniform": (lambda rng, n: rng.uniform(-np.sqrt(3), np.sqrt(3), n), 0.5 * np.log(12.0)),
    "laplace": (lambda rng, n: rng.laplace(0.0, np.sqrt(0.5), n), 1.0 + np.log(2 * np.sqrt(0.5))),
    "student-t(5)": (
        lambda rng, n: rng.standard_t(5, n) * np.sqrt(3 / 5),
        stats.t(5).entropy() + 0.5 * np.log(3 / 5),
    ),
}


def random_mixing(d, rng):
    """Random invertible matrix ``Q1 diag(s) Q2``, condition number <= 4."""
    if d == 1:
        return np.exp(rng.uniform(-0.7, 0.7, size=(1, 1)))
    q1 = stats.ortho_group.rvs(d, random_state=rng)
    q2 = stats.ortho_group.rvs(d, random_state=rng)
    return q1 @ np.diag(np.exp(rng.uniform(-0.7, 0.7, size=d))) @ q2


def mixed_sources(d, n, rng):
    """Independent unit-variance sources, cycled, mixed by a random matrix."""
    names = [list(SOURCES)[k % len(SOURCES)] for k in range(d)]
    A = random_mixing(d, rng)
    S = np.column_stack([SOURCES[name][0](rng, n) for name in names])
    h = sum(SOURCES[name][1] for name in names) + np.linalg.slogdet(A)[1]
    return S @ A.T, h


def _mvt_entropy(d, nu, logdet):
    return (
        0.5 * logdet
        + 0.5 * d * np.log(nu * np.pi)
        + gammaln(nu / 2)
        - gammaln((nu + d) / 2)
        + 0.5 * (nu + d) * (digamma((nu + d) / 2) - digamma(nu / 2))
    )


def student_t_case(d, n, rng, nu=5.0):
    S = random_covariance(d, rng)
    X = stats.multivariate_t(np.zeros(d), S, df=nu).rvs(size=n, random_state=rng)
    X = X.reshape(n, d)
    tc = sum(_mvt_entropy(1, nu, np.log(S[j, j])) for j in range(d)) - _mvt_entropy(
        d, nu, np.linalg.slogdet(S)[1]
    )
    return X, tc


def gaussian_kl(m0, S0, m1, S1):
    d = len(m0)
    inv = np.linalg.inv(S1)
    diff = m1 - m0
    return 0.5 * (
        np.trace(inv @ S0) + diff @ inv @ diff - d
        + np.linalg.slogdet(S1)[1] - np.linalg.slogdet(S0)[1]
    )


# -- runner -------------------------------------------------------------------------


class Table:
    def __init__(self):
        self.rows = []

    def add(self, measure, data, d, n, truth, ours, ours_s, ref, ref_s):
        ours, ref = np.asarray(ours), np.asarray(ref, dtype=float)
        err = np.abs(ours - truth)
        scale = np.abs(truth)
        rel = f"{np.mean(err / scale):.1%}" if np.all(scale > 0.05) else ""
        row = {
            "measure": measure, "data": data, "D": d, "n": n, "truth": np.mean(truth),
            "ours": ours.mean(), "ours_abs": err.mean(), "ours_rel": rel,
            "ref": ref.mean() if ref.size else np.nan,
            "ref_abs": np.abs(ref - truth).mean() if ref.size else np.nan,
            "ours_s": ours_s, "ref_s": ref_s,
        }
        self.rows.append(row)
        print(self.format(row), flush=True)

    @staticmethod
    def header():
        return (
            "| measure | data | D | n | truth | ours | abs err | rel err | kNN ref | "
            "ref abs err | ours s | ref s |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
            "---:|---:|"
        )

    @staticmethod
    def format(r):
        ref = "" if np.isnan(r["ref"]) else f"{r['ref']:.3f}"
        ref_abs = "" if np.isnan(r["ref_abs"]) else f"{r['ref_abs']:.3f}"
        ref_s = "" if np.isnan(r["ref_s"]) else f"{r['ref_s']:.1f}"
        return (
            f"| {r['measure']} | {r['data']} | {r['D']} | {r['n']} | {r['truth']:.3f} | "
            f"{r['ours']:.3f} | {r['ours_abs']:.3f} | {r['ours_rel']} | {ref} | {ref_abs} | "
            f"{r['ours_s']:.1f} | {ref_s} |"
        )


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def gaussian_rows(table, dims, sizes, reps, ref_limit):
    for d in dims:
        for n in sizes:
            truth = {"H": [], "TC": [], "MI": []}
            ours = {k: [] for k in truth}
            refs = {k: [] for k in truth}
            t_ours = {k: 0.0 for k in truth}
            t_ref = {k: 0.0 for k in truth}
            split = d // 2
            for r in range(reps):
                rng = np.random.default_rng(1000 * d + r)
                S = random_covariance(d, rng)
                X = rng.multivariate_normal(np.zeros(d), S, size=n)
                for key, value in zip(("H", "TC", "MI"), gaussian_truth(S, split), strict=True):
                    truth[key].append(value)
                (h, det), t = timed(entropy, X, random_state=r, return_details=True)
                ours["H"].append(h)
                ours["TC"].append(det.total_correlation)
                t_ours["H"] += t
                t_ours["TC"] += t
                mi, t = timed(mutual_information, X[:, :split], X[:, split:], random_state=r)
                ours["MI"].append(mi)
                t_ours["MI"] += t
                if n * d <= ref_limit:
                    v, t = timed(knn_entropy, X)
                    refs["H"].append(v)
                    t_ref["H"] += t
                    v, t = timed(ksg_total_correlation, X)
                    refs["TC"].append(v)
                    t_ref["TC"] += t
                    v, t = timed(ksg_mutual_information, X[:, :split], X[:, split:])
                    refs["MI"].append(v)
                    t_ref["MI"] += t
            for key, name in (("TC", "total correlation"), ("H", "entropy"),
                              ("MI", f"MI ({split} | {d - split})")):
                has_ref = bool(refs[key])
                table.add(
                    name, "Gaussian", d, n, np.array(truth[key]), ours[key],
                    t_ours[key] / reps, refs[key], t_ref[key] / reps if has_ref else np.nan,
                )


def nongaussian_rows(table, dims, sizes, reps, ref_limit):
    for d in dims:
        for n in sizes:
            truth, ours, refs, t_o, t_r = [], [], [], 0.0, 0.0
            for r in range(reps):
                rng = np.random.default_rng(2000 * d + r)
                X, h = mixed_sources(d, n, rng)
                truth.append(h)
                v, t = timed(entropy, X, random_state=r)
                ours.append(v)
                t_o += t
                if n * d <= ref_limit:
                    v, t = timed(knn_entropy, X)
                    refs.append(v)
                    t_r += t
            table.add("entropy", "mixed uniform/Laplace/t5", d, n, np.array(truth), ours,
                      t_o / reps, refs, t_r / reps if refs else np.nan)
    for d in dims:
        for n in sizes:
            truth, ours, refs, t_o, t_r = [], [], [], 0.0, 0.0
            for r in range(reps):
                rng = np.random.default_rng(3000 * d + r)
                X, tc = student_t_case(d, n, rng)
                truth.append(tc)
                (h, det), t = timed(entropy, X, random_state=r, return_details=True)
                ours.append(det.total_correlation)
                t_o += t
                if n * d <= ref_limit:
                    v, t = timed(ksg_total_correlation, X)
                    refs.append(v)
                    t_r += t
            table.add("total correlation", "Student-t(5)", d, n, np.array(truth), ours,
                      t_o / reps, refs, t_r / reps if refs else np.nan)


def mi_rows(table, sizes, reps):
    for n in sizes:
        truth, ours, refs, t_o, t_r = [], [], [], 0.0, 0.0
        for r in range(reps):
            rng = np.random.default_rng(4000 + r)
            X, _ = mixed_sources(2, n, rng)
            Y = rng.laplace(size=(n, 2)) @ random_mixing(2, rng).T
            truth.append(0.0)
            v, t = timed(mutual_information, X, Y, random_state=r)
            ours.append(v)
            t_o += t
            v, t = timed(ksg_mutual_information, X, Y)
            refs.append(v)
            t_r += t
        table.add("MI (2 | 2)", "independent non-Gaussian", 4, n, np.array(truth), ours,
                  t_o / reps, refs, t_r / reps)
    for label, transform in (
        ("Gaussian blocks", lambda A, B: (A, B)),
        ("same, monotone maps", lambda A, B: (np.exp(A), np.sinh(2 * B) + B**3)),
    ):
        for n in sizes:
            truth, ours, refs, t_o, t_r = [], [], [], 0.0, 0.0
            for r in range(reps):
                rng = np.random.default_rng(5000 + r)
                S = random_covariance(4, rng)
                X = rng.multivariate_normal(np.zeros(4), S, size=n)
                truth.append(gaussian_truth(S, 2)[2])
                A, B = transform(X[:, :2], X[:, 2:])
                v, t = timed(mutual_information, A, B, random_state=r)
                ours.append(v)
                t_o += t
                v, t = timed(ksg_mutual_information, A, B)
                refs.append(v)
                t_r += t
            table.add("MI (2 | 2)", label, 4, n, np.array(truth), ours, t_o / reps, refs,
                      t_r / reps)


def kl_rows(table, dims, sizes, reps):
    for d in dims:
        for n in sizes:
            truth, ours, refs, t_o, t_r = [], [], [], 0.0, 0.0
            for r in range(reps):
                rng = np.random.default_rng(6000 * d + r)
                A = random_mixing(d, rng)
                X = rng.laplace(size=(n, d)) @ A.T
                Y = rng.laplace(size=(n, d)) @ A.T
                truth.append(0.0)
                v, t = timed(kl_divergence, X, Y, random_state=r)
                ours.append(v)
                t_o += t
                v, t = timed(knn_kl_divergence, X, Y)
                refs.append(v)
                t_r += t
            table.add("KL", "two samples, same Laplace mixture", d, n, np.array(truth), ours,
                      t_o / reps, refs, t_r / reps)
    for d in dims:
        for n in sizes:
            truth, ours, refs, t_o, t_r = [], [], [], 0.0, 0.0
            for r in range(reps):
                rng = np.random.default_rng(7000 * d + r)
                S1 = random_covariance(d, rng)
                B = np.eye(d) + 0.3 * rng.normal(size=(d, d)) / np.sqrt(d)
                S0 = B @ S1 @ B.T
                m1 = np.zeros(d)
                m0 = 0.3 * np.sqrt(np.diag(S1)) * rng.normal(size=d)
                X = rng.multivariate_normal(m0, S0, size=n)
                Y = rng.multivariate_normal(m1, S1, size=n)
                truth.append(gaussian_kl(m0, S0, m1, S1))
                v, t = timed(kl_divergence, X, Y, random_state=r)
                ours.append(v)
                t_o += t
                v, t = timed(knn_kl_divergence, X, Y)
                refs.append(v)
                t_r += t
            table.add("KL", "two Gaussians", d, n, np.array(truth), ours, t_o / reps, refs,
                      t_r / reps)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny grid, smoke run (writes nothing)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", category=UserWarning)
    if args.quick:
        dims, sizes, reps, ref_limit = [2, 3], [1000], 1, 10**6
    else:
        dims, sizes, reps, ref_limit = [2, 3, 10, 50], [1000, 5000, 20000], 3, 250_000
    start = time.perf_counter()
    table = Table()
    print(Table.header())
    gaussian_rows(table, dims, sizes, reps, ref_limit)
    nongaussian_rows(table, [d for d in dims if d <= 10], sizes, reps, ref_limit)
    mi_rows(table, sizes, reps)
    kl_rows(table, [d for d in dims if d <= 3], sizes, reps)
    elapsed = time.perf_counter() - start
    lines = [
        "# Information measures: accuracy against closed forms",
        "",
        f"`python benchmarks/bench_information.py` ({elapsed / 60:.1f} minutes). Each row: "
        f"mean over {reps} seeded replicates of the estimate and of its absolute error "
        "(nats); relative error where the truth exceeds 0.05 nats. kNN reference: "
        "Kozachenko-Leonenko entropy, KSG total correlation / MI, Wang-Kulkarni-Verdu KL "
        "(k = 3), skipped where n * D > "
        f"{ref_limit:,}.",
        "",
        Table.header(),
        *[Table.format(r) for r in table.rows],
        "",
    ]
    if args.quick:  # a smoke run would replace the recorded tables
        print("\n".join(lines))
        return 0
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines))
    print(f"\nwritten to {RESULTS} ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
