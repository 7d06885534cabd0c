"""Provers: small classes, each with its method name and its side conditions checked.

Every prover has one method, ``prove(lhs, rhs) -> SymbolicResult``, and only
uses rewrites valid under the symbols' assumptions.  Side conditions are
checked symbolically, never at a sample point:

* :class:`Generic` — algebra; **linearity** (merging integrals over the same
  range) only when every merged integrand is absolutely integrable by the
  dominating-function rule of :func:`dominated`; **Fubini** only with
  constant limits and a dominated integrand; integrals evaluated by SymPy only
  when SymPy returns a finite, unconditional value.
* :class:`Series` — a sum is replaced by SymPy's closed form only on the branch
  whose convergence condition is *proved* on the whole domain the
  assumptions allow (optionally after a change of variable whose range is
  proved too).
* :class:`AtSizes` — a statement about a dimension ``k`` proved at each listed
  size; the result names exactly the sizes proved.
* :class:`InstanceOf` — a substitution instance of a proved theorem, each
  substituted symbol's assumptions implied by its image's.
* :class:`Whitened` — Gaussian expectations by the change of variables
  ``x = m + L z`` (``det L`` proved non-zero), then :class:`Generic` or exact
  normal moments.

Examples
--------
>>> import sympy as sp
>>> x = sp.Symbol("x", real=True)
>>> Generic().prove(sp.Integral(sp.exp(-x**2), (x, -sp.oo, sp.oo)), sp.sqrt(sp.pi)).ok
True
"""

from __future__ import annotations

import functools
import random
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import sympy as sp

from symkl.proof.claims import admit, format_sizes, instantiate
from symkl.proof.sampling import SamplingError, owner_of, sample_value, sampled_atoms

__all__ = [
    "AtSizes", "ExpandFunctions", "Generic", "InstanceOf", "Prover", "Series",
    "SymbolicResult", "Theorem", "Whitened", "dominated", "is_zero",
]  # fmt: skip


@dataclass(frozen=True)
class SymbolicResult:
    """Outcome of a symbolic proof: ``ok``, the ``method`` used, a ``detail``, the ``sizes``.

    ``sizes`` is None for a proof for every value, else the dimensions proved.
    ``lemmas`` names the lemmas of :mod:`symkl.proof.lemmas` the proof assumes;
    ``hypotheses`` the hypotheses that restrict it (``"Sigma_p = diag(a)"``): what was
    proved holds given them only, and the verdict's scope says so.
    """

    ok: bool
    method: str
    detail: str = ""
    sizes: tuple[int, ...] | None = None
    lemmas: tuple[str, ...] = ()
    hypotheses: tuple[str, ...] = ()


# --------------------------------------------------------------------------- zero test


def _clearly_nonzero(expr: sp.Expr) -> bool:
    """Evidently non-zero at a sample point: only used to skip hopeless simplification."""
    if expr.has(sp.Integral, sp.Sum, sp.Product) or not expr.free_symbols:
        return False
    rng = random.Random(1234)
    for _ in range(2):
        try:
            point = {a: sample_value(owner_of(a), rng) for a in sampled_atoms(expr)}
            value = sp.N(expr.xreplace(point), 30)
        except (TypeError, ValueError, ZeroDivisionError, SamplingError):
            return False
        if not value.is_number or value.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
            return False
        if abs(value) > sp.Float("1e-15"):
            return True
    return False


#: the largest numerator or denominator of a log's coefficient that logcombine may raise
#: its argument to (c log(b) -> log(b**c))
_LOGCOMBINE_LIMIT = 10**3


def _logcombine_moderate(expr: sp.Expr) -> sp.Expr:
    """``logcombine(expr)``, refused (``ValueError``) where a log's coefficient is huge.

    ``10**25 * log(1 + x/10**25)`` becomes ``log((1 + x/10**25)**(10**25))``,
    and SymPy's next assumption query on it expands ``(10**25)**(10**25)``
    exactly: it never finishes.  A rewrite that is not tried proves nothing.
    """
    for term in sp.Add.make_args(expr):
        coefficient, rest = term.as_coeff_Mul()
        if rest.has(sp.log) and coefficient.is_Rational and max(
            abs(coefficient.p), coefficient.q
        ) > _LOGCOMBINE_LIMIT:
            raise ValueError(f"a log with the coefficient {coefficient} is not combined")
    for power in expr.atoms(sp.Pow):
        if power.has(sp.log) and power.exp.is_Rational and max(
            abs(power.exp.p), power.exp.q
        ) > _LOGCOMBINE_LIMIT:
            raise ValueError(f"a log under the power {power.exp} is not combined")
    return sp.logcombine(expr)


