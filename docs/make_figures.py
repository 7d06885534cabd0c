"""Regenerate the figures in docs/figures/ (the README shows both).

    pip install -e ".[docs]" && python docs/make_figures.py

* accuracy.png: relative error against the closeness of the two distributions
  for symkl, the variance-ratio form, the textbook form and (when installed)
  torch.distributions, measured against mpmath at 50 digits.
* univariate.png: derivations/univariate.tex compiled with pdflatex and
  rendered with pdftoppm (poppler-utils).

The PNG bytes depend on the matplotlib, TeX and poppler versions (and on
whether torch is installed), so they are not part of `symkl build --check`.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import mpmath
import numpy as np

import symkl

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures"


def _truth(sigma_p: float, sigma_q: float) -> float:
    with mpmath.workdps(80):
        p, q = mpmath.mpf(sigma_p), mpmath.mpf(sigma_q)
        return float(mpmath.log(q / p) + p**2 / (2 * q**2) - mpmath.mpf(1) / 2)


def accuracy_figure(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    closeness = np.logspace(-15, -1, 200)
    sigma_p = np.ones_like(closeness)
    sigma_q = 1.0 + closeness
    truth = np.array([_truth(a, b) for a, b in zip(sigma_p, sigma_q, strict=True)])

    def relative(values: np.ndarray) -> np.ndarray:
        error = np.abs(values - truth) / truth
        return np.clip(error, 1e-17, 10.0)  # 0 error drawn at 1e-17, total loss capped at 10

    ratio = (sigma_p / sigma_q) ** 2
    methods = {
        "symkl.kl_normal": symkl.kl_normal(0.0, sigma_p, 0.0, sigma_q),
        "variance ratio 0.5 (r - 1 - log r)": 0.5 * (ratio - 1 - np.log(ratio)),
        "textbook log(sq/sp) + sp^2/(2 sq^2) - 1/2": np.log(sigma_q / sigma_p)
        + sigma_p**2 / (2 * sigma_q**2)
        - 0.5,
    }
    try:
        import torch
        from torch.distributions import Normal, kl_divergence

        methods["torch.distributions"] = kl_divergence(
            Normal(0.0, torch.from_numpy(sigma_p)), Normal(0.0, torch.from_numpy(sigma_q))
        ).numpy()
    except ImportError:
        pass
    figure, axes = plt.subplots(figsize=(7.5, 4.2), dpi=110)
    for (label, values), style in zip(methods.items(), ["-", "--", ":", "-."], strict=False):
        axes.loglog(closeness, relative(np.asarray(values)), style, label=label, linewidth=1.6)
    axes.axhline(2.0**-52, color="grey", linewidth=0.8)
    axes.text(2e-15, 3e-16, "1 ulp (float64)", color="grey", fontsize=8)
    axes.set_xlabel("relative scale difference (sigma_q / sigma_p - 1)")
    axes.set_ylabel("relative error vs mpmath (50 digits)")
    axes.set_title("KL(N(0, 1) || N(0, sigma_q^2)) in float64")
    axes.legend(fontsize=8, loc="upper right")
    axes.set_ylim(1e-17, 20)
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)


def derivation_figure(path: Path) -> None:
    if not shutil.which("pdflatex") or not shutil.which("pdftoppm"):
        raise SystemExit(
            "needs pdflatex and pdftoppm (apt-get install texlive-latex-base poppler-utils)"
        )
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "univariate.tex"
        shutil.copy(ROOT / "derivations" / "univariate.tex", source)
        subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", source.name],
            cwd=work,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            [
                "pdftoppm",
                "-png",
                "-r",
                "110",
                "-f",
                "1",
                "-l",
                "1",
                "-singlefile",
                "univariate.pdf",
                "univariate",
            ],
            cwd=work,
            check=True,
        )
        shutil.copy(Path(work) / "univariate.png", path)


def main() -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    accuracy_figure(FIGURES / "accuracy.png")
    derivation_figure(FIGURES / "univariate.png")
    for name in ("accuracy.png", "univariate.png"):
        print(f"wrote docs/figures/{name}")


if __name__ == "__main__":
    main()
