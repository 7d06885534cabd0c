"""The log-variance gradients against mpmath, where their terms cancel and at the extremes.

``d KL/d logvar_q = (1 - e^{l_p - l_q} - m^2 e^{-l_q})/2`` (and the Jeffreys divergence's
``(e^d - e^{-d} - m^2 e^{-l_p})/2``) cancel to nothing where ``q`` (``p``) is the best
variance for the other; the printed gradients take each exponential as ``2^n (t + t_lo)``
(fact exp-double-split) and add the halved terms exactly.  The searches below put the
mean difference at the cancelling value times ``1 + 1e-9 N(0, 1)`` (a seeded RNG), the
way the issue measured it, and compare every component with mpmath, in ulps of the true
value; SciPy's mpmath harness is the model (one harness, spread arguments, a message
listing ``got != ref``).  Each bound is the issue's 4 ulp (float64) or one rounding of a
float64 result (float32: half an ulp, plus the float64 error in float32 ulps).
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

import symkl
from symkl.frameworks import gradient_terms

#: float64 bound of the issue (item 5); the measured worst is about 1.2 ulp
ULPS = 4.0
#: float32: the float64 gradient rounded once (half an ulp) plus its own error, in float32 ulps
ULPS_FLOAT32 = 0.5 + ULPS * 2.0**-29


def _ulps(got: float, truth: mpmath.mpf, dtype=np.float64) -> float:
    """|got - truth| in ulps of truth rounded to dtype (truth finite)."""
    nearest = dtype(float(truth))
    if not np.isfinite(nearest):
        return 0.0 if got == float(nearest) else np.inf
    if not np.isfinite(got):
        return np.inf
    unit = np.spacing(np.abs(nearest)) if nearest != 0 else np.finfo(dtype).smallest_subnormal
    with mpmath.workdps(60):
        return float(abs(mpmath.mpf(float(got)) - truth) / mpmath.mpf(float(unit)))


def _forward(mu_p, logvar_p, mu_q, logvar_q):
    """d KL(p||q) / d (mu_p, logvar_p, mu_q, logvar_q), written independently (mpmath)."""
    m = mu_p - mu_q
    d = logvar_p - logvar_q
    return [
        m * mpmath.exp(-logvar_q),
        mpmath.expm1(d) / 2,
        -m * mpmath.exp(-logvar_q),
        (-mpmath.expm1(d) - m * m * mpmath.exp(-logvar_q)) / 2,
    ]


def _jeffreys(mu_p, logvar_p, mu_q, logvar_q):
    forward = _forward(mu_p, logvar_p, mu_q, logvar_q)
    backward = _forward(mu_q, logvar_q, mu_p, logvar_p)
    return [forward[0] + backward[2], forward[1] + backward[3],
            forward[2] + backward[0], forward[3] + backward[1]]  # fmt: skip


def _truths(symmetric: bool, arrays, digits: int = 60) -> list[list[mpmath.mpf]]:
    reference = _jeffreys if symmetric else _forward
    with mpmath.workdps(digits):
        count = len(arrays[0])
        return [reference(*(mpmath.mpf(float(a[i])) for a in arrays)) for i in range(count)]


def near_cancellation(kind: str, n: int, seed: int) -> tuple[np.ndarray, ...]:
    """(mu_p, logvar_p, mu_q, logvar_q) where one scale derivative nearly vanishes:
    ``kind`` "forward" (d/d logvar_q of KL(p||q)) or "jeffreys" (d/d logvar_p of J)."""
    rng = np.random.default_rng(seed)
    mu_q = rng.uniform(-3, 3, n)
    if kind == "forward":
        logvar_q = rng.uniform(-5, 5, n)
        logvar_p = logvar_q + np.log(rng.uniform(0.01, 0.99, n))
        m = np.sqrt(-np.expm1(logvar_p - logvar_q) * np.exp(logvar_q))
    else:
        logvar_p = rng.uniform(-5, 5, n)
        logvar_q = logvar_p - np.log(rng.uniform(1.01, 100, n))
        d = logvar_p - logvar_q
        m = np.sqrt((np.exp(d) - np.exp(-d)) * np.exp(logvar_p))
    m = m * (1 + 1e-9 * rng.standard_normal(n)) * rng.choice([-1.0, 1.0], n)
    return mu_q + m, logvar_p, mu_q, logvar_q


def extremes(n: int, seed: int) -> tuple[np.ndarray, ...]:
    """The issue's domain: log-variances in [-700, 700] (a third within N(0, 3) of each
    other), means up to +-1e150 over 300 decades (some 0, some nearly equal)."""
    rng = np.random.default_rng(seed)

    def means():
        signs = rng.choice([-1.0, 1.0], n) * (rng.random(n) > 0.05)
        return signs * 10.0 ** rng.uniform(-150, 150, n)

    logvar_p, logvar_q = rng.uniform(-700, 700, n), rng.uniform(-700, 700, n)
    near = rng.random(n) < 0.3
    logvar_q[near] = np.clip(logvar_p[near] + rng.normal(0, 3, near.sum()), -700, 700)
    mu_p, mu_q = means(), means()
    close = rng.random(n) < 0.2
    mu_q[close] = mu_p[close] * (1 + rng.normal(0, 1e-3, close.sum()))
    return mu_p, logvar_p, mu_q, logvar_q


def _check(gradients, truths, dtype=np.float64, bound: float = ULPS) -> float:
    """Every component within ``bound`` ulps (inf of the right sign beyond the largest
    float); the worst error.  The failure message lists ``got != ref (ulps)``."""
    worst, failures = 0.0, []
    largest = mpmath.mpf(float(np.finfo(dtype).max))
    for component, parts in enumerate(gradients):
        for index, truth in enumerate(t[component] for t in truths):
            got = float(np.asarray(parts, dtype=np.float64).reshape(-1)[index])
            with mpmath.workdps(60):
                beyond = abs(truth) > largest
            if beyond:
                if not (np.isinf(got) and (got > 0) == (truth > 0)):
                    failures.append(f"[{component}][{index}] {got!r} != {mpmath.nstr(truth, 8)}")
                continue
            error = _ulps(got, truth, dtype)
            worst = max(worst, error)
            if not error <= bound:
                failures.append(
                    f"[{component}][{index}] {got!r} != {mpmath.nstr(truth, 17)} ({error:.3g} ulp)"
                )
    assert not failures, f"{len(failures)} beyond {bound} ulp:\n" + "\n".join(failures[:10])
    return worst


def _torch_gradients(function, arrays, dtype):
    import torch

    tensors = [torch.tensor(a[:, None], dtype=dtype, requires_grad=True) for a in arrays]
    function(*tensors, param="logvar").sum().backward()
    inputs = [t.detach()[:, 0].double().numpy() for t in tensors]
    return [t.grad[:, 0].double().numpy() for t in tensors], inputs


# ------------------------------------------------------------------------ the default suite
@pytest.mark.parametrize("seed", [0, 1])
def test_numpy_forward_gradient_near_cancellation(seed):
    """The issue's measurement: 5.1e-5 relative (4e12 ulp) at d/d logvar_q before."""
    arrays = near_cancellation("forward", 150, seed)
    _check(symkl.grad_kl_diag(*arrays, param="logvar"), _truths(False, arrays))


