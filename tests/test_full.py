"""Full-covariance KL: the matrix form, the Cholesky form, and wrong variants rejected."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
import sympy as sp

from symkl import check_step, derive
from symkl.derivation import instantiate
from symkl.kl.full import (
    INTEGRAL_NUMERIC_AT,
    NUMERIC_AT,
    explicit_setting,
    gaussian_expectation,
    proved_at_sizes,
)
from symkl.model import (
    MatrixEntry,
    MatrixIntegral,
    QuadraticForm,
    SquaredNorm,
    cholesky_factor,
    full_symbols,
)

S = full_symbols()
half = sp.Rational(1, 2)
PROVE = proved_at_sizes(functools.partial(explicit_setting, S), (1, 2))
NUMERIC = tuple(explicit_setting(S, n) for n in (2, 3))


def textbook_numpy(mu_p, cov_p, mu_q, cov_q) -> float:
    """The textbook formula, typed by hand with NumPy (an independent check)."""
    k = len(mu_p)
    inverse_q = np.linalg.inv(cov_q)
    difference = mu_q - mu_p
    return 0.5 * (
        np.trace(inverse_q @ cov_p)
        + difference @ inverse_q @ difference
        - k
        + np.log(np.linalg.det(cov_q) / np.linalg.det(cov_p))
    )


def test_full_derivation_is_proved_for_every_k_and_says_so():
    report = derive("full").verify()
    assert report.proved, str(report)
    assert report.scope.startswith("for all k"), report.scope
    for check in report.checks:
        assert check.general, check.summary()
        assert check.scope.startswith("for all k"), check.summary()
        integrals = check.claim.lhs.has(MatrixIntegral) or check.claim.rhs.has(MatrixIntegral)
        assert check.numeric.sizes == (INTEGRAL_NUMERIC_AT if integrals else NUMERIC_AT), (
            check.summary())


def test_closed_form_matches_hand_typed_numpy_at_random_spd_points():
    d = derive("full")
    rng = np.random.default_rng(7)
    for size in (2, 3):
        setting = explicit_setting(S, size)
        # the Cholesky form, with M = L_q^-1 L_p and w = L_q^-1 (mu_q - mu_p) written out
        explicit = instantiate(d.closed_form.xreplace(d.definitions), setting)
        symbols = sorted(explicit.free_symbols, key=str)
        function = sp.lambdify(symbols, explicit, "numpy")
        for _ in range(5):
            a = rng.normal(size=(size, size))
            b = rng.normal(size=(size, size))
            cov_p, cov_q = a @ a.T + size * np.eye(size), b @ b.T + size * np.eye(size)
            mu_p, mu_q = rng.normal(size=size), rng.normal(size=size)
            lp, lq = np.linalg.cholesky(cov_p), np.linalg.cholesky(cov_q)
            values = {}
            for n in range(size):
                values[f"mu_{{p,{n + 1}}}"] = mu_p[n]
                values[f"mu_{{q,{n + 1}}}"] = mu_q[n]
                for m in range(n + 1):
                    values[f"L_{{p,{n + 1}{m + 1}}}"] = lp[n, m]
                    values[f"L_{{q,{n + 1}{m + 1}}}"] = lq[n, m]
            got = function(*[values[str(s)] for s in symbols])
            want = textbook_numpy(mu_p, cov_p, mu_q, cov_q)
            assert got == pytest.approx(want, rel=1e-12)


def test_gaussian_expectation_is_exact_and_refuses_the_wrong_density():
    factor = cholesky_factor("p", 2)
    mean = sp.ImmutableMatrix(sp.symbols("m_1 m_2", real=True))
    x = sp.symbols("x_1 x_2", real=True)
    covariance = factor * factor.T
    column = sp.ImmutableMatrix(x) - mean
    density = sp.exp(-(column.T * covariance.inv() * column)[0, 0] / 2) / (
        2 * sp.pi * factor[0, 0] * factor[1, 1]
    )
    limits = [(v, -sp.oo, sp.oo) for v in x]
    # E[(x - m)(x - m)^T] = Sigma: the (1, 2) entry
    value = gaussian_expectation(
        sp.Integral(density * (x[0] - mean[0]) * (x[1] - mean[1]), *limits), factor, mean
    )
    assert sp.expand(value - covariance[0, 1]) == 0
    assert gaussian_expectation(sp.Integral(density, *limits), factor, mean) == 1
    # centred on the wrong mean: not p's density, so no claim is made
    wrong = sp.ImmutableMatrix([mean[0] + 1, mean[1]])
    assert gaussian_expectation(sp.Integral(density * x[0], *limits), factor, wrong) is None
    # a non-polynomial integrand is refused
    assert gaussian_expectation(sp.Integral(density * sp.cos(x[0]), *limits), factor, mean) is None


def _matrix_textbook(trace, mean, logdet, constant):
    return half * (trace + mean + constant + logdet)


TRACE = sp.Trace(S.Sigma_q.I * S.Sigma_p)
MEAN = QuadraticForm(S.Sigma_q.I, S.mu_q - S.mu_p)
LOGDET = sp.log(sp.Determinant(S.Sigma_q) / sp.Determinant(S.Sigma_p))
M = sp.MatrixSymbol("M", S.k, S.k)
W = sp.MatrixSymbol("w", S.k, 1)
i, j = S.i, S.j

WRONG_FULL_FORMS = {
    "inverse-on-p": _matrix_textbook(sp.Trace(S.Sigma_p.I * S.Sigma_q), MEAN, LOGDET, -S.k),
    "mahalanobis-with-sigma-p": _matrix_textbook(
        TRACE, QuadraticForm(S.Sigma_p.I, S.mu_q - S.mu_p), LOGDET, -S.k
    ),
    "log-det-flipped": _matrix_textbook(
        TRACE, MEAN, sp.log(sp.Determinant(S.Sigma_p) / sp.Determinant(S.Sigma_q)), -S.k
    ),
    "missing-minus-k": _matrix_textbook(TRACE, MEAN, LOGDET, 0),
    "no-inverse-in-trace": _matrix_textbook(sp.Trace(S.Sigma_q * S.Sigma_p), MEAN, LOGDET, -S.k),
    "cholesky-lower-sum-includes-diagonal": half
    * (
        sp.Sum(MatrixEntry(M, i, i) ** 2 - 1 - 2 * sp.log(MatrixEntry(M, i, i)), (i, 1, S.k))
        + sp.Sum(sp.Sum(MatrixEntry(M, i, j) ** 2, (j, 1, i)), (i, 1, S.k))
        + SquaredNorm(W)
    ),
    "cholesky-log-not-doubled": half
    * (
        sp.Sum(MatrixEntry(M, i, i) ** 2 - 1 - sp.log(MatrixEntry(M, i, i)), (i, 1, S.k))
        + sp.Sum(sp.Sum(MatrixEntry(M, i, j) ** 2, (j, 1, i - 1)), (i, 1, S.k))
        + SquaredNorm(W)
    ),
}


@pytest.mark.parametrize("name", sorted(WRONG_FULL_FORMS))
def test_wrong_full_closed_forms_are_rejected_both_ways(name):
    d = derive("full")
    textbook = d.steps[-2].expr
    result = check_step(
        textbook,
        WRONG_FULL_FORMS[name],
        definitions=d.definitions,
        prove=PROVE,
        instances=NUMERIC[:1],
        points=3,
    )
    assert not result.symbolic.ok, result.symbolic
    assert not result.numeric.ok, result.numeric


def test_wrong_expectation_identity_is_rejected():
    """Dropping the trace from E_p[(x-m)^T A (x-m)] is the classic mistake."""
    d = derive("full")
    lemma = next(f for f in d.facts if f.label == "expectation-lemma")
    wrong = QuadraticForm(S.Sigma_q, S.mu_p - S.mu_q)
    result = check_step(
        lemma.lhs, wrong, definitions=d.definitions, prove=PROVE, instances=NUMERIC[:1], points=3
    )
    assert not result.symbolic.ok and not result.numeric.ok


def test_diagonal_covariances_reduce_to_the_diagonal_derivation():
    report = derive("full").verify()
    check = next(c for c in report.checks if c.label == "diagonal-special-case")
    assert check.ok and check.general, check.summary()
    assert "M5" in check.symbolic.method


@pytest.mark.slow
@pytest.mark.parametrize("size", [3, 4, 5, 6])
def test_claims_with_integrals_hold_numerically_with_other_covariances(size):
    """verify checks claims with integrals at k = 2..6 with one seed; here another seed."""
    from symkl.kl.full import numeric_setting
    from symkl.proof import Settings, check

    d = derive("full")
    for claim in d.claims():
        if not (claim.lhs.has(MatrixIntegral) or claim.rhs.has(MatrixIntegral)):
            continue
        moved = dataclasses.replace(claim, instances=(numeric_setting(S, size, seed=7),))
        verdict = check(moved, Settings(points=3))
        assert verdict.ok and verdict.numeric.sizes == (size,), verdict.summary()


def test_cholesky_terms_are_nonnegative_and_vanish_only_at_one():
    t = sp.Symbol("t", positive=True)
    term = t**2 - 1 - 2 * sp.log(t)
    assert sp.solve(sp.diff(term, t), t) == [1]
    assert term.subs(t, 1) == 0
    assert sp.diff(term, t, 2).subs(t, 1) > 0


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "2"])
def test_closed_form_at_rejects_non_positive_or_non_integer_dimension(bad):
    with pytest.raises(ValueError, match="dimension must be a positive integer"):
        derive("full").closed_form_at(bad)


def test_closed_form_at_without_dimension_lists_the_dimensioned_derivations():
    with pytest.raises(ValueError, match="diagonal, std-normal, full"):
        derive("univariate").closed_form_at(2)


def test_wrong_near_equal_form_is_rejected():
    """The near-equal form with the difference the wrong way round must not verify."""
    from symkl.kl.full import _with_identity

    d = derive("full")
    fact = next(f for f in d.facts if f.label == "near-equal")
    flipped = S.L_q.I * (S.Sigma_q - S.Sigma_p) * S.L_q.I.T
    wrong = half * (sp.Trace(flipped) - sp.log(sp.Determinant(sp.Identity(S.k) + flipped)) + MEAN)
    prove = proved_at_sizes(functools.partial(_with_identity, S), (1, 2))
    result = check_step(
        fact.lhs,
        wrong,
        definitions=d.definitions,
        prove=prove,
        instances=(_with_identity(S, 2),),
        points=3,
    )
    assert not result.symbolic.ok and not result.numeric.ok
