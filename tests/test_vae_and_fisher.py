"""The VAE prior (std-normal), the Fisher expansion, reverse and Jeffreys forms."""

from __future__ import annotations

import pytest
import sympy as sp

from symkl import derive
from symkl.derivation import instantiate
from symkl.kl.fisher import mse_vs_kl_counterexample
from symkl.kl.std_normal import vae_symbols
from symkl.model import diagonal_symbols

S = diagonal_symbols()
MU, SIGMA, LOGVAR = vae_symbols()


@pytest.fixture(scope="module")
def vae():
    return derive("std-normal")


@pytest.mark.parametrize("size", [1, 3])
def test_vae_forms_match_the_textbook(vae, size):
    i = S.i
    half = sp.Rational(1, 2)
    # typed here only: the two forms from the VAE literature
    sigma_form = half * sp.Sum(SIGMA[i] ** 2 + MU[i] ** 2 - 1 - sp.log(SIGMA[i] ** 2), (i, 1, S.k))
    logvar_form = -half * sp.Sum(1 + LOGVAR[i] - MU[i] ** 2 - sp.exp(LOGVAR[i]), (i, 1, S.k))
    half_sum = next(s.expr for s in vae.steps if s.label == "half-sum")
    assert sp.simplify(instantiate(half_sum - sigma_form, {S.k: size})) == 0
    assert sp.simplify(instantiate(vae.closed_form - logvar_form, {S.k: size})) == 0


def test_vae_named_terms(vae):
    assert set(vae.terms) == {"log_det_ratio", "trace_term", "mean_term", "dimension_term"}
    assert vae.terms["dimension_term"] == -S.k / 2


def test_training_dynamics_facts(vae):
    def fact(prefix):
        return next(f for f in vae.facts if f.text.startswith(prefix))

    mu, sigma = sp.Symbol("mu", real=True), sp.Symbol("sigma", positive=True)
    assert fact("gradient with respect to the mean").rhs == mu
    assert (
        sp.simplify(
            fact("gradient with respect to the standard deviation").rhs - (sigma - 1 / sigma)
        )
        == 0
    )
    assert "$(\\mu, \\sigma) = (0, 1)$" in fact("the stationary point found by solve").text
    assert fact("the stationary point found by solve").rhs == sp.Matrix([0, 0])
    hessian = fact("Hessian in (mu, sigma)").rhs
    assert all(
        ev.subs(sigma, s) > 0 for ev in hessian.eigenvals() for s in (sp.Rational(1, 100), 1, 100)
    )
    assert fact("Hessian at the optimum: KL is locally quadratic there").rhs == sp.diag(1, 2)
    # statements about limits are prose notes, not facts: the numeric side cannot check them
    assert any("grows without bound" in note for note in vae.notes)
    assert all(f.label for f in vae.facts)


def test_fisher_metric_and_expansion():
    fisher = derive("fisher")
    assert fisher.verify().proved
    sigma = sp.Symbol("sigma", positive=True)
    metric = next(f for f in fisher.facts if f.text.startswith("Fisher metric in (mu, sigma)"))
    assert metric.rhs == sp.diag(1 / sigma**2, 2 / sigma**2)
    remainder = next(f for f in fisher.facts if "third order" in f.text)
    assert remainder.rhs == -sp.Rational(1, 3)


def test_fisher_metric_depends_on_parameterisation_but_kl_does_not():
    fisher = derive("fisher")
    by_text = {f.text.split(":")[0]: f.rhs for f in fisher.facts}
    sigma = sp.Symbol("sigma", positive=True)
    g_var = by_text["Fisher metric in (mu, sigma^2)"]
    g_logvar = by_text["Fisher metric in (mu, logvar)"]
    v = sp.Symbol("v", positive=True)
    assert g_var[1, 1] == 1 / (2 * v**2)
    assert g_var.xreplace({v: sigma**2})[1, 1] == 1 / (2 * sigma**4)
    assert g_logvar[1, 1] == sp.Rational(1, 2)


def test_mse_and_kl_rank_the_candidates_in_opposite_order():
    example = mse_vs_kl_counterexample()
    assert example["mse_a"] < example["mse_b"]
    assert example["kl_a"] > example["kl_b"]
    assert example["kl_b"] == sp.Rational(1, 2)


def test_wrong_fisher_expansion_is_rejected():
    from symkl import check_step

    fisher = derive("fisher")
    sigma = sp.Symbol("sigma", positive=True)
    dsigma = sp.Symbol(r"\delta_{\sigma}", real=True)
    # the popular mistake: dsigma^2/(2 sigma^2) for the scale, as if it were a mean
    wrong = fisher.closed_form - dsigma**2 / (2 * sigma**2)
    result = check_step(fisher.steps[1].expr, wrong, definitions=fisher.definitions)
    assert not result.symbolic.ok and not result.numeric.ok


@pytest.mark.parametrize("name", ["univariate", "diagonal"])
def test_reverse_and_jeffreys(name):
    d = derive(name)
    reverse = d.reverse_closed_form
    assert reverse != d.closed_form
    assert d.reverse_closed_form.xreplace(d.swap) == d.closed_form
    symmetric = d.symmetric_closed_form
    assert not symmetric.has(sp.log)  # the log-ratios cancel
    # symmetric under the exchange
    assert sp.simplify(symmetric.xreplace(d.swap) - symmetric) == 0


def test_jeffreys_equals_sum_of_both_directions_univariate():
    d = derive("univariate")
    assert sp.simplify(d.symmetric_closed_form - d.closed_form - d.reverse_closed_form) == 0


def test_unknown_derivation_lists_what_exists():
    with pytest.raises(ValueError) as info:
        derive("full-rank")
    for name in ("univariate", "diagonal", "std-normal", "fisher"):
        assert repr(name) in str(info.value)
