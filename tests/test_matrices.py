"""Matrix rules for every k (symkl.proof.matrices) and the full-covariance lemmas M1..M4.

Each true identity is proved for symbolic ``k``; each wrong variant is refused by
the symbolic side, and, where it is false, by the numeric side too (random exact
Cholesky factors at a concrete size).
"""

from __future__ import annotations

import pytest
import sympy as sp

from symkl import check_step, derive
from symkl.kl.full import numeric_setting
from symkl.model import (
    CholeskyFactor,
    MatrixEntry,
    MatrixIntegral,
    PositiveDefinite,
    QuadraticForm,
    SquaredNorm,
    full_symbols,
)
from symkl.proof.matrices import MatrixAlgebra, matrix_normal_form
from symkl.proof.provers import run_prover

S = full_symbols()
k, i, j, x = S.k, S.i, S.j, S.x
half = sp.Rational(1, 2)
A = sp.MatrixSymbol("A", k, k)
B = sp.MatrixSymbol("B", k, k)
C = sp.MatrixSymbol("C", k, k)
ALGEBRA = MatrixAlgebra()
GAUSS = MatrixAlgebra(lemmas=("M1", "M2"))
TRIANGULAR = MatrixAlgebra(cholesky={S.Sigma_p: S.L_p, S.Sigma_q: S.L_q}, lemmas=("M3", "M4"))
M = S.L_q.I * S.L_p
W = S.L_q.I * (S.mu_q - S.mu_p)
D = S.mu_q - S.mu_p


def density(mean, covariance):
    exponent = -half * QuadraticForm(covariance.I, x - mean)
    return sp.exp(exponent) / sp.sqrt((2 * sp.pi) ** k * sp.Determinant(covariance))


P = density(S.mu_p, S.Sigma_p)


def entry(matrix, row, column):
    return MatrixEntry(matrix, row, column)


def cholesky(matrix, vector, *, diagonal_log=2, lower_upper=-1, constant=-1):
    """The Cholesky form, with knobs for the classic mistakes."""
    m_ii = entry(matrix, i, i)
    return half * (
        sp.Sum(m_ii**2 + constant - diagonal_log * sp.log(m_ii), (i, 1, k))
        + sp.Sum(sp.Sum(entry(matrix, i, j) ** 2, (j, 1, i + lower_upper)), (i, 1, k))
        + SquaredNorm(vector)
    )


TEXTBOOK = half * (
    sp.Trace(S.Sigma_q.I * S.Sigma_p) + QuadraticForm(S.Sigma_q.I, D) - k
    + sp.log(sp.Determinant(S.Sigma_q) / sp.Determinant(S.Sigma_p))
)

# ---------------------------------------------------------------------------- the rules

TRUE_RULES = {
    "cyclic-trace": (sp.Trace(A * B), sp.Trace(B * A)),
    "cyclic-trace-3": (sp.Trace(A * B * C), sp.Trace(C * A * B)),
    "trace-of-transpose": (sp.Trace(A * B), sp.Trace(B.T * A.T)),
    "trace-linear": (sp.Trace(2 * A + B), 2 * sp.Trace(A) + sp.Trace(B)),
    "trace-of-identity": (sp.Trace(sp.Identity(k)), k),
    "inverse-cancels": (sp.Trace(S.Sigma_p.I * A * S.Sigma_p), sp.Trace(A)),
    "inverse-of-product": (sp.Trace((S.L_p * S.L_q).I * A), sp.Trace(S.L_q.I * S.L_p.I * A)),
    "symmetric": (sp.Trace(S.Sigma_p.T * A), sp.Trace(S.Sigma_p * A)),
    "det-scaled": (sp.Determinant(2 * S.Sigma_p), 2**k * sp.Determinant(S.Sigma_p)),
    "det-product": (sp.log(sp.Determinant(S.Sigma_p * S.Sigma_q.I)),
                    sp.log(sp.Determinant(S.Sigma_p)) - sp.log(sp.Determinant(S.Sigma_q))),
    "quadratic-form-as-trace": (QuadraticForm(A, S.mu_p), sp.Trace(A * S.mu_p * S.mu_p.T)),
    "quadratic-form-bilinear": (
        QuadraticForm(S.Sigma_q.I, D) + QuadraticForm(S.Sigma_p.I, -D),
        QuadraticForm(S.Sigma_q.I + S.Sigma_p.I, D),
    ),
    "sum-of-constant": (sp.Sum(3, (i, 1, k)), 3 * k),
}

WRONG_RULES = {
    "trace-not-commutative-3": (sp.Trace(A * B * C), sp.Trace(A * C * B)),
    "trace-transpose-one-factor": (sp.Trace(A * B), sp.Trace(A.T * B)),
    "trace-of-identity-off-by-one": (sp.Trace(sp.Identity(k)), k + 1),
    "trace-linear-wrong-coefficient": (sp.Trace(2 * A + B), sp.Trace(A) + sp.Trace(B)),
    "det-scaled-not-power": (sp.Determinant(2 * S.Sigma_p), 2 * sp.Determinant(S.Sigma_p)),
    "det-inverse-not-reciprocal": (sp.log(sp.Determinant(S.Sigma_p.I)),
                                   sp.log(sp.Determinant(S.Sigma_p))),
    "inverse-order-not-reversed": (sp.Trace((S.L_p * S.L_q).I * A),
                                   sp.Trace(S.L_p.I * S.L_q.I * A)),
    "quadratic-form-sign": (QuadraticForm(A, S.mu_p - S.mu_q), QuadraticForm(A, S.mu_p + S.mu_q)),
}

