"""The public KL functions for PyTorch tensors: same dtype and device out, derived autograd.

Reached through :func:`symkl.kl_diag` and the other public functions when an
argument is a ``torch.Tensor`` (nothing here needs to be imported by hand).

* **Forward.**  CPU float32/float64 tensors run the compiled kernels on the
  tensors' own memory (zero-copy NumPy views); other devices (CUDA) run the
  same printed kernel text as tensor operations in float64
  (:func:`symkl.frameworks.array_kernels`).  float16 and bfloat16 are computed
  in float64 and rounded once, so the result is the correctly rounded KL.
* **Backward.**  ``torch.autograd.Function`` whose backward is the proved
  gradient (derivation ``stable``, facts ``gradient-*``) written in tensor
  operations, so it is cheap and itself differentiable: double backward works.
  ``kl_mvn`` uses the proved full-covariance gradient (computed on the CPU in
  float64); differentiating its gradient again raises a RuntimeError saying so.
  Forward mode (``jvp``: ``torch.func.jvp``, ``jacfwd``, ``forward_ad``) and
  ``torch.func.vmap``/``grad`` (per-sample gradients) work for every function
  but ``kl_mvn``.
* **Validation** as on the NumPy path (same messages: argument, value, index);
  ``validate=False`` skips it.
* **torch.compile**: the calls are opaque to the compiler
  (``torch.compiler.disable``), so compiled code cannot reassociate the
  compensated arithmetic; the graph breaks around them.

Examples
--------
>>> import torch, symkl
>>> mu = torch.tensor([[0.5, 0.0]], requires_grad=True)
>>> logvar = torch.zeros(1, 2, requires_grad=True)
>>> kl = symkl.kl_std_normal(mu, logvar)
>>> kl
tensor([0.1250], grad_fn=<_KLFunctionBackward>)
>>> kl.sum().backward()
>>> mu.grad
tensor([[0.5000, 0.0000]])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from symkl import numeric
from symkl._dispatch import DISPATCHED
from symkl.frameworks import array_kernels

__all__ = list(DISPATCHED)

_HALF = (torch.float16, torch.bfloat16)
_NATIVE = (torch.float32, torch.float64)
#: run the tensor-operation path (the one CUDA uses) on CPU tensors too (for tests)
TENSOR_OPS_ON_CPU = False


@dataclass(frozen=True)
class _Plan:
    """One call's static data: which kernel, how to validate, which axis is summed."""

    function: str
    kernel: str  # "std", "var", "logvar", "std-normal"
    names: tuple[str, ...]
    param: str  # for validation messages
    axis: int | None  # summed axis in the broadcast shape, None: elementwise
    symmetric: bool
    validate: bool


# --------------------------------------------------------------------------- inputs


def _check_dtype(function: str, name: str, tensor: torch.Tensor) -> None:
    if tensor.dtype.is_complex:
        raise ValueError(
            f"{function}: argument {name!r} is complex (dtype {tensor.dtype}); "
            "expected real numbers"
        )
    if tensor.dtype == torch.bool:
        raise ValueError(f"{function}: argument {name!r} is boolean; expected real numbers")


def _tensors(function: str, names: Sequence[str], values: Sequence[Any]):
    """Tensors of one floating dtype on one device, and that dtype.

    Python numbers and NumPy arrays take the tensors' dtype (they do not
    promote); integer tensors become the default float dtype; float16 and
    bfloat16 together give float32.
    """
    given = [v for v in values if isinstance(v, torch.Tensor)]
    for name, value in zip(names, values, strict=True):
        if isinstance(value, torch.Tensor):
            _check_dtype(function, name, value)
    dtype = given[0].dtype
    for tensor in given[1:]:
        dtype = torch.promote_types(dtype, tensor.dtype)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    devices = [t.device for t in given if t.device.type != "cpu"]
    device = devices[0] if devices else given[0].device
    tensors = []
    for name, value in zip(names, values, strict=True):
        if not isinstance(value, torch.Tensor):
            array = numeric._as_real(function, name, value)  # the NumPy path's checks
            value = torch.as_tensor(array, device=device)
        tensors.append(value.to(device=device, dtype=dtype))
    return tensors, dtype


