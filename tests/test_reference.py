"""The mpmath reference: kl_quad is right where naive quadrature is silently wrong."""

from __future__ import annotations

import itertools
from fractions import Fraction

import mpmath
import pytest

from symkl.reference import QuadratureError, kl_closed_form, kl_quad

# sigma_p/sigma_q from 1e-6 to 1e6; mean separations up to 1e3 sigma_q.  Exact
# decimal strings: no binary rounding on the way in.
RATIOS = ["1e-6", "1e-3", "1", "1e3", "1e6"]
SEPARATIONS = ["0", "50", "1e3"]
GRID = list(itertools.product(RATIOS, SEPARATIONS))


def _digits(a, b):
    with mpmath.workdps(60):
        if a == b:
            return 60
        return float(-mpmath.log10(abs(a - b) / abs(b)))


@pytest.mark.parametrize(("ratio", "separation"), GRID, ids=[f"r{r}-d{d}" for r, d in GRID])
def test_kl_quad_agrees_with_derived_closed_form_to_40_digits(ratio, separation):
    args = ("0.25", ratio, separation, "1")  # mu_p, sigma_p, mu_q, sigma_q
    quad = kl_quad(*args, dps=50)
    closed = kl_closed_form(*args, dps=50)
    assert _digits(quad, closed) >= 40, f"{mpmath.nstr(quad, 50)} != {mpmath.nstr(closed, 50)}"


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
    from_string = kl_quad("0", "0.1", "0", "1", dps=50)
    from_fraction = kl_quad(0, Fraction(1, 10), 0, 1, dps=50)
    from_float = kl_quad(0, 0.1, 0, 1, dps=50)
    assert from_string == from_fraction
    assert from_float != from_string


def test_nearly_equal_distributions_keep_their_digits():
    # KL ~ 1e-30: everything cancels; the reference raises precision to match
    args = ("0", "1.000000000000001", "0", "1")
    quad = kl_quad(*args, dps=40)
    closed = kl_closed_form(*args, dps=40)
    assert mpmath.mpf("9e-31") < quad < mpmath.mpf("1.1e-30")
    assert _digits(quad, closed) >= 38


def test_equal_distributions_give_exactly_zero():
    assert kl_quad("1.5", "2", "1.5", "2", dps=30) == 0


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
def test_bad_input_is_rejected_with_a_clear_message(args, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        kl_quad(*args)


def test_uncertifiable_result_raises_instead_of_returning_a_number():
    from symkl.reference import _certified

    values = iter(mpmath.mpf(v) for v in ("1", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6"))

    def drifting(working):  # every pass disagrees with the last: no digits certified
        return next(values), mpmath.mpf(0), mpmath.mpf(1)

    with pytest.raises(QuadratureError, match="could not certify 30 digits"):
        _certified(drifting, 30, "test")


def test_return_error_gives_a_tiny_estimate():
    value, error = kl_quad("0", "1", "1", "2", dps=30, return_error=True)
    assert error < value * mpmath.mpf(10) ** -30