REFUSED = {
    "inverse-of-undeclared": (sp.Trace(A.I * B * A), sp.Trace(B)),  # A might be singular
    "determinant-of-a-sum": (sp.Determinant(S.Sigma_p + S.Sigma_q), sp.Determinant(S.Sigma_p)),
    "sign-of-undeclared-det": (sp.log(sp.Determinant(A * B)),
                               sp.log(sp.Determinant(A)) + sp.log(sp.Determinant(B))),
    "inverse-of-a-sum": (sp.Trace((S.Sigma_p + S.Sigma_q).I), sp.Trace(S.Sigma_p.I)),
}


@pytest.mark.parametrize("name", sorted(TRUE_RULES))
def test_matrix_rules_hold_for_every_k(name):
    lhs, rhs = TRUE_RULES[name]
    result = run_prover(ALGEBRA, lhs, rhs)
    assert result.ok and result.sizes is None, result


@pytest.mark.parametrize("name", sorted(WRONG_RULES))
def test_wrong_matrix_rules_are_rejected_by_both_sides(name):
    lhs, rhs = WRONG_RULES[name]
    extra = {A: sp.ImmutableMatrix([[1, 2, 0], [sp.Rational(1, 3), 5, -1], [2, 0, 3]]),
             B: sp.ImmutableMatrix([[2, -1, 1], [0, 1, 4], [1, 1, sp.Rational(1, 2)]]),
             C: sp.ImmutableMatrix([[0, 1, 2], [3, -2, 1], [1, 0, 1]])}
    result = check_step(lhs, rhs, prove=ALGEBRA, instances=(numeric_setting(S, 3) | extra,),
                        points=3)
    assert not result.symbolic.ok, result.symbolic
    assert not result.numeric.ok, result.numeric


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_rules_refuse_what_they_do_not_cover(name):
    lhs, rhs = REFUSED[name]
    assert not run_prover(ALGEBRA, lhs, rhs).ok


def test_normal_form_of_a_cyclic_difference_is_zero():
    assert matrix_normal_form(sp.Trace(A * B * C) - sp.Trace(B * C * A)) == 0
    assert matrix_normal_form(sp.Trace(A * B * C) - sp.Trace(A * C * B)) != 0


def test_declared_matrices_print_like_matrix_symbols():
    assert sp.latex(S.Sigma_p) == r"\Sigma_{p}" and sp.latex(S.L_q.I) == r"L_{q}^{-1}"
    assert isinstance(S.Sigma_p, PositiveDefinite) and isinstance(S.L_p, CholeskyFactor)


def test_cholesky_hypothesis_needs_a_declared_factor():
    with pytest.raises(TypeError, match="PositiveDefinite"):
        MatrixAlgebra(cholesky={S.Sigma_p: A})


# ---------------------------------------------------------------------------- the lemmas


def _gauss_check(lhs, rhs, prover=GAUSS):
    return check_step(lhs, rhs, prove=prover, instances=(numeric_setting(S, 2),), points=3)


def test_lemma_m1_normalisation_and_a_wrong_constant():
    assert run_prover(GAUSS, MatrixIntegral(P, x), 1).ok
    result = _gauss_check(MatrixIntegral(P, x), 2)
    assert not result.symbolic.ok and not result.numeric.ok


def test_lemma_m2_expectation_accepts_either_trace_order():
    lhs = MatrixIntegral(P * QuadraticForm(A, x - S.mu_q), x)
    for trace in (sp.Trace(A * S.Sigma_p), sp.Trace(S.Sigma_p * A)):
        result = run_prover(GAUSS, lhs, trace + QuadraticForm(A, S.mu_p - S.mu_q))
        assert result.ok and result.lemmas == ("M2",), result


WRONG_EXPECTATIONS = {
    "no-trace": QuadraticForm(S.Sigma_q, S.mu_p - S.mu_q),
    "trace-of-A-alone": sp.Trace(S.Sigma_q) + QuadraticForm(S.Sigma_q, S.mu_p - S.mu_q),
    "trace-doubled": 2 * sp.Trace(S.Sigma_q * S.Sigma_p)
    + QuadraticForm(S.Sigma_q, S.mu_p - S.mu_q),
    "mean-added": sp.Trace(S.Sigma_q * S.Sigma_p) + QuadraticForm(S.Sigma_q, S.mu_p + S.mu_q),
    "inverse-covariance": sp.Trace(S.Sigma_q * S.Sigma_p.I)
    + QuadraticForm(S.Sigma_q, S.mu_p - S.mu_q),
}


