"""The array target: the kernel body in an array namespace ``xp`` (NumPy, PyTorch, JAX)."""

from __future__ import annotations

import textwrap

import sympy as sp
from sympy.codegen.ast import Assignment, CodeBlock, FunctionDefinition, Return, Variable, float64
from sympy.codegen.cfunctions import expm1, log1p

from symkl.codegen.kernels import (
    EXP_OVERFLOWS,
    FAR_BELOW,
    FAST_EXP_TERMS,
    HALF_A,
    HALF_X,
    HEADER,
    MEAN_SCALING,
    NEAR_EXP,
    RELATIVE_SCALING,
    KernelFunction,
    carried_expm1,
    carried_half_exp,
    claim,
    compensated_excess,
    direct_exact_log_excess,
    exact_sum_gradients,
    excess_series_function,
    exp_of_negated,
    exp_table_rows,
    expm1mx_function,
    half_excess_beyond_overflow,
    half_square,
    halved_difference,
    identifier,
    input_difference,
    ln2_three_parts,
    near_exact_log_excess,
    quotient_form,
    ranged_gradients,
    scaled_mean_term,
    series_correction,
    std_x_lo,
    swapped_parameters,
    table_constants,
    table_expm1mx,
    table_rows,
    two_sum,
    two_sum_function,
    veltkamp_split_function,
)
from symkl.codegen.printers import (
    AllOf,
    AnyOf,
    ArrayPrinter,
    Horner,
    PowerOfTwo,
    Select,
    Unpacking,
    add,
    array_arithmetic,
    array_code,
    array_statement,
    div,
    inverse,
    literal,
    mul,
    neg,
    variables,
)
from symkl.kl.stable import (
    EXACT_SCALE,
    EXP_TABLE_LEVELS,
    HALF_A_SCALED,
    TINY_SCALE_EXPONENT,
    TINY_TOTAL_EXPONENT,
    X_SCALED,
    A,
    ExactSum,
    NumericForms,
    ParameterisedForm,
    X,
    expm1mx_series,
    tiny_scaled_term,
)

__all__ = ["NUMPY_PRELUDE", "array_kernels", "numpy_source"]


#: the runtime NumPy kernels: ``xp`` is NumPy behind the few names the body uses
NUMPY_PRELUDE = [
    "from __future__ import annotations",
    "",
    "from types import SimpleNamespace",
    "",
    "import numpy as np",
    "from numpy import exp, expm1, log, log1p  # names in the printed expressions",
    "",
    "",
    "def _table_rows(table, index):",
    "    return np.moveaxis(table[index.astype(np.intp)], -1, 0)",
    "",
    "",
    "def _refine(exact, arguments, cheap, usable):",
    '    """The cheap values where all are usable; elsewhere exact(*arguments), computed on',
    '    those elements only (mask to indices, the subset, scattered back)."""',
    "    shape = np.broadcast_shapes(*(np.shape(v) for v in (*arguments, *cheap, *usable)))",
    "    wanted = np.ones(shape, dtype=bool)",
    "    for mask in usable:",
    "        wanted &= mask",
    "    index = np.flatnonzero(~wanted)",
    "    if index.size == wanted.size:  # nothing to keep: no gathering",
    "        return exact(*arguments)",
    "    results = [np.array(np.broadcast_to(value, shape)) for value in cheap]",
    "    if index.size:",
    "        subset = exact(*(np.broadcast_to(a, shape).reshape(-1)[index] for a in arguments))",
    "        for result, part in zip(results, subset):",
    "            result.reshape(-1)[index] = part",
    "    return tuple(result[()] if result.ndim == 0 else result for result in results)",
    "",
    "",
    "xp = SimpleNamespace(",
    "    asarray=np.asarray, clip=np.clip, errstate=np.errstate, floor=np.floor,",
    "    full_like=np.full_like, isfinite=np.isfinite, maximum=np.maximum, nan=np.nan,",
    "    where=np.where, table_rows=_table_rows, refine=_refine,",
    "    ldexp=lambda value, n: np.ldexp(value, np.asarray(n).astype(np.int64)),",
    ")",
]


def numpy_source(forms: NumericForms) -> str:
    docstring = [
        f'"""{HEADER}',
        "",
        "NumPy versions of the kernels in ``_kernels.c``: elementwise terms, their",
        "gradients and the Jeffreys divergence, printed by SymPy's NumPy printer.",
        '"""',
        "",
    ]
    return "\n".join(docstring + NUMPY_PRELUDE) + "\n" + array_kernels(forms)


