"""Plain-text rendering for terminals."""

from __future__ import annotations

import sympy as sp

from symkl.derivation import Derivation, VerificationReport
from symkl.render.common import fact_note, method_note, step_checks, verdict_line

__all__ = ["derivation_to_text"]


def derivation_to_text(derivation: Derivation, report: VerificationReport | None = None) -> str:
    """The chain as text: each step's label, reason and expression (SymPy ``str``)."""
    checks = step_checks(derivation, report)
    lines = [derivation.title, "=" * len(derivation.title), ""]
    for placeholder, value in derivation.definitions.items():
        lines.append(f"  {placeholder} = {sp.sstr(value)}")
    lines.append("")
    for index, step in enumerate(derivation.steps, start=1):
        lines.append(f"{index}. [{step.label}] {step.rule}")
        lines.append(f"   = {sp.sstr(step.expr)}")
        note = method_note(checks.get(step.label))
        if note:
            lines.append(f"   ({note})")
    if derivation.terms:
        lines += ["", "named terms:"]
        lines += [f"  {name} = {sp.sstr(term)}" for name, term in derivation.terms.items()]
    if derivation.facts:
        lines += ["", "facts (each a checked claim):"]
        lines += [
            f"  [{f.label}] {f.text} ({fact_note(f, checks.get(f.label))}): "
            f"{sp.sstr(f.display_lhs)} = {sp.sstr(f.rhs)}"
            for f in derivation.facts
        ]
    if report is not None:
        lines += ["", f"verification: {verdict_line(report)}"]
    return "\n".join(lines) + "\n"
