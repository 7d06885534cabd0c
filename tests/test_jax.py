"""JAX arrays through every public function: dtype, jit, vmap, custom_jvp, float64 ULP, checks."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

import symkl  # noqa: E402

PARAMS = ["std", "var", "logvar"]


@pytest.fixture(autouse=True)
def _x64():
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def _inputs(shape=(5, 4), dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    mu_p = rng.standard_normal(shape)
    s_p = rng.random(shape) + 0.5
    mu_q = rng.standard_normal(shape[-1:])
    s_q = rng.random((1, shape[-1])) + 0.5
    return [jnp.asarray(a, dtype=dtype) for a in (mu_p, s_p, mu_q, s_q)]


def _calls():
    calls = [
        ("kl_normal", lambda *t, **o: symkl.kl_normal(*t, **o)),
        ("kl_normal_reverse", lambda *t, **o: symkl.kl_normal_reverse(*t, **o)),
        ("kl_normal_symmetric", lambda *t, **o: symkl.kl_normal_symmetric(*t, **o)),
        ("kl_std_normal", lambda *t, **o: symkl.kl_std_normal(t[0], t[1], **o)),
    ]
    for param in PARAMS:
        for name in ("kl_diag", "kl_diag_reverse", "kl_diag_symmetric"):
            function = getattr(symkl, name)
            calls.append(
                (f"{name}-{param}", lambda *t, f=function, p=param, **o: f(*t, param=p, **o))
            )
    return calls


CALLS = _calls()
IDS = [c[0] for c in CALLS]


@pytest.mark.parametrize(("name", "call"), CALLS, ids=IDS)
def test_values_under_jit_equal_the_numpy_path(name, call):
    arrays = _inputs()
    expected = call(*[np.asarray(a) for a in arrays])
    eager = call(*arrays)
    jitted = jax.jit(call)(*arrays)
    for got in (eager, jitted):
        assert isinstance(got, jax.Array) and got.dtype == jnp.float64
        np.testing.assert_array_equal(np.asarray(got), expected)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64], ids=str)
@pytest.mark.parametrize(("name", "call"), CALLS, ids=IDS)
def test_dtype_is_kept(name, call, dtype):
    arrays = _inputs(dtype=dtype)
    for got in (call(*arrays), jax.jit(call)(*arrays)):
        assert got.dtype == dtype
    wide = call(*[a.astype(jnp.float64) for a in arrays])
    np.testing.assert_allclose(
        np.asarray(got, dtype=np.float64), np.asarray(wide), rtol=float(jnp.finfo(dtype).eps)
    )


@pytest.mark.parametrize(("name", "call"), CALLS, ids=IDS)
def test_custom_jvp_first_and_second_derivatives(name, call):
    arrays = _inputs(shape=(3, 2), seed=4)
    check_grads(lambda *a: call(*a), arrays, order=2, modes=("fwd", "rev"))
    check_grads(jax.jit(lambda *a: call(*a)), arrays, order=1, modes=("rev",))


def test_gradient_is_the_proved_gradient_with_broadcasting():
    mu = jnp.asarray(np.random.default_rng(1).standard_normal((3, 4)))
    logvar = jnp.asarray(np.random.default_rng(2).standard_normal((3, 1)))
    grads = jax.grad(lambda m, v: symkl.kl_std_normal(m, v).sum(), argnums=(0, 1))(mu, logvar)
    np.testing.assert_allclose(grads[0], mu, rtol=1e-15)
    np.testing.assert_allclose(grads[1], 4 * 0.5 * np.expm1(logvar), rtol=1e-14)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_vmap(axis):
    mu = jnp.asarray(np.random.default_rng(3).standard_normal((6, 3, 4)))
    logvar = jnp.asarray(np.random.default_rng(4).standard_normal((3, 4)))
    mapped = jax.vmap(lambda m: symkl.kl_std_normal(m, logvar, axis=axis))(mu)
    expected = np.stack([symkl.kl_std_normal(np.asarray(m), np.asarray(logvar), axis=axis)
                         for m in mu])
    np.testing.assert_array_equal(np.asarray(mapped), expected)
    jitted = jax.jit(jax.vmap(jax.grad(lambda m: symkl.kl_std_normal(m, logvar, axis=axis).sum())))
    np.testing.assert_allclose(jitted(mu), mu, rtol=1e-15)


def _exact_kl(mu_p, s_p, mu_q, s_q):
    """Hand-typed textbook formula at 80 digits on the exact binary inputs (independent check)."""
    with mpmath.workdps(80):
        mu_p, s_p, mu_q, s_q = (mpmath.mpf(float(v)) for v in (mu_p, s_p, mu_q, s_q))
        return mpmath.log(s_q / s_p) + (s_p**2 + (mu_p - mu_q) ** 2) / (2 * s_q**2) - 0.5


def _ulps(got: np.ndarray, truths) -> np.ndarray:
    truth = np.array([float(t) for t in truths])
    return np.abs(got - truth) / np.spacing(truth)


def test_float64_within_4_ulp_under_jit_near_kl_zero_and_far():
    """The issue's complaint: the JAX export reached 29 ULP (XLA rewrote the compensations)."""
    rng = np.random.default_rng(2026)
    n = 300
    relative = 10.0 ** rng.uniform(-15, 0.5, n) * rng.choice([-1, 1], n)
    sigma_p = np.maximum(1.0 + relative, 1e-3)
    mu_p = rng.standard_normal(n) * 10.0 ** rng.uniform(-12, 0, n) * rng.choice([0, 1], n)
    mu_q, sigma_q = np.zeros(n), np.ones(n)
    truths = [_exact_kl(*v) for v in zip(mu_p, sigma_p, mu_q, sigma_q, strict=True)]
    kl = jax.jit(lambda *a: symkl.kl_normal(*a))
    got = np.asarray(kl(*(jnp.asarray(v) for v in (mu_p, sigma_p, mu_q, sigma_q))))
    worst = _ulps(got, truths)
    assert worst.max() <= 4, f"worst {worst.max():.2f} ULP at sigma_p={sigma_p[worst.argmax()]!r}"
    # the other parameterisations, through one coordinate of kl_diag, and kl_std_normal
    for param, scale in (("var", sigma_p**2), ("logvar", np.log(sigma_p**2))):
        diag = jax.jit(lambda a, b, p=param: symkl.kl_diag(a, b, 0.0, 1.0 if p == "var" else 0.0,
                                                           param=p, axis=-1))
        got = np.asarray(diag(jnp.asarray(mu_p[:, None]), jnp.asarray(scale[:, None])))
        exact = [_exact_kl(m, np.sqrt(v) if param == "var" else np.exp(v / 2), 0.0, 1.0)
                 for m, v in zip(mu_p, scale, strict=True)]
        # the exact KL of the *given* float scale (not of sigma_p): recompute at 80 digits
        with mpmath.workdps(80):
            if param == "var":
                exact = [mpmath.mpf(float(m)) ** 2 / 2 + (mpmath.mpf(float(v)) - 1
                         - mpmath.log(mpmath.mpf(float(v)))) / 2 for m, v in zip(mu_p, scale,
                                                                                 strict=True)]
            else:
                exact = [mpmath.mpf(float(m)) ** 2 / 2 + (mpmath.expm1(mpmath.mpf(float(v)))
                         - mpmath.mpf(float(v))) / 2 for m, v in zip(mu_p, scale, strict=True)]
        ulps = _ulps(got, exact)
        assert ulps.max() <= 4, f"{param}: worst {ulps.max():.2f} ULP"
        std_normal = jax.jit(lambda m, v: symkl.kl_std_normal(m, v))
        if param == "logvar":
            got = np.asarray(std_normal(jnp.asarray(mu_p[:, None]), jnp.asarray(scale[:, None])))
            assert _ulps(got, exact).max() <= 4


