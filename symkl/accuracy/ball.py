"""Certified numerics in ball arithmetic (python-flint's ``arb``): one place for all of symkl.

A *ball* ``[m +/- r]`` is a midpoint and a radius such that the true value
lies inside; every operation on balls returns a ball that contains every
possible result, so rounding errors, cancellation and truncated tails cannot
hide: they widen the radius.  This module is small and generic, so that the
accuracy references and the proof kernel's numeric side use the same code:

* :func:`to_ball` turns an exact parameter (int, decimal string, Fraction,
  mpf, float, SymPy rational) into a ball that contains exactly it;
* :func:`certify` evaluates at rising precision until the result has the
  asked number of correct digits, and raises :class:`PrecisionError` (with
  the best enclosure attached) when it cannot;
* :func:`compile_expression` turns a SymPy expression into a function of
  balls (rationals stay exact, ``pi`` and ``log`` are enclosed);
* :func:`gaussian_expectation` and :func:`gaussian_expectation_2d` integrate
  ``phi(z) g(z)`` over the whole real line (plane) with ``acb.integral`` on a
  finite range and a rigorous bound on the Gaussian tails.

Precision is local (``flint.ctx.workprec``), like ``mpmath.workdps``.
Importing this module does not import SymPy.

Examples
--------
>>> from flint import arb
>>> third = certify(lambda: to_ball("1", "x") / 3, digits=30)
>>> third.digits >= 30, mpmath.nstr(third.mid, 12)
(True, '0.333333333333')
>>> expectation = gaussian_expectation(lambda z: z * z, bound=(0, 0, 1), bits=100)
>>> expectation.contains(1)  # E[z^2] = 1 for the standard normal
True
"""

from __future__ import annotations

import fractions
import itertools
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import mpmath
from flint import acb, arb, ctx, fmpq

__all__ = [
    "Enclosure",
    "PrecisionError",
    "certify",
    "compile_expression",
    "digits_of",
    "gaussian_expectation",
    "gaussian_expectation_2d",
    "to_ball",
    "to_mpf",
]

#: bits per decimal digit
_BITS_PER_DIGIT = math.log2(10)


class PrecisionError(ArithmeticError):
    """The asked number of digits could not be certified; ``enclosure`` is the best one reached."""

    def __init__(self, message: str, enclosure: Enclosure | None = None) -> None:
        super().__init__(message)
        self.enclosure = enclosure


def _ball_to_mpf(value: Any) -> mpmath.mpf:
    """The exact binary value of an ``arf``/exact ball midpoint as an ``mpmath.mpf``."""
    if value.is_zero():
        return mpmath.mpf(0)
    mantissa, exponent = value.man_exp()
    # make_mpf: no rounding to the current mpmath precision (mpf((m, e)) would round)
    return mpmath.mp.make_mpf(mpmath.libmp.from_man_exp(int(mantissa), int(exponent)))


@dataclass(frozen=True)
class Enclosure:
    """A certified enclosure ``[mid +/- radius]`` of a real number.

    ``digits`` is the number of correct significant digits the radius
    certifies (``inf`` for an exact value, 0 when the ball contains 0 and is
    not exactly 0).  :attr:`mid` and :attr:`radius` are exact ``mpmath.mpf``
    values of the ball's midpoint and radius.
    """

    ball: arb

    @property
    def mid(self) -> mpmath.mpf:
        return _ball_to_mpf(self.ball.mid())

    @property
    def radius(self) -> mpmath.mpf:
        return _ball_to_mpf(self.ball.rad())

    @property
    def digits(self) -> float:
        return digits_of(self.ball)

    def contains(self, value: Any) -> bool:
        """Whether ``value`` certainly lies in the enclosure.

        Dyadic values (floats, integers, mpf) are tested exactly; others are
        enclosed in a ball first, so ``False`` may mean "not decided".
        """
        with ctx.workprec(max(ctx.prec, 128)):
            return bool(self.ball.contains(to_ball(value, "value")))

    def value(self, dps: int) -> mpmath.mpf:
        """The midpoint rounded to ``dps`` significant digits, as an ``mpmath.mpf``."""
        with mpmath.workdps(dps):
            return +self.mid

    def __float__(self) -> float:
        return float(self.mid)

    def __str__(self) -> str:
        digits = self.digits
        shown = 20 if digits == math.inf else max(min(int(digits), 60), 3)
        return self.ball.str(shown, radius=True)


def digits_of(ball: arb) -> float:
    """Certified significant digits of ``ball``: ``inf`` if exact, 0 if it contains 0."""
    if ball.is_exact():
        return math.inf
    if not ball.is_finite() or ball.contains(0):
        return 0.0
    return max(ball.rel_accuracy_bits(), 0) / _BITS_PER_DIGIT


