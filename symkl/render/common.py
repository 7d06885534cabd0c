"""Pieces shared by the renderers: LaTeX of expressions, method notes, term names."""

from __future__ import annotations

import sympy as sp

from symkl.derivation import Derivation, StepCheck, VerificationReport

__all__ = [
    "TERM_TITLES",
    "expr_latex",
    "expr_latex_lines",
    "fact_latex",
    "fact_note",
    "method_note",
    "step_checks",
    "terms_latex",
    "verdict_line",
]

#: display names of the named terms; the same names are used in the API and docs
TERM_TITLES = {
    "log_det_ratio": "log-determinant ratio",
    "trace_term": "trace term",
    "mean_term": "mean (Mahalanobis) term",
    "dimension_term": "dimension constant",
}


def expr_latex(expr: sp.Expr) -> str:
    """LaTeX of an expression, with the natural-log printed as ``\\log``."""
    return sp.latex(expr, ln_notation=False, order="none")


def expr_latex_lines(expr: sp.Expr, width: int = 110) -> list[str]:
    """LaTeX of an expression broken at top-level ``+``/``-`` into lines of ~``width`` chars.

    Long sums (the middle steps of a derivation) otherwise run off the page;
    the pieces are meant for consecutive ``align*`` rows.
    """
    whole = expr_latex(expr)
    if len(whole) <= width or not isinstance(expr, sp.Add):
        return [whole]
    lines: list[str] = []
    current = ""
    for term in expr.args:
        text = expr_latex(term)
        separator = "" if not current else (" " if text.startswith("-") else " + ")
        if current and len(current) + len(separator) + len(text) > width:
            lines.append(current)
            current = text if text.startswith("-") else f"+ {text}"
        else:
            current += separator + text
    lines.append(current)
    return lines


def step_checks(derivation: Derivation, report: VerificationReport | None) -> dict[str, StepCheck]:
    """The report's checks keyed by step label (empty without a report)."""
    return {} if report is None else {check.label: check for check in report.checks}


def method_note(check: StepCheck | None) -> str:
    """A stable, run-independent note of how a step was checked.

    Digits are not printed (they may differ in the last place between
    platforms); the threshold that was met is.
    """
    if check is None:
        return ""
    symbolic = check.symbolic.method if check.symbolic.ok else "NOT proved symbolically"
    if check.symbolic.ok and not check.general and "at k =" not in symbolic:
        symbolic += f", {check.scope.split(' (')[0]} only"
    numeric = (
        f"{check.numeric.points} points agree to $\\geq {check.numeric.min_digits:g}$ digits"
        if check.numeric.ok
        else "numeric check FAILED"
    )
    verb = "proved" if symbolic.startswith("at ") else "proved by"
    return f"{verb} {symbolic}; {numeric}"


def terms_latex(derivation: Derivation) -> str:
    """The closed form as a sum of ``\\underbrace``-labelled named terms."""
    parts = []
    for name, term in derivation.terms.items():
        title = TERM_TITLES.get(name, name).replace("_", r"\_")
        parts.append(rf"\underbrace{{{expr_latex(term)}}}_{{\text{{{title}}}}}")
    return " + ".join(parts).replace("+ \\underbrace{- ", "- \\underbrace{")


def fact_latex(fact) -> str:
    """``lhs = rhs`` of a :class:`~symkl.derivation.Fact` in LaTeX (its shown left side)."""
    return f"{expr_latex(fact.display_lhs)} = {expr_latex(fact.rhs)}"


#: how a fact came to be, as rendered next to it
ORIGINS = {"computed": "computed by SymPy", "stated": "stated"}


def fact_note(fact, check: StepCheck | None) -> str:
    """``computed by SymPy, then checked: ...`` / ``stated, then checked: ...`` / ``not checked``.

    A fact renders as checked only when a passing verdict on it is at hand.
    """
    origin = ORIGINS[fact.origin]
    if check is None:
        return f"{origin}; not yet checked"
    if not check.ok:
        return f"{origin}; CHECK FAILED"
    return f"{origin}, then checked: {method_note(check)}"


def verdict_line(report: VerificationReport) -> str:
    """The closing sentence, with the scope: never "proved for all k" unless every claim is."""
    if not report.proved:
        return f"NOT all claims proved ({len(report.failures)} of {len(report.checks)} failing)"
    scope = report.scope
    if scope == "for all k":
        return f"every claim ({len(report.checks)}: steps, named terms, facts) proved for all k"
    return f"every claim ({len(report.checks)}: steps, named terms, facts) proved; {scope}"
