"""The C target: ``symkl/_kernels.c`` from the proved forms of ``stable``."""

from __future__ import annotations

import string
import textwrap
from collections.abc import Iterable
from importlib import resources

import sympy as sp
from sympy.codegen.ast import (
    AddAugmentedAssignment,
    Assignment,
    Attribute,
    CodeBlock,
    Comment,
    Declaration,
    Element,
    FunctionDefinition,
    Pointer,
    Return,
    Type,
    Variable,
    float32,
    float64,
    int64,
    intc,
    uint64,
    value_const,
)
from sympy.codegen.cfunctions import log1p
from sympy.codegen.cnodes import restrict, static

from symkl.codegen.kernels import (
    EXACT_LOG_RATIO,
    EXP_OVERFLOWS,
    FAR_BELOW,
    FAST_EXP_TERMS,
    HEADER,
    NEAR_EXP,
    KernelFunction,
    carried_expm1,
    carried_half_exp,
    claim,
    compensated_excess,
    direct_exact_log_excess,
    excess_series_function,
    exp_of_negated,
    expm1mx_function,
    half_excess_beyond_overflow,
    half_square,
    halved_difference,
    horner,
    identifier,
    input_difference,
    ln2_split,
    near_exact_log_excess,
    quotient_form,
    scaled_mean_term,
    series_correction,
    std_x_lo,
    table_constants,
    table_expm1mx,
    table_rows,
    two_sum,
    two_sum_error,
    two_sum_function,
)
from symkl.codegen.printers import (
    AddressOf,
    AllOf,
    AnyOf,
    Cast,
    CodePrinter99,
    Either,
    Horner,
    If,
    Lo,
    Negation,
    PowerOfTwo,
    Select,
    add,
    c_arithmetic,
    c_code,
    c_statement,
    constant,
    div,
    inverse,
    literal,
    mul,
    neg,
    variables,
)
from symkl.kl.compensated import exponent_split, scale_from_rounded
from symkl.kl.stable import (
    HALF_A_SCALED,
    TINY_SCALE_EXPONENT,
    TINY_TOTAL_EXPONENT,
    X_SCALED,
    NumericForms,
    ParameterisedForm,
    expm1mx_series,
    tiny_scaled_term,
)

__all__ = ["c_source"]

#: C99's <math.h> functions, called by name in the printed statements (SymPy's own
#: ``Abs`` and ``floor`` would reorder their argument: ``floor(0.5 + d * scale)``)
isinf, isfinite, ldexp, fabs, floor, frexp = (
    sp.Function(name) for name in ("isinf", "isfinite", "ldexp", "fabs", "floor", "frexp")
)
#: C types named in casts
C_INT, C_DOUBLE = sp.Symbol("int"), sp.Symbol("double")
#: the largest finite double (DBL_MAX)
DBL_MAX = sp.Float(float.fromhex("0x1.fffffffffffffp1023"))


def _call(name: str, *arguments: sp.Expr | float) -> sp.Expr:
    """``name(arguments)``: a call of a helper of the generated C (``&x`` arguments by
    :class:`~symkl.codegen.printers.AddressOf`)."""
    return sp.Function(name)(*(sp.sympify(a) for a in arguments))


def _declare(*names: str, type: Type = float64) -> list[str]:
    """``double name;`` for variables a call writes through a pointer."""
    return [c_statement(Declaration(Variable(sp.Symbol(n), type=type))) for n in names]


def _print_function(
    name: str, parameters: list, body: list, result: Type = float64, attrs=None
) -> list[str]:
    """A ``static inline`` C function of ``sympy.codegen.ast`` statements."""
    definition = FunctionDefinition(
        result, name, parameters, CodeBlock(*body), attrs=attrs or (static, _INLINE)
    )
    return CodePrinter99({"ordered": True, "order": "none"})._print(definition).split("\n")


def c_source(forms: NumericForms) -> str:
    low, high = (literal(v) for v in forms.interval)
    lines = [
        f"/* {HEADER}",
        " *",
        " * KL = 1/2 (a + excess), excess = x - log(1 + x) = -log1pmx(x) >= 0, a >= 0:",
        " * no cancellation.  For x in the series interval the atanh series is used:",
        " * with t = x/(2 + x), u = t^2: excess = x t - 2 t^3 S(u), S(u) = sum u^n/(2n+3).",
        " */",
        "#include <math.h>",
        "#include <stdint.h>",
        "#include <string.h>",
        "",
        f"#define SYMKL_SERIES_LOW ({low})",
        f"#define SYMKL_SERIES_HIGH ({high})",
        f"#define SYMKL_FAR_BELOW ({FAR_BELOW!r})",
        "",
        *_c_function(two_sum_function()),
        "",
        *_c_function(excess_series_function(forms)),
        "",
        *_c_table(forms),
        *_c_fast_common(forms),
    ]
    lines += _c_fast_exp_common()
    for form in forms.forms.values():
        lines += _c_term(form)
        if quotient_form(form) is not None:
            lines += _c_fast_term(form)
        else:
            lines += _c_fast_exact_log_term(form)
    lines += _c_loops(forms)
    lines += _c_read_probe()
    return "\n".join(lines) + "\n"


