"""The kernels' compensated arithmetic as claims: nodes with an exact meaning, statements, evidence.

The numeric kernels carry quantities as ``hi + lo`` with three nodes:

- ``TwoSum(a, b, lo)``: the rounded ``a + b``; ``lo`` receives its exact error, so the
  node *means* ``a + b - lo`` (Knuth's TwoSum);
- ``ProductError(a, b, p)``: ``a b - p`` exactly (``fma(a, b, -p)``, Dekker's TwoProduct);
- ``Lo(x)``: ``x``, marked as a lo part (the float32 kernels drop it).

With these meanings (and every other operation exact) each compensated statement of
the kernels is an equality in real arithmetic: "hi + lo equals the target up to the
stated neglected terms".  :func:`kernel_statements` builds them once; the derivation
``stable`` checks each as a fact (label ``node-...``), and the printers of
:mod:`symkl.codegen` print only statements that verified (:class:`Claimed`).

What real arithmetic cannot prove is that the nodes are *error-free* in IEEE binary64
round-to-nearest: that TwoSum's ``lo`` is the exact error, that ``fma(a, b, -fl(a b))`` is
exact.  That is a floating-point theorem, stated once as the named assumption
:data:`ERROR_FREE_TRANSFORMATIONS` with :func:`error_free_evidence`: exact rational
checks over random and adversarial doubles (subnormals, huge exponents, ties).

Operand order matters in floating point, so the expressions are built with :func:`add`
and :func:`mul` (unevaluated, left to right, in the order given).

Examples
--------
>>> a, b, lo = variables("a b lo")
>>> exact_value(TwoSum(a, b, lo))
a + b - lo
>>> statement = kernel_statements()["node-std-x-lo"]
>>> statement.fact().label
'node-std-x-lo'
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

__all__ = [
    "ERROR_FREE_TRANSFORMATIONS",
    "EXPONENT_SPLIT",
    "BitOr",
    "Bits",
    "Claimed",
    "FromBits",
    "KernelStatement",
    "Lo",
    "ProductError",
    "ShiftLeft",
    "ShiftRight",
    "TwoSum",
    "UInt",
    "add",
    "div",
    "error_free_evidence",
    "exact_value",
    "exponent_split",
    "exponent_split_evidence",
    "float_value",
    "inverse",
    "kernel_statements",
    "mul",
    "neg",
    "scale_from_rounded",
    "substitute",
    "variables",
    "veltkamp_parts",
    "veltkamp_split",
]


# ----------------------------------------------------------------------------------- nodes
class TwoSum(sp.Function):
    """``TwoSum(a, b, lo)``: the rounded ``a + b``; ``lo`` receives its exact error.

    Knuth's TwoSum: ``a + b = hi + lo`` exactly, so the node means ``a + b - lo``.  C
    calls ``symkl_two_sum(a, b, &lo)``; the array namespace ``two_sum(a, b)``, which
    returns ``(hi, lo)``.
    """

    nargs = 3


class ProductError(sp.Function):
    """``ProductError(a, b, p) = a b - p`` exactly, for ``p`` the rounded ``a b`` (or any ``p``
    with ``a b - p`` representable): ``fma(a, b, -p)`` in C, Dekker's TwoProduct
    (``product_error``) in the array namespace, which has no fma."""

    nargs = 3


class Lo(sp.Function):
    """A lo part: in C ``SYMKL_LO(e)``, which the float32 kernels drop (``exact = 0``);
    the array kernels always keep it.  It means ``e``."""

    nargs = 1


def neg(value: sp.Expr | float) -> sp.Expr:
    """``-value``, printed as unary minus before an ordered product."""
    value = sp.sympify(value)
    if isinstance(value, sp.Mul) and value.args[0] != -1:
        return mul(-1, *value.args)
    return mul(-1, value)


def inverse(denominator: sp.Expr) -> sp.Expr:
    """A factor ``/ denominator`` of an ordered product: ``mul(a, b, inverse(c))`` is
    ``a * b / c``."""
    return sp.Pow(denominator, -1, evaluate=False)


def div(numerator: sp.Expr | float, denominator: sp.Expr) -> sp.Expr:
    """``numerator / denominator``, one rounded division (a product numerator first)."""
    return mul(numerator, inverse(denominator))


def variables(names: str) -> tuple[sp.Symbol, ...]:
    """Real symbols named as the kernels' variables (``"d_hi d_lo"``)."""
    return sp.symbols(names, real=True, seq=True)


def add(*terms: sp.Expr | float) -> sp.Expr:
    """The floating-point sum of ``terms``, left to right, in the order given."""
    return sp.Add(*(sp.sympify(t) for t in terms), evaluate=False)


def mul(*factors: sp.Expr | float) -> sp.Expr:
    """The floating-point product of ``factors``, left to right, in the order given."""
    return sp.Mul(*(sp.sympify(f) for f in factors), evaluate=False)


def substitute(expr: sp.Basic, mapping: Mapping[sp.Basic, sp.Basic]) -> sp.Basic:
    """``expr`` with ``mapping`` applied, every sum, product and power kept unevaluated
    (``xreplace`` would re-evaluate them and so reorder the floating-point operations)."""
    if expr in mapping:
        return mapping[expr]
    if not expr.args:
        return expr
    arguments = [substitute(a, mapping) for a in expr.args]
    if isinstance(expr, (sp.Add, sp.Mul, sp.Pow)):
        return expr.func(*arguments, evaluate=False)
    return expr.func(*arguments)


def exact_value(expr: sp.Basic, given: Mapping[sp.Symbol, sp.Basic] | None = None) -> sp.Expr:
    """The exact-arithmetic meaning of kernel arithmetic.

    Binary Floats become the rationals they are, ``TwoSum(a, b, lo)`` is ``a + b - lo``,
    ``ProductError(a, b, p)`` is ``a b - p``, ``Lo(x)`` is ``x``, a :class:`Claimed`
    statement its instance, and a symbol in ``given`` (an earlier variable of the
    kernel) its own exact value.  Everything is evaluated (no order: real arithmetic).

    Examples
    --------
    >>> a, b, p = variables("a b p")
    >>> exact_value(add(ProductError(a, b, p), mul(0.5, p)))
    a*b - p/2
    """
    given = given or {}

    def meaning(node: sp.Basic) -> sp.Basic:
        if isinstance(node, sp.Float):
            return sp.Rational(float(node))
        if isinstance(node, sp.Symbol):
            return meaning(given[node]) if node in given else node
        if isinstance(node, Claimed):
            return meaning(node.instance())
        if not node.args:
            return node
        arguments = [meaning(a) for a in node.args]
        if isinstance(node, TwoSum):
            first, second, lo = arguments
            return first + second - lo
        if isinstance(node, ProductError):
            first, second, product = arguments
            return first * second - product
        if isinstance(node, Lo):
            return arguments[0]
        return node.func(*arguments)

    return meaning(sp.sympify(expr))


