"""Cross-check every public numeric function against an mpmath reference.

This is what ``symkl check`` runs, and what :mod:`symkl.testing` runs on a
user's own KL.  Each :class:`Check` names a function, the grid it is measured
on (:func:`symkl.harness.generate_cases`: scale ratios 1e-6..1e6, relative
scale differences down to 1e-15, mean offsets up to 1e6 scales, KL down to
1e-30), how its error is measured, and the bound the documentation promises.
:func:`run_check` returns a :class:`CheckResult`; nothing here prints or
exits (the command line decides that).

References, all at 50 significant digits:

* univariate and diagonal KL, reverse and Jeffreys: the closed form proved by
  derivation ``univariate``, evaluated per coordinate from the exact binary
  inputs (:func:`symkl.harness.reference`); on a sample of the same cases,
  :func:`symkl.reference.kl_quad` integrates the *definition* by quadrature
  and must agree with it to 25 digits (the ``reference`` column says how many);
* gradients: the derivative of that reference by :func:`mpmath.diff`
  (high-precision finite differences), error relative to the gradient's
  largest component;
* full covariance: the Cholesky closed form of derivation ``full`` at k = 2
  and 3, evaluated in mpmath, checked against 2-D quadrature of the
  definition on a sample at k = 2.

Examples
--------
>>> result = run_check(CHECKS["kl_normal"], "float64", cases=40, seed=1)
>>> result.passed
True
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import mpmath
import numpy as np

from symkl import numeric
from symkl.harness import DPS, generate_cases, reference_term_mp, ulp_distance

__all__ = [
    "CHECKS",
    "Check",
    "CheckResult",
    "load_function",
    "run_check",
    "run_checks",
    "user_check",
]

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class Check:
    """One function on one grid, with its documented bound.

    ``call(arrays, param)`` evaluates the function on the generated arrays;
    ``truth(arrays, param, row)`` is the 50-digit reference of one case (a
    list of values for gradients); ``metric`` is ``"ulp"`` (in the output
    dtype) or ``"rel"`` (relative error, normwise for gradients).
    """

    name: str
    family: str
    param: str
    metric: str
    bound: float
    call: Callable[[Arrays, str], Any]
    truth: Callable[[Arrays, str, int], Any]
    dtypes: tuple[str, ...] = ("float64", "float32")
    k: int = 1
    #: cases per dtype are divided by this (slow references: gradients, matrices)
    cost: int = 1
    quadrature: bool = False
    #: the bound in float32 (symkl computes in float64 and rounds once); None: ``bound``
    float32_bound: float | None = 1.0

    def bound_for(self, dtype: str) -> float:
        """The documented bound in ``dtype``."""
        if dtype == "float32" and self.float32_bound is not None:
            return self.float32_bound
        return self.bound


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


# ---------------------------------------------------------------------------------------
# references


def _mp(value: Any) -> mpmath.mpf:
    return mpmath.mpf(float(value))  # exact: every double is a dyadic rational


def _row(arrays: Arrays, names: Iterable[str], row: int) -> list[np.ndarray]:
    return [np.atleast_1d(arrays[name][row]) for name in names]


_PAIR = ("mu_p", "s_p", "mu_q", "s_q")


def _kl_truth(arrays: Arrays, param: str, row: int) -> mpmath.mpf:
    mu_p, s_p, mu_q, s_q = _row(arrays, _PAIR, row)
    with mpmath.workdps(DPS):
        return mpmath.fsum(
            reference_term_mp(_mp(a), _mp(b), _mp(c), _mp(d), param)
            for a, b, c, d in zip(mu_p, s_p, mu_q, s_q, strict=True)
        )


def _reverse_truth(arrays: Arrays, param: str, row: int) -> mpmath.mpf:
    swapped = {"mu_p": arrays["mu_q"], "s_p": arrays["s_q"]}
    swapped |= {"mu_q": arrays["mu_p"], "s_q": arrays["s_p"]}
    return _kl_truth(swapped, param, row)


def _symmetric_truth(arrays: Arrays, param: str, row: int) -> mpmath.mpf:
    with mpmath.workdps(DPS):
        return _kl_truth(arrays, param, row) + _reverse_truth(arrays, param, row)


def _prior_truth(arrays: Arrays, param: str, row: int) -> mpmath.mpf:
    mu, logvar = _row(arrays, ("mu", "logvar"), row)
    with mpmath.workdps(DPS):
        zero = mpmath.mpf(0)
        return mpmath.fsum(
            reference_term_mp(_mp(m), _mp(v), zero, zero, "logvar")
            for m, v in zip(mu, logvar, strict=True)
        )


def _chopped(gradient: list[mpmath.mpf], magnitude: mpmath.mpf) -> list[mpmath.mpf]:
    """Differentiation noise (about 1e-50 of the gradient's natural size) is exactly 0."""
    return [mpmath.chop(g, tol=magnitude * mpmath.mpf(10) ** -40) for g in gradient]


def _gradient_truth(arrays: Arrays, param: str, row: int) -> list[mpmath.mpf]:
    values = [_mp(arrays[name][row]) for name in _PAIR]
    gradient = []
    scale = min(_sigma(values[1], param), _sigma(values[3], param))
    magnitude = 1 / scale + abs(values[0] - values[2]) / scale**2
    if param != "std":
        magnitude = magnitude / scale  # derivatives with respect to variances
    with mpmath.workdps(DPS):
        for position in range(4):

            def along(t, position=position):
                moved = list(values)
                moved[position] = moved[position] + t
                return reference_term_mp(*moved, param)

            gradient.append(mpmath.diff(along, 0))
        return _chopped(gradient, magnitude)


def _prior_gradient_truth(arrays: Arrays, param: str, row: int) -> list[mpmath.mpf]:
    mu, logvar = _mp(arrays["mu"][row]), _mp(arrays["logvar"][row])
    zero = mpmath.mpf(0)
    with mpmath.workdps(DPS):
        gradient = [
            mpmath.diff(lambda t: reference_term_mp(mu + t, logvar, zero, zero, "logvar"), 0),
            mpmath.diff(lambda t: reference_term_mp(mu, logvar + t, zero, zero, "logvar"), 0),
        ]
        return _chopped(gradient, 1 + abs(mu) + mpmath.exp(logvar))


# full covariance: cases, the derived closed form in mpmath, directional derivatives


def mvn_cases(cases: int, seed: int, k: int) -> Arrays:
    """Seeded SPD pairs with condition numbers up to 1e4, scales 1e-3..1e3.

    A quarter of the cases have ``q`` a small perturbation of ``p`` (KL down
    to about 1e-8), a tenth have ``p == q`` exactly.
    """
    rng = np.random.default_rng(seed)
    mu_p = np.empty((cases, k))
    mu_q = np.empty((cases, k))
    cov_p = np.empty((cases, k, k))
    cov_q = np.empty((cases, k, k))

    def spd() -> np.ndarray:
        rotation, _ = np.linalg.qr(rng.normal(size=(k, k)))
        eigenvalues = 10 ** rng.uniform(0, 4, size=k) * 10 ** rng.uniform(-3, 3)
        matrix = (rotation * eigenvalues) @ rotation.T
        return (matrix + matrix.T) / 2

    for case in range(cases):
        cov_p[case] = spd()
        scale = float(np.sqrt(np.trace(cov_p[case]) / k))
        mu_p[case] = rng.normal(size=k) * scale * 10 ** rng.uniform(-2, 2)
        kind = rng.random()
        if kind < 0.1:
            cov_q[case], mu_q[case] = cov_p[case], mu_p[case]
        elif kind < 0.35:
            perturbation = rng.normal(size=(k, k)) * 10 ** rng.uniform(-4, -2)
            factor = np.eye(k) + (perturbation + perturbation.T) / 2
            product = factor @ cov_p[case] @ factor.T
            cov_q[case] = (product + product.T) / 2  # exactly symmetric
            mu_q[case] = mu_p[case] + rng.normal(size=k) * scale * 1e-4
        else:
            cov_q[case] = spd()
            mu_q[case] = rng.normal(size=k) * scale * 10 ** rng.uniform(-2, 2)
    return {"mu_p": mu_p, "cov_p": cov_p, "mu_q": mu_q, "cov_q": cov_q}


_MVN_FUNCTIONS: dict[int, Callable[..., Any]] = {}


def _mvn_closed_form(k: int) -> Callable[..., Any]:
    """Derivation ``full``'s Cholesky closed form at size k, as an mpmath function of (M, w)."""
    if k not in _MVN_FUNCTIONS:
        import sympy as sp

        from symkl.kl import derive
        from symkl.model import MatrixEntry, SquaredNorm

        expression = derive("full").closed_form_at(k)
        entries = {
            atom: sp.Symbol(f"M_{atom.args[1]}_{atom.args[2]}")
            for atom in expression.atoms(MatrixEntry)
        }
        norms = {atom: sp.Symbol("w_norm2") for atom in expression.atoms(SquaredNorm)}
        expression = expression.xreplace(entries | norms)
        symbols = [*sorted(entries.values(), key=str), sp.Symbol("w_norm2")]
        function = sp.lambdify(symbols, expression, modules="mpmath")
        names = [str(s) for s in symbols]

        def evaluate(lower: mpmath.matrix, w: mpmath.matrix) -> mpmath.mpf:
            values = {f"M_{i + 1}_{j + 1}": lower[i, j] for i in range(k) for j in range(k)}
            values["w_norm2"] = mpmath.fsum(w[i] ** 2 for i in range(k))
            return function(*(values[name] for name in names))

        _MVN_FUNCTIONS[k] = evaluate
    return _MVN_FUNCTIONS[k]


def mvn_reference(mu_p, cov_p, mu_q, cov_q) -> mpmath.mpf:
    """KL between full-covariance Gaussians at 50 digits, from the derived Cholesky form.

    ``M = L_q^-1 L_p`` and ``w = L_q^-1 (mu_q - mu_p)`` are computed in mpmath
    from the exact binary inputs.
    """
    k = len(mu_p)
    with mpmath.workdps(DPS + 20):
        lower_p = mpmath.cholesky(mpmath.matrix([[_mp(v) for v in row] for row in cov_p]))
        lower_q = mpmath.cholesky(mpmath.matrix([[_mp(v) for v in row] for row in cov_q]))
        difference = mpmath.matrix([_mp(b) - _mp(a) for a, b in zip(mu_p, mu_q, strict=True)])
        inverse_q = mpmath.inverse(lower_q)
        value = _mvn_closed_form(k)(inverse_q * lower_p, inverse_q * difference)
    with mpmath.workdps(DPS):
        return +value


def mvn_quad(mu_p, cov_p, mu_q, cov_q, dps: int = 20) -> mpmath.mpf:
    """2-D quadrature of the definition at ``k = 2`` (with ``x = mu_p + L_p z``)."""
    with mpmath.workdps(dps + 10):
        lower_p = mpmath.cholesky(mpmath.matrix([[_mp(v) for v in row] for row in cov_p]))
        cov_q_mp = mpmath.matrix([[_mp(v) for v in row] for row in cov_q])
        inverse_q = mpmath.inverse(cov_q_mp)
        mean_p = mpmath.matrix([_mp(v) for v in mu_p])
        mean_q = mpmath.matrix([_mp(v) for v in mu_q])
        log_det_ratio = mpmath.log(mpmath.det(cov_q_mp)) - 2 * mpmath.log(
            lower_p[0, 0] * lower_p[1, 1]
        )

        def integrand(z1, z2):
            z = mpmath.matrix([z1, z2])
            x = mean_p + lower_p * z
            offset = x - mean_q
            log_p = -(z1**2 + z2**2) / 2
            log_q = -(offset.T * inverse_q * offset)[0] / 2 - log_det_ratio / 2
            density = mpmath.exp(-(z1**2 + z2**2) / 2) / (2 * mpmath.pi)
            return density * (log_p - log_q)

        # p is the standard normal in z: beyond |z| = 12 the integrand is below 1e-30
        edges = [-12, -4, 0, 4, 12]
        value = mpmath.quad(integrand, edges, edges, method="gauss-legendre")
    return value


def _mvn_truth(arrays: Arrays, param: str, row: int) -> mpmath.mpf:
    return mvn_reference(*(arrays[n][row] for n in ("mu_p", "cov_p", "mu_q", "cov_q")))


def _mvn_directions(arrays: Arrays, row: int) -> list[np.ndarray]:
    rng = np.random.default_rng(row)
    directions = []
    for name in ("mu_p", "cov_p", "mu_q", "cov_q"):
        direction = rng.normal(size=arrays[name][row].shape)
        if direction.ndim == 2:
            direction = (direction + direction.T) / 2
        directions.append(direction * float(np.max(np.abs(arrays[name][row])) or 1.0) * 1e-3)
    return directions


def _mvn_gradient_truth(arrays: Arrays, param: str, row: int) -> list[mpmath.mpf]:
    """Directional derivatives along four seeded symmetric directions, one per argument."""
    values = [arrays[n][row] for n in ("mu_p", "cov_p", "mu_q", "cov_q")]
    result = []
    for position, direction in enumerate(_mvn_directions(arrays, row)):

        def along(t, position=position, direction=direction):
            with mpmath.workdps(max(DPS + 20, mpmath.mp.dps)):
                moved = [
                    mpmath.matrix([[_mp(v) for v in np.atleast_1d(r)] for r in np.atleast_2d(a)])
                    for a in values
                ]
                step = mpmath.matrix(np.atleast_2d(direction).tolist())
                moved[position] = moved[position] + t * step
                k = len(values[0])
                mean_p = [moved[0][0, i] for i in range(k)]
                mean_q = [moved[2][0, i] for i in range(k)]
                return _mvn_reference_mp(mean_p, moved[1], mean_q, moved[3])

        with mpmath.workdps(DPS):
            result.append(mpmath.diff(along, 0))
    # differentiation noise (about 1e-60) where the gradient is exactly 0 (p == q)
    inverse = float(np.max(np.abs(np.linalg.inv(values[3]))))
    size = max(float(np.max(np.abs(d))) for d in _mvn_directions(arrays, row))
    return _chopped(result, mpmath.mpf(inverse * size))


def _mvn_reference_mp(mean_p, cov_p, mean_q, cov_q) -> mpmath.mpf:
    k = len(mean_p)
    lower_p = mpmath.cholesky(cov_p)
    inverse_q = mpmath.inverse(mpmath.cholesky(cov_q))
    difference = mpmath.matrix([b - a for a, b in zip(mean_p, mean_q, strict=True)])
    return _mvn_closed_form(k)(inverse_q * lower_p, inverse_q * difference)


def _mvn_gradient_call(arrays: Arrays, param: str) -> np.ndarray:
    gradient = numeric.grad_kl_mvn(arrays["mu_p"], arrays["cov_p"], arrays["mu_q"], arrays["cov_q"])
    rows = len(arrays["mu_p"])
    out = np.empty((rows, 4))
    for row in range(rows):
        for position, direction in enumerate(_mvn_directions(arrays, row)):
            out[row, position] = float(np.sum(gradient[position][row] * direction))
    return out


# ---------------------------------------------------------------------------------------
# the checks


def _pair_call(function: Callable[..., Any], **options: Any) -> Callable[[Arrays, str], Any]:
    def call(arrays: Arrays, param: str) -> Any:
        return function(*(arrays[n] for n in _PAIR), **options)

    return call


def _diag_call(function: Callable[..., Any]) -> Callable[[Arrays, str], Any]:
    def call(arrays: Arrays, param: str) -> Any:
        return function(*(arrays[n] for n in _PAIR), param=param)

    return call


def _prior_call(function: Callable[..., Any]) -> Callable[[Arrays, str], Any]:
    def call(arrays: Arrays, param: str) -> Any:
        return function(arrays["mu"], arrays["logvar"])

    return call


def _gradient_call(function: Callable[..., Any], **options: Any) -> Callable[[Arrays, str], Any]:
    def call(arrays: Arrays, param: str) -> Any:
        flat = {name: value.ravel() for name, value in arrays.items()}
        names = ("mu", "logvar") if "mu" in flat else _PAIR
        parts = function(*(flat[n] for n in names), **options)
        return np.stack([np.broadcast_to(part, flat[names[0]].shape) for part in parts], axis=-1)

    return call


def _mvn_call(arrays: Arrays, param: str) -> Any:
    return numeric.kl_mvn(arrays["mu_p"], arrays["cov_p"], arrays["mu_q"], arrays["cov_q"])


def _checks() -> dict[str, Check]:
    n = numeric
    checks = [
        Check(
            "kl_normal",
            "normal",
            "std",
            "ulp",
            4,
            _pair_call(n.kl_normal),
            _kl_truth,
            quadrature=True,
        ),
        Check(
            "kl_normal_reverse",
            "normal",
            "std",
            "ulp",
            4,
            _pair_call(n.kl_normal_reverse),
            _reverse_truth,
        ),
        Check(
            "kl_normal_symmetric",
            "normal",
            "std",
            "ulp",
            6,
            _pair_call(n.kl_normal_symmetric),
            _symmetric_truth,
        ),
    ]
    for param in ("std", "var", "logvar"):
        checks += [
            Check(
                f"kl_diag[{param}]",
                "diag",
                param,
                "ulp",
                4 + np.log2(8),
                _diag_call(n.kl_diag),
                _kl_truth,
                k=8,
                quadrature=True,
            ),
            Check(
                f"kl_diag_reverse[{param}]",
                "diag",
                param,
                "ulp",
                4 + np.log2(8),
                _diag_call(n.kl_diag_reverse),
                _reverse_truth,
                k=8,
            ),
            Check(
                f"kl_diag_symmetric[{param}]",
                "diag",
                param,
                "ulp",
                6 + np.log2(8),
                _diag_call(n.kl_diag_symmetric),
                _symmetric_truth,
                k=8,
            ),
            Check(
                f"grad_kl_diag[{param}]",
                "normal",
                param,
                "rel",
                1e-13,
                _gradient_call(n.grad_kl_diag, param=param),
                _gradient_truth,
                dtypes=("float64",),
                cost=8,
            ),
        ]
    checks += [
        Check(
            "kl_std_normal",
            "std-normal",
            "logvar",
            "ulp",
            4 + np.log2(8),
            _prior_call(n.kl_std_normal),
            _prior_truth,
            k=8,
        ),
        Check(
            "grad_kl_normal",
            "normal",
            "std",
            "rel",
            1e-13,
            _gradient_call(n.grad_kl_normal),
            _gradient_truth,
            dtypes=("float64",),
            cost=8,
        ),
        Check(
            "grad_kl_std_normal",
            "std-normal",
            "logvar",
            "rel",
            1e-13,
            _gradient_call(n.grad_kl_std_normal),
            _prior_gradient_truth,
            dtypes=("float64",),
            cost=8,
        ),
        Check(
            "kl_mvn[k=2]",
            "mvn",
            "cov",
            "rel",
            1e-12,
            _mvn_call,
            _mvn_truth,
            dtypes=("float64",),
            k=2,
            cost=4,
            quadrature=True,
        ),
        Check(
            "kl_mvn[k=3]",
            "mvn",
            "cov",
            "rel",
            1e-12,
            _mvn_call,
            _mvn_truth,
            dtypes=("float64",),
            k=3,
            cost=4,
        ),
        Check(
            "grad_kl_mvn[k=2]",
            "mvn",
            "cov",
            "rel",
            1e-9,
            _mvn_gradient_call,
            _mvn_gradient_truth,
            dtypes=("float64",),
            k=2,
            cost=40,
        ),
    ]
    return {check.name: check for check in checks}


#: every public numeric function, by name
CHECKS: dict[str, Check] = _checks()


# ---------------------------------------------------------------------------------------
# running


def _cases(check: Check, dtype: str, cases: int, seed: int) -> Arrays:
    if check.family == "mvn":
        return mvn_cases(cases, seed, check.k)
    arrays = generate_cases(check.family, check.param, dtype, cases, seed, check.k)
    return arrays


def _error(check: Check, got: Any, truth: Any, dtype: str) -> float:
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


def _quadrature_sample(check: Check, arrays: Arrays, rows: int) -> tuple[int, float]:
    """Compare the closed-form reference with quadrature of the definition on ``rows`` cases."""
    from symkl.reference import kl_quad

    worst = 0.0
    checked = 0
    for row in range(min(rows, len(next(iter(arrays.values()))))):
        if check.family == "mvn":
            values = [arrays[n][row] for n in ("mu_p", "cov_p", "mu_q", "cov_q")]
            closed = mvn_reference(*values)
            if closed < mpmath.mpf("1e-6"):
                continue  # 2-D quadrature is certified to about 20 digits absolute
            integral = mvn_quad(*values, dps=15)
            digits_bound = mpmath.mpf("1e-12")
        else:
            closed = _kl_truth(arrays, check.param, row)
            mu_p, s_p, mu_q, s_q = _row(arrays, _PAIR, row)
            with mpmath.workdps(DPS):
                terms = []
                for a, b, c, d in zip(mu_p, s_p, mu_q, s_q, strict=True):
                    sigma_p, sigma_q = _sigma(_mp(b), check.param), _sigma(_mp(d), check.param)
                    terms.append(kl_quad(_mp(a), sigma_p, _mp(c), sigma_q, dps=30))
                integral = mpmath.fsum(terms)
            digits_bound = mpmath.mpf("1e-25")
        checked += 1
        with mpmath.workdps(DPS):
            if closed == 0:
                difference = abs(integral)
            else:
                difference = abs(integral - closed) / abs(closed)
        if difference > digits_bound:
            raise ArithmeticError(
                f"reference disagreement on case {row}: closed form {mpmath.nstr(closed, 20)} "
                f"!= quadrature {mpmath.nstr(integral, 20)}"
            )
        worst = max(worst, float(difference))
    return checked, worst


def _sigma(value: mpmath.mpf, param: str) -> mpmath.mpf:
    if param == "std":
        return value
    if param == "var":
        return mpmath.sqrt(value)
    return mpmath.exp(value / 2)


def run_check(
    check: Check,
    dtype: str,
    *,
    cases: int = 200,
    seed: int = 0,
    quadrature_cases: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> CheckResult:
    """Run one check on ``cases`` seeded cases (divided by ``check.cost``) in ``dtype``.

    ``quadrature_cases`` cases are also integrated by quadrature (when the
    check supports it) and must agree with the closed-form reference;
    ``progress(done, total)`` is called as cases are referenced.
    """
    started = time.perf_counter()
    count = max(cases // check.cost, 4)
    arrays = _cases(check, dtype, count, seed)
    reference = "closed form (50 digits)"
    if check.metric == "rel" and check.family != "mvn":
        reference = "mpmath.diff of the closed form"
    elif check.name.startswith("grad_kl_mvn"):
        reference = "mpmath.diff along 4 directions"
    try:
        with np.errstate(all="ignore"):
            got = np.asarray(check.call(arrays, check.param))
        if check.quadrature and quadrature_cases:
            checked, _ = _quadrature_sample(check, arrays, quadrature_cases)
            kind = "2-D quadrature" if check.family == "mvn" else "quadrature"
            reference += f"; {kind} agrees on {checked}"
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
    errors = []
    truths = []
    for row in range(count):
        truth = check.truth(arrays, check.param, row)
        truths.append(truth)
        errors.append(_error(check, got[row], truth, dtype))
        if progress is not None:
            progress(row + 1, count)
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
            results.append(
                run_check(
                    check,
                    dtype,
                    cases=cases,
                    seed=seed,
                    quadrature_cases=quadrature_cases if dtype == "float64" else 0,
                    progress=report,
                )
            )
    return results


# ---------------------------------------------------------------------------------------
# a user's function

FAMILIES = ("normal", "diag", "std-normal")
PARAMS = ("std", "var", "logvar")


def load_function(spec: str) -> Callable[..., Any]:
    """Import ``"package.module:function"`` (the current directory is importable).

    Raises ``ValueError`` with what was wrong: no colon, no module, no attribute,
    or an attribute that is not callable.
    """
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(f"--function must look like 'package.module:function', got {spec!r}")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"cannot import module {module_name!r} for --function: {error}") from error
    try:
        function = module
        for part in attribute.split("."):
            function = getattr(function, part)
    except AttributeError as error:
        raise ValueError(f"module {module_name!r} has no attribute {attribute!r}") from error
    if not callable(function):
        raise ValueError(f"{spec!r} is not callable (it is a {type(function).__name__})")
    return function


def user_check(
    function: Callable[..., Any],
    family: str,
    param: str,
    ulps: float,
    *,
    k: int = 1,
    convert: Callable[[np.ndarray], Any] | None = None,
) -> Check:
    """A :class:`Check` of a user's KL on symkl's grid and reference.

    ``function`` is called positionally: ``f(mu_p, s_p, mu_q, s_q)`` for the
    ``normal`` family (elementwise, 1-D arrays), the same with ``(cases, k)``
    arrays summed over the last axis for ``diag``, and ``f(mu, logvar)`` with
    ``(cases, k)`` arrays for ``std-normal``.  ``param`` says what ``s_p``,
    ``s_q`` hold.  ``convert`` turns each NumPy input into the framework's
    array (``torch.from_numpy``); results are read back with ``numpy.asarray``.
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
    if family == "std-normal":
        if param != "logvar":
            raise ValueError(f"the std-normal family takes param='logvar', got {param!r}")
    elif param not in PARAMS:
        raise ValueError(f"param must be one of {', '.join(PARAMS)}, got {param!r}")
    if not (isinstance(ulps, int | float) and ulps > 0):
        raise ValueError(f"ulps must be a positive number, got {ulps!r}")
    convert = convert or (lambda array: array)
    name = getattr(function, "__qualname__", getattr(function, "__name__", repr(function)))

    def call(arrays: Arrays, param: str) -> np.ndarray:
        names = ("mu", "logvar") if family == "std-normal" else _PAIR
        result = function(*(convert(arrays[n]) for n in names))
        detach = getattr(result, "detach", None)
        if detach is not None:
            result = detach().cpu()
        result = np.asarray(result, dtype=float)
        rows = len(arrays[names[0]])
        if result.shape != (rows,):
            raise ValueError(
                f"{name} returned shape {result.shape}; expected ({rows},), one KL per case"
                + (" (sum over the last axis)" if family != "normal" else "")
            )
        return result

    truth = _prior_truth if family == "std-normal" else _kl_truth
    return Check(
        name,
        family,
        param,
        "ulp",
        float(ulps),
        call,
        truth,
        k=k if family != "normal" else 1,
        float32_bound=None,
    )


# ---------------------------------------------------------------------------------------
# peers: torch.distributions on the same cases


@dataclass
class PeerResult:
    """symkl and a peer on the same cases, against the same mpmath truth."""

    distribution: str
    dtype: str
    cases: int
    metric: str
    symkl_worst: float
    peer_worst: float
    #: the peer's median error (agreement where it is accurate)
    peer_median: float
    #: the peer's worst relative error where the true KL is below 1e-6
    peer_near_zero: float
    near_zero_cases: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _torch_call(torch: Any, distribution: str, arrays: Arrays, param: str) -> np.ndarray:
    from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

    def tensor(name: str) -> Any:
        return torch.from_numpy(np.ascontiguousarray(arrays[name]))

    if distribution == "MultivariateNormal":
        p = MultivariateNormal(tensor("mu_p"), covariance_matrix=tensor("cov_p"))
        q = MultivariateNormal(tensor("mu_q"), covariance_matrix=tensor("cov_q"))
    elif distribution == "Normal":
        p, q = Normal(tensor("mu_p"), tensor("s_p")), Normal(tensor("mu_q"), tensor("s_q"))
    else:
        p = Independent(Normal(tensor("mu_p"), tensor("s_p")), 1)
        q = Independent(Normal(tensor("mu_q"), tensor("s_q")), 1)
    with torch.no_grad():
        return kl_divergence(p, q).numpy()


def run_peers(cases: int = 200, seed: int = 0) -> list[PeerResult]:
    """Compare symkl with ``torch.distributions.kl_divergence``; ImportError without torch."""
    import torch

    plans = [
        ("Normal", CHECKS["kl_normal"], ("float64", "float32")),
        ("Independent(Normal)", CHECKS["kl_diag[std]"], ("float64", "float32")),
        ("MultivariateNormal", CHECKS["kl_mvn[k=3]"], ("float64",)),
    ]
    results = []
    for distribution, check, dtypes in plans:
        for dtype in dtypes:
            count = max(cases // check.cost, 4)
            arrays = _cases(check, dtype, count, seed)
            with np.errstate(all="ignore"):
                mine = np.asarray(check.call(arrays, check.param))
            try:
                theirs = _torch_call(torch, distribution, arrays, check.param)
            except (ValueError, RuntimeError) as error:  # torch rejects some valid input
                theirs = np.full(count, np.nan)
                distribution += f" (torch raised {type(error).__name__})"
            truths = [check.truth(arrays, check.param, row) for row in range(count)]
            mine_errors = [_error(check, mine[r], truths[r], dtype) for r in range(count)]
            their_errors = [_error(check, theirs[r], truths[r], dtype) for r in range(count)]
            near = [r for r in range(count) if 0 < truths[r] < mpmath.mpf("1e-6")]
            with mpmath.workdps(DPS):
                near_errors = [
                    float(abs(_mp(theirs[r]) - truths[r]) / truths[r])
                    if np.isfinite(theirs[r])
                    else float("inf")
                    for r in near
                ]
            results.append(
                PeerResult(
                    distribution,
                    dtype,
                    count,
                    check.metric,
                    float(max(mine_errors)),
                    float(max(their_errors)),
                    float(np.median(their_errors)),
                    max(near_errors, default=0.0),
                    len(near),
                )
            )
    return results