_REWRITES: tuple[tuple[str, Callable[[sp.Expr], sp.Expr]], ...] = (
    ("expand", sp.expand),
    ("cancel", lambda e: sp.cancel(sp.expand(e))),
    ("simplify", sp.simplify),
    # expand_log without force splits only logs of positive factors: sound
    ("expand_log+simplify", lambda e: sp.simplify(sp.expand(sp.expand_log(e)))),
    ("logcombine+simplify", lambda e: sp.simplify(_logcombine_moderate(sp.expand(e)))),
    # inverse hyperbolics as logs (an identity), then logs of positive factors split
    (
        "rewrite(log)+expand_log",
        lambda e: sp.simplify(sp.expand_log(sp.factor_terms(e.rewrite(sp.log)), force=False)),
    ),
    # Min, Max, Abs, sign, Heaviside as Piecewise (identities), branches folded together
    (
        "rewrite(Piecewise)+simplify",
        lambda e: sp.simplify(sp.piecewise_fold(e.rewrite(sp.Piecewise)))
        if e.has(sp.Piecewise, sp.Min, sp.Max, sp.Abs, sp.sign, sp.Heaviside)
        else e,
    ),
)


def is_zero(expr: sp.Basic) -> tuple[bool, str]:
    """Show that ``expr`` is identically 0 by rewrites valid under the assumptions.

    ``(True, method)`` when it reduces to 0; ``(False, residue)`` means "not shown".

    >>> s = sp.Symbol("s", positive=True)
    >>> is_zero(sp.log(s**2) - 2 * sp.log(s))
    (True, 'expand')
    """
    if isinstance(expr, sp.MatrixBase):
        results = [is_zero(entry) for entry in expr]
        failed = [how for ok, how in results if not ok]
        return (not failed, failed[0] if failed else "entrywise")
    if expr == 0:
        return True, "identical"
    if _clearly_nonzero(expr):
        return False, "non-zero at a sample point: " + str(expr)[:200]
    residue = expr
    for name, rewrite in _REWRITES:
        try:
            residue = rewrite(expr)
        except Exception:  # a rewrite that fails proves nothing; try the next
            continue
        if residue == 0:
            return True, name
    return False, str(residue)[:300]


# --------------------------------------------------------------------------- integrability


def _exp_power(factor: sp.Expr) -> sp.Expr | None:
    """The exponent of ``exp(a)`` or ``exp(a)**r`` (r rational), else None."""
    if isinstance(factor, sp.exp):
        return factor.args[0]
    if factor.is_Pow and isinstance(factor.base, sp.exp) and factor.exp.is_Rational:
        return factor.base.args[0] * factor.exp
    return None


def _log_argument_ok(argument: sp.Expr, variables: Sequence[sp.Symbol]) -> bool:
    """``argument`` = positive constants times exps of polynomials: |log| grows polynomially."""
    for factor in sp.Mul.make_args(argument):
        base, power = factor.as_base_exp() if factor.is_Pow else (factor, sp.S.One)
        if not power.is_Rational:
            return False
        if not base.has(*variables):
            if not base.is_positive:
                return False
            continue
        exponent = _exp_power(base)
        if exponent is None or not exponent.is_polynomial(*variables):
            return False
    return True


def polynomially_bounded(expr: sp.Expr, variables: Sequence[sp.Symbol]) -> bool:
    """``|expr| <= C (1 + |x|)^n`` for real ``x``, shown from the expression's shape."""
    if not expr.has(*variables):
        return expr.is_finite is not False
    if expr in variables:
        return True
    if expr.is_Add or expr.is_Mul:
        return all(polynomially_bounded(a, variables) for a in expr.args)
    if expr.is_Pow:
        return expr.exp.is_Integer and expr.exp >= 0 and polynomially_bounded(expr.base, variables)
    if isinstance(expr, sp.Abs):
        return polynomially_bounded(expr.args[0], variables)
    if isinstance(expr, (sp.sin, sp.cos)):
        return expr.args[0].is_real is True
    if isinstance(expr, sp.log):
        return _log_argument_ok(expr.args[0], variables)
    return False


