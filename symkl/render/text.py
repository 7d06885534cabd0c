"""Plain-text rendering for terminals."""

from __future__ import annotations

import sympy as sp

from symkl.derivation import Derivation, VerificationReport
from symkl.render.common import method_note, step_checks

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
        lines += ["", "derived facts:"]
        lines += [f"  {f.text}: {sp.sstr(f.lhs)} = {sp.sstr(f.rhs)}" for f in derivation.facts]
    return "\n".join(lines) + "\n"
