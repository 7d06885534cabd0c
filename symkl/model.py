"""Symbols and Gaussian densities: the objects every derivation starts from.

Symbols carry their assumptions from birth (means real, scales positive), and
the Python names match the SymPy names so that LaTeX reads well.  The
assumptions are also what :func:`symkl.check_step` samples from: a positive
symbol is drawn from a positive range, a real one from a symmetric range.

Examples
--------
>>> from symkl.model import univariate_symbols, normal_pdf
>>> s = univariate_symbols()
>>> s.sigma_p.is_positive, s.mu_p.is_real
(True, True)
>>> normal_pdf(s.x, 0, 1)
sqrt(2)*exp(-x**2/2)/(2*sqrt(pi))
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

# the integral over R^k is the kernel's (its lemmas are stated with it); re-exported here
from symkl.proof.lemmas import VectorIntegral

__all__ = [
    "DiagonalSymbols",
    "FullSymbols",
    "MatrixEntry",
    "MatrixIntegral",
    "QuadraticForm",
    "SquaredNorm",
    "UnivariateSymbols",
    "VectorIntegral",
    "cholesky_factor",
    "density_placeholders",
    "diagonal_symbols",
    "full_symbols",
    "normal_pdf",
    "univariate_symbols",
]


@dataclass(frozen=True)
class UnivariateSymbols:
    """The symbols of the univariate problem KL(N(mu_p, sigma_p^2) || N(mu_q, sigma_q^2))."""

    x: sp.Symbol
    mu_p: sp.Symbol
    sigma_p: sp.Symbol
    mu_q: sp.Symbol
    sigma_q: sp.Symbol

    @property
    def parameters(self) -> tuple[sp.Symbol, ...]:
        """The distribution parameters in signature order ``(mu_p, sigma_p, mu_q, sigma_q)``."""
        return (self.mu_p, self.sigma_p, self.mu_q, self.sigma_q)


def univariate_symbols() -> UnivariateSymbols:
    """The univariate symbols: ``x``, ``mu_p``, ``mu_q`` real; ``sigma_p``, ``sigma_q`` positive.

    SymPy symbols are interned by name and assumptions, so every call returns
    the same symbols.

    Examples
    --------
    >>> univariate_symbols().parameters
    (mu_p, sigma_p, mu_q, sigma_q)
    """
    x = sp.Symbol("x", real=True)
    mu_p, mu_q = sp.symbols("mu_p mu_q", real=True)
    sigma_p, sigma_q = sp.symbols("sigma_p sigma_q", positive=True)
    return UnivariateSymbols(x=x, mu_p=mu_p, sigma_p=sigma_p, mu_q=mu_q, sigma_q=sigma_q)


def normal_pdf(x: sp.Expr, mu: sp.Expr, sigma: sp.Expr) -> sp.Expr:
    r"""Density of :math:`\mathcal{N}(\mu, \sigma^2)` at ``x``.

    .. math:: \frac{1}{\sqrt{2\pi}\,\sigma} \exp\left(-\frac{(x-\mu)^2}{2\sigma^2}\right)

    Examples
    --------
    >>> import sympy as sp
    >>> x = sp.Symbol("x", real=True)
    >>> sp.integrate(normal_pdf(x, 0, 1), (x, -sp.oo, sp.oo))
    1
    """
    return sp.exp(-((x - mu) ** 2) / (2 * sigma**2)) / (sp.sqrt(2 * sp.pi) * sigma)


def density_placeholders(x: sp.Symbol) -> tuple[sp.Expr, sp.Expr]:
    """Opaque ``p(x)`` and ``q(x)`` used in displayed steps.

    A derivation keeps these in its steps so the rendering reads
    ``p(x) log(p(x)/q(x))``; it records what they stand for, and the checker
    substitutes the densities before proving anything.
    """
    return sp.Function("p")(x), sp.Function("q")(x)


@dataclass(frozen=True)
class DiagonalSymbols:
    """Symbols of the diagonal problem in dimension ``k``: indexed means and scales."""

    k: sp.Symbol
    i: sp.Symbol
    x: sp.IndexedBase
    mu_p: sp.IndexedBase
    sigma_p: sp.IndexedBase
    mu_q: sp.IndexedBase
    sigma_q: sp.IndexedBase
    t: sp.Symbol


def diagonal_symbols() -> DiagonalSymbols:
    """Indexed symbols ``mu_p[i]`` (real), ``sigma_p[i]`` (positive), ... and ``k >= 1``.

    Examples
    --------
    >>> s = diagonal_symbols()
    >>> s.sigma_q[s.i].is_positive, s.k.is_integer
    (True, True)
    """
    return DiagonalSymbols(
        k=sp.Symbol("k", integer=True, positive=True),
        i=sp.Symbol("i", integer=True, positive=True),
        x=sp.IndexedBase("x", real=True),
        mu_p=sp.IndexedBase("mu_p", real=True),
        sigma_p=sp.IndexedBase("sigma_p", positive=True),
        mu_q=sp.IndexedBase("mu_q", real=True),
        sigma_q=sp.IndexedBase("sigma_q", positive=True),
        t=sp.Symbol("t", real=True),
    )


# --------------------------------------------------------------------------- full covariance


@dataclass(frozen=True)
class FullSymbols:
    """Symbols of the full-covariance problem in dimension ``k``.

    ``Sigma_p = L_p L_p^T`` and ``Sigma_q = L_q L_q^T`` with lower-triangular
    Cholesky factors ``L_p``, ``L_q`` (positive diagonal); ``x``, ``mu_p`` and
    ``mu_q`` are ``k x 1`` columns.
    """

    k: sp.Symbol
    i: sp.Symbol
    j: sp.Symbol
    x: sp.MatrixSymbol
    mu_p: sp.MatrixSymbol
    mu_q: sp.MatrixSymbol
    Sigma_p: sp.MatrixSymbol
    Sigma_q: sp.MatrixSymbol
    L_p: sp.MatrixSymbol
    L_q: sp.MatrixSymbol


def full_symbols() -> FullSymbols:
    """The matrix symbols of KL(N(mu_p, Sigma_p) || N(mu_q, Sigma_q)) on R^k.

    Examples
    --------
    >>> s = full_symbols()
    >>> s.Sigma_p.shape
    (k, k)
    """
    k = sp.Symbol("k", integer=True, positive=True)
    return FullSymbols(
        k=k,
        i=sp.Symbol("i", integer=True, positive=True),
        j=sp.Symbol("j", integer=True, positive=True),
        x=sp.MatrixSymbol("x", k, 1),
        mu_p=sp.MatrixSymbol("mu_p", k, 1),
        mu_q=sp.MatrixSymbol("mu_q", k, 1),
        Sigma_p=sp.MatrixSymbol("Sigma_p", k, k),
        Sigma_q=sp.MatrixSymbol("Sigma_q", k, k),
        L_p=sp.MatrixSymbol("L_p", k, k),
        L_q=sp.MatrixSymbol("L_q", k, k),
    )


def cholesky_factor(name: str, size: int) -> sp.ImmutableMatrix:
    """A symbolic lower-triangular ``size x size`` factor: positive diagonal, real below.

    Every symmetric positive-definite matrix is ``L L^T`` for exactly one such
    ``L``, so sampling ``L`` samples SPD matrices.

    Examples
    --------
    >>> cholesky_factor("p", 2)
    Matrix([
    [L_{p,11},        0],
    [L_{p,21}, L_{p,22}]])
    """

    def entry(a: int, b: int) -> sp.Expr:
        if a < b:
            return sp.S.Zero
        symbol_name = f"L_{{{name},{a + 1}{b + 1}}}"
        return (
            sp.Symbol(symbol_name, positive=True) if a == b else sp.Symbol(symbol_name, real=True)
        )

    return sp.ImmutableMatrix(size, size, entry)


def _explicit(value: sp.Basic) -> bool:
    return isinstance(value, sp.MatrixBase)


class QuadraticForm(sp.Expr):
    r"""The scalar ``v^T A v`` of a ``k x 1`` column ``v`` and a ``k x k`` matrix ``A``.

    Stays symbolic while the shapes are symbolic; once ``A`` and ``v`` are
    explicit matrices, ``doit`` returns the scalar.

    Examples
    --------
    >>> s = full_symbols()
    >>> form = QuadraticForm(s.Sigma_q.I, s.mu_q - s.mu_p)
    >>> print(sp.latex(form))
    \left(- \mu_{p} + \mu_{q}\right)^{\top} \Sigma_{q}^{-1} \left(- \mu_{p} + \mu_{q}\right)
    >>> one = {s.Sigma_q: sp.eye(1) * 2, s.mu_q: sp.Matrix([3]), s.mu_p: sp.Matrix([1])}
    >>> form.xreplace(one).doit()
    2
    """

    is_commutative = True
    is_real = True

    def __new__(cls, matrix: sp.Basic, vector: sp.Basic) -> QuadraticForm:
        return sp.Expr.__new__(cls, matrix, vector)

    def doit(self, **hints) -> sp.Expr:
        matrix, vector = (arg.doit(**hints) for arg in self.args)
        if _explicit(matrix) and _explicit(vector):
            return sp.expand((vector.T * sp.ImmutableMatrix(matrix) * vector)[0, 0])
        return self.func(matrix, vector)

    def _latex(self, printer) -> str:
        matrix, vector = self.args
        v = printer._print(vector)
        if not isinstance(vector, sp.MatrixSymbol):
            v = rf"\left({v}\right)"
        return rf"{v}^{{\top}} {printer._print(matrix)} {v}"


class SquaredNorm(sp.Expr):
    r"""``||v||^2`` of a column ``v``; explicit once ``v`` is.

    Examples
    --------
    >>> SquaredNorm(sp.Matrix([3, 4])).doit()
    25
    """

    is_commutative = True
    is_real = True

    def __new__(cls, vector: sp.Basic) -> SquaredNorm:
        return sp.Expr.__new__(cls, vector)

    def doit(self, **hints) -> sp.Expr:
        vector = self.args[0].doit(**hints)
        if _explicit(vector):
            return sp.expand(sum(entry**2 for entry in sp.ImmutableMatrix(vector)))
        return self.func(vector)

    def _latex(self, printer) -> str:
        return rf"\left\| {printer._print(self.args[0])} \right\|^{{2}}"


class MatrixEntry(sp.Expr):
    r"""Entry ``(i, j)`` of a matrix, **1-based** as in the mathematics (``M_{ij}``).

    Examples
    --------
    >>> i, j = sp.symbols("i j", integer=True, positive=True)
    >>> M = sp.MatrixSymbol("M", 2, 2)
    >>> MatrixEntry(M, i, j).xreplace({M: sp.ImmutableMatrix([[1, 2], [3, 4]]), i: 2, j: 1}).doit()
    3
    """

    is_commutative = True
    is_real = True

    def __new__(cls, matrix: sp.Basic, row: sp.Expr, column: sp.Expr) -> MatrixEntry:
        return sp.Expr.__new__(cls, matrix, sp.sympify(row), sp.sympify(column))

    def doit(self, **hints) -> sp.Expr:
        matrix = self.args[0].doit(**hints)
        row, column = self.args[1], self.args[2]
        if _explicit(matrix) and row.is_Integer and column.is_Integer:
            return sp.ImmutableMatrix(matrix)[int(row) - 1, int(column) - 1]
        return self.func(matrix, row, column)

    def _latex(self, printer) -> str:
        matrix, row, column = self.args
        body = printer._print(matrix)
        if not isinstance(matrix, sp.MatrixSymbol):
            body = rf"\left({body}\right)"
        return rf"{body}_{{{printer._print(row)}{printer._print(column)}}}"


class MatrixIntegral(sp.Expr):
    r"""``\int_{R^k} f(x) dx`` over a ``k x 1`` column ``x`` (a ``MatrixSymbol``).

    Turns into an ordinary ``k``-fold ``Integral`` once ``x`` is an explicit
    column of real symbols.

    Examples
    --------
    >>> s = full_symbols()
    >>> x2 = sp.ImmutableMatrix(sp.symbols("x_1 x_2", real=True))
    >>> f = sp.exp(-SquaredNorm(s.x) / 2)
    >>> MatrixIntegral(f, s.x).xreplace({s.x: x2}).doit(integrals=False).limits
    ((x_1, -oo, oo), (x_2, -oo, oo))
    """

    is_commutative = True

    def __new__(cls, function: sp.Expr, variable: sp.Basic) -> MatrixIntegral:
        return sp.Expr.__new__(cls, sp.sympify(function), variable)

    @property
    def function(self) -> sp.Expr:
        return self.args[0]

    @property
    def free_symbols(self) -> set[sp.Basic]:
        variable = self.args[1]
        bound = set(variable) if _explicit(variable) else {variable}
        return self.function.free_symbols - bound

    def doit(self, **hints) -> sp.Expr:
        variable = self.args[1]
        if not _explicit(variable):
            return self
        function = self.function.doit(**{**hints, "integrals": False})
        integral = sp.Integral(function, *[(c, -sp.oo, sp.oo) for c in variable])
        return integral.doit(**hints) if hints.get("integrals", True) else integral

    def _latex(self, printer) -> str:
        variable = self.args[1]
        dimension = variable.shape[0] if hasattr(variable, "shape") else "k"
        return (
            rf"\int_{{\mathbb{{R}}^{{{printer._print(dimension)}}}}} "
            rf"{printer._print(self.function)}\, d{printer._print(variable)}"
        )

    def _sympystr(self, printer) -> str:
        return f"MatrixIntegral({printer._print(self.function)}, {printer._print(self.args[1])})"
