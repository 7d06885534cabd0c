"""Numeric KL functions: accuracy in ULPs against mpmath, properties, bad input, sync."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys

import mpmath
import numpy as np
import pytest

import symkl
from symkl import numeric
from symkl.harness import reference_term, reference_term_mp, run_harness, ulp_distance

FLOAT64_ULP = 4.0
FLOAT32_ULP = 1.0


def _bound(dtype: str, k: int = 1) -> float:
    return FLOAT32_ULP if dtype == "float32" else FLOAT64_ULP + math.log2(max(k, 1))


HARNESS = [
    ("normal", symkl.kl_normal, "std", 1),
    ("diag", symkl.kl_diag, "std", 1),
    ("diag", symkl.kl_diag, "var", 1),
    ("diag", symkl.kl_diag, "logvar", 1),
    ("diag", symkl.kl_diag, "var", 64),
    ("diag", symkl.kl_diag, "logvar", 64),
    ("std-normal", symkl.kl_std_normal, "logvar", 1),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("family", "function", "param", "k"), HARNESS)
def test_accuracy_in_ulps_against_mpmath(family, function, param, k, dtype):
    cases = 1500 if k == 1 else 40
    result = run_harness(function, family, param, dtype, cases=cases, seed=11, k=k)
    assert result.worst_ulp <= _bound(dtype, k), result.message()


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("param", ["std", "var", "logvar"])
def test_accuracy_exhaustive(param, dtype):
    for seed in range(5):
        result = run_harness(symkl.kl_diag, "diag", param, dtype, cases=20000, seed=seed)
        assert result.worst_ulp <= _bound(dtype), result.message()
    result = run_harness(symkl.kl_diag, "diag", param, dtype, cases=20, seed=9, k=1024)
    assert result.worst_ulp <= _bound(dtype, 1024), result.message()


def test_numpy_backend_matches_the_c_backend_and_meets_the_same_bounds():
    code = (
        "import symkl; from symkl.harness import run_harness\n"
        "assert symkl.backend() == 'numpy'\n"
        "for p in ('std', 'var', 'logvar'):\n"
        "    r = run_harness(symkl.kl_diag, 'diag', p, 'float64', cases=800, seed=2)\n"
        "    assert r.worst_ulp <= 4, r.message()\n"
        "r = run_harness(symkl.kl_std_normal, 'std-normal', 'logvar', 'float64', cases=800)\n"
        "assert r.worst_ulp <= 4, r.message()\n"
    )
    env = {"SYMKL_BACKEND": "numpy", "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=300)


def test_compiled_backend_is_used_when_a_compiler_exists():
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler on this machine: the NumPy kernels are used")
    assert symkl.backend() == "c", "a C compiler exists but symkl/_kernels.c was not built"


def test_textbook_formula_fails_where_symkl_does_not():
    """The motivating case: a 1e-12 variance difference."""
    sigma_q = 1.0 + 1e-12
    textbook = math.log(sigma_q) + 1.0 / (2 * sigma_q**2) - 0.5
    truth = reference_term(0.0, 1.0, 0.0, sigma_q, "std")
    got = float(symkl.kl_normal(0.0, 1.0, 0.0, sigma_q))
    assert abs(got - float(truth)) <= 4 * np.spacing(float(truth))
    assert abs(textbook - float(truth)) >= 0.5 * float(truth)  # returns 0 or noise


def test_tiny_kl_down_to_1e_minus_30_and_exact_zero():
    var_q = 1.0 + 2e-15
    got = float(symkl.kl_diag([0.0], [1.0], [0.0], [var_q]))
    truth = float(reference_term(0.0, 1.0, 0.0, var_q, "var"))
    assert 1e-31 < truth < 1e-29
    assert abs(got - truth) <= 4 * np.spacing(truth)
    assert symkl.kl_diag(np.ones(3), np.ones(3), np.ones(3), np.ones(3)) == 0.0
    assert symkl.kl_std_normal(np.zeros(4), np.zeros(4)) == 0.0


def test_kl_std_normal_over_logvar_minus_60_to_60_is_finite_and_accurate():
    logvar = np.linspace(-60, 60, 241)
    got = symkl.kl_std_normal(np.zeros_like(logvar)[:, None], logvar[:, None])
    assert np.all(np.isfinite(got)) and np.all(got >= 0)
    for value, lv in zip(got, logvar, strict=True):
        truth = reference_term(0.0, float(lv), 0.0, 0.0, "logvar")
        assert abs(value - float(truth)) <= 4 * np.spacing(float(truth)) or truth == 0
    assert np.isinf(symkl.kl_std_normal([0.0], [800.0]))


def test_never_negative_on_random_valid_input():
    rng = np.random.default_rng(5)
    for param in ("std", "var", "logvar"):
        mu = rng.normal(size=(2000, 8))
        s = rng.uniform(0.5, 2, size=(2000, 8)) if param != "logvar" else rng.normal(size=(2000, 8))
        close = s * (1 + rng.normal(size=s.shape) * 1e-14) if param != "logvar" else s + 1e-15
        values = symkl.kl_diag(mu, s, mu, close, param=param)
        assert np.all(values >= 0)


def test_parameterisations_agree_and_dimensions_add():
    rng = np.random.default_rng(6)
    mu_p, mu_q = rng.normal(size=(2, 50, 7))
    sigma_p, sigma_q = rng.uniform(0.2, 3, size=(2, 50, 7))
    std = symkl.kl_diag(mu_p, sigma_p, mu_q, sigma_q, param="std")
    var = symkl.kl_diag(mu_p, sigma_p**2, mu_q, sigma_q**2, param="var")
    logvar = symkl.kl_diag(mu_p, 2 * np.log(sigma_p), mu_q, 2 * np.log(sigma_q), param="logvar")
    np.testing.assert_allclose(std, var, rtol=1e-14)
    np.testing.assert_allclose(std, logvar, rtol=1e-13)
    per_coordinate = symkl.kl_normal(mu_p, sigma_p, mu_q, sigma_q)
    np.testing.assert_allclose(std, per_coordinate.sum(axis=-1), rtol=1e-14)


def test_invariant_under_the_same_affine_map():
    rng = np.random.default_rng(7)
    mu_p, mu_q = rng.normal(size=(2, 100))
    sigma_p, sigma_q = rng.uniform(0.2, 3, size=(2, 100))
    scale, shift = 3.7, -12.5
    before = symkl.kl_normal(mu_p, sigma_p, mu_q, sigma_q)
    after = symkl.kl_normal(
        scale * mu_p + shift, scale * sigma_p, scale * mu_q + shift, scale * sigma_q
    )
    np.testing.assert_allclose(before, after, rtol=1e-12)


def test_axis_and_broadcasting():
    rng = np.random.default_rng(8)
    mu = rng.normal(size=(4, 5, 6))
    logvar = rng.normal(size=(4, 5, 6))
    along_1 = symkl.kl_std_normal(mu, logvar, axis=1)
    assert along_1.shape == (4, 6)
    np.testing.assert_allclose(
        along_1, symkl.kl_std_normal(np.moveaxis(mu, 1, -1), np.moveaxis(logvar, 1, -1)), rtol=1e-15
    )
    # q = N(0, I) through broadcasting scalars equals the VAE term
    np.testing.assert_allclose(
        symkl.kl_diag(mu, logvar, 0.0, 0.0, param="logvar"),
        symkl.kl_std_normal(mu, logvar),
        rtol=1e-14,
    )


def test_large_input_uses_threads_and_matches_small_blocks():
    rng = np.random.default_rng(9)
    mu_p, mu_q = rng.normal(size=(2, 3000, 100))
    var_p, var_q = rng.uniform(0.1, 2, size=(2, 3000, 100))
    whole = symkl.kl_diag(mu_p, var_p, mu_q, var_q)
    pieces = np.concatenate(
        [
            symkl.kl_diag(mu_p[i : i + 7], var_p[i : i + 7], mu_q[i : i + 7], var_q[i : i + 7])
            for i in range(0, 3000, 7)
        ]
    )
    np.testing.assert_array_equal(whole, pieces)


def test_dtypes_and_integers():
    assert (
        symkl.kl_diag(
            np.zeros(3, np.float32),
            np.ones(3, np.float32),
            np.ones(3, np.float32),
            np.ones(3, np.float32),
        ).dtype
        == np.float32
    )
    assert (
        symkl.kl_diag(np.zeros(3, np.float32), np.ones(3, np.float32), 0.0, 1.0).dtype == np.float32
    )
    value = symkl.kl_normal(0, 1, 1, 2)
    assert value.dtype == np.float64 and float(value) == float(symkl.kl_normal(0.0, 1.0, 1.0, 2.0))


def test_reverse_and_symmetric():
    args = (0.3, 1.2, -0.4, 0.7)
    forward = symkl.kl_normal(*args)
    reverse = symkl.kl_normal_reverse(*args)
    assert forward != reverse
    np.testing.assert_allclose(symkl.kl_normal_symmetric(*args), forward + reverse, rtol=1e-14)
    np.testing.assert_allclose(
        symkl.kl_normal_symmetric(*args),
        symkl.kl_normal_symmetric(args[2], args[3], args[0], args[1]),
        rtol=1e-15,
    )
    np.testing.assert_allclose(
        symkl.kl_diag_symmetric([0.3], [1.44], [-0.4], [0.49]), forward + reverse, rtol=1e-14
    )


def _finite_difference(function, args, index):
    with mpmath.workdps(60):
        step = mpmath.mpf("1e-20")
        up = list(map(mpmath.mpf, args))
        down = list(map(mpmath.mpf, args))
        up[index] += step
        down[index] -= step
        return (function(*up) - function(*down)) / (2 * step)


@pytest.mark.parametrize("param", ["std", "var", "logvar"])
def test_gradients_match_high_precision_finite_differences(param):
    rng = np.random.default_rng(10)
    for _ in range(5):
        mu_p, mu_q = rng.normal(size=2)
        s_p, s_q = rng.uniform(0.3, 2, size=2)
        if param == "logvar":
            s_p, s_q = np.log(s_p), np.log(s_q)
        args = [float(mu_p), float(s_p), float(mu_q), float(s_q)]
        grads = symkl.grad_kl_diag(*args, param=param)

        def kl(a, b, c, d):
            return _mp_term(a, b, c, d, param)

        for index in range(4):
            expected = float(_finite_difference(kl, args, index))
            assert float(grads[index]) == pytest.approx(expected, rel=1e-12, abs=1e-14)
    mu, logvar = 0.7, -0.3
    g_mu, g_logvar = symkl.grad_kl_std_normal(mu, logvar)
    assert float(g_mu) == pytest.approx(0.7) and float(g_logvar) == pytest.approx(
        math.expm1(-0.3) / 2
    )


def _mp_term(mu_p, s_p, mu_q, s_q, param):
    if param == "std":
        vp, vq = s_p**2, s_q**2
    elif param == "var":
        vp, vq = s_p, s_q
    else:
        vp, vq = mpmath.exp(s_p), mpmath.exp(s_q)
    return mpmath.log(vq / vp) / 2 + (vp + (mu_p - mu_q) ** 2) / (2 * vq) - mpmath.mpf(1) / 2


# --------------------------------------------------------------------------- kl_mvn


def _mvn_truth(mu_p, cov_p, mu_q, cov_q):
    with mpmath.workdps(50):
        cp, cq = mpmath.matrix(cov_p.tolist()), mpmath.matrix(cov_q.tolist())
        d = mpmath.matrix((np.asarray(mu_q) - np.asarray(mu_p)).tolist())
        inverse = cq**-1
        k = len(mu_p)
        trace = mpmath.fsum((inverse * cp)[i, i] for i in range(k))
        return 0.5 * (
            trace + (d.T * inverse * d)[0] - k + mpmath.log(mpmath.det(cq) / mpmath.det(cp))
        )


def test_kl_mvn_relative_error_for_condition_up_to_1e4():
    rng = np.random.default_rng(12)
    worst = 0.0
    for _ in range(60):
        k = int(rng.integers(1, 6))
        matrices = []
        for _ in range(2):
            q, _ = np.linalg.qr(rng.normal(size=(k, k)))
            eigen = 10 ** rng.uniform(-2, 2, size=k)
            matrices.append((q * eigen) @ q.T)
            matrices[-1] = (matrices[-1] + matrices[-1].T) / 2
        mu_p, mu_q = rng.normal(size=(2, k))
        got = float(symkl.kl_mvn(mu_p, matrices[0], mu_q, matrices[1]))
        truth = _mvn_truth(mu_p, matrices[0], mu_q, matrices[1])
        if truth >= 1e-8:
            worst = max(worst, float(abs(got - truth) / truth))
    assert worst <= 1e-12


def test_kl_mvn_exactly_zero_never_negative_and_diagonal_agrees():
    rng = np.random.default_rng(13)
    a = rng.normal(size=(5, 4, 4))
    cov = a @ np.swapaxes(a, -1, -2) + 4 * np.eye(4)
    mu = rng.normal(size=(5, 4))
    assert np.all(symkl.kl_mvn(mu, cov, mu, cov) == 0.0)
    close = cov * (1 + 1e-13)
    assert np.all(symkl.kl_mvn(mu, cov, mu, close) >= 0)
    var_p, var_q = rng.uniform(0.1, 3, size=(2, 4))
    np.testing.assert_allclose(
        symkl.kl_mvn(mu[0], np.diag(var_p), mu[1], np.diag(var_q)),
        symkl.kl_diag(mu[0], var_p, mu[1], var_q),
        rtol=1e-13,
    )


def test_grad_kl_mvn_matches_finite_differences():
    rng = np.random.default_rng(14)
    a = rng.normal(size=(3, 3))
    cov_p, cov_q = a @ a.T + np.eye(3), np.eye(3) * 2 + 0.3
    mu_p, mu_q = rng.normal(size=(2, 3))
    grads = symkl.grad_kl_mvn(mu_p, cov_p, mu_q, cov_q)
    step = 1e-6
    for which, base in ((1, cov_p), (3, cov_q)):
        for i in range(3):
            for j in range(3):
                bumped = [mu_p, cov_p, mu_q, cov_q]
                up, down = base.copy(), base.copy()
                up[i, j] += step
                down[i, j] -= step
                # a non-symmetric bump: evaluate the textbook form directly
                expected = (
                    _textbook(*_replace(bumped, which, up))
                    - _textbook(*_replace(bumped, which, down))
                ) / (2 * step)
                assert grads[which][i, j] == pytest.approx(expected, rel=1e-6, abs=1e-8)
    for which in (0, 2):
        for i in range(3):
            args = [mu_p.copy(), cov_p, mu_q.copy(), cov_q]
            up, down = args[which].copy(), args[which].copy()
            up[i] += step
            down[i] -= step
            expected = (
                _textbook(*_replace(args, which, up)) - _textbook(*_replace(args, which, down))
            ) / (2 * step)
            assert grads[which][i] == pytest.approx(expected, rel=1e-6, abs=1e-8)


def _replace(args, index, value):
    args = list(args)
    args[index] = value
    return args


def _textbook(mu_p, cov_p, mu_q, cov_q):
    inverse = np.linalg.inv(cov_q)
    d = mu_q - mu_p
    return 0.5 * (
        np.trace(inverse @ cov_p)
        + d @ inverse @ d
        - len(d)
        + np.log(np.linalg.det(cov_q) / np.linalg.det(cov_p))
    )


# --------------------------------------------------------------------------- bad input

BAD_DIAG = [
    (dict(s_p=[0.0]), "'s_p' (param='var') must be finite and > 0"),
    (dict(s_p=[-1.0]), "got -1.0"),
    (dict(s_q=[np.nan]), "'s_q' (param='var') must be finite and > 0"),
    (dict(s_q=[np.inf]), "must be finite and > 0"),
    (dict(mu_p=[np.nan]), "'mu_p' must be finite"),
    (dict(mu_q=[1.0, 2.0, 3.0]), "shapes do not broadcast"),
    (dict(mu_p=[1j]), "'mu_p' is complex"),
    (dict(s_p=["a"]), "'s_p' has non-numeric dtype"),
    (dict(s_p=[True]), "'s_p' is boolean"),
]


@pytest.mark.parametrize(("change", "message"), BAD_DIAG)
def test_kl_diag_bad_input_names_the_argument(change, message):
    args = {"mu_p": [0.0, 1.0], "s_p": [1.0, 2.0], "mu_q": [0.0, 0.0], "s_q": [1.0, 1.0]}
    args.update(change)
    with pytest.raises(
        ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
    ):
        symkl.kl_diag(**args)


def test_bad_input_reports_the_index_in_the_broadcast_shape():
    s_p = np.ones((3, 4))
    s_p[2, 1] = -2.0
    with pytest.raises(ValueError, match=r"got -2.0 at index \(2, 1\)"):
        symkl.kl_diag(np.zeros((3, 4)), s_p, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"at index \(2, 1\)"):
        symkl.kl_diag(np.zeros((3, 4)), s_p, 0.0, 1.0, axis=0)


def test_unknown_param_axis_and_validate_false():
    with pytest.raises(
        ValueError, match="unknown param='variance'; expected one of 'std', 'var', 'logvar'"
    ):
        symkl.kl_diag([0.0], [1.0], [0.0], [1.0], param="variance")
    with pytest.raises(ValueError, match="axis=3 is out of range"):
        symkl.kl_diag([0.0], [1.0], [0.0], [1.0], axis=3)
    assert symkl.kl_diag([0.0], [1.0], [0.0], [1.0], validate=False) == 0.0
    with pytest.raises(ValueError, match="'logvar' \\(param='logvar'\\) must be finite"):
        symkl.kl_std_normal([0.0], [np.nan])
    with pytest.raises(ValueError, match="'sigma_p' \\(param='std'\\) must be finite and > 0"):
        symkl.kl_normal(0.0, 0.0, 0.0, 1.0)


@pytest.mark.parametrize(
    ("cov_p", "message"),
    [
        (np.ones((2, 3)), "'cov_p' must be a square matrix"),
        (np.array([[1.0, 0.5], [0.0, 1.0]]), "'cov_p' is not symmetric"),
        (np.array([[1.0, 2.0], [2.0, 1.0]]), "'cov_p' is not positive definite"),
        (np.eye(3), "'cov_p' is 3x3 but the means have dimension 2"),
        (np.array([[np.nan, 0.0], [0.0, 1.0]]), "'cov_p' contains NaN"),
    ],
)
def test_kl_mvn_bad_covariance(cov_p, message):
    with pytest.raises(numeric.CovarianceError, match=message):
        symkl.kl_mvn([0.0, 0.0], cov_p, [0.0, 0.0], np.eye(2))
    assert issubclass(numeric.CovarianceError, np.linalg.LinAlgError)
    assert issubclass(numeric.CovarianceError, ValueError)


def test_kl_mvn_bad_means():
    with pytest.raises(ValueError, match="mu_p has dimension 2 but mu_q has 3"):
        symkl.kl_mvn([0.0, 0.0], np.eye(2), [0.0, 0.0, 0.0], np.eye(2))
    with pytest.raises(ValueError, match="'mu_q' must be finite"):
        symkl.kl_mvn([0.0, 0.0], np.eye(2), [0.0, np.inf], np.eye(2))


def test_numeric_api_does_not_import_sympy():
    code = (
        "import sys, symkl\n"
        "symkl.kl_diag([0.0], [1.0], [0.0], [2.0]); symkl.kl_mvn([0.0], [[1.0]], [1.0], [[2.0]])\n"
        "symkl.grad_kl_diag(0.0, 1.0, 0.0, 2.0); symkl.kl_std_normal([0.0], [0.0])\n"
        "assert 'sympy' not in sys.modules, 'sympy was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# --------------------------------------------------------------------------- extreme values
#
# The domain of issue 14: scales 1e-150..1e150, variances 1e-300..1e300, log-variances in
# [-700, 700], means up to +-1e150.  There, on the compiled and the NumPy backend: never
# NaN, inf exactly when the true value exceeds the largest double, otherwise <= 4 ULP.

DBL_MAX = float(np.finfo(np.float64).max)
EXTREME_ULP = 4.0


@pytest.fixture(params=["c", "numpy"])
def backend(request, monkeypatch):
    """Run a test on the compiled kernels and on the NumPy fallback (the same process)."""
    if request.param == "c":
        if numeric._LIBRARY is None:
            pytest.skip("the C kernels are not built here")
    else:
        monkeypatch.setattr(numeric, "_LIBRARY", None)
    return request.param


def _truth(mu_p, s_p, mu_q, s_q, param):
    """The closed form at a precision raised until two evaluations 40 digits apart agree:
    a KL of 1e-300 from O(1) terms needs some 340 digits."""
    values = [float(v) for v in (mu_p, s_p, mu_q, s_q)]
    if values[0] == values[2] and values[1] == values[3]:
        return mpmath.mpf(0)
    dps = 60
    while True:
        with mpmath.workdps(dps):
            low = reference_term_mp(*(mpmath.mpf(v) for v in values), param)
        with mpmath.workdps(dps + 40):
            high = reference_term_mp(*(mpmath.mpf(v) for v in values), param)
            if high != 0 and abs(high - low) <= abs(high) * mpmath.mpf(10) ** -30:
                return high
        dps *= 2


def _extreme_error(got: float, truth) -> float:
    """0 for a right answer; ULPs for a finite one; inf for NaN or a wrong (in)finity."""
    overflows = abs(truth) > DBL_MAX
    if overflows or np.isinf(got) or np.isnan(got):
        return 0.0 if (overflows and got == np.inf) else np.inf
    return ulp_distance(got, truth, np.float64)


def _extreme_cases(rng: np.random.Generator, n: int, param: str) -> list[np.ndarray]:
    """Parameters spread over every order of magnitude of the domain, with near-equal pairs,
    equal means and equal scales mixed in (where the KL is tiny or exactly a/2)."""

    def means() -> np.ndarray:
        spread = rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-150, 150, n)
        return np.where(rng.random(n) < 0.2, 0.0, spread)

    def scales() -> np.ndarray:
        if param == "logvar":
            return rng.uniform(-700, 700, n)
        return (
            10.0 ** rng.uniform(-150, 150, n)
            if param == "std"
            else 10.0 ** rng.uniform(-300, 300, n)
        )

    mu_p, s_p, mu_q, s_q = means(), scales(), means(), scales()
    near = rng.random(n)
    nudged = (
        s_q + rng.uniform(-2, 2, n)
        if param == "logvar"
        else s_q * (1 + 10.0 ** rng.uniform(-15, -1, n) * rng.choice([-1.0, 1.0], n))
    )
    s_p = np.where(near < 0.3, nudged, np.where(near < 0.4, s_q, s_p))
    mu_p = np.where(rng.random(n) < 0.2, mu_q, mu_p)
    return [mu_p, s_p, mu_q, s_q]


def _sweep(param: str, cases: int, seed: int) -> tuple[int, float, list]:
    """(count, worst error, the worst few cases) of kl_diag over the extreme domain."""
    rng = np.random.default_rng(seed)
    arrays = _extreme_cases(rng, cases, param)
    got = symkl.kl_diag(*(a[:, None] for a in arrays), param=param)
    errors = []
    for i in range(cases):
        values = [float(a[i]) for a in arrays]
        errors.append(
            (_extreme_error(float(got[i]), _truth(*values, param)), values, float(got[i]))
        )
    errors.sort(key=lambda e: -e[0])
    return cases, errors[0][0], errors[:3]


@pytest.mark.parametrize("param", ["std", "var", "logvar"])
def test_extreme_domain_sample_against_mpmath(param, backend):
    _, worst, examples = _sweep(param, 400, seed=14)
    assert worst <= EXTREME_ULP, f"{backend} {param}: worst {worst} ULP at {examples}"


@pytest.mark.slow
@pytest.mark.parametrize("param", ["std", "var", "logvar"])
def test_extreme_domain_exhaustive(param, backend):
    for seed in range(5):
        _, worst, examples = _sweep(param, 20000, seed=seed)
        assert worst <= EXTREME_ULP, f"{backend} {param} seed {seed}: {worst} ULP at {examples}"


def test_kl_std_normal_extreme_domain(backend):
    rng = np.random.default_rng(15)
    mu = np.where(rng.random(600) < 0.2, 0.0, 10.0 ** rng.uniform(-150, 150, 600))
    logvar = np.concatenate([rng.uniform(-700, 700, 500), rng.uniform(-1e-3, 1e-3, 100)])
    got = symkl.kl_std_normal(mu[:, None], logvar[:, None])
    errors = [
        _extreme_error(float(g), _truth(m, lv, 0.0, 0.0, "logvar"))
        for g, m, lv in zip(got, mu, logvar, strict=True)
    ]
    assert max(errors) <= EXTREME_ULP


@pytest.mark.parametrize(
    ("function", "args", "param"),
    [
        # a variance ratio of 1e-400 underflows: its log is taken by exponent splitting
        (symkl.kl_normal, (0.0, 1e-200, 0.0, 1e200), "std"),
        (symkl.kl_normal, (0.0, 5e-324, 0.0, 1.0), "std"),
        (symkl.kl_normal, (0.0, 1e-160, 0.0, 1e160), "std"),
        # expm1(710) overflows, KL = 1.1e308 does not (was 0.0)
        ("logvar", (0.0, 710.0, 0.0, 0.0), "logvar"),
        ("logvar", (0.0, 710.2, 0.0, 0.0), "logvar"),
        ("logvar", (0.0, 710.6, 0.0, 0.0), "logvar"),
        ("logvar", (0.0, 709.0, 0.0, -1.0), "logvar"),
        ("logvar", (1e149, 0.0, -1e149, 690.0), "logvar"),
        # (1e-200)^2 underflows and e^800 overflows; their product is 2.7e-53 (was NaN)
        ("logvar", (1e-200, -800.0, 0.0, -800.0), "logvar"),
        ("logvar", (1e150, 700.0, -1e150, -700.0), "logvar"),
        ("var", (0.0, 2.9e-255, -8.8e15, 4.3e119), "var"),
        ("var", (0.0, 1e-300, 0.0, 1e300), "var"),
        ("var", (0.0, 5e-324, 0.0, 1.0), "var"),
        # x = 2e308 overflows, KL = 1e308 does not
        ("var", (0.0, 1e308, 0.0, 0.5), "var"),
        (symkl.kl_normal, (0.0, 1.5e154, 0.0, 1.0), "std"),
        (symkl.kl_normal, (0.0, 2e154, 0.0, 1.0), "std"),
        (symkl.kl_normal, (1e150, 1e-150, -1e150, 1e-150), "std"),
    ],
)
def test_named_extremes_are_right(function, args, param, backend):
    if isinstance(function, str):
        got = float(symkl.kl_diag(*([a] for a in args), param=function))
    else:
        got = float(function(*args))
    truth = _truth(*args, param)
    assert _extreme_error(got, truth) <= EXTREME_ULP, (got, mpmath.nstr(truth, 17))


def _jeffreys_truth(mu_p, s_p, mu_q, s_q, param):
    return _truth(mu_p, s_p, mu_q, s_q, param) + _truth(mu_q, s_q, mu_p, s_p, param)


@pytest.mark.parametrize("param", ["std", "var", "logvar"])
def test_symmetric_forms_over_the_extreme_domain(param):
    """KL(p||q) + KL(q||p) as 1/2 (a + a' - x x'): no 0/0 where squares underflow."""
    rng = np.random.default_rng(16)
    arrays = _extreme_cases(rng, 300, param)
    got = symkl.kl_diag_symmetric(*(a[:, None] for a in arrays), param=param)
    for i in range(300):
        values = [float(a[i]) for a in arrays]
        error = _extreme_error(float(got[i]), _jeffreys_truth(*values, param))
        assert error <= EXTREME_ULP, (values, float(got[i]))


@pytest.mark.parametrize(
    "args", [(0.0, 1e-170, 1e-170, 2e-170), (1e-170, 3e-170, -1e-170, 1e-170), (0, 1e-300, 0, 1)]
)
def test_symmetric_forms_at_tiny_scales(args):
    got = float(symkl.kl_normal_symmetric(*args))
    truth = _jeffreys_truth(*args, "std")
    assert _extreme_error(got, truth) <= EXTREME_ULP, (got, mpmath.nstr(truth, 17))
    got = float(symkl.kl_diag_symmetric(*([a] for a in args), param="std"))
    assert _extreme_error(got, truth) <= EXTREME_ULP, (got, mpmath.nstr(truth, 17))
    logvars = (args[0], 2 * math.log(args[1]), args[2], 2 * math.log(args[3]))
    got = float(symkl.kl_diag_symmetric(*([a] for a in logvars), param="logvar"))
    truth = _jeffreys_truth(*logvars, "logvar")
    assert _extreme_error(got, truth) <= EXTREME_ULP, (got, mpmath.nstr(truth, 17))


def _true_gradient(mu_p, s_p, mu_q, s_q, param):
    """The derivatives, hand-written here as an independent check, at 800 digits (their
    terms cancel down to 1e-300 of each other)."""
    with mpmath.workdps(800):
        mu_p, s_p, mu_q, s_q = (mpmath.mpf(float(v)) for v in (mu_p, s_p, mu_q, s_q))
        d = mu_p - mu_q
        if param == "var":
            return (d / s_q, (1 / s_q - 1 / s_p) / 2, -d / s_q, (s_q - s_p - d**2) / (2 * s_q**2))
        if param == "std":
            return (
                d / s_q**2,
                s_p / s_q**2 - 1 / s_p,
                -d / s_q**2,
                1 / s_q - (s_p**2 + d**2) / s_q**3,
            )
        e = mpmath.exp(-s_q)
        ratio = mpmath.exp(s_p - s_q)
        return (d * e, (ratio - 1) / 2, -d * e, (1 - ratio - d**2 * e) / 2)


@pytest.mark.parametrize("param", ["std", "var", "logvar"])
def test_gradients_finite_wherever_the_true_gradient_is(param):
    rng = np.random.default_rng(17)
    arrays = _extreme_cases(rng, 300, param)
    grads = symkl.grad_kl_diag(*arrays, param=param)
    for i in range(300):
        values = [float(a[i]) for a in arrays]
        for got, truth in zip(
            (float(g[i]) for g in grads), _true_gradient(*values, param), strict=True
        ):
            if abs(truth) > DBL_MAX:
                assert np.isinf(got) and np.sign(got) == mpmath.sign(truth), (values, got)
                continue
            assert np.isfinite(got), (values, got, mpmath.nstr(truth, 17))
            # relative 1e-13, or below the smallest normal where the gradient is subnormal
            assert abs(got - truth) <= 1e-13 * abs(truth) + 1e-300, (values, got, truth)


@pytest.mark.parametrize("param", ["std", "var", "logvar"])
def test_validate_false_propagates_nan_never_a_finite_value(param, backend):
    ones = np.ones(8)
    for position in range(4):
        args = [
            np.zeros(8),
            ones.copy() if param != "logvar" else np.zeros(8),
            np.zeros(8),
            ones.copy() if param != "logvar" else np.zeros(8),
        ]
        args[position][5] = np.nan
        got = symkl.kl_diag(*args, param=param, validate=False)
        assert np.isnan(got), (position, got)
        rows = symkl.kl_diag(*(a[:, None] for a in args), param=param, validate=False)
        assert np.isnan(rows[5]) and np.all(rows[np.arange(8) != 5] == 0.0)
    if param != "logvar":
        for bad in (-1.0, 0.0, -np.inf):
            got = symkl.kl_diag([0.0], [bad], [0.0], [1.0], param=param, validate=False)
            assert np.isnan(got), (bad, got)
            got = symkl.kl_diag([0.0], [1.0], [0.0], [bad], param=param, validate=False)
            assert np.isnan(got), (bad, got)
    got = symkl.kl_std_normal([0.0, np.nan], [0.0, 0.0], validate=False)
    assert np.isnan(got)
    got = symkl.kl_std_normal([0.0, 0.0], [0.0, np.nan], validate=False)
    assert np.isnan(got)


@pytest.mark.parametrize("target", ["numpy", "torch", "jax"])
def test_exported_modules_are_right_at_the_extremes(target, tmp_path):
    """The exports run the same printed kernel body: the same answers at the extremes."""
    import importlib.util

    from symkl.export import write_export

    framework = pytest.importorskip(target)
    path = write_export(target, tmp_path / f"kl_{target}.py")
    if target == "jax":  # before the module builds its float64 table
        previous = framework.config.jax_enable_x64
        framework.config.update("jax_enable_x64", True)
    spec = importlib.util.spec_from_file_location(f"kl_{target}_extremes", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def run(function, *args, **options):
        values = [np.asarray([a], dtype=np.float64) for a in args]
        if target == "torch":
            values = [framework.from_numpy(v) for v in values]
        elif target == "jax":
            values = [framework.numpy.asarray(v) for v in values]
        return float(np.asarray(function(*values, **options)).reshape(-1)[0])

    cases = [
        (module.kl_normal, (0.0, 1e-200, 0.0, 1e200), "std", {}),
        (module.kl_diag, (0.0, 710.0, 0.0, 0.0), "logvar", {"param": "logvar"}),
        (module.kl_diag, (1e-200, -800.0, 0.0, -800.0), "logvar", {"param": "logvar"}),
        (module.kl_diag, (0.0, 1e-300, 0.0, 1e300), "var", {"param": "var"}),
        (module.kl_diag, (0.0, 1e308, 0.0, 0.5), "var", {"param": "var"}),
        (module.kl_diag, (0.0, 710.6, 0.0, 0.0), "logvar", {"param": "logvar"}),
    ]
    try:
        for function, args, param, options in cases:
            if function is module.kl_diag:
                got = run(function, *args, **options)
            else:
                got = run(function, *args)
            truth = _truth(*args, param)
            assert _extreme_error(got, truth) <= EXTREME_ULP, (target, args, got)
        # validate=False propagates NaN; the default refuses it with the argument's name
        assert np.isnan(run(module.kl_diag, 0.0, np.nan, 0.0, 1.0, param="var", validate=False))
        with pytest.raises(ValueError, match="s_p"):
            run(module.kl_diag, 0.0, np.nan, 0.0, 1.0, param="var")
    finally:
        if target == "jax":
            framework.config.update("jax_enable_x64", previous)


def _gradient_is_right(got, truth) -> bool:
    if abs(truth) > DBL_MAX:
        return bool(np.isinf(got) and np.sign(got) == mpmath.sign(truth))
    return bool(np.isfinite(got) and abs(got - truth) <= 1e-13 * abs(truth) + 1e-300)


@pytest.mark.parametrize(
    ("point", "param"),
    [
        # 1/sigma_q = 1e200 is finite (reported as inf in review; right in this tree)
        ((1e-200, 1e-200, 0.0, 1e-200), "std"),
        ((1e-200, 1e-200, 0.0, 1e-200), "var"),
        ((1e-200, -460.0, 0.0, -460.0), "logvar"),
        ((1e150, 1e-150, -1e150, 1e150), "std"),
    ],
)
def test_gradients_at_tiny_and_huge_scales(point, param):
    got = symkl.grad_kl_diag(*point, param=param)
    for part, truth in zip(got, _true_gradient(*point, param), strict=True):
        assert _gradient_is_right(float(part), truth), (point, param, float(part), truth)
    if param == "std":
        assert all(
            _gradient_is_right(float(part), truth)
            for part, truth in zip(
                symkl.grad_kl_normal(*point), _true_gradient(*point, param), strict=True
            )
        )


#: points where d/d(scale of q) = -(a + x)/v cancels (a, x ~ +-1): the printed gradient
#: returned 0 at the first three before the exact sums (facts gradient-exact-*)
CANCELLING_POINTS = [
    ((1e-150, 1e-200, 0.0, 1e-150), "std"),  # truth -1e50
    ((1.0, 1e-200, 0.0, 1.0), "var"),  # truth -5e-201
    ((1.0, -100.0, 0.0, 0.0), "logvar"),  # truth -e^-100/2
    ((3.0, 4.0, 0.0, 5.0), "std"),  # 3^2 + 4^2 - 5^2 = 0: exactly 0
    ((1e-150, 1e-300, -2e-150, 1e-299), "var"),
    ((0.75, 1e-30, -0.25, 1.0), "std"),
]


@pytest.mark.parametrize(("point", "param"), CANCELLING_POINTS)
def test_gradients_where_the_scale_derivative_cancels(point, param):
    got = symkl.grad_kl_diag(*point, param=param)
    truth = _true_gradient(*point, param)
    for part, expected in zip(got, truth, strict=True):
        assert _gradient_is_right(float(part), expected), (point, float(part), expected)
    if param == "std":
        got = symkl.grad_kl_normal(*point)
        assert _gradient_is_right(float(got[3]), truth[3]), (float(got[3]), truth[3])


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_framework_gradients_where_the_scale_derivative_cancels(framework):
    """The same printed gradient behind torch's autograd and JAX's custom_jvp, also for the
    reverse form (its derivative in p's scale is the cancelling one)."""
    module = pytest.importorskip(framework)
    if framework == "jax":
        previous = module.config.jax_enable_x64
        module.config.update("jax_enable_x64", True)
    try:
        for point, param in CANCELLING_POINTS:
            truth = _true_gradient(*point, param)
            reverse_truth = _true_gradient(*(point[2], point[3], point[0], point[1]), param)
            for function, expected, position in (
                (symkl.kl_diag, truth[3], 3),
                (symkl.kl_diag_reverse, reverse_truth[3], 1),
            ):
                got = _framework_gradient(module, framework, function, point, param)[position]
                assert _gradient_is_right(got, expected), (framework, point, got, expected)
    finally:
        if framework == "jax":
            module.config.update("jax_enable_x64", previous)


def _framework_gradient(module, framework: str, function, point, param) -> list[float]:
    if framework == "torch":
        tensors = [module.tensor([v], dtype=module.float64, requires_grad=True) for v in point]
        function(*tensors, param=param).sum().backward()
        return [float(t.grad[0]) for t in tensors]
    import jax.numpy as jnp

    arrays = [jnp.asarray([v], dtype=jnp.float64) for v in point]
    grads = module.grad(lambda *a: function(*a, param=param).sum(), argnums=(0, 1, 2, 3))(
        *arrays
    )
    return [float(g[0]) for g in grads]


def _cancelling_cases(rng: np.random.Generator, n: int, param: str) -> list[np.ndarray]:
    """Points near the surface a + x = 0 of the issue's extreme domain: (mu_p - mu_q)^2 +
    v_p = v_q to a relative 1e-18..1e-2 (or as rounded), v_p from v_q down to the domain's
    end, the means shifted together by up to 1e3 of their difference."""
    nudge = np.where(
        rng.random(n) < 0.3, 0.0, rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-18, -2, n)
    )
    if param == "logvar":
        logvar_q = rng.uniform(-700, 700, n)
        gap = 10.0 ** rng.uniform(-8, np.log10(logvar_q + 700.0))
        logvar_p = logvar_q - gap
        difference = np.exp(0.5 * logvar_q) * np.sqrt(-np.expm1(-gap)) * (1 + nudge)
        s_p, s_q = logvar_p, logvar_q
    else:
        high, exponent = (150, 1) if param == "std" else (300, 2)
        s_q = 10.0 ** rng.uniform(-high, high, n)
        ratio = 10.0 ** rng.uniform(-2 * high, 0, n)
        s_p = np.maximum(s_q * ratio, 10.0**-high)
        ratio = s_p / s_q
        with np.errstate(divide="ignore"):  # a ratio that underflows to 0: root 1
            root = np.sqrt(-np.expm1(exponent * np.log(ratio)))  # sqrt(1 - ratio^exponent)
        difference = s_q ** (exponent / 2) * root * (1 + nudge) if exponent == 2 else (
            s_q * root * (1 + nudge)
        )
    mu_q = np.where(
        rng.random(n) < 0.5,
        0.0,
        rng.choice([-1.0, 1.0], n) * difference * 10.0 ** rng.uniform(-3, 3, n),
    )
    mu_p = mu_q + difference
    return [mu_p, s_p, mu_q, s_q]