def _c_fast_common(forms: NumericForms) -> list[str]:
    """Helpers of the vectorisable variance / standard-deviation kernels."""
    low, high = forms.mantissa_range
    if (low, high) != (sp.Rational(3, 4), sp.Rational(3, 2)):
        raise NotImplementedError("the exponent split below is written for m in [3/4, 3/2)")
    m_u, m_v, hi, lo, u, v = variables("m_u m_v hi lo u v")
    e_u, e_v = sp.symbols("e_u e_v", integer=True)
    ln2_high_value, ln2_low_value = ln2_split()
    coefficients = forms.fast_series
    u, s = variables("u s")
    n, error = variables("n error")
    fast_series = KernelFunction(
        "symkl_fast_series",
        "",
        f"S(u) = sum u^n/(2n+3), {len(coefficients)} terms: atanh(s) = s + s^3 S(s^2), "
        "|s| <= 1/5",
        (u,),
        (Horner(s, sp.Tuple(*(sp.Float(float(c)) for c in coefficients)), u, u, s),),
        (s,),
    )
    return [
        "/* Vectorisable kernels for the quotient forms (var, std).  The quotient q = u/v is",
        " * split as 2^e m, m in [3/4, 3/2), and log m = 2 atanh(s), s = (m - 1)/(m + 1)",
        " * (fact log-split); at e = 0, s = rho/(2 + rho) from the exact relative difference",
        " * (facts log1pmx-atanh, std-near).  No branch and no libm call but fma, so the",
        " * compiler vectorises them; every quantity is carried as hi + lo, and the term is",
        " * within a few tenths of an ulp.  Inputs outside [2^-500, 2^500] (and invalid",
        " * ones) take the scalar kernels above. */",
        f"#define SYMKL_LN2_HI ({ln2_high_value!r}) /* 33 bits: n * SYMKL_LN2_HI is exact */",
        f"#define SYMKL_LN2_LO ({ln2_low_value!r})",
        "",
        "/* log(u/v) = (e_u - e_v) log 2 + log(m_u/m_v) as hi + *lo (fact log-ratio-split) */",
        *_print_function(
            "symkl_log_ratio",
            [Variable(u, type=float64), Variable(v, type=float64), Pointer(lo, type=float64)],
            [
                Declaration(Variable(e_u, type=intc)),
                Declaration(Variable(e_v, type=intc)),
                constant(m_u, frexp(u, AddressOf(e_u))),
                constant(m_v, frexp(v, AddressOf(e_v))),
                constant(n, Cast(add(e_u, neg(e_v)), C_DOUBLE)),
                Declaration(Variable(error, type=float64)),
                constant(
                    hi,
                    claim(
                        "node-log-ratio-lo",
                        part="hi",
                        n=n,
                        log_m=sp.log(div(m_u, m_v)),
                        error=error,
                    ),
                ),
                Assignment(sp.Symbol("*lo"), claim("node-log-ratio-lo", error=error, n=n)),
                Return(hi),
            ],
        ),
        "",
        *_template("vector.c"),
        "",
        *_c_function(fast_series),
        "",
        *_c_lanes(),
    ]


#: ``static inline`` before a helper
_INLINE = Attribute("inline")


def _c_function(function: KernelFunction) -> list[str]:
    """A helper described once for both targets, as a ``static inline`` C function: the
    first result returned, the others written through pointer arguments."""
    parameters = [Variable(p, type=float64) for p in function.parameters]
    parameters += [Pointer(sp.Symbol(name), type=float64) for name in function.outputs]
    body = [
        *function.body,
        *(
            Assignment(sp.Symbol(f"*{name}"), value)
            for name, value in zip(function.outputs, function.results[1:], strict=True)
        ),
        Return(function.results[0]),
    ]
    definition = FunctionDefinition(
        float64, function.c_name, parameters, CodeBlock(*body), attrs=(static, _INLINE)
    )
    text = CodePrinter99({"ordered": True, "order": "none"})._print(definition)
    return [*_comment(function.doc), *text.split("\n")]


def _comment(text: str) -> list[str]:
    """A C comment of ``text``, wrapped at 100 columns."""
    lines = textwrap.wrap(text, 94)
    if len(lines) == 1:
        return [f"/* {lines[0]} */"]
    return [f"/* {lines[0]}", *(f" * {line}" for line in lines[1:-1]), f" * {lines[-1]} */"]


def _template(name: str) -> list[str]:
    """The lines of ``templates/<name>`` (package data), without its leading comment."""
    text = resources.files("symkl.codegen").joinpath("templates", name).read_text()
    lines = text.rstrip("\n").split("\n")
    end = next(i for i, line in enumerate(lines) if line.rstrip().endswith("*/"))
    return lines[end + 1 :]


def _assign(name: str, value: sp.Expr | float, indent: str = "    ") -> str:
    """``name = value;`` (an ast Assignment), the kernel arithmetic printed in order."""
    return c_statement(Assignment(sp.Symbol(name), sp.sympify(value)), indent)


def _add_to(name: str, value: sp.Expr | float, indent: str = "    ") -> str:
    """``name += value;`` (an ast AddAugmentedAssignment)."""
    return c_statement(AddAugmentedAssignment(sp.Symbol(name), sp.sympify(value)), indent)


def _const(name: str, value: sp.Expr | float, indent: str = "    ") -> str:
    """``const double name = value;`` (an ast Declaration) with the kernel arithmetic
    printed in order (after the ``=``, on a line of its own where the line would pass 100
    columns)."""
    line = c_statement(constant(name, value), indent)
    if len(line) <= 100 or "\n" in line:
        return line
    name_part, value_part = line.split(" = ", 1)
    return f"{name_part} =\n{indent}    {value_part}"


