"""Reading CSV tables and starting the command line: time and peak memory.

Run ``python benchmarks/bench_io.py`` (add ``--quick`` for a smoke run on a
small file; ``--baseline REV`` also measures the library as it was at git
revision ``REV``, exported with ``git archive`` into a temporary folder).
It prints a markdown table and writes it to ``benchmarks/results/io.md``
(the quick run writes nothing unless ``--output`` is given).

The file: ``--rows`` rows (default 400,000) of 10 seeded standard normal
columns under a header, written by ``destructors.io.write_table`` (the
shortest text that reads back exactly, about 19 characters a value: 77 MB
at the default size). Variants of it: gzip-compressed, with ``;``
separators and decimal commas, and with one bad cell in its last row (the
time to the error message, which finds the cell's line again in the file).

Every measurement runs in a fresh Python process (``python -P``, so that
only ``PYTHONPATH`` decides which version is imported): the time of the
read alone (imports, pandas' too, excluded), and the peak resident memory of the process
(``VmHWM``) next to its resident memory just before the read, so that
the difference is what the read itself held at its peak. Each case is run
``--repeats`` times; the table shows the fastest time and the largest
peak. References: ``pandas.read_csv(path)`` on the same file, and, with
``--baseline``, the earlier ``read_table``. Linux only (``/proc``).

``destructors --help`` is timed as ``python -m destructors --help`` in a
fresh process (median of 5), and the modules it imported are checked for
Numba, scikit-learn, SciPy and pandas.
"""

import argparse
import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

# Runs in a child process: READ is a Python expression of ``path``.
_CHILD = r"""
import json, os, sys, time
import numpy as np
{imports}
path = sys.argv[1]
with open("/proc/self/statm") as f:
    before = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
start = time.perf_counter()
try:
    result = {read}
    error = None
except ValueError as exc:
    error = str(exc)
elapsed = time.perf_counter() - start
# VmHWM: the peak of this process's own memory (ru_maxrss would include
# the parent's, which it keeps across exec).
with open("/proc/self/status") as f:
    peak = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))
print(json.dumps({{"seconds": elapsed, "peak": peak, "before": before, "error": error}}))
"""

_HELP_CHILD = r"""
import runpy, sys
sys.argv = ["destructors", "--help"]
try:
    runpy.run_module("destructors", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"numba", "sklearn", "scipy", "pandas"})
print(",".join(heavy), file=sys.stderr)
"""


def _child(code, path, pythonpath):
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    out = subprocess.run(
        [sys.executable, "-P", "-c", code, str(path)], env=env, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def _measure(name, imports, read, path, pythonpath, repeats):
    code = _CHILD.format(imports=imports, read=read)
    runs = [_child(code, path, pythonpath) for _ in range(repeats)]
    error = runs[0]["error"]
    return {
        "case": name,
        "seconds": min(r["seconds"] for r in runs),
        "peak_mb": max(r["peak"] for r in runs) / 2**20,
        "held_mb": max(r["peak"] - r["before"] for r in runs) / 2**20,
        "note": "" if error is None else "error: " + error.replace(str(path), "FILE"),
    }


def _help_time(pythonpath, repeats=5):
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    times, heavy = [], ""
    for _ in range(repeats):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-P", "-c", _HELP_CHILD], env=env, capture_output=True, text=True,
            check=True,
        )  # fmt: skip
        times.append(time.perf_counter() - start)
        heavy = out.stderr.strip()
    return statistics.median(times), heavy or "none"


def _write_files(folder, n_rows, n_columns):
    sys.path.insert(0, str(ROOT))
    from destructors.io import write_table

    X = np.random.default_rng(0).normal(size=(n_rows, n_columns))
    names = [f"x{j}" for j in range(n_columns)]
    plain = folder / "data.csv"
    write_table(plain, X, names)
    text = plain.read_bytes()
    zipped = folder / "data.csv.gz"
    zipped.write_bytes(gzip.compress(text, compresslevel=6))
    european = folder / "european.csv"
    european.write_bytes(text.replace(b",", b";").replace(b".", b","))
    bad = folder / "bad.csv"
    bad.write_bytes(text.rstrip(b"\n").rsplit(b",", 1)[0] + b",oops\n")
    return X, {"plain": plain, "gzip": zipped, "european": european, "bad": bad}


