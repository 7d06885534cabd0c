"""A user's own KL on symkl's grid: import it by name, feed it NumPy, torch or JAX arrays.

Examples
--------
>>> import symkl
>>> from symkl.accuracy.runner import run_check
>>> spec = user_check(symkl.kl_std_normal, "std-normal", "logvar", ulps=8, k=8)
>>> run_check(spec, "float64", cases=40).passed
True
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from symkl.accuracy.cases import FAMILIES
from symkl.accuracy.references import PARAMS
from symkl.accuracy.registry import PAIR, Arrays, Check, kl_truth, prior_truth

__all__ = ["FRAMEWORKS", "array_converter", "user_check"]

#: what a user's function may be fed
FRAMEWORKS = ("numpy", "torch", "jax")


def array_converter(framework: str, *, enable_x64: bool = False) -> Callable[[np.ndarray], Any]:
    """The function that turns a NumPy input into ``framework``'s array of the same dtype.

    ``"torch"`` gives CPU tensors (``torch.from_numpy``), ``"jax"`` JAX arrays
    (``jax.numpy.asarray``).  JAX keeps float64 only when ``jax_enable_x64`` is
    on: with ``enable_x64=True`` it is switched on, otherwise a float64 input
    with it off raises ``ValueError`` (JAX would silently compute in float32).

    Raises
    ------
    ValueError
        For an unknown framework, or one that is not installed.
    """
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {', '.join(FRAMEWORKS)}, got {framework!r}")
    if framework == "numpy":
        return lambda array: array
    try:
        module = importlib.import_module(framework)
    except ImportError as error:
        raise ValueError(f"framework {framework!r} is not installed: {error}") from error
    if framework == "torch":
        return lambda array: module.from_numpy(np.ascontiguousarray(array))
    import jax.numpy as jnp

    if enable_x64:
        module.config.update("jax_enable_x64", True)

    def to_jax(array: np.ndarray) -> Any:
        if array.dtype == np.float64 and not module.config.jax_enable_x64:
            raise ValueError(
                "float64 inputs need jax.config.update('jax_enable_x64', True); without it "
                "JAX computes in float32"
            )
        return jnp.asarray(array)

    return to_jax


def _to_numpy(result: Any, name: str) -> np.ndarray:
    detach = getattr(result, "detach", None)
    if detach is not None:  # a torch tensor
        result = detach().cpu()
        if str(result.dtype) == "torch.bfloat16":
            result = result.float()
        result = result.numpy()
    array = np.asarray(result)
    if np.iscomplexobj(array):  # np.asarray(..., float) would drop the imaginary part
        raise ValueError(f"{name} returned complex values ({array.dtype}); a KL is real")
    return np.asarray(array, dtype=float)


def user_check(
    function: Callable[..., Any],
    family: str,
    param: str,
    ulps: float,
    *,
    k: int = 1,
    convert: Callable[[np.ndarray], Any] | None = None,
    framework: str | None = None,
) -> Check:
    """A :class:`~symkl.accuracy.registry.Check` of a user's KL on symkl's grid and reference.

    ``function`` is called positionally: ``f(mu_p, s_p, mu_q, s_q)`` for the
    ``normal`` family (elementwise, 1-D arrays), the same with ``(cases, k)``
    arrays summed over the last axis for ``diag``, and ``f(mu, logvar)`` with
    ``(cases, k)`` arrays for ``std-normal``.  ``param`` says what ``s_p``,
    ``s_q`` hold.  The inputs are arrays of the dtype under test, converted
    by ``convert`` or for ``framework`` (``"torch"``: tensors, ``"jax"``: JAX
    arrays, as the user's own code would receive them); results (tensors
    included) are read back as NumPy.
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
    if family == "std-normal":
        if param != "logvar":
            raise ValueError(f"the std-normal family takes param='logvar', got {param!r}")
    elif param not in PARAMS:
        raise ValueError(f"param must be one of {', '.join(PARAMS)}, got {param!r}")
    if isinstance(ulps, bool) or not (
        isinstance(ulps, int | float) and 0 < ulps < float("inf")
    ):  # ulps=inf would make a check that cannot fail
        raise ValueError(f"ulps must be a positive finite number, got {ulps!r}")
    if family != "normal" and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        # k = 0: no coordinates, a KL of exactly 0 that any function "computes"
        raise ValueError(f"k must be a positive integer (coordinates per case), got {k!r}")
    if convert is not None and framework not in (None, "numpy"):
        raise ValueError("give convert or framework, not both")
    if convert is None:
        convert = array_converter(framework or "numpy")
    name = getattr(function, "__qualname__", getattr(function, "__name__", repr(function)))

    def call(arrays: Arrays, param: str) -> np.ndarray:
        names = ("mu", "logvar") if family == "std-normal" else PAIR
        try:
            returned = function(*(convert(arrays[n]) for n in names))
        except SystemExit as error:  # would end `symkl check` with its code (0: "passed")
            raise RuntimeError(f"{name} raised SystemExit({error.code!r})") from error
        result = _to_numpy(returned, name)
        rows = len(arrays[names[0]])
        if result.shape != (rows,):
            raise ValueError(
                f"{name} returned shape {result.shape}; expected ({rows},), one KL per case"
                + (" (sum over the last axis)" if family != "normal" else "")
            )
        return result

    return Check(
        name=name,
        family=family,
        param=param,
        metric="ulp",
        bound=float(ulps),
        call=call,
        truth=prior_truth if family == "std-normal" else kl_truth,
        reference="derived closed form in ball arithmetic (50 digits)",
        k=k if family != "normal" else 1,
        float32_bound=None,
    )