def to_mpf(value: Any, name: str) -> mpmath.mpf:
    """Convert an exact parameter to ``mpmath.mpf`` at the current mpmath precision.

    Parameters
    ----------
    value : int, str, fractions.Fraction, mpmath.mpf, SymPy number or float
        The parameter.  Strings are parsed as decimals at the working
        precision, so ``"0.1"`` means one tenth, not the nearest double.
    name : str
        The argument's name, used in error messages.

    Raises
    ------
    ValueError
        For non-finite or non-numeric values.

    Examples
    --------
    >>> with mpmath.workdps(30):
    ...     print(to_mpf("0.1", "sigma"))
    0.1
    """
    _reject_non_numbers(value, name)
    if isinstance(value, str | int | mpmath.mpf):
        try:
            result = mpmath.mpf(value)
        except (ValueError, TypeError) as error:
            raise ValueError(f"{name} must be a real number, got {value!r}") from error
    elif isinstance(value, fractions.Fraction):
        result = mpmath.mpf(value.numerator) / value.denominator
    elif hasattr(value, "p") and hasattr(value, "q"):  # SymPy Rational / Integer
        result = mpmath.mpf(int(value.p)) / int(value.q)
    elif isinstance(value, arb):
        result = _ball_to_mpf(value.mid())
    else:
        result = mpmath.mpf(float(value))
    if not mpmath.isfinite(result):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return result


def _reject_non_numbers(value: Any, name: str) -> None:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a real number, got the bool {value!r}")
    exact = (str, int, mpmath.mpf, fractions.Fraction, arb, numbers.Real)
    if not isinstance(value, exact) and not (hasattr(value, "p") and hasattr(value, "q")):
        raise ValueError(
            f"{name} must be a real number (int, decimal string, Fraction, mpf), "
            f"got {type(value).__name__} {value!r}"
        )


def to_ball(value: Any, name: str) -> arb:
    """A ball that contains exactly the parameter ``value`` at the current precision.

    Integers, floats, ``Fraction``, SymPy rationals and ``mpmath.mpf`` are
    converted exactly where they are dyadic (every float is) and enclosed
    otherwise; a decimal string such as ``"0.1"`` is enclosed by a ball of
    the working precision's width, so the result contains one tenth itself,
    not the nearest double.

    Raises
    ------
    ValueError
        For non-finite or non-numeric values, naming ``name``.

    Examples
    --------
    >>> (to_ball("0.1", "sigma") * 10).contains(1)  # the ball holds one tenth itself
    True
    >>> to_ball(0.5, "sigma").is_exact()
    True
    """
    if type(value) is float:  # the common case, exact: no further checks needed
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
        return arb(value)
    _reject_non_numbers(value, name)
    if isinstance(value, arb):
        ball = value
    elif isinstance(value, int):
        ball = arb(value)
    elif isinstance(value, fractions.Fraction):
        ball = arb(fmpq(value.numerator, value.denominator))
    elif hasattr(value, "p") and hasattr(value, "q"):
        ball = arb(fmpq(int(value.p), int(value.q)))
    elif isinstance(value, mpmath.mpf):
        if not mpmath.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
        sign, mantissa, exponent, _ = value._mpf_
        ball = arb(0) if mantissa == 0 else arb(((-1) ** sign * mantissa, exponent))  # exact
    elif isinstance(value, str):
        try:
            ball = arb(value.strip())
        except (ValueError, TypeError) as error:
            raise ValueError(f"{name} must be a real number, got {value!r}") from error
    else:
        ball = arb(float(value))
    if not ball.is_finite():
        raise ValueError(f"{name} must be finite, got {value!r}")
    return ball


def certify(
    evaluate: Callable[[], arb],
    digits: int,
    *,
    start_bits: int | None = None,
    max_bits: int = 8192,
    what: str = "the value",
) -> Enclosure:
    """Evaluate at rising precision until the ball certifies ``digits`` significant digits.

    ``evaluate()`` is called under ``flint.ctx.workprec(bits)`` and returns a
    ball; when its relative accuracy falls short (cancellation), the precision
    is raised by the bits that were lost plus guard bits and it is called
    again.  An exactly-zero ball is a certified 0.

    Raises
    ------
    PrecisionError
        When ``max_bits`` is reached first; its ``enclosure`` is the best ball.

    Examples
    --------
    >>> tiny = certify(lambda: (1 + arb(10) ** -40).log(), digits=20)  # cancels 40 digits
    >>> tiny.digits >= 20
    True
    """
    wanted = math.ceil(digits * _BITS_PER_DIGIT) + 4
    bits = start_bits or wanted + 32
    best = None
    best_accuracy = None
    while True:
        with ctx.workprec(bits):
            ball = evaluate()
        if ball.is_exact() or (ball.is_finite() and ball.rel_accuracy_bits() >= wanted):
            return Enclosure(ball)
        accuracy = ball.rel_accuracy_bits() if ball.is_finite() and not ball.contains(0) else None
        if best is not None and accuracy is not None and best_accuracy is not None:
            if accuracy < best_accuracy + 8:
                best = ball
                break  # more working precision no longer helps: the inputs limit the digits
        if not ball.is_finite() and best is not None and not best.is_finite():
            best = ball
            break  # not finite twice: a singularity, not a lack of precision
        best, best_accuracy = ball, accuracy
        if bits >= max_bits:
            break
        if ball.is_finite() and not ball.contains(0):
            lost = wanted - ball.rel_accuracy_bits()
        else:
            lost = bits  # no digit yet: double
        bits = min(max_bits, bits + lost + 32)
    enclosure = Enclosure(best)
    raise PrecisionError(
        f"could not certify {digits} digits of {what} (up to {bits} bits of working "
        f"precision): the best enclosure is {enclosure} ({enclosure.digits:.1f} digits)",
        enclosure,
    )