def _c_fast_term(form: ParameterisedForm) -> list[str]:
    """The branch-free term of a quotient form, every quantity as hi + lo.

    ``exact`` (a constant at each call) keeps the lo parts; float32 inputs drop
    them, since double precision alone leaves 29 bits to spare there.
    """
    quotient = quotient_form(form)
    assert quotient is not None
    u_name, v_name, power, x_of_rho = quotient
    u, v = variables(f"{u_name} {v_name}")
    mu_p, _, mu_q, _ = form.parameters
    # the kernel's variables; the compensated statements (claim) name theirs alike
    (inv_v, d_hi, d_lo, rho, rho_lo, x) = variables("inv_v d_hi d_lo rho rho_lo x")
    f, f_lo, denominator, inv_denominator = variables("f f_lo denominator inv_denominator")
    s, s_lo, s2 = variables("s s_lo s2")
    (mantissa,) = variables("mantissa")
    m, m_lo, w, w_lo, a = variables("m m_lo w w_lo a")
    (total,) = variables("total")
    fast_series = sp.Function("symkl_fast_series")
    split = exponent_split()
    # the exponent e = 0 (the flag `near`), the two branches' results and the term
    at_zero, near_hi, near_lo, far_hi, far_lo, corrected, term = variables(
        "near near_hi near_lo far_hi far_lo corrected term"
    )
    name = identifier(form.name)
    arguments = ", ".join(f"double {p}" for p in form.parameters)
    fast_min, fast_max = variables("SYMKL_FAST_MIN SYMKL_FAST_MAX")
    # inside the fast range (a NaN fails every comparison): both scales in [2^-500, 2^500],
    # both means finite
    ok = AllOf(
        sp.Ge(u, fast_min), sp.Le(u, fast_max), sp.Ge(v, fast_min), sp.Le(v, fast_max),
        sp.Le(fabs(mu_p), DBL_MAX), sp.Le(fabs(mu_q), DBL_MAX),
    )  # fmt: skip
    if power == 1:
        x_lines = [_const("x_lo", rho_lo)]
        near = [
            "    /* excess = x s - 2 (atanh s - s), s = x/(2 + x) (fact log1pmx-atanh) */",
            _const("near_hi", mul(x, s)),
            _const("near_lo", claim("node-near-var")),
        ]
        square = [
            _const("a", mul(w, m)),
            _const("a_lo", Lo(claim("node-product-lo", a=w, a_lo=w_lo, b=m, b_lo=m_lo, p=a))),
        ]
    else:
        rho_s, four = variables("rho_s four")
        x_lines = [
            "    double two_lo;",
            _const("two", claim("node-std-x-lo", part="two")),
            _const("x_lo", Lo(std_x_lo())),
        ]
        near = [
            "    /* excess = rho s (4 + rho) - 4 (atanh s"
            " - s), s = rho/(2 + rho) (fact std-near) */",
            _const("rho_s", mul(rho, s)),
            _const(
                "rho_s_lo",
                Lo(claim("node-product-lo", a=rho, a_lo=rho_lo, b=s, b_lo=s_lo, p=rho_s)),
            ),
            _const("four", add(4.0, rho)),
            _const("four_lo", Lo(claim("node-fast-two-sum-lo", c=4.0, hi=four, a=rho, a_lo=rho_lo)))
            + " /* |rho| < 4 */",
            _const("near_hi", mul(rho_s, four)),
            _const("near_lo", claim("node-near-std")),
        ]
        square = [
            _const("a", mul(w, w)),
            _const("a_lo", Lo(claim("node-square-lo", a=w, a_lo=w_lo, p=a))),
        ]
    return [
        f"/* {form.name}, vectorisable: valid when symkl_fast_ok_{name} holds */",
        *_fast_ok(form, ok),
        "",
        f"static inline double symkl_fast_term_{name}({arguments}, const int exact) {{",
        _const("inv_v", div(1.0, v)),
        "    /* rho = (u - v)/v as rho + rho_lo: TwoSum, then the remainder by fma */",
        "    double d_lo;",
        _const("d_hi", two_sum(u, neg(v), d_lo)),
        _const("rho", mul(d_hi, inv_v)),
        _const("rho_lo", Lo(claim("node-relative-difference-lo", v=v))),
        f"    const double x = {c_code(x_of_rho)};",
        *x_lines,
        "    /* q = u/v = 2^e m, m in [3/4, 3/2); u/v = q + q_rem/v exactly */",
        _const("q", mul(u, inv_v)),
        "    /* by q's bits: e + 1024 (biased), e, m = q 2^-e (assumption EXPONENT-SPLIT) */",
        c_statement(constant("q_bits", split["q_bits"], uint64)),
        c_statement(constant("biased", split["biased"], uint64)),
        _const("e", split["e"]),
        _const("mantissa", split["mantissa"]),
        c_statement(constant("near", split["near"], intc)) + " /* e = 0 */",
        "    /* 1 + f = m (1 + q_rem/(q v)): f = m - 1 exactly (Sterbenz) + 2^-e q_rem/v */",
        _const("f", Select(at_zero, rho, add(mantissa, -1.0))),
        _const("scale", split["scale"]) + " /* 2^-e */",
        _const("f_lo", Select(at_zero, rho_lo, Lo(claim("node-mantissa-lo", u=u, v=v)))),
        "    /* s = f/(2 + f) as s + s_lo; log(1 + f) = 2 atanh s = 2 (s + tail) */",
        _const("denominator", add(2.0, f)),
        _const(
            "denominator_lo",
            Lo(claim("node-fast-two-sum-lo", c=2.0, hi=denominator, a=f, a_lo=f_lo)),
        )
        + " /* |f| < 2 */",
        _const("inv_denominator", div(1.0, denominator)),
        _const("s", mul(f, inv_denominator)),
        _const("s_lo", Lo(claim("node-quotient-lo"))),
        _const("s2", mul(s, s)),
        _const("tail", mul(s, s2, fast_series(s2))),
        *near,
        f"    /* e != 0: excess = x - {power} (e log 2 + 2 atanh s) (fact log-split) */",
        _const("exponent", claim(f"node-far-excess-power-{power}", part="exponent")),
        "    double shifted_lo, far_lo;",
        _const("shifted", claim(f"node-far-excess-power-{power}", part="shifted")),
        _const("far_hi", claim(f"node-far-excess-power-{power}", part="far_hi")),
        _assign("far_lo", claim(f"node-far-excess-power-{power}")),
        _const("excess_hi", Select(at_zero, near_hi, far_hi)),
        _const("excess_lo", Select(at_zero, near_lo, far_lo)),
        f"    /* a = {sp.sstr(form.a)} as a + a_lo, with w = (mu_p - mu_q)/v */",
        "    double m_lo;",
        _const("m", two_sum(mu_p, neg(mu_q), m_lo)),
        _const("w", mul(m, inv_v)),
        _const(
            "w_lo", Lo(claim("node-relative-difference-lo", rho=w, v=v, d_hi=m, d_lo=m_lo))
        ),
        *square,
        "    double total_lo;",
        _const("total", claim("node-half-total", part="total")),
        _const("corrected", claim("node-half-total")),
        "    /* a may overflow to inf (its lo parts are then NaN); never below zero */",
        _const(
            "term",
            Select(sp.Eq(add(total, neg(total)), 0.0, evaluate=False), corrected, mul(0.5, total)),
        ),
        c_statement(Return(Select(sp.Gt(term, 0.0, evaluate=False), term, 0.0))),
        "}",
        "",
        *_c_block_functions(form),
    ]


