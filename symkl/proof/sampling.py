"""Sample points that honour every declared assumption, over many orders of magnitude.

A numeric check is only as good as its points.  Each symbol gets an exact
rational drawn for its declared domain: integers well beyond ``1..4`` (with
parity and sign), reals and positives spread over ``1e-2 .. 1e2`` with large
random denominators (no rational grid such as ``n/1000`` on which
``sin(1000 pi y)`` vanishes).  A candidate is kept only after SymPy confirms
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

import random

import sympy as sp

__all__ = ["SamplingError", "sample_value", "sampled_atoms", "satisfies"]

_FACTS = (
    "integer", "rational", "irrational", "real", "positive", "negative", "nonnegative",
    "nonpositive", "nonzero", "zero", "even", "odd", "prime", "composite", "finite",
)  # fmt: skip


class SamplingError(ValueError):
    """No exact value satisfies a symbol's declared assumptions."""


def _candidate(owner: sp.Basic, rng: random.Random, attempt: int) -> sp.Rational:
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
    exponent = rng.uniform(-2.0, 2.0)
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


def sample_value(owner: sp.Basic, rng: random.Random, tries: int = 200) -> sp.Rational:
    """An exact value satisfying every assumption ``owner`` declares.

    Raises :class:`SamplingError` when none is found (e.g. an irrational symbol).
    """
    wanted = {fact: getattr(owner, f"is_{fact}") for fact in _FACTS}
    wanted = {fact: value for fact, value in wanted.items() if value is not None}
    if wanted.get("irrational") or wanted.get("real") is False or wanted.get("finite") is False:
        raise SamplingError(
            f"cannot sample {owner}: its assumptions {wanted} admit no exact real rational value"
        )
    for attempt in range(tries):
        value = _candidate(owner, rng, attempt)
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
