"""Sphinx configuration of the globus-compute documentation site.

Build it with ``tox -e docs`` or, in a venv with the ``docs`` extra installed::

    sphinx-build -W --keep-going -b html docs docs/_build/html

The guides are MyST Markdown; the API reference is autodoc over the docstrings (Google style,
read by napoleon). Every code block of the guides is also run by ``tests/docs``.
"""

from __future__ import annotations

from globus_compute import __version__

project = "globus-compute"
author = "the globus-compute developers"
copyright = "the globus-compute developers, Apache-2.0"
version = release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "README.md"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# Signatures show the hints as written (``from __future__ import annotations``), descriptions
# repeat them next to each argument.
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

html_theme = "furo"
html_title = f"globus-compute {release}"
