"""Route the public numeric functions by array type: NumPy, PyTorch or JAX.

The type is read from the argument's class (its module name), so neither
torch nor jax is imported until an argument is one of their arrays: ``import
symkl`` stays light.  A PyTorch tensor anywhere among the arguments sends the
call to :mod:`symkl.frameworks.torch_backend`, a JAX array (or tracer) to
:mod:`symkl.frameworks.jax_backend`; anything else (NumPy arrays, Python
numbers, lists, Dask arrays) stays on the NumPy path.

Examples
--------
>>> import numpy as np
>>> framework_of((np.zeros(2), 1.0))
'numpy'
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

__all__ = ["DISPATCHED", "dispatched", "framework_of"]

#: the public numeric functions that dispatch on the array type; every framework
#: backend defines each of them (one list, read by the backends' ``__all__``)
DISPATCHED = (
    "grad_kl_diag",
    "grad_kl_mvn",
    "grad_kl_normal",
    "grad_kl_std_normal",
    "kl_diag",
    "kl_diag_reverse",
    "kl_diag_symmetric",
    "kl_mvn",
    "kl_normal",
    "kl_normal_reverse",
    "kl_normal_symmetric",
    "kl_std_normal",
)

_PLAIN = (float, int, bool, list, tuple, type(None), str)
_ROOTS = {"torch": "torch", "jax": "jax", "jaxlib": "jax"}

Function = TypeVar("Function", bound=Callable[..., Any])


def _framework_of_value(value: Any) -> str:
    kind = type(value)
    if kind in _PLAIN:
        return "numpy"
    for cls in kind.__mro__:
        found = _ROOTS.get(cls.__module__.partition(".")[0])
        if found is not None:
            return found
    return "numpy"


def framework_of(values: Iterable[Any]) -> str:
    """``"torch"``, ``"jax"`` or ``"numpy"``: where a call with these arguments goes.

    Raises
    ------
    TypeError
        When PyTorch tensors and JAX arrays are mixed in one call.

    Examples
    --------
    >>> framework_of([1.0, [2.0, 3.0]])
    'numpy'
    """
    found = {_framework_of_value(value) for value in values} - {"numpy"}
    if len(found) > 1:
        raise TypeError(
            "symkl: arguments mix PyTorch tensors and JAX arrays; convert them to one framework"
        )
    return found.pop() if found else "numpy"


def _backend_function(framework: str, name: str) -> Callable[..., Any]:
    """``symkl.frameworks.<framework>_backend.<name>`` (imported on first use)."""
    if framework == "torch":
        from symkl.frameworks import torch_backend as backend
    else:
        from symkl.frameworks import jax_backend as backend
    return getattr(backend, name)


def dispatched(function: Function) -> Function:
    """Decorate a NumPy implementation so tensors go to the framework backend of the same name.

    The backend function (``symkl.frameworks.<framework>_backend.<name>``) takes
    the same arguments; the NumPy implementation stays reachable as
    ``__wrapped__``.
    """
    name = function.__name__
    backends: dict[str, Callable[..., Any]] = {}  # framework -> its function, once imported

    @functools.wraps(function)
    def route(*args: Any, **kwargs: Any) -> Any:
        framework = framework_of((*args, *kwargs.values()))
        if framework == "numpy":
            return function(*args, **kwargs)
        backend = backends.get(framework)
        if backend is None:
            backend = backends[framework] = _backend_function(framework, name)
        return backend(*args, **kwargs)

    return route  # type: ignore[return-value]
