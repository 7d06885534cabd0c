"""Arrays beyond NumPy: Dask stays lazy; CPU tensors go through ``__array__``."""

from __future__ import annotations

import numpy as np
import pytest

import symkl


def _inputs(rows=1000, k=16, seed=0):
    rng = np.random.default_rng(seed)
    return [
        rng.normal(size=(rows, k)),
        rng.uniform(0.5, 2, size=(rows, k)),
        rng.normal(size=(rows, k)),
        rng.uniform(0.5, 2, size=(rows, k)),
    ]


@pytest.mark.parametrize("param", ["std", "var", "logvar"])
def test_kl_diag_on_chunked_dask_arrays_is_lazy_and_exact(param):
    da = pytest.importorskip("dask.array")
    arrays = _inputs()
    if param == "logvar":
        arrays[1], arrays[3] = np.log(arrays[1]), np.log(arrays[3])
    calls = []

    def recorded(block):
        calls.append(block.shape)
        return block

    # 20 chunks each; every block read is recorded
    chunked = [da.from_array(a, chunks=(100, 8)).map_blocks(recorded) for a in arrays]
    result = symkl.kl_diag(*chunked, param=param)
    assert isinstance(result, da.Array) and result.shape == (1000,)
    assert result.numblocks == (10,)
    calls.clear()  # dask may call the function once on a dummy block to learn its meta
    result = symkl.kl_diag(*chunked, param=param)
    assert calls == []  # nothing computed yet
    np.testing.assert_array_equal(result.compute(), symkl.kl_diag(*arrays, param=param))
    assert len(calls) == 4 * 20


def test_dask_other_axis_float32_and_errors_at_compute():
    da = pytest.importorskip("dask.array")
    arrays = [a.astype(np.float32) for a in _inputs(200, 6)]
    chunked = [da.from_array(a, chunks=(50, 3)) for a in arrays]
    result = symkl.kl_diag(*chunked, param="var", axis=0)
    assert result.dtype == np.float32 and result.shape == (6,)
    np.testing.assert_array_equal(result.compute(), symkl.kl_diag(*arrays, param="var", axis=0))
    bad = arrays[1].copy()
    bad[123, 4] = -1.0
    lazy = symkl.kl_diag(chunked[0], da.from_array(bad, chunks=(50, 3)), *chunked[2:])
    with pytest.raises(ValueError, match="s_p"):
        lazy.compute()


def test_cpu_torch_tensors_are_accepted_through_array_protocol():
    torch = pytest.importorskip("torch")
    arrays = _inputs(10, 4)
    got = symkl.kl_diag(*(torch.from_numpy(a) for a in arrays), param="var")
    np.testing.assert_array_equal(got, symkl.kl_diag(*arrays, param="var"))