@pytest.mark.parametrize("name", sorted(WRONG_EXPECTATIONS))
def test_wrong_expectations_are_rejected_by_both_sides(name):
    lhs = MatrixIntegral(P * QuadraticForm(S.Sigma_q, x - S.mu_q), x)
    result = _gauss_check(lhs, WRONG_EXPECTATIONS[name])
    assert not result.symbolic.ok, result.symbolic
    assert not result.numeric.ok, result.numeric


def test_gaussian_lemmas_refuse_what_is_not_an_instance():
    rhs = sp.Trace(A * S.Sigma_p) + QuadraticForm(A, S.mu_p - S.mu_q)
    # a covariance not declared positive definite
    plain = sp.MatrixSymbol("Sigma", k, k)
    lhs = MatrixIntegral(density(S.mu_p, plain) * QuadraticForm(A, x - S.mu_q), x)
    assert not run_prover(GAUSS, lhs, rhs.xreplace({S.Sigma_p: plain})).ok
    # a density without its determinant is not normalised
    wrong_density = P * sp.sqrt(sp.Determinant(S.Sigma_p))
    assert not run_prover(GAUSS, MatrixIntegral(wrong_density, x), 1).ok
    # the matrix depends on the integration variable
    lhs = MatrixIntegral(P * QuadraticForm(x * x.T, x - S.mu_q), x)
    assert not run_prover(GAUSS, lhs, sp.Trace(x * x.T * S.Sigma_p)).ok
    # a quadratic form squared is not covered
    lhs = MatrixIntegral(P * QuadraticForm(A, x - S.mu_q) ** 2, x)
    assert not run_prover(GAUSS, lhs, rhs**2).ok
    # lemma M2 not named: refused
    lhs = MatrixIntegral(P * QuadraticForm(A, x - S.mu_q), x)
    assert not run_prover(MatrixAlgebra(lemmas=("M1",)), lhs, rhs).ok


def test_lemmas_m3_m4_give_the_cholesky_form():
    result = run_prover(TRIANGULAR, TEXTBOOK, cholesky(M, W))
    assert result.ok and set(result.lemmas) == {"M3", "M4"}, result


WRONG_CHOLESKY = {
    "log-not-doubled": cholesky(M, W, diagonal_log=1),
    "lower-sum-includes-diagonal": cholesky(M, W, lower_upper=0),
    "missing-minus-one": cholesky(M, W, constant=0),
    "M-swapped": cholesky(S.L_p.I * S.L_q, W),
    "M-transposed-L": cholesky(S.L_q.T.I * S.L_p, W),
    "w-with-L_p": cholesky(M, S.L_p.I * D),
    "w-transposed-L": cholesky(M, S.L_q.T.I * D),
    "w-without-inverse": cholesky(M, S.L_q * D),
}


@pytest.mark.parametrize("name", sorted(WRONG_CHOLESKY))
def test_wrong_cholesky_forms_are_rejected_by_both_sides(name):
    result = check_step(TEXTBOOK, WRONG_CHOLESKY[name], prove=TRIANGULAR,
                        instances=(numeric_setting(S, 3),), points=3)
    assert not result.symbolic.ok, result.symbolic
    assert not result.numeric.ok, result.numeric


def test_w_with_the_other_sign_is_the_same_norm():
    """|-w|^2 = |w|^2: w = L_q^-1 (mu_p - mu_q) is a true variant, and is accepted."""
    assert run_prover(TRIANGULAR, TEXTBOOK, cholesky(M, S.L_q.I * (S.mu_p - S.mu_q))).ok


def test_triangular_lemmas_check_their_side_condition():
    upper = S.L_q.T * S.L_p.T  # upper triangular: the sums over j < i miss its entries
    logdet = sp.Sum(sp.log(entry(upper, i, i)), (i, 1, k))
    assert not run_prover(TRIANGULAR, logdet, sp.log(sp.Determinant(upper))).ok
    assert run_prover(TRIANGULAR, sp.Sum(sp.log(entry(M, i, i)), (i, 1, k)),
                      sp.log(sp.Determinant(M))).ok
    plain = sp.MatrixSymbol("T", k, k)
    logdet = sp.Sum(sp.log(entry(plain, i, i)), (i, 1, k))
    assert not run_prover(TRIANGULAR, logdet, sp.log(sp.Determinant(plain))).ok


