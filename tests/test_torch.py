"""PyTorch tensors through every public function: dtype, device, autograd, checks, register_kl."""

from __future__ import annotations

import os
import signal

import mpmath
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import symkl  # noqa: E402
import symkl.torch as symkl_torch  # noqa: E402
from symkl.frameworks import torch_backend  # noqa: E402

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
PARAMS = ["std", "var", "logvar"]
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _inputs(shape=(5, 4), dtype=torch.float64, seed=0, grad=False):
    g = _generator(seed)
    mu_p = torch.randn(shape, generator=g, dtype=torch.float64)
    s_p = torch.rand(shape, generator=g, dtype=torch.float64) + 0.5
    mu_q = torch.randn(shape[-1:], generator=g, dtype=torch.float64)
    s_q = torch.rand((1, shape[-1]), generator=g, dtype=torch.float64) + 0.5
    tensors = [t.to(dtype) for t in (mu_p, s_p, mu_q, s_q)]
    return [t.requires_grad_(grad) for t in tensors]


def _numpy(tensor):
    return tensor.detach().to(torch.float64).numpy()


# --------------------------------------------------------------------------- values, dtypes


def _calls():
    """(id, function of four tensors) for every KL function."""
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


@pytest.mark.parametrize(("name", "call"), CALLS, ids=[c[0] for c in CALLS])
def test_float64_tensors_match_the_numpy_path(name, call):
    tensors = _inputs()
    got = call(*tensors)
    expected = call(*[_numpy(t) for t in tensors])
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    np.testing.assert_array_equal(got.numpy(), expected)


@pytest.mark.parametrize(("name", "call"), CALLS, ids=[c[0] for c in CALLS])
def test_tensor_operations_path_matches_compiled_kernels(name, call, monkeypatch):
    """The path CUDA tensors take (printed kernel as tensor ops), checked on the CPU."""
    tensors = _inputs(seed=3)
    compiled = call(*tensors)
    monkeypatch.setattr(torch_backend, "TENSOR_OPS_ON_CPU", True)
    operations = call(*tensors)
    # a few ULP apart: the C kernel uses fma where the array kernel uses Dekker's product
    np.testing.assert_allclose(operations.numpy(), compiled.numpy(), rtol=1e-15, atol=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("name", "call"), CALLS, ids=[c[0] for c in CALLS])
def test_dtype_is_kept(name, call, dtype):
    tensors = _inputs(dtype=dtype)
    got = call(*tensors)
    assert got.dtype == dtype and got.device == tensors[0].device
    reference = call(*[t.to(torch.float64) for t in tensors])
    np.testing.assert_allclose(
        got.to(torch.float64).numpy(), reference.numpy(), rtol=float(torch.finfo(dtype).eps)
    )


def _half_neighbours(value: torch.Tensor):
    """The next representable numbers below and above each entry (same half dtype)."""
    bits = value.view(torch.int16)
    return (bits - 1).view(value.dtype), (bits + 1).view(value.dtype)


def _exact_kl(mu_p, s_p, mu_q, s_q) -> mpmath.mpf:
    """Hand-typed textbook formula at 80 digits (exact binary inputs): an independent check."""
    with mpmath.workdps(80):
        mu_p, s_p, mu_q, s_q = (mpmath.mpf(float(v)) for v in (mu_p, s_p, mu_q, s_q))
        return mpmath.log(s_q / s_p) + (s_p**2 + (mu_p - mu_q) ** 2) / (2 * s_q**2) - 0.5


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("ops", [False, True], ids=["compiled", "tensor-ops"])
def test_half_precision_is_correctly_rounded(dtype, ops, monkeypatch):
    monkeypatch.setattr(torch_backend, "TENSOR_OPS_ON_CPU", ops)
    g = _generator(7)
    n = 400
    mu_p = (torch.randn(n, generator=g) * 0.3).to(dtype)
    s_p = (1 + torch.randn(n, generator=g) * 10.0 ** -torch.randint(0, 3, (n,), generator=g)).abs()
    s_p = s_p.to(dtype) + torch.finfo(dtype).eps  # > 0
    mu_q = torch.zeros(n, dtype=dtype)
    s_q = torch.ones(n, dtype=dtype)
    got = symkl.kl_normal(mu_p, s_p, mu_q, s_q)
    below, above = _half_neighbours(got)
    with mpmath.workdps(80):
        for i in range(n):
            truth = _exact_kl(mu_p[i], s_p[i], mu_q[i], s_q[i])
            error = abs(mpmath.mpf(float(got[i])) - truth)
            for neighbour in (below[i], above[i]):
                if torch.isfinite(neighbour):
                    assert error <= abs(mpmath.mpf(float(neighbour)) - truth), (
                        f"{dtype} KL({float(mu_p[i])}, {float(s_p[i])} || 0, 1): got "
                        f"{float(got[i])}, truth {mpmath.nstr(truth, 12)}, nearer "
                        f"{float(neighbour)}"
                    )


