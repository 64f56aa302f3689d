"""Command line interface: ``destructors`` / ``python -m destructors``."""

import argparse
import sys


def _demo(args):
    import time

    import numpy as np
    from sklearn.datasets import make_moons

    from . import RBIG

    X, _ = make_moons(10000, noise=0.05, random_state=0)
    X_test, _ = make_moons(5000, noise=0.05, random_state=1)
    start = time.perf_counter()
    model = RBIG(random_state=0).fit(X)
    elapsed = time.perf_counter() - start
    scores = model.score_samples(X_test)
    print("RBIG on two moons (10,000 train / 5,000 test rows)")
    print(f"  held-out log-likelihood: {np.mean(scores):.4f} nats per sample")
    print(f"  layers: {model.n_layers_}")
    print(f"  fit time: {elapsed:.2f} s")
    return 0


def main(argv=None):
    """Run the command line interface.

    Parameters
    ----------
    argv : list of str or None
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        Exit status, 0 on success.

    Examples
    --------
    >>> from destructors.cli import main
    >>> main(["--help"])  # doctest: +SKIP
    """
    parser = argparse.ArgumentParser(
        prog="destructors", description="Density destruction models (RBIG)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="fit RBIG on two moons and report")
    demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
