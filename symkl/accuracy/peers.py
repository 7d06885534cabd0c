"""Peers: ``torch.distributions.kl_divergence`` on the same cases, against the same truths.

Examples
--------
>>> results = run_peers(cases=40)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import mpmath
import numpy as np

from symkl.accuracy.registry import CHECKS, DPS, Arrays
from symkl.accuracy.runner import cases_for, copy_cases, error_of

__all__ = ["PeerResult", "run_peers"]


def _mp(value: Any) -> mpmath.mpf:
    return mpmath.mpf(float(value))


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
            arrays = cases_for(check, dtype, count, seed)
            with np.errstate(all="ignore"):
                mine = np.asarray(check.call(copy_cases(arrays), check.param))
            try:
                theirs = _torch_call(torch, distribution, copy_cases(arrays), check.param)
            except (ValueError, RuntimeError) as error:  # torch rejects some valid input
                theirs = np.full(count, np.nan)
                distribution += f" (torch raised {type(error).__name__})"
            truths = [check.truth(arrays, check.param, row) for row in range(count)]
            mine_errors = [error_of(check, mine[r], truths[r], dtype) for r in range(count)]
            their_errors = [error_of(check, theirs[r], truths[r], dtype) for r in range(count)]
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
