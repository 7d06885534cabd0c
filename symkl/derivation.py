"""The derivation engine: steps as data, and the checks that prove them.

A :class:`Derivation` is an ordered chain of :class:`Step` objects from the
integral definition of the KL divergence to a closed form.  Each step is an
expression equal to the one before it, with a human reason and the
assumptions it relies on.  Verifying a step means *both*

* **symbolic**: SymPy shows the two expressions equal (their difference
  simplifies to zero, possibly after using linearity of the integral or
  evaluating integrals symbolically), and
* **numeric**: both expressions, evaluated with mpmath at ``dps`` significant
  digits at seeded random points of the symbols' declared domain, agree to
  ``min_digits`` digits; unevaluated integrals are evaluated by mpmath
  quadrature.

Checks *return* results (:class:`StepCheck`, :class:`VerificationReport`);
they never raise on a failed proof.  Tests and the CLI decide what fails.

Examples
--------
>>> import sympy as sp
>>> from symkl import check_step
>>> a, b = sp.symbols("a b", positive=True)
>>> check_step(sp.log(a * b), sp.log(a) + sp.log(b)).ok
True
>>> check_step(sp.log(a * b), sp.log(a) - sp.log(b)).ok
False
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import mpmath
import sympy as sp

__all__ = [
    "Derivation",
    "Fact",
    "NumericResult",
    "Step",
    "StepCheck",
    "SymbolicResult",
    "VerificationReport",
    "check_step",
    "evaluate_mp",
    "instantiate",
    "is_zero",
    "proved_for_general_k_or_at",
    "reverse_and_symmetric_facts",
]

#: Breakpoints used to split infinite integration ranges.  Sampled parameters
#: lie in [-3, 3] (means) and [1/4, 4] (scales), so every Gaussian factor has
#: its mass well inside [-40, 40]; splitting keeps tanh-sinh from missing it.
_BREAKPOINTS_1D = (-40, -20, -8, -3, 0, 3, 8, 20, 40)
_BREAKPOINTS_ND = (-16, -6, -2, 0, 2, 6, 16)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class SymbolicResult:
    """Outcome of the symbolic check of one step.

    Attributes
    ----------
    ok : bool
        True when SymPy proved the two expressions equal.
    method : str
        How it was proved (or what was tried), e.g. ``"algebra"``,
        ``"linearity of the integral"``, ``"integrals evaluated by SymPy"``.
    detail : str
        What remained when the proof failed, or a note on the method.
    """

    ok: bool
    method: str
    detail: str = ""


@dataclass(frozen=True)
class NumericResult:
    """Outcome of the numeric check of one step.

    Attributes
    ----------
    ok : bool
        True when every sampled point agreed to at least ``min_digits`` digits.
    points : int
        Number of sampled points.
    dps : int
        mpmath working precision (significant decimal digits).
    min_digits : float
        Digits of agreement required.
    digits : float
        Digits of agreement at the worst point (``dps`` when exact).
    worst_discrepancy : float
        Largest relative difference seen (``|a-b| / max(|a|, |b|)``), including
        the quadrature's own error estimate.
    worst_point : dict
        The sampled point where the discrepancy was largest (symbol name to
        exact value as a string).
    detail : str
        Notes (e.g. a non-finite value, or symbols sampled without assumptions).
    """

    ok: bool
    points: int
    dps: int
    min_digits: float
    digits: float
    worst_discrepancy: float
    worst_point: dict[str, str]
    detail: str = ""


@dataclass(frozen=True)
class StepCheck:
    """Result of checking one step against the previous one: symbolic and numeric.

    ``ok`` is True only when *both* checks pass.
    """

    label: str
    rule: str
    symbolic: SymbolicResult
    numeric: NumericResult
    seconds: float

    @property
    def ok(self) -> bool:
        """True only when the symbolic and the numeric check both pass."""
        return self.symbolic.ok and self.numeric.ok

    def summary(self) -> str:
        """One line: verdict, label, symbolic method, numeric digits."""
        verdict = "PROVED" if self.ok else "FAILED"
        sym = ("ok " if self.symbolic.ok else "NO ") + self.symbolic.method
        num = f"{'ok' if self.numeric.ok else 'NO'} {self.numeric.digits:.1f} digits"
        return f"{verdict:7s} {self.label:28s} symbolic: {sym:42s} numeric: {num}"


# --------------------------------------------------------------------------- steps


@dataclass(frozen=True)
class Step:
    """One link of a derivation chain.

    Attributes
    ----------
    label : str
        Stable identifier (used as test id, anchor and file name fragment).
    expr : sympy.Expr
        The expression after this step; it must equal the previous step's.
    rule : str
        The human reason, rendered as ``\\text{...}``.
    assumptions : tuple of str
        The assumptions this step relies on (rendered and reported).
    prove : callable, optional
        A custom symbolic proof ``prove(before, after) -> SymbolicResult`` for
        steps the generic prover cannot handle (for example a statement about
        a symbolic dimension ``k`` proved at ``k = 1..4``).  Its ``method``
        must say honestly what was shown.
    instances : tuple of dict, optional
        Substitutions (e.g. ``{k: 2}``) applied before the numeric check, for
        steps whose numeric check needs a concrete size.
    """

    label: str
    expr: sp.Expr
    rule: str
    assumptions: tuple[str, ...] = ()
    prove: Callable[[sp.Expr, sp.Expr], SymbolicResult] | None = None
    instances: tuple[Mapping[sp.Symbol, int], ...] = ()


# --------------------------------------------------------------------------- zero test


def _zero_candidates(expr: sp.Expr) -> Iterable[tuple[str, Callable[[sp.Expr], sp.Expr]]]:
    yield "expand", lambda e: sp.expand(e)
    yield "cancel", lambda e: sp.cancel(sp.expand(e))
    yield "simplify", sp.simplify
    # expand_log without force only splits logs of positive factors: sound.
    yield "expand_log+simplify", lambda e: sp.simplify(sp.expand(sp.expand_log(e)))
    yield "logcombine+simplify", lambda e: sp.simplify(sp.logcombine(sp.expand(e)))


def _clearly_nonzero(expr: sp.Expr, tries: int = 2) -> bool:
    """True when ``expr`` is evidently non-zero at a random point of its domain.

    Used only to skip hopeless simplification (never to claim a zero), so
    that a wrong candidate costs milliseconds instead of minutes.
    """
    if expr.has(sp.Integral, sp.Sum, sp.Product) or not expr.free_symbols:
        return False
    rng = random.Random(1234)
    for _ in range(tries):
        point = {}
        for atom in _sampled_atoms(expr):
            point[atom] = _sample_value(_indexed_assumptions(atom), rng)
        try:
            value = sp.N(expr.xreplace(point), 30)
        except (TypeError, ValueError, ZeroDivisionError):
            return False
        if not value.is_number or value.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
            return False
        if abs(value) > sp.Float("1e-15"):
            return True
    return False


def is_zero(expr: sp.Expr) -> tuple[bool, str]:
    """Try to show symbolically that ``expr`` is identically zero.

    Only rewrites that are valid under the symbols' assumptions are used
    (expand, cancel, simplify, ``expand_log`` without ``force``).  Returns
    ``(True, method)`` when the expression reduces to 0, ``(False, residue)``
    otherwise.  A False answer means "not shown", not "shown non-zero".

    Examples
    --------
    >>> import sympy as sp
    >>> s = sp.Symbol("s", positive=True)
    >>> is_zero(sp.log(s**2) - 2 * sp.log(s))
    (True, 'expand')
    """
    if expr == 0:
        return True, "identical"
    if _clearly_nonzero(expr):
        return False, "non-zero at a random point: " + str(expr)[:200]
    residue = expr
    for name, rewrite in _zero_candidates(expr):
        try:
            residue = rewrite(expr)
        except Exception:  # a rewrite that fails proves nothing; try the next
            continue
        if residue == 0:
            return True, name
    return False, str(residue)[:300]


# --------------------------------------------------------------------------- symbolic check


def _substitute(expr: sp.Expr, definitions: Mapping[sp.Expr, sp.Expr] | None) -> sp.Expr:
    """Replace placeholders by their definitions until none is left (definitions may nest)."""
    current = sp.sympify(expr)
    if not definitions:
        return current
    for _ in range(8):
        replaced = current.xreplace(dict(definitions))
        if replaced == current:
            return current
        current = replaced
    raise ValueError("definitions refer to each other in a cycle")


def _integral_key(integral: sp.Integral) -> tuple:
    """Integrals over the same ranges merge (the variables are dummies and get renamed)."""
    return tuple((lim[1], lim[2]) for lim in integral.limits)


def _linear_parts(expr: sp.Expr) -> tuple[sp.Expr, dict[tuple, tuple[sp.Integral, sp.Expr]]]:
    """Split ``expr`` into a remainder plus, per integration range, one merged integrand.

    Uses linearity of the integral: ``c*Int(f) + d*Int(g) = Int(c*f + d*g)``
    when ``c`` and ``d`` do not depend on the integration variables and both
    integrals are over the same range.
    """
    remainder = sp.S.Zero
    groups: dict[tuple, tuple[sp.Integral, sp.Expr]] = {}
    for term in sp.Add.make_args(sp.expand(expr, power_exp=False, log=False)):
        integrals = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.Integral)]
        if len(integrals) != 1:
            remainder += term
            continue
        integral = integrals[0]
        coefficient = term / integral
        bound = {lim[0] for lim in integral.limits}
        if coefficient.free_symbols & bound:
            remainder += term
            continue
        key = _integral_key(integral)
        first, integrand = groups.get(key, (integral, sp.S.Zero))
        # rename the integration variables onto the first integral's ones
        renamed = integral.function.xreplace(
            {lim[0]: ref[0] for lim, ref in zip(integral.limits, first.limits, strict=False)}
        )
        groups[key] = (first, integrand + coefficient * renamed)
    return remainder, groups


@functools.lru_cache(maxsize=1024)
def _integrate_cached(integrand: sp.Expr, limits: tuple) -> sp.Expr:
    return sp.integrate(integrand, limits)


def _marginalise(integral: sp.Integral) -> sp.Expr | None:
    """Integrate out, one by one, coordinates whose factors involve no other coordinate.

    For an integrand ``f(x_1) g(x_2, ..)`` over a product of ranges, Fubini's
    theorem gives ``Int(f dx_1) * Int(g ...)``.  Factors that SymPy integrates
    in closed form (a density: 1) are replaced by their value; the rest stays
    an integral over the remaining coordinates.  Returns None if nothing changed.
    """
    limits = list(integral.limits)
    variables = [lim[0] for lim in limits]
    factors = list(sp.Mul.make_args(integral.function))
    scale = sp.S.One
    changed = False
    for lim in list(limits):
        v = lim[0]
        own = [f for f in factors if f.has(v)]
        if not own or any(f.has(w) for f in own for w in variables if w != v):
            continue
        if sp.Mul(*own).has(sp.log):
            continue  # the coordinate that carries the log-ratio keeps its integral
        value = _integrate_cached(sp.Mul(*own), tuple(lim))
        if value.has(sp.Integral):
            continue
        scale *= value
        factors = [f for f in factors if not f.has(v)]
        limits.remove(lim)
        variables.remove(v)
        changed = True
    if not changed:
        return None
    if not limits:
        return scale * sp.Mul(*factors)
    if not changed:
        return None
    return scale * sp.Integral(sp.Mul(*factors), *limits)


def _marginalise_all(expr: sp.Expr) -> sp.Expr | None:
    """Split integrals by linearity, then apply :func:`_marginalise` to each piece."""
    pieces = []
    changed = False
    for term in sp.Add.make_args(sp.expand(expr, power_exp=False, log=False)):
        factors = sp.Mul.make_args(term)
        new = sp.S.One
        for factor in factors:
            if isinstance(factor, sp.Integral) and len(factor.limits) > 1:
                parts = []
                for piece in sp.Add.make_args(
                    sp.expand(factor.function, power_exp=False, log=False)
                ):
                    constant, dependent = piece.as_independent(*[v for v, *_ in factor.limits])
                    sub = _marginalise(sp.Integral(dependent, *factor.limits))
                    changed |= sub is not None
                    parts.append(
                        constant
                        * (sub if sub is not None else sp.Integral(dependent, *factor.limits))
                    )
                new *= sp.Add(*parts)
            else:
                new *= factor
        pieces.append(new)
    return sp.Add(*pieces) if changed else None


def _prove_symbolically(before: sp.Expr, after: sp.Expr) -> SymbolicResult:
    difference = before - after
    if not difference.has(sp.Integral):
        ok, how = is_zero(difference)
        return SymbolicResult(ok, "algebra", "difference reduces to 0 by " + how if ok else how)

    # 1. linearity of the integral: merge integrals over the same range
    remainder, groups = _linear_parts(difference)
    rest_ok, _ = is_zero(remainder)
    if rest_ok and all(is_zero(integrand)[0] for _, integrand in groups.values()):
        return SymbolicResult(
            True, "linearity of the integral", "the merged integrand reduces to 0"
        )

    # 2. Fubini: integrate out coordinates whose factor is free of the others
    marginalised = _marginalise_all(difference)
    if marginalised is not None:
        remainder, groups = _linear_parts(marginalised)
        if is_zero(remainder)[0] and all(is_zero(f)[0] for _, f in groups.values()):
            return SymbolicResult(
                True,
                "Fubini (factors integrated out) and linearity",
                "after integrating out separable density factors the integrands agree",
            )

    # 3. evaluate every integral symbolically, then compare
    evaluated = {}
    for integral in sorted(difference.atoms(sp.Integral), key=sp.default_sort_key):
        bound = [lim[0] for lim in integral.limits]
        logs = [g for g in integral.function.atoms(sp.log) if g.has(*bound)]
        if len(bound) > 1 and logs:
            # SymPy's Risch integrator can run for hours on these; refuse honestly
            return SymbolicResult(
                False,
                "integrals evaluated by SymPy",
                f"not attempted: {len(bound)}-dimensional integral of a log; "
                "separate it by linearity and Fubini first",
            )
        value = integral.doit()
        if value.has(sp.Integral):
            return SymbolicResult(
                False, "integrals evaluated by SymPy", f"SymPy could not evaluate {integral}"
            )
        evaluated[integral] = value
    ok, how = is_zero(difference.xreplace(evaluated))
    return SymbolicResult(
        ok, "integrals evaluated by SymPy", "difference reduces to 0 by " + how if ok else how
    )


def _finite_outer_sum(expr: sp.Basic) -> bool:
    if not isinstance(expr, sp.Sum):
        return False
    _, low, high = expr.limits[-1]
    return low.is_Integer and high.is_Integer and high >= low - 1


def _unroll_sum(total: sp.Sum) -> sp.Expr:
    """Write out a sum whose outermost range is concrete (inner ranges may depend on it)."""
    variable, low, high = total.limits[-1]
    inner = total.limits[:-1]
    body = sp.Sum(total.function, *inner) if inner else total.function
    return sp.Add(*[body.xreplace({variable: n}) for n in range(int(low), int(high) + 1)])


def instantiate(expr: sp.Expr, setting: Mapping[sp.Basic, sp.Basic]) -> sp.Expr:
    """Substitute concrete sizes and expand sums, products and k-fold integrals (not integrate).

    Sums whose outermost range is concrete are written out term by term, so
    triangular sums such as ``Sum(f(i, j), (j, 1, i - 1), (i, 1, k))`` expand too.
    """
    current = expr.xreplace(dict(setting))
    for _ in range(6):
        expanded = current.doit(integrals=False)
        while expanded.has(sp.Sum):
            unrolled = expanded.replace(_finite_outer_sum, _unroll_sum)
            if unrolled == expanded:
                break
            expanded = unrolled.doit(integrals=False)
        if expanded == current:
            break
        current = expanded
    return current


def proved_for_general_k_or_at(
    k: sp.Symbol, sizes: Sequence[int] = (1, 2, 3, 4)
) -> Callable[[sp.Expr, sp.Expr], SymbolicResult]:
    """A prover for steps about a symbolic dimension ``k``.

    It first tries the generic proof with ``k`` symbolic ("for general k").
    Where SymPy cannot do that, it proves the step at each concrete size in
    ``sizes`` and says so in the method: "at k = 1..4: ...".  That is weaker
    than a proof for every k, and the method string says exactly that.
    """

    def prove(before: sp.Expr, after: sp.Expr) -> SymbolicResult:
        general = _prove_symbolically(before, after) if not before.has(sp.Product) else None
        if general is not None and general.ok:
            return SymbolicResult(True, f"{general.method}, for general k", general.detail)
        methods = []
        for size in sizes:
            b = instantiate(before, {k: size})
            a = instantiate(after, {k: size})
            result = _prove_symbolically(b, a)
            if not result.ok:
                return SymbolicResult(False, f"at k = {size}: {result.method}", result.detail)
            methods.append(result.method)
        label = f"k = {sizes[0]}..{sizes[-1]}" if len(sizes) > 1 else f"k = {sizes[0]}"
        return SymbolicResult(
            True,
            f"at {label}: {', '.join(dict.fromkeys(methods))}",
            "not proved for general k; proved symbolically at each listed k",
        )

    return prove


# --------------------------------------------------------------------------- numeric check


def _sample_value(symbol: sp.Basic, rng: random.Random) -> sp.Rational:
    """An exact rational in the domain the symbol's assumptions declare."""
    if symbol.is_integer:
        if symbol.is_positive:
            return sp.Integer(rng.randint(1, 4))
        if symbol.is_nonnegative:
            return sp.Integer(rng.randint(0, 4))
        return sp.Integer(rng.randint(-3, 3))
    magnitude = sp.Rational(rng.randint(250, 4000), 1000)  # 0.25 .. 4
    if symbol.is_positive:
        return magnitude
    if symbol.is_nonnegative:
        return sp.Rational(rng.randint(0, 4000), 1000)
    if symbol.is_negative:
        return -magnitude
    return sp.Rational(rng.randint(-3000, 3000), 1000)


