"""symkl's accuracy package: certified references, case generators, the check registry, the runner.

* :mod:`symkl.accuracy.ball`: generic certified numerics in ball arithmetic
  (python-flint): exact parameters to balls, evaluation at rising precision,
  SymPy expressions as ball functions, integrals against the normal density
  with rigorous tails.  The one place symkl does certified numerics.
* :mod:`symkl.accuracy.references`: ``kl_quad`` (certified quadrature of the
  definition; ``method="mpmath"`` for the independent mpmath quadrature), the
  derived closed forms in balls, ``kl_mvn``'s references, Monte Carlo.
* :mod:`symkl.accuracy.cases`: seeded generators over orders of magnitude.
* :mod:`symkl.accuracy.registry`: :data:`CHECKS`, one :class:`Check` per public
  numeric function, with its grid, reference and documented bound.
* :mod:`symkl.accuracy.runner`: :func:`run_check`, :func:`run_checks`, ULPs.
* :mod:`symkl.accuracy.user`: a user's function (NumPy, torch or JAX inputs).
* :mod:`symkl.accuracy.peers`: ``torch.distributions`` on the same cases.

Importing the package does not import SymPy (the closed forms load it on
first use).

Examples
--------
>>> result = run_check(CHECKS["kl_normal"], "float64", cases=40, seed=1)
>>> result.passed
True
"""

from symkl.accuracy.ball import Enclosure, PrecisionError
from symkl.accuracy.cases import FAMILIES, generate_cases, mvn_cases, mvn_diagonal_cases
from symkl.accuracy.peers import PeerResult, run_peers
from symkl.accuracy.references import (
    PARAMS,
    QuadratureError,
    kl_closed_form,
    kl_mvn_quad,
    kl_mvn_reference,
    kl_quad,
    kl_quad_enclosure,
    kl_term,
    sigma_from,
)
from symkl.accuracy.registry import CHECKS, DPS, Check
from symkl.accuracy.runner import CheckResult, run_check, run_checks, ulp_distance
from symkl.accuracy.user import FRAMEWORKS, user_check

__all__ = [
    "CHECKS",
    "DPS",
    "FAMILIES",
    "FRAMEWORKS",
    "PARAMS",
    "Check",
    "CheckResult",
    "Enclosure",
    "PeerResult",
    "PrecisionError",
    "QuadratureError",
    "generate_cases",
    "kl_closed_form",
    "kl_mvn_quad",
    "kl_mvn_reference",
    "kl_quad",
    "kl_quad_enclosure",
    "kl_term",
    "mvn_cases",
    "mvn_diagonal_cases",
    "run_check",
    "run_checks",
    "run_peers",
    "sigma_from",
    "ulp_distance",
    "user_check",
]
