"""The kernel's rules, each fed a violation: text, Floats, settings, bound variables,
immutability, content-keyed verdicts, scope, sampling."""

from __future__ import annotations

import dataclasses
import random

import pytest
import sympy as sp

from symkl import check_step, derive
from symkl.derivation import Fact
from symkl.proof import AtSizes, Claim, admit, check, format_sizes
from symkl.proof.sampling import SamplingError, sample_value

x = sp.Symbol("x", real=True)
s = sp.Symbol("s", positive=True)


@pytest.mark.parametrize("side", ["before", "after"])
def test_strings_are_refused_and_never_evaluated(side, tmp_path):
    marker = tmp_path / "ran"
    text = f"__import__('pathlib').Path({str(marker)!r}).write_text('x') or 1"
    args = (text, sp.Integer(1)) if side == "before" else (sp.Integer(1), text)
    with pytest.raises(TypeError, match="text is never evaluated"):
        check_step(*args)
    assert not marker.exists()


def test_strings_in_definitions_are_refused():
    with pytest.raises(TypeError, match="string"):
        check_step(x, x, definitions={x: "1"})


@pytest.mark.parametrize("value", [sp.Float(sp.Rational(1, 3), 30) * x, 0.5 * x, sp.Float(2)])
def test_floats_are_refused_with_a_clear_error(value):
    with pytest.raises(ValueError, match=r"Float|float"):
        check_step(x / 3, value)


@pytest.mark.parametrize(
    ("setting", "value"),
    [("points", 0), ("points", 2), ("min_digits", 0), ("min_digits", 14), ("dps", 20),
     ("dps", 25), ("points", 2.5), ("seed", "0"), ("dps", True)],
)
def test_settings_are_validated_and_the_error_names_them(setting, value):
    with pytest.raises(ValueError, match=setting):
        check_step(x, x, **{setting: value})


def test_bound_variables_are_renamed_with_assumptions_from_their_limits():
    positive_x = sp.Symbol("x", positive=True)
    renamed = admit(sp.Integral(x**2, (x, 0, 1)))
    (variable,) = renamed.variables
    assert variable.is_positive and variable != x
    with pytest.raises(ValueError, match="declared positive"):
        admit(sp.Integral(sp.Abs(positive_x), (positive_x, -1, 1)))
    # as a step it is refused, not raised, and neither side passes
    result = check_step(sp.Integral(sp.Abs(positive_x), (positive_x, -1, 1)), 0)
    assert not result.symbolic.ok and not result.numeric.ok
    assert "declared positive" in result.symbolic.detail


def test_alpha_equivalent_claims_are_identical_after_admission():
    y = sp.Symbol("y", real=True)
    assert admit(sp.Integral(sp.exp(-(x**2)), (x, 0, 1))) == admit(
        sp.Integral(sp.exp(-(y**2)), (y, 0, 1)))


def test_sum_whose_index_shadows_a_free_symbol_does_not_raise():
    result = check_step(sp.Sum(x, (x, 1, 3)) + x, 6 + x)
    assert result.ok, result.summary()


def test_a_theorem_edited_by_dataclasses_replace_is_not_genuine():
    from symkl.proof import InstanceOf, is_genuine

    theorem = derive("univariate").theorem()
    assert is_genuine(theorem)
    forged = dataclasses.replace(theorem, rhs=theorem.rhs + 1)  # keeps the private token
    assert not is_genuine(forged)
    with pytest.raises(TypeError, match="chain"):
        InstanceOf(forged, {})
    prover = InstanceOf(theorem, {})
    prover.theorem = forged  # swapped after construction: re-checked when proving
    result = check_step(forged.lhs, forged.rhs, prove=prover)
    assert not result.symbolic.ok and not result.ok


def test_building_a_derivation_proves_nothing():
    """Proof belongs to verify: derive() builds claims, deferred theorems wait."""
    from symkl.kl.diagonal import derive_diagonal
    from symkl.proof import kernel

    kernel._VERDICTS.clear()
    derivation = derive_diagonal()
    assert kernel._VERDICTS == {}
    reverse = next(c for c in derivation.claims() if c.label == "reverse")
    assert reverse.sizes is None  # declared for every k by the deferred instance


def test_a_deferred_theorem_is_checked_when_the_claim_is():
    from symkl.proof import InstanceOf

    univariate = derive("univariate")
    theorem = univariate.theorem()
    with pytest.raises(TypeError, match="name="):
        InstanceOf(lambda: theorem, {})
    with pytest.raises(TypeError, match="callable"):
        InstanceOf("univariate", {})
    good = InstanceOf(univariate.deferred_theorem(), {}, name="univariate")
    assert check_step(theorem.lhs, theorem.rhs, prove=good).symbolic.ok
    forged = dataclasses.replace(theorem, rhs=theorem.rhs + 1)
    for prover, why in [
        (InstanceOf(lambda: forged, {}, name="forged"), "not made by chain"),
        (InstanceOf(lambda: None, {}, name="failed"), "proof failed"),
        (InstanceOf(lambda: 1 / 0, {}, name="crash"), "ZeroDivisionError"),
        (InstanceOf(univariate.deferred_theorem(), {}, sizes=(1, 2), name="u"),
         "declared at k = 1, 2"),
        (InstanceOf(univariate.deferred_theorem(upto="no-such-step"), {}, name="u"),
         "proof failed"),
    ]:
        result = check_step(theorem.lhs, theorem.rhs, prove=prover)
        assert not result.symbolic.ok, why
        assert why in result.symbolic.detail


