"""Lemmas: the trusted base, stated once, applied only where their side conditions hold.

A few facts hold for every dimension ``k`` but are beyond SymPy for a
symbolic ``k`` (they are proved by induction on ``k``): the integral of a
``k``-term sum is the sum of the integrals, a product density marginalises.
Each is a :class:`Lemma` of this module: a name (``"L1"``), a schematic
statement ``lhs = rhs`` in a symbolic ``k`` with schematic symbols and
functions, and side conditions, given as text *and* as predicates the kernel
checks on every instance.  :data:`LEMMAS` is the whole base; nothing else is
assumed, and a lemma made anywhere else is refused (as
:class:`~symkl.proof.provers.InstanceOf` refuses a forged Theorem).

Two provers apply them:

* :class:`ByLemma` — the claim is *exactly* the lemma's instance under a
  substitution (modulo renaming of bound variables), and every side condition
  holds on that instance;
* :class:`ByLemmas` — each listed lemma instance is rewritten (its left side
  replaced by its right side wherever it occurs, side conditions checked),
  then another kernel prover (default :class:`~symkl.proof.provers.Generic`)
  proves what is left.

Both report the lemmas used (``SymbolicResult.lemmas``), and a verdict built
on them reads "for all k from lemmas L1, L2".  :func:`lemma_evidence` proves
each lemma symbolically at ``k = 1..6`` and checks it numerically at
``k = 2..6`` on a representative instance, as evidence (not as proof).

Adding a lemma: write a builder function below returning ``_lemma(...)`` and
add it to ``_BUILDERS``; side conditions are predicates over the validated
substitution (see :class:`Images`).

Examples
--------
>>> import sympy as sp
>>> from symkl.proof.lemmas import LEMMAS
>>> sorted(LEMMAS)
['L1', 'L2', 'M1', 'M2', 'M3', 'M4', 'M5']
>>> print(LEMMAS["L2"].title)
marginalisation of a product density
"""

from __future__ import annotations

import functools
import hashlib
import operator
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import sympy as sp
from sympy.core.function import AppliedUndef, UndefinedFunction

from symkl.proof.claims import Claim, admit, format_sizes, instantiate
from symkl.proof.predicates import (
    DependsOnlyOn,
    FreeOf,
    IsLowerTriangular,
    IsPositiveDefinite,
    Where,
    plain_text,
)
from symkl.proof.provers import (
    AtSizes,
    Generic,
    Prover,
    SymbolicResult,
    dominated,
    run_prover,
)

__all__ = [
    "EVIDENCE_NUMERIC_AT",
    "EVIDENCE_PROVED_AT",
    "LEMMAS",
    "ByLemma",
    "ByLemmas",
    "Images",
    "Lemma",
    "SideCondition",
    "VectorIntegral",
    "evidence_refusal",
    "lemma_evidence",
    "lemma_record",
]  # fmt: skip

#: sizes at which each lemma is proved symbolically, and checked numerically, as evidence
EVIDENCE_PROVED_AT = (1, 2, 3, 4, 5, 6)
#: (the k-fold integrals by Gauss-Hermite rules exact for the integrand's degree, so k = 6
#: costs a few dozen nodes, not n^6)
EVIDENCE_NUMERIC_AT = (2, 3, 4, 5, 6)
#: sizes at which the evidence is checked numerically a second time with every entry of the
#: matrices symbolic (sampled at each point): at k = 6 the symbolic inverse in the Gaussian's
#: exponent has 3 * 10^4 operations and took minutes per lemma, so larger sizes use random
#: exact Cholesky factors only
EVIDENCE_SYMBOLIC_ENTRIES_AT = (2, 3)


class VectorIntegral(sp.Expr):
    r"""``\int_{R^k} f(x) dx`` over ``x = (x[1], ..., x[k])`` for a symbolic dimension ``k``.

    SymPy's ``Integral`` needs its variables spelled out; this keeps ``k``
    symbolic (the lemmas are stated with it) and turns into an ordinary
    ``k``-fold ``Integral`` over real symbols ``x_1 .. x_k`` when ``k`` is a
    number (``doit``).  ``base`` (an ``IndexedBase``) is bound.

    Examples
    --------
    >>> k, j = sp.Symbol("k", integer=True, positive=True), sp.Symbol("j", integer=True)
    >>> x = sp.IndexedBase("x", real=True)
    >>> f = sp.Product(sp.exp(-x[j]**2), (j, 1, k))
    >>> VectorIntegral(f, x, k).xreplace({k: 2}).doit(integrals=False).limits
    ((x_1, -oo, oo), (x_2, -oo, oo))
    """

    is_commutative = True

    def __new__(cls, function: sp.Expr, base: sp.IndexedBase, k: sp.Expr) -> VectorIntegral:
        return sp.Expr.__new__(cls, sp.sympify(function), base, sp.sympify(k))

    @property
    def function(self) -> sp.Expr:
        return self.args[0]

    @property
    def base(self) -> sp.IndexedBase:
        return self.args[1]

    @property
    def dimension(self) -> sp.Expr:
        return self.args[2]

    @property
    def free_symbols(self) -> set[sp.Basic]:
        inner = {
            s
            for s in self.function.free_symbols
            if s != self.base.label and not (isinstance(s, sp.Indexed) and s.base == self.base)
        }
        return inner | self.dimension.free_symbols

    def doit(self, **hints) -> sp.Expr:
        k = self.dimension
        if not k.is_Integer:
            return self
        function = self.function.doit(**{**hints, "integrals": False})
        # an enclosing Sum may not have substituted its index yet: wait for it
        pending = [
            a
            for a in function.atoms(sp.Indexed)
            if a.base == self.base and not all(n.is_Integer for n in a.indices)
        ]
        if pending:
            return self
        coordinates = [sp.Symbol(f"x_{j}", real=True) for j in range(1, int(k) + 1)]
        function = function.xreplace({self.base[j]: c for j, c in enumerate(coordinates, 1)})
        integral = sp.Integral(function, *[(c, -sp.oo, sp.oo) for c in coordinates])
        return integral.doit(**hints) if hints.get("integrals", True) else integral

    def _latex(self, printer) -> str:
        return (
            rf"\int_{{\mathbb{{R}}^{{{printer._print(self.dimension)}}}}} "
            rf"{printer._print(self.function)}\, d\mathbf{{x}}"
        )

    def _sympystr(self, printer) -> str:
        return (
            f"VectorIntegral({printer._print(self.function)}, R^{printer._print(self.dimension)})"
        )


# --------------------------------------------------------------------------- substitutions

#: the facts a schematic symbol's image must have when the schematic symbol has them
_FACTS = ("real", "positive", "negative", "nonnegative", "nonpositive", "nonzero", "integer")


