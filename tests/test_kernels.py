"""The vectorised C kernels for var/std: their facts, range split, blocks and bits."""

from __future__ import annotations

import ctypes
import itertools
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import symkl
from symkl import derive
from symkl.derivation import check_step
from symkl.harness import generate_cases, reference, ulp_distance
from symkl.kl.stable import _prove_with_functions_expanded, log1pmx

SOURCE = Path(symkl.__file__).with_name("_kernels.c")


def _fact(label: str):
    return next(f for f in derive("stable").facts if f.label == label)


@pytest.mark.parametrize(
    ("label", "wrong"),
    [
        # log q = e log 2 + atanh s: the factor 2 of atanh dropped
        ("log-split", lambda e, m, r: e * sp.log(2) + sp.atanh((m - 1) / (m + 1))),
        # the exponent's log 2 counted with the wrong sign
        ("log-split", lambda e, m, r: -e * sp.log(2) + 2 * sp.atanh((m - 1) / (m + 1))),
        # std near each other with 2 (the var factor) instead of 4
        (
            "std-near",
            lambda e, m, r: (
                (r - 1) * ((r - 1) / (r + 1)) * (3 + r)
                - 2 * (sp.atanh((r - 1) / (r + 1)) - (r - 1) / (r + 1))
            ),
        ),
    ],
)
def test_wrong_kernel_identities_are_rejected(label, wrong):
    fact = _fact(label)
    e, m, r = (
        sp.Symbol("e", real=True),
        sp.Symbol("m", positive=True),
        sp.Symbol("r", positive=True),
    )
    result = check_step(fact.lhs, wrong(e, m, r), prove=_prove_with_functions_expanded, points=3)
    assert not result.symbolic.ok and not result.numeric.ok


def test_kernel_identities_are_proved_facts():
    report = derive("stable").verify()
    for label in ("log-split", "std-near", "log1pmx-atanh", "atanh-series"):
        assert report.check(label).ok, label
    rho = sp.Symbol("r", positive=True) - 1
    assert _fact("std-near").lhs == -log1pmx(rho * (2 + rho))


def _worst_ulp(param: str, arrays: dict[str, np.ndarray]) -> float:
    got = symkl.kl_diag(*(arrays[n] for n in ("mu_p", "s_p", "mu_q", "s_q")), param=param)
    truth = reference("diag", param, arrays)
    dtype = arrays["s_p"].dtype
    return max(ulp_distance(g, t, dtype) for g, t in zip(np.ravel(got), truth, strict=True))


@pytest.mark.parametrize("param", ["var", "std"])
def test_scales_outside_the_fast_range_take_the_scalar_kernel_and_stay_accurate(param):
    """Scales near 2^±500 and beyond, mixed in one block with ordinary ones."""
    rng = np.random.default_rng(3)
    cases, k = 60, 8
    exponents = rng.choice([-1020, -600, -501, -499, -300, 0, 300, 499, 501, 600, 1000], (cases, k))
    s_q = np.ldexp(rng.uniform(1, 2, (cases, k)), exponents)
    ratio = np.where(rng.random((cases, k)) < 0.5, 1 + rng.uniform(-1e-6, 1e-6, (cases, k)), 2.5)
    s_p = s_q * ratio
    finite = np.isfinite(s_p) & (s_p > 0)
    s_p = np.where(finite, s_p, s_q)
    scale = np.sqrt(s_q) if param == "var" else s_q
    mu_p = rng.normal(size=(cases, k)) * scale
    mu_q = mu_p + np.where(rng.random((cases, k)) < 0.5, 0.0, 1e-3) * scale
    arrays = {"mu_p": mu_p, "s_p": s_p, "mu_q": mu_q, "s_q": s_q}
    assert _worst_ulp(param, arrays) <= 4 + math.log2(k)


@pytest.mark.parametrize("k", [1, 3, 4, 5, 63, 64, 65, 255, 256, 257, 1000])
def test_a_row_does_not_depend_on_its_neighbours_or_on_k_blocking(k):
    """Short rows share a block and long rows span several: each row's bits are its own."""
    arrays = generate_cases("diag", "var", "float64", 40, seed=k, k=k)
    columns = [arrays[n] for n in ("mu_p", "s_p", "mu_q", "s_q")]
    together = symkl.kl_diag(*columns)
    alone = np.array([symkl.kl_diag(*(c[i] for c in columns)) for i in range(40)])
    assert np.array_equal(together, alone)
    truth = reference("diag", "var", arrays)
    worst = max(
        ulp_distance(g, t, np.dtype("float64")) for g, t in zip(together, truth, strict=True)
    )
    assert worst <= 4 + math.log2(k)


