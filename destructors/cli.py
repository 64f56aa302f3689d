"""Command line interface: ``destructors`` / ``python -m destructors``.

Subcommands::

    destructors demo                       fit on built-in data, report, draw
    destructors fit INPUT -o MODEL         fit RBIG on a CSV or .npy file
    destructors score MODEL INPUT          log-likelihood of each row
    destructors transform MODEL INPUT      map rows to the latent N(0, I)
    destructors inverse-transform MODEL INPUT
    destructors sample MODEL -n N          draw new rows

Every data-writing command writes CSV to standard output, or to ``-o OUT``
(CSV, or ``.npy`` when ``OUT`` ends in ``.npy``). Outputs are written to a
temporary file and renamed into place, so a failure leaves nothing partial.
User errors print one line to standard error and exit with status 1.
"""

import argparse
import contextlib
import csv
import io
import os
import sys
import tempfile
import time
import warnings

import numpy as np

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_EPILOG = """\
examples:
  destructors demo
  destructors fit data.csv -o model.joblib
  destructors fit data.csv --columns x,y --rotation pca --seed 0 -o model.joblib
  destructors score model.joblib data.csv -o scores.csv
  destructors transform model.joblib data.csv -o latent.npy
  destructors inverse-transform model.joblib latent.npy -o back.csv
  destructors sample model.joblib -n 1000 --seed 0 -o samples.csv

INPUT is a CSV file (header row optional, detected automatically; numeric
columns only, no missing values) or a .npy array; '-' reads CSV from
standard input. A model file is a joblib pickle: load only files you trust.
"""


class UserError(Exception):
    """A problem with the user's input, reported as one line without traceback."""


# -- reading data -------------------------------------------------------------


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _guess_delimiter(line):
    for delimiter in (",", "\t", ";"):
        if delimiter in line:
            return delimiter
    return ","


def _select(names, n_columns, columns, source):
    """Indices of the requested columns (names or 0-based indices)."""
    if columns is None:
        return list(range(n_columns))
    indices = []
    for item in columns:
        if names is not None and item in names:
            indices.append(names.index(item))
        elif item.lstrip("-").isdigit():
            index = int(item)
            if not 0 <= index < n_columns:
                raise UserError(
                    f"{source}: column index {index} is out of range "
                    f"(it has {n_columns} columns, numbered from 0)."
                )
            indices.append(index)
        elif names is None:
            raise UserError(
                f"{source}: no header row, so column {item!r} must be given as a 0-based index."
            )
        else:
            raise UserError(f"{source}: no column named {item!r} (columns: {', '.join(names)}).")
    return indices


class _Table:
    """Cells of a file before column selection and conversion to numbers."""

    def __init__(self, source, cells, names=None, line_numbers=None):
        self.source, self.cells = source, cells
        self.names, self.line_numbers = names, line_numbers

    def select(self, columns=None):
        """Return ``(X, names)`` for the chosen columns, all finite floats."""
        indices = _select(self.names, self.cells.shape[1], columns, self.source)
        cells = self.cells[:, indices]
        names = [self.names[i] for i in indices] if self.names else None
        if cells.dtype.kind in "biuf":
            X = cells.astype(np.float64)
        else:
            try:
                X = cells.astype(np.float64)
            except ValueError:
                X = None
        for i, j in zip(*np.nonzero(_bad_cells(cells, X)), strict=True):
            column = names[j] if names else str(indices[j])
            value = cells[i, j].item()
            if self.line_numbers is None:
                where = f"{self.source}: row {i}, column {column}"
            else:
                where = f"{self.source} line {self.line_numbers[i]}, column {column!r}"
            if isinstance(value, str):
                what = "is empty" if value == "" else f"has {value!r}"
            else:
                what = f"is {value}"
            hint = ""
            if columns is None and isinstance(value, str) and not _is_number(value):
                hint = " Select the numeric columns with --columns."
            raise UserError(f"{where} {what}, not a finite number.{hint}")
        return X, names


