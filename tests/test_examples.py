"""Run every gallery example at reduced size and check its figures.

Each ``examples/plot_*.py`` reads ``DESTRUCTORS_EXAMPLE_FAST=1`` (smaller
data) and ``DESTRUCTORS_EXAMPLE_OUTPUT`` (where figures go). The examples
run in a fresh interpreter with the non-interactive Agg backend.
"""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("plot_*.py"))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _figures(path):
    """File names the example saves, read from its ``savefig`` calls."""
    return re.findall(r'savefig\(\s*OUTPUT\s*/\s*"([^"]+\.png)"', path.read_text())


def test_examples_exist():
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_is_in_gallery_form(path):
    source = path.read_text()
    docstring = ast.get_docstring(ast.parse(source))
    assert docstring, "an example starts with a docstring"
    title, underline = docstring.splitlines()[:2]
    assert title and set(underline) == {"="} and len(underline) >= len(title)
    assert "# %%" in source
    assert _figures(path), "an example saves its figures under OUTPUT"


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_and_writes_its_figures(path, tmp_path):
    pytest.importorskip("matplotlib")
    output = tmp_path / "figures"
    env = {
        **os.environ,
        "DESTRUCTORS_EXAMPLE_FAST": "1",
        "DESTRUCTORS_EXAMPLE_OUTPUT": str(output),
        "MPLBACKEND": "Agg",
    }
    result = subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for name in _figures(path):
        figure = output / name
        assert figure.is_file(), f"{name} was not written"
        assert figure.read_bytes()[:8] == PNG_SIGNATURE
        assert figure.stat().st_size > 5_000, f"{name} is nearly empty"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures"]  # nothing else


def test_readme_gallery_images_are_committed_and_small():
    root = Path(__file__).resolve().parent.parent
    images = re.findall(r"\]\((docs/images/[^)]+\.png)\)", (root / "README.md").read_text())
    assert len(images) >= 5
    for image in images:
        path = root / image
        assert path.is_file(), f"README shows {image}, which does not exist"
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        assert 5_000 < path.stat().st_size < 150_000, f"{image} should be a small PNG"
