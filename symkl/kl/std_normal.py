"""The VAE prior: KL(N(mu, diag sigma^2) || N(0, I)), its log-variance form, and its dynamics.

Starts from the proved diagonal result.  ``q = N(0, I)`` enters through the
definitions ``mu_q_i = 0``, ``sigma_q_i = 1``, and the log-variance
parameterisation through ``sigma_i = exp(logvar_i / 2)``; every rewrite is a
checked step.  The training-dynamics facts (gradients, stationary point,
Hessian, what each term does) are computed by SymPy from the closed form.
"""

from __future__ import annotations

import time

import sympy as sp

from symkl.derivation import Derivation, Fact, Step
from symkl.kl import derive
from symkl.kl.univariate import kl_symbol
from symkl.model import diagonal_symbols
from symkl.proof import Generic, InstanceOf

__all__ = ["derive_std_normal", "vae_symbols"]


def vae_symbols() -> tuple[sp.IndexedBase, sp.IndexedBase, sp.IndexedBase]:
    """``mu`` (real), ``sigma`` (positive) and ``logvar`` (real), indexed by ``i``."""
    return (
        sp.IndexedBase("mu", real=True),
        sp.IndexedBase("sigma", positive=True),
        sp.IndexedBase("logvar", real=True),
    )


def derive_std_normal() -> Derivation:
    """Derive the VAE KL term against the standard normal prior.

    Returns
    -------
    Derivation
        Closed form ``-1/2 Sum_i (1 + logvar_i - mu_i^2 - exp(logvar_i))``, the
        sigma form ``1/2 Sum_i (sigma_i^2 + mu_i^2 - 1 - log sigma_i^2)`` on
        the way, named terms, and facts on gradients and training dynamics.

    Examples
    --------
    >>> d = derive_std_normal()
    >>> d.terms["dimension_term"]
    -k/2
    """
    started = time.perf_counter()
    s = diagonal_symbols()
    k, i = s.k, s.i
    mu, sigma, logvar = vae_symbols()
    diagonal = derive("diagonal")
    general = Generic()  # every claim is about sums over 1..k: proved for symbolic k
    numeric = tuple({k: n} for n in range(2, 7))
    half = sp.Rational(1, 2)

    prior = {s.mu_q[i]: 0, s.sigma_q[i]: 1, s.mu_p[i]: mu[i], s.sigma_p[i]: sigma[i]}
    definitions = {
        s.mu_q[i]: sp.S.Zero,
        s.sigma_q[i]: sp.S.One,
        s.mu_p[i]: mu[i],
        s.sigma_p[i]: sp.exp(logvar[i] / 2),
        sigma[i]: sp.exp(logvar[i] / 2),
    }
    start = diagonal.closed_form
    at_prior = start.xreplace(prior)
    terms_sigma = {name: t.xreplace(prior) for name, t in diagonal.terms.items()}

    # 1/2 Sum (sigma^2 + mu^2 - 1 - log sigma^2): the per-coordinate named terms
    # (trace, mean, dimension, log-det) times two, kept unevaluated for display
    summand = at_prior.function
    twice = sp.expand(2 * summand)
    log_part = sp.Add(*[t for t in sp.Add.make_args(twice) if t.has(sp.log)])
    rest = [t for t in sp.Add.make_args(twice) if not t.has(sp.log)]
    log_sigma_sq = -sp.log(sigma[i] ** 2, evaluate=False)
    assert sp.expand(sp.expand_log(log_part - log_sigma_sq)) == 0  # built from the derived part
    half_summand = sp.Add(*rest, log_sigma_sq, evaluate=False)
    half_sum = half * sp.Sum(half_summand, (i, 1, k))

    logvar_summand = sp.expand(
        sp.expand_log(-half_summand.xreplace({sigma[i]: sp.exp(logvar[i] / 2)}))
    )
    logvar_form = -half * sp.Sum(logvar_summand, (i, 1, k))

    terms = {}
    for name, term in terms_sigma.items():
        value = term.xreplace({sigma[i]: sp.exp(logvar[i] / 2)})
        terms[name] = (
            sp.Sum(sp.expand_log(value.function), *value.limits)
            if isinstance(value, sp.Sum)
            else value
        )

    steps = [
        Step("diagonal-result", start, "the diagonal result (derivation 'diagonal', proved)"),
        Step(
            "standard-normal-prior",
            at_prior,
            r"$q = \mathcal{N}(0, I)$: $\mu_{q,i} = 0$, $\sigma_{q,i} = 1$; write "
            r"$\mu_i, \sigma_i$ for $p$",
            prove=general,
            instances=numeric,
        ),
        Step(
            "half-sum",
            half_sum,
            "collect over the common factor 1/2",
            prove=general,
            instances=numeric,
        ),
        Step(
            "log-variance",
            logvar_form,
            r"$\sigma_i^2 = e^{\mathrm{logvar}_i}$: the form used in VAE code",
            (r"$\mathrm{logvar}_i$ real",),
            prove=general,
            instances=numeric,
        ),
    ]
    facts, notes = training_dynamics(half * half_summand, mu, sigma, i)
    # the starting point is derivation 'diagonal''s theorem, not an assertion:
    # this claim carries diagonal's scope and lemmas into this verdict
    diagonal_definition = next(c for c in diagonal.claims() if c.origin == "step").lhs
    facts.insert(0, Fact(
        "the starting point: derivation 'diagonal' proves the KL integral equals its "
        "closed form",
        diagonal_definition,
        start,
        label="diagonal-theorem",
        prove=InstanceOf(diagonal.deferred_theorem(), {}, name=diagonal.name),
        instances=tuple({k: n} for n in (2, 3, 4, 5, 6)),
        origin="computed",
        use_definitions=False,
    ))
    return Derivation(
        name="std-normal",
        title=r"The VAE prior: KL to $\mathcal{N}(0, I)$",
        lhs=kl_symbol(),
        dimension=k,
        steps=steps,
        definitions=definitions,
        terms=terms,
        parameters=(mu, logvar),
        notes=[
            r"$p = \mathcal{N}(\mu, \operatorname{diag} \sigma^2)$ with "
            r"$\sigma_i = e^{\mathrm{logvar}_i / 2}$, and $q = \mathcal{N}(0, I)$.",
            *notes,
        ],
        terms_prove=general,
        terms_instances=numeric,
        facts=facts,
        derive_seconds=time.perf_counter() - started,
    )


