"""Sphinx configuration: the API reference from the numpydoc docstrings, and the gallery.

Build (from the repository root; ``pip install ".[docs]"`` first)::

    python -m sphinx -W -b html docs docs/_build/html

That runs every example in ``examples/`` for the gallery's pictures (set
``DESTRUCTORS_EXAMPLE_FAST=1`` for the reduced run). ``-D plot_gallery=0``
builds the gallery pages without running the examples, as CI does.
"""

import os
import re
import sys
import tempfile
from pathlib import Path

from sphinx.util import logging

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # document this checkout, not an installed copy

import destructors  # noqa: E402

project = "destructors"
author = "the destructors developers"
copyright = "the destructors developers"
release = version = destructors.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "images", "auto_examples/*.ipynb", "auto_examples/*.py"]
html_theme = "alabaster"
html_static_path = []
html_theme_options = {"description": "Exact density models by density destruction"}

# API pages: one per public class and function, written by autosummary.
autosummary_generate = True
autodoc_typehints = "none"
# numpydoc renders the sections; the class templates list members through autodoc.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# The gallery: the examples write their own figures too; keep those out of the tree.
os.environ.setdefault(
    "DESTRUCTORS_EXAMPLE_OUTPUT", os.path.join(tempfile.gettempdir(), "destructors-doc-figures")
)
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "abort_on_example_error": True,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "show_memory": False,
}

# Every public name must be on the API page: a warning (an error under -W) names
# any that is missing, so a new export cannot be left undocumented.
_PUBLIC_MODULES = (
    "destructors.information",
    "destructors.progress",
    "destructors.plotting",
    "destructors.persistence",
    "destructors.io",
    "destructors.discrete",
    "destructors.registry",
    "destructors.utils",
)


def _check_api_page(app):
    text = (Path(app.srcdir) / "api.rst").read_text()
    listed = set(re.findall(r"^\s+([A-Za-z_][\w.]*)\s*$", text, flags=re.MULTILINE))
    modules = set(re.findall(r"^\.\. (?:automodule|currentmodule):: ([\w.]+)", text, re.M))
    log = logging.getLogger(__name__)
    for name in destructors.__all__:
        if name not in listed:
            log.warning(f"destructors.{name} is public but not listed in docs/api.rst")
    for module in _PUBLIC_MODULES:
        if module not in modules:
            log.warning(f"{module} is not documented in docs/api.rst")


# Shapes such as "ndarray of shape (n_components_, n_features)" name fitted
# attributes; in reStructuredText a word ending in "_" is a link, so escape it.
_SHAPE = re.compile(r"of shape \([^)]*\)")


def _escape_shapes(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        lines[i] = _SHAPE.sub(lambda m: re.sub(r"(\w)_(?=[,)\s])", r"\1\\_", m[0]), line)


def setup(app):
    app.connect("builder-inited", _check_api_page)
    app.connect("autodoc-process-docstring", _escape_shapes)
