"""High-precision references: the KL integral evaluated by mpmath quadrature.

These are the yardsticks the numeric functions are measured against.  They
take *exact* parameters (integers, decimal strings, ``fractions.Fraction``,
SymPy rationals or ``mpmath.mpf``); a Python float is accepted as the exact
binary number it is, which is rarely the decimal you meant, so pass strings
when the decimal matters.

Naive quadrature of the definition over ``(-inf, inf)`` is silently wrong
when ``p`` is narrow relative to the range mpmath samples (``sigma_p/sigma_q =
1e-3``), or far from the origin (means 50 ``sigma_q`` apart): ``mpmath.quad``
then returns about 0 with an error estimate of 0.  :func:`kl_quad` substitutes
``z = (x - mu_p) / sigma_p``, so that ``p(x) dx = phi(z) dz`` is always the
standard normal, and splits the z-range at 0, +-4 and +-8.

Importing this module does not import SymPy.
"""

from __future__ import annotations

import fractions
import numbers
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np

__all__ = [
    "MonteCarloEstimate",
    "QuadratureError",
    "kl_closed_form",
    "kl_monte_carlo",
    "kl_quad",
    "to_mpf",
]

#: z-range split points: p is the standard normal in z
_Z_BREAKPOINTS = (-8, -4, 0, 4, 8)


class QuadratureError(ArithmeticError):
    """Quadrature could not reach the requested number of digits."""


def to_mpf(value: Any, name: str) -> mpmath.mpf:
    """Convert an exact parameter to ``mpmath.mpf`` at the current precision.

    Parameters
    ----------
    value : int, str, fractions.Fraction, mpmath.mpf, SymPy number or float
        The parameter.  Strings are parsed as decimals at the working
        precision, so ``"0.1"`` means one tenth, not the nearest double.
    name : str
        The argument's name, used in error messages.

    Raises
    ------
    ValueError
        For non-finite or non-numeric values.

    Examples
    --------
    >>> with mpmath.workdps(30):
    ...     print(to_mpf("0.1", "sigma"))
    0.1
    """
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a real number, got the bool {value!r}")
    if isinstance(value, str | int | mpmath.mpf):
        try:
            result = mpmath.mpf(value)
        except (ValueError, TypeError) as error:
            raise ValueError(f"{name} must be a real number, got {value!r}") from error
    elif isinstance(value, fractions.Fraction):
        result = mpmath.mpf(value.numerator) / value.denominator
    elif hasattr(value, "p") and hasattr(value, "q"):  # SymPy Rational / Integer
        result = mpmath.mpf(int(value.p)) / int(value.q)
    elif isinstance(value, numbers.Real):
        result = mpmath.mpf(float(value))
    else:
        raise ValueError(
            f"{name} must be a real number (int, decimal string, Fraction, mpf), "
            f"got {type(value).__name__} {value!r}"
        )
    if not mpmath.isfinite(result):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return result


def _parameters(mu_p, sigma_p, mu_q, sigma_q):
    values = {}
    for name, value in (("mu_p", mu_p), ("sigma_p", sigma_p), ("mu_q", mu_q), ("sigma_q", sigma_q)):
        values[name] = to_mpf(value, name)
    for name in ("sigma_p", "sigma_q"):
        if values[name] <= 0:
            raise ValueError(
                f"{name} must be a positive standard deviation, got {mpmath.nstr(values[name], 8)}"
            )
    return values["mu_p"], values["sigma_p"], values["mu_q"], values["sigma_q"]


def _log_normal_pdf(x, mu, sigma):
    """log N(x; mu, sigma^2), straight from the density."""
    standardised = (x - mu) / sigma
    return -(standardised**2) / 2 - mpmath.log(sigma) - mpmath.log(2 * mpmath.pi) / 2


