"""Pieces shared by the renderers: textbook printing, check notes, term names, plain text.

The printers are SymPy printer subclasses that print a few shapes as a
textbook does: a Gaussian density as ``e^{…}/(σ√(2π))`` (not
``√2 e^{…}/(2√π σ)``), sums without ``+ -``.  The check notes are read from
``report.as_dict()``, so a live :class:`~symkl.derivation.VerificationReport`
and a stored certificate (:class:`symkl.build.Certificate`) render alike.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

from symkl.derivation import Derivation
from symkl.proof.lemmas import LEMMAS, ByLemma, ByLemmas

__all__ = [
    "TERM_TITLES",
    "TextbookLatexPrinter",
    "TextbookStrPrinter",
    "displayed_steps",
    "expr_latex",
    "expr_latex_lines",
    "expr_text",
    "fact_latex",
    "fact_note",
    "method_note",
    "plain_text",
    "step_checks",
    "terms_latex",
    "verdict_line",
]

#: display names of the named terms; the same names are used in the API and docs
TERM_TITLES = {
    "log_det_ratio": "log-determinant ratio",
    "trace_term": "trace term",
    "mean_term": "mean (Mahalanobis) term",
    "dimension_term": "dimension constant",
}

#: the minimum digits of agreement when a report does not say (``Derivation.verify``'s default)
_DEFAULT_MIN_DIGITS = 25
_TWO_PI = sp.sqrt(2 * sp.pi)


def _density_parts(expr: sp.Expr) -> tuple[sp.Expr, sp.Expr] | None:
    """``(exponent, scale)`` when ``expr`` is ``exp(exponent) / (scale * sqrt(2*pi))``.

    ``scale`` is what is left of the normalising constant once ``sqrt(2*pi)`` is
    taken out (``sigma``), and must be free of ``pi``.
    """
    if not isinstance(expr, sp.Mul):
        return None
    exponentials = [factor for factor in expr.args if isinstance(factor, sp.exp)]
    if len(exponentials) != 1:
        return None
    [exponential] = exponentials
    constant = sp.Mul(*(factor for factor in expr.args if factor is not exponential))
    if not constant.has(sp.pi):
        return None
    scale = sp.powsimp(sp.powdenest(1 / (constant * _TWO_PI), force=False))
    if scale.has(sp.pi) or scale.has(sp.exp):
        return None
    return exponential.args[0], scale


def _textbook_add_order(expr: sp.Add) -> list[sp.Expr]:
    """Terms of a sum as a textbook writes them: logarithms first, constants last."""
    terms = list(expr.args)
    return sorted(
        terms,
        key=lambda term: 0 if term.has(sp.log) else 2 if term.is_number else 1,
    )


class TextbookLatexPrinter(LatexPrinter):
    """LaTeX with textbook shapes: ``\\frac{e^{…}}{\\sigma \\sqrt{2 \\pi}}``, no ``+ -``.

    Examples
    --------
    >>> x, s = sp.Symbol("x", real=True), sp.Symbol("sigma", positive=True)
    >>> TextbookLatexPrinter().doprint(sp.exp(-x**2 / (2 * s**2)) / (sp.sqrt(2 * sp.pi) * s))
    '\\\\frac{e^{- \\\\frac{x^{2}}{2 \\\\sigma^{2}}}}{\\\\sigma \\\\sqrt{2 \\\\pi}}'
    """

    _default_settings: ClassVar[dict[str, Any]] = {
        **LatexPrinter._default_settings,
        "ln_notation": False,
        "order": "none",
    }

    def _print_Mul(self, expr: sp.Mul) -> str:
        parts = _density_parts(expr)
        if parts is None:
            return super()._print_Mul(expr)
        exponent, scale = parts
        scale_tex = "" if scale == 1 else self._print(scale) + " "
        return rf"\frac{{e^{{{self._print(exponent)}}}}}{{{scale_tex}\sqrt{{2 \pi}}}}"

    def _print_Add(self, expr: sp.Add, order: str | None = None) -> str:
        return re.sub(r"\+ -\s*", "- ", super()._print_Add(expr, order))

    # matrix expressions as the paper writes them: x - mu, L^{-T}, I_k, tr, |Sigma|

    def _matrix_factor(self, expr: sp.Basic) -> str:
        text = self._print(expr)
        return text if isinstance(expr, sp.MatrixSymbol) else rf"\left({text}\right)"

    def _print_MatAdd(self, expr: sp.MatAdd) -> str:
        terms = sorted(expr.args, key=lambda t: t.could_extract_minus_sign())
        text = ""
        for term in terms:
            negative = term.could_extract_minus_sign()
            body = self._print(-term if negative else term)
            text += (" - " if negative else " + ") + body if text else ("- " + body if negative
                                                                         else body)
        return text

    def _print_Transpose(self, expr: sp.Transpose) -> str:
        return rf"{self._matrix_factor(expr.arg)}^{{\top}}"

    def _print_Inverse(self, expr: sp.Inverse) -> str:
        if isinstance(expr.arg, sp.Transpose):
            return rf"{self._matrix_factor(expr.arg.arg)}^{{-\top}}"
        return rf"{self._matrix_factor(expr.arg)}^{{-1}}"

    def _print_Identity(self, expr: sp.Identity) -> str:
        return rf"I_{{{self._print(expr.rows)}}}"

    def _print_Sum(self, expr: sp.Sum) -> str:
        r"""A double sum as nested sums, ``\sum_{i=1}^{k} \sum_{j=1}^{i - 1}``, as on paper."""
        if len(expr.limits) == 1 or any(len(limit) != 3 for limit in expr.limits):
            return super()._print_Sum(expr)
        signs = "".join(
            rf"\sum_{{{self._print(variable)}={sp.latex(low)}}}^{{{sp.latex(high)}}} "
            for variable, low, high in reversed(expr.limits)  # SymPy lists the innermost first
        )
        body = self._print(expr.function)
        if isinstance(expr.function, sp.Add):
            body = rf"\left({body}\right)"
        return signs + body


class TextbookStrPrinter(StrPrinter):
    """Plain text with the same shapes: ``exp(-x**2/(2*sigma**2))/(sigma*sqrt(2*pi))``.

    Examples
    --------
    >>> x, s = sp.Symbol("x", real=True), sp.Symbol("sigma", positive=True)
    >>> TextbookStrPrinter().doprint(sp.exp(-x**2 / (2 * s**2)) / (sp.sqrt(2 * sp.pi) * s))
    'exp(-x**2/(2*sigma**2))/(sigma*sqrt(2*pi))'
    """

    _default_settings: ClassVar[dict[str, Any]] = {**StrPrinter._default_settings, "order": "none"}

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        # placeholders named in LaTeX (D_{\mathrm{KL}}\left(p \,\|\, q\right)) read as text
        name = super()._print_Symbol(expr)
        if "\\" not in name:
            return name
        name = re.sub(r"\\(?:left|right)(?=[^A-Za-z])", "", name)
        return _plain_math(name).replace("  ", " ")

    def _print_Mul(self, expr: sp.Mul) -> str:
        parts = _density_parts(expr)
        if parts is None:
            return super()._print_Mul(expr)
        exponent, scale = parts
        scale_text = "" if scale == 1 else self.parenthesize(scale, 50) + "*"
        return f"exp({self._print(exponent)})/({scale_text}sqrt(2*pi))"

    def _print_Add(self, expr: sp.Add, order: str | None = None) -> str:
        return re.sub(r"\+ -", "- ", super()._print_Add(expr, order))


def expr_latex(expr: sp.Expr, *, textbook_order: bool = False) -> str:
    """LaTeX of an expression (natural log as ``\\log``, textbook shapes).

    With ``textbook_order`` a sum is written logarithms first, constants last.
    """
    if textbook_order and isinstance(expr, sp.Add):
        printer = TextbookLatexPrinter()
        terms = [printer.doprint(term) for term in _textbook_add_order(expr)]
        return _join_terms(terms)
    return TextbookLatexPrinter().doprint(expr)


def _join_terms(terms: list[str]) -> str:
    text = terms[0]
    for term in terms[1:]:
        text += f" {term}" if term.startswith("-") else f" + {term}"
    return text


def expr_text(expr: sp.Expr) -> str:
    """Plain text of an expression (SymPy's ``str`` with the textbook shapes)."""
    return TextbookStrPrinter().doprint(expr)


def expr_latex_lines(expr: sp.Expr, width: int = 110, *, textbook_order: bool = False) -> list[str]:
    """LaTeX of an expression broken at top-level ``+``/``-`` into lines of ~``width`` chars.

    Long sums (the middle steps of a derivation) otherwise run off the page;
    the pieces are meant for consecutive ``align*`` rows.
    """
    whole = expr_latex(expr, textbook_order=textbook_order)
    if len(whole) <= width or not isinstance(expr, sp.Add):
        return [whole]
    terms = _textbook_add_order(expr) if textbook_order else list(expr.args)
    lines: list[str] = []
    current = ""
    for term in terms:
        text = expr_latex(term)
        separator = "" if not current else (" " if text.startswith("-") else " + ")
        if current and len(current) + len(separator) + len(text) > width:
            lines.append(current)
            current = text if text.startswith("-") else f"+ {text}"
        else:
            current += separator + text
    lines.append(current)
    return lines


def displayed_steps(derivation: Derivation) -> list[tuple[Any, bool]]:
    """``(step, textbook_order)`` per step.

    A step whose expression is the previous one unchanged (SymPy had already
    collected it; the step records the rearrangement and its check) is shown in
    textbook order, logarithms first and constants last, so it does not repeat
    the previous row.
    """
    shown = []
    previous = None
    for step in derivation.steps:
        repeated = previous is not None and expr_latex(step.expr) == expr_latex(previous)
        shown.append((step, repeated))
        previous = step.expr
    return shown


def step_checks(derivation: Derivation, report: Any) -> dict[str, dict[str, Any]]:
    """The report's step entries (``report.as_dict()["steps"]``) keyed by label.

    ``report`` is a live report, a certificate, or None (empty).  Each entry
    gains ``min_digits`` (the agreement required) when the report does not
    carry it: from the live report's checks, the certificate's settings, or the
    verification default.
    """
    if report is None:
        return {}
    summary = report.as_dict()
    settings = getattr(report, "settings", None) or {}
    live = {
        getattr(check, "label", None): getattr(getattr(check, "numeric", None), "min_digits", None)
        for check in getattr(report, "checks", ())
    }
    entries = {}
    for step in summary.get("steps", ()):
        entry = dict(step)
        numeric = dict(entry.get("numeric", {}))
        numeric.setdefault(
            "min_digits",
            live.get(entry["label"]) or settings.get("min_digits") or _DEFAULT_MIN_DIGITS,
        )
        entry["numeric"] = numeric
        entries[entry["label"]] = entry
    return entries


_HYPOTHESES = re.compile(r" (?P<word>with|given) ")


def _clause_end(text: str, start: int) -> int:
    """Where a hypotheses clause starting at ``start`` ends: at " from lemmas", at a
    parenthesis it did not open, or at the end."""
    depth = 0
    for index in range(start, len(text)):
        if text.startswith(" from lemmas", index):
            return index
        if text[index] == "(":
            depth += 1
        elif text[index] == ")":
            if depth == 0:
                return index
            depth -= 1
    return len(text)
_NAME = re.compile(r"\b(?P<name>[A-Za-z]+)_(?P<sub>[A-Za-z0-9]+)(?P<entry>\[i\])?")


def hypotheses_math(method: str) -> str:
    r"""A prover's hypotheses (``with Sigma_p = L_p L_p^T, ...``) written as math.

    The method text of a matrix-algebra proof names its hypotheses in plain
    text (it is also the JSON verdict); rendered, each becomes a formula.

    >>> print(hypotheses_math("matrix algebra with Sigma_p = L_p L_p^T from lemmas M3"))
    matrix algebra with $\Sigma_{p} = L_{p} L_{p}^{\top}$ from lemmas M3
    >>> print(hypotheses_math("algebra with mu_q = column(mu_q[i]), "
    ...                       "Sigma_q = diagonal(sigma_q[i]**2)"))
    algebra with $\mu_{q} = (\mu_{q,i})_{i}$, $\Sigma_{q} = \operatorname{diag}(\sigma_{q,i}^{2})$
    """
    def formula(part: str) -> str:
        def name(match: re.Match) -> str:
            head = sp.latex(sp.Symbol(match["name"]))
            index = f"{match['sub']},i" if match["entry"] else match["sub"]
            return f"{head}_{{{index}}}"

        shown = _NAME.sub(name, part)
        shown = re.sub(r"column\((.*)\)", r"(\1)_{i}", shown)
        shown = re.sub(r"\bdiag(?:onal)?\(", r"\\operatorname{diag}(", shown)
        shown = shown.replace("^T", r"^{\top}").replace("**2", "^{2}")
        return f"${shown}$"

    shown, position = [], 0
    for match in _HYPOTHESES.finditer(method):
        if match.start() < position:
            continue
        end = _clause_end(method, match.end())
        parts = method[match.end() : end].split(", ")
        if all(" = " in part for part in parts):
            shown += [method[position : match.end()], ", ".join(formula(p) for p in parts)]
            position = end
    return "".join(shown) + method[position:]


def method_note(check: dict[str, Any] | None) -> str:
    """A stable, run-independent note of how a step was checked.

    ``check`` is one entry of :func:`step_checks`.  Digits are not printed
    (they may differ in the last place between platforms); the threshold that
    was met is.

    Examples
    --------
    >>> method_note({"symbolic": {"ok": True, "method": "algebra"},
    ...              "numeric": {"ok": True, "points": 5, "min_digits": 25}})
    'proved by algebra; 5 points agree to $\\\\geq 25$ digits'
    """
    if check is None:
        return ""
    symbolic, numeric = check.get("symbolic", {}), check.get("numeric", {})
    method = hypotheses_math(symbolic.get("method", ""))
    symbolic_text = method if symbolic.get("ok") else "NOT proved symbolically"
    if symbolic.get("ok") and symbolic.get("sizes") and "at k =" not in method:
        # a claim proved only at finite sizes says so wherever its verdict appears
        symbolic_text += f", {check.get('scope', 'at finite k').split(' (')[0]} only"
    numeric_text = (
        f"{numeric.get('points')} points agree to $\\geq {numeric.get('min_digits', 25):g}$ digits"
        if numeric.get("ok")
        else "numeric check FAILED"
    )
    verb = "proved" if symbolic_text.startswith("at ") else "proved by"
    if not symbolic.get("ok"):
        verb = ""
    return f"{verb} {symbolic_text}; {numeric_text}".strip()


def terms_latex(derivation: Derivation) -> str:
    """The closed form as a sum of ``\\underbrace``-labelled named terms."""
    parts = []
    for name, term in derivation.terms.items():
        title = TERM_TITLES.get(name, name).replace("_", r"\_")
        parts.append(rf"\underbrace{{{expr_latex(term)}}}_{{\text{{{title}}}}}")
    return " + ".join(parts).replace("+ \\underbrace{- ", "- \\underbrace{")


def fact_latex(fact) -> str:
    """``lhs = rhs`` of a :class:`~symkl.derivation.Fact` in LaTeX (its shown left side)."""
    return f"{expr_latex(fact.display_lhs)} = {expr_latex(fact.rhs)}"


#: how a fact came to be, as rendered next to it
ORIGINS = {"computed": "computed by SymPy", "stated": "stated"}


def fact_note(fact, check: dict[str, Any] | None) -> str:
    """``computed by SymPy, then checked: ...`` / ``stated, then checked: ...`` / ``not checked``.

    A fact renders as checked only when a passing verdict on it is at hand.
    """
    origin = ORIGINS[fact.origin]
    if check is None:
        return f"{origin}; not yet checked"
    if not check.get("ok"):
        return f"{origin}; CHECK FAILED"
    return f"{origin}, then checked: {method_note(check)}"


def used_lemmas(derivation: Derivation, report: Any = None) -> tuple[str, ...]:
    """The lemmas a derivation's proofs assume: from the report, and from its provers.

    A step proved by :class:`~symkl.proof.lemmas.ByLemma` names its lemma even
    before it is checked; lemmas reached through a proved theorem (an
    ``InstanceOf``) are known from the report.
    """
    names: list[str] = list(report.as_dict().get("lemmas", ())) if report is not None else []
    provers = [step.prove for step in derivation.steps] + [f.prove for f in derivation.facts]
    for prover in [*provers, derivation.terms_prove]:
        if isinstance(prover, ByLemma):
            names.append(prover.lemma.name)
        elif isinstance(prover, ByLemmas):
            names += [lemma.name for lemma, _ in prover.uses]
    return tuple(sorted(dict.fromkeys(names), key=lambda n: (len(n), n)))


def assumed_lemmas(derivation: Derivation, report: Any = None) -> list[tuple[str, str, str, str]]:
    """``(name, title, statement LaTeX, side conditions)`` of every lemma used, once each.

    The side conditions are one Markdown string with ``$...$`` math
    (:func:`side_conditions_markdown`); the LaTeX renderer keeps the math as is.
    """
    return [
        (name, LEMMAS[name].title.replace("R^k", r"$\mathbb{R}^k$"), LEMMAS[name].latex(expr_latex),
         side_conditions_markdown(LEMMAS[name].condition_formulas(expr_latex)))
        for name in used_lemmas(derivation, report)
        if name in LEMMAS
    ]


def side_conditions_markdown(conditions: tuple[tuple[tuple[str, ...], str], ...]) -> str:
    r"""``$f_1$, $f_2$ (note); $g$`` from ``(formulas in LaTeX, note)`` pairs.

    >>> print(side_conditions_markdown(((("S \\succ 0",), ""), (("a = 1", "b > 0"), "why"))))
    $S \succ 0$; $a = 1$, $b > 0$ (why)
    """
    parts = []
    for formulas, note in conditions:
        shown = ", ".join(f"${formula}$" for formula in formulas)
        parts.append(f"{shown} ({note})" if note and shown else shown or note)
    return "; ".join(parts)


def verdict_line(report: Any) -> str:
    """The closing sentence, with the scope: never "proved for all k" unless every claim is.

    ``report`` is a live report or a certificate (anything with ``as_dict()``).
    """
    summary = report.as_dict()
    claims = summary.get("claims", summary.get("steps", ()))
    if not summary.get("proved"):
        failing = sum(1 for claim in claims if not claim.get("ok"))
        return f"NOT all claims proved ({failing} of {len(claims)} failing)"
    scope = summary.get("scope", "")
    if scope in ("for all k", "for all values"):
        return f"every claim ({len(claims)}: steps, named terms, facts) proved {scope}"
    return f"every claim ({len(claims)}: steps, named terms, facts) proved; {scope}"

# --------------------------------------------------------------------------- plain text

_SYMBOLS = {
    "mu": "μ", "sigma": "σ", "Sigma": "Σ", "rho": "ρ", "delta": "δ", "lambda": "λ",
    "ell": "ℓ", "pi": "π", "top": "ᵀ", "le": "≤", "ge": "≥", "geq": "≥", "leq": "≤",
    "approx": "≈", "times": "×", "in": "∈", "int": "∫", "sum": "Σ", "infty": "∞",
    "log": "log", "det": "det", "exp": "exp", "cdot": "·", "|": "‖",
}  # fmt: skip
_WRAPPERS = re.compile(r"\\(?:operatorname|mathcal|mathbf|mathrm|text|mathit)\{([^{}]*)\}")
_FRAC = re.compile(r"\\t?frac\{([^{}]*)\}\{([^{}]*)\}")


def plain_text(text: str) -> str:
    """Prose with ``$...$`` LaTeX turned into plain (Unicode) text.

    Examples
    --------
    >>> plain_text(r"$E_p[(x - \\mu_p)^2] = \\sigma_p^2$ and $\\Sigma = L L^\\top$")
    'E_p[(x - μ_p)^2] = σ_p^2 and Σ = L Lᵀ'
    >>> plain_text(r"$\\log(\\sigma_q/\\sigma_p) = -\\tfrac12 \\log(v_p/v_q)$, $\\mathbb{R}^k$")
    'log(σ_q/σ_p) = -1/2 log(v_p/v_q), ℝ^k'
    """
    parts = text.split("$")
    return "".join(_plain_math(part) if index % 2 else part for index, part in enumerate(parts))


def _plain_math(math: str) -> str:
    math = re.sub(r"\\mathbb\{R\}", "ℝ", math)
    math = re.sub(r"\\tfrac(\d)(\d)", r"\1/\2", math)
    math = re.sub(r"\\operatorname\{([^{}]*)\}(?=[\\A-Za-z])", r"\1 ", math)
    for _ in range(3):
        math = _WRAPPERS.sub(r"\1", math)
        math = _FRAC.sub(r"\1/\2", math)
    math = math.replace(r"\,", " ").replace(r"\;", " ")
    math = re.sub(r"\^\\top", "ᵀ", math)
    math = re.sub(r"\\([A-Za-z]+|\|)", lambda m: _SYMBOLS.get(m.group(1), m.group(1)), math)
    math = re.sub(r"\^\{([^{}]+)\}", lambda m: "^" + _group(m.group(1)), math)
    math = re.sub(r"_\{([^{}]+)\}", lambda m: "_" + m.group(1), math)
    return math.replace("{", "").replace("}", "")


def _group(inner: str) -> str:
    return inner if re.fullmatch(r"[\w.]+", inner) else f"({inner})"