def _sampled_atoms(expr: sp.Expr) -> list[sp.Basic]:
    atoms = set(expr.atoms(sp.Indexed))
    index_bases = {a.base.label for a in atoms}
    atoms |= {s for s in expr.free_symbols if s not in index_bases and not s.is_Indexed}
    for indexed in list(atoms):
        if isinstance(indexed, sp.Indexed):
            atoms -= set(indexed.indices)
    return sorted(atoms, key=sp.default_sort_key)


def _indexed_assumptions(atom: sp.Basic) -> sp.Basic:
    """The object whose assumptions define the domain of ``atom``."""
    if isinstance(atom, sp.Indexed):
        return atom.base.label
    return atom


def _to_mp(value: sp.Expr, dps: int) -> mpmath.mpf | mpmath.mpc:
    number = sp.N(value, dps + 5)
    if number.is_real is False or (number.is_real is None and number.as_real_imag()[1] != 0):
        re, im = number.as_real_imag()
        return mpmath.mpc(_to_mp(re, dps), _to_mp(im, dps))
    if number.is_Float:
        return mpmath.mpf(number._mpf_)
    if number.is_Integer or number.is_Rational:
        return mpmath.mpf(number.p) / number.q
    if number in (sp.oo, -sp.oo, sp.zoo, sp.nan):
        return mpmath.mpf("nan")
    raise ValueError(f"cannot evaluate {value!r} to a number; free symbols remain")


