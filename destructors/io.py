"""Numeric tables in and out: CSV and ``.npy`` files, written atomically.

:func:`read_table` reads a CSV file (plain or gzip-compressed; header row
optional, delimiter and decimal mark guessed, the index column of
``DataFrame.to_csv()`` skipped) or a ``.npy`` array into a float64 matrix,
and says in one line which line and column is wrong when the file holds
anything but finite numbers (:class:`TableError`). CSV is parsed by pandas'
C parser; a cell it did not read as a finite number, or a row of the wrong
width, is then found again in the file by a record-by-record pass (the
standard :mod:`csv` module) that counts lines, so messages name the line
in the file. :func:`write_table` writes rows as CSV with
full precision, or as ``.npy``. Every file is written to a temporary file
beside its target and renamed into place (:func:`atomic_output`), so a
failure never leaves a partial file; :func:`check_output_path` refuses, before
any work, an output that cannot be written or that is one of the inputs.

Only NumPy and the standard library are imported with this module;
pandas is imported when a CSV file is read, so the command line stays
quick to start.
"""

import codecs
import contextlib
import csv
import gzip
import io
import os
import re
import sys
import tempfile
import warnings
import zlib

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

_GZIP_MAGIC = b"\x1f\x8b"
_SCAN_BYTES = 1 << 20  # chunk of the first pass over a CSV file
_PEEK_ROWS = 50  # rows read as text to guess the header and the decimal mark
_LINE_END = re.compile(rb"[\r\n]")
_COMMA_NUMBER = re.compile(r"[+-]?(?:\d+,\d*|,\d+)(?:[eE][+-]?\d+)?")
_POINT_NUMBER = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _comment_lines(data, first_only=False):
    """``(start, end)`` of each comment line of ``data``: ``#`` after nothing but blanks.

    ``data`` starts at the start of a line; ``end`` is where the line's end
    of line begins. A search from one ``#`` to the next (a regular
    expression anchored at line starts is many times slower).
    """
    spans, at = [], data.find(b"#")
    while at >= 0:
        start = at
        while start and data[start - 1] in b" \t":
            start -= 1
        if start == 0 or data[start - 1] in b"\r\n":
            match = _LINE_END.search(data, at)
            spans.append((start, match.start() if match else len(data)))
            if first_only:
                break
            at = spans[-1][1]
        at = data.find(b"#", at + 1)
    return spans


def _is_number(text, decimal="."):
    if decimal != ".":
        text = text.replace(decimal, ".")
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_missing(text):
    return text.strip().lower() in MISSING_VALUES


def _looks_like_header(row, decimal="."):
    """A row is a header if a field is neither a number nor a missing-value marker.

    Also the header ``DataFrame.to_csv()`` writes for default column names:
    an empty first field (the index) followed by 0, 1, 2, ...
    """
    if any(not _is_number(field, decimal) and not _is_missing(field) for field in row):
        return True
    return len(row) > 1 and row[0] == "" and row[1:] == [str(i) for i in range(len(row) - 1)]


def _guess_delimiter(line):
    # A ';' file with decimal commas ("1,5;2,5") has commas only between digits.
    if ";" in line and "," in line and not re.search(r"\D,|,\D|^,|,$", line.strip()):
        return ";"
    for delimiter in (",", "\t", ";"):
        if delimiter in line:
            return delimiter
    return ","


def _guess_decimal(rows, delimiter):
    """``","`` when fields read as numbers only with a decimal comma and none with a point."""
    if delimiter == ",":
        return "."
    fields = [field for row in rows for field in row]
    if any(_COMMA_NUMBER.fullmatch(f) for f in fields) and not any(
        _POINT_NUMBER.fullmatch(f) for f in fields
    ):
        return ","
    return "."


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


