"""The kernel's k-fold integrals: Gauss-Hermite rules exact for the degree, and their limits.

A template (SymPy work done once per integral, compiled in the parameters) is
used only where the integrand is a polynomial times a Gaussian; it must give
the right value, say how it was computed, and never make a false claim pass.
Everything else (sines, logs of anything but a density, no Gaussian) takes
the general path and reports ``quadrature``.
"""

from __future__ import annotations

import mpmath
import pytest
import sympy as sp

from symkl import check_step
from symkl.proof import numerics
from symkl.proof.provers import is_zero

x1, x2, x3, x4 = sp.symbols("x1:5", real=True)
mu = sp.Symbol("mu", real=True)
s = sp.Symbol("s", positive=True)
LINE = (-sp.oo, sp.oo)


def _space(*variables):
    return [(v, *LINE) for v in variables]


def _value(integral, point=None, dps=30):
    methods: set[str] = set()
    value, error = numerics.evaluate(integral, dps, point or {}, methods)
    return value, error, methods


def test_an_axis_aligned_quadratic_uses_the_exact_rule_and_is_right():
    # E[(x_1 - mu)^2] under N(mu, s^2) x N(0, 1)^3: s^2; 2 nodes on axis 1, 1 on the others
    density = sp.exp(-((x1 - mu) ** 2) / (2 * s**2) - (x2**2 + x3**2 + x4**2) / 2)
    integral = sp.Integral((x1 - mu) ** 2 * density, *_space(x1, x2, x3, x4))
    point = {mu: sp.Rational(7, 3), s: sp.Rational(5, 4)}
    value, error, methods = _value(integral, point)
    with mpmath.workdps(40):
        truth = mpmath.mpf(25) / 16 * mpmath.sqrt(2 * mpmath.pi) ** 4 * mpmath.mpf(5) / 4
        assert abs(value - truth) < mpmath.mpf(10) ** -28 * truth and error < 1e-28
    assert methods == {"gauss-hermite-exact"}


def test_a_correlated_gaussian_uses_the_total_degree():
    # exp(-(x^2 + x y + y^2)): int x^2 = 4 pi / (3 sqrt 3) (Sigma_11 = 2/3, mass 2 pi/sqrt 3)
    integral = sp.Integral(x1**2 * sp.exp(-(x1**2 + x1 * x2 + x2**2)), *_space(x1, x2))
    value, _, methods = _value(integral)
    assert methods == {"gauss-hermite-exact"}
    with mpmath.workdps(40):
        assert abs(value - 4 * mpmath.pi / (3 * mpmath.sqrt(3))) < mpmath.mpf(10) ** -28


def test_a_fourth_moment_needs_three_nodes_per_axis():
    # int x1^4 exp(-|x|^2) over R^3 = (3/4) pi^(3/2): 2 nodes would give (1/4)(...) instead
    integral = sp.Integral(x1**4 * sp.exp(-(x1**2 + x2**2 + x3**2)), *_space(x1, x2, x3))
    value, _, methods = _value(integral)
    assert methods == {"gauss-hermite-exact"}
    with mpmath.workdps(40):
        truth = mpmath.mpf(3) / 4 * mpmath.pi ** (mpmath.mpf(3) / 2)
        assert abs(value - truth) < mpmath.mpf(10) ** -28
    assert check_step(integral, sp.Rational(3, 4) * sp.pi ** sp.Rational(3, 2)).ok
    wrong = check_step(integral, sp.Rational(1, 4) * sp.pi ** sp.Rational(3, 2))
    assert not wrong.numeric.ok and not wrong.ok


def test_the_degree_three_rule_at_k_6():
    variables = sp.symbols("y1:7", real=True)
    density = sp.exp(-sp.Add(*[v**2 for v in variables]) / 2)
    integrand = sp.Add(*[v**2 for v in variables]) * density
    template = numerics._template(sp.Integral(integrand, *_space(*variables)), ())
    assert template is not None and template.groups[0][2] == ("degree3", 6)
    truth = 6 * (2 * sp.pi) ** 3
    assert check_step(sp.Integral(integrand, *_space(*variables)), truth).ok
    wrong = check_step(sp.Integral(integrand, *_space(*variables)), truth + 1)
    assert not wrong.numeric.ok