def _c_block_functions(form: ParameterisedForm) -> list[str]:
    """The vectorised loop over a block (template ``block.c``): float64 keeps the lo parts,
    float32 drops them; float32 inputs are read as floats and widened on load."""
    name = identifier(form.name)
    count = len(form.parameters)
    lines = []
    for suffix, exact, ctype in (("f64", 1, "double"), ("f32", 0, "float")):
        widen = "" if ctype == "double" else "(double)"
        lines += _filled(
            "block.c",
            name=name,
            suffix=suffix,
            ctype=ctype,
            pointers=_parameters(
                Pointer(sp.Symbol(f"b{j}"), type=_C_TYPES[ctype], attrs={value_const, restrict})
                for j in range(count)
            ),
            loaded=", ".join(f"{widen}b{j}[c]" for j in range(count)),
            exact=exact,
        )
        lines.append("")
    return lines


def _fast_ok(form: ParameterisedForm, condition: AllOf) -> list[str]:
    """``static inline int symkl_fast_ok_<form>(...)``: the fast range test, a non-short-
    circuit conjunction (no branch: it runs in the vectorised block loop)."""
    parameters = [Variable(p, type=float64) for p in form.parameters]
    return _print_function(
        f"symkl_fast_ok_{identifier(form.name)}", parameters, [Return(condition)], intc
    )


def _c_fast_exp_common() -> list[str]:
    """Branch-free e^d as 2^n (t + t_lo), the log-variance kernels' exponential (fact exp-split)."""
    coefficients = expm1mx_series(FAST_EXP_TERMS)
    power_of_two = scale_from_rounded()
    inverse = float(1 / sp.log(2).evalf(40))
    d, rounded, n, r_hi, shift, r = variables(
        "d rounded n r_hi shift r"
    )
    inv_ln2, rounding, ln2_low = variables(
        "SYMKL_INV_LN2 SYMKL_ROUND SYMKL_LN2_LO"
    )
    return [
        f"#define SYMKL_INV_LN2 ({inverse!r})",
        "#define SYMKL_ROUND (0x1.8p52) /* x + 1.5 2^52 - 1.5 2^52 rounds x to an integer */",
        "#if defined(__GNUC__)",
        "#define SYMKL_INLINE static inline __attribute__((always_inline))",
        "#else",
        "#define SYMKL_INLINE static inline",
        "#endif",
        "",
        *_c_function(expm1mx_function(coefficients)),
        "",
        "/* e^(d + d_lo) = 2^n (t + *t_lo), n = round(d / log 2), |d| <= 700; *near is",
        " * e^d - 1 - d where n = 0 (then r = d exactly).  No branch, no libm call. */",
        *_print_function(
            "symkl_fast_exp",
            [
                Variable(d, type=float64),
                Variable(variables("d_lo")[0], type=float64),
                Variable(sp.Symbol("exact"), type=intc, attrs={value_const}),
                *(
                    Pointer(sp.Symbol(name), type=float64, attrs={restrict})
                    for name in ("t_lo", "scale", "near", "exponent")
                ),
            ],
            [
                constant("rounded", add(mul(d, inv_ln2), rounding)),
                constant("n", add(rounded, neg(rounding))),
                Comment("exact: SYMKL_LN2_HI has 33 bits and |n| < 2^11"),
                constant("r_hi", claim("node-exp-reduction", part="r_hi")),
                constant("shift", mul(n, ln2_low)),
                constant("r", add(r_hi, neg(shift))),
                constant("r_lo", claim("node-exp-reduction")),
                constant("p", sp.Function("symkl_fast_expm1mx")(r)),
                *(Declaration(Variable(sp.Symbol(e), type=float64)) for e in ("e1", "e2")),
                constant("one_r", claim("node-exp-mantissa", part="one_r")),
                constant("t", claim("node-exp-mantissa", part="t")),
                Assignment(sp.Symbol("*t_lo"), claim("node-exp-mantissa")),
                Comment("2^n from the low bits of `rounded` (n + 1.5 2^52 holds n there)"),
                constant("biased", power_of_two["biased"], uint64),
                Assignment(sp.Symbol("*scale"), power_of_two["scale"]),
                Assignment(sp.Symbol("*near"), claim("node-exp-near")),
                Assignment(sp.Symbol("*exponent"), n),
                Return(variables("t")[0]),
            ],
            attrs=(Attribute("SYMKL_INLINE"),),
        ),
        "",
    ]