@dataclass(frozen=True)
class Images:
    """A validated substitution for a lemma's schematic names.

    ``symbols`` maps schematic symbols (and matrix symbols) to their images;
    ``bases`` maps bound vector bases to ``IndexedBase`` images; ``functions``
    maps each schematic function to ``(variables, body)``: the body with the
    Lambda's variables renamed to the kernel's own dummies (an index ``>= 1``
    and a real coordinate), so side conditions are checked under assumptions
    the kernel chose, not the caller's.
    """

    symbols: Mapping
    bases: Mapping
    functions: Mapping

    def body(self, function: UndefinedFunction) -> sp.Expr:
        """The body of ``function``'s image, in the kernel's variables."""
        return self.functions[function][1]

    def variables(self, function: UndefinedFunction) -> tuple[sp.Dummy, ...]:
        """The kernel's variables of ``function``'s image."""
        return self.functions[function][0]

    def apply(self, function: UndefinedFunction, *arguments: sp.Basic) -> sp.Expr:
        """``function``'s image at ``arguments``."""
        variables, body = self.functions[function]
        return body.xreplace(dict(zip(variables, arguments, strict=True)))


def _function_variables(arity: int) -> tuple[sp.Dummy, ...]:
    """Kernel dummies for a schematic function: an index (integer >= 1), then reals."""
    index = sp.Dummy("j", integer=True, positive=True)
    return (index, *[sp.Dummy(f"t{a}", real=True) for a in range(arity - 1)])


@dataclass(frozen=True)
class SideCondition:
    r"""A side condition: its ``text``, its ``formulas``, and ``holds(images) -> (ok, why)``.

    ``formulas`` are what is rendered: SymPy relations (``p_j(t) \ge 0``,
    ``\int p_j = 1``) or the printable predicates of :mod:`symkl.proof.predicates`
    (``S \succ 0``, "``f_i`` depends only on ``x_i``"), in the lemma's schematic
    names; ``note`` is a short gloss in words.  ``holds`` alone decides: it never
    reads the formulas, and the formulas never decide anything.
    """

    text: str
    holds: Callable[[Images], tuple[bool, str]] = field(compare=False)
    formulas: tuple[sp.Basic, ...] = ()
    note: str = ""

    def latex(self, printer: Callable[[sp.Basic], str] = sp.latex) -> tuple[str, ...]:
        """Each formula in LaTeX (schematic functions written ``p_{j}(t)``) by ``printer``."""
        # an integral over the line reads as the paper writes it, also inline
        return tuple(_display_latex(formula, printer).replace(r"\int\limits_{-\infty}^{\infty}",
                                                     r"\int_{\mathbb{R}}")
                     for formula in self.formulas)

    def plain(self) -> tuple[str, ...]:
        """Each formula as text (``p_j(t) >= 0``)."""
        return tuple(_display_text(formula) for formula in self.formulas)


