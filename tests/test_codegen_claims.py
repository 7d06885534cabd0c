"""The trust property of codegen: compensated arithmetic is printed only from proved claims.

Each TwoSum / ProductError / Lo statement of the kernels is a fact ``node-*`` of
``stable`` (an equality in real arithmetic once the nodes are read as their exact
meanings); the printers refuse a node outside such a statement, and a wrong statement
fails its claim, so ``symkl build`` refuses to print kernels.  That the nodes are exact
in binary64 is the assumption EFT, checked here against exact rationals.
"""

from __future__ import annotations

import dataclasses

import pytest
import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from symkl.build import generate
from symkl.codegen import generate_sources
from symkl.codegen.kernels import claim, std_x_lo, two_sum_error
from symkl.codegen.printers import UnclaimedNodeError, array_arithmetic, c_arithmetic
from symkl.derivation import check_step
from symkl.kl import compensated, derive, stable
from symkl.kl.compensated import (
    ERROR_FREE_TRANSFORMATIONS,
    EXPONENT_SPLIT,
    Claimed,
    Lo,
    ProductError,
    ShiftRight,
    TwoSum,
    UInt,
    add,
    div,
    error_free_evidence,
    exact_value,
    exponent_split,
    exponent_split_evidence,
    kernel_statements,
    mul,
    neg,
    variables,
)
from symkl.kl.stable import numeric_forms
from symkl.proof import ExpandFunctions, Generic

a, b, c, d = variables("a b c d")


def test_every_compensated_statement_is_a_proved_fact_of_stable():
    report = derive("stable").verify()
    statements = numeric_forms().statements
    assert set(statements) == set(kernel_statements())
    assert len(statements) >= 20
    for statement in statements.values():
        assert statement.label.startswith("node-")
        for label in statement.labels:
            assert report.check(label).ok, label


def test_a_first_order_statement_is_two_claims_computed_by_sympy():
    statement = kernel_statements()["node-carried-expm1"]
    value, slope = statement.facts()
    assert statement.labels == ("node-carried-expm1", "node-carried-expm1-first-order")
    d_hi = _symbols("node-carried-expm1")["d_hi"]
    assert sp.simplify(sp.expand_func(value.lhs) - sp.exp(d_hi) + 1) == 0  # at d_lo = 0
    d_lo = _symbols("node-carried-expm1")["d_lo"]
    assert sp.simplify(slope.rhs - d_lo * sp.exp(d_hi)) == 0  # d/de expm1(d_hi + e d_lo)


def test_the_meanings_of_the_nodes():
    assert exact_value(TwoSum(a, b, c)) == a + b - c
    assert exact_value(ProductError(a, b, c)) == a * b - c
    assert exact_value(Lo(add(a, mul(0.5, b)))) == a + b / 2  # a Float becomes its rational
    assert not exact_value(add(0.1, a)).atoms(sp.Float)


@pytest.mark.parametrize(
    "node", [TwoSum(a, b, c), ProductError(a, b, c), Lo(add(a, b))], ids=lambda n: n.func.__name__
)
@pytest.mark.parametrize("printer", [c_arithmetic, array_arithmetic], ids=["c", "array"])
def test_a_node_outside_a_proved_statement_is_refused_naming_it(node, printer):
    with pytest.raises(UnclaimedNodeError, match=rf"refusing to print {node.func.__name__} node"):
        printer(add(a, node))


def test_a_node_smuggled_into_a_statements_argument_is_refused():
    smuggled = claim("node-two-sum", a=ProductError(a, b, c), b=b, lo=d)
    with pytest.raises(UnclaimedNodeError, match=r"ProductError.*an argument of 'node-two-sum'"):
        c_arithmetic(smuggled)


def test_a_lo_marker_is_printed_only_around_a_proved_quantity():
    assert c_arithmetic(Lo(std_x_lo())).startswith("SYMKL_LO(fma(rho, two, -x)")
    with pytest.raises(UnclaimedNodeError, match="Lo node"):
        c_arithmetic(Lo(a))


def test_unknown_statements_and_parameters_are_refused():
    with pytest.raises(KeyError, match="no proved kernel statement 'node-made-up'"):
        claim("node-made-up", a=a)
    with pytest.raises(ValueError, match=r"no parameter 'z'.*it has a, b, lo"):
        claim("node-two-sum", z=a)
    # a Claimed node made by hand carries no formula: its label must be a proved one
    with pytest.raises(LookupError, match="node-made-up"):
        c_arithmetic(Claimed("node-made-up", {"a": a}))


def test_a_claimed_node_prints_the_proved_statement_at_its_bindings():
    assert c_arithmetic(two_sum_error(a, b, c, d)) == "(a - (c - d)) + (b - d)"
    # nested in ordered arithmetic it is parenthesised as the sum it is
    assert c_arithmetic(mul(2.0, two_sum_error(a, b, c, d))) == "2.0 * ((a - (c - d)) + (b - d))"


