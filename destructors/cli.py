"""Command line interface: ``destructors`` / ``python -m destructors``.

Subcommands::

    destructors demo                       fit on built-in data, report, draw
    destructors fit INPUT -o MODEL         fit RBIG on a CSV or .npy file
    destructors score MODEL INPUT          log-likelihood of each row
    destructors transform MODEL INPUT      map rows to the latent N(0, I)
    destructors inverse-transform MODEL INPUT
    destructors sample MODEL -n N          draw new rows
    destructors info INPUT                 total correlation and entropy
    destructors plot MODEL INPUT -o PNG    data vs samples, per-layer diagnostics

This module is a thin shell: tables are read and written by
:mod:`destructors.io`, model files by :mod:`destructors.persistence`, and
the model options of ``fit`` are generated from RBIG's own parameters when
``fit`` runs (or shows its help), so that ``destructors --help`` and the
other commands start without importing scikit-learn or Numba until they
need a model.
Every data-writing command writes CSV to standard output, or to ``-o OUT``
(CSV, or ``.npy`` when ``OUT`` ends in ``.npy``). Outputs are checked
before any work, written last, to a temporary file renamed into place, so
a failure leaves nothing behind and no previous file changed. Errors print
one line to standard error and exit with status 1 (2 for usage errors).
"""

import argparse
import contextlib
import inspect
import io
import os
import re
import sys
import time
import warnings

import numpy as np

from .io import (
    Table,
    TableError,
    atomic_output,
    check_delimiter,
    check_output_path,
    read_table,  # noqa: F401  (documented here in version 0.1)
    write_table,
)

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_EPILOG = """\
examples:
  destructors demo
  destructors fit data.csv -o model.destructor
  destructors fit data.csv --columns x,y --rotation pca --seed 0 -o model.destructor
  destructors score model.destructor data.csv -o scores.csv
  destructors transform model.destructor data.csv -o latent.npy
  destructors inverse-transform model.destructor latent.npy -o back.csv
  destructors sample model.destructor -n 1000 --seed 0 -o samples.csv
  destructors plot model.destructor data.csv -o model.png

INPUT is a CSV file (header row optional, detected automatically; numeric
columns only, no missing values; gzip-compressed or not; ';' with decimal
commas is recognised; the unnamed index column DataFrame.to_csv() writes is
skipped) or a .npy array; '-' reads CSV from standard input. A model file
(.destructor) holds JSON and NumPy arrays and loads without running code; a
pickle (-o NAME.joblib) loads only with --trust-pickle, because unpickling
runs code from the file. inverse-transform reads back what transform writes
(with or without --log-det): it picks the columns z0, z1, ... by name.
"""

_TRUST_HELP = (
    "also load a pickle (joblib) model file; unpickling runs code named in the "
    "file, so use this only for files you trust (.destructor files need no trust)"
)