def _c_fast_exact_log_term(form: ParameterisedForm) -> list[str]:
    """The branch-free term of a log-variance form: the excess e^d - 1 - d and the mean
    term a = d_mu^2 e^{-l_q} from :c:func:`symkl_fast_exp`, every quantity as hi + lo."""
    name = identifier(form.name)
    arguments = ", ".join(f"double {p}" for p in form.parameters)
    d_lo_part, m, m_lo = variables(
        "d_lo m m_lo"
    )
    m2, q_t, exponent, near, f, far_lo, term = variables("m2 q_t exponent near f far_lo term")
    difference = input_difference(form)
    exact_flag = variables("exact")[0]
    q_lo, q_scale, q_near, q_exponent, t_lo, scale, t_near = variables(
        "q_lo q_scale q_near q_exponent t_lo scale near"
    )
    # |logvar| small enough for symkl_fast_exp and the products, means neither huge nor
    # (but for a zero difference) tiny: a NaN fails every comparison
    bound = PowerOfTwo(400)
    if difference is not None:
        mu_p, logvar_p, mu_q, logvar_q = form.parameters
        ok = AllOf(
            sp.Le(fabs(logvar_p), 350.0), sp.Le(fabs(logvar_q), 350.0),
            sp.Le(fabs(mu_p), bound), sp.Le(fabs(mu_q), bound),
            AnyOf(
                sp.Eq(mu_p, mu_q, evaluate=False),
                sp.Ge(fabs(add(mu_p, neg(mu_q))), PowerOfTwo(-400)),
            ),
        )  # fmt: skip
        setup = [
            *_declare("d_lo", "m_lo"),
            _const("d", two_sum(form.parameters[1], neg(form.parameters[3]), d_lo_part)),
            _const("m", two_sum(form.parameters[0], neg(form.parameters[2]), m_lo)),
            "    /* e^{-l_q} = q_scale (q_t + q_lo) */",
            *_declare("q_lo", "q_scale", "q_near", "q_exponent"),
            _const(
                "q_t",
                _call(
                    "symkl_fast_exp", neg(logvar_q), 0.0, exact_flag, AddressOf(q_lo),
                    AddressOf(q_scale), AddressOf(q_near), AddressOf(q_exponent),
                ),
            ),
        ]
        d_lo = claim("node-lo", x=d_lo_part)
    else:
        mu, logvar = form.parameters
        ok = AllOf(
            sp.Le(fabs(logvar), 700.0),
            sp.Le(fabs(mu), bound),
            AnyOf(sp.Eq(mu, 0.0, evaluate=False), sp.Ge(fabs(mu), PowerOfTwo(-400))),
        )
        setup = [
            _const("d", logvar),
            _const("m", mu),
            *(_const(n, value) for n, value in (("m_lo", 0.0), ("q_t", 1.0), ("q_lo", 0.0))),
            _const("q_scale", 1.0),
        ]
        d_lo = sp.Float(0.0)
    return [
        f"/* {form.name}, vectorisable: valid when symkl_fast_ok_{name} holds */",
        *_fast_ok(form, ok),
        "",
        f"SYMKL_INLINE double symkl_fast_term_{name}({arguments}, const int exact) {{",
        *setup,
        "    /* e^d - 1 - d (fact exp-split): at n = 0 the series, else 2^n t - (1 + d) */",
        *_declare("t_lo", "scale", "near", "exponent"),
        _const(
            "t",
            _call(
                "symkl_fast_exp", variables("d")[0], d_lo, exact_flag, AddressOf(t_lo),
                AddressOf(scale), AddressOf(t_near), AddressOf(exponent),
            ),
        ),
        "    double c_lo, f_lo;",
        _const("c", claim("node-exp-excess", part="c")),
        _const("f", claim("node-exp-excess", part="f")),
        _const("far_lo", claim("node-exp-excess", d_lo=d_lo)),
        _const("excess_hi", Select(sp.Eq(exponent, 0.0, evaluate=False), near, f)),
        _const("excess_lo", Select(sp.Eq(exponent, 0.0, evaluate=False), 0.0, far_lo)),
        "    /* a = m^2 e^{-l_q} as a + a_lo */",
        _const("m2", mul(m, m)),
        _const("m2_lo", Lo(claim("node-square-lo", a=m, a_lo=m_lo, p=m2))),
        _const("a_t", mul(m2, q_t)),
        _const("a", claim("node-scaled-product-lo", part="a")),
        _const("a_lo", claim("node-scaled-product-lo")),
        "    double total_lo;",
        _const("total", claim("node-half-total", part="total")),
        _const("term", claim("node-half-total")),
        "    /* an overflow leaves NaN (inf - inf in the lo parts): the block's check sends",
        "     * it to the scalar kernel */",
        c_statement(Return(Select(sp.Lt(term, 0.0, evaluate=False), 0.0, term))),
        "}",
        "",
        *_c_block_functions(form),
    ]


def _c_table(forms: NumericForms) -> list[str]:
    low, high, scale, first = table_constants(forms)
    rows = table_rows(forms)
    coefficients = forms.table_series
    d, d_lo, r, q, scaled, table_scale = variables("d d_lo r q scaled SYMKL_TABLE_SCALE")
    table_first, table_name = variables("SYMKL_TABLE_FIRST symkl_expm1mx_rows")
    # the row of c = round(d scale)/scale: its index from the integer part of `scaled`
    row_pointer = Pointer(
        sp.Symbol("row"),
        type=float64,
        attrs={value_const},
        value=Element(table_name, [add(Cast(scaled, C_INT), neg(table_first))]),
    )
    row = variables("row[0] row[1] row[2] row[3]")
    return [
        "/* expm1(d) - d for d in the table range outside the series interval (there x =",
        " * expm1(d) carries a rounding of up to 8 ulps of the result): with c = j/scale and",
        " * r = d - c (exact), e^d - 1 - d = F + G r + E (e^r - 1 - r), rows (F_hi, F_lo, G, E)",
        " * with F = e^c - 1 - c, G = e^c - 1, E = e^c; d_lo is the rounding error of d. */",
        f"#define SYMKL_TABLE_LOW ({low})",
        f"#define SYMKL_TABLE_HIGH ({high})",
        f"#define SYMKL_TABLE_SCALE ({scale})",
        f"#define SYMKL_TABLE_FIRST ({first})",
        f"static const double symkl_expm1mx_rows[{len(rows)}][4] = {{",
        *(f"    {{{', '.join(repr(v) for v in row)}}}," for row in rows),
        "};",
        "",
        "static inline double symkl_expm1mx_table(double d, double d_lo) {",
        _const("scaled", floor(add(mul(d, table_scale), 0.5))),
        _const("r", add(d, neg(div(scaled, table_scale)))),
        c_statement(Declaration(row_pointer)),
        _const("q", mul(r, r, horner(coefficients, r))),
        f"    return {c_arithmetic(table_expm1mx(row, r, q, d_lo))};",
        "}",
    ]