def _statement_with(label: str, expression: sp.Expr) -> compensated.KernelStatement:
    return dataclasses.replace(kernel_statements()[label], expression=expression)


def _symbols(label: str) -> dict[str, sp.Symbol]:
    return {s.name: s for s in kernel_statements()[label].parameters}


def _wrong_statements():
    two = _symbols("node-two-sum-error")
    x_lo = _symbols("node-std-x-lo")
    excess = _symbols("node-exp-excess")
    half = _symbols("node-half-total")
    split = _symbols("node-veltkamp-split")
    reduction = _symbols("node-exp-double-reduction")
    series = _symbols("node-exp-double-series")
    s, p = series["s"], series["p"]
    cubic = add(div(mul(s, p), 6.0), div(mul(s, p, s), 24.0), div(mul(s, p, s, s), 120.0))
    return [
        # Veltkamp's lo part a + hi, the sign of hi flipped (in real arithmetic hi = a and
        # lo = 0: the 26-bit halves are the floating-point fact of assumption EFT)
        ("node-veltkamp-split", add(split["a"], split["hi"])),
        # TwoSum's error with the sign of its second part flipped
        (
            "node-two-sum-error",
            add(
                add(two["a"], neg(add(two["s"], neg(two["bv"])))),
                neg(add(two["b"], neg(two["bv"]))),
            ),
        ),
        # the std x_lo without the factor 2 of rho_lo (1 + rho)
        (
            "node-std-x-lo",
            add(
                ProductError(x_lo["rho"], x_lo["two"], x_lo["x"]),
                mul(x_lo["rho"], x_lo["two_lo"]),
                mul(1.0, x_lo["rho_lo"], add(1.0, x_lo["rho"])),
            ),
        ),
        # the log-variance excess adding d_lo where it subtracts it
        (
            "node-exp-excess",
            add(
                Lo(add(excess["f_lo"], neg(excess["c_lo"]), excess["d_lo"])),
                mul(excess["scale"], excess["t_lo"]),
            ),
        ),
        # the final term without the factor 1/2
        (
            "node-half-total",
            add(half["total"], add(Lo(add(half["total_lo"], half["a_lo"])), half["excess_lo"])),
        ),
        # the double-double exponential's reduction adding the third part of n log 2
        (
            "node-exp-double-reduction",
            add(
                add(add(reduction["b_lo"], reduction["a_lo"]),
                    neg(ProductError(reduction["n"], reduction["EXP_LN2_2"], reduction["shift"]))),
                mul(reduction["n"], reduction["EXP_LN2_3"]),
            ),
        ),
        # its series with the rounding of s^2 taken whole (no factor 1/2)
        (
            "node-exp-double-series",
            add(
                add(add(add(1.0, neg(series["u"])), s), add(add(series["u"], neg(series["v"])),
                                                            mul(0.5, p))),
                add(ProductError(s, s, p), cubic, mul(series["v"], series["r_lo"])),
            ),
        ),
        # and with the first-order effect of r_lo subtracted
        (
            "node-exp-double-series",
            add(
                add(add(add(1.0, neg(series["u"])), s), add(add(series["u"], neg(series["v"])),
                                                            mul(0.5, p))),
                add(mul(0.5, ProductError(s, s, p)), cubic, neg(mul(series["v"], series["r_lo"]))),
            ),
        ),
    ]


@pytest.mark.parametrize(("label", "wrong"), _wrong_statements(), ids=lambda v: str(v)[:20])
def test_a_wrong_statement_fails_its_claim(label, wrong):
    fact = _statement_with(label, wrong).fact()
    result = check_step(fact.lhs, fact.rhs, prove=Generic(), points=3)
    assert not result.symbolic.ok and not result.numeric.ok


def test_a_wrong_first_order_correction_fails_its_first_order_claim():
    names = _symbols("node-carried-expm1")
    # e^{-d_hi} where the derivative of expm1 is e^{d_hi}: right at d_lo = 0, wrong slope
    wrong = add(names["expm1_d"], mul(names["d_lo"], sp.exp(neg(names["d_hi"]))))
    value, slope = _statement_with("node-carried-expm1", wrong).facts()
    prove = ExpandFunctions((log1p, expm1))
    assert check_step(value.lhs, value.rhs, prove=prove, points=3).ok
    result = check_step(slope.lhs, slope.rhs, prove=prove, points=3)
    assert not result.symbolic.ok and not result.numeric.ok