def test_validation_messages():
    logvar = np.zeros((2, 3))
    logvar[1, 2] = np.inf
    with pytest.raises(ValueError) as numpy_error:
        symkl.kl_std_normal(np.zeros((2, 3)), logvar)
    with pytest.raises(ValueError) as jax_error:
        symkl.kl_std_normal(jnp.zeros((2, 3)), jnp.asarray(logvar))
    assert str(jax_error.value) == str(numpy_error.value)
    # under jit the check runs in the callback; JAX re-raises with the same message inside
    with pytest.raises(Exception, match=r"'logvar'.*index \(1, 2\)"):
        jax.jit(lambda m, v: symkl.kl_std_normal(m, v))(
            jnp.zeros((2, 3)), jnp.asarray(logvar)
        ).block_until_ready()
    assert symkl.kl_std_normal(jnp.zeros((2, 3)), jnp.asarray(logvar), validate=False).shape == (2,)
    with pytest.raises(ValueError, match="'mu' is complex"):
        symkl.kl_std_normal(jnp.zeros(2, dtype=jnp.complex64), jnp.zeros(2))
    with pytest.raises(ValueError, match="do not broadcast"):
        symkl.kl_std_normal(jnp.zeros(2), jnp.zeros(3))
    with pytest.raises(ValueError, match=r"'sigma_q' \(param='std'\).*got 0.0"):
        symkl.grad_kl_normal(jnp.zeros(2), 1.0, 0.0, 0.0)