def test_round_to_half_handles_ties_overflow_and_nan():
    value = torch.tensor([1 + 2.0**-11, 1 + 2.0**-11 + 2.0**-40, 1e6, float("nan"), 0.0],
                         dtype=torch.float64)
    half = torch_backend._round(value, torch.float16)
    assert half[0] == 1.0 and half[1] == torch.tensor(1 + 2.0**-10, dtype=torch.float16)
    assert torch.isinf(half[2]) and torch.isnan(half[3]) and half[4] == 0
    big = torch_backend._round(torch.tensor([3.5e38], dtype=torch.float64), torch.bfloat16)
    assert torch.isinf(big)


def test_scalars_and_integers_take_the_tensor_dtype():
    mu = torch.tensor([0.5, 0.0], dtype=torch.float32)
    assert symkl.kl_normal(mu, 1.0, 0, 2).dtype == torch.float32
    assert symkl.kl_std_normal(torch.tensor([1, 2]), torch.tensor([0, 0])).dtype == (
        torch.get_default_dtype()
    )
    zero_d = symkl.kl_normal(torch.tensor(0.0, dtype=torch.float64), 1.0, 1.0, 2.0)
    assert zero_d.shape == () and float(zero_d) == 0.4431471805599453


def test_strided_and_broadcast_tensors_use_their_memory_correctly():
    base = torch.randn(6, 8, dtype=torch.float64)
    view = base[::2, 1::3]  # not contiguous
    got = symkl.kl_std_normal(view, view.T.contiguous().T)
    expected = symkl.kl_std_normal(view.numpy().copy(), view.numpy().copy())
    np.testing.assert_array_equal(got.numpy(), expected)
    assert symkl.kl_diag(base, 1.0, 0.0, 2.0, axis=0).shape == (8,)


# --------------------------------------------------------------------------- autograd


@pytest.mark.parametrize(("name", "call"), CALLS, ids=[c[0] for c in CALLS])
def test_gradcheck_and_double_backward(name, call):
    tensors = _inputs(shape=(3, 2), grad=True, seed=11)
    assert torch.autograd.gradcheck(lambda *t: call(*t), tensors)
    assert torch.autograd.gradgradcheck(lambda *t: call(*t), tensors)


@pytest.mark.parametrize("axis", [0, 1, -2])
def test_gradcheck_over_other_axes(axis):
    g = _generator(5)
    mu = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    logvar = torch.randn(3, 1, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda m, v: symkl.kl_std_normal(m, v, axis=axis), (mu, logvar))


def test_requires_grad_tensors_work_as_in_the_issue():
    mu = torch.randn(128, 20, requires_grad=True)
    logvar = torch.randn(128, 20, requires_grad=True)
    kl = symkl.kl_std_normal(mu, logvar)
    assert kl.dtype == torch.float32 and kl.shape == (128,) and kl.requires_grad
    kl.sum().backward()
    torch.testing.assert_close(mu.grad, mu.detach())
    torch.testing.assert_close(logvar.grad, 0.5 * torch.expm1(logvar.detach()))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_backward_keeps_the_dtype(dtype):
    tensors = _inputs(dtype=dtype, grad=True)
    symkl.kl_diag(*tensors, param="std").sum().backward()
    assert all(t.grad.dtype == dtype for t in tensors)


def test_gradients_are_the_proved_gradient_functions():
    tensors = _inputs(grad=True)
    for param in PARAMS:
        for t in tensors:
            t.grad = None
        symkl.kl_diag(*tensors, param=param).sum().backward()
        parts = symkl.grad_kl_diag(*[_numpy(t) for t in tensors], param=param)
        for t, part in zip(tensors, parts, strict=True):
            expected = part.sum(axis=tuple(range(part.ndim - t.ndim)))
            expected = expected.sum(
                axis=tuple(i for i, n in enumerate(t.shape) if n == 1), keepdims=True
            )
            np.testing.assert_allclose(t.grad.numpy(), expected.reshape(t.shape), rtol=1e-14)


