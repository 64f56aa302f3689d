"""Tests of the ``destructors`` command line (``destructors.cli``)."""

import csv
import io
import os
import re
import subprocess
import sys
from importlib.metadata import entry_points

import joblib
import numpy as np
import pytest

from destructors import RBIG
from destructors.cli import main
from destructors.persistence import load_model

FIT_OPTIONS = ["--max-layers", "4", "--seed", "0", "-q"]


def _data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return np.column_stack([x, x**2 + 0.3 * rng.normal(size=n)])


def _write_csv(path, X, header=("x", "y"), extra=True):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow([*header, "label"] if extra else header)
        for i, row in enumerate(X.tolist()):
            writer.writerow([*row, f"c{i % 3}"] if extra else row)
    return str(path)


def _read_csv(path_or_text, from_text=False):
    text = path_or_text if from_text else open(path_or_text).read()
    rows = list(csv.reader(text.splitlines()))
    return rows[0], np.array(rows[1:], dtype=float)


def _run(argv, capsys):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A CSV with a header and a label column, the same data as .npy, a model."""
    folder = tmp_path_factory.mktemp("cli")
    X = _data()
    data_csv = _write_csv(folder / "data.csv", X)
    data_npy = str(folder / "data.npy")
    np.save(data_npy, X)
    model = str(folder / "model.destructor")
    assert main(["fit", data_csv, "--columns", "x,y", *FIT_OPTIONS, "-o", model]) == 0
    return {"X": X, "csv": data_csv, "npy": data_npy, "model": model, "dir": folder}


def _model(files):
    return load_model(files["model"]).model


# -- entry points ---------------------------------------------------------------


def test_console_script_entry_point():
    scripts = entry_points(group="console_scripts")
    (script,) = [ep for ep in scripts if ep.name == "destructors"]
    assert script.value == "destructors.cli:main"


def test_python_dash_m_help_shows_examples():
    result = subprocess.run(
        [sys.executable, "-m", "destructors", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    for command in ("demo", "fit", "score", "transform", "inverse-transform", "sample"):
        assert command in result.stdout
    assert "examples:" in result.stdout


def test_help_imports_neither_numba_nor_scikit_learn():
    # ``destructors --help`` must answer fast: the heavy modules load only in
    # the commands that need them (fit's options come from RBIG when fit runs).
    code = (
        "import runpy, sys\n"
        "sys.argv = ['destructors', '--help']\n"
        "try:\n"
        "    runpy.run_module('destructors', run_name='__main__', alter_sys=True)\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        "heavy = {'numba', 'sklearn', 'scipy', 'pandas'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "inverse-transform" in result.stdout
    assert result.stderr.strip() == "[]"


@pytest.mark.parametrize(
    "command", ["demo", "fit", "score", "transform", "inverse-transform", "sample", "info"]
)
def test_every_command_has_help_with_an_example(command, capsys):
    status, out, _ = _run([command, "--help"], capsys)
    assert status == 0
    assert "example" in out


def test_usage_error_returns_2(capsys):
    status, _, err = _run(["sample"], capsys)
    assert status == 2
    assert "required" in err


# -- demo -------------------------------------------------------------------------


def test_demo_reports_and_draws(tmp_path, capsys):
    png = tmp_path / "pictures" / "demo.png"
    status, out, err = _run(["demo", "-o", png], capsys)
    assert status == 0, err
    assert "held-out log-likelihood" in out
    assert "layers:" in out
    assert "fit time:" in out
    assert f"picture: {png}" in out
    assert png.stat().st_size > 20_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_without_matplotlib_prints_a_note(tmp_path, capsys, monkeypatch):
    # A None entry in sys.modules makes ``import matplotlib`` raise ImportError.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    png = tmp_path / "demo.png"
    status, out, _ = _run(["demo", "-o", png], capsys)
    assert status == 0
    assert "held-out log-likelihood" in out
    assert "matplotlib is not installed" in out
    assert not png.exists()


# -- fit --------------------------------------------------------------------------


def test_fit_writes_a_loadable_model_and_a_summary(files, tmp_path, capsys):
    path = tmp_path / "m.destructor"
    status, out, _ = _run(
        ["fit", files["csv"], "--columns", "x,y", "--max-layers", "3", "-o", path],
        capsys,
    )
    assert status == 0
    payload = load_model(path)
    model = payload.model
    assert isinstance(model, RBIG)
    assert payload.columns == ["x", "y"]
    assert payload.format_version == 1
    assert model.n_features_in_ == 2
    assert model.n_layers_ <= 3
    assert model.verbose == 0
    assert "layers:" in out and "fit time:" in out and str(path) in out


def test_fit_passes_model_options(files, tmp_path, capsys):
    path = tmp_path / "m.destructor"
    argv = [
        "fit", files["npy"], "-o", path, "-q", "--rotation", "pca", "--n-knots", "15",
        "--max-layers", "2", "--no-early-stopping", "--tol", "none", "--seed", "3",
        "--param", "n_iter_no_change=7", "--subsample", "400",
    ]  # fmt: skip
    status, out, err = _run(argv, capsys)
    assert status == 0, err
    assert out == "" and err == ""
    params = load_model(path).model.get_params()
    assert params["rotation"] == "pca"
    assert params["n_knots"] == 15
    assert params["max_layers"] == 2
    assert params["early_stopping"] is False
    assert params["tol"] is None
    assert params["random_state"] == 3
    assert params["n_iter_no_change"] == 7
    assert params["subsample"] == 400


@pytest.mark.skipif("smoothing" not in RBIG().get_params(), reason="no smoothing parameter")
def test_fit_passes_smoothing(files, tmp_path, capsys):
    path = tmp_path / "m.destructor"
    argv = ["fit", files["npy"], "-o", path, "--smoothing", "0", *FIT_OPTIONS]
    assert _run(argv, capsys)[0] == 0
    assert load_model(path).model.smoothing == 0.0


def test_fit_is_reproducible_with_seed(files, tmp_path, capsys):
    paths = [tmp_path / "a.destructor", tmp_path / "b.destructor"]
    for path in paths:
        assert _run(["fit", files["npy"], *FIT_OPTIONS, "-o", path], capsys)[0] == 0
    a, b = (load_model(p).model for p in paths)
    np.testing.assert_array_equal(a.score_samples(files["X"]), b.score_samples(files["X"]))


def test_fit_progress_goes_to_stderr(files, tmp_path, capsys):
    path = tmp_path / "m.destructor"
    argv = ["fit", files["npy"], "--max-layers", "3", "--progress", "-o", path]
    status, out, err = _run(argv, capsys)
    assert status == 0
    assert "layer 1" in err and "layer" not in out.replace("layers:", "")
    # stderr is not a terminal here: without --progress the fit is silent.
    status, out, err = _run(["fit", files["npy"], "--max-layers", "3", "-o", path], capsys)
    assert status == 0 and "layer 1" not in err  # (a max_layers warning may remain)


def test_fit_warnings_are_one_line(tmp_path, capsys):
    integers = tmp_path / "counts.csv"
    rng = np.random.default_rng(0)
    # Ties within a feature warn (duplicated rows would be refused).
    columns = [rng.poisson(3.0, size=300), rng.normal(size=300)]
    np.savetxt(integers, np.column_stack(columns), delimiter=",")
    status, _, err = _run(["fit", integers, *FIT_OPTIONS, "-o", tmp_path / "m.destructor"], capsys)
    assert status == 0
    lines = err.splitlines()
    assert lines and all(line.startswith("destructors: warning: ") for line in lines)
    assert "dequantiz" in err


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_fit_progress_on_a_terminal_overwrites_one_line(files, tmp_path, monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    # A fixed depth (no stopping rule), so no warning shares the terminal.
    argv = ["fit", files["npy"], "--max-layers", "3", "--no-early-stopping", "--tol", "none",
            "-o", str(tmp_path / "m.destructor")]
    assert main(argv) == 0
    shown = terminal.getvalue()
    assert "\rlayer 1" in shown.replace("\033[K", "") and "layer 3" in shown
    assert shown.endswith("\n") and shown.count("\n") == 1  # one line, rewritten
    quiet = _Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    assert main([*argv, "--quiet"]) == 0
    assert quiet.getvalue() == ""


def test_fit_reads_csv_without_header_and_from_stdin(files, tmp_path, capsys, monkeypatch):
    X = files["X"][:200]
    plain = _write_csv(tmp_path / "plain.csv", X, header=None, extra=False)
    path = tmp_path / "m.destructor"
    assert _run(["fit", plain, *FIT_OPTIONS, "-o", path], capsys)[0] == 0
    assert load_model(path).columns is None
    monkeypatch.setattr(sys, "stdin", open(plain))
    assert _run(["fit", "-", *FIT_OPTIONS, "-o", tmp_path / "s.destructor"], capsys)[0] == 0
    a, b = (load_model(p).model for p in (path, tmp_path / "s.destructor"))
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))


def test_fit_reads_semicolon_and_tab_separated_files(tmp_path, capsys):
    X = _data(100)
    for delimiter in (";", "\t"):
        path = tmp_path / "data.txt"
        lines = [delimiter.join(["a", "b"])] + [delimiter.join(map(repr, r)) for r in X.tolist()]
        path.write_text("\n".join(lines) + "\n")
        out = tmp_path / "m.destructor"
        assert _run(["fit", path, *FIT_OPTIONS, "-o", out], capsys)[0] == 0
        assert load_model(out).columns == ["a", "b"]


def test_gzip_decimal_comma_and_index_column_files_give_the_same_model(files, tmp_path, capsys):
    import gzip

    pd = pytest.importorskip("pandas")
    X = files["X"]
    frame = pd.DataFrame(X, columns=["x", "y"])
    variants = {}
    variants["gzip"] = tmp_path / "data.csv.gz"
    variants["gzip"].write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    variants["decimal comma"] = tmp_path / "eu.csv"
    frame.to_csv(variants["decimal comma"], sep=";", decimal=",", index=False)
    variants["index column"] = tmp_path / "indexed.csv"
    frame.to_csv(variants["index column"])  # an unnamed first column: the index
    expected = _model(files).score_samples(X)
    models = {}
    for name, path in variants.items():
        model = tmp_path / f"{name.replace(' ', '-')}.destructor"
        status, _, err = _run(["fit", path, *FIT_OPTIONS, "-o", model], capsys)
        assert status == 0, (name, err)
        assert load_model(model).columns == ["x", "y"], name
        models[name] = load_model(model).model
        status, out, err = _run(["score", files["model"], path], capsys)
        assert status == 0, (name, err)
        np.testing.assert_array_equal(_read_csv(out, from_text=True)[1][:, 0], expected)
    reference = models.pop("gzip").score_samples(X)
    for model in models.values():  # the same numbers in: the same model out
        np.testing.assert_array_equal(model.score_samples(X), reference)


def test_the_decimal_option(tmp_path, capsys):
    path = tmp_path / "eu.csv"
    # The guess reads the first 50 rows: integers only there, so '.' is assumed.
    rows = [f"{i};{i % 7}" for i in range(60)] + [f"{i};{i},25" for i in range(30)]
    path.write_text("a;b\n" + "\n".join(rows) + "\n")
    model = tmp_path / "m.destructor"
    status, _, err = _run(["fit", path, *FIT_OPTIONS, "-o", model], capsys)
    assert status == 1 and "line 62, column 'b' has '0,25'" in err and "--decimal ," in err
    assert not model.exists()
    status, _, err = _run(["fit", path, "--decimal", ",", *FIT_OPTIONS, "-o", model], capsys)
    assert status == 0, err
    status, _, err = _run(["fit", path, "--decimal", ";", "-o", model], capsys)
    assert status == 2 and "--decimal" in err


# -- score, transform, inverse-transform, sample ------------------------------------


def test_score_matches_score_samples(files, capsys):
    status, out, _ = _run(["score", files["model"], files["csv"]], capsys)
    assert status == 0
    header, values = _read_csv(out, from_text=True)
    assert header == ["log_likelihood"]
    expected = _model(files).score_samples(files["X"])
    np.testing.assert_array_equal(values[:, 0], expected)  # exact text round trip


def test_score_to_npy_and_csv_files(files, tmp_path, capsys):
    expected = _model(files).score_samples(files["X"])
    npy = tmp_path / "scores.npy"
    status, out, _ = _run(["score", files["model"], files["npy"], "-o", npy], capsys)
    assert status == 0 and str(npy) in out
    np.testing.assert_array_equal(np.load(npy), expected)
    plain = tmp_path / "scores.csv"
    argv = ["score", files["model"], files["npy"], "-o", plain, "--no-header", "-q"]
    assert _run(argv, capsys) == (0, "", "")
    np.testing.assert_array_equal(np.loadtxt(plain), expected)


def test_score_picks_named_columns_in_any_order(files, tmp_path, capsys):
    X = files["X"][:50]
    shuffled = tmp_path / "shuffled.csv"
    with open(shuffled, "w") as f:
        f.write("label,y,extra,x\n")
        for x, y in X.tolist():
            f.write(f"a,{y!r},1,{x!r}\n")
    status, out, _ = _run(["score", files["model"], shuffled], capsys)
    assert status == 0
    np.testing.assert_array_equal(
        _read_csv(out, from_text=True)[1][:, 0], _model(files).score_samples(X)
    )


def test_transform_and_inverse_transform_round_trip(files, tmp_path, capsys):
    model = _model(files)
    latent = tmp_path / "latent.csv"
    argv = ["transform", files["model"], files["csv"], "--log-det", "-o", latent]
    assert _run(argv, capsys)[0] == 0
    header, values = _read_csv(latent)
    assert header == ["z0", "z1", "log_det"]
    Z, log_det = model.transform_log_det(files["X"])
    np.testing.assert_array_equal(values[:, :2], Z)
    np.testing.assert_array_equal(values[:, 2], log_det)

    # The latent columns are read by name: log_det is left out without --columns.
    back = tmp_path / "back.npy"
    assert _run(["inverse-transform", files["model"], latent, "-o", back], capsys)[0] == 0
    np.testing.assert_allclose(np.load(back), files["X"], atol=1e-8)
    # Any column order and extra columns; --columns still chooses by hand.
    shuffled = tmp_path / "shuffled.csv"
    with open(shuffled, "w") as f:
        f.write("log_det,z1,note,z0\n")
        rows = zip(Z.tolist(), log_det.tolist(), strict=True)
        f.writelines(f"{d!r},{z1!r},7,{z0!r}\n" for (z0, z1), d in rows)
    again = tmp_path / "again.npy"
    status, _, err = _run(["inverse-transform", files["model"], shuffled, "-o", again], capsys)
    assert status == 0, err
    np.testing.assert_array_equal(np.load(again), np.load(back))
    argv = ["inverse-transform", files["model"], latent, "--columns", "z0,z1", "-o", again]
    assert _run(argv, capsys)[0] == 0
    np.testing.assert_array_equal(np.load(again), np.load(back))
    # Without a header nothing names the columns: the width is refused in one line.
    plain = tmp_path / "plain.csv"
    argv = ["transform", files["model"], files["csv"], "--log-det", "--no-header", "-o", plain]
    assert _run(argv, capsys)[0] == 0
    status, _, err = _run(["inverse-transform", files["model"], plain], capsys)
    assert status == 1 and "3 columns, but the model expects 2" in err


def test_sample_count_names_and_seed(files, tmp_path, capsys):
    paths = [tmp_path / f"s{i}.csv" for i in range(3)]
    for path, seed in zip(paths, (5, 5, 6), strict=True):
        argv = ["sample", files["model"], "-n", "123", "--seed", seed, "-o", path]
        assert _run(argv, capsys)[0] == 0
    (h0, a), (_, b), (_, c) = (_read_csv(p) for p in paths)
    assert h0 == ["x", "y"]
    assert a.shape == (123, 2)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_array_equal(a, _model(files).sample(123, random_state=5))


# -- user errors: one line on stderr, status 1, nothing written ----------------------


def _error_cases(files, tmp):
    X = files["X"][:20]
    text = tmp / "text.csv"
    text.write_text("x,y\n1,2\n3,abc\n")
    nan = tmp / "nan.csv"
    nan.write_text("x,y\n1,2\nnan,4\n")
    empty_cell = tmp / "empty_cell.csv"
    empty_cell.write_text("x,y\n1,2\n3,\n")
    ragged = tmp / "ragged.csv"
    ragged.write_text("x,y\n1,2\n3,4,5\n")
    empty = tmp / "empty.csv"
    empty.write_text("\n")
    inf_npy = tmp / "inf.npy"
    np.save(inf_npy, np.array([[1.0, np.inf]]))
    three = tmp / "three.npy"
    np.save(three, np.column_stack([X, X[:, 0]]))
    garbage = tmp / "garbage.joblib"
    garbage.write_bytes(b"not a model")
    not_model = tmp / "not_model.joblib"
    joblib.dump({"a": 1}, not_model)
    binary = tmp / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    m, out, model_out = files["model"], str(tmp / "out.csv"), tmp / "m.destructor"
    return {
        "missing input": (["score", m, tmp / "missing.csv", "-o", out], "no such file"),
        "missing model": (["score", tmp / "nope.joblib", files["csv"], "-o", out], "no such file"),
        "non-numeric": (["score", m, text, "-o", out], "line 3, column 'y' has 'abc'"),
        "nan": (["score", m, nan, "-o", out], "line 3, column 'x' has 'nan'"),
        "empty cell": (["transform", m, empty_cell, "-o", out], "column 'y' is empty"),
        "ragged": (["score", m, ragged, "-o", out], "line 3: 3 fields"),
        "empty file": (["score", m, empty, "-o", out], "no data rows"),
        "inf in npy": (["score", m, inf_npy, "-o", out], "row 0, column 1 is inf"),
        "wrong width": (["score", m, three, "-o", out], "3 columns, but the model expects 2"),
        "unknown column": (["score", m, files["csv"], "--columns", "q"], "no column named 'q'"),
        "unreadable model": (["score", garbage, files["csv"], "-o", out], "not a model file"),
        "not a model": (["sample", not_model, "-n", "3", "--trust-pickle", "-o", out],
                        "not a density model"),
        "untrusted pickle": (["sample", not_model, "-n", "3", "-o", out], "--trust-pickle"),
        "binary csv": (["score", m, binary, "-o", out], "not a text CSV file"),
        "output dir": (["sample", m, "-n", "3", "-o", tmp / "no" / "out.csv"], "does not exist"),
        "bad param": (["fit", files["npy"], "--param", "bogus=1", "-o", model_out], "bogus"),
        "bad value": (["fit", files["npy"], "--n-knots", "1", "-o", model_out], "n_knots"),
        "fit nan": (["fit", nan, "-o", model_out], "line 3, column 'x'"),
    }  # fmt: skip


ERROR_CASES = [
    "missing input", "missing model", "non-numeric", "nan", "empty cell", "ragged",
    "empty file", "inf in npy", "wrong width", "unknown column", "unreadable model",
    "not a model", "untrusted pickle", "binary csv", "output dir", "bad param", "bad value",
    "fit nan",
]  # fmt: skip


@pytest.mark.parametrize("case", ERROR_CASES)
def test_user_errors_print_one_line_and_write_nothing(case, files, tmp_path, capsys):
    argv, message = _error_cases(files, tmp_path)[case]
    before = set(os.listdir(tmp_path))
    status, out, err = _run(argv, capsys)
    assert status == 1
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("destructors: error: ")
    assert message in err
    assert "Traceback" not in err
    assert set(os.listdir(tmp_path)) == before  # no output, no temporary file


def test_failed_run_keeps_an_existing_output_file(files, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    out.write_text("previous\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,oops\n")
    assert _run(["score", files["model"], bad, "-o", out], capsys)[0] == 1
    assert out.read_text() == "previous\n"


def test_error_in_a_real_process_has_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "destructors", "fit", str(tmp_path / "x.csv"), "-o",
         str(tmp_path / "m.destructor")],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == f"destructors: error: {tmp_path / 'x.csv'}: no such file.\n"
    assert not (tmp_path / "m.destructor").exists()


def test_info_reports_total_correlation_and_entropy_near_the_truth(tmp_path, capsys):
    rng = np.random.default_rng(3)
    rho = 0.8
    X = rng.multivariate_normal([0, 0, 0], [[1, rho, 0], [rho, 1, 0], [0, 0, 1]], size=5000)
    path = tmp_path / "gauss.csv"
    np.savetxt(path, X * [1.0, 10.0, 0.1], delimiter=",", header="a,b,c", comments="")
    status, out, _ = _run(["info", str(path)], capsys)
    assert status == 0
    values = {
        line.split(":")[0]: float(line.split(":")[1].split()[0])
        for line in out.splitlines()
        if ":" in line
    }
    tc_true = -0.5 * np.log(1 - rho**2)
    h_true = 1.5 * np.log(2 * np.pi * np.e) + 0.5 * np.log(1 - rho**2) + np.log(10.0 * 0.1)
    assert abs(values["total correlation"] - tc_true) < 0.05 * tc_true
    assert abs(values["joint entropy"] - h_true) < 0.05
    # Bits are nats / log(2), and a column selection is honoured.
    status, out, _ = _run(["info", str(path), "--columns", "a,c", "--bits"], capsys)
    assert status == 0 and "bits" in out
    tc_bits = float(out.split("total correlation:")[1].split()[0])
    assert abs(tc_bits) < 0.02


def test_info_rejects_non_numeric_data_in_one_line(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("x,y\n1,2\n3,oops\n" + "".join(f"{i},{i * i}\n" for i in range(30)))
    status, out, err = _run(["info", str(path)], capsys)
    assert status == 1 and out == ""
    assert err.count("\n") == 1 and "oops" in err


# -- a layer registered outside the library (tests/example_layers.py) -------------


def test_fit_and_score_with_a_rotation_registered_outside_the_library(tmp_path, capsys):
    from example_layers import ExampleHouseholderRotation, registered_examples

    X = _data(400, seed=4)
    data = _write_csv(tmp_path / "data.csv", X)
    path = tmp_path / "m.destructor"
    with registered_examples():  # the registry is restored after the block
        status, _, err = _run(
            ["fit", data, "--columns", "x,y", "--rotation", "example-householder",
             *FIT_OPTIONS, "-o", path],
            capsys,
        )  # fmt: skip
        assert status == 0, err
        model = _model({"model": path})
        assert model.rotation == "example-householder"
        assert all(isinstance(layer.layers_[1], ExampleHouseholderRotation)
                   for layer in model.layers_)
        status, out, err = _run(["score", path, data], capsys)
    assert status == 0, err
    header, values = _read_csv(out, from_text=True)
    assert header == ["log_likelihood"]
    np.testing.assert_array_equal(values[:, 0], model.score_samples(X))


# -- lost or overwritten files -----------------------------------------------------


def _one_error_line(err):
    lines = [line for line in err.splitlines() if not line.startswith("destructors: warning: ")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_an_output_that_is_an_input_is_refused(files, tmp_path, capsys):
    data = tmp_path / "data.csv"
    data.write_bytes(open(files["csv"], "rb").read())
    before = data.read_bytes()
    link = tmp_path / "link.csv"
    link.symlink_to(data)
    hard = tmp_path / "hard.csv"
    os.link(data, hard)
    model_link = tmp_path / "model-link.csv"
    model_link.symlink_to(files["model"])
    for output in (data, link, hard):
        status, out, err = _run(["score", files["model"], data, "-o", output], capsys)
        assert status == 1 and out == ""
        assert "is an input" in _one_error_line(err)
    status, _, err = _run(["sample", files["model"], "-n", "3", "-o", model_link], capsys)
    assert status == 1 and "is an input" in _one_error_line(err)
    status, _, err = _run(["fit", data, *FIT_OPTIONS, "-o", hard], capsys)
    assert status == 1 and "is an input" in _one_error_line(err)
    assert data.read_bytes() == before
    assert link.is_symlink() and os.path.samefile(hard, data)
    assert sorted(os.listdir(tmp_path)) == ["data.csv", "hard.csv", "link.csv", "model-link.csv"]


def test_an_output_symlink_is_written_through(files, tmp_path, capsys):
    target = tmp_path / "scores.csv"
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    status, _, _ = _run(["score", files["model"], files["npy"], "-o", link, "-q"], capsys)
    assert status == 0
    assert link.is_symlink()
    header, values = _read_csv(target)
    assert header == ["log_likelihood"] and len(values) == len(files["X"])


def test_a_failing_fit_keeps_the_previous_model(files, tmp_path, capsys, monkeypatch):
    path = tmp_path / "model.destructor"
    assert _run(["fit", files["npy"], *FIT_OPTIONS, "-o", path], capsys)[0] == 0
    before = path.read_bytes()

    def overflow(self, X, y=None):
        raise ValueError("score_samples produced non-finite values (overflow).")

    monkeypatch.setattr(RBIG, "score", overflow)
    status, out, err = _run(["fit", files["npy"], *FIT_OPTIONS, "-o", path], capsys)
    assert status == 1 and out == ""
    assert "overflow" in _one_error_line(err)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.destructor"]  # no temporary file either


def test_a_headerless_csv_with_a_missing_value_in_its_first_row_is_refused(tmp_path, capsys):
    for marker in ("n/a", ""):
        path = tmp_path / "plain.csv"
        rows = [f"1.5,{marker}"] + [f"{i},{i * 0.5}" for i in range(30)]
        path.write_text("\n".join(rows) + "\n")
        status, _, err = _run(["fit", path, *FIT_OPTIONS, "-o", tmp_path / "m.destructor"],
                              capsys)  # fmt: skip
        assert status == 1
        assert "line 1, column '1'" in _one_error_line(err)
        assert not (tmp_path / "m.destructor").exists()


# -- errors checked before the work, one line ---------------------------------------


def _no_fit(monkeypatch):
    def refuse(self, X, y=None):
        raise AssertionError("the fit ran before the error was found")

    monkeypatch.setattr(RBIG, "fit", refuse)


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["fit", "{npy}", "-o", ""], 1, "empty file name"),
        (["fit", "{npy}", "-o", "{dir}/nowhere/m.destructor"], 1, "does not exist"),
        (["fit", "{npy}", "-o", "{npy}/m.destructor"], 1, "does not exist"),
        (["fit", "{npy}", "-o", "{dir}/new/"], 1, "names a directory"),
        (["fit", "{npy}", "-o", "{dir}/" + "m" * 300], 1, "longer than"),
        (["fit", "{npy}", "--tol", "abc", "-o", "{dir}/m.destructor"], 2, "--tol"),
        (["fit", "{npy}", "--n-knots", "x", "-o", "{dir}/m.destructor"], 2, "--n-knots"),
        (["fit", "{npy}", "--max-layers", "0", "-o", "{dir}/m.destructor"], 1, "--max-layers 0"),
        (["fit", "{npy}", "--param", "tol=abc", "-o", "{dir}/m.destructor"], 1, "tol=abc"),
        (["fit", "{npy}", "--param", "x", "-o", "{dir}/m.destructor"], 1, "NAME=VALUE"),
        (["fit", "{npy}", "--rotation", "pca", "--param", "rotation=ica", "-o",
          "{dir}/m.destructor"], 1, "twice"),
        (["fit", "{csv}", "--delimiter", "ab", "-o", "{dir}/m.destructor"], 2, "delimiter"),
        (["fit", "{csv}", "--rotation", "nope", "-o", "{dir}/m.destructor"], 2, "--rotation"),
        (["sample", "{model}", "-n", str(10**12)], 1, "memory"),
        (["sample", "{model}", "-n", "10**12"], 2, "-n"),
    ],
)  # fmt: skip
def test_errors_are_found_before_the_work(argv, status, message, files, capsys, monkeypatch):
    _no_fit(monkeypatch)
    argv = [a.format(**{k: files[k] for k in ("npy", "csv", "model")}, dir=files["dir"])
            for a in argv]  # fmt: skip
    before = set(os.listdir(files["dir"]))
    got, out, err = _run(argv, capsys)
    assert got == status and out == ""
    line = _one_error_line(err)
    assert message in line
    assert "_tol" not in line and "tmp" not in line.split("error:")[1].replace(
        str(files["dir"]), ""
    )
    assert set(os.listdir(files["dir"])) == before


def test_a_multi_line_quoted_field_gives_a_line_and_column(tmp_path, capsys):
    path = tmp_path / "quoted.csv"
    path.write_text('x,y\n1,2\n"3\n4",5\n6,7\n')
    status, _, err = _run(["fit", path, *FIT_OPTIONS, "-o", tmp_path / "m.destructor"], capsys)
    assert status == 1
    line = _one_error_line(err)
    assert "line 3, column 'x'" in line and "zip()" not in line


def test_quiet_wins_over_verbose(files, tmp_path, capsys):
    path = tmp_path / "m.destructor"
    argv = ["fit", files["npy"], "--max-layers", "3", "--no-early-stopping", "--tol", "none",
            "--param", "verbose=1", "-o", path]  # fmt: skip
    assert _run([*argv, "-q"], capsys) == (0, "", "")
    assert load_model(path).model.verbose == 1  # kept as asked, only not printed
    status, out, err = _run(argv, capsys)  # without -q verbose shows progress, on stderr
    assert status == 0 and "layer 1" in err and "layer 1" not in out


# -- model files ---------------------------------------------------------------------


def test_fit_writes_a_pickle_only_when_the_name_says_so(files, tmp_path, capsys):
    pickled = tmp_path / "m.joblib"
    assert _run(["fit", files["npy"], *FIT_OPTIONS, "-o", pickled], capsys)[0] == 0
    payload = joblib.load(pickled)  # the dict layout of version 0.1
    assert payload["format"] == "destructors-model" and isinstance(payload["model"], RBIG)
    status, _, err = _run(["score", pickled, files["npy"]], capsys)
    assert status == 1 and "--trust-pickle" in _one_error_line(err)
    status, out, _ = _run(["score", pickled, files["npy"], "--trust-pickle"], capsys)
    assert status == 0
    np.testing.assert_array_equal(
        _read_csv(out, from_text=True)[1][:, 0], payload["model"].score_samples(files["X"])
    )
    import zipfile

    assert zipfile.is_zipfile(files["model"])


class _Payload:
    """Unpickling this writes a marker file: a stand-in for any code a pickle may run."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("name", ["evil.joblib", "evil.destructor", "evil"])