@pytest.mark.parametrize("param", ["var", "std", "logvar"])
@pytest.mark.parametrize("k", [4, 7, 16, 256, 512, 700])
def test_rows_read_in_place_and_gathered_rows_give_the_same_bits(param, k):
    """float64 blocks of one long row with unit column strides are read in place, the
    others are copied (short rows, strided, broadcast, odd k): the same arithmetic, so
    the same bits."""
    kind = "std" if param == "std" else param
    arrays = generate_cases("diag", kind, "float64", 24, seed=k, k=k)
    columns = [np.ascontiguousarray(arrays[n]) for n in ("mu_p", "s_p", "mu_q", "s_q")]
    in_place = symkl.kl_diag(*columns, param=param)
    strided = [np.asfortranarray(c) for c in columns]  # column stride != 1: gathered
    assert np.array_equal(in_place, symkl.kl_diag(*strided, param=param))
    # one row broadcast over the batch: row stride 0
    row = [c[:1] for c in columns]
    assert np.array_equal(
        symkl.kl_diag(
            *(np.broadcast_to(r, c.shape) for r, c in zip(row, columns, strict=True)), param=param
        ),
        np.full(24, in_place[0]),
    )
    normal = symkl.kl_std_normal(columns[0], columns[1] if param == "logvar" else columns[0])
    normal_strided = symkl.kl_std_normal(
        strided[0], strided[1] if param == "logvar" else strided[0]
    )
    assert np.array_equal(normal, normal_strided)


def test_invalid_input_in_a_later_block_is_reported_at_its_index():
    mu = np.zeros((3, 600))
    var = np.ones((3, 600))
    bad = var.copy()
    bad[2, 517] = -1.0
    with pytest.raises(ValueError, match=r"s_p.*\(2, 517\)"):
        symkl.kl_diag(mu, bad, mu, var)


def _compile(tmp_path: Path, name: str, flags: list[str]) -> ctypes.CDLL:
    compiler = shutil.which("gcc")
    library = tmp_path / f"{name}.so"
    command = [compiler, "-O3", "-std=c99", "-shared", "-fPIC", "-fno-math-errno"]
    command += ["-fno-trapping-math", "-ffp-contract=off", *flags]
    subprocess.run([*command, "-o", str(library), str(SOURCE), "-lm"], check=True)
    return ctypes.CDLL(str(library))


def _run(library: ctypes.CDLL, param: str, arrays: dict[str, np.ndarray]) -> np.ndarray:
    names = ("mu", "logvar") if param == "std_normal" else ("mu_p", "s_p", "mu_q", "s_q")
    dtype = arrays[names[0]].dtype
    suffix = "f32" if dtype == np.float32 else "f64"
    kernel = getattr(library, f"symkl_kl_{param}_{suffix}")
    kernel.restype = ctypes.c_int64
    rows, k = arrays[names[0]].shape
    arguments: list = []
    for name in names:
        arguments += [
            ctypes.c_void_p(arrays[name].ctypes.data),
            ctypes.c_int64(k),
            ctypes.c_int64(1),
        ]
    out = np.empty(rows, dtype=dtype)
    status = kernel(
        *arguments,
        ctypes.c_int64(rows),
        ctypes.c_int64(k),
        ctypes.c_void_p(out.ctypes.data),
        ctypes.c_int32(1),
    )
    assert status == 0
    return out


@pytest.mark.parametrize(("isa", "march"), [("avx2", "x86-64-v3"), ("avx512f", "x86-64-v4")])
def test_vector_and_baseline_builds_compute_the_same_bits(tmp_path, isa, march):
    """The AVX2 and AVX-512 clones against the x86-64 baseline, every vectorised kernel."""
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if f" {isa} " not in flags or " fma " not in flags:
        pytest.skip(f"needs an x86-64 CPU with {isa} and FMA")
    baseline = _compile(tmp_path, "baseline", ["-DSYMKL_VECTOR="])
    vector = _compile(tmp_path, isa, ["-DSYMKL_VECTOR=", f"-march={march}"])
    for param in ("var", "std", "logvar", "std_normal"):
        family = "std-normal" if param == "std_normal" else "diag"
        kind = "logvar" if param == "std_normal" else param
        # k = 7: rows copied into the blocks; k = 512: one long row read in place (float32
        # widened on load)
        for dtype, seed, k in itertools.product(("float64", "float32"), range(3), (7, 512)):
            cases = 2000 if k == 7 else 40
            arrays = generate_cases(family, kind, dtype, cases, seed=seed, k=k)
            arrays = {n: np.ascontiguousarray(a) for n, a in arrays.items()}
            expected, got = _run(baseline, param, arrays), _run(vector, param, arrays)
            assert np.array_equal(expected, got), (param, dtype, seed, k)