def array_kernels(forms: NumericForms) -> str:
    """The kernel body, written against an array namespace ``xp`` (NumPy, PyTorch, JAX).

    Uses ``xp.asarray, clip, errstate, floor, full_like, isfinite, ldexp, maximum, nan,
    refine, where, table_rows`` and the names ``exp, expm1, log, log1p``; the caller's prelude
    provides them.
    """
    low, high = (literal(v) for v in forms.interval)
    table_low, table_high, table_scale, table_first = table_constants(forms)
    table_floats = [float(c) for c in forms.table_series]
    table_series = ", ".join(literal(c) for c in forms.table_series)
    coefficients = ", ".join(literal(c) for c in forms.series)
    veltkamp = sp.Function("_split")
    u, v, d_hi, d_lo, rho, x, x_lo, r, power = variables("u v d_hi d_lo rho x x_lo r power")
    rho_lo_name = variables("rho_lo")[0]
    q, d, table_scale_name = variables("q d TABLE_SCALE")
    index, table_name, table_series_name = variables("index TABLE TABLE_SERIES")
    table_first_name, table_last_name = variables("TABLE_FIRST TABLE_LAST")
    clip, table_lookup = sp.Function("xp.clip"), sp.Function("xp.table_rows")
    scaled, e, half_e, carried, d_near = variables("scaled e half_e carried d_near")
    (value,) = variables("value")
    row = variables("high low expm1_c exp_c")
    expm1mx_near = sp.Function("expm1mx_near")
    scale, back, scaled_d, square, e_full, e_half, logvar_q = variables(
        "scale back scaled_d square e_full e_half logvar_q"
    )
    # (d^2/2) e^{-l} as ((d^2/2) e^{-l/2} back) e^{-l/2} back: in range between the factors
    small, large, usable, full, split = variables("small large usable full split")
    near, far, series, direct_name, half_x = variables("near far series direct half_x")
    series_low, series_high, far_below, near_exp = variables(
        "SERIES_LOW SERIES_HIGH FAR_BELOW NEAR_EXP"
    )
    table_low_name, table_high_name, tabled, d_table = variables(
        "TABLE_LOW TABLE_HIGH tabled d_table"
    )
    excess_series = sp.Function("excess_series")
    expm1mx_table = sp.Function("expm1mx_table")
    edge, shift = RELATIVE_SCALING
    mean_edge, mean_shift = MEAN_SCALING
    split_mean_term = mul(mul(mul(mul(0.5, square, e_half), back), e_half), back)
    # Dekker's TwoProduct: a*b - p exactly from the 26-bit halves (NumPy has no fma)
    dekker = claim("node-dekker-product-error")
    # rho v - d_hi as (d_hi - p) - (rho v - p), the second exactly (ProductError)
    rho_lo = claim("node-relative-difference-lo-dekker", v=v)
    direct = compensated_excess(x, x_lo, log1p(r), (rho_lo_name, inverse(add(1.0, r))), power)
    lines = [
        "",
        f"SERIES_LOW = {low}",
        f"SERIES_HIGH = {high}",
        f"FAR_BELOW = {FAR_BELOW!r}",
        f"SERIES = ({coefficients})",
        "#: a float64 row total below TINY_TOTAL is recomputed from the tiny_term_ functions'",
        "#: terms (2^(2S) times the terms) and scaled back once by TINY_BACK",
        f"TINY_TOTAL = {array_code(PowerOfTwo(TINY_TOTAL_EXPONENT))}",
        f"TINY_BACK = {array_code(PowerOfTwo(-2 * TINY_SCALE_EXPONENT))}",
        "",
        "",
        *_array_function(excess_series_function(forms)),
        "",
        "",
        *_array_function(two_sum_function()),
        "",
        "",
        *_array_function(veltkamp_split_function()),
        "",
        "",
        "def product_error(a, b, p):",
        '    """a*b - p exactly, for p = fl(a*b) (Dekker\'s TwoProduct: NumPy has no fma)."""',
        *(
            _unpack(variables(f"{name}_hi {name}_lo"), veltkamp(variables(name)[0]), "    ")
            for name in ("a", "b")
        ),
        f"    return {array_arithmetic(dekker)}",
        "",
        "",
        "def relative_difference(u, v):",
        '    """rho = (u - v)/v as rho + rho_lo (rho_lo the rounding error, to first order)."""',
        "    # scaled by a power of 2 (rho does not change, fact relative-difference-scaled) so",
        "    # that Dekker's products neither overflow nor lose digits in the subnormal range",
        _assign(
            "scale",
            _power_of_two_scale(sp.Lt(v, PowerOfTwo(-edge)), sp.Gt(v, PowerOfTwo(edge)), shift),
            "    ",
        ),
        _assign("u", mul(u, scale), "    "),
        _assign("v", mul(v, scale), "    "),
        _unpack((d_hi, d_lo), two_sum(u, neg(v), d_lo), "    "),
        _assign("rho", div(d_hi, v), "    "),
        _assign("p", mul(rho, v), "    "),
        _assign("rho_lo", rho_lo, "    "),
        array_statement(Return(sp.Tuple(rho, _finite_or_zero(rho_lo_name))), "    "),
        "",
        "",
        "def half_excess_compensated(x, x_lo, rho, rho_lo, power, far_log_ratio, half_x):",
        '    """(x - log(1 + x))/2 for 1 + x = (1 + rho)**power, x + x_lo, rho + rho_lo."""',
        _assign("near", sp.And(sp.Gt(x, series_low), sp.Lt(x, series_high)), "    "),
        _assign(
            "series", add(excess_series(Select(near, x, 0.0)), series_correction(x, x_lo)), "    "
        ),
        _assign("far", sp.Lt(x, far_below), "    "),
        _assign("r", Select(far, 0.0, rho), "    "),
        _assign("direct", direct, "    "),
        _assign(
            "value",
            Select(near, series, Select(far, claim("node-excess-far-array"), direct_name)),
            "    ",
        ),
        "    # beyond 2^60, log(1 + x) < x/2^54; x/2 is taken where x itself overflows",
        array_statement(
            Return(Select(sp.Lt(x, PowerOfTwo(60)), mul(0.5, maximum(value, 0.0)), half_x)), "    "
        ),
        "",
        "",
        "def half_mean_term(d, logvar_q):",
        '    """d^2 e^{-logvar_q} / 2, no spurious under- or overflow (facts mean-term-split,',
        '    mean-term-scaled, mean-term-scaled-split)."""',
        _assign(
            "small",
            sp.And(sp.Lt(d, PowerOfTwo(-mean_edge)), sp.Gt(d, -PowerOfTwo(-mean_edge))),
            "    ",
        ),
        _assign(
            "large",
            sp.Or(sp.Gt(d, PowerOfTwo(mean_edge)), sp.Lt(d, -PowerOfTwo(mean_edge))),
            "    ",
        ),
        _assign("scale", _power_of_two_scale(small, large, mean_shift), "    "),
        _assign("back", _power_of_two_scale(small, large, -mean_shift), "    "),
        _assign("scaled_d", mul(d, scale), "    "),
        _assign("e_full", exp_of_negated(logvar_q), "    "),
        _assign("e_half", exp_of_negated(logvar_q, 0.5), "    "),
        _assign("square", mul(scaled_d, scaled_d), "    "),
        _assign(
            "usable",
            sp.And(sp.Ge(e_full, PowerOfTwo(-mean_shift)), sp.Le(e_full, PowerOfTwo(mean_shift))),
            "    ",
        ),
        "    # the scale factors between the exponentials keep every product in range",
        _assign("full", mul(mul(mul(0.5, square, e_full), back), back), "    "),
        _assign("split", split_mean_term, "    "),
        array_statement(Return(Select(sp.Eq(d, 0.0), 0.0, Select(usable, full, split))), "    "),
        "",
        "",
        f"TABLE_LOW, TABLE_HIGH, TABLE_SCALE, TABLE_FIRST = {table_low}, {table_high}, "
        f"{table_scale}, {table_first}",
        f"TABLE_LAST = {table_first + len(table_rows(forms)) - 1}",
        f"TABLE_SERIES = ({table_series})",
        "#: rows (F_hi, F_lo, G, E) at c = j/TABLE_SCALE: F = e^c - 1 - c, G = e^c - 1, E = e^c",
        "TABLE = xp.asarray([",
        *(f"    ({', '.join(repr(v) for v in row)})," for row in table_rows(forms)),
        "])",
        "",
        "",
        "def expm1mx_table(d, d_lo):",
        '    """e^d - 1 - d for d in the table range: F + G r + E (e^r - 1 - r), d = c + r."""',
        _assign("scaled", sp.Function("xp.floor")(add(mul(d, table_scale_name), 0.5)), "    "),
        _assign("r", add(d, neg(div(scaled, table_scale_name))), "    "),
        "    # the row of c = round(d scale)/scale, the index kept in the table where d is not",
        _assign("index", clip(scaled, table_first_name, table_last_name), "    "),
        _unpack(row, table_lookup(table_name, add(index, neg(table_first_name))), "    "),
        array_statement(
            Horner(q, sp.Tuple(*map(sp.Float, table_floats)), r, r, table_series_name), "    "
        ),
        _assign("q", mul(r, r, q), "    "),
        f"    return {array_arithmetic(table_expm1mx(row, r, q, d_lo))}",
        "",
        "",
        f"NEAR_EXP = {NEAR_EXP!r}",
        f"EXPM1MX = ({', '.join(literal(c) for c in expm1mx_series(FAST_EXP_TERMS))})",
        "",
        "",
        *_array_function(expm1mx_function(expm1mx_series(FAST_EXP_TERMS))),
        "",
        "",
        "def excess_exact_log(x, d_hi, d_lo=0.0):",
        '    """x - log(1 + x) >= 0 when log(1 + x) = d_hi + d_lo is known exactly."""',
        "    # near 0 the series of e^d - 1 - d in d itself: x = expm1(d) carries a rounding",
        _assign("near", sp.And(sp.Ge(d_hi, -near_exp), sp.Le(d_hi, near_exp)), "    "),
        _assign(
            "tabled",
            sp.And(sp.Not(near), sp.Gt(d_hi, table_low_name), sp.Lt(d_hi, table_high_name)),
            "    ",
        ),
        _assign("value", direct_exact_log_excess(x, d_hi, d_lo), "    "),
        _assign("d_near", Select(near, d_hi, 0.0), "    "),
        _assign(
            "value",
            Select(near, near_exact_log_excess(expm1mx_near(d_near), x, d_lo), value),
            "    ",
        ),
        _assign("d_table", Select(tabled, d_hi, 0.0), "    "),
        _assign(
            "value",
            Select(tabled, expm1mx_table(d_table, Select(tabled, d_lo, 0.0)), value),
            "    ",
        ),
        array_statement(Return(maximum(value, 0.0)), "    "),
        "",
        "",
        "def half_excess_exact_log(x, d_hi, d_lo=0.0):",
        '    """(x - log(1 + x))/2, also where e^d overflows, KL/2 not (fact excess-half)."""',
        _assign("large", sp.Gt(d_hi, EXP_OVERFLOWS), "    "),
        _assign("e", sp.exp(mul(0.5, Select(large, d_hi, 0.0))), "    "),
        _assign("half_e", half_square(e), "    "),
        _assign(
            "carried", Select(isfinite(half_e), carried_half_exp(half_e, d_lo), half_e), "    "
        ),
        _assign("value", mul(0.5, sp.Function("excess_exact_log")(x, d_hi, d_lo)), "    "),
        array_statement(
            Return(Select(large, half_excess_beyond_overflow(carried, d_hi), value)), "    "
        ),
        "",
        "",
        "",
    ]
    lines += _double_exp_lines()
    exact_sums = exact_sum_gradients(forms)
    for form in forms.forms.values():
        lines += _array_form(form, exact_sums)
    body = "\n".join(lines).rstrip("\n") + "\n"
    return body