def test_torch_forward_reverse_and_jeffreys_near_cancellation_float64():
    torch = pytest.importorskip("torch")
    for kind, function, symmetric in (
        ("forward", symkl.kl_diag, False),
        ("jeffreys", symkl.kl_diag_symmetric, True),
    ):
        arrays = near_cancellation(kind, 120, 2)
        gradients, _ = _torch_gradients(function, arrays, torch.float64)
        _check(gradients, _truths(symmetric, arrays))
    # the reverse KL(q||p): its p-gradients are the forward q-gradients at (q, p)
    arrays = near_cancellation("forward", 120, 3)
    swapped = (arrays[2], arrays[3], arrays[0], arrays[1])
    gradients, _ = _torch_gradients(symkl.kl_diag_reverse, swapped, torch.float64)
    truths = [[t[2], t[3], t[0], t[1]] for t in _truths(False, arrays)]
    _check(gradients, truths)


def test_torch_autograd_float32_is_the_float64_gradient_rounded_once():
    """float32 autograd computes in float64 and rounds once (in float32 arithmetic the
    exact sums fail: 1e8 float32 ulp before)."""
    torch = pytest.importorskip("torch")
    for kind, function, symmetric in (
        ("forward", symkl.kl_diag, False),
        ("jeffreys", symkl.kl_diag_symmetric, True),
    ):
        arrays = near_cancellation(kind, 120, 4)
        gradients, inputs = _torch_gradients(function, arrays, torch.float32)
        _check(gradients, _truths(symmetric, inputs), np.float32, ULPS_FLOAT32)


def test_jax_grad_near_cancellation():
    jax = pytest.importorskip("jax")
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        import jax.numpy as jnp

        for kind, function, symmetric in (
            ("forward", symkl.kl_diag, False),
            ("jeffreys", symkl.kl_diag_symmetric, True),
        ):
            arrays = near_cancellation(kind, 100, 5)
            grads = jax.grad(
                lambda *a, f=function: f(*a, param="logvar").sum(), argnums=(0, 1, 2, 3)
            )(*(jnp.asarray(a[:, None]) for a in arrays))
            _check([np.asarray(g)[:, 0] for g in grads], _truths(symmetric, arrays))
    finally:
        jax.config.update("jax_enable_x64", previous)


