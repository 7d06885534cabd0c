"""Opt-in registration of symkl's KL divergences with ``torch.distributions.kl_divergence``.

After :func:`register_kl`, ``kl_divergence`` uses symkl (accurate near KL = 0,
validated, with the proved gradients) for

* ``Normal`` - ``Normal``,
* ``Independent(Normal)`` - ``Independent(Normal)``,
* ``MultivariateNormal`` - ``MultivariateNormal``,
* ``Independent(Normal)`` - ``MultivariateNormal`` and back (a pair PyTorch
  itself lacks, pytorch/pytorch#32406).

:func:`unregister_kl` puts back what was registered before (PyTorch's own
functions); ``register_kl`` also works as a context manager.

Examples
--------
>>> import torch
>>> from torch.distributions import Normal, kl_divergence
>>> import symkl.torch
>>> zero, one = torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
>>> with symkl.torch.register_kl():
...     print(f"{float(kl_divergence(Normal(zero, one), Normal(zero, one + 1e-12))):.8g}")
1.0001778e-24
>>> float(kl_divergence(Normal(zero, one), Normal(zero, one + 1e-12))) == 1.0001778e-24
False
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.distributions import Independent, MultivariateNormal, Normal
from torch.distributions import kl as torch_kl

import symkl

__all__ = ["PAIRS", "Registration", "register_kl", "unregister_kl"]

_MISSING = object()
#: the registrations of the last register_kl() still in force: pair -> what it replaced
_REPLACED: dict[tuple[type, type], Any] = {}


def _validate(p: Any, q: Any) -> bool:
    """Check the parameters when either distribution validates its arguments (as PyTorch does)."""
    return bool(getattr(p, "_validate_args", False) or getattr(q, "_validate_args", False))


def _independent_normal(d: Independent, who: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Means and standard deviations of an Independent(Normal), event axes flattened into one."""
    base = d.base_dist
    if not isinstance(base, Normal):
        raise NotImplementedError(f"{who}: Independent of {type(base).__name__}, not Normal")
    loc, scale = torch.broadcast_tensors(base.loc, base.scale)
    events = d.reinterpreted_batch_ndims
    batch = loc.shape[: loc.ndim - events]
    # the event size written out: reshape(..., -1) is ambiguous for an empty batch
    shape = (*batch, math.prod(loc.shape[loc.ndim - events :]))
    return loc.reshape(shape), scale.reshape(shape)


def _covariance(d: MultivariateNormal) -> torch.Tensor:
    """The covariance L L^T in float64 (symmetric to rounding), back in the distribution's dtype.

    Only L's lower triangle counts, as in PyTorch's own KL and ``log_prob`` (triangular
    solves): entries above the diagonal of a ``scale_tril`` parameter get no gradient.
    """
    lower = d.scale_tril.tril().to(torch.float64)
    covariance = lower @ lower.mT
    return (0.5 * (covariance + covariance.mT)).to(d.loc.dtype)


def _diagonal_covariance(scale: torch.Tensor) -> torch.Tensor:
    return torch.diag_embed(scale * scale)


def kl_normal_normal(p: Normal, q: Normal) -> torch.Tensor:
    """KL(p || q) for two ``Normal``: :func:`symkl.kl_normal`, elementwise over the batch."""
    return symkl.kl_normal(p.loc, p.scale, q.loc, q.scale, validate=_validate(p, q))


def kl_independent_independent(p: Independent, q: Independent) -> torch.Tensor:
    """KL(p || q) for two ``Independent(Normal)``: :func:`symkl.kl_diag` over the event axes."""
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise NotImplementedError(
            "kl_divergence: Independent distributions with different reinterpreted_batch_ndims "
            f"({p.reinterpreted_batch_ndims} and {q.reinterpreted_batch_ndims})"
        )
    if not (isinstance(p.base_dist, Normal) and isinstance(q.base_dist, Normal)):
        return _TORCH_INDEPENDENT(p, q)
    mu_p, sigma_p = _independent_normal(p, "kl_divergence")
    mu_q, sigma_q = _independent_normal(q, "kl_divergence")
    return symkl.kl_diag(
        mu_p, sigma_p, mu_q, sigma_q, param="std", axis=-1, validate=_validate(p, q)
    )


def kl_mvn_mvn(p: MultivariateNormal, q: MultivariateNormal) -> torch.Tensor:
    """KL(p || q) for two ``MultivariateNormal``: :func:`symkl.kl_mvn`."""
    return symkl.kl_mvn(p.loc, _covariance(p), q.loc, _covariance(q))


def _event_check(p: Any, q: Any) -> None:
    if p.event_shape != q.event_shape:
        raise ValueError(
            f"kl_divergence: event shapes differ: {tuple(p.event_shape)} and {tuple(q.event_shape)}"
        )