@pytest.mark.parametrize("param", PARAMS)
def test_gradient_functions_on_tensors(param):
    tensors = _inputs(seed=2)
    got = symkl.grad_kl_diag(*tensors, param=param)
    expected = symkl.grad_kl_diag(*[_numpy(t) for t in tensors], param=param)
    for g, e in zip(got, expected, strict=True):
        assert isinstance(g, torch.Tensor) and g.shape == e.shape
        np.testing.assert_allclose(g.numpy(), e, rtol=1e-15)
    for function, arguments in (
        (symkl.grad_kl_normal, tensors),
        (symkl.grad_kl_std_normal, tensors[:2]),
    ):
        for g, e in zip(
            function(*arguments), function(*[_numpy(t) for t in arguments]), strict=True
        ):
            np.testing.assert_allclose(g.numpy(), e, rtol=1e-15)
    mu = torch.tensor([0.5, 1.0], requires_grad=True, dtype=torch.float64)
    (grad_mu, _) = symkl.grad_kl_std_normal(mu, torch.zeros(2, dtype=torch.float64))
    grad_mu.sum().backward()  # the gradient functions are differentiable
    assert mu.grad.tolist() == [1.0, 1.0]


def _spd(a):
    return a @ a.mT + torch.eye(a.shape[-1], dtype=a.dtype)


def test_kl_mvn_tensors_gradcheck_and_double_backward():
    g = _generator(4)
    mu = torch.randn(2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    a = torch.randn(2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, 3, generator=g, dtype=torch.float64, requires_grad=True)

    def kl(mu, a, b):
        return symkl.kl_mvn(mu, _spd(a), torch.zeros(3, dtype=torch.float64), _spd(b))

    expected = symkl.kl_mvn(_numpy(mu), _numpy(_spd(a)), np.zeros(3), _numpy(_spd(b)))
    np.testing.assert_allclose(kl(mu, a, b).detach().numpy(), expected, rtol=1e-15)
    assert torch.autograd.gradcheck(kl, (mu, a, b))
    # second derivatives: the gradient as tensor operations when a graph is wanted
    assert torch.autograd.gradgradcheck(kl, (mu, a, b))
    (grad_mu,) = torch.autograd.grad(kl(mu, a, b).sum(), mu, create_graph=True)
    first = torch.autograd.grad(kl(mu, a, b).sum(), mu)[0]  # the NumPy gradient, no graph
    torch.testing.assert_close(grad_mu, first, rtol=1e-12, atol=1e-14)
    # d/d mu_p of S (mu_p - mu_q), summed over coordinates: the column sums of S = cov_q^-1
    (hessian_row,) = torch.autograd.grad(grad_mu.sum(), mu)
    precision_q = torch.linalg.inv(_spd(b)).detach()
    torch.testing.assert_close(hessian_row, precision_q.sum(0).expand(2, 3))
    parts = symkl.grad_kl_mvn(mu, _spd(a), torch.zeros(3, dtype=torch.float64), _spd(b))
    assert all(isinstance(p, torch.Tensor) for p in parts)
    assert symkl.kl_mvn(mu.float(), _spd(a).float(), mu.float(), _spd(a).float()).dtype == (
        torch.float32
    )


def test_torch_compile_fullgraph_forward_backward_and_validation():
    """The KLs are one custom op (symkl::kl) to the compiler: no graph break, so
    ``fullgraph=True`` compiles; values and gradients as in eager mode; the checks still run."""
    g = _generator(19)
    mu = torch.randn(8, 5, generator=g, requires_grad=True)
    logvar = torch.randn(8, 5, generator=g, requires_grad=True)

    def loss(mu, logvar):
        return (
            2.0 * symkl.kl_std_normal(mu, logvar).sum()
            + symkl.kl_diag(mu, logvar, 0.5, 0.0, param="logvar").sum()
            + symkl.kl_normal(mu, logvar.exp(), 0.0, 2.0).sum()
            + symkl.kl_normal_symmetric(mu, 1.5, 0.0, logvar.exp()).sum()
        )

    compiled = torch.compile(loss, fullgraph=True)
    value = compiled(mu, logvar)
    expected = loss(mu, logvar)
    torch.testing.assert_close(value, expected)
    compiled_grads = torch.autograd.grad(value, (mu, logvar))
    eager_grads = torch.autograd.grad(expected, (mu, logvar))
    for got, want in zip(compiled_grads, eager_grads, strict=True):
        torch.testing.assert_close(got, want)
    bad = logvar.detach().clone()
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"'logvar'.*got nan at index \(1, 2\)"):
        compiled(mu, bad)
    half = torch.compile(lambda m, v: symkl.kl_std_normal(m, v), fullgraph=True)(
        mu.detach().bfloat16(), logvar.detach().bfloat16()
    )
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(
        half, symkl.kl_std_normal(mu.detach().bfloat16(), logvar.detach().bfloat16()),
        rtol=0, atol=0,
    )