relative_difference = sp.Function("relative_difference")


def maximum(value: sp.Expr, floor: float) -> sp.Expr:
    """``xp.maximum(value, floor)``: elementwise, NaN propagated (not SymPy's Max)."""
    return sp.Function("xp.maximum")(value, floor)


def isfinite(value: sp.Expr) -> sp.Expr:
    """``xp.isfinite(value)``."""
    return sp.Function("xp.isfinite")(value)


def _power_of_two_scale(below: sp.Basic, above: sp.Basic, shift: int) -> Select:
    """``2^shift`` where ``below``, ``2^-shift`` where ``above``, else 1 (exact scalings)."""
    return Select(below, PowerOfTwo(shift), Select(above, PowerOfTwo(-shift), 1.0))


def _finite_or_zero(value: sp.Symbol) -> Select:
    """``value`` where it is finite, else 0 (a lo part lost to overflow is dropped)."""
    return Select(isfinite(value), value, 0.0)


def _unpack(names: tuple[sp.Symbol, ...], value: sp.Expr, indent: str) -> str:
    """``a, b = value`` for a helper returning a tuple (two_sum: the sum and its error)."""
    return array_statement(Unpacking(sp.Tuple(*names), value), indent)


def _assign(name: str, value: sp.Expr | float, indent: str) -> str:
    """``name = value`` (an ast Assignment), the kernel arithmetic printed in order."""
    return array_statement(Assignment(sp.Symbol(name), sp.sympify(value)), indent)


def _array_function(function: KernelFunction) -> list[str]:
    """A helper described once for both targets, as a Python function of the array
    namespace: its results returned as a tuple, its doc as the docstring."""
    results = function.results
    value = results[0] if len(results) == 1 else sp.Tuple(*results)
    definition = FunctionDefinition(
        float64,
        function.array_name,
        [Variable(p) for p in function.parameters],
        CodeBlock(*function.body, Return(value)),
    )
    settings = {"fully_qualified_modules": False, "ordered": True, "order": "none"}
    first, *body = ArrayPrinter(settings)._print(definition).split("\n")
    doc = textwrap.wrap(function.doc + ".", 92)
    docstring = [f'    """{doc[0]}', *(f"    {line}" for line in doc[1:])]
    docstring[-1] += '"""'
    return [first, *docstring, *body]


#: the smallest normal double: a quotient below it has lost digits (its log is then taken
#: as a difference of logs, fact log-ratio-difference)
DBL_MIN = sp.Float(float.fromhex("0x1p-1022"))


def _array_half_a(form: ParameterisedForm, scale: int = 0, indent: str = "    ") -> list[str]:
    """``half_a = a/2`` without a spurious under- or overflow (see :func:`_c_half_a`); with
    ``scale`` S, ``half_a = 2^(2S) a/2`` (the mean difference times 2^S: exact)."""
    mu_arguments = [p for p in form.parameters if str(p).startswith("mu")]
    if len(mu_arguments) == 1:
        (mu,) = mu_arguments
        scaled_mu = mul(mu, PowerOfTwo(scale)) if scale else mu
        return [f"{indent}half_a = {array_arithmetic(half_square(scaled_mu))}"]
    mu_p, mu_q = mu_arguments
    quotient = quotient_form(form)
    difference = add(mu_p, neg(mu_q))
    if scale:
        # a row of tiny terms: the difference is finite and times 2^S still (a < 2^-959)
        difference = mul(difference, PowerOfTwo(scale))
    if quotient is None:
        half_mean_term = sp.Function("half_mean_term")
        return [_assign("half_a", half_mean_term(difference, form.parameters[3]), indent)]
    if scale:
        _, v_name, power, _ = quotient
        v, w, d_scaled = variables(f"{v_name} w d_scaled")
        return [
            _assign("d_scaled", difference, indent),
            _assign("w", div(d_scaled, v), indent),
            _assign("half_a", scaled_mean_term(0.5, w, w if power == 2 else d_scaled), indent),
        ]
    _, v_name, power, _ = quotient
    v, w, d_half, big = variables(f"{v_name} w d_half big")
    other = w if power == 2 else d_half
    d = variables("d")[0]
    a_scale = Select(big, 2.0, 0.5)
    return [
        _assign("d", add(mu_p, neg(mu_q)), "    "),
        "    # where the difference of two finite means overflowed",
        _assign("big", sp.Not(isfinite(d)), "    "),
        _assign("d_half", Select(big, halved_difference(mu_p, mu_q), d), "    "),
        _assign("w", div(d_half, v), "    "),
        _assign("half_a", scaled_mean_term(a_scale, w, other), "    "),
    ]


def _array_x(form: ParameterisedForm) -> list[str]:
    """``x`` (as printed) and ``half_x = x/2`` that overflows only where x/2 does."""
    quotient = quotient_form(form)
    if quotient is not None:
        u, v, power, x_of_rho = quotient
        half_x = sp.Rational(1, 2) * (form.x if power == 1 else x_of_rho)
        lines = [f"    x = {array_code(form.x)}"]
        if power == 2:
            u_symbol, v_symbol = variables(f"{u} {v}")
            # rho = (u - v)/v, as the proved x_of_rho is written
            lines.append(
                f"    rho = {array_arithmetic(div(add(u_symbol, neg(v_symbol)), v_symbol))}"
            )
        return [*lines, f"    half_x = {array_code(half_x)}"]
    difference = input_difference(form)
    if difference is not None:
        u, v = variables(" ".join(difference))
        d_lo = variables("d_lo")[0]
        d_hi = variables("d_hi")[0]
        lines = [
            f"    # d_lo: the exact rounding error of {u} - {v}",
            _unpack((d_hi, d_lo), two_sum(u, neg(v), d_lo), "    "),
            _assign("d_lo", Select(isfinite(d_hi), d_lo, 0.0), "    "),
        ]
    else:
        lines = [f"    d_hi = {array_code(form.log_ratio)}", _assign("d_lo", 0.0, "    ")]
    d_hi, d_lo, expm1_d = variables("d_hi d_lo expm1_d")
    large = sp.Symbol("e", positive=True)
    x = variables("x")[0]
    overflows = sp.Gt(d_hi, EXP_OVERFLOWS)
    return [
        *lines,
        _assign("expm1_d", claim("node-carried-expm1", part="expm1_d"), "    "),
        _assign(
            "x",
            Select(sp.Or(sp.Eq(d_lo, 0.0), overflows), expm1_d, carried_expm1(expm1_d, d_hi, d_lo)),
            "    ",
        ),
        _assign("e", sp.exp(mul(0.5, Select(overflows, d_hi, 0.0))), "    "),
        # (e^d - 1)/2 = (e/2) e - 1/2 with e = e^{d/2} (fact excess-half)
        _assign(
            "half_x", Select(overflows, add(mul(0.5, large, large), -0.5), mul(0.5, x)), "    "
        ),
    ]


