"""Numeric tables in and out: CSV and ``.npy`` files, written atomically.

:func:`read_table` reads a CSV file (header row optional, delimiter
guessed) or a ``.npy`` array into a float64 matrix, and says in one line
which line and column is wrong when the file holds anything but finite
numbers (:class:`TableError`). :func:`write_table` writes rows as CSV with
full precision, or as ``.npy``. Every file is written to a temporary file
beside its target and renamed into place (:func:`atomic_output`), so a
failure never leaves a partial file; :func:`check_output_path` refuses, before
any work, an output that cannot be written or that is one of the inputs.

Only NumPy and the standard library are imported, so the command line
stays quick to start.
"""

import contextlib
import csv
import io
import os
import sys
import tempfile

import numpy as np

__all__ = [
    "MISSING_VALUES",
    "OutputPathError",
    "Table",
    "TableError",
    "atomic_output",
    "check_delimiter",
    "check_output_path",
    "read_table",
    "write_table",
]

#: Field texts (compared case-insensitively) that mark a missing value. A row
#: made of numbers and these is a data row, never a header.
MISSING_VALUES = frozenset(
    ["", "na", "n/a", "n.a.", "nan", "-nan", "+nan", "null", "none", "nil", "missing",
     "?", "-", "--", ".", "#n/a", "#na", "<na>", "nat"]
)  # fmt: skip

# Rows written per chunk: the text of a large table is never built whole.
_CHUNK_ROWS = 8192
_TEMP_PREFIX, _TEMP_SUFFIX = ".destructors-", ".tmp"


class TableError(ValueError):
    """A table that cannot be read, with a one-line message naming file, line and column.

    Examples
    --------
    >>> from destructors.io import TableError
    >>> issubclass(TableError, ValueError)
    True
    """


class OutputPathError(ValueError):
    """An output path that cannot or must not be written, found before any work.

    Examples
    --------
    >>> from destructors.io import OutputPathError, check_output_path
    >>> try:
    ...     check_output_path("")
    ... except OutputPathError as exc:
    ...     print(exc)
    '': an empty file name.
    """


# -- reading -------------------------------------------------------------------


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_missing(text):
    return text.strip().lower() in MISSING_VALUES


def _looks_like_header(row):
    """A row is a header only if a field is neither a number nor a missing-value marker."""
    return any(not _is_number(field) and not _is_missing(field) for field in row)


def _guess_delimiter(line):
    for delimiter in (",", "\t", ";"):
        if delimiter in line:
            return delimiter
    return ","


def check_delimiter(text):
    """Validate a CSV delimiter given by a user; ``"\\t"`` and ``"tab"`` mean a tab.

    Parameters
    ----------
    text : str
        One character other than a quote, a line break or a character of a
        number (digits, ``.``, ``+``, ``-``, ``e``).

    Returns
    -------
    delimiter : str
        The delimiter character.

    Raises
    ------
    TableError
        When ``text`` is not a usable delimiter.

    Examples
    --------
    >>> from destructors.io import check_delimiter
    >>> check_delimiter(";"), check_delimiter("\\\\t")
    (';', '\\t')
    >>> check_delimiter("ab")
    Traceback (most recent call last):
    ...
    destructors.io.TableError: delimiter 'ab': must be one character, e.g. ',' or ';' or '\\t'.
    """
    if text in ("\\t", "tab", "TAB"):
        return "\t"
    if len(text) != 1:
        raise TableError(f"delimiter {text!r}: must be one character, e.g. ',' or ';' or '\\t'.")
    if text in "\r\n\"" or text in "0123456789.+-eE":
        raise TableError(f"delimiter {text!r}: cannot separate fields (it is part of numbers, "
                         "a quote or a line break).")
    return text


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
                raise TableError(
                    f"{source}: column index {index} is out of range "
                    f"(it has {n_columns} columns, numbered from 0)."
                )
            indices.append(index)
        elif names is None:
            raise TableError(
                f"{source}: no header row, so column {item!r} must be given as a 0-based index."
            )
        else:
            raise TableError(f"{source}: no column named {item!r} (columns: {', '.join(names)}).")
    return indices


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


