"""KL between diagonal Gaussians on R^k, derived from the k-dimensional integral.

The chain: the product density; the log of a product as a sum; linearity
(the sum leaves the integral); Fubini (every other coordinate's density
integrates to one); the univariate result, proved in
:mod:`symkl.kl.univariate`, applied to each coordinate.  The dimension ``k``
is symbolic.  Where SymPy cannot prove a step for general ``k``, the step is
proved symbolically at ``k = 1..4`` and checked numerically by
``k``-dimensional quadrature at ``k = 2`` and ``3``; the report and the
rendering say which.
"""

from __future__ import annotations

import time

import sympy as sp

from symkl.derivation import (
    Derivation,
    Step,
    proved_for_general_k_or_at,
    reverse_and_symmetric_facts,
)
from symkl.kl import derive
from symkl.kl.univariate import kl_symbol
from symkl.model import VectorIntegral, diagonal_symbols, normal_pdf
from symkl.proof import InstanceOf

__all__ = ["derive_diagonal", "direct_integration"]

#: sizes at which steps about symbolic k are proved, and checked numerically
PROVED_AT = (1, 2, 3, 4)
NUMERIC_AT = ({"k": 2}, {"k": 3})


def _by_univariate_lemma(s, univariate) -> InstanceOf:
    """Prover: each summand is the proved univariate theorem with indexed parameters."""
    u = univariate.parameters
    mapping = {u[0]: s.mu_p[s.i], u[1]: s.sigma_p[s.i], u[2]: s.mu_q[s.i], u[3]: s.sigma_q[s.i]}
    return InstanceOf(univariate.deferred_theorem(), mapping, over=(s.i, 1, s.k),
                      name=univariate.name)


def derive_diagonal() -> Derivation:
    """Derive KL(N(mu_p, diag sigma_p^2) || N(mu_q, diag sigma_q^2)) on R^k, k symbolic.

    Returns
    -------
    Derivation
        Closed form ``Sum_i [log(sigma_q_i/sigma_p_i)
        + (sigma_p_i^2 + (mu_p_i - mu_q_i)^2)/(2 sigma_q_i^2) - 1/2]`` with the
        named terms as sums (``dimension_term`` is ``-k/2``).

    Examples
    --------
    >>> d = derive_diagonal()
    >>> d.terms["dimension_term"]
    -k/2
    """
    started = time.perf_counter()
    s = diagonal_symbols()
    k, i, x, t = s.k, s.i, s.x, s.t
    j = sp.Symbol("j", integer=True, positive=True)
    univariate = derive("univariate")

    def p_i(at, idx):
        return normal_pdf(at, s.mu_p[idx], s.sigma_p[idx])

    def q_i(at, idx):
        return normal_pdf(at, s.mu_q[idx], s.sigma_q[idx])

    vector = sp.Symbol(r"\mathbf{x}")
    p, q = sp.Function("p")(vector), sp.Function("q")(vector)
    p_product = sp.Product(p_i(x[j], j), (j, 1, k))
    q_product = sp.Product(q_i(x[j], j), (j, 1, k))
    numeric = tuple({k: n["k"]} for n in NUMERIC_AT)
    general_or_at = proved_for_general_k_or_at(k, PROVED_AT)

    definition = VectorIntegral(p * sp.log(p / q), x, k)
    product = VectorIntegral(p_product * sp.log(p_product / q_product), x, k)
    log_sum = VectorIntegral(
        p_product * sp.Sum(sp.log(p_i(x[i], i) / q_i(x[i], i)), (i, 1, k)), x, k
    )
    sum_out = sp.Sum(
        VectorIntegral(p_product * sp.log(p_i(x[i], i) / q_i(x[i], i)), x, k), (i, 1, k)
    )
    marginal = sp.Sum(
        sp.Integral(p_i(t, i) * sp.log(p_i(t, i) / q_i(t, i)), (t, -sp.oo, sp.oo)), (i, 1, k)
    )

    u = univariate.parameters
    mapping = {u[0]: s.mu_p[i], u[1]: s.sigma_p[i], u[2]: s.mu_q[i], u[3]: s.sigma_q[i]}
    closed = sp.Sum(univariate.closed_form.xreplace(mapping), (i, 1, k))
    terms = {
        name: sp.Sum(term.xreplace(mapping), (i, 1, k)).doit()
        for name, term in univariate.terms.items()
    }

    steps = [
        Step(
            "definition",
            definition,
            "definition of the Kullback-Leibler divergence on $\\mathbb{R}^k$",
            ("$p$ and $q$ are densities on $\\mathbb{R}^k$",),
        ),
        Step(
            "product-density",
            product,
            "a diagonal Gaussian is the product of its coordinate densities",
            (r"$\sigma_{p,i}, \sigma_{q,i} > 0$",),
            prove=general_or_at,
            instances=numeric,
        ),
        Step(
            "log-of-product",
            log_sum,
            "the log of a product is the sum of the logs",
            ("every factor is positive",),
            prove=general_or_at,
            instances=numeric,
        ),
        Step(
            "sum-out-of-integral",
            sum_out,
            "linearity of the integral (a finite sum)",
            prove=general_or_at,
            instances=numeric,
        ),
        Step(
            "marginalise",
            marginal,
            "Fubini: every other coordinate's density integrates to one",
            ("each integrand is absolutely integrable",),
            prove=general_or_at,
            instances=numeric,
        ),
        Step(
            "univariate-per-coordinate",
            closed,
            "the univariate result, proved above, for each coordinate",
            prove=_by_univariate_lemma(s, univariate),
            instances=numeric,
        ),
    ]
    swap = {s.mu_p: s.mu_q, s.sigma_p: s.sigma_q, s.mu_q: s.mu_p, s.sigma_q: s.sigma_p}
    derivation = Derivation(
        name="diagonal",
        title=r"KL divergence between diagonal Gaussians on $\mathbb{R}^k$",
        lhs=kl_symbol(),
        dimension=s.k,
        steps=steps,
        definitions={p: p_product, q: q_product},
        terms=terms,
        parameters=(s.mu_p, s.sigma_p, s.mu_q, s.sigma_q),
        notes=[
            r"$p = \mathcal{N}(\mu_p, \operatorname{diag}\sigma_p^2)$ and "
            r"$q = \mathcal{N}(\mu_q, \operatorname{diag}\sigma_q^2)$ on $\mathbb{R}^k$, "
            "$k$ symbolic.",
            "Steps that SymPy cannot prove for general $k$ are proved symbolically at "
            "$k = 1, 2, 3, 4$ only and checked numerically by $k$-dimensional Gauss-Hermite "
            "quadrature at $k = 2$ and $3$; each step says how it was checked, and the "
            "verdict says which claims hold only at those sizes.",
        ],
        swap=swap,
        terms_prove=general_or_at,
        terms_instances=numeric,
    )
    facts = reverse_and_symmetric_facts(
        derivation,
        reverse_lhs=VectorIntegral(q * sp.log(q / p), x, k),
        reverse_prove=InstanceOf(derivation.deferred_theorem(), swap, sizes=PROVED_AT,
                                 name=derivation.name),
        prove=general_or_at,
        instances=numeric,
    )
    return derivation.replace(facts=facts, derive_seconds=time.perf_counter() - started)


