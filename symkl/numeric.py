"""KL divergences between Gaussians as fast, accurate NumPy functions.

Every formula here comes from the proved derivation ``stable`` (and ``full``
for :func:`kl_mvn`), printed into ``symkl/_kernels.c`` and
``symkl/_kernels_numpy.py`` by ``symkl build``.  The C kernels are used when
they were compiled at install time (a C compiler was present); otherwise the
NumPy kernels give the same results, more slowly.  :func:`backend` says which.

Importing this module does not import SymPy.  The public functions also take
PyTorch tensors and JAX arrays (``@dispatched``, :mod:`symkl._dispatch`):
those go to :mod:`symkl.frameworks` and come back as the same array type.

Accuracy (measured against mpmath at 50 digits; see ``docs/numerics.md``):
the per-coordinate KL is ``1/2 (a + x - log(1 + x))`` with ``x`` the relative
variance difference and ``a`` the scaled squared mean difference, both
non-negative, with ``x - log(1 + x)`` evaluated by an atanh series near 0.  The
result is within a few ULP everywhere, including KL near 0 where the textbook
formula returns noise or negative numbers.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import importlib.util
import itertools
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from symkl import _kernels_numpy as kernels
from symkl._dispatch import DISPATCHED, dispatched

__all__ = ["CovarianceError", "backend", *DISPATCHED]

PARAMS = ("std", "var", "logvar")
#: below this many elements one thread is used
_PARALLEL_MIN = 1 << 17


class CovarianceError(np.linalg.LinAlgError):
    """A covariance matrix that is not square, symmetric or positive definite.

    A subclass of :class:`numpy.linalg.LinAlgError` (itself a ``ValueError``).
    """


# --------------------------------------------------------------------------- backend


def _find_library() -> Path | None:
    spec = importlib.util.find_spec("symkl")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            candidate = Path(folder) / f"_ckernels{suffix}"
            if candidate.exists():
                return candidate
    return None


def _load() -> ctypes.CDLL | None:
    if os.environ.get("SYMKL_BACKEND", "").lower() == "numpy":
        return None
    path = _find_library()
    if path is None:
        return None
    try:
        library = ctypes.CDLL(str(path))
    except OSError:
        return None
    for kernel, count in (("var", 4), ("std", 4), ("logvar", 4), ("std_normal", 2)):
        for suffix, pointer in (("f64", ctypes.c_double), ("f32", ctypes.c_float)):
            function = getattr(library, f"symkl_kl_{kernel}_{suffix}")
            function.restype = ctypes.c_int64
            function.argtypes = [
                *([ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64] * count),
                ctypes.c_int64,
                ctypes.c_int64,
                ctypes.POINTER(pointer),
                ctypes.c_int32,
            ]
    return library


_LIBRARY = _load()
if _LIBRARY is not None:
    for _suffix in ("f64", "f32"):
        _probe = getattr(_LIBRARY, f"symkl_read_sum_{_suffix}")
        _probe.restype = ctypes.c_double
        _probe.argtypes = [ctypes.c_void_p, ctypes.c_int64]
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def backend() -> str:
    """``"c"`` when the compiled kernels are in use, else ``"numpy"``.

    Set the environment variable ``SYMKL_BACKEND=numpy`` before import to force
    the NumPy kernels.

    Examples
    --------
    >>> backend() in ("c", "numpy")
    True
    """
    return "c" if _LIBRARY is not None else "numpy"


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1)))
        return _POOL


def _forget_pool_after_fork() -> None:
    """A forked child has none of the parent's threads: a new pool (and lock) on first use.

    Without this, a large KL in a ``fork``-started worker (PyTorch's DataLoader
    workers, ``multiprocessing`` on Linux) queued its blocks to threads that do
    not exist in the child and waited forever.
    """
    global _POOL, _POOL_LOCK
    _POOL = None
    _POOL_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def read_probe(*arrays: np.ndarray) -> float:
    """Sum every element of ``arrays`` with the compiled kernels' threads: the time to read
    the inputs once, the memory limit a KL kernel is measured against (benchmarks).

    Contiguous float32 or float64 arrays; raises ``RuntimeError`` without the C kernels.

    Examples
    --------
    >>> import numpy as np
    >>> read_probe(np.ones(10), np.ones(6)) if backend() == "c" else 16.0
    16.0
    """
    if _LIBRARY is None:
        raise RuntimeError("read_probe needs the compiled kernels (backend() is 'numpy')")
    total = 0.0
    for array in arrays:
        if array.dtype not in (np.float32, np.float64) or not array.flags.c_contiguous:
            raise ValueError(
                f"read_probe: expected contiguous float32 or float64 arrays, got {array.dtype}"
            )
        entry = _LIBRARY.symkl_read_sum_f32 if array.dtype == np.float32 else (
            _LIBRARY.symkl_read_sum_f64
        )
        flat = array.reshape(-1)
        workers = max(1, min(os.cpu_count() or 1, 8))
        if flat.size < _PARALLEL_MIN or workers == 1:
            total += entry(flat.ctypes.data, flat.size)
            continue
        bounds = np.linspace(0, flat.size, workers + 1).astype(np.int64)
        futures = [
            _pool().submit(entry, flat.ctypes.data + int(a) * flat.itemsize, int(b - a))
            for a, b in itertools.pairwise(bounds)
        ]
        total += sum(future.result() for future in futures)
    return total


# --------------------------------------------------------------------------- validation


def _as_real(function: str, name: str, value: Any) -> np.ndarray:
    """A real floating array: ints promoted to float64; complex and non-numbers refused."""
    try:
        array = np.asarray(value)
    except Exception as error:  # e.g. ragged nested lists
        raise ValueError(
            f"{function}: argument {name!r} is not a numeric array ({error})"
        ) from None
    kind = array.dtype.kind
    if kind == "c":
        raise ValueError(
            f"{function}: argument {name!r} is complex (dtype {array.dtype}); expected real numbers"
        )
    if kind == "b":
        raise ValueError(f"{function}: argument {name!r} is boolean; expected real numbers")
    if kind in "iu":
        return array.astype(np.float64)
    if kind != "f":
        raise ValueError(
            f"{function}: argument {name!r} has non-numeric dtype {array.dtype}; "
            "expected real numbers"
        )
    if array.dtype == np.float16:
        return array.astype(np.float32)
    if array.dtype.itemsize > 8:
        return array.astype(np.float64)
    return array.astype(array.dtype.newbyteorder("="), copy=False)


def _result_dtype(arrays: Sequence[np.ndarray], originals: Sequence[Any]) -> np.dtype:
    """float32 when every array argument is float32 (Python scalars do not promote)."""
    typed = [
        a.dtype
        for a, original in zip(arrays, originals, strict=True)
        if isinstance(original, np.ndarray | np.generic)
    ]
    if typed and all(t == np.float32 for t in typed):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _broadcast(function: str, names: Sequence[str], arrays: Sequence[np.ndarray]) -> tuple:
    try:
        return np.broadcast_shapes(*[a.shape for a in arrays])
    except ValueError:
        shapes = ", ".join(f"{n} {a.shape}" for n, a in zip(names, arrays, strict=True))
        raise ValueError(f"{function}: argument shapes do not broadcast: {shapes}") from None


def _check_param(function: str, param: Any) -> str:
    if param not in PARAMS:
        raise ValueError(
            f"{function}: unknown param={param!r}; expected one of "
            + ", ".join(repr(p) for p in PARAMS)
            + " (what s_p and s_q hold: standard deviations, variances or log-variances)"
        )
    return param


def _requirement(name: str, param: str) -> str:
    if name.startswith("mu"):
        return "must be finite (no NaN or inf in means)"
    if param == "logvar":
        return "must be finite (log-variances; no NaN or inf)"
    what = {"std": "standard deviations", "var": "variances"}[param]
    return f"must be finite and > 0 ({what}: no zero, negative, NaN or inf)"


def _invalid(array: np.ndarray, name: str, param: str) -> np.ndarray:
    if name.startswith("mu") or param == "logvar":
        return ~np.isfinite(array)
    return ~(np.isfinite(array) & (array > 0))


def _raise_invalid(function: str, name: str, param: str, value: Any, index: tuple) -> None:
    label = repr(name) if name.startswith("mu") else f"{name!r} (param={param!r})"
    where = f" at index {index}" if index else ""
    raise ValueError(
        f"{function}: argument {label} {_requirement(name, param)}; got {value!r}{where}"
    )


def _first_invalid(names, arrays, param: str) -> tuple[int, int] | None:
    """``(position, flat index)`` of the first invalid element in C order, over all
    arguments (of one shape), the lowest argument position among ties: the element the
    compiled kernels report, so both backends name the same one."""
    first = None
    for position, (name, array) in enumerate(zip(names, arrays, strict=True)):
        bad = _invalid(array, name, param).ravel()
        if bad.any():
            flat = int(np.argmax(bad))
            if first is None or flat < first[1]:
                first = (position, flat)
    return first


def _validate_numpy(function: str, names, arrays, param: str, note: str = "") -> None:
    """Raise for the first invalid element (lowest index in the broadcast shape)."""
    shape = _broadcast(function, names, arrays)
    arrays = [np.broadcast_to(a, shape) for a in arrays]
    found = _first_invalid(names, arrays, param)
    if found is not None:
        position, flat = found
        index = tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()
        _raise_invalid(function, names[position], param, float(arrays[position][index]), index)


def _kernel_dtype(dtype: np.dtype, arrays: Sequence[np.ndarray]) -> np.dtype:
    """The type the compiled kernels compute from: float32 only where every argument is
    float32 or exactly a float32 value (a Python scalar like 1e50 or 0.1 with float32
    arrays is used as given, in float64, and the result rounded to float32 once)."""
    if dtype != np.float32:
        return dtype
    with np.errstate(over="ignore", invalid="ignore"):
        exact = all(
            a.dtype == np.float32
            or np.array_equal(a.astype(np.float32).astype(a.dtype), a, equal_nan=True)
            for a in arrays
        )
    return dtype if exact else np.dtype(np.float64)


# --------------------------------------------------------------------------- core


_NUMPY_TERMS: dict[str, Callable[..., np.ndarray]] = {
    "std": kernels.term_std,
    "var": kernels.term_var,
    "logvar": kernels.term_logvar,
    "std-normal": kernels.term_std_normal,
}


def _reduce(
    function: str,
    kernel: str,
    names: Sequence[str],
    values: Sequence[Any],
    *,
    param: str,
    axis: int | None,
    validate: bool,
) -> np.ndarray | np.floating:
    """Sum the per-coordinate KL over ``axis`` (None: elementwise) after broadcasting.

    Invalid input is reported at its index in the broadcast shape.
    """
    arrays = [_as_real(function, n, v) for n, v in zip(names, values, strict=True)]
    dtype = _result_dtype(arrays, values)
    shape = _broadcast(function, names, arrays)
    if axis is None:
        views = [np.broadcast_to(a, shape)[..., None] for a in arrays]
        axis_index = len(shape)
    else:
        if not shape:
            raise ValueError(f"{function}: axis={axis} needs at least 1-dimensional input")
        if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
            raise ValueError(f"{function}: axis must be an integer, got {axis!r}")
        if not -len(shape) <= axis < len(shape):
            raise ValueError(f"{function}: axis={axis} is out of range for broadcast shape {shape}")
        axis_index = int(axis) % len(shape)
        views = [np.moveaxis(np.broadcast_to(a, shape), axis_index, -1) for a in arrays]
    batch, k = views[0].shape[:-1], views[0].shape[-1]
    rows = int(np.prod(batch, dtype=np.int64))
    code = None
    if _LIBRARY is not None:
        code, result = _reduce_c(kernel, views, _kernel_dtype(dtype, arrays), rows, k, validate)
    else:
        if validate:
            # in the order the compiled kernels check: rows of the moved layout, then k
            found = _first_invalid(names, [v.reshape(rows, k) for v in views], param)
            if found is not None:
                code = (found[0], *divmod(found[1], k))
        if code is None:
            compute = [np.asarray(v, dtype=np.float64) for v in views]
            result = np.sum(_NUMPY_TERMS[kernel](*compute), axis=-1)
            if dtype == np.float64:
                result = _tiny_rows_rescaled(kernel, compute, result)
    if code is not None:
        position, row, column = code
        moved = (*np.unravel_index(row, batch), column) if batch else (column,)
        index = tuple(int(i) for i in moved)
        value = float(views[position][index])
        if axis is None:
            index = index[:-1]
        else:
            index = index[:axis_index] + index[-1:] + index[axis_index:-1]
        _raise_invalid(function, names[position], param, value, index)
    result = np.asarray(result, dtype=dtype).reshape(batch)
    return result[()] if result.ndim == 0 else result


def _tiny_rows_rescaled(kernel: str, compute: list[np.ndarray], totals: Any) -> np.ndarray:
    """Float64 row totals below ``TINY_TOTAL`` (not NaN) recomputed from the terms times
    ``2^(2S)`` (``tiny_term_*``, fact tiny-term-scaled): there each term may be below half
    the smallest subnormal and round to 0 alone; the scaled sum is rounded once."""
    totals = np.array(totals, dtype=np.float64)
    tiny = totals < kernels.TINY_TOTAL
    if tiny.any():
        rows = [np.broadcast_to(c, (*totals.shape, c.shape[-1]))[tiny] for c in compute]
        # looked up here: `symkl build` imports this module before it prints them
        scaled_terms = getattr(kernels, f"tiny_term_{kernel.replace('-', '_')}")
        scaled = np.sum(scaled_terms(*rows), axis=-1)
        totals[tiny] = scaled * kernels.TINY_BACK
    return totals


def _reduce_c(kernel, views, dtype, rows, k, validate):
    """Run the compiled kernel over row blocks (threads for large inputs).

    Returns ``(error, out)``; ``error`` is None or ``(argument, row, column)`` of the
    first invalid input.
    """
    library = _LIBRARY
    assert library is not None
    suffix = "f32" if dtype == np.float32 else "f64"
    entry = getattr(library, f"symkl_kl_{kernel.replace('-', '_')}_{suffix}")
    itemsize = dtype.itemsize
    matrices = []
    for view in views:
        matrix = view.astype(dtype, copy=False)
        try:
            matrix = matrix.reshape(rows, k)  # a view when the batch axes merge
        except ValueError:
            matrix = np.ascontiguousarray(matrix).reshape(rows, k)
        if any(stride % itemsize for stride in matrix.strides):
            matrix = np.ascontiguousarray(matrix)
        matrices.append(matrix)
    out = np.empty(rows, dtype=dtype)
    if rows == 0 or k == 0:
        out[...] = 0
        return None, out
    pointer_type = ctypes.POINTER(ctypes.c_float if suffix == "f32" else ctypes.c_double)

    def run(start: int, stop: int) -> tuple[int, int] | None:
        arguments: list[Any] = []
        for matrix in matrices:
            row, col = (stride // itemsize for stride in matrix.strides)
            arguments += [matrix.ctypes.data + start * matrix.strides[0], row, col]
        target = ctypes.cast(out.ctypes.data + start * itemsize, pointer_type)
        code = entry(*arguments, stop - start, k, target, int(bool(validate)))
        if code == 0:
            return None
        position, flat = divmod(-code - 1, 8)[::-1]
        return start * k + flat, position

    workers = max(1, min(os.cpu_count() or 1, 8))
    if rows * k < _PARALLEL_MIN or workers == 1 or rows < 2:
        failures = [run(0, rows)]
    else:
        bounds = np.linspace(0, rows, min(workers, rows) + 1).astype(int)
        futures = [_pool().submit(run, int(a), int(b)) for a, b in itertools.pairwise(bounds)]
        failures = [future.result() for future in futures]
    found = [f for f in failures if f is not None]
    if not found:
        return None, out
    flat, position = min(found)
    row, column = divmod(flat, k)
    return (position, row, column), out


# --------------------------------------------------------------------------- public API


@dispatched
def kl_normal(
    mu_p: Any, sigma_p: Any, mu_q: Any, sigma_q: Any, *, validate: bool = True
) -> np.ndarray | np.floating:
    """KL(N(mu_p, sigma_p^2) || N(mu_q, sigma_q^2)), elementwise with broadcasting.

    Parameters
    ----------
    mu_p, sigma_p, mu_q, sigma_q : array_like
        Means (finite) and standard deviations (finite, > 0).  Integers are
        promoted to float64; all-float32 input gives float32 output.
    validate : bool
        Check the inputs (inside the kernel, nearly free); ``False`` skips it.

    Returns
    -------
    numpy.ndarray or numpy scalar
        The divergence, >= 0, within a few ULP of the exact value.

    Raises
    ------
    ValueError
        Naming the argument, the bad value and its index: non-positive, NaN or
        infinite standard deviation, non-finite mean, shapes that do not
        broadcast, complex or non-numeric input.

    Examples
    --------
    >>> float(kl_normal(0.0, 1.0, 1.0, 2.0))
    0.4431471805599453
    >>> float(kl_normal(0.0, 1.0, 0.0, 1.0 + 1e-12))  # the textbook formula gives noise here
    1.0001778090663284e-24
    """
    return _reduce(
        "kl_normal",
        "std",
        ("mu_p", "sigma_p", "mu_q", "sigma_q"),
        (mu_p, sigma_p, mu_q, sigma_q),
        param="std",
        axis=None,
        validate=validate,
    )


@dispatched
def kl_diag(
    mu_p: Any,
    s_p: Any,
    mu_q: Any,
    s_q: Any,
    *,
    param: str = "var",
    axis: int = -1,
    validate: bool = True,
) -> np.ndarray | np.floating:
    """KL between diagonal Gaussians, summed over ``axis``; any batch shape broadcasts.

    Parameters
    ----------
    mu_p, mu_q : array_like
        Means.
    s_p, s_q : array_like
        Scales, as ``param`` says: ``"std"`` (standard deviations),
        ``"var"`` (variances) or ``"logvar"`` (log-variances).
    param : {"var", "std", "logvar"}
    axis : int
        The event axis summed over (after broadcasting).
    validate : bool
        Check the inputs (inside the kernel, nearly free); ``False`` skips it.

    Returns
    -------
    numpy.ndarray or numpy scalar
        Shape: the broadcast shape without ``axis``.  float32 for all-float32
        input (computed in float64, rounded once), else float64.

    Examples
    --------
    >>> import numpy as np
    >>> mu, var = np.zeros((2, 3)), np.ones((2, 3))
    >>> kl_diag(mu, var, mu + 1.0, 2.0 * var)
    array([1.03972077, 1.03972077])
    >>> float(kl_diag([0.0], [0.0], [0.0], [1e-14], param="logvar"))
    2.4999999999999915e-29

    Dask arrays stay lazy: the result is a Dask array computed block by block
    (the summed axis is rechunked into one chunk; bad input raises when the
    blocks are computed).
    """
    _check_param("kl_diag", param)
    if _is_dask(mu_p, s_p, mu_q, s_q):
        return _kl_diag_dask(mu_p, s_p, mu_q, s_q, param=param, axis=axis, validate=validate)
    return _reduce(
        "kl_diag",
        param,
        ("mu_p", "s_p", "mu_q", "s_q"),
        (mu_p, s_p, mu_q, s_q),
        param=param,
        axis=axis,
        validate=validate,
    )


def _is_dask(*values: Any) -> bool:
    return any(type(v).__module__.split(".")[0] == "dask" for v in values)


def _kl_diag_dask(mu_p, s_p, mu_q, s_q, *, param: str, axis: int, validate: bool):
    """kl_diag on Dask arrays, lazily: one block-wise call per block of rows."""
    import dask.array as da

    arrays = da.broadcast_arrays(*(da.asarray(v) for v in (mu_p, s_p, mu_q, s_q)))
    ndim = arrays[0].ndim
    if ndim == 0:
        raise ValueError("kl_diag: Dask inputs need at least one axis to sum over")
    if not -ndim <= axis < ndim:
        raise ValueError(f"kl_diag: axis {axis} is out of range for {ndim}-dimensional input")
    arrays = [da.moveaxis(a, axis, -1).rechunk({ndim - 1: -1}) for a in arrays]
    float32 = all(a.dtype == np.float32 for a in arrays)
    chunks = arrays[0].chunks
    arrays = [a.rechunk(chunks) for a in arrays]

    def block(*parts: np.ndarray) -> np.ndarray:
        return np.asarray(kl_diag(*parts, param=param, axis=-1, validate=validate))

    return da.map_blocks(
        block,
        *arrays,
        drop_axis=ndim - 1,
        dtype=np.float32 if float32 else np.float64,
    )


@dispatched
def kl_std_normal(
    mu: Any, logvar: Any, *, axis: int = -1, validate: bool = True
) -> np.ndarray | np.floating:
    """The VAE term KL(N(mu, diag(exp(logvar))) || N(0, I)), summed over ``axis``.

    ``1/2 sum (mu^2 + expm1(logvar) - logvar)``: no cancellation near
    ``logvar = 0``, finite for ``logvar`` up to about 710.4 (where ``exp``
    itself overflows, half of it is formed first); beyond that the true value
    exceeds the largest double and the result is ``inf``.

    Examples
    --------
    >>> float(kl_std_normal([0.5, 0.0], [0.0, 1e-9]))
    0.125
    """
    return _reduce(
        "kl_std_normal",
        "std-normal",
        ("mu", "logvar"),
        (mu, logvar),
        param="logvar",
        axis=axis,
        validate=validate,
    )


@dispatched
def kl_normal_reverse(mu_p: Any, sigma_p: Any, mu_q: Any, sigma_q: Any, **options: Any):
    """KL(q || p) for the univariate pair: :func:`kl_normal` with p and q exchanged."""
    return kl_normal(mu_q, sigma_q, mu_p, sigma_p, **options)


@dispatched
def kl_diag_reverse(mu_p: Any, s_p: Any, mu_q: Any, s_q: Any, **options: Any):
    """KL(q || p) for diagonal Gaussians: :func:`kl_diag` with p and q exchanged."""
    return kl_diag(mu_q, s_q, mu_p, s_p, **options)


@dispatched
def kl_normal_symmetric(
    mu_p: Any, sigma_p: Any, mu_q: Any, sigma_q: Any, *, validate: bool = True
) -> np.ndarray | np.floating:
    """Jeffreys divergence KL(p||q) + KL(q||p), elementwise; the log terms cancel exactly.

    Examples
    --------
    >>> float(kl_normal_symmetric(0.0, 1.0, 0.0, 2.0))
    1.125
    """
    names = ("mu_p", "sigma_p", "mu_q", "sigma_q")
    dtype, compute = _prepare(
        "kl_normal_symmetric", names, (mu_p, sigma_p, mu_q, sigma_q), "std", validate
    )
    result = np.asarray(kernels.jeffreys_std(*_canonical_order(compute)), dtype=dtype)
    return result[()] if result.ndim == 0 else result


@dispatched
def kl_diag_symmetric(
    mu_p: Any,
    s_p: Any,
    mu_q: Any,
    s_q: Any,
    *,
    param: str = "var",
    axis: int = -1,
    validate: bool = True,
) -> np.ndarray | np.floating:
    """Jeffreys divergence of diagonal Gaussians, summed over ``axis``.

    ``1/2 (x^2 + a (1 + r)) / r`` per coordinate with ``r = v_p/v_q``: no log,
    no cancellation (derivation ``stable``, facts ``jeffreys-*``).
    """
    _check_param("kl_diag_symmetric", param)
    names = ("mu_p", "s_p", "mu_q", "s_q")
    dtype, compute = _prepare("kl_diag_symmetric", names, (mu_p, s_p, mu_q, s_q), param, validate)
    terms = getattr(kernels, f"jeffreys_{param}")(*_canonical_order(compute))
    result = np.asarray(np.sum(terms, axis=axis), dtype=dtype)
    return result[()] if result.ndim == 0 else result


def _canonical_order(compute):
    """Swap p and q elementwise into one order, so the Jeffreys divergence is exactly symmetric."""
    mu_p, s_p, mu_q, s_q = np.broadcast_arrays(*compute)
    swap = (s_p < s_q) | ((s_p == s_q) & (mu_p < mu_q))
    return (
        np.where(swap, mu_q, mu_p),
        np.where(swap, s_q, s_p),
        np.where(swap, mu_p, mu_q),
        np.where(swap, s_p, s_q),
    )


def _prepare(function: str, names, values, param: str, validate: bool):
    """Real arrays, result dtype, broadcast check and validation for the NumPy-only paths.

    Returns ``(dtype, arrays)`` with the arrays broadcast to one shape in float64.
    """
    arrays = [_as_real(function, n, v) for n, v in zip(names, values, strict=True)]
    dtype = _result_dtype(arrays, values)
    shape = _broadcast(function, names, arrays)
    if validate:
        _validate_numpy(function, names, arrays, param)
    return dtype, [np.broadcast_to(a.astype(np.float64), shape) for a in arrays]


def _gradient(function: str, kernel: str, names, values, param: str, validate: bool):
    dtype, compute = _prepare(function, names, values, param, validate)
    parts = getattr(kernels, f"gradient_{kernel.replace('-', '_')}")(*compute)
    shape = compute[0].shape
    # + 0.0 turns -0.0 into 0.0
    return tuple(np.broadcast_to(np.asarray(p, dtype=dtype) + 0.0, shape).copy() for p in parts)


@dispatched
def grad_kl_normal(mu_p: Any, sigma_p: Any, mu_q: Any, sigma_q: Any, *, validate: bool = True):
    """Gradient of :func:`kl_normal` with respect to ``(mu_p, sigma_p, mu_q, sigma_q)``.

    From the derivation ``stable`` (facts ``gradient-std-*``):
    ``((mu_p - mu_q)/sigma_q^2, x/sigma_p, -(mu_p - mu_q)/sigma_q^2, -(a + x)/sigma_q)``
    with ``x = (sigma_p^2 - sigma_q^2)/sigma_q^2``, ``a = ((mu_p - mu_q)/sigma_q)^2``.

    Examples
    --------
    >>> [float(g) for g in grad_kl_normal(0.0, 1.0, 1.0, 2.0)]
    [-0.25, -0.75, 0.25, 0.25]
    """
    names = ("mu_p", "sigma_p", "mu_q", "sigma_q")
    return _gradient(
        "grad_kl_normal", "std", names, (mu_p, sigma_p, mu_q, sigma_q), "std", validate
    )


@dispatched
def grad_kl_diag(
    mu_p: Any, s_p: Any, mu_q: Any, s_q: Any, *, param: str = "var", validate: bool = True
):
    """Gradient of :func:`kl_diag` with respect to ``(mu_p, s_p, mu_q, s_q)``, elementwise.

    The sum over the event axis does not mix coordinates, so each returned
    array has the broadcast input shape.

    Examples
    --------
    >>> [round(float(g), 6) for g in grad_kl_diag(0.0, 1.0, 0.5, 0.0, param="logvar")]
    [-0.5, 0.859141, 0.5, -0.984141]
    """
    _check_param("grad_kl_diag", param)
    names = ("mu_p", "s_p", "mu_q", "s_q")
    return _gradient("grad_kl_diag", param, names, (mu_p, s_p, mu_q, s_q), param, validate)


@dispatched
def grad_kl_std_normal(mu: Any, logvar: Any, *, validate: bool = True):
    """Gradient of :func:`kl_std_normal`: ``(mu, expm1(logvar) / 2)``, elementwise.

    Examples
    --------
    >>> [float(g) for g in grad_kl_std_normal(0.5, 0.0)]
    [0.5, 0.0]
    """
    return _gradient(
        "grad_kl_std_normal", "std-normal", ("mu", "logvar"), (mu, logvar), "logvar", validate
    )


# --------------------------------------------------------------------------- full covariance


def _solve_lower(lower: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Batched forward substitution ``lower @ X = rhs`` (backward stable; exact for X = I)."""
    k = lower.shape[-1]
    solution = np.empty(np.broadcast_shapes(lower.shape[:-2], rhs.shape[:-2]) + rhs.shape[-2:])
    for i in range(k):
        partial = rhs[..., i, :]
        if i:
            partial = partial - np.einsum(
                "...j,...jm->...m", lower[..., i, :i], solution[..., :i, :]
            )
        solution[..., i, :] = partial / lower[..., i, i][..., None]
    return solution