def test_logs_of_density_ratios_count_as_polynomials():
    p = sp.exp(-((x1 - mu) ** 2) / 2) * sp.exp(-(x2**2) / 2)
    q = sp.exp(-(x1**2) / 2) * sp.exp(-((x2 - 1) ** 2) / 2)
    degrees = numerics._degrees(sp.log(3 * p / q), [x1, x2])
    assert degrees == ((2, 2), 2)
    assert numerics._degrees(sp.log(1 + x1**2), [x1, x2]) is None
    assert numerics._degrees(sp.sin(x1) * x2, [x1, x2]) is None
    assert numerics._degrees(x1 ** sp.Rational(1, 2), [x1, x2]) is None


@pytest.mark.parametrize(
    "factor",
    [sp.cos(x1), sp.log(1 + x1**2), sp.Abs(x1)],
    ids=["cosine", "log-of-non-density", "abs"],
)
def test_integrands_that_are_not_polynomials_take_the_general_path(factor):
    integral = sp.Integral(factor * sp.exp(-(x1**2) - x2**2), *_space(x1, x2))
    assert numerics._template(integral, ()) is None
    _, _, methods = _value(integral)
    assert methods == {"quadrature"}


def test_the_general_path_is_unchanged_for_a_cosine():
    # the 6- and 8-point tensor rules agree to about 8 digits on a cosine: the error
    # estimate says so, and neither the true nor a false value passes at 25 digits
    integral = sp.Integral(sp.cos(x1) * sp.exp(-(x1**2) - x2**2), *_space(x1, x2))
    value, error, methods = _value(integral)
    with mpmath.workdps(40):
        truth = mpmath.pi * mpmath.exp(-mpmath.mpf(1) / 4)
        assert abs(value - truth) <= 2 * error + mpmath.mpf(10) ** -25
    assert methods == {"quadrature"} and error > 0
    assert not check_step(integral, sp.pi * sp.exp(-sp.Rational(1, 3))).numeric.ok


def test_a_gaussian_that_is_not_concave_at_a_point_gets_no_value_from_the_template():
    # exp(a x^2 - y^2): a Gaussian for a < 0, divergent for a > 0 (the template gives no
    # value there and the general path decides; that path is slow on a divergent plane)
    a = sp.Symbol("a", real=True)
    integral = sp.Integral(sp.exp(a * x1**2 - x2**2), *_space(x1, x2))
    template = numerics._template(integral, (a,))
    assert template is not None
    assert template.evaluate([sp.Rational(1, 2)], 30) is None
    value, _ = template.evaluate([-sp.Rational(1, 2)], 30)
    with mpmath.workdps(40):
        assert abs(value - mpmath.sqrt(2) * mpmath.pi) < mpmath.mpf(10) ** -28


def test_the_line_template_is_certified_at_every_point():
    density = sp.exp(-((x1 - mu) ** 2) / (2 * s**2)) / (sp.sqrt(2 * sp.pi) * s)
    integral = sp.Integral((x1 - mu) ** 4 * density, (x1, *LINE))
    result = check_step(integral, 3 * s**4)
    assert result.ok and result.numeric.integration == "certified"
    assert not check_step(integral, 2 * s**4).numeric.ok


def test_huge_log_coefficient_is_not_combined_and_the_claim_fails():
    """``10**25 log(1 + x/10**25) = x`` hung in logcombine+simplify ((10**25)**(10**25))."""
    xp = sp.Symbol("x", positive=True)
    ok, residue = is_zero(10**25 * sp.log(1 + xp / 10**25) - xp)
    assert not ok and residue
    result = check_step(10**25 * sp.log(1 + xp / 10**25), xp)
    assert not result.ok and not result.numeric.ok
