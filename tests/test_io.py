"""Tests of table reading and writing (``destructors.io``)."""

import io
import os
import sys

import numpy as np
import pytest

from destructors.io import (
    OutputPathError,
    TableError,
    atomic_output,
    check_delimiter,
    check_output_path,
    read_table,
    write_table,
)


def _csv(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# -- header detection: one rule for every row --------------------------------------


@pytest.mark.parametrize("marker", ["", "n/a", "NA", "nan", "null", "NULL", "None", "?"])
def test_a_first_row_with_a_missing_value_is_data_not_a_header(tmp_path, marker):
    path = _csv(tmp_path, f"1,{marker}\n2,3\n4,5\n")
    with pytest.raises(TableError) as info:
        read_table(path)
    message = str(info.value)
    assert "line 1, column '1'" in message
    assert "not a finite number" in message


def test_a_header_needs_a_field_that_is_neither_number_nor_missing(tmp_path):
    X, names = read_table(_csv(tmp_path, "x,n/a\n1,2\n"))
    assert names == ["x", "n/a"] and X.tolist() == [[1.0, 2.0]]
    X, names = read_table(_csv(tmp_path, "1,2\n3,4\n"))
    assert names is None and X.shape == (2, 2)


def test_a_later_header_like_row_is_an_error_naming_its_line(tmp_path):
    path = _csv(tmp_path, "x,y\n1,2\nx,y\n3,4\n")
    with pytest.raises(TableError, match="line 3, column 'x' has 'x'"):
        read_table(path)


# -- CSV parsing ------------------------------------------------------------------


def test_a_multi_line_quoted_field_is_one_field_numbered_by_its_first_line(tmp_path):
    path = _csv(tmp_path, 'a,"b\nc"\n1,2\n"3\nx",4\n')
    with pytest.raises(TableError) as info:
        read_table(path)
    assert "line 4, column 'a' has '3\\nx'" in str(info.value)
    assert "\n" not in str(info.value)
    X, names = read_table(_csv(tmp_path, 'a,"b\nc"\n1,2\n# note\n\n3,4\n'))
    assert names == ["a", "b\nc"] and X.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_line_numbers_count_blank_and_comment_lines(tmp_path):
    path = _csv(tmp_path, "# comment\nx,y\n\n1,2\n3,oops\n")
    with pytest.raises(TableError, match="line 5, column 'y' has 'oops'"):
        read_table(path)


def test_ragged_rows_name_their_line(tmp_path):
    with pytest.raises(TableError, match="line 3: 3 fields where the header has 2"):
        read_table(_csv(tmp_path, "x,y\n1,2\n3,4,5\n"))


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "no data rows"), ("# only\n\n", "no data rows"), ("x,y\n", "header row but no data")],
)
def test_empty_tables(tmp_path, text, message):
    with pytest.raises(TableError, match=message):
        read_table(_csv(tmp_path, text))


def test_nul_bytes_and_binary_files(tmp_path):
    path = tmp_path / "nul.csv"
    path.write_bytes(b"1,2\n3,\x004\n")
    with pytest.raises(TableError, match="NUL"):
        read_table(path)
    path.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(TableError, match="not a text CSV"):
        read_table(path)


def test_delimiters(tmp_path):
    assert check_delimiter("\\t") == check_delimiter("tab") == "\t"
    for bad in ("ab", "", '"', "\n", "1", ".", "-"):
        with pytest.raises(TableError, match="delimiter"):
            check_delimiter(bad)
    X, names = read_table(_csv(tmp_path, "a|b\n1|2\n"), delimiter="|")
    assert names == ["a", "b"] and X.tolist() == [[1.0, 2.0]]


def test_columns_by_name_and_index(tmp_path):
    path = _csv(tmp_path, "x,y,z\n1,2,3\n")
    assert read_table(path, columns=["z", "0"])[0].tolist() == [[3.0, 1.0]]
    with pytest.raises(TableError, match="no column named 'q'"):
        read_table(path, columns=["q"])
    with pytest.raises(TableError, match="out of range"):
        read_table(path, columns=["3"])


def test_npy_files(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.array([[1, 2], [3, 4]], dtype=np.int32))
    assert read_table(path)[0].dtype == np.float64
    np.save(path, np.array(["a"]))
    with pytest.raises(TableError, match="not numbers"):
        read_table(path)
    np.save(path, np.zeros((2, 2, 2)))
    with pytest.raises(TableError, match="3-d"):
        read_table(path)
    npz = tmp_path / "b.npy"
    with open(npz, "wb") as f:
        np.savez(f, a=np.zeros(2))
    with pytest.raises(TableError, match="npz"):
        read_table(npz)


