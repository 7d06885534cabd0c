"""Exported modules keep the input dtype (halves rounded once) and validate like symkl."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import symkl
from symkl.export import write_export


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    directory = tmp_path_factory.mktemp("exported-dtypes")
    loaded = {}
    jax = pytest.importorskip("jax")
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)  # the JAX export builds a float64 table
    for target in ("numpy", "torch", "jax"):
        path = write_export(target, directory / f"kl_{target}_dtypes.py")
        spec = importlib.util.spec_from_file_location(f"kl_{target}_dtypes", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        loaded[target] = module
    jax.config.update("jax_enable_x64", previous)
    return loaded


def _cases(n=300, seed=5):
    rng = np.random.default_rng(seed)
    mu = rng.standard_normal((n, 3)) * 0.3
    logvar = rng.standard_normal((n, 3)) * 10.0 ** rng.uniform(-4, 0, (n, 1))
    return mu, logvar


def test_docstrings_say_dtype_and_validation(modules):
    for module in modules.values():
        assert "returned in the inputs' dtype" in module.__doc__
        assert "validate=True" in module.__doc__ and "validate=False" in module.__doc__


def test_numpy_export_dtypes(modules):
    module = modules["numpy"]
    mu, logvar = _cases()
    for dtype in (np.float16, np.float32, np.float64):
        m, v = mu.astype(dtype), logvar.astype(dtype)
        got = module.kl_std_normal(m, v)
        assert got.dtype == dtype
        # symkl's own functions round float64 once to float32/64; for float16 compare
        # with the torch backend's correctly rounded result (tested against mpmath)
        if dtype == np.float16:
            torch = pytest.importorskip("torch")
            want = symkl.kl_std_normal(torch.from_numpy(m), torch.from_numpy(v)).numpy()
        else:
            want = symkl.kl_std_normal(m, v)
        if dtype == np.float64:  # the export's float64 arithmetic differs by a few ULP
            np.testing.assert_allclose(got, want, rtol=1e-15)
        else:
            np.testing.assert_array_equal(got, want)
        assert all(g.dtype == dtype for g in module.grad_kl_std_normal(m, v))
    assert module.kl_normal(0.0, 1.0, 1.0, 2.0).dtype == np.float64


def test_torch_export_dtypes(modules):
    torch = pytest.importorskip("torch")
    module = modules["torch"]
    mu, logvar = _cases()
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        m, v = torch.from_numpy(mu).to(dtype), torch.from_numpy(logvar).to(dtype)
        got = module.kl_std_normal(m, v)
        assert got.dtype == dtype
        want = symkl.kl_std_normal(m, v)  # symkl's torch backend: correctly rounded
        if dtype == torch.float64:  # the export's float64 arithmetic differs by a few ULP
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-15)
        else:
            assert torch.equal(got, want), dtype
        assert module.kl_normal(*(t[:, 0] for t in (m, v.abs() + 1, m, v.abs() + 2))).dtype == dtype


def test_jax_export_dtypes(modules):
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        module = modules["jax"]
        mu, logvar = _cases()
        for dtype in (jnp.bfloat16, jnp.float16, jnp.float32):
            m, v = jnp.asarray(mu, dtype=dtype), jnp.asarray(logvar, dtype=dtype)
            got = module.kl_std_normal(m, v)
            assert got.dtype == dtype
            want = symkl.kl_std_normal(m, v)
            # XLA may reassociate the float64 arithmetic (docs/export.md), so a result
            # next to a rounding boundary can land one half-ULP step away
            wrong = np.asarray(got != want)
            assert wrong.mean() < 0.02, (dtype, int(wrong.sum()))
    finally:
        jax.config.update("jax_enable_x64", previous)


@pytest.mark.parametrize("target", ["numpy", "torch", "jax"])
def test_exports_validate_with_symkl_messages(modules, target):
    if target != "numpy":
        pytest.importorskip(target)
    module = modules[target]
    logvar = np.zeros((2, 3))
    logvar[1, 2] = np.nan
    with pytest.raises(ValueError) as symkl_error:
        symkl.kl_std_normal(np.zeros((2, 3)), logvar)
    convert = np.asarray
    if target == "torch":
        import torch

        convert = torch.from_numpy
    elif target == "jax":
        import jax

        previous = jax.config.jax_enable_x64
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        convert = jnp.asarray
    try:
        with pytest.raises(ValueError) as export_error:
            module.kl_std_normal(convert(np.zeros((2, 3))), convert(logvar))
        assert str(export_error.value) == str(symkl_error.value)
        with pytest.raises(ValueError, match=r"'s_q' \(param='var'\) must be finite and > 0"):
            module.kl_diag(convert(np.zeros(2)), convert(np.ones(2)), convert(np.zeros(2)),
                           convert(np.array([1.0, -1.0])), param="var")
        with pytest.raises(ValueError, match=r"'sigma_p' \(param='std'\).*got 0.0 at index \(1,\)"):
            module.grad_kl_normal(convert(np.zeros(2)), convert(np.array([1.0, 0.0])), 0.0, 1.0)
        skipped = module.kl_std_normal(convert(np.zeros((2, 3))), convert(logvar), validate=False)
        assert np.isnan(np.asarray(skipped)[1])
    finally:
        if target == "jax":
            jax.config.update("jax_enable_x64", previous)


def test_numpy_export_overflows_to_inf_without_a_warning(modules):
    import warnings

    module = modules["numpy"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for dtype in (np.float16, np.float32):
            got = module.kl_std_normal(np.zeros(1, dtype), np.asarray([200.0], dtype))
            assert got.dtype == dtype and np.isinf(got).all()
