"""Renderers: one derivation chain, several formats.

Every renderer is a pure function of a :class:`~symkl.derivation.Derivation`
(and optionally its verification report, or a certificate), so the
same steps feed LaTeX, Markdown and plain text, and output is byte-identical
from run to run.
"""

from __future__ import annotations

from typing import Any

from symkl.derivation import Derivation
from symkl.render.latex import derivation_to_latex, standalone_latex
from symkl.render.markdown import derivation_to_markdown
from symkl.render.text import derivation_to_text

__all__ = [
    "FORMATS",
    "derivation_to_latex",
    "derivation_to_markdown",
    "derivation_to_text",
    "render",
    "standalone_latex",
]

FORMATS = ("latex", "markdown", "text")


def render(derivation: Derivation, fmt: str, report: Any = None) -> str:
    """Render ``derivation`` as ``"latex"`` (standalone document), ``"markdown"`` or ``"text"``."""
    if fmt == "latex":
        return standalone_latex(derivation, report)
    if fmt == "markdown":
        return derivation_to_markdown(derivation, report)
    if fmt == "text":
        return derivation_to_text(derivation, report)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