def kl_quad(
    mu_p: Any,
    sigma_p: Any,
    mu_q: Any,
    sigma_q: Any,
    dps: int = 50,
    *,
    return_error: bool = False,
) -> mpmath.mpf | tuple[mpmath.mpf, mpmath.mpf]:
    r"""KL(N(mu_p, sigma_p^2) || N(mu_q, sigma_q^2)) by quadrature of the definition.

    .. math::
        \int p(x) \log\frac{p(x)}{q(x)}\,dx
        = \int \varphi(z) \left[\log p(x(z)) - \log q(x(z))\right] dz,
        \quad x(z) = \mu_p + \sigma_p z

    The log-densities are evaluated from the density formula at each node,
    never from the closed form.  The working precision is raised by the
    measured cancellation (``∫|f| / |∫f|``) plus guard digits, and the
    result is rejected if the error estimate exceeds ``10**-dps`` of it.

    Parameters
    ----------
    mu_p, sigma_p, mu_q, sigma_q : exact real numbers
        Means and standard deviations (see :func:`to_mpf`).
    dps : int
        Correct significant digits wanted.
    return_error : bool
        Also return the absolute error estimate.

    Returns
    -------
    mpmath.mpf
        The divergence, rounded to ``dps`` digits (and the error estimate).

    Raises
    ------
    ValueError
        Non-positive or non-finite scales, non-finite or non-numeric input.
    QuadratureError
        When the quadrature cannot certify ``dps`` digits.

    Examples
    --------
    >>> mpmath.nstr(kl_quad("0", "1", "1", "2", dps=30), 25)
    '0.4431471805599453094172321'
    """
    if not isinstance(dps, int) or dps < 5:
        raise ValueError(f"dps must be an integer >= 5, got {dps!r}")
    with mpmath.workdps(dps + 20):
        mu_p_, sigma_p_, mu_q_, sigma_q_ = _parameters(mu_p, sigma_p, mu_q, sigma_q)

    def integrand(z):
        x = mu_p_ + sigma_p_ * z
        return mpmath.npdf(z) * (
            _log_normal_pdf(x, mu_p_, sigma_p_) - _log_normal_pdf(x, mu_q_, sigma_q_)
        )

    ranges = [-mpmath.inf, *_Z_BREAKPOINTS, mpmath.inf]
    with mpmath.workdps(20):
        magnitude = mpmath.quad(lambda z: abs(integrand(z)), ranges)

    def evaluate(working: int):
        nonlocal mu_p_, sigma_p_, mu_q_, sigma_q_
        with mpmath.workdps(working):
            mu_p_, sigma_p_, mu_q_, sigma_q_ = _parameters(mu_p, sigma_p, mu_q, sigma_q)
            value, error = mpmath.quad(integrand, ranges, error=True)
            return value, error, magnitude / abs(value) if value else mpmath.inf

    value, error = _certified(evaluate, dps, "kl_quad")
    return (value, error) if return_error else value


def _certified(evaluate, dps: int, who: str):
    """Evaluate at rising precision until two passes agree to ``dps`` digits.

    ``evaluate(working_dps)`` returns ``(value, abs_error, cancellation)``
    where ``cancellation`` is the ratio of the magnitudes that were summed to
    the result (digits lost = its log10).  Raises :class:`QuadratureError`
    when no agreement is reached.
    """
    working = dps + 15
    value, error, cancellation = evaluate(working)
    for _ in range(4):
        lost = dps if not mpmath.isfinite(cancellation) else int(mpmath.log10(cancellation)) + 1
        working = max(working + 10, dps + max(lost, 0) + 15)
        better, better_error, cancellation = evaluate(working)
        with mpmath.workdps(working):
            tolerance = abs(better) * mpmath.mpf(10) ** (-dps - 1)
            if abs(better - value) <= tolerance and better_error <= max(
                tolerance, mpmath.mpf(10) ** (-working)
            ):
                with mpmath.workdps(dps):
                    return +better, +better_error
        value, error = better, better_error
    raise QuadratureError(
        f"{who} could not certify {dps} digits: last two passes gave "
        f"{mpmath.nstr(value, 12)} (error estimate {mpmath.nstr(error, 3)})"
    )


def kl_closed_form(mu_p: Any, sigma_p: Any, mu_q: Any, sigma_q: Any, dps: int = 50) -> mpmath.mpf:
    """The *derived* univariate closed form, evaluated with mpmath at ``dps`` digits.

    The expression is ``symkl.derive("univariate").closed_form`` turned into an
    mpmath function (this imports SymPy on first use).  Precision is raised
    internally so that ``dps`` digits survive the cancellation near KL = 0.

    Examples
    --------
    >>> mpmath.nstr(kl_closed_form("0", "1", "1", "2", dps=30), 25)
    '0.4431471805599453094172321'
    """
    function = _closed_form_function()

    def evaluate(working: int):
        with mpmath.workdps(working):
            args = _parameters(mu_p, sigma_p, mu_q, sigma_q)
            value = function(*args)
            # the terms are O(1 + log-ratio + squared offsets); the result may be tiny
            mu_p_, sigma_p_, mu_q_, sigma_q_ = args
            size = 1 + abs(mpmath.log(sigma_q_ / sigma_p_)) + (sigma_p_ / sigma_q_) ** 2
            size += ((mu_p_ - mu_q_) / sigma_q_) ** 2
            return value, mpmath.mpf(0), size / abs(value) if value else mpmath.inf

    return _certified(evaluate, dps, "kl_closed_form")[0]


_CLOSED_FORM_FUNCTION = None