def _export(revision, folder):
    """The package ``destructors`` as it was at ``revision``, under ``folder``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "destructors"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    folder.mkdir()
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--columns", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", metavar="REV", help="also measure git revision REV")
    parser.add_argument("--quick", action="store_true", help="20,000 rows, one repeat")
    parser.add_argument("--output", type=Path, help="markdown file to write")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeats = 20_000, 1
    output = args.output
    if output is None and not args.quick:
        output = ROOT / "benchmarks" / "results" / "io.md"

    folder = Path(tempfile.mkdtemp(prefix="bench-io-"))
    try:
        load_before = os.getloadavg()
        X, files = _write_files(folder, args.rows, args.columns)
        size_mb = files["plain"].stat().st_size / 1e6
        # pandas is imported before the clock starts, as for pandas.read_csv.
        ours = "import pandas\nfrom destructors.io import read_table"
        rows = [
            _measure("pandas.read_csv(path)", "import pandas as pd", "pd.read_csv(path)",
                     files["plain"], ROOT, args.repeats),
            _measure("read_table (this version)", ours, "read_table(path)",
                     files["plain"], ROOT, args.repeats),
        ]  # fmt: skip
        baseline = None
        if args.baseline:
            baseline = _export(args.baseline, folder / "baseline")
            rows.append(_measure(f"read_table (at {args.baseline})", ours, "read_table(path)",
                                 files["plain"], baseline, args.repeats))  # fmt: skip
        rows += [
            _measure("read_table, gzip-compressed (.csv.gz)", ours, "read_table(path)",
                     files["gzip"], ROOT, args.repeats),
            _measure("read_table, ';' and decimal commas", ours, "read_table(path)",
                     files["european"], ROOT, args.repeats),
            _measure("read_table, bad cell in the last row", ours, "read_table(path)",
                     files["bad"], ROOT, args.repeats),
        ]  # fmt: skip
        # Exactness: the file reads back to the very numbers written.
        sys.path.insert(0, str(ROOT))
        from destructors.io import read_table

        exact = all(
            np.array_equal(read_table(files[k])[0], X) for k in ("plain", "gzip", "european")
        )
        help_rows = [("this version", *_help_time(ROOT))]
        if baseline is not None:
            help_rows.append((f"at {args.baseline}", *_help_time(baseline)))
        load_after = os.getloadavg()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    lines = [
        "# CSV reading and command-line start-up",
        "",
        "Produced by `python benchmarks/bench_io.py"
        + (f" --baseline {args.baseline}" if args.baseline else "")
        + ("`" if not args.quick else " --quick`")
        + f" on {time.strftime('%Y-%m-%d')}, {platform.machine()} with {os.cpu_count()} "
        f"CPUs, Python {platform.python_version()}; load average "
        f"{load_before[0]:.2f} before and {load_after[0]:.2f} after the run.",
        "",
        f"File: {args.rows:,} rows x {args.columns} columns of float64 under a header, "
        f"{size_mb:.1f} MB of CSV. Fastest of {args.repeats} run(s); peak resident memory "
        "of the process, and what the read held above the memory before it. Every "
        f"variant read back exactly: {'yes' if exact else 'NO'}.",
        "",
        "| case | seconds | peak RSS (MB) | held by the read (MB) | note |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['seconds']:.2f} | {r['peak_mb']:.0f} | {r['held_mb']:.0f} | "
            f"{r['note']} |"
        )
    lines += [
        "",
        "`python -m destructors --help` in a fresh process (median of 5 runs):",
        "",
        "| version | seconds | heavy modules imported |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {seconds:.2f} | {heavy} |" for name, seconds, heavy in help_rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if output is not None:
        output.write_text(text)


if __name__ == "__main__":
    main()