def float_value(expr: sp.Basic, values: Mapping[str, float]) -> float:
    """``expr`` evaluated in IEEE binary64 as the kernels evaluate it: left to right, each
    operation rounded (Python floats); the nodes by their error-free algorithms."""

    def value(node: sp.Basic) -> float:
        if isinstance(node, sp.Symbol):
            return values[node.name]
        if node.is_Number:
            return float(node)
        if isinstance(node, Claimed):
            return value(node.instance())
        if isinstance(node, sp.Add):
            total = value(node.args[0])
            for term in node.args[1:]:
                total += value(term)
            return total
        if isinstance(node, sp.Mul):
            product = value(node.args[0])
            for factor in node.args[1:]:
                if isinstance(factor, sp.Pow) and factor.exp == -1:
                    product /= value(factor.base)
                else:
                    product *= value(factor)
            return product
        if isinstance(node, sp.Pow) and node.exp == -1:
            return 1.0 / value(node.base)
        if isinstance(node, Lo):
            return value(node.args[0])
        if isinstance(node, ProductError):
            first, second, product = (value(a) for a in node.args)
            exact = Fraction(first) * Fraction(second) - Fraction(product)
            return float(exact)  # fma: the exact result, rounded once
        raise TypeError(f"float_value: no binary64 evaluation of {node.func.__name__}")

    return value(sp.sympify(expr))


# ------------------------------------------------------------------------------ statements
@dataclass(frozen=True)
class KernelStatement:
    """One compensated statement of the kernels and the claim that it is right.

    ``expression`` is what the kernels print (in the symbols ``parameters``, which a
    kernel binds to its own variables); ``claim`` is an expression in ``expression``'s
    placeholder :data:`OUT` and the parameters (``x + OUT`` for a lo part of ``x``);
    ``target`` what it equals in exact arithmetic, neglected terms written out;
    ``given`` the earlier variables the claim rests on: a kernel expression (``two =
    TwoSum(2, rho, two_lo)``), which the kernels print from here (:class:`Claimed` with
    ``part``) so that the claim and the code agree by construction, or, where the kernel
    computes it by an approximation proved elsewhere (a series), its exact meaning.
    :meth:`facts` are checked by ``stable``.
    """

    label: str
    text: str
    expression: sp.Expr
    claim: sp.Expr
    target: sp.Expr
    given: Mapping[sp.Symbol, sp.Expr] = field(default_factory=dict)
    #: lo parts the claim is first order in: with each scaled by epsilon, the two sides
    #: agree at epsilon = 0 (fact ``label``) and in their epsilon-derivative there (fact
    #: ``label-first-order``), both computed by SymPy; empty: the claim is exact
    first_order: tuple[sp.Symbol, ...] = ()

    @property
    def parameters(self) -> frozenset[sp.Symbol]:
        """The symbols a kernel may bind: those of the expression and of its givens."""
        symbols = set(self.expression.free_symbols) | set(self.given)
        for value in self.given.values():
            symbols |= value.free_symbols
        return frozenset(symbols)

    @property
    def labels(self) -> tuple[str, ...]:
        """The labels of the facts of :meth:`facts`."""
        return (self.label, f"{self.label}-first-order") if self.first_order else (self.label,)

    def facts(self) -> list:
        """The claims of this statement, as facts for ``stable`` to check."""
        from symkl.derivation import Fact
        from symkl.proof import ExpandFunctions

        prove = ExpandFunctions((log1p, expm1))
        lhs = exact_value(self.claim.xreplace({OUT: exact_value(self.expression)}), self.given)
        rhs = exact_value(self.target, self.given)
        # rendered on the left: the printed statement itself, nodes and all
        shown = substitute(self.claim, {OUT: self.expression})
        meanings = "with the meanings of TwoSum, ProductError and Lo (assumption EFT)"
        if not self.first_order:
            return [
                Fact(
                    f"kernel statement ({self.text}); {meanings}, exactly",
                    lhs,
                    rhs,
                    label=self.label,
                    prove=prove,
                    shown=shown,
                    # the statement's symbols are the kernel's variables, not the
                    # derivation's x and a
                    use_definitions=False,
                )
            ]
        epsilon = sp.Symbol("epsilon", positive=True)
        scaled = {small: epsilon * small for small in self.first_order}
        lhs, rhs = lhs.xreplace(scaled), rhs.xreplace(scaled)
        smalls = ", ".join(str(small) for small in self.first_order)
        return [
            Fact(
                f"kernel statement ({self.text}); {meanings}, at {smalls} = 0",
                lhs.subs(epsilon, 0),
                rhs.subs(epsilon, 0),
                label=self.label,
                prove=prove,
                shown=shown,
                use_definitions=False,
            ),
            Fact(
                f"kernel statement ({self.label}) to first order in {smalls}: the derivatives "
                f"in epsilon at 0, {smalls} scaled by epsilon (SymPy's derivatives)",
                sp.diff(lhs, epsilon).subs(epsilon, 0),
                sp.diff(rhs, epsilon).subs(epsilon, 0),
                label=f"{self.label}-first-order",
                prove=prove,
                use_definitions=False,
            ),
        ]

    def fact(self):
        """The (first) fact of :meth:`facts`."""
        return self.facts()[0]

    def instance(self, arguments: Mapping[str, sp.Basic], part: str | None = None) -> sp.Expr:
        """``expression`` (or the given variable named ``part``) with its parameters (by
        name) bound to ``arguments``."""
        by_name = {s.name: s for s in self.parameters}
        unknown = [name for name in arguments if name not in by_name]
        if unknown:
            names = ", ".join(sorted(by_name))
            raise ValueError(
                f"statement {self.label!r}: no parameter {unknown[0]!r} (it has {names})"
            )
        expression = self.expression
        if part is not None:
            givens = {symbol.name: value for symbol, value in self.given.items()}
            if part not in givens:
                raise ValueError(f"statement {self.label!r} gives no variable {part!r}")
            expression = givens[part]
        return substitute(
            expression, {by_name[name]: value for name, value in arguments.items()}
        )