def _negative_definite(exponent: sp.Expr, variables: Sequence[sp.Symbol]) -> bool:
    """The polynomial ``exponent`` has degree 2 and a negative-definite quadratic part."""
    try:
        poly = sp.Poly(exponent, *variables)
    except sp.PolynomialError:
        return False
    if poly.total_degree() != 2:
        return False
    hessian = sp.hessian(exponent, variables)
    for size in range(1, len(variables) + 1):
        minor = sp.factor(sp.cancel((-hessian[:size, :size]).det()))
        if minor.is_positive is not True:
            return False
    return True


def dominated(integrand: sp.Expr, limits: Sequence[tuple]) -> tuple[bool, str]:
    """Absolute integrability by a dominating function: the side condition of linearity/Fubini.

    Accepted: on a bounded box, a product of polynomially bounded factors and
    exps of polynomials (continuous, hence bounded); on an unbounded range, a
    Gaussian weight ``exp(Q)`` (``Q`` of degree 2 with negative-definite
    quadratic part, summed over all exp factors) times polynomially bounded
    factors (polynomials, sin/cos of reals, logs of positive constants times
    exps of polynomials).  Anything else is refused.
    """
    variables = [lim[0] for lim in limits]
    if integrand.is_Add:  # a finite sum of integrable terms is integrable
        for term in integrand.args:
            ok, why = dominated(term, limits)
            if not ok:
                return False, why
        return True, "every term dominated"
    exponent = sp.S.Zero
    for factor in sp.Mul.make_args(integrand):
        power = _exp_power(factor) if factor.has(*variables) else None
        if power is not None:
            if not power.is_polynomial(*variables):
                return False, f"exp of a non-polynomial: {factor}"
            exponent += power
        elif not polynomially_bounded(factor, variables):
            return False, f"factor {str(factor)[:80]} is not shown polynomially bounded"
    bounded = all(lim[1].is_finite and lim[2].is_finite for lim in limits)
    if bounded:
        return True, "continuous on a bounded box"
    if _negative_definite(sp.expand(exponent), variables):
        return True, "Gaussian weight times polynomially bounded factors"
    return False, "no Gaussian weight with a negative-definite quadratic dominates it"


# --------------------------------------------------------------------------- provers


#: the modules whose Prover classes are trusted
KERNEL_MODULES = (__name__, "symkl.proof.lemmas", "symkl.proof.sums", "symkl.proof.matrices")


class Prover:
    """Base class: ``method`` names the proof, ``prove(lhs, rhs)`` returns a SymbolicResult.

    Only the classes defined in this module are trusted: :func:`run_prover`
    refuses a subclass written elsewhere (and an instance whose ``prove`` was
    replaced), so user code cannot make a claim pass.
    """

    method = "prover"

    def prove(self, lhs: sp.Basic, rhs: sp.Basic) -> SymbolicResult:  # pragma: no cover
        raise NotImplementedError


def _defined_in_kernel(cls: type) -> bool:
    """``cls`` is the very class a kernel module defines under its name.

    Not its ``__module__`` string alone: a class written elsewhere can set that
    to a kernel module's name in one line.
    """
    if cls.__module__ not in KERNEL_MODULES or "." in cls.__qualname__:
        return False
    module = sys.modules.get(cls.__module__)
    return module is not None and vars(module).get(cls.__qualname__) is cls


def run_prover(prover: object, lhs: sp.Basic, rhs: sp.Basic) -> SymbolicResult:
    """Run a *kernel* prover: a class defined in the kernel, its own ``prove`` method."""
    cls = type(prover)
    if not isinstance(prover, Prover) or not _defined_in_kernel(cls) or cls is Prover:
        return SymbolicResult(
            False,
            "refused",
            f"{cls.__module__}.{cls.__qualname__} is not a kernel prover "
            f"(only the classes of {', '.join(KERNEL_MODULES)} are trusted)",
        )
    return cls.prove(prover, lhs, rhs)


def _integrals_of(expr: sp.Expr) -> list[tuple[sp.Expr, sp.Integral]]:
    """Terms ``coefficient * Integral``, or None when a term is not of that shape."""
    terms = []
    for term in sp.Add.make_args(sp.expand(expr, power_exp=False, log=False)):
        integrals = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.Integral)]
        terms.append((term, integrals[0] if len(integrals) == 1 else None))
    return terms