def _c_half_a(form: ParameterisedForm, scale: int = 0) -> list[str]:
    """``half_a = a/2`` that neither under- nor overflows where ``a/2`` does not; with
    ``scale`` S, ``half_a = 2^(2S) a/2`` (the mean difference times 2^S: exact).

    Quotient forms: ``w = d/v`` times ``d`` or ``w`` (an overflowing ``d = mu_p - mu_q``
    is halved first).  Log-variance form: ``d = 2^k m`` and ``a/2 = 2^(2k-1) (m^2
    e^{-l})`` (fact mean-term-split), ``e^{-l}`` taken as ``(e^{-l/2})^2`` where alone it
    leaves the normal range.
    """
    mu_arguments = [p for p in form.parameters if str(p).startswith("mu")]
    quotient = quotient_form(form)
    if len(mu_arguments) == 1:
        (mu,) = mu_arguments
        return [_const("half_a", half_square(mul(mu, PowerOfTwo(scale)) if scale else mu))]
    mu_p, mu_q = mu_arguments
    d_half, a_scale, d_mantissa, m2, t_mantissa, e_full, e_half = variables(
        "d_half a_scale d_mantissa m2 t_mantissa e_full e_half"
    )
    d_mu, d_big, usable, scaled, shift = variables("d_mu d_big usable scaled shift")
    d_exponent, t_exponent = variables("d_exponent t_exponent")
    lines = [
        _const("d_mu", add(mu_p, neg(mu_q))),
        "    /* d_big: the difference of two finite means overflowed */",
        c_statement(constant("d_big", isinf(d_mu), type=intc)),
        _const("d_half", Select(d_big, halved_difference(mu_p, mu_q), d_mu)),
    ]
    if scale and quotient is not None:
        # a row of tiny terms: d_big is 0 and d 2^S finite (a < 2^-959)
        lines.append(_const("d_scaled", mul(d_half, PowerOfTwo(scale))))
        d_half = variables("d_scaled")[0]
    if quotient is not None:
        _, v_name, power, _ = quotient
        (v,) = variables(v_name)
        w = div(d_half, v)
        other = w if power == 2 else d_half
        return [
            *lines,
            _const("a_scale", Select(d_big, 2.0, 0.5)),
            _const("half_a", scaled_mean_term(a_scale, w, other)),
        ]
    logvar_q = form.parameters[3]
    return [
        *lines,
        *_declare("d_exponent", type=intc),
        _const("d_mantissa", frexp(d_half, AddressOf(d_exponent))),
        _const("e_full", exp_of_negated(logvar_q)),
        _const("e_half", exp_of_negated(logvar_q, 0.5)),
        _const("m2", mul(d_mantissa, d_mantissa)),
        "    /* e^{-l} out of the normal range: m^2 e^{-l/2} renormalised, then e^{-l/2} */",
        *_declare("t_exponent", type=intc),
        _const("t_mantissa", frexp(mul(m2, e_half), AddressOf(t_exponent))),
        c_statement(
            constant(
                "usable",
                sp.And(sp.Ge(e_full, PowerOfTwo(-1000)), sp.Le(e_full, PowerOfTwo(1000))),
                type=intc,
            )
        ),
        _const("scaled", Select(usable, mul(m2, e_full), mul(t_mantissa, e_half))),
        c_statement(
            constant(
                "shift",
                add(
                    mul(2, add(d_exponent, d_big)),
                    -1 + 2 * scale,
                    Select(usable, 0, t_exponent),
                ),
                type=intc,
            )
        ),
        _const("half_a", Select(sp.Eq(d_mu, 0.0), 0.0, ldexp(scaled, shift))),
    ]


def _c_term(form: ParameterisedForm) -> list[str]:
    name = identifier(form.name)
    arguments = ", ".join(f"double {p}" for p in form.parameters)
    quotient = quotient_form(form)
    half_a, half_excess, excess = variables("half_a half_excess excess")
    (halved,) = sp.symbols("halved", integer=True, seq=True)
    series: list[sp.Basic]
    direct: list[sp.Basic]
    x_symbol, series_low, series_high = variables("x SYMKL_SERIES_LOW SYMKL_SERIES_HIGH")
    near: sp.Basic = sp.And(sp.Gt(x_symbol, series_low), sp.Lt(x_symbol, series_high))
    domain: sp.Expr = sp.Float(0.0)
    if quotient is not None:
        # x = x + x_lo exactly (to 2^-106): the rounding of u - v (TwoSum), of the
        # division (fma) and, for the std form, of (2 + rho) rho.  Then, to first order,
        # f(x + x_lo) = f(x) + x_lo f'(x) with f'(x) = x/(1 + x), and log(1 + x) =
        # power log1p(rho + rho_lo) = power (log1p(rho) + rho_lo/(1 + rho)).
        u_name, v_name, power, x_of_rho = quotient
        u, v = variables(f"{u_name} {v_name}")
        d_hi, d_lo, rho, rho_lo, x, x_lo = variables("d_hi d_lo rho rho_lo x x_lo")
        log_hi, log_lo = variables("log_hi log_lo")
        # NaN outside the domain (NaN in, NaN out)
        domain = Select(sp.And(sp.Gt(u, 0.0), sp.Gt(v, 0.0)), 0.0, variables("NAN")[0])
        x_lines = [
            "    double d_lo;",
            _const("d_hi", two_sum(u, neg(v), d_lo)),
            _const("rho", div(d_hi, v)),
            _const("rho_lo", claim("node-relative-difference-lo", v=v, inv_v=inverse(v))),
            f"    const double x = {c_code(x_of_rho)};",
        ]
        if power == 1:
            x_lines.append(_const("x_lo", rho_lo))
            # x/2 without overflow where x = rho itself overflows
            half_x = div(mul(0.5, d_hi), v)
        else:
            x_lines += [
                "    double two_lo;",
                _const("two", claim("node-std-x-lo", part="two")),
                _const("x_lo", std_x_lo()),
            ]
            half_x = mul(mul(0.5, rho), add(2.0, rho))

        excess_series = sp.Function("symkl_excess_series")
        corrected_series = add(excess_series(x), series_correction(x, x_lo))
        series = [Assignment(excess, corrected_series)]
        scale = 1 if power == 1 else float(power)
        log_split = compensated_excess(x, x_lo, log_hi, (log_lo,), scale)
        direct_log = compensated_excess(
            x, x_lo, log1p(rho), (rho_lo, inverse(add(1.0, rho))), scale
        )
        split_log = [
            Comment("log(u/v) by exponent splitting: u/v may underflow (fact log-ratio-split)"),
            Declaration(Variable(log_lo, type=float64)),
            constant(log_hi, _call("symkl_log_ratio", u, v, AddressOf(log_lo))),
            Assignment(excess, log_split),
        ]
        beyond = [
            Comment("log(1 + x) < x/2^54: below half an ulp; x/2 where x overflows"),
            Assignment(half_excess, half_x),
            Assignment(halved, 1),
        ]
        direct = [
            If(
                sp.Lt(x, variables("SYMKL_FAR_BELOW")[0]),
                split_log,
                If(sp.Lt(x, PowerOfTwo(60)), [Assignment(excess, direct_log)], beyond),
            )
        ]
    elif form.name in EXACT_LOG_RATIO:
        d_hi, d_lo, x, expm1_d, e, half_e, carried = variables(
            "d_hi d_lo x expm1_d e half_e carried"
        )
        fast_expm1mx = sp.Function("symkl_fast_expm1mx")
        table_low, table_high = variables("SYMKL_TABLE_LOW SYMKL_TABLE_HIGH")
        tabled = sp.And(sp.Gt(d_hi, table_low), sp.Lt(d_hi, table_high))
        near = sp.Le(sp.Abs(d_hi), sp.Float(NEAR_EXP))
        difference = input_difference(form)
        if difference is not None:
            # expm1(u - v) with u - v rounded: TwoSum recovers the rounding error e exactly,
            # and expm1(d + e) = expm1(d) + e exp(d) to within e^2 (|e| <= 2^-53 |d|)
            u, v = variables(" ".join(difference))
            x_lines = [
                "    double d_lo;",
                c_statement(
                    Declaration(Variable(d_hi, type=float64, value=two_sum(u, neg(v), d_lo)))
                ),
                c_statement(If(isinf(d_hi), [Assignment(d_lo, 0.0)]))
                + " /* the lo part of an overflow is NaN */",
            ]
        else:
            x_lines = [_const("d_hi", form.log_ratio), _const("d_lo", 0.0)]
        x_lines += [
            _const("expm1_d", claim("node-carried-expm1", part="expm1_d")),
            _const(
                "x",
                Select(
                    sp.Or(sp.Eq(d_lo, 0.0), sp.Gt(d_hi, EXP_OVERFLOWS)),
                    expm1_d,
                    carried_expm1(expm1_d, d_hi, d_lo),
                ),
            ),
        ]
        series = [
            Comment("the series in d itself: x = expm1(d) carries a rounding"),
            Assignment(excess, near_exact_log_excess(fast_expm1mx(d_hi), x, d_lo)),
        ]
        overflowing = [
            Comment("e^d near or past overflow, KL/2 perhaps not (fact excess-half)"),
            constant(e, sp.exp(mul(0.5, d_hi))),
            constant(half_e, half_square(e)),
            constant(carried, Select(isinf(half_e), half_e, carried_half_exp(half_e, d_lo))),
            Assignment(half_excess, half_excess_beyond_overflow(carried, d_hi)),
            Assignment(halved, 1),
        ]
        direct = [
            If(
                tabled,
                [Assignment(excess, _call("symkl_expm1mx_table", d_hi, d_lo))],
                If(
                    sp.Gt(d_hi, EXP_OVERFLOWS),
                    overflowing,
                    [Assignment(excess, direct_exact_log_excess(x, d_hi, d_lo))],
                ),
            )
        ]
    else:
        raise NotImplementedError(f"no kernel for the form {form.name!r}")
    return [
        f"/* {form.name}: x = {sp.sstr(form.x)}, a = {sp.sstr(form.a)} */",
        f"static inline double symkl_term_{name}({arguments}) {{",
        *x_lines,
        *_c_half_a(form),
        c_statement(Declaration(Variable(excess, type=float64, value=0.0))),
        c_statement(Declaration(Variable(half_excess, type=float64, value=0.0))),
        c_statement(Declaration(Variable(halved, type=intc, value=0))),
        c_statement(If(near, series, direct)),
        c_statement(If(sp.Lt(excess, 0.0), [Assignment(excess, 0.0)]))
        + " /* rounding below zero; NaN stays NaN */",
        c_statement(If(Negation(halved), [Assignment(half_excess, mul(0.5, excess))])),
        c_statement(Return(add(half_a, half_excess, domain))),
        "}",
        "",
    ]


