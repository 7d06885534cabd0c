"""Run checks: seeded cases, the function under test, certified truths, the worst error.

:func:`run_check` returns a :class:`CheckResult`; nothing here prints or
exits (the command line decides that).  On a sample of each run the
references are cross-checked against independent ones, and a disagreement is
an error of the check, never a silent pass:

* the closed form against certified quadrature of the definition
  (:func:`~symkl.accuracy.references.kl_quad_enclosure`): the two enclosures
  must overlap;
* the ball quadrature against mpmath's (``kl_quad(method="mpmath")``) at 20
  digits;
* ``kl_mvn`` at k = 2 against certified 2-D quadrature, and the diagonal
  ``kl_mvn`` cases against the sum of univariate closed forms (derivation
  ``univariate`` against derivation ``full``).

Examples
--------
>>> from symkl.accuracy.registry import CHECKS
>>> result = run_check(CHECKS["kl_normal"], "float64", cases=40, seed=1)
>>> result.passed
True
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import mpmath
import numpy as np
from flint import arb, ctx

from symkl.accuracy.ball import Enclosure, to_ball
from symkl.accuracy.cases import generate_cases, mvn_cases, mvn_diagonal_cases
from symkl.accuracy.references import (
    kl_mvn_quad,
    kl_mvn_reference,
    kl_quad,
    kl_quad_enclosure,
    kl_term,
    sigma_from,
)
from symkl.accuracy.registry import CHECKS, DPS, PAIR, Arrays, Check, rows_of

__all__ = [
    "CheckResult",
    "cases_for",
    "copy_cases",
    "error_of",
    "run_check",
    "run_checks",
    "ulp_distance",
]


@dataclass
class CheckResult:
    """Outcome of one check on one dtype: the worst case and the verdict."""

    name: str
    dtype: str
    cases: int
    metric: str
    worst: float
    bound: float
    worst_inputs: dict[str, Any]
    got: Any
    truth: Any
    reference: str
    seconds: float
    error: str = ""
    errors: list[float] = field(default_factory=list, repr=False)

    @property
    def passed(self) -> bool:
        return not self.error and self.worst <= self.bound

    @property
    def verdict(self) -> str:
        if self.error:
            return "ERROR"
        return "ok" if self.passed else "FAIL"

    def as_dict(self) -> dict[str, Any]:
        result = asdict(self)
        result.pop("errors")
        result["passed"] = self.passed
        result["verdict"] = self.verdict
        return result

    def message(self) -> str:
        """``got != ref (rdiff ...)`` for the worst case, with its inputs."""
        if self.error:
            return f"{self.name} [{self.dtype}]: {self.error}"
        unit = "ULP" if self.metric == "ulp" else "relative error"
        return (
            f"{self.name} [{self.dtype}]: worst {self.worst:.3g} {unit} (bound {self.bound:g}) "
            f"over {self.cases} cases: {self.got!r} != {self.truth!r} at {self.worst_inputs}"
        )


def _mp(value: Any) -> mpmath.mpf:
    return mpmath.mpf(float(value))  # exact: every double is a dyadic rational


def ulp_distance(got: Any, truth: mpmath.mpf, dtype: Any) -> float:
    """|got - truth| in units of the last place of ``truth`` rounded to ``dtype``.

    Examples
    --------
    >>> ulp_distance(1.0 + 2.0**-52, mpmath.mpf(1), "float64")
    1.0
    """
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


def error_of(check: Check, got: Any, truth: Any, dtype: str) -> float:
    """The error of one case in the check's metric (ULP, or relative / normwise relative)."""
    if check.metric == "ulp":
        return ulp_distance(got, truth, np.dtype(dtype))
    with mpmath.workdps(DPS):
        if isinstance(truth, list):
            got_values = [float(v) for v in np.ravel(got)]
            if not all(np.isfinite(got_values)):
                return float("inf")
            scale = max(abs(t) for t in truth)
            if scale == 0:
                return float(max(abs(g) for g in got_values))
            return float(
                max(abs(_mp(g) - t) for g, t in zip(got_values, truth, strict=True)) / scale
            )
        value = float(got)
        if not np.isfinite(value):
            return float("inf")
        if truth == 0:
            return 0.0 if value == 0 else float("inf")
        return float(abs(_mp(value) - truth) / abs(truth))