@dataclass(frozen=True)
class Lemma:
    """A named schematic equality ``lhs = rhs`` for every ``k``, with checked side conditions.

    Attributes
    ----------
    name, title : str
        ``"L1"`` and a short human name.
    lhs, rhs : sympy.Basic
        The statement, in the size symbol ``k`` and the ``schematic`` names.
    k : sympy.Symbol
        The size (a positive integer symbol).
    schematic : tuple
        What a substitution may replace: symbols (images must have their
        assumptions), ``IndexedBase`` bound vectors, undefined functions (images
        are ``sympy.Lambda`` of the same arity; the first variable is an index
        ``>= 1``, the others real), matrix symbols (images of the same shape).
    conditions : tuple of SideCondition
        Checked on every instance by the kernel.
    example : callable
        ``example() -> substitution``: a representative instance (generic
        parameters, ``k`` kept symbolic) used as evidence by :func:`lemma_evidence`.
    setting : callable or None
        ``setting(n)``: the concrete substitution at size ``n`` for the example
        (default ``{k: n}``; matrix lemmas give explicit matrices here).
    """

    name: str
    title: str
    lhs: sp.Basic
    rhs: sp.Basic
    k: sp.Symbol
    schematic: tuple
    conditions: tuple[SideCondition, ...]
    example: Callable[[], Mapping] = field(compare=False)
    setting: Callable[[int], Mapping] | None = field(default=None, compare=False)
    #: ``inner(setting) -> Prover`` for the evidence at each size (default Generic)
    inner: Callable[[Mapping], Prover] | None = field(default=None, compare=False)
    _token: object = field(default=None, compare=False, repr=False)

    @property
    def statement(self) -> sp.Eq:
        """``lhs = rhs`` as an unevaluated SymPy equation."""
        return sp.Eq(self.lhs, self.rhs, evaluate=False)

    def latex(self, printer: Callable[[sp.Basic], str] = sp.latex) -> str:
        r"""The statement in LaTeX by ``printer``, schematic functions written ``p_{j}(x_{j})``.

        A schema (a column of equations, as M5) is shown one equation per row,
        two to a line, aligned at ``=``.
        """
        if not getattr(self.lhs, "is_Matrix", False):
            return f"{_display_latex(self.lhs, printer)} = {_display_latex(self.rhs, printer)}"
        rows = [f"{_display_latex(a, printer)} &= {_display_latex(b, printer)}"
                for a, b in zip(self.lhs, self.rhs, strict=True)]
        lines = [" & \\qquad ".join(rows[n:n + 2]) for n in range(0, len(rows), 2)]
        return "\\begin{aligned}" + " \\\\ ".join(lines) + "\\end{aligned}"

    def condition_texts(self) -> tuple[str, ...]:
        """The side conditions as text (Markdown with ``$...$`` math)."""
        return tuple(c.text for c in self.conditions)

    def condition_formulas(self, printer: Callable[[sp.Basic], str] = sp.latex,
                           ) -> tuple[tuple[tuple[str, ...], str], ...]:
        r"""Each side condition as ``(its formulas in LaTeX, its note)``.

        >>> formulas, note = LEMMAS["L1"].condition_formulas()[0]
        >>> print(formulas[0])
        p_{j}{\left(t \right)} \geq 0
        """
        return tuple((c.latex(printer), c.note) for c in self.conditions)

    def instance(self, substitution: Mapping) -> tuple[sp.Basic, sp.Basic]:
        """The admitted sides of the instance under ``substitution`` (validated first).

        Raises ``ValueError`` naming the schematic name whose image is unfit.
        """
        images = _validate(self, substitution)
        return _instance(self, images)

    def at_size(self, n: int) -> tuple[sp.Basic, sp.Basic]:
        """The example instance at size ``n``: concrete sides (sums written out).

        >>> lhs, rhs = LEMMAS["L2"].at_size(2)
        >>> len(lhs.atoms(sp.Integral)), len(rhs.atoms(sp.Integral))
        (2, 2)
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"at_size: n must be a positive int, got {n!r}")
        lhs, rhs = self.instance(self.example())
        setting = self.setting(n) if self.setting else {self.k: sp.Integer(n)}
        return admit(instantiate(lhs, setting)), admit(instantiate(rhs, setting))


def _subscripted(expr: sp.Basic, index_text: Callable[[sp.Basic], str]) -> sp.Basic:
    """Schematic ``p(j, t)`` written ``p_j(t)`` (the index as a subscript)."""
    def subscripted(applied: AppliedUndef) -> sp.Expr:
        index, *rest = applied.args
        name = f"{applied.func.__name__}_{index_text(index)}"
        return sp.Function(name)(*rest) if rest else sp.Symbol(name)

    return expr.replace(lambda e: isinstance(e, AppliedUndef) and len(e.args) >= 2, subscripted)


def _schematic_matrices(expr: sp.Basic) -> sp.Basic:
    """``diag(d1(1), ..., d1(k))`` shown as ``D_1``, a column ``(u(i))_i`` as ``u``, ``d1(i)``
    as ``d_{1,i}``: how a schema of diagonal matrices is written on paper."""
    from symkl.proof.matrices import Column, Diagonal

    def letters_digits(function: UndefinedFunction) -> tuple[str, str]:
        name = function.__name__
        stem = name.rstrip("0123456789")
        return stem, name[len(stem):]

    def shown_matrix(matrix: sp.Basic) -> sp.Basic:
        body, variable = matrix.args[0].expr, matrix.args[0].variables[0]
        if not (isinstance(body, AppliedUndef) and body.func in (*M5_ENTRIES, *M5_COLUMNS)
                and body.args == (variable,)):
            return matrix
        stem, digits = letters_digits(body.func)
        name = (stem.upper() if type(matrix) is Diagonal else stem) + (
            f"_{{{digits}}}" if digits else "")
        return sp.MatrixSymbol(name, *matrix.shape)

    def shown_entry(applied: AppliedUndef) -> sp.Basic:
        stem, digits = letters_digits(applied.func)
        index = sp.latex(applied.args[0])
        return sp.Symbol(f"{stem}_{{{digits},{index}}}" if digits else f"{stem}_{{{index}}}")

    expr = expr.replace(lambda e: type(e) in (Diagonal, Column), shown_matrix)
    # u^T D v is a 1 x 1 matrix, stated as its trace: shown as the scalar it is
    expr = expr.replace(lambda e: isinstance(e, sp.Trace) and e.arg.shape == (1, 1),
                        lambda e: e.arg)
    entries = (*M5_ENTRIES, *M5_COLUMNS)
    return expr.replace(lambda e: isinstance(e, AppliedUndef) and e.func in entries, shown_entry)


def _display_latex(expr: sp.Basic, printer: Callable[[sp.Basic], str] = sp.latex) -> str:
    shown = _schematic_matrices(expr)
    return printer(_subscripted(shown, lambda index: f"{{{sp.latex(index)}}}"))


def _display_text(expr: sp.Basic) -> str:
    return plain_text(_subscripted(expr, sp.sstr))


def _bound_symbols(expr: sp.Basic) -> set[sp.Basic]:
    found = set()
    for binder in expr.atoms(sp.Integral, sp.Sum, sp.Product, sp.Lambda):
        if isinstance(binder, sp.Lambda):
            found |= set(binder.variables)
        else:
            found |= {lim[0] for lim in binder.limits}
    return found


def _validate(lemma: Lemma, substitution: Mapping) -> Images:
    """Check every image's kind, shape and assumptions; rename Lambda variables."""
    if not isinstance(substitution, Mapping):
        raise TypeError(f"lemma {lemma.name}: substitution must be a mapping, got "
                        f"{type(substitution).__name__}")
    unknown = [key for key in substitution if key not in lemma.schematic]
    if unknown:
        raise ValueError(f"lemma {lemma.name}: {unknown[0]} is not one of its schematic "
                         f"names {list(lemma.schematic)}")
    symbols, bases, functions = {}, {}, {}
    forbidden = _bound_symbols(sp.Tuple(lemma.lhs, lemma.rhs))
    schematic_functions = {s for s in lemma.schematic if isinstance(s, UndefinedFunction)}
    for key in lemma.schematic:
        if key not in substitution:
            if isinstance(key, sp.IndexedBase):
                bases[key] = key
                continue
            if isinstance(key, (sp.Symbol, sp.MatrixSymbol)):
                symbols[key] = key
                continue
            raise ValueError(f"lemma {lemma.name}: no image given for the function {key}")
        value = substitution[key]
        if isinstance(value, str):
            raise TypeError(f"lemma {lemma.name}: the image of {key} is a string; text is "
                            "never evaluated")
        value = admit(value, f"lemma {lemma.name}: image of {key}")
        if value.has(*schematic_functions) if schematic_functions else False:
            raise ValueError(f"lemma {lemma.name}: the image of {key} uses a schematic "
                             "function of the lemma")
        if value.free_symbols & forbidden:
            raise ValueError(f"lemma {lemma.name}: the image of {key} uses a variable the "
                             "lemma binds")
        if isinstance(key, UndefinedFunction):
            if not isinstance(value, sp.Lambda):
                raise ValueError(f"lemma {lemma.name}: the image of the function {key} must "
                                 f"be a sympy.Lambda, got {type(value).__name__}")
            arity = len(value.variables)
            expected = next(iter(key.nargs)) if key.nargs else arity
            if arity != expected:
                raise ValueError(f"lemma {lemma.name}: {key} takes {expected} arguments, "
                                 f"its image takes {arity}")
            variables = _function_variables(arity)
            body = value.expr.xreplace(dict(zip(value.variables, variables, strict=True)))
            functions[key] = (variables, body)
        elif isinstance(key, sp.IndexedBase):
            if not isinstance(value, sp.IndexedBase):
                raise ValueError(f"lemma {lemma.name}: the bound vector {key} must map to an "
                                 f"IndexedBase, got {value}")
            bases[key] = value
        elif isinstance(key, sp.MatrixSymbol):
            if not getattr(value, "is_Matrix", False):
                raise ValueError(f"lemma {lemma.name}: {key} must map to a matrix, got {value}")
            symbols[key] = value
        else:
            for fact in _FACTS:
                if getattr(key, f"is_{fact}") and not getattr(value, f"is_{fact}"):
                    raise ValueError(f"lemma {lemma.name}: {key} is {fact} but its image "
                                     f"{value} is not known to be")
            symbols[key] = value
    for key, value in symbols.items():  # matrix shapes follow the scalar images
        if isinstance(key, sp.MatrixSymbol):
            shape = tuple(sp.sympify(d).xreplace({s: v for s, v in symbols.items()
                                                  if isinstance(s, sp.Symbol)})
                          for d in key.shape)
            if tuple(value.shape) != shape:
                raise ValueError(f"lemma {lemma.name}: {key} has shape {shape}, its image "
                                 f"{value} has shape {value.shape}")
    # a bound vector's image may occur nowhere else: the coordinates are the lemma's own
    for base in bases.values():
        for key, (_, body) in functions.items():
            if body.has(base) or body.has(base.label):
                raise ValueError(f"lemma {lemma.name}: the image of {key} depends on the "
                                 f"integration variable {base}")
        for key, value in symbols.items():
            if value.has(base) or value.has(base.label):
                raise ValueError(f"lemma {lemma.name}: the image of {key} depends on the "
                                 f"integration variable {base}")
    return Images(types.MappingProxyType(symbols), types.MappingProxyType(bases),
                  types.MappingProxyType(functions))


