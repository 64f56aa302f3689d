"""Which rotation RBIG should use by default: greedy against learned, held out.

Two parts, both fitting ``RBIG(rotation=...)`` with every other parameter at
its default:

1. the 13 data sets of ``bench_quality.py`` (its splits, ``random_state=0``);
2. five synthetic families that are in no other benchmark (so they were not
   looked at while the learned rotation was built): a noisy helix, a
   rotated 6-D Laplace, three concentric rings, a correlated 8-D lognormal,
   a sine curve with a Student-t feature; 4,000 training and 4,000 test rows,
   three seeds each (data and model seeded alike).

Prints markdown tables and writes them to ``results/rotation_default.md``
(``--quick``: part 2 only, one seed, 1,000 rows, nothing written).
"""

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from destructors import RBIG  # noqa: E402

ROTATIONS = ("greedy", "learned")


def helix(n, rng):
    t = rng.uniform(0, 4 * np.pi, n)
    return np.column_stack([np.cos(t), np.sin(t), t / 4]) + 0.1 * rng.normal(size=(n, 3))


def laplace6(n, rng):
    Q = np.linalg.qr(np.random.default_rng(7).normal(size=(6, 6)))[0]
    return rng.laplace(size=(n, 6)) @ Q


def rings(n, rng):
    r = rng.choice([1.0, 2.0, 3.0], n)
    t = rng.uniform(0, 2 * np.pi, n)
    return np.column_stack([r * np.cos(t), r * np.sin(t)]) + 0.08 * rng.normal(size=(n, 2))


def lognormal8(n, rng):
    A = np.random.default_rng(8).normal(size=(8, 8)) / 3
    return np.exp(rng.normal(size=(n, 8)) @ A)


def sine_t(n, rng):
    x = rng.uniform(-3, 3, n)
    return np.column_stack([x, np.sin(2 * x) + 0.1 * rng.normal(size=n), rng.standard_t(4, n)])


UNSEEN = {"helix 3-D": helix, "Laplace 6-D rotated": laplace6, "3 rings 2-D": rings,
          "lognormal 8-D": lognormal8, "sine + t 3-D": sine_t}


def fit(X, X_test, rotation, seed):
    start = time.perf_counter()
    model = RBIG(rotation=rotation, random_state=seed).fit(X)
    seconds = time.perf_counter() - start
    return model.score_samples(X_test), seconds, model.n_layers_


def known_part():
    import bench_quality

    lines = ["## The data sets of bench_quality.py (random_state=0)", "",
             "| data | greedy | learned | gain | s.e. of the gain | fit s greedy / learned |",
             "|---|---:|---:|---:|---:|---|"]
    gains = []
    for name, loader in bench_quality.datasets(False).items():
        X, X_test, _ = loader()
        (lg, sg, _), (ll, sl, _) = (fit(X, X_test, r, 0) for r in ROTATIONS)
        diff = ll - lg
        gains.append(diff.mean())
        lines.append(f"| {name} | {lg.mean():.3f} | {ll.mean():.3f} | {diff.mean():+.3f} | "
                     f"{diff.std() / np.sqrt(diff.size):.3f} | {sg:.1f} / {sl:.1f} |")
        print(lines[-1], flush=True)
    gains = np.array(gains)
    lines += ["", f"Learned better on {int(np.sum(gains > 0))} of {gains.size}; median gain "
              f"{np.median(gains):+.3f}, worst {gains.min():+.3f} nats.", ""]
    return lines


def unseen_part(n, seeds):
    lines = [f"## Data in no other benchmark ({n:,} train / {n:,} test rows, seeds "
             f"{list(seeds)})", "",
             "| data | greedy | learned | gain (seeds better) | fit s greedy / learned |",
             "|---|---:|---:|---:|---|"]
    for name, gen in UNSEEN.items():
        scores = {r: [] for r in ROTATIONS}
        secs = {r: 0.0 for r in ROTATIONS}
        for seed in seeds:
            rng = np.random.default_rng(seed)
            X, X_test = gen(n, rng), gen(n, rng)
            for r in ROTATIONS:
                ll, s, _ = fit(X, X_test, r, seed)
                scores[r].append(ll.mean())
                secs[r] += s / len(seeds)
        g, le = np.array(scores["greedy"]), np.array(scores["learned"])
        lines.append(f"| {name} | {g.mean():.3f} | {le.mean():.3f} | {np.mean(le - g):+.3f} "
                     f"({int(np.sum(le > g))}/{len(seeds)}) | {secs['greedy']:.1f} / "
                     f"{secs['learned']:.1f} |")
        print(lines[-1], flush=True)
    return lines + [""]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="part 2 only, small")
    parser.add_argument("--output", default=str(HERE / "results" / "rotation_default.md"))
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    lines = ["# Default rotation: greedy against learned (bench_rotation_default.py)", "",
             f"2 cores; load average at the start {load}.", ""]
    if args.quick:
        lines += unseen_part(1000, (0,))
    else:
        lines += known_part() + unseen_part(4000, (0, 1, 2))
    lines.append("Load average at the end: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        Path(args.output).write_text(text)


if __name__ == "__main__":
    main()