def direct_integration(size: int) -> tuple[sp.Expr, sp.Expr]:
    """Integrate the definition over R^size with SymPy, separating the integral first.

    ``log(p/q)`` is rewritten as its quadratic in ``x_1..x_size`` (SymPy's
    ``expand_log``), the integrand is expanded into monomials times the
    product density, and each monomial integral factorises into 1-D Gaussian
    moments that SymPy evaluates.  A literal ``size``-fold ``integrate`` of
    ``p*log(p/q)`` took 171 s at size 2; this takes well under a second.

    Returns ``(direct, closed)``: the direct result and the derived closed
    form at that size, to be compared.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"direct_integration: size must be a positive integer, got {size!r}")
    s = diagonal_symbols()
    d = derive_diagonal()
    coordinates = [sp.Symbol(f"x_{n}", real=True) for n in range(1, size + 1)]
    p_factors = [normal_pdf(c, s.mu_p[n], s.sigma_p[n]) for n, c in enumerate(coordinates, 1)]
    q_factors = [normal_pdf(c, s.mu_q[n], s.sigma_q[n]) for n, c in enumerate(coordinates, 1)]
    log_ratio = sp.expand(sp.expand_log(sp.log(sp.Mul(*p_factors) / sp.Mul(*q_factors))))
    total = sp.S.Zero
    for monomial in sp.Add.make_args(log_ratio):
        coefficient, rest = monomial.as_independent(*coordinates)
        value = coefficient
        for c, density in zip(coordinates, p_factors, strict=True):
            power = sp.degree(rest, c) if rest.has(c) else 0
            value *= sp.integrate(c**power * density, (c, -sp.oo, sp.oo))
        total += value
    closed = d.closed_form.xreplace({s.k: size}).doit()
    return sp.simplify(total), closed
