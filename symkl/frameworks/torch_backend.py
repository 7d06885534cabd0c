"""The public KL functions for PyTorch tensors: same dtype and device out, derived autograd.

Reached through :func:`symkl.kl_diag` and the other public functions when an
argument is a ``torch.Tensor`` (nothing here needs to be imported by hand).

* **Forward.**  CPU float32/float64 tensors run the compiled kernels on the
  tensors' own memory: for tensors of one shape, contiguous, summed over the
  last axis (the VAE case) one direct call per ``torch.get_num_threads()`` row
  block, otherwise through NumPy views.  Other devices (CUDA) run the same
  printed kernel text as tensor operations in float64
  (:func:`symkl.frameworks.array_kernels`).  float16 and bfloat16 are computed
  in float64 and rounded once, so the result is the correctly rounded KL.
* **Backward.**  ``torch.autograd.Function`` whose backward is the proved
  gradient (derivation ``stable``, facts ``gradient-*``).  Without a graph
  (plain ``.backward()``) on the CPU it is the printed NumPy gradient over
  cache-sized row blocks, written into the gradients' memory; with
  ``create_graph=True`` the printed gradient as tensor operations, so double
  backward works.  ``kl_mvn`` uses the proved full-covariance gradient
  (computed by NumPy in float64; with ``create_graph=True`` as tensor
  operations, so its second derivatives work too).  Forward mode (``jvp``:
  ``torch.func.jvp``, ``jacfwd``, ``forward_ad``) and
  ``torch.func.vmap``/``grad`` (per-sample gradients) work for every function
  but ``kl_mvn``.
* **Validation** as on the NumPy path (same messages: argument, value, index);
  ``validate=False`` skips it.  On the CPU it runs inside the C kernel.
* **torch.compile**: the KL functions are one custom operator, ``symkl::kl``
  (``torch.library.custom_op`` with ``register_fake`` and
  ``register_autograd``), so ``fullgraph=True`` compiles and the compiler
  cannot reassociate the compensated arithmetic.  The ``grad_kl_*`` functions
  and ``kl_mvn`` are not traced (``torch.compiler.disable``): the graph breaks
  around them.

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

import ctypes
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from symkl import numeric
from symkl._dispatch import DISPATCHED
from symkl.frameworks import (
    KL_SPECS,
    NATIVE_GRADIENTS,
    array_kernels,
    gradient_terms,
    round_to_odd_float32,
)

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
    dtype = _common_dtype(function, names, values, given)
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


_ENTRIES: dict[tuple[str, torch.dtype], Any] = {}


def _entry(kernel: str, dtype: torch.dtype):
    """The compiled kernel for ``dtype`` as a ctypes function of plain addresses (cached)."""
    key = (kernel, dtype)
    entry = _ENTRIES.get(key)
    if entry is None:
        suffix = "f32" if dtype == torch.float32 else "f64"
        source = getattr(numeric._LIBRARY, f"symkl_kl_{_kernel_name(kernel)}_{suffix}")
        count = (len(source.argtypes) - 4) // 3
        prototype = ctypes.CFUNCTYPE(
            ctypes.c_int64,
            *([ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64] * count),
            ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int32,
        )
        entry = _ENTRIES[key] = prototype(ctypes.cast(source, ctypes.c_void_p).value)
    return entry


def _direct_value(plan: _Plan, tensors: Sequence[torch.Tensor], dtype: torch.dtype):
    """The compiled kernel called on the tensors' own memory, or None where it does not apply.

    Applies to the common case, one call and no copy: CPU float32/float64
    tensors of one shape, contiguous, summed over the last axis (or
    elementwise), not the Jeffreys form.  Threads: ``torch.get_num_threads()``
    row blocks for large inputs, as the NumPy path does.  An invalid input
    returns None too, so the general path reports it with the NumPy path's
    message.
    """
    if plan.symmetric or numeric._LIBRARY is None:
        return None
    first = tensors[0]
    shape = first.shape
    for tensor in tensors:
        if tensor.shape != shape or not tensor.is_contiguous():
            return None
    if plan.axis is None:
        out_shape, k = shape, 1
    elif plan.axis == len(shape) - 1:
        out_shape, k = shape[:-1], shape[-1]
    else:
        return None
    total = first.numel()
    if total == 0:
        return None
    rows = total // k
    out = torch.empty(out_shape, dtype=dtype)
    entry = _entry(plan.kernel, dtype)
    itemsize = first.element_size()
    pointers = [t.data_ptr() for t in tensors]
    target = out.data_ptr()
    validate = int(plan.validate)

    def run(start: int, stop: int) -> int:
        arguments: list[int] = []
        for pointer in pointers:
            arguments += (pointer + start * k * itemsize, k, 1)
        return entry(*arguments, stop - start, k, target + start * itemsize, validate)

    workers = min(torch.get_num_threads(), rows)
    if total < numeric._PARALLEL_MIN or workers < 2:
        failed = run(0, rows) != 0
    else:
        bounds = [rows * i // workers for i in range(workers + 1)]
        futures = [
            numeric._pool().submit(run, bounds[i], bounds[i + 1]) for i in range(1, workers)
        ]
        failed = run(bounds[0], bounds[1]) != 0
        failed = any([f.result() != 0 for f in futures]) or failed
    return None if failed else out


def _value(plan: _Plan, tensors: Sequence[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    device = tensors[0].device
    if device.type == "cpu" and not TENSOR_OPS_ON_CPU:
        if dtype in _NATIVE:
            direct = _direct_value(plan, tensors, dtype)
            if direct is not None:
                return direct
        elif dtype in _HALF:  # exact in float64, then rounded once
            direct = _direct_value(plan, [t.to(torch.float64) for t in tensors], torch.float64)
            if direct is not None:
                return torch.from_numpy(round_to_odd_float32(direct.numpy())).to(dtype)
        return _numpy_value(plan, tensors, dtype)
    if device.type == "mps":  # no float64 there: compute on the CPU
        return _numpy_value(plan, [t.cpu() for t in tensors], dtype).to(device)
    return _tensor_value(plan, tensors, dtype)


def _gradient_dtype(plan: _Plan, tensor: torch.Tensor) -> torch.dtype:
    """The dtype autograd's gradients are computed in: float64 (then rounded once to the
    input's dtype), as the printed kernels' compensated arithmetic (Dekker's 26-bit split,
    the exact sums) needs; float32 where the device has no float64 (MPS); the input's
    float dtype for a gradient without compensated arithmetic (NATIVE_GRADIENTS)."""
    if plan.kernel in NATIVE_GRADIENTS and tensor.dtype in _NATIVE:
        return tensor.dtype
    if plan.kernel in NATIVE_GRADIENTS or tensor.device.type == "mps":
        return torch.float32
    return torch.float64


def _gradient_parts(plan: _Plan, tensors: Sequence[torch.Tensor], wide: torch.dtype):
    """The proved elementwise gradient, as (differentiable) tensor operations in ``wide``."""
    return _gradient_terms(plan, [t.to(wide) for t in tensors], "torch")


def _gradient_terms(plan: _Plan, values: Sequence[Any], framework: str):
    """The printed gradient of ``plan``'s kernel on ``values`` (torch tensors or NumPy arrays)."""
    return gradient_terms(framework, plan.kernel, plan.symmetric, values)