def test_custom_op_passes_torch_library_opcheck():
    """The op's fake (meta) function and autograd registration agree with its kernel."""
    g = _generator(23)
    tensors = [torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True),
               (torch.rand(4, 3, generator=g, dtype=torch.float64) + 0.5).requires_grad_()]
    torch.library.opcheck(
        torch.ops.symkl.kl.default,
        (tensors, "kl_std_normal", "std-normal", "logvar", 1, False, True),
    )


# --------------------------------------------------------------------------- fast paths


def _same_shape(shape, dtype, seed=0, grad=False):
    """Four tensors of one shape (the direct kernel call and the blocked backward apply)."""
    g = _generator(seed)
    tensors = [
        torch.randn(shape, generator=g, dtype=torch.float64),
        torch.rand(shape, generator=g, dtype=torch.float64) + 0.5,
        torch.randn(shape, generator=g, dtype=torch.float64),
        torch.rand(shape, generator=g, dtype=torch.float64) + 0.5,
    ]
    return [t.to(dtype).requires_grad_(grad) for t in tensors]


@pytest.mark.parametrize("shape", [(7, 5), (9,)], ids=["2d", "1d"])
@pytest.mark.parametrize("threaded", [False, True], ids=["one-call", "threaded"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize(("name", "call"), CALLS, ids=[c[0] for c in CALLS])
def test_direct_kernel_call_matches_the_numpy_path(
    name, call, dtype, threaded, shape, monkeypatch
):
    """Same-shape CPU tensors run the compiled kernel on their own memory (three uneven
    row blocks on threads when threaded): bit for bit the NumPy path's result."""
    from symkl import numeric

    if numeric.backend() != "c":
        pytest.skip("no compiled kernels")
    tensors = _same_shape(shape, dtype, seed=29)
    expected = call(*[t.numpy() for t in tensors])
    if threaded:
        monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
        monkeypatch.setattr(numeric, "_PARALLEL_MIN", 8)
    if "symmetric" not in name:  # the Jeffreys forms take the general path
        def general_path(*_):
            raise AssertionError("the general path ran")

        monkeypatch.setattr(torch_backend, "_numpy_value", general_path)
    got = call(*tensors)
    assert got.dtype == dtype and got.shape == np.shape(expected)
    np.testing.assert_array_equal(got.numpy(), expected)


def test_direct_kernel_call_reports_the_first_invalid_entry_of_any_block(monkeypatch):
    from symkl import numeric

    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(numeric, "_PARALLEL_MIN", 8)
    logvar = torch.zeros(70, 25)
    logvar[60, 7] = float("inf")  # in the second block
    logvar[65, 1] = float("nan")
    mu = torch.zeros(70, 25)
    mu[50, 3] = float("nan")
    with pytest.raises(ValueError) as numpy_error:
        symkl.kl_std_normal(mu.numpy(), logvar.numpy())
    with pytest.raises(ValueError) as torch_error:
        symkl.kl_std_normal(mu, logvar)
    assert str(torch_error.value) == str(numpy_error.value)
    assert "'mu'" in str(torch_error.value) and "(50, 3)" in str(torch_error.value)
    assert symkl.kl_std_normal(mu, logvar, validate=False).shape == (70,)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("blocks", [1, 11], ids=["one-block", "many-blocks"])
@pytest.mark.parametrize(("name", "call"), CALLS, ids=[c[0] for c in CALLS])
def test_blocked_backward_matches_the_tensor_operations_backward(
    name, call, blocks, dtype, monkeypatch
):
    """The no-graph backward of same-shape CPU tensors (the printed NumPy gradient over
    cache-sized row blocks, on threads) against the printed gradient as tensor operations."""
    shape = (21, 6)
    if blocks > 1:  # blocks of 2 rows, spread over 2 threads
        monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
        monkeypatch.setattr(torch_backend, "_BLOCK", 12)
    tensors = _same_shape(shape, dtype, seed=31, grad=True)
    weights = torch.rand(call(*tensors).shape, generator=_generator(37)).to(dtype)
    wrt = tensors[:2] if name == "kl_std_normal" else tensors[:3]  # one left without grad
    blocked = torch.autograd.grad((call(*tensors) * weights).sum(), wrt)
    monkeypatch.setattr(torch_backend, "TENSOR_OPS_ON_CPU", True)
    reference = torch.autograd.grad((call(*tensors) * weights).sum(), wrt)
    tolerance = 4 * float(torch.finfo(dtype).eps)  # NumPy's and torch's expm1, log1p
    for got, want in zip(blocked, reference, strict=True):
        assert got.dtype == dtype and got.shape == shape
        # atol: where the gradient cancels, one ULP of its larger parts
        scale = float(want.abs().max().to(torch.float64))
        torch.testing.assert_close(got, want, rtol=tolerance, atol=tolerance * scale)


def test_blocked_backward_gradcheck_and_partial_requires_grad():
    g = _generator(41)
    mu = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    logvar = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(symkl.kl_std_normal, (mu, logvar))
    assert torch.autograd.gradcheck(lambda m, v: symkl.kl_normal(m, v.exp(), m, 1.0), (mu, logvar))
    fixed = logvar.detach()
    symkl.kl_std_normal(mu, fixed).sum().backward()
    torch.testing.assert_close(mu.grad, mu.detach(), rtol=0, atol=0)
    assert fixed.grad is None


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("ops", [False, True], ids=["compiled", "tensor-ops"])
def test_validation_messages_are_the_numpy_ones(ops, monkeypatch):
    monkeypatch.setattr(torch_backend, "TENSOR_OPS_ON_CPU", ops)
    logvar = np.zeros((2, 3))
    logvar[1, 2] = np.nan
    with pytest.raises(ValueError) as numpy_error:
        symkl.kl_std_normal(np.zeros((2, 3)), logvar)
    with pytest.raises(ValueError) as torch_error:
        symkl.kl_std_normal(torch.zeros(2, 3), torch.from_numpy(logvar).float())
    assert str(torch_error.value) == str(numpy_error.value)
    assert "'logvar'" in str(torch_error.value) and "index (1, 2)" in str(torch_error.value)
    with pytest.raises(ValueError, match=r"'s_q' \(param='var'\).*> 0.*got -1.0 at index \(0, 1\)"):
        symkl.kl_diag(torch.zeros(2, 2), 1.0, 0.0, torch.tensor([1.0, -1.0]))
    skipped = symkl.kl_diag(torch.zeros(2, 2), 1.0, 0.0, torch.tensor([1.0, -1.0]), validate=False)
    assert skipped.shape == (2,)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="'mu' is complex"):
        symkl.kl_std_normal(torch.zeros(2, dtype=torch.complex64), torch.zeros(2))
    with pytest.raises(ValueError, match="'logvar' is boolean"):
        symkl.kl_std_normal(torch.zeros(2), torch.zeros(2, dtype=torch.bool))
    with pytest.raises(ValueError, match="do not broadcast"):
        symkl.kl_std_normal(torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match="axis=2 is out of range"):
        symkl.kl_std_normal(torch.zeros(2), torch.zeros(2), axis=2)
    with pytest.raises(ValueError, match="unknown param"):
        symkl.kl_diag(torch.zeros(2), 1.0, 0.0, 1.0, param="sd")
    with pytest.raises(symkl.CovarianceError, match="not positive definite"):
        symkl.kl_mvn(torch.zeros(2), -torch.eye(2), torch.zeros(2), torch.eye(2))


# --------------------------------------------------------------------------- register_kl


def _normals(dtype=torch.float64):
    from torch.distributions import Normal

    g = _generator(9)
    loc = torch.randn(4, 3, generator=g, dtype=dtype)
    scale = torch.rand(4, 3, generator=g, dtype=dtype) + 0.5
    return Normal(loc, scale), Normal(loc.flip(0) * 0.5, scale.flip(0) + 0.25)


def test_register_kl_issue_example_and_undo():
    from torch.distributions import Normal, kl_divergence

    zero = torch.tensor(0.0, dtype=torch.float64)
    one = torch.tensor(1.0, dtype=torch.float64)
    torch_value = float(kl_divergence(Normal(zero, one), Normal(zero, one + 1e-12)))
    registration = symkl_torch.register_kl()
    try:
        value = float(kl_divergence(Normal(zero, one), Normal(zero, one + 1e-12)))
        assert f"{value:.8g}" == "1.0001778e-24"
        truth = float(_exact_kl(0.0, 1.0, 0.0, 1.0 + 1e-12))
        assert abs(value - truth) <= 4 * np.spacing(truth)
        assert abs(torch_value - truth) > 5e-5 * truth  # torch: wrong from the 4th digit
    finally:
        registration.undo()
    assert float(kl_divergence(Normal(zero, one), Normal(zero, one + 1e-12))) == torch_value


def test_register_kl_four_pairs_agree_with_torch_where_torch_is_accurate():
    from torch.distributions import Independent, MultivariateNormal, kl_divergence

    p, q = _normals()
    pi, qi = Independent(p, 1), Independent(q, 1)
    pm = MultivariateNormal(p.loc, torch.diag_embed(p.scale**2))
    qm = MultivariateNormal(q.loc, scale_tril=torch.linalg.cholesky(
        torch.diag_embed(q.scale**2) + 0.1 * torch.ones(3, 3, dtype=torch.float64)))
    pairs = [(p, q), (pi, qi), (pm, qm), (pi, qm), (qm, pi)]
    # torch's own values; for Independent<->MVN (which torch lacks) the MVN-MVN value
    expected = [kl_divergence(p, q), kl_divergence(pi, qi), kl_divergence(pm, qm),
                kl_divergence(pm, qm), kl_divergence(qm, pm)]
    with pytest.raises(NotImplementedError):
        kl_divergence(pi, qm)
    with symkl_torch.register_kl():
        for (a, b), value in zip(pairs, expected, strict=True):
            got = kl_divergence(a, b)
            assert got.shape == value.shape and got.dtype == value.dtype
            torch.testing.assert_close(got, value, rtol=1e-12, atol=0)
    with pytest.raises(NotImplementedError):
        kl_divergence(pi, qm)  # undone


def test_register_kl_gradients_flow_and_float32():
    from torch.distributions import Independent, Normal, kl_divergence

    mu = torch.randn(16, 4, requires_grad=True)
    logvar = torch.randn(16, 4, requires_grad=True)
    with symkl_torch.register_kl():
        kl = kl_divergence(
            Independent(Normal(mu, (0.5 * logvar).exp()), 1),
            Independent(Normal(torch.zeros(4), torch.ones(4)), 1),
        )
        assert kl.dtype == torch.float32 and kl.shape == (16,)
        kl.sum().backward()
    torch.testing.assert_close(mu.grad, mu.detach())
    expected = 0.5 * torch.expm1(logvar.detach())
    torch.testing.assert_close(logvar.grad, expected, rtol=1e-5, atol=1e-6)


def test_register_twice_then_unregister_restores_torch():
    from torch.distributions import Normal, kl

    original = kl._KL_REGISTRY[Normal, Normal]
    symkl_torch.register_kl()
    symkl_torch.register_kl()
    assert kl._KL_REGISTRY[Normal, Normal] is symkl_torch.kl_normal_normal
    symkl_torch.unregister_kl()
    assert kl._KL_REGISTRY[Normal, Normal] is original
    symkl_torch.unregister_kl()  # harmless


# --------------------------------------------------------------------------- CUDA


@CUDA
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("name", "call"), CALLS, ids=[c[0] for c in CALLS])
def test_cuda_same_device_dtype_and_values(name, call, dtype):
    tensors = _inputs(dtype=dtype)
    cpu = call(*tensors)
    gpu = call(*[t.cuda() for t in tensors])
    assert gpu.device.type == "cuda" and gpu.dtype == dtype
    # float64: a few ULP (fma in C, Dekker's product in tensor ops); the others are
    # rounded once from float64 values that differ by that much, so at most one step
    tolerance = 1e-15 if dtype == torch.float64 else float(torch.finfo(dtype).eps)
    np.testing.assert_allclose(gpu.cpu().to(torch.float64).numpy(),
                               cpu.to(torch.float64).numpy(), rtol=tolerance)


