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
import math
from collections.abc import Sequence

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
    factors = sp.Mul.make_args(term)
    exps = [f for f in factors if isinstance(f, sp.exp) and f.has(*variables)]
    if not exps:
        return None
    exponent = sp.expand(sp.Add(*[f.args[0] for f in exps]))
    # the other factors, not term / exp(...): SymPy leaves exp(a) exp(-a) unevaluated
    return exponent, sp.Mul(*[f for f in factors if f not in exps])


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


# --------------------------------------------------------------------------- templates
#
# A claim is evaluated at several points, and each point used to redo the same SymPy work
# on the integral with numbers in it (expanding, grouping, lambdify): 100 - 150 ms for an
# integral that then costs a millisecond to compute.  A *template* does that work once, on
# the integral with its parameters still symbolic, and compiles what is left to a function
# of the parameters.  Every transformation in it (expansion, logs of positive factors split,
# the affine change of variables) is an identity under the parameters' declared
# assumptions, so it holds at every point sampled from them.  Where a step cannot be shown
# for all parameters (a Gaussian that is not provably concave, an integrand that is not a
# polynomial times a Gaussian), there is no template and each point takes the general path.


def _rational_mp(value: sp.Basic):
    """``value`` (an exact rational) as an mpmath number at the working precision."""
    if value.is_Integer:
        return mpmath.mpf(int(value))
    if value.is_Rational:
        return mpmath.mpf(int(value.p)) / int(value.q)
    raise EvaluationError(f"a parameter value {value} is not an exact rational")


def _polynomial(expr: sp.Expr, variables: list) -> sp.Poly | None:
    """``expr`` as a polynomial in ``variables`` with coefficients free of them, or None."""
    try:
        poly = sp.Poly(expr, *variables)
    except (sp.PolynomialError, sp.GeneratorsNeeded, sp.CoercionFailed):
        return None
    if any(c.has(*variables) for c in poly.coeffs()):
        return None
    return poly


def _degrees(expr: sp.Expr, variables: list) -> tuple[tuple[int, ...], int] | None:
    """Upper bounds on the degree of ``expr`` in each variable and in all: None if not a polynomial.

    Read off the tree, nothing expanded: a sum takes the largest degrees of its
    terms, a product adds them, ``p**n`` (``n`` a natural number) multiplies
    them.  ``log(c exp(a_1) ... exp(a_m))`` with ``c`` free of the variables and
    real polynomials ``a_j`` is ``log(c) + a_1 + ... + a_m``, a polynomial (the
    log of a Gaussian density ratio).  Anything else that depends on a
    variable (``exp``, ``sin``, a log of anything else, ...) is not a polynomial.
    """
    zero = tuple(0 for _ in variables)
    if not expr.has(*variables):
        return zero, 0
    if expr in variables:
        return tuple(int(v == expr) for v in variables), 1
    if isinstance(expr, (sp.Add, sp.Mul)):
        parts = [_degrees(a, variables) for a in expr.args]
        if any(p is None for p in parts):
            return None
        if isinstance(expr, sp.Add):
            return (tuple(max(d) for d in zip(*(p[0] for p in parts), strict=True)),
                    max(p[1] for p in parts))  # fmt: skip
        return (tuple(sum(d) for d in zip(*(p[0] for p in parts), strict=True)),
                sum(p[1] for p in parts))  # fmt: skip
    if isinstance(expr, sp.Pow):
        if not (expr.exp.is_Integer and expr.exp >= 0):
            return None
        base = _degrees(expr.base, variables)
        n = int(expr.exp)
        return None if base is None else (tuple(n * d for d in base[0]), n * base[1])
    if isinstance(expr, sp.log):
        parts = []
        for factor in sp.Mul.make_args(expr.args[0]):
            if not factor.has(*variables):
                continue
            if not isinstance(factor, sp.exp) or factor.args[0].is_extended_real is not True:
                return None
            parts.append(_degrees(factor.args[0], variables))
        if any(p is None for p in parts):
            return None
        return (tuple(max(d) for d in zip(*(p[0] for p in parts), strict=True)),
                max(p[1] for p in parts))  # fmt: skip
    return None


def _plain(expr: sp.Basic, atoms: Sequence) -> tuple[sp.Basic, list]:
    """``expr`` with ``atoms`` (symbols, indexed entries, dummies) as plain named symbols.

    ``lambdify`` on Dummies or on names that are not identifiers re-substitutes
    the whole expression (a second for a 6-dimensional integrand); plain
    symbols with the same assumptions print as they are.
    """
    from symkl.proof.sampling import owner_of

    symbols = [
        sp.Symbol(f"symkl_arg{j}", **owner_of(atom).assumptions0) for j, atom in enumerate(atoms)
    ]
    return expr.xreplace(dict(zip(atoms, symbols, strict=True))), symbols