def _exact_parts(expr: sp.Expr, name: str, lines: list[str]) -> tuple[sp.Expr, sp.Expr | None]:
    """``expr`` as ``(hi, lo)``, ``lo`` the rounding error (None where there is none), for
    the shapes of the exact-sum facts: inputs and integers (exact), a difference of two
    inputs (TwoSum), its exponential (``e^{d_hi} (1 + d_lo)``, first order in ``d_lo``),
    a negation, and a product with powers of the scale ``kappa`` (exact)."""
    hi, lo = variables(f"{name}_hi {name}_lo")
    if expr.is_Symbol or expr.is_Integer:
        return expr, None
    if expr.is_Rational and sp.Rational(float(expr)) == expr:
        return sp.Float(float(expr)), None  # a binary fraction (-1/2): exact
    if isinstance(expr, sp.Mul):
        scale, rest = expr.as_independent(*(expr.free_symbols - {EXACT_SCALE}), as_Add=False)
        sign, rest = rest.as_coeff_Mul()
        if sign in (1, -1) and (scale != 1 or sign == -1) and rest != 1:
            inner_hi, inner_lo = _exact_parts(rest, name, lines)
            factors = [] if scale == 1 else [scale]
            if sign == -1:
                factors.insert(0, -1)
            lines.append(f"        {hi} = {array_arithmetic(mul(*factors, inner_hi))}")
            if inner_lo is None:
                return hi, None
            lines.append(f"        {lo} = {array_arithmetic(mul(*factors, inner_lo))}")
            return hi, lo
    difference = [t for t in sp.Add.make_args(expr) if t.is_Symbol or (-t).is_Symbol]
    if isinstance(expr, sp.Add) and len(difference) == 2 == len(expr.args):
        (u,) = [t for t in expr.args if t.is_Symbol]
        (v,) = [-t for t in expr.args if not t.is_Symbol]
        lines.append(f"        {hi}, {lo} = {array_arithmetic(two_sum(u, neg(v), lo))}")
        return hi, lo
    if isinstance(expr, sp.exp):
        d_hi, d_lo = _exact_parts(expr.args[0], f"{name}_d", lines)
        lines.append(f"        {hi} = {array_code(sp.exp(d_hi))}")
        lines.append(
            f"        {lo} = "
            f"{array_arithmetic(claim('node-carried-exp-lo', e=hi, d_hi=d_hi, d_lo=d_lo))}"
        )
        return hi, lo
    if isinstance(expr, expm1):
        d_hi, d_lo = _exact_parts(expr.args[0], f"{name}_d", lines)
        lines.append(f"        {hi} = {array_code(expm1(d_hi))}")
        carried = claim("node-carried-expm1-lo", d_hi=d_hi, d_lo=d_lo)
        lines.append(f"        {lo} = {array_arithmetic(carried)}")
        return hi, lo
    raise NotImplementedError(f"no exact parts for {expr}")


def _array_exact_sum(exact: ExactSum, name: str) -> tuple[list[str], str, list[str]]:
    """Lines computing an exact-sum gradient component (facts gradient-exact-*) as
    ``name``; the conditions (besides finiteness) under which it is taken.

    Each square ``(n/d)^2 k`` as hi + lo: the quotient with its exact remainder, the
    square by TwoProduct, the multiplier by TwoProduct; the terms as hi + lo; the
    his added by TwoSum, every lo part added after (Ogita, Rump and Oishi's Sum2),
    then the factors, left to right.
    """
    lines: list[str] = []
    conditions: list[sp.Basic] = []
    if exact.scale_of is not None:
        s = _printed(array_code(exact.scale_of))
        t, shift = exact.scale_levels
        small = AllOf(sp.Lt(s, PowerOfTwo(-t)), sp.Gt(s, neg(PowerOfTwo(-t))))
        large = AnyOf(sp.Gt(s, PowerOfTwo(t)), sp.Lt(s, neg(PowerOfTwo(t))))
        lines.append(_assign("kappa", _power_of_two_scale(small, large, shift), "        "))
    highs, lows = [], []
    for index, (numerator, denominator, multiplier) in enumerate(exact.squares):
        part = f"{name}_n{index}"
        exponential = _exp_square_lines(multiplier, part, lines) if multiplier.has(sp.exp) else None
        n_hi, n_lo = _exact_parts(numerator, part, lines)
        w_hi, w_lo, p, sq_hi, sq_lo, k, k_hi = variables(
            f"{part}_w {part}_w_lo {part}_p {part}_sq {part}_sq_lo {part}_k {part}_k_hi"
        )
        if denominator == 1:
            w_hi, w_lo = n_hi, n_lo
        else:
            d = variables(str(denominator))[0]
            quotient_lo = (
                claim("node-quotient-remainder-lo", n=n_hi, p=p, w=w_hi, den=d)
                if n_lo is None
                else claim(
                    "node-relative-difference-lo-dekker", d_hi=n_hi, p=p, rho=w_hi, v=d, d_lo=n_lo
                )
            )
            lines += [
                f"        {w_hi} = {array_arithmetic(div(n_hi, d))}",
                f"        {p} = {array_arithmetic(mul(w_hi, d))}",
                "        # the exact remainder n - w d (Sterbenz, then TwoProduct)",
                f"        {w_lo} = "
                f"{array_arithmetic(quotient_lo)}",
            ]
        lines.append(f"        {sq_hi} = {array_arithmetic(mul(w_hi, w_hi))}")
        square_lo = (
            claim("node-square-error", a=w_hi, p=sq_hi)
            if w_lo is None
            else claim("node-square-lo-exact", a=w_hi, a_lo=w_lo, p=sq_hi)
        )
        lines.append(f"        {sq_lo} = {array_arithmetic(square_lo)}")
        if exponential is not None:
            # (kappa m)^2 t as hi + lo (TwoProduct), then c 2^(n - 2h): the term itself
            t, t_lo, exponent, log_unit = exponential
            product_lo = claim("node-product-lo", a=sq_hi, a_lo=sq_lo, b=t, b_lo=t_lo, p=k_hi)
            shift = add(exponent, float(log_unit))
            lines += [
                f"        {k_hi} = {array_arithmetic(mul(sq_hi, t))}",
                f"        {sq_lo} = {array_arithmetic(product_lo)}",
                f"        {k_hi} = {array_arithmetic(_scaled(k_hi, shift))}",
                f"        {sq_lo} = {array_arithmetic(_scaled(sq_lo, shift))}",
            ]
            sq_hi = k_hi
        elif multiplier != 1:
            lines += [
                f"        {k} = {array_code(multiplier)}",
                f"        {k_hi} = {array_arithmetic(mul(sq_hi, k))}",
                f"        {sq_lo} = "
                f"{array_arithmetic(claim('node-scaled-lo', a=sq_hi, a_lo=sq_lo, k=k, k_hi=k_hi))}",
            ]
            sq_hi = k_hi
        highs.append(sq_hi)
        lows.append(sq_lo)
    for index, term in enumerate(exact.terms):
        if term.has(sp.exp):
            t_hi, t_lo = _exp_term_lines(term, f"{name}_t{index}", lines)
            if len(exact.terms) + len(exact.squares) > 1 and term.args[0].is_Add:
                # the exponentials are right to 2^-100 of 1: better than the plain sum where
                # |d| > 2^-50 (near d = 0 the terms cancel to d itself)
                (d_hi,) = variables(f"{name}_t{index}_d_hi")
                conditions.append(
                    AnyOf(sp.Gt(d_hi, PowerOfTwo(-50)), sp.Lt(d_hi, neg(PowerOfTwo(-50))))
                )
        else:
            t_hi, t_lo = _exact_parts(term, f"{name}_t{index}", lines)
        highs.append(t_hi)
        if t_lo is not None:
            lows.append(t_lo)
    total, errors = highs[0], []
    for index, high in enumerate(highs[1:]):
        next_total, error = variables(f"{name}_s{index} {name}_e{index}")
        lines.append(
            f"        {next_total}, {error} = {array_arithmetic(two_sum(total, high, error))}"
        )
        total = next_total
        errors.append(error)
    value = add(total, add(*errors, *lows)) if errors or lows else total
    for factor in exact.factors:
        if factor.is_Number:
            value = mul(factor, value)
        else:
            denominator = 1 / factor
            if not (denominator.is_Mul or denominator.is_Symbol) or denominator.is_Number:
                raise NotImplementedError(f"no exact-sum factor {factor}")
            value = div(value, denominator)
    lines.append(f"        {name} = {array_arithmetic(value)}")
    return lines, name, conditions