WRONG_STEPS = {
    # (label of the step, a wrong right-hand side in the derivation's symbols)
    "log-ratio": ("log-ratio", MatrixIntegral(
        sp.Function("p")(x) * (half * sp.log(sp.Determinant(S.Sigma_q) / sp.Determinant(S.Sigma_p))
                               - half * QuadraticForm(S.Sigma_p.I, x - S.mu_p)
                               + QuadraticForm(S.Sigma_q.I, x - S.mu_q)), x)),
    "log-ratio-det-flipped": ("log-ratio", MatrixIntegral(
        sp.Function("p")(x) * (half * sp.log(sp.Determinant(S.Sigma_p) / sp.Determinant(S.Sigma_q))
                               - half * QuadraticForm(S.Sigma_p.I, x - S.mu_p)
                               + half * QuadraticForm(S.Sigma_q.I, x - S.mu_q)), x)),
    "linearity-drops-normalisation": ("linearity", (
        - half * MatrixIntegral(sp.Function("p")(x) * QuadraticForm(S.Sigma_p.I, x - S.mu_p), x)
        + half * MatrixIntegral(sp.Function("p")(x) * QuadraticForm(S.Sigma_q.I, x - S.mu_q), x))),
    "identity-trace-of-A": ("expectation-identity", (
        half * sp.log(sp.Determinant(S.Sigma_q) / sp.Determinant(S.Sigma_p))
        - half * sp.Trace(S.Sigma_p.I * S.Sigma_p)
        + half * (sp.Trace(S.Sigma_q.I) + QuadraticForm(S.Sigma_q.I, S.mu_p - S.mu_q)))),
    "trace-of-identity-plus-k": ("trace-of-identity", TEXTBOOK + k),
}


@pytest.mark.parametrize("name", sorted(WRONG_STEPS))
def test_wrong_general_k_steps_are_rejected(name):
    d = derive("full")
    label, wrong = WRONG_STEPS[name]
    labels = [s.label for s in d.steps]
    before, step = d.steps[labels.index(label) - 1], d.steps[labels.index(label)]
    result = check_step(before.expr, wrong, definitions=d.definitions, prove=step.prove,
                        instances=(numeric_setting(S, 2),), points=3)
    assert not result.symbolic.ok, result.symbolic
    assert not result.numeric.ok, result.numeric


def test_wrong_near_equal_and_jeffreys_are_rejected():
    flipped = S.L_q.I * (S.Sigma_q - S.Sigma_p) * S.L_q.I.T
    wrong = half * (sp.Trace(flipped) - sp.log(sp.Determinant(sp.Identity(k) + flipped))
                    + QuadraticForm(S.Sigma_q.I, D))
    result = check_step(TEXTBOOK, wrong, prove=TRIANGULAR, instances=(numeric_setting(S, 3),),
                        points=3)
    assert not result.symbolic.ok and not result.numeric.ok
    reverse = TEXTBOOK.xreplace({S.mu_p: S.mu_q, S.mu_q: S.mu_p, S.Sigma_p: S.Sigma_q,
                                 S.Sigma_q: S.Sigma_p})
    wrong = half * (sp.Trace(S.Sigma_q.I * S.Sigma_p) + sp.Trace(S.Sigma_p.I * S.Sigma_q)
                    + QuadraticForm(S.Sigma_q.I + S.Sigma_p.I, D)) - k / 2
    result = check_step(TEXTBOOK + reverse, wrong, prove=ALGEBRA,
                        instances=(numeric_setting(S, 3),), points=3)
    assert not result.symbolic.ok and not result.numeric.ok


def test_every_full_claim_is_general():
    report = derive("full").verify()
    assert report.proved, str(report)
    finite = [c.label for c in report.checks if not c.general]
    assert finite in ([], ["diagonal-special-case"]), finite


def test_atoms_are_keyed_by_the_matrices_not_their_names():
    """A matrix named 'A B' is not the product A B; same-named matrices of other sizes differ."""
    spaced = sp.MatrixSymbol("A B", k, k)
    assert not run_prover(ALGEBRA, sp.Trace(spaced), sp.Trace(A * B)).ok
    n = sp.Symbol("n", integer=True, positive=True)
    other = PositiveDefinite("Sigma_p", n, n)
    assert not run_prover(ALGEBRA, sp.log(sp.Determinant(other)),
                          sp.log(sp.Determinant(S.Sigma_p))).ok


def test_the_verdict_names_the_hypothesis():
    result = run_prover(TRIANGULAR, TEXTBOOK, cholesky(M, W))
    assert "Sigma_p = L_p L_p^T" in result.method, result.method


# ---------------------------------------------------------------------------- lemma evidence


@pytest.mark.parametrize("name", ["M3", "M5"])
def test_matrix_lemma_evidence(name):
    from symkl.proof.lemmas import EVIDENCE_NUMERIC_AT, EVIDENCE_PROVED_AT, lemma_evidence

    verdict = lemma_evidence(name)
    assert verdict.ok, verdict.summary()
    assert verdict.symbolic.sizes == EVIDENCE_PROVED_AT
    assert verdict.numeric.sizes == EVIDENCE_NUMERIC_AT


@pytest.mark.slow
@pytest.mark.parametrize("name", ["M1", "M2", "M4"])
def test_slow_matrix_lemma_evidence(name):
    """M1, M2: symbolic Gaussian integrals up to k = 6 (about a minute each); M4: 6 x 6 inverses."""
    from symkl.proof.lemmas import lemma_evidence

    verdict = lemma_evidence(name)
    assert verdict.ok, verdict.summary()