# --------------------------------------------------------------------------------------
# SymPy expressions as functions of balls


def _log(x: Any) -> Any:
    return x.log() if hasattr(x, "log") else arb(x).log()


def _exp(x: Any) -> Any:
    return x.exp() if hasattr(x, "exp") else arb(x).exp()


def _sqrt(x: Any) -> Any:
    return x.sqrt() if hasattr(x, "sqrt") else arb(x).sqrt()


def _rational(p: int, q: int) -> arb:
    return arb(fmpq(p, q))


_NAMESPACE = {"log": _log, "exp": _exp, "sqrt": _sqrt, "_rational": _rational, "arb": arb}


def compile_expression(expression: Any, symbols: Sequence[Any]) -> Callable[..., Any]:
    """A SymPy expression as a Python function of balls (or of ``arb_series``).

    The function evaluates at the caller's working precision.  Rationals are
    exact (``1/3`` is ``arb(fmpq(1, 3))``, never the float 0.333...), ``pi``
    and ``E`` are enclosed, and ``log``, ``exp`` and ``sqrt`` are ball
    functions; anything else SymPy would print raises ``NameError`` when
    called rather than evaluating approximately.

    Examples
    --------
    >>> import sympy as sp
    >>> x = sp.Symbol("x", positive=True)
    >>> f = compile_expression(sp.log(x) / 3 + sp.pi, [x])
    >>> with ctx.workprec(200):
    ...     f(arb(1)).contains(arb.pi())
    True
    """
    import sympy as sp
    from sympy.printing.lambdarepr import LambdaPrinter

    class ArbPrinter(LambdaPrinter):
        """Prints rationals exactly and constants as balls."""

        def _print_Rational(self, expr: Any) -> str:
            return f"_rational({int(expr.p)}, {int(expr.q)})"

        def _print_Integer(self, expr: Any) -> str:
            return f"arb({int(expr)})"

        def _print_log(self, expr: Any) -> str:
            return f"log({self._print(expr.args[0])})"

        def _print_exp(self, expr: Any) -> str:
            return f"exp({self._print(expr.args[0])})"

        def _print_Pi(self, expr: Any) -> str:
            return "arb.pi()"

        def _print_Exp1(self, expr: Any) -> str:
            return "arb(1).exp()"

        def _print_Pow(self, expr: Any, rational: bool = False) -> str:
            base, exponent = expr.args
            if exponent == sp.Rational(1, 2):
                return f"sqrt({self._print(base)})"
            if exponent == -sp.Rational(1, 2):
                return f"(1/sqrt({self._print(base)}))"
            if exponent.is_Integer:
                return f"({self._print(base)})**{int(exponent)}"
            return f"exp(({self._print(exponent)})*log({self._print(base)}))"

    return sp.lambdify(
        list(symbols), expression, modules=[dict(_NAMESPACE)], printer=ArbPrinter, cse=True
    )


# --------------------------------------------------------------------------------------
# integrals against the standard normal, with rigorous tails


def _tail_moments(limit: arb) -> tuple[arb, arb, arb]:
    """Two-sided tail moments ``int_{|z|>L} |z|^n phi(z) dz`` for n = 0, 1, 2."""
    density = (-limit * limit / 2).exp() / (2 * arb.pi()).sqrt()
    upper = (limit / arb(2).sqrt()).erfc() / 2
    return 2 * upper, 2 * density, 2 * (limit * density + upper)


def _limit_for(tail: Callable[[arb], arb], tolerance: arb) -> tuple[int, arb]:
    limit = 6
    while True:
        bound = tail(arb(limit))
        if bound.upper() <= tolerance.upper() or limit > 200:
            return limit, bound
        limit += 2


def _standard_normal_density(z: acb) -> acb:
    return (-z * z / 2).exp() / (2 * arb.pi()).sqrt()


