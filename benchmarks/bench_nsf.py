"""A neural spline flow against RBIG, where one can be installed.

Run ``python benchmarks/bench_nsf.py`` (``--quick`` for a smoke run of about
a minute). It needs PyTorch and zuko (``pip install torch zuko``; neither is
a dependency of this library or of any of its extras) and prints a note and
exits 0 without them. It prints a markdown table and writes it to
``benchmarks/results/nsf.md`` (the quick run writes nothing unless
``--output`` is given).

The flow is zuko's ``NSF``: monotone rational-quadratic spline transforms
(Durkan et al. 2019) whose knots come from autoregressive networks, here 3
transforms of 8 bins with two hidden layers of 64 units, on data
standardized by the training mean and standard deviation (``-sum(log std)``
is added back, so every number is in the data's units). It is trained with
Adam (learning rate 1e-3, batches of 256) on 80 % of the training rows,
with early stopping on the other 20 %: the held-out mean log-likelihood is
computed after every epoch, training stops after 15 epochs without
improvement, at 500 epochs, or when the time budget of the dataset is
spent, and the best epoch's weights are kept. RBIG is ``RBIG()`` with its
defaults on the raw data, which chooses its depth on its own 10 % split.
Both see the same training rows and are scored on the same test rows, in
the same process, each on one thread (PyTorch and Numba alike).

Data come from ``bench_quality.py``: two moons (10,000 train / 5,000 test),
the 4-D banana and the 5-D Gaussian mixture (known densities, so KL to the
truth is reported as well).
"""

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import banana, gaussian_mixture, moons  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "nsf.md"


def _missing():
    """Why the flow cannot run here, or None."""
    try:
        import torch  # noqa: F401
        import zuko  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed"
    return None


def datasets(quick):
    if quick:
        return {"moons (2k train)": lambda: moons(2000)}
    return {
        "moons": moons,
        "banana 4-D": banana,
        "GMM 5-D": lambda: gaussian_mixture(5, 6, seed=50),
    }


def _standardize(X, X_test):
    mean, std = X.mean(axis=0), X.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (X - mean) / std, (X_test - mean) / std, -np.log(std).sum()


def fit_nsf(X, X_test, budget_s, seed=0, patience=15, max_epochs=500, batch=256):
    """Train an NSF with early stopping; per-row test log-likelihood and a log."""
    import torch
    import zuko

    torch.manual_seed(seed)
    start = time.perf_counter()
    Xs, Xs_test, log_det = _standardize(X, X_test)
    perm = np.random.default_rng(seed).permutation(len(Xs))
    n_val = len(Xs) // 5
    train = torch.as_tensor(Xs[perm[n_val:]], dtype=torch.float32)
    val = torch.as_tensor(Xs[perm[:n_val]], dtype=torch.float32)
    flow = zuko.flows.NSF(X.shape[1], transforms=3, bins=8, hidden_features=(64, 64))
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    best, best_state, best_epoch, epoch, stop = -np.inf, None, 0, 0, "max epochs"
    for epoch in range(1, max_epochs + 1):
        flow.train()
        order = torch.randperm(len(train), generator=generator)
        for i in range(0, len(train), batch):
            loss = -flow().log_prob(train[order[i : i + batch]]).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        flow.eval()
        with torch.no_grad():
            score = flow().log_prob(val).mean().item()
        if score > best:
            best, best_epoch = score, epoch
            best_state = {k: v.clone() for k, v in flow.state_dict().items()}
        if epoch - best_epoch >= patience:
            stop = "early stopping"
            break
        if time.perf_counter() - start > budget_s:
            stop = "time budget"
            break
    flow.load_state_dict(best_state)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        test = torch.as_tensor(Xs_test, dtype=torch.float32)
        ll = flow().log_prob(test).double().numpy() + log_det
    n_params = sum(p.numel() for p in flow.parameters())
    return {"ll": ll, "seconds": seconds, "epochs": epoch, "best_epoch": best_epoch,
            "stop": stop, "params": n_params}


def fit_rbig(X, X_test):
    from destructors import RBIG

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        model = RBIG(random_state=0).fit(X)
        seconds = time.perf_counter() - start
    return {"ll": model.score_samples(X_test), "seconds": seconds, "layers": model.n_layers_}


def _fmt(ll, truth=None):
    v = ll if truth is None else truth - ll
    return f"{np.mean(v):.3f} ± {np.std(v) / np.sqrt(len(v)):.3f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small dataset, short budget")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds of NSF training per dataset (default: 300; quick: 30)")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    missing = _missing()
    if missing:
        print(f"bench_nsf: skipped, {missing} (pip install torch zuko to run it).")
        return 0
    import numba
    import torch

    budget = args.budget or (30.0 if args.quick else 300.0)
    # One thread each: on a shared 2-core machine a second PyTorch thread made
    # each step 12x slower (0.65 s against 0.053 s at load 17), so both models
    # run serially, which is also what makes their times comparable.
    numba.set_num_threads(1)
    torch.set_num_threads(1)
    rows = []
    for name, load in datasets(args.quick).items():
        X, X_test, truth = load()
        rbig = fit_rbig(X, X_test)
        nsf = fit_nsf(X, X_test, budget)
        for label, res, detail in [
            ("RBIG()", rbig, f"{rbig['layers']} layers"),
            ("NSF (zuko)", nsf, f"{nsf['params']:,} weights, best epoch "
                                f"{nsf['best_epoch']} of {nsf['epochs']} ({nsf['stop']})"),
        ]:
            kl = "" if truth is None else _fmt(res["ll"], truth)
            finite = np.isfinite(res["ll"]).mean()
            rows.append(f"| {name} | {label} | {_fmt(res['ll'])} | {kl} | {finite:.4f} | "
                        f"{res['seconds']:.1f} | {detail} |")
            print(rows[-1], flush=True)
    load = os.getloadavg()
    lines = [
        "# Neural spline flow vs RBIG",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, torch {torch.__version__}, "
        f"zuko {__import__('zuko').__version__}, numba {numba.__version__}; "
        f"{torch.get_num_threads()} thread(s) each; load average at the end "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min). "
        f"NSF time budget {budget:.0f} s per dataset.",
        "",
        "Held-out mean log-likelihood (nats, ± standard error over test rows; higher is "
        "better), KL to the true density where it is known (lower is better), fit time.",
        "",
        "| data | model | held-out log-lik | KL to truth | finite | fit s | notes |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    text = "\n".join(lines)
    print(text)
    output = args.output or (None if args.quick else RESULTS)
    if output is not None:
        output.write_text(text)
        print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