def _instance(lemma: Lemma, images: Images, row: int | None = None) -> tuple[sp.Basic, sp.Basic]:
    """Skeleton symbols first (so images are not rewritten), then function applications.

    ``row``: of a schema (a column of equations, as M5), only that equation's instance.
    """
    table = {**images.symbols, **images.bases}
    table.update({key.label: value.label for key, value in images.bases.items()})
    sides = []
    statement = (lemma.lhs, lemma.rhs) if row is None else (lemma.lhs[row], lemma.rhs[row])
    for side in statement:
        current = side.xreplace(table)
        current = current.replace(
            lambda e: isinstance(e, AppliedUndef) and e.func in images.functions,
            lambda e: images.apply(e.func, *e.args),
        )
        sides.append(admit(current, f"lemma {lemma.name} instance"))
    return sides[0], sides[1]


# --------------------------------------------------------------------------- side conditions


def _all_hold(*conditions: tuple[bool, str]) -> tuple[bool, str]:
    for ok, why in conditions:
        if not ok:
            return False, why
    return True, ""


def _normalised_density(p: UndefinedFunction) -> Callable[[Images], tuple[bool, str]]:
    """``p_j >= 0`` and ``int_R p_j = 1`` for every index ``j >= 1``, proved symbolically."""

    def holds(images: Images) -> tuple[bool, str]:
        (_, t), body = images.variables(p), images.body(p)
        if body.is_nonnegative is not True:
            return False, f"{p}_j = {str(body)[:80]} is not shown non-negative"
        result = run_prover(Generic(), admit(sp.Integral(body, (t, -sp.oo, sp.oo))), sp.S.One)
        if not result.ok:
            return False, f"int p_j != 1 not shown: {result.detail[:100]}"
        return True, ""

    return holds


def _integrable_against(p: UndefinedFunction, f: UndefinedFunction):
    """``p_i f_i`` absolutely integrable on the line for every ``i >= 1`` (dominated)."""

    def holds(images: Images) -> tuple[bool, str]:
        (i, t) = images.variables(f)
        product = images.apply(p, i, t) * images.body(f)
        ok, why = dominated(product, [(t, -sp.oo, sp.oo)])
        return ok, "" if ok else f"p_i f_i not shown integrable: {why}"

    return holds


def _one_coordinate(*functions: UndefinedFunction):
    """Each image depends on its own coordinate only (ensured by the substitution's shape).

    Re-checked here: an image's body has no free symbol that is bound in the
    lemma or indexed by the integration vector (validated), and its only
    coordinate is its own Lambda variable.
    """

    def holds(images: Images) -> tuple[bool, str]:
        for function in functions:
            body = images.body(function)
            for base in images.bases.values():
                if body.has(base.label):
                    return False, f"the image of {function} depends on {base}"
            extra = [a for a in body.atoms(sp.Indexed) if a.base in images.bases.values()]
            if extra:
                return False, f"the image of {function} depends on the coordinate {extra[0]}"
        return True, ""

    return holds


# --------------------------------------------------------------------------- the base


_TOKEN = object()
_CONTENT: set[str] = set()