def _condition_allowance(mu_p, s_p, mu_q, s_q, param):
    """What the rounding of e^{-l_q} (no hi + lo exponential in the array kernels) can cost
    the log-variance scale gradient: 2^-50 (a + |x|)/2; 0 for the other forms."""
    if param != "logvar":
        return 0.0
    with mpmath.workdps(30):
        mu_p, s_p, mu_q, s_q = (mpmath.mpf(float(v)) for v in (mu_p, s_p, mu_q, s_q))
        a = (mu_p - mu_q) ** 2 * mpmath.exp(-s_q)
        x = mpmath.expm1(s_p - s_q)
        return float(mpmath.mpf(2) ** -50 * (a + abs(x)) / 2)


@pytest.mark.parametrize("param", ["std", "var", "logvar"])
def test_seeded_search_for_cancelling_gradients(param):
    """Every component against mpmath (800 digits: 60 do not resolve a cancellation to
    1e-100) near the cancelling surface: finite, within 1e-13 relative (+ 1e-300 absolute,
    + the log-variance allowance above)."""
    rng = np.random.default_rng(1414)
    arrays = _cancelling_cases(rng, 400, param)
    grads = symkl.grad_kl_diag(*arrays, param=param)
    failures = []
    for i in range(400):
        values = [float(a[i]) for a in arrays]
        allowance = _condition_allowance(*values, param)
        for position, (got, truth) in enumerate(
            zip((float(g[i]) for g in grads), _true_gradient(*values, param), strict=True)
        ):
            if abs(truth) > DBL_MAX:
                right = np.isinf(got) and np.sign(got) == mpmath.sign(truth)
            else:
                slack = allowance if position == 3 else 0.0
                right = np.isfinite(got) and abs(got - truth) <= (
                    1e-13 * abs(truth) + 1e-300 + slack
                )
            if not right:
                failures.append((values, position, got, mpmath.nstr(truth, 17)))
    assert not failures, f"{len(failures)} wrong, e.g. {failures[:3]}"


