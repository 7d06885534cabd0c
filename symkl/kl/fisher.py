"""KL versus an MSE on the parameters: the second-order expansion and the Fisher metric.

``KL(N(mu + dmu, (sigma + dsigma)^2) || N(mu, sigma^2))`` is expanded exactly
as ``dmu^2/(2 sigma^2) + dsigma^2/sigma^2 + R(dsigma/sigma)`` with a remainder
``R(t) = t - t^2/2 - log(1 + t) = O(t^3)``.  Its Hessian at zero is the Fisher
metric ``diag(1/sigma^2, 2/sigma^2)``.  An MSE on ``(mu, sigma)`` is this
metric only up to a sigma-dependent weighting, it changes with the
parameterisation (sigma, sigma^2, logvar) while KL does not, and the facts
include a pair of candidate posteriors that the two rank in opposite order.
"""

from __future__ import annotations

import time

import sympy as sp

from symkl.derivation import Derivation, Fact, Step
from symkl.kl import derive
from symkl.kl.univariate import kl_symbol

__all__ = ["derive_fisher", "mse_vs_kl_counterexample"]


def derive_fisher() -> Derivation:
    """Derive the local expansion of the univariate KL and compare it with parameter MSE.

    Examples
    --------
    >>> d = derive_fisher()
    >>> sigma = sp.Symbol("sigma", positive=True)
    >>> d.facts[1].rhs == sp.diag(1 / sigma**2, 2 / sigma**2)
    True
    """
    started = time.perf_counter()
    univariate = derive("univariate")
    mu_p, sigma_p, mu_q, sigma_q = univariate.parameters
    mu = sp.Symbol("mu", real=True)
    sigma = sp.Symbol("sigma", positive=True)
    dmu = sp.Symbol(r"\delta_{\mu}", real=True)
    # sigma + dsigma must stay positive: dsigma = sigma * t with t > -1; we
    # sample dsigma = sigma * (exp(s) - 1), so dsigma is real and sigma + dsigma > 0
    dsigma = sp.Symbol(r"\delta_{\sigma}", real=True)
    t = dsigma / sigma
    perturbation = {mu_p: mu + dmu, sigma_p: sigma + dsigma, mu_q: mu, sigma_q: sigma}
    shift = sp.Symbol("s", real=True)
    definitions = {
        mu_p: mu + dmu,
        sigma_p: sigma + dsigma,
        mu_q: mu,
        sigma_q: sigma,
        dsigma: sigma * (sp.exp(shift) - 1),
    }

    perturbed = univariate.closed_form.xreplace(perturbation)
    # the exact expansion: quadratic part + remainder, both computed from `perturbed`
    quadratic = (
        sp.series(
            perturbed.xreplace({dmu: sp.Symbol("e") * dmu, dsigma: sp.Symbol("e") * dsigma}),
            sp.Symbol("e"),
            0,
            3,
        )
        .removeO()
        .xreplace({sp.Symbol("e"): 1})
    )
    quadratic = sp.expand(quadratic)
    remainder_t = sp.Symbol("t", real=True)
    remainder = remainder_t - remainder_t**2 / 2 - sp.log(1 + remainder_t)
    R = sp.Function("R")
    shown = quadratic + R(t)
    definitions[R(t)] = remainder.xreplace({remainder_t: t})
    steps = [
        Step(
            "univariate-result",
            univariate.closed_form,
            "the univariate result (derivation 'univariate', proved)",
        ),
        Step(
            "perturb",
            perturbed,
            r"$p = \mathcal{N}(\mu + \delta_\mu, (\sigma + \delta_\sigma)^2)$, "
            r"$q = \mathcal{N}(\mu, \sigma^2)$",
        ),
        Step(
            "second-order-expansion",
            shown,
            r"exact: quadratic part plus $R(t) = t - t^2/2 - \log(1+t)$, "
            r"$t = \delta_\sigma/\sigma$",
            (r"$\sigma + \delta_\sigma > 0$",),
        ),
    ]
    return Derivation(
        name="fisher",
        title="KL or MSE on the parameters? The Fisher metric",
        lhs=kl_symbol(),
        steps=steps,
        definitions=definitions,
        parameters=(mu, sigma, dmu, dsigma),
        notes=[
            r"A VAE could compare $(\mu, \sigma)$ with an MSE. KL compares the distributions. "
            "Locally, KL is a quadratic form in the parameter change whose matrix is the Fisher "
            "information; an MSE uses the identity matrix instead.",
        ],
        facts=_facts(perturbed, quadratic, remainder, remainder_t, mu, sigma, dmu, dsigma,
                     univariate),
        derive_seconds=time.perf_counter() - started,
    )


