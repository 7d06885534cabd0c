"""The codegen printers: kernel arithmetic printed in order, the same nodes in both targets.

The compensated formulas are checked by running what the array printer prints
(exact error-free transformations, against fractions), not by comparing strings
alone.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import sympy as sp

from symkl.codegen.array_target import array_kernels
from symkl.codegen.kernels import (
    claim,
    std_x_lo,
    two_sum,
    two_sum_error,
)
from symkl.codegen.printers import (
    Lo,
    add,
    array_arithmetic,
    c_arithmetic,
    div,
    inverse,
    mul,
    neg,
    variables,
)
from symkl.kl.stable import numeric_forms

a, b, c, d = variables("a b c d")


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        (add(c, a, b), "c + a + b"),  # operands in the order given, not SymPy's
        (add(add(a, b), c), "(a + b) + c"),  # a nested sum is evaluated first
        (add(a, add(b, c)), "a + (b + c)"),
        (mul(mul(0.5, a), a), "(0.5 * a) * a"),
        (add(a, neg(mul(2.0, b))), "a - 2.0 * b"),
        (add(a, neg(add(b, c))), "a - (b + c)"),
        (mul(-4.0, a), "-4.0 * a"),
        (mul(2.0, a, inverse(add(1.0, b))), "2.0 * a / (1.0 + b)"),
        (div(mul(0.5, a), b), "(0.5 * a) / b"),
        (mul(a, add(b, c)), "a * (b + c)"),
    ],
)
def test_ordered_arithmetic_prints_the_evaluation_order(expr, text):
    assert c_arithmetic(expr) == text
    assert array_arithmetic(expr) == text


def test_nodes_in_each_target():
    assert c_arithmetic(two_sum(a, neg(b), d)) == "symkl_two_sum(a, -b, &d)"
    assert array_arithmetic(two_sum(a, neg(b), d)) == "two_sum(a, -b)"
    product = claim("node-product-lo", a=a, a_lo=c, b=b, b_lo=d, p=c)
    assert c_arithmetic(product) == "fma(a, b, -c) + c * b + a * d"
    assert array_arithmetic(product) == "product_error(a, b, c) + c * b + a * d"
    lo = claim("node-lo", x=add(a, b))
    assert c_arithmetic(lo) == "SYMKL_LO(a + b)"
    assert array_arithmetic(lo) == "a + b"  # the array kernels keep every lo part
    assert c_arithmetic(Lo(std_x_lo())).startswith("SYMKL_LO(fma(rho, two, -x) + ")
    # the remainder of a rounded division, d_hi - rho v, as one fma
    remainder = claim("node-relative-difference-lo", rho=a, v=b, d_hi=c, d_lo=d, inv_v=1.0)
    assert c_arithmetic(remainder) == "(fma(-a, b, c) + d) * 1.0"


def test_one_std_correction_for_every_target():
    assert (
        c_arithmetic(std_x_lo()) == "fma(rho, two, -x) + rho * two_lo + 2.0 * rho_lo * (1.0 + rho)"
    )
    assert array_arithmetic(std_x_lo()).startswith("product_error(rho, two, x) + ")
    assert "fma(rho, two, -x) + rho * two_lo" in _sources()["c"]


def _sources() -> dict[str, str]:
    from symkl.codegen import generate_sources

    sources = generate_sources()
    return {"c": sources["symkl/_kernels.c"], "array": sources["symkl/_kernels_numpy.py"]}


def _array_namespace() -> dict:
    """The NumPy kernels module, executed from the printed text."""
    from symkl.codegen import NUMPY_PRELUDE

    namespace: dict = {}
    exec("\n".join(NUMPY_PRELUDE) + "\n" + array_kernels(numeric_forms()), namespace)
    return namespace


def test_array_body_names_the_namespace_itself():
    # no global np. -> xp. rewrite: the body is printed against xp
    body = array_kernels(numeric_forms())
    assert "np." not in body
    assert "xp.where(" in body


def _spread(rng: np.random.Generator, size: int) -> np.ndarray:
    """Doubles over many binades, both signs."""
    return (
        rng.choice([-1.0, 1.0], size) * rng.uniform(1, 2, size) * 2.0 ** rng.integers(-60, 60, size)
    )


def test_printed_two_sum_is_exact():
    two_sum = _array_namespace()["two_sum"]
    rng = np.random.default_rng(14)
    x, y = _spread(rng, 2000), _spread(rng, 2000)
    total, error = two_sum(x, y)
    for xi, yi, ti, ei in zip(x, y, total, error, strict=True):
        assert Fraction(xi) + Fraction(yi) == Fraction(ti) + Fraction(ei)


def test_printed_product_error_is_exact():
    product_error = _array_namespace()["product_error"]
    rng = np.random.default_rng(15)
    x, y = _spread(rng, 2000), _spread(rng, 2000)
    p = x * y
    error = product_error(x, y, p)
    for xi, yi, pi, ei in zip(x, y, p, error, strict=True):
        assert Fraction(xi) * Fraction(yi) == Fraction(pi) + Fraction(ei)


def test_two_sum_error_is_knuths():
    # the one definition the C helper, the C lanes and the array two_sum print
    a_, b_, s_, v_ = variables("a b s bv")
    assert array_arithmetic(two_sum_error(a_, b_, s_, v_)) == "(a - (s - bv)) + (b - bv)"
    assert sp.expand(two_sum_error(a_, b_, a_ + b_, b_).doit()) == 0  # exact arithmetic: no error