def _compile_mp(atoms: Sequence, expr: sp.Basic):
    """``expr`` as an mpmath function of ``atoms``."""
    plain, symbols = _plain(expr, atoms)
    return sp.lambdify(symbols, plain, modules="mpmath", docstring_limit=0)


_RULES: dict[tuple, list] = {}


def _cubature(spec: tuple, dps: int) -> list:
    """``[(weight, z), ...]`` of a rule for ``int exp(-|z|^2) f(z) dz`` over ``R^k``.

    ``("tensor", (n_1, ..., n_k))``: the product of Gauss-Hermite rules, exact
    for every monomial ``z^a`` with ``a_j <= 2 n_j - 1``.  ``("degree3", k)``:
    the ``2k`` points ``+/- sqrt(k/2) e_j``, each of weight ``pi^(k/2) / (2k)``,
    exact for every polynomial of total degree at most 3 (Stroud's rule:
    it integrates 1 and ``z_j^2`` exactly, and every other monomial of degree
    <= 3 is odd in some coordinate, as are the points).
    """
    key = (spec, dps)
    if key not in _RULES:
        with mpmath.workdps(dps):
            kind, shape = spec
            points = []
            if kind == "tensor":
                rules = [_hermite_rule(n, dps) for n in shape]
                for index in itertools.product(*(range(n) for n in shape)):
                    weight = mpmath.fprod(rules[a][1][j] for a, j in enumerate(index))
                    points.append((weight, [rules[a][0][j] for a, j in enumerate(index)]))
            else:
                k = shape
                radius = mpmath.sqrt(mpmath.mpf(k) / 2)
                weight = mpmath.pi ** (mpmath.mpf(k) / 2) / (2 * k)
                for axis in range(k):
                    for sign in (-1, 1):
                        points.append((weight, [sign * radius if a == axis else mpmath.mpf(0)
                                                for a in range(k)]))  # fmt: skip
        _RULES[key] = points
    return _RULES[key]


