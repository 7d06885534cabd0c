"""PyTorch and JAX backends of the public numeric functions.

:func:`symkl.kl_diag` and the other public functions send PyTorch tensors to
:mod:`symkl.frameworks.torch_backend` and JAX arrays to
:mod:`symkl.frameworks.jax_backend` (see :mod:`symkl._dispatch`).  Both run
the same printed kernel text as symkl's NumPy fallback (``_kernels_numpy.py``,
printed by SymPy from the proved derivation ``stable``) against their own
array namespace, given by the preludes in :mod:`symkl.frameworks.preludes`
(which ``symkl export`` writes into its standalone modules too).

Examples
--------
>>> kernels = array_kernels("numpy")
>>> float(kernels.term_std(0.0, 1.0, 0.0, 1.0))
0.0
"""

from __future__ import annotations

import functools
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from symkl.frameworks import preludes

__all__ = ["array_kernels", "round_half_numpy"]


@functools.cache
def array_kernels(framework: str) -> SimpleNamespace:
    """The printed kernels (terms, gradients, Jeffreys) bound to ``framework``'s array operations.

    ``framework`` is ``"numpy"``, ``"torch"`` or ``"jax"``.  The kernel text of
    ``symkl/_kernels_numpy.py`` is executed once more with the framework's
    prelude bound over its NumPy names (``xp``, ``exp``, ``expm1``, ``log``,
    ``log1p``), so every framework runs the one printed, proved body.
    """
    from symkl import _kernels_numpy

    path = Path(_kernels_numpy.__file__)
    namespace: dict = {"__name__": f"symkl.frameworks._kernels_{framework}"}
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)
    if framework != "numpy":
        table = np.asarray(namespace["TABLE"]).tolist()
        exec(compile("\n".join(preludes.ARRAY_PRELUDES[framework]), "<prelude>", "exec"), namespace)
        if framework == "torch":
            namespace["TABLE"] = namespace["xp"].asarray(table)
        else:
            # jax: kept as NumPy (converted per call), so building it needs no jax_enable_x64
            namespace["TABLE"] = np.asarray(table)
    return SimpleNamespace(**{k: v for k, v in namespace.items() if not k.startswith("__")})


def round_half_numpy(value: np.ndarray, dtype) -> np.ndarray:
    """Round a float64 array once to a half-precision ``dtype`` (float16, bfloat16).

    Rounding to float32 first and then to the half type could round twice;
    rounding to float32 *to odd* (truncate, then set the last bit if inexact)
    keeps enough bits that the second rounding is the correct one.

    Examples
    --------
    >>> round_half_numpy(np.array([1.0 + 2.0**-11]), np.float16)  # a tie: to even
    array([1.], dtype=float16)
    >>> round_half_numpy(np.array([1.0 + 2.0**-11 + 2.0**-40]), np.float16)
    array([1.001], dtype=float16)
    """
    value = np.asarray(value, dtype=np.float64)
    # overflow to inf is the correct rounding of a KL beyond the type's range: no warning
    with np.errstate(over="ignore", invalid="ignore"):
        nearest = value.astype(np.float32)
        inexact = nearest.astype(np.float64) != value
        away = inexact & (np.abs(nearest.astype(np.float64)) > np.abs(value))
        truncated = np.where(away, np.nextafter(nearest, np.float32(0)), nearest)
        bits = truncated.view(np.uint32) | inexact.astype(np.uint32)
        return bits.view(np.float32).astype(dtype)
