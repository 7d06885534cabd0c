r"""Printable statements for side conditions that SymPy has no relation for.

A lemma's side conditions are shown as formulas (``p_j(t) \ge 0``,
``\int p_j = 1``, ``S \succ 0``, ``f_i`` depends only on ``x_i``).  Where SymPy
has a relation (``Ge``, ``Eq``, ``Lt``) the condition is that relation; the few
predicates it lacks are the small classes here.  They only *print*: the kernel
checks each side condition with its own predicate function
(:class:`~symkl.proof.lemmas.SideCondition` ``holds``), never by reading these.

Examples
--------
>>> import sympy as sp
>>> k = sp.Symbol("k", integer=True, positive=True)
>>> S = sp.MatrixSymbol("S", k, k)
>>> print(sp.latex(IsPositiveDefinite(S)), "|", IsPositiveDefinite(S))
S \succ 0 | S > 0 (symmetric positive definite)
>>> f, x = sp.Symbol("f_i"), sp.Symbol("x_i")
>>> print(sp.latex(DependsOnlyOn(f, x)), "|", DependsOnlyOn(f, x))
f_{i} \text{ depends only on } x_{i} | f_i depends only on x_i
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.str import StrPrinter

__all__ = ["DependsOnlyOn", "FreeOf", "IsLowerTriangular", "IsPositiveDefinite", "Statement",
           "Where", "plain_text"]  # fmt: skip


class Statement(sp.Basic):
    """A statement about its arguments, printed from two templates; never evaluated.

    Subclasses set ``latex_template`` and ``text_template``, ``str.format``
    patterns over the printed arguments (``{0}``, ``{1}``, ...).
    """

    latex_template = ""
    text_template = ""

    def __new__(cls, *arguments: sp.Basic) -> Statement:
        return sp.Basic.__new__(cls, *[sp.sympify(a) for a in arguments])

    def __bool__(self) -> bool:
        raise TypeError(f"{type(self).__name__} is printed, never decided: the kernel checks "
                        "side conditions with their own predicates (SideCondition.holds)")

    def _latex(self, printer) -> str:
        return self.latex_template.format(*[printer._print(a) for a in self.args])

    def _sympystr(self, printer) -> str:
        return self.text_template.format(*[printer._print(a) for a in self.args])


class IsPositiveDefinite(Statement):
    r"""``S \succ 0``: ``S`` symmetric positive definite."""

    latex_template = r"{0} \succ 0"
    text_template = "{0} > 0 (symmetric positive definite)"


class IsLowerTriangular(Statement):
    r"""``T`` lower triangular, positive diagonal: ``T_{ij} = 0`` for ``j > i``, ``T_{ii} > 0``."""

    latex_template = r"{0}_{{ij}} = 0 \ (j > i),\ {0}_{{ii}} > 0"
    text_template = "{0}_ij = 0 for j > i and {0}_ii > 0"


class DependsOnlyOn(Statement):
    """``f`` depends on the variable ``x`` only (no other coordinate)."""

    latex_template = r"{0} \text{{ depends only on }} {1}"
    text_template = "{0} depends only on {1}"


class FreeOf(Statement):
    r"""``\partial a / \partial x = 0``: ``a`` does not depend on ``x`` (the last argument)."""

    def _latex(self, printer) -> str:
        *free, variable = (printer._print(a) for a in self.args)
        return rf"\partial ({', '.join(free)}) / \partial {variable} = 0" if len(free) > 1 else (
            rf"\partial {free[0]} / \partial {variable} = 0")

    def _sympystr(self, printer) -> str:
        *free, variable = (printer._print(a) for a in self.args)
        return f"{', '.join(free)} {'do' if len(free) > 1 else 'does'} not depend on {variable}"


class Where(Statement):
    r"""``relation`` under a ``qualifier``: ``d_j(i) > 0 \ (1 \le j \le 3)``."""

    latex_template = r"{0} \quad ({1})"
    text_template = "{0} for {1}"


class _PlainPrinter(StrPrinter):
    """Side conditions as text that reads like the formula: ``=``, ``∫``, ``|a|``, ``∈``, ``∞``."""

    def _print_Equality(self, expr) -> str:
        return f"{self._print(expr.lhs)} = {self._print(expr.rhs)}"

    def _print_Unequality(self, expr) -> str:
        return f"{self._print(expr.lhs)} ≠ {self._print(expr.rhs)}"

    def _print_Abs(self, expr) -> str:
        return f"|{self._print(expr.args[0])}|"

    def _print_Infinity(self, expr) -> str:
        return "∞"

    def _print_Contains(self, expr) -> str:
        return f"{self._print(expr.args[0])} ∈ {self._print(expr.args[1])}"

    def _print_Integral(self, expr) -> str:
        text = self._print(expr.function)
        for variable, *bounds in expr.limits:
            where = "_R" if bounds == [-sp.oo, sp.oo] else (
                f"_{self._print(bounds[0])}^{self._print(bounds[1])}" if bounds else "")
            text = f"∫{where} {text} d{self._print(variable)}"
        return text


def plain_text(expr: sp.Basic) -> str:
    """A side-condition formula as text.

    >>> t = sp.Symbol("t", real=True)
    >>> p = sp.Function("p_j")
    >>> plain_text(sp.Eq(sp.Integral(p(t), (t, -sp.oo, sp.oo)), 1, evaluate=False))
    '∫_R p_j(t) dt = 1'
    """
    printer = _PlainPrinter()
    indexed = {a: sp.Symbol(f"{a.base.label}_{','.join(printer.doprint(n) for n in a.indices)}")
               for a in expr.atoms(sp.Indexed)}  # x[i] -> x_i (Indexed prints itself otherwise)
    return printer.doprint(expr.xreplace(indexed))