class _HermiteTemplate:
    """A k-fold integral over ``R^k`` of polynomials times Gaussians, exact Gauss-Hermite.

    For each Gaussian group ``exp(E(x)) R(x)``: ``E`` is a quadratic in ``x``
    whose Hessian and gradient are compiled in the parameters; ``R`` is a
    polynomial in ``x`` once the logs of Gaussian densities in it are split
    (:func:`_degrees` bounds its degrees without expanding it).  At a point,
    with ``Sigma = -H^-1 = L L^T`` and centre ``c``, ``x = c + sqrt(2) L z``
    turns the integral into ``exp(E(c)) sqrt(2)^k det L`` times the
    Gauss-Hermite sum of ``R(c + sqrt(2) L z)``, a polynomial in ``z``: ``n``
    nodes on an axis are exact up to degree ``2n - 1`` there.  The degree in
    ``z_a`` is the degree of ``R`` in ``x_a`` when the Gaussian is
    axis-aligned (no cross term ``x_a x_b`` in ``E``) and the total degree of
    ``R`` otherwise.  ``R`` is evaluated as written (logs and all).  The error
    is the rounding bound of the sum: the rule has no truncation error.
    """

    method = "gauss-hermite-exact"

    def __init__(self, parameters: tuple, groups: list) -> None:
        self.parameters = parameters
        self.groups = groups  # (shape function, rest function, rule)

    @classmethod
    def build(cls, integral: sp.Integral, parameters: tuple) -> _HermiteTemplate | None:
        variables = [lim[0] for lim in integral.limits]
        k = len(variables)
        terms = sp.Add.make_args(
            sp.expand(integral.function, deep=False, mul=True, multinomial=False)
        )
        members: dict[sp.Expr, list] = {}
        for term in terms:
            parts = _gaussian_parts(term, variables)
            if parts is None:
                return None
            members.setdefault(parts[0], []).append(parts[1])
        groups = []
        for exponent, rests in members.items():
            shape = _polynomial(exponent, variables)
            if shape is None or shape.total_degree() != 2:
                return None
            rest = sp.Add(*rests)
            degrees = _degrees(rest, variables)
            if degrees is None:  # not a polynomial times the Gaussian: the general path decides
                return None

            def coefficient(*powers, shape=shape):
                monomial = sp.Mul(*[v**n for v, n in zip(variables, powers, strict=True)])
                return shape.coeff_monomial(monomial)

            def unit(*axes):
                return [sum(1 for a in axes if a == b) for b in range(k)]

            hessian = [[(2 if a == b else 1) * coefficient(*unit(a, b)) for b in range(k)]
                       for a in range(k)]  # fmt: skip
            gradient = [coefficient(*unit(a)) for a in range(k)]
            aligned = all(hessian[a][b] == 0 for a in range(k) for b in range(k) if a != b)
            per_axis, total = degrees
            tensor = tuple(d // 2 + 1 for d in (per_axis if aligned else [total] * k))
            rule = ("tensor", tensor)
            if total <= 3 and 2 * k < math.prod(tensor):
                rule = ("degree3", k)
            # E(x) = E(0) + g.x + x^T H x / 2 exactly (E is quadratic): one compiled tuple
            flat = sp.Tuple(*[e for row in hessian for e in row], *gradient,
                            shape.coeff_monomial(1))  # fmt: skip
            shape_function = _compile_mp(parameters, flat)
            rest_function = _compile_mp([*parameters, *variables], rest)
            groups.append((shape_function, rest_function, rule))
        if not groups:
            return None
        return cls(parameters, groups)

    def evaluate(self, values: list, dps: int):
        """``(value, error)`` at parameter values ``values`` (exact rationals), or None."""
        with mpmath.workdps(dps + 20):
            args = [_rational_mp(v) for v in values]
            value, error = mpmath.mpf(0), mpmath.mpf(0)
            for shape_function, rest_function, rule in self.groups:
                k = rule[1] if rule[0] == "degree3" else len(rule[1])
                flat = shape_function(*args)
                hessian = mpmath.matrix(k, k)
                for a in range(k):
                    for b in range(k):
                        hessian[a, b] = flat[a * k + b]
                gradient = mpmath.matrix(flat[k * k:k * k + k])
                try:
                    covariance = mpmath.inverse(-hessian)
                    chol = mpmath.cholesky(covariance)
                except (ZeroDivisionError, ValueError):
                    return None  # not a concave Gaussian here: the general path decides
                centre = covariance * gradient
                c = [centre[a] for a in range(k)]
                root2 = mpmath.sqrt(2)
                scale = [[root2 * chol[a, b] for b in range(a + 1)] for a in range(k)]
                total, magnitude = mpmath.mpf(0), mpmath.mpf(0)
                for weight, z in _cubature(rule, dps + 20):
                    x = [c[a] + mpmath.fsum(scale[a][b] * z[b] for b in range(a + 1))
                         for a in range(k)]  # fmt: skip
                    term = weight * rest_function(*args, *x)
                    total += term
                    magnitude += abs(term)
                peak = flat[-1] + mpmath.fsum(gradient[a] * c[a] for a in range(k)) + mpmath.fsum(
                    hessian[a, b] * c[a] * c[b] for a in range(k) for b in range(k)
                ) / 2
                factor = root2**k * mpmath.fprod(chol[a, a] for a in range(k)) * mpmath.exp(peak)
                value += factor * total
                # the rule is exact for the degree: what is left is rounding, a few units
                # in the last place of the working precision for each node's term
                error += abs(factor) * magnitude * mpmath.mpf(10) ** (-(dps + 12))
        return value, error


class _LineTemplate:
    """An integral over the line of polynomials times Gaussians, certified in balls.

    The symbolic half of :func:`_certified_line`, done once: logs of positive
    factors split, terms grouped by their Gaussian ``exp(a x^2 + b x + e)``
    with ``a < 0`` for *every* parameter value (shown by SymPy from the
    assumptions), ``x = c + w z`` and the rest expanded into a polynomial in
    ``z`` whose coefficients are compiled for ball arithmetic.  At a point
    the coefficients (and ``|coefficients|``, the majorant) are enclosed and
    :func:`symkl.accuracy.ball.gaussian_expectation` integrates, exactly as
    the per-point path does.  Rest terms with sines, cosines or anything else
    that is not a polynomial in ``z`` have no template.
    """

    method = "certified"

    def __init__(self, parameters: tuple, groups: list) -> None:
        self.parameters = parameters
        self.groups = groups  # (coefficient function, scale function)

    @classmethod
    def build(cls, integral: sp.Integral, parameters: tuple) -> _LineTemplate | None:
        from symkl.accuracy import ball

        x = integral.limits[0][0]
        expanded = sp.expand(sp.expand_log(integral.function), power_exp=False)
        members: dict[sp.Expr, list] = {}
        for term in sp.Add.make_args(expanded):
            exps = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.exp)]
            if not any(f.has(x) for f in exps):
                return None
            exponent = sp.expand(sp.Add(*[f.args[0] for f in exps]))
            members.setdefault(exponent, []).append(term / sp.Mul(*exps))
        z = sp.Dummy("z", real=True)
        groups = []
        for exponent, rests in members.items():
            shape = _polynomial(exponent, [x])
            if shape is None or shape.degree() != 2:
                return None
            a, b = shape.coeff_monomial(x**2), shape.coeff_monomial(x)
            if a.is_negative is not True:  # concave for every parameter value, or no template
                return None
            centre, width = sp.cancel(-b / (2 * a)), sp.sqrt(-1 / (2 * a))
            rest = sp.expand(sp.Add(*rests).xreplace({x: centre + width * z}))
            poly = _polynomial(rest, [z])
            if poly is None or rest.has(x):
                return None
            coefficients = sp.Tuple(*[sp.cancel(c) for c in reversed(poly.all_coeffs())])
            peak = sp.cancel(sp.expand(exponent.xreplace({x: centre})))
            scale = width * sp.sqrt(2 * sp.pi) * sp.exp(peak)
            groups.append((
                ball.compile_expression(*_plain(coefficients, parameters)),
                ball.compile_expression(*_plain(scale, parameters)),
            ))  # fmt: skip
        if not groups:
            return None
        return cls(parameters, groups)

    def evaluate(self, values: list, dps: int):
        """``(value, radius)`` at parameter values ``values`` (exact rationals)."""
        from flint import fmpq

        from symkl.accuracy import ball

        bits = int(dps * 3.33) + 16
        total = None
        with ball.ctx.workprec(bits + 64):
            args = [ball.arb(fmpq(int(v.p), int(v.q))) for v in values]
            for coefficient_function, scale_function in self.groups:
                coefficients = list(coefficient_function(*args))

                def rest(z, coefficients=coefficients):
                    value = coefficients[-1]
                    for c in reversed(coefficients[:-1]):
                        value = value * z + c
                    return value

                bound = [abs(c) for c in coefficients]
                expectation = ball.gaussian_expectation(
                    rest, tuple(bound), bits=bits, magnitude=ball.absolute_moment_bound(bound)
                )
                piece = scale_function(*args) * expectation
                total = piece if total is None else total + piece
            if not total.is_finite():
                return mpmath.mpf(0), mpmath.inf
            enclosure = ball.Enclosure(total)
            return enclosure.mid, enclosure.radius