def _array_tiny_term(form: ParameterisedForm) -> list[str]:
    """``tiny_term_``: 2^(2S) times a term of a row of tiny terms (fact tiny-term-scaled),
    as :func:`symkl.codegen.c_target._c_tiny_term`; ends with a blank line."""
    name = identifier(form.name)
    arguments = ", ".join(str(p) for p in form.parameters)
    quotient = quotient_form(form)
    indent = " " * 8
    x_lines = []
    small: sp.Expr = form.log_ratio
    if quotient is not None:
        # rho = (u - v)/v, never 1/v (which overflows for v < 2^-1024)
        u_name, v_name, _, x_of_rho = quotient
        u, v = variables(f"{u_name} {v_name}")
        x_lines = [_assign("rho", div(add(u, neg(v)), v), indent)]
        small = x_of_rho
    scaled = tiny_scaled_term().xreplace(
        {HALF_A_SCALED: variables("half_a")[0], X_SCALED: variables("x_scaled")[0]}
    )
    return [
        f"def tiny_term_{name}({arguments}):",
        f'    """2^{2 * TINY_SCALE_EXPONENT} times a per-coordinate KL ({form.name}) of a row '
        f"whose total is below 2^{TINY_TOTAL_EXPONENT} (facts tiny-term-scaled, excess-small, "
        'expm1mx-small)."""',
        "    with xp.errstate(all='ignore'):",
        *x_lines,
        _assign("x_scaled", mul(sp.sympify(small), PowerOfTwo(TINY_SCALE_EXPONENT)), indent),
        *_array_half_a(form, TINY_SCALE_EXPONENT, indent),
        f"{indent}return {array_code(scaled)}",
        "",
    ]


def _array_form(form: ParameterisedForm, exact_sums: dict[str, ExactSum]) -> list[str]:
    """term_, gradient_ and jeffreys_ functions of one form, in the array namespace."""
    name = identifier(form.name)
    arguments = ", ".join(str(p) for p in form.parameters)
    quotient = quotient_form(form)
    half_a, half_excess = variables("half_a half_excess")
    domain: sp.Expr = sp.Float(0.0)
    if quotient is not None:
        u, v, power, x_of_rho = quotient
        u_symbol, v_symbol = variables(f"{u} {v}")
        # NaN outside the domain (a scale that is not positive), also with validate=False
        domain = Select(
            sp.And(sp.Gt(u_symbol, 0.0), sp.Gt(v_symbol, 0.0)), 0.0, variables("xp.nan")[0]
        )
        expanded = sp.expand_log(form.log_ratio, force=True)
        rho, rho_lo, two, two_lo = variables("rho rho_lo two two_lo")
        body = [
            _unpack((rho, rho_lo), relative_difference(u_symbol, v_symbol), "        "),
            f"        x = {array_code(x_of_rho)}",
        ]
        if power == 1:
            body.append(_assign("x_lo", rho_lo, "        "))
        else:
            body += [
                _unpack((two, two_lo), claim("node-std-x-lo", part="two"), "        "),
                _assign("x_lo", std_x_lo(), "        "),
            ]
        body += [
            "        # log(u/v) as a difference of logs where u/v is not a normal number",
            _assign(
                "far_log_ratio",
                Select(sp.Ge(div(u_symbol, v_symbol), DBL_MIN), form.log_ratio, expanded),
                "        ",
            ),
            _assign(
                "half_excess",
                sp.Function("half_excess_compensated")(
                    *variables("x x_lo rho rho_lo"),
                    sp.Float(power),
                    *variables("far_log_ratio half_x"),
                ),
                "        ",
            ),
        ]
    else:
        exact_log = sp.Function("half_excess_exact_log")
        body = [_assign("half_excess", exact_log(*variables("x d_hi d_lo")), "        ")]
    # with double-double exponentials, the exact gradient is computed only where the cheap
    # one's error bound exceeds GRADIENT_ULPS (_array_refined_gradient)
    refined = any(
        _exponential(exact_sums[f"gradient-exact-{form.name}-{parameter}"])
        for parameter in form.parameters
        if f"gradient-exact-{form.name}-{parameter}" in exact_sums
    )
    prefix, exact_note = ("exact_", ", exact sums everywhere") if refined else ("", "")
    lines = [
        "",
        f"def parts_{name}({arguments}):",
        f'    """x = {sp.sstr(form.x)}, a = {sp.sstr(form.a)}: their halves and log parts."""',
        *_array_x(form),
        *_array_half_a(form),
        "    return locals()",
        "",
        "",
        f"def term_{name}({arguments}):",
        f'    """Per-coordinate KL ({form.name}): 1/2 (a + x - log(1 + x))."""',
        "    with xp.errstate(all='ignore'):",
        f"        parts = parts_{name}({arguments})",
        "        x, half_x, half_a = parts['x'], parts['half_x'], parts['half_a']",
        *(["        d_hi, d_lo = parts['d_hi'], parts['d_lo']"] if quotient is None else []),
        *body,
        array_statement(Return(add(half_a, half_excess, domain)), "        "),
        "",
        "",
        *_array_tiny_term(form),
        "",
        f"def {prefix}gradient_{name}({arguments}):",
        f'    """Gradient of term_{name} with respect to ({arguments}){exact_note}."""',
        "    with xp.errstate(all='ignore'):",
        f"        parts = parts_{name}({arguments})",
        "        half_x, half_a = parts['half_x'], parts['half_a']",
    ]
    # x and a enter through their halves, which overflow only where the KL does
    halves = {X: 2 * HALF_X, A: 2 * HALF_A}
    _EXPONENTIALS.clear()
    ranged = ranged_gradients()
    components = []
    for parameter in form.parameters:
        printed = array_code(sp.factor_terms(form.gradient[parameter].xreplace(halves)))
        label = f"gradient-range-{form.name}-{parameter}"
        if label in ranged and form.name == "var":
            # x/(2 v_p) = -x'/(2 v_q): each side is safe on its own half-plane
            u, v = variables(" ".join(str(p) for p in form.parameters[1::2]))
            printed = array_arithmetic(
                Select(
                    sp.Ge(u, v, evaluate=False),
                    _printed(array_code(ranged[label])),
                    _printed(printed),
                )
            )
        elif label in ranged:
            printed = array_code(ranged[label])
        exact = exact_sums.get(f"gradient-exact-{form.name}-{parameter}")
        if exact is not None and _exponential(exact):
            body, value, conditions = _array_exact_sum(exact, f"exact_{parameter}")
            lines += [
                "        # the exact sum of fact gradient-exact-"
                f"{form.name}-{parameter} (double-double exponentials), where finite",
                *body,
            ]
            usable = AllOf(isfinite(_printed(value)), *conditions)
            printed = array_arithmetic(Select(usable, _printed(value), _printed(printed)))
        elif exact is not None:
            body, value, conditions = _array_exact_sum(exact, f"exact_{parameter}")
            sum_of_halves = add(HALF_A, HALF_X)
            difference_of_halves = add(HALF_A, neg(HALF_X))
            cancels = AllOf(
                sp.Lt(HALF_X, 0.0, evaluate=False),
                sp.Lt(mul(4.0, sum_of_halves), difference_of_halves, evaluate=False),
                sp.Lt(mul(-4.0, sum_of_halves), difference_of_halves, evaluate=False),
            )
            lines += [
                "        # where a + x cancels (x < 0, a within a factor 5/3 of -x): the exact",
                f"        # sum of fact gradient-exact-{form.name}-{parameter}; else as above",
                _assign("cancels", cancels, "        "),
                *body,
            ]
            usable = AllOf(variables("cancels")[0], isfinite(_printed(value)), *conditions)
            printed = array_arithmetic(Select(usable, _printed(value), _printed(printed)))
        components.append(printed)
    lines.append("        return (")
    for printed in components:
        lines.append(f"            {printed},")
    lines += ["        )", ""]
    if refined:
        lines += _array_refined_gradient(form)
    if form.symmetric is not None:
        forward_half_x, reverse_x, forward_half_a, reverse_half_a, crossed = variables(
            "forward['half_x'] reverse['x'] forward['half_a'] reverse['half_a'] crossed"
        )
        swapped = ", ".join(str(p) for p in swapped_parameters(form))
        lines += [
            "",
            f"def jeffreys_{name}({arguments}):",
            f'    """KL(p||q) + KL(q||p) ({form.name}): 1/2 (a + a\' - x x\'), fact '
            f'jeffreys-parts-{form.name}."""',
            "    with xp.errstate(all='ignore'):",
            f"        forward = parts_{name}({arguments})",
            f"        reverse = parts_{name}({swapped})",
            _assign("crossed", mul(-1, forward_half_x, reverse_x), "        "),
            _assign("total", add(forward_half_a, reverse_half_a, crossed), "        "),
            array_statement(Return(add(maximum(variables("total")[0], 0.0), domain)), "        "),
            "",
        ]
        lines += _array_jeffreys_gradient(form, exact_sums)
    return lines