def _true_jeffreys_gradient(mu_p, s_p, mu_q, s_q, param):
    """The derivatives of J = KL(p||q) + KL(q||p), hand-written here, at 800 digits."""
    with mpmath.workdps(800):
        mu_p, s_p, mu_q, s_q = (mpmath.mpf(float(v)) for v in (mu_p, s_p, mu_q, s_q))
        m = mu_p - mu_q
        if param == "var":
            return (
                m / s_q + m / s_p,
                1 / (2 * s_q) - (s_q + m**2) / (2 * s_p**2),
                -m / s_q - m / s_p,
                1 / (2 * s_p) - (s_p + m**2) / (2 * s_q**2),
            )
        if param == "std":
            return (
                m / s_q**2 + m / s_p**2,
                s_p / s_q**2 - (s_q**2 + m**2) / s_p**3,
                -m / s_q**2 - m / s_p**2,
                s_q / s_p**2 - (s_p**2 + m**2) / s_q**3,
            )
        e_p, e_q = mpmath.exp(s_p), mpmath.exp(s_q)
        return (
            m * (1 / e_q + 1 / e_p),
            (e_p / e_q - (e_q + m**2) / e_p) / 2,
            -m * (1 / e_q + 1 / e_p),
            (e_q / e_p - (e_p + m**2) / e_q) / 2,
        )