def _intervals(a: sp.Expr, b: sp.Expr, breakpoints: Sequence[int]) -> list:
    lo = -mpmath.inf if a == -sp.oo else mpmath.mpf(_to_mp(a, mpmath.mp.dps))
    hi = mpmath.inf if b == sp.oo else mpmath.mpf(_to_mp(b, mpmath.mp.dps))
    inner = [mpmath.mpf(t) for t in breakpoints if lo < t < hi]
    return [lo, *inner, hi]


#: Quadrature results by (integral at a sampled point, dps).  Consecutive steps
#: of a chain share most integrals and the checker reseeds for every step, so
#: the same integral at the same exact point recurs many times.
_QUADRATURE_CACHE: dict[tuple[sp.Integral, int], tuple[mpmath.mpf, mpmath.mpf]] = {}
_QUADRATURE_CACHE_SIZE = 4096


def _quadrature(integral: sp.Integral, dps: int) -> tuple[mpmath.mpf, mpmath.mpf]:
    """Value and error estimate of a numeric (parameter-free) integral by mpmath.quad."""
    key = (integral, dps)
    if key not in _QUADRATURE_CACHE:
        if len(_QUADRATURE_CACHE) >= _QUADRATURE_CACHE_SIZE:
            _QUADRATURE_CACHE.clear()
        _QUADRATURE_CACHE[key] = _integrate_numerically(integral, dps)
    return _QUADRATURE_CACHE[key]


