"""The ``destructors plot`` command: what it draws is the data, the model's samples
and the model's per-layer diagnostics."""

import csv
import os
import re
import subprocess
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402

from destructors import DeepDestructor, PCARotation  # noqa: E402
from destructors.cli import main  # noqa: E402
from destructors.persistence import load_model, save_model  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _run(argv, capsys):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_plot")
    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, size=500)
    X = np.column_stack([x, x + rng.normal(size=500), rng.normal(size=500)])
    data = folder / "data.csv"
    with open(data, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["a", "b", "c"])
        writer.writerows(X.tolist())
    model = folder / "model.destructor"
    fit = ["fit", data, "--max-layers", "6", "--n-iter-no-change", "3", "--seed", "0"]
    assert main([str(a) for a in [*fit, "-q", "-o", model]]) == 0
    return {"X": X, "csv": str(data), "model": str(model), "dir": folder}


@pytest.fixture
def drawn(monkeypatch):
    """The figures the command saves, kept for inspection."""
    figures = []
    save = Figure.savefig

    def keep(self, *args, **kwargs):
        figures.append(self)
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return figures


def _grid(figure, k):
    """The k x k pair plot Axes (drawn first, row by row)."""
    return np.array(figure.axes[: k * k], dtype=object).reshape(k, k)


def test_plot_draws_data_samples_and_diagnostics(files, drawn, capsys, tmp_path):
    out = tmp_path / "model.png"
    status, stdout, _ = _run(["plot", files["model"], files["csv"], "-o", out, "-n", 300,
                              "--seed", 3], capsys)
    assert status == 0
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    assert stdout.strip() == f"plotted 500 rows against 300 samples: {out}"
    (figure,) = drawn
    model = load_model(files["model"]).model
    assert len(figure.axes) == 9 + 2  # the pair plot and the two diagnostics panels
    grid = _grid(figure, 3)
    data_points, sample_points = grid[1, 0].collections  # x: feature a, y: feature b
    np.testing.assert_allclose(data_points.get_offsets(), files["X"][:, [0, 1]], rtol=1e-15)
    samples = model.sample(300, random_state=3)
    np.testing.assert_allclose(sample_points.get_offsets(), samples[:, [0, 1]], rtol=1e-12)
    assert [grid[2, c].get_xlabel() for c in range(3)] == ["a", "b", "c"]
    scores, tc = figure.axes[9:]
    np.testing.assert_array_equal(scores.get_lines()[0].get_ydata(), model.train_score_)
    np.testing.assert_array_equal(scores.get_lines()[1].get_ydata(), model.validation_score_)
    np.testing.assert_array_equal(tc.get_lines()[0].get_ydata(), model.tc_reduction_)


def test_features_by_name_or_index_and_default_sample_count(files, drawn, capsys, tmp_path):
    out = tmp_path / "two.svg"
    status, stdout, _ = _run(
        ["plot", files["model"], files["csv"], "--features", "c,0", "-o", out], capsys
    )
    assert status == 0, stdout
    assert out.read_text().lstrip().startswith("<?xml")
    assert "against 500 samples, 2 of 3 features shown" in stdout
    grid = _grid(drawn[0], 2)
    data_points, _ = grid[1, 0].collections  # x: feature c, y: feature a
    np.testing.assert_allclose(data_points.get_offsets(), files["X"][:, [2, 0]], rtol=1e-15)
    assert [grid[1, c].get_xlabel() for c in range(2)] == ["c", "a"]


def test_model_without_diagnostics_gets_the_pair_plot_alone(files, drawn, capsys, tmp_path):
    X = files["X"]
    built = tmp_path / "built.destructor"
    save_model(built, DeepDestructor.from_layers([PCARotation(whiten=True).fit(X)]),
               ["a", "b", "c"])
    status, stdout, _ = _run(["plot", built, files["csv"], "-o", tmp_path / "p.png"], capsys)
    assert status == 0
    assert "no per-layer diagnostics: the DeepDestructor recorded none" in stdout
    assert len(drawn[0].axes) == 9


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-o", "{dir}/p.jpg"], "name must end in .png, .pdf, .svg"),
        (["-o", "{dir}/p.png", "--features", "a,zz"], "no feature 'zz' (features: a, b, c"),
        (["-o", "{dir}/p.png", "--features", "a,9"], "no feature '9'"),
        (["-o", "{dir}/missing/p.png"], "missing"),
    ],
)
def test_bad_requests_fail_in_one_line_and_write_nothing(files, capsys, tmp_path, extra,
                                                         message):
    argv = ["plot", files["model"], files["csv"], *[e.format(dir=tmp_path) for e in extra]]
    status, stdout, stderr = _run(argv, capsys)
    assert status == 1
    assert stderr.startswith("destructors: error: ") and stderr.count("\n") == 1
    assert message in stderr
    assert list(tmp_path.iterdir()) == []


def test_too_many_features_are_refused(files, capsys, tmp_path):
    many = tmp_path / "wide.npy"
    np.save(many, np.random.default_rng(0).normal(size=(200, 9)))
    model = tmp_path / "wide.destructor"
    assert main([str(a) for a in ["fit", many, "--max-layers", "2", "--no-early-stopping",
                                  "--seed", "0", "-q", "-o", model]]) == 0
    capsys.readouterr()
    status, _, stderr = _run(["plot", model, many, "--features", ",".join(map(str, range(9))),
                              "-o", tmp_path / "p.png"], capsys)
    assert status == 1 and "at most 8 features fit in a pair plot" in stderr
    assert not (tmp_path / "p.png").exists()


def test_without_matplotlib_the_command_says_how_to_install(files, capsys, tmp_path,
                                                            monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    status, _, stderr = _run(["plot", files["model"], files["csv"], "-o", tmp_path / "p.png"],
                             capsys)
    assert status == 1
    assert 'pip install "destructors[plot]"' in stderr
    assert list(tmp_path.iterdir()) == []


def test_python_dash_m_plot(files, tmp_path):
    out = tmp_path / "m.pdf"
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    result = subprocess.run(
        [sys.executable, "-m", "destructors", "plot", files["model"], files["csv"], "-q",
         "-o", str(out)],
        capture_output=True, text=True, timeout=300, check=False, env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert out.read_bytes()[:5] == b"%PDF-"


def test_help_lists_plot(capsys):
    assert main(["--help"]) == 0
    help_text = capsys.readouterr().out
    assert re.search(r"^\s+plot\s+draw data against samples", help_text, re.MULTILINE)
    assert "destructors plot model.destructor data.csv -o model.png" in help_text
    assert main(["plot", "--help"]) == 0
    assert "--features COLS" in capsys.readouterr().out