class Table:
    """The cells of a CSV or ``.npy`` file, before column selection and conversion.

    Use :meth:`from_file` to read one and :meth:`select` to get numbers.

    Parameters
    ----------
    source : str
        How messages name the file.
    cells : ndarray of shape (n_rows, n_columns)
        Numbers (from ``.npy``) or field texts (from CSV).
    names : list of str or None, default=None
        Column names, when the file has a header row.
    line_numbers : list of int or None, default=None
        The file line on which each row starts (CSV only).

    Examples
    --------
    >>> import os, tempfile
    >>> from destructors.io import Table
    >>> path = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> with open(path, "w") as f:
    ...     _ = f.write("a;b\\n1;2\\n")
    >>> table = Table.from_file(path)
    >>> table.names, table.select(["b"])[0].tolist()
    (['a', 'b'], [[2.0]])
    """

    def __init__(self, source, cells, names=None, line_numbers=None):
        self.source, self.cells = source, cells
        self.names, self.line_numbers = names, line_numbers

    @classmethod
    def from_file(cls, path, header=None, delimiter=None):
        """Read a file's cells (see :func:`read_table` for the parameters).

        Parameters
        ----------
        path : str
            A ``.npy`` file, a CSV file, or ``"-"`` for CSV on standard input.
        header : bool or None, default=None
            Whether the first CSV row holds column names (``None``: guess).
        delimiter : str or None, default=None
            CSV field separator (``None``: guess).

        Returns
        -------
        table : Table
            The cells, with names and line numbers where the file has them.

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> from destructors.io import Table
        >>> path = os.path.join(tempfile.mkdtemp(), "t.npy")
        >>> np.save(path, np.arange(4.0))
        >>> Table.from_file(path).cells.shape
        (4, 1)
        """
        path = os.fspath(path)
        if path != "-" and not os.path.isfile(path):
            raise TableError(f"{path}: no such file.")
        if path.lower().endswith(".npy"):
            return _read_npy(path)
        return _read_csv(path, header, delimiter)

    @property
    def n_columns(self):
        """Number of columns in the file."""
        return self.cells.shape[1]

    def select(self, columns=None):
        """Return ``(X, names)`` for the chosen columns, all finite floats.

        Parameters
        ----------
        columns : list of str or None, default=None
            Names or 0-based indices; all columns if ``None``.

        Returns
        -------
        X : ndarray of shape (n_rows, n_selected)
            float64 values, all finite.
        names : list of str or None
            Names of the selected columns, when the file has a header.

        Examples
        --------
        >>> import numpy as np
        >>> from destructors.io import Table
        >>> Table("t", np.array([["1", "x"]]), line_numbers=[3]).select()
        Traceback (most recent call last):
        ...
        destructors.io.TableError: t line 3, column '1' has 'x', not a finite number. ...
        """
        indices = _select(self.names, self.n_columns, columns, self.source)
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
                if not _is_missing(value):
                    hint = " Select the numeric columns with --columns."
            raise TableError(f"{where} {what}, not a finite number.{hint}")
        return X, names


def _records(text, delimiter, source):
    """``(line_number, fields)`` of each CSV record, skipping blank and ``#`` lines.

    A quoted field may span lines; a record is numbered by the line it
    starts on. Blank and comment lines are skipped between records only.
    """
    state = {"at_start": True, "start": 0}

    def lines():
        for number, line in enumerate(io.StringIO(text, newline=""), start=1):
            if state["at_start"]:
                stripped = line.strip()
                if not stripped or stripped.startswith("#"):
                    continue
                state["start"], state["at_start"] = number, False
            yield line

    reader = csv.reader(lines(), delimiter=delimiter)
    records = []
    try:
        for row in reader:
            records.append((state["start"], [field.strip() for field in row]))
            state["at_start"] = True
    except csv.Error as exc:
        raise TableError(
            f"{source} line {state['start']}: malformed CSV ({_one_line(exc)})."
        ) from None
    return records


def _first_line(text):
    for line in io.StringIO(text, newline=""):
        if line.strip() and not line.strip().startswith("#"):
            return line
    return ""


def _read_csv(path, header, delimiter):
    source = "standard input" if path == "-" else path
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8-sig", newline="") as handle:
                text = handle.read()
    except UnicodeDecodeError:
        raise TableError(f"{source}: not a text CSV file (use .npy for binary arrays).") from None
    if "\0" in text:
        raise TableError(f"{source}: not a text CSV file (it holds NUL bytes).")
    if delimiter is None:
        delimiter = _guess_delimiter(_first_line(text))
    else:
        delimiter = check_delimiter(delimiter)
    records = _records(text, delimiter, source)
    if not records:
        raise TableError(f"{source}: no data rows.")
    numbers = [number for number, _ in records]
    rows = [row for _, row in records]
    if header is None:
        header = _looks_like_header(rows[0])
    names = None
    if header:
        names, rows, numbers = rows[0], rows[1:], numbers[1:]
        if not rows:
            raise TableError(f"{source}: a header row but no data rows.")
    n_columns = len(names) if names is not None else len(rows[0])
    for row, number in zip(rows, numbers, strict=True):
        if len(row) != n_columns:
            raise TableError(
                f"{source} line {number}: {len(row)} fields where the "
                f"{'header' if header else 'first row'} has {n_columns}."
            )
    cells = np.array(rows, dtype=str).reshape(len(rows), n_columns)
    return Table(source, cells, names, numbers)