def _array_jeffreys_gradient(form: ParameterisedForm, exact_sums: dict[str, ExactSum]) -> list[str]:
    """``gradient_jeffreys_<form>``: the two KLs' gradients added, and where the two scale
    derivatives cancel (opposite signs, within a factor 5/3) the exact sums of facts
    jeffreys-gradient-exact-*."""
    name = identifier(form.name)
    arguments = ", ".join(str(p) for p in form.parameters)
    swapped = ", ".join(str(p) for p in swapped_parameters(form))
    # the two KLs' gradients with their exact sums everywhere: the sum of two cheap mean
    # gradients is bounded by 5 ulp only, beyond GRADIENT_ULPS
    exponential = any(
        _exponential(exact)
        for label, exact in exact_sums.items()
        if label.startswith(f"gradient-exact-{form.name}-")
    )
    prefix = "exact_" if exponential else ""
    lines = [
        "",
        f"def gradient_jeffreys_{name}({arguments}):",
        f'    """Gradient of jeffreys_{name} with respect to ({arguments})."""',
        "    with xp.errstate(all='ignore'):",
        f"        forward = {prefix}gradient_{name}({arguments})",
        f"        backward = {prefix}gradient_{name}({swapped})",
    ]
    _EXPONENTIALS.clear()
    components = []
    for position, parameter in enumerate(form.parameters):
        partner = (position + 2) % 4
        f, b = variables(f"forward[{position}] backward[{partner}]")
        plain = array_arithmetic(add(f, b))
        exact = exact_sums.get(f"jeffreys-gradient-exact-{form.name}-{parameter}")
        if exact is None:
            components.append(plain)
            continue
        body, value, conditions = _array_exact_sum(exact, f"exact_{parameter}")
        exact_value, total, spread, size = variables(f"{value} total spread size")
        if _exponential(exact):
            # double-double exponentials: the exact sum is right wherever it is finite
            usable = AllOf(isfinite(exact_value), *conditions)
            lines += [
                _assign("total", add(f, b), "        "),
                *body,
                _assign(value, Select(usable, exact_value, total), "        "),
            ]
            components.append(value)
            continue
        # the two KLs' gradients of opposite signs, cancelling to below a quarter of their
        # spread
        opposite = AnyOf(
            AllOf(sp.Gt(f, 0.0, evaluate=False), sp.Lt(b, 0.0, evaluate=False)),
            AllOf(sp.Lt(f, 0.0, evaluate=False), sp.Gt(b, 0.0, evaluate=False)),
        )
        (cancels,) = variables(f"cancels_{parameter}")
        lines += [
            _assign("total", add(f, b), "        "),
            _assign("spread", add(f, neg(b)), "        "),
            _assign("size", _magnitude(total), "        "),
            _assign("spread", _magnitude(spread), "        "),
            _assign(
                str(cancels),
                AllOf(opposite, sp.Lt(mul(4.0, size), spread, evaluate=False)),
                "        ",
            ),
            *body,
        ]
        usable = AllOf(cancels, isfinite(exact_value), *conditions)
        lines.append(_assign(value, Select(usable, exact_value, total), "        "))
        components.append(value)
    lines += ["        return (", *(f"            {c}," for c in components), "        )", ""]
    return lines


# ------------------------------------------------- the array gradients' double-double exponential
#: beyond |x| = 1500, e^x is 0 or inf in binary64: the exponential's input is clipped there so
#: that its reduction stays exact (|n| < 2^20) and the power of 2 gives the 0 or inf
EXP_INPUT_LIMIT = 1500.0


def _exponential(exact: ExactSum) -> bool:
    """Whether an exact sum has exponential terms (taken by ``exp_parts``)."""
    return any(term.has(sp.exp) for term in exact.terms)


def ldexp(value: sp.Expr | float, exponent: sp.Expr) -> sp.Expr:
    """``xp.ldexp(value, exponent)``: ``value 2^exponent``, the exponent integer-valued."""
    return sp.Function("xp.ldexp")(value, exponent)


def _floor(value: sp.Expr) -> sp.Expr:
    return sp.Function("xp.floor")(value)


def _scaled(value: sp.Expr, exponent: sp.Expr) -> sp.Expr:
    """``value 2^exponent`` (exact where the result is normal): ``scaled`` below."""
    return sp.Function("scaled")(value, exponent)


