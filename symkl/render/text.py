"""Plain-text rendering for terminals: no LaTeX, expressions as SymPy prints them.

Examples
--------
>>> from symkl import derive
>>> text = derivation_to_text(derive("univariate"))
>>> "\\\\" in text, "$" in text
(False, False)
"""

from __future__ import annotations

from typing import Any

from symkl.derivation import Derivation
from symkl.render.common import (
    _textbook_add_order,
    displayed_steps,
    expr_text,
    fact_note,
    method_note,
    plain_text,
    step_checks,
    verdict_line,
)

__all__ = ["derivation_to_text"]


def _expression(expr: Any, textbook_order: bool) -> str:
    if textbook_order and expr.is_Add:
        text = ""
        for term in _textbook_add_order(expr):
            piece = expr_text(term)
            if not text:
                text = piece
            elif piece.startswith("-"):
                text += f" - {piece[1:]}"
            else:
                text += f" + {piece}"
        return text
    return expr_text(expr)


def derivation_to_text(derivation: Derivation, report: Any = None) -> str:
    """The chain as plain text: each step's label, reason, expression and check note.

    ``report`` is a verification report or a certificate (anything with
    ``as_dict()``); without one the check notes are left out.
    """
    checks = step_checks(derivation, report)
    title = plain_text(derivation.title)
    lines = [title, "=" * len(title), ""]
    lines += [plain_text(note) for note in derivation.notes]
    lines.append("")
    for placeholder, value in derivation.definitions.items():
        lines.append(f"  {expr_text(placeholder)} = {expr_text(value)}")
    lines.append("")
    for index, (step, textbook_order) in enumerate(displayed_steps(derivation), start=1):
        lines.append(f"{index}. [{step.label}] {plain_text(step.rule)}")
        if step.assumptions:
            lines.append(f"   (assumes: {plain_text('; '.join(step.assumptions))})")
        lines.append(f"   = {_expression(step.expr, textbook_order)}")
        note = method_note(checks.get(step.label))
        if note:
            lines.append(f"   checked: {plain_text(note)}")
    if derivation.terms:
        lines += ["", "named terms:"]
        lines += [f"  {name} = {expr_text(term)}" for name, term in derivation.terms.items()]
        note = method_note(checks.get("named-terms"))
        if note:
            lines.append(f"  checked: {plain_text(note)}")
    if derivation.facts:
        lines += ["", "facts (each a checked claim):"]
        for fact in derivation.facts:
            note = fact_note(fact, checks.get(fact.label))
            lines.append(
                f"  [{fact.label}] {plain_text(fact.text)} ({plain_text(note)}): "
                f"{expr_text(fact.display_lhs)} = {expr_text(fact.rhs)}"
            )
    if report is not None:
        lines += ["", f"verification: {verdict_line(report)}"]
    return "\n".join(lines) + "\n"
