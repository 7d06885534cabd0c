"""Sample points that honour every declared assumption, over many orders of magnitude.

A numeric check is only as good as its points.  Each symbol gets an exact
rational drawn for its declared domain: integers well beyond ``1..4`` (with
parity and sign), reals and positives spread over ``10^-decades .. 10^decades``
(``decades`` 2 for ordinary points, up to 30 for the kernel's wide ones) with
large random denominators (no rational grid such as ``n/1000`` on which
``sin(1000 pi y)`` vanishes).  :func:`threshold_values` finds, for one symbol,
where a relational, ``Piecewise`` condition, ``Heaviside``, ``sign``, ``Abs``,
``Min``/``Max`` or ``floor``/``ceiling`` changes branch, and returns exact
values on both sides of (and at) each such boundary.  A candidate is kept only after SymPy confirms
every assumption the symbol carries; a symbol whose assumptions cannot be
met raises :class:`SamplingError` instead of being sampled outside its domain.

Examples
--------
>>> import random, sympy as sp
>>> n = sp.Symbol("n", integer=True, odd=True, negative=True)
>>> value = sample_value(n, random.Random(1))
>>> bool(value < 0 and value % 2 == 1)
True
"""

from __future__ import annotations

import fractions
import itertools
import random
from collections.abc import Mapping

import mpmath
import sympy as sp
from sympy.core.relational import Relational

__all__ = [
    "SamplingError", "boundaries", "sample_value", "sampled_atoms", "satisfies",
    "threshold_values",
]  # fmt: skip

_FACTS = (
    "integer", "rational", "irrational", "real", "positive", "negative", "nonnegative",
    "nonpositive", "nonzero", "zero", "even", "odd", "prime", "composite", "finite",
)  # fmt: skip


class SamplingError(ValueError):
    """No exact value satisfies a symbol's declared assumptions."""


def _candidate(
    owner: sp.Basic, rng: random.Random, attempt: int, decades: float = 2
) -> sp.Rational:
    sign = (
        -1
        if owner.is_negative or owner.is_nonpositive
        else (1 if owner.is_positive or owner.is_nonnegative else rng.choice((-1, 1)))
    )
    if owner.is_zero:
        return sp.Integer(0)
    if owner.is_integer:
        # sizes 1..12 most of the time, sometimes up to 100, sometimes up to 10^4:
        # never only 1..4 (nor only 1..60: (n - 1)...(n - 50) = 0 holds there)
        draw = rng.random()
        magnitude = (
            rng.randint(1, 12)
            if draw < 0.6
            else (rng.randint(13, 100) if draw < 0.85 else int(10 ** rng.uniform(2, 4)))
        )
        if owner.is_nonnegative and not owner.is_positive and attempt % 5 == 0:
            magnitude = 0
        return sp.Integer(sign * magnitude)
    exponent = rng.uniform(-decades, decades)
    mantissa = sp.Rational(rng.randint(10**11, 10**12 - 1), rng.randint(10**11, 10**12 - 1))
    scale = (
        sp.Rational(10) ** int(sp.floor(exponent))
        if exponent >= 0
        else (1 / sp.Rational(10) ** int(sp.ceiling(-exponent)))
    )
    return sign * mantissa * scale


def satisfies(owner: sp.Basic, value: sp.Basic) -> bool:
    """True when the exact ``value`` has every fact ``owner`` declares (for extra points)."""
    if not value.is_Rational:
        return False
    wanted = {fact: getattr(owner, f"is_{fact}") for fact in _FACTS}
    return all(
        getattr(value, f"is_{fact}") == expected
        for fact, expected in wanted.items()
        if expected is not None
    )


def sample_value(
    owner: sp.Basic, rng: random.Random, tries: int = 200, decades: float = 2
) -> sp.Rational:
    """An exact value satisfying every assumption ``owner`` declares.

    Non-integer values have magnitudes log-uniform in ``10^-decades .. 10^decades``.
    Raises :class:`SamplingError` when none is found (e.g. an irrational symbol).
    """
    wanted = {fact: getattr(owner, f"is_{fact}") for fact in _FACTS}
    wanted = {fact: value for fact, value in wanted.items() if value is not None}
    if wanted.get("irrational") or wanted.get("real") is False or wanted.get("finite") is False:
        raise SamplingError(
            f"cannot sample {owner}: its assumptions {wanted} admit no exact real rational value"
        )
    for attempt in range(tries):
        value = _candidate(owner, rng, attempt, decades)
        if owner.is_prime:
            value = sp.Integer(sp.prime(rng.randint(1, 30)))
        if all(getattr(value, f"is_{fact}") == expected for fact, expected in wanted.items()):
            return value
    raise SamplingError(f"no sample satisfies the assumptions of {owner}: {wanted}")


def owner_of(atom: sp.Basic) -> sp.Basic:
    """The object whose assumptions define the domain of ``atom`` (an Indexed's base label)."""
    return atom.base.label if isinstance(atom, sp.Indexed) else atom


def sampled_atoms(expr: sp.Basic) -> list[sp.Basic]:
    """The free symbols and indexed entries to sample, in a reproducible order."""
    atoms = set(expr.atoms(sp.Indexed))
    bases = {a.base.label for a in atoms}
    atoms |= {s for s in expr.free_symbols if s not in bases and not s.is_Indexed}
    for indexed in [a for a in atoms if isinstance(a, sp.Indexed)]:
        atoms -= set(indexed.indices)
    return sorted(atoms, key=sp.default_sort_key)