def test_a_crafted_pickle_is_not_run_without_trust_pickle(name, files, tmp_path, capsys):
    import pickle

    marker = tmp_path / "marker"
    evil = tmp_path / name
    evil.write_bytes(pickle.dumps(_Payload(str(marker))))
    status, out, err = _run(["score", evil, files["csv"]], capsys)
    assert status == 1 and out == ""
    assert err.count("\n") == 1 and "--trust-pickle" in _one_error_line(err)
    assert not marker.exists()
    # With --trust-pickle the file is unpickled: the payload runs (which is why
    # the flag exists), and what it returns is no model.
    status, _, err = _run(["score", evil, files["csv"], "--trust-pickle"], capsys)
    assert status == 1 and marker.exists()
    assert "not a density model" in _one_error_line(err)


def test_a_crafted_pickle_is_not_run_in_a_real_process(files, tmp_path):
    import pickle

    marker = tmp_path / "marker"
    evil = tmp_path / "evil.joblib"
    evil.write_bytes(pickle.dumps(_Payload(str(marker))))
    result = subprocess.run(
        [sys.executable, "-m", "destructors", "score", str(evil), files["csv"]],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "--trust-pickle" in result.stderr
    assert not marker.exists()


# -- fit's options come from RBIG's parameters ----------------------------------------


def test_every_rbig_parameter_has_an_option(capsys):
    status, out, _ = _run(["fit", "--help"], capsys)
    assert status == 0
    for name, default in RBIG().get_params(deep=False).items():
        if name == "verbose":
            continue
        flag = "--seed" if name == "random_state" else "--" + name.replace("_", "-")
        if default is True:
            flag = "--no-" + flag[2:]
        assert flag in out, name
    from destructors.registry import layer_names

    for rotation in layer_names("rotation"):
        assert rotation in out


def test_a_new_rbig_parameter_appears_as_an_option(files, tmp_path, capsys, monkeypatch):
    import numbers

    import destructors
    from destructors._compat import Interval

    class Knobbed(RBIG):
        """RBIG with one more knob.

        Parameters
        ----------
        rotation : str, default="greedy"
            Rotation.
        knob : float in [0, 1], default=0.5
            How far the test knob is turned. More text.
        wild : bool, default=False
            Whether to go wild.
        """

        _parameter_constraints = {
            **RBIG._parameter_constraints,
            "knob": [Interval(numbers.Real, 0, 1, closed="both")],
            "wild": ["boolean"],
        }

        def __init__(self, rotation="greedy", knob=0.5, wild=False, max_layers=500):
            super().__init__(rotation=rotation, max_layers=max_layers)
            self.knob, self.wild = knob, wild

    monkeypatch.setattr(destructors, "RBIG", Knobbed)
    status, out, _ = _run(["fit", "--help"], capsys)
    assert status == 0
    assert "--knob" in out and "how far the test knob is turned (default: 0.5)" in " ".join(
        out.split()
    )
    assert "--wild" in out
    status, _, err = _run(["fit", files["npy"], "--knob", "2", "-o", tmp_path / "m"], capsys)
    assert status == 1 and "--knob 2" in _one_error_line(err)
    status, _, err = _run(["fit", files["npy"], "--knob", "x", "-o", tmp_path / "m"], capsys)
    assert status == 2 and "--knob" in _one_error_line(err)


# -- fuzzing: malformed CSVs and output paths ----------------------------------------

FUZZ_EXAMPLES = int(os.environ.get("DESTRUCTORS_FUZZ_EXAMPLES", "40"))

_FIELDS = [
    "1", "-2.5", "3e-3", "0", "1e999", "-0", "nan", "inf", "", " ", "n/a", "NA", "null",
    "x", "abc", '"', '"1"', '"a\nb"', '"2\n3"', "#", "# c", "1,2", "\t", ";", "1_0",
    "\x00", "é", "0x10", "1.5.2", "--", "True",
]  # fmt: skip
_OUTPUTS = [
    None, "-", "out.csv", "out.npy", "out.destructor", "out.joblib", "", "sub", "sub/",
    "missing/out.csv", "data.csv", "link.csv", "hard.csv", "x" * 300, "out\0.csv",
]  # fmt: skip


def _fuzz_strategies():
    from hypothesis import strategies as st

    field = st.one_of(
        st.sampled_from(_FIELDS),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.text(alphabet="0123456789.eE+-,;\"\t\n x", max_size=6),
    )
    row = st.lists(field, min_size=0, max_size=4)
    table = st.builds(
        lambda rows, delimiter, newline, header: (
            (f"a{delimiter}b{newline}" if header else "")
            + newline.join(delimiter.join(r) for r in rows)
            + newline
        ),
        st.lists(row, min_size=0, max_size=8),
        st.sampled_from([",", ";", "\t"]),
        st.sampled_from(["\n", "\r\n", "\r"]),
        st.booleans(),
    )
    number = st.floats(-1e6, 1e6, allow_nan=False).map(repr)
    valid = st.builds(  # well-formed two-column tables, so that successes are fuzzed too
        lambda rows, header, tail: ("a,b\n" if header else "")
        + "".join(f"{x},{y}\n" for x, y in rows) + tail,
        st.lists(st.tuples(number, number), min_size=3, max_size=12, unique=True),
        st.booleans(),
        st.sampled_from(["", "\n", "# end\n", "1,\n", '"3\n4",5\n', "1,2,3\n"]),
    )
    table = st.one_of(table, valid)
    command = st.sampled_from(["score", "transform", "inverse-transform", "fit"])
    extras = st.lists(
        st.sampled_from([
            ["--input-header", "yes"], ["--input-header", "no"], ["--columns", "0"],
            ["--columns", "a,b"], ["--delimiter", ";"], ["--delimiter", "ab"],
            ["--no-header"], ["-q"], ["--log-det"], ["--trust-pickle"],
        ]),
        max_size=3,
    )  # fmt: skip
    return table, command, st.sampled_from(_OUTPUTS), extras


def _fuzz_test():
    from hypothesis import HealthCheck, given, settings

    table, command, output, extras = _fuzz_strategies()

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        database=None,
    )
    @given(text=table, command=command, output=output, extras=extras)
    def check(files, text, command, output, extras):
        import contextlib
        import tempfile
        import warnings

        with tempfile.TemporaryDirectory() as folder:
            data = os.path.join(folder, "data.csv")
            with open(data, "w", newline="", encoding="utf-8") as f:
                f.write(text)
            os.mkdir(os.path.join(folder, "sub"))
            os.symlink(data, os.path.join(folder, "link.csv"))
            os.link(data, os.path.join(folder, "hard.csv"))
            argv = [command] + ([] if command == "fit" else [files["model"]]) + [data]
            if command == "fit":
                argv += ["--max-layers", "2", "--seed", "0"]
            for extra in extras:
                if extra == ["--log-det"] and command != "transform":
                    continue
                argv += extra
            if output is not None:
                argv += ["-o", output if output in ("", "-") else os.path.join(folder, output)]
            elif command == "fit":
                argv += ["-o", os.path.join(folder, "out.destructor")]
            before = {name: _snapshot(folder, name) for name in os.listdir(folder)}
            out, err = io.StringIO(), io.StringIO()
            with (
                warnings.catch_warnings(),
                contextlib.redirect_stdout(out),
                contextlib.redirect_stderr(err),
            ):
                warnings.simplefilter("default")  # as outside pytest: warnings warn
                status = main(argv)
            err = err.getvalue()
            assert status in (0, 1, 2), (argv, status, err)
            assert "Traceback" not in err
            errors = [x for x in err.splitlines() if not x.startswith("destructors: warning: ")]
            assert len(errors) == (status != 0), (argv, err)
            if errors:
                assert re.match(r"destructors( [a-z-]+)?: error: ", errors[0]), errors
            after = set(os.listdir(folder))
            assert {name: _snapshot(folder, name) for name in before} == before, argv
            assert not [n for n in after if n.startswith(".destructors-")], after
            new = after - set(before)
            if status != 0:
                assert not new, (argv, err, new)
            else:
                assert len(new) <= 1, new
            OUTCOMES[(command, status)] = OUTCOMES.get((command, status), 0) + 1

    return check


