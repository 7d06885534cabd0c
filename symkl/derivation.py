"""Derivations: immutable chains of steps and facts, checked by the kernel (:mod:`symkl.proof`).

A :class:`Derivation` is an ordered chain of :class:`Step` objects from the
integral definition of the KL divergence to a closed form, with its named
terms and :class:`Fact` objects.  It *builds claims*; it never decides a
verdict: :meth:`Derivation.verify` hands every claim (each step against the
one before, the named terms against the closed form, every fact) to
:func:`symkl.proof.check` and collects the verdicts.  Derivations are frozen
and verdicts are keyed on the claims' content, so an edited derivation
(``dataclasses.replace``) is checked again.

The kernel's names are re-exported here, so ``from symkl.derivation import
check_step, Step, Fact, Derivation`` keeps working.

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

import dataclasses
import functools
import numbers
import time
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import sympy as sp

from symkl.proof import (
    AtSizes,
    Claim,
    InstanceOf,
    NumericResult,
    Prover,
    Settings,
    StepCheck,
    SymbolicResult,
    Theorem,
    VerificationReport,
    chain,
    check,
    check_step,
    evaluate,
    instantiate,
    is_zero,
)
from symkl.proof.kernel import _definitions

__all__ = [
    "Derivation",
    "Fact",
    "NumericResult",
    "Step",
    "StepCheck",
    "SymbolicResult",
    "VerificationReport",
    "check_step",
    "evaluate",
    "instantiate",
    "is_zero",
    "proved_for_general_k_or_at",
    "reverse_and_symmetric_facts",
]


def proved_for_general_k_or_at(k: sp.Symbol, sizes=(1, 2, 3, 4)) -> AtSizes:
    """The kernel prover for steps about a dimension ``k``: general first, else at ``sizes``."""
    return AtSizes(k, sizes, general=True)


def _prover(prove: object, where: str) -> Prover | None:
    if prove is not None and not isinstance(prove, Prover):
        raise TypeError(f"{where}: prove must be a symkl.proof Prover, got "
                        f"{type(prove).__name__}; only the kernel's provers make claims pass")
    return prove


@dataclass(frozen=True)
class Step:
    """One link of a derivation chain: ``expr`` equals the previous step's expression.

    ``prove`` is a kernel prover (default :class:`symkl.proof.Generic`);
    ``instances`` are concrete substitutions (sizes) for the numeric side.
    """

    label: str
    expr: sp.Expr
    rule: str
    assumptions: tuple[str, ...] = ()
    prove: Prover | None = None
    instances: tuple = ()

    def __post_init__(self) -> None:
        _prover(self.prove, f"step {self.label!r}")
        object.__setattr__(self, "assumptions", tuple(self.assumptions))
        object.__setattr__(self, "instances", tuple(self.instances))


@dataclass(frozen=True)
class Fact:
    """A statement shown with a derivation, ``lhs = rhs``, always checked as a claim.

    ``label`` is required.  ``origin`` is ``"stated"`` (typed by hand, then
    checked) or ``"computed"`` (``rhs`` computed by SymPy, then checked).
    ``shown`` is what renders on the left when ``lhs`` is the checkable
    expression behind a name (e.g. ``J(p, q)`` for ``KL(p||q) + KL(q||p)``).
    """

    text: str
    lhs: sp.Basic
    rhs: sp.Basic
    label: str = ""
    prove: Prover | None = None
    instances: tuple = ()
    origin: str = "stated"
    shown: sp.Basic | None = None
    #: substitute the derivation's definitions into both sides (off for facts whose
    #: symbols are bound, e.g. derivatives in a symbol that a definition rewrites)
    use_definitions: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not self.label:
            raise ValueError(f"fact {self.text[:60]!r}: every fact needs a label (it is checked)")
        if self.origin not in ("stated", "computed"):
            raise ValueError(f"fact {self.label!r}: origin must be 'stated' or 'computed', "
                             f"got {self.origin!r}")
        _prover(self.prove, f"fact {self.label!r}")
        object.__setattr__(self, "instances", tuple(self.instances))

    @property
    def display_lhs(self) -> sp.Basic:
        """The left side as rendered."""
        return self.lhs if self.shown is None else self.shown


def _sizes(prove: Prover | None) -> tuple[int, ...] | None:
    """The sizes a step proved by :class:`AtSizes` is claimed at (a general proof is better)."""
    if isinstance(prove, AtSizes):
        return prove.sizes
    return prove.sizes if isinstance(prove, InstanceOf) else None


@dataclass(frozen=True)
class Derivation:
    """An immutable chain of steps from the KL integral to a closed form.

    Attributes
    ----------
    name, title : str
        Registry name and human title.
    lhs : sympy.Expr
        What is derived (shown on the left).
    steps : tuple of Step
        ``steps[0]`` is the definition, ``steps[-1].expr`` the closed form.
    definitions : mapping
        Placeholders and what they stand for.
    terms : mapping of str to sympy.Expr
        Named terms; a checked claim says they add up to the closed form.
    facts : tuple of Fact
        Every one a checked claim.
    attachments : mapping
        Objects computed with the derivation (e.g. the numeric forms); not checked.
    """

    name: str
    title: str
    lhs: sp.Expr
    steps: tuple[Step, ...]
    definitions: Mapping = field(default_factory=dict)
    terms: Mapping = field(default_factory=dict)
    parameters: tuple = ()
    notes: tuple[str, ...] = ()
    derive_seconds: float = field(default=0.0, compare=False)
    terms_prove: Prover | None = None
    terms_instances: tuple = ()
    facts: tuple[Fact, ...] = ()
    swap: Mapping = field(default_factory=dict)
    dimension: sp.Symbol | None = None
    attachments: Mapping = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in ("steps", "notes", "facts", "parameters", "terms_instances"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("definitions", "terms", "swap", "attachments"):
            object.__setattr__(self, name, types.MappingProxyType(dict(getattr(self, name))))
        _prover(self.terms_prove, f"derivation {self.name!r} terms")
        labels = [s.label for s in self.steps] + [f.label for f in self.facts]
        duplicated = {label for label in labels if labels.count(label) > 1}
        if duplicated:
            raise ValueError(f"derivation {self.name!r}: duplicate labels {sorted(duplicated)}")

    def __hash__(self) -> int:
        return hash((self.name, self.steps, self.facts))

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
        return self.closed_form.xreplace(dict(self.swap))

    @property
    def symmetric_closed_form(self) -> sp.Expr:
        """Jeffreys divergence KL(p || q) + KL(q || p), simplified (the log-ratios cancel)."""
        forward, reverse = self.closed_form, self.reverse_closed_form
        if isinstance(forward, sp.Sum):  # sum the summands, then simplify termwise
            summand = forward.function + reverse.function
            return sp.Sum(sp.factor(sp.expand(sp.expand_log(summand))), *forward.limits)
        return sp.factor(sp.expand(sp.expand_log(forward + reverse)))

    def claims(self) -> tuple[Claim, ...]:
        """Every claim of this derivation: the steps, the named terms, every fact."""
        defs = dict(self.definitions)

        def side(expr: sp.Basic) -> sp.Basic:
            return _definitions(expr, defs)

        claims = [
            Claim(step.label, side(previous.expr), side(step.expr), step.rule, "step",
                  step.assumptions, _sizes(step.prove), step.prove, step.instances)
            for previous, step in zip(self.steps, self.steps[1:], strict=False)
        ]
        if self.terms:
            claims.append(Claim("named-terms", side(self.closed_form),
                                side(sp.Add(*self.terms.values())),
                                "the named terms add up to the closed form", "computed", (),
                                _sizes(self.terms_prove), self.terms_prove,
                                self.terms_instances))
        for fact in self.facts:
            lhs, rhs = (side(fact.lhs), side(fact.rhs)) if fact.use_definitions else (
                fact.lhs, fact.rhs)
            claims.append(Claim(fact.label, lhs, rhs, fact.text, fact.origin, (),
                                _sizes(fact.prove), fact.prove, fact.instances))
        return tuple(claims)

    def verify(self, *, dps: int = 30, points: int = 5, seed: int = 0,
               min_digits: float = 25) -> VerificationReport:
        """Check every claim, symbolically and numerically; never raises on a failed claim.

        Verdicts are keyed on each claim's content and the settings.
        """
        settings = Settings(dps, points, seed, min_digits)
        started = time.perf_counter()
        checks = tuple(check(claim, settings) for claim in self.claims())
        return VerificationReport(self.name, checks, time.perf_counter() - started)

    def theorem(self, upto: str | None = None) -> Theorem | None:
        """``definition = closed form`` (or the step ``upto``) as a kernel Theorem, if proved.

        Only the steps up to ``upto`` are checked (with the default settings;
        verdicts are cached by content): named terms and facts are not part of
        the chain.
        """
        steps = [claim for claim in self.claims() if claim.origin == "step"]
        labels = [claim.label for claim in steps]
        if upto is not None:
            if upto not in labels:
                return None
            steps = steps[: labels.index(upto) + 1]
        settings = Settings()
        checks = tuple(check(claim, settings) for claim in steps)
        report = VerificationReport(self.name, checks, 0.0)
        return chain(report, self.name, upto)

    def deferred_theorem(self, upto: str | None = None) -> Callable[[], Theorem | None]:
        """:meth:`theorem` as a callable for :class:`~symkl.proof.provers.InstanceOf`.

        Building a derivation then proves nothing: the theorem is proved when a
        claim that uses it is checked.
        """
        return functools.partial(Derivation.theorem, self, upto)

    def replace(self, **changes) -> Derivation:
        """A copy with ``changes`` (an edited derivation is checked again)."""
        return dataclasses.replace(self, **changes)


def reverse_and_symmetric_facts(derivation: Derivation, reverse_lhs: sp.Basic | None = None,
                                reverse_prove: Prover | None = None,
                                prove: Prover | None = None,
                                instances: tuple = ()) -> list[Fact]:
    """Facts for the reverse divergence KL(q||p) and the Jeffreys divergence, both checked.

    The reverse fact's checked left side is ``reverse_lhs`` (the swapped
    definition) when given, else the closed form with ``p`` and ``q`` exchanged
    by substitution, which is checked against SymPy's own substitution.
    """
    reverse = sp.Symbol(r"D_{\mathrm{KL}}\left(q \,\|\, p\right)")
    jeffreys = sp.Symbol(r"J(p, q) = D_{\mathrm{KL}}(p\|q) + D_{\mathrm{KL}}(q\|p)")
    return [
        Fact(
            "reverse divergence: exchange the roles of p and q",
            reverse_lhs if reverse_lhs is not None else derivation.reverse_closed_form,
            derivation.reverse_closed_form,
            label="reverse",
            prove=reverse_prove if reverse_lhs is not None else prove,
            instances=instances,
            origin="computed",
            shown=reverse,
        ),
        Fact(
            "symmetric (Jeffreys) divergence: the log-ratios cancel",
            derivation.closed_form + derivation.reverse_closed_form,
            derivation.symmetric_closed_form,
            label="jeffreys",
            prove=prove,
            instances=instances,
            origin="computed",
            shown=jeffreys,
        ),
    ]
