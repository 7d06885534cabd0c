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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from symkl.frameworks import preludes

__all__ = [
    "KL_SPECS",
    "NATIVE_GRADIENTS",
    "KLSpec",
    "array_kernels",
    "gradient_terms",
    "round_half_numpy",
    "round_to_odd_float32",
]


@dataclass(frozen=True)
class KLSpec:
    """What the PyTorch and JAX backends need to know about one public KL function.

    ``kernel`` is the printed kernel's name (``"std"``, ``"var"``, ``"logvar"``,
    ``"std-normal"``), None where the ``param`` argument chooses it; ``summed``:
    the function sums over an ``axis`` argument (else elementwise);
    ``symmetric``: the Jeffreys form KL(p||q) + KL(q||p).

    Examples
    --------
    >>> KL_SPECS["kl_std_normal"].kernel_for(None), KL_SPECS["kl_std_normal"].param_for(None)
    ('std-normal', 'logvar')
    >>> KL_SPECS["kl_diag"].kernel_for("var")
    'var'
    """

    function: str
    names: tuple[str, ...]
    kernel: str | None
    summed: bool
    symmetric: bool

    def kernel_for(self, param: str | None) -> str:
        """The kernel a call with ``param`` runs."""
        return self.kernel if self.kernel is not None else str(param)

    def param_for(self, param: str | None) -> str:
        """What the scale arguments hold, as the NumPy path's messages name it."""
        if self.kernel is None:
            return str(param)
        return "logvar" if self.kernel == "std-normal" else self.kernel


_NORMAL = ("mu_p", "sigma_p", "mu_q", "sigma_q")
_DIAG = ("mu_p", "s_p", "mu_q", "s_q")

#: the kernel-based public functions (and their gradients), one entry each
KL_SPECS: dict[str, KLSpec] = {
    spec.function: spec
    for spec in (
        KLSpec("kl_normal", _NORMAL, "std", summed=False, symmetric=False),
        KLSpec("kl_normal_symmetric", _NORMAL, "std", summed=False, symmetric=True),
        KLSpec("kl_diag", _DIAG, None, summed=True, symmetric=False),
        KLSpec("kl_diag_symmetric", _DIAG, None, summed=True, symmetric=True),
        KLSpec("kl_std_normal", ("mu", "logvar"), "std-normal", summed=True, symmetric=False),
        KLSpec("grad_kl_normal", _NORMAL, "std", summed=False, symmetric=False),
        KLSpec("grad_kl_diag", _DIAG, None, summed=False, symmetric=False),
        KLSpec("grad_kl_std_normal", ("mu", "logvar"), "std-normal", summed=False, symmetric=False),
    )
}


#: kernels whose printed gradient has no compensated arithmetic (the VAE prior's is
#: ``(mu, expm1(logvar)/2)``): autograd computes them in the inputs' float dtype; every
#: other gradient is computed in float64 and rounded once (Dekker's split and the exact
#: sums hold in binary64 only)
NATIVE_GRADIENTS = ("std-normal",)


def gradient_terms(framework: str, kernel: str, symmetric: bool, values: Sequence[Any]):
    """The printed elementwise gradient of ``kernel`` on ``values`` (``framework``'s arrays).

    For the Jeffreys form, J(p, q) = KL(p||q) + KL(q||p): the printed
    ``gradient_jeffreys_*`` (the two gradients added, and the exact sums of facts
    ``jeffreys-gradient-exact-*`` where the scale derivatives cancel).

    Examples
    --------
    >>> [float(g) for g in gradient_terms("numpy", "std-normal", False, (0.5, 0.0))]
    [0.5, 0.0]
    """
    kernels = array_kernels(framework)
    if symmetric:
        # the two KLs' gradients added, exactly where their scale derivatives cancel
        return getattr(kernels, f"gradient_jeffreys_{kernel.replace('-', '_')}")(*values)
    return getattr(kernels, f"gradient_{kernel.replace('-', '_')}")(*values)


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
        names = ("TABLE", "EXP_TABLE")  # the printed tables (rows read by xp.table_rows)
        tables = {name: np.asarray(namespace[name]).tolist() for name in names}
        exec(compile("\n".join(preludes.ARRAY_PRELUDES[framework]), "<prelude>", "exec"), namespace)
        for name, table in tables.items():
            if framework == "torch" and name == "EXP_TABLE":
                # read in the gradients, which torch.compile traces (a tensor made of
                # the rows there is a constant of the graph; a captured one is refused)
                namespace[name] = table
            elif framework == "torch":
                namespace[name] = namespace["xp"].asarray(table)
            else:
                # jax: kept as NumPy (converted per call), so building it needs no x64
                namespace[name] = np.asarray(table)
    return SimpleNamespace(**{k: v for k, v in namespace.items() if not k.startswith("__")})


def round_to_odd_float32(value: np.ndarray) -> np.ndarray:
    """float64 ``value`` rounded to float32 *to odd*: truncated, the last bit set if inexact.

    Rounding that once more to a half-precision type (float16, bfloat16) gives
    the correctly rounded half value: 29 extra bits and the sticky last bit
    keep a second rounding from rounding twice.

    Examples
    --------
    >>> float(round_to_odd_float32(np.array([1.0 + 2.0**-40]))[0]) == 1.0 + 2.0**-23
    True
    """
    value = np.asarray(value, dtype=np.float64)
    # overflow to inf is the correct rounding of a KL beyond the type's range: no warning
    with np.errstate(over="ignore", invalid="ignore"):
        nearest = value.astype(np.float32)
        inexact = nearest.astype(np.float64) != value
        away = inexact & (np.abs(nearest.astype(np.float64)) > np.abs(value))
        truncated = np.where(away, np.nextafter(nearest, np.float32(0)), nearest)
        bits = truncated.view(np.uint32) | inexact.astype(np.uint32)
        return bits.view(np.float32)


def round_half_numpy(value: np.ndarray, dtype) -> np.ndarray:
    """Round a float64 array once to a half-precision ``dtype`` (float16, bfloat16).

    Rounding to float32 first and then to the half type could round twice;
    rounding to float32 *to odd* (:func:`round_to_odd_float32`) keeps enough
    bits that the second rounding is the correct one.

    Examples
    --------
    >>> round_half_numpy(np.array([1.0 + 2.0**-11]), np.float16)  # a tie: to even
    array([1.], dtype=float16)
    >>> round_half_numpy(np.array([1.0 + 2.0**-11 + 2.0**-40]), np.float16)
    array([1.001], dtype=float16)
    """
    with np.errstate(over="ignore", invalid="ignore"):  # to inf: the correct rounding
        return round_to_odd_float32(value).astype(dtype)
