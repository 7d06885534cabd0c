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

# the matrix nodes are the kernel's (its matrix lemmas are stated with them); re-exported here
from symkl.proof.matrices import (
    CholeskyFactor,
    MatrixEntry,
    MatrixIntegral,
    PositiveDefinite,
    QuadraticForm,
    SquaredNorm,
)

__all__ = [
    "CholeskyFactor",
    "DiagonalSymbols",
    "FullSymbols",
    "MatrixEntry",
    "MatrixIntegral",
    "PositiveDefinite",
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
        Sigma_p=PositiveDefinite("Sigma_p", k, k),
        Sigma_q=PositiveDefinite("Sigma_q", k, k),
        L_p=CholeskyFactor("L_p", k, k),
        L_q=CholeskyFactor("L_q", k, k),
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
