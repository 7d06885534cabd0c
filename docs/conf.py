"""Sphinx configuration of the symkl documentation site.

Build it with ``python -m sphinx -W --keep-going -b html docs docs/_build/html``
(warnings are errors) after ``pip install -e ".[docs]"``; ``-b linkcheck``
checks its links.  Pages are Markdown (MyST), the API reference comes from the
numpydoc docstrings (autodoc + numpydoc), and math is rendered by MathJax,
served from the site itself (``sphinx-mathjax-offline``), so it renders
without a network.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # document this checkout's symkl

from symkl import __version__  # noqa: E402

project = "symkl"
author = "symkl developers"
copyright = "symkl developers"
release = version = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # its import name has dashes
    "numpydoc",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "README.md"]

# MyST: $...$ and $$...$$ math as in the generated derivations, anchors for headings
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# numpydoc: the docstrings' sections; members are listed by the pages themselves
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the numpydoc Parameters sections carry the types

html_theme = "alabaster"
html_title = f"symkl {release}"
html_static_path = ["_static"]
html_css_files = ["symkl.css"]

# links: every internal reference must resolve (-W); linkcheck also follows external ones
linkcheck_anchors = True
