"""The kernel: check a claim symbolically *and* numerically, return a verdict with its scope.

:func:`check` is the one place a verdict is made.  It validates the settings,
runs the claim's prover (a kernel :class:`~symkl.proof.provers.Prover`; a bare
callable is refused) and the numeric side (exact points honouring every
assumption, evaluated by :mod:`symkl.proof.numerics`), and returns a
:class:`StepCheck`.  Verdicts are cached by the claim's *content* and the
settings, so an edited claim is checked again.  :func:`chain` turns the checks
of consecutive steps into a :class:`~symkl.proof.provers.Theorem`.

Examples
--------
>>> import sympy as sp
>>> a, b = sp.symbols("a b", positive=True)
>>> check_step(sp.log(a * b), sp.log(a) + sp.log(b)).ok
True
>>> check_step(sp.log(a * b), sp.log(a) - sp.log(b)).ok
False
>>> check_step("log(a*b)", sp.log(a))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
TypeError: claim 'step' lhs: a string was given ('log(a*b)'); text is never evaluated, ...
"""

from __future__ import annotations

import itertools
import math
import numbers
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import mpmath
import sympy as sp

from symkl.proof.claims import (
    Claim,
    ClaimError,
    FloatError,
    _sympify,
    admit,
    format_sizes,
    instantiate,
)
from symkl.proof.numerics import EvaluationError, evaluate
from symkl.proof.provers import Generic, Prover, SymbolicResult, Theorem, run_prover
from symkl.proof.sampling import (
    SamplingError,
    boundaries,
    owner_of,
    sample_value,
    sampled_atoms,
    satisfies,
    threshold_values,
)

__all__ = [
    "NumericResult", "Settings", "StepCheck", "VerificationReport", "chain", "check",
    "check_step", "is_genuine",
]  # fmt: skip

_TOKEN = object()  # only chain() can make a genuine Theorem
#: the content of every Theorem chain() made: a copy edited by dataclasses.replace is not in it
_GENUINE: set[tuple] = set()


