"""The kernel's numerics: evaluation at exact points, integrals that cannot miss mass.

Everything the numeric side computes goes through :func:`evaluate`.  It returns
a value and an absolute error bound estimate.

* Integrals over the line whose integrand is a sum of Gaussian factors times
  polynomials (sines, cosines) are *certified*: each Gaussian group is
  standardised exactly and enclosed in ball arithmetic by
  :func:`symkl.accuracy.ball.gaussian_expectation` (``acb.integral`` with a
  rigorous bound on the tails); the error is the ball's radius, so an
  enclosure too wide for the asked digits makes the check fail.
* Other integrals over the line are split at the centre of *every* Gaussian factor
  of *every* term (and a few widths either side), so mass far from the origin
  or in a narrow peak is never stepped over; tanh-sinh quadrature runs on
  each piece.
* Integrals over ``R^k`` use a tensor Gauss-Hermite rule per Gaussian: the
  integrand is expanded into terms, terms are grouped by their Gaussian
  factor, and each group is integrated around its own centre with its own
  covariance (a mixture's second component is not invisible).  Integrands with
  no Gaussian factor fall back to nested quadrature split at the centres.
* :func:`evaluate` records which way each integral was computed
  (``"certified"`` or ``"quadrature"``) in the ``methods`` set it is given.
* ``Derivative`` and ``Subs`` of a derivative are evaluated by mpmath's
  numerical differentiation, ``Limit`` (finite) by mpmath's extrapolation:
  the numeric side never asks SymPy for the value it is meant to check.

Examples
--------
>>> import sympy as sp
>>> x = sp.Symbol("x", real=True)
>>> value, error = evaluate(sp.Integral(sp.exp(-(x - 1000)**2), (x, -sp.oo, sp.oo)), 30)
>>> mpmath.nstr(value, 15)
'1.77245385090552'
"""

from __future__ import annotations

import itertools

import mpmath
import sympy as sp

__all__ = ["EvaluationError", "evaluate", "to_mp"]

#: widths (in standard deviations) either side of every Gaussian centre used as breakpoints
_WIDTHS = (0, 6, 30)
_DEFAULT_BREAKS = (-8, -2, 0, 2, 8)


class EvaluationError(ValueError):
    """The numeric side could not evaluate an expression."""


def to_mp(value: sp.Basic, dps: int) -> mpmath.mpf | mpmath.mpc:
    """An mpmath number for a parameter-free SymPy expression, at ``dps`` digits.

    SymPy's ``N`` does not add the digits a large argument costs (``exp(7e24)``
    at 40 digits has 6 right): the working precision grows by the number of
    digits of the largest rational in ``value``.
    """
    sizes = [abs(r.p) // r.q for r in value.atoms(sp.Rational) if abs(r.p) > r.q]
    extra = max((len(str(size)) for size in sizes), default=0)
    number = sp.N(value, dps + 10 + extra)
    if number.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        return mpmath.mpf("nan")
    if number.free_symbols:
        raise EvaluationError(f"cannot evaluate {value}: free symbols {number.free_symbols}")
    re, im = number.as_real_imag()
    if not (re.is_Number and im.is_Number):
        raise EvaluationError(f"cannot evaluate {str(value)[:120]} to a number")
    real = (
        mpmath.mpf(re._mpf_)
        if re.is_Float
        else mpmath.mpf(re.p) / re.q
        if re.is_Rational
        else mpmath.mpf("nan")
    )
    if im == 0:
        return real
    imag = mpmath.mpf(im._mpf_) if im.is_Float else mpmath.mpf(im.p) / im.q
    return mpmath.mpc(real, imag)


def _gaussian_parts(term: sp.Expr, variables: list) -> tuple[sp.Expr, sp.Expr] | None:
    """``(exponent, rest)``: ``term = exp(exponent) * rest``, exponent from its top-level exps."""
    exps = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.exp) and f.has(*variables)]
    if not exps:
        return None
    exponent = sp.expand(sp.Add(*[f.args[0] for f in exps]))
    return exponent, term / sp.Mul(*exps)


