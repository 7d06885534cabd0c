"""Soundness: deliberately wrong steps must be rejected, by each check on its own.

Every case below is a mistake people make when deriving the Gaussian KL by
hand.  Each is checked against a correct step of the derivation; the checker
must reject it symbolically *and* numerically (either check alone would
already refuse it).
"""

from __future__ import annotations

import pytest
import sympy as sp

from symkl import check_step
from symkl.model import univariate_symbols

S = univariate_symbols()
x, mu_p, sigma_p, mu_q, sigma_q = S.x, S.mu_p, S.sigma_p, S.mu_q, S.sigma_q
half = sp.Rational(1, 2)
d2 = (mu_p - mu_q) ** 2

# Wrong closed forms, compared with the step before the closed form.
WRONG_CLOSED_FORMS = {
    "sign-flip-of-log": -sp.log(sigma_q / sigma_p) + (sigma_p**2 + d2) / (2 * sigma_q**2) - half,
    "missing-one-half": sp.log(sigma_q / sigma_p) + (sigma_p**2 + d2) / sigma_q**2 - half,
    "sigmas-swapped": sp.log(sigma_p / sigma_q) + (sigma_q**2 + d2) / (2 * sigma_p**2) - half,
    "sigma-vs-variance-in-log": sp.log(sigma_q**2 / sigma_p**2)
    + (sigma_p**2 + d2) / (2 * sigma_q**2)
    - half,
    "sigma-vs-variance-in-trace": sp.log(sigma_q / sigma_p)
    + (sigma_p + d2) / (2 * sigma_q**2)
    - half,
    "dropped-mean-term": sp.log(sigma_q / sigma_p) + sigma_p**2 / (2 * sigma_q**2) - half,
    "wrong-constant": sp.log(sigma_q / sigma_p) + (sigma_p**2 + d2) / (2 * sigma_q**2) - 1,
    "log-base-2": sp.log(sigma_q / sigma_p, 2) + (sigma_p**2 + d2) / (2 * sigma_q**2) - half,
    "reverse-kl-q-p": sp.log(sigma_p / sigma_q) + (sigma_q**2 + d2) / (2 * sigma_p**2) - half,
    "mean-not-squared": sp.log(sigma_q / sigma_p)
    + (sigma_p**2 + sp.Abs(mu_p - mu_q)) / (2 * sigma_q**2)
    - half,
    "means-added": sp.log(sigma_q / sigma_p)
    + (sigma_p**2 + (mu_p + mu_q) ** 2) / (2 * sigma_q**2)
    - half,
    "mean-over-sigma-p": sp.log(sigma_q / sigma_p)
    + sigma_p**2 / (2 * sigma_q**2)
    + d2 / (2 * sigma_p**2)
    - half,
    "constant-plus-half": sp.log(sigma_q / sigma_p) + (sigma_p**2 + d2) / (2 * sigma_q**2) + half,
}


@pytest.mark.parametrize("label", sorted(WRONG_CLOSED_FORMS))
def test_wrong_closed_form_is_rejected(univariate, label):
    before = univariate.steps[-2].expr
    result = check_step(before, WRONG_CLOSED_FORMS[label], definitions=univariate.definitions)
    assert not result.symbolic.ok, f"{label}: symbolic check accepted a wrong step"
    assert not result.numeric.ok, f"{label}: numeric check accepted a wrong step"
    assert not result.ok


def _step(derivation, label):
    return next(step.expr for step in derivation.steps if step.label == label)


def _wrong_integral_steps(derivation):
    p, _q = derivation.definitions
    line = (x, -sp.oo, sp.oo)
    second = sp.Integral((x - mu_p) ** 2 * p, line)
    first = sp.Integral((x - mu_p) * p, line)
    zeroth = sp.Integral(p, line)
    return {
        # log(p/q) expanded with the wrong sign on q's quadratic
        "log-ratio-sign": (
            "definition",
            sp.Integral(
                p
                * (
                    sp.log(sigma_q / sigma_p)
                    - (x - mu_p) ** 2 / (2 * sigma_p**2)
                    - (x - mu_q) ** 2 / (2 * sigma_q**2)
                ),
                line,
            ),
        ),
        # the second moment taken as sigma_p instead of sigma_p^2
        "second-moment-sigma": (
            "first-central-moment",
            _step(derivation, "first-central-moment").xreplace({second: sigma_p}),
        ),
        # the first central moment taken as mu_p instead of 0
        "first-moment-nonzero": (
            "normalisation",
            _step(derivation, "normalisation").xreplace({first: mu_p}),
        ),
        # a density "integrating" to 2
        "normalisation-two": (
            "shift-to-p-mean",
            _step(derivation, "shift-to-p-mean").xreplace({zeroth: 2}),
        ),
    }


WRONG_INTEGRAL_STEPS = [
    "log-ratio-sign",
    "second-moment-sigma",
    "first-moment-nonzero",
    "normalisation-two",
]


@pytest.mark.parametrize("label", WRONG_INTEGRAL_STEPS)
def test_wrong_integral_step_is_rejected(univariate, label):
    before_label, wrong = _wrong_integral_steps(univariate)[label]
    result = check_step(_step(univariate, before_label), wrong, definitions=univariate.definitions)
    assert not result.symbolic.ok, f"{label}: symbolic check accepted a wrong step"
    assert not result.numeric.ok, f"{label}: numeric check accepted a wrong step"


def test_there_are_at_least_twelve_wrong_steps(univariate):
    # every listed wrong step is actually built (and so parametrised above)
    assert set(_wrong_integral_steps(univariate)) == set(WRONG_INTEGRAL_STEPS)
    assert len(WRONG_CLOSED_FORMS) + len(WRONG_INTEGRAL_STEPS) >= 12