def _wrong_lemma(name, wrong_rhs):
    from symkl.proof import AtSizes, Settings, check
    from symkl.proof.claims import Claim
    from symkl.proof.lemmas import LEMMAS

    lemma = LEMMAS[name]
    lhs, rhs = lemma.instance(lemma.example())
    sizes = (1, 2, 3)
    setting = lemma.setting or (lambda n: {lemma.k: sp.Integer(n)})
    claim = Claim(f"wrong-{name}", lhs, wrong_rhs(rhs), "", "stated", (), sizes,
                  AtSizes(lemma.k, sizes, setting=setting, inner=lemma.inner),
                  (setting(2),))
    return check(claim, Settings(points=3))


WRONG_LEMMAS = {
    "M1-two": ("M1", lambda rhs: 2 * rhs),
    "M2-no-trace": ("M2", lambda rhs: rhs.args[0] if isinstance(rhs.args[0], QuadraticForm)
                    else rhs.args[1]),
    "M3-doubled": ("M3", lambda rhs: 2 * rhs),
    "M4-trace-of-T": ("M4", lambda rhs: sp.Trace(rhs.arg.args[0])),
    "M5-trace-upside-down": ("M5", lambda rhs: sp.ImmutableMatrix(
        [rhs[0].xreplace({rhs[0].function: 1 / rhs[0].function}),
         rhs[1], rhs[2]])),
}


@pytest.mark.parametrize("name", sorted(WRONG_LEMMAS))
def test_wrong_lemma_statements_fail_their_evidence(name):
    lemma, wrong = WRONG_LEMMAS[name]
    verdict = _wrong_lemma(lemma, wrong)
    assert not verdict.symbolic.ok, verdict.summary()
    assert not verdict.numeric.ok, verdict.summary()


# ------------------------------------------------------------------------ lemma M5 and its prover
# M5 is a schema: one row of its statement per word shape (M5_SHAPES), every row proved at
# k = 1..6 and checked numerically by its evidence.  The prover builds the row's instance
# for each word it meets and refuses anything that is not one.  Before the schema, the prover
# accepted the "too-long", "dense-subclass" and "wrong-size" variants below.

from symkl.proof.lemmas import (  # noqa: E402
    LEMMAS,
    M5_BILINEAR_LETTERS,
    M5_SHAPES,
    M5_TRACE_LETTERS,
)
from symkl.proof.matrices import Column, Diagonal  # noqa: E402

_n = sp.Symbol("n", integer=True, positive=True)
_entries = [sp.IndexedBase(name, positive=True) for name in ("a", "b", "c", "e")]
_u, _v, _w = (sp.IndexedBase(name, real=True) for name in ("u", "v", "w"))
DIAG = [Diagonal(sp.Lambda(_n, base[_n] ** 2), k) for base in _entries]
COL_U, COL_V, COL_W = (Column(sp.Lambda(_n, base[_n]), k) for base in (_u, _v, _w))
ENTRYWISE = MatrixAlgebra(lemmas=("M5",))


def _entry_sum(signs, columns=()):
    body = sp.Mul(*[_entries[n][i] ** (2 * e) for n, e in enumerate(signs)])
    if columns:
        body *= _u[i] * _v[i]
    return sp.Sum(body, (i, 1, k))


def _word(signs):
    return [DIAG[n] if e > 0 else DIAG[n].I for n, e in enumerate(signs)]


def _shape_claim(kind, signs):
    if kind == "trace":
        return sp.Trace(sp.MatMul(*_word(signs))), _entry_sum(signs)
    if kind == "bilinear":
        return sp.Trace(sp.MatMul(COL_U.T, *_word(signs), COL_V)), _entry_sum(signs, "uv")
    return sp.log(sp.Determinant(DIAG[0])), sp.Sum(sp.log(_entries[0][i] ** 2), (i, 1, k))


def test_m5_states_one_row_per_shape_and_its_evidence_covers_every_row():
    lemma = LEMMAS["M5"]
    assert lemma.lhs.shape == lemma.rhs.shape == (len(M5_SHAPES), 1)
    assert len(set(M5_SHAPES)) == len(M5_SHAPES)
    longest = {kind: max(len(s) for kd, s in M5_SHAPES if kd == kind) for kind, _ in M5_SHAPES}
    assert longest == {"trace": M5_TRACE_LETTERS, "bilinear": M5_BILINEAR_LETTERS, "log-det": 1}


def _shape_id(shape):
    return shape[0] + "".join("+-"[e < 0] for e in shape[1])


@pytest.mark.parametrize("shape", M5_SHAPES, ids=_shape_id)
def test_every_m5_shape_is_proved_for_every_k(shape):
    lhs, rhs = _shape_claim(*shape)
    result = run_prover(ENTRYWISE, lhs, rhs)
    assert result.ok and result.lemmas == ("M5",), result.detail
    # and the same shape with a wrong right side is refused
    assert not run_prover(ENTRYWISE, lhs, 2 * rhs).ok


def test_m5_is_only_applied_when_named():
    lhs, rhs = _shape_claim("trace", (1, -1))
    assert not run_prover(ALGEBRA, lhs, rhs).ok


