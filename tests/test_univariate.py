"""The univariate derivation: every step proved both ways; the result is the textbook's."""

from __future__ import annotations

import pytest
import sympy as sp

from symkl import check_step, derive
from symkl.kl.univariate import derive_univariate

LABELS = [step.label for step in derive_univariate().steps[1:]]


@pytest.mark.parametrize("label", LABELS)
def test_step_is_proved_symbolically_and_numerically(univariate, label):
    index = [step.label for step in univariate.steps].index(label)
    previous, step = univariate.steps[index - 1], univariate.steps[index]
    result = check_step(
        previous.expr, step.expr, definitions=univariate.definitions, prove=step.prove
    )
    assert result.symbolic.ok, result.symbolic
    assert result.numeric.ok, result.numeric
    assert result.numeric.dps >= 30
    assert result.numeric.digits >= 25


def test_report_says_every_step_is_proved(univariate_report):
    assert univariate_report.proved
    labels = [c.label for c in univariate_report.checks]
    assert labels == [*LABELS, "named-terms", "reverse", "jeffreys"]
    assert all(c.symbolic.method for c in univariate_report.checks)


def test_closed_form_is_the_textbook_formula(univariate):
    # the textbook formula, typed here and only here, as an independent check
    mu_p, mu_q = sp.symbols("mu_p mu_q", real=True)
    sigma_p, sigma_q = sp.symbols("sigma_p sigma_q", positive=True)
    textbook = (
        sp.log(sigma_q / sigma_p)
        + (sigma_p**2 + (mu_p - mu_q) ** 2) / (2 * sigma_q**2)
        - sp.Rational(1, 2)
    )
    assert sp.simplify(univariate.closed_form - textbook) == 0
    # and it is in the canonical shape, not merely equal
    assert univariate.closed_form == textbook


def test_closed_form_uses_exactly_the_named_symbols(univariate):
    names = {str(s) for s in univariate.closed_form.free_symbols}
    assert names == {"mu_p", "sigma_p", "mu_q", "sigma_q"}
    by_name = {str(s): s for s in univariate.closed_form.free_symbols}
    assert by_name["mu_p"].is_real and by_name["mu_q"].is_real
    assert by_name["sigma_p"].is_positive and by_name["sigma_q"].is_positive


def test_named_terms_sum_to_the_closed_form(univariate):
    assert set(univariate.terms) == {"log_det_ratio", "trace_term", "mean_term", "dimension_term"}
    assert sp.simplify(sum(univariate.terms.values()) - univariate.closed_form) == 0


def test_first_step_is_the_integral_definition(univariate):
    first = univariate.steps[0].expr
    assert isinstance(first, sp.Integral)
    p, q = univariate.definitions
    assert first.function == p * sp.log(p / q)


def test_closed_form_is_finite_where_the_literal_integral_was_not(univariate):
    # the literal integration of p*log(p/q) gives NaN at mu_q = 0; ours does not
    values = {s: v for s, v in zip(univariate.parameters, (1, 2, 0, 3), strict=False)}
    assert univariate.closed_form.subs(values).is_finite


def test_derive_is_cached_and_rejects_unknown_names():
    assert derive("univariate") is derive("univariate")
    with pytest.raises(ValueError, match=r"unknown derivation name 'bivariate'.*'univariate'"):
        derive("bivariate")