# --------------------------------------------------------------------------- thresholds

#: where a root is looked for: 0 and +/- 10^e for e in -40..40 (in steps of 1/4)
_GRID = sorted({0.0} | {sign * 10 ** (e / 4) for e in range(-160, 161) for sign in (-1, 1)})
#: relative offsets either side of a boundary: at it, just beside it, a little and well away
_OFFSETS = (sp.Integer(0), sp.Rational(1, 10**20), sp.Rational(1, 10**6), sp.Rational(1, 10))


def boundaries(expr: sp.Basic, point: Mapping | None = None) -> list[sp.Expr]:
    """Expressions whose sign change is a branch change of ``expr``.

    ``a < b`` (any relational, inside Piecewise, And, Or ...) gives ``a - b``;
    ``Heaviside(a)``, ``sign(a)``, ``Abs(a)`` give ``a``; ``Min``/``Max`` the
    differences of their arguments; ``floor(a)``, ``ceiling(a)``, ``frac(a)``
    give ``a - n`` for the integers ``n`` next to ``a`` at ``point``.
    """
    found: list[sp.Expr] = []
    for atom in sp.preorder_traversal(expr):
        if isinstance(atom, Relational):
            found.append(atom.lhs - atom.rhs)
        elif isinstance(atom, (sp.Heaviside, sp.sign, sp.Abs)):
            found.append(atom.args[0])
        elif isinstance(atom, (sp.Min, sp.Max)):
            found += [a - b for a, b in itertools.combinations(atom.args, 2)]
        elif isinstance(atom, (sp.floor, sp.ceiling, sp.frac)) and point is not None:
            try:
                centre = sp.floor(atom.args[0].xreplace(dict(point)))
            except (TypeError, ValueError):
                continue
            if centre.is_Integer:
                found += [atom.args[0] - (centre + j) for j in (0, 1)]
    return list(dict.fromkeys(b for b in found if isinstance(b, sp.Expr)))


def _exact(value: mpmath.mpf, boundary: sp.Expr, atom: sp.Basic) -> sp.Rational:
    """A rational at the root: a short fraction when it is the exact root, else the binary value."""
    short = fractions.Fraction(mpmath.nstr(value, 30)).limit_denominator(10**6)
    candidate = sp.Rational(short.numerator, short.denominator)
    try:
        if boundary.xreplace({atom: candidate}) == 0:
            return candidate
    except (TypeError, ValueError):
        pass
    mantissa, exponent = value.man, value.exp
    return sp.Integer(mantissa) * sp.Integer(2) ** exponent


def _roots(boundary: sp.Expr, atom: sp.Basic, limit: int) -> list[mpmath.mpf]:
    """Real roots of ``boundary(atom)`` from sign changes over :data:`_GRID`, bisected."""
    function = sp.lambdify([atom], boundary, modules="mpmath")
    roots = []
    with mpmath.workdps(50):

        def sign_at(v):
            try:
                value = function(mpmath.mpf(v))
            except (ValueError, ZeroDivisionError, TypeError, OverflowError):
                return None
            if isinstance(value, mpmath.mpc) or not mpmath.isfinite(value):
                return None
            return 0 if value == 0 else (1 if value > 0 else -1)

        signs = [sign_at(v) for v in _GRID]
        for (low, s_low), (high, s_high) in itertools.pairwise(zip(_GRID, signs, strict=True)):
            if s_low == 0:
                roots.append(mpmath.mpf(low))
            if s_low is None or s_high is None or s_low * s_high >= 0:
                continue
            a, b = mpmath.mpf(low), mpmath.mpf(high)
            for _ in range(200):  # bisection: ~60 digits from a quarter-decade bracket
                middle = (a + b) / 2
                s_mid = sign_at(middle)
                if s_mid is None:
                    break
                if s_mid == 0:
                    a = b = middle
                    break
                a, b = (middle, b) if s_mid == s_low else (a, middle)
            roots.append((a + b) / 2)
            if len(roots) >= limit:
                break
    return roots


def threshold_values(
    expr: sp.Basic, atom: sp.Basic, point: Mapping, limit: int = 24
) -> list[sp.Rational]:
    """Exact values of ``atom`` at and on both sides of every branch boundary of ``expr``.

    The other symbols keep their values in ``point``.  Values that break
    ``atom``'s assumptions are dropped; an integer symbol gets the integers
    next to each boundary.  At most ``limit`` values.

    >>> x = sp.Symbol("x", real=True)
    >>> values = threshold_values(sp.Piecewise((1, x > 10**5), (0, True)), x, {})
    >>> min(values) < 10**5 < max(values), sp.Integer(10**5) in values
    (True, True)
    """
    owner = owner_of(atom)
    others = {k: v for k, v in point.items() if k != atom}
    values: list[sp.Rational] = []
    for boundary in boundaries(expr, point):
        try:
            reduced = boundary.xreplace(others)
        except (TypeError, ValueError):
            continue
        if not reduced.has(atom) or reduced.free_symbols - {atom}:
            continue
        for root in _roots(reduced, atom, limit):
            centre = _exact(root, reduced, atom)
            if owner.is_integer:
                base = sp.floor(centre)
                candidates = [base + j for j in (-1, 0, 1, 2)]
            else:
                width = abs(centre) if centre != 0 else sp.Integer(1)
                candidates = [centre + sign * delta * width for delta in _OFFSETS
                              for sign in (-1, 1)]
            values += [c for c in candidates if satisfies(owner, c)]
    return list(dict.fromkeys(values))[:limit]