class Claimed(sp.Expr):
    """A proved kernel statement bound to a kernel's variables: what the printers print.

    Holds the statement's label and the bindings only; the expression is rebuilt
    from the *proved* statement (:func:`symkl.kl.stable.proved_statements`) whenever it
    is printed or evaluated, so a Claimed node cannot carry a formula of its own.
    """

    is_commutative = True
    is_real = True

    def __new__(
        cls,
        label: str | sp.Symbol,
        arguments: Mapping | sp.Tuple = (),
        part: str | sp.Symbol | None = None,
    ):
        if isinstance(arguments, Mapping):
            arguments = sp.Tuple(
                *(sp.Tuple(sp.Symbol(k), sp.sympify(v)) for k, v in sorted(arguments.items()))
            )
        label = label if isinstance(label, sp.Symbol) else sp.Symbol(label)
        if part is None or part == sp.Symbol(""):
            return sp.Expr.__new__(cls, label, sp.Tuple(*arguments))
        part = part if isinstance(part, sp.Symbol) else sp.Symbol(part)
        return sp.Expr.__new__(cls, label, sp.Tuple(*arguments), part)

    @property
    def label(self) -> str:
        return self.args[0].name

    @property
    def arguments(self) -> dict[str, sp.Basic]:
        """The bindings, by the names of the statement's parameters."""
        return {k.name: v for k, v in self.args[1]}

    def instance(self) -> sp.Expr:
        """The proved statement's expression at the bindings; ``LookupError`` when no
        proved statement has this label."""
        from symkl.kl.stable import proved_statements

        statements = proved_statements()
        if self.label not in statements:
            raise LookupError(
                f"Claimed node {self.label!r}: no proved kernel statement of 'stable' has "
                "this label, so nothing is printed for it"
            )
        part = self.args[2].name if len(self.args) > 2 else None
        return statements[self.label].instance(self.arguments, part)

    def doit(self, **hints) -> sp.Expr:
        return self.instance().doit(**hints)

    def _sympystr(self, printer) -> str:
        bound = ", ".join(f"{k}={printer._print(v)}" for k, v in self.arguments.items())
        return f"Claimed({self.label}{', ' if bound else ''}{bound})"


#: the placeholder for a statement's own value in its claim
OUT = sp.Symbol("OUT", real=True)

#: Veltkamp's splitting constant for binary64, 2^(53 - 26) + 1: halves of 26 bits
VELTKAMP_SPLITTER = sp.Float(float(sp.Integer(2) ** 27 + 1))


def _product_lo(a, a_lo, b, b_lo, p, crossed: bool = False) -> sp.Expr:
    """The lo part of ``p = fl(a b)`` for ``(a + a_lo)(b + b_lo)``, first order."""
    if crossed:
        return add(ProductError(a, b, p), mul(a, b_lo), mul(a_lo, b))
    return add(ProductError(a, b, p), mul(a_lo, b), mul(a, b_lo))


def _quotient_remainder(quotient, divisor, dividend) -> sp.Expr:
    """``dividend - quotient * divisor``, exactly (the remainder of a rounded division)."""
    return ProductError(neg(quotient), divisor, neg(dividend))


def kernel_statements() -> dict[str, KernelStatement]:
    """Every compensated statement the kernels print, by label (see the module)."""
    v = sp.Symbol("v", positive=True)
    den = sp.Symbol("denominator", positive=True)
    (a, b, lo, s, bv, x, rho, rho_lo, two, two_lo, d_hi, d_lo, inv_v, p) = variables(
        "a b lo s bv x rho rho_lo two two_lo d_hi d_lo inv_v p"
    )
    a_lo, b_lo, c, hi, u, q, scale, f, f_lo = variables("a_lo b_lo c hi u q scale f f_lo")
    den_lo, inv_den, s_lo, x_lo, tail, near_hi = variables(
        "denominator_lo inv_denominator s_lo x_lo tail near_hi"
    )
    rho_s, rho_s_lo, four, four_lo = variables("rho_s rho_s_lo four four_lo")
    a_hi, b_hi = variables("a_hi b_hi")
    n, error, ln2_hi, ln2_lo, log_m = variables("n error SYMKL_LN2_HI SYMKL_LN2_LO log_m")
    half = sp.Rational(1, 2)
    statements = [
        KernelStatement(
            "node-lo", "a lo part is the quantity itself", Lo(x), OUT, x
        ),
        KernelStatement(
            "node-two-sum",
            "TwoSum: hi + lo = a + b",
            TwoSum(a, b, lo),
            OUT + lo,
            a + b,
        ),
        KernelStatement(
            "node-two-sum-error",
            "Knuth's TwoSum error, s = fl(a + b), bv = s - a",
            add(add(a, neg(add(s, neg(bv)))), add(b, neg(bv))),
            s + OUT,
            a + b,
        ),
        KernelStatement(
            "node-relative-difference-lo",
            "rho = (u - v)/v as rho + rho_lo from u - v = d_hi + d_lo; the rounding of "
            "inv_v = 1/v enters only times the remainder",
            mul(add(_quotient_remainder(rho, v, d_hi), d_lo), inv_v),
            rho + OUT,
            (d_hi + d_lo) / v - (d_hi + d_lo - rho * v) * (1 / v - inv_v),
        ),
        KernelStatement(
            "node-relative-difference-lo-dekker",
            "rho_lo of the array kernels, p = fl(rho v) taken out of the remainder",
            div(add(add(add(d_hi, neg(p)), neg(ProductError(rho, v, p))), d_lo), v),
            rho + OUT,
            (d_hi + d_lo) / v,
        ),
        KernelStatement(
            "node-std-x-lo",
            "x = rho (2 + rho) as x + x_lo, two = TwoSum(2, rho, two_lo), neglecting rho_lo^2",
            add(ProductError(rho, two, x), mul(rho, two_lo), mul(2.0, rho_lo, add(1.0, rho))),
            x + OUT,
            (rho + rho_lo) * (2 + rho + rho_lo) - rho_lo**2,
            {two: TwoSum(2.0, rho, two_lo)},
        ),
        KernelStatement(
            "node-product-lo",
            "p = fl(a b) as p + lo for (a + a_lo)(b + b_lo), neglecting a_lo b_lo",
            _product_lo(a, a_lo, b, b_lo, p),
            p + OUT,
            (a + a_lo) * (b + b_lo) - a_lo * b_lo,
        ),
        KernelStatement(
            "node-square-lo",
            "p = fl(a a) as p + lo for (a + a_lo)^2, neglecting a_lo^2",
            add(ProductError(a, a, p), mul(2.0, a, a_lo)),
            p + OUT,
            (a + a_lo) ** 2 - a_lo**2,
        ),
        KernelStatement(
            "node-fast-two-sum-lo",
            "hi = fl(c + a) as hi + lo for c + a + a_lo (|a| <= |c|: Fast2Sum)",
            add(add(add(c, neg(hi)), a), a_lo),
            hi + OUT,
            c + a + a_lo,
        ),
        KernelStatement(
            "node-mantissa-lo",
            "f = m - 1, m = q scale (scale = 2^-e), q = fl(u inv_v): f + f_lo = scale u/v - 1, "
            "the rounding of inv_v entering only times the remainder",
            mul(_quotient_remainder(q, v, u), inv_v, scale),
            f + OUT,
            scale * u / v - 1 - (u - q * v) * (1 / v - inv_v) * scale,
            {f: q * scale - 1},
        ),
        KernelStatement(
            "node-quotient-lo",
            "s = fl(f inv_den) as s + s_lo for (f + f_lo)/(den + den_lo), the rounding of "
            "inv_den = 1/den entering only times the remainder",
            mul(add(_quotient_remainder(s, den, f), f_lo, neg(mul(s, den_lo))), inv_den),
            s + OUT,
            (f + f_lo) / (den + den_lo)
            + (f + f_lo - s * (den + den_lo)) * (inv_den - 1 / (den + den_lo)),
        ),
        KernelStatement(
            "node-near-var",
            "near_hi = fl(x s) and x s - 2 tail as hi + lo, neglecting x_lo s_lo",
            add(Lo(_product_lo(x, x_lo, s, s_lo, near_hi, crossed=True)), neg(mul(2.0, tail))),
            near_hi + OUT,
            (x + x_lo) * (s + s_lo) - x_lo * s_lo - 2 * tail,
        ),
        KernelStatement(
            "node-near-std",
            "near_hi = fl(rho_s four) and rho_s four - 4 tail as hi + lo, neglecting "
            "rho_s_lo four_lo",
            add(Lo(_product_lo(rho_s, rho_s_lo, four, four_lo, near_hi)), neg(mul(4.0, tail))),
            near_hi + OUT,
            (rho_s + rho_s_lo) * (four + four_lo) - rho_s_lo * four_lo - 4 * tail,
        ),
        KernelStatement(
            "node-log-ratio-lo",
            "hi = TwoSum(n ln2_hi, log m, error): hi + lo = n (ln2_hi + ln2_lo) + log m",
            add(error, mul(n, ln2_lo)),
            hi + OUT,
            n * (ln2_hi + ln2_lo) + log_m,
            {hi: TwoSum(mul(n, ln2_hi), log_m, error)},
        ),
        KernelStatement(
            "node-veltkamp-split",
            "Veltkamp's split: c = (2^27 + 1) a, hi = c - (c - a), lo = a - hi: hi + lo = a",
            add(a, neg(hi)),
            hi + OUT,
            a,
            {
                c: mul(VELTKAMP_SPLITTER, a),
                hi: add(c, neg(add(c, neg(a)))),
            },
        ),
        KernelStatement(
            "node-dekker-product-error",
            "Dekker's TwoProduct from the halves a = a_hi + a_lo, b = b_hi + b_lo",
            add(
                add(add(mul(a_hi, b_hi), neg(p)), mul(a_hi, b_lo), mul(a_lo, b_hi)),
                mul(a_lo, b_lo),
            ),
            OUT,
            (a_hi + a_lo) * (b_hi + b_lo) - p,
        ),
    ]
    statements += _far_statements() + _exp_statements() + _first_order_statements()
    statements += _exact_sum_statements()
    statements += _double_exp_statements()
    total, total_lo, excess_hi, excess_lo = variables("total total_lo excess_hi excess_lo")
    a_hi_sum = sp.Symbol("a", real=True)
    statements.append(
        KernelStatement(
            "node-half-total",
            "total = TwoSum(a, excess_hi, total_lo): the term (a + a_lo + excess)/2",
            mul(0.5, add(total, add(Lo(add(total_lo, a_lo)), excess_lo))),
            OUT,
            half * (a_hi_sum + a_lo + excess_hi + excess_lo),
            {total: TwoSum(a_hi_sum, excess_hi, total_lo)},
        )
    )
    labelled = {statement.label: statement for statement in statements}
    if len(labelled) != len(statements):
        raise ValueError("two kernel statements share a label")
    return labelled


