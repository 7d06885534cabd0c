"""Accuracy harness: seeded cases over the whole domain, mpmath truth, errors in ULPs.

In the spirit of SciPy's mpmath test harness: argument generators spread
over orders of magnitude, a reference evaluated with mpmath at 50 digits from
the *derived* closed form, and one call per function that reports the worst
case.  The reference for each coordinate is the univariate closed form
``log(s_q/s_p) + (s_p^2 + d^2)/(2 s_q^2) - 1/2``, proved in derivation
``univariate``, evaluated from the exact binary values of the inputs; sums
over coordinates are exact ``fsum`` in mpmath.

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

__all__ = [
    "HarnessResult",
    "generate_cases",
    "reference",
    "reference_term",
    "reference_term_mp",
    "run_harness",
    "ulp_distance",
]

FAMILIES = ("normal", "diag", "std-normal")
DPS = 50


def _mp(value: float) -> mpmath.mpf:
    return mpmath.mpf(float(value))  # exact: every double is a dyadic rational


def reference_term_mp(
    mu_p: mpmath.mpf, s_p: mpmath.mpf, mu_q: mpmath.mpf, s_q: mpmath.mpf, param: str
) -> mpmath.mpf:
    """One coordinate's KL to ``DPS`` digits (or more, if the caller works at more).

    The closed form's O(1) terms cancel down to KL values near 1e-31 on the
    grid, so it is evaluated with ``DPS + 40`` digits of working precision.
    """
    with mpmath.workdps(max(DPS + 40, mpmath.mp.dps)):
        if param == "std":
            vp, vq = s_p**2, s_q**2
            log_ratio = mpmath.log(s_q / s_p)
        elif param == "var":
            vp, vq = s_p, s_q
            log_ratio = mpmath.log(vq / vp) / 2
        elif param == "logvar":
            vp, vq = mpmath.exp(s_p), mpmath.exp(s_q)
            log_ratio = (s_q - s_p) / 2
        else:
            raise ValueError(f"unknown param {param!r}; expected 'std', 'var' or 'logvar'")
        # the derived closed form: log(s_q/s_p) + (v_p + d^2)/(2 v_q) - 1/2
        return log_ratio + (vp + (mu_p - mu_q) ** 2) / (2 * vq) - mpmath.mpf(1) / 2


def reference_term(mu_p: float, s_p: float, mu_q: float, s_q: float, param: str) -> mpmath.mpf:
    """One coordinate's KL at ``DPS`` digits from the exact input values."""
    with mpmath.workdps(DPS):
        return reference_term_mp(_mp(mu_p), _mp(s_p), _mp(mu_q), _mp(s_q), param)


def reference(family: str, param: str, arrays: dict[str, np.ndarray]) -> list[mpmath.mpf]:
    """Exact (50-digit) KL for each case (row); diagonal cases sum the last axis."""
    if family == "std-normal":
        mu, logvar = arrays["mu"], arrays["logvar"]
        zeros = np.zeros_like(mu)
        values = (mu, logvar, zeros, zeros)
        param = "logvar"
    else:
        values = tuple(arrays[n] for n in ("mu_p", "s_p", "mu_q", "s_q"))
    rows = np.atleast_2d(values[0]).shape[0] if values[0].ndim > 1 else len(values[0])
    out = []
    with mpmath.workdps(DPS):
        for r in range(rows):
            if values[0].ndim == 1:
                out.append(reference_term(*(v[r] for v in values), param))
            else:
                terms = [
                    reference_term(*(v[r, c] for v in values), param)
                    for c in range(values[0].shape[1])
                ]
                out.append(mpmath.fsum(terms))
    return out


def ulp_distance(got: Any, truth: mpmath.mpf, dtype: np.dtype) -> float:
    """|got - truth| in units of the last place of ``truth`` rounded to ``dtype``."""
    dtype = np.dtype(dtype)
    value = float(got)
    if not np.isfinite(value):
        return float("inf")
    rounded = dtype.type(float(truth))
    spacing = (
        float(np.spacing(np.abs(rounded)))
        if rounded != 0
        else float(np.finfo(dtype).smallest_subnormal)
    )
    with mpmath.workdps(DPS):
        return float(abs(_mp(value) - truth) / _mp(spacing))


def generate_cases(
    family: str, param: str, dtype: str, cases: int, seed: int, k: int = 1
) -> dict[str, np.ndarray]:
    """Seeded arguments spread over orders of magnitude, including the hard places.

    Scales from 1e-3 to 1e3; scale ratios 1e-6..1e6; relative scale
    differences 1e-15..1e-1 (KL near 0); mean offsets 0 and 1e-8..1e6 scales;
    for ``std-normal`` log-variances in [-60, 60] and near 0.  ``k > 1`` gives
    ``(cases, k)`` arrays for the diagonal family.
    """
    rng = np.random.default_rng(seed)
    shape = (cases, k) if family == "diag" or k > 1 else (cases,)
    kind = rng.integers(0, 4, size=shape)  # 0: ratio, 1: close, 2: equal, 3: very close
    if len(shape) == 2:
        # a quarter of the rows are close in every coordinate: a KL near 0 needs all k
        close_rows = rng.random(cases) < 0.25
        kind = np.where(close_rows[:, None], rng.choice([1, 2, 3], size=shape), kind)
    if family == "std-normal":
        logvar = np.where(
            kind < 2,
            rng.uniform(-60, 60, size=shape),
            rng.choice([-1, 1], size=shape) * 10 ** rng.uniform(-15, 0, size=shape),
        )
        logvar = np.where(kind == 2, 0.0, logvar)
        mu = np.where(
            rng.random(shape) < 0.3,
            0.0,
            rng.choice([-1, 1], size=shape)
            * 10
            ** np.where(
                kind >= 2, rng.uniform(-15, -8, size=shape), rng.uniform(-8, 3, size=shape)
            ),
        )
        return {"mu": mu.astype(dtype), "logvar": logvar.astype(dtype)}
    base = 10 ** rng.uniform(-3, 3, size=shape)
    ratio = np.where(
        kind == 0,
        10 ** rng.uniform(-6, 6, size=shape),
        1 + rng.choice([-1, 1], size=shape) * 10 ** rng.uniform(-15, -1, size=shape),
    )
    ratio = np.where(kind == 2, 1.0, ratio)
    ratio = np.where(kind == 3, 1 + rng.choice([-1, 1], size=shape) * 2.0**-50, ratio)
    s_p = base
    s_q = base * ratio
    offset = np.where(
        (rng.random(shape) < 0.3) | ((kind >= 1) & (rng.random(shape) < 0.5)),
        0.0,
        rng.choice([-1, 1], size=shape) * 10 ** rng.uniform(-8, 6, size=shape),
    )
    mu_p = rng.uniform(-10, 10, size=shape) * base
    mu_q = mu_p + offset * np.maximum(s_q, s_p)
    if param == "var":
        s_p, s_q = s_p**2, s_q**2
    elif param == "logvar":
        s_p, s_q = 2 * np.log(s_p), 2 * np.log(s_q)
    arrays = {"mu_p": mu_p, "s_p": s_p, "mu_q": mu_q, "s_q": s_q}
    return {name: value.astype(dtype) for name, value in arrays.items()}


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
