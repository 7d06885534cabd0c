"""Pytest-friendly accuracy assertions for *your* KL, against symkl's certified reference.

Every VAE code base carries a hand-written KL.  :func:`assert_kl_accurate`
measures it on the same seeded grid and certified 50-digit reference (the
derived closed form in ball arithmetic) that ``symkl check`` uses (scale
ratios 1e-6..1e6, relative scale differences down to 1e-15, mean offsets up
to 1e6 scales, KL down to 1e-30) and fails with a readable report of the
worst cases.  Importing this module does not import
SymPy.

Examples
--------
>>> import numpy as np
>>> import symkl
>>> def my_kl(mu_p, logvar_p, mu_q, logvar_q):
...     return symkl.kl_diag(mu_p, logvar_p, mu_q, logvar_q, param="logvar")
>>> result = assert_kl_accurate(my_kl, family="diag", param="logvar", ulps=8, cases=50)
>>> result.worst <= 8
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from symkl.accuracy.runner import CheckResult, run_check
from symkl.accuracy.user import user_check

__all__ = ["KLAccuracyError", "assert_kl_accurate"]

#: the dtypes a user's KL is measured in
_DTYPES = ("float64", "float32")


class KLAccuracyError(AssertionError):
    """The checked KL exceeded its ULP bound; ``results`` holds the measurements."""

    def __init__(self, message: str, results: list[CheckResult]) -> None:
        super().__init__(message)
        self.results = results


def _report(result: CheckResult, worst: int) -> str:
    lines = [result.message()]
    if result.errors:
        order = np.argsort(result.errors)[::-1][:worst]
        over = sum(1 for e in result.errors if e > result.bound)
        lines.append(f"  {over} of {result.cases} cases exceed {result.bound:g} ULP; worst:")
        for rank, index in enumerate(order, 1):
            lines.append(f"  {rank}. case {int(index)}: {result.errors[int(index)]:.3g} ULP")
    return "\n".join(lines)


def assert_kl_accurate(
    function: Callable[..., Any],
    *,
    family: str,
    param: str,
    ulps: float = 4.0,
    dtypes: Sequence[str] = ("float64",),
    cases: int = 500,
    seed: int = 0,
    k: int = 8,
    convert: Callable[[np.ndarray], Any] | None = None,
    framework: str | None = None,
    show: int = 5,
) -> CheckResult:
    """Assert that ``function`` computes the Gaussian KL to within ``ulps`` ULPs.

    Parameters
    ----------
    function : callable
        ``f(mu_p, s_p, mu_q, s_q)`` for ``family="normal"`` (elementwise on
        1-D arrays) and ``"diag"`` (``(cases, k)`` arrays, summed over the
        last axis); ``f(mu, logvar)`` for ``"std-normal"`` (the VAE prior
        term, summed over the last axis).
    family : {"normal", "diag", "std-normal"}
    param : {"std", "var", "logvar"}
        What ``s_p`` and ``s_q`` hold (``"logvar"`` for ``std-normal``).
    ulps : float
        Allowed error in units in the last place of the result's dtype.
    dtypes : sequence of {"float64", "float32"}
        Input dtypes to try; the error is measured in ULPs of each.
    cases, seed, k : int
        Grid size, seed and dimension (``k`` for the summed families).
    convert : callable, optional
        Turns each NumPy input into your framework's array, for example
        ``torch.from_numpy``; results are read back with ``numpy.asarray``.
    framework : {"numpy", "torch", "jax"}, optional
        Instead of ``convert``: feed ``function`` tensors (``"torch"``) or JAX
        arrays (``"jax"``) of the dtype under test, as your training code
        would; tensor results are read back (detached) as NumPy.  JAX float64
        needs ``jax.config.update("jax_enable_x64", True)`` first.
    show : int
        How many of the worst cases the failure report lists.

    Returns
    -------
    CheckResult
        The last dtype's measurement (worst ULP, its inputs), when it passes.

    Raises
    ------
    KLAccuracyError
        (an ``AssertionError``) listing the worst cases when a bound is exceeded
        or the function raised.
    ValueError
        For an unknown family, param, dtype or framework, a non-positive or
        infinite ``ulps``, ``k < 1``, ``cases < 4``, or JAX float64 without
        ``jax_enable_x64``.
    """
    check = user_check(function, family, param, ulps, k=k, convert=convert, framework=framework)
    if isinstance(dtypes, str) or not dtypes or any(d not in _DTYPES for d in dtypes):
        raise ValueError(f"dtypes must be a non-empty sequence of {_DTYPES}, got {dtypes!r}")
    if isinstance(cases, bool) or not isinstance(cases, int) or cases < 4:
        raise ValueError(f"cases must be an integer >= 4, got {cases!r}")
    results = [run_check(check, dtype, cases=cases, seed=seed) for dtype in dtypes]
    failed = [result for result in results if not result.passed]
    if failed:
        report = "\n".join(_report(result, show) for result in failed)
        raise KLAccuracyError(f"{check.name} is not accurate to {ulps:g} ULP:\n{report}", results)
    return results[-1]