def _broadcast_shape(function: str, names: Sequence[str], tensors) -> tuple:
    """The broadcast shape, or the NumPy path's error (shapes written as tuples)."""
    shapes = [SimpleNamespace(shape=tuple(t.shape)) for t in tensors]
    return tuple(numeric._broadcast(function, names, shapes))


def _axis_index(function: str, shape: tuple, axis: Any) -> int:
    if not shape:
        raise ValueError(f"{function}: axis={axis} needs at least 1-dimensional input")
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise ValueError(f"{function}: axis must be an integer, got {axis!r}")
    if not -len(shape) <= axis < len(shape):
        raise ValueError(f"{function}: axis={axis} is out of range for broadcast shape {shape}")
    return int(axis) % len(shape)


def _round(value: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Round float64 ``value`` once to ``dtype`` (round to odd in float32 for the half types)."""
    if dtype not in _HALF:
        return value.to(dtype)
    nearest = value.to(torch.float32)
    wide = nearest.to(torch.float64)
    inexact = wide != value
    away = inexact & (wide.abs() > value.abs())
    truncated = torch.where(away, torch.nextafter(nearest, torch.zeros_like(nearest)), nearest)
    bits = truncated.view(torch.int32) | inexact.to(torch.int32)
    return bits.view(torch.float32).to(dtype)


def _validate(plan: _Plan, tensors: Sequence[torch.Tensor]) -> None:
    """The NumPy path's checks and messages, as tensor operations (first bad index reported)."""
    for name, tensor in zip(plan.names, tensors, strict=True):
        if name.startswith("mu") or plan.param == "logvar":
            bad = ~torch.isfinite(tensor)
        else:
            bad = ~(torch.isfinite(tensor) & (tensor > 0))
        if bool(bad.any()):
            index = tuple(int(i) for i in torch.nonzero(bad)[0]) if tensor.ndim else ()
            value = float(tensor[index]) if index else float(tensor)
            numeric._raise_invalid(plan.function, name, plan.param, value, index)


def _canonical_order(tensors):
    mu_p, s_p, mu_q, s_q = tensors
    swap = (s_p < s_q) | ((s_p == s_q) & (mu_p < mu_q))
    return (
        torch.where(swap, mu_q, mu_p),
        torch.where(swap, s_q, s_p),
        torch.where(swap, mu_p, mu_q),
        torch.where(swap, s_p, s_q),
    )


def _from_numpy(array: Any) -> torch.Tensor:
    """A tensor sharing ``array``'s memory (copied only if not contiguous or read-only)."""
    array = np.asarray(array)
    if not (array.flags.c_contiguous and array.flags.writeable):
        array = array.copy()
    return torch.from_numpy(array)


def _kernel_name(kernel: str) -> str:
    return kernel.replace("-", "_")


# --------------------------------------------------------------------------- values


def _numpy_value(plan: _Plan, tensors: Sequence[torch.Tensor], dtype: torch.dtype):
    """The compiled kernels on the CPU tensors' memory (views, no copy for float32/64)."""
    wide = torch.float64 if dtype in _HALF else dtype
    arrays = [t.detach().to(wide).numpy() for t in tensors]
    options: dict[str, Any] = {"validate": plan.validate}
    if plan.kernel in ("std", "var", "logvar") and plan.function.startswith("kl_diag"):
        options["param"] = plan.kernel
    if plan.axis is not None:
        options["axis"] = plan.axis
    implementation = getattr(numeric, plan.function).__wrapped__
    result = np.asarray(implementation(*arrays, **options))
    value = _from_numpy(result)
    return _round(value, dtype) if dtype in _HALF else value


def _tensor_value(plan: _Plan, tensors: Sequence[torch.Tensor], dtype: torch.dtype):
    """The printed kernel as float64 tensor operations (any device)."""
    wide = torch.broadcast_tensors(*(t.detach().to(torch.float64) for t in tensors))
    if plan.validate:
        _validate(plan, wide)
    kernels = array_kernels("torch")
    if plan.symmetric:
        terms = getattr(kernels, f"jeffreys_{_kernel_name(plan.kernel)}")(*_canonical_order(wide))
    else:
        terms = getattr(kernels, f"term_{_kernel_name(plan.kernel)}")(*wide)
    if plan.axis is not None:
        terms = terms.sum(dim=plan.axis)
    return _round(terms, dtype)


def _value(plan: _Plan, tensors: Sequence[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    device = tensors[0].device
    if device.type == "cpu" and not TENSOR_OPS_ON_CPU:
        return _numpy_value(plan, tensors, dtype)
    if device.type == "mps":  # no float64 there: compute on the CPU
        return _numpy_value(plan, [t.cpu() for t in tensors], dtype).to(device)
    return _tensor_value(plan, tensors, dtype)


def _gradient_parts(plan: _Plan, tensors: Sequence[torch.Tensor], wide: torch.dtype):
    """The proved elementwise gradient, as (differentiable) tensor operations in ``wide``."""
    return _gradient_terms(plan, [t.to(wide) for t in tensors], "torch")


def _gradient_terms(plan: _Plan, values: Sequence[Any], framework: str):
    """The printed gradient of ``plan``'s kernel on ``values`` (torch tensors or NumPy arrays)."""
    function = getattr(array_kernels(framework), f"gradient_{_kernel_name(plan.kernel)}")
    forward = function(*values)
    if not plan.symmetric:
        return forward
    # J(p, q) = KL(p||q) + KL(q||p); the second's gradient is in (mu_q, s_q, mu_p, s_p) order
    backward = function(values[2], values[3], values[0], values[1])
    return (
        forward[0] + backward[2],
        forward[1] + backward[3],
        forward[2] + backward[0],
        forward[3] + backward[1],
    )


def _sum_to(gradient: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Undo broadcasting: sum ``gradient`` down to ``shape``."""
    extra = gradient.ndim - len(shape)
    if extra:
        gradient = gradient.sum(dim=tuple(range(extra)))
    keep = tuple(i for i, n in enumerate(shape) if n == 1 and gradient.shape[i] != 1)
    if keep:
        gradient = gradient.sum(dim=keep, keepdim=True)
    return gradient


class _KLFunction(torch.autograd.Function):
    """Forward: the compiled (or printed tensor) kernel; backward: the proved gradient."""

    @staticmethod
    def forward(plan: _Plan, dtype: torch.dtype, *tensors: torch.Tensor):
        return _value(plan, tensors, dtype)

    @staticmethod
    def setup_context(ctx, inputs, output):  # the separate form torch.func transforms need
        plan, _, *tensors = inputs
        ctx.plan = plan
        ctx.save_for_backward(*tensors)
        ctx.save_for_forward(*tensors)

    @staticmethod
    def vmap(info, in_dims, plan: _Plan, dtype: torch.dtype, *tensors: torch.Tensor):
        """torch.func.vmap: the mapped axis first, the call once more over the whole batch."""
        dims = in_dims[2:]
        rank = max(t.ndim - (d is not None) for t, d in zip(tensors, dims, strict=True))
        moved = []
        for tensor, dim in zip(tensors, dims, strict=True):
            if dim is not None:  # (B, 1..., logical shape): aligned with the others' axes
                tensor = tensor.movedim(dim, 0)
                logical = tensor.shape[1:]
                tensor = tensor.reshape(tensor.shape[0], *(1,) * (rank - len(logical)), *logical)
            moved.append(tensor)
        axis = None if plan.axis is None else plan.axis + 1
        batched = dataclasses.replace(plan, axis=axis)
        return _KLFunction.apply(batched, dtype, *moved), 0

    @staticmethod
    def jvp(ctx, plan: _Plan, dtype: torch.dtype, *tangents):
        """Forward mode (torch.func.jvp, jacfwd, forward_ad): the proved gradient times tangents."""
        plan = ctx.plan
        tensors = ctx.saved_tensors
        wide = tensors[0].dtype if tensors[0].dtype in _NATIVE else torch.float32
        parts = _gradient_parts(plan, tensors, wide)
        shape = torch.broadcast_shapes(*(t.shape for t in tensors))
        total = torch.zeros(shape, dtype=wide, device=tensors[0].device)
        for part, tangent in zip(parts, tangents, strict=True):
            if tangent is not None:
                total = total + part * tangent.to(wide)
        if plan.axis is not None:
            total = total.sum(dim=plan.axis)
        return total.to(tensors[0].dtype)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        plan: _Plan = ctx.plan
        tensors = ctx.saved_tensors
        dtype = tensors[0].dtype
        if tensors[0].device.type == "cpu" and not torch.is_grad_enabled() and not (
            TENSOR_OPS_ON_CPU
        ):
            # no graph wanted (create_graph=False): the printed NumPy gradient on the
            # tensors' memory, free of per-operation dispatch
            return (None, None, *_numpy_backward(plan, tensors, grad_output, ctx.needs_input_grad))
        wide = dtype if dtype in _NATIVE else torch.float32
        parts = _gradient_parts(plan, tensors, wide)
        scale = grad_output.to(wide)
        if plan.axis is not None:
            scale = scale.unsqueeze(plan.axis)
        shape = torch.broadcast_shapes(*(t.shape for t in tensors))
        gradients = []
        for tensor, part, needed in zip(tensors, parts, ctx.needs_input_grad[2:], strict=True):
            if not needed:
                gradients.append(None)
                continue
            # a part may depend on fewer inputs than the KL: broadcast it before summing back
            full = torch.broadcast_to(part * scale, shape)
            gradients.append(_sum_to(full, tensor.shape).to(dtype))
        return (None, None, *gradients)


def _numpy_backward(plan: _Plan, tensors, grad_output: torch.Tensor, needs_input_grad):
    """Backward for CPU tensors without a graph: the same proved gradient, printed for NumPy."""
    dtype = tensors[0].dtype
    wide = dtype if dtype in _NATIVE else torch.float32
    values = [t.detach().to(wide).numpy() for t in tensors]
    scale = grad_output.detach().to(wide).numpy()
    if plan.axis is not None:
        scale = np.expand_dims(scale, plan.axis)
    shape = np.broadcast_shapes(*(v.shape for v in values))
    with np.errstate(all="ignore"):
        parts = _gradient_terms(plan, values, "numpy")
        gradients = []
        for value, part, needed in zip(values, parts, needs_input_grad[2:], strict=True):
            if not needed:
                gradients.append(None)
                continue
            full = np.broadcast_to(np.multiply(part, scale, dtype=value.dtype), shape)
            extra = full.ndim - value.ndim
            if extra:
                full = full.sum(axis=tuple(range(extra)))
            keep = tuple(i for i, n in enumerate(value.shape) if n == 1 and full.shape[i] != 1)
            if keep:
                full = full.sum(axis=keep, keepdims=True)
            gradients.append(_from_numpy(full).reshape(value.shape).to(dtype))
    return gradients


@torch.compiler.disable
def _kl(function: str, kernel: str, names, values, *, param, axis, symmetric, validate):
    tensors, dtype = _tensors(function, names, values)
    shape = _broadcast_shape(function, names, tensors)
    axis_index = None if axis is None else _axis_index(function, shape, axis)
    plan = _Plan(function, kernel, tuple(names), param, axis_index, symmetric, bool(validate))
    return _KLFunction.apply(plan, dtype, *tensors)


# --------------------------------------------------------------------------- public API


def kl_normal(mu_p, sigma_p, mu_q, sigma_q, *, validate: bool = True) -> torch.Tensor:
    """:func:`symkl.kl_normal` for tensors (elementwise)."""
    names = ("mu_p", "sigma_p", "mu_q", "sigma_q")
    return _kl(
        "kl_normal", "std", names, (mu_p, sigma_p, mu_q, sigma_q),
        param="std", axis=None, symmetric=False, validate=validate,
    )


def kl_diag(
    mu_p, s_p, mu_q, s_q, *, param: str = "var", axis: int = -1, validate: bool = True
) -> torch.Tensor:
    """:func:`symkl.kl_diag` for tensors (summed over ``axis``)."""
    numeric._check_param("kl_diag", param)
    return _kl(
        "kl_diag", param, ("mu_p", "s_p", "mu_q", "s_q"), (mu_p, s_p, mu_q, s_q),
        param=param, axis=axis, symmetric=False, validate=validate,
    )


def kl_std_normal(mu, logvar, *, axis: int = -1, validate: bool = True) -> torch.Tensor:
    """:func:`symkl.kl_std_normal` for tensors: the VAE prior term, summed over ``axis``."""
    return _kl(
        "kl_std_normal", "std-normal", ("mu", "logvar"), (mu, logvar),
        param="logvar", axis=axis, symmetric=False, validate=validate,
    )


def kl_normal_reverse(mu_p, sigma_p, mu_q, sigma_q, **options) -> torch.Tensor:
    """KL(q || p): :func:`kl_normal` with p and q exchanged."""
    return kl_normal(mu_q, sigma_q, mu_p, sigma_p, **options)


def kl_diag_reverse(mu_p, s_p, mu_q, s_q, **options) -> torch.Tensor:
    """KL(q || p) for diagonal Gaussians: :func:`kl_diag` with p and q exchanged."""
    return kl_diag(mu_q, s_q, mu_p, s_p, **options)


def kl_normal_symmetric(mu_p, sigma_p, mu_q, sigma_q, *, validate: bool = True) -> torch.Tensor:
    """Jeffreys divergence KL(p||q) + KL(q||p) for tensors, elementwise."""
    names = ("mu_p", "sigma_p", "mu_q", "sigma_q")
    return _kl(
        "kl_normal_symmetric", "std", names, (mu_p, sigma_p, mu_q, sigma_q),
        param="std", axis=None, symmetric=True, validate=validate,
    )


def kl_diag_symmetric(
    mu_p, s_p, mu_q, s_q, *, param: str = "var", axis: int = -1, validate: bool = True
) -> torch.Tensor:
    """Jeffreys divergence of diagonal Gaussians for tensors, summed over ``axis``."""
    numeric._check_param("kl_diag_symmetric", param)
    return _kl(
        "kl_diag_symmetric", param, ("mu_p", "s_p", "mu_q", "s_q"), (mu_p, s_p, mu_q, s_q),
        param=param, axis=axis, symmetric=True, validate=validate,
    )


@torch.compiler.disable
def _gradient(function: str, kernel: str, names, values, param: str, validate: bool):
    tensors, dtype = _tensors(function, names, values)
    _broadcast_shape(function, names, tensors)
    wide = torch.broadcast_tensors(*(t.to(torch.float64) for t in tensors))
    plan = _Plan(function, kernel, tuple(names), param, None, False, bool(validate))
    if validate:
        _validate(plan, [w.detach() for w in wide])
    parts = _gradient_parts(plan, wide, torch.float64)
    # + 0.0 turns -0.0 into 0.0, as on the NumPy path
    return tuple(_round(part + 0.0, dtype) for part in parts)


def grad_kl_normal(mu_p, sigma_p, mu_q, sigma_q, *, validate: bool = True):
    """:func:`symkl.grad_kl_normal` for tensors (differentiable tensor operations)."""
    names = ("mu_p", "sigma_p", "mu_q", "sigma_q")
    values = (mu_p, sigma_p, mu_q, sigma_q)
    return _gradient("grad_kl_normal", "std", names, values, "std", validate)


def grad_kl_diag(mu_p, s_p, mu_q, s_q, *, param: str = "var", validate: bool = True):
    """:func:`symkl.grad_kl_diag` for tensors (differentiable tensor operations)."""
    numeric._check_param("grad_kl_diag", param)
    names = ("mu_p", "s_p", "mu_q", "s_q")
    return _gradient("grad_kl_diag", param, names, (mu_p, s_p, mu_q, s_q), param, validate)


def grad_kl_std_normal(mu, logvar, *, validate: bool = True):
    """:func:`symkl.grad_kl_std_normal` for tensors (differentiable tensor operations)."""
    return _gradient(
        "grad_kl_std_normal", "std-normal", ("mu", "logvar"), (mu, logvar), "logvar", validate
    )


# --------------------------------------------------------------------------- full covariance


def _mvn_numpy(function: str, values, dtype: torch.dtype):
    arrays = [v.detach().to(device="cpu", dtype=torch.float64).numpy() for v in values]
    return arrays


_NO_SECOND_DERIVATIVE = (
    "symkl.kl_mvn: second derivatives are not available (its proved gradient is computed "
    "by NumPy on the CPU, outside autograd); first derivatives are exact"
)


class _MVNFunction(torch.autograd.Function):
    """kl_mvn with the proved gradient (derivation ``full``, fact ``gradients``)."""

    @staticmethod
    def forward(ctx, dtype: torch.dtype, *tensors: torch.Tensor):
        arrays = _mvn_numpy("kl_mvn", tensors, dtype)
        ctx.save_for_backward(*tensors)
        value = np.asarray(numeric.kl_mvn.__wrapped__(*arrays))
        return _round(_from_numpy(value), dtype).to(tensors[0].device)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        tensors = ctx.saved_tensors
        arrays = _mvn_numpy("kl_mvn", tensors, tensors[0].dtype)
        parts = numeric.grad_kl_mvn.__wrapped__(*arrays)
        scale = grad_output.detach().to(device="cpu", dtype=torch.float64)
        gradients = []
        for tensor, part, needed, event in zip(
            tensors, parts, ctx.needs_input_grad[1:], (1, 2, 1, 2), strict=True
        ):
            if not needed:
                gradients.append(None)
                continue
            full = _from_numpy(part) * scale.reshape(
                scale.shape + (1,) * event
            )
            gradient = _sum_to(full, tensor.shape).to(tensor.device, tensor.dtype)
            if torch.is_grad_enabled():  # create_graph=True: differentiating again must fail
                gradient = torch._C._functions.DelayedError(_NO_SECOND_DERIVATIVE, 1)(
                    gradient.detach().requires_grad_()
                )
            gradients.append(gradient)
        return (None, *gradients)


@torch.compiler.disable
def kl_mvn(mu_p, cov_p, mu_q, cov_q) -> torch.Tensor:
    """:func:`symkl.kl_mvn` for tensors, with the proved gradient.

    Computed on the CPU in float64 (Cholesky factors and forward substitution,
    as on the NumPy path) and returned on the inputs' device in their dtype;
    the same checks and :class:`symkl.CovarianceError` messages.
    """
    names = ("mu_p", "cov_p", "mu_q", "cov_q")
    tensors, dtype = _tensors("kl_mvn", names, (mu_p, cov_p, mu_q, cov_q))
    return _MVNFunction.apply(dtype, *tensors)


@torch.compiler.disable
def grad_kl_mvn(mu_p, cov_p, mu_q, cov_q):
    """:func:`symkl.grad_kl_mvn` for tensors (on the CPU in float64; not differentiable)."""
    names = ("mu_p", "cov_p", "mu_q", "cov_q")
    tensors, dtype = _tensors("grad_kl_mvn", names, (mu_p, cov_p, mu_q, cov_q))
    arrays = _mvn_numpy("grad_kl_mvn", tensors, dtype)
    parts = numeric.grad_kl_mvn.__wrapped__(*arrays)
    device = tensors[0].device
    return tuple(
        _round(_from_numpy(p), dtype).to(device) for p in parts
    )
