"""The public functions route by array type without importing the frameworks."""

from __future__ import annotations

import importlib
import subprocess
import sys

import numpy as np
import pytest

import symkl
from symkl import numeric
from symkl._dispatch import framework_of

DISPATCHED = [
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
]


def _modules_after(code: str) -> set[str]:
    run = subprocess.run(
        [sys.executable, "-c", code + "; import sys; print(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return set(run.stdout.split())


def test_numpy_calls_import_neither_torch_nor_jax():
    loaded = _modules_after(
        "import numpy as np, symkl; symkl.kl_diag(np.zeros(3), np.ones(3), 0.0, 1.0); "
        "symkl.kl_std_normal([0.5], [0.0]); symkl.grad_kl_normal(0.0, 1.0, 1.0, 2.0)"
    )
    assert not {"torch", "jax", "jaxlib", "sympy"} & loaded


@pytest.mark.parametrize("name", DISPATCHED)
def test_every_numeric_function_dispatches(name):
    public = getattr(symkl, name)
    assert public is getattr(numeric, name)
    assert callable(public.__wrapped__)  # the NumPy implementation
    from symkl.frameworks import jax_backend, torch_backend

    assert callable(getattr(torch_backend, name))
    assert callable(getattr(jax_backend, name))
    assert name in torch_backend.__all__ and name in jax_backend.__all__


def test_framework_detection():
    torch = pytest.importorskip("torch")
    jnp = pytest.importorskip("jax.numpy")
    assert framework_of([np.zeros(2), 1.0, [1.0]]) == "numpy"
    assert framework_of([np.zeros(2), torch.zeros(2)]) == "torch"
    assert framework_of([torch.nn.Parameter(torch.zeros(2))]) == "torch"
    assert framework_of([1.0, jnp.zeros(2)]) == "jax"
    with pytest.raises(TypeError, match="mix PyTorch tensors and JAX arrays"):
        framework_of([torch.zeros(2), jnp.zeros(2)])


def test_keyword_tensors_dispatch_too():
    torch = pytest.importorskip("torch")
    result = symkl.kl_std_normal(mu=torch.tensor([0.5]), logvar=torch.tensor([0.0]))
    assert isinstance(result, torch.Tensor) and float(result) == 0.125


def test_numpy_results_unchanged():
    assert float(symkl.kl_normal(0.0, 1.0, 1.0, 2.0)) == 0.4431471805599453
    assert isinstance(symkl.kl_diag(np.zeros((2, 3)), 1.0, 0.0, 2.0), np.ndarray)


def test_every_backend_defines_every_dispatched_function():
    """One list of dispatched names: numeric's public functions, each defined by every backend."""
    import symkl.numeric as numeric
    from symkl._dispatch import DISPATCHED

    assert set(DISPATCHED) == set(numeric.__all__) - {"CovarianceError", "backend"}
    for name in ("torch", "jax"):
        pytest.importorskip(name)
        backend = importlib.import_module(f"symkl.frameworks.{name}_backend")
        assert backend.__all__ == list(DISPATCHED)
        missing = [n for n in DISPATCHED if not callable(getattr(backend, n, None))]
        assert not missing, (name, missing)