def _integrate_numerically(integral: sp.Integral, dps: int) -> tuple[mpmath.mpf, mpmath.mpf]:
    variables = [lim[0] for lim in integral.limits]
    if any(len(lim) != 3 for lim in integral.limits):
        raise ValueError(f"indefinite integral cannot be evaluated numerically: {integral}")
    integrand = integral.function
    if integrand.has(sp.Integral):
        raise ValueError(f"nested integrals are not supported: {integral}")
    if len(variables) > 1:
        gaussian = _gauss_hermite_integral(integral, dps)
        if gaussian is not None:
            return gaussian
    # mpmath's quad takes f(x1, x2, ...) with the first range for x1
    function = sp.lambdify(variables, integrand, modules="mpmath")
    breakpoints = _BREAKPOINTS_1D if len(variables) == 1 else _BREAKPOINTS_ND
    ranges = [_intervals(lim[1], lim[2], breakpoints) for lim in integral.limits]
    value, error = mpmath.quad(function, *ranges, error=True)
    return value, error


_HERMITE_RULES: dict[tuple[int, int], tuple[list, list]] = {}


def _hermite_rule(n: int, dps: int) -> tuple[list, list]:
    """Nodes and weights of the n-point Gauss-Hermite rule (weight exp(-z^2)), Golub-Welsch."""
    key = (n, dps)
    if key not in _HERMITE_RULES:
        with mpmath.workdps(dps + 20):
            jacobi = mpmath.zeros(n, n)
            for j in range(1, n):
                jacobi[j, j - 1] = jacobi[j - 1, j] = mpmath.sqrt(mpmath.mpf(j) / 2)
            nodes, vectors = mpmath.eigsy(jacobi)
            weights = [mpmath.sqrt(mpmath.pi) * vectors[0, j] ** 2 for j in range(n)]
            _HERMITE_RULES[key] = ([nodes[j] for j in range(n)], weights)
    return _HERMITE_RULES[key]