# -- writing ----------------------------------------------------------------------


def test_write_table_round_trips_floats_exactly(tmp_path):
    X = np.random.default_rng(0).normal(size=(20_000, 3)) * 1e-200  # several chunks
    for name in ("out.csv", "out.npy"):
        path = tmp_path / name
        write_table(path, X, ["a", "b", "c"])
        np.testing.assert_array_equal(read_table(path)[0], X)


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("previous\n")
    with pytest.raises(RuntimeError), atomic_output(path) as f:
        f.write("partial")
        raise RuntimeError("boom")
    assert path.read_text() == "previous\n"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_atomic_output_writes_through_a_symlink_and_keeps_permissions(tmp_path):
    target = tmp_path / "target.csv"
    target.write_text("old\n")
    os.chmod(target, 0o640)
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    write_table(link, [1.0], ["v"])
    assert link.is_symlink()
    assert target.read_text() == "v\n1.0\n"
    assert target.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "empty file name"),
        ("new/", "names a directory"),
        ("missing/out.csv", "does not exist"),
        ("x" * 300 + ".csv", "longer than"),
        ("a\0b", "NUL"),
    ],
)
def test_check_output_path_refuses_bad_names(tmp_path, name, message):
    (tmp_path / "sub").mkdir()
    path = os.path.join(str(tmp_path), name) if name else name
    with pytest.raises(OutputPathError, match=message):
        check_output_path(path)
    assert sorted(os.listdir(tmp_path)) == ["sub"]