def _c_tiny_term(form: ParameterisedForm) -> list[str]:
    """``2^(2S)`` times a term of a row of tiny terms (fact tiny-term-scaled): the scaled
    mean term and ``(2^S x)^2/4``, ``x`` the relative difference of the quotient forms or
    the log-variance difference ``d`` (facts excess-small, expm1mx-small: the remainders
    are below ``2^-479`` of ``x^2/2`` there)."""
    name = identifier(form.name)
    arguments = ", ".join(f"double {p}" for p in form.parameters)
    quotient = quotient_form(form)
    x_lines = []
    small: sp.Expr = form.log_ratio
    if quotient is not None:
        # as the scalar kernel: rho = (u - v)/v, never 1/v (which overflows for v < 2^-1024)
        u_name, v_name, _, x_of_rho = quotient
        u, v = variables(f"{u_name} {v_name}")
        x_lines = [_const("rho", div(add(u, neg(v)), v))]
        small = x_of_rho
    scaled = tiny_scaled_term().xreplace(
        {HALF_A_SCALED: variables("half_a")[0], X_SCALED: variables("x_scaled")[0]}
    )
    return [
        f"/* {form.name}: 2^{2 * TINY_SCALE_EXPONENT} times a term below "
        f"2^{TINY_TOTAL_EXPONENT} */",
        f"static inline double symkl_tiny_term_{name}({arguments}) {{",
        *x_lines,
        _const("x_scaled", mul(sp.sympify(small), PowerOfTwo(TINY_SCALE_EXPONENT))),
        *_c_half_a(form, TINY_SCALE_EXPONENT),
        c_statement(Return(scaled)),
        "}",
        "",
    ]


def _c_tiny_row(form: ParameterisedForm) -> list[str]:
    """A float64 row total below 2^TINY_TOTAL_EXPONENT recomputed from the scaled terms
    (template ``tiny_row.c``), TwoSum-compensated, and scaled back once."""
    count = len(form.parameters)
    total, term, lo, error = variables("sum term lo error")
    return _filled(
        "tiny_row.c",
        name=identifier(form.name),
        count=count,
        unpack="\n".join(
            c_statement(constant(str(p), variables(f"value[{j}]")[0]), " " * 8)
            for j, p in enumerate(form.parameters)
        ),
        values=", ".join(str(p) for p in form.parameters),
        sum_update=_assign("sum", two_sum(total, term, lo), " " * 8),
        error_update=_add_to("error", lo, " " * 8),
        total_return=c_statement(
            Return(mul(add(total, error), PowerOfTwo(-2 * TINY_SCALE_EXPONENT)))
        ),
    )