def cases_for(check: Check, dtype: str, cases: int, seed: int) -> Arrays:
    """The seeded cases of ``check`` in ``dtype``."""
    if check.family == "mvn":
        return mvn_cases(cases, seed, check.k)
    if check.family == "mvn-diag":
        return mvn_diagonal_cases(cases, seed, check.k)
    return generate_cases(check.family, check.param, dtype, cases, seed, check.k)


# --------------------------------------------------------------------------------------
# cross-checks of the references


class ReferenceDisagreementError(ArithmeticError):
    """Two independent certified references do not overlap: a bug in one of them."""


def _sigma_ball(value: float, param: str) -> arb:
    with ctx.workprec(1024):  # exact input, converted far beyond the digits asked for
        return sigma_from(to_ball(value, "s"), param)


def _quadrature_sample(check: Check, arrays: Arrays, rows: int, mpmath_rows: int) -> str:
    """Compare the truths with independent certified references on ``rows`` cases."""
    total_rows = len(next(iter(arrays.values())))
    checked = compared = 0
    for row in range(min(rows, total_rows)):
        if check.family == "mvn":
            values = [arrays[n][row] for n in ("mu_p", "cov_p", "mu_q", "cov_q")]
            closed = kl_mvn_reference(*values, dps=DPS)
            if closed.mid < mpmath.mpf("1e-6"):
                continue  # near 0 the 2-D quadrature needs more bits than a check should spend
            other, kind = kl_mvn_quad(*values, dps=12), "2-D quadrature"
        elif check.family == "mvn-diag":
            values = [arrays[n][row] for n in ("mu_p", "cov_p", "mu_q", "cov_q")]
            closed = kl_mvn_reference(*values, dps=DPS)
            coordinates = [
                (values[0][i], values[1][i, i], values[2][i], values[3][i, i])
                for i in range(check.k)
            ]
            other, kind = kl_term(coordinates, "var", DPS), "univariate closed form"
        else:
            coordinates = rows_of(arrays, PAIR, row)
            closed = kl_term(coordinates, check.param, DPS)
            total = arb(0)
            for mu_p, s_p, mu_q, s_q in coordinates:
                if (mu_p, s_p) == (mu_q, s_q):
                    continue  # the same Gaussian: exactly 0 in both references
                sigma_p, sigma_q = _sigma_ball(s_p, check.param), _sigma_ball(s_q, check.param)
                quad = kl_quad_enclosure(mu_p, sigma_p, mu_q, sigma_q, dps=DPS)
                with ctx.workprec(1024):
                    total += quad.ball
                if compared < mpmath_rows:
                    _compare_with_mpmath(mu_p, sigma_p, mu_q, sigma_q, quad)
                    compared += 1
            other, kind = Enclosure(total), "quadrature"
        if not closed.ball.overlaps(other.ball):
            raise ReferenceDisagreementError(
                f"reference disagreement on case {row}: closed form {closed} != {kind} {other}"
            )
        checked += 1
    mpmath_note = f", mpmath quadrature agrees on {compared}" if compared else ""
    return f"{kind} agrees on {checked}{mpmath_note}" if checked else ""


def _compare_with_mpmath(mu_p: float, sigma_p: arb, mu_q: float, sigma_q: arb, quad: Any) -> None:
    """The ball quadrature against mpmath's tanh-sinh quadrature, at 20 digits."""
    sigma_p_mp, sigma_q_mp = Enclosure(sigma_p).mid, Enclosure(sigma_q).mid
    value = kl_quad(mu_p, sigma_p_mp, mu_q, sigma_q_mp, dps=20, method="mpmath")
    with mpmath.workdps(30):
        truth = quad.mid
        difference = abs(value - truth) / abs(truth) if truth else abs(value)
        if difference > mpmath.mpf(10) ** -18:
            raise ReferenceDisagreementError(
                f"kl_quad: mpmath {mpmath.nstr(value, 20)} != arb {quad} "
                f"at mu_p={mu_p!r}, mu_q={mu_q!r}"
            )