def _linearity(difference: sp.Expr) -> tuple[bool, str]:
    """Merge integrals over the same constant range: valid when each piece is dominated."""
    remainder = sp.S.Zero
    groups: dict[tuple, tuple[sp.Integral, sp.Expr]] = {}
    for term, integral in _integrals_of(difference):
        if integral is None:
            remainder += term
            continue
        coefficient = term / integral
        bound = {lim[0] for lim in integral.limits}
        if coefficient.free_symbols & bound:
            return False, f"coefficient {coefficient} depends on a bound variable"
        ok, why = dominated(integral.function, integral.limits)
        if not ok:
            return False, f"linearity refused: {why}"
        key = tuple((lim[1], lim[2]) for lim in integral.limits)
        first, merged = groups.get(key, (integral, sp.S.Zero))
        renamed = integral.function.xreplace(
            {lim[0]: ref[0] for lim, ref in zip(integral.limits, first.limits, strict=True)}
        )
        groups[key] = (first, merged + coefficient * renamed)
    if not is_zero(remainder)[0]:
        return False, f"the terms outside integrals do not cancel: {str(remainder)[:120]}"
    for _, merged in groups.values():
        ok, how = is_zero(merged)
        if not ok:
            return False, f"merged integrand is not 0: {how}"
    return True, "merged integrands reduce to 0"


@functools.lru_cache(maxsize=1024)
def _integrate(integrand: sp.Expr, limits: tuple) -> sp.Expr:
    return (
        sp.integrate(integrand, *limits)
        if isinstance(limits[0], (tuple, sp.Tuple))
        else sp.integrate(integrand, limits)
    )


def _unconditional(value: sp.Basic) -> bool:
    return not value.has(sp.Integral, sp.Piecewise, sp.nan, sp.zoo, sp.oo, -sp.oo, sp.AccumBounds)


def _fubini(integral: sp.Integral) -> sp.Expr | None:
    """Integrate out coordinates whose factors involve no other coordinate (Tonelli-Fubini).

    Requires constant limits and a dominated integrand; returns None otherwise.
    """
    limits = list(integral.limits)
    variables = [lim[0] for lim in limits]
    if any(lim[1].has(*variables) or lim[2].has(*variables) for lim in limits):
        return None
    if not dominated(integral.function, limits)[0]:
        return None
    factors = list(sp.Mul.make_args(integral.function))
    scale, changed = sp.S.One, False
    for lim in list(limits):
        v = lim[0]
        own = [f for f in factors if f.has(v)]
        if not own or any(f.has(w) for f in own for w in variables if w != v):
            continue
        if sp.Mul(*own).has(sp.log):
            continue  # the coordinate that carries the log-ratio keeps its integral
        value = _integrate(sp.Mul(*own), tuple(lim))
        if not _unconditional(value):
            continue
        scale *= value
        factors = [f for f in factors if not f.has(v)]
        limits.remove(lim)
        variables.remove(v)
        changed = True
    if not changed:
        return None
    return scale * (sp.Integral(sp.Mul(*factors), *limits) if limits else sp.Mul(*factors))


def _fubini_all(expr: sp.Expr) -> sp.Expr | None:
    pieces, changed = [], False
    for term in sp.Add.make_args(sp.expand(expr, power_exp=False, log=False)):
        new = sp.S.One
        for factor in sp.Mul.make_args(term):
            if not (isinstance(factor, sp.Integral) and len(factor.limits) > 1):
                new *= factor
                continue
            variables = [lim[0] for lim in factor.limits]
            parts = sp.Add.make_args(sp.expand(factor.function, power_exp=False, log=False))
            if len(parts) > 1 and not all(dominated(p, factor.limits)[0] for p in parts):
                new *= factor  # splitting the integrand needs every piece integrable
                continue
            total = sp.S.Zero
            for part in parts:
                constant, dependent = part.as_independent(*variables)
                sub = _fubini(sp.Integral(dependent, *factor.limits))
                changed |= sub is not None
                total += constant * (
                    sub if sub is not None else sp.Integral(dependent, *factor.limits)
                )
            new *= total
        pieces.append(new)
    return sp.Add(*pieces) if changed else None