@CUDA
def test_cuda_gradcheck_and_validation():
    tensors = [t.cuda().detach().requires_grad_() for t in _inputs(shape=(3, 2), seed=1)]
    assert torch.autograd.gradcheck(lambda *t: symkl.kl_diag(*t, param="std"), tensors)
    with pytest.raises(ValueError, match="index"):
        symkl.kl_std_normal(torch.zeros(3, device="cuda"), torch.tensor([0.0, 1.0, float("inf")],
                                                                        device="cuda"))
    assert symkl.kl_mvn(torch.zeros(2, device="cuda"), torch.eye(2, device="cuda"),
                        torch.ones(2, device="cuda"), torch.eye(2, device="cuda")).device.type == (
        "cuda")


# --------------------------------------------------------------------------- edge cases


def test_edge_cases_empty_overflow_inference_mode():
    mu = torch.zeros(0, 3, requires_grad=True)
    kl = symkl.kl_std_normal(mu, torch.zeros(0, 3))
    assert kl.shape == (0,)
    kl.sum().backward()
    assert mu.grad.shape == (0, 3)
    # the true KL exceeds float64's range: inf, not a finite number
    huge = torch.tensor([800.0], dtype=torch.float64)
    assert torch.isinf(symkl.kl_std_normal(torch.zeros(1), huge))
    assert torch.isinf(symkl.kl_std_normal(torch.zeros(1), torch.tensor([100.0])))
    with torch.inference_mode():
        assert symkl.kl_std_normal(torch.ones(2, 3), torch.zeros(2, 3)).tolist() == [1.5, 1.5]
    with torch.no_grad():
        result = symkl.kl_std_normal(torch.ones(3, requires_grad=True), torch.zeros(3))
        assert not result.requires_grad