def _far_statements() -> list[KernelStatement]:
    """The excess away from e = 0 (fact log-split), for 1 + x = (u/v)^power."""
    x, x_lo, e, s, s_lo, tail, shifted, shifted_lo, far_hi, far_lo, exponent = variables(
        "x x_lo e s s_lo tail shifted shifted_lo far_hi far_lo exponent"
    )
    ln2_hi, ln2_lo = variables("SYMKL_LN2_HI SYMKL_LN2_LO")
    statements = []
    for power in (1, 2):
        twice = float(2 * power)
        statements.append(
            KernelStatement(
                f"node-far-excess-power-{power}",
                f"x - {power} (e log 2 + 2 atanh s) as hi + lo, exponent = {power} e, "
                "shifted = TwoSum(x, -exponent ln2_hi, shifted_lo), "
                f"far_hi = TwoSum(shifted, -{2 * power} s, far_lo)",
                add(
                    Lo(add(far_lo, shifted_lo, x_lo, neg(mul(twice, s_lo)))),
                    neg(mul(exponent, ln2_lo)),
                    neg(mul(twice, tail)),
                ),
                far_hi + OUT,
                x + x_lo - power * e * (ln2_hi + ln2_lo) - 2 * power * (s + s_lo + tail),
                {
                    far_hi: TwoSum(shifted, mul(-twice, s), far_lo),
                    shifted: TwoSum(x, mul(-1, exponent, ln2_hi), shifted_lo),
                    exponent: mul(float(power), e),
                },
            )
        )
    return statements


def _exp_statements() -> list[KernelStatement]:
    """The branch-free exponential of the log-variance kernels (fact exp-split)."""
    d, d_lo, n, r_hi, r, shift, p, e1, e2, one_r, t, r_lo = variables(
        "d d_lo n r_hi r shift p e1 e2 one_r t r_lo"
    )
    ln2_hi, ln2_lo = variables("SYMKL_LN2_HI SYMKL_LN2_LO")
    scale, t_lo, c, c_lo, f, f_lo = variables("scale t_lo c c_lo f f_lo")
    m2, m2_lo, q_t, q_lo, a_t, a, q_scale = variables("m2 m2_lo q_t q_lo a_t a q_scale")
    return [
        KernelStatement(
            "node-exp-reduction",
            "r = d - n log 2 as r + r_lo, r_hi = d - n ln2_hi (exact: 33-bit ln2_hi), "
            "shift = fl(n ln2_lo), r = fl(r_hi - shift)",
            add(Lo(add(add(r_hi, neg(r)), neg(shift), neg(ProductError(n, ln2_lo, shift)))), d_lo),
            r + OUT,
            d + d_lo - n * (ln2_hi + ln2_lo),
            {r_hi: add(d, neg(mul(n, ln2_hi)))},
        ),
        KernelStatement(
            "node-exp-mantissa",
            "t = (1 + r) + p by two TwoSums, e^(r + r_lo) = (1 + r + p)(1 + r_lo) to first "
            "order; neglecting r_lo (e1 + e2)",
            add(Lo(add(e1, e2)), mul(r_lo, t)),
            t + OUT,
            (1 + r + p) * (1 + r_lo) - r_lo * (e1 + e2),
            {t: TwoSum(one_r, p, e2), one_r: TwoSum(1.0, r, e1)},
        ),
        KernelStatement(
            "node-exp-excess",
            "2^n (t + t_lo) - (1 + d + d_lo) as f + lo, c = TwoSum(1, d, c_lo), "
            "f = TwoSum(scale t, -c, f_lo)",
            add(Lo(add(f_lo, neg(c_lo), neg(d_lo))), mul(scale, t_lo)),
            f + OUT,
            scale * (t + t_lo) - (1 + d + d_lo),
            {f: TwoSum(mul(scale, t), neg(c), f_lo), c: TwoSum(1.0, d, c_lo)},
        ),
        KernelStatement(
            "node-scaled-product-lo",
            "a = fl(m2 q_t) q_scale (q_scale a power of 2) as a + a_lo, neglecting m2_lo q_lo",
            mul(Lo(_product_lo(m2, m2_lo, q_t, q_lo, a_t)), q_scale),
            a + OUT,
            (m2 + m2_lo) * (q_t + q_lo) * q_scale - m2_lo * q_lo * q_scale,
            {a: mul(a_t, q_scale)},
        ),
    ]