class Generic(Prover):
    """Algebra; linearity and Fubini under their side conditions; SymPy's integrals."""

    method = "generic"

    def prove(self, lhs: sp.Basic, rhs: sp.Basic) -> SymbolicResult:
        difference = lhs - rhs
        if isinstance(difference, sp.MatrixBase):
            results = [self.prove(a, b) for a, b in zip(lhs, rhs, strict=True)]
            bad = [r for r in results if not r.ok]
            methods = ", ".join(dict.fromkeys(r.method for r in results))
            return SymbolicResult(not bad, methods, bad[0].detail if bad else "entrywise")
        if difference.has(sp.Derivative, sp.Subs, sp.Limit):
            difference = difference.doit(integrals=False)  # SymPy's derivatives and limits
            if not _unconditional(
                difference.replace(lambda e: isinstance(e, sp.Integral), lambda e: sp.S.Zero)
            ):
                return SymbolicResult(
                    False,
                    "derivatives/limits by SymPy",
                    f"not a finite value: {str(difference)[:200]}",
                )
        if not difference.has(sp.Integral):
            ok, how = is_zero(difference)
            return SymbolicResult(ok, "algebra", "reduces to 0 by " + how if ok else how)
        ok, how = _linearity(difference)
        if ok:
            return SymbolicResult(True, "linearity of the integral (pieces dominated)", how)
        marginal = _fubini_all(difference)
        if marginal is not None and _linearity(marginal)[0]:
            return SymbolicResult(
                True,
                "Fubini (constant limits, dominated) and linearity",
                "separable density factors integrated out",
            )
        evaluated = {}
        for integral in sorted(difference.atoms(sp.Integral), key=sp.default_sort_key):
            bound = [lim[0] for lim in integral.limits]
            if len(bound) > 1 and any(g.has(*bound) for g in integral.function.atoms(sp.log)):
                return SymbolicResult(
                    False,
                    "integrals evaluated by SymPy",
                    f"not attempted: {len(bound)}-dimensional integral of a "
                    "log; separate it by linearity and Fubini first",
                )
            value = _integrate(integral.function, tuple(integral.limits))
            if not _unconditional(value):
                return SymbolicResult(
                    False,
                    "integrals evaluated by SymPy",
                    f"no finite unconditional value for {str(integral)[:150]}",
                )
            evaluated[integral] = value
        ok, how = is_zero(difference.xreplace(evaluated))
        return SymbolicResult(
            ok, "integrals evaluated by SymPy", "reduces to 0 by " + how if ok else how
        )


class ExpandFunctions(Generic):
    """Generic, after writing the named functions (log1p, expm1, ...) and atanh in log/exp."""

    method = "algebra (log1pmx, log1p, expm1, atanh written out)"

    def __init__(self, functions: Sequence[type]) -> None:
        self.functions = tuple(functions)

    def prove(self, lhs: sp.Basic, rhs: sp.Basic) -> SymbolicResult:
        def expand(e: sp.Basic) -> sp.Basic:
            return sp.expand_func(
                e.replace(lambda f: isinstance(f, self.functions), sp.expand_func)
            ).rewrite(sp.log)

        ok, how = is_zero(expand(lhs - rhs))
        return SymbolicResult(ok, self.method, how)


def _holds(condition: sp.Basic) -> bool:
    """A convergence condition proved for every value the assumptions allow."""
    if condition is sp.true:
        return True
    if isinstance(condition, sp.And):
        return all(_holds(c) for c in condition.args)
    if isinstance(condition, sp.Or):
        return any(_holds(c) for c in condition.args)
    if isinstance(condition, sp.Ne):
        return sp.factor(sp.cancel(condition.lhs - condition.rhs)).is_nonzero is True
    if isinstance(condition, sp.core.relational.Relational):
        small, large = (
            (condition.lhs, condition.rhs)
            if isinstance(condition, (sp.StrictLessThan, sp.LessThan))
            else (condition.rhs, condition.lhs)
        )
        if isinstance(small, sp.Abs) and large.is_positive:  # |u| < c  <=>  c^2 - u^2 > 0
            gap = sp.factor(sp.cancel(large**2 - small.args[0] ** 2))
        else:
            gap = sp.factor(sp.cancel(large - small))
        strict = isinstance(condition, (sp.StrictLessThan, sp.StrictGreaterThan))
        return (gap.is_positive if strict else gap.is_nonnegative) is True
    return False