def _to_float(column, decimal):
    """``(values, bad)``: a column as float64 and the mask of cells that are no finite number.

    ``column`` is a NumPy array or a pandas Series as the parser typed it:
    numbers, booleans (never numbers here) or texts (numbers where pandas
    reads them so, with ``decimal`` as the decimal mark).
    """
    kind = column.dtype.kind
    if kind in "iu":
        return np.asarray(column, dtype=np.float64), None
    if kind == "f":
        values = np.asarray(column, dtype=np.float64)
        finite = np.isfinite(values)
        return values, None if finite.all() else ~finite
    if kind == "b":
        return None, np.ones(len(column), dtype=bool)
    import pandas as pd

    series = pd.Series(np.asarray(column, dtype=object))
    texts = series.map(lambda v: v.strip().replace(decimal, ".") if isinstance(v, str) else v)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow of a huge integer
        values = pd.to_numeric(texts, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(values)
    return values, None if finite.all() else ~finite


class Table:
    """The cells of a CSV or ``.npy`` file, before column selection and conversion.

    Use :meth:`from_file` to read one and :meth:`select` to get numbers.

    Parameters
    ----------
    source : str
        How messages name the file.
    cells : ndarray or pandas.DataFrame of shape (n_rows, n_columns)
        Numbers (from ``.npy``), or the columns a CSV parser produced:
        numbers, or field texts where a column holds anything else.
    names : list of str or None, default=None
        Column names, when the file has a header row.
    line_numbers : list of int or None, default=None
        The file line on which each row starts, to name it in messages.
    decimal : str, default="."
        The decimal mark of numbers held as texts.

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

    def __init__(self, source, cells, names=None, line_numbers=None, decimal="."):
        self.source, self.cells = source, cells
        self.names, self.line_numbers, self.decimal = names, line_numbers, decimal
        # For CSV files: ``rows -> {row: (line, fields)}``, the records of
        # chosen rows found again in the file, for messages (see _CsvSource).
        self._records = None
        self.index_column = False

    @classmethod
    def from_file(cls, path, header=None, delimiter=None, decimal=None):
        """Read a file's cells (see :func:`read_table` for the parameters).

        Parameters
        ----------
        path : str
            A ``.npy`` file, a CSV file (gzip-compressed or not), or ``"-"``
            for CSV on standard input.
        header : bool or None, default=None
            Whether the first CSV row holds column names (``None``: guess).
        delimiter : str or None, default=None
            CSV field separator (``None``: guess).
        decimal : {".", ","} or None, default=None
            Decimal mark of CSV numbers (``None``: guess).

        Returns
        -------
        table : Table
            The cells, with names where the file has them.

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
        if decimal not in (None, ".", ","):
            raise TableError(f"decimal mark {decimal!r}: must be '.' or ','.")
        if path.lower().endswith(".npy"):
            return _read_npy(path)
        return _read_csv(path, header, delimiter, decimal)

    @property
    def n_columns(self):
        """Number of columns in the file (a skipped index column not counted)."""
        return self.cells.shape[1]

    def _column(self, j):
        """Column ``j`` (an array, or a Series of a DataFrame)."""
        if isinstance(self.cells, np.ndarray):
            return self.cells[:, j]
        return self.cells.iloc[:, j]

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
        names = [self.names[i] for i in indices] if self.names else None
        if isinstance(self.cells, np.ndarray) and self.cells.dtype.kind in "biuf":
            X = self.cells[:, indices].astype(np.float64)
            bad = ~np.isfinite(X)
            if bad.any():
                i, j = (int(k[0]) for k in np.nonzero(bad))
                self._raise_bad(i, j, indices, names, columns, X[i, j].item())
            return X, names
        X = np.empty((self.cells.shape[0], len(indices)), dtype=np.float64)
        first_bad = None  # (row, position in the selection)
        for j, index in enumerate(indices):
            values, bad = _to_float(self._column(index), self.decimal)
            if bad is not None:
                i = int(np.argmax(bad))
                if first_bad is None or i < first_bad[0]:
                    first_bad = (i, j)
            if first_bad is None:
                X[:, j] = values
        if first_bad is not None:
            i, j = first_bad
            value = np.asarray(self._column(indices[j]), dtype=object)[i]
            self._raise_bad(i, j, indices, names, columns, value)
        return X, names

    def _raise_bad(self, i, j, indices, names, columns, value):
        """Raise the TableError for the cell in row ``i``, selected column ``j``."""
        column = names[j] if names else str(indices[j])
        where = f"{self.source}: row {i}, column {column}"
        if self.line_numbers is not None:
            where = f"{self.source} line {self.line_numbers[i]}, column {column!r}"
        elif self._records is not None:
            record = self._records([i]).get(i)
            if record is not None:
                line, fields = record
                where = f"{self.source} line {line}, column {column!r}"
                field = indices[j] + self.index_column
                if field < len(fields):
                    value = fields[field]
        if isinstance(value, str):
            value = value.strip()
            what = "is empty" if value == "" else f"has {value!r}"
        else:
            what = f"is {value}"
        hint = ""
        if isinstance(value, str) and not _is_number(value, self.decimal):
            if self.decimal == "." and _COMMA_NUMBER.fullmatch(value):
                hint = " A decimal comma? Give the decimal mark (--decimal ,)."
            elif columns is None and not _is_missing(value):
                hint = " Select the numeric columns with --columns."
        raise TableError(f"{where} {what}, not a finite number.{hint}")


class _CsvSource:
    """A CSV file or standard input, opened as decompressed bytes as often as needed."""

    def __init__(self, path):
        self.path = path
        self.name = "standard input" if path == "-" else path
        self._data = None
        if path == "-":
            stream = getattr(sys.stdin, "buffer", None)
            self._data = stream.read() if stream is not None else sys.stdin.read().encode()
            self.gzipped = self._data[:2] == _GZIP_MAGIC
            if self.gzipped:
                self._data = self._decompress(lambda: gzip.GzipFile(fileobj=io.BytesIO(
                    self._data)).read())
        else:
            with open(path, "rb") as handle:
                self.gzipped = handle.read(2) == _GZIP_MAGIC
            if path.lower().endswith(".gz") and not self.gzipped:
                raise TableError(f"{path}: named .gz but not gzip-compressed.")

    def _decompress(self, read):
        try:
            return read()
        except (OSError, EOFError, zlib.error) as exc:
            raise TableError(
                f"{self.name}: not a readable gzip file ({_one_line(exc)})."
            ) from None

    def open(self):
        """A binary file object on the (decompressed) bytes, from the start."""
        if self._data is not None:
            return io.BytesIO(self._data)
        if self.gzipped:
            return gzip.open(self.path, "rb")
        return open(self.path, "rb")

    def scan(self):
        """One pass over the bytes: ``(first_line, has_comment_lines, has_quotes)``.

        Raises TableError for NUL bytes, bytes that are not UTF-8 and a
        damaged gzip stream.
        """
        decoder = codecs.getincrementaldecoder("utf-8")()
        first, comments, quotes, tail = None, False, False, b""
        with self.open() as handle:
            while True:
                if self.gzipped:
                    chunk = self._decompress(lambda: handle.read(_SCAN_BYTES))
                else:
                    chunk = handle.read(_SCAN_BYTES)
                # ASCII is UTF-8: decode only chunks that may not be (or that
                # finish a character the previous chunk began).
                if not chunk or not chunk.isascii() or decoder.getstate()[0]:
                    try:
                        decoder.decode(chunk, final=not chunk)
                    except UnicodeDecodeError:
                        raise TableError(
                            f"{self.name}: not a text CSV file (use .npy for binary arrays)."
                        ) from None
                if b"\0" in chunk:
                    raise TableError(f"{self.name}: not a text CSV file (it holds NUL bytes).")
                quotes = quotes or b'"' in chunk
                # Whole lines only (tail + chunk up to its last line end); the
                # unfinished line waits for the next chunk, or the end.
                cut = max(chunk.rfind(b"\n"), chunk.rfind(b"\r")) + 1 if chunk else len(chunk)
                if chunk and not cut:
                    tail += chunk
                    continue
                if first is None or (not comments and (b"#" in chunk or b"#" in tail)):
                    lines = tail + chunk[:cut] if chunk else tail
                    if first is None:  # (the first 64 KB hold it, unless they are comments)
                        first = _first_line(lines[:1 << 16].decode("utf-8-sig", "replace"))
                        if not first.endswith(("\n", "\r")) and len(lines) > 1 << 16:
                            first = _first_line(lines.decode("utf-8-sig", "replace"))
                        first = first or None
                    comments = comments or bool(_comment_lines(lines, first_only=True))
                if not chunk:
                    break
                tail = chunk[cut:]
        return first or "", comments, quotes

    def text(self):
        """A text file object on the contents (UTF-8, a byte-order mark dropped)."""
        return io.TextIOWrapper(self.open(), encoding="utf-8-sig", newline="")


def _iter_records(handle, delimiter, source):
    """``(line_number, fields, raw_text)`` of each CSV record, skipping blank and ``#`` lines.

    A quoted field may span lines; a record is numbered by the line it
    starts on. Blank and comment lines are skipped between records only.
    Fields are stripped of surrounding white space.
    """
    state = {"at_start": True, "start": 0}
    kept = []

    def lines():
        for number, line in enumerate(handle, start=1):
            if state["at_start"]:
                stripped = line.strip()
                if not stripped or stripped.startswith("#"):
                    continue
                state["start"], state["at_start"] = number, False
            kept.append(line)
            yield line

    reader = csv.reader(lines(), delimiter=delimiter)
    try:
        for row in reader:
            raw = "".join(kept)
            kept.clear()
            state["at_start"] = True
            yield state["start"], [field.strip() for field in row], raw
    except csv.Error as exc:
        raise TableError(
            f"{source} line {state['start']}: malformed CSV ({_one_line(exc)})."
        ) from None


def _first_line(text):
    for line in io.StringIO(text, newline=""):
        if line.strip() and not line.strip().startswith("#"):
            return line
    return ""


def _without_comment_lines(source, delimiter, quotes):
    """The CSV text with its comment lines dropped, for the parser (which keeps them).

    Without quotes every line starts a record, and each comment line is
    emptied (the parser skips blank lines); with quotes, a line inside a
    quoted field is kept, so the records are followed one by one.
    """
    if not quotes:
        with source.open() as handle:
            data = handle.read()
        kept, end = [], 0
        for start, stop in _comment_lines(data):
            kept.append(data[end:start])
            end = stop
        kept.append(data[end:])
        return b"".join(kept)
    out = io.StringIO()
    with source.text() as handle:
        for _, _, raw in _iter_records(handle, delimiter, source.name):
            out.write(raw)
    return out.getvalue().encode("utf-8")


def _records_finder(source, delimiter, offset):
    """``rows -> {row: (line, fields)}``: records of data rows found again in the file.

    ``offset`` is the number of records before the first data row (1 with a
    header). One streaming pass, stopping at the last row asked for.
    """

    def find(rows):
        wanted = {row + offset for row in rows}
        last, found = max(wanted), {}
        with source.text() as handle:
            for k, (line, fields, _) in enumerate(_iter_records(handle, delimiter, source.name)):
                if k in wanted:
                    found[k - offset] = (line, fields)
                if k >= last:
                    break
        return found

    return find


def _first_wrong_width(source, delimiter, header):
    """Raise TableError for the first record whose width differs from the first's."""
    n_columns = None
    with source.text() as handle:
        for line, fields, _ in _iter_records(handle, delimiter, source.name):
            if n_columns is None:
                n_columns = len(fields)
                if header is None:
                    header = _looks_like_header(fields)
            elif len(fields) != n_columns:
                raise TableError(
                    f"{source.name} line {line}: {len(fields)} fields where the "
                    f"{'header' if header else 'first row'} has {n_columns}."
                )


def _parse(buffer, **options):
    """pandas' C parser on ``buffer`` with the options every read shares."""
    import pandas as pd

    if tuple(int(part) for part in re.findall(r"\d+", pd.__version__)[:2]) < (3, 1):
        # Before pandas 3.1 only this converter reads every float back exactly.
        options.setdefault("float_precision", "round_trip")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.DtypeWarning)  # mixed chunks: checked later
        return pd.read_csv(
            buffer,
            engine="c",
            na_filter=False,  # every field text is kept; missing values are found later
            skip_blank_lines=True,
            quotechar='"',
            doublequote=True,
            encoding="utf-8-sig",
            **options,
        )