def _jeffreys_allowance(mu_p, s_p, mu_q, s_q, param, position):
    """The log-variance allowance (rounded e^-l): 2^-50 times the terms' magnitudes / 2."""
    if param != "logvar" or position % 2 == 0:
        return 0.0
    if position == 3:
        mu_p, s_p, mu_q, s_q = mu_q, s_q, mu_p, s_p
    with mpmath.workdps(30):
        mu_p, s_p, mu_q, s_q = (mpmath.mpf(float(v)) for v in (mu_p, s_p, mu_q, s_q))
        d = s_p - s_q
        terms = mpmath.exp(d) + mpmath.exp(-d) + (mu_p - mu_q) ** 2 * mpmath.exp(-s_p)
        return float(mpmath.mpf(2) ** -50 * terms / 2)


def _stationary_jeffreys_cases(rng: np.random.Generator, n: int, param: str) -> list[np.ndarray]:
    """Points near dJ/d(scale of p) = 0, where the two KLs' scale derivatives cancel:
    m^2 = s_p^2 (r^2 - 1/r^2) (std), v_q (r^2 - 1) (var), e^{l_p} 2 sinh(l_p - l_q)
    (logvar), r the scale ratio > 1, m nudged by a relative 1e-17..1e-3 (or not)."""
    nudge = np.where(
        rng.random(n) < 0.3, 0.0, rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-17, -3, n)
    )
    if param == "logvar":
        s_q = rng.uniform(-600, 600, n)
        gap = 10.0 ** rng.uniform(-8, 2, n)
        s_p = s_q + gap
        difference = np.exp(0.5 * s_p) * np.sqrt(2 * np.sinh(gap))
    else:
        ratio = 1 + 10.0 ** rng.uniform(-8, 2, n)
        if param == "std":
            s_q = 10.0 ** rng.uniform(-140, 140, n)
            s_p = s_q * ratio
            difference = s_p * np.sqrt(ratio**2 - ratio**-2)
        else:
            s_q = 10.0 ** rng.uniform(-290, 290, n)
            s_p = s_q * ratio
            difference = np.sqrt(s_q) * np.sqrt(ratio**2 - 1)
    mu_q = np.where(rng.random(n) < 0.5, 0.0, difference * 10.0 ** rng.uniform(-3, 3, n))
    mu_p = mu_q + difference * (1 + nudge)
    swap = rng.random(n) < 0.5  # the stationary scale on either side
    return [np.where(swap, mu_q, mu_p), np.where(swap, s_q, s_p),
            np.where(swap, mu_p, mu_q), np.where(swap, s_p, s_q)]