class UserError(Exception):
    """A problem with the user's input, reported as one line without traceback.

    Examples
    --------
    >>> from destructors.cli import UserError
    >>> str(UserError("the input has no rows"))
    'the input has no rows'
    """


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, status 2.

    :meth:`defer` adds arguments only when this parser is used (to parse or
    to show its help), so that building the whole command line imports
    nothing heavy: ``fit``'s model options come from RBIG, which imports
    scikit-learn and Numba.
    """

    _deferred = None

    def defer(self, add_arguments):
        """Call ``add_arguments(self)`` before this parser first parses or formats help."""
        self._deferred = add_arguments

    def _add_deferred(self):
        add_arguments, self._deferred = self._deferred, None
        if add_arguments is not None:
            add_arguments(self)

    def parse_known_args(self, args=None, namespace=None):
        self._add_deferred()
        return super().parse_known_args(args, namespace)

    def format_help(self):
        self._add_deferred()
        return super().format_help()

    def format_usage(self):
        self._add_deferred()
        return super().format_usage()

    def error(self, message):
        line = " ".join(f"{self.prog}: error: {message}".split())
        print(f"{line} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


# -- models -------------------------------------------------------------------

_HEADER = {"auto": None, "yes": True, "no": False}
# The column transform --log-det adds (inverse-transform leaves it out).
_LOG_DET = "log_det"


def _load_model(args):
    """Return ``(model, columns)`` from the file ``args.model``, checked to be fitted."""
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    from .persistence import UntrustedPickleError, load_model

    path = args.model
    try:
        loaded = load_model(path, trust_pickle=args.trust_pickle)
    except UntrustedPickleError:
        raise UserError(
            f"{path}: a pickle (joblib) model file; unpickling runs code from the file, so "
            "it is loaded only with --trust-pickle: give it only for files you trust."
        ) from None
    model, columns = loaded.model, loaded.columns
    if not all(hasattr(model, a) for a in ("score_samples", "sample", "transform")):
        raise UserError(f"{path}: holds a {type(model).__name__}, not a density model.")
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise UserError(f"{path}: the model in it is not fitted.") from None
    if not isinstance(getattr(model, "n_features_in_", None), int | np.integer):
        raise UserError(f"{path}: the model in it has no input dimension.")
    if columns is not None and not (
        isinstance(columns, list | tuple) and all(isinstance(c, str) for c in columns)
    ):
        columns = None
    return model, columns


def _read_input(args):
    return Table.from_file(args.input, _HEADER[args.input_header], args.delimiter, args.decimal)


def _read_for_model(args, model, wanted):
    """Read INPUT and check its width against the model.

    Without --columns, the columns named ``wanted`` are picked by name when
    the header has them all (the model's data columns, or the latent
    columns ``transform`` writes).
    """
    table = _read_input(args)
    selected = _split(args.columns)
    if selected is None and wanted and table.names is not None:
        if set(wanted) <= set(table.names):
            selected = list(wanted)
    X, _ = table.select(selected)
    n_expected = model.n_features_in_
    if X.shape[1] != n_expected:
        hint = f" ({', '.join(wanted)})" if wanted else ""
        raise UserError(
            f"{table.source}: {_plural(X.shape[1], 'column')}, but the model expects "
            f"{n_expected}{hint}; choose them with --columns."
        )
    return X


def _latent_names(n_features):
    """Column names of latent points, as ``transform`` writes them."""
    return [f"z{j}" for j in range(n_features)]


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


def _output(args, *inputs):
    """The checked output target of ``-o`` (None for standard output)."""
    return check_output_path(args.output, [i for i in inputs if i is not None])


def _write(args, target, X, names):
    write_table(target, X, names, not args.no_header)


# -- fit's model options, generated from RBIG's parameters ---------------------

# Parameters without an option of their own: --progress shows the per-layer
# lines (--param verbose=N still sets the value).
_NO_OPTION = {"verbose"}
_OPTION_NAMES = {"random_state": "--seed"}


def _param_docs(cls):
    """First sentence of each parameter's description in a numpydoc docstring."""
    lines = inspect.cleandoc(cls.__doc__ or "").splitlines()
    docs, name, body, inside = {}, None, [], False
    for i, line in enumerate(lines):
        underline = i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
        if underline:
            inside = line.strip() == "Parameters"
            if name:
                docs[name], name = body, None
            continue
        if not inside or set(line.strip()) == {"-"}:
            continue
        match = re.match(r"^(\w+(?:\s*,\s*\w+)*)\s*:", line)
        if match and not line.startswith(" "):
            if name:
                docs[name] = body
            name, body = match.group(1), []
            for other in re.split(r"\s*,\s*", match.group(1))[1:]:
                docs[other] = body
        elif name:
            body.append(line.strip())
    if name:
        docs[name] = body
    out = {}
    for key, words in docs.items():
        text = " ".join(words)
        text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text).replace("``", "")
        out[key] = _first_clause(text)
    return out


def _first_clause(text):
    """Text up to the first ``.``, ``:`` or ``;`` that ends a clause outside parentheses."""
    depth = 0
    for i, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(depth - 1, 0)
        elif char in ".:;" and depth == 0 and (i + 1 == len(text) or text[i + 1] == " "):
            return text[:i].strip()
    return text.strip()


def _describe_constraint(constraint):
    if constraint is None:
        return "'none'"
    if constraint == "boolean":
        return "true or false"
    options = getattr(constraint, "options", None)
    if options is not None:
        return " or ".join(repr(o) for o in options)
    kind = _kind(constraint)
    if kind is not None:
        import numbers

        if issubclass(kind, str):
            return "a string"
        return "an integer" if issubclass(kind, numbers.Integral) else "a number"
    return str(constraint)


def _kind(constraint):
    """The Python type a constraint asks for (an Interval's, or a bare type), or None."""
    if isinstance(constraint, type):
        return constraint
    kind = getattr(constraint, "type", None)
    return kind if isinstance(kind, type) else None