def _double_exp_lines() -> list[str]:
    """``exp_parts(x, x_lo)``: ``e^(x + x_lo) = 2^n (t + t_lo)`` with ``t_lo`` right to about
    ``2^-100`` of ``t`` (fact exp-double-split: the reduction node-exp-double-reduction,
    three table steps, the series node-exp-double-series, Dekker products node-product-lo);
    and ``scaled(value, n)``, ``value 2^n`` in two exact halves of the exponent."""
    first, second, third = ln2_three_parts()
    rows, zeros = exp_table_rows()
    x, x_lo, n, shift, r_a, a_lo, r, b_lo, r_lo, s, p, u, v = variables(
        "x x_lo n shift r_a a_lo r b_lo r_lo s p u v"
    )
    value, half = variables("value half")
    reduction = {"x": x, "x_lo": x_lo, "n": n, "shift": shift, "a_lo": a_lo, "b_lo": b_lo}
    lines = [
        "",
        "",
        f"EXP_LN2_1, EXP_LN2_2, EXP_LN2_3 = {first!r}, {second!r}, {third!r}",
        f"EXP_INV_LN2 = {literal(1 / sp.log(2))}",
        "#: rows (hi, lo) of e^c, c = j 2^-bits for the levels (bits, largest |j|) "
        f"{', '.join(str(level) for level in EXP_TABLE_LEVELS)}",
        "EXP_TABLE = xp.asarray([",
        *(f"    ({high!r}, {low!r})," for high, low in rows),
        "])",
        "",
        "",
        "def scaled(value, n):",
        '    """value 2^n for an integer-valued n, in two halves of n: exact wherever the result',
        '    is a normal number, also where 2^n alone is not a double."""',
        _assign("half", _floor(mul(0.5, n)), "    "),
        array_statement(
            Return(ldexp(ldexp(value, half), add(n, neg(half)))),
            "    ",
        ),
        "",
        "",
        "def exp_parts(x, x_lo):",
        '    """n, t, t_lo with e^(x + x_lo) = 2^n (t + t_lo), t_lo right to about 2^-100 of t',
        "    (fact exp-double-split; x_lo at most an ulp of x).\"\"\"",
        _assign("x", sp.Function("xp.clip")(x, -EXP_INPUT_LIMIT, EXP_INPUT_LIMIT), "    "),
        _assign("n", _floor(add(mul(x, sp.Symbol("EXP_INV_LN2")), 0.5)), "    "),
        _assign("r_hi", claim("node-exp-double-reduction", part="r_hi", **reduction), "    "),
        _assign("shift", mul(n, sp.Symbol("EXP_LN2_2")), "    "),
        _unpack((r_a, a_lo), claim("node-exp-double-reduction", part="r_a", **reduction), "    "),
        _unpack((r, b_lo), claim("node-exp-double-reduction", part="r", **reduction), "    "),
        _assign("r_lo", claim("node-exp-double-reduction", **reduction), "    "),
        "    # r = c_1 + c_2 + c_3 + s, each step exact (Sterbenz), |s| <= 2^-19",
        _assign("s", r, "    "),
    ]
    products = []
    for level, ((bits, top), zero) in enumerate(zip(EXP_TABLE_LEVELS, zeros, strict=True), 1):
        j = sp.Symbol(f"j_{level}")
        scale = sp.Float(2.0**bits)
        # NaN (validate=False) stays in s and so in t; the table index is read from 0
        finite = Select(isfinite(s), s, 0.0)
        lines += [
            _assign(
                f"j_{level}",
                sp.Function("xp.clip")(_floor(add(mul(finite, scale), 0.5)), -top, top),
                "    ",
            ),
            _assign("s", add(s, neg(div(j, scale))), "    "),
            _unpack(
                variables(f"e_{level} e_{level}_lo"),
                sp.Function("xp.table_rows")(sp.Symbol("EXP_TABLE"), add(j, zero)),
                "    ",
            ),
        ]
        products.append(variables(f"e_{level} e_{level}_lo"))
    lines += [
        _assign("p", mul(s, s), "    "),
        _assign("u", add(1.0, s), "    "),
        _assign("v", add(u, mul(0.5, p)), "    "),
        _assign("v_lo", claim("node-exp-double-series", s=s, r_lo=r_lo, p=p, u=u, v=v), "    "),
    ]
    products.append(variables("v v_lo"))
    high, low = products[0]
    for index, (factor, factor_lo) in enumerate(products[1:]):
        name = "t" if index == len(products) - 2 else f"t_{index + 1}"
        product, product_lo = variables(f"{name} {name}_lo")
        lines += [
            _assign(name, mul(high, factor), "    "),
            _assign(
                f"{name}_lo",
                claim(
                    "node-product-lo", a=high, a_lo=low, b=factor, b_lo=factor_lo, p=product
                ),
                "    ",
            ),
        ]
        high, low = product, product_lo
    lines += ["    return n, t, t_lo", "", ""]
    return lines


def _exp_square_lines(
    multiplier: sp.Expr, part: str, lines: list[str]
) -> tuple[sp.Symbol, sp.Symbol, sp.Symbol, int]:
    """For a square's multiplier ``c e^u / kappa^2`` (``c = +-1/2``): ``e^u`` as ``2^n (t +
    t_lo)`` and ``kappa = 2^h``, ``h = floor(n/2)``, so that ``(kappa m)^2 t`` is near the
    term itself (no under- or overflow where the term is near 1).  Returns ``t``,
    ``t_lo`` (signed as c), ``n - 2h`` and log2 |c|."""
    coefficient, exponential = multiplier.as_independent(sp.exp, as_Add=False)
    unit = sp.simplify(coefficient * EXACT_SCALE**2)
    if not (isinstance(exponential, sp.exp) and unit in (sp.Rational(1, 2), -sp.Rational(1, 2))):
        raise NotImplementedError(f"no exponential square multiplier {multiplier}")
    u_hi, u_lo = _exact_parts(exponential.args[0], f"{part}_u", lines)
    n, t, t_lo, h, kappa = variables(f"{part}_n {part}_t {part}_t_lo {part}_h kappa")
    sign = 1 if unit > 0 else -1
    _exp_call(exponential.args[0], (u_hi, u_lo), (n, t, t_lo), lines)
    lines += [
        f"        {h} = {array_arithmetic(_floor(mul(0.5, n)))}",
        f"        {kappa} = {array_arithmetic(ldexp(1.0, h))}",
    ]
    if sign < 0:
        t_signed, t_lo_signed = variables(f"{part}_t_neg {part}_t_lo_neg")
        lines += [
            f"        {t_signed} = {array_arithmetic(neg(t))}",
            f"        {t_lo_signed} = {array_arithmetic(neg(t_lo))}",
        ]
        t, t_lo = t_signed, t_lo_signed
    return t, t_lo, add(n, neg(mul(2.0, h))), -1


#: the exponentials a printed function has taken, by argument: each is taken once
_EXPONENTIALS: dict[sp.Expr, tuple[sp.Symbol, ...]] = {}


def _exp_call(
    argument: sp.Expr,
    parts: tuple[sp.Expr, sp.Expr | None],
    names: tuple[sp.Symbol, ...],
    lines: list[str],
) -> None:
    """``n, t, t_lo = exp_parts(hi, lo)`` for ``e^argument``, or the names of the same
    exponential taken earlier in the function (:data:`_EXPONENTIALS`, reset per function)."""
    if argument in _EXPONENTIALS:
        earlier = ", ".join(str(name) for name in _EXPONENTIALS[argument])
        lines.append(f"        {', '.join(str(name) for name in names)} = {earlier}")
        return
    hi, lo = parts
    lines.append(
        f"        {', '.join(str(name) for name in names)} = exp_parts("
        f"{array_arithmetic(hi)}, {array_arithmetic(0.0 if lo is None else lo)})"
    )
    _EXPONENTIALS[argument] = names


def _exp_term_lines(term: sp.Expr, part: str, lines: list[str]) -> tuple[sp.Symbol, sp.Symbol]:
    """A term ``c e^u`` (``c = +-1/2``) as ``hi + lo``: ``e^u = 2^n (t + t_lo)`` (exp_parts),
    both parts scaled by ``c 2^n`` (exact where they are normal numbers)."""
    coefficient, exponential = term.as_independent(sp.exp, as_Add=False)
    if not isinstance(exponential, sp.exp):
        raise NotImplementedError(f"no exponential term {term}")
    d_hi, d_lo = _exact_parts(exponential.args[0], f"{part}_d", lines)
    n, t, t_lo, hi, lo = variables(f"{part}_n {part}_t {part}_t_lo {part}_hi {part}_lo")
    _exp_call(exponential.args[0], (d_hi, d_lo), (n, t, t_lo), lines)
    if coefficient in (sp.Rational(1, 2), -sp.Rational(1, 2)):
        signed = (lambda e: e) if coefficient > 0 else neg
        exponent = add(n, -1.0)
        lines += [
            f"        {hi} = {array_arithmetic(_scaled(signed(t), exponent))}",
            f"        {lo} = {array_arithmetic(_scaled(signed(t_lo), exponent))}",
        ]
        return hi, lo
    # a difference of two inputs times the exponential: (c + c_lo)(t + t_lo) by TwoProduct
    c_hi, c_lo = _exact_parts(coefficient, f"{part}_c", lines)
    if c_lo is None:
        raise NotImplementedError(f"no exponential term {term}")
    lines += [
        f"        {hi} = {array_arithmetic(mul(c_hi, t))}",
        f"        {lo} = "
        f"{array_arithmetic(claim('node-product-lo', a=c_hi, a_lo=c_lo, b=t, b_lo=t_lo, p=hi))}",
        f"        {hi} = {array_arithmetic(_scaled(hi, n))}",
        f"        {lo} = {array_arithmetic(_scaled(lo, n))}",
    ]
    return hi, lo