def _content(lemma: Lemma) -> str:
    text = "|".join(
        (lemma.name, lemma.title, sp.srepr(lemma.lhs), sp.srepr(lemma.rhs), sp.srepr(lemma.k),
         repr(lemma.schematic), *lemma.condition_texts(),
         *[sp.srepr(f) for c in lemma.conditions for f in c.formulas],
         *[c.note for c in lemma.conditions])
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _lemma(**fields) -> Lemma:
    lemma = Lemma(**fields, _token=_TOKEN)
    _CONTENT.add(_content(lemma))
    return lemma


def is_genuine_lemma(lemma: object) -> bool:
    """True for a lemma of :data:`LEMMAS`, unchanged since it was defined here."""
    return (
        isinstance(lemma, Lemma)
        and lemma._token is _TOKEN
        and lemma.name in LEMMAS
        and LEMMAS[lemma.name] is lemma
        and _content(lemma) in _CONTENT
    )


_k = sp.Symbol("k", integer=True, positive=True)
_X = sp.IndexedBase("x", real=True)
_p, _f = sp.Function("p", nargs=2), sp.Function("f", nargs=2)


def _product_density_example() -> dict:
    """Gaussian coordinate densities and log-Gaussian one-coordinate functions, all generic.

    ``f_j = log(c_j exp(-(t - a_j)^2 / (2 b_j^2)))``: a general quadratic in ``t`` written as
    the log-ratios of a KL integrand are.
    """
    m, s = sp.IndexedBase("m", real=True), sp.IndexedBase("s", positive=True)
    a, b, c = sp.IndexedBase("a", real=True), *(sp.IndexedBase(n, positive=True) for n in "bc")
    j, t = sp.Symbol("j", integer=True, positive=True), sp.Symbol("t", real=True)
    density = sp.exp(-((t - m[j]) ** 2) / (2 * s[j] ** 2)) / (sp.sqrt(2 * sp.pi) * s[j])
    return {
        _p: sp.Lambda((j, t), density),
        _f: sp.Lambda((j, t), sp.log(c[j] * sp.exp(-((t - a[j]) ** 2) / (2 * b[j] ** 2)))),
    }


#: display-only variables of the side-condition formulas (never bound, never checked)
_SHOWN_I, _SHOWN_J = sp.Symbol("i"), sp.Symbol("j")
_SHOWN_T = sp.Symbol("t", real=True)


def _product_density_conditions(integrability_reason: str) -> tuple[SideCondition, ...]:
    """The side conditions L1 and L2 share: normalised one-coordinate densities, integrable."""
    i, j, t = _SHOWN_I, _SHOWN_J, _SHOWN_T
    line = (t, -sp.oo, sp.oo)
    return (
        SideCondition(r"every $p_j$ is a normalised density on $\mathbb{R}$ "
                      r"($p_j \ge 0$, $\int p_j = 1$)", _normalised_density(_p),
                      (sp.Ge(_p(j, t), 0, evaluate=False),
                       sp.Eq(sp.Integral(_p(j, t), line), 1, evaluate=False)),
                      r"every $p_j$ a density on $\mathbb{R}$"),
        SideCondition(r"each $f_i$ depends on the coordinate $x_i$ only, and $p_j$ on "
                      r"$x_j$ only", _one_coordinate(_p, _f),
                      (DependsOnlyOn(sp.Symbol(f"{_f.__name__}_{i}"), _X[i]),
                       DependsOnlyOn(sp.Symbol(f"{_p.__name__}_{j}"), _X[j]))),
        SideCondition(r"every $p_i f_i$ is absolutely integrable on $\mathbb{R}$ "
                      f"({integrability_reason})", _integrable_against(_p, _f),
                      (sp.Lt(sp.Integral(sp.Abs(_p(i, t) * _f(i, t)), line), sp.oo,
                             evaluate=False),),
                      integrability_reason),
    )


def _linearity_lemma() -> Lemma:
    j, i = sp.Dummy("j", integer=True, positive=True), sp.Dummy("i", integer=True, positive=True)
    weight = sp.Product(_p(j, _X[j]), (j, 1, _k))
    return _lemma(
        name="L1",
        title="linearity of the integral over a sum of k one-coordinate terms",
        lhs=VectorIntegral(weight * sp.Sum(_f(i, _X[i]), (i, 1, _k)), _X, _k),
        rhs=sp.Sum(VectorIntegral(weight * _f(i, _X[i]), _X, _k), (i, 1, _k)),
        k=_k,
        schematic=(_k, _X, _p, _f),
        conditions=_product_density_conditions("a dominating function"),
        example=_product_density_example,
    )


def _marginalisation_lemma() -> Lemma:
    j, i = sp.Dummy("j", integer=True, positive=True), sp.Dummy("i", integer=True, positive=True)
    t = sp.Dummy("t", real=True)
    weight = sp.Product(_p(j, _X[j]), (j, 1, _k))
    return _lemma(
        name="L2",
        title="marginalisation of a product density",
        lhs=sp.Sum(VectorIntegral(weight * _f(i, _X[i]), _X, _k), (i, 1, _k)),
        rhs=sp.Sum(sp.Integral(_p(i, t) * _f(i, t), (t, -sp.oo, sp.oo)), (i, 1, _k)),
        k=_k,
        schematic=(_k, _X, _p, _f),
        conditions=_product_density_conditions("Fubini-Tonelli"),
        example=_product_density_example,
    )


# --------------------------------------------------------------------------- matrix lemmas (full)
# The full-covariance derivation (symkl.kl.full) keeps k x k matrices symbolic; the matrix
# rules of symkl.proof.matrices prove the algebra for every k, and these four facts are what
# they cannot reach.  Their schematic matrices carry their declarations from birth
# (PositiveDefinite, CholeskyFactor); their instances are applied by MatrixAlgebra.


def _matrix_lemma_symbols() -> dict:
    from symkl.proof.matrices import CholeskyFactor, PositiveDefinite

    k = _k
    return {
        "x": sp.MatrixSymbol("x", k, 1), "mu": sp.MatrixSymbol("mu", k, 1),
        "m": sp.MatrixSymbol("m", k, 1), "S": PositiveDefinite("S", k, k),
        "A": sp.MatrixSymbol("A", k, k), "T": sp.MatrixSymbol("T", k, k),
        "L": CholeskyFactor("L", k, k), "R": CholeskyFactor("R", k, k),
    }  # fmt: skip


_M = _matrix_lemma_symbols()
_CHOLESKY = _M["L"]  # the factor of S in the evidence settings of M1 and M2


def gaussian_density(x: sp.Basic, mean: sp.Basic, covariance: sp.Basic) -> sp.Expr:
    r"""``N(x; mean, covariance)`` on ``R^k`` as a matrix expression (``k`` symbolic).

    .. math:: (2\pi)^{-k/2} |\Sigma|^{-1/2} \exp(-\tfrac12 (x-\mu)^\top \Sigma^{-1} (x-\mu))

    >>> print(gaussian_density(_M["x"], _M["mu"], _M["S"]))
    exp(-QuadraticForm(S**(-1), -mu + x)/2)/sqrt((2*pi)**k*Determinant(S))
    """
    from symkl.proof.matrices import QuadraticForm

    k = x.shape[0]
    exponent = -sp.Rational(1, 2) * QuadraticForm(covariance.I, x - mean)
    return sp.exp(exponent) / sp.sqrt((2 * sp.pi) ** k * sp.Determinant(covariance))


def _positive_definite(name: str):
    def holds(images: Images) -> tuple[bool, str]:
        from symkl.proof.matrices import PositiveDefinite

        image = images.symbols[_M[name]]
        if not isinstance(image, PositiveDefinite):
            return False, f"{image} is not declared positive definite (PositiveDefinite)"
        return True, ""

    return holds


def _free_of_variable(*names: str):
    def holds(images: Images) -> tuple[bool, str]:
        x = images.symbols[_M["x"]]
        if not isinstance(x, sp.MatrixSymbol):
            return False, f"the integration variable {x} is not a matrix symbol"
        for name in names:
            if images.symbols[_M[name]].has(x):
                return False, f"the image of {name} depends on the integration variable {x}"
        return True, ""

    return holds


def _lower_triangular(name: str):
    def holds(images: Images) -> tuple[bool, str]:
        from symkl.proof.matrices import is_lower_triangular

        image = images.symbols[_M[name]]
        if not is_lower_triangular(image):
            return False, (f"{image} is not a product of CholeskyFactor matrices and their "
                           "inverses")
        return True, ""

    return holds


def _gaussian_setting(n: int) -> dict:
    """Explicit symbolic ``S = L L^T`` (``L`` a symbolic Cholesky factor) at size ``n``."""
    from symkl.model import cholesky_factor

    factor = cholesky_factor("s", n)
    inverse = factor.inv(method="LU")  # triangular: cheap, unlike the inverse of L L^T
    column = sp.ImmutableMatrix
    return {
        _k: sp.Integer(n),
        _M["S"]: factor * factor.T,
        _M["S"].I: sp.ImmutableMatrix(inverse.T * inverse),
        sp.Determinant(_M["S"]): sp.Mul(*[factor[a, a] for a in range(n)]) ** 2,
        _M["x"]: column([sp.Symbol(f"x_{a}", real=True) for a in range(1, n + 1)]),
        _M["mu"]: column([sp.Symbol(f"mu_{a}", real=True) for a in range(1, n + 1)]),
        _M["m"]: column([sp.Symbol(f"m_{a}", real=True) for a in range(1, n + 1)]),
        _M["A"]: sp.ImmutableMatrix(n, n, lambda a, b: sp.Symbol(f"A_{a + 1}{b + 1}", real=True)),
        _CHOLESKY: factor,
    }


def _triangular_setting(n: int) -> dict:
    """Explicit symbolic Cholesky factors ``L``, ``R`` at size ``n`` (``T = R^-1 L``)."""
    from symkl.model import cholesky_factor

    return {_k: sp.Integer(n), _M["L"]: cholesky_factor("l", n),
            _M["R"]: cholesky_factor("r", n)}


def _whitened(setting: Mapping) -> Prover:
    """Gaussian integrals at a size: x = mu + L z with the setting's factor (Whitened)."""
    from symkl.proof.provers import Whitened

    return Whitened(setting[_CHOLESKY], setting[_M["mu"]])


def _gaussian_example() -> dict:
    return {}


def _triangular_example() -> dict:
    return {_M["T"]: _M["R"].I * _M["L"]}


def _density_lemma() -> Lemma:
    from symkl.proof.matrices import MatrixIntegral

    return _lemma(
        name="M1",
        title="a Gaussian density on R^k is normalised",
        lhs=MatrixIntegral(gaussian_density(_M["x"], _M["mu"], _M["S"]), _M["x"]),
        rhs=sp.S.One,
        k=_k,
        schematic=(_k, _M["x"], _M["mu"], _M["S"]),
        conditions=(
            SideCondition(r"$S$ symmetric positive definite", _positive_definite("S"),
                          (IsPositiveDefinite(_M["S"]),)),
            SideCondition(r"$\mu$ does not depend on $\mathbf{x}$", _free_of_variable("mu", "S"),
                          (FreeOf(_M["mu"], _M["S"], _M["x"]),)),
        ),
        example=_gaussian_example,
        setting=_gaussian_setting,
        inner=_whitened,
    )


def _quadratic_lemma() -> Lemma:
    from symkl.proof.matrices import MatrixIntegral, QuadraticForm

    x, mu, m, S, A = (_M[n] for n in ("x", "mu", "m", "S", "A"))
    return _lemma(
        name="M2",
        title="the expectation of a quadratic form under a Gaussian on R^k",
        lhs=MatrixIntegral(gaussian_density(x, mu, S) * QuadraticForm(A, x - m), x),
        rhs=sp.Trace(A * S) + QuadraticForm(A, mu - m),
        k=_k,
        schematic=(_k, x, mu, S, A, m),
        conditions=(
            SideCondition(r"$S$ symmetric positive definite", _positive_definite("S"),
                          (IsPositiveDefinite(S),)),
            SideCondition(r"$\mu$, $m$ and $A$ do not depend on $\mathbf{x}$ (the integrand "
                          "is then absolutely integrable)", _free_of_variable("mu", "S", "A", "m"),
                          (FreeOf(mu, m, A, S, x),), "the integrand is then absolutely integrable"),
        ),
        example=_gaussian_example,
        setting=_gaussian_setting,
        inner=_whitened,
    )


_TRIANGULAR_NOTE = ("$T$ a product of lower-triangular matrices with positive diagonals "
                    "and their inverses")


def _log_det_lemma() -> Lemma:
    from symkl.proof.matrices import MatrixEntry

    i = sp.Dummy("i", integer=True, positive=True)
    T = _M["T"]
    return _lemma(
        name="M3",
        title="the log-determinant of a lower-triangular matrix with positive diagonal",
        lhs=sp.Sum(sp.log(MatrixEntry(T, i, i)), (i, 1, _k)),
        rhs=sp.log(sp.Determinant(T)),
        k=_k,
        schematic=(_k, T),
        conditions=(
            SideCondition(r"$T$ is a product of lower-triangular matrices with positive "
                          "diagonals and their inverses (so is $T$)", _lower_triangular("T"),
                          (IsLowerTriangular(T),), _TRIANGULAR_NOTE),
        ),
        example=_triangular_example,
        setting=_triangular_setting,
    )


def _frobenius_lemma() -> Lemma:
    from symkl.proof.matrices import MatrixEntry

    i = sp.Dummy("i", integer=True, positive=True)
    j = sp.Dummy("j", integer=True, positive=True)
    T = _M["T"]
    return _lemma(
        name="M4",
        title="the squared Frobenius norm of a lower-triangular matrix",
        lhs=sp.Sum(MatrixEntry(T, i, i) ** 2, (i, 1, _k))
        + sp.Sum(sp.Sum(MatrixEntry(T, i, j) ** 2, (j, 1, i - 1)), (i, 1, _k)),
        rhs=sp.Trace(T * T.T),
        k=_k,
        schematic=(_k, T),
        conditions=(
            SideCondition(r"$T$ is a product of lower-triangular matrices with positive "
                          "diagonals and their inverses (so $T_{ij} = 0$ for $j > i$)",
                          _lower_triangular("T"), (IsLowerTriangular(T),), _TRIANGULAR_NOTE),
        ),
        example=_triangular_example,
        setting=_triangular_setting,
    )




#: lemma M5 states entrywise sums for traces of at most this many diagonal letters ...
M5_TRACE_LETTERS = 3
#: ... and for bilinear forms u^T D_1^{e_1} ... D_r^{e_r} v with at most this many between u and v;
#: its prover (symkl.proof.matrices) refuses longer words
M5_BILINEAR_LETTERS = 2


def _sign_patterns(length: int) -> list[tuple[int, ...]]:
    patterns = [()]
    for _ in range(length):
        patterns = [(*pattern, sign) for pattern in patterns for sign in (1, -1)]
    return patterns


#: the shapes lemma M5 states, one row of its statement each, in order: ``("trace", signs)``
#: is tr(D_1^{e_1} ... D_r^{e_r}), ``("bilinear", signs)`` is u^T D_1^{e_1} ... D_r^{e_r} v,
#: ``("log-det", (1,))`` is log det D_1 (``e_j = -1`` an inverse)
M5_SHAPES: tuple[tuple[str, tuple[int, ...]], ...] = (
    *[("trace", signs) for r in range(1, M5_TRACE_LETTERS + 1) for signs in _sign_patterns(r)],
    *[("bilinear", signs)
      for r in range(M5_BILINEAR_LETTERS + 1) for signs in _sign_patterns(r)],
    ("log-det", (1,)),
)

#: M5's schematic entry functions: d_1 .. d_r of the diagonal letters, u and v of the columns
M5_ENTRIES = tuple(sp.Function(f"d{j}", nargs=1)
                   for j in range(1, max(M5_TRACE_LETTERS, M5_BILINEAR_LETTERS) + 1))
M5_COLUMNS = (sp.Function("u", nargs=1), sp.Function("v", nargs=1))


def _diagonal_rows() -> tuple[list, list]:
    """The rows of M5, one per shape of :data:`M5_SHAPES`: ``(left sides, right sides)``."""
    from symkl.proof.matrices import Column, Diagonal

    n, i = sp.Dummy("n", integer=True, positive=True), sp.Dummy("i", integer=True, positive=True)
    letters = [Diagonal(sp.Lambda(n, d(n)), _k) for d in M5_ENTRIES]
    u, v = (Column(sp.Lambda(n, c(n)), _k) for c in M5_COLUMNS)
    lhs, rhs = [], []
    for kind, signs in M5_SHAPES:
        word = [letters[j] if e > 0 else letters[j].I for j, e in enumerate(signs)]
        entry = sp.Mul(*[M5_ENTRIES[j](i) ** e for j, e in enumerate(signs)])
        if kind == "trace":
            lhs.append(sp.Trace(functools.reduce(operator.mul, word)))
            rhs.append(sp.Sum(entry, (i, 1, _k)))
        elif kind == "bilinear":
            # u^T W v is a 1 x 1 matrix: its trace is the scalar
            lhs.append(sp.Trace(functools.reduce(operator.mul, [u.T, *word, v])))
            rhs.append(sp.Sum(M5_COLUMNS[0](i) * entry * M5_COLUMNS[1](i), (i, 1, _k)))
        else:
            lhs.append(sp.log(sp.Determinant(word[0])))
            rhs.append(sp.Sum(sp.log(M5_ENTRIES[0](i)), (i, 1, _k)))
    return lhs, rhs


def _diagonal_lemma() -> Lemma:
    lhs, rhs = _diagonal_rows()
    return _lemma(
        name="M5",
        title="diagonal matrices act entrywise",
        lhs=sp.ImmutableMatrix(lhs),
        rhs=sp.ImmutableMatrix(rhs),
        k=_k,
        schematic=(_k, *M5_ENTRIES, *M5_COLUMNS),
        conditions=(
            SideCondition(rf"$D_j = \operatorname{{diag}}(d_j)$ with $d_{{j,i}} > 0$ (so $D_j$ is "
                          rf"invertible and $\log\det D_j$ is real); one row for each word of "
                          rf"at most {M5_TRACE_LETTERS} letters $D_j^{{\pm 1}}$ in a trace and "
                          rf"at most {M5_BILINEAR_LETTERS} between $u^\top$ and $v$: nothing "
                          "longer is an instance", _positive_functions(*M5_ENTRIES),
                          (Where(sp.Gt(sp.Symbol("d_{j,i}"), 0, evaluate=False),
                                 sp.Contains(_SHOWN_J, sp.FiniteSet(*range(1, len(M5_ENTRIES) + 1)),
                                             evaluate=False)),),
                          f"$D_j = \\operatorname{{diag}}(d_{{j,1}}, \\ldots, d_{{j,k}})$, "
                          "$u = (u_1, \\ldots, u_k)^\\top$, $v$ likewise; one row for each word "
                          "of at most "
                          f"{M5_TRACE_LETTERS} letters $D_j^{{\\pm 1}}$ in a trace and at most "
                          f"{M5_BILINEAR_LETTERS} between $u^\\top$ and $v$, nothing longer"),
        ),
        example=_diagonal_example,
    )


def _positive_functions(*functions):
    def holds(images: Images) -> tuple[bool, str]:
        for function in functions:
            body = images.body(function)
            if body.is_positive is not True:
                return False, f"{function}(i) = {body} is not shown positive"
        return True, ""

    return holds


def _diagonal_example() -> dict:
    """Generic positive entries ``s_j[n]^2`` for each ``d_j``, generic real columns."""
    n = sp.Symbol("n", integer=True, positive=True)
    example = {d: sp.Lambda(n, sp.IndexedBase(f"s{j}", positive=True)[n] ** 2)
               for j, d in enumerate(M5_ENTRIES, 1)}
    for name, column in zip(("u", "w"), M5_COLUMNS, strict=True):
        example[column] = sp.Lambda(n, sp.IndexedBase(name, real=True)[n])
    return example


MATRIX_LEMMA_BUILDERS = (_density_lemma, _quadratic_lemma, _log_det_lemma, _frobenius_lemma,
                         _diagonal_lemma)


#: the builders of the base, in order (one list: add a lemma here)
_BUILDERS: tuple[Callable[[], Lemma], ...] = (
    _linearity_lemma,
    _marginalisation_lemma,
    *MATRIX_LEMMA_BUILDERS,
)

#: every lemma the kernel may use, by name; nothing else is assumed
LEMMAS: Mapping[str, Lemma] = types.MappingProxyType(
    {lemma.name: lemma for lemma in (build() for build in _BUILDERS)}
)


# --------------------------------------------------------------------------- provers


def _lookup(name: object) -> Lemma:
    if isinstance(name, Lemma):
        if not is_genuine_lemma(name):
            raise TypeError(f"lemma {name.name!r} is not one of symkl.proof.lemmas.LEMMAS "
                            "(only the kernel's lemmas are assumed)")
        return name
    if not isinstance(name, str) or name not in LEMMAS:
        raise ValueError(f"unknown lemma {name!r}; the lemmas are {sorted(LEMMAS)}")
    return LEMMAS[name]


def _checked_instance(lemma: Lemma, substitution: Mapping,
                      row: int | None = None) -> tuple[sp.Basic, sp.Basic] | str:
    """The admitted instance with every side condition checked, or why not (``row``: of a
    schema, that equation only)."""
    if not is_genuine_lemma(lemma):
        return f"{lemma.name} is not a lemma of the kernel"
    try:
        images = _validate(lemma, substitution)
        for condition in lemma.conditions:
            ok, why = condition.holds(images)
            if not ok:
                return f"side condition of {lemma.name} not shown ({condition.text}): {why}"
        return _instance(lemma, images, row)
    except (ValueError, TypeError) as error:
        return f"{lemma.name}: {error}"


class ByLemma(Prover):
    """The claim is exactly an instance of a lemma, its side conditions checked on it.

    ``substitution`` maps the lemma's schematic names to their images.  Both
    sides are compared after bound variables are renamed; the orientation
    ``rhs = lhs`` is accepted too.

    Examples
    --------
    >>> d = LEMMAS["L2"]
    >>> lhs, rhs = d.instance(d.example())
    >>> ByLemma("L2", d.example()).prove(lhs, rhs).lemmas
    ('L2',)
    """

    def __init__(self, name: str, substitution: Mapping) -> None:
        self.lemma = _lookup(name)
        self.substitution = dict(substitution)
        self.method = f"instance of lemma {self.lemma.name} ({self.lemma.title})"

    def prove(self, lhs: sp.Basic, rhs: sp.Basic) -> SymbolicResult:
        instance = _checked_instance(self.lemma, self.substitution)
        if isinstance(instance, str):
            return SymbolicResult(False, self.method, instance)
        sides = (admit(lhs), admit(rhs))
        if sides != instance and sides != instance[::-1]:
            return SymbolicResult(False, self.method, "the claim is not the lemma's instance")
        return SymbolicResult(True, self.method, "side conditions checked on the instance",
                              lemmas=(self.lemma.name,))


class ByLemmas(Prover):
    """Rewrite with lemma instances (left side to right side), then prove the rest.

    ``uses`` is a sequence of ``(name, substitution)``; each instance's side
    conditions are checked, and each must occur in the claim.  ``then`` (a
    kernel prover, default :class:`Generic`) proves the rewritten claim.
    """

    def __init__(self, uses: Sequence[tuple[str, Mapping]], then: Prover | None = None) -> None:
        if not uses:
            raise ValueError("ByLemmas needs at least one (lemma name, substitution)")
        self.uses = tuple((_lookup(name), dict(sub)) for name, sub in uses)
        self.then = then if then is not None else Generic()
        if not isinstance(self.then, Prover):
            raise TypeError(f"then must be a kernel Prover, got {type(self.then).__name__}")
        names = ", ".join(lemma.name for lemma, _ in self.uses)
        self.method = f"lemmas {names}, then {self.then.method}"

    def prove(self, lhs: sp.Basic, rhs: sp.Basic) -> SymbolicResult:
        lhs, rhs = admit(lhs), admit(rhs)
        for lemma, substitution in self.uses:
            instance = _checked_instance(lemma, substitution)
            if isinstance(instance, str):
                return SymbolicResult(False, self.method, instance)
            before = (lhs, rhs)
            lhs, rhs = lhs.xreplace({instance[0]: instance[1]}), rhs.xreplace(
                {instance[0]: instance[1]}
            )
            if (lhs, rhs) == before:
                return SymbolicResult(False, self.method,
                                      f"the instance of {lemma.name} does not occur in the claim")
        result = run_prover(self.then, admit(lhs), admit(rhs))
        lemmas = tuple(dict.fromkeys([lemma.name for lemma, _ in self.uses]
                                     + list(result.lemmas)))
        return SymbolicResult(result.ok, f"lemmas {', '.join(lemmas)}, then {result.method}",
                              result.detail, result.sizes, lemmas, result.hypotheses)


# --------------------------------------------------------------------------- evidence


def _random_factors(setting: Mapping, n: int, name: str) -> dict:
    """``setting`` with every entry of its Cholesky factors an exact random rational.

    ``S = L L^T`` then is a random symmetric positive-definite matrix (diagonal
    of ``L`` in ``[1/2, 5/2]``, entries below it in ``[-2, 2]``, seeded by the
    lemma and the size); vectors and other matrices stay symbolic and are
    sampled at every point.  Settings without a factor are returned as they are.
    """
    import random

    from symkl.proof.matrices import CholeskyFactor

    entries: set[sp.Basic] = set()
    for key, value in setting.items():
        if isinstance(key, CholeskyFactor) and isinstance(value, sp.MatrixBase):
            entries |= value.free_symbols
    if not entries:
        return dict(setting)
    rng = random.Random(f"evidence-{name}-{n}")
    draw = {
        entry: sp.Rational(rng.randint(4, 20), 8)
        if entry.is_positive
        else sp.Rational(rng.randint(-16, 16), 8)
        for entry in sorted(entries, key=sp.default_sort_key)
    }
    return {
        key: value.xreplace(draw) if isinstance(value, sp.Basic) else value
        for key, value in setting.items()
    }


def _has_factor(lemma: Lemma) -> bool:
    """Whether the lemma's evidence settings hold a Cholesky factor (random SPD matrices)."""
    from symkl.proof.matrices import CholeskyFactor

    return lemma.setting is not None and any(
        isinstance(key, CholeskyFactor) for key in lemma.setting(2)
    )


def _evidence_instances(lemma: Lemma) -> tuple:
    """The numeric instances: random SPD matrices at k = 2..6, symbolic entries at k = 2, 3."""
    setting = lemma.setting or (lambda n: {lemma.k: sp.Integer(n)})
    numeric = [_random_factors(setting(n), n, lemma.name) for n in EVIDENCE_NUMERIC_AT]
    symbolic = [setting(n) for n in EVIDENCE_SYMBOLIC_ENTRIES_AT]
    return (*numeric, *symbolic)


def _evidence_claim(lemma: Lemma) -> Claim:
    lhs, rhs = lemma.instance(lemma.example())
    setting = lemma.setting or (lambda n: {lemma.k: sp.Integer(n)})
    return Claim(
        f"lemma-{lemma.name}",
        lhs,
        rhs,
        lemma.title,
        "stated",
        lemma.condition_texts(),
        EVIDENCE_PROVED_AT,
        AtSizes(lemma.k, EVIDENCE_PROVED_AT, setting=setting, inner=lemma.inner),
        _evidence_instances(lemma),
    )


@functools.cache
def lemma_evidence(name: str, settings: object = None):
    """Evidence for a lemma: its example proved at k = 1..6, checked numerically at k = 2..6.

    Returns the kernel's :class:`~symkl.proof.kernel.StepCheck` on the example
    instance (cached per process).  Evidence, not proof: the lemma is assumed
    for every ``k``; this says it is not wrong where it can be checked.
    """
    from symkl.proof.kernel import Settings, check

    lemma = _lookup(name)
    return check(_evidence_claim(lemma), settings or Settings(points=3))


def lemma_record(name: str, evidence: bool = True) -> dict:
    """A JSON-ready record: name, title, statement, side conditions and evidence verdict."""
    lemma = _lookup(name)
    record = {
        "name": lemma.name,
        "title": lemma.title,
        "statement": lemma.latex(),
        "side_conditions": list(lemma.condition_texts()),
        # the same conditions as formulas: text, LaTeX, and a short note each
        "side_condition_formulas": [
            {"formulas": list(c.plain()), "latex": list(c.latex()), "note": c.note}
            for c in lemma.conditions
        ],
    }
    if evidence:
        verdict = lemma_evidence(lemma.name)
        record["evidence"] = {
            "ok": verdict.ok,
            "symbolic": verdict.symbolic.method if verdict.symbolic.ok else
            f"FAILED: {verdict.symbolic.detail[:200]}",
            "proved_at": f"k = {format_sizes(EVIDENCE_PROVED_AT)}",
            # the sizes the numeric side reports having checked, not the constant asked for
            "numeric_at": f"k = {format_sizes(verdict.numeric.sizes)}"
            if verdict.numeric.sizes else "no size",
            "numeric_matrices": "random exact Cholesky factors (S = L L^T) at "
            f"k = {format_sizes(EVIDENCE_NUMERIC_AT)}; every entry symbolic and sampled at "
            f"k = {format_sizes(EVIDENCE_SYMBOLIC_ENTRIES_AT)}"
            if _has_factor(lemma) else "no matrices",
            "digits": round(verdict.numeric.digits, 2),
        }
    return record


# --------------------------------------------------------------------------- evidence gate

#: per process: each lemma's evidence verdict as ``(ok, why not)``, from :func:`lemma_evidence`
_EVIDENCE_VERDICTS: dict[str, tuple[bool, str]] = {}
#: lemmas whose evidence is being computed now (evidence resting on its own lemma is circular)
_EVIDENCE_IN_PROGRESS: set[str] = set()


def evidence_refusal(names: Iterable[str]) -> str:
    """Why a verdict resting on the lemmas ``names`` must be refused, or ``""``.

    A lemma backs a claim only while its evidence (:func:`lemma_evidence`: proved at
    k = 1..6, checked numerically) is ok; the verdict of each lemma is computed once
    per process.  The first lemma whose evidence fails is named.  ``symkl verify
    --json`` (which reports the evidence) fails a derivation by it; single checks do
    not call it, since M1's and M2's evidence alone takes about a minute (their
    symbolic proofs at k = 5, 6), and the registry is frozen, its evidence tested in CI.

    >>> evidence_refusal(["L1"])
    ''
    """
    for name in names:
        if name not in _EVIDENCE_VERDICTS:
            if name in _EVIDENCE_IN_PROGRESS:
                return f"lemma {name}'s evidence may not rest on lemma {name} itself"
            _EVIDENCE_IN_PROGRESS.add(name)
            try:
                verdict = lemma_evidence(name)
            finally:
                _EVIDENCE_IN_PROGRESS.discard(name)
            why = "" if verdict.ok else (
                f"symbolic: {verdict.symbolic.detail if not verdict.symbolic.ok else 'ok'}; "
                f"numeric: {'ok' if verdict.numeric.ok else 'failed'}")
            _EVIDENCE_VERDICTS[name] = (bool(verdict.ok), why)
        ok, why = _EVIDENCE_VERDICTS[name]
        if not ok:
            return f"lemma {name} is not backed: its evidence fails ({why[:200]})"
    return ""
