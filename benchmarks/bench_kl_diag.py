"""Benchmark ``symkl.kl_diag`` against a hand-written NumPy formula, in one run.

Usage::

    python benchmarks/bench_kl_diag.py            # N*k = 1e7, k in {16, 512}
    python benchmarks/bench_kl_diag.py --size 1e6 --repeat 3

For each k and dtype it times, on the same (N, k) arrays: symkl.kl_diag (with
and without input validation), the naive NumPy formula people write, a plain
SymPy ``lambdify`` of the derived closed form, and ``torch.distributions`` when
torch is installed; and the time to read the four inputs once (``np.sum`` of
each).  It prints throughput and the ratios to the naive NumPy time and to the
memory-read time.  Best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

import symkl


def naive_numpy(mu_p, var_p, mu_q, var_q):
    """The formula as usually typed: 0.5 * sum(log(vq/vp) + (vp + (mp - mq)^2)/vq - 1)."""
    return 0.5 * np.sum(np.log(var_q / var_p) + (var_p + (mu_p - mu_q) ** 2) / var_q - 1, axis=-1)


def plain_lambdify() -> Callable:
    """SymPy's lambdify of the derived univariate closed form, summed over the last axis."""
    import sympy as sp

    d = symkl.derive("univariate")
    mu_p, sigma_p, mu_q, sigma_q = d.parameters
    var_p, var_q = sp.symbols("var_p var_q", positive=True)
    expr = d.closed_form.xreplace({sigma_p: sp.sqrt(var_p), sigma_q: sp.sqrt(var_q)})
    function = sp.lambdify((mu_p, var_p, mu_q, var_q), expr, "numpy")
    return lambda mp, vp, mq, vq: np.sum(function(mp, vp, mq, vq), axis=-1)


def torch_distributions() -> Callable | None:
    try:
        import torch
        from torch.distributions import Independent, Normal, kl_divergence
    except ImportError:
        return None

    def run(mp, vp, mq, vq):
        p = Independent(Normal(torch.from_numpy(mp), torch.from_numpy(vp).sqrt()), 1)
        q = Independent(Normal(torch.from_numpy(mq), torch.from_numpy(vq).sqrt()), 1)
        return kl_divergence(p, q).numpy()

    return run


def best_time(function: Callable, arguments, repeat: int) -> float:
    function(*arguments)  # warm up (first-touch, caches, thread pool)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function(*arguments)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, default=1e7, help="N*k elements (default 1e7)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    size = int(args.size)
    print(f"symkl {symkl.__version__}, backend {symkl.backend()}, numpy {np.__version__}")
    methods: dict[str, Callable | None] = {
        "symkl.kl_diag": lambda mp, vp, mq, vq: symkl.kl_diag(mp, vp, mq, vq),
        "symkl.kl_diag validate=False": lambda mp, vp, mq, vq: symkl.kl_diag(
            mp, vp, mq, vq, validate=False
        ),
        "naive NumPy": naive_numpy,
        "SymPy lambdify": plain_lambdify(),
        "torch.distributions": torch_distributions(),
    }
    header = (
        f"{'k':>4} {'dtype':8} {'method':30} {'ms':>9} {'Gelem/s':>8} {'/naive':>7} {'/read':>7}"
    )
    print(header)
    print("-" * len(header))
    for k in (16, 512):
        for dtype in (np.float32, np.float64):
            rng = np.random.default_rng(0)
            n = size // k
            mu_p, mu_q = rng.normal(size=(2, n, k)).astype(dtype)
            var_p, var_q = rng.uniform(0.1, 2.0, size=(2, n, k)).astype(dtype)
            arguments = (mu_p, var_p, mu_q, var_q)
            read = best_time(lambda *a: [np.sum(x) for x in a], arguments, args.repeat)
            naive = best_time(naive_numpy, arguments, args.repeat)
            for name, function in methods.items():
                if function is None:
                    print(f"{k:4d} {np.dtype(dtype).name:8} {name:30} {'(not installed)':>9}")
                    continue
                seconds = best_time(function, arguments, args.repeat)
                print(
                    f"{k:4d} {np.dtype(dtype).name:8} {name:30} {seconds * 1e3:9.1f} "
                    f"{n * k / seconds / 1e9:8.2f} {seconds / naive:7.2f} {seconds / read:7.2f}"
                )
            print(f"{k:4d} {np.dtype(dtype).name:8} {'(read 4 inputs once)':30} {read * 1e3:9.1f}")


if __name__ == "__main__":
    main()
