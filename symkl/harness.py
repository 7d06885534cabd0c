"""The ULP harness, kept importable here: cases, certified truths, errors in ULPs.

In the spirit of SciPy's mpmath test harness: argument generators spread over
orders of magnitude (:func:`symkl.accuracy.cases.generate_cases`), a
reference from the *derived* closed form evaluated in ball arithmetic
(:func:`symkl.accuracy.references.kl_term`, 50 certified digits), and one
call per function that reports the worst case.

Importing this module does not import SymPy.

Examples
--------
>>> import symkl
>>> result = run_harness(symkl.kl_normal, "normal", "std", "float64", cases=50, seed=1)
>>> result.worst_ulp <= 4
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mpmath
import numpy as np

from symkl.accuracy.cases import FAMILIES, generate_cases
from symkl.accuracy.references import kl_term
from symkl.accuracy.registry import DPS
from symkl.accuracy.runner import ulp_distance

__all__ = [
    "DPS",
    "FAMILIES",
    "HarnessResult",
    "generate_cases",
    "reference",
    "reference_term",
    "reference_term_mp",
    "run_harness",
    "ulp_distance",
]


def reference_term_mp(mu_p: Any, s_p: Any, mu_q: Any, s_q: Any, param: str) -> mpmath.mpf:
    """One coordinate's KL, certified to the caller's mpmath precision (at least ``DPS``)."""
    digits = max(DPS, mpmath.mp.dps)
    return kl_term([(mu_p, s_p, mu_q, s_q)], param, digits).value(mpmath.mp.dps)


def reference_term(mu_p: float, s_p: float, mu_q: float, s_q: float, param: str) -> mpmath.mpf:
    """One coordinate's KL at ``DPS`` digits from the exact input values."""
    with mpmath.workdps(DPS):
        return reference_term_mp(float(mu_p), float(s_p), float(mu_q), float(s_q), param)


def reference(family: str, param: str, arrays: dict[str, np.ndarray]) -> list[mpmath.mpf]:
    """Certified (50-digit) KL for each case (row); diagonal cases sum the last axis."""
    if family == "std-normal":
        mu, logvar = np.atleast_1d(arrays["mu"]), np.atleast_1d(arrays["logvar"])
        zeros = np.zeros_like(mu)
        values = (mu, logvar, zeros, zeros)
        param = "logvar"
    else:
        values = tuple(np.atleast_1d(arrays[n]) for n in ("mu_p", "s_p", "mu_q", "s_q"))
    out = []
    for r in range(len(values[0])):
        columns = [np.atleast_1d(v[r]).astype(np.float64).tolist() for v in values]
        out.append(kl_term(list(zip(*columns, strict=True)), param, DPS).value(DPS))
    return out


@dataclass
class HarnessResult:
    """Worst error of one function on one (family, param, dtype) grid."""

    function: str
    family: str
    param: str
    dtype: str
    cases: int
    worst_ulp: float
    worst_inputs: dict[str, float]
    got: float
    truth: float
    ulps: list[float] = field(default_factory=list, repr=False)

    def message(self) -> str:
        """``got != ref (rdiff ...)`` for the worst case, with its inputs."""
        rdiff = abs(self.got - self.truth) / abs(self.truth) if self.truth else abs(self.got)
        return (
            f"{self.function} [{self.family}, {self.param}, {self.dtype}]: worst "
            f"{self.worst_ulp:.2f} ULP over {self.cases} cases: {self.got!r} != "
            f"{self.truth!r} (rdiff {rdiff:.3g}) at {self.worst_inputs}"
        )


def run_harness(
    function: Callable[..., Any],
    family: str,
    param: str,
    dtype: str,
    *,
    cases: int = 500,
    seed: int = 0,
    k: int = 1,
    call: Callable[..., Any] | None = None,
) -> HarnessResult:
    """Evaluate ``function`` on the seeded grid and measure its error in ULPs.

    ``call(function, arrays)`` adapts the signature (default: positional
    ``mu_p, s_p, mu_q, s_q`` with ``param=`` for the diagonal family).
    """
    arrays = generate_cases(family, param, dtype, cases, seed, k)
    if call is not None:
        got = np.asarray(call(function, arrays))
    elif family == "std-normal":
        got = np.asarray(function(arrays["mu"][:, None], arrays["logvar"][:, None]))
    elif family == "diag":
        got = np.asarray(
            function(arrays["mu_p"], arrays["s_p"], arrays["mu_q"], arrays["s_q"], param=param)
        )
    else:
        got = np.asarray(function(arrays["mu_p"], arrays["s_p"], arrays["mu_q"], arrays["s_q"]))
    truth = reference(family, param, arrays)
    ulps = [ulp_distance(g, t, np.dtype(dtype)) for g, t in zip(got.ravel(), truth, strict=True)]
    worst = int(np.argmax(ulps))
    inputs = {name: array[worst].tolist() for name, array in arrays.items()}
    if family == "diag" and k > 4:
        inputs = {name: f"row {worst} of shape {array.shape}" for name, array in arrays.items()}
    return HarnessResult(
        function=getattr(function, "__name__", str(function)),
        family=family,
        param=param,
        dtype=dtype,
        cases=len(ulps),
        worst_ulp=float(ulps[worst]),
        worst_inputs=inputs,
        got=float(got.ravel()[worst]),
        truth=float(truth[worst]),
        ulps=ulps,
    )
