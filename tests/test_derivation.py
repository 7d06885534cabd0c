"""The derivation engine: check_step proves true steps and rejects wrong ones.

A checker that cannot fail is worthless, so most tests here feed it wrong
steps and expect *both* the symbolic and the numeric check to reject them.
"""

from __future__ import annotations

import pytest
import sympy as sp

from symkl import check_step
from symkl.derivation import SymbolicResult, is_zero
from symkl.model import normal_pdf, univariate_symbols

S = univariate_symbols()
x, mu_p, sigma_p, mu_q, sigma_q = S.x, S.mu_p, S.sigma_p, S.mu_q, S.sigma_q
LINE = (x, -sp.oo, sp.oo)
P = normal_pdf(x, mu_p, sigma_p)


def test_true_algebraic_step_is_proved():
    result = check_step(sp.log(sigma_q / sigma_p), sp.log(sigma_q) - sp.log(sigma_p))
    assert result.ok
    assert result.symbolic.method == "algebra"
    assert result.numeric.digits >= 25
    assert result.numeric.points == 5


def test_true_integral_step_is_proved_by_evaluation():
    result = check_step(sp.Integral((x - mu_p) ** 2 * P, LINE), sigma_p**2)
    assert result.ok, result
    assert result.symbolic.method == "integrals evaluated by SymPy"


def test_linearity_is_recognised():
    before = sp.Integral(P * (3 * (x - mu_p) ** 2 + mu_q), LINE)
    after = 3 * sp.Integral((x - mu_p) ** 2 * P, LINE) + mu_q * sp.Integral(P, LINE)
    result = check_step(before, after)
    assert result.ok, result
    assert result.symbolic.method.startswith("linearity of the integral")


def test_wrong_step_fails_both_ways_and_reports_worst_point():
    result = check_step(sp.Integral((x - mu_p) ** 2 * P, LINE), sigma_p)
    assert not result.ok
    assert not result.symbolic.ok
    assert not result.numeric.ok
    assert result.numeric.worst_discrepancy > 1e-3
    assert set(result.numeric.worst_point) == {"mu_p", "sigma_p"}


def test_a_prover_from_outside_the_kernel_is_refused():
    def always_yes(before, after):
        return SymbolicResult(True, "trust me")

    with pytest.raises(TypeError, match=r"symkl\.proof Prover"):
        check_step(sp.log(sigma_p), 2 * sp.log(sigma_p), prove=always_yes)


def test_a_prover_subclass_written_outside_the_kernel_is_refused_and_numerics_reject_too():
    from symkl.proof import Prover

    class AlwaysYes(Prover):
        def prove(self, lhs, rhs):
            return SymbolicResult(True, "trust me")

    result = check_step(sp.log(sigma_p), 2 * sp.log(sigma_p), prove=AlwaysYes())
    assert not result.symbolic.ok and "not a kernel prover" in result.symbolic.detail
    assert not result.numeric.ok
    assert not result.ok


def test_symbolic_check_alone_is_not_enough_a_tiny_error_is_caught_numerically():
    # the two sides differ by 1e-20: symbolic says no, numerics say 20 digits only
    result = check_step(sp.log(sigma_p), sp.log(sigma_p) + sp.Rational(1, 10**20))
    assert not result.symbolic.ok
    assert not result.numeric.ok
    assert 15 < result.numeric.digits < 25


def test_domain_comes_from_assumptions():
    # sqrt(s**2) == s only for positive s: with s positive the step holds ...
    s = sp.Symbol("s", positive=True)
    assert check_step(sp.sqrt(s**2), s).ok
    # ... with s merely real it is false (|s| != s), and is rejected
    r = sp.Symbol("r", real=True)
    assert not check_step(sp.sqrt(r**2), r).ok


def test_check_step_never_raises_on_garbage_expressions():
    result = check_step(sp.log(sigma_p), sp.Symbol("undefined_thing", positive=True) * 0 + sp.zoo)
    assert not result.ok


def test_is_zero_uses_only_sound_rewrites():
    t = sp.Symbol("t", real=True)
    assert is_zero(sp.log(sigma_p * sigma_q) - sp.log(sigma_p) - sp.log(sigma_q))[0]
    # log(t**2) == 2 log(t) is false for negative t: must not be "proved"
    assert not is_zero(sp.log(t**2) - 2 * sp.log(t))[0]


def test_results_are_reproducible():
    first = check_step(sp.log(sigma_p), sp.log(sigma_p) + 1, seed=3)
    second = check_step(sp.log(sigma_p), sp.log(sigma_p) + 1, seed=3)
    assert first.numeric.worst_point == second.numeric.worst_point