# ------------------------------------------------- the cheap gradient and where it is refined
#: the bound, in ulps of the true gradient, that the cheap gradient meets wherever it is used
#: (16: 10% of random elements refined, 1.2x the plain gradient; 4 refined all of them, 4-5x)
GRADIENT_ULPS = 16
#: a priori bounds of the cheap values' relative errors in units of u = 2^-53, to first order,
#: exp and expm1 taken within 1 ulp (2u) of the truth (glibc, Sleef u10; NumPy's exp measured
#: at 0.67 ulp): half_x = x/2 from x = expm1(d_hi) + d_lo e^d_hi (2u, and u for the addition:
#: d_lo e^d_hi and the neglected d_lo^2 e^d_hi/2 are below u^2 |d| e^d); half_a =
#: (0.5 d^2 e^-logvar_q) 2^2k (half_mean_term): d = fl(mu_p - mu_q) (u, twice in d^2), the
#: square (u), the product (u) and e^-logvar_q (2u), the scalings exact where the exponential
#: is in [2^-600, 2^600] (|logvar_q| <= 400 below) and the result normal
CHEAP_ERROR_UNITS = {HALF_X: 3, HALF_A: 6}
#: (mu_p - mu_q) e^-logvar_q: the difference (u), the exponential (2u), the product (u)
MEAN_GRADIENT_ERROR_UNITS = 4
#: below this magnitude a result may be subnormal-adjacent, where relative bounds fail
CHEAP_SMALLEST = 2.0**-960
#: where half_a takes its full path and exp(-logvar) cannot overflow: |argument| <= this
CHEAP_EXP_ARGUMENT = 400.0
#: where half_x is 0.5 expm1(d) (parts_logvar takes e^d/2 in halves beyond d = 709)
CHEAP_DIFFERENCE_LIMIT = 709.0


def _printed(text: str) -> sp.Symbol:
    """An operand already printed by the array printer (a gradient fact printed in SymPy's
    own order), to stand in a printed condition or select as it is."""
    return sp.Symbol(text)


def _magnitude(value: sp.Expr) -> sp.Expr:
    """``|value|`` as a select (the value itself where SymPy knows it is nonnegative)."""
    if value.is_nonnegative:
        return value
    return Select(sp.Lt(value, 0.0), neg(value), value)


def _normal_or_zero(value: sp.Expr) -> sp.Expr:
    """``value == 0 | |value| >= CHEAP_SMALLEST`` (relative bounds hold for normal results)."""
    return AnyOf(
        sp.Eq(value, 0.0, evaluate=False),
        sp.Ge(_magnitude(value), sp.Float(CHEAP_SMALLEST), evaluate=False),
    )


def _array_refined_gradient(form: ParameterisedForm) -> list[str]:
    """``gradient_<form>``: the gradient facts printed plainly (no compensated arithmetic),
    each component with its a priori error bound; where a bound exceeds GRADIENT_ULPS (or a
    value is not finite, or an input is where the plain forms lose range) ``xp.refine`` takes
    ``exact_gradient_<form>`` on those elements only.

    The bound of a component ``g = sum_i c_i h_i`` (``h_i`` among half_a, half_x, each with
    relative error at most ``e_i u``, ``c_i = +-1``) rounded once per addition is
    ``sum_i e_i |h_i| u + |g| u`` (one rounding per addition, of a partial sum no larger
    than the terms' magnitudes; first order in u), and the ulp of the true value exceeds
    ``u |g|``: the component is within GRADIENT_ULPS ulp where ``sum_i e_i |h_i| + (terms -
    1) |g| <= GRADIENT_ULPS |g|`` (NaN compares false: refined)."""
    name = identifier(form.name)
    arguments = ", ".join(str(p) for p in form.parameters)
    halves = {X: 2 * HALF_X, A: 2 * HALF_A}
    lines = [
        "",
        f"def gradient_{name}({arguments}):",
        f'    """Gradient of term_{name} with respect to ({arguments}):',
        f"    the plain forms where their error bound is within {GRADIENT_ULPS} ulp, "
        f"exact_gradient_{name}",
        '    elsewhere (on those elements only where the framework allows it: xp.refine)."""',
        "    with xp.errstate(all='ignore'):",
        f"        parts = parts_{name}({arguments})",
        "        half_x, half_a = parts['half_x'], parts['half_a']",
    ]
    (a_argument,) = (e.args[0] for e in form.a.atoms(sp.exp))
    cheap, usable = [], []
    for parameter in form.parameters:
        gradient = form.gradient[parameter].xreplace(halves)
        value = sp.Symbol(f"cheap_{parameter}")
        lines.append(_assign(str(value), gradient, "        "))
        conditions = [isfinite(value), _normal_or_zero(value)]
        terms = sp.Add.make_args(gradient)
        if gradient.free_symbols & {HALF_A, HALF_X}:
            bound = []
            for term in terms:
                coefficient, half = term.as_coeff_Mul()
                if half not in CHEAP_ERROR_UNITS or abs(coefficient) != 1:
                    raise NotImplementedError(f"no cheap error bound for {term}")
                bound.append(mul(float(CHEAP_ERROR_UNITS[half]), _magnitude(half)))
                conditions.append(_normal_or_zero(half))
            if len(terms) > 1:  # the additions' roundings
                bound.append(mul(float(len(terms) - 1), _magnitude(value)))
            limit = mul(float(GRADIENT_ULPS), _magnitude(value))
            conditions.append(sp.Le(add(*bound), limit, evaluate=False))
            if HALF_X in gradient.free_symbols:
                difference = variables("parts['d_hi']")[0]
                conditions.append(
                    sp.Le(difference, sp.Float(CHEAP_DIFFERENCE_LIMIT), evaluate=False)
                )
            if HALF_A in gradient.free_symbols:
                conditions.append(
                    sp.Le(_magnitude(a_argument), sp.Float(CHEAP_EXP_ARGUMENT), evaluate=False)
                )
        else:
            # a mean gradient, the difference of the means times one exponential
            if MEAN_GRADIENT_ERROR_UNITS > GRADIENT_ULPS or len(gradient.atoms(sp.exp)) != 1:
                raise NotImplementedError(f"no cheap error bound for {gradient}")
            (argument,) = (e.args[0] for e in gradient.atoms(sp.exp))
            conditions.append(
                sp.Le(_magnitude(argument), sp.Float(CHEAP_EXP_ARGUMENT), evaluate=False)
            )
        usable_name = f"usable_{parameter}"
        lines.append(_assign(usable_name, AllOf(*conditions), "        "))
        cheap.append(str(value))
        usable.append(usable_name)
    lines += [
        f"        return xp.refine(exact_gradient_{name}, ({arguments}), "
        f"({', '.join(cheap)}), ({', '.join(usable)}))",
        "",
    ]
    return lines