def _quadratic(exponent: sp.Expr, variables: list, dps: int):
    """Centre and covariance (mpmath) of ``exp(exponent)`` if it is a concave quadratic."""
    try:
        poly = sp.Poly(exponent, *variables)
    except sp.PolynomialError:
        return None
    if poly.total_degree() != 2:
        return None
    with mpmath.workdps(dps + 20):
        try:
            hessian = mpmath.matrix(
                [[to_mp(sp.diff(exponent, a, b), dps + 20) for b in variables] for a in variables]
            )
            gradient = mpmath.matrix(
                [
                    to_mp(sp.diff(exponent, a).xreplace({v: 0 for v in variables}), dps + 20)
                    for a in variables
                ]
            )
            covariance = mpmath.inverse(-hessian)
            chol = mpmath.cholesky(covariance)
        except (ZeroDivisionError, ValueError, TypeError, EvaluationError):
            return None
        return covariance * gradient, chol


def _centres_1d(integrand: sp.Expr, x: sp.Symbol, dps: int) -> list:
    """Breakpoints: every Gaussian factor's centre and a few widths either side."""
    points = []
    for term in sp.Add.make_args(sp.expand(integrand, deep=False, mul=True, multinomial=False)):
        parts = _gaussian_parts(term, [x])
        found = _quadratic(parts[0], [x], dps) if parts else None
        if found is None:
            continue
        centre, chol = found
        width = chol[0, 0]
        points += [centre[0] + sign * w * width for w in _WIDTHS for sign in (-1, 1)]
    return points or [mpmath.mpf(b) for b in _DEFAULT_BREAKS]


def _interval(low, high, breaks) -> list:
    inner = sorted({b for b in breaks if low < b < high})
    return [low, *inner, high]


def _limit_mp(bound: sp.Expr, dps: int):
    if bound == sp.oo:
        return mpmath.inf
    if bound == -sp.oo:
        return -mpmath.inf
    return to_mp(bound, dps)


_HERMITE: dict[tuple[int, int], tuple[list, list]] = {}


def _hermite_rule(n: int, dps: int) -> tuple[list, list]:
    """Nodes and weights of the n-point Gauss-Hermite rule (weight exp(-z^2)), Golub-Welsch."""
    if (n, dps) not in _HERMITE:
        with mpmath.workdps(dps + 20):
            jacobi = mpmath.zeros(n, n)
            for j in range(1, n):
                jacobi[j, j - 1] = jacobi[j - 1, j] = mpmath.sqrt(mpmath.mpf(j) / 2)
            nodes, vectors = mpmath.eigsy(jacobi)
            weights = [mpmath.sqrt(mpmath.pi) * vectors[0, j] ** 2 for j in range(n)]
            _HERMITE[(n, dps)] = ([nodes[j] for j in range(n)], weights)
    return _HERMITE[(n, dps)]


def _gauss_hermite(terms: list, variables: list, centre, chol, dps: int):
    """Integrate the sum of ``terms`` (sharing one Gaussian factor) by two tensor rules."""
    k = len(variables)
    function = sp.lambdify(variables, sp.Add(*terms), modules="mpmath")
    jacobian = mpmath.sqrt(2) ** k * mpmath.det(chol)

    def rule(n: int):
        nodes, weights = _hermite_rule(n, dps)
        total = mpmath.mpf(0)
        for index in itertools.product(range(n), repeat=k):
            z = mpmath.matrix([nodes[j] for j in index])
            point = centre + mpmath.sqrt(2) * (chol * z)
            weight = mpmath.fprod(weights[j] for j in index)
            total += weight * function(*point) * mpmath.exp(mpmath.fsum(t**2 for t in z))
        return total * jacobian

    # n points per axis are exact for Gaussian x polynomial of degree < 2n (symkl's
    # integrands have degree <= 4); the n + 2 rule estimates the error of anything else
    n = {1: 8, 2: 6}.get(k, 4)
    with mpmath.workdps(dps + 10):  # ill-conditioned covariances cost digits
        coarse, fine = rule(n), rule(n + 2)
    return fine, abs(fine - coarse)


def _majorant(expr: sp.Expr, z: sp.Symbol, ball) -> list | None:
    """Balls ``b_n`` with ``|expr(z)| <= sum b_n |z|^n`` for real ``z``; None if not entire/bounded.

    Polynomials in ``z`` (any constants), times sines and cosines of real arguments.
    """
    if not expr.has(z):
        return [abs(ball.compile_expression(expr, [])())]
    if expr == z:
        return [ball.arb(0), ball.arb(1)]
    if isinstance(expr, (sp.sin, sp.cos)) and expr.args[0].is_extended_real:
        return [ball.arb(1)]
    parts = None
    if isinstance(expr, sp.Add):
        parts = [_majorant(a, z, ball) for a in expr.args]
        if any(p is None for p in parts):
            return None
        width = max(len(p) for p in parts)
        return [sum((p[n] for p in parts if n < len(p)), ball.arb(0)) for n in range(width)]
    if isinstance(expr, sp.Pow) and expr.exp.is_Integer and expr.exp > 0:
        parts = [_majorant(expr.base, z, ball)] * int(expr.exp)
    elif isinstance(expr, sp.Mul):
        parts = [_majorant(a, z, ball) for a in expr.args]
    if parts is None or any(p is None for p in parts):
        return None
    product = [ball.arb(1)]
    for p in parts:  # the majorant of a product: the product (convolution) of majorants
        product = [
            sum((product[i] * p[n - i] for i in range(len(product)) if 0 <= n - i < len(p)),
                ball.arb(0))
            for n in range(len(product) + len(p) - 1)
        ]  # fmt: skip
    return product


