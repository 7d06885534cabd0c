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
    "absolute_moment_bound",
    "certify",
    "compile_expression",
    "digits_of",
    "exact_rational",
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

    def error_of(self, value: Any) -> mpmath.mpf:
        """A certified bound on ``|value - x|`` for every ``x`` in the enclosure.

        For a value rounded from the midpoint (:meth:`value`) this is the
        radius *plus* the rounding, so ``value -/+ error_of(value)`` contains
        the truth; the radius alone would not.

        Examples
        --------
        >>> third = certify(lambda: to_ball("1", "x") / 3, digits=30)
        >>> third.error_of(third.value(10)) > third.radius
        True
        """
        with ctx.workprec(64):
            return _ball_to_mpf(abs(to_ball(value, "value") - self.ball).upper())

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
    elif isinstance(value, numbers.Integral):  # numpy integers
        result = mpmath.mpf(int(value))
    elif hasattr(value, "_mpf_"):  # SymPy Float: its own digits, not the nearest double
        result = mpmath.mpf(value)
    else:
        numerator, denominator = _integer_ratio(value, name)
        result = mpmath.mpf(numerator) / denominator
    if not mpmath.isfinite(result):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return result


def _integer_ratio(value: Any, name: str) -> tuple[int, int]:
    """``value`` as an exact ``numerator / denominator`` (NumPy floats, long double included).

    ``float(value)`` would round a ``numpy.longdouble`` (64-bit mantissa) to a
    double without a word: ``1 + 2**-60`` would become 1 and the KL 0.
    """
    as_integer_ratio = getattr(value, "as_integer_ratio", None)
    if as_integer_ratio is not None:
        try:
            return as_integer_ratio()
        except (OverflowError, ValueError) as error:
            raise ValueError(f"{name} must be finite, got {value!r}") from error
    converted = float(value)
    if converted != value:
        raise ValueError(
            f"{name} of type {type(value).__name__} cannot be converted exactly; pass an int, "
            f"a decimal string, a Fraction or an mpf (got {value!r})"
        )
    return converted.as_integer_ratio() if math.isfinite(converted) else (0, 0)


