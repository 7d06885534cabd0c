"""The registry: every public numeric function, its grid, its reference and its documented bound.

A :class:`Check` is a row of a table with named fields; :data:`CHECKS` is the
table.  The truths (``truth(arrays, param, row)``) are certified references
from :mod:`symkl.accuracy.references`, at :data:`DPS` digits:

* univariate and diagonal KL, reverse and Jeffreys, the VAE prior: the closed
  form proved by derivation ``univariate`` in ball arithmetic, summed over
  coordinates in balls;
* gradients: ``sympy.diff`` of that closed form, in ball arithmetic;
* ``kl_mvn``: derivation ``full``'s Cholesky closed form with the
  factorisations done in balls (dense at k = 2, 3; diagonal at k = 16, 64);
  ``grad_kl_mvn``: ``mpmath.diff`` of it along four seeded directions.

Examples
--------
>>> CHECKS["kl_diag[logvar]"].bound, CHECKS["kl_diag[logvar]"].k
(7.0, 8)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np

from symkl import numeric
from symkl.accuracy.references import (
    kl_mvn_reference,
    kl_term,
    kl_term_gradient,
)

__all__ = ["CHECKS", "DPS", "PAIR", "Arrays", "Check"]

Arrays = dict[str, np.ndarray]

#: significant digits of every reference
DPS = 50

#: the argument names of a pair of (diagonal) Gaussians
PAIR = ("mu_p", "s_p", "mu_q", "s_q")
_MVN = ("mu_p", "cov_p", "mu_q", "cov_q")


@dataclass(frozen=True)
class Check:
    """One function on one grid, with its reference and its documented bound.

    ``call(arrays, param)`` evaluates the function on the generated arrays;
    ``truth(arrays, param, row)`` is the reference of one case (a list of
    values for gradients); ``metric`` is ``"ulp"`` (in the output dtype) or
    ``"rel"`` (relative error, normwise for gradients); ``reference`` says in
    words what the truth is.
    """

    name: str
    family: str
    param: str
    metric: str
    bound: float
    call: Callable[[Arrays, str], Any]
    truth: Callable[[Arrays, str, int], Any]
    reference: str = "derived closed form in ball arithmetic (50 digits)"
    dtypes: tuple[str, ...] = ("float64", "float32")
    k: int = 1
    #: cases per dtype are divided by this (slow references: gradients, matrices)
    cost: int = 1
    #: cross-checked against certified quadrature of the definition on a sample
    quadrature: bool = False
    #: the bound in float32 (symkl computes in float64 and rounds once); None: ``bound``
    float32_bound: float | None = 1.0

    def bound_for(self, dtype: str) -> float:
        """The documented bound in ``dtype``."""
        if dtype == "float32" and self.float32_bound is not None:
            return self.float32_bound
        return self.bound


# --------------------------------------------------------------------------------------
# truths


def rows_of(arrays: Arrays, names: tuple[str, ...], row: int) -> list[tuple[float, ...]]:
    """The coordinates of case ``row``: one tuple of Python floats (exact) per coordinate."""
    columns = [np.atleast_1d(arrays[name][row]).astype(np.float64).tolist() for name in names]
    return list(zip(*columns, strict=True))


def kl_truth(arrays: Arrays, param: str, row: int) -> mpmath.mpf:
    """KL of case ``row``: the derived closed form, summed over coordinates in balls."""
    return kl_term(rows_of(arrays, PAIR, row), param, DPS).value(DPS)


def reverse_truth(arrays: Arrays, param: str, row: int) -> mpmath.mpf:
    """KL(q || p) of case ``row``."""
    swapped = [(c, d, a, b) for a, b, c, d in rows_of(arrays, PAIR, row)]
    return kl_term(swapped, param, DPS).value(DPS)


def symmetric_truth(arrays: Arrays, param: str, row: int) -> mpmath.mpf:
    """KL(p || q) + KL(q || p) of case ``row``, both enclosures added as balls."""
    rows = rows_of(arrays, PAIR, row)
    forward = kl_term(rows, param, DPS)
    backward = kl_term([(c, d, a, b) for a, b, c, d in rows], param, DPS)
    with mpmath.workdps(DPS + 10):
        total = forward.mid + backward.mid
    with mpmath.workdps(DPS):
        return +total


def prior_truth(arrays: Arrays, param: str, row: int) -> mpmath.mpf:
    """KL(N(mu, exp(logvar)) || N(0, 1)) summed over the coordinates of case ``row``."""
    rows = [(m, v, 0.0, 0.0) for m, v in rows_of(arrays, ("mu", "logvar"), row)]
    return kl_term(rows, "logvar", DPS).value(DPS)


def gradient_truth(arrays: Arrays, param: str, row: int) -> list[mpmath.mpf]:
    """The derivative of the closed form along each of ``(mu_p, s_p, mu_q, s_q)``."""
    (values,) = rows_of(arrays, PAIR, row)
    return kl_term_gradient(values, param)


def prior_gradient_truth(arrays: Arrays, param: str, row: int) -> list[mpmath.mpf]:
    """The derivative of the prior term along ``mu`` and ``logvar``."""
    ((mu, logvar),) = rows_of(arrays, ("mu", "logvar"), row)
    return kl_term_gradient((mu, logvar, 0.0, 0.0), "logvar")[:2]


def mvn_truth(arrays: Arrays, param: str, row: int) -> mpmath.mpf:
    """``kl_mvn``'s reference: derivation ``full``'s closed form in balls."""
    return kl_mvn_reference(*(arrays[n][row] for n in _MVN), dps=DPS).value(DPS)


def mvn_directions(arrays: Arrays, row: int) -> list[np.ndarray]:
    """Four seeded directions (symmetric for the matrices), one per argument."""
    rng = np.random.default_rng(row)
    directions = []
    for name in _MVN:
        direction = rng.normal(size=arrays[name][row].shape)
        if direction.ndim == 2:
            direction = (direction + direction.T) / 2
        directions.append(direction * float(np.max(np.abs(arrays[name][row])) or 1.0) * 1e-3)
    return directions


def mvn_gradient_truth(arrays: Arrays, param: str, row: int) -> list[mpmath.mpf]:
    """Directional derivatives of the ball reference by ``mpmath.diff``, one per argument."""
    values = [arrays[n][row] for n in _MVN]
    if np.array_equal(values[0], values[2]) and np.array_equal(values[1], values[3]):
        return [mpmath.mpf(0)] * 4  # p = q: the minimum of KL >= 0, where the gradient is 0
    result = []
    for position, direction in enumerate(mvn_directions(arrays, row)):

        def along(t: mpmath.mpf, position: int = position, direction: np.ndarray = direction):
            moved = [np.asarray(v, dtype=object) for v in values]
            step = np.vectorize(lambda v: t * mpmath.mpf(float(v)), otypes=[object])(direction)
            moved[position] = moved[position] + step
            return kl_mvn_reference(*moved, dps=mpmath.mp.dps + 10).mid

        with mpmath.workdps(30):
            result.append(mpmath.diff(along, 0))
    return result


# --------------------------------------------------------------------------------------
# how each function is called


def _pair_call(function: Callable[..., Any], **options: Any) -> Callable[[Arrays, str], Any]:
    def call(arrays: Arrays, param: str) -> Any:
        return function(*(arrays[n] for n in PAIR), **options)

    return call


def _diag_call(function: Callable[..., Any]) -> Callable[[Arrays, str], Any]:
    def call(arrays: Arrays, param: str) -> Any:
        return function(*(arrays[n] for n in PAIR), param=param)

    return call


def _prior_call(function: Callable[..., Any]) -> Callable[[Arrays, str], Any]:
    def call(arrays: Arrays, param: str) -> Any:
        return function(arrays["mu"], arrays["logvar"])

    return call


def _gradient_call(function: Callable[..., Any], **options: Any) -> Callable[[Arrays, str], Any]:
    def call(arrays: Arrays, param: str) -> Any:
        flat = {name: value.ravel() for name, value in arrays.items()}
        names = ("mu", "logvar") if "mu" in flat else PAIR
        parts = function(*(flat[n] for n in names), **options)
        return np.stack([np.broadcast_to(part, flat[names[0]].shape) for part in parts], axis=-1)

    return call


def _mvn_call(arrays: Arrays, param: str) -> Any:
    return numeric.kl_mvn(*(arrays[n] for n in _MVN))


def _mvn_gradient_call(arrays: Arrays, param: str) -> np.ndarray:
    gradient = numeric.grad_kl_mvn(*(arrays[n] for n in _MVN))
    rows = len(arrays["mu_p"])
    out = np.empty((rows, 4))
    for row in range(rows):
        for position, direction in enumerate(mvn_directions(arrays, row)):
            out[row, position] = float(np.sum(gradient[position][row] * direction))
    return out


# --------------------------------------------------------------------------------------
# the table

_GRADIENT = "sympy.diff of the derived closed form, in ball arithmetic"
_MVN_REFERENCE = "derivation full's Cholesky form in ball arithmetic (50 digits)"
#: 4 ULP for one KL, 6 for Jeffreys, plus log2(k) for sums over k coordinates
_SUM8 = float(np.log2(8))


def _table() -> list[Check]:
    n = numeric
    table = [
        Check(name="kl_normal", family="normal", param="std", metric="ulp", bound=4,
              call=_pair_call(n.kl_normal), truth=kl_truth, quadrature=True),
        Check(name="kl_normal_reverse", family="normal", param="std", metric="ulp", bound=4,
              call=_pair_call(n.kl_normal_reverse), truth=reverse_truth),
        Check(name="kl_normal_symmetric", family="normal", param="std", metric="ulp", bound=6,
              call=_pair_call(n.kl_normal_symmetric), truth=symmetric_truth),
    ]  # fmt: skip
    for param in ("std", "var", "logvar"):
        table += [
            Check(name=f"kl_diag[{param}]", family="diag", param=param, metric="ulp",
                  bound=4 + _SUM8, call=_diag_call(n.kl_diag), truth=kl_truth, k=8,
                  quadrature=True),
            Check(name=f"kl_diag_reverse[{param}]", family="diag", param=param, metric="ulp",
                  bound=4 + _SUM8, call=_diag_call(n.kl_diag_reverse), truth=reverse_truth, k=8),
            Check(name=f"kl_diag_symmetric[{param}]", family="diag", param=param, metric="ulp",
                  bound=6 + _SUM8, call=_diag_call(n.kl_diag_symmetric), truth=symmetric_truth,
                  k=8),
            Check(name=f"grad_kl_diag[{param}]", family="normal", param=param, metric="rel",
                  bound=1e-13, call=_gradient_call(n.grad_kl_diag, param=param),
                  truth=gradient_truth, reference=_GRADIENT, dtypes=("float64",), cost=8),
        ]  # fmt: skip
    table += [
        Check(name="kl_std_normal", family="std-normal", param="logvar", metric="ulp",
              bound=4 + _SUM8, call=_prior_call(n.kl_std_normal), truth=prior_truth, k=8),
        Check(name="grad_kl_normal", family="normal", param="std", metric="rel", bound=1e-13,
              call=_gradient_call(n.grad_kl_normal), truth=gradient_truth, reference=_GRADIENT,
              dtypes=("float64",), cost=8),
        Check(name="grad_kl_std_normal", family="std-normal", param="logvar", metric="rel",
              bound=1e-13, call=_gradient_call(n.grad_kl_std_normal), truth=prior_gradient_truth,
              reference=_GRADIENT, dtypes=("float64",), cost=8),
        Check(name="kl_mvn[k=2]", family="mvn", param="cov", metric="rel", bound=1e-12,
              call=_mvn_call, truth=mvn_truth, reference=_MVN_REFERENCE, dtypes=("float64",),
              k=2, cost=4, quadrature=True),
        Check(name="kl_mvn[k=3]", family="mvn", param="cov", metric="rel", bound=1e-12,
              call=_mvn_call, truth=mvn_truth, reference=_MVN_REFERENCE, dtypes=("float64",),
              k=3, cost=4),
        Check(name="kl_mvn[diag,k=16]", family="mvn-diag", param="cov", metric="rel",
              bound=1e-12, call=_mvn_call, truth=mvn_truth, reference=_MVN_REFERENCE,
              dtypes=("float64",), k=16, cost=10, quadrature=True),
        Check(name="kl_mvn[diag,k=64]", family="mvn-diag", param="cov", metric="rel",
              bound=1e-12, call=_mvn_call, truth=mvn_truth, reference=_MVN_REFERENCE,
              dtypes=("float64",), k=64, cost=40, quadrature=True),
        Check(name="grad_kl_mvn[k=2]", family="mvn", param="cov", metric="rel", bound=1e-9,
              call=_mvn_gradient_call, truth=mvn_gradient_truth,
              reference="mpmath.diff of the ball reference along 4 directions",
              dtypes=("float64",), k=2, cost=40),
    ]  # fmt: skip
    return table


#: every public numeric function, by name
CHECKS: dict[str, Check] = {check.name: check for check in _table()}
