"""symkl: KL divergences between Gaussians, derived with SymPy, proved, rendered and computed.

Derivation (needs SymPy, imported lazily on first use)::

    >>> import symkl
    >>> d = symkl.derive("univariate")
    >>> d.verify().proved
    True

Numeric functions (NumPy only, SymPy is never imported for them)::

    >>> float(symkl.kl_normal(0.0, 1.0, 1.0, 2.0))
    0.4431471805599453

``import symkl`` itself does not import SymPy: the derivation API is loaded
on first attribute access.
"""

from __future__ import annotations

import importlib
from typing import Any

from symkl._dispatch import DISPATCHED

__version__ = "0.1.0"

# public name -> module that defines it (loaded on first access)
_LAZY = {
    "derive": "symkl.kl",
    "available_derivations": "symkl.kl",
    "check_step": "symkl.derivation",
    "Derivation": "symkl.derivation",
    "Step": "symkl.derivation",
    "StepCheck": "symkl.derivation",
    "VerificationReport": "symkl.derivation",
    "reference": "symkl.reference",
    # numeric functions (NumPy only; never import SymPy)
    **{
        name: "symkl.numeric"
        for name in ("backend", "CovarianceError", *DISPATCHED)
    },
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        value = module if module.__name__.endswith("." + name) else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'symkl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