def test_gradient_functions_and_kl_mvn():
    arrays = _inputs(seed=6)
    for param in PARAMS:
        got = symkl.grad_kl_diag(*arrays, param=param)
        expected = symkl.grad_kl_diag(*[np.asarray(a) for a in arrays], param=param)
        for g, e in zip(got, expected, strict=True):
            assert isinstance(g, jax.Array)
            np.testing.assert_allclose(np.asarray(g), e, rtol=1e-15)
    rng = np.random.default_rng(8)
    a = jnp.asarray(rng.standard_normal((2, 3, 3)))
    mu = jnp.asarray(rng.standard_normal((2, 3)))

    def kl(mu, a):
        cov = a @ jnp.swapaxes(a, -1, -2) + jnp.eye(3)
        return symkl.kl_mvn(mu, cov, jnp.zeros(3), 2.0 * jnp.eye(3))

    expected = symkl.kl_mvn(np.asarray(mu), np.asarray(a @ jnp.swapaxes(a, -1, -2) + jnp.eye(3)),
                            np.zeros(3), 2.0 * np.eye(3))
    np.testing.assert_allclose(np.asarray(kl(mu, a)), expected, rtol=1e-15)
    np.testing.assert_allclose(np.asarray(jax.jit(kl)(mu, a)), expected, rtol=1e-15)
    check_grads(kl, (mu, a), order=1, modes=("fwd", "rev"))
    parts = jax.jit(lambda m: symkl.grad_kl_mvn(m, jnp.eye(3), jnp.zeros(3), jnp.eye(3)))(mu)
    np.testing.assert_allclose(np.asarray(parts[0]), np.asarray(mu), rtol=1e-15)


def test_edge_cases_empty_and_overflow():
    assert jax.jit(symkl.kl_std_normal)(jnp.zeros((0, 3)), jnp.zeros((0, 3))).shape == (0,)
    assert np.isinf(np.asarray(jax.jit(symkl.kl_std_normal)(jnp.zeros(1), jnp.asarray([800.0]))))
    assert symkl.kl_std_normal(jnp.array([1, 2]), jnp.array([0, 0])).dtype == jnp.float64


# --------------------------------------------------------------------------- review findings


def test_x64_off_float32_everywhere_matches_the_numpy_path():
    """JAX's default (jax_enable_x64 off), which every other test here switches on."""
    jax.config.update("jax_enable_x64", False)  # the autouse fixture restores it
    rng = np.random.default_rng(8)
    mu, s = rng.standard_normal((4, 3)).astype(np.float32), (rng.random((4, 3)) + 0.5)
    s = s.astype(np.float32)
    for param in PARAMS:
        expected = symkl.kl_diag(mu, s, np.float32(0.0), np.float32(1.0), param=param)
        got = jax.jit(lambda m, v, p=param: symkl.kl_diag(m, v, 0.0, 1.0, param=p))(mu, s)
        assert got.dtype == jnp.float32
        np.testing.assert_array_equal(np.asarray(got), expected)
        grads = jax.grad(lambda v, p=param: symkl.kl_diag(mu, v, 0.0, 1.0, param=p).sum())(
            jnp.asarray(s)
        )
        parts = symkl.grad_kl_diag(mu, s, np.float32(0.0), np.float32(1.0), param=param)
        assert grads.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(grads), parts[1], rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16], ids=str)
def test_half_overflow_to_inf_without_a_warning(dtype):
    """A KL beyond the half type's range is inf, rounded silently (a RuntimeWarning broke
    -W error runs)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = symkl.kl_std_normal(jnp.zeros(1, dtype), jnp.asarray([100.0], dtype))
        jitted = jax.jit(symkl.kl_std_normal)(jnp.zeros(1, dtype), jnp.asarray([100.0], dtype))
    assert got.dtype == dtype and np.isinf(np.asarray(got, np.float64)).all()
    assert np.isinf(np.asarray(jitted, np.float64)).all()


def test_kl_mvn_second_derivative_raises_a_clear_error():
    """It said 'Pure callbacks do not support JVP. Please use jax.custom_jvp'."""
    cov = jnp.asarray([[2.0, 0.3], [0.3, 1.0]])
    kl = lambda m: symkl.kl_mvn(m, cov, jnp.ones(2), jnp.eye(2))  # noqa: E731
    np.testing.assert_allclose(np.asarray(jax.jacfwd(kl)(jnp.zeros(2))),
                               np.asarray(jax.grad(kl)(jnp.zeros(2))), rtol=1e-15)
    for second in (
        lambda: jax.hessian(kl)(jnp.zeros(2)),
        lambda: jax.jit(jax.hessian(kl))(jnp.zeros(2)),
        lambda: jax.grad(lambda m: symkl.grad_kl_mvn(m, cov, jnp.ones(2), jnp.eye(2))[0].sum())(
            jnp.zeros(2)
        ),
    ):
        with pytest.raises(NotImplementedError, match=r"second derivatives .* not available"):
            second()
