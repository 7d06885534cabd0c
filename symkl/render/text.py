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
    method_note,
    plain_text,
    step_checks,
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
        lines += ["", "derived facts:"]
        for fact in derivation.facts:
            lines.append(
                f"  {plain_text(fact.text)}: {expr_text(fact.lhs)} = {expr_text(fact.rhs)}"
            )
            note = method_note(checks.get(fact.label)) if fact.label else ""
            if note:
                lines.append(f"    checked: {plain_text(note)}")
    if report is not None:
        state = "every step proved" if report.proved else "NOT all steps proved"
        lines += ["", f"verification: {state} (symbolically by SymPy and numerically by mpmath)"]
    return "\n".join(lines) + "\n"