def _gauss_hermite_integral(
    integral: sp.Integral, dps: int
) -> tuple[mpmath.mpf, mpmath.mpf] | None:
    """Integrate ``G(x) h(x)`` over R^k, ``G`` a Gaussian factor, by a tensor Gauss-Hermite rule.

    The Gaussian factor is found from the integrand's top-level ``exp``
    factors (their exponent must be a concave quadratic); its centre ``c`` and
    covariance ``A^-1`` give the map ``x = c + sqrt(2) L z``.  Two rules (n
    and n + 4 points per axis) give the value and an error estimate.  Returns
    None when the integrand has no such factor or the ranges are not all of R.
    """
    variables = [lim[0] for lim in integral.limits]
    if any(lim[1] != -sp.oo or lim[2] != sp.oo for lim in integral.limits):
        return None
    terms = sp.Add.make_args(sp.expand(integral.function, deep=False, mul=True, multinomial=False))
    exponents = []
    for term in terms:
        exps = [f.args[0] for f in sp.Mul.make_args(term) if isinstance(f, sp.exp)]
        if not exps:
            return None
        exponents.append(sp.Add(*exps))
    # one Gaussian for all terms: the one of the first term (terms share p's factor)
    exponent = sp.expand(exponents[0])
    try:
        poly = sp.Poly(exponent, *variables)
    except sp.PolynomialError:
        return None
    if poly.total_degree() != 2:
        return None
    k = len(variables)
    with mpmath.workdps(dps + 10):
        hessian = mpmath.matrix(
            [[_to_mp(sp.diff(exponent, a, b), dps + 10) for b in variables] for a in variables]
        )
        gradient0 = mpmath.matrix(
            [
                _to_mp(sp.diff(exponent, a).xreplace({v: 0 for v in variables}), dps + 10)
                for a in variables
            ]
        )
        precision = -hessian
        try:
            covariance = mpmath.inverse(precision)
            chol = mpmath.cholesky(covariance)
        except (ZeroDivisionError, ValueError):
            return None
        centre = covariance * gradient0
        function = sp.lambdify(variables, integral.function, modules="mpmath")
        jacobian = mpmath.sqrt(2) ** k * mpmath.det(chol)

        def rule(n: int) -> mpmath.mpf:
            nodes, weights = _hermite_rule(n, dps)
            total = mpmath.mpf(0)
            for index in itertools.product(range(n), repeat=k):
                z = mpmath.matrix([nodes[j] for j in index])
                x = centre + mpmath.sqrt(2) * (chol * z)
                weight = mpmath.fprod(weights[j] for j in index)
                total += weight * function(*x) * mpmath.exp(mpmath.fsum(t**2 for t in z))
            return total * jacobian

        n = 10 if k == 2 else 6  # exact for Gaussian x polynomial of degree < 2n; n+2 estimates
        coarse, fine = rule(n), rule(n + 2)
    return fine, abs(fine - coarse)


