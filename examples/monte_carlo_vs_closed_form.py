"""Closed form vs Monte Carlo vs a discrete KL misused on samples (docs/sampling.md).

Run: python examples/monte_carlo_vs_closed_form.py   (torch optional)
"""

from __future__ import annotations

import numpy as np

import symkl
from symkl.reference import kl_monte_carlo


def softmax(values: np.ndarray) -> np.ndarray:
    shifted = np.exp(values - values.max())
    return shifted / shifted.sum()


def kl_div_like_torch(log_input: np.ndarray, target: np.ndarray) -> float:
    """torch.nn.functional.kl_div(input, target, reduction="sum") on 1-D input."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.sum(target * (np.log(target) - log_input)))


def main() -> None:
    mu_p, sigma_p, mu_q, sigma_q = 0.0, 1.0, 1.0, 2.0
    exact = float(symkl.kl_normal(mu_p, sigma_p, mu_q, sigma_q))
    print(f"closed form (symkl.kl_normal): {exact:.12f}")
    print()
    print(f"{'samples':>9s} {'Monte Carlo':>12s} {'std error':>10s} {'|error|':>10s}")
    for exponent in range(2, 7):
        samples = 10**exponent
        estimate = kl_monte_carlo(
            mu_p, sigma_p, mu_q, sigma_q, samples=samples, rng=np.random.default_rng(0)
        )
        error = abs(estimate.value - exact)
        print(f"{samples:9d} {estimate.value:12.6f} {estimate.standard_error:10.2e} {error:10.2e}")
    print()
    rng = np.random.default_rng(0)
    x_p = rng.normal(mu_p, sigma_p, 1000)
    x_q = rng.normal(mu_q, sigma_q, 1000)
    raw = kl_div_like_torch(x_q, x_p)
    softmaxed = kl_div_like_torch(np.log(softmax(x_q)), softmax(x_p))
    print("kl_div on samples (what the forum answer suggested):")
    print(f"  kl_div(x_q, x_p)                        = {raw}  (log of negative 'probabilities')")
    print(f"  kl_div(log_softmax(x_q), softmax(x_p))  = {softmaxed:.6f}  (a KL between two")
    print("      made-up distributions over 1000 sample indices; pairing is arbitrary)")
    shuffled = kl_div_like_torch(np.log(softmax(rng.permutation(x_q))), softmax(x_p))
    print(f"  ... the same after shuffling x_q        = {shuffled:.6f}")
    try:
        import torch
        import torch.nn.functional as functional
    except ImportError:
        return
    value = functional.kl_div(
        torch.log_softmax(torch.from_numpy(x_q), 0),
        torch.softmax(torch.from_numpy(x_p), 0),
        reduction="sum",
    )
    print(f"  torch.nn.functional.kl_div (softmaxed)  = {float(value):.6f}")


if __name__ == "__main__":
    main()