def _hessian_at_zero(expr: sp.Expr, variables: tuple) -> sp.Matrix:
    """The matrix of second derivatives at ``variables = 0``, unevaluated (a checked claim)."""
    return sp.Matrix(2, 2, lambda a, b: sp.Subs(
        sp.Derivative(expr, variables[a], variables[b]), variables, (0, 0)))


def _facts(perturbed, quadratic, remainder, t, mu, sigma, dmu, dsigma, univariate):
    fisher = sp.hessian(perturbed, (dmu, dsigma)).xreplace({dmu: 0, dsigma: 0})
    fisher = fisher.applyfunc(sp.simplify)
    # the same metric in other parameterisations, by the chain rule on the distributions:
    # theta = (mu, v = sigma^2) and (mu, l = log sigma^2); KL itself is unchanged
    v, lv = sp.Symbol("v", positive=True), sp.Symbol("l", real=True)
    mu_p, sigma_p, mu_q, sigma_q = univariate.parameters
    dv, dl = sp.Symbol(r"\delta_v", real=True), sp.Symbol(r"\delta_l", real=True)
    in_var = univariate.closed_form.xreplace(
        {mu_p: mu + dmu, sigma_p: sp.sqrt(v + dv), mu_q: mu, sigma_q: sp.sqrt(v)}
    )
    in_logvar = univariate.closed_form.xreplace(
        {mu_p: mu + dmu, sigma_p: sp.exp((lv + dl) / 2), mu_q: mu, sigma_q: sp.exp(lv / 2)}
    )
    fisher_var = sp.hessian(in_var, (dmu, dv)).xreplace({dmu: 0, dv: 0}).applyfunc(sp.simplify)
    fisher_logvar = (
        sp.hessian(sp.expand_log(in_logvar), (dmu, dl))
        .xreplace({dmu: 0, dl: 0})
        .applyfunc(sp.simplify)
    )
    d = sp.Matrix([dmu, dsigma])
    weights = sp.Matrix([[fisher[0, 0] / 2, 0], [0, fisher[1, 1] / 2]])
    half_form = sp.expand((d.T * fisher * d)[0, 0] / 2)
    example = mse_vs_kl_counterexample()
    a, b = example["points"]
    order = (mu_p, sigma_p, mu_q, sigma_q)
    return [
        Fact(
            "the remainder is third order: $R(t)/t^3 \\to -1/3$ as $t \\to 0$",
            sp.Limit(remainder / t**3, t, 0),
            sp.limit(remainder / t**3, t, 0),
            label="remainder-third-order",
            origin="computed",
        ),
        Fact(
            "Fisher metric in (mu, sigma): the Hessian of KL at zero perturbation",
            _hessian_at_zero(perturbed, (dmu, dsigma)),
            fisher,
            label="fisher-metric",
            origin="computed",
            shown=sp.Symbol(r"G_{\mu,\sigma}"),
            use_definitions=False,
        ),
        Fact(
            "so, to second order, KL = 1/2 d^T G d, a sigma-weighted squared error",
            half_form,
            sp.expand(quadratic),
            label="second-order-form",
            origin="computed",
            shown=sp.Symbol(r"\frac{1}{2} d^T G d"),
            use_definitions=False,
        ),
        Fact(
            "an MSE on (mu, sigma) is d^T d (the identity matrix instead of G)",
            (d.T * sp.eye(2) * d)[0, 0],
            dmu**2 + dsigma**2,
            label="mse-identity",
            shown=sp.Symbol(r"\mathrm{MSE}"),
            use_definitions=False,
        ),
        Fact(
            "the weights MSE would need per coordinate: d^T W d = 1/2 d^T G d",
            (d.T * weights * d)[0, 0],
            half_form,
            label="mse-weights",
            origin="computed",
            shown=sp.Symbol("d^T W d"),
            use_definitions=False,
        ),
        Fact(
            "Fisher metric in (mu, sigma^2): MSE on the variance weights differently",
            _hessian_at_zero(in_var, (dmu, dv)),
            fisher_var,
            label="fisher-metric-var",
            origin="computed",
            shown=sp.Symbol(r"G_{\mu,v}"),
            use_definitions=False,
        ),
        Fact(
            "Fisher metric in (mu, logvar): yet another weighting; KL itself is the same number",
            _hessian_at_zero(in_logvar, (dmu, dl)),
            fisher_logvar,
            label="fisher-metric-logvar",
            origin="computed",
            shown=sp.Symbol(r"G_{\mu,\log\sigma^2}"),
            use_definitions=False,
        ),
        Fact(
            example["text"],
            sp.Matrix([
                (a[mu_p] - a[mu_q]) ** 2 + (a[sigma_p] - a[sigma_q]) ** 2,
                (b[mu_p] - b[mu_q]) ** 2 + (b[sigma_p] - b[sigma_q]) ** 2,
                sp.Subs(univariate.closed_form, order, tuple(a[n] for n in order)),
                sp.Subs(univariate.closed_form, order, tuple(b[n] for n in order)),
            ]).T,
            sp.Matrix([example["mse_a"], example["mse_b"], example["kl_a"], example["kl_b"]]).T,
            label="mse-vs-kl-ranking",
            origin="computed",
            shown=sp.Symbol(
                r"(\mathrm{MSE}_A, \mathrm{MSE}_B, \mathrm{KL}_A, \mathrm{KL}_B)"
            ),
            use_definitions=False,
        ),
    ]