@pytest.mark.parametrize("symmetric", [False, True], ids=["forward", "jeffreys"])
def test_log_variance_gradients_at_the_extremes(symmetric):
    """Log-variances in [-700, 700], means to 1e150: finite and within 4 ulp wherever the
    true gradient is a double, inf of its sign beyond (800 digits: the terms cancel
    against 1 by up to e^-700)."""
    arrays = extremes(150, 6)
    gradients = gradient_terms("numpy", "logvar", symmetric, arrays)
    _check(gradients, _truths(symmetric, arrays, 800))


def test_log_variance_gradients_at_chosen_edges():
    """e^d near overflow (d = 709 .. 711), tiny and subnormal d, m = 0, l = +-700."""
    points = []
    for logvar_q in (-700.0, 0.0, 700.0, -1e-300):
        for d in (709.5, 709.78, 710.0, 710.4, 710.6, -709.5, -745.0, 0.0, 1e-300, 5e-324,
                  2.0**-50, 1e-10, -1e-10):  # fmt: skip
            for m in (0.0, 1e-150, 1.0, 1e150):
                if abs(logvar_q + d) <= 700:
                    points.append((m, logvar_q + d, 0.0, logvar_q))
    arrays = tuple(np.array(points).T)
    for symmetric in (False, True):
        gradients = gradient_terms("numpy", "logvar", symmetric, arrays)
        _check(gradients, _truths(symmetric, arrays, 800))


def test_gradcheck_near_cancellation():
    torch = pytest.importorskip("torch")
    arrays = near_cancellation("forward", 6, 7)
    tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    for function in (symkl.kl_diag, symkl.kl_diag_symmetric, symkl.kl_diag_reverse):
        assert torch.autograd.gradcheck(lambda *t, f=function: f(*t, param="logvar"), tensors)


# ------------------------------------------------------------------------------ exhaustive
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["forward", "jeffreys"])
def test_exhaustive_near_cancellation(kind):
    arrays = near_cancellation(kind, 100000, 10)
    symmetric = kind == "jeffreys"
    _check(gradient_terms("numpy", "logvar", symmetric, arrays), _truths(symmetric, arrays))


@pytest.mark.slow
@pytest.mark.parametrize("symmetric", [False, True], ids=["forward", "jeffreys"])
def test_exhaustive_extremes(symmetric):
    arrays = extremes(10000, 11)
    gradients = gradient_terms("numpy", "logvar", symmetric, arrays)
    _check(gradients, _truths(symmetric, arrays, 800))


@pytest.mark.parametrize("frameworks", ["numpy", "torch"])
def test_the_double_double_exponential_carries_e_to_2_to_the_minus_100(frameworks):
    """exp_parts(x, x_lo) = (n, t, t_lo): 2^n (t + t_lo) = e^(x + x_lo) within 2^-100
    relative (fact exp-double-split), over the whole exponent range and near 0."""
    from symkl.frameworks import array_kernels

    rng = np.random.default_rng(12)
    x = np.concatenate([rng.uniform(-745, 709, 400), rng.normal(0, 1e-3, 100), [0.0, -0.0]])
    x_lo = np.spacing(np.abs(x)) * rng.uniform(-0.5, 0.5, x.size)
    kernels = array_kernels(frameworks)
    if frameworks == "numpy":
        n, t, t_lo = kernels.exp_parts(x, x_lo)
    else:
        torch = pytest.importorskip("torch")
        n, t, t_lo = (v.numpy() for v in kernels.exp_parts(torch.tensor(x), torch.tensor(x_lo)))
    worst = mpmath.mpf(0)
    with mpmath.workdps(50):
        for i in range(x.size):
            truth = mpmath.exp(mpmath.mpf(float(x[i])) + mpmath.mpf(float(x_lo[i])))
            got = mpmath.ldexp(mpmath.mpf(float(t[i])) + mpmath.mpf(float(t_lo[i])), int(n[i]))
            worst = max(worst, abs(got - truth) / truth)
    assert worst < mpmath.mpf(2) ** -100, mpmath.nstr(mpmath.log(worst, 2), 5)


