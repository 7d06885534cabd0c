"""The references: certified ball quadrature and closed forms, where naive quadrature fails."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from flint import arb, ctx

from symkl.accuracy import ball
from symkl.accuracy.ball import Enclosure, PrecisionError, certify, to_ball
from symkl.accuracy.references import (
    kl_closed_form_enclosure,
    kl_mvn_quad,
    kl_mvn_reference,
    kl_quad_enclosure,
    kl_term,
    kl_term_gradient,
)
from symkl.reference import QuadratureError, kl_closed_form, kl_quad

# sigma_p/sigma_q from 1e-6 to 1e6; mean separations up to 1e3 sigma_q.  Exact
# decimal strings: no binary rounding on the way in.
RATIOS = ["1e-6", "1e-3", "1", "1e3", "1e6"]
SEPARATIONS = ["0", "50", "1e3"]
GRID = list(itertools.product(RATIOS, SEPARATIONS))
#: the hard cases of the issue: nearly equal, scale ratios 1e+-6, means 1e3 scales apart
HARD = [
    ("0", "1", "0", "1.000000000000001"),
    ("0", "1", "1e-12", "1"),
    ("0.25", "1e-6", "0", "1"),
    ("0.25", "1e6", "0", "1"),
    ("0", "1", "1e3", "1"),
    ("0.3", "1e-6", "1e3", "1"),
    ("-7", "3", "-7", "3.0000001"),
]


def _digits(a, b):
    with mpmath.workdps(60):
        if a == b:
            return 60
        return float(-mpmath.log10(abs(a - b) / abs(b)))


@pytest.mark.parametrize(("ratio", "separation"), GRID, ids=[f"r{r}-d{d}" for r, d in GRID])
def test_kl_quad_agrees_with_derived_closed_form(ratio, separation):
    args = ("0.25", ratio, separation, "1")  # mu_p, sigma_p, mu_q, sigma_q
    quad = kl_quad_enclosure(*args, dps=50)
    closed = kl_closed_form_enclosure(*args, dps=50)
    # two certified enclosures of one number overlap, and each certifies 50 digits
    assert quad.digits >= 50 and closed.digits >= 50
    assert quad.ball.overlaps(closed.ball), f"{quad} != {closed}"


@pytest.mark.parametrize("args", HARD, ids=[f"hard{i}" for i in range(len(HARD))])
def test_ball_and_mpmath_quadrature_agree_on_the_hard_cases(args):
    certified = kl_quad(*args, dps=30)
    independent = kl_quad(*args, dps=30, method="mpmath")
    assert _digits(independent, certified) >= 28


@pytest.mark.parametrize(
    "args",
    # p narrow and off the origin: quad returns ~1e-2410 with an error estimate to match;
    # p 50 sigma_q from q and from the origin: quad is wrong in the third digit
    [("0.3", "1e-3", "0", "1"), ("50", "1", "0", "1")],
    ids=["narrow-p", "far-means"],
)
def test_naive_quadrature_is_silently_wrong_where_kl_quad_is_right(args):
    # Why the substitution exists: over (-inf, inf), mpmath.quad misses p entirely
    mu_p, sigma_p, mu_q, sigma_q = (mpmath.mpf(a) for a in args)
    with mpmath.workdps(30):

        def integrand(x):
            return mpmath.npdf(x, mu_p, sigma_p) * (
                mpmath.log(mpmath.npdf(x, mu_p, sigma_p))
                - mpmath.log(mpmath.npdf(x, mu_q, sigma_q))
            )

        naive = mpmath.quad(integrand, [-mpmath.inf, mpmath.inf])
    truth = kl_quad(*args, dps=30)
    assert abs(naive - truth) > truth / 1000  # naive is wrong in the third digit or worse ...
    assert _digits(truth, kl_closed_form(*args, dps=30)) >= 28  # ... kl_quad is not


def test_exact_inputs_are_exact():
    # "0.1" is one tenth; the float 0.1 is not, and the difference is visible at 50 digits
    from_string = kl_quad_enclosure("0", "0.1", "0", "1", dps=50)
    from_fraction = kl_quad_enclosure(0, Fraction(1, 10), 0, 1, dps=50)
    from_float = kl_quad_enclosure(0, 0.1, 0, 1, dps=50)
    assert from_string.ball.overlaps(from_fraction.ball)
    assert not from_float.ball.overlaps(from_string.ball)


def test_nearly_equal_distributions_keep_their_digits():
    # KL ~ 1e-30: everything cancels; the ball shows it and the precision rises to match
    args = ("0", "1.000000000000001", "0", "1")
    quad = kl_quad_enclosure(*args, dps=40)
    closed = kl_closed_form_enclosure(*args, dps=40)
    assert mpmath.mpf("9e-31") < quad.mid < mpmath.mpf("1.1e-30")
    assert quad.digits >= 40 and quad.ball.overlaps(closed.ball)


def test_equal_distributions_give_exactly_zero():
    assert kl_quad("1.5", "2", "1.5", "2", dps=30) == 0
    assert kl_quad("0.1", "0.3", "0.1", "0.3", dps=30) == 0  # the same decimals
    assert kl_term([(0.1, -3.0, 0.1, -3.0)], "logvar").ball.is_zero()
    assert kl_mvn_reference([1, 2], [[2, 1], [1, 3]], [1, 2], [[2, 1], [1, 3]]).ball.is_zero()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("0", "0", "0", "1"), "sigma_p must be a positive standard deviation, got 0"),
        (("0", "1", "0", "-2"), "sigma_q must be a positive standard deviation, got -2"),
        (("nan", "1", "0", "1"), "mu_p must be finite"),
        (("0", "1", "inf", "1"), "mu_q must be finite"),
        (("zero", "1", "0", "1"), "mu_p must be a real number, got 'zero'"),
        (("0", [1], "0", "1"), "sigma_p must be a real number"),
    ],
)
@pytest.mark.parametrize("method", ["arb", "mpmath"])
def test_bad_input_is_rejected_with_a_clear_message(args, message, method):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        kl_quad(*args, method=method)


def test_bad_method_and_dps():
    with pytest.raises(ValueError, match="method must be 'arb' or 'mpmath', got 'simpson'"):
        kl_quad(0, 1, 1, 2, method="simpson")
    with pytest.raises(ValueError, match="dps must be an integer >= 5, got 2"):
        kl_quad(0, 1, 1, 2, dps=2)


# --- an enclosure too wide is reported, never accepted -----------------------------------


def test_an_enclosure_too_wide_raises_with_the_best_ball():
    # a value known only to +-1e-10: no precision certifies 30 digits of it
    def wide() -> arb:
        return arb(1) + arb(0, 1e-10)

    with pytest.raises(PrecisionError, match="could not certify 30 digits") as failure:
        certify(wide, 30)
    assert failure.value.enclosure is not None and 9 < failure.value.enclosure.digits < 11


def test_kl_quad_that_cannot_reach_the_digits_says_so():
    # sigma_p known only to 20 digits (a ball): 50 digits of KL cannot be certified
    with ctx.workprec(66):
        sigma_p = to_ball("0.3", "sigma_p")
    with pytest.raises(QuadratureError, match="could not certify 50 digits of kl_quad") as failure:
        kl_quad_enclosure(0, sigma_p, 1, 2, dps=50)
    best = failure.value.enclosure
    assert 15 < best.digits < 50 and best.ball.overlaps(kl_quad_enclosure(0, "0.3", 1, 2).ball)


def test_the_radius_is_the_error():
    value, radius = kl_quad("0", "1", "1", "2", dps=30, return_error=True)
    assert 0 < radius < value * mpmath.mpf(10) ** -30
    with mpmath.workdps(50):
        truth = mpmath.log(2) + mpmath.mpf(2) / 8 - mpmath.mpf(1) / 2  # log 2 + (1 + 1)/8 - 1/2
    assert abs(value - truth) <= mpmath.mpf(10) ** -30


# --- the closed forms in balls -----------------------------------------------------------


@pytest.mark.parametrize("param", ["std", "var", "logvar"])
def test_one_parameter_conversion_for_every_param(param):
    sigma_p, sigma_q, mu_p, mu_q = 0.75, 2.5, 0.5, -1.0
    values = {"std": (sigma_p, sigma_q), "var": (sigma_p**2, sigma_q**2)}
    values["logvar"] = (2 * math.log(sigma_p), 2 * math.log(sigma_q))
    s_p, s_q = values[param]
    kl = kl_term([(mu_p, s_p, mu_q, s_q)], param, dps=40)
    sigma = {
        "std": lambda s: mpmath.mpf(s),
        "var": mpmath.sqrt,
        "logvar": lambda s: mpmath.exp(s / 2),
    }
    with mpmath.workdps(60):
        sp_, sq_ = sigma[param](mpmath.mpf(s_p)), sigma[param](mpmath.mpf(s_q))
        # the textbook formula, typed here as an independent check
        truth = (
            mpmath.log(sq_ / sp_) + (sp_**2 + (mpmath.mpf(mu_p) - mu_q) ** 2) / (2 * sq_**2) - 0.5
        )
        assert abs(kl.mid - truth) <= abs(truth) * mpmath.mpf(10) ** -40


def test_gradient_reference_matches_the_textbook_derivatives():
    mu_p, sigma_p, mu_q, sigma_q = 0.3, 1.7, -0.4, 0.9
    gradient = kl_term_gradient((mu_p, sigma_p, mu_q, sigma_q), "std")
    with mpmath.workdps(40):
        m_p, s_p, m_q, s_q = (mpmath.mpf(v) for v in (mu_p, sigma_p, mu_q, sigma_q))
        d = m_p - m_q
        # typed here as an independent check of sympy.diff of the derived form
        textbook = [
            d / s_q**2,
            -1 / s_p + s_p / s_q**2,
            -d / s_q**2,
            1 / s_q - (s_p**2 + d**2) / s_q**3,
        ]
        for got, truth in zip(gradient, textbook, strict=True):
            assert abs(got - truth) <= abs(truth) * mpmath.mpf(10) ** -28


# --- kl_mvn ------------------------------------------------------------------------------


def test_mvn_reference_agrees_with_certified_2d_quadrature():
    from symkl.accuracy.cases import mvn_cases

    arrays = mvn_cases(3, 5, 2)
    values = [arrays[n][2] for n in ("mu_p", "cov_p", "mu_q", "cov_q")]
    closed, integral = kl_mvn_reference(*values), kl_mvn_quad(*values, dps=12)
    assert integral.digits >= 12 and closed.ball.overlaps(integral.ball)


def test_diagonal_mvn_at_k_64_is_the_sum_of_univariate_forms():
    rng = np.random.default_rng(4)
    variances_p, variances_q = 10 ** rng.uniform(-6, 6, (2, 64))
    mu_p, mu_q = rng.normal(size=(2, 64))
    full = kl_mvn_reference(mu_p, np.diag(variances_p), mu_q, np.diag(variances_q))
    rows = list(zip(mu_p, variances_p, mu_q, variances_q, strict=True))
    assert full.digits >= 50 and full.ball.overlaps(kl_term(rows, "var").ball)


def test_mvn_reference_rejects_bad_matrices():
    with pytest.raises(ValueError, match="cov_q must be exactly symmetric"):
        kl_mvn_reference([0, 0], np.eye(2), [0, 0], [[1, 0.5], [0.25, 1]])
    with pytest.raises(ValueError, match="cov_p must be symmetric positive definite"):
        kl_mvn_reference([0, 0], [[1, 2], [2, 1]], [0, 0], np.eye(2))
    with pytest.raises(ValueError, match=r"cov_p must have shape \(2, 2\)"):
        kl_mvn_reference([0, 0], np.eye(3), [0, 0], np.eye(2))


# --- the generic ball module -------------------------------------------------------------


def test_compile_expression_keeps_rationals_exact():
    import sympy as sp

    x = sp.Symbol("x", positive=True)
    f = ball.compile_expression(x / 3 + sp.Rational(1, 3), [x])
    with ctx.workprec(300):
        assert f(arb(2)).contains(arb(1)) and f(arb(2)).rad() < arb(2) ** -290


def test_enclosure_reports_digits():
    assert Enclosure(arb(0)).digits == math.inf
    assert Enclosure(arb(0, 1e-3)).digits == 0.0
    assert 9 < Enclosure(arb(1, 1e-10)).digits < 11


# --- adversarial review: each of these returned a wrong digit, a false error or a crash ---


def _textbook_kl(mu_p, sigma_p, mu_q, sigma_q, dps=400):
    """The hand-typed univariate KL at ``dps`` digits, as an independent check."""
    with mpmath.workdps(dps):
        m_p, s_p, m_q, s_q = (
            mpmath.mpf(v.numerator) / v.denominator
            for v in map(ball.exact_rational, (mu_p, sigma_p, mu_q, sigma_q))
        )
        return mpmath.log(s_q / s_p) + (s_p**2 + (m_p - m_q) ** 2) / (2 * s_q**2) - 0.5


@pytest.mark.parametrize(
    "args",
    [(0.0, 1.0, 0.0, 5e-324), (0.0, 1e300, 1.0, 1e-300), (0.0, 5e-324, 0.0, 1e300)],
    ids=["denormal-q", "ratio-1e600", "ratio-1e-632"],
)
def test_kl_quad_certifies_huge_divergences(args):
    # acb.integral was given the *absolute* tolerance as its relative goal: once the
    # integrand's magnitude passed 2**bits it asked for no digits and kl_quad gave up
    quad = kl_quad_enclosure(*args, dps=50)
    assert quad.digits >= 50
    with mpmath.workdps(400):
        assert abs(quad.mid - _textbook_kl(*args)) <= quad.radius


def test_returned_value_and_error_enclose_the_truth():
    # the radius alone does not cover the rounding of the midpoint to dps digits
    for args in [("0", "1", "1", "2"), (0.0, 1.0, 0.3, 1.7), ("0.1", "0.2", "0.3", "0.4")]:
        value, error = kl_quad(*args, dps=20, return_error=True)
        with mpmath.workdps(400):
            assert abs(value - _textbook_kl(*args)) <= error


def test_long_double_and_sympy_float_keep_their_digits():
    # float(x) rounded both to a double: 1 + 2**-60 became 1 and the "certified" KL 0
    import sympy as sp

    long_double = np.longdouble(1) + np.longdouble(2) ** -60
    assert long_double != 1  # this platform's long double has more than 53 bits
    with mpmath.workdps(60):
        truth = mpmath.log(1 + mpmath.mpf(2) ** -60) + 1 / (2 * (1 + mpmath.mpf(2) ** -60) ** 2)
        truth -= mpmath.mpf(1) / 2
    for function in (kl_quad, kl_closed_form):
        assert _digits(function(0.0, 1.0, 0.0, long_double, dps=20), truth) >= 19
    sympy_float = sp.Float("1.0000000000000000000000001", 40)
    with ctx.workprec(200):  # all 133 bits of the Float, not the nearest double
        assert to_ball(sympy_float, "s").is_exact() and to_ball(sympy_float, "s") != 1
    assert 0.99e-50 < float(kl_quad(0, 1, 0, sympy_float, dps=20)) < 1.01e-50
    assert 0.99e-50 < float(kl_quad(0, 1, 0, sympy_float, dps=20, method="mpmath")) < 1.01e-50


def test_mpmath_quadrature_with_p_and_q_equal_at_low_precision():
    # the magnitude pass (20 digits) saw p = q and log10(0) crashed with a bare ValueError
    assert (
        0.99e-50
        < float(kl_quad("0", "1", "0", "1.0000000000000000000000001", dps=20, method="mpmath"))
        < 1.01e-50
    )


def test_a_difference_that_is_zero_up_to_rounding_can_be_squared():
    # python-flint's arb ** 2 is nan for any ball containing 0: "0.1" - "0.10" never certified
    value = kl_closed_form("0.1", "1", "0.10", "2", dps=30)
    assert _digits(value, _textbook_kl("0.1", "1", "0.10", "2")) >= 29
    assert ball._integer_power(arb(0, 1e-3), 2).contains(0)
    assert ball._integer_power(arb(-3), 3) == -27 and ball._integer_power(arb(2), -2) == 0.25


def test_the_same_number_spelled_differently_is_exactly_zero():
    # "0.1" and "0.10" were not identical: 57 s of precision climb, then a QuadratureError
    assert kl_quad("0.1", "0.3", "0.10", "0.30", dps=20) == 0
    assert kl_quad("0.1", Fraction(3, 10), Fraction(1, 10), "3e-1", dps=20, method="mpmath") == 0
    assert kl_closed_form("0.1", "0.3", Fraction(1, 10), "0.30", dps=20) == 0
    assert ball.exact_rational("[1 +/- 0.5]") is None and ball.exact_rational(arb(0, 1)) is None


def test_mvn_reference_takes_decimal_strings_and_ill_conditioned_matrices():
    # decimal strings were "not exactly symmetric"; an SPD pivot near 0 at the first
    # precision was "not positive definite"; a near-zero M_ij made the closed form nan
    def textbook(mu_p, cov_p, mu_q, cov_q):
        with mpmath.workdps(800):  # a condition of 1e300 costs the textbook 300 digits

            def exact(v):
                rational = ball.exact_rational(v)
                return mpmath.mpf(rational.numerator) / rational.denominator

            cov_p = mpmath.matrix([[exact(x) for x in row] for row in cov_p])
            cov_q = mpmath.matrix([[exact(x) for x in row] for row in cov_q])
            d = mpmath.matrix([exact(a) - exact(b) for a, b in zip(mu_q, mu_p, strict=True)])
            inverse = mpmath.inverse(cov_q)
            trace = sum((inverse * cov_p)[i, i] for i in range(len(mu_p)))
            log_det = mpmath.log(mpmath.det(cov_q) / mpmath.det(cov_p))
            return (log_det - len(mu_p) + trace + (d.T * inverse * d)[0]) / 2

    tiny = Fraction(1, 10**70)
    cases = [
        ([0, 0], [[1, 1], [1, 1 + Fraction(1, 10**300)]], [1, 0], [[1, 0], [0, 1]]),
        (["0", "0"], [["1", "0.1"], ["0.1", "1"]], ["1", "0"], [["2", "0.3"], ["0.30", "1"]]),
        ([0, 0], [[1, 1], [1, 1 + tiny]], [1, 0], [[1, 0], [0, 1]]),
        ([0, 0], [[1, 0], [0, 1]], [1, 0], [[1, 1], [1, 1 + tiny]]),
        ([0.0, 0.0], [[2.0, 1.0], [1.0, 2.0]], [0.0, 0.0], [[2.0, 1.0], [1.0, 2.0 + 2**-51]]),
    ]
    for case in cases:
        closed = kl_mvn_reference(*case)
        with mpmath.workdps(300):
            assert closed.digits >= 50 and abs(closed.mid - textbook(*case)) <= closed.radius
    integral = kl_mvn_quad(*cases[1], dps=12)
    assert integral.ball.overlaps(kl_mvn_reference(*cases[1]).ball)
    with pytest.raises(ValueError, match="cov_p must be symmetric positive definite"):
        kl_mvn_reference([0, 0], [[1, 1], [1, 1 - tiny]], [0, 0], np.eye(2))


def test_mvn_quadrature_of_identical_gaussians_is_zero_at_once():
    # it used to climb to 512 bits for a minute, then raise, for KL(p || p)
    cov = [[2.0, 1.0], [1.0, 2.0]]
    assert kl_mvn_quad([0.5, 1.0], cov, [0.5, 1], [[2, 1], [1, 2]]).ball.is_zero()
    with pytest.raises(ValueError, match=r"mu_q must have shape \(2,\) like mu_p"):
        kl_mvn_quad([0, 0], cov, [0, 0, 0], cov)


def test_gaussian_expectation_of_a_function_with_branch_points():
    # acb.integral assumes analyticity; sqrt(z^2 + 1/100) has branch points at +-i/10 and,
    # called without the analytic flag, gives a tight ball that misses the truth
    def root(z, analytic):
        return (z * z + arb("0.01")).sqrt(analytic=analytic)

    with mpmath.workdps(60):
        truth = mpmath.quad(
            lambda z: mpmath.npdf(z) * mpmath.sqrt(z * z + mpmath.mpf(1) / 100),
            [-mpmath.inf, -1, 0, 1, mpmath.inf],
        )
    with ctx.workprec(120):
        wrong = ball.gaussian_expectation(lambda z: root(z, False), (1, 1, 0), bits=100)
        right = ball.gaussian_expectation(root, (1, 1, 0), bits=100, forwards_analytic=True)
    with ctx.workprec(300):
        enclosed = arb(mpmath.nstr(truth, 55))
        assert right.contains(enclosed)
        assert not wrong.contains(enclosed)  # the documented hazard, kept visible
