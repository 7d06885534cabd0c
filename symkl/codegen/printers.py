"""The printers of the kernel arithmetic: C99 and the array namespace ``xp``."""

from __future__ import annotations

import sympy as sp
from sympy.printing.c import C99CodePrinter
from sympy.printing.numpy import NumPyPrinter

__all__ = ["CodePrinter99", "array_code", "c_code", "literal"]


class CodePrinter99(C99CodePrinter):
    """C99 with ``x*x`` for squares (``pow(x, 2)`` relies on the optimiser)."""

    def _print_Pow(self, expr: sp.Pow) -> str:
        if expr.exp == 2:
            base = self.parenthesize(expr.base, 100)
            return f"(({base})*({base}))"
        return super()._print_Pow(expr)


def c_code(expr: sp.Expr) -> str:
    return CodePrinter99().doprint(sp.sympify(expr))


def array_code(expr: sp.Expr) -> str:
    text = NumPyPrinter({"fully_qualified_modules": False}).doprint(sp.sympify(expr))
    return text.replace("numpy.", "np.")


def literal(value: sp.Rational) -> str:
    return repr(float(value))