def _exact_sum_statements() -> list[KernelStatement]:
    """The hi + lo parts of the exact-sum gradients (facts gradient-exact-*): quotients
    with their remainders, squares and scaled squares by TwoProduct, carried exponentials."""
    den = sp.Symbol("den", positive=True)
    n, w, p, a, a_lo, k, k_hi, e, d_hi, d_lo, expm1_d = variables(
        "n w p a a_lo k k_hi e d_hi d_lo expm1_d"
    )
    remainder = add(add(n, neg(p)), neg(ProductError(w, den, p)))
    return [
        KernelStatement(
            "node-quotient-remainder-lo",
            "w = fl(n/den) as w + lo, p = fl(w den) taken out of the remainder",
            div(remainder, den),
            w + OUT,
            n / den,
        ),
        KernelStatement(
            "node-square-error",
            "p = fl(a a) as p + lo (TwoProduct)",
            ProductError(a, a, p),
            p + OUT,
            a**2,
        ),
        KernelStatement(
            "node-square-lo-exact",
            "p = fl(a a) as p + lo for (a + a_lo)^2, nothing neglected",
            add(ProductError(a, a, p), mul(a_lo, add(mul(2.0, a), a_lo))),
            p + OUT,
            (a + a_lo) ** 2,
        ),
        KernelStatement(
            "node-scaled-lo",
            "k_hi = fl(a k) as k_hi + lo for (a + a_lo) k",
            add(ProductError(a, k, k_hi), mul(a_lo, k)),
            k_hi + OUT,
            (a + a_lo) * k,
        ),
        KernelStatement(
            "node-carried-exp-lo",
            "e^(d_hi + d_lo) = e + e d_lo, e = e^d_hi",
            mul(e, d_lo),
            e + OUT,
            sp.exp(d_hi + d_lo),
            {e: sp.exp(d_hi)},
            first_order=(d_lo,),
        ),
        KernelStatement(
            "node-carried-expm1-lo",
            "expm1(d_hi + d_lo) = expm1_d + d_lo e^d_hi, expm1_d = expm1(d_hi)",
            mul(d_lo, sp.exp(d_hi)),
            expm1_d + OUT,
            expm1(d_hi + d_lo),
            {expm1_d: expm1(d_hi)},
            first_order=(d_lo,),
        ),
    ]


# ------------------------------------------------- the array gradients' double-double exponential
def _double_exp_statements() -> list[KernelStatement]:
    """The exponential of the array gradients as ``2^n (t + t_lo)``, ``t_lo`` about ``2^-100``
    of ``t`` (Dekker products, no fma): the reduction by ``log 2`` in three parts and the
    series at the last table step (fact exp-double-split)."""
    x, x_lo, n, r_hi, shift, r_a, a_lo, r, b_lo = variables(
        "x x_lo n r_hi shift r_a a_lo r b_lo"
    )
    ln2_1, ln2_2, ln2_3 = variables("EXP_LN2_1 EXP_LN2_2 EXP_LN2_3")
    s, r_lo, p, u, v = variables("s r_lo p u v")
    taylor = sum(s**k / sp.factorial(k) for k in range(6))
    # s^3/6 + s^4/24 + s^5/120 with p = fl(s s) in place of s^2: exact divisions by 6, 24, 120
    cubic = add(div(mul(s, p), 6.0), div(mul(s, p, s), 24.0), div(mul(s, p, s, s), 120.0))
    return [
        KernelStatement(
            "node-exp-double-reduction",
            "r = x + x_lo - n log 2 as r + r_lo, log 2 = EXP_LN2_1 + EXP_LN2_2 + EXP_LN2_3 "
            "(the first of 33 bits: r_hi = x - n EXP_LN2_1 exact for |n| < 2^20), shift = "
            "fl(n EXP_LN2_2), r_a = TwoSum(r_hi, -shift, a_lo), r = TwoSum(r_a, x_lo, b_lo)",
            add(add(add(b_lo, a_lo), neg(ProductError(n, ln2_2, shift))), neg(mul(n, ln2_3))),
            r + OUT,
            x + x_lo - n * (ln2_1 + ln2_2 + ln2_3),
            {
                r_hi: add(x, neg(mul(n, ln2_1))),
                r_a: TwoSum(r_hi, neg(shift), a_lo),
                r: TwoSum(r_a, x_lo, b_lo),
            },
        ),
        KernelStatement(
            "node-exp-double-series",
            "e^(s + r_lo) as v + lo, T(s) = 1 + s + ... + s^5/5! (|s| <= 2^-19: the rest is "
            "below 2^-120), u = fl(1 + s), v = fl(u + p/2) (Fast2Sums), p = fl(s s); "
            "neglecting r_lo (T(s) - v) and (s^2 - p)(s/6 + s^2/24 + s^3/120)",
            add(
                add(add(add(1.0, neg(u)), s), add(add(u, neg(v)), mul(0.5, p))),
                add(mul(0.5, ProductError(s, s, p)), cubic, mul(v, r_lo)),
            ),
            v + OUT,
            taylor * (1 + r_lo)
            - r_lo * (taylor - v)
            - (s**2 - p) * (s / 6 + s**2 / 24 + s**3 / 120),
        ),
    ]


