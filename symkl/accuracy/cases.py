"""Seeded argument generators over orders of magnitude, in the spirit of SciPy's mpmath harness.

Each generator takes the number of cases and an explicit seed and spreads
the arguments over the documented domain, including the hard places: scale
ratios 1e-6..1e6, relative scale differences down to 1e-15 and 2^-50 (KL near
0), mean offsets up to 1e6 scales, log-variances in [-60, 60], and full
covariances with condition numbers up to 1e4.

Examples
--------
>>> arrays = generate_cases("diag", "logvar", "float32", cases=5, seed=0, k=3)
>>> sorted(arrays), arrays["s_p"].shape, arrays["s_p"].dtype
(['mu_p', 'mu_q', 's_p', 's_q'], (5, 3), dtype('float32'))
"""

from __future__ import annotations

import numpy as np

Arrays = dict[str, np.ndarray]

__all__ = ["FAMILIES", "generate_cases", "mvn_cases", "mvn_diagonal_cases"]

#: the families of a user's KL (and of symkl's own univariate functions)
FAMILIES = ("normal", "diag", "std-normal")


def generate_cases(
    family: str, param: str, dtype: str, cases: int, seed: int, k: int = 1
) -> dict[str, np.ndarray]:
    """Seeded arguments spread over orders of magnitude, including the hard places.

    Scales from 1e-3 to 1e3; scale ratios 1e-6..1e6; relative scale
    differences 1e-15..1e-1 (KL near 0); mean offsets 0 and 1e-8..1e6 scales;
    for ``std-normal`` log-variances in [-60, 60] and near 0.  ``k > 1`` gives
    ``(cases, k)`` arrays for the diagonal family.
    """
    rng = np.random.default_rng(seed)
    shape = (cases, k) if family == "diag" or k > 1 else (cases,)
    kind = rng.integers(0, 4, size=shape)  # 0: ratio, 1: close, 2: equal, 3: very close
    if len(shape) == 2:
        # a quarter of the rows are close in every coordinate: a KL near 0 needs all k
        close_rows = rng.random(cases) < 0.25
        kind = np.where(close_rows[:, None], rng.choice([1, 2, 3], size=shape), kind)
    if family == "std-normal":
        logvar = np.where(
            kind < 2,
            rng.uniform(-60, 60, size=shape),
            rng.choice([-1, 1], size=shape) * 10 ** rng.uniform(-15, 0, size=shape),
        )
        logvar = np.where(kind == 2, 0.0, logvar)
        mu = np.where(
            rng.random(shape) < 0.3,
            0.0,
            rng.choice([-1, 1], size=shape)
            * 10
            ** np.where(
                kind >= 2, rng.uniform(-15, -8, size=shape), rng.uniform(-8, 3, size=shape)
            ),
        )
        return {"mu": mu.astype(dtype), "logvar": logvar.astype(dtype)}
    base = 10 ** rng.uniform(-3, 3, size=shape)
    ratio = np.where(
        kind == 0,
        10 ** rng.uniform(-6, 6, size=shape),
        1 + rng.choice([-1, 1], size=shape) * 10 ** rng.uniform(-15, -1, size=shape),
    )
    ratio = np.where(kind == 2, 1.0, ratio)
    ratio = np.where(kind == 3, 1 + rng.choice([-1, 1], size=shape) * 2.0**-50, ratio)
    s_p = base
    s_q = base * ratio
    offset = np.where(
        (rng.random(shape) < 0.3) | ((kind >= 1) & (rng.random(shape) < 0.5)),
        0.0,
        rng.choice([-1, 1], size=shape) * 10 ** rng.uniform(-8, 6, size=shape),
    )
    mu_p = rng.uniform(-10, 10, size=shape) * base
    mu_q = mu_p + offset * np.maximum(s_q, s_p)
    if param == "var":
        s_p, s_q = s_p**2, s_q**2
    elif param == "logvar":
        s_p, s_q = 2 * np.log(s_p), 2 * np.log(s_q)
    arrays = {"mu_p": mu_p, "s_p": s_p, "mu_q": mu_q, "s_q": s_q}
    return {name: value.astype(dtype) for name, value in arrays.items()}


def mvn_cases(cases: int, seed: int, k: int) -> Arrays:
    """Seeded SPD pairs with condition numbers up to 1e4, scales 1e-3..1e3.

    A quarter of the cases have ``q`` a small perturbation of ``p`` (KL down
    to about 1e-8), a tenth have ``p == q`` exactly.
    """
    rng = np.random.default_rng(seed)
    mu_p = np.empty((cases, k))
    mu_q = np.empty((cases, k))
    cov_p = np.empty((cases, k, k))
    cov_q = np.empty((cases, k, k))

    def spd() -> np.ndarray:
        rotation, _ = np.linalg.qr(rng.normal(size=(k, k)))
        eigenvalues = 10 ** rng.uniform(0, 4, size=k) * 10 ** rng.uniform(-3, 3)
        matrix = (rotation * eigenvalues) @ rotation.T
        return (matrix + matrix.T) / 2

    for case in range(cases):
        cov_p[case] = spd()
        scale = float(np.sqrt(np.trace(cov_p[case]) / k))
        mu_p[case] = rng.normal(size=k) * scale * 10 ** rng.uniform(-2, 2)
        kind = rng.random()
        if kind < 0.1:
            cov_q[case], mu_q[case] = cov_p[case], mu_p[case]
        elif kind < 0.35:
            perturbation = rng.normal(size=(k, k)) * 10 ** rng.uniform(-4, -2)
            factor = np.eye(k) + (perturbation + perturbation.T) / 2
            product = factor @ cov_p[case] @ factor.T
            cov_q[case] = (product + product.T) / 2  # exactly symmetric
            mu_q[case] = mu_p[case] + rng.normal(size=k) * scale * 1e-4
        else:
            cov_q[case] = spd()
            mu_q[case] = rng.normal(size=k) * scale * 10 ** rng.uniform(-2, 2)
    return {"mu_p": mu_p, "cov_p": cov_p, "mu_q": mu_q, "cov_q": cov_q}


def mvn_diagonal_cases(cases: int, seed: int, k: int) -> dict[str, np.ndarray]:
    """Seeded diagonal covariances (as full matrices), variances 1e-6..1e6, for large ``k``.

    A quarter of the cases have ``q`` within a relative 1e-10..1e-4 of ``p``
    in every coordinate (KL near 0), a tenth have ``p == q`` exactly.
    """
    rng = np.random.default_rng(seed)
    variances_p = 10 ** rng.uniform(-6, 6, size=(cases, k))
    kind = rng.random(cases)[:, None]
    close = variances_p * (
        1 + rng.choice([-1, 1], (cases, k)) * 10 ** rng.uniform(-10, -4, (cases, k))
    )
    variances_q = np.where(kind < 0.35, close, 10 ** rng.uniform(-6, 6, size=(cases, k)))
    variances_q = np.where(kind < 0.1, variances_p, variances_q)
    mu_p = rng.normal(size=(cases, k)) * np.sqrt(variances_p) * 10 ** rng.uniform(-2, 2, (cases, 1))
    offset = rng.normal(size=(cases, k)) * np.sqrt(variances_p)
    mu_q = mu_p + np.where(kind < 0.35, 1e-6 * offset, 10 * offset)
    mu_q = np.where(kind < 0.1, mu_p, mu_q)
    eye = np.eye(k)
    return {
        "mu_p": mu_p,
        "cov_p": variances_p[:, :, None] * eye,
        "mu_q": mu_q,
        "cov_q": variances_q[:, :, None] * eye,
    }