def _validation(form: ParameterisedForm) -> list[str]:
    """C conditions: non-finite means; scales not finite-and-positive; log-variances non-finite."""
    (index,) = sp.symbols("index", integer=True, seq=True)
    checks = []
    for position, parameter in enumerate(form.parameters):
        name = str(parameter)
        # a plain real symbol: the form's own is positive, and SymPy would decide v > 0
        (value,) = variables(name)
        # Negation, not SymPy's Not: Not(v > 0) would print v <= 0, false for a NaN v
        condition: sp.Basic = Negation(isfinite(value))
        if not (name.startswith("mu") or name.startswith("logvar")):
            condition = Either(Negation(sp.Gt(value, 0.0)), condition)
        code = add(neg(add(mul(index, 8), sp.Integer(position))), -1)
        checks.append(c_statement(If(condition, [Return(code)]), ""))
    return checks


def _c_read_probe() -> list[str]:
    """The benchmark's memory probe: the sum of an array, and nothing else (no formula)."""
    lines = [
        "/* The read probe: sums n values with 8 independent partial sums (a loop GCC",
        " * vectorises without reassociating), so its time is the time to read the input. */",
    ]
    function = string.Template("\n".join(_template("read_probe.c")))
    for suffix, ctype in (("f64", "double"), ("f32", "float")):
        lines += [*function.substitute(suffix=suffix, ctype=ctype).split("\n"), ""]
    return lines


def _c_loops(forms: NumericForms) -> list[str]:
    lines = [
        "/* Row sums over k columns; argument j is read at p_j[r*row_j + c*col_j] (element",
        " * strides, 0 for broadcast axes).  Returns 0, or -(8*i + j) - 1 for the first invalid",
        " * argument j at flat position i when validate is set. */",
        "",
    ]
    for form in forms.forms.values():
        lines += [*_c_tiny_term(form), *_c_tiny_row(form), ""]
        for suffix, ctype in (("f64", "double"), ("f32", "float")):
            lines += [*_c_row_sums(form, suffix, ctype), ""]
    return lines


def _c_lanes() -> list[str]:
    """The summation lanes (template ``lanes.c``) with their TwoSum statements printed."""
    lane_sum, term, following, virtual_term = variables("sum[lane] term next virtual_term")
    total, lane_value, rounding, lane_error, error = variables(
        "total lane_sum[lane] rounding lane_error[lane] error"
    )
    inner = " " * 16
    return _filled(
        "lanes.c",
        next=_const("next", add(lane_sum, term), inner),
        virtual_term=_const("virtual_term", add(following, neg(lane_sum)), inner),
        error_update=_add_to(
            "error[lane]", two_sum_error(lane_sum, term, following, virtual_term), inner
        ),
        total_update=_assign("total", two_sum(total, lane_value, rounding), " " * 8),
        total_error_update=_add_to("error", add(rounding, lane_error), " " * 8),
        total_return=c_statement(Return(Select(isfinite(total), add(total, error), total))),
        plain_update=_add_to("sum[lane]", term, inner),
    )


#: the C types of the kernels' inputs
_C_TYPES = {"double": float64, "float": float32}


def _parameters(variables: Iterable[Variable]) -> str:
    """A C parameter list, each parameter a printed ast declaration."""
    printer = CodePrinter99()
    return ", ".join(printer._print(Declaration(variable)) for variable in variables)


def _filled(template_name: str, **values: object) -> list[str]:
    """The lines of ``templates/<template_name>`` with its placeholders substituted."""
    template = string.Template("\n".join(_template(template_name)))
    return template.substitute({key: str(value) for key, value in values.items()}).split("\n")


def _c_row_sums(form: ParameterisedForm, suffix: str, ctype: str) -> list[str]:
    """The row sums of one form (template ``row_sums.c``): blocks of SYMKL_BLOCK terms,
    gathered (or read in place), the vectorised terms, the scalar kernel where needed.

    A row's terms are padded to a multiple of 4 (the summation lanes) with inputs whose
    term is exactly 0 (equal means, unit scales); short rows share a block.
    """
    count = len(form.parameters)
    pads = ["1.0" if quotient_form(form) is not None and j % 2 else "0.0" for j in range(count)]
    indent = " " * 24
    unpack = [
        c_statement(constant(str(p), variables(f"value[{j}]")[0]), indent)
        for j, p in enumerate(form.parameters)
    ]
    plain_total = "0.0"
    tiny_row = ""
    if ctype == "double":
        (written,) = variables("row_total")
        recomputed = _call(
            f"symkl_tiny_row_{identifier(form.name)}", *variables("argument row col"),
            add(*variables("r0 i")), variables("k")[0],
        )
        tiny_row = "\n" + c_statement(
            If(sp.Lt(written, PowerOfTwo(TINY_TOTAL_EXPONENT)), [Assignment(written, recomputed)]),
            " " * 12,
        ) + " /* a row of tiny terms (NaN is not below) */"
    if ctype == "float":
        lanes = variables(" ".join(f"lane_sum[i][{lane}]" for lane in range(4)))
        plain_total = c_arithmetic(add(add(lanes[0], lanes[1]), add(lanes[2], lanes[3])))
    return _filled(
        "row_sums.c",
        name=identifier(form.name),
        suffix=suffix,
        ctype=ctype,
        count=count,
        arguments=_parameters(
            parameter
            for j in range(count)
            for parameter in (
                Pointer(sp.Symbol(f"p{j}"), type=_C_TYPES[ctype], attrs={value_const}),
                Variable(sp.Symbol(f"row{j}"), type=int64),
                Variable(sp.Symbol(f"col{j}"), type=int64),
            )
        ),
        pointers=", ".join(f"p{j}" for j in range(count)),
        row_strides=", ".join(f"row{j}" for j in range(count)),
        column_strides=", ".join(f"col{j}" for j in range(count)),
        pads=", ".join(pads),
        prefetch_in_place=int(ctype == "float"),
        plain_lanes=c_arithmetic(sp.Le(*variables("k SYMKL_PLAIN_SUM_MAX")))
        if ctype == "float"
        else 0,
        plain_total=plain_total,
        tiny_row=tiny_row,
        inputs=", ".join(f"input[{j}]" for j in range(count)),
        values=", ".join(str(p) for p in form.parameters),
        unpack="\n".join(unpack),
        checks="\n".join(f"{' ' * 28}{check}" for check in _validation(form)),
    )
