"""The lemma base (symkl.proof.lemmas): instances accepted, wrong variants refused."""

from __future__ import annotations

import dataclasses

import pytest
import sympy as sp

from symkl.proof import LEMMAS, ByLemma, ByLemmas, Claim, check
from symkl.proof.lemmas import Lemma, VectorIntegral, lemma_record
from symkl.proof.provers import Prover, SymbolicResult, run_prover
from symkl.proof.sums import FiniteSums

k = sp.Symbol("k", integer=True, positive=True)
j = sp.Symbol("j", integer=True, positive=True)
i = sp.Symbol("i", integer=True, positive=True)
t = sp.Symbol("t", real=True)
x = sp.IndexedBase("x", real=True)
mu, sigma = sp.IndexedBase("mu", real=True), sp.IndexedBase("sigma", positive=True)
nu, tau = sp.IndexedBase("nu", real=True), sp.IndexedBase("tau", positive=True)
_p, _f = (s for s in LEMMAS["L1"].schematic if isinstance(s, sp.core.function.UndefinedFunction))


def gauss(at, m, s):
    return sp.exp(-((at - m) ** 2) / (2 * s**2)) / (sp.sqrt(2 * sp.pi) * s)


def density(idx, at):
    return gauss(at, mu[idx], sigma[idx])


def log_ratio(idx, at):
    return sp.log(gauss(at, mu[idx], sigma[idx]) / gauss(at, nu[idx], tau[idx]))


def substitution(p=None, f=None, extra=None):
    sub = {
        _p: sp.Lambda((j, t), density(j, t) if p is None else p(j, t)),
        _f: sp.Lambda((j, t), log_ratio(j, t) if f is None else f(j, t)),
    }
    sub.update(extra or {})
    return sub


def product(p=density):
    return sp.Product(p(j, x[j]), (j, 1, k))


def l1_sides(p=density, f=log_ratio):
    lhs = VectorIntegral(product(p) * sp.Sum(f(i, x[i]), (i, 1, k)), x, k)
    rhs = sp.Sum(VectorIntegral(product(p) * f(i, x[i]), x, k), (i, 1, k))
    return lhs, rhs


def l2_sides(p=density, f=log_ratio):
    lhs = sp.Sum(VectorIntegral(product(p) * f(i, x[i]), x, k), (i, 1, k))
    rhs = sp.Sum(sp.Integral(p(i, t) * f(i, t), (t, -sp.oo, sp.oo)), (i, 1, k))
    return lhs, rhs


SIDES = {"L1": l1_sides, "L2": l2_sides}


@pytest.mark.parametrize("name", ["L1", "L2"])
def test_true_instance_accepted_and_scope_names_the_lemma(name):
    lhs, rhs = SIDES[name]()
    result = ByLemma(name, substitution()).prove(lhs, rhs)
    assert result.ok, result.detail
    assert result.lemmas == (name,) and result.sizes is None
    # the reversed orientation is the same equality
    assert ByLemma(name, substitution()).prove(rhs, lhs).ok


def test_verdict_reads_for_all_k_from_lemmas():
    lhs, rhs = l2_sides()
    verdict = check(Claim("marginal", lhs, rhs, prover=ByLemma("L2", substitution()),
                          instances=({k: 2},)))
    assert verdict.ok, (verdict.symbolic, verdict.numeric)
    assert verdict.scope.startswith("for all k from lemmas L2")
    assert verdict.as_dict()["symbolic"]["lemmas"] == ["L2"]


# wrong variants: (description, sides, substitution); each must be refused
def _two_coordinates(idx, at):
    return log_ratio(idx, at) + x[idx + 1]