class Series(Prover):
    """Sums to closed forms on the branch whose condition is proved on the whole domain.

    With ``change = (r, phi, t, psi)`` the claim in ``r`` is proved in ``t``
    via ``r = phi(t)``; the kernel checks ``phi(psi(r)) = r`` and proves the
    branch condition at ``t = psi(r)`` for every ``r`` the assumptions allow.
    """

    method = "series summed by SymPy, convergence proved on the whole domain"

    def __init__(self, change: tuple | None = None) -> None:
        self.change = change

    def _summed(self, expr: sp.Basic, t: sp.Symbol | None) -> sp.Basic:
        def one(total: sp.Sum) -> sp.Expr:
            body = sp.powsimp(sp.simplify(total.function), force=t is not None)
            return sp.Sum(body, *total.limits)  # t^(2n), n integer: combining is valid

        return sp.piecewise_fold(expr.replace(lambda e: isinstance(e, sp.Sum), one).doit())

    def prove(self, lhs: sp.Basic, rhs: sp.Basic) -> SymbolicResult:
        before, after, back = lhs, rhs, {}
        if self.change is not None:
            r, phi, t, psi = self.change
            if sp.simplify(phi.xreplace({t: psi}) - r) != 0:
                return SymbolicResult(False, self.method, "phi(psi(r)) != r")
            before = sp.simplify(lhs.xreplace({r: phi}))
            after = rhs.xreplace({r: phi})
            back = {t: psi}
        summed = self._summed(after, self.change[2] if self.change else None)
        if isinstance(summed, sp.Piecewise):
            for value, condition in summed.args:
                if _holds(condition.xreplace(back)):
                    summed = value
                    break
            else:
                return SymbolicResult(
                    False,
                    self.method,
                    f"no branch condition proved on the whole domain: {summed.args[0][1]}",
                )
        if summed.has(sp.Sum):
            return SymbolicResult(False, self.method, f"SymPy did not sum it: {str(summed)[:150]}")
        ok, how = is_zero(sp.simplify(before - summed))
        return SymbolicResult(ok, self.method, how)


@dataclass(frozen=True)
class Theorem:
    """A proved equality ``lhs = rhs`` (built by :func:`symkl.proof.kernel.chain` only)."""

    lhs: sp.Basic
    rhs: sp.Basic
    sizes: tuple[int, ...] | None
    name: str
    _token: object = None
    #: the lemmas (symkl.proof.lemmas) its proof assumes
    lemmas: tuple[str, ...] = ()


_FACTS = ("real", "positive", "negative", "nonnegative", "nonpositive", "nonzero", "integer")


class InstanceOf(Prover):
    """A substitution instance of a proved theorem, optionally summed termwise.

    ``theorem`` is a :class:`Theorem` made by :func:`symkl.proof.kernel.chain`,
    or a *deferred* theorem: a callable with no arguments that returns one (or
    None when its proof fails), called only when a claim is checked, so that
    building a derivation proves nothing.  A deferred theorem must declare the
    ``sizes`` it is expected to hold at (None: for every k) and a ``name``;
    the claim fails unless the theorem, once proved, is genuine and holds at
    exactly those sizes.
    """

    def __init__(self, theorem: Theorem | Callable[[], Theorem | None], substitution: Mapping,
                 over: tuple | None = None, *, sizes: tuple[int, ...] | None = None,
                 name: str | None = None):
        from symkl.proof.kernel import is_genuine

        if isinstance(theorem, Theorem):
            if not is_genuine(theorem):
                raise TypeError("InstanceOf needs a Theorem made by symkl.proof.kernel.chain")
            sizes, name = theorem.sizes, theorem.name
        elif callable(theorem):
            if not isinstance(name, str) or not name:
                raise TypeError("InstanceOf with a deferred theorem needs name=, a string")
        else:
            raise TypeError(
                "InstanceOf needs a Theorem made by symkl.proof.kernel.chain or a callable "
                f"returning one, got {type(theorem).__name__}"
            )
        self.theorem, self.substitution, self.over = theorem, dict(substitution), over
        self.sizes = None if sizes is None else tuple(sorted(set(sizes)))
        self.method = f"instance of the proved theorem {name!r}"

    def _resolve(self) -> tuple[Theorem | None, str]:
        """The theorem (proving a deferred one now), or None and why not."""
        from symkl.proof.kernel import is_genuine

        theorem = self.theorem
        if not isinstance(theorem, Theorem):
            try:
                theorem = theorem()
            except Exception as error:  # a crashing proof proves nothing
                return None, f"the theorem's proof raised {type(error).__name__}: {error}"[:250]
            if theorem is None:
                return None, "the theorem's proof failed"
        if not is_genuine(theorem):  # re-checked: the attribute may have been replaced
            return None, "the theorem was not made by chain"
        if theorem.sizes != self.sizes:
            def scope(sizes):
                return "every k" if sizes is None else f"k = {format_sizes(sizes)}"

            return None, (f"the theorem holds at {scope(theorem.sizes)}, "
                          f"the instance was declared at {scope(self.sizes)}")
        return theorem, ""

    def prove(self, lhs: sp.Basic, rhs: sp.Basic) -> SymbolicResult:
        theorem, why = self._resolve()
        if theorem is None:
            return SymbolicResult(False, self.method, why)
        for source, target in self.substitution.items():
            for fact in _FACTS:
                if getattr(source, f"is_{fact}") and not getattr(target, f"is_{fact}"):
                    return SymbolicResult(
                        False, self.method, f"{source} is {fact} but {target} is not known to be"
                    )
        expected = [
            theorem.lhs.xreplace(self.substitution),
            theorem.rhs.xreplace(self.substitution),
        ]
        if self.over is not None:
            expected = [sp.Sum(e, self.over) for e in expected]
        if [admit(e) for e in expected] != [admit(lhs), admit(rhs)]:
            return SymbolicResult(False, self.method, "the sides are not the instance")
        return SymbolicResult(True, self.method, "", theorem.sizes, theorem.lemmas)