def _certified_line(integrand: sp.Expr, x: sp.Symbol, dps: int):
    """``(value, radius)`` of the integral over the line in ball arithmetic, or None.

    Applies to sums of ``exp(concave quadratic) * rest`` with ``rest`` a
    polynomial (times sines and cosines) once logarithms of positive factors
    are expanded.  Each Gaussian group ``exp(a x^2 + b x + e)`` is written
    exactly as ``exp(E(c)) exp(-(x - c)^2 / (2 w^2))`` and ``rest(c + w z)`` is
    expanded exactly, so huge or tiny centres and widths cost no digits.
    """
    from symkl.accuracy import ball  # flint only when an integral is certified

    # exp(a + b) is not split, and every exp factor of a term (constant ones too) joins
    # its Gaussian: exp(-mu^2 / (2 s^2)) left in ``rest`` would cancel against exp(E(c))
    expanded = sp.expand(sp.expand_log(integrand), power_exp=False)
    groups: dict[sp.Expr, list] = {}
    for term in sp.Add.make_args(expanded):
        exps = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.exp)]
        if not any(f.has(x) for f in exps):
            return None
        exponent = sp.expand(sp.Add(*[f.args[0] for f in exps]))
        groups.setdefault(exponent, []).append(term / sp.Mul(*exps))
    z = sp.Dummy("z", real=True)
    bits = int(dps * 3.33) + 16
    total = None
    with ball.ctx.workprec(bits + 64):
        for exponent, rests in groups.items():
            try:
                poly = sp.Poly(exponent, x)
            except sp.PolynomialError:
                return None
            if poly.degree() != 2 or poly.coeff_monomial(x**2).is_negative is not True:
                return None
            a, b = poly.coeff_monomial(x**2), poly.coeff_monomial(x)
            centre, width = -b / (2 * a), sp.sqrt(-1 / (2 * a))
            rest = sp.expand(sp.Add(*rests).xreplace({x: centre + width * z}))
            bound = _majorant(rest, z, ball)
            if bound is None or rest.has(x):
                return None
            scale = width * sp.sqrt(2 * sp.pi) * sp.exp(exponent.xreplace({x: centre}))
            expectation = ball.gaussian_expectation(
                ball.compile_expression(rest, [z]),
                tuple(bound),
                bits=bits,
                magnitude=ball.absolute_moment_bound(bound),
            )
            piece = ball.compile_expression(scale, [])() * expectation
            total = piece if total is None else total + piece
        if total is None:
            return None
        if not total.is_finite():  # no enclosure at all: an infinite error, never a value
            return mpmath.mpf(0), mpmath.inf
        enclosure = ball.Enclosure(total)
        return enclosure.mid, enclosure.radius