def _first_order_statements() -> list[KernelStatement]:
    """The corrections of the scalar and array kernels: a lo part carried to first order."""
    x, x_lo, rho, rho_lo, log_hi, log_lo, power, far_log_ratio = variables(
        "x x_lo rho rho_lo log_hi log_lo power far_log_ratio"
    )
    d_hi, d_lo, expm1_d, series, half_e, carried, mu_p, mu_q = variables(
        "d_hi d_lo expm1_d series half_e carried mu_p mu_q"
    )
    high, low, expm1_c, exp_c, c, r, q, p = variables("high low expm1_c exp_c c r q p")
    statements = [
        KernelStatement(
            "node-series-correction",
            "x_lo x/(1 + x): the first-order effect of x_lo on x - log(1 + x)",
            mul(x_lo, div(x, add(1.0, x))),
            x - sp.log(1 + x) + OUT,
            (x + x_lo) - sp.log(1 + x + x_lo),
            first_order=(x_lo,),
        ),
        KernelStatement(
            "node-excess-far-array",
            "the excess from log(1 + x) = far_log_ratio, hi and lo parts of x",
            add(add(x, neg(far_log_ratio)), x_lo),
            OUT,
            x + x_lo - far_log_ratio,
        ),
    ]
    for suffix, scale in (("unit", 1), ("power", power)):

        def scaled(*factors: sp.Expr, scale: sp.Expr | int = scale) -> sp.Expr:
            if scale == 1:
                return factors[0] if len(factors) == 1 else mul(*factors)
            return mul(scale, *factors)

        statements += [
            KernelStatement(
                f"node-excess-split-{suffix}",
                f"x - log(1 + x) from log(1 + x) = {scale} (log_hi + log_lo), hi and lo parts "
                "subtracted separately",
                add(add(x, neg(scaled(log_hi))), add(x_lo, neg(scaled(log_lo)))),
                OUT,
                x + x_lo - scale * (log_hi + log_lo),
            ),
            KernelStatement(
                f"node-excess-direct-{suffix}",
                f"x - log(1 + x) with 1 + x = (1 + rho + rho_lo)^{scale}: log1p(rho) and "
                "rho_lo/(1 + rho)",
                add(
                    add(x, neg(scaled(log1p(rho)))),
                    add(x_lo, neg(scaled(rho_lo, inverse(add(1.0, rho))))),
                ),
                OUT,
                x + x_lo - scale * sp.log(1 + rho + rho_lo),
                first_order=(x_lo, rho_lo),
            ),
        ]
    statements += [
        KernelStatement(
            "node-carried-expm1",
            "expm1(d_hi + d_lo) = expm1(d_hi) + d_lo e^d_hi",
            add(expm1_d, mul(d_lo, sp.exp(d_hi))),
            OUT,
            expm1(d_hi + d_lo),
            {expm1_d: expm1(d_hi)},
            first_order=(d_lo,),
        ),
        KernelStatement(
            "node-near-exact-log-excess",
            "e^d - 1 - d at d = d_hi + d_lo: the series at d_hi plus d_lo x, x = e^d - 1",
            add(series, mul(d_lo, x)),
            OUT,
            sp.exp(d_hi + d_lo) - 1 - (d_hi + d_lo),
            {series: sp.exp(d_hi) - 1 - d_hi, x: expm1(d_hi + d_lo)},
            first_order=(d_lo,),
        ),
        KernelStatement(
            "node-direct-exact-log-excess",
            "x - log(1 + x) where log(1 + x) = d_hi + d_lo exactly",
            add(add(x, neg(d_hi)), neg(d_lo)),
            OUT,
            x - (d_hi + d_lo),
        ),
        KernelStatement(
            "node-carried-half-exp",
            "e^(d_hi + d_lo)/2 = half_e (1 + d_lo), half_e = e^d_hi/2",
            add(half_e, mul(half_e, d_lo)),
            OUT,
            sp.exp(d_hi + d_lo) / 2,
            {half_e: sp.exp(d_hi) / 2},
            first_order=(d_lo,),
        ),
        KernelStatement(
            "node-half-excess-beyond-overflow",
            "(e^d - 1 - d)/2 = e^d/2 - (1 + d)/2 where e^d overflows (fact excess-half)",
            add(carried, neg(mul(0.5, add(1.0, d_hi)))),
            OUT,
            (sp.exp(d_hi) - 1 - d_hi) / 2,
            {carried: sp.exp(d_hi) / 2},
        ),
        KernelStatement(
            "node-halved-difference",
            "(mu_p - mu_q)/2 as mu_p/2 - mu_q/2, finite where the difference overflows",
            add(mul(0.5, mu_p), neg(mul(0.5, mu_q))),
            OUT,
            (mu_p - mu_q) / 2,
        ),
        KernelStatement(
            "node-table-expm1mx",
            "e^d - 1 - d = F + G r + E q (fact expm1mx-table) at d = c + r + d_lo, "
            "F = high + low, G = e^c - 1, E = e^c, q = e^r - 1 - r; d_lo times G + E r, "
            "neglecting d_lo E q",
            add(
                high,
                add(low, mul(expm1_c, r), mul(exp_c, q), mul(d_lo, add(expm1_c, mul(exp_c, r)))),
            ),
            OUT,
            sp.exp(c + r + d_lo) - 1 - (c + r + d_lo) - d_lo * sp.exp(c) * (sp.exp(r) - 1 - r),
            {
                high: sp.exp(c) - 1 - c - low,
                expm1_c: sp.exp(c) - 1,
                exp_c: sp.exp(c),
                q: sp.exp(r) - 1 - r,
            },
            first_order=(d_lo,),
        ),
        KernelStatement(
            "node-exp-near",
            "e^(r + d_lo) - 1 - (r + d_lo) at n = 0 from p = e^r - 1 - r",
            add(p, mul(d_lo, add(r, p))),
            OUT,
            sp.exp(r + d_lo) - 1 - (r + d_lo),
            {p: sp.exp(r) - 1 - r},
            first_order=(d_lo,),
        ),
    ]
    return statements


# ------------------------------------------------------------------------------- assumption
@dataclass(frozen=True)
class Assumption:
    """A floating-point theorem the kernels rest on, stated once, with its evidence."""

    name: str
    title: str
    statements: tuple[str, ...]
    evidence: Callable[..., dict]


def _random_double(rng: random.Random, low: int = -1074, high: int = 1023) -> float:
    exponent = rng.randint(low, high)
    value = math.ldexp(rng.getrandbits(53) | (1 << 52), exponent - 52)
    if not math.isfinite(value):
        value = math.ldexp(rng.random() + 1, high - 1)
    return value if rng.random() < 0.5 else -value


def _adversarial(rng: random.Random) -> float:
    """Doubles near powers of two, near ties, subnormals, the largest and smallest."""
    kind = rng.randrange(6)
    e = rng.randint(-1074, 1023)
    if kind == 0:
        return math.ldexp(1.0, max(e, -1074))
    if kind == 1:
        return math.nextafter(math.ldexp(1.0, min(e, 1023)), 0.0)
    if kind == 2:
        return math.ldexp(rng.getrandbits(52), -1074)  # subnormal
    if kind == 3:
        return math.ldexp(1.0 + 2.0**-52 * rng.choice([1, 2**51, 2**52 - 1]), rng.randint(-60, 60))
    if kind == 4:
        return rng.choice([1.7976931348623157e308, 5e-324, 2.2250738585072014e-308, 1.0, 0.0])
    return math.ldexp(rng.random(), rng.randint(-30, 30))


#: the exact product of two doubles with frexp exponents e_a, e_b has its lowest bit at
#: 2^(e_a + e_b - 106): a double (at least 2^-1074) when e_a + e_b >= -968
_NO_UNDERFLOW = -1074 + 106


def _exponent(value: float) -> int:
    return math.frexp(value)[1] if value else -2000


