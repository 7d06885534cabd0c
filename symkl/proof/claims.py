"""Claims: frozen data, validated on entry, bound variables renamed to fresh dummies.

A :class:`Claim` is an equality ``lhs = rhs`` with a label, a reason, the
assumptions it relies on and its *scope* (``sizes``: the dimensions at which it
is meant; ``None`` means for every value of the symbols).  Everything that
enters the kernel passes through :func:`admit`: strings are refused (nothing
is ever evaluated as text), binary Floats are refused (they are not the
rationals they print as), and every integration or summation variable is
renamed to a fresh dummy whose assumptions follow from its limits, so that
neither a declared assumption nor a free symbol of the same name can leak
into a bound one.

Examples
--------
>>> import sympy as sp
>>> x = sp.Symbol("x", positive=True)
>>> admit(sp.Integral(x, (x, -1, 1)))  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
...
ClaimError: bound variable x is declared positive, but its range (-1, 1) allows values that are not
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

import sympy as sp

__all__ = ["Claim", "ClaimError", "FloatError", "admit", "format_sizes", "instantiate"]

#: assumptions a bound variable may carry only when its range implies them
_CHECKED_FACTS = (
    "positive", "negative", "nonnegative", "nonpositive", "nonzero", "zero",
    "integer", "even", "odd", "prime", "composite", "rational", "irrational",
)  # fmt: skip
_BINDERS = (sp.Integral, sp.Sum, sp.Product)


class ClaimError(ValueError):
    """A claim that cannot be checked as stated (its error says which part and why)."""


class FloatError(ClaimError):
    """A binary Float in a claim: refused, since it is not the rational it prints as."""


def _sympify(value: object, what: str) -> sp.Basic:
    """Accept SymPy objects and Python ints; refuse text, floats and everything else."""
    if isinstance(value, str):
        raise TypeError(
            f"{what}: a string was given ({value[:60]!r}); text is never "
            "evaluated, pass a SymPy expression"
        )
    if isinstance(value, bool):
        raise TypeError(f"{what}: got a bool, expected a SymPy expression")
    if isinstance(value, int):
        return sp.Integer(value)
    if isinstance(value, float):
        raise FloatError(
            f"{what}: the binary float {value!r} is not an exact number; "
            "use sympy.Rational or an exact expression"
        )
    if isinstance(value, sp.MatrixBase):
        return sp.ImmutableMatrix(value)
    if not isinstance(value, sp.Basic):
        raise TypeError(f"{what}: got {type(value).__name__}, expected a SymPy expression")
    return value


def _refuse_floats(expr: sp.Basic, what: str) -> None:
    floats = expr.atoms(sp.Float)
    if floats:
        shown = ", ".join(sorted(str(f) for f in floats)[:3])
        raise FloatError(
            f"{what} holds binary Float(s) {shown}: a Float is not the rational it "
            "prints as; use sympy.Rational (or nsimplify with rational=True) first"
        )


def _range_assumptions(binder: type, low: sp.Expr, high: sp.Expr) -> dict[str, bool]:
    """What a variable ranging between ``low`` and ``high`` is known to be."""
    if binder is sp.Integral:
        if not (low.is_extended_real and high.is_extended_real):
            raise ClaimError(f"integration limits ({low}, {high}) are not known to be real")
        facts = {"real": True}
        if low.is_extended_nonnegative and high.is_extended_nonnegative:
            facts["positive"] = True  # the interior of a range inside [0, oo]
        elif low.is_extended_nonpositive and high.is_extended_nonpositive:
            facts["negative"] = True
        return facts
    if not (low.is_integer and (high.is_integer or high is sp.oo)):
        raise ClaimError(f"summation limits ({low}, {high}) are not known to be integers")
    count = high - low + 1
    if count.is_extended_nonnegative is not True:
        # SymPy's (Karr's) convention makes Sum(f, (k, 5, 1)) = -f(2) - f(3) - f(4): a
        # reversed range is not the empty sum a reader expects, so it is not admitted;
        # nor is one that the symbols' assumptions do not show to be in order
        state = "is reversed" if count.is_negative else "may be reversed"
        raise ClaimError(
            f"summation range ({low}, {high}) {state} (upper limit below lower limit "
            "minus 1, where SymPy's Karr convention subtracts terms): write the range "
            "in increasing order, or declare assumptions that show it is"
        )
    facts = {"integer": True}
    if (low - 1).is_nonnegative:
        facts["positive"] = True
    elif low.is_nonnegative:
        facts["nonnegative"] = True
    return facts


#: the dummy indices of bound variables: ``_DUMMY_BASE + 64 * height + position``
_DUMMY_BASE = 10**9


def _free_dummy_indices(expr: sp.Basic) -> set[int]:
    """The indices of the free dummies of ``expr`` that lie in the bound-variable range."""
    return {
        symbol.dummy_index
        for symbol in expr.free_symbols
        if isinstance(symbol, sp.Dummy) and symbol.dummy_index >= _DUMMY_BASE
    }


def _rename(expr: sp.Basic, what: str) -> tuple[sp.Basic, int]:
    """Bottom-up: every binder's variables become fresh dummies with range assumptions.

    A binder's dummies are numbered by its *height* (binders nested inside it,
    plus one), so alpha-equivalent expressions become identical and sibling
    sums share their index, while no binder can capture a variable in its scope.
    """
    if not expr.args:
        return expr, 0
    renamed = [_rename(arg, what) for arg in expr.args]
    args = [arg for arg, _ in renamed]
    height = max(h for _, h in renamed)
    if not isinstance(expr, _BINDERS):
        return (expr.func(*args) if args != list(expr.args) else expr), height
    # a bound-variable dummy that is *free* here (a forged symbol, or an outer index
    # the kernel left free while it normalised a body) must not be captured: where
    # one has the index this binder's dummies would get, number them above it
    taken = _free_dummy_indices(expr)
    while any(_DUMMY_BASE + 64 * height + p in taken for p in range(len(expr.limits))):
        height += 1
    function = args[0]
    mapping: dict[sp.Basic, sp.Basic] = {}
    limits = []
    # limits run innermost first; an inner limit's bounds may use outer variables
    for position, limit in reversed(list(enumerate(expr.limits))):
        if len(limit) != 3:
            raise ClaimError(f"{what}: {type(expr).__name__} over {limit} has no limits")
        variable, low, high = limit[0], *(b.xreplace(mapping) for b in limit[1:])
        inner = {lim[0] for lim in expr.limits[: position + 1]}
        if inner & (low.free_symbols | high.free_symbols):
            raise ClaimError(
                f"{what}: the limits of {variable} depend on {variable} itself "
                "or on a variable integrated inside it"
            )
        facts = _range_assumptions(type(expr), low, high)
        name = "x" if type(expr) is sp.Integral else "n"
        dummy = sp.Dummy(name, dummy_index=_DUMMY_BASE + 64 * height + position, **facts)
        for fact in _CHECKED_FACTS:
            if getattr(variable, f"is_{fact}") and not getattr(dummy, f"is_{fact}"):
                raise ClaimError(
                    f"bound variable {variable} is declared {fact}, but its range "
                    f"({low}, {high}) allows values that are not"
                )
        mapping[variable] = dummy
        limits.insert(0, (dummy, low, high))
    return type(expr)(function.xreplace(mapping), *limits), height + 1


#: functions that are not differentiable where their argument crosses a boundary
_KINKED = (sp.Abs, sp.sign, sp.Heaviside, sp.floor, sp.ceiling, sp.frac)


def _nondifferentiable(derivative: sp.Derivative) -> str | None:
    """Why ``derivative`` may not exist somewhere its variables range, or None.

    ``Abs(g)``, ``sign(g)``, ``Heaviside(g)``, ``floor(g)`` ... are fine only where
    ``g`` is provably nonzero (a kink at an integer for floor: never fine);
    ``Min``/``Max`` where their arguments are provably ordered; a ``Piecewise``
    only when its conditions do not depend on the variables.
    """
    variables = set(derivative.variables)
    for atom in sp.preorder_traversal(derivative.expr):
        if not (isinstance(atom, sp.Basic) and atom.free_symbols & variables):
            continue
        if isinstance(atom, (sp.floor, sp.ceiling, sp.frac)):
            return f"{atom} jumps wherever its argument is an integer"
        if isinstance(atom, _KINKED) and not atom.args[0].is_nonzero:
            return f"{atom} is not differentiable where {atom.args[0]} = 0"
        if isinstance(atom, (sp.Min, sp.Max)):
            for a, b in itertools.combinations(atom.args, 2):
                if not (a - b).is_nonzero:
                    return f"{atom} is not differentiable where {a} = {b}"
        if isinstance(atom, sp.Piecewise) and any(
            cond.free_symbols & variables for _, cond in atom.args
        ):
            return f"{atom} may be not differentiable where its condition changes"
    return None


def _refuse_kinks(expr: sp.Basic, what: str) -> None:
    for derivative in expr.atoms(sp.Derivative):
        why = _nondifferentiable(derivative)
        if why is not None:
            raise ClaimError(
                f"{what}: {derivative} may not exist: {why}; declare assumptions on the "
                "symbols that exclude those points"
            )


def admit(value: object, what: str = "expression") -> sp.Basic:
    """The kernel's entry check: sympify safely, refuse Floats, rename bound variables.

    Raises ``TypeError`` for text or non-SymPy objects and :class:`ClaimError`
    (a ``ValueError``) for Floats or bound variables whose declared assumptions
    their range does not imply, a reversed summation range, or a derivative of
    a function that may not be differentiable where the claim ranges.
    """
    expr = _sympify(value, what)
    _refuse_floats(expr, what)
    _refuse_kinks(expr, what)
    return _rename(expr, what)[0]


def format_sizes(sizes: tuple[int, ...]) -> str:
    """``(1, 2, 3, 4)`` -> ``"1..4"``, ``(1, 4)`` -> ``"1, 4"``: never a size not listed.

    >>> format_sizes((1, 2, 3, 4)), format_sizes((1, 4)), format_sizes((2, 3))
    ('1..4', '1, 4', '2, 3')
    """
    ordered = sorted(set(sizes))
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{ordered[0]}..{ordered[-1]}"
    return ", ".join(str(n) for n in ordered)


@dataclass(frozen=True)
class Claim:
    """An equality to check: ``lhs = rhs`` with its reason, origin and scope.

    Attributes
    ----------
    label, reason : str
        Stable id and the human reason.
    lhs, rhs : sympy.Basic
        Both sides, already admitted (see :func:`admit`).  Matrices compare entrywise.
    origin : str
        ``"step"`` (a derivation step), ``"computed"`` (the right side computed
        by SymPy) or ``"stated"`` (typed by hand).
    sizes : tuple of int or None
        ``None`` for a claim about every value of its symbols; otherwise the
        dimensions at which it is claimed (and must be proved).
    prover : Prover or None
        A kernel prover; ``None`` uses the generic one.
    instances : tuple of mapping
        Concrete substitutions (sizes, explicit matrices) for the numeric side.
    """

    label: str
    lhs: sp.Basic
    rhs: sp.Basic
    reason: str = ""
    origin: str = "step"
    assumptions: tuple[str, ...] = ()
    sizes: tuple[int, ...] | None = None
    prover: object = None
    instances: tuple = field(default=(), compare=True)

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not self.label:
            raise ClaimError(f"a claim needs a non-empty label, got {self.label!r}")
        if self.origin not in ("step", "computed", "stated"):
            raise ClaimError(
                f"claim {self.label!r}: origin must be step, computed or stated, "
                f"got {self.origin!r}"
            )
        object.__setattr__(self, "lhs", admit(self.lhs, f"claim {self.label!r} lhs"))
        object.__setattr__(self, "rhs", admit(self.rhs, f"claim {self.label!r} rhs"))
        if self.sizes is not None:
            if not self.sizes or any(
                isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in self.sizes
            ):
                raise ClaimError(
                    f"claim {self.label!r}: sizes must be positive ints, got {self.sizes!r}"
                )
            object.__setattr__(self, "sizes", tuple(sorted(set(self.sizes))))
        object.__setattr__(self, "instances", tuple(_frozen(i) for i in self.instances))
        for instance in self.instances:
            for key, value in instance:
                for fact in _INSTANCE_FACTS:
                    if getattr(key, f"is_{fact}", None) and getattr(value, f"is_{fact}") is False:
                        raise ClaimError(
                            f"claim {self.label!r}: the numeric instance {key} = {value} "
                            f"contradicts {key}'s declared assumption ({fact})"
                        )

    @property
    def scope(self) -> str:
        """``"for all k"`` or ``"at k = 1..4"``: what the claim is about."""
        return "for all values" if self.sizes is None else f"at k = {format_sizes(self.sizes)}"


#: the declared assumptions a numeric instance's value must not contradict
_INSTANCE_FACTS = (
    "real", "integer", "positive", "nonnegative", "negative", "nonpositive", "nonzero",
)


def _frozen(mapping: Mapping) -> tuple:
    if isinstance(mapping, tuple):
        return mapping
    return tuple(
        sorted(
            ((k, _sympify(v, "instance value")) for k, v in mapping.items()),
            key=lambda item: sp.default_sort_key(item[0]),
        )
    )


def _finite_outer_sum(expr: sp.Basic) -> bool:
    if not isinstance(expr, (sp.Sum, sp.Product)):
        return False
    _, low, high = expr.limits[-1]
    return low.is_Integer and high.is_Integer and high >= low - 1


def _unroll(total: sp.Basic) -> sp.Expr:
    variable, low, high = total.limits[-1]
    inner = total.limits[:-1]
    body = type(total)(total.function, *inner) if inner else total.function
    terms = [body.xreplace({variable: n}) for n in range(int(low), int(high) + 1)]
    return sp.Add(*terms) if isinstance(total, sp.Sum) else sp.Mul(*terms)


def instantiate(expr: sp.Basic, setting: Mapping | tuple) -> sp.Basic:
    """Substitute concrete sizes and write out finite sums, products and k-fold integrals.

    Integrals are not evaluated.  Sums whose outermost range is concrete are
    written out term by term (triangular sums too).

    >>> k, i = sp.Symbol("k", integer=True, positive=True), sp.Symbol("i", integer=True)
    >>> instantiate(sp.Sum(i**2, (i, 1, k)), {k: 3})
    14
    """
    current = expr.xreplace(dict(setting))
    for total in current.atoms(sp.Sum, sp.Product):
        for _, low, high in (lim for lim in total.limits if len(lim) == 3):
            if low.is_Integer and high.is_Integer and high < low - 1:
                raise ClaimError(
                    f"{total} has a reversed range ({low}, {high}) at {dict(setting)}: "
                    "the claim is not about an empty sum there"
                )
    for _ in range(6):
        expanded = current.doit(integrals=False)
        while expanded.has(sp.Sum, sp.Product):
            unrolled = expanded.replace(_finite_outer_sum, _unroll)
            if unrolled == expanded:
                break
            expanded = unrolled.doit(integrals=False)
        if expanded == current:
            break
        current = expanded
    return current