def exact_rational(value: Any) -> fractions.Fraction | None:
    """The exact rational number ``value`` stands for, or ``None`` when it is not one.

    Decimal strings are the decimals they spell (``"0.1"``, ``"0.10"`` and
    ``Fraction(1, 10)`` are the same number), floats the binary numbers they
    are; a ball is a rational only when it is exact.  Used to recognise p = q
    whatever the spelling, where ball arithmetic alone could only narrow the
    enclosure of 0 forever.

    Examples
    --------
    >>> exact_rational("0.10") == exact_rational(fractions.Fraction(1, 10))
    True
    >>> exact_rational("[1 +/- 0.5]") is None
    True
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, fractions.Fraction | numbers.Integral):
        return fractions.Fraction(value)
    if isinstance(value, str):
        try:
            return fractions.Fraction(value.strip())
        except (ValueError, ZeroDivisionError):
            return None
    if isinstance(value, arb):
        if not value.is_exact() or not value.is_finite():
            return None
        value = _ball_to_mpf(value.mid())
    if hasattr(value, "_mpf_"):
        sign, mantissa, exponent, _ = value._mpf_
        if not mantissa and exponent:  # inf, nan
            return None
        return fractions.Fraction((-1) ** sign * mantissa) * fractions.Fraction(2) ** exponent
    if hasattr(value, "p") and hasattr(value, "q"):
        return fractions.Fraction(int(value.p), int(value.q))
    try:
        numerator, denominator = _integer_ratio(value, "value")
    except (ValueError, TypeError):
        return None
    return fractions.Fraction(numerator, denominator) if denominator else None


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
    elif isinstance(value, numbers.Integral):  # int and numpy integers
        ball = arb(int(value))
    elif isinstance(value, fractions.Fraction):
        ball = arb(fmpq(value.numerator, value.denominator))
    elif hasattr(value, "p") and hasattr(value, "q"):
        ball = arb(fmpq(int(value.p), int(value.q)))
    elif hasattr(value, "_mpf_"):  # mpmath.mpf, SymPy Float: all their bits, enclosed
        if not mpmath.isfinite(mpmath.mpf(value._mpf_)):
            raise ValueError(f"{name} must be finite, got {value!r}")
        sign, mantissa, exponent, _ = value._mpf_
        ball = arb(0) if mantissa == 0 else arb(((-1) ** sign * mantissa, exponent))  # exact
    elif isinstance(value, str):
        try:
            ball = arb(value.strip())
        except (ValueError, TypeError) as error:
            raise ValueError(f"{name} must be a real number, got {value!r}") from error
    else:  # NumPy floats (long double too): their exact binary value
        numerator, denominator = _integer_ratio(value, name)
        if denominator == 0:
            raise ValueError(f"{name} must be finite, got {value!r}")
        if denominator & (denominator - 1) == 0:  # dyadic: exact at any precision
            ball = arb((numerator, -(denominator.bit_length() - 1)))
        else:
            ball = arb(fmpq(numerator, denominator))
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


def _sin(x: Any) -> Any:
    return x.sin() if hasattr(x, "sin") else arb(x).sin()


def _cos(x: Any) -> Any:
    return x.cos() if hasattr(x, "cos") else arb(x).cos()


def _rational(p: int, q: int) -> arb:
    return arb(fmpq(p, q))


def _integer_power(base: Any, exponent: int) -> Any:
    """``base ** exponent`` by repeated squaring.

    python-flint's ``arb ** int`` goes through ``exp(n log x)`` and returns
    ``nan`` for any ball that contains 0 (``arb("[+/- 1e-60]") ** 2`` is
    ``nan``), so a square of a difference that is 0 up to rounding, such as
    ``mu_p - mu_q`` for ``"0.1"`` and ``"0.10"``, would never be certified.
    Products are exact ball operations and enclose ``x^n`` for every ``x``.
    """
    if exponent < 0:
        return 1 / _integer_power(base, -exponent)
    result = None
    square = base
    while exponent:
        if exponent & 1:
            result = square if result is None else result * square
        exponent >>= 1
        if exponent:
            square = square * square
    return arb(1) if result is None else result


_NAMESPACE = {
    "log": _log,
    "exp": _exp,
    "sqrt": _sqrt,
    "sin": _sin,
    "cos": _cos,
    "_rational": _rational,
    "_integer_power": _integer_power,
    "arb": arb,
}


def compile_expression(expression: Any, symbols: Sequence[Any]) -> Callable[..., Any]:
    """A SymPy expression as a Python function of balls (or of ``arb_series``).

    The function evaluates at the caller's working precision.  Rationals are
    exact (``1/3`` is ``arb(fmpq(1, 3))``, never the float 0.333...), ``pi``
    and ``E`` are enclosed, and ``log``, ``exp``, ``sqrt``, ``sin`` and ``cos`` are
    ball functions; anything else SymPy would print raises ``NameError`` when
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

        def _print_sin(self, expr: Any) -> str:
            return f"sin({self._print(expr.args[0])})"

        def _print_cos(self, expr: Any) -> str:
            return f"cos({self._print(expr.args[0])})"

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
                return f"_integer_power({self._print(base)}, {int(exponent)})"
            return f"exp(({self._print(exponent)})*log({self._print(base)}))"

    return sp.lambdify(
        list(symbols), expression, modules=[dict(_NAMESPACE)], printer=ArbPrinter, cse=True
    )


# --------------------------------------------------------------------------------------
# integrals against the standard normal, with rigorous tails


def _tail_moments(limit: arb, degree: int = 2) -> list[arb]:
    """Two-sided tail moments ``int_{|z|>L} |z|^n phi(z) dz`` for n = 0 .. degree.

    With ``I_n = int_L^oo z^n phi``: ``I_0 = erfc(L/sqrt 2)/2``, ``I_1 = phi(L)``
    and ``I_n = L^(n-1) phi(L) + (n-1) I_(n-2)`` (integration by parts).
    """
    density = (-limit * limit / 2).exp() / (2 * arb.pi()).sqrt()
    one_sided = [(limit / arb(2).sqrt()).erfc() / 2, density]
    for n in range(2, degree + 1):
        one_sided.append(_integer_power(limit, n - 1) * density + (n - 1) * one_sided[n - 2])
    return [2 * moment for moment in one_sided[: degree + 1]]


def absolute_moment_bound(bound: Sequence[Any]) -> arb:
    r"""An upper bound on :math:`\int \varphi(z) \sum_n b_n |z|^n dz` (the scale of a majorant).

    ``E|z|^n = 2^{n/2} \Gamma((n+1)/2) / \sqrt{\pi}`` for the standard normal.

    >>> absolute_moment_bound((1, 0, 1)).contains(2)
    True
    """
    total = arb(0)
    for n, coefficient in enumerate(bound):
        moment = arb(2) ** (arb(n) / 2) * (arb(n + 1) / 2).gamma() / arb.pi().sqrt()
        total += abs(arb(coefficient)) * moment
    return total