def test_a_sign_flip_in_two_sum_error_makes_build_refuse(monkeypatch):
    label, wrong = _wrong_statements()[0]
    original = compensated.kernel_statements

    def flipped():
        statements = original()
        statements[label] = dataclasses.replace(statements[label], expression=wrong)
        return statements

    monkeypatch.setattr(stable, "kernel_statements", flipped)
    derive.cache_clear()
    try:
        report = derive("stable").verify()
        assert not report.check(label).ok
        assert [check.label for check in report.checks if not check.ok] == [label]
        with pytest.raises(RuntimeError, match="refusing to generate code"):
            generate(("stable",))
        # and nothing compensated is printable meanwhile: the registry was emptied
        with pytest.raises(RuntimeError, match="refusing to generate code"):
            claim("node-two-sum", a=a, b=b, lo=c)
    finally:
        monkeypatch.undo()
        derive.cache_clear()
        numeric_forms()
    assert "symkl_two_sum" in generate_sources()["symkl/_kernels.c"]


def _assert_evidence(evidence: dict) -> None:
    assert set(evidence) == {
        "two-sum", "fast-two-sum", "fma-product-error", "division-remainder", "dekker-product",
        "veltkamp-split",
    }  # fmt: skip
    for name, entry in evidence.items():
        assert entry["checked"] > 0, name
        assert entry["failures"] == 0, (name, entry)
    # the no-underflow conditions are needed: outside them the remainders are not doubles
    assert evidence["fma-product-error"]["fail_outside"] > 0
    assert evidence["division-remainder"]["fail_outside"] > 0
    # and Veltkamp's c = (2^27 + 1) a overflows past 2^995
    assert evidence["veltkamp-split"]["fail_outside"] > 0


def test_error_free_transformations_hold_on_a_sample_of_doubles():
    assert ERROR_FREE_TRANSFORMATIONS.name == "EFT"
    _assert_evidence(error_free_evidence(3000, seed=7))


@pytest.mark.slow
def test_error_free_transformations_hold_on_many_doubles():
    _assert_evidence(error_free_evidence(300_000, seed=11))


def test_the_variables_a_claim_rests_on_are_printed_from_the_claim():
    # two = TwoSum(2, rho, two_lo) is what node-std-x-lo assumes, and what the kernels print
    assert c_arithmetic(claim("node-std-x-lo", part="two")) == "symkl_two_sum(2.0, rho, &two_lo)"
    assert array_arithmetic(claim("node-std-x-lo", part="two")) == "two_sum(2.0, rho)"
    kernels = generate_sources()
    assert "const double two = symkl_two_sum(2.0, rho, &two_lo);" in kernels["symkl/_kernels.c"]
    assert "two, two_lo = two_sum(2.0, rho)" in kernels["symkl/_kernels_numpy.py"]


def test_a_wrong_given_variable_fails_the_claim_resting_on_it():
    statement = kernel_statements()["node-std-x-lo"]
    names = _symbols("node-std-x-lo")
    # two = 2 - rho where the std kernel needs 2 + rho
    wrong = {names["two"]: TwoSum(2.0, neg(names["rho"]), names["two_lo"])}
    fact = dataclasses.replace(statement, given=wrong).fact()
    result = check_step(fact.lhs, fact.rhs, prove=Generic(), points=3)
    assert not result.symbolic.ok and not result.numeric.ok


def test_the_exponent_split_holds_in_every_binade_of_the_fast_range():
    evidence = exponent_split_evidence(2000)
    assert evidence["split-checked"] >= 2000 * 5 and evidence["split-failures"] == 0
    assert evidence["scale-checked"] == 2046 and evidence["scale-failures"] == 0
    assert EXPONENT_SPLIT.name == "EXPONENT-SPLIT"


def test_a_wrong_exponent_split_constant_is_caught():
    split = exponent_split()
    q_bits = sp.Symbol("q_bits")
    # the split at 1/2 (bits of 0.5) instead of 3/4: mantissas in [1/2, 1), not [3/4, 3/2)
    wrong = add(q_bits, neg(UInt(0x3FE0000000000000)), UInt(0x4000000000000000))
    split["biased"] = ShiftRight(wrong, 52)
    assert exponent_split_evidence(2000, split=split)["split-failures"] > 0


def test_the_exponent_split_is_printed_from_its_expressions():
    source = generate_sources()["symkl/_kernels.c"]
    split = exponent_split()
    assert f"const uint64_t biased = {c_arithmetic(split['biased'])};" in source
    assert c_arithmetic(split["mantissa"]) == "symkl_from_bits(q_bits - ((biased - 1024u) << 52))"


