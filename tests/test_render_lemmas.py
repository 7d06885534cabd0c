"""The "Assumed lemmas" section: statements and side conditions rendered as formulas.

Side conditions are structured (SymPy relations and the printable predicates of
symkl.proof.predicates): LaTeX in .tex and notebooks, ``$...$`` math in Markdown,
text in ``verify --json``.  The generated documents compile and fit the page.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import sympy as sp

from symkl.proof.lemmas import LEMMAS, lemma_record
from symkl.proof.predicates import (
    DependsOnlyOn,
    FreeOf,
    IsLowerTriangular,
    IsPositiveDefinite,
    Where,
    plain_text,
)
from symkl.render.common import hypotheses_math, side_conditions_markdown

DERIVATIONS = Path(__file__).resolve().parent.parent / "derivations"
#: what a side condition's text must not look like: SymPy's constructor syntax
PYTHONISH = re.compile(r"\b(Eq|Integral|Abs|Contains|Lambda|Function)\(|\*\*|\boo\b")


@pytest.mark.parametrize("name", sorted(LEMMAS))
def test_every_side_condition_is_a_formula(name):
    lemma = LEMMAS[name]
    assert lemma.conditions
    for condition in lemma.conditions:
        assert condition.formulas, (name, condition.text)
        for formula in condition.formulas:
            assert isinstance(formula, sp.Basic)
        for latex in condition.latex():
            assert "$" not in latex and not PYTHONISH.search(latex), (name, latex)
        for text in condition.plain():
            assert not PYTHONISH.search(text), (name, text)


@pytest.mark.parametrize("name", sorted(LEMMAS))
def test_lemma_record_has_structured_side_conditions(name):
    record = lemma_record(name, evidence=False)
    assert len(record["side_conditions"]) == len(record["side_condition_formulas"])
    for entry in record["side_condition_formulas"]:
        assert entry["formulas"] and len(entry["formulas"]) == len(entry["latex"])
        assert isinstance(entry["note"], str)


def test_predicates_print_as_math_and_are_never_decided():
    k = sp.Symbol("k", integer=True, positive=True)
    S, x, mu = sp.MatrixSymbol("S", k, k), sp.MatrixSymbol("x", k, 1), sp.MatrixSymbol("mu", k, 1)
    assert sp.latex(IsPositiveDefinite(S)) == r"S \succ 0"
    assert sp.latex(FreeOf(mu, x)) == r"\partial \mu / \partial x = 0"
    assert str(FreeOf(mu, S, x)) == "mu, S do not depend on x"
    assert sp.latex(IsLowerTriangular(S)).startswith("S_{ij} = 0")
    assert "depends only on" in sp.latex(DependsOnlyOn(sp.Symbol("f_i"), sp.Symbol("x_i")))
    i = sp.Symbol("i")
    shown = Where(sp.Gt(sp.Symbol("d_i"), 0), sp.Contains(i, sp.FiniteSet(1, 2), evaluate=False))
    assert plain_text(shown) == "d_i > 0 for i ∈ {1, 2}"
    with pytest.raises(TypeError, match="never decided"):
        bool(IsPositiveDefinite(S))


def test_side_conditions_markdown_joins_formulas_and_notes():
    text = side_conditions_markdown(((("a > 0", "b = 1"), "why"), (("c",), "")))
    assert text == "$a > 0$, $b = 1$ (why); $c$"


def test_the_kernel_checks_do_not_read_the_formulas():
    """A condition's verdict comes from ``holds``; the formulas are never consulted."""
    import dataclasses

    from symkl.proof.lemmas import _validate

    lemma = LEMMAS["M5"]
    condition = lemma.conditions[0]
    images = _validate(lemma, lemma.example())
    blank = dataclasses.replace(condition, formulas=(), note="")
    assert condition.holds(images) == blank.holds(images) == (True, "")


@pytest.mark.parametrize(("name", "needles"), [
    ("diagonal", [r"$p_{j}{\left(t \right)} \geq 0$",
                  r"$\int_{\mathbb{R}} p_{j}{\left(t \right)}\, dt = 1$",
                  r"depends only on", r"\right|\, dt < \infty$"]),
    ("full", [r"$S \succ 0$", r"$T_{ij} = 0 \ (j > i),\ T_{ii} > 0$",
              r"$d_{j,i} > 0", r"\operatorname{tr}\left(D_{1} D_{2}^{-1} \right)",
              r"u^{\top} D_{1}^{-1} v", r"\sum_{i=1}^{k} \sum_{j=1}^{i - 1} T_{ij}^{2}",
              r"\log{\left(\left|{D_{1}}\right| \right)}"]),
])
def test_rendered_documents_state_side_conditions_as_formulas(name, needles):
    for suffix in (".md", ".tex", ".ipynb"):
        text = (DERIVATIONS / f"{name}{suffix}").read_text(encoding="utf-8")
        if suffix == ".ipynb":
            text = text.replace("\\\\", "\\")
        section = text[text.index("Assumed lemmas"):]
        for needle in needles:
            assert needle in section, (name, suffix, needle)
        # the old prose conditions after "when" are gone
        assert "is a normalised density on" not in section
        assert "symmetric positive definite; " not in section


def test_hypotheses_of_a_matrix_proof_render_as_math():
    text = (DERIVATIONS / "full.tex").read_text(encoding="utf-8")
    assert r"$\Sigma_{p} = L_{p} L_{p}^{\top}$" in text
    assert r"\operatorname{diag}(\sigma_{p,i}^{2})" in text
    assert "Sigma\\_p" not in text
    assert hypotheses_math("algebra, no hypotheses") == "algebra, no hypotheses"


@pytest.mark.parametrize("name", ["diagonal", "full", "std-normal"])
def test_generated_tex_compiles_and_fits_the_page(name, tmp_path):
    if shutil.which("pdflatex") is None:
        pytest.skip("PDFLATEX IS NOT INSTALLED: the .tex compilation test did not run.")
    source = tmp_path / f"{name}.tex"
    source.write_text((DERIVATIONS / f"{name}.tex").read_text(encoding="utf-8"), encoding="utf-8")
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", source.name],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:]
    widths = [float(w) for w in re.findall(r"Overfull \\hbox \((\d+\.?\d*)pt too wide\)",
                                           run.stdout)]
    # a few points of overflow are invisible; a formula running off the page is not
    assert all(width < 20 for width in widths), widths