def _closed_form_function():
    global _CLOSED_FORM_FUNCTION
    if _CLOSED_FORM_FUNCTION is None:
        import sympy as sp

        from symkl.kl import derive

        derivation = derive("univariate")
        _CLOSED_FORM_FUNCTION = sp.lambdify(
            derivation.parameters, derivation.closed_form, modules="mpmath"
        )
    return _CLOSED_FORM_FUNCTION


@dataclass(frozen=True)
class MonteCarloEstimate:
    """A Monte Carlo estimate of a KL divergence with its standard error."""

    value: float
    standard_error: float
    samples: int

    def interval(self, width: float = 4.0) -> tuple[float, float]:
        """``value -/+ width * standard_error``."""
        return (
            self.value - width * self.standard_error,
            self.value + width * self.standard_error,
        )


def kl_monte_carlo(
    mu_p: Any,
    s_p: Any,
    mu_q: Any,
    s_q: Any,
    *,
    samples: int,
    rng: np.random.Generator,
    param: str = "std",
) -> MonteCarloEstimate:
    r"""Estimate KL(p || q) for diagonal Gaussians by sampling from p.

    .. math::
        \widehat{KL} = \frac1n \sum_{i=1}^n \left[\log p(x_i) - \log q(x_i)\right],
        \quad x_i \sim p,

    with standard error ``std(log p - log q) / sqrt(n)``.  This is the
    estimator behind "can I compute the KL by sampling?"; it converges as
    ``1/sqrt(n)`` and needs no closed form.  It is *not*
    ``torch.nn.functional.kl_div`` on the samples: that function expects
    log-probabilities and probabilities of one discrete distribution and
    returns a number with no relation to this KL (docs/sampling.md).

    Parameters
    ----------
    mu_p, s_p, mu_q, s_q : array_like, shape (k,) or scalars
        Means and scales of the diagonal Gaussians; ``param`` says whether
        ``s`` holds standard deviations (``"std"``), variances (``"var"``) or
        log-variances (``"logvar"``).
    samples : int
        Number of draws, at least 2.
    rng : numpy.random.Generator
        An explicit, seeded generator (``numpy.random.default_rng(seed)``),
        so that every estimate can be reproduced.
    param : {"std", "var", "logvar"}

    Returns
    -------
    MonteCarloEstimate

    Raises
    ------
    ValueError
        For a missing or wrong ``rng``, too few samples, an unknown ``param``,
        non-finite means, non-positive or non-finite scales, or shapes that do
        not match.

    Examples
    --------
    >>> estimate = kl_monte_carlo(0.0, 1.0, 1.0, 2.0, samples=100_000,
    ...                           rng=np.random.default_rng(0))
    >>> abs(estimate.value - 0.4431471805599453) < 4 * estimate.standard_error
    True
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            "rng must be a numpy.random.Generator (numpy.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    if isinstance(samples, bool) or not isinstance(samples, numbers.Integral) or samples < 2:
        raise ValueError(f"samples must be an integer >= 2, got {samples!r}")
    if param not in ("std", "var", "logvar"):
        raise ValueError(f"param must be 'std', 'var' or 'logvar', got {param!r}")
    names = ("mu_p", "s_p", "mu_q", "s_q")
    arrays = []
    for name, value in zip(names, (mu_p, s_p, mu_q, s_q), strict=True):
        try:
            array = np.atleast_1d(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name} must be real numbers, got {value!r}") from error
        if array.ndim != 1:
            raise ValueError(f"{name} must be a scalar or a vector (k,), got shape {array.shape}")
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} must be finite, got {value!r}")
        if name.startswith("s") and param != "logvar" and np.any(array <= 0):
            raise ValueError(f"{name} must be positive ({param}), got {value!r}")
        arrays.append(array)
    try:
        mean_p, scale_p, mean_q, scale_q = np.broadcast_arrays(*arrays)
    except ValueError:
        shapes = ", ".join(f"{n} {a.shape}" for n, a in zip(names, arrays, strict=True))
        raise ValueError(f"shapes do not match: {shapes}") from None
    if param == "var":
        scale_p, scale_q = np.sqrt(scale_p), np.sqrt(scale_q)
    elif param == "logvar":
        scale_p, scale_q = np.exp(scale_p / 2), np.exp(scale_q / 2)
    draws = mean_p + scale_p * rng.standard_normal((int(samples), mean_p.size))

    def log_density(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
        standardised = (x - mean) / scale
        return np.sum(-0.5 * standardised**2 - np.log(scale) - 0.5 * np.log(2 * np.pi), axis=-1)

    log_ratio = log_density(draws, mean_p, scale_p) - log_density(draws, mean_q, scale_q)
    return MonteCarloEstimate(
        value=float(np.mean(log_ratio)),
        standard_error=float(np.std(log_ratio, ddof=1) / np.sqrt(samples)),
        samples=int(samples),
    )
