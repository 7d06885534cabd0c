"""Findings of an adversarial review of the kernel (session 7): each was a false claim
accepted, and each must now be refused."""

from __future__ import annotations

import pytest
import sympy as sp

from symkl.proof import Claim, ClaimError, check
from symkl.proof.provers import AtSizes, Generic, SymbolicResult, run_prover

k = sp.Symbol("k", integer=True, positive=True)
i = sp.Symbol("i", integer=True, positive=True)
j = sp.Symbol("j", integer=True, positive=True)
n = sp.Symbol("n", integer=True, positive=True)


class Yes(Generic):
    """A prover written outside the kernel that only *claims* a kernel module."""

    __module__ = "symkl.proof.provers"

    def prove(self, lhs, rhs):
        return SymbolicResult(True, "trust me")


def test_a_class_that_sets_its_module_to_the_kernels_is_not_a_kernel_prover():
    a = sp.IndexedBase("a", real=True)
    lhs, rhs = sp.Sum(a[i], (i, 1, k)), a[1] + a[2]
    result = run_prover(Yes(), lhs, rhs)
    assert not result.ok and "not a kernel prover" in result.detail
    assert not check(Claim("forged", lhs, rhs, prover=Yes(), instances=({k: 2},))).ok


def test_a_free_dummy_named_like_a_bound_variable_is_not_captured():
    forged = sp.Dummy("n", dummy_index=10**9, integer=True, positive=True)
    claim = Claim("capture", sp.Sum(forged * i, (i, 1, 3)), sp.Integer(14))
    assert forged in claim.lhs.free_symbols  # still free after admission
    assert not check(claim).ok
    # and the true value is still accepted
    assert check(Claim("free-dummy", sp.Sum(forged * i, (i, 1, 3)), 6 * forged)).ok


def test_nested_binders_with_free_dummies_keep_their_scopes():
    # the kernel admits bodies whose outer index is a bound-variable dummy left free
    outer = Claim("outer", sp.Sum(sp.Sum(i * j, (i, 1, 2)), (j, 1, 2)), sp.Integer(9)).lhs
    body = outer.function  # Sum(_n * _outer, ...) with the outer dummy free
    free = body.free_symbols
    assert free and all(isinstance(s, sp.Dummy) for s in free)
    again = Claim("body", body, 3 * next(iter(free))).lhs
    assert again.free_symbols == free


def test_lemma_m5_does_not_capture_an_outer_summation_index():
    from symkl.proof.matrices import Diagonal, MatrixAlgebra

    a = sp.IndexedBase("a", positive=True)
    algebra = MatrixAlgebra(lemmas=("M5",))
    lhs = sp.Sum(sp.Trace(Diagonal(sp.Lambda(n, j * a[n]), k)), (j, 1, k))
    wrong = k * sp.Sum(i * a[i], (i, 1, k))  # differs by a_1 - a_2 at k = 2
    assert not run_prover(algebra, lhs, wrong).ok
    assert not check(Claim("capture", lhs, wrong, prover=algebra, instances=({k: 1},))).ok


def test_a_setting_may_fix_sizes_only():
    x = sp.Symbol("x", positive=True)
    pinned = AtSizes(k, (1, 2, 3), setting=lambda size: {k: sp.Integer(size), x: sp.Integer(0)})
    result = run_prover(pinned, x * k, sp.S.Zero)
    assert not result.ok and "pins x" in result.detail
    a = sp.IndexedBase("a", real=True)
    entry = AtSizes(k, (2,), setting=lambda size: {k: sp.Integer(size), a[1]: sp.Integer(0)})
    assert not run_prover(entry, a[1] * k, sp.S.Zero).ok
    size_pinned_wrong = AtSizes(k, (2,), setting=lambda size: {k: sp.Integer(size + 1)})
    assert not run_prover(size_pinned_wrong, k, sp.Integer(3)).ok


def test_a_setting_may_not_write_a_matrix_as_constants_or_with_the_claims_symbols():
    x = sp.Symbol("x", real=True)
    matrix = sp.MatrixSymbol("A", k, k)
    constant = AtSizes(k, (2,), setting=lambda size: {k: 2, matrix: sp.ImmutableMatrix(sp.eye(2))})
    assert not run_prover(constant, sp.Trace(matrix), sp.Integer(2)).ok
    shared = AtSizes(
        k, (2,), setting=lambda size: {k: 2, matrix: sp.ImmutableMatrix(sp.eye(2)) * x}
    )
    result = run_prover(shared, sp.Trace(matrix), 2 * x)
    assert not result.ok and "symbols of the claim" in result.detail


def test_numeric_instances_must_respect_declared_assumptions():
    x = sp.Symbol("x", positive=True)
    with pytest.raises(ClaimError, match="contradicts x's declared assumption"):
        Claim("pinned", x * k, sp.S.Zero, instances=({k: 1, x: 0},))
    with pytest.raises(ClaimError, match="contradicts k's"):
        Claim("size", k, k, instances=({k: 0},))