def _read_csv(path, header, delimiter, decimal):
    import pandas as pd

    source = _CsvSource(path)
    first_line, comments, quotes = source.scan()
    if delimiter is None:
        delimiter = _guess_delimiter(first_line)
    else:
        delimiter = check_delimiter(delimiter)
    if not first_line.strip():
        raise TableError(f"{source.name}: no data rows.")

    cleaned = _without_comment_lines(source, delimiter, quotes) if comments else None

    def parse(**options):
        buffer = source.open() if cleaned is None else io.BytesIO(cleaned)
        try:
            with buffer:
                return _parse(buffer, sep=delimiter, **options)
        except pd.errors.EmptyDataError:
            raise TableError(f"{source.name}: no data rows.") from None
        except (pd.errors.ParserError, ValueError) as exc:
            # Name the line as the record-by-record reader does; else pandas' words.
            _first_wrong_width(source, delimiter, header)
            raise TableError(f"{source.name}: malformed CSV ({_one_line(exc)}).") from None

    peek = parse(header=None, nrows=_PEEK_ROWS, dtype=str)
    rows = [[str(v).strip() for v in row] for row in peek.itertuples(index=False)]
    n_columns = peek.shape[1]
    if decimal is None:
        decimal = _guess_decimal(rows, delimiter)
    elif decimal == delimiter:
        raise TableError(f"decimal mark {decimal!r}: it is also the delimiter.")
    if header is None:
        header = _looks_like_header(rows[0], decimal)
    frame = parse(
        header=0 if header else None, names=range(n_columns), decimal=decimal
    )
    names = rows[0] if header else None
    if header and frame.shape[0] == 0:
        raise TableError(f"{source.name}: a header row but no data rows.")
    find = _records_finder(source, delimiter, offset=1 if header else 0)
    # The parser pads a row with too few fields with empty texts: check the
    # widths of rows holding an empty text, in any column.
    empty = np.zeros(frame.shape[0], dtype=bool)
    for j in range(n_columns):
        column = frame.iloc[:, j]
        if column.dtype.kind not in "biuf":
            empty |= np.asarray(column.to_numpy(dtype=object) == "", dtype=bool)
    if empty.any():
        found = find(np.flatnonzero(empty).tolist())
        for row in sorted(found):
            line, fields = found[row]
            if len(fields) != n_columns:
                raise TableError(
                    f"{source.name} line {line}: {len(fields)} fields where the "
                    f"{'header' if header else 'first row'} has {n_columns}."
                )
    # An unnamed first column is the index DataFrame.to_csv() writes: skip it.
    index_column = bool(header and n_columns > 1 and names[0] == "")
    if index_column:
        frame, names = frame.iloc[:, 1:], names[1:]
    table = Table(source.name, frame, names, decimal=decimal)
    table._records, table.index_column = find, index_column
    return table


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


