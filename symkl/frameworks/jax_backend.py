"""The public KL functions for JAX arrays: same dtype out, ``jax.custom_jvp`` with proved gradients.

Reached through :func:`symkl.kl_diag` and the other public functions when an
argument is a JAX array or tracer.

* **Forward.**  The compiled kernels run on the host through
  ``jax.pure_callback`` (the arrays' own memory on CPU), so XLA never sees,
  and cannot reassociate, the compensated arithmetic: float64 results stay
  within a few ULP under ``jax.jit`` too.  float16 and bfloat16 are computed
  in float64 and rounded once (correctly rounded).
* **Derivatives.**  ``jax.custom_jvp`` whose tangent is the proved gradient
  (derivation ``stable``, facts ``gradient-*``) as ``jax.numpy`` operations,
  so ``jax.grad``, ``jax.jacfwd`` and second derivatives work; ``jax.vmap``
  and ``jax.jit`` work.  ``kl_mvn`` uses the proved full-covariance gradient
  on the host (first derivatives only).
* **Validation** as on the NumPy path, same messages.  Outside ``jit`` a bad
  input raises ``ValueError``; under ``jit`` the check runs inside the
  callback and JAX reports the same message in its own runtime error.
  ``validate=False`` skips it.

Examples
--------
>>> import jax, jax.numpy as jnp, symkl
>>> mu, logvar = jnp.array([[0.5, 0.0]]), jnp.zeros((1, 2))
>>> symkl.kl_std_normal(mu, logvar)
Array([0.125], dtype=float32)
>>> jax.grad(lambda m: symkl.kl_std_normal(m, logvar).sum())(mu)
Array([[0.5, 0. ]], dtype=float32)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from symkl import numeric
from symkl._dispatch import DISPATCHED
from symkl.frameworks import KL_SPECS, NATIVE_GRADIENTS, gradient_terms, round_half_numpy

__all__ = list(DISPATCHED)

_HALF = (np.dtype(jnp.float16), np.dtype(jnp.bfloat16))


@dataclass(frozen=True)
class _Plan:
    function: str
    kernel: str
    names: tuple[str, ...]
    param: str
    axis: int | None  # negative: counted from the end, so it holds under vmap too
    symmetric: bool
    validate: bool
    dtype: Any


def _is_traced(values: Sequence[Any]) -> bool:
    return any(isinstance(v, jax.core.Tracer) for v in values)


def _arrays(function: str, names: Sequence[str], values: Sequence[Any]):
    """JAX arrays of one floating dtype (JAX's promotion; integers to the default float)."""
    for name, value in zip(names, values, strict=True):
        dtype = getattr(value, "dtype", None)
        if dtype is None:
            numeric._as_real(function, name, value)  # the NumPy path's checks
            continue
        dtype = np.dtype(dtype)
        if dtype.kind == "c":
            raise ValueError(
                f"{function}: argument {name!r} is complex (dtype {dtype}); expected real numbers"
            )
        if dtype.kind == "b":
            raise ValueError(f"{function}: argument {name!r} is boolean; expected real numbers")
    dtype = jnp.result_type(*values)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    return [jnp.asarray(v, dtype=dtype) for v in values], np.dtype(dtype)


def _axis(function: str, shape: tuple, axis: Any) -> int:
    if not shape:
        raise ValueError(f"{function}: axis={axis} needs at least 1-dimensional input")
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise ValueError(f"{function}: axis must be an integer, got {axis!r}")
    if not -len(shape) <= axis < len(shape):
        raise ValueError(f"{function}: axis={axis} is out of range for broadcast shape {shape}")
    return int(axis) % len(shape) - len(shape)


def _host(plan: _Plan, *arrays: np.ndarray) -> np.ndarray:
    """The NumPy implementation (compiled kernels) on host arrays; halves via float64."""
    dtype = plan.dtype
    wide = np.float64 if dtype in _HALF else dtype
    arrays = [np.asarray(a).astype(wide, copy=False) for a in arrays]
    options: dict[str, Any] = {"validate": plan.validate}
    if plan.function.startswith("kl_diag"):
        options["param"] = plan.kernel
    if plan.axis is not None:
        options["axis"] = plan.axis
    result = np.asarray(getattr(numeric, plan.function).__wrapped__(*arrays, **options))
    if dtype in _HALF:
        return round_half_numpy(result, dtype)
    return result.astype(dtype, copy=False)


def _gradient_parts(plan: _Plan, arrays: Sequence[Any], wide: Any):
    if np.dtype(wide) != np.dtype(np.float64) and plan.kernel not in NATIVE_GRADIENTS:
        # no float64 in JAX (jax_enable_x64 off): the printed gradient's compensated
        # arithmetic needs it, so it runs on the host in NumPy float64, rounded once
        shape = jnp.broadcast_shapes(*(jnp.shape(a) for a in arrays))
        results = tuple(jax.ShapeDtypeStruct(shape, wide) for _ in arrays)
        return jax.pure_callback(
            functools.partial(_host_gradient, plan, np.dtype(wide)),
            results,
            *(jnp.broadcast_to(a, shape) for a in arrays),
            vmap_method="broadcast_all",
        )
    values = [jnp.asarray(a).astype(wide) for a in arrays]
    return gradient_terms("jax", plan.kernel, plan.symmetric, values)


def _host_gradient(plan: _Plan, dtype: np.dtype, *arrays):
    """The printed NumPy gradient in float64, each part rounded once to ``dtype``."""
    values = [np.asarray(a, dtype=np.float64) for a in arrays]
    shape = np.broadcast_shapes(*(v.shape for v in values))
    with np.errstate(all="ignore"):
        parts = gradient_terms("numpy", plan.kernel, plan.symmetric, values)
        return tuple(np.broadcast_to(np.asarray(p) + 0.0, shape).astype(dtype) for p in parts)


def _wide(dtype: np.dtype) -> Any:
    return dtype if dtype in (np.dtype(np.float32), np.dtype(np.float64)) else jnp.float32


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _kl(plan: _Plan, *arrays):
    shape = jnp.broadcast_shapes(*(a.shape for a in arrays))
    out_shape = shape if plan.axis is None else shape[: plan.axis] + shape[plan.axis :][1:]
    arrays = [jnp.broadcast_to(a, shape) for a in arrays]
    result = jax.ShapeDtypeStruct(out_shape, plan.dtype)
    return jax.pure_callback(
        functools.partial(_host, plan), result, *arrays, vmap_method="broadcast_all"
    )


@_kl.defjvp
def _kl_jvp(plan: _Plan, primals, tangents):
    value = _kl(plan, *primals)
    # the gradient in float64 (the compensated arithmetic needs it), rounded once after
    double = jax.config.jax_enable_x64 and plan.kernel not in NATIVE_GRADIENTS
    wide = jnp.float64 if double else _wide(plan.dtype)
    parts = _gradient_parts(plan, primals, wide)
    shape = jnp.broadcast_shapes(*(jnp.shape(a) for a in primals))
    total = sum(
        jnp.broadcast_to(part * jnp.asarray(t).astype(wide), shape)
        for part, t in zip(parts, tangents, strict=True)
    )
    if plan.axis is not None:
        total = jnp.sum(total, axis=plan.axis)
    return value, jnp.broadcast_to(total, value.shape).astype(value.dtype)


def _call(function: str, values, *, param=None, axis=None, validate=True):
    """Run the public KL function ``function`` (an entry of ``KL_SPECS``) on ``values``."""
    spec = KL_SPECS[function]
    names = spec.names
    arrays, dtype = _arrays(function, names, values)
    shape = tuple(numeric._broadcast(function, names, arrays))
    axis_index = None if axis is None else _axis(function, shape, axis)
    plan = _Plan(
        function, spec.kernel_for(param), names, spec.param_for(param), axis_index,
        spec.symmetric, bool(validate), dtype,
    )
    if not _is_traced(arrays):  # concrete: errors are plain ValueErrors
        return jnp.asarray(_host(plan, *(np.asarray(a) for a in arrays)))
    return _kl(plan, *arrays)


# --------------------------------------------------------------------------- public API


def kl_normal(mu_p, sigma_p, mu_q, sigma_q, *, validate: bool = True):
    """:func:`symkl.kl_normal` for JAX arrays (elementwise)."""
    return _call("kl_normal", (mu_p, sigma_p, mu_q, sigma_q), validate=validate)


def kl_diag(mu_p, s_p, mu_q, s_q, *, param: str = "var", axis: int = -1, validate: bool = True):
    """:func:`symkl.kl_diag` for JAX arrays (summed over ``axis``)."""
    numeric._check_param("kl_diag", param)
    return _call("kl_diag", (mu_p, s_p, mu_q, s_q), param=param, axis=axis, validate=validate)


def kl_std_normal(mu, logvar, *, axis: int = -1, validate: bool = True):
    """:func:`symkl.kl_std_normal` for JAX arrays: the VAE prior term, summed over ``axis``."""
    return _call("kl_std_normal", (mu, logvar), axis=axis, validate=validate)


def kl_normal_reverse(mu_p, sigma_p, mu_q, sigma_q, **options):
    """KL(q || p): :func:`kl_normal` with p and q exchanged."""
    return kl_normal(mu_q, sigma_q, mu_p, sigma_p, **options)


def kl_diag_reverse(mu_p, s_p, mu_q, s_q, **options):
    """KL(q || p) for diagonal Gaussians: :func:`kl_diag` with p and q exchanged."""
    return kl_diag(mu_q, s_q, mu_p, s_p, **options)


def kl_normal_symmetric(mu_p, sigma_p, mu_q, sigma_q, *, validate: bool = True):
    """Jeffreys divergence KL(p||q) + KL(q||p) for JAX arrays, elementwise."""
    return _call("kl_normal_symmetric", (mu_p, sigma_p, mu_q, sigma_q), validate=validate)


def kl_diag_symmetric(
    mu_p, s_p, mu_q, s_q, *, param: str = "var", axis: int = -1, validate: bool = True
):
    """Jeffreys divergence of diagonal Gaussians for JAX arrays, summed over ``axis``."""
    numeric._check_param("kl_diag_symmetric", param)
    return _call(
        "kl_diag_symmetric", (mu_p, s_p, mu_q, s_q), param=param, axis=axis, validate=validate
    )


def _gradient(function: str, values, param: str | None, validate: bool):
    spec = KL_SPECS[function]
    names = spec.names
    arrays, dtype = _arrays(function, names, values)
    shape = tuple(numeric._broadcast(function, names, arrays))
    if validate and not _is_traced(arrays):
        numeric._validate_numpy(
            function, names, [np.broadcast_to(np.asarray(a), shape) for a in arrays],
            spec.param_for(param),
        )
    wide = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    plan = _Plan(
        function, spec.kernel_for(param), names, spec.param_for(param), None, False,
        bool(validate), dtype,
    )
    parts = _gradient_parts(plan, [jnp.broadcast_to(a, shape) for a in arrays], wide)
    return tuple((part + 0.0).astype(dtype) for part in parts)


def grad_kl_normal(mu_p, sigma_p, mu_q, sigma_q, *, validate: bool = True):
    """:func:`symkl.grad_kl_normal` for JAX arrays (differentiable ``jax.numpy`` operations).

    Validated outside ``jit`` only (under ``jit`` the values are not known).
    """
    return _gradient("grad_kl_normal", (mu_p, sigma_p, mu_q, sigma_q), None, validate)


def grad_kl_diag(mu_p, s_p, mu_q, s_q, *, param: str = "var", validate: bool = True):
    """:func:`symkl.grad_kl_diag` for JAX arrays (differentiable; validated outside ``jit``)."""
    numeric._check_param("grad_kl_diag", param)
    return _gradient("grad_kl_diag", (mu_p, s_p, mu_q, s_q), param, validate)


def grad_kl_std_normal(mu, logvar, *, validate: bool = True):
    """:func:`symkl.grad_kl_std_normal` for JAX arrays (differentiable; checked outside ``jit``)."""
    return _gradient("grad_kl_std_normal", (mu, logvar), None, validate)


# --------------------------------------------------------------------------- full covariance


def _mvn_broadcast(arrays):
    mu_p, cov_p, mu_q, cov_q = arrays
    batch = jnp.broadcast_shapes(
        mu_p.shape[:-1], mu_q.shape[:-1], cov_p.shape[:-2], cov_q.shape[:-2]
    )
    k = mu_p.shape[-1]
    return batch, [
        jnp.broadcast_to(mu_p, (*batch, k)),
        jnp.broadcast_to(cov_p, (*batch, k, k)),
        jnp.broadcast_to(mu_q, (*batch, k)),
        jnp.broadcast_to(cov_q, (*batch, k, k)),
    ]


def _mvn_host(dtype, *arrays):
    wide = [np.asarray(a).astype(np.float64) for a in arrays]
    result = np.asarray(numeric.kl_mvn.__wrapped__(*wide))
    return round_half_numpy(result, dtype) if dtype in _HALF else result.astype(dtype)


def _mvn_gradient_host(dtype, *arrays):
    wide = [np.asarray(a).astype(np.float64) for a in arrays]
    parts = numeric.grad_kl_mvn.__wrapped__(*wide)
    return tuple(np.asarray(p).astype(_wide(dtype)) for p in parts)


_NO_SECOND_DERIVATIVE = (
    "symkl.kl_mvn: second derivatives (derivatives of grad_kl_mvn) are not available: its "
    "proved gradient is computed by NumPy on the host, outside JAX's tracing; first "
    "derivatives are exact"
)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _mvn_gradient(dtype, *arrays):
    """The proved full-covariance gradient on the host (``arrays`` already broadcast)."""
    shapes = tuple(jax.ShapeDtypeStruct(a.shape, _wide(dtype)) for a in arrays)
    return jax.pure_callback(
        functools.partial(_mvn_gradient_host, dtype), shapes, *arrays, vmap_method="broadcast_all"
    )


@_mvn_gradient.defjvp
def _mvn_gradient_jvp(dtype, primals, tangents):
    # JAX's own message ("Pure callbacks do not support JVP. Please use jax.custom_jvp")
    # would send the user looking for a bug in their code
    raise NotImplementedError(_NO_SECOND_DERIVATIVE)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _kl_mvn(dtype, *arrays):
    batch, arrays = _mvn_broadcast(arrays)
    result = jax.ShapeDtypeStruct(batch, dtype)
    return jax.pure_callback(
        functools.partial(_mvn_host, dtype), result, *arrays, vmap_method="broadcast_all"
    )


@_kl_mvn.defjvp
def _kl_mvn_jvp(dtype, primals, tangents):
    value = _kl_mvn(dtype, *primals)
    _, arrays = _mvn_broadcast(primals)
    wide = _wide(dtype)
    parts = _mvn_gradient(dtype, *arrays)
    total = 0.0
    for part, tangent, event in zip(parts, tangents, (1, 2, 1, 2), strict=True):
        axes = tuple(range(-event, 0))
        total = total + jnp.sum(part * jnp.asarray(tangent).astype(wide), axis=axes)
    return value, jnp.broadcast_to(total, value.shape).astype(dtype)


def kl_mvn(mu_p, cov_p, mu_q, cov_q):
    """:func:`symkl.kl_mvn` for JAX arrays (host float64, proved first derivatives)."""
    names = ("mu_p", "cov_p", "mu_q", "cov_q")
    arrays, dtype = _arrays("kl_mvn", names, (mu_p, cov_p, mu_q, cov_q))
    if not _is_traced(arrays):
        return jnp.asarray(_mvn_host(dtype, *(np.asarray(a) for a in arrays)))
    return _kl_mvn(dtype, *arrays)


def grad_kl_mvn(mu_p, cov_p, mu_q, cov_q):
    """:func:`symkl.grad_kl_mvn` for JAX arrays (host float64; not differentiable)."""
    names = ("mu_p", "cov_p", "mu_q", "cov_q")
    arrays, dtype = _arrays("grad_kl_mvn", names, (mu_p, cov_p, mu_q, cov_q))
    if not _is_traced(arrays):
        parts = numeric.grad_kl_mvn.__wrapped__(*(np.asarray(a, dtype=np.float64) for a in arrays))
        return tuple(jnp.asarray(np.asarray(p).astype(dtype)) for p in parts)
    _, broadcast = _mvn_broadcast(arrays)
    return tuple(p.astype(dtype) for p in _mvn_gradient(dtype, *broadcast))
