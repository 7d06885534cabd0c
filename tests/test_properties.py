"""Property-based tests (hypothesis) of the numeric KL functions."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import symkl
from symkl.harness import reference_term_mp

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)

means = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
scales = st.floats(1e-3, 1e3, allow_nan=False, allow_infinity=False)
log_variances = st.floats(-30, 30, allow_nan=False, allow_infinity=False)
dimension = st.integers(1, 6)


@st.composite
def diagonal_pairs(draw, k=None):
    k = k or draw(dimension)
    vector = st.lists
    return tuple(
        np.array(draw(vector(strategy, min_size=k, max_size=k)))
        for strategy in (means, scales, means, scales)
    )


@SETTINGS
@given(diagonal_pairs())
def test_kl_is_non_negative_and_zero_only_for_equal_distributions(pair):
    mu_p, s_p, mu_q, s_q = pair
    value = symkl.kl_diag(mu_p, s_p, mu_q, s_q, param="std")
    assert value >= 0
    assert symkl.kl_diag(mu_p, s_p, mu_p, s_p, param="std") == 0.0
    if np.any(mu_p != mu_q) or np.any(s_p != s_q):
        assert value > 0


@SETTINGS
@given(diagonal_pairs())
def test_asymmetry_and_symmetric_variant(pair):
    mu_p, s_p, mu_q, s_q = pair
    forward = symkl.kl_diag(mu_p, s_p, mu_q, s_q, param="std")
    backward = symkl.kl_diag(mu_q, s_q, mu_p, s_p, param="std")
    assert symkl.kl_diag_reverse(mu_p, s_p, mu_q, s_q, param="std") == backward
    jeffreys = symkl.kl_diag_symmetric(mu_p, s_p, mu_q, s_q, param="std")
    assert jeffreys == symkl.kl_diag_symmetric(mu_q, s_q, mu_p, s_p, param="std")
    assert jeffreys == pytest.approx(forward + backward, rel=1e-13)


def test_kl_is_not_symmetric_in_general():
    assert symkl.kl_normal(0.0, 1.0, 0.0, 2.0) != symkl.kl_normal(0.0, 2.0, 0.0, 1.0)


@SETTINGS
@given(diagonal_pairs(), diagonal_pairs())
def test_additive_over_independent_dimensions(first, second):
    joined = [np.concatenate([a, b]) for a, b in zip(first, second, strict=True)]
    total = symkl.kl_diag(*joined, param="std")
    parts = symkl.kl_diag(*first, param="std") + symkl.kl_diag(*second, param="std")
    assert total == pytest.approx(parts, rel=1e-14, abs=1e-300)


@SETTINGS
@given(
    diagonal_pairs(k=3),
    st.lists(st.floats(-1e2, 1e2).filter(lambda v: abs(v) > 1e-2), min_size=3, max_size=3),
    st.lists(st.floats(-1e2, 1e2), min_size=3, max_size=3),
)
def test_invariant_under_the_same_affine_map(pair, scale, shift):
    """x -> A x + b with A diagonal (invertible) applied to both distributions."""
    mu_p, s_p, mu_q, s_q = pair
    scale, shift = np.array(scale), np.array(shift)
    moved = (scale * mu_p + shift, np.abs(scale) * s_p, scale * mu_q + shift, np.abs(scale) * s_q)
    before = symkl.kl_diag(mu_p, s_p, mu_q, s_q, param="std")
    after = symkl.kl_diag(*moved, param="std")
    # the inputs themselves are rounded by the map: compare with the exact value of each
    assert after == pytest.approx(before, rel=1e-9, abs=1e-12)


@SETTINGS
@given(st.data())
def test_invariant_under_a_general_invertible_map(data):
    """Full covariance: x -> A x + b with a random well-conditioned A."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    k = data.draw(st.integers(1, 4))
    factor_p, factor_q = rng.normal(size=(k, k)) + 3 * np.eye(k), rng.normal(size=(k, k))
    factor_q += 3 * np.eye(k)
    cov_p, cov_q = factor_p @ factor_p.T, factor_q @ factor_q.T
    mu_p, mu_q = rng.normal(size=k), rng.normal(size=k)
    a = rng.normal(size=(k, k)) + 4 * np.eye(k)
    b = rng.normal(size=k)
    before = symkl.kl_mvn(mu_p, cov_p, mu_q, cov_q)
    after = symkl.kl_mvn(a @ mu_p + b, a @ cov_p @ a.T, a @ mu_q + b, a @ cov_q @ a.T)
    assert after == pytest.approx(before, rel=1e-9, abs=1e-12)


@SETTINGS
@given(diagonal_pairs())
def test_parameterisations_agree(pair):
    mu_p, s_p, mu_q, s_q = pair
    std = symkl.kl_diag(mu_p, s_p, mu_q, s_q, param="std")
    var = symkl.kl_diag(mu_p, s_p**2, mu_q, s_q**2, param="var")
    logvar = symkl.kl_diag(mu_p, 2 * np.log(s_p), mu_q, 2 * np.log(s_q), param="logvar")
    # each converts the scales with its own rounding (relative 1e-16 of s, so ~1e-16 * k
    # absolute in the KL's log term and more where the KL is tiny): compare accordingly
    assert var == pytest.approx(std, rel=1e-9, abs=1e-12)
    assert logvar == pytest.approx(std, rel=1e-9, abs=1e-12)


@SETTINGS
@given(diagonal_pairs())
def test_diagonal_equals_full_covariance_with_diagonal_matrices(pair):
    mu_p, s_p, mu_q, s_q = pair
    diag = symkl.kl_diag(mu_p, s_p, mu_q, s_q, param="std")
    full = symkl.kl_mvn(mu_p, np.diag(s_p**2), mu_q, np.diag(s_q**2))
    assert full == pytest.approx(diag, rel=1e-9, abs=1e-12)


@SETTINGS
@given(means, log_variances, means, log_variances)
def test_gradients_agree_with_mpmath_finite_differences(mu_p, logvar_p, mu_q, logvar_q):
    gradient = symkl.grad_kl_diag(mu_p, logvar_p, mu_q, logvar_q, param="logvar")
    values = [mpmath.mpf(v) for v in (mu_p, logvar_p, mu_q, logvar_q)]
    with mpmath.workdps(50):
        for position, got in enumerate(gradient):

            def along(t, position=position):
                moved = list(values)
                moved[position] += t
                return reference_term_mp(*moved, "logvar")

            truth = mpmath.diff(along, 0)
            scale = max(abs(truth), mpmath.mpf(1e-300))
            assume(mpmath.isfinite(truth))
            assert (
                float(abs(mpmath.mpf(float(got)) - truth) / scale) <= 1e-12
                or abs(float(truth)) < 1e-30
            )
