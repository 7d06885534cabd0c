"""DRAFT (moved into symkl/proof/lemmas.py once issue-13 lands)."""

from __future__ import annotations

import sympy as sp

# ----------------------------------------------------------------- full covariance (engineer 13f)

_k = sp.Symbol("k", integer=True, positive=True)
_i = sp.Symbol("i", integer=True, positive=True)
_j = sp.Symbol("j", integer=True, positive=True)
_x = sp.MatrixSymbol("x", _k, 1)
_mu = sp.MatrixSymbol("mu", _k, 1)
_m = sp.MatrixSymbol("m", _k, 1)
_S = sp.MatrixSymbol("S", _k, _k)
_A = sp.MatrixSymbol("A", _k, _k)
_T = sp.MatrixSymbol("T", _k, _k)


def gaussian_density(x: sp.MatrixSymbol, mean: sp.Basic, covariance: sp.Basic) -> sp.Expr:
    r"""``N(x; mean, covariance)`` on ``R^k`` as a matrix expression (``k`` symbolic).

    .. math:: (2\pi)^{-k/2} |\Sigma|^{-1/2} \exp(-\tfrac12 (x-\mu)^\top \Sigma^{-1} (x-\mu))
    """
    from symkl.model import QuadraticForm

    k = x.shape[0]
    exponent = -sp.Rational(1, 2) * QuadraticForm(covariance.I, x - mean)
    return sp.exp(exponent) / sp.sqrt((2 * sp.pi) ** k * sp.Determinant(covariance))


def _full_statements():
    from symkl.model import MatrixEntry, MatrixIntegral, QuadraticForm

    density = gaussian_density(_x, _mu, _S)
    t = MatrixEntry
    return {
        "F1": (MatrixIntegral(density, _x), sp.S.One),
        "F2": (MatrixIntegral(density * QuadraticForm(_A, _x - _m), _x),
               sp.Trace(_A * _S) + QuadraticForm(_A, _mu - _m)),
        "F3": (sp.Sum(sp.log(t(_T, _i, _i)), (_i, 1, _k)), sp.log(sp.Determinant(_T))),
        "F4": (sp.Sum(t(_T, _i, _i) ** 2, (_i, 1, _k))
               + sp.Sum(sp.Sum(t(_T, _i, _j) ** 2, (_j, 1, _i - 1)), (_i, 1, _k)),
               sp.Trace(_T * _T.T)),
    }
