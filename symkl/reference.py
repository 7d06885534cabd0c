"""High-precision references, kept importable here: they live in :mod:`symkl.accuracy.references`.

``kl_quad`` integrates the definition in ball arithmetic and certifies its
digits; ``kl_closed_form`` evaluates the derived closed form in balls;
``kl_monte_carlo`` estimates by sampling.  Importing this module does not
import SymPy.

Examples
--------
>>> import mpmath
>>> mpmath.nstr(kl_quad("0", "1", "1", "2", dps=30), 25)
'0.4431471805599453094172321'
"""

from __future__ import annotations

from symkl.accuracy.ball import Enclosure, PrecisionError, to_mpf
from symkl.accuracy.references import (
    MonteCarloEstimate,
    QuadratureError,
    kl_closed_form,
    kl_closed_form_enclosure,
    kl_monte_carlo,
    kl_quad,
    kl_quad_enclosure,
)

__all__ = [
    "Enclosure",
    "MonteCarloEstimate",
    "PrecisionError",
    "QuadratureError",
    "kl_closed_form",
    "kl_closed_form_enclosure",
    "kl_monte_carlo",
    "kl_quad",
    "kl_quad_enclosure",
    "to_mpf",
]