def _read_csv(path, header, delimiter):
    source = "standard input" if path == "-" else path
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8-sig", newline="") as handle:
                text = handle.read()
    except UnicodeDecodeError:
        raise UserError(f"{source}: not a text CSV file (use .npy for binary arrays).") from None
    lines = [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise UserError(f"{source}: no data rows.")
    delimiter = delimiter or _guess_delimiter(lines[0][1])
    try:
        rows = [
            [field.strip() for field in row]
            for row in csv.reader((line for _, line in lines), delimiter=delimiter)
        ]
    except csv.Error as exc:
        raise UserError(f"{source}: malformed CSV ({_one_line(exc)}).") from None
    numbers = [number for number, _ in lines]
    if header is None:  # guess: a first row with any non-number is a header
        header = any(not _is_number(field) for field in rows[0])
    names = None
    if header:
        names, rows, numbers = rows[0], rows[1:], numbers[1:]
        if not rows:
            raise UserError(f"{source}: a header row but no data rows.")
    n_columns = len(names) if names is not None else len(rows[0])
    for row, number in zip(rows, numbers, strict=True):
        if len(row) != n_columns:
            raise UserError(
                f"{source} line {number}: {len(row)} fields where the "
                f"{'header' if header else 'first row'} has {n_columns}."
            )
    cells = np.array(rows, dtype=str).reshape(len(rows), n_columns)
    return _Table(source, cells, names, numbers)


def _bad_cells(cells, X):
    """Mask of cells that do not hold a finite number."""
    if X is not None:
        return ~np.isfinite(X)
    bad = np.zeros(cells.shape, dtype=bool)
    for (i, j), value in np.ndenumerate(cells):
        try:
            bad[i, j] = not np.isfinite(float(value))
        except ValueError:
            bad[i, j] = True
    return bad


def _read_npy(path):
    try:
        X = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(f"{path}: not a readable .npy array ({_one_line(exc)}).") from None
    if not isinstance(X, np.ndarray) or X.dtype.kind not in "biuf":
        raise UserError(f"{path}: holds {X.dtype} values, not numbers.")
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise UserError(f"{path}: a {X.ndim}-d array; need rows by columns (2-d).")
    if X.shape[0] == 0:
        raise UserError(f"{path}: no data rows.")
    return _Table(path, X)


def _read(path, header=None, delimiter=None):
    if path != "-" and not os.path.isfile(path):
        raise UserError(f"{path}: no such file.")
    if path.lower().endswith(".npy"):
        return _read_npy(path)
    return _read_csv(path, header, delimiter)


def read_table(path, columns=None, header=None, delimiter=None):
    """Read a numeric table from a CSV file or a ``.npy`` array.

    Parameters
    ----------
    path : str
        A ``.npy`` file, a CSV file, or ``"-"`` for CSV on standard input.
        Blank lines and lines starting with ``#`` are skipped.
    columns : list of str or None, default=None
        Columns to keep, by header name or 0-based index; all if ``None``.
    header : bool or None, default=None
        Whether the first CSV row holds column names; ``None`` guesses: it
        does when any of its fields is not a number.
    delimiter : str or None, default=None
        CSV field separator; ``None`` picks the first of ``,``, tab and ``;``
        found in the first line.

    Returns
    -------
    X : ndarray of shape (n_rows, n_columns)
        The values, float64, all finite.
    names : list of str or None
        Names of the kept columns, when the file has a header.

    Raises
    ------
    UserError
        With a one-line message naming the file, line and column, when the
        file is missing or holds anything but finite numbers.

    Examples
    --------
    >>> import os, tempfile
    >>> from destructors.cli import read_table
    >>> path = os.path.join(tempfile.mkdtemp(), "data.csv")
    >>> with open(path, "w") as f:
    ...     _ = f.write("x,y,label\\n1.5,2,a\\n3,4e-1,b\\n")
    >>> X, names = read_table(path, columns=["x", "y"])
    >>> X.tolist(), names
    ([[1.5, 2.0], [3.0, 0.4]], ['x', 'y'])
    >>> read_table(path)
    Traceback (most recent call last):
    ...
    destructors.cli.UserError: ...data.csv line 2, column 'label' has 'a', not a finite number. ...
    """
    return _read(path, header, delimiter).select(columns)


# -- writing ------------------------------------------------------------------


def _check_writable(path):
    """Fail before any work if ``path`` cannot be created."""
    if path is None or path == "-":
        return
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UserError(f"{path}: directory {directory} does not exist.")
    if os.path.isdir(path):
        raise UserError(f"{path}: is a directory.")
    if not os.access(directory, os.W_OK):
        raise UserError(f"{path}: directory {directory} is not writable.")


@contextlib.contextmanager
def _atomic_output(path, mode="w"):
    """Write to a temporary file beside ``path``; rename it on success only."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".destructors-", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({"newline": ""} if "b" not in mode else {})) as f:
            yield f
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates files private to the owner
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _format_csv(X, names, header):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(names)
    writer.writerows(X.tolist())  # repr of a Python float: shortest exact text
    return buffer.getvalue()


def _write_table(path, X, names, header=True):
    """Write rows as CSV (stdout when ``path`` is None) or ``.npy``, atomically.

    A 1-d ``X`` is one column, saved as a 1-d ``.npy`` array.
    """
    X = np.asarray(X, dtype=np.float64)
    flat = X
    if X.ndim == 1:
        X = X[:, None]
    if path is None or path == "-":
        sys.stdout.write(_format_csv(X, names, header))
        sys.stdout.flush()
        return
    _check_writable(path)
    if path.lower().endswith(".npy"):
        with _atomic_output(path, "wb") as f:
            np.save(f, flat)
    else:
        with _atomic_output(path) as f:
            f.write(_format_csv(X, names, header))


# -- models -------------------------------------------------------------------

_MODEL_FORMAT = "destructors-model"
_HEADER = {"auto": None, "yes": True, "no": False}
_MODEL_PARAMS = (
    "rotation",
    "n_knots",
    "smoothing",
    "subsample",
    "max_layers",
    "early_stopping",
    "validation_fraction",
    "n_iter_no_change",
    "tol",
    "random_state",
)


def _save_model(path, model, columns):
    import joblib

    from . import __version__

    payload = {
        "format": _MODEL_FORMAT,
        "version": __version__,
        "model": model,
        "columns": columns,
    }
    with _atomic_output(path, "wb") as f:
        joblib.dump(payload, f)


def _load_model(path):
    """Return ``(model, columns)`` from a file written by ``fit``.

    A bare fitted destructor saved with ``joblib.dump`` is accepted too.
    """
    import joblib
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file.")
    try:
        payload = joblib.load(path)
    except Exception as exc:  # unpickling can raise almost anything
        raise UserError(
            f"{path}: not a model file written by 'destructors fit' "
            f"({type(exc).__name__}: {_one_line(exc)})."
        ) from None
    columns = None
    if isinstance(payload, dict) and payload.get("format") == _MODEL_FORMAT:
        model, columns = payload.get("model"), payload.get("columns")
    else:
        model = payload
    if not all(hasattr(model, a) for a in ("score_samples", "sample", "transform")):
        raise UserError(f"{path}: holds a {type(model).__name__}, not a density model.")
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise UserError(f"{path}: the model in it is not fitted.") from None
    return model, columns


def _read_for_model(args, model, columns, by_name=True):
    """Read INPUT and check its width against the model."""
    table = _read(args.input, _HEADER[args.input_header], args.delimiter)
    selected = _split(args.columns)
    if selected is None and by_name and columns and table.names is not None:
        # Fitted on named columns: pick them by name when the header has them.
        if set(columns) <= set(table.names):
            selected = list(columns)
    X, _ = table.select(selected)
    n_expected = model.n_features_in_
    if X.shape[1] != n_expected:
        hint = f" ({', '.join(columns)})" if columns else ""
        raise UserError(
            f"{table.source}: {_plural(X.shape[1], 'column')}, but the model expects "
            f"{n_expected}{hint}; choose them with --columns."
        )
    return X


def _plural(n, word):
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _split(text):
    if text is None:
        return None
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise UserError(f"--columns {text!r}: empty column name.")
    return items


def _one_line(exc):
    text = " ".join(str(exc).split())
    return text if text else type(exc).__name__


# -- progress -----------------------------------------------------------------


class _ProgressStream(io.TextIOBase):
    """Forward the estimator's per-layer ``verbose`` lines to a stream.

    On a terminal each line overwrites the previous one; elsewhere lines are
    written as they come.
    """

    def __init__(self, stream, overwrite):
        self._stream, self._overwrite, self._pending, self._shown = stream, overwrite, "", False

    def writable(self):
        return True

    def write(self, text):
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if self._overwrite:
                self._stream.write("\r\033[K" + line)
            else:
                self._stream.write(line + "\n")
            self._shown = True
        self._stream.flush()
        return len(text)

    def finish(self):
        if self._pending:
            self.write("\n")
        if self._overwrite and self._shown:
            self._stream.write("\n")
            self._stream.flush()


def _fit_with_progress(model, X, show):
    if not show:
        return model.fit(X)
    verbose = model.get_params().get("verbose", 0)
    stream = _ProgressStream(sys.stderr, overwrite=sys.stderr.isatty())
    model.set_params(verbose=max(1, verbose))
    try:
        with contextlib.redirect_stdout(stream):
            model.fit(X)
    finally:
        stream.finish()
        model.set_params(verbose=verbose)
    return model


# -- subcommands --------------------------------------------------------------


def _say(args, *lines):
    if not args.quiet:
        print(*lines, sep="\n")


def _demo(args):
    from sklearn.datasets import make_moons

    from . import RBIG

    if not args.no_plot:
        folder = os.path.dirname(os.path.abspath(args.output))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise UserError(f"{args.output}: cannot create {folder} ({exc.strerror}).") from None
        _check_writable(args.output)
    X, _ = make_moons(10000, noise=0.05, random_state=0)
    X_test, _ = make_moons(5000, noise=0.05, random_state=1)
    start = time.perf_counter()
    model = RBIG(random_state=0).fit(X)
    elapsed = time.perf_counter() - start
    scores = model.score_samples(X_test)
    _say(
        args,
        "RBIG on two moons (10,000 train / 5,000 test rows)",
        f"  held-out log-likelihood: {np.mean(scores):.4f} nats per sample",
        f"  layers: {model.n_layers_}",
        f"  fit time: {elapsed:.2f} s",
    )
    if args.no_plot:
        return EXIT_OK
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        _say(
            args,
            '  picture: skipped, matplotlib is not installed (pip install "destructors[plot]")',
        )
        return EXIT_OK
    figure = _demo_figure(model, X, model.sample(len(X_test), random_state=0))
    with _atomic_output(args.output, "wb") as f:
        figure.savefig(f, format="png", dpi=90)
    _say(args, f"  picture: {args.output}")
    return EXIT_OK


def _demo_figure(model, X, X_sampled):
    """Three panels: training data, learned log-density, samples."""
    from matplotlib.figure import Figure

    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = 0.15 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    log_p = model.score_samples(np.column_stack([gx.ravel(), gy.ravel()]))
    log_p = np.maximum(log_p, log_p.max() - 10.0).reshape(gx.shape)

    figure = Figure(figsize=(12, 3.6), layout="constrained")
    axes = figure.subplots(1, 3, sharex=True, sharey=True)
    axes[0].scatter(*X[:2000].T, s=2, alpha=0.5, color="C0")
    axes[0].set_title("training data")
    filled = axes[1].contourf(gx, gy, log_p, levels=20, cmap="viridis")
    figure.colorbar(filled, ax=axes[1], label="log p(x)", shrink=0.8)
    axes[1].set_title(f"learned log-density ({model.n_layers_} layers)")
    axes[2].scatter(*X_sampled[:2000].T, s=2, alpha=0.5, color="C1")
    axes[2].set_title("samples from the model")
    for ax in axes:
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_aspect("equal")
    return figure


def _fit(args):
    from . import RBIG

    _check_writable(args.output)
    table = _read(args.input, _HEADER[args.input_header], args.delimiter)
    X, names = table.select(_split(args.columns))
    if X.shape[0] < 2:
        raise UserError(f"{table.source}: 1 data row; fitting needs at least 2.")
    params = {name: getattr(args, name) for name in _MODEL_PARAMS if hasattr(args, name)}
    params.update(args.param or {})
    try:
        model = RBIG(**params)
    except TypeError as exc:
        raise UserError(f"--param: {_one_line(exc)}") from None
    show = not args.quiet and (args.progress or sys.stderr.isatty())
    _fit_with_progress(model, X, show)
    _save_model(args.output, model, names)
    lines = [
        f"fitted RBIG on {X.shape[0]} rows x {X.shape[1]} columns"
        + (f" ({', '.join(names)})" if names else ""),
        f"  layers: {model.n_layers_}",
        f"  training log-likelihood: {model.score(X):.4f} nats per row",
    ]
    validation = getattr(model, "validation_score_", None)
    if validation is not None and len(validation):
        lines.append(f"  best validation log-likelihood: {np.max(validation):.4f}")
    lines += [f"  fit time: {model.fit_time_:.2f} s", f"  model: {args.output}"]
    _say(args, *lines)
    return EXIT_OK


def _info(args):
    from .information import entropy, total_correlation

    table = _read(args.input, _HEADER[args.input_header], args.delimiter)
    X, names = table.select(_split(args.columns))
    base = 2 if args.bits else None
    unit = "bits" if args.bits else "nats"
    tc = total_correlation(X, base=base, random_state=args.seed)
    h = entropy(X, base=base, random_state=args.seed)
    columns = f" ({', '.join(names)})" if names else ""
    print(f"{X.shape[0]} rows x {X.shape[1]} columns{columns}")
    print(f"total correlation: {tc:.4f} {unit}")
    print(f"joint entropy: {h:.4f} {unit}")
    return EXIT_OK


def _score(args):
    model, columns = _load_model(args.model)
    X = _read_for_model(args, model, columns)
    _check_writable(args.output)
    scores = model.score_samples(X)
    _write_table(args.output, scores, ["log_likelihood"], not args.no_header)
    if args.output not in (None, "-"):
        _say(
            args,
            f"scored {len(scores)} rows, mean log-likelihood {np.mean(scores):.4f}: {args.output}",
        )
    return EXIT_OK


def _transform(args):
    model, columns = _load_model(args.model)
    X = _read_for_model(args, model, columns)
    _check_writable(args.output)
    Z, log_det = model.transform_log_det(X)
    names = [f"z{j}" for j in range(Z.shape[1])]
    if args.log_det:
        Z, names = np.column_stack([Z, log_det]), [*names, "log_det"]
    _write_table(args.output, Z, names, not args.no_header)
    if args.output not in (None, "-"):
        _say(args, f"transformed {len(Z)} rows: {args.output}")
    return EXIT_OK


def _data_names(model, columns):
    return list(columns) if columns else [f"x{j}" for j in range(model.n_features_in_)]


def _inverse_transform(args):
    model, columns = _load_model(args.model)
    Z = _read_for_model(args, model, columns, by_name=False)
    _check_writable(args.output)
    X = model.inverse_transform(Z)
    _write_table(args.output, X, _data_names(model, columns), not args.no_header)
    if args.output not in (None, "-"):
        _say(args, f"inverted {len(X)} rows: {args.output}")
    return EXIT_OK


def _sample(args):
    model, columns = _load_model(args.model)
    _check_writable(args.output)
    X = model.sample(args.n_samples, random_state=args.seed)
    _write_table(args.output, X, _data_names(model, columns), not args.no_header)
    if args.output not in (None, "-"):
        _say(args, f"drew {len(X)} samples: {args.output}")
    return EXIT_OK


# -- argument parsing ---------------------------------------------------------


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def _n_knots(text):
    return text if text == "auto" else _positive_int(text)


def _tol(text):
    return None if text.lower() == "none" else float(text)


def _param_value(text):
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


class _ParamAction(argparse.Action):
    def __call__(self, parser, namespace, value, option_string=None):
        name, sep, raw = value.partition("=")
        if not sep or not name:
            parser.error(f"{option_string} expects NAME=VALUE, got {value!r}")
        params = dict(getattr(namespace, self.dest) or {})
        params[name.strip()] = _param_value(raw.strip())
        setattr(namespace, self.dest, params)


def _rbig_defaults():
    from . import RBIG

    params = RBIG().get_params()
    rotation = RBIG._parameter_constraints.get("rotation", [None])[0]
    choices = sorted(getattr(rotation, "options", []) or [])
    return params, choices


def _build_parser():
    from . import __version__

    defaults, rotations = _rbig_defaults()
    parser = argparse.ArgumentParser(
        prog="destructors",
        description=(
            "Exact density models by density destruction (RBIG): fit, score, "
            "transform and sample tabular data from the command line."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    reading = argparse.ArgumentParser(add_help=False)
    reading.add_argument(
        "--columns",
        metavar="COLS",
        help="comma-separated column names or 0-based indices to use (default: all; "
        "a model fitted on named columns picks them by name)",
    )
    reading.add_argument(
        "--input-header",
        choices=("auto", "yes", "no"),
        default="auto",
        help="whether the first CSV row of INPUT holds column names (default: auto, "
        "yes when any of its fields is not a number)",
    )
    reading.add_argument(
        "--delimiter",
        help="CSV field separator of INPUT (default: the first of ',' tab ';' in its first line)",
    )
    writing = argparse.ArgumentParser(add_help=False)
    writing.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="output file: CSV, or .npy if it ends in .npy (default: CSV on stdout)",
    )
    writing.add_argument("--no-header", action="store_true", help="write CSV without a header row")

    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="fit RBIG on two moons, report and draw a picture",
        epilog="example:\n  destructors demo -o demo.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Fit RBIG on 10,000 points of two moons, print the held-out "
            "log-likelihood, the number of layers and the fit time, and save a "
            "picture of the data, the learned density and samples (needs "
            "matplotlib)."
        ),
    )
    demo.add_argument(
        "-o",
        "--output",
        default=os.path.join("demo_output", "destructors-demo.png"),
        metavar="PNG",
        help="where to save the picture (default: %(default)s)",
    )
    demo.add_argument("--no-plot", action="store_true", help="skip the picture")
    demo.set_defaults(func=_demo)

    fit = sub.add_parser(
        "fit",
        parents=[common, reading],
        help="fit RBIG to a CSV or .npy file and save it",
        description="Fit an RBIG density model to the rows of INPUT and save it.",
        epilog=(
            "example:\n  destructors fit data.csv --columns x,y --seed 0 -o model.joblib\n"
            "\nProgress (one line per layer) goes to stderr when it is a terminal."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fit.add_argument("input", metavar="INPUT", help="CSV or .npy file ('-': stdin)")
    fit.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="MODEL",
        help="where to save the fitted model (joblib)",
    )
    model = fit.add_argument_group(
        "model options", "RBIG parameters; unset ones keep RBIG's defaults"
    )

    def model_option(flag, dest, help_text, **kwargs):
        if dest not in defaults:  # a parameter this version of RBIG lacks
            return
        default = defaults.get(dest)
        if dest == "random_state":
            default = "unseeded"
        kwargs.setdefault("help", f"{help_text} (default: {default})")
        model.add_argument(flag, dest=dest, default=argparse.SUPPRESS, **kwargs)

    model_option("--rotation", "rotation", f"rotation in each layer: {', '.join(rotations)}")
    model_option(
        "--n-knots", "n_knots", "knots per marginal map, or 'auto'", type=_n_knots, metavar="K"
    )
    model_option(
        "--smoothing",
        "smoothing",
        "kernel smoothing of each marginal CDF",
        type=float,
        metavar="S",
    )
    model_option(
        "--subsample", "subsample", "rows per marginal fit", type=_positive_int, metavar="N"
    )
    model_option(
        "--max-layers", "max_layers", "maximum number of layers", type=_positive_int, metavar="L"
    )
    model_option(
        "--no-early-stopping",
        "early_stopping",
        "",
        action="store_false",
        help="fit all layers on all rows; do not hold rows out to choose the depth",
    )
    model_option(
        "--validation-fraction",
        "validation_fraction",
        "fraction of rows held out for early stopping",
        type=float,
        metavar="F",
    )
    model_option(
        "--n-iter-no-change",
        "n_iter_no_change",
        "patience of the stopping rule, in layers",
        type=_positive_int,
        metavar="P",
    )
    model_option("--tol", "tol", "minimum gain per layer in nats, or none", type=_tol, metavar="T")
    model_option("--seed", "random_state", "random seed", type=int, metavar="SEED")
    model.add_argument(
        "--param",
        action=_ParamAction,
        metavar="NAME=VALUE",
        help="any other RBIG parameter (repeatable)",
    )
    fit.add_argument(
        "--progress",
        action="store_true",
        help="show per-layer progress on stderr even when it is not a terminal",
    )
    fit.set_defaults(func=_fit)

    def add_model_command(name, func, help_text, description, example):
        command = sub.add_parser(
            name,
            parents=[common, reading, writing],
            help=help_text,
            description=description,
            epilog=f"example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_argument("model", metavar="MODEL", help="model file from 'fit'")
        command.add_argument("input", metavar="INPUT", help="CSV or .npy file ('-': stdin)")
        command.set_defaults(func=func)
        return command

    add_model_command(
        "score",
        _score,
        "log-likelihood of each row",
        "Write log p(x), in nats, for each row of INPUT (column 'log_likelihood').",
        "destructors score model.joblib data.csv -o scores.csv",
    )
    transform = add_model_command(
        "transform",
        _transform,
        "map rows to the latent standard normal",
        "Write the latent point z = f(x) of each row of INPUT (columns z0, z1, ...).",
        "destructors transform model.joblib data.csv --log-det -o latent.csv",
    )
    transform.add_argument(
        "--log-det",
        action="store_true",
        help="add a column log_det with log|det df/dx| of each row",
    )
    add_model_command(
        "inverse-transform",
        _inverse_transform,
        "map latent rows back to data space",
        "Write x = f^-1(z) for each row z of INPUT (all its columns, or --columns).",
        "destructors inverse-transform model.joblib latent.csv -o back.csv",
    )
    sample = sub.add_parser(
        "sample",
        parents=[common, writing],
        help="draw rows from a fitted model",
        description="Draw N new rows from the model's density.",
        epilog="example:\n  destructors sample model.joblib -n 1000 --seed 0 -o samples.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sample.add_argument("model", metavar="MODEL", help="model file from 'fit'")
    sample.add_argument(
        "-n",
        "--n-samples",
        type=_positive_int,
        required=True,
        metavar="N",
        help="number of rows to draw",
    )
    sample.add_argument("--seed", type=int, help="random seed (default: unseeded)")
    sample.set_defaults(func=_sample)

    info = sub.add_parser(
        "info",
        parents=[reading],
        help="estimate total correlation and entropy of a data file",
        description=(
            "Estimate the total correlation (multi-information) and the joint "
            "differential entropy of the rows of INPUT by Gaussianization "
            "(see destructors.information)."
        ),
        epilog="example:\n  destructors info data.csv --columns x,y,z --bits",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    info.add_argument("input", metavar="INPUT", help="CSV or .npy file ('-': stdin)")
    info.add_argument("--bits", action="store_true", help="report bits instead of nats")
    info.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    info.set_defaults(func=_info)
    return parser


def main(argv=None):
    """Run the command line interface.

    Parameters
    ----------
    argv : list of str or None
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        Exit status: 0 on success, 1 for an error in the input (reported as
        one line on standard error, nothing written), 2 for a usage error,
        130 when interrupted.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from destructors.cli import main
    >>> folder = tempfile.mkdtemp()
    >>> data = os.path.join(folder, "data.npy")
    >>> np.save(data, np.random.default_rng(0).gamma(2.0, size=(500, 2)))
    >>> model = os.path.join(folder, "model.joblib")
    >>> main(["fit", data, "--max-layers", "3", "--seed", "0", "-o", model, "-q"])
    0
    >>> main(["sample", model, "-n", "2", "--seed", "0", "--no-header"])
    1.0...,...
    ...
    0
    >>> main(["score", model, os.path.join(folder, "missing.csv")])
    1
    """
    try:
        parser = _build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version or a usage error
            return exc.code if isinstance(exc.code, int) else EXIT_USAGE
        with warnings.catch_warnings():  # restores showwarning on the way out
            warnings.showwarning = _show_warning
            return args.func(args)
    except UserError as exc:
        return _error(str(exc))
    except KeyboardInterrupt:
        return _error("interrupted", EXIT_INTERRUPTED)
    except (ValueError, OSError) as exc:
        return _error(_one_line(exc))


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings as one line, without the source line Python would quote."""
    print(f"destructors: warning: {' '.join(str(message).split())}", file=sys.stderr)


def _error(message, status=EXIT_ERROR):
    print(f"destructors: error: {' '.join(message.split())}", file=sys.stderr)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