def _read_npy(path):
    try:
        X = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise TableError(f"{path}: not a readable .npy array ({_one_line(exc)}).") from None
    if not isinstance(X, np.ndarray):
        with contextlib.suppress(Exception):
            X.close()
        raise TableError(f"{path}: not a .npy array (an .npz archive?); save one array.")
    if X.dtype.kind not in "biuf":
        raise TableError(f"{path}: holds {X.dtype} values, not numbers.")
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise TableError(f"{path}: a {X.ndim}-d array; need rows by columns (2-d).")
    if X.shape[0] == 0:
        raise TableError(f"{path}: no data rows.")
    if X.shape[1] == 0:
        raise TableError(f"{path}: no columns.")
    return Table(path, X)


def read_table(path, columns=None, header=None, delimiter=None):
    """Read a numeric table from a CSV file or a ``.npy`` array.

    Parameters
    ----------
    path : str or path-like
        A ``.npy`` file, a CSV file, or ``"-"`` for CSV on standard input.
        Blank lines and lines starting with ``#`` between rows are skipped;
        a quoted field may span lines.
    columns : list of str or None, default=None
        Columns to keep, by header name or 0-based index; all if ``None``.
    header : bool or None, default=None
        Whether the first CSV row holds column names; ``None`` guesses: it
        does when one of its fields is neither a number nor a missing-value
        marker (empty, ``n/a``, ``NA``, ``nan``, ``null``, ... see
        :data:`MISSING_VALUES`). A first row with missing values is thus a
        data row, and reading fails naming its line and column.
    delimiter : str or None, default=None
        CSV field separator (one character; ``"\\t"`` means tab); ``None``
        picks the first of ``,``, tab and ``;`` found in the first line.

    Returns
    -------
    X : ndarray of shape (n_rows, n_columns)
        The values, float64, all finite.
    names : list of str or None
        Names of the kept columns, when the file has a header.

    Raises
    ------
    TableError
        With a one-line message naming the file, line and column, when the
        file is missing or holds anything but finite numbers.

    Examples
    --------
    >>> import os, tempfile
    >>> from destructors.io import read_table
    >>> path = os.path.join(tempfile.mkdtemp(), "data.csv")
    >>> with open(path, "w") as f:
    ...     _ = f.write("x,y,label\\n1.5,2,a\\n3,4e-1,b\\n")
    >>> X, names = read_table(path, columns=["x", "y"])
    >>> X.tolist(), names
    ([[1.5, 2.0], [3.0, 0.4]], ['x', 'y'])
    >>> read_table(path)
    Traceback (most recent call last):
    ...
    destructors.io.TableError: ...data.csv line 2, column 'label' has 'a', not a finite number. ...
    >>> with open(path, "w") as f:
    ...     _ = f.write("1,n/a\\n2,3\\n")
    >>> read_table(path)
    Traceback (most recent call last):
    ...
    destructors.io.TableError: ...data.csv line 1, column '1' has 'n/a', not a finite number.
    """
    return Table.from_file(path, header, delimiter).select(columns)


# -- writing -------------------------------------------------------------------


def _one_line(exc):
    text = " ".join(str(exc).split())
    return text if text else type(exc).__name__


def check_output_path(path, inputs=()):
    """Check, before any work, that ``path`` can be written and is no input.

    Parameters
    ----------
    path : str, path-like or None
        The output file; ``None`` or ``"-"`` (standard output) pass.
    inputs : iterable of str or None
        Files the command reads (``None`` and ``"-"`` are skipped). The
        output may not be one of them, by any name: the same path, a hard
        link or a symbolic link to it.

    Returns
    -------
    target : str or None
        The file to write: ``path`` with symbolic links resolved, so that
        writing replaces the file a link points to, never the link.

    Raises
    ------
    OutputPathError
        With a one-line message: an empty or invalid name, a missing or
        unwritable directory, a directory or device in place of a file, or
        an output that is an input.

    Examples
    --------
    >>> import os, tempfile
    >>> from destructors.io import check_output_path
    >>> folder = tempfile.mkdtemp()
    >>> data = os.path.join(folder, "data.csv")
    >>> open(data, "w").close()
    >>> check_output_path(os.path.join(folder, "out.csv"), [data]) == os.path.join(
    ...     os.path.realpath(folder), "out.csv")
    True
    >>> check_output_path(data, [data])
    Traceback (most recent call last):
    ...
    destructors.io.OutputPathError: ...data.csv: is an input of this command; ...
    """
    if path is None:
        return None
    path = os.fspath(path)
    if path == "-":
        return None
    if not path.strip():
        raise OutputPathError(f"{path!r}: an empty file name.")
    if "\0" in path:
        raise OutputPathError(f"{path!r}: a file name cannot hold a NUL character.")
    if path.endswith(("/", os.sep)) or os.path.basename(path) in (".", ".."):
        raise OutputPathError(f"{path}: names a directory, not a file.")
    target = os.path.realpath(path)
    if os.path.isdir(target):
        raise OutputPathError(f"{path}: is a directory.")
    if os.path.lexists(target) and not os.path.isfile(target):
        raise OutputPathError(
            f"{path}: exists and is not a regular file; write to a file "
            "(or leave out -o for standard output)."
        )
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise OutputPathError(f"{path}: directory {os.path.dirname(path) or '.'} does not exist.")
    name = os.path.basename(target)
    try:
        name_max = os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        name_max = 255
    if len(os.fsencode(name)) > name_max:
        raise OutputPathError(f"{path}: file name longer than {name_max} bytes.")
    for source in inputs:
        if source is None or os.fspath(source) == "-":
            continue
        try:
            same = os.path.exists(target) and os.path.samefile(target, source)
        except OSError:
            same = False
        if same:
            raise OutputPathError(f"{path}: is an input of this command; write to another file.")
    try:  # the one sure test of writability (os.access is wrong for root, ACLs ...)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX)
    except OSError as exc:
        raise OutputPathError(
            f"{path}: cannot write in directory {os.path.dirname(path) or '.'} "
            f"({exc.strerror or _one_line(exc)})."
        ) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.remove(probe)
    return target


