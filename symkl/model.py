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
    "UnivariateSymbols",
    "density_placeholders",
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