def _at(expr: sp.Expr, variables: tuple, point: tuple) -> sp.Expr:
    """``expr`` evaluated at ``variables = point`` as an unevaluated ``Subs`` (checked later)."""
    return sp.Subs(expr, variables, point)


def training_dynamics(per_coordinate, mu, sigma, i) -> tuple[list[Fact], list[str]]:
    """Gradients, stationary point and Hessians, computed by SymPy and checked as claims.

    Returns the facts and the prose notes (statements about limits, which the
    numeric side cannot check, are notes, not facts).
    """
    m, s = sp.Symbol("mu", real=True), sp.Symbol("sigma", positive=True)
    lv = sp.Symbol("logvar", real=True)
    f = per_coordinate.xreplace({mu[i]: m, sigma[i]: s})
    f_logvar = sp.expand_log(f.xreplace({s: sp.exp(lv / 2)}))
    grad_mu, grad_sigma = sp.diff(f, m), sp.simplify(sp.diff(f, s))
    grad_logvar = sp.simplify(sp.diff(f_logvar, lv))
    stationary = sp.solve([grad_mu, grad_sigma], [m, s], dict=True)
    point = (stationary[0][m], stationary[0][s])
    hessian = sp.hessian(f, (m, s))
    at_optimum = hessian.xreplace(stationary[0])
    second = sp.Matrix(2, 2, lambda a, b: sp.Derivative(f, (m, s)[a], (m, s)[b]))
    trace_part = s**2 / 2
    log_part = -sp.log(s)
    mean_part = m**2 / 2
    assert sp.expand(sp.expand_log(trace_part + log_part + mean_part - sp.Rational(1, 2) - f)) == 0
    entries = ", ".join(sp.sstr(hessian[n, n]) for n in range(2))
    facts = [
        Fact("gradient with respect to the mean", sp.Derivative(f, m), grad_mu,
             label="gradient-mu", origin="computed"),
        Fact("gradient with respect to the standard deviation", sp.Derivative(f, s), grad_sigma,
             label="gradient-sigma", origin="computed"),
        Fact(
            "gradient with respect to the log-variance (VAE code)",
            sp.Derivative(f_logvar, lv),
            grad_logvar,
            label="gradient-logvar",
            origin="computed",
        ),
        Fact(
            rf"the stationary point found by solve, $(\mu, \sigma) = ({point[0]}, {point[1]})$ "
            "(the only solution SymPy returns): both gradients vanish there",
            sp.Matrix([_at(sp.Derivative(f, m), (m, s), point),
                       _at(sp.Derivative(f, s), (m, s), point)]),
            sp.Matrix([0, 0]),
            label="stationary-point",
            origin="computed",
        ),
        Fact(
            f"Hessian in (mu, sigma): diagonal with entries {entries}, positive for every "
            "sigma > 0, so positive definite",
            second,
            hessian,
            label="hessian",
            origin="computed",
            shown=sp.Symbol("H"),
        ),
        Fact(
            "Hessian at the optimum: KL is locally quadratic there",
            second.applyfunc(lambda e: _at(e, (m, s), point)),
            at_optimum,
            label="hessian-at-optimum",
            origin="computed",
            shown=sp.Symbol("H_*"),
        ),
        Fact(
            "mean term pulls the mean to zero: its gradient is the mean itself",
            sp.Derivative(mean_part, m),
            sp.diff(mean_part, m),
            label="mean-term-gradient",
            origin="computed",
        ),
    ]
    notes = [
        r"Each coordinate's KL is $\sigma^2/2 - \log\sigma + \mu^2/2 - 1/2$: the trace term "
        r"$\sigma^2/2$ grows without bound as $\sigma \to \infty$ (it penalises large "
        r"variance) and the log-det term $-\log\sigma$ grows without bound as "
        r"$\sigma \to 0^+$ (it penalises collapse).",
    ]
    return facts, notes
