"""The printers of the kernel arithmetic: C99 and the array namespace ``xp``.

Two kinds of expression reach them:

- the proved forms of ``stable`` (ordinary SymPy expressions: ``x``, ``a``, the
  gradients), printed as SymPy prints them;
- the compensated arithmetic of the kernels (TwoSum, the exact remainder of a
  product, the lo parts), built from the nodes below.  Floating-point addition and
  multiplication are not associative, so these are built with :func:`add` and
  :func:`mul`, which keep their operands in the order given and evaluate left to
  right; a nested sum or product is a parenthesised sub-expression, evaluated first.
  Printed with ``order="none"`` they come out in exactly that order in both targets.

Examples
--------
>>> import sympy as sp
>>> rho, two, two_lo, rho_lo, x = sp.symbols("rho two two_lo rho_lo x", real=True)
>>> x_lo = add(ProductError(rho, two, x), mul(rho, two_lo), mul(2.0, rho_lo, add(1.0, rho)))
>>> c_arithmetic(x_lo)
'fma(rho, two, -x) + rho * two_lo + 2.0 * rho_lo * (1.0 + rho)'
>>> array_arithmetic(x_lo)
'product_error(rho, two, x) + rho * two_lo + 2.0 * rho_lo * (1.0 + rho)'
>>> lo = sp.Symbol("d_lo", real=True)
>>> c_arithmetic(TwoSum(x, -rho, lo)), array_arithmetic(TwoSum(x, -rho, lo))
('symkl_two_sum(x, -rho, &d_lo)', 'two_sum(x, -rho)')
"""

from __future__ import annotations

from typing import ClassVar

import sympy as sp
from sympy.core.function import UndefinedFunction
from sympy.printing.c import C99CodePrinter
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE, precedence

__all__ = [
    "ArrayPrinter",
    "CodePrinter99",
    "Lo",
    "ProductError",
    "TwoSum",
    "add",
    "array_arithmetic",
    "array_code",
    "c_arithmetic",
    "c_code",
    "div",
    "inverse",
    "literal",
    "mul",
    "neg",
    "variables",
]


class TwoSum(sp.Function):
    """``TwoSum(a, b, lo)``: the rounded ``a + b``; ``lo`` receives its exact error.

    Knuth's TwoSum: ``a + b = hi + lo`` exactly.  C calls ``symkl_two_sum(a, b, &lo)``;
    the array namespace ``two_sum(a, b)``, which returns ``(hi, lo)``.
    """

    nargs = 3


class ProductError(sp.Function):
    """``ProductError(a, b, p) = a b - p`` exactly, for ``p`` the rounded ``a b`` (or any ``p``
    with ``a b - p`` representable): ``fma(a, b, -p)`` in C, Dekker's TwoProduct
    (``product_error``) in the array namespace, which has no fma."""

    nargs = 3


class Lo(sp.Function):
    """A lo part: in C ``SYMKL_LO(e)``, which the float32 kernels drop (``exact = 0``);
    the array kernels always keep it."""

    nargs = 1


def neg(value: sp.Expr | float) -> sp.Expr:
    """``-value``, printed as unary minus before an ordered product."""
    value = sp.sympify(value)
    if isinstance(value, sp.Mul) and value.args[0] != -1:
        return mul(-1, *value.args)
    return mul(-1, value)


def inverse(denominator: sp.Expr) -> sp.Expr:
    """A factor ``/ denominator`` of an ordered product: ``mul(a, b, inverse(c))`` is
    ``a * b / c``."""
    return sp.Pow(denominator, -1, evaluate=False)


def div(numerator: sp.Expr | float, denominator: sp.Expr) -> sp.Expr:
    """``numerator / denominator``, one rounded division (a product numerator first)."""
    return mul(numerator, inverse(denominator))


def variables(names: str) -> tuple[sp.Symbol, ...]:
    """Real symbols named as the kernels' variables (``"d_hi d_lo"``)."""
    return sp.symbols(names, real=True, seq=True)


def add(*terms: sp.Expr | float) -> sp.Expr:
    """The floating-point sum of ``terms``, left to right, in the order given."""
    return sp.Add(*(sp.sympify(t) for t in terms), evaluate=False)


def mul(*factors: sp.Expr | float) -> sp.Expr:
    """The floating-point product of ``factors``, left to right, in the order given."""
    return sp.Mul(*(sp.sympify(f) for f in factors), evaluate=False)