def _parse_by_constraints(text, constraints):
    """The value of ``text`` for a parameter with these constraints.

    Raises ValueError, naming what is accepted, when no constraint fits.
    """
    import numbers

    text = text.strip()
    known = False
    for constraint in constraints:
        if constraint is None:
            known = True
            if text.lower() == "none":
                return None
        elif constraint == "boolean":
            known = True
            if text.lower() in ("true", "false", "yes", "no", "1", "0"):
                return text.lower() in ("true", "yes", "1")
        elif getattr(constraint, "options", None) is not None:
            known = True
            if text in constraint.options:
                return text
        elif _kind(constraint) is not None:
            known = True
            kind = _kind(constraint)
            if issubclass(kind, str):
                return text
            try:
                if issubclass(kind, bool):
                    continue
                if issubclass(kind, numbers.Integral):
                    return int(text)
                if issubclass(kind, numbers.Real):
                    return float(text)
            except ValueError:
                pass
    if not known:
        return _param_value(text)
    expected = " or ".join(dict.fromkeys(_describe_constraint(c) for c in constraints))
    raise ValueError(f"{text!r} is not {expected}")


def _param_value(text):
    """A value of a parameter whose type the constraints do not tell."""
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


def _seed(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer seed") from None


def _argument_type(constraints):
    def parse(text):
        try:
            return _parse_by_constraints(text, constraints)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _is_textual(constraints):
    """Whether a value of these constraints can be written on a command line."""
    return bool(constraints) and all(
        c is None
        or c == "boolean"
        or getattr(c, "options", None) is not None
        or _kind(c) is not None
        for c in constraints
    )


def _model_options(cls):
    """``(name, flag, argparse keywords)`` for each parameter of ``cls`` with an option."""
    defaults = cls().get_params(deep=False)
    constraints = getattr(cls, "_parameter_constraints", {})
    docs = _param_docs(cls)
    order = [p for p in inspect.signature(cls.__init__).parameters if p in defaults]
    for name in order + sorted(set(defaults) - set(order)):
        default = defaults[name]
        if name in _NO_OPTION:
            continue
        rules = list(constraints.get(name, []))
        if not rules and isinstance(default, int | float | str) and not isinstance(default, bool):
            rules = [type(default)]  # no constraints: the default's type
        about = docs.get(name) or name.replace("_", " ")
        about = (about[:1].lower() + about[1:]).replace("%", "%%")
        if name == "random_state":
            help_text = "random seed (default: unseeded)"
            yield name, "--seed", {"type": _seed, "metavar": "SEED", "help": help_text}
            continue
        flag = _OPTION_NAMES.get(name, "--" + name.replace("_", "-"))
        if rules == ["boolean"] or (not rules and isinstance(default, bool)):
            if default:
                help_text = f"turn off {name} ({about}; on by default)"
                yield name, "--no-" + flag[2:], {"action": "store_false", "help": help_text}
            else:
                help_text = f"turn on {name} ({about}; off by default)"
                yield name, flag, {"action": "store_true", "help": help_text}
            continue
        if not _is_textual(rules):
            continue  # e.g. an estimator: --param cannot give one either
        keywords = {"type": _argument_type(rules), "metavar": name.upper()}
        choice_rules = [c for c in rules if getattr(c, "options", None) is not None]
        if choice_rules and len(choice_rules) == len(rules):
            keywords["choices"] = [o for c in choice_rules for o in c.options]
            keywords["metavar"] = None
            about += f": {', '.join(map(str, keywords['choices']))}"
        elif "boolean" in rules:  # e.g. refit: true, false or "marginals"
            about += ": " + " or ".join(_describe_constraint(c) for c in rules)
            if default is True:  # --no-NAME still turns it off, as for a plain boolean
                keywords["negation"] = "--no-" + flag[2:]
        keywords["help"] = f"{about} (default: {default})"
        yield name, flag, keywords


def _add_model_options(parser, cls):
    """Add the generated options to ``parser``; return ``{name: flag}``."""
    group = parser.add_argument_group(
        "model options",
        f"{cls.__name__} parameters (generated from {cls.__name__}'s own); unset ones keep "
        "its defaults",
    )
    flags = {}
    for name, flag, keywords in _model_options(cls):
        if flag in parser._option_string_actions:  # a clash with a command option
            continue
        if keywords.get("metavar") is None:
            keywords.pop("metavar", None)
        negation = keywords.pop("negation", None)
        target = group
        if negation is not None:
            target = group.add_mutually_exclusive_group()
            target.add_argument(negation, dest=f"param_{name}", default=argparse.SUPPRESS,
                                action="store_const", const=False,
                                help=f"turn off {name} (as {flag} false)")
        target.add_argument(flag, dest=f"param_{name}", default=argparse.SUPPRESS, **keywords)
        flags[name] = flag
    group.add_argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help=f"any {cls.__name__} parameter (repeatable), e.g. --param verbose=1",
    )
    return flags


