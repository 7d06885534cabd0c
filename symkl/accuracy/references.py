"""Certified references: the KL integral and the derived closed forms in ball arithmetic.

These are the yardsticks every numeric function is measured against.  Each
returns (or is built on) an :class:`~symkl.accuracy.ball.Enclosure`, a ball
whose radius certifies its digits, and raises
:class:`~symkl.accuracy.ball.PrecisionError` rather than return a digit it
cannot vouch for.

* :func:`kl_quad` integrates the *definition* ``int p log(p/q)`` after the
  substitution ``x = mu_p + sigma_p z`` (so ``p(x) dx`` is the standard normal
  whatever the scales), with ``acb.integral`` on ``|z| <= L`` and a rigorous
  bound on the Gaussian tails beyond.  ``method="mpmath"`` keeps the
  independent mpmath quadrature (tanh-sinh, certified by agreement of two
  passes) as a cross-check.
* :func:`kl_closed_form` and :func:`kl_term` evaluate the closed form proved
  by derivation ``univariate`` (``symkl.derive("univariate").closed_form``) in
  ball arithmetic, with the scale parameter converted once, symbolically
  (:func:`sigma_from`); near KL = 0 the cancellation shows up as a wide
  ball and the precision is raised until the digits are certified.
* :func:`kl_mvn_reference` evaluates derivation ``full``'s Cholesky closed
  form, with the Cholesky factors and triangular solves done in balls;
  :func:`kl_mvn_quad` integrates the definition at ``k = 2`` (nested
  certified quadrature).

Parameters are exact: integers, decimal strings (``"0.1"`` is one tenth),
``fractions.Fraction``, SymPy rationals, ``mpmath.mpf``, or floats (taken as
the exact binary numbers they are).

Importing this module does not import SymPy; the closed forms import it on
first use (the quadrature never does).

Examples
--------
>>> mpmath.nstr(kl_quad("0", "1", "1", "2", dps=30), 25)
'0.4431471805599453094172321'
>>> kl_quad_enclosure("0", "1", "0", "1.000000000000001", dps=50).digits >= 50
True
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np
from flint import acb, arb, ctx

from symkl.accuracy.ball import (
    Enclosure,
    PrecisionError,
    certify,
    compile_expression,
    exact_rational,
    gaussian_expectation,
    gaussian_expectation_2d,
    to_ball,
    to_mpf,
)

__all__ = [
    "PARAMS",
    "MonteCarloEstimate",
    "QuadratureError",
    "kl_closed_form",
    "kl_closed_form_enclosure",
    "kl_monte_carlo",
    "kl_mvn_quad",
    "kl_mvn_reference",
    "kl_quad",
    "kl_quad_enclosure",
    "kl_term",
    "kl_term_gradient",
    "sigma_from",
    "to_mpf",
]

#: what the scale arguments of the numeric functions hold
PARAMS = ("std", "var", "logvar")

#: mpmath's quadrature: the z-range is split at these points (p is N(0, 1) in z)
_Z_BREAKPOINTS = (-8, -4, 0, 4, 8)


class QuadratureError(PrecisionError):
    """Quadrature could not certify the requested number of digits."""


def sigma_from(value: Any, param: str) -> Any:
    """The standard deviation held by ``value`` under ``param``: the one conversion.

    ``value`` may be a ball (``flint.arb``) or a SymPy expression; ``"std"``
    is ``value`` itself, ``"var"`` its square root, ``"logvar"``
    ``exp(value / 2)``.

    Examples
    --------
    >>> sigma_from(arb(4), "var")
    2.00000000000000
    """
    if param == "std":
        return value
    if param == "var":
        return value.sqrt() if isinstance(value, arb) else value ** _sympy().Rational(1, 2)
    if param == "logvar":
        return (value / 2).exp() if isinstance(value, arb) else _sympy().exp(value / 2)
    raise ValueError(f"param must be one of {', '.join(PARAMS)}, got {param!r}")


def _sympy() -> Any:
    import sympy as sp

    return sp


def _check_dps(dps: Any) -> None:
    if isinstance(dps, bool) or not isinstance(dps, int) or dps < 5:
        raise ValueError(f"dps must be an integer >= 5, got {dps!r}")


def _scales(values: dict[str, arb]) -> None:
    for name in ("sigma_p", "sigma_q"):
        if not values[name] > 0:
            raise ValueError(
                f"{name} must be a positive standard deviation, got {values[name].str(8)}"
            )


def _balls(mu_p: Any, sigma_p: Any, mu_q: Any, sigma_q: Any) -> dict[str, arb]:
    names = ("mu_p", "sigma_p", "mu_q", "sigma_q")
    values = {
        name: to_ball(v, name)
        for name, v in zip(names, (mu_p, sigma_p, mu_q, sigma_q), strict=True)
    }
    _scales(values)
    return values


# --------------------------------------------------------------------------------------
# the definition, integrated in ball arithmetic


def _identical(*pairs: tuple[Any, Any]) -> bool:
    """Whether p and q are given by the very same exact numbers (then KL = 0 exactly).

    Compared as exact rationals, so ``"0.1"``, ``"0.10"`` and
    ``Fraction(1, 10)`` are one number; a ball that is not exact is never
    identical to anything.
    """
    if all(type(a) is float and type(b) is float for pair in pairs for a, b in [pair]):
        return all(a == b for a, b in pairs)  # floats are exact: the common case, fast
    for a, b in pairs:
        first, second = exact_rational(a), exact_rational(b)
        if first is None or second is None or first != second:
            return False
    return True


def kl_quad_enclosure(mu_p: Any, sigma_p: Any, mu_q: Any, sigma_q: Any, dps: int = 50) -> Enclosure:
    r"""Certified enclosure of KL(N(mu_p, sigma_p^2) || N(mu_q, sigma_q^2)) from the integral.

    .. math::
        \int p \log\frac{p}{q}\,dx = \int \varphi(z)
        \left[\log p(x) - \log q(x)\right] dz,\qquad x = \mu_p + \sigma_p z,

    with both log-densities evaluated from the density formula
    ``-((x - mu)/sigma)^2/2 - log sigma - log(2 pi)/2`` at every (ball) node.
    The tails beyond ``|z| = L`` are bounded by
    ``|log p - log q| <= A + B|z| + C z^2``, with ``A = |log(sigma_q/sigma_p)|
    + d^2/(2 sigma_q^2)``, ``B = |d| sigma_p / sigma_q^2``,
    ``C = (1 + sigma_p^2/sigma_q^2)/2``, ``d = mu_p - mu_q``, and the Gaussian
    tail moments.  When p and q are the same exact numbers the integrand is
    identically 0 and so is the result.

    Raises
    ------
    ValueError
        Non-positive or non-finite scales, non-numeric input, ``dps < 5``.
    QuadratureError
        When ``dps`` digits cannot be certified.

    Examples
    --------
    >>> tiny = kl_quad_enclosure("0", "1", "0", "1.000000000000001", dps=40)
    >>> mpmath.nstr(tiny.mid, 20), tiny.digits >= 40
    ('9.9999999999999833333e-31', True)
    """
    _check_dps(dps)
    with ctx.workprec(64):
        _balls(mu_p, sigma_p, mu_q, sigma_q)  # validate before any work
    if _identical((mu_p, mu_q), (sigma_p, sigma_q)):
        return Enclosure(arb(0))

    def evaluate() -> arb:
        values = _balls(mu_p, sigma_p, mu_q, sigma_q)
        mean_p, scale_p, mean_q, scale_q = (
            values[n] for n in ("mu_p", "sigma_p", "mu_q", "sigma_q")
        )
        offset = mean_p - mean_q
        log_scale_p, log_scale_q = scale_p.log(), scale_q.log()
        half_log_two_pi = (2 * arb.pi()).log() / 2

        def log_ratio(z: acb) -> acb:
            # x - mu_p = sigma_p z and x - mu_q = (mu_p - mu_q) + sigma_p z, exactly
            standardised_q = (offset + scale_p * z) / scale_q
            log_p = -(z * z) / 2 - log_scale_p - half_log_two_pi
            log_q = -(standardised_q * standardised_q) / 2 - log_scale_q - half_log_two_pi
            return log_p - log_q

        squared_ratio = (scale_p / scale_q) ** 2
        a = abs(log_scale_q - log_scale_p) + offset * offset / (2 * scale_q * scale_q)
        b = abs(offset) * scale_p / (scale_q * scale_q)
        c = (1 + squared_ratio) / 2
        return gaussian_expectation(log_ratio, (a, b, c), bits=ctx.prec, magnitude=a + b + c)

    try:
        return certify(evaluate, dps, what="kl_quad")
    except PrecisionError as error:
        raise QuadratureError(str(error), error.enclosure) from None


def kl_quad(
    mu_p: Any,
    sigma_p: Any,
    mu_q: Any,
    sigma_q: Any,
    dps: int = 50,
    *,
    method: str = "arb",
    return_error: bool = False,
) -> mpmath.mpf | tuple[mpmath.mpf, mpmath.mpf]:
    r"""KL(N(mu_p, sigma_p^2) || N(mu_q, sigma_q^2)) by quadrature of the definition.

    .. math::
        \int p(x) \log\frac{p(x)}{q(x)}\,dx
        = \int \varphi(z) \left[\log p(x(z)) - \log q(x(z))\right] dz,
        \quad x(z) = \mu_p + \sigma_p z

    Parameters
    ----------
    mu_p, sigma_p, mu_q, sigma_q : exact real numbers
        Means and standard deviations (see :func:`symkl.accuracy.ball.to_ball`).
    dps : int
        Correct significant digits wanted.
    method : {"arb", "mpmath"}
        ``"arb"`` (default): certified ball quadrature
        (:func:`kl_quad_enclosure`); the returned digits are proved by the
        ball's radius.  ``"mpmath"``: tanh-sinh quadrature at rising
        precision, accepted when two passes agree to ``dps`` digits and the
        error estimate is below them (an estimate, not a proof; kept as an
        independent implementation to cross-check the first).
    return_error : bool
        Also return the absolute error of the returned value: a certified
        bound (``"arb"``: the ball's radius plus the rounding of the midpoint
        to ``dps`` digits, so ``value -/+ error`` holds the true KL) or the
        estimate (``"mpmath"``).

    Returns
    -------
    mpmath.mpf
        The divergence, rounded to ``dps`` digits (and the error).

    Raises
    ------
    ValueError
        Non-positive or non-finite scales, non-finite or non-numeric input.
    QuadratureError
        When ``dps`` digits cannot be certified.

    Examples
    --------
    >>> mpmath.nstr(kl_quad("0", "1", "1", "2", dps=30), 25)
    '0.4431471805599453094172321'
    >>> mpmath.nstr(kl_quad("0", "1", "1", "2", dps=30, method="mpmath"), 25)
    '0.4431471805599453094172321'
    """
    if method == "arb":
        enclosure = kl_quad_enclosure(mu_p, sigma_p, mu_q, sigma_q, dps)
        value = enclosure.value(dps)
        return (value, enclosure.error_of(value)) if return_error else value
    if method == "mpmath":
        value, error = _kl_quad_mpmath(mu_p, sigma_p, mu_q, sigma_q, dps)
        return (value, error) if return_error else value
    raise ValueError(f"method must be 'arb' or 'mpmath', got {method!r}")


def _parameters_mpf(mu_p: Any, sigma_p: Any, mu_q: Any, sigma_q: Any) -> list[mpmath.mpf]:
    names = ("mu_p", "sigma_p", "mu_q", "sigma_q")
    values = [to_mpf(v, n) for n, v in zip(names, (mu_p, sigma_p, mu_q, sigma_q), strict=True)]
    for name, value in zip(names, values, strict=True):
        if name.startswith("sigma") and value <= 0:
            raise ValueError(
                f"{name} must be a positive standard deviation, got {mpmath.nstr(value, 8)}"
            )
    return values


def _log_normal_pdf(
    x: mpmath.mpf, mu: mpmath.mpf, sigma: mpmath.mpf, log_normaliser: mpmath.mpf
) -> mpmath.mpf:
    """log N(x; mu, sigma^2) from the density; ``log_normaliser`` is ``log(sigma sqrt(2 pi))``."""
    standardised = (x - mu) / sigma
    return -(standardised**2) / 2 - log_normaliser


def _kl_quad_mpmath(mu_p, sigma_p, mu_q, sigma_q, dps: int) -> tuple[mpmath.mpf, mpmath.mpf]:
    _check_dps(dps)
    with mpmath.workdps(dps + 20):
        parameters = _parameters_mpf(mu_p, sigma_p, mu_q, sigma_q)
    if _identical((mu_p, mu_q), (sigma_p, sigma_q)):
        return mpmath.mpf(0), mpmath.mpf(0)

    def integrand(z):
        mean_p, scale_p, mean_q, scale_q = parameters
        x = mean_p + scale_p * z
        return mpmath.npdf(z) * (
            _log_normal_pdf(x, mean_p, scale_p, normalisers[0])
            - _log_normal_pdf(x, mean_q, scale_q, normalisers[1])
        )

    def normalisers_of(values: list[mpmath.mpf]) -> tuple[mpmath.mpf, mpmath.mpf]:
        half_log_two_pi = mpmath.log(2 * mpmath.pi) / 2
        return mpmath.log(values[1]) + half_log_two_pi, mpmath.log(values[3]) + half_log_two_pi

    ranges = [-mpmath.inf, *_Z_BREAKPOINTS, mpmath.inf]
    with mpmath.workdps(20):
        parameters = _parameters_mpf(mu_p, sigma_p, mu_q, sigma_q)
        normalisers = normalisers_of(parameters)
        magnitude = mpmath.quad(lambda z: abs(integrand(z)), ranges)

    def evaluate(working: int):
        nonlocal parameters, normalisers
        with mpmath.workdps(working):
            parameters = _parameters_mpf(mu_p, sigma_p, mu_q, sigma_q)
            normalisers = normalisers_of(parameters)
            value, error = mpmath.quad(integrand, ranges, error=True)
            return value, error, magnitude / abs(value) if value else mpmath.inf

    return _agreeing_passes(evaluate, dps, "kl_quad(method='mpmath')")


def _agreeing_passes(evaluate, dps: int, who: str):
    """Evaluate at rising precision until two passes agree to ``dps`` digits.

    ``evaluate(working_dps)`` returns ``(value, abs_error, cancellation)``
    where ``cancellation`` is the ratio of the magnitudes that were summed to
    the result (digits lost = its log10).  Raises :class:`QuadratureError`
    when no agreement is reached.
    """
    working = dps + 15
    value, error, cancellation = evaluate(working)
    for _ in range(4):
        if mpmath.isfinite(cancellation) and cancellation > 0:
            lost = int(mpmath.log10(cancellation)) + 1
        else:  # no estimate (p and q equal at the low precision of the magnitude pass)
            lost = dps
        working = max(working + 10, dps + max(lost, 0) + 15)
        better, better_error, cancellation = evaluate(working)
        with mpmath.workdps(working):
            tolerance = abs(better) * mpmath.mpf(10) ** (-dps - 1)
            if abs(better - value) <= tolerance and better_error <= max(
                tolerance, mpmath.mpf(10) ** (-working)
            ):
                with mpmath.workdps(dps):
                    return +better, +better_error
        value, error = better, better_error
    raise QuadratureError(
        f"{who} could not certify {dps} digits: last two passes gave "
        f"{mpmath.nstr(value, 12)} (error estimate {mpmath.nstr(error, 3)})"
    )


# --------------------------------------------------------------------------------------
# the derived closed forms, in ball arithmetic


@functools.cache
def _univariate() -> Any:
    from symkl.kl import derive

    return derive("univariate")


@functools.cache
def _term_expression(param: str) -> tuple[Any, tuple[Any, ...]]:
    """The derived univariate closed form with both scales written as ``param``."""
    sp = _sympy()
    derivation = _univariate()
    mu_p, sigma_p, mu_q, sigma_q = derivation.parameters
    if param == "std":
        return derivation.closed_form, (mu_p, sigma_p, mu_q, sigma_q)
    s_p, s_q = sp.Symbol("s_p", real=True), sp.Symbol("s_q", real=True)
    expression = derivation.closed_form.xreplace(
        {sigma_p: sigma_from(s_p, param), sigma_q: sigma_from(s_q, param)}
    )
    if param == "logvar":
        # log(exp(a)/exp(b)) -> a - b and exp(a) exp(-b) -> exp(a - b): no ball for exp(a)
        expression = sp.powsimp(sp.expand(sp.expand_log(expression, force=True), multinomial=False))
    return expression, (mu_p, s_p, mu_q, s_q)


@functools.cache
def _term_function(param: str) -> Callable[..., arb]:
    expression, symbols = _term_expression(param)
    return compile_expression(expression, symbols)


@functools.cache
def _term_gradient_functions(param: str) -> tuple[Callable[..., arb], ...]:
    sp = _sympy()
    expression, symbols = _term_expression(param)
    return tuple(compile_expression(sp.diff(expression, s), symbols) for s in symbols)


def _term_balls(values: Sequence[Any], param: str) -> list[arb]:
    names = ("mu_p", "s_p", "mu_q", "s_q")
    balls = [to_ball(v, n) for n, v in zip(names, values, strict=True)]
    if param in ("std", "var"):
        for name, ball in zip(names[1::2], balls[1::2], strict=True):
            if not ball > 0:
                raise ValueError(f"{name} must be positive ({param}), got {ball.str(8)}")
    return balls


def kl_term(rows: Sequence[Sequence[Any]], param: str = "std", dps: int = 50) -> Enclosure:
    """Certified sum over coordinates of the derived univariate closed form.

    ``rows`` holds one ``(mu_p, s_p, mu_q, s_q)`` per coordinate, with ``s``
    a standard deviation, variance or log-variance (``param``); the closed
    form is ``symkl.derive("univariate").closed_form`` with ``sigma =``
    :func:`sigma_from` ``(s, param)``, evaluated in ball arithmetic and summed
    in balls, at rising precision until ``dps`` digits are certified.

    Examples
    --------
    >>> kl = kl_term([(0.0, 1.0, 0.0, 1.0 + 2.0**-52)], "std", dps=30)
    >>> kl.digits >= 30 and 4.9e-32 < float(kl) < 5e-32
    True
    """
    _check_dps(dps)
    function = _term_function(param)
    with ctx.workprec(64):
        converted = [_term_balls(row, param) for row in rows]  # validates every row
    # a coordinate where p and q are the same exact numbers adds exactly 0
    kept = [
        (row, balls)
        for row, balls in zip(rows, converted, strict=True)
        if not _identical((row[0], row[2]), (row[1], row[3]))
    ]
    if not kept:
        return Enclosure(arb(0))
    # exact inputs (every float is) are the same balls at any precision: convert once
    exact = all(ball.is_exact() for _, balls in kept for ball in balls)

    def evaluate() -> arb:
        total = arb(0)
        for row, balls in kept:
            total += function(*(balls if exact else _term_balls(row, param)))
        return total

    return certify(evaluate, dps, what=f"the closed form ({param})")


def kl_term_gradient(values: Sequence[Any], param: str = "std", dps: int = 30) -> list[mpmath.mpf]:
    """The derivative of the derived closed form along each of ``(mu_p, s_p, mu_q, s_q)``.

    ``sympy.diff`` of the proved closed form (with ``param`` substituted),
    evaluated in balls until every component is certified to ``dps`` digits
    *relative to the largest one* (the normwise error the checks measure; a
    component that is exactly 0 is enclosed near 0).

    Examples
    --------
    >>> [mpmath.nstr(g, 6) for g in kl_term_gradient((0, 1, 1, 2))]
    ['-0.25', '-0.75', '0.25', '0.25']
    """
    functions = _term_gradient_functions(param)
    if _identical((values[0], values[2]), (values[1], values[3])):
        return [mpmath.mpf(0)] * 4  # p = q: the minimum of KL >= 0, where the gradient is 0
    wanted = math.ceil(dps * math.log2(10)) + 4
    bits = wanted + 64
    while True:
        with ctx.workprec(bits):
            balls = _term_balls(values, param)
            gradient = [f(*balls) for f in functions]
            largest = max((abs(g.mid()) for g in gradient), default=arb(0))
            radius = max(g.rad() for g in gradient)
            if all(g.is_finite() for g in gradient) and (
                radius == 0 or (largest > 0 and radius <= largest * arb(2) ** -wanted)
            ):
                with mpmath.workdps(dps + 10):
                    return [+Enclosure(g).mid for g in gradient]
        if bits > 8192:
            raise PrecisionError(f"could not certify the gradient at {values} to {dps} digits")
        bits *= 2


def kl_closed_form_enclosure(
    mu_p: Any, sigma_p: Any, mu_q: Any, sigma_q: Any, dps: int = 50
) -> Enclosure:
    """Certified enclosure of the derived univariate closed form (standard deviations).

    Examples
    --------
    >>> kl_closed_form_enclosure("0", "1", "1", "2", dps=40).digits >= 40
    True
    """
    _check_dps(dps)
    with ctx.workprec(64):
        _balls(mu_p, sigma_p, mu_q, sigma_q)
    return kl_term([(mu_p, sigma_p, mu_q, sigma_q)], "std", dps)


def kl_closed_form(mu_p: Any, sigma_p: Any, mu_q: Any, sigma_q: Any, dps: int = 50) -> mpmath.mpf:
    """The *derived* univariate closed form, certified to ``dps`` digits in ball arithmetic.

    The expression is ``symkl.derive("univariate").closed_form`` (this imports
    SymPy on first use), evaluated on balls; near KL = 0 its O(1) terms cancel
    and the precision is raised until the radius certifies ``dps`` digits.

    Examples
    --------
    >>> mpmath.nstr(kl_closed_form("0", "1", "1", "2", dps=30), 25)
    '0.4431471805599453094172321'
    """
    return kl_closed_form_enclosure(mu_p, sigma_p, mu_q, sigma_q, dps).value(dps)


# full covariance


@functools.cache
def _mvn_evaluator(k: int) -> Callable[[list[list[Any]], Any], Any]:
    """Derivation ``full``'s closed form as a function of ``(M, |w|^2)`` for size ``k``.

    The closed form is a sum of ``Sum`` terms over matrix entries of
    ``M = L_q^{-1} L_p`` plus ``SquaredNorm(w)/2``; each summand is compiled
    once as a function of one entry and the sums run in Python, so ``k = 64``
    costs no more to prepare than ``k = 2``.
    """
    sp = _sympy()
    from symkl.kl import derive
    from symkl.model import MatrixEntry, SquaredNorm

    closed_form = derive("full").closed_form
    k_symbol = next(s for s in closed_form.free_symbols if s.name == "k")
    closed_form = closed_form.xreplace({k_symbol: sp.Integer(k)})
    sums = sorted(closed_form.atoms(sp.Sum), key=str)
    placeholders = [sp.Symbol(f"_sum{n}") for n in range(len(sums))]
    norm = sp.Symbol("_w_norm2")
    outer = closed_form.xreplace(dict(zip(sums, placeholders, strict=True)))
    outer = outer.xreplace({atom: norm for atom in outer.atoms(SquaredNorm)})
    if outer.atoms(MatrixEntry) or outer.atoms(sp.Sum):
        raise NotImplementedError("unexpected structure in derivation full's closed form")
    outer_function = compile_expression(outer, [*placeholders, norm])

    plans = []
    for total in sums:
        summand, limits = total.function, total.limits
        entries = sorted(summand.atoms(MatrixEntry), key=str)
        if len(entries) != 1:
            raise NotImplementedError(f"a summand with {len(entries)} matrix entries: {summand}")
        entry = sp.Symbol("_entry")
        function = compile_expression(summand.xreplace({entries[0]: entry}), [entry])
        # an exactly-zero entry whose summand is exactly 0 can be skipped (M_ij^2 for j < i)
        skip_zero = summand.xreplace({entries[0]: sp.Integer(0)}) == 0
        indices = [limit[0] for limit in limits]
        index_of_entry = [indices.index(s) for s in entries[0].args[1:]]
        bounds = [
            (sp.lambdify(indices, lo, "math"), sp.lambdify(indices, hi, "math"))
            for _, lo, hi in limits
        ]
        plans.append((function, index_of_entry, bounds, len(indices), skip_zero))

    def run(plan, matrix) -> Any:
        function, index_of_entry, bounds, depth, skip_zero = plan
        total = arb(0)
        values = [0] * depth

        def loop(level: int) -> None:
            nonlocal total
            if level < 0:
                row, column = (values[i] for i in index_of_entry)
                entry = matrix[row - 1][column - 1]
                if not (skip_zero and entry.is_zero()):
                    total += function(entry)
                return
            lo, hi = bounds[level]
            for value in range(int(lo(*values)), int(hi(*values)) + 1):
                values[level] = value
                loop(level - 1)

        loop(depth - 1)  # the last limit is the outermost sum
        return total

    def evaluate(matrix: list[list[Any]], squared_norm: Any) -> Any:
        return outer_function(*(run(plan, matrix) for plan in plans), squared_norm)

    return evaluate


class _UndecidedPivotError(ArithmeticError):
    """A Cholesky pivot whose ball contains 0: positive or not, this precision cannot say."""


def _undecided_is_unknown(evaluate: Callable[[], arb], max_bits: int = 8192) -> Callable[[], arb]:
    """``evaluate`` that doubles the precision while a pivot is undecided.

    An ill-conditioned SPD matrix is not an error: its pivots are decided at
    some precision (condition 1e300 needs about 1000 bits).  Past ``max_bits``
    the result is a non-finite ball and :func:`~symkl.accuracy.ball.certify`
    reports a :class:`PrecisionError`.
    """

    def wrapped() -> arb:
        bits = ctx.prec
        while True:
            try:
                with ctx.workprec(bits):
                    return evaluate()
            except _UndecidedPivotError:
                if bits >= max_bits:
                    return arb("nan")
                bits = min(2 * bits, max_bits)

    return wrapped


def _cholesky(matrix: list[list[arb]], name: str) -> list[list[arb]]:
    """Cholesky factor in balls; exact zeros are tracked, so a diagonal matrix costs O(k)."""
    size = len(matrix)
    lower = [[arb(0)] * size for _ in range(size)]
    nonzero: list[list[int]] = [[] for _ in range(size)]  # columns m < i with L[i][m] != 0
    for i in range(size):
        for j in range(i + 1):
            total = matrix[i][j]
            common = set(nonzero[i]).intersection(nonzero[j]) if j else ()
            for m in sorted(m for m in common if m < j):
                total -= lower[i][m] * lower[j][m]
            if i == j:
                if not total > 0:
                    if total <= 0:
                        raise ValueError(f"{name} must be symmetric positive definite")
                    # a pivot that is 0 up to rounding: more precision decides (certify)
                    raise _UndecidedPivotError(f"{name}: pivot {i} encloses 0 ({total.str(5)})")
                lower[i][i] = total.sqrt()
            elif not total.is_zero():
                lower[i][j] = total / lower[j][j]
                nonzero[i].append(j)
    return lower


def _forward_solve(lower: list[list[arb]], columns: list[list[arb]]) -> list[list[arb]]:
    """``L^{-1} B`` for lower-triangular ``L`` and the columns of ``B`` (exact zeros skipped)."""
    size = len(lower)
    below = [[m for m in range(i) if not lower[i][m].is_zero()] for i in range(size)]
    result = []
    for column in columns:
        x = [arb(0)] * size
        for i in range(size):
            total = column[i]
            for m in below[i]:
                if not x[m].is_zero():
                    total -= lower[i][m] * x[m]
            x[i] = total / lower[i][i] if not total.is_zero() else arb(0)
        result.append(x)
    return result


def _matrix(value: Any, name: str, k: int) -> list[list[arb]]:
    array = np.asarray(value, dtype=object)
    if array.shape != (k, k):
        raise ValueError(f"{name} must have shape ({k}, {k}), got {array.shape}")
    balls = [[to_ball(array[i, j], name) for j in range(k)] for i in range(k)]
    for i in range(k):
        for j in range(i):
            lower, upper = array[i, j], array[j, i]
            if type(lower) is float and type(upper) is float:
                symmetric = lower == upper
            else:  # "0.1" and "0.10" are the same entry; a ball that is not exact is not
                exact = exact_rational(lower)
                symmetric = exact is not None and exact == exact_rational(upper)
            if not symmetric:
                raise ValueError(
                    f"{name} must be exactly symmetric: [{i}, {j}] = {lower!r} != "
                    f"[{j}, {i}] = {upper!r}"
                )
    return balls


def _vector(value: Any, name: str) -> list[arb]:
    return [to_ball(v, name) for v in np.ravel(np.asarray(value, dtype=object))]


def _same_gaussians(mu_p: Any, cov_p: Any, mu_q: Any, cov_q: Any) -> bool:
    """Whether p and q have the very same exact means and covariances (KL = 0 exactly)."""
    means_p, means_q = (np.ravel(np.asarray(v, dtype=object)) for v in (mu_p, mu_q))
    covs_p, covs_q = (np.ravel(np.asarray(v, dtype=object)) for v in (cov_p, cov_q))
    if means_p.shape != means_q.shape or covs_p.shape != covs_q.shape:
        return False
    return _identical(*zip(means_p, means_q, strict=True), *zip(covs_p, covs_q, strict=True))


def kl_mvn_reference(mu_p: Any, cov_p: Any, mu_q: Any, cov_q: Any, dps: int = 50) -> Enclosure:
    """Certified KL between full-covariance Gaussians from derivation ``full``'s closed form.

    ``L_p``, ``L_q`` (Cholesky factors), ``M = L_q^{-1} L_p`` and
    ``w = L_q^{-1} (mu_q - mu_p)`` are computed in ball arithmetic from the
    exact inputs and fed to the proved closed form
    ``(|w|^2 + sum_i (M_ii^2 - 1 - 2 log M_ii) + sum_{j<i} M_ij^2) / 2``.
    Identical exact inputs give exactly 0 (KL(p || p) = 0).

    Examples
    --------
    >>> kl = kl_mvn_reference([0, 0], [[2, 1], [1, 2]], [1, 0], [[1, 0], [0, 1]])
    >>> mpmath.nstr(kl.mid, 15), kl.digits >= 50
    ('0.950693855665945', True)
    """
    _check_dps(dps)
    k = len(np.ravel(np.asarray(mu_p, dtype=object)))
    evaluator = _mvn_evaluator(k)
    with ctx.workprec(64):
        mean_p, mean_q = _vector(mu_p, "mu_p"), _vector(mu_q, "mu_q")
        if len(mean_q) != k:
            raise ValueError(f"mu_q must have {k} entries like mu_p, got {len(mean_q)}")
        exact = [_matrix(cov_p, "cov_p", k), _matrix(cov_q, "cov_q", k)]
        if _same_gaussians(mu_p, cov_p, mu_q, cov_q):
            return Enclosure(arb(0))

    inputs = [mean_p, *exact, mean_q]
    reuse = all(ball.is_exact() for ball in [*mean_p, *mean_q]) and all(
        entry.is_exact() for matrix in exact for row in matrix for entry in row
    )  # exact inputs (floats) are the same balls at every precision

    def evaluate() -> arb:
        if reuse:
            means_p, matrix_p, matrix_q, means_q = inputs
        else:
            means_p, means_q = _vector(mu_p, "mu_p"), _vector(mu_q, "mu_q")
            matrix_p, matrix_q = _matrix(cov_p, "cov_p", k), _matrix(cov_q, "cov_q", k)
        lower_p = _cholesky(matrix_p, "cov_p")
        lower_q = _cholesky(matrix_q, "cov_q")
        difference = [b - a for a, b in zip(means_p, means_q, strict=True)]
        columns = _forward_solve(lower_q, [[lower_p[i][j] for i in range(k)] for j in range(k)])
        matrix = [[columns[j][i] for j in range(k)] for i in range(k)]
        (w,) = _forward_solve(lower_q, [difference])
        return evaluator(matrix, sum((x * x for x in w), arb(0)))

    return certify(_undecided_is_unknown(evaluate), dps, what=f"kl_mvn's closed form (k = {k})")


def kl_mvn_quad(mu_p: Any, cov_p: Any, mu_q: Any, cov_q: Any, dps: int = 15) -> Enclosure:
    r"""Certified 2-D quadrature of the definition for full covariances at ``k = 2``.

    With ``x = mu_p + L_p z`` the density of p is the standard normal in z, and

    .. math::
        \log p(x) - \log q(x) = -\frac{|z|^2}{2} - \log\det L_p
        + \frac{(x - \mu_q)^T \Sigma_q^{-1} (x - \mu_q)}{2} + \frac{\log\det\Sigma_q}{2},

    evaluated from ``Sigma_q^{-1}`` (the adjugate over the determinant) at
    every ball node; the tails outside ``[-L, L]^2`` are bounded with
    ``|g| <= a + c |z|^2`` (:func:`~symkl.accuracy.ball.gaussian_expectation_2d`).

    Examples
    --------
    >>> kl = kl_mvn_quad([0, 0], [[2, 1], [1, 2]], [1, 0], [[1, 0], [0, 1]], dps=12)
    >>> mpmath.nstr(kl.mid, 12)
    '0.950693855666'
    """
    _check_dps(dps)
    if np.shape(np.asarray(mu_p, dtype=object)) != (2,):
        raise ValueError(f"kl_mvn_quad integrates k = 2 only; mu_p has shape {np.shape(mu_p)}")
    if np.shape(np.asarray(mu_q, dtype=object)) != (2,):
        raise ValueError(f"mu_q must have shape (2,) like mu_p, got {np.shape(mu_q)}")
    with ctx.workprec(64):  # validate before any work
        _vector(mu_p, "mu_p"), _vector(mu_q, "mu_q")
        _matrix(cov_p, "cov_p", 2), _matrix(cov_q, "cov_q", 2)
    if _same_gaussians(mu_p, cov_p, mu_q, cov_q):
        return Enclosure(arb(0))  # the integrand is identically 0

    def evaluate() -> arb:
        lower_p = _cholesky(_matrix(cov_p, "cov_p", 2), "cov_p")
        (s11, s12), (_, s22) = _matrix(cov_q, "cov_q", 2)
        determinant_q = s11 * s22 - s12 * s12
        inverse = (
            (s22 / determinant_q, -s12 / determinant_q),
            (-s12 / determinant_q, s11 / determinant_q),
        )
        d1, d2 = (a - b for a, b in zip(_vector(mu_p, "mu_p"), _vector(mu_q, "mu_q"), strict=True))
        (l11, _), (l21, l22) = lower_p
        constant = determinant_q.log() / 2 - (l11 * l22).log()

        def log_ratio(z1: acb, z2: acb) -> acb:
            u1 = d1 + l11 * z1  # x - mu_q = (mu_p - mu_q) + L_p z
            u2 = d2 + l21 * z1 + l22 * z2
            quadratic = (
                inverse[0][0] * u1 * u1 + 2 * inverse[0][1] * u1 * u2 + inverse[1][1] * u2 * u2
            )
            return -(z1 * z1 + z2 * z2) / 2 + quadratic / 2 + constant

        spread = sum((v * v for row in inverse for v in row), arb(0)).sqrt()
        factor = (l11 * l11 + l21 * l21 + l22 * l22).sqrt()
        a = abs(constant) + spread * (d1 * d1 + d2 * d2)
        c = arb(1) / 2 + spread * factor * factor
        return gaussian_expectation_2d(
            log_ratio, (a, 0, 0, c, c), bits=ctx.prec, magnitude=a + 2 * c
        )

    return certify(_undecided_is_unknown(evaluate, 512), dps, what="kl_mvn_quad", max_bits=512)


# --------------------------------------------------------------------------------------
# Monte Carlo


@dataclass(frozen=True)
class MonteCarloEstimate:
    """A Monte Carlo estimate of a KL divergence with its standard error."""

    value: float
    standard_error: float
    samples: int

    def interval(self, width: float = 4.0) -> tuple[float, float]:
        """``value -/+ width * standard_error``."""
        return (
            self.value - width * self.standard_error,
            self.value + width * self.standard_error,
        )


def kl_monte_carlo(
    mu_p: Any,
    s_p: Any,
    mu_q: Any,
    s_q: Any,
    *,
    samples: int,
    rng: np.random.Generator,
    param: str = "std",
) -> MonteCarloEstimate:
    r"""Estimate KL(p || q) for diagonal Gaussians by sampling from p.

    .. math::
        \widehat{KL} = \frac1n \sum_{i=1}^n \left[\log p(x_i) - \log q(x_i)\right],
        \quad x_i \sim p,

    with standard error ``std(log p - log q) / sqrt(n)``.  This is the
    estimator behind "can I compute the KL by sampling?"; it converges as
    ``1/sqrt(n)`` and needs no closed form.  It is *not*
    ``torch.nn.functional.kl_div`` on the samples: that function expects
    log-probabilities and probabilities of one discrete distribution and
    returns a number with no relation to this KL (docs/sampling.md).

    Parameters
    ----------
    mu_p, s_p, mu_q, s_q : array_like, shape (k,) or scalars
        Means and scales of the diagonal Gaussians; ``param`` says whether
        ``s`` holds standard deviations (``"std"``), variances (``"var"``) or
        log-variances (``"logvar"``).
    samples : int
        Number of draws, at least 2.
    rng : numpy.random.Generator
        An explicit, seeded generator (``numpy.random.default_rng(seed)``),
        so that every estimate can be reproduced.
    param : {"std", "var", "logvar"}

    Returns
    -------
    MonteCarloEstimate

    Raises
    ------
    ValueError
        For a missing or wrong ``rng``, too few samples, an unknown ``param``,
        non-finite means, non-positive or non-finite scales, or shapes that do
        not match.

    Examples
    --------
    >>> estimate = kl_monte_carlo(0.0, 1.0, 1.0, 2.0, samples=100_000,
    ...                           rng=np.random.default_rng(0))
    >>> abs(estimate.value - 0.4431471805599453) < 4 * estimate.standard_error
    True
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            "rng must be a numpy.random.Generator (numpy.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    if isinstance(samples, bool) or not isinstance(samples, numbers.Integral) or samples < 2:
        raise ValueError(f"samples must be an integer >= 2, got {samples!r}")
    if param not in PARAMS:
        raise ValueError(f"param must be 'std', 'var' or 'logvar', got {param!r}")
    names = ("mu_p", "s_p", "mu_q", "s_q")
    arrays = []
    for name, value in zip(names, (mu_p, s_p, mu_q, s_q), strict=True):
        try:
            array = np.atleast_1d(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name} must be real numbers, got {value!r}") from error
        if array.ndim != 1:
            raise ValueError(f"{name} must be a scalar or a vector (k,), got shape {array.shape}")
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} must be finite, got {value!r}")
        if name.startswith("s") and param != "logvar" and np.any(array <= 0):
            raise ValueError(f"{name} must be positive ({param}), got {value!r}")
        arrays.append(array)
    try:
        mean_p, scale_p, mean_q, scale_q = np.broadcast_arrays(*arrays)
    except ValueError:
        shapes = ", ".join(f"{n} {a.shape}" for n, a in zip(names, arrays, strict=True))
        raise ValueError(f"shapes do not match: {shapes}") from None
    if param == "var":
        scale_p, scale_q = np.sqrt(scale_p), np.sqrt(scale_q)
    elif param == "logvar":
        scale_p, scale_q = np.exp(scale_p / 2), np.exp(scale_q / 2)
    draws = mean_p + scale_p * rng.standard_normal((int(samples), mean_p.size))

    def log_density(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
        standardised = (x - mean) / scale
        return np.sum(-0.5 * standardised**2 - np.log(scale) - 0.5 * np.log(2 * np.pi), axis=-1)

    log_ratio = log_density(draws, mean_p, scale_p) - log_density(draws, mean_q, scale_q)
    return MonteCarloEstimate(
        value=float(np.mean(log_ratio)),
        standard_error=float(np.std(log_ratio, ddof=1) / np.sqrt(samples)),
        samples=int(samples),
    )