def _integrate(integral: sp.Integral, dps: int, methods: set | None = None):
    variables = [lim[0] for lim in integral.limits]
    integrand = integral.function
    if integrand.has(sp.Integral):
        raise EvaluationError(f"nested integrals are not supported: {str(integral)[:120]}")
    whole_space = all(lim[1] == -sp.oo and lim[2] == sp.oo for lim in integral.limits)
    methods = set() if methods is None else methods
    if whole_space and len(variables) == 1:
        certified = _certified_line(integrand, variables[0], dps)
        if certified is not None:
            methods.add("certified")
            return certified
    methods.add("quadrature")
    if whole_space:
        groups: dict[sp.Expr, list] = {}
        terms = sp.Add.make_args(sp.expand(integrand, deep=False, mul=True, multinomial=False))
        for term in terms:
            parts = _gaussian_parts(term, variables)
            if parts is None:
                groups = {}
                break
            groups.setdefault(parts[0], []).append(term)
        shapes = {e: _quadratic(e, variables, dps) for e in groups}
        if groups and all(shape is not None for shape in shapes.values()):
            value, error = mpmath.mpf(0), mpmath.mpf(0)
            for exponent, members in groups.items():
                v, e = _gauss_hermite(members, variables, *shapes[exponent], dps + 10)
                value, error = value + v, error + e
            # on the line, keep the rule only when it has converged (polynomial x Gaussian);
            # otherwise tanh-sinh split at the centres decides
            if len(variables) > 1 or error <= abs(value) * mpmath.mpf(10) ** (-dps - 2):
                return value, error
    dependent = [
        lim
        for lim in integral.limits
        if (lim[1].free_symbols | lim[2].free_symbols) & set(variables)
    ]
    if dependent:  # iterated: the outermost variable by quadrature, the rest inside it
        outer, inner = integral.limits[-1], integral.limits[:-1]
        low, high = _limit_mp(outer[1], dps), _limit_mp(outer[2], dps)

        def slice_value(v):
            at = sp.Float(v, dps + 10)
            return _integrate(
                sp.Integral(
                    integrand.xreplace({outer[0]: at}),
                    *[tuple(b.xreplace({outer[0]: at}) for b in lim) for lim in inner],
                ),
                dps,
            )[0]

        return mpmath.quad(slice_value, [low, high], error=True)
    raw = sp.lambdify(variables, integrand, modules="mpmath")
    if len(variables) == 1:
        _check_decay(raw, integral.limits[0], dps)
    ranges = []
    for lim in integral.limits:
        breaks = (
            _centres_1d(integrand, lim[0], dps)
            if len(variables) == 1
            else [mpmath.mpf(b) for b in _DEFAULT_BREAKS]
        )
        ranges.append(_interval(_limit_mp(lim[1], dps), _limit_mp(lim[2], dps), breaks))
    # mpmath stops at an absolute tolerance: scale the integrand to O(1) at its breakpoints
    # first, or an integral of size 1e-180 "converges" at once to 4 digits
    scale = mpmath.mpf(0)
    if len(variables) == 1:
        for b in ranges[0][1:-1]:
            try:
                scale = max(scale, abs(raw(b)))
            except (ValueError, ZeroDivisionError, TypeError):
                continue
    if not scale or not mpmath.isfinite(scale):
        scale = mpmath.mpf(1)
    value, error = mpmath.quad(lambda *v: raw(*v) / scale, *ranges, error=True)
    return value * scale, error * scale


def _check_decay(raw, limit: tuple, dps: int) -> None:
    """Refuse an infinite range whose integrand does not decay like ``1/|x|^(1+1/8)``.

    tanh-sinh stops at its last node: a divergent ``∫ x dx`` over the line
    comes back as 0 with a tiny error estimate (and ``∫ |x|`` as 1e68, which
    then hid any error when judging an exact 0).  At ``|x| = 10^40``
    ``|x f(x)|`` must be below ``10^-5``.
    """
    with mpmath.workdps(dps):
        far = mpmath.mpf(10) ** 40
        for bound, sign in ((limit[1], -1), (limit[2], 1)):
            if bound not in (sp.oo, -sp.oo):
                continue
            try:
                tail = abs(far * raw(sign * far))
            except (ValueError, ZeroDivisionError, TypeError, OverflowError):
                continue
            if not mpmath.isfinite(tail) or tail > mpmath.mpf(10) ** -5:
                raise EvaluationError(
                    f"the integrand does not decay at {'+' if sign > 0 else '-'}oo "
                    f"(|x f(x)| = {mpmath.nstr(tail, 5)} at |x| = 1e40): "
                    "the integral may diverge"
                )


_CACHE: dict[tuple, tuple] = {}


def _integral_value(integral: sp.Integral, dps: int, methods: set):
    from symkl.proof.claims import admit

    integral = admit(integral)  # canonical dummies: the same integral in two claims is one key
    key = (integral, dps)
    if key not in _CACHE:
        if len(_CACHE) > 4096:
            _CACHE.clear()
        used: set[str] = set()
        value, error = _integrate(integral, dps, used)
        _CACHE[key] = (value, error, frozenset(used))
    value, error, used = _CACHE[key]
    methods |= used
    return value, error


