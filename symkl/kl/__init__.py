"""The derivation registry: ``symkl.derive(name)`` looks names up here.

Each entry maps a public name to the function that builds its
:class:`~symkl.derivation.Derivation`.  Builders are imported on first use, so
asking for one derivation does not build the others.
"""

from __future__ import annotations

import functools
import importlib

from symkl.derivation import Derivation

__all__ = ["DERIVATIONS", "available_derivations", "derive"]

#: name -> "module:function" building the derivation
DERIVATIONS: dict[str, str] = {
    "univariate": "symkl.kl.univariate:derive_univariate",
    "diagonal": "symkl.kl.diagonal:derive_diagonal",
    "std-normal": "symkl.kl.std_normal:derive_std_normal",
    "fisher": "symkl.kl.fisher:derive_fisher",
    "full": "symkl.kl.full:derive_full",
    "stable": "symkl.kl.stable:derive_stable",
}


def available_derivations() -> tuple[str, ...]:
    """Names accepted by :func:`derive`, in registry order.

    Examples
    --------
    >>> "univariate" in available_derivations()
    True
    """
    return tuple(DERIVATIONS)


@functools.cache
def derive(name: str) -> Derivation:
    """Derive a KL divergence by name, from its integral definition.

    Parameters
    ----------
    name : str
        One of :func:`available_derivations`.

    Returns
    -------
    Derivation
        The chain of steps, its ``closed_form``, its named ``terms`` and
        ``verify()``.  Built once per process and cached.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the names that exist.

    Examples
    --------
    >>> d = derive("univariate")
    >>> [step.label for step in d.steps][:3]
    ['definition', 'log-ratio', 'linearity']
    """
    if not isinstance(name, str) or name not in DERIVATIONS:
        known = ", ".join(repr(n) for n in DERIVATIONS)
        raise ValueError(f"derive: unknown derivation name {name!r}; expected one of: {known}")
    module_name, function_name = DERIVATIONS[name].split(":")
    builder = getattr(importlib.import_module(module_name), function_name)
    return builder()