def test_branch_free_choices_print_the_same_choice_in_both_targets():
    """Select, relationals and connectives: ``?:`` in C, ``xp.where`` and ``& | ~`` (which
    bind above the comparisons, so each comparison is parenthesised) in the array
    namespace; a negated comparison is kept as a negation (NaN compares false both ways)."""
    from symkl.codegen.printers import PowerOfTwo, Select, Unpacking, array_statement

    v, d, near = sp.symbols("v d near")
    scale = Select(sp.Lt(v, PowerOfTwo(-800)), PowerOfTwo(600), 1.0)
    assert array_arithmetic(scale) == "xp.where(v < 2.0**-800, 2.0**600, 1.0)"
    assert c_arithmetic(scale) == "v < 0x1p-800 ? 0x1p600 : 1.0"
    inside = sp.And(sp.Not(near), sp.Gt(d, -PowerOfTwo(-500)))
    assert array_arithmetic(inside) == "~near & (d > -2.0**-500)"
    assert eval(array_arithmetic(-PowerOfTwo(-500))) == -(2.0**-500)
    unpacked = array_statement(Unpacking(sp.Tuple(d, v), sp.Function("two_sum")(d, v)), "")
    assert unpacked == "d, v = two_sum(d, v)"
    with pytest.raises(ValueError, match="PowerOfTwo"):
        PowerOfTwo(2000)


def test_the_array_kernels_scalings_are_proved_facts_of_stable():
    report = derive("stable").verify()
    for label in ("relative-difference-scaled", "mean-term-scaled", "mean-term-scaled-split"):
        assert report.check(label).ok, label
    source = generate_sources()["symkl/_kernels_numpy.py"]
    assert "fact relative-difference-scaled" in source and "mean-term-scaled" in source


def test_veltkamp_split_is_the_proved_statement_and_its_halves_have_26_bits():
    from symkl.kl.compensated import _bits, veltkamp_split

    kernels = generate_sources()["symkl/_kernels_numpy.py"]
    # printed from node-veltkamp-split (c and hi its given variables), not typed
    assert "    c = 134217729.0 * a\n    hi = c - (c - a)\n    return hi, a - hi" in kernels
    for value in (1.0 / 3.0, -2.0**-1060, 1e300, 0.1, -(2.0**995) * 0.999):
        high, low = veltkamp_split(value)
        assert high + low == value and _bits(high) <= 26 and _bits(low) <= 26, value
    assert veltkamp_split(1.7e308) is None  # c overflows
    # a wrong splitting constant (2^26 + 1) gives halves of 27 bits: the evidence sees it
    parts = compensated.veltkamp_parts()
    splitter = {compensated.VELTKAMP_SPLITTER: sp.Float(2**26 + 1)}
    wrong = {**parts, "c": parts["c"].xreplace(splitter)}
    assert any(
        _bits(compensated.veltkamp_split(value, wrong)[0]) > 26 for value in (1.0 / 3.0, 0.1, 0.7)
    )


def test_c_conditions_print_without_short_circuit_and_keep_nan():
    """AllOf / AnyOf print C's non-short-circuit & and | (the fast-range tests run in the
    vectorised loop); Negation prints !(...), which SymPy's Not would turn into v <= 0:
    false for NaN, so a NaN scale would pass the validation."""
    from sympy.codegen.ast import Assignment, Comment, Return

    from symkl.codegen.printers import (
        AddressOf,
        AllOf,
        AnyOf,
        Cast,
        Either,
        If,
        Negation,
        c_statement,
    )

    v, m, e = variables("v m e")
    assert str(sp.Not(sp.Gt(v, 0.0))) == "v <= 0.0"  # what Negation avoids
    check = AnyOf(Negation(sp.Gt(v, 0.0)), Negation(sp.Function("isfinite")(v)))
    assert c_arithmetic(check) == "!(v > 0.0) | !isfinite(v)"
    assert c_arithmetic(Either(*check.args)) == "!(v > 0.0) || !isfinite(v)"  # short-circuit
    assert array_arithmetic(AllOf(sp.Gt(v, 0.0), sp.Lt(m, 1.0))) == "(v > 0.0) & (m < 1.0)"
    assert c_arithmetic(Cast(add(v, neg(m)), sp.Symbol("double"))) == "(double)(v - m)"
    assert c_arithmetic(sp.Function("frexp")(v, AddressOf(e))) == "frexp(v, &e)"
    chain = If(sp.Lt(v, 0.0), [Comment("below"), Assignment(m, 0.0)], If(sp.Gt(v, 1.0),
               [Assignment(m, 1.0)], [Return(v)]))  # fmt: skip
    assert c_statement(chain, "") == (
        "if (v < 0.0) {\n    /* below */\n    m = 0.0;\n} else if (v > 1.0) {\n    m = 1.0;\n"
        "} else {\n    return v;\n}"
    )
    source = generate_sources()["symkl/_kernels.c"]
    assert "if (!(var_p > 0.0) || !isfinite(var_p)) return -(index * 8 + 1) - 1;" in source
    assert "    return (var_p >= SYMKL_FAST_MIN) & (var_p <= SYMKL_FAST_MAX)" in source