_TEMPLATES: dict[tuple, object] = {}
_PARAMETERS: dict[sp.Integral, tuple] = {}


def _template(integral: sp.Integral, parameters: tuple):
    """The compiled template of ``integral`` (cached), or None where there is none."""
    key = (integral, parameters)
    if key not in _TEMPLATES:
        if len(_TEMPLATES) > 512:
            _TEMPLATES.clear()
        template = None
        whole_space = all(lim[1] == -sp.oo and lim[2] == sp.oo for lim in integral.limits)
        if whole_space and not integral.function.has(sp.Integral):
            kind = _HermiteTemplate if len(integral.limits) > 1 else _LineTemplate
            try:
                template = kind.build(integral, parameters)
            except (TypeError, ValueError, NotImplementedError, sp.PolynomialError):
                template = None
        _TEMPLATES[key] = template
    return _TEMPLATES[key]


def _templated_value(integral: sp.Integral, point: dict, dps: int, methods: set):
    """``(value, error)`` of ``integral`` at ``point`` through its template, or None."""
    from symkl.proof.sampling import sampled_atoms

    if integral not in _PARAMETERS:
        if len(_PARAMETERS) > 512:
            _PARAMETERS.clear()
        _PARAMETERS[integral] = tuple(sampled_atoms(integral))
    parameters = _PARAMETERS[integral]
    if any(p not in point or not point[p].is_Rational for p in parameters):
        return None
    template = _template(integral, parameters)
    if template is None:
        return None
    key = ("template", integral, tuple(point[p] for p in parameters), dps)
    if key not in _CACHE:
        if len(_CACHE) > 4096:
            _CACHE.clear()
        result = template.evaluate([point[p] for p in parameters], dps)
        if result is None:
            return None
        _CACHE[key] = (*result, frozenset({template.method}))
    value, error, used = _CACHE[key]
    methods |= used
    return value, error


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
        templated = _templated_value(atom, point, dps, methods)
        if templated is not None:
            return templated
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