WRONG = {
    "missing density factor": lambda L: (
        (VectorIntegral(sp.Sum(log_ratio(i, x[i]), (i, 1, k)), x, k), SIDES[L]()[1])
        if L == "L1"
        else (sp.Sum(VectorIntegral(log_ratio(i, x[i]), x, k), (i, 1, k)), SIDES[L]()[1]),
        substitution(),
    ),
    "wrong coefficient": lambda L: (
        (SIDES[L]()[0], 2 * SIDES[L]()[1]), substitution()
    ),
    "sum to k - 1": lambda L: (
        (SIDES[L]()[0], SIDES[L]()[1].func(SIDES[L]()[1].function, (i, 1, k - 1))),
        substitution(),
    ),
    "summand on two coordinates (claim)": lambda L: (
        SIDES[L](f=_two_coordinates), substitution()
    ),
    "summand on two coordinates (substitution)": lambda L: (
        SIDES[L](f=_two_coordinates), substitution(f=_two_coordinates)
    ),
    "density on another coordinate": lambda L: (
        SIDES[L](p=lambda a, at: density(a, at) * sp.exp(-x[1] ** 2)),
        substitution(p=lambda a, at: density(a, at) * sp.exp(-x[1] ** 2)),
    ),
    "non-normalised density": lambda L: (
        SIDES[L](p=lambda a, at: 2 * density(a, at)),
        substitution(p=lambda a, at: 2 * density(a, at)),
    ),
    "unnormalised Gaussian weight": lambda L: (
        SIDES[L](p=lambda a, at: sp.exp(-(at**2))),
        substitution(p=lambda a, at: sp.exp(-(at**2))),
    ),
    "signed 'density'": lambda L: (
        SIDES[L](p=lambda a, at: -density(a, at)),
        substitution(p=lambda a, at: -density(a, at)),
    ),
    "non-integrable summand": lambda L: (
        SIDES[L](f=lambda a, at: sp.exp(at**2)),
        substitution(f=lambda a, at: sp.exp(at**2)),
    ),
    "summand with a pole": lambda L: (
        SIDES[L](f=lambda a, at: 1 / at),
        substitution(f=lambda a, at: 1 / at),
    ),
    "dimension not a positive integer": lambda L: (
        tuple(s.xreplace({k: sp.Symbol("r", real=True)}) for s in SIDES[L]()),
        substitution(extra={LEMMAS[L].k: sp.Symbol("r", real=True)}),
    ),
    "other lemma's instance": lambda L: (
        SIDES["L2" if L == "L1" else "L1"](), substitution()
    ),
}


@pytest.mark.parametrize("variant", sorted(WRONG))
@pytest.mark.parametrize("name", ["L1", "L2"])
def test_wrong_variant_refused(name, variant):
    (lhs, rhs), sub = WRONG[variant](name)
    result = ByLemma(name, sub).prove(lhs, rhs)
    assert not result.ok, f"{name} accepted the wrong variant {variant!r}"


def test_forged_lemmas_refused():
    real = LEMMAS["L2"]
    edited = dataclasses.replace(real, rhs=2 * real.rhs)
    with pytest.raises(TypeError, match="not one of"):
        ByLemma(edited, substitution())
    made_here = Lemma("L2", real.title, real.lhs, 2 * real.rhs, real.k, real.schematic,
                      real.conditions, real.example)
    with pytest.raises(TypeError):
        ByLemma(made_here, substitution())
    with pytest.raises(ValueError, match="unknown lemma"):
        ByLemma("L99", substitution())
    # a prover replaced after construction still cannot skip the side conditions
    prover = ByLemma("L2", substitution(p=lambda a, at: 2 * density(a, at)))
    lhs, rhs = l2_sides(p=lambda a, at: 2 * density(a, at))
    assert not run_prover(prover, lhs, rhs).ok


def test_a_prover_subclass_made_outside_the_kernel_is_refused():
    class Yes(ByLemma):
        def prove(self, lhs, rhs):
            return SymbolicResult(True, "yes", lemmas=("L2",))

    assert not run_prover(Yes("L2", substitution()), sp.S.One, sp.S(2)).ok
    assert issubclass(Yes, Prover)