def test_m5_trace_is_read_up_to_rotation_and_the_cross_terms_of_a_quadratic_form():
    first, second = DIAG[0], DIAG[1]
    assert run_prover(ENTRYWISE, sp.Trace(second.I * first), _entry_sum((1, -1))).ok
    form = QuadraticForm(first.I, COL_U - COL_V)
    expected = sp.Sum((_u[i] - _v[i]) ** 2 / _entries[0][i] ** 2, (i, 1, k))
    assert run_prover(ENTRYWISE, form, expected).ok


class _DenseNamedDiagonal(Diagonal):
    """A dense matrix wearing Diagonal's constructor: its entries fill every position."""

    def _entry(self, i, j, **kwargs):
        return self.value(i + 1) * self.value(j + 1)


WRONG_M5 = {
    # a non-diagonal factor sneaked between diagonal ones
    "dense-factor-inside": (sp.Trace(DIAG[0] * A * DIAG[1].I), _entry_sum((1, -1))),
    # a transposed non-diagonal matrix
    "transposed-dense": (sp.Trace(DIAG[0] * A.T), _entry_sum((1,))),
    # two u^T ... v pairs (true as a product of two sums, but no row of M5 states it)
    "two-column-pairs": (sp.Trace(COL_U.T * DIAG[0] * COL_V * COL_W.T * DIAG[0] * COL_V),
                         sp.Sum(_u[i] * _entries[0][i] ** 2 * _v[i], (i, 1, k))
                         * sp.Sum(_w[i] * _entries[0][i] ** 2 * _v[i], (i, 1, k))),
    # words one letter longer than M5 states (true identities, refused: no evidence for them)
    "trace-too-long": (sp.Trace(sp.MatMul(*_word((1,) * (M5_TRACE_LETTERS + 1)))),
                       _entry_sum((1,) * (M5_TRACE_LETTERS + 1))),
    "bilinear-too-long": (sp.Trace(sp.MatMul(COL_U.T, *_word((1,) * (M5_BILINEAR_LETTERS + 1)),
                                             COL_V)),
                          _entry_sum((1,) * (M5_BILINEAR_LETTERS + 1), "uv")),
    # a dense matrix named like a diagonal one, and a Diagonal subclass that is dense
    "matrix-symbol-named-diag": (sp.Trace(sp.MatrixSymbol(DIAG[0].name, k, k)),
                                 _entry_sum((1,))),
    "dense-subclass": (sp.Trace(_DenseNamedDiagonal(DIAG[0].args[0], k)), _entry_sum((1,))),
    "dense-subclass-log-det": (sp.log(sp.Determinant(_DenseNamedDiagonal(DIAG[0].args[0], k))),
                               sp.Sum(sp.log(_entries[0][i] ** 2), (i, 1, k))),
    # a diagonal letter of another size in a k x k word
    "wrong-size": (sp.Trace(DIAG[0] * Diagonal(DIAG[1].args[0], S.j).I), _entry_sum((1, -1))),
    # a column of another size
    "wrong-size-column": (sp.Trace(COL_U.T * DIAG[0] * Column(COL_V.args[0], S.j)),
                          _entry_sum((1,), "uv")),
    # two transposed columns in one word
    "two-row-columns": (sp.Trace(COL_U.T * DIAG[0] * COL_V * COL_U.T * COL_V),
                        _entry_sum((1,), "uv")),
    # entries not shown positive: no inverse, no real log det
    "inverse-of-real-diagonal": (sp.Trace(Diagonal(sp.Lambda(_n, _u[_n]), k).I),
                                 sp.Sum(1 / _u[i], (i, 1, k))),
    "log-det-of-real-diagonal": (sp.log(sp.Determinant(Diagonal(sp.Lambda(_n, _u[_n]), k))),
                                 sp.Sum(sp.log(_u[i]), (i, 1, k))),
    # the right shape with a wrong value (entries upside down)
    "trace-upside-down": (sp.Trace(DIAG[0] * DIAG[1].I), _entry_sum((-1, 1))),
}


@pytest.mark.parametrize("name", sorted(WRONG_M5))
def test_wrong_m5_variants_are_refused(name):
    lhs, rhs = WRONG_M5[name]
    result = run_prover(ENTRYWISE, lhs, rhs)
    assert not result.ok, (name, result)


def test_the_diagonal_hypothesis_must_keep_shapes():
    other = Diagonal(DIAG[0].args[0], S.j)
    with pytest.raises(TypeError, match="same shape"):
        MatrixAlgebra(diagonal={S.Sigma_p: other}, lemmas=("M5",))
    with pytest.raises(TypeError, match="same shape"):
        MatrixAlgebra(diagonal={S.mu_p: Column(COL_U.args[0], S.j)}, lemmas=("M5",))
    with pytest.raises(TypeError, match="positive"):
        MatrixAlgebra(diagonal={S.Sigma_p: Diagonal(sp.Lambda(_n, _u[_n]), k)})