@pytest.mark.parametrize("param", ["std", "var", "logvar"])
def test_seeded_search_for_cancelling_jeffreys_gradients(param):
    """The Jeffreys divergence's gradient (what torch and JAX differentiate kl_*_symmetric
    with) near its stationary points, every component against mpmath: finite, within 1e-13
    relative (+ 1e-300, + the log-variance allowance)."""
    from symkl.frameworks import gradient_terms

    rng = np.random.default_rng(1415)
    arrays = _stationary_jeffreys_cases(rng, 300, param)
    grads = gradient_terms("numpy", param, True, arrays)
    failures = []
    for i in range(300):
        values = [float(a[i]) for a in arrays]
        truths = _true_jeffreys_gradient(*values, param)
        for position, truth in enumerate(truths):
            got = float(grads[position][i])
            slack = _jeffreys_allowance(*values, param, position)
            if abs(truth) > DBL_MAX:
                right = np.isinf(got) and np.sign(got) == mpmath.sign(truth)
            else:
                right = np.isfinite(got) and abs(got - truth) <= 1e-13 * abs(truth) + 1e-300 + slack
            if not right:
                failures.append((values, position, got, mpmath.nstr(truth, 17)))
    assert not failures, f"{len(failures)} wrong, e.g. {failures[:3]}"


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_framework_jeffreys_gradients_where_they_cancel(framework):
    module = pytest.importorskip(framework)
    if framework == "jax":
        previous = module.config.jax_enable_x64
        module.config.update("jax_enable_x64", True)
    try:
        for param in ("std", "var"):
            arrays = _stationary_jeffreys_cases(np.random.default_rng(1416), 20, param)
            for i in range(20):
                point = tuple(float(a[i]) for a in arrays)
                got = _framework_gradient(module, framework, symkl.kl_diag_symmetric, point, param)
                for g, truth in zip(got, _true_jeffreys_gradient(*point, param), strict=True):
                    assert _gradient_is_right(g, truth), (framework, param, point, g, truth)
    finally:
        if framework == "jax":
            module.config.update("jax_enable_x64", previous)
