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

__all__ = [
    "DiagonalSymbols",
    "UnivariateSymbols",
    "VectorIntegral",
    "density_placeholders",
    "diagonal_symbols",
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


class VectorIntegral(sp.Expr):
    r"""``\int_{R^k} f(x) dx`` over ``x = (x[1], ..., x[k])`` for a symbolic dimension ``k``.

    SymPy's ``Integral`` needs its variables spelled out; this keeps ``k``
    symbolic for display and turns into an ordinary ``k``-fold ``Integral`` over
    real symbols ``x_1 .. x_k`` when ``k`` is a number (``doit``).

    Examples
    --------
    >>> s = diagonal_symbols()
    >>> f = sp.Product(normal_pdf(s.x[s.i], 0, 1), (s.i, 1, s.k))
    >>> VectorIntegral(f, s.x, s.k).xreplace({s.k: 2}).doit(integrals=False).limits
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