def test_products_and_sums_of_mismatched_shapes_are_refused():
    """SymPy builds k x k times n x n for symbolic k, n; the rules refuse to read it."""
    other = sp.MatrixSymbol("N", S.j, S.j)
    spd = PositiveDefinite("P", S.j, S.j)
    small = Diagonal(DIAG[1].args[0], S.j)
    assert not run_prover(ALGEBRA, sp.Trace(A * other), sp.Trace(other * A)).ok
    log_det = sp.log(sp.Determinant(S.Sigma_p * spd))
    split = sp.log(sp.Determinant(S.Sigma_p)) + sp.log(sp.Determinant(spd))
    assert not run_prover(ALGEBRA, log_det, split).ok
    log_det = sp.log(sp.Determinant(DIAG[0] * small))
    split = (sp.Sum(sp.log(_entries[0][i] ** 2), (i, 1, k))
             + sp.Sum(sp.log(_entries[1][i] ** 2), (i, 1, S.j)))
    assert not run_prover(ENTRYWISE, log_det, split).ok
    assert not run_prover(ALGEBRA, sp.Trace(A + other), sp.Trace(A) + sp.Trace(other)).ok


# ------------------------------------------- bound indices around M5 instances are not captured


def _m5_outer_sum_claims():
    """(lhs, true rhs, wrong rhs): an outer index j in the entries of the letters M5 sums over."""
    from symkl.proof.matrices import Column, Diagonal

    n, j = sp.symbols("n j", integer=True, positive=True)
    a = sp.IndexedBase("a", positive=True)
    trace = sp.Sum(sp.Trace(Diagonal(sp.Lambda(n, j * a[n]), k)), (j, 1, k))
    logdet = sp.Sum(sp.log(sp.Determinant(Diagonal(sp.Lambda(n, j + a[n]), k))), (j, 1, 3))
    column = Column(sp.Lambda(n, j * a[n]), k)
    norm = sp.Sum(sp.Trace(column.T * column), (j, 1, 3))
    return {
        "trace": (trace, k * (k + 1) / 2 * sp.Sum(a[i], (i, 1, k)),
                  k * sp.Sum(i * a[i], (i, 1, k))),
        "log-det": (logdet, sp.Sum(sum(sp.log(c + a[i]) for c in (1, 2, 3)), (i, 1, k)),
                    3 * sp.Sum(sp.log(i + a[i]), (i, 1, k))),
        "u^T u": (norm, 14 * sp.Sum(a[i] ** 2, (i, 1, k)),
                  3 * sp.Sum(i**2 * a[i] ** 2, (i, 1, k))),
    }


@pytest.mark.parametrize("shape", ["trace", "log-det", "u^T u"])
def test_m5_under_an_outer_sum_proves_the_true_value_and_refuses_the_captured_one(shape):
    lhs, true, wrong = _m5_outer_sum_claims()[shape]
    algebra = MatrixAlgebra(lemmas=("M5",))
    result = run_prover(algebra, lhs, true)
    assert result.ok and result.lemmas == ("M5",), result
    assert not run_prover(algebra, lhs, wrong).ok
    # both sides at k = 2 with numbers, independently of the rules
    a = sp.IndexedBase("a", positive=True)
    values = {a[1]: sp.Rational(3, 7), a[2]: sp.Rational(5, 2)}
    at_two = [sp.N(side.xreplace({k: 2}).doit().xreplace(values), 30)
              for side in (lhs, true, wrong)]
    assert abs(at_two[0] - at_two[1]) < 1e-25 and abs(at_two[0] - at_two[2]) > 1e-3


# ------------------------------------------------------- a lemma's evidence gates its verdicts


@pytest.fixture
def evidence_of_m3_and_l2_fails(monkeypatch):
    """lemma_evidence as if M3 and L2 were the wrong statements: their checks fail."""
    from symkl.proof import lemmas

    failed = _wrong_lemma("M3", lambda rhs: 2 * rhs)
    assert not failed.ok
    real = lemmas.lemma_evidence
    monkeypatch.setattr(lemmas, "_EVIDENCE_VERDICTS", {})
    monkeypatch.setattr(lemmas, "lemma_evidence",
                        lambda name, settings=None: failed if name in ("M3", "L2") else real(name))
    return failed


def test_a_lemma_whose_evidence_fails_is_named_by_the_evidence_gate(evidence_of_m3_and_l2_fails):
    from symkl.proof.lemmas import evidence_refusal

    assert "lemma M3 is not backed" in evidence_refusal(["M1", "M3"])
    assert "lemma L2 is not backed" in evidence_refusal(["L2"])


def test_verify_json_fails_a_derivation_resting_on_unbacked_lemmas(
    evidence_of_m3_and_l2_fails, capsys
):
    """``symkl verify --json`` reports the evidence and fails the derivation by it."""
    import json

    from symkl.cli import EXIT_FAILED, main

    assert main(["verify", "diagonal", "--json"]) == EXIT_FAILED  # diagonal rests on L1, L2
    captured = capsys.readouterr()
    assert "lemma L2 is not backed" in captured.err
    (document,) = json.loads(captured.out)
    assert document["lemma_evidence_ok"] is False


def test_the_evidence_gate_passes_backed_lemmas(monkeypatch):
    import types

    from symkl.proof import lemmas

    monkeypatch.setattr(lemmas, "_EVIDENCE_VERDICTS", {})
    monkeypatch.setattr(lemmas, "lemma_evidence",
                        lambda name, settings=None: types.SimpleNamespace(ok=True))
    assert lemmas.evidence_refusal(["M3", "L2"]) == ""