def test_broadcast_error_matches_the_numpy_path():
    with pytest.raises(ValueError) as numpy_error:
        symkl.kl_normal(np.zeros(2), np.ones(3), 0.0, 1.0)
    with pytest.raises(ValueError) as torch_error:
        symkl.kl_normal(torch.zeros(2), torch.ones(3), 0.0, 1.0)
    assert str(torch_error.value) == str(numpy_error.value)


# --------------------------------------------------------------------------- review findings


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_threaded_kernels_work_in_a_forked_worker():
    """A DataLoader-style fork after a threaded call: the child once waited forever on the
    parent's pool (threads that do not exist in a child)."""
    from symkl import numeric

    x = torch.linspace(-1.0, 1.0, 1 << 18, dtype=torch.float64).reshape(1024, 256)
    expected = symkl.kl_std_normal(x, x).numpy().sum()
    if numeric._POOL is None:
        pytest.skip("the compiled kernels ran single-threaded here: no pool to inherit")
    pid = os.fork()
    if pid == 0:  # the child: exit 0 when it computed the same value
        code = 1
        try:
            signal.alarm(60)  # a hang guard (the bug), not a speed limit
            code = 0 if symkl.kl_std_normal(x, x).numpy().sum() == expected else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, (
        f"forked child: status {status} (a signal {os.WTERMSIG(status)} means it hung)"
        if os.WIFSIGNALED(status) else f"forked child exited with {os.WEXITSTATUS(status)}"
    )