class AtSizes(Prover):
    """Prove a statement about the dimension ``k`` at each of ``sizes``, and say so.

    ``setting(size)`` gives the substitution at a size (default ``{k: size}``);
    compound keys (e.g. ``det(Sigma)``) must equal their value under the rest
    of the setting, which is proved.  ``inner(setting)`` gives the prover used.
    With ``general=True`` a proof with ``k`` symbolic is tried first.
    """

    def __init__(
        self,
        k: sp.Symbol,
        sizes: Sequence[int] = (1, 2, 3, 4),
        *,
        setting: Callable[[int], Mapping] | None = None,
        inner: Callable[[Mapping], Prover] | None = None,
        general: bool = False,
        what: str = "",
    ) -> None:
        self.k, self.sizes = k, tuple(sizes)
        self.setting = setting or (lambda size: {k: sp.Integer(size)})
        self.inner = inner or (lambda setting: Generic())
        self.general, self.what = general, what

    @staticmethod
    def _generic(setting: Mapping, size: int, free: set) -> str:
        """Why ``setting`` specialises the claim beyond fixing its size, or ``""``.

        A setting may set size symbols to the size and write matrix symbols out
        in fresh entries; pinning a scalar (``x -> 0``), an entry (``a[1] -> 0``),
        a matrix to constants, or a matrix to symbols of the claim would prove
        a special case only.
        """
        for key, value in setting.items():
            if isinstance(key, (sp.Symbol, sp.Indexed)):
                if not (isinstance(key, sp.Symbol) and key.is_integer and value == size):
                    return (
                        f"the setting pins {key} -> {value}: only the size symbols "
                        f"may be fixed (to {size}); that proves a special case"
                    )
            elif isinstance(key, sp.MatrixSymbol):
                symbols = getattr(value, "free_symbols", set())
                if not symbols:
                    return f"the setting pins {key} to constants: that proves a special case"
                if symbols & free:
                    shared = ", ".join(sorted(map(str, symbols & free)))
                    return (
                        f"the setting writes {key} with {shared}, symbols of the claim "
                        "itself: that proves a special case"
                    )
        return ""

    @staticmethod
    def _consistent(setting: Mapping) -> str:
        simple = {
            a: b
            for a, b in setting.items()
            if isinstance(a, (sp.Symbol, sp.MatrixSymbol, sp.Indexed))
        }
        for key, value in setting.items():
            if key in simple:
                continue
            derived = key.xreplace(simple).doit()
            if hasattr(derived, "as_explicit"):
                derived = derived.as_explicit()
            gap = (
                sp.expand(sp.ImmutableMatrix(derived) - sp.ImmutableMatrix(value))
                if hasattr(derived, "shape")
                else sp.expand(derived - value)
            )
            if gap != 0 and not (hasattr(gap, "is_zero_matrix") and gap.is_zero_matrix):
                return f"{key} -> {value} does not follow from the rest of the setting"
        return ""

    def prove(self, lhs: sp.Basic, rhs: sp.Basic) -> SymbolicResult:
        if self.general and not lhs.has(sp.Product):
            result = Generic().prove(lhs, rhs)
            if result.ok:
                return SymbolicResult(True, f"{result.method}, for general k", result.detail)
        methods: list[str] = []
        lemmas: list[str] = []
        hypotheses: list[str] = []
        for size in self.sizes:
            setting = self.setting(size)
            problem = self._generic(setting, size, lhs.free_symbols | rhs.free_symbols)
            problem = problem or self._consistent(setting)
            if problem:
                return SymbolicResult(False, f"at k = {size}", problem)
            result = run_prover(
                self.inner(setting),
                admit(instantiate(lhs, setting)),
                admit(instantiate(rhs, setting)),
            )
            if not result.ok:
                return SymbolicResult(False, f"at k = {size}: {result.method}", result.detail)
            methods.append(result.method)
            lemmas.extend(result.lemmas)
            hypotheses.extend(result.hypotheses)
        what = f" with {self.what}" if self.what else ""
        return SymbolicResult(
            True,
            f"at k = {format_sizes(self.sizes)}{what}: {', '.join(dict.fromkeys(methods))}",
            "not proved for general k; proved symbolically at each listed k",
            self.sizes,
            tuple(dict.fromkeys(lemmas)),
            tuple(dict.fromkeys(hypotheses)),
        )