def _model_params(args, cls, flags):
    """The parameters given on the command line, checked before any work."""
    defaults = cls().get_params(deep=False)
    constraints = getattr(cls, "_parameter_constraints", {})
    params = {
        name: getattr(args, f"param_{name}") for name in flags if hasattr(args, f"param_{name}")
    }
    given = {name: flags[name] for name in params}
    for item in args.param or []:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UserError(f"--param expects NAME=VALUE, got {item!r}.")
        if name not in defaults:
            raise UserError(
                f"--param {item}: {cls.__name__} has no parameter {name!r} "
                f"(parameters: {', '.join(defaults)})."
            )
        if name in given:
            raise UserError(f"--param {item}: {name} is given twice (also by {given[name]}).")
        try:
            params[name] = _parse_by_constraints(raw, constraints.get(name, []))
        except ValueError as exc:
            raise UserError(f"--param {item}: {exc}.") from None
        given[name] = f"--param {item}"
    model = cls(**params)
    try:
        model._validate_params()
    except ValueError as exc:
        match = re.search(r"The '(\w+)' parameter", str(exc))
        where = given.get(match.group(1)) if match else None
        if where is not None and not where.startswith("--param"):
            where = f"{where} {_format_value(params[match.group(1)])}"
        raise UserError(f"{where or 'model options'}: {_one_line(exc)}") from None
    return model


def _format_value(value):
    return "none" if value is None else str(value)


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
    """Fit; per-layer lines go to stderr when ``show``, nowhere otherwise (quiet wins).

    The model keeps the ``verbose`` it was given.
    """
    verbose = model.get_params().get("verbose", 0)
    stream = _ProgressStream(sys.stderr, overwrite=sys.stderr.isatty())
    model.set_params(verbose=max(1, verbose or 0) if show else 0)
    try:
        with contextlib.redirect_stdout(stream if show else io.StringIO()):
            model.fit(X)
    finally:
        if show:
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
        target = check_output_path(args.output)
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
    with atomic_output(target, "wb") as f:
        figure.savefig(f, format="png", dpi=90)
    _say(args, f"  picture: {args.output}")
    return EXIT_OK


def _demo_figure(model, X, X_sampled):
    """Three panels: training data, learned log-density, samples."""
    from matplotlib.figure import Figure

    from .plotting import plot_density

    figure = Figure(figsize=(12, 3.6), layout="constrained")
    axes = figure.subplots(1, 3, sharex=True, sharey=True)
    axes[0].scatter(*X[:2000].T, s=2, alpha=0.5, color="C0")
    axes[0].set_title("training data")
    plot_density(model, X, ax=axes[1])  # the data's range padded by 15 %
    axes[1].set_title(f"learned log-density ({model.n_layers_} layers)")
    axes[2].scatter(*X_sampled[:2000].T, s=2, alpha=0.5, color="C1")
    axes[2].set_title("samples from the model")
    for ax in axes:
        ax.set_aspect("equal")
    return figure


def _fit(args):
    from . import RBIG
    from .persistence import save_model

    target = check_output_path(args.output, [args.input])
    if target is None:  # "-": a model file is binary, not for the terminal or a pipe
        raise UserError("-o -: fit writes a model file; give its name (e.g. -o model.destructor).")
    model = _model_params(args, RBIG, args.model_flags)
    table = _read_input(args)
    X, names = table.select(_split(args.columns))
    if X.shape[0] < 2:
        raise UserError(f"{table.source}: 1 data row; fitting needs at least 2.")
    verbose = model.get_params().get("verbose") or 0
    show = not args.quiet and (args.progress or verbose > 0 or sys.stderr.isatty())
    _fit_with_progress(model, X, show)
    # Everything the command reports is computed before the model file is written.
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
    save_model(target, model, names)
    _say(args, *lines)
    return EXIT_OK


