"""Numerically stable forms of the per-coordinate KL, proved, for code generation.

The textbook form ``log(sigma_q/sigma_p) + (sigma_p^2 + d^2)/(2 sigma_q^2) - 1/2``
cancels catastrophically when p and q are close: three O(1) terms add up to a
tiny KL.  The chain below rewrites it, step by checked step, into

    KL = 1/2 [a - log1pmx(x)],   x = (v_p - v_q)/v_q,   a = (mu_p - mu_q)^2 / v_q,

where ``log1pmx(x) = log(1 + x) - x <= 0``.  Both ``a`` and ``-log1pmx(x)`` are
non-negative, so their sum has no cancellation; ``x`` is computed from the
variance *difference*, which is exact when the variances are close.  Checked
facts give the same form for the standard-deviation and log-variance
parameterisations, the VAE prior, the Jeffreys divergence, the kernel
``log1pmx`` through ``atanh`` and its series, and the gradients.
:mod:`symkl.codegen` prints these expressions into the numeric kernels.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from symkl.derivation import Derivation, Fact, Step
from symkl.kl import derive
from symkl.kl.compensated import ERROR_FREE_TRANSFORMATIONS, KernelStatement, kernel_statements
from symkl.kl.univariate import kl_symbol
from symkl.model import univariate_symbols
from symkl.proof import ExpandFunctions, Series

__all__ = [
    "EXACT_SCALE",
    "A",
    "ExactSum",
    "NumericForms",
    "ParameterisedForm",
    "R",
    "X",
    "derive_stable",
    "exact_sum_gradients",
    "jeffreys_exact_gradients",
    "log1pmx",
    "numeric_forms",
    "proved_statements",
    "ranged_gradients",
    "series_coefficients",
]

#: the atanh series of log1pmx is used for x in this open interval; outside it
#: the direct ``x - log1p(x)`` loses at most 2 ULP (measured against mpmath)
SERIES_INTERVAL = (sp.Rational(-45, 100), sp.Rational(40, 100))
#: terms of S(u) = sum_n u^n / (2n + 3) kept; |t| <= 0.29, u <= 0.084 on the interval
SERIES_TERMS = 15
#: log-variance differences d in [TABLE_RANGE] outside the series interval use a table of
#: expm1mx at c = j * TABLE_STEP: there expm1(d) - d loses 2-3 bits to the rounding of x
TABLE_STEP = sp.Rational(1, 32)
TABLE_RANGE = (sp.Rational(-77, 32), sp.Rational(45, 32))
#: terms r^2/2! ... r^n/n! of expm1mx(r) = e^r - 1 - r kept for |r| <= TABLE_STEP/2
TABLE_SERIES_TERMS = 7
#: the vectorised variance / standard-deviation kernels write the quotient q = u/v as
#: 2^e m with m in [MANTISSA_RANGE) and take log m = 2 atanh(s), s = (m - 1)/(m + 1), so
#: |s| <= 1/5 and u = s^2 <= 1/25; FAST_SERIES_TERMS terms of S(u) leave < 2^-60 relative
MANTISSA_RANGE = (sp.Rational(3, 4), sp.Rational(3, 2))
FAST_SERIES_TERMS = 13


class log1pmx(sp.Function):  # noqa: N801 - the name of the numeric kernel
    r"""``log(1 + x) - x``: non-positive for ``x > -1``, ``-x^2/2`` near 0.

    Examples
    --------
    >>> x = sp.Symbol("x")
    >>> sp.expand_func(log1pmx(x))
    -x + log(x + 1)
    """

    nargs = 1

    def _eval_expand_func(self, **hints) -> sp.Expr:
        (x,) = self.args
        return sp.log(1 + x) - x

    def _eval_evalf(self, prec: int) -> sp.Expr:
        return sp.expand_func(self)._eval_evalf(prec)

    def _latex(self, printer) -> str:
        return rf"\operatorname{{log1pmx}}\left({printer._print(self.args[0])}\right)"


#: the kernel prover for identities in log1pmx, log1p, expm1 and atanh: write them out, then algebra
_prove_with_functions_expanded = ExpandFunctions((log1p, expm1, log1pmx))


def _series_in_t() -> Series:
    """The atanh series summed in ``t = (r - 1)/(r + 1)``; ``|t| < 1`` proved for every ``r > 0``.

    ``r = (1 + t)/(1 - t)`` inverts ``t(r)``; the kernel checks the inverse and
    proves SymPy's convergence condition at ``t = t(r)`` on the whole domain.
    """
    r, t = sp.Symbol("r", positive=True), sp.Symbol("t", real=True)
    return Series(change=(r, (1 + t) / (1 - t), t, (r - 1) / (r + 1)))


def series_coefficients(terms: int = SERIES_TERMS) -> list[sp.Rational]:
    """Coefficients of ``S(u) = (atanh(t) - t)/t^3``, ``u = t^2``, from SymPy's Taylor series.

    Examples
    --------
    >>> series_coefficients(3)
    [1/3, 1/5, 1/7]
    """
    t = sp.Symbol("t")
    taylor = sp.series(sp.atanh(t), t, 0, 2 * terms + 3).removeO()
    return [taylor.coeff(t, 2 * n + 3) for n in range(terms)]


def expm1mx_series(terms: int = TABLE_SERIES_TERMS) -> list[sp.Rational]:
    """Coefficients of ``r^2, r^3, ...`` in ``e^r - 1 - r`` from SymPy's Taylor series.

    Examples
    --------
    >>> expm1mx_series(3)
    [1/2, 1/6, 1/24]
    """
    r = sp.Symbol("r")
    taylor = sp.series(sp.exp(r) - 1 - r, r, 0, terms + 2).removeO()
    return [taylor.coeff(r, n) for n in range(2, terms + 2)]


def expm1mx_table() -> list[tuple[sp.Rational, sp.Expr, sp.Expr, sp.Expr]]:
    """Rows ``(c, e^c - 1 - c, e^c - 1, e^c)`` at ``c = j * TABLE_STEP`` over ``TABLE_RANGE``.

    With ``d = c + r``, the checked fact ``expm1mx-table`` gives
    ``e^d - 1 - d = (e^c - 1 - c) + (e^c - 1) r + e^c (e^r - 1 - r)``.
    """
    low, high = (int(bound / TABLE_STEP) for bound in TABLE_RANGE)
    rows = []
    for j in range(low, high + 1):
        c = j * TABLE_STEP
        rows.append((c, sp.exp(c) - 1 - c, sp.exp(c) - 1, sp.exp(c)))
    return rows


#: sums whose closed form SymPy gives on a branch proved to hold on the whole domain
_prove_sum = Series()


@dataclass(frozen=True)
class ParameterisedForm:
    """The stable form of one parameterisation, ready to print.

    ``kl = 1/2 (a + excess)`` with ``excess = x - log(1 + x) = -log1pmx(x)``.
    ``ratio`` is ``1 + x`` computed as a quotient (``v_p/v_q``), for the far
    branch where ``1 + x`` is not representable; ``log_ratio`` is its log
    (for the log-variance forms, the exact difference of the inputs).
    ``gradient`` and ``symmetric`` are written in the placeholders ``X``,
    ``A`` and ``R`` (standing for ``x``, ``a`` and ``ratio``); each was checked
    against SymPy's derivative of the KL and against the Jeffreys divergence.
    """

    name: str
    parameters: tuple[sp.Symbol, ...]
    x: sp.Expr
    a: sp.Expr
    ratio: sp.Expr
    log_ratio: sp.Expr
    gradient: dict[sp.Symbol, sp.Expr]
    symmetric: sp.Expr | None = None


#: placeholders for x, a and ratio in the printed gradient and Jeffreys forms
X, A, R = sp.Symbol("x", real=True), sp.Symbol("a", nonnegative=True), sp.Symbol("r", positive=True)


@dataclass(frozen=True)
class NumericForms:
    """Everything the code generator prints, taken from the verified ``stable`` derivation."""

    forms: dict[str, ParameterisedForm]
    series: list[sp.Rational]
    interval: tuple[sp.Rational, sp.Rational]
    #: expm1mx(r) coefficients of r^2, r^3, ... and the table rows (c, F, G, E)
    table_series: list[sp.Rational]
    table: list[tuple[sp.Rational, sp.Expr, sp.Expr, sp.Expr]]
    #: S(u) coefficients for the vectorised kernels (|s| <= 1/5) and their mantissa range
    fast_series: list[sp.Rational]
    mantissa_range: tuple[sp.Rational, sp.Rational]
    #: the kernels' compensated statements (symkl.kl.compensated), each a proved fact
    statements: dict[str, KernelStatement] = dataclasses.field(default_factory=dict)


def _symbols():
    s = univariate_symbols()
    var_p, var_q = sp.symbols("var_p var_q", positive=True)
    logvar_p, logvar_q = sp.symbols("logvar_p logvar_q", real=True)
    mu, logvar = sp.symbols("mu logvar", real=True)
    return s, var_p, var_q, logvar_p, logvar_q, mu, logvar


def _swapped(parameters: tuple[sp.Symbol, ...]) -> tuple[sp.Symbol, ...]:
    mu_p, s_p, mu_q, s_q = parameters
    return (mu_q, s_q, mu_p, s_p)


def numeric_forms() -> NumericForms:
    """The stable forms for ``var``, ``std``, ``logvar`` and the VAE prior, from ``stable``.

    Raises ``RuntimeError`` when the ``stable`` derivation does not verify: code
    is only generated from proved expressions.
    """
    _PROVED.clear()  # nothing is printable until this derivation is proved again
    derivation = derive("stable")
    report = derivation.verify()
    if not report.proved:
        raise RuntimeError(f"refusing to generate code from an unproved derivation:\n{report}")
    forms = derivation.attachments["numeric_forms"]
    # every statement handed out is a fact that the report just proved
    for label in (label for s in forms.statements.values() for label in s.labels):
        if not report.check(label).ok:
            raise RuntimeError(f"refusing to print kernel statement {label!r}: not proved")
    _PROVED.update(forms.statements)
    return forms


#: the kernel statements of the last proved ``stable``, by label (filled by numeric_forms)
_PROVED: dict[str, KernelStatement] = {}


def proved_statements() -> dict[str, KernelStatement]:
    """The kernels' compensated statements, by label, once ``stable`` is proved.

    The printers of :mod:`symkl.codegen` print a :class:`~symkl.kl.compensated.Claimed`
    node only from here; :func:`numeric_forms` runs (and must succeed) first.
    """
    if not _PROVED:
        numeric_forms()
    return dict(_PROVED)


def derive_stable() -> Derivation:
    """Derive the stable per-coordinate forms used by the numeric functions.

    Returns
    -------
    Derivation
        Steps from the univariate closed form (in variances) to
        ``1/2 [a - log1pmx(x)]``, with checked facts for the other
        parameterisations, the kernel and the gradients.

    Examples
    --------
    >>> d = derive_stable()
    >>> d.closed_form
    a/2 - log1pmx(x)/2
    """
    started = time.perf_counter()
    s, var_p, var_q, logvar_p, logvar_q, mu, logvar = _symbols()
    mu_p, mu_q, sigma_p, sigma_q = s.mu_p, s.mu_q, s.sigma_p, s.sigma_q
    half = sp.Rational(1, 2)
    univariate = derive("univariate")
    x, a = sp.Symbol("x", real=True), sp.Symbol("a", nonnegative=True)
    difference = mu_p - mu_q

    in_variances = univariate.closed_form.xreplace(
        {sigma_p: sp.sqrt(var_p), sigma_q: sp.sqrt(var_q)}
    )
    variance_ratio = half * ((var_p + difference**2) / var_q - 1 - sp.log(var_p / var_q))
    relative = half * (a + x - sp.log(1 + x))
    kernel = half * a - half * log1pmx(x)
    x_var = (var_p - var_q) / var_q
    a_var = difference**2 / var_q

    steps = [
        Step(
            "univariate-result",
            in_variances,
            r"the univariate result (derivation 'univariate') with $\sigma^2 = v$",
        ),
        Step(
            "variance-ratio",
            variance_ratio,
            r"$\log(\sigma_q/\sigma_p) = -\tfrac12 \log(v_p/v_q)$; collect over $v_q$",
            (r"$v_p, v_q > 0$",),
        ),
        Step(
            "relative-difference",
            relative,
            r"write $v_p/v_q = 1 + x$ with $x = (v_p - v_q)/v_q$, exact when $v_p \approx v_q$, "
            r"and $a = (\mu_p - \mu_q)^2/v_q$",
        ),
        Step(
            "log1pmx",
            kernel,
            r"$\operatorname{log1pmx}(x) = \log(1 + x) - x \le 0$: "
            "both terms are non-negative, so the sum cannot cancel",
            prove=_prove_with_functions_expanded,
        ),
    ]

    # ------------------------------------------------------------------ other parameterisations
    s_p, s_q = sp.symbols("s_p s_q", positive=True)
    # x = (s_p^2 - s_q^2)/s_q^2 = r (2 + r) with r = (s_p - s_q)/s_q: two roundings
    relative_std = (s_p - s_q) / s_q
    x_std = relative_std * (2 + relative_std)
    a_std = (difference / s_q) ** 2
    std_form = half * (a_std - log1pmx(x_std))
    delta = logvar_p - logvar_q
    x_logvar = expm1(delta)
    a_logvar = difference**2 * sp.exp(-logvar_q)
    at_logvar = {var_p: sp.exp(logvar_p), var_q: sp.exp(logvar_q)}
    logvar_form = half * (a_logvar + x_logvar - delta)
    prior = derive("std-normal")
    (total,) = prior.closed_form.atoms(sp.Sum)
    index = total.limits[0][0]
    summand = (prior.closed_form / total * total.function).xreplace(
        {prior.parameters[0][index]: mu, prior.parameters[1][index]: logvar}
    )
    prior_form = half * (mu**2 + expm1(logvar) - logvar)
    r = sp.Symbol("r", positive=True)
    t_of_r = (r - 1) / (r + 1)
    n = sp.Symbol("n", integer=True, nonnegative=True)
    c_point, r_offset = sp.symbols("c r", real=True)
    exponent, mantissa = sp.Symbol("e", real=True), sp.Symbol("m", positive=True)
    rho_std = r - 1
    s_std = rho_std / (2 + rho_std)

    kl_var = variance_ratio
    kl_std = univariate.closed_form.xreplace({sigma_p: s_p, sigma_q: s_q})
    kl_logvar = variance_ratio.xreplace(at_logvar)
    jeffreys = half * (X**2 + A * (1 + R)) / R
    forms = {
        "var": ParameterisedForm(
            "var",
            (mu_p, var_p, mu_q, var_q),
            x_var,
            a_var,
            var_p / var_q,
            sp.log(var_p / var_q),
            {
                mu_p: difference / var_q,
                var_p: X / (2 * var_p),
                mu_q: -difference / var_q,
                var_q: -(A + X) / (2 * var_q),
            },
            jeffreys,
        ),
        "std": ParameterisedForm(
            "std",
            (mu_p, s_p, mu_q, s_q),
            x_std,
            a_std,
            (s_p / s_q) ** 2,
            2 * sp.log(s_p / s_q),
            {
                mu_p: difference / s_q**2,
                s_p: X / s_p,
                mu_q: -difference / s_q**2,
                s_q: -(A + X) / s_q,
            },
            jeffreys,
        ),
        "logvar": ParameterisedForm(
            "logvar",
            (mu_p, logvar_p, mu_q, logvar_q),
            x_logvar,
            a_logvar,
            sp.exp(delta),
            delta,
            {
                mu_p: difference * sp.exp(-logvar_q),
                logvar_p: X / 2,
                mu_q: -difference * sp.exp(-logvar_q),
                logvar_q: -(A + X) / 2,
            },
            jeffreys,
        ),
        "std-normal": ParameterisedForm(
            "std-normal",
            (mu, logvar),
            expm1(logvar),
            mu**2,
            sp.exp(logvar),
            logvar,
            {mu: mu, logvar: X / 2},
        ),
    }
    kls = {"var": kl_var, "std": kl_std, "logvar": kl_logvar, "std-normal": summand}

    facts = [
        Fact(
            "standard deviations: $x = \\rho(2 + \\rho)$ with "
            "$\\rho = (\\sigma_p - \\sigma_q)/\\sigma_q$, "
            "$a = ((\\mu_p - \\mu_q)/\\sigma_q)^2$",
            kl_std,
            std_form,
            label="std-form",
            prove=_prove_with_functions_expanded,
        ),
        Fact(
            "log-variances: $v = e^{\\ell}$, $x = \\operatorname{expm1}(\\ell_p - \\ell_q)$ and "
            "$\\log(1 + x) = \\ell_p - \\ell_q$ exactly",
            kl_logvar,
            logvar_form,
            label="logvar-form",
            prove=_prove_with_functions_expanded,
        ),
        Fact(
            "the VAE prior per coordinate (derivation 'std-normal'): "
            "$\\tfrac12(\\mu^2 + \\operatorname{expm1}(\\ell) - \\ell)$",
            summand,
            prior_form,
            label="std-normal-form",
            prove=_prove_with_functions_expanded,
        ),
        Fact(
            "the kernel through atanh: with $t = x/(2 + x)$, "
            "$\\log(1+x) = 2\\operatorname{atanh} t$ (here $x = r - 1$, $r > 0$)",
            log1pmx(r - 1),
            -(r - 1) * t_of_r + 2 * (sp.atanh(t_of_r) - t_of_r),
            label="log1pmx-atanh",
            prove=_prove_with_functions_expanded,
        ),
        Fact(
            "the atanh series: $\\operatorname{atanh} t - t = t^3 S(t^2)$, "
            "$S(u) = \\sum_n u^n/(2n+3)$; the kernel keeps "
            f"{SERIES_TERMS} terms for $x \\in ({float(SERIES_INTERVAL[0])}, "
            f"{float(SERIES_INTERVAL[1])})$",
            sp.atanh(t_of_r) - t_of_r,
            t_of_r**3 * sp.Sum(t_of_r ** (2 * n) / (2 * n + 3), (n, 0, sp.oo)),
            label="atanh-series",
            prove=_series_in_t(),
        ),
        Fact(
            "log-variance differences away from 0: with $d = c + r$ ($c$ a table point), "
            "$e^d - 1 - d = (e^c - 1 - c) + (e^c - 1) r + e^c (e^r - 1 - r)$",
            sp.exp(c_point + r_offset) - 1 - (c_point + r_offset),
            (sp.exp(c_point) - 1 - c_point)
            + (sp.exp(c_point) - 1) * r_offset
            + sp.exp(c_point) * (sp.exp(r_offset) - 1 - r_offset),
            label="expm1mx-table",
            prove=_prove_with_functions_expanded,
        ),
        Fact(
            "the series of the table kernel: $e^r - 1 - r = \\sum_{n \\ge 2} r^n/n!$; "
            f"the kernel keeps {TABLE_SERIES_TERMS} terms for "
            f"$|r| \\le {sp.latex(TABLE_STEP / 2)}$",
            sp.exp(r_offset) - 1 - r_offset,
            sp.Sum(r_offset**n / sp.factorial(n), (n, 2, sp.oo)),
            label="expm1mx-series",
            prove=_prove_sum,
        ),
        Fact(
            "the vectorised kernels' logarithm: with the quotient $q = 2^e m$, "
            "$\\log q = e \\log 2 + 2\\operatorname{atanh} s$, $s = (m-1)/(m+1)$; "
            f"$m \\in [{sp.latex(MANTISSA_RANGE[0])}, {sp.latex(MANTISSA_RANGE[1])})$ "
            f"gives $|s| \\le 1/5$ and {FAST_SERIES_TERMS} terms of $S$ "
            "(fact atanh-series).  Where $e = 0$ the kernels take $s = \\rho/(2 + \\rho)$ "
            "from the exact relative difference instead (facts log1pmx-atanh, std-near)",
            sp.log(2**exponent * mantissa),
            exponent * sp.log(2) + 2 * sp.atanh((mantissa - 1) / (mantissa + 1)),
            label="log-split",
            prove=_prove_with_functions_expanded,
        ),
        Fact(
            "standard deviations near each other: with $x = \\rho(2 + \\rho)$ and "
            "$s = \\rho/(2 + \\rho)$, $x - \\log(1 + x) = \\rho s (4 + \\rho) - "
            "4(\\operatorname{atanh} s - s)$, no cancellation (here $\\rho = r - 1$, $r > 0$)",
            -log1pmx(rho_std * (2 + rho_std)),
            rho_std * s_std * (4 + rho_std) - 4 * (sp.atanh(s_std) - s_std),
            label="std-near",
            prove=_prove_with_functions_expanded,
        ),
    ]
    for form in forms.values():
        kl = kls[form.name]
        placeholders = {X: form.x, A: form.a, R: form.ratio}
        for parameter, derivative in form.gradient.items():
            facts.append(
                Fact(
                    f"gradient ({form.name}) with respect to ${sp.latex(parameter)}$, "
                    "SymPy's derivative (left) in stable form (right)",
                    sp.diff(kl, parameter),
                    derivative.xreplace(placeholders),
                    label=f"gradient-{form.name}-{parameter}",
                    prove=_prove_with_functions_expanded,
                )
            )
        if form.symmetric is not None:
            reverse = kl.xreplace(
                dict(zip(form.parameters, _swapped(form.parameters), strict=True))
            )
            facts.append(
                Fact(
                    f"Jeffreys divergence ({form.name}) without logs or cancellation",
                    kl + reverse,
                    form.symmetric.xreplace(placeholders),
                    label=f"jeffreys-{form.name}",
                    prove=_prove_with_functions_expanded,
                )
            )

    facts += _extreme_value_facts(forms, kls)
    facts += _exact_sum_facts(forms, kls)
    facts += _exp_double_facts()
    statements = kernel_statements()
    facts += [fact for statement in statements.values() for fact in statement.facts()]

    derivation = Derivation(
        name="stable",
        title="Stable forms for numeric code",
        lhs=kl_symbol(),
        steps=steps,
        definitions={
            sigma_p: sp.sqrt(var_p),
            sigma_q: sp.sqrt(var_q),
            x: x_var,
            a: a_var,
        },
        parameters=(mu_p, var_p, mu_q, var_q),
        notes=[
            "The textbook form adds three $O(1)$ terms to get a KL that may be $10^{-30}$: "
            "every digit cancels.  The last step has two non-negative terms and no "
            "cancellation; $x$ comes from the variance difference, exact (Sterbenz) when the "
            "variances are within a factor 2.",
            "The numeric kernels are printed from these expressions by SymPy's C and NumPy "
            "printers (`symkl/_kernels.c`, `symkl/_kernels_numpy.py`, regenerated by "
            "`symkl build`).",
            "The kernels' compensated statements (facts `node-*`) are equalities in real "
            "arithmetic once TwoSum, ProductError and Lo are read as their exact meanings; "
            f"that those nodes are exact in IEEE binary64 is the assumption "
            f"{ERROR_FREE_TRANSFORMATIONS.name} ({ERROR_FREE_TRANSFORMATIONS.title}), "
            "stated once in `symkl.kl.compensated` with exact rational evidence.",
        ],
        facts=facts,
        attachments={
            "numeric_forms": NumericForms(
                forms,
                series_coefficients(),
                SERIES_INTERVAL,
                expm1mx_series(),
                expm1mx_table(),
                series_coefficients(FAST_SERIES_TERMS),
                MANTISSA_RANGE,
                statements,
            )
        },
    )
    return derivation.replace(derive_seconds=time.perf_counter() - started)


# ---------------------------------------------------------------------------- extreme values
#: Facts behind the kernels' behaviour at the ends of the double range (issue 14): log-ratios
#: by exponent splitting (never an underflowing quotient), a = d^2 e^{-l} with the exponent of
#: d taken out, the excess halved before it can overflow, and the Jeffreys divergence as a sum
#: of non-negative parts without a ratio of squares.


def _extreme_value_facts(forms: dict[str, ParameterisedForm], kls: dict[str, sp.Expr]) -> list:
    half = sp.Rational(1, 2)
    e_u, e_v, k = sp.symbols("e_u e_v k", integer=True)
    m_u, m_v, m = sp.symbols("m_u m_v m", positive=True)
    ell, d = sp.symbols("ell d", real=True)
    facts = [
        Fact(
            "log-ratios by exponent splitting: with $u = 2^{e_u} m_u$, $v = 2^{e_v} m_v$, "
            "$\\log(u/v) = (e_u - e_v)\\log 2 + \\log(m_u/m_v)$; $m_u/m_v \\in (1/2, 2)$ "
            "never under- or overflows, where $u/v$ can",
            sp.log((2**e_u * m_u) / (2**e_v * m_v)),
            (e_u - e_v) * sp.log(2) + sp.log(m_u / m_v),
            label="log-ratio-split",
            prove=_prove_with_functions_expanded,
        ),
        Fact(
            "log-ratios as differences of logs, where the quotient $u/v$ is not a normal "
            "number (then $|\\log(u/v)| > 708$ and the two logs' roundings are below an ulp "
            "of it)",
            sp.log(m_u / m_v),
            sp.log(m_u) - sp.log(m_v),
            label="log-ratio-difference",
            prove=_prove_with_functions_expanded,
        ),
        Fact(
            "the log-variance mean term with the exponent of the mean difference taken out: "
            "$d = 2^k m$, $d^2 e^{-\\ell} = 2^{2k}(m^2 e^{-\\ell})$, and with "
            "$e^{-\\ell} = (e^{-\\ell/2})^2$ where $e^{-\\ell}$ alone overflows",
            (2**k * m) ** 2 * sp.exp(-ell),
            2 ** (2 * k) * ((m**2 * sp.exp(-ell / 2)) * sp.exp(-ell / 2)),
            label="mean-term-split",
            prove=_prove_with_functions_expanded,
        ),
        Fact(
            "the relative difference scaled by a power of two (the array kernels' "
            "Dekker products then neither overflow nor lose digits in the subnormal range): "
            "$(2^k u - 2^k v)/(2^k v) = (u - v)/v$, and multiplying by $2^k$ is exact",
            (2**k * m_u - 2**k * m_v) / (2**k * m_v),
            (m_u - m_v) / m_v,
            label="relative-difference-scaled",
            prove=_prove_with_functions_expanded,
        ),
        Fact(
            "the mean term with the mean difference scaled by $2^k$ and scaled back "
            "after the exponential: $\\tfrac12 (2^k d)^2 e^{-\\ell}\\,2^{-k} 2^{-k} = "
            "\\tfrac12 d^2 e^{-\\ell}$",
            half * (2**k * d) ** 2 * sp.exp(-ell) * 2**-k * 2**-k,
            half * d**2 * sp.exp(-ell),
            label="mean-term-scaled",
            prove=_prove_with_functions_expanded,
        ),
        Fact(
            "the same with the exponential split and the scale taken back between its "
            "halves, where $e^{-\\ell}$ alone leaves the range: "
            "$((\\tfrac12 (2^k d)^2 e^{-\\ell/2})\\,2^{-k})\\,e^{-\\ell/2}\\,2^{-k} = "
            "\\tfrac12 d^2 e^{-\\ell}$",
            half * (2**k * d) ** 2 * sp.exp(-ell / 2) * 2**-k * sp.exp(-ell / 2) * 2**-k,
            half * d**2 * sp.exp(-ell),
            label="mean-term-scaled-split",
            prove=_prove_with_functions_expanded,
        ),
        Fact(
            "the vectorised log-variance kernels' exponential: with $d = n\\log 2 + r$, "
            "$|r| \\le \\log(2)/2$, $e^d - 1 - d = 2^n (1 + r + (e^r - 1 - r)) - (1 + d)$, "
            "carried as hi + lo; at $n = 0$ it is $e^r - 1 - r$ itself "
            "(series: fact expm1mx-series)",
            sp.exp(k * sp.log(2) + ell) - 1 - (k * sp.log(2) + ell),
            2**k * (1 + ell + (sp.exp(ell) - 1 - ell)) - (1 + (k * sp.log(2) + ell)),
            label="exp-split",
            prove=_prove_with_functions_expanded,
        ),
        Fact(
            "half the log-variance excess where $e^d$ overflows but the KL does not: "
            "$\\tfrac12(e^d - 1 - d) = (\\tfrac12 e^{d/2}) e^{d/2} - \\tfrac12(1 + d)$",
            half * (sp.exp(d) - 1 - d),
            (half * sp.exp(d / 2)) * sp.exp(d / 2) - half * (1 + d),
            label="excess-half",
            prove=_prove_with_functions_expanded,
        ),
        *_tiny_row_facts(),
    ]
    facts += [
        Fact(
            f"gradient ({name}) with respect to ${sp.latex(parameter)}$ in an order of "
            "operations that overflows only where the gradient does",
            sp.diff(kls[name], parameter),
            rhs,
            label=f"gradient-range-{name}-{parameter}",
            prove=_prove_with_functions_expanded,
        )
        for (name, parameter), rhs in ranged_gradients(forms).items()
    ]
    for form in forms.values():
        if len(form.parameters) != 4:
            continue
        swap = dict(zip(form.parameters, _swapped(form.parameters), strict=True))
        kl = kls[form.name]
        facts.append(
            Fact(
                f"Jeffreys divergence ({form.name}) as non-negative parts: "
                "$\\tfrac12(a + a' - x x')$ with $a'$, $x'$ of $(q, p)$; "
                "$(1 + x)(1 + x') = 1$ gives $x + x' = -x x' \\ge 0$, and no ratio of "
                "squares can underflow to $0/0$",
                kl + kl.xreplace(swap),
                half * (form.a + form.a.xreplace(swap) - form.x * form.x.xreplace(swap)),
                label=f"jeffreys-parts-{form.name}",
                prove=_prove_with_functions_expanded,
            )
        )
    return facts


# ------------------------------------------------------------------------ rows of tiny terms
#: a float64 row total below 2^TINY_TOTAL_EXPONENT (and not NaN) is recomputed from terms
#: scaled by 2^(2 TINY_SCALE_EXPONENT) (powers of two: exact), summed, and scaled back once,
#: so that terms below half the smallest subnormal still add up (issue 14): every term of
#: such a row is below 2^-960, hence a < 2^-959 and the excess below 2^-959, so that
#: |x| < 2^-479 (x of the quotient forms is then 0 exactly: x != 0 means |x| >= 2^-53)
TINY_TOTAL_EXPONENT = -960
TINY_SCALE_EXPONENT = 500
#: placeholders of the scaled term: half_a_scaled = 2^(2S) a/2, x_scaled = 2^S x (or 2^S d)
HALF_A_SCALED, X_SCALED = sp.symbols("half_a_scaled x_scaled", real=True)


def tiny_scaled_term() -> sp.Expr:
    """``2^(2S)`` times a tiny term, in the placeholders :data:`HALF_A_SCALED` and
    :data:`X_SCALED` (facts tiny-term-scaled, excess-small, expm1mx-small).

    Examples
    --------
    >>> tiny_scaled_term()
    half_a_scaled + x_scaled**2/4
    """
    return HALF_A_SCALED + X_SCALED**2 / 4


def _tiny_row_facts() -> list:
    """The scaled form of a row of tiny terms and the series behind its truncation."""
    half = sp.Rational(1, 2)
    scale = sp.Integer(TINY_SCALE_EXPONENT)
    a_value = sp.Symbol("a", nonnegative=True)
    x, d = sp.symbols("x d", real=True)
    r = sp.Symbol("r", positive=True)
    t_of_r = (r - 1) / (r + 1)
    n = sp.Symbol("n", integer=True, nonnegative=True)
    term = tiny_scaled_term()
    return [
        Fact(
            f"a tiny term scaled by $2^{{2S}}$, $S = {TINY_SCALE_EXPONENT}$ (exact: a power "
            "of two), with the excess $x^2/2$ of facts excess-small and expm1mx-small: "
            "$2^{2S}\\tfrac12(a + x^2/2) = 2^{2S} a/2 + (2^S x)^2/4$",
            2 ** (2 * scale) * half * (a_value + x**2 / 2),
            term.xreplace({HALF_A_SCALED: 2 ** (2 * scale) * a_value / 2, X_SCALED: 2**scale * x}),
            label="tiny-term-scaled",
            prove=_prove_with_functions_expanded,
        ),
        Fact(
            "the excess near $x = 0$ with its remainder written out (here $x = r - 1$, "
            "$r > 0$, $t = x/(2 + x)$, $\\log(1 + x) = 2\\operatorname{atanh} t$ by fact "
            "log1pmx-atanh): $x - \\log(1 + x) = x^2/2 - x^3 R$, "
            "$R = 1/(2(2 + x)) + 2 S(t^2)/(2 + x)^3$ with $S$ the convergent series of fact "
            "atanh-series; for $|x| < 2^{-479}$ (rows of tiny terms) $0 < R < 1/2$, so "
            "$x^3 R$ is below $2^{-478}$ of $x^2/2$, and the kernels keep $x^2/2$",
            (r - 1) - 2 * sp.atanh(t_of_r),
            (r - 1) ** 2 / 2
            - (r - 1) ** 3
            * (
                1 / (2 * (r + 1))
                + 2 * sp.Sum(t_of_r ** (2 * n) / (2 * n + 3), (n, 0, sp.oo)) / (r + 1) ** 3
            ),
            label="excess-small",
            prove=_series_in_t(),
        ),
        Fact(
            "the log-variance excess near $d = 0$ with its remainder written out: "
            "$e^d - 1 - d = d^2/2 + d^3 Q(d)$, $Q(d) = \\sum_n d^n/(n + 3)!$; for "
            "$|d| < 2^{-479}$ $|d^3 Q(d)| < |d|^3/5$, below $2^{-479}$ of $d^2/2$, and the "
            "kernels keep $d^2/2$ (x = d in the scaled term)",
            sp.exp(d) - 1 - d,
            d**2 / 2 + d**3 * sp.Sum(d**n / sp.factorial(n + 3), (n, 0, sp.oo)),
            label="expm1mx-small",
            prove=_prove_sum,
        ),
    ]


def ranged_gradients(forms: dict[str, ParameterisedForm]) -> dict[tuple[str, sp.Symbol], sp.Expr]:
    """Gradient components whose textbook order of operations overflows or underflows
    where the gradient itself is finite, written (unevaluated) in a safe order.

    ``var_p`` of ``var`` is the form for ``var_p >= var_q`` (below, ``x/(2 v_p)`` is safe).
    """

    def ordered(*factors: sp.Expr) -> sp.Expr:
        return sp.Mul(*factors, evaluate=False)

    _, var_p, _, var_q = forms["var"].parameters
    mu_p, s_p, mu_q, s_q = forms["std"].parameters
    rho = (s_p - s_q) / s_q
    m_p, _, m_q, logvar_q = forms["logvar"].parameters
    e_half = sp.exp(-logvar_q / 2)
    return {
        ("var", var_p): ordered(sp.Rational(-1, 2), ordered((var_q - var_p) / var_p, 1 / var_q)),
        ("std", mu_p): ordered(ordered(mu_p - mu_q, 1 / s_q), 1 / s_q),
        ("std", mu_q): ordered(ordered(mu_q - mu_p, 1 / s_q), 1 / s_q),
        ("std", s_p): ordered(ordered(rho, 1 / s_p), rho + 2),
        ("logvar", m_p): ordered(ordered(m_p - m_q, e_half), e_half),
        ("logvar", m_q): ordered(ordered(m_q - m_p, e_half), e_half),
    }


# ------------------------------------------------------------------ cancelling scale gradients
#: a free positive symbol in the exact-sum facts: they hold for every value of it, and the
#: printers set it to a power of 2 (an exact scaling) that keeps the squares in range
EXACT_SCALE = sp.Symbol("kappa", positive=True)


@dataclass(frozen=True)
class ExactSum:
    r"""A gradient component ``(sum_i (n_i/d_i)^2 k_i + sum_j t_j) f_1 f_2 ...`` whose sum cancels.

    ``-(a + x)/v`` (the derivative in the scale of q) loses every digit where
    ``a ~ -x``: the three terms of ``a + x`` (``a = (mu_p - mu_q)^2/v_q``, ``x``
    itself two terms) are written out here so that a printer can take each square
    ``(n/d)^2`` as ``hi + lo`` exactly (the quotient's remainder, TwoProduct of the
    square) and add them with TwoSum: the sum is then right to ``2^-100`` of its
    largest term, where the textbook order keeps ``2^-52``.  ``factors`` are applied
    after the sum, left to right (``(sum f_1) f_2``...), so nothing under- or
    overflows before the result does.  ``scale`` (:data:`EXACT_SCALE`) is a free
    positive symbol of the claim, set by the printer to a power of 2 chosen from
    ``scale_of`` (exact: it only moves exponents).

    Examples
    --------
    >>> forms = derive_stable().attachments["numeric_forms"].forms
    >>> exact = exact_sum_gradients(forms)
    >>> sorted(str(p) for _, p in exact)
    ['logvar_p', 'logvar_q', 'mu_p', 'mu_q', 's_q', 'var_q']
    """

    squares: tuple[tuple[sp.Expr, sp.Expr, sp.Expr], ...]
    terms: tuple[sp.Expr, ...]
    factors: tuple[sp.Expr, ...]
    scale_of: sp.Expr | None = None
    #: ``(t, s)``: ``kappa = 2^s`` where ``|scale_of| < 2^-t``, ``2^-s`` where it exceeds
    #: ``2^t``, else 1
    scale_levels: tuple[int, int] = (500, 300)

    def expression(self) -> sp.Expr:
        """The right-hand side of the claim, in the printed order of operations."""
        total = sp.Add(
            *(sp.Mul(sp.Pow(n / d, 2), k, evaluate=False) for n, d, k in self.squares),
            *self.terms,
            evaluate=False,
        )
        return sp.Mul(total, *self.factors, evaluate=False)


def exact_sum_gradients(
    forms: dict[str, ParameterisedForm],
) -> dict[tuple[str, sp.Symbol], ExactSum]:
    """The scale-of-q gradient components as exact sums (facts ``gradient-exact-*``).

    ``var``: ``-(m^2 + v_p - v_q)/(2 v_q^2)``, ``m = mu_p - mu_q``, every term scaled by
    ``kappa^2`` (``m`` by ``kappa``); ``std``: ``-((m/s_q)^2 + (s_p/s_q)^2 - 1)/s_q``;
    ``logvar``: ``-((kappa m)^2 e^{-l_q}/(2 kappa^2) + e^{l_p - l_q}/2 - 1/2)``, where
    ``x = e^{l_p - l_q} - 1`` is written as two terms; the array target takes each
    exponential as ``2^n (t + t_lo)`` (facts exp-double-split, node-exp-double-*) and
    ``kappa`` a power of 2 near ``e^{-l_q/2}``, so that the square times ``t`` is near 1.
    """
    kappa = EXACT_SCALE
    half = sp.Rational(1, 2)
    mu_p, var_p, mu_q, var_q = forms["var"].parameters
    _, s_p, _, s_q = forms["std"].parameters
    _, logvar_p, _, logvar_q = forms["logvar"].parameters
    m = mu_p - mu_q
    return {
        ("var", var_q): ExactSum(
            ((kappa * m, sp.Integer(1), sp.Integer(1)),),
            (kappa**2 * var_p, -(kappa**2) * var_q),
            (1 / (kappa**2 * var_q), -half, 1 / var_q),
            var_q,
        ),
        ("std", s_q): ExactSum(
            ((m, s_q, sp.Integer(1)), (s_p, s_q, sp.Integer(1))),
            (sp.Integer(-1),),
            (sp.Integer(-1), 1 / s_q),
        ),
        # the log-variance gradient in full (the array target's double-double exponential):
        # m e^{-l_q} as one rounded product, x/2 = e^{l_p - l_q}/2 - 1/2 with d_lo carried
        ("logvar", mu_p): ExactSum((), ((mu_p - mu_q) * sp.exp(-logvar_q),), ()),
        ("logvar", mu_q): ExactSum((), ((mu_q - mu_p) * sp.exp(-logvar_q),), ()),
        ("logvar", logvar_p): ExactSum((), (sp.exp(logvar_p - logvar_q) / 2, -half), ()),
        # halved terms: e^{l_p - l_q}/2 is finite where e^{l_p - l_q} alone overflows
        ("logvar", logvar_q): ExactSum(
            ((kappa * m, sp.Integer(1), sp.exp(-logvar_q) / (2 * kappa**2)),),
            (sp.exp(logvar_p - logvar_q) / 2, -half),
            (sp.Integer(-1),),
        ),
    }


def jeffreys_exact_gradients(
    forms: dict[str, ParameterisedForm],
) -> dict[tuple[str, sp.Symbol], ExactSum]:
    """The scale gradients of the Jeffreys divergence ``J = KL(p||q) + KL(q||p)`` as exact
    sums (facts ``jeffreys-gradient-exact-*``): the two KLs' derivatives have opposite signs
    and cancel where ``J`` is stationary in a scale.

    ``std``: ``((s_p/s_q)^2 - (s_q/s_p)^2 - (m/s_p)^2)/s_p``; ``var``: ``(v_p^2 - v_q^2 -
    m^2 v_q)/(2 v_p^2 v_q)`` with ``kappa`` (a power of 2, about ``1/v_p``) on ``v_p``,
    ``v_q`` and ``m``; ``logvar``: ``e^d/2 - e^{-d}/2 - (kappa m)^2 e^{-l_p}/(2 kappa^2)``,
    ``d = l_p - l_q``, each exponential taken as ``2^n (t + t_lo)`` by the array target.  The
    derivatives in q's scale are the same with p and q exchanged.
    """
    kappa = EXACT_SCALE
    half = sp.Rational(1, 2)
    one = sp.Integer(1)
    mu_p, var_p, mu_q, var_q = forms["var"].parameters
    _, s_p, _, s_q = forms["std"].parameters
    _, logvar_p, _, logvar_q = forms["logvar"].parameters

    def std(mu_p, s_p, mu_q, s_q):
        return ExactSum(
            ((s_p, s_q, one), (s_q, s_p, -one), (mu_p - mu_q, s_p, -one)), (), (1 / s_p,)
        )

    def var(mu_p, var_p, mu_q, var_q):
        return ExactSum(
            (
                (kappa * var_p, one, one),
                (kappa * var_q, one, -one),
                (kappa * (mu_p - mu_q), one, -var_q),
            ),
            (),
            (1 / (kappa * var_p), 1 / (kappa * var_p), 1 / var_q, half),
            var_p,
            (300, 600),
        )

    def logvar(mu_p, logvar_p, mu_q, logvar_q):
        return ExactSum(
            ((kappa * (mu_p - mu_q), one, -sp.exp(-logvar_p) / (2 * kappa**2)),),
            (sp.exp(logvar_p - logvar_q) / 2, -sp.exp(logvar_q - logvar_p) / 2),
            (),
        )

    return {
        ("std", s_p): std(mu_p, s_p, mu_q, s_q),
        ("std", s_q): std(mu_q, s_q, mu_p, s_p),
        ("var", var_p): var(mu_p, var_p, mu_q, var_q),
        ("var", var_q): var(mu_q, var_q, mu_p, var_p),
        ("logvar", logvar_p): logvar(mu_p, logvar_p, mu_q, logvar_q),
        ("logvar", logvar_q): logvar(mu_q, logvar_q, mu_p, logvar_p),
    }


def _exact_sum_facts(forms: dict[str, ParameterisedForm], kls: dict[str, sp.Expr]) -> list:
    jeffreys = {}
    for name in ("std", "var", "logvar"):
        swap = dict(zip(forms[name].parameters, _swapped(forms[name].parameters), strict=True))
        jeffreys[name] = kls[name] + kls[name].xreplace(swap)
    return [
        Fact(
            f"Jeffreys divergence ({name}): its gradient with respect to ${sp.latex(parameter)}$ "
            "as a compensated sum of squares and terms (for every $\\kappa > 0$)",
            sp.diff(jeffreys[name], parameter),
            exact.expression(),
            label=f"jeffreys-gradient-exact-{name}-{parameter}",
            prove=_prove_with_functions_expanded,
        )
        for (name, parameter), exact in jeffreys_exact_gradients(forms).items()
    ] + [
        Fact(
            f"gradient ({name}) with respect to ${sp.latex(parameter)}$ as a sum of squares "
            "and terms that a compensated sum adds without cancellation (for every "
            "$\\kappa > 0$; the kernels take a power of 2)",
            sp.diff(kls[name], parameter),
            exact.expression(),
            label=f"gradient-exact-{name}-{parameter}",
            prove=_prove_with_functions_expanded,
        )
        for (name, parameter), exact in exact_sum_gradients(forms).items()
    ]


# ------------------------------------------------- the array gradients' double-double exponential
#: the tables of the double-double exponential: (bits of the step 2^-bits, largest |j|); with
#: |r| <= log(2)/2 + 2^-40, r - c_1 - c_2 - c_3 lies within 2^-19 of 0
EXP_TABLE_LEVELS = ((6, 23), (12, 32), (18, 32))


def exp_double_table() -> list[list[tuple[sp.Rational, sp.Expr]]]:
    """Rows ``(c, e^c)``, ``c = j 2^-bits``, per level of :data:`EXP_TABLE_LEVELS`."""
    return [
        [(sp.Rational(j, 2**bits), sp.exp(sp.Rational(j, 2**bits))) for j in range(-top, top + 1)]
        for bits, top in EXP_TABLE_LEVELS
    ]


def _exp_double_facts() -> list:
    n = sp.Symbol("n", integer=True)
    c_1, c_2, c_3, s = sp.symbols("c_1 c_2 c_3 s", real=True)
    return [
        Fact(
            "the array gradients' exponential in double-double: with "
            "$x = n \\log 2 + c_1 + c_2 + c_3 + s$ ($c_i$ multiples of $2^{-6}$, $2^{-12}$, "
            "$2^{-18}$ read from tables of $e^{c_i}$ as hi + lo, $|s| \\le 2^{-19}$), "
            "$e^x = 2^n e^{c_1} e^{c_2} e^{c_3} e^s$, $e^s$ by its series "
            "(node-exp-double-series), the products by TwoProduct (node-product-lo)",
            sp.exp(n * sp.log(2) + c_1 + c_2 + c_3 + s),
            2**n * sp.exp(c_1) * sp.exp(c_2) * sp.exp(c_3) * sp.exp(s),
            label="exp-double-split",
            prove=_prove_with_functions_expanded,
        )
    ]