def evaluate_mp(expr: sp.Expr, dps: int = 30) -> tuple[mpmath.mpf, mpmath.mpf]:
    """Evaluate a parameter-free expression with mpmath, integrals by quadrature.

    Returns ``(value, absolute_error_estimate)``; the estimate is zero unless
    the expression contains integrals.

    Examples
    --------
    >>> import sympy as sp
    >>> x = sp.Symbol("x", real=True)
    >>> value, error = evaluate_mp(sp.Integral(sp.exp(-x**2), (x, -sp.oo, sp.oo)), dps=30)
    >>> mpmath.nstr(value, 20)
    '1.7724538509055160273'
    """
    with mpmath.workdps(dps):
        total_error = mpmath.mpf(0)
        replacements = {}
        for integral in expr.atoms(sp.Integral):
            value, error = _quadrature(integral, dps)
            replacements[integral] = sp.Float(value, dps)
            total_error += abs(error) * _coefficient_bound(expr, integral, dps)
        value = _to_mp(expr.xreplace(replacements), dps)
        return value, total_error


def _coefficient_bound(expr: sp.Expr, integral: sp.Integral, dps: int) -> mpmath.mpf:
    """|d expr / d integral|, to carry a quadrature error into the total (1 if unknown)."""
    marker = sp.Dummy("I")
    derivative = sp.diff(expr.xreplace({integral: marker}), marker)
    rest = derivative.atoms(sp.Integral)
    if derivative.has(marker) or rest:
        return mpmath.mpf(1)
    try:
        return abs(_to_mp(derivative, dps))
    except (ValueError, TypeError):
        return mpmath.mpf(1)


def _relative_discrepancy(a, b, floor) -> mpmath.mpf:
    scale = max(abs(a), abs(b))
    if scale < floor:  # both negligibly small: absolute difference relative to the floor
        return abs(a - b) / floor if abs(a - b) > 0 else mpmath.mpf(0)
    return abs(a - b) / scale


def _numeric_check(
    before: sp.Expr,
    after: sp.Expr,
    *,
    dps: int,
    points: int,
    seed: int,
    min_digits: float,
    instances: Sequence[Mapping[sp.Symbol, int]] = (),
) -> NumericResult:
    rng = random.Random(seed)
    worst = mpmath.mpf(0)
    worst_point: dict[str, str] = {}
    notes: list[str] = []
    settings = list(instances) or [{}]
    count = 0
    unassumed: set[str] = set()
    for setting in settings:
        b0 = instantiate(before, setting) if setting else before
        a0 = instantiate(after, setting) if setting else after
        for _ in range(points):
            point: dict[sp.Basic, sp.Expr] = {}
            # integer symbols first (sizes), then expand sums/products, then the rest
            ints = [s for s in (b0.free_symbols | a0.free_symbols) if s.is_integer]
            for s in sorted(ints, key=sp.default_sort_key):
                point[s] = _sample_value(s, rng)
            b1 = instantiate(b0, point) if ints else b0
            a1 = instantiate(a0, point) if ints else a0
            atoms = _sampled_atoms(b1 + a1)
            for atom in atoms:
                owner = _indexed_assumptions(atom)
                if owner.is_real is None:
                    unassumed.add(str(owner))
                point[atom] = _sample_value(owner, rng)
            try:
                with mpmath.workdps(dps):
                    vb, eb = evaluate_mp(b1.xreplace(point), dps)
                    va, ea = evaluate_mp(a1.xreplace(point), dps)
                    floor = mpmath.mpf(10) ** (-(dps - 5))
                    scale = max(abs(va), abs(vb), floor)
                    discrepancy = _relative_discrepancy(vb, va, floor) + (eb + ea) / scale
                    if not (mpmath.isfinite(vb) and mpmath.isfinite(va)):
                        discrepancy = mpmath.inf
                        notes.append("non-finite value")
            except (ValueError, TypeError, ZeroDivisionError) as error:
                discrepancy = mpmath.inf
                notes.append(f"evaluation failed: {error}")
            count += 1
            if discrepancy >= worst:
                worst = discrepancy
                worst_point = {str(k): str(v) for k, v in {**setting, **point}.items()}
    if unassumed:
        notes.append(
            "symbols without real/positive assumptions sampled as real: "
            + ", ".join(sorted(unassumed))
        )
    if worst == 0:
        digits = float(dps)
    elif mpmath.isinf(worst) or mpmath.isnan(worst):
        digits = 0.0
    else:
        digits = min(float(dps), max(0.0, -float(mpmath.log10(worst))))
    return NumericResult(
        ok=digits >= min_digits,
        points=count,
        dps=dps,
        min_digits=min_digits,
        digits=digits,
        worst_discrepancy=float(worst) if mpmath.isfinite(worst) else math.inf,
        worst_point=worst_point,
        detail="; ".join(dict.fromkeys(notes)),
    )


# --------------------------------------------------------------------------- public check


