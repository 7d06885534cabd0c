"""Every step of every registered derivation is proved both ways (label as test id)."""

from __future__ import annotations

import pytest

from symkl import available_derivations, derive

CASES = [(name, step.label) for name in available_derivations() for step in derive(name).steps[1:]]


@pytest.mark.parametrize(("name", "label"), CASES, ids=[f"{n}:{lab}" for n, lab in CASES])
def test_step_is_proved_symbolically_and_numerically(name, label):
    report = derive(name).verify()
    check = next(c for c in report.checks if c.label == label)
    assert check.symbolic.ok, f"{name}:{label}: {check.symbolic}"
    assert check.numeric.ok, f"{name}:{label}: {check.numeric}"
    assert check.numeric.dps >= 30 and check.numeric.digits >= 25


@pytest.mark.parametrize("name", available_derivations())
def test_named_terms_add_up_and_report_is_proved(name):
    report = derive(name).verify()
    assert report.proved, str(report)
    assert any(c.label == "named-terms" for c in report.checks) or not derive(name).terms


@pytest.mark.parametrize("name", available_derivations())
def test_every_step_has_a_reason_and_a_unique_label(name):
    steps = derive(name).steps
    labels = [step.label for step in steps]
    assert len(set(labels)) == len(labels)
    assert all(step.rule for step in steps)