OUTCOMES = {}


def _snapshot(folder, name):
    path = os.path.join(folder, name)
    if os.path.islink(path):
        return ("link", os.readlink(path))
    if os.path.isdir(path):
        return ("dir", tuple(sorted(os.listdir(path))))
    with open(path, "rb") as f:
        return ("file", f.read())


def test_fuzz_malformed_csvs_and_output_paths(files):
    pytest.importorskip("hypothesis")
    _fuzz_test()(files)
    assert OUTCOMES  # (the counts show what was tried, per command and status)


def test_info_refuses_rounded_data_and_dequantizes_when_asked(tmp_path, capsys):
    from sklearn.datasets import load_iris

    path = tmp_path / "iris.csv"
    np.savetxt(path, load_iris().data, fmt="%.1f", delimiter=",")
    status, out, err = _run(["info", path], capsys)
    assert status == 1 and "dequantize" in err and err.count("\n") == 1
    status, out, err = _run(["info", path, "--dequantize", "--seed", "1"], capsys)
    assert status == 0, err
    assert "total correlation" in out


def test_fit_to_standard_output_is_refused_before_fitting(files, capsys):
    # A model file is binary: "-o -" is a clear usage error, found by the fuzz
    # test as a traceback (save_model got None for standard output).
    status, out, err = _run(["fit", files["csv"], "-o", "-", "--max-layers", "2"], capsys)
    assert status == 1 and out == ""
    assert err.count("\n") == 1 and "fit writes a model file" in err
    assert "fitted" not in err
