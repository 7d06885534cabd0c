"""The diagonal derivation on R^k: symbolic k, honest methods, textbook agreement, soundness."""

from __future__ import annotations

import pytest
import sympy as sp

from symkl import check_step, derive
from symkl.derivation import instantiate, proved_for_general_k_or_at
from symkl.kl.diagonal import direct_integration
from symkl.model import diagonal_symbols

S = diagonal_symbols()
k, i = S.k, S.i


@pytest.fixture(scope="module")
def diagonal():
    return derive("diagonal")


def test_every_step_is_proved_for_general_k_from_the_lemmas(diagonal):
    report = diagonal.verify()
    by_label = {c.label: c for c in report.checks}
    assert all(c.general for c in report.checks), [c.label for c in report.checks if not c.general]
    assert by_label["sum-out-of-integral"].lemmas == ("L1",)
    assert by_label["marginalise"].lemmas == ("L2",)
    assert by_label["log-of-product"].lemmas == ()  # proved outright, no lemma
    assert report.scope == "for all k from lemmas L1, L2"
    for label in ("product-density", "log-of-product", "sum-out-of-integral", "marginalise",
                  "reverse"):  # k-fold integrals, by Gauss-Hermite rules exact for the degree
        assert by_label[label].numeric.sizes == (2, 3, 4, 5, 6)
        assert "gauss-hermite-exact" in by_label[label].numeric.integration
    for label in ("univariate-per-coordinate", "named-terms", "jeffreys"):
        assert by_label[label].numeric.sizes == (2, 3, 4, 5, 6)
    assert "univariate" in by_label["univariate-per-coordinate"].symbolic.method


def test_wrong_general_k_steps_are_refused(diagonal):
    """Each new general-k step, altered, is refused by its own prover."""
    from symkl.proof import check

    claims = {c.label: c for c in diagonal.claims()}
    wrong = {
        "log-of-product": lambda e: e.xreplace({S.sigma_q: S.sigma_p}),
        "sum-out-of-integral": lambda e: 2 * e,
        "marginalise": lambda e: e.xreplace({S.mu_q: S.mu_p}),
    }
    for label, alter in wrong.items():
        claim = claims[label]
        altered = check(claim.__class__(claim.label, claim.lhs, alter(claim.rhs), claim.reason,
                                        prover=claim.prover, instances=claim.instances[:1]))
        assert not altered.symbolic.ok, label


def test_rendering_shows_the_method_per_step_and_the_lemmas(diagonal):
    from symkl.render import derivation_to_markdown

    text = derivation_to_markdown(diagonal, diagonal.verify())
    assert "instance of lemma L2" in text and "**Assumed lemmas**" in text
    assert text.count("**L1**") == 1 and text.count("**L2**") == 1
    assert "instance of the proved theorem 'univariate'" in text
    assert "for all k from lemmas L1, L2" in text


@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_closed_form_is_the_textbook_sum(diagonal, size):
    # textbook formula, typed here only: sum of univariate KLs
    textbook = sum(
        sp.log(S.sigma_q[n] / S.sigma_p[n])
        + (S.sigma_p[n] ** 2 + (S.mu_p[n] - S.mu_q[n]) ** 2) / (2 * S.sigma_q[n] ** 2)
        - sp.Rational(1, 2)
        for n in range(1, size + 1)
    )
    assert sp.simplify(instantiate(diagonal.closed_form, {k: size}) - textbook) == 0


@pytest.mark.parametrize("size", [2, 3])
def test_direct_integration_over_Rk_agrees_with_the_sum(size):
    direct, closed = direct_integration(size)
    assert sp.simplify(sp.expand_log(direct - closed)) == 0


def test_dimension_term_is_minus_k_over_two(diagonal):
    assert diagonal.terms["dimension_term"] == -k / 2


def _wrong(diagonal, name):
    closed = diagonal.closed_form.function
    sp_, sq = S.sigma_p[i], S.sigma_q[i]
    return {
        "missing-minus-k": sp.Sum(closed + sp.Rational(1, 2), (i, 1, k)),
        # tr(Sigma_p^-1 Sigma_q) in place of tr(Sigma_q^-1 Sigma_p)
        "trace-of-wrong-product": sp.Sum(
            closed - sp_**2 / (2 * sq**2) + sq**2 / (2 * sp_**2), (i, 1, k)
        ),
        "determinant-ratio-inverted": sp.Sum(closed - 2 * sp.log(sq / sp_), (i, 1, k)),
        "mean-term-over-p": sp.Sum(
            closed
            - (S.mu_p[i] - S.mu_q[i]) ** 2 / (2 * sq**2)
            + (S.mu_p[i] - S.mu_q[i]) ** 2 / (2 * sp_**2),
            (i, 1, k),
        ),
    }[name]


@pytest.mark.parametrize(
    "name",
    ["missing-minus-k", "trace-of-wrong-product", "determinant-ratio-inverted", "mean-term-over-p"],
)
def test_wrong_multivariate_closed_forms_are_rejected(diagonal, name):
    wrong = _wrong(diagonal, name)
    result = check_step(
        diagonal.closed_form,
        wrong,
        prove=proved_for_general_k_or_at(k),
        instances=({k: 2}, {k: 3}),
    )
    assert not result.symbolic.ok and not result.numeric.ok, name


def test_wrong_marginalisation_is_rejected(diagonal):
    # forgetting that the other factors integrate to one: a stray factor of 2 per coordinate
    marginal = next(s for s in diagonal.steps if s.label == "marginalise").expr
    previous = next(s for s in diagonal.steps if s.label == "sum-out-of-integral").expr
    wrong = sp.Sum(2 * marginal.function, *marginal.limits)
    result = check_step(
        previous,
        wrong,
        definitions=diagonal.definitions,
        prove=proved_for_general_k_or_at(k),
        instances=({k: 2},),
        points=3,
    )
    assert not result.symbolic.ok and not result.numeric.ok