def _integrate(integrand: Callable[[acb, bool], acb], points: Sequence[int], tol: arb) -> arb:
    total = arb(0)
    pieces = len(points) - 1
    for a, b in itertools.pairwise(points):
        total += acb.integral(integrand, a, b, abs_tol=tol / pieces, rel_tol=tol / pieces).real
    return total


def _breakpoints(limit: int) -> list[int]:
    inner = [-4, 0, 4] if limit > 4 else [0]
    return [-limit, *inner, limit]


def gaussian_expectation(
    g: Callable[[acb], acb],
    bound: tuple[Any, Any, Any],
    *,
    bits: int,
    magnitude: Any = 1,
) -> arb:
    r"""Enclose :math:`\int_{-\infty}^{\infty} \varphi(z)\,g(z)\,dz` (:math:`\varphi`: N(0, 1)).

    ``g`` must be entire (a polynomial, ``exp``, ... of ``z``): it is called on
    complex balls by ``acb.integral``.  ``bound = (a, b, c)`` promises
    ``|g(z)| <= a + b|z| + c z^2`` for real ``z``; it gives the rigorous bound
    on the two tails beyond ``|z| = L``, with ``L`` chosen so that the tails
    are below ``magnitude * 2**-bits``.  The result is the integral over
    ``[-L, L]`` (enclosed by ``acb.integral`` at the current precision, to an
    absolute tolerance of the same size) plus a ball of that tail bound.

    Examples
    --------
    >>> with ctx.workprec(120):
    ...     mean = gaussian_expectation(lambda z: (z - 1) ** 2, bound=(1, 2, 1), bits=100)
    >>> mean.contains(2), mean.rad() < arb(2) ** -90
    (True, True)
    """
    a, b, c = (arb(v) if not isinstance(v, arb) else v for v in bound)
    tolerance = arb(magnitude) * arb(2) ** -bits

    def tail(limit: arb) -> arb:
        zeroth, first, second = _tail_moments(limit)
        return abs(a) * zeroth + abs(b) * first + abs(c) * second

    limit, tail_bound = _limit_for(tail, tolerance)

    def integrand(z: acb, analytic: bool) -> acb:
        return _standard_normal_density(z) * g(z)

    inside = _integrate(integrand, _breakpoints(limit), tolerance)
    return inside + arb(0, tail_bound.upper())


def gaussian_expectation_2d(
    g: Callable[[acb, acb], acb],
    bound: tuple[Any, Any, Any, Any, Any],
    *,
    bits: int,
    magnitude: Any = 1,
) -> arb:
    r"""Enclose :math:`\iint \varphi(z_1)\varphi(z_2)\,g(z_1, z_2)\,dz_1 dz_2` over the plane.

    Nested :func:`acb.integral`: the inner integral over ``z2`` is enclosed for
    each (complex ball) ``z1`` the outer one asks for.  ``bound = (a, b1, b2,
    c1, c2)`` promises ``|g| <= a + b1|z1| + b2|z2| + c1 z1^2 + c2 z2^2`` for
    real arguments; outside the square ``[-L, L]^2`` (which lies in
    ``|z1| > L`` or ``|z2| > L``) the integral is bounded by Gaussian tail
    moments.  ``g`` must be entire in both arguments.

    Examples
    --------
    >>> with ctx.workprec(80):
    ...     m = gaussian_expectation_2d(lambda u, v: u * u + v * v, (0, 0, 0, 1, 1), bits=60)
    >>> m.contains(2)
    True
    """
    a, b1, b2, c1, c2 = (arb(v) if not isinstance(v, arb) else v for v in bound)
    tolerance = arb(magnitude) * arb(2) ** -bits
    mean_abs = (2 / arb.pi()).sqrt()

    def tail(limit: arb) -> arb:
        zeroth, first, second = _tail_moments(limit)
        # |z1| > L, z2 anywhere; then |z2| > L, z1 anywhere (the union covers the outside)
        one = a * zeroth + b1 * first + b2 * mean_abs * zeroth + c1 * second + c2 * zeroth
        two = a * zeroth + b2 * first + b1 * mean_abs * zeroth + c2 * second + c1 * zeroth
        return abs(one) + abs(two)

    limit, tail_bound = _limit_for(tail, tolerance)
    points = _breakpoints(limit)

    def outer(z1: acb, analytic: bool) -> acb:
        def inner(z2: acb, analytic: bool) -> acb:
            return _standard_normal_density(z2) * g(z1, z2)

        total = acb(0)
        for lo, hi in itertools.pairwise(points):
            total += acb.integral(inner, lo, hi, abs_tol=tolerance, rel_tol=tolerance)
        return _standard_normal_density(z1) * total

    inside = _integrate(outer, points, tolerance)
    return inside + arb(0, tail_bound.upper())