# --------------------------------------------------------------------------------------
# running


def copy_cases(arrays: Arrays) -> Arrays:
    """Fresh copies of the case arrays, to hand to a function that might write to them."""
    return {name: np.array(value, copy=True) for name, value in arrays.items()}


def run_check(
    check: Check,
    dtype: str,
    *,
    cases: int = 200,
    seed: int = 0,
    quadrature_cases: int = 0,
    mpmath_cases: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> CheckResult:
    """Run one check on ``cases`` seeded cases (divided by ``check.cost``) in ``dtype``.

    ``quadrature_cases`` cases are also referenced independently (when the
    check supports it) and must agree with the truth; ``mpmath_cases``
    coordinates of those are also integrated by mpmath.  ``progress(done,
    total)`` is called as cases are referenced.
    """
    started = time.perf_counter()
    count = max(cases // check.cost, 4)
    arrays = cases_for(check, dtype, count, seed)
    reference = check.reference
    try:
        with np.errstate(all="ignore"):
            # a copy: a function that writes to its inputs (torch.from_numpy shares memory)
            # must not change the cases its truths are computed from
            got = np.asarray(check.call(copy_cases(arrays), check.param))
        if check.quadrature and quadrature_cases:
            # slow references (2-D quadrature, k = 64) get fewer samples, at least one
            samples = max(quadrature_cases // check.cost, 1)
            note = _quadrature_sample(check, arrays, samples, mpmath_cases)
            reference += f"; {note}" if note else ""
        errors = []
        truths = []
        for row in range(count):
            truth = check.truth(arrays, check.param, row)
            truths.append(truth)
            errors.append(error_of(check, got[row], truth, dtype))
            if progress is not None:
                progress(row + 1, count)
    except Exception as error:
        return CheckResult(
            check.name,
            dtype,
            count,
            check.metric,
            float("inf"),
            check.bound_for(dtype),
            {},
            None,
            None,
            reference,
            time.perf_counter() - started,
            f"{type(error).__name__}: {error}",
        )
    worst = int(np.argmax(errors))
    inputs = {name: np.asarray(value[worst]).tolist() for name, value in arrays.items()}
    truth = truths[worst]
    return CheckResult(
        name=check.name,
        dtype=dtype,
        cases=count,
        metric=check.metric,
        worst=float(errors[worst]),
        bound=check.bound_for(dtype),
        worst_inputs=inputs,
        got=np.asarray(got[worst]).tolist(),
        truth=[float(t) for t in truth] if isinstance(truth, list) else float(truth),
        reference=reference,
        seconds=time.perf_counter() - started,
        errors=errors,
    )


def run_checks(
    names: Iterable[str] | None = None,
    *,
    cases: int = 200,
    seed: int = 0,
    quadrature_cases: int = 1,
    mpmath_cases: int = 1,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[CheckResult]:
    """Run the named checks (default: all of :data:`CHECKS`) in each of their dtypes."""
    selected = list(CHECKS) if names is None else list(names)
    unknown = [name for name in selected if name not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; known: {', '.join(CHECKS)}")
    results = []
    for name in selected:
        check = CHECKS[name]
        for dtype in check.dtypes:
            label = f"{name} {dtype}"
            report = None if progress is None else (lambda d, t, label=label: progress(label, d, t))
            float64 = dtype == "float64"
            results.append(
                run_check(
                    check,
                    dtype,
                    cases=cases,
                    seed=seed,
                    quadrature_cases=quadrature_cases if float64 else 0,
                    mpmath_cases=mpmath_cases if float64 else 0,
                    progress=report,
                )
            )
    return results