def test_check_output_path_refuses_an_input_by_any_name(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("1\n")
    link = tmp_path / "link.csv"
    link.symlink_to(data)
    hard = tmp_path / "hard.csv"
    os.link(data, hard)
    for output in (data, link, hard, tmp_path / "." / "data.csv"):
        with pytest.raises(OutputPathError, match="is an input"):
            check_output_path(output, [str(data)])
    assert check_output_path(link) == os.path.realpath(data)  # written through the link
    assert check_output_path("-") is None and check_output_path(None) is None
    with pytest.raises(OutputPathError, match="is a directory"):
        check_output_path(tmp_path)
    if os.path.exists("/dev/null"):
        with pytest.raises(OutputPathError, match="not a regular file"):
            check_output_path("/dev/null")


# -- gzip, decimal commas, the pandas index column ----------------------------------


def test_gzip_files_read_like_plain_ones_and_name_lines_of_the_text(tmp_path):
    import gzip

    X = np.random.default_rng(1).normal(size=(300, 3))
    plain = tmp_path / "data.csv"
    write_table(plain, X, ["a", "b", "c"])
    zipped = tmp_path / "data.csv.gz"
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    Y, names = read_table(zipped)
    np.testing.assert_array_equal(Y, X)
    assert names == ["a", "b", "c"]
    # Recognised by its contents, whatever the name.
    other = tmp_path / "data.txt"
    other.write_bytes(zipped.read_bytes())
    np.testing.assert_array_equal(read_table(other)[0], X)
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(gzip.compress(b"a,b\n1,2\n3,4\n5,x\n"))
    with pytest.raises(TableError, match="line 4, column 'b' has 'x'"):
        read_table(bad)
    (tmp_path / "fake.csv.gz").write_text("a,b\n1,2\n")
    with pytest.raises(TableError, match="not gzip-compressed"):
        read_table(tmp_path / "fake.csv.gz")
    (tmp_path / "cut.csv.gz").write_bytes(zipped.read_bytes()[:-20])
    with pytest.raises(TableError, match="not a readable gzip file"):
        read_table(tmp_path / "cut.csv.gz")


def test_decimal_commas_with_semicolons_are_guessed_and_exact(tmp_path):
    X = np.random.default_rng(2).normal(size=(200, 2)) * [1e-5, 1e5]
    rows = [";".join(repr(v).replace(".", ",") for v in row) for row in X.tolist()]
    with_header = _csv(tmp_path, "u;v\n" + "\n".join(rows) + "\n", "eu.csv")
    Y, names = read_table(with_header)
    np.testing.assert_array_equal(Y, X)
    assert names == ["u", "v"]
    # No header: the first line's commas stand between digits, so ';' separates.
    Y, names = read_table(_csv(tmp_path, "\n".join(rows) + "\n", "plain.csv"))
    np.testing.assert_array_equal(Y, X)
    assert names is None


def test_the_decimal_mark_can_be_given_and_a_wrong_one_is_named(tmp_path):
    # Integers first: the guess sees no decimal comma, and the message says what to do.
    path = _csv(tmp_path, "a;b\n1;2\n3;4,5\n")
    with pytest.raises(TableError, match=r"line 3, column 'b' has '4,5'.*--decimal ,"):
        read_table(path, decimal=".")
    assert read_table(path, decimal=",")[0].tolist() == [[1.0, 2.0], [3.0, 4.5]]
    with pytest.raises(TableError, match="also the delimiter"):
        read_table(_csv(tmp_path, "a,b\n1,2\n", "c.csv"), delimiter=",", decimal=",")
    with pytest.raises(TableError, match="must be '.' or ','"):
        read_table(path, decimal=";")
    # A point-decimal ';' file keeps its points.
    assert read_table(_csv(tmp_path, "a;b\n1.5;2\n", "p.csv"))[0].tolist() == [[1.5, 2.0]]


def test_the_index_column_of_dataframe_to_csv_is_skipped(tmp_path):
    pd = pytest.importorskip("pandas")
    X = np.random.default_rng(3).normal(size=(50, 3))
    named = pd.DataFrame(X, columns=["p", "q", "r"], index=np.arange(50) * 7 + 3)
    path = tmp_path / "named.csv"
    named.to_csv(path)
    Y, names = read_table(path)
    np.testing.assert_array_equal(Y, X)
    assert names == ["p", "q", "r"]
    # Indices count the columns after the index; a bad cell names its column.
    assert read_table(path, columns=["0"])[0][:, 0].tolist() == X[:, 0].tolist()
    # Default column names (0, 1, 2) still make the first row a header.
    path = tmp_path / "unnamed.csv"
    pd.DataFrame(X).to_csv(path)
    Y, names = read_table(path)
    np.testing.assert_array_equal(Y, X)
    assert names == ["0", "1", "2"]
    text = path.read_text().splitlines()
    text[5] = text[5].rsplit(",", 1)[0] + ",oops"
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(TableError, match="line 6, column '2' has 'oops'"):
        read_table(path)


def test_a_short_row_is_refused_even_in_columns_not_selected(tmp_path):
    # pandas pads a short row with empty fields; the row's width is checked in the file.
    path = _csv(tmp_path, "x,y,label\n1,2,a\n3,4\n5,6,\n")
    with pytest.raises(TableError, match="line 3: 2 fields where the header has 3"):
        read_table(path, columns=["x", "y"])
    ok = _csv(tmp_path, "x,y,label\n1,2,a\n5,6,\n", "ok.csv")
    assert read_table(ok, columns=["x", "y"])[0].tolist() == [[1.0, 2.0], [5.0, 6.0]]


def test_comment_lines_with_old_mac_line_ends_and_inside_quotes(tmp_path):
    X, names = read_table(_csv(tmp_path, "# c\rx,y\r1,2\r# c\r3,4\r"))
    assert names == ["x", "y"] and X.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    # A '#' line inside a quoted field is part of the field, not a comment.
    path = tmp_path / "q.csv"
    path.write_bytes(b'a,"b\n# not a comment"\n# a comment\n1,2\n')
    X, names = read_table(path)
    assert names == ["a", "b\n# not a comment"] and X.tolist() == [[1.0, 2.0]]
    # A '#' after data on a line is data (an error), never a silent end of the line.
    with pytest.raises(TableError, match="has '2#x'"):
        read_table(_csv(tmp_path, "x,y\n1,2#x\n", "hash.csv"))


def test_a_bad_cell_deep_in_a_large_file_names_its_line(tmp_path):
    X = np.random.default_rng(4).normal(size=(60_000, 4))  # several scan chunks
    path = tmp_path / "big.csv"
    write_table(path, X, ["a", "b", "c", "d"])
    lines = path.read_text().splitlines()
    lines.insert(100, "# a comment line, counted")
    lines[45_000] = lines[45_000].replace(",", ",inf,", 1).rsplit(",", 1)[0]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TableError, match="line 45001, column 'b' has 'inf'"):
        read_table(path)


def test_reading_csv_from_standard_input_gzip_or_not(tmp_path, monkeypatch):
    import gzip

    text = b"x,y\n1.5,2\n3,4\n"
    for data in (text, gzip.compress(text)):
        path = tmp_path / "in.bin"
        path.write_bytes(data)
        with open(path, "rb") as raw, io.TextIOWrapper(raw) as stdin:
            monkeypatch.setattr(sys, "stdin", stdin)
            X, names = read_table("-")
        assert names == ["x", "y"] and X.tolist() == [[1.5, 2.0], [3.0, 4.0]]
    monkeypatch.setattr(sys, "stdin", io.StringIO("1,2\n3,x\n"))
    with pytest.raises(TableError, match="standard input line 2, column '1' has 'x'"):
        read_table("-")