def kl_independent_mvn(p: Independent, q: MultivariateNormal) -> torch.Tensor:
    """KL(p || q), p an ``Independent(Normal)`` with one event axis: :func:`symkl.kl_mvn`."""
    if not isinstance(p.base_dist, Normal):
        raise NotImplementedError(
            "kl_divergence: Independent of a non-Normal and MultivariateNormal"
        )
    _event_check(p, q)
    mu_p, sigma_p = _independent_normal(p, "kl_divergence")
    return symkl.kl_mvn(mu_p, _diagonal_covariance(sigma_p), q.loc, _covariance(q))


def kl_mvn_independent(p: MultivariateNormal, q: Independent) -> torch.Tensor:
    """KL(p || q), q an ``Independent(Normal)`` with one event axis: :func:`symkl.kl_mvn`."""
    if not isinstance(q.base_dist, Normal):
        raise NotImplementedError(
            "kl_divergence: MultivariateNormal and Independent of a non-Normal"
        )
    _event_check(p, q)
    mu_q, sigma_q = _independent_normal(q, "kl_divergence")
    return symkl.kl_mvn(p.loc, _covariance(p), mu_q, _diagonal_covariance(sigma_q))


def _TORCH_INDEPENDENT(p: Independent, q: Independent) -> torch.Tensor:
    """PyTorch's own Independent-Independent KL, for bases other than Normal."""
    previous = _REPLACED.get((Independent, Independent), _MISSING)
    if previous is _MISSING or previous is None:
        raise NotImplementedError(
            f"kl_divergence: no KL registered for Independent({type(p.base_dist).__name__}) and "
            f"Independent({type(q.base_dist).__name__})"
        )
    return previous(p, q)


#: the pairs symkl registers, and its function for each
PAIRS: dict[tuple[type, type], Callable[[Any, Any], torch.Tensor]] = {
    (Normal, Normal): kl_normal_normal,
    (Independent, Independent): kl_independent_independent,
    (MultivariateNormal, MultivariateNormal): kl_mvn_mvn,
    (Independent, MultivariateNormal): kl_independent_mvn,
    (MultivariateNormal, Independent): kl_mvn_independent,
}


#: how many register_kl() calls are not yet undone (unregister_kl() sets it to 0)
_ACTIVE = 0


class Registration:
    """What :func:`register_kl` returns: ``undo()`` it, or use it as a context manager.

    Registrations nest: undoing one (leaving an inner ``with register_kl():``
    block) keeps symkl registered while an outer one is still in force.
    """

    def __init__(self) -> None:
        self._undone = False

    def __enter__(self) -> Registration:
        return self

    def __exit__(self, *exc: object) -> None:
        self.undo()

    def undo(self) -> None:
        """Undo this registration; PyTorch's functions are back once none is left in force.

        Undoing the same registration twice does nothing the second time.
        """
        global _ACTIVE
        if self._undone:
            return
        self._undone = True
        if _ACTIVE > 0:
            _ACTIVE -= 1
        if _ACTIVE == 0:
            unregister_kl()


def register_kl() -> Registration:
    """Make ``torch.distributions.kl_divergence`` use symkl for the pairs in :data:`PAIRS`.

    Registering twice is harmless; :func:`unregister_kl` restores PyTorch's
    own functions at once, leaving a ``with`` block (or
    :meth:`Registration.undo`) restores them when no other registration is in
    force (so a library's ``with register_kl():`` inside yours does not switch
    symkl off for you).

    Examples
    --------
    >>> import torch
    >>> from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence
    >>> p = Independent(Normal(torch.zeros(2), torch.ones(2)), 1)
    >>> q = MultivariateNormal(torch.zeros(2), torch.eye(2))
    >>> with register_kl():
    ...     kl_divergence(p, q)
    tensor(0.)
    """
    for pair, function in PAIRS.items():
        current = torch_kl._KL_REGISTRY.get(pair, None)
        if current is function:
            continue
        _REPLACED.setdefault(pair, current)
        torch_kl._KL_REGISTRY[pair] = function
    torch_kl._KL_MEMOIZE.clear()
    global _ACTIVE
    _ACTIVE += 1
    return Registration()


def unregister_kl() -> None:
    """Undo :func:`register_kl`: PyTorch's own functions are used again (none where it had none).

    Examples
    --------
    >>> unregister_kl()  # harmless when nothing is registered
    """
    global _ACTIVE
    _ACTIVE = 0
    for pair, previous in list(_REPLACED.items()):
        if torch_kl._KL_REGISTRY.get(pair) is PAIRS[pair]:
            if previous is None:
                del torch_kl._KL_REGISTRY[pair]
            else:
                torch_kl._KL_REGISTRY[pair] = previous
        del _REPLACED[pair]
    torch_kl._KL_MEMOIZE.clear()