@contextlib.contextmanager
def atomic_output(path, mode="w"):
    """Write to a temporary file beside ``path``; rename it into place on success only.

    A symbolic link at ``path`` is followed: its target is replaced, the
    link kept. On any exception the temporary file is removed and ``path``
    is left as it was. A new file gets the permissions the umask allows; an
    existing one keeps its permissions.

    Parameters
    ----------
    path : str or path-like
        Final file name.
    mode : {"w", "wb"}, default="w"
        Text (UTF-8, no newline translation) or binary.

    Yields
    ------
    file : file object
        Open on the temporary file.

    Examples
    --------
    >>> import os, tempfile
    >>> from destructors.io import atomic_output
    >>> path = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> with atomic_output(path) as f:
    ...     _ = f.write("done\\n")
    >>> open(path).read()
    'done\\n'
    """
    target = os.path.realpath(os.fspath(path))
    directory = os.path.dirname(target)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX)
    try:
        text = {} if "b" in mode else {"newline": "", "encoding": "utf-8"}
        with os.fdopen(fd, mode, **text) as f:
            yield f
        try:
            permissions = os.stat(target).st_mode & 0o7777
        except OSError:
            umask = os.umask(0)
            os.umask(umask)
            permissions = 0o666 & ~umask  # mkstemp creates files private to the owner
        os.chmod(tmp, permissions)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _write_csv(stream, X, names, header):
    writer = csv.writer(stream, lineterminator="\n")
    if header and names is not None:
        writer.writerow(names)
    for start in range(0, X.shape[0], _CHUNK_ROWS):
        # repr of a Python float: the shortest text that reads back exactly.
        writer.writerows(X[start : start + _CHUNK_ROWS].tolist())


def write_table(path, X, names=None, header=True):
    """Write rows as CSV (standard output when ``path`` is None or ``"-"``) or ``.npy``.

    Files are written atomically (see :func:`atomic_output`); check the path
    first with :func:`check_output_path` to fail before expensive work.

    Parameters
    ----------
    path : str, path-like or None
        Output file: ``.npy`` when it ends in ``.npy``, otherwise CSV.
    X : array-like of shape (n_rows, n_columns) or (n_rows,)
        Values; a 1-d ``X`` is one column (and a 1-d ``.npy`` array).
    names : list of str or None, default=None
        Column names for the CSV header row.
    header : bool, default=True
        Write the header row (when ``names`` is given).

    Examples
    --------
    >>> import os, tempfile
    >>> from destructors.io import read_table, write_table
    >>> path = os.path.join(tempfile.mkdtemp(), "out.csv")
    >>> write_table(path, [[0.1, 2.0], [1e-300, -3.5]], ["a", "b"])
    >>> print(open(path).read(), end="")
    a,b
    0.1,2.0
    1e-300,-3.5
    >>> float(read_table(path)[0][1, 0]) == 1e-300
    True
    """
    X = np.asarray(X, dtype=np.float64)
    flat = X
    if X.ndim == 1:
        X = X[:, None]
    if path is None or os.fspath(path) == "-":
        _write_csv(sys.stdout, X, names, header)
        sys.stdout.flush()
        return
    if os.fspath(path).lower().endswith(".npy"):
        with atomic_output(path, "wb") as f:
            np.save(f, flat)
    else:
        with atomic_output(path) as f:
            _write_csv(f, X, names, header)
