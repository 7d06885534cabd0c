"""``symkl check``'s engine, kept importable here: it lives in :mod:`symkl.accuracy`.

Examples
--------
>>> result = run_check(CHECKS["kl_normal"], "float64", cases=40, seed=1)
>>> result.passed
True
"""

from __future__ import annotations

from typing import Any

from symkl.accuracy.cases import FAMILIES, mvn_cases
from symkl.accuracy.peers import PeerResult, run_peers
from symkl.accuracy.references import PARAMS, kl_mvn_quad, kl_mvn_reference
from symkl.accuracy.registry import CHECKS, Check
from symkl.accuracy.runner import CheckResult, run_check, run_checks
from symkl.accuracy.user import array_converter, user_check

__all__ = [
    "CHECKS",
    "FAMILIES",
    "PARAMS",
    "Check",
    "CheckResult",
    "PeerResult",
    "array_converter",
    "mvn_cases",
    "mvn_quad",
    "mvn_reference",
    "run_check",
    "run_checks",
    "run_peers",
    "user_check",
]


def mvn_reference(mu_p: Any, cov_p: Any, mu_q: Any, cov_q: Any) -> Any:
    """The 50-digit ``kl_mvn`` reference as an ``mpmath.mpf`` (see ``kl_mvn_reference``)."""
    return kl_mvn_reference(mu_p, cov_p, mu_q, cov_q).value(50)


def mvn_quad(mu_p: Any, cov_p: Any, mu_q: Any, cov_q: Any, dps: int = 15) -> Any:
    """Certified 2-D quadrature at k = 2 as an ``mpmath.mpf`` (see ``kl_mvn_quad``)."""
    return kl_mvn_quad(mu_p, cov_p, mu_q, cov_q, dps=dps).value(dps)