def read_table(path, columns=None, header=None, delimiter=None, decimal=None):
    """Read a numeric table from a CSV file or a ``.npy`` array.

    CSV is parsed by pandas' C parser; a cell that is not a finite number
    is then found again in the file to name its line and column.

    Parameters
    ----------
    path : str or path-like
        A ``.npy`` file, a CSV file, or ``"-"`` for CSV on standard input.
        A CSV file may be gzip-compressed (``.csv.gz``; recognised by its
        contents). Blank lines and lines starting with ``#`` between rows
        are skipped; a quoted field may span lines. A header row whose
        first field is empty marks the first column as the index that
        ``pandas.DataFrame.to_csv()`` writes: that column is skipped, and
        column indices count from the column after it.
    columns : list of str or None, default=None
        Columns to keep, by header name or 0-based index; all if ``None``.
    header : bool or None, default=None
        Whether the first CSV row holds column names; ``None`` guesses: it
        does when one of its fields is neither a number nor a missing-value
        marker (empty, ``n/a``, ``NA``, ``nan``, ``null``, ... see
        :data:`MISSING_VALUES`), or when it is the header ``to_csv()``
        writes for unnamed columns (an empty field, then 0, 1, 2, ...). A
        first row with missing values is otherwise a data row, and reading
        fails naming its line and column.
    delimiter : str or None, default=None
        CSV field separator (one character; ``"\\t"`` means tab); ``None``
        picks the first of ``,``, tab and ``;`` found in the first line,
        or ``;`` when that line's commas all stand between digits
        (``1,5;2,5``).
    decimal : {".", ","} or None, default=None
        Decimal mark of the numbers; ``None`` takes ``,`` when the
        delimiter is not a comma and the first rows hold numbers written
        with a decimal comma and none written with a point.

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

    Decimal commas with ``;``, and the index column of ``to_csv()``:

    >>> with open(path, "w") as f:
    ...     _ = f.write("x;y\\n1,5;-2\\n0,25;3e-1\\n")
    >>> read_table(path)[0].tolist()
    [[1.5, -2.0], [0.25, 0.3]]
    >>> with open(path, "w") as f:
    ...     _ = f.write(",x,y\\n0,1.5,2\\n1,3,4\\n")
    >>> read_table(path)
    (array([[1.5, 2. ],
           [3. , 4. ]]), ['x', 'y'])
    """
    return Table.from_file(path, header, delimiter, decimal).select(columns)


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