def _sum_to(gradient: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Undo broadcasting: sum ``gradient`` down to ``shape``."""
    extra = gradient.ndim - len(shape)
    if extra:
        gradient = gradient.sum(dim=tuple(range(extra)))
    keep = tuple(i for i, n in enumerate(shape) if n == 1 and gradient.shape[i] != 1)
    if keep:
        gradient = gradient.sum(dim=keep, keepdim=True)
    return gradient


def _backward(ctx, grad_output: torch.Tensor):
    """The proved gradient times ``grad_output``, summed back to each input's shape."""
    tensors = ctx.saved_tensors
    needs = ctx.needs_input_grad[2:]
    if tensors[0].device.type == "cpu" and not torch.is_grad_enabled() and not (
        TENSOR_OPS_ON_CPU
    ):
        # no graph wanted (create_graph=False): small inputs run the printed NumPy
        # gradient (fewer dispatches), large ones the printed torch one (multithreaded)
        blocked = _blocked_backward(ctx.plan, tensors, grad_output, needs)
        if blocked is not None:
            return (None, None, *blocked)
        if tensors[0].numel() < _NUMPY_BACKWARD_MAX:
            return (None, None, *_numpy_backward(ctx.plan, tensors, grad_output, needs))
    return (None, None, *_tensor_backward(ctx.plan, tensors, grad_output, needs))


#: elements per block of the blocked backward: its temporaries stay in cache
_BLOCK = 1 << 16


def _blocked_backward(plan: _Plan, tensors, grad_output: torch.Tensor, needs):
    """The printed NumPy gradient over row blocks, written into the gradients' memory.

    For the common case (CPU tensors of one shape, contiguous, summed over the
    last axis or elementwise): one pass of cache-sized blocks instead of a
    dozen whole-array temporaries, spread over ``torch.get_num_threads()``
    threads.  None where it does not apply.
    """
    first = tensors[0]
    shape = first.shape
    total = first.numel()
    if total == 0 or any(t.shape != shape or not t.is_contiguous() for t in tensors):
        return None
    if plan.axis is None:
        rows, k = total, 1
    elif plan.axis == len(shape) - 1:
        k = shape[-1]
        rows = total // k
    else:
        return None
    dtype = first.dtype
    native = dtype in _NATIVE
    wide = _gradient_dtype(plan, first)  # each block computed in it, rounded once after
    computed = np.dtype(str(wide).removeprefix("torch."))
    if native:  # NumPy views of the tensors' memory: slicing them costs no dispatch
        matrices = [t.detach().numpy().reshape(rows, k) for t in tensors]
        scale = grad_output.detach().to(dtype).numpy().reshape(rows, 1)
        targets = [np.empty((rows, k), dtype=matrices[0].dtype) if n else None for n in needs]
    else:  # a half type: each block widened (NumPy has no bfloat16)
        matrices = [t.detach().reshape(rows, k) for t in tensors]
        scale = grad_output.detach().reshape(rows, 1)
        outputs = [torch.empty((rows, k), dtype=dtype) if n else None for n in needs]
    step = max(1, _BLOCK // max(k, 1))

    def run(start: int, stop: int) -> None:
        with np.errstate(all="ignore"):
            for a in range(start, stop, step):
                b = min(a + step, stop)
                # in `computed` (float64 but for NATIVE_GRADIENTS), rounded once into dtype
                if native:
                    block_values = [m[a:b].astype(computed, copy=False) for m in matrices]
                    parts = _gradient_terms(plan, block_values, "numpy")
                    factor = scale[a:b].astype(computed, copy=False)
                    for part, target in zip(parts, targets, strict=True):
                        if target is not None:
                            np.multiply(part, factor, out=target[a:b], casting="same_kind")
                    continue
                values = [m[a:b].to(wide).numpy() for m in matrices]
                factor = scale[a:b].to(wide).numpy()
                parts = _gradient_terms(plan, values, "numpy")
                for part, out in zip(parts, outputs, strict=True):
                    if out is not None:
                        block = np.empty((b - a, k), dtype=values[0].dtype)
                        np.multiply(part, factor, out=block)
                        out[a:b].copy_(torch.from_numpy(block))

    blocks = -(-rows // step)
    workers = min(torch.get_num_threads(), blocks)
    if workers < 2:
        run(0, rows)
    else:
        per = -(-blocks // workers) * step
        futures = [
            numeric._pool().submit(run, a, min(a + per, rows)) for a in range(per, rows, per)
        ]
        run(0, min(per, rows))
        for future in futures:
            future.result()
    if native:
        return [None if t is None else torch.from_numpy(t.reshape(shape)) for t in targets]
    return [None if out is None else out.reshape(shape) for out in outputs]


def _tensor_backward(plan: _Plan, tensors, grad_output: torch.Tensor, needs):
    """The proved gradient as (differentiable) tensor operations, summed back to the inputs."""
    dtype = tensors[0].dtype
    wide = _gradient_dtype(plan, tensors[0])
    parts = _gradient_parts(plan, tensors, wide)
    scale = grad_output.to(wide)
    if plan.axis is not None:
        scale = scale.unsqueeze(plan.axis)
    shape = torch.broadcast_shapes(*(t.shape for t in tensors))
    gradients = []
    for tensor, part, needed in zip(tensors, parts, needs, strict=True):
        if not needed:
            gradients.append(None)
            continue
        # a part may depend on fewer inputs than the KL: broadcast it before summing back
        full = part * scale
        if full.shape != shape:
            full = torch.broadcast_to(full, shape)
        if full.shape != tensor.shape:
            full = _sum_to(full, tensor.shape)
        gradients.append(full.to(dtype))
    return gradients


def _jvp(ctx, plan: _Plan, dtype: torch.dtype, *tangents):
    """Forward mode (torch.func.jvp, jacfwd, forward_ad): the proved gradient times tangents."""
    plan = ctx.plan
    tensors = ctx.saved_tensors
    wide = _gradient_dtype(plan, tensors[0])
    parts = _gradient_parts(plan, tensors, wide)
    shape = torch.broadcast_shapes(*(t.shape for t in tensors))
    total = torch.zeros(shape, dtype=wide, device=tensors[0].device)
    for part, tangent in zip(parts, tangents, strict=True):
        if tangent is not None:
            total = total + part * tangent.to(wide)
    if plan.axis is not None:
        total = total.sum(dim=plan.axis)
    return total.to(tensors[0].dtype)


#: below this many elements the no-graph backward runs the printed NumPy gradient
_NUMPY_BACKWARD_MAX = 1 << 15


class _KLTransformFunction(torch.autograd.Function):
    """Forward: the compiled (or printed tensor) kernel; backward: the proved gradient.

    The form with a separate ``setup_context`` that torch.func transforms
    (``vmap``, ``grad``, ``jvp``) need; plain calls go through
    :class:`_KLFunction`, which skips the signature binding this form
    costs on every call.
    """

    @staticmethod
    def forward(plan: _Plan, dtype: torch.dtype, *tensors: torch.Tensor):
        return _value(plan, tensors, dtype)

    @staticmethod
    def setup_context(ctx, inputs, output):
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
        return _KLTransformFunction.apply(batched, dtype, *moved), 0

    jvp = staticmethod(_jvp)
    backward = staticmethod(_backward)


class _KLFunction(torch.autograd.Function):
    """The KL for calls outside torch.func transforms: as :class:`_KLTransformFunction`."""

    @staticmethod
    def forward(ctx, plan: _Plan, dtype: torch.dtype, *tensors: torch.Tensor):
        ctx.plan = plan
        ctx.save_for_backward(*tensors)
        ctx.save_for_forward(*tensors)
        return _value(plan, tensors, dtype)

    jvp = staticmethod(_jvp)
    backward = staticmethod(_backward)


def _numpy_backward(plan: _Plan, tensors, grad_output: torch.Tensor, needs_input_grad):
    """Backward for CPU tensors without a graph: the same proved gradient, printed for NumPy."""
    dtype = tensors[0].dtype
    wide = _gradient_dtype(plan, tensors[0])  # then rounded once to dtype
    values = [t.detach().to(wide).numpy() for t in tensors]
    scale = grad_output.detach().to(wide).numpy()
    if plan.axis is not None:
        scale = np.expand_dims(scale, plan.axis)
    shape = np.broadcast_shapes(*(v.shape for v in values))
    with np.errstate(all="ignore"):
        parts = _gradient_terms(plan, values, "numpy")
        gradients = []
        for value, part, needed in zip(values, parts, needs_input_grad, strict=True):
            if not needed:
                gradients.append(None)
                continue
            full = np.multiply(part, scale, dtype=value.dtype)
            if full.shape != shape:
                full = np.broadcast_to(full, shape)
            if full.shape != value.shape:
                extra = full.ndim - value.ndim
                if extra:
                    full = full.sum(axis=tuple(range(extra)))
                keep = tuple(
                    i for i, n in enumerate(value.shape) if n == 1 and full.shape[i] != 1
                )
                if keep:
                    full = full.sum(axis=keep, keepdims=True)
            gradient = _from_numpy(full)
            if gradient.shape != value.shape:
                gradient = gradient.reshape(value.shape)
            gradients.append(gradient if dtype == wide else gradient.to(dtype))
    return gradients


def _same_dtype_tensors(values: Sequence[Any]):
    """The arguments and their dtype when they are already floating tensors of one dtype and
    device (the common case, no conversion needed), else None."""
    first = values[0]
    if not isinstance(first, torch.Tensor):
        return None
    dtype, device = first.dtype, first.device
    if not dtype.is_floating_point:
        return None
    for value in values[1:]:
        if not isinstance(value, torch.Tensor) or value.dtype != dtype or value.device != device:
            return None
    return list(values), dtype


# --------------------------------------------------------------------------- torch.compile


@torch.library.custom_op(
    "symkl::kl",
    mutates_args=(),
    schema="(Tensor[] tensors, str function, str kernel, str param, int? axis, bool symmetric, "
    "bool validate) -> Tensor",
)
def _kl_op(tensors, function, kernel, param, axis, symmetric, validate):
    """The KL kernels as one custom operator: what ``torch.compile`` sees (opaque to it, so
    the compensated arithmetic is never reassociated; no graph break)."""
    names = tuple(KL_SPECS[function].names)
    plan = _Plan(function, kernel, names, param, axis, symmetric, validate)
    return _value(plan, tensors, tensors[0].dtype)


@_kl_op.register_fake
def _kl_op_fake(tensors, function, kernel, param, axis, symmetric, validate):
    shape = torch.broadcast_shapes(*(t.shape for t in tensors))
    if axis is not None:
        shape = shape[:axis] + shape[axis + 1:]
    return tensors[0].new_empty(shape)


def _kl_op_setup_context(ctx, inputs, output):
    tensors, function, kernel, param, axis, symmetric, validate = inputs
    names = tuple(KL_SPECS[function].names)
    ctx.plan = _Plan(function, kernel, names, param, axis, symmetric, validate)
    ctx.save_for_backward(*tensors)


def _kl_op_backward(ctx, grad_output):
    tensors = ctx.saved_tensors
    gradients = _tensor_backward(ctx.plan, tensors, grad_output, (True,) * len(tensors))
    return gradients, None, None, None, None, None, None


torch.library.register_autograd(
    "symkl::kl", _kl_op_backward, setup_context=_kl_op_setup_context
)


def _common_dtype(function: str, names, values, given: list) -> torch.dtype:
    """The tensors' promoted floating dtype (each one checked first); integers give the default."""
    for name, value in zip(names, values, strict=True):
        if isinstance(value, torch.Tensor):
            _check_dtype(function, name, value)
    dtype = given[0].dtype
    for tensor in given[1:]:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return dtype if dtype.is_floating_point else torch.get_default_dtype()


def _compiled_kl(function, kernel, names, values, param, axis, symmetric, validate):
    """Under ``torch.compile``: the arguments as tensors of one dtype, then the custom op."""
    given = [v for v in values if isinstance(v, torch.Tensor)]
    dtype = _common_dtype(function, names, values, given)
    device = given[0].device
    tensors = [
        v.to(dtype) if isinstance(v, torch.Tensor)
        else torch.as_tensor(v, dtype=dtype, device=device)
        for v in values
    ]
    shape = torch.broadcast_shapes(*(t.shape for t in tensors))
    axis_index = None if axis is None else _axis_index(function, tuple(shape), axis)
    return _kl_op(tensors, function, kernel, param, axis_index, symmetric, bool(validate))


# --------------------------------------------------------------------------- entry


def _kl(function: str, values, *, param=None, axis=None, validate=True) -> torch.Tensor:
    """Run the public KL function ``function`` (an entry of ``KL_SPECS``) on ``values``."""
    spec = KL_SPECS[function]
    kernel, names = spec.kernel_for(param), spec.names
    if torch.compiler.is_compiling():
        return _compiled_kl(
            function, kernel, names, values, spec.param_for(param), axis, spec.symmetric,
            validate,
        )
    prepared = _same_dtype_tensors(values)
    tensors, dtype = prepared if prepared is not None else _tensors(function, names, values)
    shape = tensors[0].shape
    if any(t.shape != shape for t in tensors):
        shape = _broadcast_shape(function, names, tensors)
    axis_index = None if axis is None else _axis_index(function, tuple(shape), axis)
    plan = _Plan(
        function, kernel, names, spec.param_for(param), axis_index, spec.symmetric,
        bool(validate),
    )
    if torch._C._are_functorch_transforms_active():
        return _KLTransformFunction.apply(plan, dtype, *tensors)
    return _KLFunction.apply(plan, dtype, *tensors)


# --------------------------------------------------------------------------- public API


def kl_normal(mu_p, sigma_p, mu_q, sigma_q, *, validate: bool = True) -> torch.Tensor:
    """:func:`symkl.kl_normal` for tensors (elementwise)."""
    return _kl("kl_normal", (mu_p, sigma_p, mu_q, sigma_q), validate=validate)


def kl_diag(
    mu_p, s_p, mu_q, s_q, *, param: str = "var", axis: int = -1, validate: bool = True
) -> torch.Tensor:
    """:func:`symkl.kl_diag` for tensors (summed over ``axis``)."""
    numeric._check_param("kl_diag", param)
    return _kl("kl_diag", (mu_p, s_p, mu_q, s_q), param=param, axis=axis, validate=validate)


def kl_std_normal(mu, logvar, *, axis: int = -1, validate: bool = True) -> torch.Tensor:
    """:func:`symkl.kl_std_normal` for tensors: the VAE prior term, summed over ``axis``."""
    return _kl("kl_std_normal", (mu, logvar), axis=axis, validate=validate)


def kl_normal_reverse(mu_p, sigma_p, mu_q, sigma_q, **options) -> torch.Tensor:
    """KL(q || p): :func:`kl_normal` with p and q exchanged."""
    return kl_normal(mu_q, sigma_q, mu_p, sigma_p, **options)


def kl_diag_reverse(mu_p, s_p, mu_q, s_q, **options) -> torch.Tensor:
    """KL(q || p) for diagonal Gaussians: :func:`kl_diag` with p and q exchanged."""
    return kl_diag(mu_q, s_q, mu_p, s_p, **options)


def kl_normal_symmetric(mu_p, sigma_p, mu_q, sigma_q, *, validate: bool = True) -> torch.Tensor:
    """Jeffreys divergence KL(p||q) + KL(q||p) for tensors, elementwise."""
    return _kl("kl_normal_symmetric", (mu_p, sigma_p, mu_q, sigma_q), validate=validate)


def kl_diag_symmetric(
    mu_p, s_p, mu_q, s_q, *, param: str = "var", axis: int = -1, validate: bool = True
) -> torch.Tensor:
    """Jeffreys divergence of diagonal Gaussians for tensors, summed over ``axis``."""
    numeric._check_param("kl_diag_symmetric", param)
    return _kl(
        "kl_diag_symmetric", (mu_p, s_p, mu_q, s_q), param=param, axis=axis, validate=validate
    )


@torch.compiler.disable
def _gradient(function: str, values, param: str | None, validate: bool):
    spec = KL_SPECS[function]
    names, kernel = spec.names, spec.kernel_for(param)
    tensors, dtype = _tensors(function, names, values)
    _broadcast_shape(function, names, tensors)
    wide = torch.broadcast_tensors(*(t.to(torch.float64) for t in tensors))
    plan = _Plan(function, kernel, names, spec.param_for(param), None, False, bool(validate))
    if validate:
        _validate(plan, [w.detach() for w in wide])
    parts = _gradient_parts(plan, wide, torch.float64)
    # + 0.0 turns -0.0 into 0.0, as on the NumPy path
    return tuple(_round(part + 0.0, dtype) for part in parts)


def grad_kl_normal(mu_p, sigma_p, mu_q, sigma_q, *, validate: bool = True):
    """:func:`symkl.grad_kl_normal` for tensors (differentiable tensor operations)."""
    return _gradient("grad_kl_normal", (mu_p, sigma_p, mu_q, sigma_q), None, validate)


def grad_kl_diag(mu_p, s_p, mu_q, s_q, *, param: str = "var", validate: bool = True):
    """:func:`symkl.grad_kl_diag` for tensors (differentiable tensor operations)."""
    numeric._check_param("grad_kl_diag", param)
    return _gradient("grad_kl_diag", (mu_p, s_p, mu_q, s_q), param, validate)


def grad_kl_std_normal(mu, logvar, *, validate: bool = True):
    """:func:`symkl.grad_kl_std_normal` for tensors (differentiable tensor operations)."""
    return _gradient("grad_kl_std_normal", (mu, logvar), None, validate)


# --------------------------------------------------------------------------- full covariance


def _mvn_numpy(function: str, values, dtype: torch.dtype):
    arrays = [v.detach().to(device="cpu", dtype=torch.float64).numpy() for v in values]
    return arrays


def _mvn_gradient_operations(mu_p, cov_p, mu_q, cov_q):
    """:func:`symkl.grad_kl_mvn`'s proved gradient as differentiable tensor operations.

    ``(S d, (S - P)/2, -S d, (S - S (cov_p + d d^T) S)/2)`` with ``S = cov_q^-1``,
    ``P = cov_p^-1``, ``d = mu_p - mu_q`` (derivation ``full``, fact ``gradients``),
    the inverses from Cholesky factors.  Used where a graph of the gradient is
    wanted (``create_graph=True``: second derivatives); first derivatives come
    from the NumPy implementation itself.
    """
    precision_q = torch.cholesky_inverse(torch.linalg.cholesky(cov_q))
    precision_p = torch.cholesky_inverse(torch.linalg.cholesky(cov_p))
    d = mu_p - mu_q
    s_d = (precision_q @ d.unsqueeze(-1)).squeeze(-1)
    outer = cov_p + d.unsqueeze(-1) * d.unsqueeze(-2)
    return (
        s_d,
        0.5 * (precision_q - precision_p),
        -s_d,
        0.5 * (precision_q - precision_q @ outer @ precision_q),
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
        if torch.is_grad_enabled():  # create_graph=True: a graph for second derivatives
            parts = _mvn_gradient_operations(*(t.to(torch.float64) for t in tensors))
            scale = grad_output.to(torch.float64)
        else:
            arrays = _mvn_numpy("kl_mvn", tensors, tensors[0].dtype)
            device = tensors[0].device
            parts = [
                _from_numpy(p).to(device) for p in numeric.grad_kl_mvn.__wrapped__(*arrays)
            ]
            scale = grad_output.detach().to(torch.float64)
        gradients = []
        for tensor, part, needed, event in zip(
            tensors, parts, ctx.needs_input_grad[1:], (1, 2, 1, 2), strict=True
        ):
            if not needed:
                gradients.append(None)
                continue
            full = part * scale.reshape(scale.shape + (1,) * event)
            gradients.append(_sum_to(full, tensor.shape).to(tensor.dtype))
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