# ----------------------------------------------------------- hypotheses are stated in the scope


def test_a_diagonal_hypothesis_is_carried_into_the_scope():
    from symkl.kl.full import diagonal_setting
    from symkl.model import diagonal_symbols
    from symkl.proof import Claim, check
    from symkl.proof.matrices import Diagonal

    n = sp.Symbol("n", integer=True, positive=True)
    a = diagonal_symbols().sigma_p
    algebra = MatrixAlgebra(diagonal={S.Sigma_p: Diagonal(sp.Lambda(n, a[n] ** 2), k)},
                            lemmas=("M5",))
    sides = (sp.Trace(S.Sigma_p), sp.Sum(a[i] ** 2, (i, 1, k)))
    result = run_prover(algebra, *sides)
    hypothesis = "Sigma_p = diag(sigma_p[i]**2)"
    assert result.ok and result.hypotheses == (hypothesis,), result
    verdict = check(Claim("trace-of-diagonal", *sides, prover=algebra,
                          instances=(diagonal_setting(S, 2),)))
    assert verdict.ok, verdict.summary()
    assert verdict.scope.startswith(f"for all k from lemmas M5, given {hypothesis}"), verdict.scope
    assert verdict.as_dict()["symbolic"]["hypotheses"] == [hypothesis]


def test_a_column_written_as_its_entries_is_no_restriction():
    from symkl.proof.matrices import Column

    n = sp.Symbol("n", integer=True, positive=True)
    m = sp.IndexedBase("m", real=True)
    assert MatrixAlgebra(diagonal={S.mu_p: Column(sp.Lambda(n, m[n]), k)}).restrictions() == ()
    shifted = MatrixAlgebra(diagonal={S.mu_p: Column(sp.Lambda(n, m[n] + 1), k)})
    assert shifted.restrictions() == ("mu_p = column(m[i] + 1)",)


def test_one_cholesky_factor_for_two_matrices_is_refused():
    # Sigma_p = L L^T and Sigma_q = L L^T would assume Sigma_p = Sigma_q: tr(Sigma_q^-1 Sigma_p) = k
    with pytest.raises(ValueError, match="both given the factor L_p"):
        MatrixAlgebra(cholesky={S.Sigma_p: S.L_p, S.Sigma_q: S.L_p})


def test_full_states_the_diagonal_hypothesis_of_its_special_case_only():
    report = derive("full").verify()
    special = report.check("diagonal-special-case")
    assert special.hypotheses and "given Sigma_p = diag(" in special.scope, special.scope
    others = [c for c in report.checks if c.label != "diagonal-special-case"]
    assert all(not c.hypotheses and "given" not in c.scope for c in others)
    assert "diagonal-special-case given Sigma_p" in report.scope, report.scope


# ------------------------------------------------ integer MatPow is the word it abbreviates


def test_an_integer_matrix_power_is_the_word_it_abbreviates():
    from symkl.proof.matrices import Diagonal

    n = sp.Symbol("n", integer=True, positive=True)
    a = sp.IndexedBase("a", positive=True)
    diagonal = Diagonal(sp.Lambda(n, a[n]), k)
    assert isinstance(diagonal * diagonal, sp.MatPow)  # what SymPy makes of D D
    m5 = MatrixAlgebra(lemmas=("M5",))
    assert run_prover(m5, sp.Trace(diagonal * diagonal), sp.Sum(a[i] ** 2, (i, 1, k))).ok
    assert not run_prover(m5, sp.Trace(diagonal * diagonal), sp.Sum(a[i] ** 3, (i, 1, k))).ok
    assert run_prover(m5, sp.Trace(diagonal**-2), sp.Sum(a[i] ** -2, (i, 1, k))).ok
    # D^4 is a word of four letters: true, but M5 states no such row (no evidence for it)
    result = run_prover(m5, sp.Trace(diagonal**4), sp.Sum(a[i] ** 4, (i, 1, k)))
    assert not result.ok and "states no trace of 4" in result.detail
    spd = S.Sigma_p
    assert run_prover(ALGEBRA, sp.Trace(spd * spd * spd.I), sp.Trace(spd)).ok
    assert run_prover(ALGEBRA, sp.log(sp.Determinant(spd * spd)),
                      2 * sp.log(sp.Determinant(spd))).ok
    assert not run_prover(ALGEBRA, sp.Trace(spd**sp.Rational(1, 2)), sp.Trace(spd)).ok


def test_a_squared_cholesky_factor_is_triangular_for_m3():
    square = S.L_p * S.L_p
    assert isinstance(square, sp.MatPow)
    logdet = sp.Sum(sp.log(entry(square, i, i)), (i, 1, k))
    assert run_prover(TRIANGULAR, logdet, 2 * sp.log(sp.Determinant(S.L_p))).ok
    assert not run_prover(TRIANGULAR, logdet, 3 * sp.log(sp.Determinant(S.L_p))).ok