def _limit_for(tail: Callable[[arb], arb], tolerance: arb) -> tuple[int, arb]:
    limit = 6
    while True:
        bound = tail(arb(limit))
        if bound.upper() <= tolerance.upper() or limit > 200:
            return limit, bound
        limit += 2


def _standard_normal_density(z: acb) -> acb:
    return (-z * z / 2).exp() / (2 * arb.pi()).sqrt()


def _integrate(
    integrand: Callable[[acb, bool], acb], points: Sequence[int], tol: arb, bits: int
) -> arb:
    """The integral over ``points[0]..points[-1]``, piece by piece.

    ``abs_tol`` is the absolute goal; ``rel_tol`` is *relative* (``2**-bits``):
    passing the absolute tolerance there, as an earlier version did, asked for
    no digits at all once the integrand's magnitude exceeded ``2**bits``.
    """
    total = arb(0)
    pieces = len(points) - 1
    relative = arb(2) ** -bits
    for a, b in itertools.pairwise(points):
        total += acb.integral(integrand, a, b, abs_tol=tol / pieces, rel_tol=relative).real
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
    forwards_analytic: bool = False,
) -> arb:
    r"""Enclose :math:`\int_{-\infty}^{\infty} \varphi(z)\,g(z)\,dz` (:math:`\varphi`: N(0, 1)).

    ``g(z)`` must be entire (a polynomial, ``exp``, ... of ``z``): it is
    called on complex balls around the real line by ``acb.integral``, whose
    error bounds assume the integrand is analytic there.  A ``g`` with branch
    points (``log``, ``sqrt``, non-integer powers) must instead be written
    ``g(z, analytic)``, pass ``forwards_analytic=True``, and forward the flag
    to those functions (``(1 + z * z).sqrt(analytic=analytic)``), as
    ``acb.integral`` requires; without that the enclosure can be wrong (for
    ``sqrt(z^2 + 1/100)`` a ball of radius 1e-31 misses the truth by 5e-14).
    ``bound = (a, b, c)`` promises
    ``|g(z)| <= a + b|z| + c z^2`` for real ``z`` (a longer tuple ``(b_0, b_1,
    ..., b_n)``: ``|g(z)| <= sum b_j |z|^j``); it gives the rigorous bound
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
    >>> def root(z, analytic):  # branch points at +/- i/10: the flag is forwarded
    ...     return (z * z + arb("0.01")).sqrt(analytic=analytic)
    >>> with ctx.workprec(120):
    ...     mean = gaussian_expectation(root, (1, 1, 0), bits=100, forwards_analytic=True)
    ...     truth = arb("0.812078260713753414763074106071388947902811406")
    ...     mean.contains(truth), mean.rad() < arb(2) ** -90
    (True, True)
    """
    coefficients = [arb(v) if not isinstance(v, arb) else v for v in bound]
    tolerance = arb(magnitude) * arb(2) ** -bits

    def tail(limit: arb) -> arb:
        moments = _tail_moments(limit, len(coefficients) - 1)
        return sum((abs(b) * m for b, m in zip(coefficients, moments, strict=True)), arb(0))

    limit, tail_bound = _limit_for(tail, tolerance)

    def integrand(z: acb, analytic: bool) -> acb:
        value = g(z, analytic) if forwards_analytic else g(z)
        return _standard_normal_density(z) * value

    inside = _integrate(integrand, _breakpoints(limit), tolerance, bits)
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
        zeroth, first, second = _tail_moments(limit, 2)
        # |z1| > L, z2 anywhere; then |z2| > L, z1 anywhere (the union covers the outside)
        one = a * zeroth + b1 * first + b2 * mean_abs * zeroth + c1 * second + c2 * zeroth
        two = a * zeroth + b2 * first + b1 * mean_abs * zeroth + c2 * second + c1 * zeroth
        return abs(one) + abs(two)

    limit, tail_bound = _limit_for(tail, tolerance)
    points = _breakpoints(limit)
    relative = arb(2) ** -bits

    def outer(z1: acb, analytic: bool) -> acb:
        def inner(z2: acb, analytic: bool) -> acb:
            return _standard_normal_density(z2) * g(z1, z2)

        total = acb(0)
        for lo, hi in itertools.pairwise(points):
            total += acb.integral(inner, lo, hi, abs_tol=tolerance, rel_tol=relative)
        return _standard_normal_density(z1) * total

    inside = _integrate(outer, points, tolerance, bits)
    return inside + arb(0, tail_bound.upper())
