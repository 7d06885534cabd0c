"""symkl against ``torch.distributions`` in PyTorch: speed of the VAE KL and accuracy near KL = 0.

Usage::

    python benchmarks/bench_torch.py                  # prints a Markdown table
    python benchmarks/bench_torch.py --repeat 50 --threads 2

Speed: torch on the CPU with ``--threads`` threads (2 by default), float32
(the issue's targets), float64 and bfloat16, forward + backward of the VAE
prior term, per batch shape:

* symkl: ``symkl.kl_std_normal(mu, logvar)``,
* torch: ``kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0, 1)).sum(-1)``,

each followed by ``.sum().backward()``; the median (``--statistic min``: the
fastest, the figure least disturbed by other processes on a shared machine) of
``--repeat`` interleaved timings after a warm-up.  The load average is printed
before and after the run: with more runnable processes than cores, torch's
OpenMP threads wait for one another and its timings (far more than symkl's,
which makes few OpenMP calls) grow by up to two orders of magnitude, so figures
taken under load are not comparable.  Accuracy: ``KL(N(0, 1) || N(0, (1 + h)^2))`` for
``h`` spread over 1e-1 .. 1e-12 (and over 1e-1 .. 1e-3 in bfloat16, below
which ``1 + h`` rounds to 1), in float64, float32 and bfloat16, against the
same KL of the inputs as given, at 60 digits with mpmath; the worst relative
error.  Everything in the table comes from one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import mpmath
import torch
from torch.distributions import Normal, kl_divergence

import symkl


def _symkl_step(mu: torch.Tensor, logvar: torch.Tensor) -> None:
    symkl.kl_std_normal(mu, logvar).sum().backward()


def _torch_step(mu: torch.Tensor, logvar: torch.Tensor) -> None:
    kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1).sum().backward()


def speed(
    shape: tuple[int, int], repeat: int, dtype: torch.dtype, statistic: str = "median"
) -> dict[str, float]:
    """Median (or fastest) seconds per forward + backward, symkl and torch interleaved."""
    generator = torch.Generator().manual_seed(0)
    mu = torch.randn(shape, generator=generator).to(dtype).requires_grad_()
    logvar = (0.5 * torch.randn(shape, generator=generator)).to(dtype).requires_grad_()
    steps = {"symkl": _symkl_step, "torch": _torch_step}
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(3):  # warm up
        for step in steps.values():
            step(mu, logvar)
    inner = max(1, int(2e5 // (shape[0] * shape[1])))  # tiny shapes: several calls per timing
    for _ in range(repeat):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(inner):
                step(mu, logvar)
            times[name].append((time.perf_counter() - start) / inner)
            mu.grad = logvar.grad = None
    summary = statistics.median if statistic == "median" else min
    return {name: summary(values) for name, values in times.items()}


def _exact(sigma_q: float) -> mpmath.mpf:
    """KL(N(0, 1) || N(0, sigma_q^2)) for the float sigma_q, at 60 digits."""
    with mpmath.workdps(60):
        s = mpmath.mpf(sigma_q)
        return mpmath.log(s) + 1 / (2 * s * s) - mpmath.mpf(1) / 2


def accuracy(dtype: torch.dtype) -> dict[str, float]:
    """Worst relative error of KL(N(0,1) || N(0, (1+h)^2)) over h near 0, symkl and torch."""
    smallest = 3 if dtype == torch.bfloat16 else 12
    steps = torch.logspace(-1, -smallest, 4 * smallest, dtype=torch.float64)
    sigma_q = (1.0 + torch.cat([steps, -steps])).to(dtype)
    sigma_q = sigma_q[sigma_q != 1]
    zero, one = torch.zeros_like(sigma_q), torch.ones_like(sigma_q)
    got = {
        "symkl": symkl.kl_normal(zero, one, zero, sigma_q),
        "torch": kl_divergence(Normal(zero, one), Normal(zero, sigma_q)),
    }
    worst = {}
    for name, values in got.items():
        errors = []
        for value, s in zip(values.tolist(), sigma_q.tolist(), strict=True):
            truth = _exact(s)
            errors.append(float(abs(mpmath.mpf(value) - truth) / truth))
        worst[name] = max(errors)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=30, help="timings per shape (median)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--statistic", choices=("median", "min"), default="median",
                        help="summary of the timings per shape")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    policy = os.environ.get("OMP_WAIT_POLICY", "unset")
    print(f"torch {torch.__version__}, {arguments.threads} threads, OMP_WAIT_POLICY {policy}, "
          f"symkl backend {symkl.backend()}, {arguments.statistic} of {arguments.repeat}, "
          f"load average {load:.2f}\n")
    print("| VAE KL, forward + backward | symkl | torch.distributions | ratio |")
    print("|---|---|---|---|")
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        for shape in ((128, 20), (4096, 256)):
            timing = speed(shape, arguments.repeat, dtype, arguments.statistic)
            print(f"| {str(dtype).removeprefix('torch.')}, {shape[0]}x{shape[1]} | "
                  f"{timing['symkl'] * 1e6:,.0f} us | {timing['torch'] * 1e6:,.0f} us | "
                  f"{timing['symkl'] / timing['torch']:.2f}x |")
    print("\n| KL(N(0,1) \\|\\| N(0,(1+h)^2)), h near 0: worst relative error "
          "| symkl | torch.distributions |")
    print("|---|---|---|")
    for dtype, label in ((torch.float64, "float64, h = ±1e-1 to ±1e-12"),
                         (torch.float32, "float32, h = ±1e-1 to ±1e-12"),
                         (torch.bfloat16, "bfloat16, h = ±1e-1 to ±1e-3")):
        worst = accuracy(dtype)
        print(f"| {label} | {worst['symkl']:.2g} | {worst['torch']:.2g} |")
    if hasattr(os, "getloadavg"):
        print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