def error_free_evidence(samples: int = 20000, seed: int = 0) -> dict[str, dict[str, int]]:
    """Exact rational checks of :data:`ERROR_FREE_TRANSFORMATIONS` over many doubles.

    Each pair is drawn at random over the whole binary64 range or adversarially
    (subnormals, powers of two, near ties, the extremes, one operand derived from
    the other), the transformation evaluated as the kernels print it
    (:func:`float_value` on the proved statements) and compared with the exact
    result in fractions.  Returns per transformation the pairs ``checked`` inside
    its conditions, the ``failures`` there (0 is the evidence), and the pairs
    ``outside`` the conditions with how many of them ``fail_outside`` (showing the
    conditions are needed).  Evidence, not proof.

    Examples
    --------
    >>> evidence = error_free_evidence(500)
    >>> all(entry["failures"] == 0 for entry in evidence.values())
    True
    """
    rng = random.Random(seed)
    # the printed formulas themselves, in the names of their statements
    error = Claimed("node-two-sum-error")
    dekker = Claimed("node-dekker-product-error")
    parts = veltkamp_parts()

    def split(value: float) -> tuple[float, float] | None:
        return veltkamp_split(value, parts)

    results = {
        name: {"checked": 0, "failures": 0, "outside": 0, "fail_outside": 0}
        for name in ("two-sum", "fast-two-sum", "fma-product-error", "division-remainder",
                     "dekker-product", "veltkamp-split")
    }  # fmt: skip

    def record(name: str, inside: bool, ok: bool) -> None:
        entry = results[name]
        entry["checked" if inside else "outside"] += 1
        if not ok:
            entry["failures" if inside else "fail_outside"] += 1

    for index in range(samples):
        pick = _adversarial if index % 3 == 0 else _random_double
        a = pick(rng)
        if index % 5:
            b = pick(rng)
        else:  # derived from a: a few binades away, either sign (cancellation, ties)
            b = math.ldexp(a, rng.randint(-60, 60)) if abs(a) < 2.0**900 else a / 3.0
            b *= rng.choice([-1.0, 1.0])
        halves = split(a)
        inside = abs(a) < 2.0**995
        if halves is not None:
            high, low = halves
            exact = Fraction(high) + Fraction(low) == Fraction(a)
            record("veltkamp-split", inside, exact and _bits(high) <= 26 and _bits(low) <= 26)
        else:
            record("veltkamp-split", inside, False)
        total = a + b
        if math.isfinite(total):
            s = total
            e = float_value(error, {"a": a, "b": b, "s": s, "bv": s - a})
            record("two-sum", True, Fraction(a) + Fraction(b) == Fraction(s) + Fraction(e))
            if abs(b) <= abs(a):
                fast = (a - s) + b
                exact = Fraction(a) + Fraction(b) == Fraction(s) + Fraction(fast)
                record("fast-two-sum", True, exact)
        product = a * b
        if math.isfinite(product) and product != 0.0:
            exact = Fraction(a) * Fraction(b) - Fraction(product)
            inside = _exponent(a) + _exponent(b) >= _NO_UNDERFLOW
            record("fma-product-error", inside, Fraction(float(exact)) == exact)
            halves_ok = abs(a) < 2.0**995 and abs(b) < 2.0**995
            if halves_ok:
                got = float_value(
                    dekker, dict(zip(("a_hi", "a_lo", "b_hi", "b_lo", "p"),
                                     (*split(a), *split(b), product), strict=True))
                )  # fmt: skip
                record("dekker-product", inside, Fraction(got) == exact)
        if b != 0.0:
            quotient = a / b
            if math.isfinite(quotient) and quotient != 0.0:
                remainder = Fraction(a) - Fraction(quotient) * Fraction(b)
                inside = _exponent(quotient) + _exponent(b) >= _NO_UNDERFLOW
                record("division-remainder", inside, Fraction(float(remainder)) == remainder)
    return results


def veltkamp_split(
    value: float, parts: Mapping[str, sp.Expr] | None = None
) -> tuple[float, float] | None:
    """Veltkamp's split of ``value`` as the array kernels print it (the proved statement
    node-veltkamp-split, or its ``parts`` ``c``, ``hi``, ``lo`` from
    :func:`veltkamp_parts`, evaluated in binary64); None where ``c`` overflows.

    Examples
    --------
    >>> veltkamp_split(1.0 / 3.0)
    (0.3333333358168602, -2.483526884144993e-09)
    """
    parts = parts or veltkamp_parts()
    values = {"a": value}
    for name in ("c", "hi"):
        values[name] = float_value(parts[name], values)
    if not math.isfinite(values["c"]):
        return None
    return values["hi"], float_value(parts["lo"], values)


def veltkamp_parts() -> dict[str, sp.Expr]:
    """``c``, ``hi`` and ``lo`` of the proved statement node-veltkamp-split."""
    return {
        "c": Claimed("node-veltkamp-split", part="c").instance(),
        "hi": Claimed("node-veltkamp-split", part="hi").instance(),
        "lo": Claimed("node-veltkamp-split").instance(),
    }


def _bits(value: float) -> int:
    """The significant bits of a double: its mantissa without trailing zeros."""
    if value == 0.0:
        return 0
    mantissa = abs(Fraction(value))
    while mantissa.denominator != 1:
        mantissa *= 2
    numerator = mantissa.numerator
    while numerator % 2 == 0:
        numerator //= 2
    return numerator.bit_length()


ERROR_FREE_TRANSFORMATIONS = Assumption(
    "EFT",
    "error-free transformations of IEEE binary64, round to nearest",
    (
        "TwoSum (Knuth): for finite a, b with s = fl(a + b) finite, bv = fl(s - a), the "
        "printed error (a - (s - bv)) + (b - bv) is exactly a + b - s",
        "Fast2Sum (Dekker): for |a| >= |b|, fl((a - fl(a + b)) + b) = a + b - fl(a + b)",
        "fma product error: fma(a, b, -fl(a b)) = a b - fl(a b) exactly when the frexp "
        "exponents have e_a + e_b >= -968 (the exact product's last bit is a double's)",
        "division remainder: fma(-fl(u/v), v, u) = u - fl(u/v) v exactly under the same "
        "condition on fl(u/v) v",
        "Veltkamp's split (node-veltkamp-split): for |a| < 2^995, c = fl((2^27 + 1) a), "
        "hi = fl(c - fl(c - a)), lo = fl(a - hi) give hi + lo = a exactly, hi and lo of "
        "at most 26 significant bits each",
        "Dekker's TwoProduct from Veltkamp's 26-bit halves: exact for |a|, |b| < 2^995 "
        "and no underflow",
    ),
    error_free_evidence,
)


# ------------------------------------------------------------------ binary64 representation
class Bits(sp.Function):
    """The IEEE binary64 encoding of a double, as an unsigned 64-bit integer."""

    nargs = 1


class FromBits(sp.Function):
    """The double whose IEEE binary64 encoding is the unsigned 64-bit integer argument."""

    nargs = 1


class UInt(sp.Function):
    """An unsigned 64-bit integer literal (C prints ``0x...u`` or ``...u``)."""

    nargs = 1


class ShiftRight(sp.Function):
    """``a >> k`` on unsigned 64-bit integers."""

    nargs = 2


class ShiftLeft(sp.Function):
    """``a << k`` on unsigned 64-bit integers (modulo 2^64)."""

    nargs = 2