def _derivative_value(derivative: sp.Derivative, point: dict, dps: int):
    """``d^n f / dx^n`` at ``point`` by mpmath.diff (variables must be given values)."""
    expr = derivative.expr
    orders: dict[sp.Basic, int] = {}
    for variable, count in derivative.variable_count:
        orders[variable] = orders.get(variable, 0) + int(count)
    variables = list(orders)
    magnitudes = [to_mp(point[v], 15) for v in variables]
    function = sp.lambdify(
        variables,
        expr.xreplace({k: v for k, v in point.items() if k not in orders}),
        modules="mpmath",
    )
    # a step beside x = 1e30 needs 30 more digits to be a step at all; two precisions
    # apart by 10 digits: their gap is the error (a difference quotient has no other bound)
    extra = sum(max(0, int(mpmath.log10(abs(v) + 1))) for v in magnitudes if mpmath.isfinite(v))
    values = []
    for guard in (15, 25):
        with mpmath.workdps(dps + guard + extra):  # the point itself to the working digits
            at = [to_mp(point[v], dps + guard + extra) for v in variables]
            values.append(mpmath.diff(function, at, tuple(orders[v] for v in variables)))
    value = values[1]
    return value, abs(values[1] - values[0]) + abs(value) * mpmath.mpf(10) ** (-(dps + 5))


def _special_value(atom: sp.Basic, dps: int, point: dict, methods: set):
    if isinstance(atom, sp.Integral):
        if any(len(lim) != 3 for lim in atom.limits):
            raise EvaluationError(f"indefinite integral: {atom}")
        return _integral_value(atom.xreplace(point), dps, methods)
    if isinstance(atom, sp.Subs) and isinstance(atom.expr, sp.Derivative):
        at = {v: p.xreplace(point) for v, p in zip(atom.variables, atom.point, strict=True)}
        return _derivative_value(atom.expr, {**point, **at}, dps)
    if isinstance(atom, sp.Derivative):
        return _derivative_value(atom, point, dps)
    if isinstance(atom, sp.Limit):
        expr, variable, target, direction = atom.xreplace(point).args
        if target.is_infinite:
            raise EvaluationError(f"a limit at infinity cannot be checked numerically: {atom}")
        f = sp.lambdify(variable, expr, modules="mpmath")
        sign = 1 if str(direction) == "+" else -1
        with mpmath.workdps(dps + 15):
            at = to_mp(target, dps)
            value = mpmath.limit(lambda h: f(at + sign * h), 0)
            other = mpmath.limit(lambda h: f(at + sign * h), 0, exp=True)
        # two extrapolations (Richardson on 1/n and on 2^-n steps): their gap is the error
        return value, abs(value - other)
    raise EvaluationError(f"cannot evaluate {atom}")


def _specials(expr: sp.Basic) -> list[sp.Basic]:
    """The outermost integrals, derivatives (bare or in a Subs) and limits of ``expr``."""
    found = list(
        dict.fromkeys(
            a
            for a in sp.preorder_traversal(expr)
            if isinstance(a, (sp.Integral, sp.Limit))
            or (isinstance(a, sp.Derivative))
            or (isinstance(a, sp.Subs) and isinstance(a.expr, sp.Derivative))
        )
    )
    return [a for a in found if not any(a != b and b.has(a) for b in found)]


def evaluate(
    expr: sp.Basic, dps: int, point: dict | None = None, methods: set | None = None
) -> tuple:
    """Value and absolute error estimate of ``expr`` at ``point`` (exact values), ``dps`` digits.

    The point is applied here, not by the caller: derivatives are taken in
    their variables before those variables are given values.  Each integral
    adds ``"certified"`` (a ball enclosure: the error is rigorous) or
    ``"quadrature"`` (mpmath: the error is an estimate) to ``methods``.
    Raises :class:`EvaluationError` when it cannot be evaluated.
    """
    point = point or {}
    methods = set() if methods is None else methods
    with mpmath.workdps(dps):
        total_error = mpmath.mpf(0)
        replacements = {}
        for atom in _specials(expr):
            value, error = _special_value(atom, dps, point, methods)
            marker = sp.Dummy("v")
            replacements[atom] = (marker, value, error)
        body = expr.xreplace({a: m for a, (m, _, _) in replacements.items()}).xreplace(point)
        if not replacements:
            return to_mp(body, dps), total_error
        markers = [m for m, _, _ in replacements.values()]
        values = [v for _, v, _ in replacements.values()]
        function = sp.lambdify(markers, body, modules="mpmath")
        value = function(*values)
        for index, (_, _, error) in enumerate(replacements.values()):
            if error == 0:
                continue
            # carry each error through the enclosing expression (first-order, doubled)
            shifted = list(values)
            shifted[index] = values[index] + error
            total_error += 2 * abs(function(*shifted) - value) + error * mpmath.mpf(10) ** -dps
        return value, total_error