class _OrderedArithmetic:
    """``_print_Add`` / ``_print_Mul`` for expressions built by :func:`add` and :func:`mul`.

    Operands in their given order, ``a * b`` spaced, a sum nested in a sum (a product
    in a product) in parentheses; a leading factor -1 prints as unary minus.
    """

    def _ordered_operand(self, operand: sp.Expr, parent: sp.Expr) -> str:
        text = self._print(operand)
        nested = isinstance(operand, type(parent)) and not _is_negation(operand)
        # an ordered product binds as a product, also with a leading -1 (SymPy's
        # precedence() ranks a negated product as a sum)
        binding = PRECEDENCE["Mul"] if isinstance(parent, sp.Mul) else precedence(parent)
        if nested or precedence(operand) < binding:
            return f"({text})"
        return text

    def _print_Add(self, expr: sp.Add, order: str | None = None) -> str:
        if not self._settings.get("ordered"):
            return super()._print_Add(expr, order)
        first, *rest = expr.args
        text = self._ordered_operand(first, expr)
        for term in rest:
            printed = self._ordered_operand(term, expr)
            if printed.startswith("-"):
                text += f" - {printed[1:]}"
            else:
                text += f" + {printed}"
        return text

    def _print_Mul(self, expr: sp.Mul) -> str:
        if not self._settings.get("ordered"):
            return super()._print_Mul(expr)
        factors = list(expr.args)
        sign = ""
        if factors[0] == -1:
            sign, factors = "-", factors[1:]
        first = factors[0]
        # a leading number is never parenthesised: -2.0 * s is (-2.0) * s
        text = self._print(first) if first.is_Number else self._ordered_operand(first, expr)
        for factor in factors[1:]:
            if isinstance(factor, sp.Pow) and factor.exp == -1:
                text += f" / {self._ordered_operand(factor.base, expr)}"
            else:
                text += f" * {self._ordered_operand(factor, expr)}"
        return sign + text

    def _print_Function(self, expr: sp.Function) -> str:
        if self._settings.get("ordered") and isinstance(expr.func, UndefinedFunction):
            # a helper of the target (symkl_fast_series, ...): called by its name
            arguments = ", ".join(self._print(a) for a in expr.args)
            return f"{expr.func.__name__}({arguments})"
        return super()._print_Function(expr)

    def _print_Float(self, expr: sp.Float) -> str:
        if not self._settings.get("ordered"):
            return super()._print_Float(expr)
        return repr(float(expr))


def _is_negation(expr: sp.Expr) -> bool:
    return isinstance(expr, sp.Mul) and expr.args[0] == -1 and len(expr.args) == 2


class CodePrinter99(_OrderedArithmetic, C99CodePrinter):
    """C99 with ``x*x`` for squares (``pow(x, 2)`` relies on the optimiser) and the
    kernel nodes."""

    _default_settings: ClassVar[dict] = {**C99CodePrinter._default_settings, "ordered": False}

    def _print_Pow(self, expr: sp.Pow) -> str:
        if expr.exp == 2:
            base = self.parenthesize(expr.base, 100)
            return f"(({base})*({base}))"
        return super()._print_Pow(expr)

    def _print_TwoSum(self, expr: TwoSum) -> str:
        a, b, lo = expr.args
        return f"symkl_two_sum({self._print(a)}, {self._print(b)}, &{self._print(lo)})"

    def _print_ProductError(self, expr: ProductError) -> str:
        a, b, p = expr.args
        return f"fma({self._print(a)}, {self._print(b)}, {self._print(-p)})"

    def _print_Lo(self, expr: Lo) -> str:
        return f"SYMKL_LO({self._print(expr.args[0])})"


class ArrayPrinter(_OrderedArithmetic, NumPyPrinter):
    """The array namespace ``xp`` (NumPy, PyTorch, JAX behind the frameworks' preludes)."""

    _module = "xp"
    _default_settings: ClassVar[dict] = {**NumPyPrinter._default_settings, "ordered": False}

    def _print_TwoSum(self, expr: TwoSum) -> str:
        a, b, _ = expr.args
        return f"two_sum({self._print(a)}, {self._print(b)})"

    def _print_ProductError(self, expr: ProductError) -> str:
        return f"product_error({', '.join(self._print(a) for a in expr.args)})"

    def _print_Lo(self, expr: Lo) -> str:
        return self._print(expr.args[0])


def c_code(expr: sp.Expr) -> str:
    """C99 text of a proved form, as SymPy prints it."""
    return CodePrinter99().doprint(sp.sympify(expr))


def array_code(expr: sp.Expr) -> str:
    """Text of a proved form in the array namespace, as SymPy prints it."""
    return ArrayPrinter({"fully_qualified_modules": False}).doprint(sp.sympify(expr))


def c_arithmetic(expr: sp.Expr | float) -> str:
    """C99 text of kernel arithmetic (see the module), operands in their given order."""
    return CodePrinter99({"ordered": True, "order": "none"}).doprint(sp.sympify(expr))


def array_arithmetic(expr: sp.Expr | float) -> str:
    """Array-namespace text of kernel arithmetic, operands in their given order."""
    settings = {"fully_qualified_modules": False, "ordered": True, "order": "none"}
    return ArrayPrinter(settings).doprint(sp.sympify(expr))


def literal(value: sp.Rational) -> str:
    return repr(float(value))