class BitOr(sp.Function):
    """``a | b`` on unsigned 64-bit integers."""

    nargs = 2


def exponent_split() -> dict[str, sp.Expr]:
    """The vectorised kernels' split ``q = 2^e m``, ``m in [3/4, 3/2)``, from q's bits alone.

    ``biased = e + 1024``: adding ``2^62 - bits(3/4)`` carries into the exponent field
    exactly when ``q``'s mantissa is at least 3/2 of its binade's power of 2.  ``e`` is
    read back as a double (``biased`` placed in the mantissa of ``2^52 + 1024``),
    ``mantissa`` is q with ``e`` taken out of its exponent field, ``scale = 2^-e``.
    One expression each, printed into the C kernels and evaluated by
    :func:`exponent_split_evidence` (assumption EXPONENT-SPLIT).
    """
    q_bits, biased = sp.Symbol("q_bits"), sp.Symbol("biased")
    return {
        "q_bits": Bits(sp.Symbol("q")),
        "biased": ShiftRight(
            add(q_bits, neg(UInt(0x3FE8000000000000)), UInt(0x4000000000000000)), 52
        ),
        "e": add(FromBits(BitOr(biased, UInt(0x4330000000000000))), neg(sp.Float(2.0**52 + 1024))),
        "mantissa": FromBits(add(q_bits, neg(ShiftLeft(add(biased, neg(UInt(1024))), 52)))),
        "near": sp.Eq(biased, UInt(1024), evaluate=False),
        "scale": FromBits(ShiftLeft(add(UInt(2047), neg(biased)), 52)),
    }


def scale_from_rounded() -> dict[str, sp.Expr]:
    """``2^n`` from ``rounded = n + 1.5 2^52`` (whose low bits hold ``n``): the bits of
    ``rounded`` minus those of ``1.5 2^52``, plus the bias 1023, in the exponent field."""
    rounded, round_constant = sp.Symbol("rounded"), sp.Symbol("SYMKL_ROUND")
    return {
        "biased": add(Bits(rounded), neg(Bits(round_constant)), UInt(1023)),
        "scale": FromBits(ShiftLeft(sp.Symbol("biased"), 52)),
    }


def bits_value(expr: sp.Basic, values: Mapping[str, float | int]) -> float | int | bool:
    """``expr`` (representation nodes, integer and double arithmetic) evaluated as C does:
    unsigned 64-bit integers modulo 2^64, doubles rounded at each operation."""
    import struct

    mask = (1 << 64) - 1

    def value(node: sp.Basic):
        if isinstance(node, sp.Symbol):
            return values[node.name]
        if isinstance(node, UInt):
            return int(node.args[0])
        if node.is_Integer:
            return int(node)
        if node.is_Number:
            return float(node)
        if isinstance(node, Bits):
            return struct.unpack("<Q", struct.pack("<d", value(node.args[0])))[0]
        if isinstance(node, FromBits):
            return struct.unpack("<d", struct.pack("<Q", value(node.args[0]) & mask))[0]
        if isinstance(node, ShiftRight):
            return (value(node.args[0]) & mask) >> value(node.args[1])
        if isinstance(node, ShiftLeft):
            return (value(node.args[0]) << value(node.args[1])) & mask
        if isinstance(node, BitOr):
            return value(node.args[0]) | value(node.args[1])
        if isinstance(node, sp.Eq):
            return value(node.lhs) == value(node.rhs)
        if isinstance(node, sp.Add):
            terms = [value(a) for a in node.args]
            if all(isinstance(v, int) for v in terms):
                return sum(terms) & mask
            total = terms[0]
            for term in terms[1:]:
                total += term
            return total
        if isinstance(node, sp.Mul) and node.args[0] == -1 and len(node.args) == 2:
            inner = value(node.args[1])
            return (-inner) & mask if isinstance(inner, int) else -inner
        raise TypeError(f"bits_value: no evaluation of {node.func.__name__}")

    return value(sp.sympify(expr))


def exponent_split_evidence(
    samples: int = 4000,
    seed: int = 0,
    split: Mapping[str, sp.Expr] | None = None,
    scale: Mapping[str, sp.Expr] | None = None,
) -> dict[str, int]:
    """Exact checks of :func:`exponent_split` and :func:`scale_from_rounded` (assumption
    EXPONENT-SPLIT): every binade of the fast kernels' quotients, ``q`` in ``[2^-1000,
    2^1000]``, at the mantissas where the split changes (``3/4``, ``3/2`` and their
    neighbours, 1, the ends of the binade) and at random ones; every ``n`` with ``2^n``
    normal.  Returns the counts ``checked`` and ``failures`` of each.

    Examples
    --------
    >>> exponent_split_evidence(100)["split-failures"]
    0
    """
    split = split or exponent_split()
    scale = scale or scale_from_rounded()
    rng = random.Random(seed)
    checked = failures = 0
    edges = [0.75, 1.0, 1.5, 2.0 - 2.0**-52, 1.0 + 2.0**-52]
    edges += [math.nextafter(0.75, 0.0) * 2, math.nextafter(1.5, 0.0), math.nextafter(1.5, 2.0)]
    for exponent in range(-1000, 1000):
        mantissas = edges + [1.0 + rng.random() for _ in range(max(1, samples // 2000))]
        for mantissa in mantissas:
            q = math.ldexp(mantissa, exponent)
            values: dict[str, float | int] = {"q": q}
            for name in ("q_bits", "biased", "e", "mantissa", "near", "scale"):
                values[name] = bits_value(split[name], values)
            e, m = values["e"], values["mantissa"]
            ok = (
                float(e).is_integer()
                and Fraction(m) * Fraction(2) ** int(e) == Fraction(q)
                and Fraction(3, 4) <= Fraction(m) < Fraction(3, 2)
                and values["scale"] == math.ldexp(1.0, -int(e))
                and values["near"] == (e == 0)
            )
            checked += 1
            failures += not ok
    scale_checked = scale_failures = 0
    for n in range(-1022, 1024):
        values = {"rounded": float(n) + 1.5 * 2.0**52, "SYMKL_ROUND": 1.5 * 2.0**52}
        values["biased"] = bits_value(scale["biased"], values)
        got = bits_value(scale["scale"], values)
        scale_checked += 1
        scale_failures += got != math.ldexp(1.0, n)
    return {
        "split-checked": checked,
        "split-failures": failures,
        "scale-checked": scale_checked,
        "scale-failures": scale_failures,
    }


EXPONENT_SPLIT = Assumption(
    "EXPONENT-SPLIT",
    "the vectorised kernels' exponent split of binary64 numbers by their bits",
    (
        "for q in [2^-1000, 2^1000], the printed bit operations give an integer e, "
        "mantissa = q 2^-e exactly with 3/4 <= mantissa < 3/2, scale = 2^-e, and near "
        "exactly when e = 0",
        "for rounded = n + 1.5 2^52 with |n| <= 1022, the printed bit operations give 2^n",
    ),
    exponent_split_evidence,
)