def _info(args):
    from .information import entropy, total_correlation

    table = _read_input(args)
    X, names = table.select(_split(args.columns))
    base = 2 if args.bits else None
    unit = "bits" if args.bits else "nats"
    dq = args.dequantize
    tc = total_correlation(X, base=base, random_state=args.seed, dequantize=dq)
    h = entropy(X, base=base, random_state=args.seed, dequantize=dq)
    columns = f" ({', '.join(names)})" if names else ""
    print(f"{X.shape[0]} rows x {X.shape[1]} columns{columns}")
    print(f"total correlation: {tc:.4f} {unit}")
    print(f"joint entropy: {h:.4f} {unit}")
    return EXIT_OK


def _score(args):
    target = _output(args, args.model, args.input)
    model, columns = _load_model(args)
    X = _read_for_model(args, model, columns)
    scores = model.score_samples(X)
    _write(args, target, scores, ["log_likelihood"])
    if target is not None:
        _say(
            args,
            f"scored {len(scores)} rows, mean log-likelihood {np.mean(scores):.4f}: {args.output}",
        )
    return EXIT_OK


def _transform(args):
    target = _output(args, args.model, args.input)
    model, columns = _load_model(args)
    X = _read_for_model(args, model, columns)
    Z, log_det = model.transform_log_det(X)
    names = _latent_names(Z.shape[1])
    if args.log_det:
        Z, names = np.column_stack([Z, log_det]), [*names, _LOG_DET]
    _write(args, target, Z, names)
    if target is not None:
        _say(args, f"transformed {len(Z)} rows: {args.output}")
    return EXIT_OK


def _data_names(model, columns):
    return list(columns) if columns else [f"x{j}" for j in range(model.n_features_in_)]


def _inverse_transform(args):
    target = _output(args, args.model, args.input)
    model, columns = _load_model(args)
    # Latent columns by name: the log_det column of transform --log-det is left out.
    Z = _read_for_model(args, model, _latent_names(model.n_features_in_))
    X = model.inverse_transform(Z)
    _write(args, target, X, _data_names(model, columns))
    if target is not None:
        _say(args, f"inverted {len(X)} rows: {args.output}")
    return EXIT_OK


# Bytes per drawn value while sampling: the latent draw, the output and the
# temporaries of a layer, in float64.
_SAMPLE_BYTES_PER_VALUE = 4 * 8