# ---------------------------------------------- the cheap gradient and where it is refined
def _mixed(n: int, seed: int) -> tuple[np.ndarray, ...]:
    """Half the elements with equal means (there a = 0 and every plain form's bound is
    within 4 ulp), half near cancellation (refined)."""
    rng = np.random.default_rng(seed)
    mu_p, logvar_p, mu_q, logvar_q = near_cancellation("forward", n, seed)
    equal = rng.random(n) < 0.5
    mu_q = np.where(equal, mu_p, mu_q)
    logvar_p = np.where(equal, rng.normal(0, 1.5, n), logvar_p)
    return mu_p, logvar_p, mu_q, logvar_q


def test_refinement_computes_the_exact_gradient_on_the_flagged_elements_only():
    """NumPy compacts: exact_gradient_logvar sees only the elements whose bound fails, and
    every component is within 4 ulp of mpmath on both kinds of element."""
    from symkl import _kernels_numpy

    arrays = _mixed(400, 31)
    equal = arrays[0] == arrays[2]
    seen = []
    original = _kernels_numpy.exact_gradient_logvar

    def spy(*values):
        seen.append(np.shape(values[0]))
        return original(*values)

    _kernels_numpy.exact_gradient_logvar = spy
    try:
        gradients = _kernels_numpy.gradient_logvar(*arrays)
    finally:
        _kernels_numpy.exact_gradient_logvar = original
    assert seen == [((~equal).sum(),)], (seen, (~equal).sum())
    _check(gradients, _truths(False, arrays))


def test_refinement_keeps_shapes_scalars_and_nan():
    """Broadcast inputs, 0-d inputs and NaN (validate=False) through xp.refine."""
    from symkl import _kernels_numpy as kernels

    arguments = (np.zeros((3, 1)), np.array([[0.0, 1.0, 2.0, 3.0]]), np.array([[0.0], [0.5], [1]]))
    grid = kernels.gradient_logvar(*arguments, np.full(4, 0.25))  # a = 0 in the first row only
    exact = kernels.exact_gradient_logvar(*arguments, np.full(4, 0.25))
    for g, e in zip(grid, exact, strict=True):
        assert np.broadcast_shapes(np.shape(g), (3, 4)) == (3, 4)
        np.testing.assert_allclose(np.broadcast_to(g, (3, 4)), np.broadcast_to(e, (3, 4)), 1e-15)
    scalar = kernels.gradient_logvar(0.0, 0.5, 0.0, 0.25)
    assert all(np.ndim(g) == 0 for g in scalar)
    assert np.allclose(scalar, kernels.exact_gradient_logvar(0.0, 0.5, 0.0, 0.25), rtol=1e-15)
    nan = kernels.gradient_logvar(np.array([np.nan, 0.0]), 0.0, 0.0, 0.0)
    assert np.isnan(nan[0][0]) and nan[0][1] == 0.0


def test_refinement_in_torch_eager_and_traced_agree():
    """torch eager compacts; under torch.func.vmap and jit tracing shapes must stay static,
    so the exact gradient is taken on every element and selected.  Within 4 ulp."""
    torch = pytest.importorskip("torch")
    kernels = symkl.frameworks.array_kernels("torch")
    arrays = _mixed(64, 32)
    equal = arrays[0] == arrays[2]
    tensors = [torch.tensor(a) for a in arrays]
    names = kernels.gradient_logvar.__globals__
    original, seen = names["exact_gradient_logvar"], []

    def spy(*values):
        seen.append(tuple(values[0].shape))
        return original(*values)

    names["exact_gradient_logvar"] = spy
    try:
        eager = kernels.gradient_logvar(*tensors)
        batched = torch.func.vmap(kernels.gradient_logvar)(*(t.reshape(8, 8) for t in tensors))
        torch.jit.trace(kernels.gradient_logvar, tensors, check_trace=False)
    finally:
        names["exact_gradient_logvar"] = original
    # eager: the flagged elements only; vmap (per sample) and tracing: all
    assert seen == [((~equal).sum(),), (8,), (64,)], seen
    truths = _truths(False, arrays)
    # (not the traced graph's values: torch.jit's graph executor does not keep the
    # double-double exponential's t_lo, 5e-18 off, in exact_gradient_logvar alone too)
    for got in (eager, batched):
        _check([g.reshape(-1).numpy() for g in got], truths)


def test_refinement_under_jax_jit():
    """JAX traces (jit): the exact gradient everywhere, selected; within 4 ulp."""
    jax = pytest.importorskip("jax")
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        import jax.numpy as jnp

        kernels = symkl.frameworks.array_kernels("jax")
        arrays = _mixed(64, 33)
        got = jax.jit(kernels.gradient_logvar)(*(jnp.asarray(a) for a in arrays))
        _check([np.asarray(g) for g in got], _truths(False, arrays))
    finally:
        jax.config.update("jax_enable_x64", previous)