def test_register_kl_independent_with_an_empty_batch_or_event():
    from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

    empty_batch = Independent(Normal(torch.zeros(0, 2, 3), torch.ones(0, 2, 3)), 2)
    empty_event = Independent(Normal(torch.zeros(4, 0), torch.ones(4, 0)), 1)
    with symkl_torch.register_kl():
        assert kl_divergence(empty_batch, empty_batch).shape == (0,)
        assert kl_divergence(empty_event, empty_event).tolist() == [0.0] * 4
        # (torch's own argument check fails on an empty batch: validate_args=False)
        mvn = MultivariateNormal(torch.zeros(0, 3), torch.eye(3), validate_args=False)
        assert kl_divergence(Independent(Normal(torch.zeros(0, 3), torch.ones(0, 3)), 1),
                             mvn).shape == (0,)


def test_register_kl_nests_and_unregister_restores_the_registry_exactly():
    from torch.distributions import Normal, kl, kl_divergence

    before = list(kl._KL_REGISTRY.items())
    zero = torch.tensor(0.0, dtype=torch.float64)
    p, q = Normal(zero, zero + 1), Normal(zero, zero + 1 + 1e-12)
    torch_value = float(kl_divergence(p, q))
    with symkl_torch.register_kl():
        with symkl_torch.register_kl():  # e.g. a library's, inside the user's
            pass
        # the inner block's exit left the user's registration in force
        assert kl._KL_REGISTRY[Normal, Normal] is symkl_torch.kl_normal_normal
        assert f"{float(kl_divergence(p, q)):.8g}" == "1.0001778e-24"
    assert list(kl._KL_REGISTRY.items()) == before and float(kl_divergence(p, q)) == torch_value
    outer = symkl_torch.register_kl()
    symkl_torch.register_kl().undo()
    outer.undo()
    outer.undo()  # twice: nothing more
    assert list(kl._KL_REGISTRY.items()) == before
    symkl_torch.register_kl()
    symkl_torch.register_kl()
    symkl_torch.unregister_kl()  # all at once
    assert list(kl._KL_REGISTRY.items()) == before and float(kl_divergence(p, q)) == torch_value