def mse_vs_kl_counterexample() -> dict:
    """Two candidate posteriors that MSE on (mu, sigma) and KL rank in opposite order.

    Prior ``N(0, 1)``; A = ``N(0, 0.1^2)`` (collapsed variance), B = ``N(1, 1)``
    (shifted mean).  Values are exact (SymPy), from the derived closed form.

    Examples
    --------
    >>> example = mse_vs_kl_counterexample()
    >>> example["mse_a"] < example["mse_b"], example["kl_a"] > example["kl_b"]
    (True, True)
    """
    univariate = derive("univariate")
    mu_p, sigma_p, mu_q, sigma_q = univariate.parameters
    a = {mu_p: 0, sigma_p: sp.Rational(1, 10), mu_q: 0, sigma_q: 1}
    b = {mu_p: 1, sigma_p: 1, mu_q: 0, sigma_q: 1}

    def mse(point):
        return (point[mu_p] - point[mu_q]) ** 2 + (point[sigma_p] - point[sigma_q]) ** 2

    values = {
        "mse_a": sp.nsimplify(mse(a)),
        "mse_b": sp.nsimplify(mse(b)),
        "kl_a": sp.simplify(univariate.closed_form.xreplace(a)),
        "kl_b": sp.simplify(univariate.closed_form.xreplace(b)),
    }
    shown = {name: f"{float(value):.3g}" for name, value in values.items()}
    values["points"] = (a, b)
    values["text"] = (
        "prior N(0,1); A = N(0, 0.1^2), B = N(1, 1): MSE on (mu, sigma) prefers "
        f"{'A' if values['mse_a'] < values['mse_b'] else 'B'} "
        f"({shown['mse_a']} vs {shown['mse_b']}), KL prefers "
        f"{'A' if values['kl_a'] < values['kl_b'] else 'B'} "
        f"({shown['kl_a']} vs {shown['kl_b']})"
    )
    return values