def _available_memory():
    """Bytes of memory available now (MemAvailable), or the physical total, or None."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return None


def _bytes(n):
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} EB"  # pragma: no cover


def _check_sample_size(n_samples, n_features):
    need = n_samples * n_features * _SAMPLE_BYTES_PER_VALUE
    available = _available_memory()
    if n_samples * n_features >= 2**62 or (available is not None and need > available):
        have = f"the {_bytes(available)} available" if available else "what this machine has"
        raise UserError(
            f"-n {n_samples}: {n_samples} rows x {n_features} columns need about "
            f"{_bytes(need)} of memory, more than {have}; draw fewer rows (e.g. in several "
            "runs with different --seed)."
        )


def _sample(args):
    target = _output(args, args.model)
    model, columns = _load_model(args)
    _check_sample_size(args.n_samples, int(model.n_features_in_))
    X = model.sample(args.n_samples, random_state=args.seed)
    _write(args, target, X, _data_names(model, columns))
    if target is not None:
        _say(args, f"drew {len(X)} samples: {args.output}")
    return EXIT_OK


# Pictures: formats matplotlib writes without extra software; features shown
# in the pair plot when --features is not given.
_PLOT_FORMATS = (".png", ".pdf", ".svg")
_PLOT_DEFAULT_FEATURES = 6
_PLOT_MAX_SAMPLES = 100_000


def _plot_features(text, names):
    """Indices of the features named (or numbered, from 0) in ``--features``."""
    if text is None:
        return list(range(min(len(names), _PLOT_DEFAULT_FEATURES)))
    picked = []
    for item in _split(text):
        if item in names:
            picked.append(names.index(item))
        elif item.isdigit() and int(item) < len(names):
            picked.append(int(item))
        else:
            raise UserError(
                f"--features {text}: no feature {item!r} (features: {', '.join(names)}; "
                "or 0-based indices)."
            )
    return picked


def _plot(args):
    if not args.output.lower().endswith(_PLOT_FORMATS):
        raise UserError(
            f"-o {args.output}: the picture's name must end in {', '.join(_PLOT_FORMATS)}."
        )
    target = check_output_path(args.output, [args.model, args.input])
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise UserError(
            'plot needs matplotlib, which is not installed: pip install "destructors[plot]"'
        ) from None
    from . import plotting

    model, columns = _load_model(args)
    names = _data_names(model, columns)
    features = _plot_features(args.features, names)
    if len(features) > plotting.MAX_PAIR_FEATURES:
        raise UserError(
            f"--features {args.features}: at most {plotting.MAX_PAIR_FEATURES} features fit "
            "in a pair plot."
        )
    X = _read_for_model(args, model, columns)
    n_samples = args.n_samples or min(X.shape[0], _PLOT_MAX_SAMPLES)
    _check_sample_size(n_samples, int(model.n_features_in_))
    samples = model.sample(n_samples, random_state=args.seed)
    # Deep models record per-layer diagnostics; others (a mixture, a model built
    # from fitted layers) get the pair plot alone.
    train_score = getattr(model, "train_score_", None)
    diagnostics = train_score is not None and np.size(train_score) > 0
    k = len(features)
    side = 1.9 * k + 1.0
    if diagnostics:
        figure = Figure(figsize=(side + 4.6, max(side, 5.0)), layout="constrained")
        left, right = figure.subfigures(1, 2, width_ratios=[side, 4.6])
    else:
        figure = left = Figure(figsize=(side, side), layout="constrained")
    plotting.plot_pairs(X, samples, features=features, names=names, fig=left)
    if diagnostics:
        plotting.plot_layer_diagnostics(model, axes=right.subplots(2, 1))
    shown = "" if k == len(names) else f", {k} of {len(names)} features shown"
    with atomic_output(target, "wb") as f:
        figure.savefig(f, format=os.path.splitext(target)[1][1:].lower(), dpi=args.dpi)
    lines = [f"plotted {X.shape[0]} rows against {n_samples} samples{shown}: {args.output}"]
    if not diagnostics:
        lines.append(f"  no per-layer diagnostics: the {type(model).__name__} recorded none")
    _say(args, *lines)
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


def _delimiter(text):
    try:
        return check_delimiter(text)
    except TableError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("delimiter ").rstrip(".")) from None


def _add_rbig_options(parser):
    """``fit``'s model options, generated from RBIG's parameters (imports RBIG)."""
    from . import RBIG

    parser.set_defaults(model_flags=_add_model_options(parser, RBIG))


def _build_parser():
    from . import __version__

    parser = _Parser(
        prog="destructors",
        description=(
            "Exact density models by density destruction (RBIG): fit, score, "
            "transform and sample tabular data from the command line."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")

    common = _Parser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    reading = _Parser(add_help=False)
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
        type=_delimiter,
        help="CSV field separator of INPUT, one character ('\\t' for tab; default: the "
        "first of ',' tab ';' in its first line, or ';' when its commas are decimal commas)",
    )
    reading.add_argument(
        "--decimal",
        choices=(".", ","),
        help="decimal mark of INPUT's numbers (default: ',' when the delimiter is not ',' "
        "and the first rows are written with decimal commas, else '.')",
    )
    trusting = _Parser(add_help=False)
    trusting.add_argument("--trust-pickle", action="store_true", help=_TRUST_HELP)
    writing = _Parser(add_help=False)
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
            "example:\n  destructors fit data.csv --columns x,y --seed 0 -o model.destructor\n"
            "\nProgress (one line per layer) goes to stderr when it is a terminal.\n"
            "MODEL is written in the safe .destructor format (JSON and NumPy arrays,\n"
            "loaded without running code), or as a joblib pickle when its name ends in\n"
            ".joblib, .pkl or .pickle (loading a pickle needs --trust-pickle). Nothing\n"
            "is written unless the whole command succeeds."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fit.add_argument("input", metavar="INPUT", help="CSV or .npy file ('-': stdin)")
    fit.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="MODEL",
        help="where to save the fitted model (.destructor; .joblib for a pickle)",
    )
    fit.add_argument(
        "--progress",
        action="store_true",
        help="show per-layer progress on stderr even when it is not a terminal",
    )
    fit.set_defaults(func=_fit)
    fit.defer(_add_rbig_options)

    def add_model_command(name, func, help_text, description, example):
        command = sub.add_parser(
            name,
            parents=[common, reading, writing, trusting],
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
        "destructors score model.destructor data.csv -o scores.csv",
    )
    transform = add_model_command(
        "transform",
        _transform,
        "map rows to the latent standard normal",
        "Write the latent point z = f(x) of each row of INPUT (columns z0, z1, ...).",
        "destructors transform model.destructor data.csv --log-det -o latent.csv",
    )
    transform.add_argument(
        "--log-det",
        action="store_true",
        help=f"add a column {_LOG_DET} with log|det df/dx| of each row (inverse-transform "
        "reads the z columns by name and leaves it out)",
    )
    add_model_command(
        "inverse-transform",
        _inverse_transform,
        "map latent rows back to data space",
        "Write x = f^-1(z) for each row z of INPUT: its columns z0, z1, ... when its "
        "header has them (as transform writes them, with or without --log-det), else all "
        "its columns, or --columns.",
        "destructors inverse-transform model.destructor latent.csv -o back.csv",
    )
    sample = sub.add_parser(
        "sample",
        parents=[common, writing, trusting],
        help="draw rows from a fitted model",
        description="Draw N new rows from the model's density.",
        epilog="example:\n  destructors sample model.destructor -n 1000 --seed 0 -o samples.csv",
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
    info.add_argument(
        "--dequantize", action="store_true",
        help="add seeded uniform noise of one grid cell to rounded, integer or tied "
             "features first (such data are refused otherwise: see destructors.discrete)",
    )
    info.set_defaults(func=_info)

    plot = sub.add_parser(
        "plot",
        parents=[common, reading, trusting],
        help="draw data against samples of a model, and its per-layer diagnostics",
        description=(
            "Draw a pair plot of the rows of INPUT against as many samples of MODEL "
            "(histograms of each feature, scatter plots of each pair, overlaid) and, "
            "for a deep model, its per-layer diagnostics: training and held-out "
            "log-likelihood, and total correlation removed, after each layer. Needs "
            "matplotlib."
        ),
        epilog=(
            "example:\n  destructors plot model.destructor data.csv --features x,y,z "
            "-o model.png"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    plot.add_argument("model", metavar="MODEL", help="model file from 'fit'")
    plot.add_argument("input", metavar="INPUT", help="CSV or .npy file ('-': stdin)")
    plot.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="PICTURE",
        help="where to save the picture (.png, .pdf or .svg)",
    )
    plot.add_argument(
        "--features",
        metavar="COLS",
        help=f"comma-separated features (model column names or 0-based indices) in the "
        f"pair plot (default: the first {_PLOT_DEFAULT_FEATURES})",
    )
    plot.add_argument(
        "-n",
        "--n-samples",
        type=_positive_int,
        metavar="N",
        help=f"samples to draw (default: as many as INPUT has rows, at most "
        f"{_PLOT_MAX_SAMPLES:,})",
    )
    plot.add_argument(
        "--seed", type=int, default=0, help="random seed of the samples (default: 0)"
    )
    plot.add_argument(
        "--dpi", type=_positive_int, default=90, help="resolution of a .png (default: 90)"
    )
    plot.set_defaults(func=_plot)
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
    >>> model = os.path.join(folder, "model.destructor")
    >>> main(["fit", data, "--max-layers", "3", "--seed", "0", "-o", model, "-q"])
    0
    >>> samples = os.path.join(folder, "samples.npy")
    >>> main(["sample", model, "-n", "2", "--seed", "0", "-o", samples, "-q"])
    0
    >>> np.load(samples).shape
    (2, 2)
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
    except BrokenPipeError:  # e.g. `destructors score ... | head`: the reader left
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes
        return EXIT_ERROR
    except (ValueError, OSError) as exc:  # TableError, OutputPathError, a bad model file ...
        return _error(_one_line(exc))
    except MemoryError:
        return _error("out of memory; use a smaller input or fewer rows.")


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings as one line, without the source line Python would quote."""
    print(f"destructors: warning: {' '.join(str(message).split())}", file=sys.stderr)


def _error(message, status=EXIT_ERROR):
    print(f"destructors: error: {' '.join(message.split())}", file=sys.stderr)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