def test_torch_func_transforms_and_forward_mode():
    """torch.func (per-sample gradients, jacfwd, hessian) and forward-mode AD: they refused the
    autograd.Function ('must override the setup_context staticmethod', 'implement jvp')."""
    import torch.autograd.forward_ad as forward_ad

    g = _generator(13)
    mu, logvar = (torch.randn(3, 4, generator=g, dtype=torch.float64) for _ in range(2))
    rows = torch.randn(5, 4, generator=g, dtype=torch.float64)
    s = torch.rand(3, 4, generator=g, dtype=torch.float64) + 0.5
    # vmap: over any axis, with unbatched arguments of higher rank
    torch.testing.assert_close(torch.func.vmap(symkl.kl_std_normal)(mu, logvar),
                               symkl.kl_std_normal(mu, logvar), rtol=0, atol=0)
    mapped = torch.func.vmap(lambda m, v: symkl.kl_std_normal(m, v, axis=0), in_dims=1)(mu, logvar)
    torch.testing.assert_close(mapped, symkl.kl_std_normal(mu, logvar, axis=0), rtol=0, atol=0)
    mapped = torch.func.vmap(lambda m: symkl.kl_diag(m, s, 0.0, 1.0))(rows)
    torch.testing.assert_close(mapped, torch.stack([symkl.kl_diag(r, s, 0.0, 1.0) for r in rows]),
                               rtol=0, atol=0)
    # per-sample gradients, jvp, jacfwd against jacrev, hessian
    per_sample_grad = torch.func.vmap(torch.func.grad(lambda m, v: symkl.kl_std_normal(m, v)))
    per_sample = per_sample_grad(mu, logvar)
    torch.testing.assert_close(per_sample, mu)
    tangent = torch.func.jvp(lambda v: symkl.kl_std_normal(mu, v), (logvar,),
                             (torch.ones_like(mu),))[1]
    torch.testing.assert_close(tangent, (0.5 * torch.expm1(logvar)).sum(-1))
    kl = lambda v: symkl.kl_diag_symmetric(mu, v, 0.3, 1.2, param="logvar")  # noqa: E731
    torch.testing.assert_close(torch.func.jacfwd(kl)(logvar), torch.func.jacrev(kl)(logvar))
    hessian = torch.func.hessian(lambda v: symkl.kl_std_normal(mu[0], v))(logvar[0])
    torch.testing.assert_close(hessian, torch.diag(0.5 * torch.exp(logvar[0])))
    with forward_ad.dual_level():
        dual = forward_ad.make_dual(logvar, torch.ones_like(logvar))
        tangent = forward_ad.unpack_dual(symkl.kl_std_normal(mu, dual)).tangent
    torch.testing.assert_close(tangent, (0.5 * torch.expm1(logvar)).sum(-1))
    half = torch.func.jvp(lambda v: symkl.kl_std_normal(mu.half(), v), (logvar.half(),),
                          (torch.ones_like(logvar).half(),))[1]
    assert half.dtype == torch.float16
    assert torch.autograd.gradcheck(
        lambda a, b: symkl.kl_diag(a, b, 0.2, 1.5, param="std", axis=0),
        (mu.clone().requires_grad_(), s.clone().requires_grad_()), check_forward_ad=True,
    )


def test_register_kl_scale_tril_gradient_is_torchs_upper_triangle_gets_none():
    """symkl once differentiated L @ L.T in full: the (ignored) entries above the diagonal of
    a scale_tril parameter got gradients (0.38 here) where PyTorch's own KL gives 0."""
    from torch.distributions import MultivariateNormal, kl_divergence

    g = _generator(17)
    a = torch.randn(2, 3, 3, generator=g, dtype=torch.float64)
    lower = torch.linalg.cholesky(a @ a.mT + torch.eye(3, dtype=torch.float64)).requires_grad_()
    loc = torch.randn(2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    eye = torch.eye(3, dtype=torch.float64)
    q = MultivariateNormal(torch.zeros(3, dtype=torch.float64), 2 * eye)
    kl_divergence(MultivariateNormal(loc, scale_tril=lower), q).sum().backward()
    expected = lower.grad.clone(), loc.grad.clone()
    lower.grad = loc.grad = None
    with symkl_torch.register_kl():
        kl_divergence(MultivariateNormal(loc, scale_tril=lower), q).sum().backward()
    torch.testing.assert_close(lower.grad, expected[0], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(loc.grad, expected[1], rtol=1e-12, atol=1e-14)
