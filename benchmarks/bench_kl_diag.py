"""Benchmark symkl's diagonal KL kernels against the formulas people type, in one run.

Usage::

    python benchmarks/bench_kl_diag.py            # N*k = 1e7, k in {16, 512}
    python benchmarks/bench_kl_diag.py --size 1e6 --repeat 3

For every ``kl_diag`` parameterisation (``var``, ``std``, ``logvar``) and for
``kl_std_normal``, each k and dtype, it times on the same (N, k) arrays: symkl
(with and without input validation), the naive NumPy formula, and
``torch.distributions`` when torch is installed (given the parameters the way
the user holds them, so its ``sqrt``/``exp`` to a scale is part of its time).
Every row prints its ratio to the naive NumPy time, to torch, and to the **read
probe**: a compiled loop, threaded like the kernels, that only sums the inputs
(:func:`symkl.numeric.read_probe`) -- the time to read the data once, the limit
a memory-bound kernel can reach.  Median of ``--repeat`` runs after a warm-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np

import symkl
from symkl import numeric


def naive_var(mu_p, var_p, mu_q, var_q):
    """0.5 * sum(log(vq/vp) + (vp + (mp - mq)^2)/vq - 1): the textbook formula."""
    return 0.5 * np.sum(np.log(var_q / var_p) + (var_p + (mu_p - mu_q) ** 2) / var_q - 1, axis=-1)


def naive_std(mu_p, s_p, mu_q, s_q):
    """sum(log(sq/sp) + (sp^2 + (mp - mq)^2)/(2 sq^2) - 1/2)."""
    return np.sum(np.log(s_q / s_p) + (s_p**2 + (mu_p - mu_q) ** 2) / (2 * s_q**2) - 0.5, axis=-1)


def naive_logvar(mu_p, lv_p, mu_q, lv_q):
    """0.5 * sum(lq - lp + (exp(lp) + (mp - mq)^2)/exp(lq) - 1)."""
    return 0.5 * np.sum(lv_q - lv_p + (np.exp(lv_p) + (mu_p - mu_q) ** 2) / np.exp(lv_q) - 1, -1)


def naive_std_normal(mu, logvar):
    """The VAE term as typed: -0.5 * sum(1 + logvar - mu^2 - exp(logvar))."""
    return -0.5 * np.sum(1 + logvar - mu**2 - np.exp(logvar), axis=-1)


def torch_method(param: str) -> Callable | None:
    """torch.distributions.kl_divergence of Independent(Normal) pairs, from the raw parameters."""
    try:
        import torch
        from torch.distributions import Independent, Normal, kl_divergence
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    to_scale = {
        "var": torch.sqrt,
        "std": lambda s: s,
        "logvar": lambda lv: torch.exp(0.5 * lv),
    }
    if param == "std-normal":

        def prior(mu, logvar):
            mu, logvar = torch.from_numpy(mu), torch.from_numpy(logvar)
            p = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
            q = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
            return kl_divergence(p, q).numpy()

        return prior
    scale = to_scale[param]

    def run(mu_p, s_p, mu_q, s_q):
        tensors = [torch.from_numpy(a) for a in (mu_p, s_p, mu_q, s_q)]
        p = Independent(Normal(tensors[0], scale(tensors[1])), 1)
        q = Independent(Normal(tensors[2], scale(tensors[3])), 1)
        return kl_divergence(p, q).numpy()

    return run


def median_time(function: Callable, arguments, repeat: int) -> float:
    function(*arguments)  # warm up (first touch, caches, thread pool)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function(*arguments)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def inputs(param: str, n: int, k: int, dtype) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    mu_p, mu_q = rng.normal(size=(2, n, k)).astype(dtype)
    if param == "logvar" or param == "std-normal":
        s_p, s_q = rng.normal(scale=1.5, size=(2, n, k)).astype(dtype)
    else:
        s_p, s_q = rng.uniform(0.1, 2.0, size=(2, n, k)).astype(dtype)
    if param == "std-normal":
        return mu_p, s_p
    return mu_p, s_p, mu_q, s_q


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, default=1e7, help="N*k elements (default 1e7)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    size = int(args.size)
    print(
        f"symkl {symkl.__version__}, backend {symkl.backend()}, numpy {np.__version__}, "
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}"
    )
    naive = {
        "var": naive_var,
        "std": naive_std,
        "logvar": naive_logvar,
        "std-normal": naive_std_normal,
    }
    header = (
        f"{'function':22} {'k':>4} {'dtype':8} {'method':18} {'ms':>8} {'Gelem/s':>8} "
        f"{'/naive':>7} {'/torch':>7} {'/read':>6}"
    )
    print(header)
    print("-" * len(header))
    for param in ("var", "std", "logvar", "std-normal"):
        label = "kl_std_normal" if param == "std-normal" else f"kl_diag {param}"
        torch_run = torch_method(param)
        for k in (16, 512):
            for dtype in (np.float64, np.float32):
                n = size // k
                arguments = inputs(param, n, k, dtype)
                if param == "std-normal":
                    methods = {
                        "symkl": symkl.kl_std_normal,
                        "symkl no-validate": lambda *a: symkl.kl_std_normal(*a, validate=False),
                    }
                else:
                    methods = {
                        "symkl": lambda *a, p=param: symkl.kl_diag(*a, param=p),
                        "symkl no-validate": lambda *a, p=param: symkl.kl_diag(
                            *a, param=p, validate=False
                        ),
                    }
                methods["naive NumPy"] = naive[param]
                if torch_run is not None:
                    methods["torch.distributions"] = torch_run
                seconds = {
                    name: median_time(f, arguments, args.repeat) for name, f in methods.items()
                }
                read = (
                    median_time(numeric.read_probe, arguments, args.repeat)
                    if symkl.backend() == "c"
                    else float("nan")
                )
                for name, elapsed in seconds.items():
                    versus_torch = (
                        f"{seconds['torch.distributions'] / elapsed:7.2f}"
                        if "torch.distributions" in seconds
                        else f"{'-':>7}"
                    )
                    print(
                        f"{label:22} {k:4d} {np.dtype(dtype).name:8} {name:18} "
                        f"{elapsed * 1e3:8.1f} {n * k / elapsed / 1e9:8.2f} "
                        f"{seconds['naive NumPy'] / elapsed:7.2f} {versus_torch} "
                        f"{elapsed / read:6.2f}"
                    )
                print(
                    f"{label:22} {k:4d} {np.dtype(dtype).name:8} {'(read probe)':18} "
                    f"{read * 1e3:8.1f}"
                )
    print(
        "/naive, /torch: how many times faster than that method (> 1 is faster); "
        "/read: time relative to reading the inputs once (1 is the memory limit)"
    )


if __name__ == "__main__":
    main()