def test_a_bare_callable_is_not_a_prover():
    with pytest.raises(TypeError, match="Prover"):
        check_step(x, x, prove=lambda a, b: None)


def test_finite_size_labels_name_only_the_sizes_checked():
    assert format_sizes((1, 4)) == "1, 4"
    assert format_sizes((1, 2, 3, 4)) == "1..4"
    k = sp.Symbol("k", integer=True, positive=True)
    result = check_step((k - 1) * (k - 4), 0, prove=AtSizes(k, (1, 4)), sizes=(1, 4))
    assert result.symbolic.ok and result.symbolic.sizes == (1, 4)
    assert "k = 1, 4" in result.symbolic.method and "1..4" not in result.symbolic.method
    assert not result.numeric.ok  # k is sampled well beyond 1 and 4
    # claimed for every k, a proof at two sizes is not enough
    general = check_step((k - 1) * (k - 4), 0, prove=AtSizes(k, (1, 4)))
    assert not general.symbolic.ok


def test_verdicts_carry_their_scope():
    report = derive("diagonal").verify()
    assert report.check("marginalise").scope.startswith("for all k from lemmas L2")
    assert report.check("named-terms").general
    assert report.scope == "for all k from lemmas L1, L2" and report.scope in report.summary()
    assert report.as_dict()["lemmas"] == ["L1", "L2"]
    record = report.as_dict()
    assert record["scope"] == report.scope
    assert all("scope" in claim and "origin" in claim for claim in record["claims"])
    # no size symbol in any univariate claim: not "for all k"
    assert derive("univariate").verify().scope == "for all values"


def test_every_fact_is_a_checked_claim():
    for name in ("univariate", "diagonal", "std-normal", "fisher", "full", "stable"):
        derivation = derive(name)
        report = derivation.verify()
        labels = {c.label for c in report.checks}
        assert {f.label for f in derivation.facts} <= labels, name
        assert all(f.origin in ("stated", "computed") for f in derivation.facts)


def test_a_fact_needs_a_label():
    with pytest.raises(ValueError, match="label"):
        Fact("unlabelled", x, x)


def test_derivations_are_immutable_and_an_edited_one_is_checked_again():
    derivation = derive("univariate")
    with pytest.raises(dataclasses.FrozenInstanceError):
        derivation.steps = ()
    with pytest.raises(TypeError):
        derivation.definitions[x] = 1  # a read-only mapping
    assert derivation.verify().proved
    closed = derivation.steps[-1]
    wrong = dataclasses.replace(closed, expr=closed.expr + 1)
    edited = derivation.replace(steps=(*derivation.steps[:-1], wrong))
    report = edited.verify()
    assert not report.proved
    assert report.failures[0].label == "closed-form"
    assert derive("univariate").verify().proved  # the original is untouched


def test_verdicts_are_keyed_on_content():
    claim = Claim("c", sp.log(s**2), 2 * sp.log(s))
    assert check(claim) is check(Claim("c", sp.log(s**2), 2 * sp.log(s)))
    assert check(claim) is not check(Claim("c", sp.log(s**2), 3 * sp.log(s)))


@pytest.mark.parametrize(
    "assumptions",
    [{"integer": True, "positive": True}, {"integer": True, "odd": True},
     {"integer": True, "even": True, "negative": True}, {"negative": True},
     {"nonpositive": True}, {"nonnegative": True}, {"positive": True}, {"real": True},
     {"integer": True, "nonnegative": True}],
)
def test_sampling_honours_every_assumption(assumptions):
    symbol = sp.Symbol("a", **assumptions)
    rng = random.Random(5)
    values = [sample_value(symbol, rng) for _ in range(200)]
    for value in values:
        for fact, wanted in symbol.assumptions0.items():
            got = getattr(value, f"is_{fact}")
            assert got is None or got == wanted, (value, fact)
    if symbol.is_integer and symbol.is_positive:
        assert max(values) > 12  # sizes well beyond 1..4
    if not symbol.is_integer:
        magnitudes = [abs(v) for v in values if v != 0]
        assert max(magnitudes) / min(magnitudes) > 1000  # orders of magnitude
        assert all(v.q > 10**9 or v.q == 1 for v in values if v != 0) or any(
            v.q > 10**9 for v in values)  # not a coarse rational grid


def test_unsampleable_assumptions_are_an_error_not_a_silent_sample():
    with pytest.raises(SamplingError):
        sample_value(sp.Symbol("a", irrational=True), random.Random(0))


def test_an_exact_zero_is_judged_by_an_absolute_bound():
    mu = sp.Symbol("mu", real=True)
    density = sp.exp(-((x - mu) ** 2) / (2 * s**2)) / (sp.sqrt(2 * sp.pi) * s)
    result = check_step(sp.Integral((x - mu) ** 3 * density, (x, -sp.oo, sp.oo)), 0)
    assert result.ok, result.summary()