@functools.cache
def _normal_moment(power: int) -> sp.Expr:
    z = sp.Symbol("z", real=True)
    return sp.integrate(z**power * sp.exp(-(z**2) / 2) / sp.sqrt(2 * sp.pi), (z, -sp.oo, sp.oo))


class Whitened(Prover):
    """Integrals over R^n by ``x = mean + L z`` (a bijection, ``|det L|`` proved > 0).

    In ``z`` the Gaussian weight must become the standard normal density; then
    linearity (dominated) or exact normal moments of the polynomial factor.
    """

    method = "expectations by x = mu_p + L_p z and normal moments"

    def __init__(self, factor: sp.MatrixBase, mean: sp.MatrixBase) -> None:
        self.factor, self.mean = sp.ImmutableMatrix(factor), sp.ImmutableMatrix(mean)

    def _transform(self, integral: sp.Integral) -> sp.Expr | None:
        variables = [lim[0] for lim in integral.limits]
        n = len(variables)
        if self.factor.shape != (n, n) or any(
            lim[1] != -sp.oo or lim[2] != sp.oo for lim in integral.limits
        ):
            return None
        z = [sp.Dummy(f"z{a}", real=True) for a in range(n)]
        shift = {
            variables[a]: self.mean[a] + sum(self.factor[a, b] * z[b] for b in range(n))
            for a in range(n)
        }
        return sp.Integral(
            integral.function.xreplace(shift) * sp.Abs(self.factor.det()),
            *[(v, -sp.oo, sp.oo) for v in z],
        )

    @staticmethod
    def _moments(integral: sp.Integral) -> sp.Expr | None:
        z = [lim[0] for lim in integral.limits]
        exps = [e for e in integral.function.atoms(sp.exp) if e.has(*z)]
        if len(exps) != 1 or sp.cancel(sp.expand(exps[0].args[0] + sum(v**2 for v in z) / 2)):
            return None
        marker = sp.Dummy("phi")
        linear = sp.expand(integral.function.xreplace({exps[0]: marker}))
        coefficient = sp.diff(linear, marker)
        if coefficient.has(marker) or sp.expand(linear - coefficient * marker) != 0:
            return None
        try:
            poly = sp.Poly(sp.expand(coefficient * sp.sqrt(2 * sp.pi) ** len(z)), *z)
        except sp.PolynomialError:
            return None
        if any(c.has(*z) for c in poly.coeffs()):
            return None
        return sp.Add(
            *[c * sp.Mul(*[_normal_moment(p) for p in powers]) for powers, c in poly.terms()]
        )

    def prove(self, lhs: sp.Basic, rhs: sp.Basic) -> SymbolicResult:
        difference = lhs - rhs
        if not difference.has(sp.Integral):
            ok, how = is_zero(difference)
            return SymbolicResult(ok, "algebra", how)
        if sp.factor(self.factor.det()).is_nonzero is not True:
            return SymbolicResult(False, self.method, "det L is not proved non-zero")
        moved = {}
        for integral in difference.atoms(sp.Integral):
            new = self._transform(integral)
            if new is None:
                return SymbolicResult(False, self.method, f"not over R^n: {integral}")
            moved[integral] = new
        difference = difference.xreplace(moved)
        ok, how = _linearity(difference)
        if ok:
            return SymbolicResult(True, "linearity of the integral (pieces dominated)", how)
        values = {}
        for integral in difference.atoms(sp.Integral):
            value = self._moments(integral)
            if value is None:
                return SymbolicResult(False, self.method, f"not normal x polynomial: {integral}")
            values[integral] = value
        ok, how = is_zero(difference.xreplace(values))
        return SymbolicResult(ok, self.method, how)