@dataclass(frozen=True)
class Settings:
    """Numeric settings, validated: a ValueError names the setting that is out of range."""

    dps: int = 30
    points: int = 5
    seed: int = 0
    min_digits: float = 25

    def __post_init__(self) -> None:
        for name in ("dps", "points", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(f"{name} must be an int, got {value!r}")
        if isinstance(self.min_digits, bool) or not isinstance(self.min_digits, numbers.Real):
            raise ValueError(f"min_digits must be a number, got {self.min_digits!r}")
        if not 3 <= self.points <= 1000:
            raise ValueError(f"points must be in 3..1000 (fewer checks nothing), got {self.points}")
        if not 15 <= self.min_digits <= 1000:
            raise ValueError(f"min_digits must be in 15..1000, got {self.min_digits}")
        if not self.min_digits + 5 <= self.dps <= 2000:
            raise ValueError(
                f"dps must exceed min_digits by at least 5 (guard digits), got "
                f"dps={self.dps}, min_digits={self.min_digits}"
            )


@dataclass(frozen=True)
class NumericResult:
    """The numeric side: worst agreement over ``points`` sampled points per instance.

    ``digits`` is the agreement at the worst point; ``worst_discrepancy`` the
    relative difference there (absolute, against the magnitude of the other
    side, where one side is exactly 0), quadrature error included.
    ``integration`` says how the integrals were computed: ``"certified"``
    (ball arithmetic, rigorous error), ``"gauss-hermite-exact"`` (a polynomial
    times a Gaussian over ``R^k`` by a rule exact for its degree: rounding error
    only), ``"quadrature"`` (mpmath, estimated error), joined by ``"+"``, or
    ``""`` when there were none.
    """

    ok: bool
    points: int
    dps: int
    min_digits: float
    digits: float
    worst_discrepancy: float
    worst_point: dict[str, str]
    detail: str = ""
    sizes: tuple[int, ...] = ()
    integration: str = ""


def mentions_a_size(claim: Claim | None) -> bool:
    """The claim has a positive integer symbol (a size ``k``, a bound) among its symbols or its
    matrices' shapes; a claim with none holds "for all values", not "for all k".

    >>> x = sp.Symbol("x", positive=True)
    >>> mentions_a_size(Claim("log", sp.log(x**2), 2 * sp.log(x)))
    False
    """
    if claim is None:
        return True
    for side in (claim.lhs, claim.rhs):
        for symbol in side.free_symbols:
            if isinstance(symbol, sp.MatrixSymbol):
                if any(sp.sympify(d).free_symbols for d in symbol.shape):
                    return True
            elif getattr(symbol, "is_integer", False) and getattr(symbol, "is_positive", False):
                return True  # a dimension is a positive integer; an exponent e_u is not
    return False


@dataclass(frozen=True)
class StepCheck:
    """The verdict on one claim: symbolic and numeric results and the scope proved."""

    label: str
    rule: str
    symbolic: SymbolicResult
    numeric: NumericResult
    seconds: float
    claim: Claim | None = None

    @property
    def ok(self) -> bool:
        """True only when the symbolic and the numeric side both pass."""
        return self.symbolic.ok and self.numeric.ok

    @property
    def general(self) -> bool:
        """True when proved for every value of the symbols (no finite sizes)."""
        return self.symbolic.sizes is None

    @property
    def lemmas(self) -> tuple[str, ...]:
        """The lemmas (:mod:`symkl.proof.lemmas`) the symbolic proof assumes."""
        return self.symbolic.lemmas

    @property
    def hypotheses(self) -> tuple[str, ...]:
        """The hypotheses that restrict what was proved (``"Sigma_p = diag(a)"``)."""
        return self.symbolic.hypotheses

    @property
    def scope(self) -> str:
        """``"for all k"``, ``"for all k from lemmas L1, L2"`` or ``"at k = 1..4"``.

        A proof that rests on a restricting hypothesis adds ``", given ..."``.

        Numeric sizes are added when there are some.
        """
        if not self.ok:
            return "not proved"
        text = (("for all k" if mentions_a_size(self.claim) else "for all values")
                if self.general else f"at k = {format_sizes(self.symbolic.sizes)}")
        if self.lemmas:
            text += f" from lemmas {', '.join(self.lemmas)}"
        if self.hypotheses:
            text += f", given {', '.join(self.hypotheses)}"
        if self.numeric.sizes:
            text += f" (numerically at k = {format_sizes(self.numeric.sizes)})"
        return text

    def summary(self) -> str:
        """One line: verdict, label, symbolic method, numeric digits, scope."""
        verdict = "PROVED" if self.ok else "FAILED"
        sym = ("ok " if self.symbolic.ok else "NO ") + self.symbolic.method
        num = f"{'ok' if self.numeric.ok else 'NO'} {self.numeric.digits:.1f} digits"
        return f"{verdict:7s} {self.label:28s} symbolic: {sym:42s} numeric: {num}  [{self.scope}]"

    def as_dict(self) -> dict:
        """A JSON-ready record of this verdict."""
        return {
            "label": self.label,
            "ok": self.ok,
            "scope": self.scope,
            "origin": self.claim.origin if self.claim else "step",
            "symbolic": {
                "ok": self.symbolic.ok,
                "method": self.symbolic.method,
                "sizes": list(self.symbolic.sizes) if self.symbolic.sizes else None,
                "lemmas": list(self.lemmas),
                "hypotheses": list(self.hypotheses),
            },
            "numeric": {
                "ok": self.numeric.ok,
                "digits": round(self.numeric.digits, 2),
                "points": self.numeric.points,
                "dps": self.numeric.dps,
                "sizes": list(self.numeric.sizes),
                "integration": self.numeric.integration,
            },
        }


@dataclass(frozen=True)
class VerificationReport:
    """Verdicts on every claim of a derivation; ``proved`` needs every one to pass."""

    name: str
    checks: tuple[StepCheck, ...]
    seconds: float

    @property
    def proved(self) -> bool:
        """True when every claim passed both sides (at its scope)."""
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def failures(self) -> tuple[StepCheck, ...]:
        """The claims that did not pass."""
        return tuple(check for check in self.checks if not check.ok)

    @property
    def lemmas(self) -> tuple[str, ...]:
        """Every lemma any claim's proof assumes, in order of first use."""
        return tuple(dict.fromkeys(name for c in self.checks for name in c.lemmas))

    @property
    def scope(self) -> str:
        """``"for all k"`` only when every claim is general; else the sizes and which claims.

        When general claims assume lemmas: ``"for all k from lemmas L1, L2"``.
        """
        if not self.proved:
            return "not proved"
        finite = [c for c in self.checks if not c.general]
        if not finite:
            sized = any(mentions_a_size(c.claim) for c in self.checks)
            text = "for all k" if sized else "for all values"
            text += f" from lemmas {', '.join(self.lemmas)}" if self.lemmas else ""
            given = [f"{c.label} given {', '.join(c.hypotheses)}" for c in self.checks
                     if c.hypotheses]
            return text + (f" ({'; '.join(given)})" if given else "")
        sizes = sorted(set.intersection(*[set(c.symbolic.sizes) for c in finite]))
        return (
            f"{len(finite)} of {len(self.checks)} claims only at k = {format_sizes(sizes)}"
            if sizes
            else f"{len(finite)} of {len(self.checks)} claims only at finite k"
        )

    def check(self, label: str) -> StepCheck:
        """The verdict labelled ``label``; ``KeyError`` names the labels that exist."""
        for check in self.checks:
            if check.label == label:
                return check
        raise KeyError(f"no check labelled {label!r}; labels: {[c.label for c in self.checks]}")

    def summary(self) -> str:
        """One line: the verdict and its scope."""
        if not self.proved:
            return f"{self.name}: NOT PROVED ({len(self.failures)} of {len(self.checks)} failing)"
        return f"{self.name}: PROVED, {len(self.checks)} claims, {self.scope}"

    def __str__(self) -> str:
        lines = [f"derivation {self.name!r}: {len(self.checks)} claims checked"]
        lines += ["  " + check.summary() for check in self.checks]
        lines.append(f"  {self.summary()} in {self.seconds:.2f} s")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """A JSON-ready summary: verdict, scope and every claim."""
        return {
            "name": self.name,
            "proved": self.proved,
            "scope": self.scope,
            "lemmas": list(self.lemmas),
            "seconds": round(self.seconds, 3),
            "claims": [c.as_dict() for c in self.checks],
            "steps": [c.as_dict() for c in self.checks],
        }


# --------------------------------------------------------------------------- numeric side


def _magnitude(expr: sp.Basic, dps: int, point: dict):
    """A scale for judging an exact 0: the sum of the absolute values of the other side's parts."""
    if isinstance(expr, sp.Add):
        return mpmath.fsum(_magnitude(a, dps, point) for a in expr.args)
    if isinstance(expr, sp.Mul):
        return mpmath.fprod(_magnitude(a, dps, point) for a in expr.args)
    if isinstance(expr, sp.Integral):
        absolute = sp.Integral(sp.Abs(expr.function), *expr.limits)
        return abs(evaluate(absolute, dps, point)[0])
    return abs(evaluate(expr, dps, point)[0])


def _discrepancy(lhs: sp.Basic, rhs: sp.Basic, dps: int, point: dict, methods: set):
    if isinstance(lhs, sp.MatrixBase) or isinstance(rhs, sp.MatrixBase):
        if getattr(lhs, "shape", None) != getattr(rhs, "shape", None):
            return mpmath.inf, "shapes differ"
        return max(
            (_discrepancy(a, b, dps, point, methods) for a, b in zip(lhs, rhs, strict=True)),
            key=lambda item: item[0],
        )
    with mpmath.workdps(dps):
        (a, ea), (b, eb) = evaluate(lhs, dps, point, methods), evaluate(rhs, dps, point, methods)
        if not all(mpmath.isfinite(v) for v in (a, b, ea, eb)):
            return mpmath.inf, "non-finite value"
        if lhs == 0 or rhs == 0:  # an exact 0: judged by an absolute bound
            other, error = (b, eb) if lhs == 0 else (a, ea)
            scale = max(mpmath.mpf(1), _magnitude(rhs if lhs == 0 else lhs, dps, point))
            return (abs(other) + error) / scale, ""
        scale = max(abs(a), abs(b))
        if scale == 0:
            return (ea + eb) and mpmath.inf, ""
        return (abs(a - b) + ea + eb) / scale, ""


def _peak_points(expr: sp.Basic, atoms: list, point: dict) -> list[dict]:
    """Extra points at the centre of every Gaussian factor ``exp(-a (v - c)^2 + ...)``.

    A narrow peak (``x`` vs ``x + exp(-10^4 (x - 37.1)^2)``) is invisible at
    random points; at its centre, with the other symbols as in ``point``, it is not.
    Centres that break ``v``'s assumptions (or are not exact rationals) are skipped.
    """
    found = []
    # the exponentials once, not the whole expression once per symbol: only they are read;
    # one whose argument holds a bound variable (an integrand's) never gives a centre
    bound = {lim[0] for binder in expr.atoms(sp.Integral, sp.Sum, sp.Product)
             for lim in binder.limits}  # fmt: skip
    exponentials = [
        e for e in expr.atoms(sp.exp) if e.args[0].free_symbols and not e.args[0].has(*bound)
    ]
    for atom in atoms:
        others = {b: v for b, v in point.items() if b != atom}
        try:
            powers = set().union(
                *(e.xreplace(others).atoms(sp.exp) for e in exponentials if e.has(atom))
            )
        except (ValueError, TypeError):  # e.g. a Derivative with respect to another symbol
            continue
        for power in powers:
            argument = power.args[0]
            if not argument.has(atom) or argument.free_symbols - {atom}:
                continue
            try:
                poly = sp.Poly(sp.expand(argument), atom)
            except (sp.PolificationFailed, sp.PolynomialError):
                continue
            if poly.degree() != 2:
                continue
            c2, c1, _ = poly.all_coeffs()
            if c2.is_negative and satisfies(owner_of(atom), -c1 / (2 * c2)):
                found.append({**point, atom: -c1 / (2 * c2)})
    return list({tuple(sorted(p.items(), key=sp.default_sort_key)): p for p in found}.values())


def _threshold_points(expr: sp.Basic, atoms: list, point: dict) -> list[dict]:
    """Extra points at and on both sides of every branch boundary, one symbol moved at a time.

    ``Piecewise((1, x > 10**5), (0, True)) = 0`` holds at every ordinary point;
    at ``x = 10**5 (1 + 10^-6)`` it does not.
    """
    if not boundaries(expr, point):  # one traversal; most claims have no threshold at all
        return []
    return [{**point, atom: value} for atom in atoms
            for value in threshold_values(expr, atom, point)]


#: the magnitudes (decades either side of 1) of the ordinary points, in turn: the first
#: stays moderate (peaks and thresholds are found from it), others reach 1e-30 .. 1e30
_DECADES = (2, 30, 2, 12, 30)


def _decades(expr: sp.Basic, index: int) -> int:
    """Decades for point ``index``: 2 for claims with a series, a non-line integral, a
    derivative or a power with a symbolic exponent.

    A series summed at r = 1e30, where its ratio is 1 - 2e-30, does not converge in
    any time, and nested mpmath quadrature over a plane (or a finite range) at
    parameters 1e30 apart ran for minutes: those claims are checked at moderate
    magnitudes only, as before.  Pointwise claims and integrals over the line
    (enclosed in ball arithmetic, see :mod:`symkl.proof.numerics`) get all of them.
    """
    infinite = any(
        lim[2] is sp.oo or lim[1] is -sp.oo
        for total in expr.atoms(sp.Sum, sp.Product)
        for lim in total.limits
    )
    other_integrals = any(
        len(integral.limits) != 1 or tuple(integral.limits[0][1:]) != (-sp.oo, sp.oo)
        for integral in expr.atoms(sp.Integral)
    )
    # an exact power with a sampled exponent (2**e, x**y) at 1e12-scale rationals is
    # evaluated exactly by SymPy before any number is compared: it never finishes
    symbolic_power = any(power.exp.free_symbols for power in expr.atoms(sp.Pow))
    # numeric differentiation (mpmath.diff) at scales 1e30 apart loses the digits
    # the verdict needs: derivatives are checked at moderate magnitudes, as before
    derivative = bool(expr.atoms(sp.Derivative))
    if infinite or other_integrals or symbolic_power or derivative:
        return 2
    return _DECADES[index % len(_DECADES)]


def _numeric(claim: Claim, settings: Settings) -> NumericResult:
    rng = random.Random(settings.seed)
    worst, worst_point, notes, count = mpmath.mpf(0), {}, [], 0
    methods: set[str] = set()
    instances = list(claim.instances) or [()]
    sizes = sorted(
        {
            int(v)
            for inst in claim.instances
            for k, v in inst
            if isinstance(k, sp.Symbol) and k.is_integer and v.is_Integer
        }
    )
    for setting in instances:
        lhs0 = admit(instantiate(claim.lhs, setting)) if setting else claim.lhs
        rhs0 = admit(instantiate(claim.rhs, setting)) if setting else claim.rhs
        peaks: list[dict] = []  # points at Gaussian centres, found from the first point
        for index in itertools.count():
            if index >= settings.points and not peaks:
                break
            point: dict[sp.Basic, sp.Basic] = peaks.pop() if index >= settings.points else {}
            try:
                sizes_free = sorted(
                    (s for s in lhs0.free_symbols | rhs0.free_symbols if s.is_integer),
                    key=sp.default_sort_key,
                )
                decades = _decades(sp.Tuple(lhs0, rhs0), index)
                for s in sizes_free:
                    if s not in point:
                        point[s] = sample_value(s, rng)
                lhs1 = admit(instantiate(lhs0, point)) if sizes_free else lhs0
                rhs1 = admit(instantiate(rhs0, point)) if sizes_free else rhs0
                atoms = sampled_atoms(sp.Tuple(lhs1, rhs1))
                for atom in atoms:
                    owner = owner_of(atom)
                    if owner.is_real is None:
                        notes.append(f"{owner} has no real/positive assumption: sampled as real")
                    if atom not in point:
                        point[atom] = sample_value(owner, rng, decades=decades)
                if index == 0:
                    both = sp.Tuple(lhs1, rhs1)
                    peaks = _peak_points(both, atoms, point) + _threshold_points(
                        both, atoms, point
                    )
                discrepancy, note = _discrepancy(lhs1, rhs1, settings.dps, point, methods)
                if note:
                    notes.append(note)
            except (
                SamplingError,
                EvaluationError,
                ValueError,
                TypeError,
                ZeroDivisionError,
                ArithmeticError,
            ) as error:
                discrepancy = mpmath.inf
                notes.append(f"evaluation failed: {type(error).__name__}: {str(error)[:150]}")
            count += 1
            if discrepancy >= worst:
                worst = discrepancy
                worst_point = {str(k): str(v) for k, v in (*setting, *point.items())}
    if worst == 0:
        digits = float(settings.dps)
    elif not mpmath.isfinite(worst):
        digits = 0.0
    else:
        digits = min(float(settings.dps), max(0.0, -float(mpmath.log10(worst))))
    return NumericResult(
        ok=digits >= settings.min_digits,
        points=count,
        dps=settings.dps,
        min_digits=settings.min_digits,
        digits=digits,
        worst_discrepancy=float(worst) if mpmath.isfinite(worst) else math.inf,
        worst_point=worst_point,
        detail="; ".join(dict.fromkeys(notes)),
        sizes=tuple(sizes),
        integration="+".join(sorted(methods)),
    )


# --------------------------------------------------------------------------- the verdict


def _refused(label: str, rule: str, why: str, settings: Settings) -> StepCheck:
    symbolic = SymbolicResult(False, "refused", why)
    numeric = NumericResult(False, 0, settings.dps, settings.min_digits, 0.0, math.inf, {}, why)
    return StepCheck(label, rule, symbolic, numeric, 0.0)


_VERDICTS: dict[tuple, StepCheck] = {}


def check(claim: Claim, settings: Settings | None = None) -> StepCheck:
    """The verdict on ``claim``: both sides, the scope proved, cached by content."""
    settings = settings or Settings()
    if not isinstance(claim, Claim):
        raise TypeError(f"check needs a Claim, got {type(claim).__name__}")
    key = (claim, settings)
    if key in _VERDICTS:
        return _VERDICTS[key]
    started = time.perf_counter()
    prover = claim.prover if claim.prover is not None else Generic()
    try:
        symbolic = run_prover(prover, claim.lhs, claim.rhs)
    except Exception as error:  # a crashing prover proves nothing
        symbolic = SymbolicResult(False, "error", f"{type(error).__name__}: {str(error)[:200]}")
    if symbolic.ok and claim.sizes is None and symbolic.sizes is not None:
        symbolic = SymbolicResult(
            False,
            symbolic.method,
            f"claimed for every k, proved only at k = {format_sizes(symbolic.sizes)}",
            symbolic.sizes,
        )
    if (
        symbolic.ok
        and claim.sizes is not None
        and (symbolic.sizes is not None and not set(claim.sizes) <= set(symbolic.sizes))
    ):
        symbolic = SymbolicResult(
            False,
            symbolic.method,
            f"claimed at k = "
            f"{format_sizes(claim.sizes)}, proved at k = "
            f"{format_sizes(symbolic.sizes)}",
            symbolic.sizes,
        )
    numeric = _numeric(claim, settings)
    verdict = StepCheck(
        claim.label, claim.reason, symbolic, numeric, time.perf_counter() - started, claim
    )
    if len(_VERDICTS) > 20000:
        _VERDICTS.clear()
    _VERDICTS[key] = verdict
    return verdict


def _definitions(expr: sp.Basic, definitions: Mapping | None) -> sp.Basic:
    if not definitions:
        return expr
    table = {}
    for key, value in definitions.items():
        admit(key, "definition key"), admit(value, f"definition of {key}")  # no text, no Float
        table[key] = value
    current = _sympify(expr, "expression")
    for _ in range(8):
        replaced = current.xreplace(table)
        if replaced == current:
            return current
        current = replaced
    raise ClaimError("definitions refer to each other in a cycle")


def check_step(
    before: sp.Basic,
    after: sp.Basic,
    *,
    definitions: Mapping | None = None,
    dps: int = 30,
    points: int = 5,
    seed: int = 0,
    min_digits: float = 25,
    label: str = "step",
    rule: str = "",
    prove: Prover | None = None,
    instances: Sequence[Mapping] = (),
    sizes: Sequence[int] | None = None,
    origin: str = "step",
) -> StepCheck:
    """Check that ``after`` equals ``before``, symbolically *and* numerically.

    Parameters
    ----------
    before, after : sympy.Basic
        The two sides (unevaluated integrals, sums, derivatives allowed).
        Strings raise ``TypeError``; binary Floats raise ``ValueError``.
    definitions : mapping, optional
        Placeholders and what they stand for, substituted first.
    dps, points, seed, min_digits
        Numeric settings, validated (``ValueError`` names the setting).
    label, rule : str
        Carried into the verdict.
    prove : Prover, optional
        A kernel prover (:mod:`symkl.proof.provers`); default :class:`Generic`.
    instances : sequence of mapping
        Concrete substitutions (sizes) for the numeric side.
    sizes : sequence of int, optional
        The dimensions the claim is about (None: every value).

    Returns
    -------
    StepCheck
        ``.ok`` only when both sides pass; ``.scope`` says what was proved.  An
        ill-formed claim (a bound variable whose assumptions its range does not
        imply, limits that depend on their own variable) is refused, not raised.

    Examples
    --------
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
    settings = Settings(dps, points, seed, min_digits)
    if prove is not None and not isinstance(prove, Prover):
        raise TypeError(
            f"prove must be a symkl.proof Prover, got {type(prove).__name__}: "
            "only the kernel's provers can make a claim pass"
        )
    try:
        lhs = _definitions(_sympify(before, f"claim {label!r} lhs"), definitions)
        rhs = _definitions(_sympify(after, f"claim {label!r} rhs"), definitions)
        claim = Claim(
            label,
            lhs,
            rhs,
            rule,
            origin,
            (),
            None if sizes is None else tuple(sizes),
            prove,
            tuple(instances),
        )
    except FloatError:
        raise
    except ClaimError as error:
        return _refused(label, rule, str(error), settings)
    return check(claim, settings)


def chain(report: VerificationReport, name: str, upto: str | None = None) -> Theorem | None:
    """``first lhs = last rhs`` from consecutive proved steps, or None when a link fails.

    With ``upto`` the chain stops at the step of that label.
    """
    steps = [c for c in report.checks if c.claim is not None and c.claim.origin == "step"]
    if upto is not None:
        labels = [c.label for c in steps]
        if upto not in labels:
            return None
        steps = steps[: labels.index(upto) + 1]
    if not steps or not all(c.ok for c in steps):
        return None
    for first, second in itertools.pairwise(steps):
        if first.claim.rhs != second.claim.lhs:
            return None
    finite = [set(c.symbolic.sizes) for c in steps if c.symbolic.sizes is not None]
    sizes = tuple(sorted(set.intersection(*finite))) if finite else None
    lemmas = tuple(dict.fromkeys(n for c in steps for n in c.lemmas))
    theorem = Theorem(steps[0].claim.lhs, steps[-1].claim.rhs, sizes, name, _TOKEN, lemmas)
    _GENUINE.add(_content(theorem))
    return theorem


def _content(theorem: Theorem) -> tuple:
    return (theorem.lhs, theorem.rhs, theorem.sizes, theorem.name, theorem.lemmas)


def is_genuine(theorem: object) -> bool:
    """True for a Theorem made by :func:`chain`, with the content chain gave it."""
    return (
        isinstance(theorem, Theorem)
        and theorem._token is _TOKEN
        and _content(theorem) in _GENUINE
    )