def test_images_are_validated():
    lhs, rhs = l2_sides()
    bad = [
        {_p: "exp(-t**2)"},  # text is never evaluated
        {_p: density(j, t)},  # not a Lambda
        {_p: sp.Lambda((t,), density(1, t))},  # wrong arity
    ]
    for sub in bad:
        result = ByLemma("L2", {**substitution(), **sub}).prove(lhs, rhs)
        assert not result.ok
    bound = next(iter(LEMMAS["L2"].lhs.atoms(sp.Sum))).limits[0][0]  # capture attempt
    captured = substitution(f=lambda a, at: log_ratio(a, at) + bound)
    assert not ByLemma("L2", captured).prove(lhs, rhs).ok


def test_by_lemmas_rewrites_then_proves_and_refuses_absent_instances():
    lhs, _ = l1_sides()
    _, marginal = l2_sides()
    prover = ByLemmas([("L1", substitution()), ("L2", substitution())], then=FiniteSums())
    result = prover.prove(lhs, marginal)
    assert result.ok and result.lemmas == ("L1", "L2"), result.detail
    assert not prover.prove(lhs, marginal + 1).ok  # what is left is false
    absent = ByLemmas([("L2", substitution())])
    assert not absent.prove(lhs, marginal).ok  # L2's left side is not in the claim


def test_finite_sums_rule_and_its_wrong_variants():
    ratio = product() / sp.Product(gauss(x[j], nu[j], tau[j]), (j, 1, k))
    lhs = VectorIntegral(product() * sp.log(ratio), x, k)
    good = VectorIntegral(product() * sp.Sum(log_ratio(i, x[i]), (i, 1, k)), x, k)
    assert FiniteSums().prove(lhs, good).ok
    wrong = [
        VectorIntegral(product() * sp.Sum(log_ratio(i, x[i]), (i, 1, k - 1)), x, k),
        VectorIntegral(product() * 2 * sp.Sum(log_ratio(i, x[i]), (i, 1, k)), x, k),
        VectorIntegral(product() * sp.Sum(log_ratio(i, x[i + 1]), (i, 1, k)), x, k),
        VectorIntegral(sp.Sum(log_ratio(i, x[i]), (i, 1, k)), x, k),
    ]
    for claim in wrong:
        assert not FiniteSums().prove(lhs, claim).ok, claim
    real = sp.IndexedBase("b", real=True)  # factors not known positive
    assert not FiniteSums().prove(sp.log(sp.Product(real[j], (j, 1, k))),
                                  sp.Sum(sp.log(real[j]), (j, 1, k))).ok
    # an infinite product is not split
    a = sp.IndexedBase("a", positive=True)
    assert not FiniteSums().prove(sp.log(sp.Product(a[j], (j, 1, sp.oo))),
                                  sp.Sum(sp.log(a[j]), (j, 1, sp.oo))).ok


@pytest.mark.parametrize("name", ["L1", "L2"])
def test_lemma_record_states_the_lemma(name):
    record = lemma_record(name, evidence=False)
    assert record["name"] == name and record["side_conditions"]
    assert r"\sum_{i=1}^{k}" in record["statement"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["L1", "L2"])
def test_lemma_evidence_passes(name):
    from symkl.proof import lemma_evidence

    verdict = lemma_evidence(name)
    assert verdict.ok, (verdict.symbolic, verdict.numeric)
    assert verdict.symbolic.sizes == (1, 2, 3, 4, 5, 6)


def test_std_normal_names_the_lemmas_its_diagonal_start_rests_on():
    """std-normal starts from diagonal's theorem: its verdict carries L1, L2."""
    from symkl.kl import derive

    report = derive("std-normal").verify()
    assert report.proved
    assert report.scope == "for all k from lemmas L1, L2"
    link = report.check("diagonal-theorem")
    assert link.lemmas == ("L1", "L2") and link.ok