def check_step(
    before: sp.Expr,
    after: sp.Expr,
    *,
    definitions: Mapping[sp.Expr, sp.Expr] | None = None,
    dps: int = 30,
    points: int = 5,
    seed: int = 0,
    min_digits: float = 25,
    label: str = "step",
    rule: str = "",
    prove: Callable[[sp.Expr, sp.Expr], SymbolicResult] | None = None,
    instances: Sequence[Mapping[sp.Symbol, int]] = (),
) -> StepCheck:
    """Check that ``after`` equals ``before``, symbolically *and* numerically.

    Parameters
    ----------
    before, after : sympy.Expr
        The two sides.  Unevaluated ``sympy.Integral`` objects are allowed.
        The symbols' assumptions (``real``, ``positive``, ``integer``) define
        the domain that the numeric check samples.
    definitions : mapping, optional
        Placeholders and what they stand for (e.g. ``{p(x): <density>}``),
        substituted into both sides before checking.
    dps : int
        mpmath working precision for the numeric check (>= 30 recommended).
    points : int
        Number of seeded random points.
    seed : int
        Seed of the point generator; the check is reproducible.
    min_digits : float
        Digits of agreement required at every point.
    label, rule : str
        Carried into the result for reporting.
    prove : callable, optional
        Custom symbolic proof used instead of the generic one.
    instances : sequence of dict, optional
        Concrete substitutions (e.g. of a dimension) for the numeric check.

    Returns
    -------
    StepCheck
        ``.ok`` is True only when both checks pass; ``.symbolic`` and
        ``.numeric`` hold the details.  Never raises on a failed proof.

    Examples
    --------
    >>> import sympy as sp
    >>> x = sp.Symbol("x", real=True)
    >>> s = sp.Symbol("s", positive=True)
    >>> density = sp.exp(-x**2 / (2 * s**2)) / (sp.sqrt(2 * sp.pi) * s)
    >>> second_moment = sp.Integral(x**2 * density, (x, -sp.oo, sp.oo))
    >>> check_step(second_moment, s**2).ok
    True
    >>> result = check_step(second_moment, s)   # sigma vs sigma^2 confusion
    >>> result.ok, result.symbolic.ok, result.numeric.ok
    (False, False, False)
    """
    started = time.perf_counter()
    b = _substitute(before, definitions)
    a = _substitute(after, definitions)
    try:
        symbolic = prove(b, a) if prove is not None else _prove_symbolically(b, a)
    except Exception as error:  # a crashing prover proves nothing
        symbolic = SymbolicResult(False, "error", f"{type(error).__name__}: {error}")
    numeric = _numeric_check(
        b, a, dps=dps, points=points, seed=seed, min_digits=min_digits, instances=instances
    )
    return StepCheck(
        label=label,
        rule=rule,
        symbolic=symbolic,
        numeric=numeric,
        seconds=time.perf_counter() - started,
    )


# --------------------------------------------------------------------------- derivations


@dataclass(frozen=True)
class Fact:
    """A derived statement shown with a derivation: ``lhs = rhs``, both computed by SymPy.

    ``text`` says what it means (e.g. "the log-det term penalises collapse").
    """

    text: str
    lhs: sp.Expr
    rhs: sp.Expr
    #: a fact with a label is checked like a step (``lhs`` before, ``rhs`` after) by ``verify()``
    label: str = ""
    prove: Callable[[sp.Expr, sp.Expr], SymbolicResult] | None = None
    instances: tuple[Mapping[sp.Basic, sp.Basic], ...] = ()


@dataclass(frozen=True)
class VerificationReport:
    """Per-step verification of a derivation.  ``proved`` needs every step to pass both checks."""

    name: str
    checks: tuple[StepCheck, ...]
    seconds: float

    @property
    def proved(self) -> bool:
        """True when every step after the definition passed both checks."""
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def failures(self) -> tuple[StepCheck, ...]:
        """The steps that did not pass."""
        return tuple(check for check in self.checks if not check.ok)

    def check(self, label: str) -> StepCheck:
        """The check of the step (or labelled fact) ``label``.

        Raises ``KeyError`` naming the labels that exist.
        """
        for check in self.checks:
            if check.label == label:
                return check
        raise KeyError(f"no check labelled {label!r}; labels: {[c.label for c in self.checks]}")

    def __str__(self) -> str:
        lines = [f"derivation {self.name!r}: {len(self.checks)} steps checked"]
        lines += ["  " + check.summary() for check in self.checks]
        status = "PROVED" if self.proved else f"NOT PROVED ({len(self.failures)} failing)"
        lines.append(f"  {status} in {self.seconds:.2f} s")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """A JSON-ready summary."""
        return {
            "name": self.name,
            "proved": self.proved,
            "seconds": round(self.seconds, 3),
            "steps": [
                {
                    "label": c.label,
                    "ok": c.ok,
                    "symbolic": {"ok": c.symbolic.ok, "method": c.symbolic.method},
                    "numeric": {
                        "ok": c.numeric.ok,
                        "digits": round(c.numeric.digits, 2),
                        "points": c.numeric.points,
                        "dps": c.numeric.dps,
                    },
                }
                for c in self.checks
            ],
        }


