"""Rendering: LaTeX align*, a standalone document that compiles, Markdown and text."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from symkl.render import derivation_to_latex, render, standalone_latex


def test_align_block_has_one_row_per_step_with_its_reason(univariate):
    block = derivation_to_latex(univariate)
    assert block.startswith("\\begin{align*}") and block.rstrip().endswith("\\end{align*}")
    for step in univariate.steps:
        assert "\\raggedright " + step.rule.split("$")[0].replace("_", "\\_") in block
    assert block.count("&= ") == len(univariate.steps)


def test_report_adds_the_method_per_step(univariate, univariate_report):
    block = derivation_to_latex(univariate, univariate_report)
    assert block.count("proved by") == len(univariate.steps) - 1  # one note per step
    assert "linearity of the integral" in block
    assert "integrals evaluated by SymPy" in block


def test_markdown_uses_display_math(univariate, univariate_report):
    text = render(univariate, "markdown", univariate_report)
    assert text.count("$$") >= 2 * len(univariate.steps)
    assert "**Named terms.**" in text
    assert "\\underbrace" in text


def test_text_lists_every_step(univariate):
    text = render(univariate, "text")
    for index, step in enumerate(univariate.steps, start=1):
        assert f"{index}. [{step.label}]" in text


def test_unknown_format_is_a_clear_error(univariate):
    with pytest.raises(ValueError, match="format must be one of latex, markdown, text; got 'pdf'"):
        render(univariate, "pdf")


def test_standalone_tex_compiles_with_pdflatex(univariate, univariate_report, tmp_path):
    if shutil.which("pdflatex") is None:
        pytest.skip(
            "PDFLATEX IS NOT INSTALLED: the .tex compilation test did not run. "
            "Install texlive-latex-base and texlive-latex-recommended (CI does)."
        )
    source = tmp_path / "univariate.tex"
    source.write_text(standalone_latex(univariate, univariate_report), encoding="utf-8")
    run = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", source.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert (tmp_path / "univariate.pdf").stat().st_size > 10_000