def _covariance(function: str, name: str, value: Any, k: int | None) -> np.ndarray:
    array = _as_real(function, name, value).astype(np.float64)
    if array.ndim < 2 or array.shape[-1] != array.shape[-2]:
        raise CovarianceError(
            f"{function}: argument {name!r} must be a square matrix (..., k, k); got shape "
            f"{array.shape}"
        )
    if k is not None and array.shape[-1] != k:
        raise CovarianceError(
            f"{function}: argument {name!r} is {array.shape[-1]}x{array.shape[-1]} but the "
            f"means have dimension {k}"
        )
    if not np.all(np.isfinite(array)):
        raise CovarianceError(f"{function}: argument {name!r} contains NaN or inf")
    asymmetry = np.abs(array - np.swapaxes(array, -1, -2))
    scale = np.max(np.abs(array), axis=(-1, -2), keepdims=True)
    if np.any(asymmetry > 1e-10 * scale):
        worst = np.unravel_index(int(np.argmax(asymmetry / np.maximum(scale, 1e-300))), array.shape)
        raise CovarianceError(
            f"{function}: argument {name!r} is not symmetric: entry {tuple(int(i) for i in worst)} "
            f"differs from its transpose by {float(asymmetry[worst]):.3g}"
        )
    return array


def _cholesky(function: str, name: str, covariance: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.cholesky(covariance)
    except np.linalg.LinAlgError:
        pass
    batch = covariance.shape[:-2]
    for index in np.ndindex(*batch):  # name the first failing matrix
        try:
            np.linalg.cholesky(covariance[index])
        except np.linalg.LinAlgError:
            eigenvalue = float(np.linalg.eigvalsh(covariance[index])[0])
            where = f" at batch index {index}" if batch else ""
            raise CovarianceError(
                f"{function}: argument {name!r} is not positive definite{where} "
                f"(smallest eigenvalue {eigenvalue:.3g})"
            ) from None
    raise CovarianceError(f"{function}: argument {name!r} is not positive definite")


def _mvn_inputs(function, mu_p, cov_p, mu_q, cov_q):
    means = [_as_real(function, n, v) for n, v in (("mu_p", mu_p), ("mu_q", mu_q))]
    for name, mean in zip(("mu_p", "mu_q"), means, strict=True):
        if mean.ndim < 1:
            raise ValueError(f"{function}: argument {name!r} must be a vector (..., k)")
        if not np.all(np.isfinite(mean)):
            raise ValueError(f"{function}: argument {name!r} must be finite (no NaN or inf)")
    if means[0].shape[-1] != means[1].shape[-1]:
        raise ValueError(
            f"{function}: mu_p has dimension {means[0].shape[-1]} but mu_q has {means[1].shape[-1]}"
        )
    k = means[0].shape[-1]
    covariances = [
        _covariance(function, "cov_p", cov_p, k),
        _covariance(function, "cov_q", cov_q, k),
    ]
    dtype = _result_dtype([*means, *covariances], (mu_p, mu_q, cov_p, cov_q))
    try:
        np.broadcast_shapes(
            means[0].shape[:-1],
            means[1].shape[:-1],
            covariances[0].shape[:-2],
            covariances[1].shape[:-2],
        )
    except ValueError:
        raise ValueError(
            f"{function}: batch shapes do not broadcast: mu_p {means[0].shape}, cov_p "
            f"{covariances[0].shape}, mu_q {means[1].shape}, cov_q {covariances[1].shape}"
        ) from None
    return [m.astype(np.float64) for m in means], covariances, dtype


@dispatched
def kl_mvn(mu_p: Any, cov_p: Any, mu_q: Any, cov_q: Any) -> np.ndarray | np.floating:
    """KL(N(mu_p, cov_p) || N(mu_q, cov_q)) with full covariances, batched.

    Uses the Cholesky form proved in derivation ``full``: with
    ``M = L_q^-1 L_p`` and ``w = L_q^-1 (mu_q - mu_p)``,
    ``1/2 [sum_i (M_ii^2 - 1 - 2 log M_ii) + sum_{i>j} M_ij^2 + |w|^2]``; every
    term is non-negative and the diagonal terms use the same stable kernel
    as :func:`kl_normal`.  Exactly 0 when p == q.  Where the two covariances
    are close (every eigenvalue of ``B = L_q^-1 (cov_p - cov_q) L_q^-T`` within
    0.25 of 0), the covariance terms are ``sum_i (l_i - log1p(l_i))`` over the
    eigenvalues ``l_i`` of ``B`` instead (``tr B - log det(I + B)``, fact
    ``near-equal`` of derivation ``full``), because there the rounding of the
    two Cholesky factors would dominate ``M - I``.

    Parameters
    ----------
    mu_p, mu_q : array_like, shape (..., k)
    cov_p, cov_q : array_like, shape (..., k, k)
        Symmetric positive definite (symmetry checked to 1e-10 relative).

    Raises
    ------
    CovarianceError
        (a ``numpy.linalg.LinAlgError``, hence ``ValueError``) for a matrix
        that is not square, not symmetric, not positive definite, or whose
        size does not match the means.
    ValueError
        For non-finite means or shapes that do not broadcast.

    Examples
    --------
    >>> import numpy as np
    >>> float(kl_mvn([0.0, 0.0], np.eye(2), [0.0, 0.0], np.eye(2)))
    0.0
    >>> round(float(kl_mvn([0, 0], [[2.0, 0.5], [0.5, 1.0]], [1, 0], np.eye(2))), 12)
    0.720192106032
    """
    (mean_p, mean_q), (covariance_p, covariance_q), dtype = _mvn_inputs(
        "kl_mvn", mu_p, cov_p, mu_q, cov_q
    )
    lower_p = _cholesky("kl_mvn", "cov_p", covariance_p)
    lower_q = _cholesky("kl_mvn", "cov_q", covariance_q)
    m = _solve_lower(lower_q, lower_p)
    w = _solve_lower(lower_q, (mean_q - mean_p)[..., None])[..., 0]
    diagonal = np.diagonal(m, axis1=-2, axis2=-1)
    k = m.shape[-1]
    below = np.tril(np.ones((k, k), dtype=bool), -1)
    # sum_i (M_ii^2 - 1 - 2 log M_ii) = 2 sum_i term_std(0, M_ii, 0, 1)
    zeros = np.zeros_like(diagonal)
    diagonal_part = 2.0 * np.sum(kernels.term_std(zeros, diagonal, zeros, zeros + 1.0), axis=-1)
    lower_part = np.sum(np.where(below, m * m, 0.0), axis=(-1, -2))
    mean_part = np.sum(w * w, axis=-1)
    # p == q gives L_p == L_q, so forward substitution yields M = I and w = 0 exactly,
    # and every term is exactly 0: no special case is needed
    covariance_part = diagonal_part + lower_part
    # Near p == q the Cholesky factors' own rounding (eps cond(L)) is large next to
    # M - I: there use the eigenvalues of B = L_q^-1 (cov_p - cov_q) L_q^-T, computed
    # from the exact-ish difference, and tr B - log det(I + B) = sum(l - log1p(l)).
    difference = _solve_lower(lower_q, covariance_p - covariance_q)
    b = _solve_lower(lower_q, np.swapaxes(difference, -1, -2))
    eigenvalues = np.linalg.eigvalsh((b + np.swapaxes(b, -1, -2)) / 2)
    near = np.max(np.abs(eigenvalues), axis=-1) <= 0.25
    if np.any(near):
        close = np.where(near[..., None], eigenvalues, 0.0)
        series = kernels.excess_series(close)
        covariance_part = np.where(near, np.sum(np.maximum(series, 0.0), axis=-1), covariance_part)
    result = np.maximum(0.5 * (covariance_part + mean_part), 0.0).astype(dtype)
    return result[()] if result.ndim == 0 else result


@dispatched
def grad_kl_mvn(mu_p: Any, cov_p: Any, mu_q: Any, cov_q: Any):
    """Gradient of :func:`kl_mvn` with respect to ``(mu_p, cov_p, mu_q, cov_q)``.

    ``(S d, (S - P)/2, -S d, (S - S (cov_p + d d^T) S)/2)`` with
    ``S = cov_q^-1``, ``P = cov_p^-1``, ``d = mu_p - mu_q`` (derivation ``full``,
    fact ``gradients``; symmetric matrices, derivative taken with respect to
    each entry treated as independent).
    """
    (mean_p, mean_q), (covariance_p, covariance_q), dtype = _mvn_inputs(
        "grad_kl_mvn", mu_p, cov_p, mu_q, cov_q
    )
    lower_p = _cholesky("grad_kl_mvn", "cov_p", covariance_p)
    lower_q = _cholesky("grad_kl_mvn", "cov_q", covariance_q)
    k = lower_p.shape[-1]
    identity = np.broadcast_to(np.eye(k), lower_q.shape)
    inverse_lq = _solve_lower(lower_q, identity)
    inverse_lp = _solve_lower(lower_p, np.broadcast_to(np.eye(k), lower_p.shape))
    precision_q = np.swapaxes(inverse_lq, -1, -2) @ inverse_lq
    precision_p = np.swapaxes(inverse_lp, -1, -2) @ inverse_lp
    d = mean_p - mean_q
    s_d = np.einsum("...ij,...j->...i", precision_q, d)
    outer = covariance_p + d[..., :, None] * d[..., None, :]
    grads = (
        s_d,
        0.5 * (precision_q - precision_p),
        -s_d,
        0.5 * (precision_q - precision_q @ outer @ precision_q),
    )
    return tuple(np.asarray(g, dtype=dtype) for g in grads)