@dataclass
class Derivation:
    """An ordered chain of steps from the KL integral to a closed form.

    Attributes
    ----------
    name : str
        Registry name (``"univariate"``, ...).
    title : str
        Human title.
    lhs : sympy.Expr
        What is being derived, shown on the left of the first row.
    steps : list of Step
        The chain; ``steps[0]`` is the definition, ``steps[-1].expr`` the closed form.
    definitions : dict
        Placeholders used in displayed steps and what they stand for.
    terms : dict of str to sympy.Expr
        The closed form's named terms; they sum to ``closed_form``.
    parameters : tuple of sympy.Symbol
        The distribution parameters in signature order.
    notes : list of str
        Prose shown with the rendering (what the result means).
    derive_seconds : float
        Time SymPy took to build the chain.
    """

    name: str
    title: str
    lhs: sp.Expr
    steps: list[Step]
    definitions: dict[sp.Expr, sp.Expr] = field(default_factory=dict)
    terms: dict[str, sp.Expr] = field(default_factory=dict)
    parameters: tuple[sp.Symbol, ...] = ()
    notes: list[str] = field(default_factory=list)
    derive_seconds: float = 0.0
    terms_prove: Callable[[sp.Expr, sp.Expr], SymbolicResult] | None = None
    terms_instances: tuple[Mapping[sp.Symbol, int], ...] = ()
    facts: list[Fact] = field(default_factory=list)
    swap: dict[sp.Basic, sp.Basic] = field(default_factory=dict)
    dimension: sp.Symbol | None = None
    _reports: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def closed_form(self) -> sp.Expr:
        """The final expression of the chain."""
        return self.steps[-1].expr

    def closed_form_at(self, dimension: int) -> sp.Expr:
        """The closed form with the dimension ``k`` set to a positive integer, sums written out.

        Raises
        ------
        ValueError
            When ``dimension`` is not a positive integer, or this derivation
            has no dimension (the univariate ones).

        Examples
        --------
        >>> from symkl import derive
        >>> derive("std-normal").closed_form_at(1)
        exp(logvar[1])/2 - logvar[1]/2 + mu[1]**2/2 - 1/2
        """
        if self.dimension is None:
            raise ValueError(
                f"derivation {self.name!r} has no dimension parameter; "
                "derivations with a dimension k: diagonal, std-normal, full"
            )
        if isinstance(dimension, bool) or not isinstance(dimension, numbers.Integral):
            raise ValueError(
                f"dimension must be a positive integer, got {dimension!r} "
                f"of type {type(dimension).__name__}"
            )
        if dimension < 1:
            raise ValueError(f"dimension must be a positive integer (k >= 1), got {dimension}")
        return instantiate(self.closed_form, {self.dimension: sp.Integer(int(dimension))})

    @property
    def reverse_closed_form(self) -> sp.Expr:
        """KL(q || p): the closed form with the roles of p and q exchanged."""
        if not self.swap:
            raise ValueError(f"derivation {self.name!r} has no p/q exchange")
        return self.closed_form.xreplace(self.swap)

    @property
    def symmetric_closed_form(self) -> sp.Expr:
        """Jeffreys divergence KL(p || q) + KL(q || p), simplified (the log-ratios cancel)."""
        forward, reverse = self.closed_form, self.reverse_closed_form
        if isinstance(forward, sp.Sum):  # sum the summands, then simplify termwise
            summand = forward.function + reverse.function
            return sp.Sum(sp.factor(sp.expand(sp.expand_log(summand))), *forward.limits)
        total = forward + reverse
        return sp.factor(sp.expand(sp.expand_log(total)))

    def verify(
        self, *, dps: int = 30, points: int = 5, seed: int = 0, min_digits: float = 25
    ) -> VerificationReport:
        """Check every step against the previous one, symbolically and numerically.

        Returns a :class:`VerificationReport`; never raises on a failed step.
        Reports are memoised per settings: a derivation is immutable once built.
        """
        key = (dps, points, seed, min_digits)
        if key not in self._reports:
            self._reports[key] = self._verify(dps, points, seed, min_digits)
        return self._reports[key]

    def _verify(self, dps: int, points: int, seed: int, min_digits: float) -> VerificationReport:
        started = time.perf_counter()
        # (before, after, label, rule, prove, instances): the steps, then the named
        # terms adding up to the closed form, then every labelled fact
        claims = [
            (previous.expr, step.expr, step.label, step.rule, step.prove, step.instances)
            for previous, step in zip(self.steps, self.steps[1:], strict=False)
        ]
        if self.terms:
            claims.append(
                (
                    self.closed_form,
                    sp.Add(*self.terms.values()),
                    "named-terms",
                    "the named terms add up to the closed form",
                    self.terms_prove,
                    self.terms_instances,
                )
            )
        claims += [
            (fact.lhs, fact.rhs, fact.label, fact.text, fact.prove, fact.instances)
            for fact in self.facts
            if fact.label
        ]
        checks = tuple(
            check_step(
                before,
                after,
                definitions=self.definitions,
                dps=dps,
                points=points,
                seed=seed,
                min_digits=min_digits,
                label=label,
                rule=rule,
                prove=prove,
                instances=instances,
            )
            for before, after, label, rule, prove, instances in claims
        )
        return VerificationReport(self.name, checks, time.perf_counter() - started)


def reverse_and_symmetric_facts(derivation: Derivation) -> list[Fact]:
    """Facts for the reverse divergence KL(q||p) and the Jeffreys divergence."""
    reverse = sp.Symbol(r"D_{\mathrm{KL}}\left(q \,\|\, p\right)")
    jeffreys = sp.Symbol(r"J(p, q) = D_{\mathrm{KL}}(p\|q) + D_{\mathrm{KL}}(q\|p)")
    return [
        Fact(
            "reverse divergence: exchange the roles of p and q",
            reverse,
            derivation.reverse_closed_form,
        ),
        Fact(
            "symmetric (Jeffreys) divergence: the log-ratios cancel",
            jeffreys,
            derivation.symmetric_closed_form,
        ),
    ]
