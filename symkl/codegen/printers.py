"""The printers of the kernel arithmetic: C99 and the array namespace ``xp``.

Two kinds of expression reach them:

- the proved forms of ``stable`` (ordinary SymPy expressions: ``x``, ``a``, the
  gradients), printed as SymPy prints them;
- the compensated arithmetic of the kernels (TwoSum, the exact remainder of a
  product, the lo parts): the nodes of :mod:`symkl.kl.compensated`, printed only as
  part of a proved kernel statement (a :class:`~symkl.kl.compensated.Claimed` node,
  made by :func:`symkl.codegen.kernels.claim`); a node anywhere else is refused with
  :class:`UnclaimedNodeError`.  Floating-point addition and multiplication are not
  associative, so this arithmetic is built with :func:`add` and :func:`mul`, which
  keep their operands in the order given and evaluate left to right; a nested sum or
  product is a parenthesised sub-expression, evaluated first.  Printed with
  ``order="none"`` they come out in exactly that order in both targets.

Examples
--------
>>> from symkl.codegen.kernels import claim, std_x_lo
>>> c_arithmetic(std_x_lo())
'fma(rho, two, -x) + rho * two_lo + 2.0 * rho_lo * (1.0 + rho)'
>>> array_arithmetic(std_x_lo())
'product_error(rho, two, x) + rho * two_lo + 2.0 * rho_lo * (1.0 + rho)'
>>> x, rho, lo = variables("x rho d_lo")
>>> node = claim("node-two-sum", a=x, b=neg(rho), lo=lo)
>>> c_arithmetic(node), array_arithmetic(node)
('symkl_two_sum(x, -rho, &d_lo)', 'two_sum(x, -rho)')
>>> c_arithmetic(TwoSum(x, neg(rho), lo))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
symkl.codegen.printers.UnclaimedNodeError: refusing to print TwoSum node TwoSum(x, -rho, d_lo): ...
"""

from __future__ import annotations

import textwrap
from typing import ClassVar

import sympy as sp
from sympy.codegen.ast import (
    CodeBlock,
    Comment,
    Declaration,
    Pointer,
    Return,
    Token,
    Type,
    Variable,
    float64,
    none,
    uint64,
    value_const,
)
from sympy.codegen.cnodes import restrict
from sympy.core.function import UndefinedFunction
from sympy.printing.c import C99CodePrinter
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE, precedence

from symkl.kl.compensated import (
    BitOr,
    Bits,
    Claimed,
    FromBits,
    Lo,
    ProductError,
    ShiftLeft,
    ShiftRight,
    TwoSum,
    UInt,
    add,
    div,
    inverse,
    mul,
    neg,
    variables,
)

__all__ = [
    "AddressOf",
    "AllOf",
    "AnyOf",
    "ArrayPrinter",
    "Cast",
    "Claimed",
    "CodePrinter99",
    "Either",
    "Horner",
    "If",
    "Lo",
    "Negation",
    "PowerOfTwo",
    "ProductError",
    "Select",
    "TwoSum",
    "UnclaimedNodeError",
    "Unpacking",
    "add",
    "array_arithmetic",
    "array_code",
    "array_statement",
    "c_arithmetic",
    "c_code",
    "c_statement",
    "constant",
    "div",
    "inverse",
    "literal",
    "mul",
    "neg",
    "variables",
]


class UnclaimedNodeError(ValueError):
    """A compensated node (TwoSum, ProductError, Lo) outside a proved kernel statement."""


class Horner(Token):
    """``result = sum coefficients[n] argument^n`` by Horner's rule, one statement node.

    C prints each step as one fma (one rounding a step; fma is correctly rounded in
    every instruction set, so the clones agree); the array namespace, which has no fma,
    a loop ``result = result * argument + c`` over the module constant ``table`` (a
    tuple of the same coefficients) starting from ``xp.full_like(like, table[-1])``.
    """

    __slots__ = _fields = ("result", "coefficients", "argument", "like", "table")


class Unpacking(Token):
    """``a, b = value``: the results of a helper returning a tuple, bound in order (the
    array namespace; in C the second result comes through a pointer)."""

    __slots__ = _fields = ("targets", "value")


class AllOf(sp.Function):
    """``AllOf(c1, c2, ...)``: every condition holds, evaluated without short-circuit:
    ``(c1) & (c2) & ...`` on C's 0/1 comparison results (both sides computed, no branch,
    so a loop of them still vectorises), ``&`` in the array namespace."""


class AnyOf(sp.Function):
    """``AnyOf(c1, c2, ...)``: some condition holds, ``(c1) | (c2) | ...`` without
    short-circuit (see :class:`AllOf`)."""


class Either(sp.Function):
    """``Either(c1, c2, ...)``: C's short-circuit ``c1 || c2 || ...``, for the condition of
    a branch in scalar code (the validation), where a later condition need not be
    evaluated; ``|`` in the array namespace, which has no short-circuit."""


class Negation(sp.Function):
    """``Negation(c)``: ``!(c)`` in C, ``~(c)`` in the array namespace.

    Not SymPy's ``Not``, which rewrites ``Not(v > 0)`` as ``v <= 0``: false for a NaN
    ``v``, where ``!(v > 0)`` is true (a NaN scale must be refused)."""

    nargs = 1


class Cast(sp.Function):
    """``Cast(value, type)``: C's ``(type)value`` (``type`` a symbol named as the C type:
    ``int`` truncates toward zero, ``double`` of an int is exact below 2^53)."""

    nargs = 2


class AddressOf(sp.Function):
    """``AddressOf(variable)``: C's ``&variable``, an output argument of a call."""

    nargs = 1


class If(Token):
    """``if (condition) { body } else { orelse }``, a statement node (sympy.codegen.ast has
    none): ``body`` a CodeBlock, ``orelse`` a CodeBlock, another If (an ``else if``) or
    ``none``.  A single short statement without ``else`` prints on the condition's line."""

    __slots__ = _fields = ("condition", "body", "orelse")
    defaults: ClassVar[dict] = {"orelse": none}
    _construct_condition = staticmethod(sp.sympify)

    @staticmethod
    def _construct_body(body):
        return body if isinstance(body, CodeBlock) else CodeBlock(*body)

    @staticmethod
    def _construct_orelse(orelse):
        if orelse is none or orelse is None or isinstance(orelse, (CodeBlock, If)):
            return none if orelse is None else orelse
        return CodeBlock(*orelse)


class Select(sp.Function):
    """``Select(condition, then, otherwise)``: a branch-free choice, ``condition ? then :
    otherwise`` in C (both sides are computed; the vectorised kernels rely on that)."""

    nargs = 3


class PowerOfTwo(sp.Function):
    """``PowerOfTwo(n)``: the double 2^n, exact for every integer ``n`` in [-1074, 1023];
    ``0x1pN`` in C, ``2.0**N`` in the array namespace (a Python float, computed exactly)."""

    nargs = 1
    is_real = True
    is_positive = True

    @classmethod
    def eval(cls, exponent):
        if not (exponent.is_Integer and -1074 <= int(exponent) <= 1023):
            raise ValueError(f"PowerOfTwo: exponent {exponent} is not an integer in [-1074, 1023]")

    def doit(self, **hints) -> sp.Expr:
        return sp.Integer(2) ** self.args[0]

    def _eval_evalf(self, precision):
        return (sp.Integer(2) ** self.args[0])._eval_evalf(precision)


class _OrderedArithmetic:
    """``_print_Add`` / ``_print_Mul`` for expressions built by :func:`add` and :func:`mul`.

    Operands in their given order, ``a * b`` spaced, a sum nested in a sum (a product
    in a product) in parentheses; a leading factor -1 prints as unary minus.
    """

    def _ordered_operand(self, operand: sp.Expr, parent: sp.Expr) -> str:
        text = self._print(operand)
        while isinstance(operand, Claimed):  # parenthesised as the statement it prints
            operand = operand.instance()
        if isinstance(operand, (ShiftLeft, ShiftRight, BitOr)):
            return f"({text})"  # C's shifts and | bind below + and -
        nested = isinstance(operand, type(parent)) and not _is_negation(operand)
        # an ordered product binds as a product, also with a leading -1 (SymPy's
        # precedence() ranks a negated product as a sum)
        binding = PRECEDENCE["Mul"] if isinstance(parent, sp.Mul) else precedence(parent)
        if nested or precedence(operand) < binding:
            return f"({text})"
        return text

    def _print_Add(self, expr: sp.Add, order: str | None = None) -> str:
        if not self._settings.get("ordered"):
            return super()._print_Add(expr, order)
        first, *rest = expr.args
        text = self._ordered_operand(first, expr)
        for term in rest:
            printed = self._ordered_operand(term, expr)
            if printed.startswith("-"):
                text += f" - {printed[1:]}"
            else:
                text += f" + {printed}"
        return text

    def _print_Mul(self, expr: sp.Mul) -> str:
        if not self._settings.get("ordered"):
            return super()._print_Mul(expr)
        factors = list(expr.args)
        sign = ""
        if factors[0] == -1:
            sign, factors = "-", factors[1:]
        first = factors[0]
        # a leading number is never parenthesised: -2.0 * s is (-2.0) * s
        text = self._print(first) if first.is_Number else self._ordered_operand(first, expr)
        for factor in factors[1:]:
            if isinstance(factor, sp.Pow) and factor.exp == -1:
                text += f" / {self._ordered_operand(factor.base, expr)}"
            else:
                text += f" * {self._ordered_operand(factor, expr)}"
        return sign + text

    def _print_Function(self, expr: sp.Function) -> str:
        if self._settings.get("ordered") and isinstance(expr.func, UndefinedFunction):
            # a helper of the target (symkl_fast_series, ...): called by its name
            arguments = ", ".join(self._print(a) for a in expr.args)
            return f"{expr.func.__name__}({arguments})"
        return super()._print_Function(expr)

    def _print_Float(self, expr: sp.Float) -> str:
        if not self._settings.get("ordered"):
            return super()._print_Float(expr)
        return repr(float(expr))

    # -- the trust property: compensated nodes only from proved statements
    _claim_depth = 0

    def _print_Claimed(self, expr: Claimed) -> str:
        """A proved statement of ``stable`` at the kernel's variables: the statement is
        looked up by label among the proved ones and instantiated here."""
        for value in expr.arguments.values():
            _refuse_unclaimed(value, f"an argument of {expr.label!r}")
        instance = expr.instance()
        self._claim_depth += 1
        try:
            return self._print(instance)
        finally:
            self._claim_depth -= 1

    def _claimed_node(self, expr: sp.Expr) -> None:
        """Raise unless ``expr`` (a TwoSum, ProductError or Lo) is printed inside a claim."""
        if self._claim_depth > 0:
            return
        if isinstance(expr, Lo) and isinstance(expr.args[0], Claimed):
            return  # a proved quantity, marked as a lo part (Lo means its argument)
        raise UnclaimedNodeError(_unclaimed_message(expr))


def _unclaimed_message(node: sp.Expr) -> str:
    return (
        f"refusing to print {node.func.__name__} node {sp.sstr(node)}: it is not part of a "
        "proved kernel statement of 'stable' (build it with symkl.codegen.kernels.claim)"
    )


def _refuse_unclaimed(expr: sp.Basic, where: str) -> None:
    """Raise when ``expr`` holds a compensated node that is not inside a Claimed node."""
    if isinstance(expr, Claimed):
        return
    if isinstance(expr, (TwoSum, ProductError)) or (
        isinstance(expr, Lo) and not isinstance(expr.args[0], Claimed)
    ):
        raise UnclaimedNodeError(_unclaimed_message(expr) + f" ({where})")
    for argument in expr.args:
        _refuse_unclaimed(argument, where)


def _is_negation(expr: sp.Expr) -> bool:
    return isinstance(expr, sp.Mul) and expr.args[0] == -1 and len(expr.args) == 2


class CodePrinter99(_OrderedArithmetic, C99CodePrinter):
    """C99 with ``x*x`` for squares (``pow(x, 2)`` relies on the optimiser) and the
    kernel nodes."""

    _default_settings: ClassVar[dict] = {**C99CodePrinter._default_settings, "ordered": False}
    # SymPy 1.14 maps the unsigned types to the signed ones
    type_mappings: ClassVar[dict] = {**C99CodePrinter.type_mappings, uint64: "uint64_t"}

    def _ordered_operand(self, operand: sp.Expr, parent: sp.Expr) -> str:
        if isinstance(operand, Select):  # ?: binds below every arithmetic operator
            return f"({self._print(operand)})"
        return super()._ordered_operand(operand, parent)

    # -- conditions without short-circuit, negation that keeps NaN, casts, addresses
    def _connective(self, expr: sp.Basic, operator: str) -> str:
        parts = []
        for operand in expr.args:
            text = self._print(operand)
            if isinstance(operand, (sp.core.relational.Relational, AllOf, AnyOf, Either, Select)):
                text = f"({text})"
            parts.append(text)
        # continued lines of about 80 columns, each after the first led by the operator
        lines = [parts[0]]
        for part in parts[1:]:
            if len(lines[-1]) + len(part) + 3 > 80:
                lines.append(f"    {operator} {part}")
            else:
                lines[-1] += f" {operator} {part}"
        return "\n".join(lines)

    def _print_AllOf(self, expr: AllOf) -> str:
        return self._connective(expr, "&")

    def _print_AnyOf(self, expr: AnyOf) -> str:
        return self._connective(expr, "|")

    def _print_Either(self, expr: Either) -> str:
        return self._connective(expr, "||")

    def _print_Negation(self, expr: Negation) -> str:
        (operand,) = expr.args
        text = self._print(operand)
        simple = operand.is_Symbol or (
            isinstance(operand, sp.Function)
            and not isinstance(operand, (AllOf, AnyOf, Either, Select))
        )
        return f"!{text}" if simple else f"!({text})"

    def _print_Cast(self, expr: Cast) -> str:
        value, type_name = expr.args
        text = self._print(value)
        simple = value.is_Symbol or isinstance(value, sp.Function)
        return f"({type_name}){text}" if simple else f"({type_name})({text})"

    def _print_AddressOf(self, expr: AddressOf) -> str:
        return f"&{self._print(expr.args[0])}"

    # -- statements that are not expressions: no semicolon after them
    def _print_CodeBlock(self, expr: CodeBlock) -> str:
        return "\n".join(
            self._print(statement)
            if isinstance(statement, (If, Comment))
            else self._get_statement(self._print(statement))
            for statement in expr.args
        )

    def _print_Comment(self, expr: Comment) -> str:
        lines = textwrap.wrap(expr.text, 88)
        if len(lines) == 1:
            return f"/* {lines[0]} */"
        middle = [f" * {line}" for line in lines[1:-1]]
        return "\n".join([f"/* {lines[0]}", *middle, f" * {lines[-1]} */"])

    def _print_If(self, expr: If) -> str:
        condition = self._print(expr.condition)
        statements = expr.body.args
        if expr.orelse is none and len(statements) == 1 and not isinstance(
            statements[0], (If, Comment)
        ):
            line = f"if ({condition}) {self._get_statement(self._print(statements[0]))}"
            if len(line) <= 80 and "\n" not in line:
                return line
        text = f"if ({condition}) {{\n" + textwrap.indent(self._print(expr.body), "    ") + "\n}"
        if isinstance(expr.orelse, If):
            return f"{text} else {self._print_If(expr.orelse)}"
        if expr.orelse is not none:
            orelse = textwrap.indent(self._print(expr.orelse), "    ")
            return f"{text} else {{\n{orelse}\n}}"
        return text

    # -- the IEEE binary64 representation (symkl.kl.compensated, assumption EXPONENT-SPLIT)
    def _print_Select(self, expr: Select) -> str:
        condition, then, otherwise = (self._print(a) for a in expr.args)
        return f"{condition} ? {then} : {otherwise}"

    def _print_PowerOfTwo(self, expr: PowerOfTwo) -> str:
        return f"0x1p{int(expr.args[0])}"

    def _print_Bits(self, expr: Bits) -> str:
        return f"symkl_bits({self._print(expr.args[0])})"

    def _print_FromBits(self, expr: FromBits) -> str:
        return f"symkl_from_bits({self._print(expr.args[0])})"

    def _print_UInt(self, expr: UInt) -> str:
        value = int(expr.args[0])
        return f"0x{value:016x}u" if value >= 2**32 else f"{value}u"

    def _shift_operand(self, operand: sp.Expr) -> str:
        text = self._print(operand)
        return f"({text})" if isinstance(operand, (sp.Add, sp.Mul)) else text

    def _print_ShiftRight(self, expr: ShiftRight) -> str:
        return f"{self._shift_operand(expr.args[0])} >> {self._print(expr.args[1])}"

    def _print_ShiftLeft(self, expr: ShiftLeft) -> str:
        return f"{self._shift_operand(expr.args[0])} << {self._print(expr.args[1])}"

    def _print_BitOr(self, expr: BitOr) -> str:
        return f"{self._shift_operand(expr.args[0])} | {self._shift_operand(expr.args[1])}"

    def _print_Pow(self, expr: sp.Pow) -> str:
        if expr.exp == 2:
            base = self.parenthesize(expr.base, 100)
            return f"(({base})*({base}))"
        return super()._print_Pow(expr)

    # -- statements (sympy.codegen.ast), laid out as the rest of the generated C
    def _print_Scope(self, expr) -> str:
        return " {\n" + textwrap.indent(self._print_CodeBlock(expr.body), "    ") + "\n}"

    def _print_FunctionPrototype(self, expr) -> str:
        attributes = "".join(f"{attribute.name} " for attribute in expr.attrs)
        text = attributes + super()._print_FunctionPrototype(expr)
        if len(text) <= 96:
            return text
        # parameters continued on lines of their own, as the rest of the generated C
        head, parameters = text.split("(", 1)
        lines = [head + "("]
        for parameter in parameters.split(", "):
            if len(lines[-1]) + len(parameter) + 2 > 92:
                lines[-1] = lines[-1].rstrip()
                lines.append("        ")
            lines[-1] += parameter + ", "
        return "\n".join(lines).rstrip(", ")

    def _print_Declaration(self, declaration: Declaration) -> str:
        variable = declaration.variable
        if isinstance(variable, Pointer):
            const = "const " if value_const in variable.attrs else ""
            restricted = "restrict " if restrict in variable.attrs else ""
            name = self._print(variable.symbol)
            text = f"{const}{self._print(variable.type)} *{restricted}{name}"
            if variable.value is not none:
                text += f" = {self._print(variable.value)}"
            return text
        return super()._print_Declaration(declaration)

    def _print_Horner(self, expr: Horner) -> str:
        result, argument = self._print(expr.result), self._print(expr.argument)
        first, *rest = reversed(expr.coefficients)
        lines = [f"double {result} = {self._print(first)}"]
        lines += [f"{result} = fma({result}, {argument}, {self._print(c)})" for c in rest]
        return ";\n".join(lines)

    def _print_TwoSum(self, expr: TwoSum) -> str:
        self._claimed_node(expr)
        a, b, lo = expr.args
        return f"symkl_two_sum({self._print(a)}, {self._print(b)}, &{self._print(lo)})"

    def _print_ProductError(self, expr: ProductError) -> str:
        self._claimed_node(expr)
        a, b, p = expr.args
        return f"fma({self._print(a)}, {self._print(b)}, {self._print(-p)})"

    def _print_Lo(self, expr: Lo) -> str:
        self._claimed_node(expr)
        return f"SYMKL_LO({self._print(expr.args[0])})"


class ArrayPrinter(_OrderedArithmetic, NumPyPrinter):
    """The array namespace ``xp`` (NumPy, PyTorch, JAX behind the frameworks' preludes)."""

    _module = "xp"
    _default_settings: ClassVar[dict] = {**NumPyPrinter._default_settings, "ordered": False}

    def _print_Declaration(self, declaration: Declaration) -> str:
        """A variable bound once: ``name = value`` (Python has no const)."""
        variable = declaration.variable
        return f"{self._print(variable.symbol)} = {self._print(variable.value)}"

    def _print_Assignment(self, expr) -> str:
        return f"{self._print(expr.lhs)} = {self._print(expr.rhs)}"

    def _print_Unpacking(self, expr: Unpacking) -> str:
        targets = ", ".join(self._print(t) for t in expr.targets)
        return f"{targets} = {self._print(expr.value)}"

    def _print_Return(self, expr: Return) -> str:
        (value,) = expr.args
        if isinstance(value, sp.Tuple):
            return "return " + ", ".join(self._print(v) for v in value)
        return f"return {self._print(value)}"

    def _print_PowerOfTwo(self, expr: PowerOfTwo) -> str:
        return f"2.0**{int(expr.args[0])}"

    # -- branch-free choices and their conditions, as the elementwise array operations
    def _print_Select(self, expr: Select) -> str:
        """``xp.where(condition, then, otherwise)``: both sides computed, as in C."""
        return f"xp.where({', '.join(self._print(a) for a in expr.args)})"

    def _print_Relational(self, expr: sp.core.relational.Relational) -> str:
        if not self._settings.get("ordered"):
            return super()._print_Relational(expr)
        lhs, rhs = (self._print(side) for side in expr.args)
        return f"{lhs} {expr.rel_op} {rhs}"

    def _logical_operand(self, operand: sp.Basic) -> str:
        # & | ~ bind above the comparisons: a comparison or a nested connective in
        # parentheses
        text = self._print(operand)
        connectives = (sp.And, sp.Or, AllOf, AnyOf, Either)
        if isinstance(operand, (sp.core.relational.Relational, *connectives)):
            return f"({text})"
        return text

    def _print_And(self, expr: sp.And) -> str:
        if not self._settings.get("ordered"):
            return super()._print_And(expr)
        return " & ".join(self._logical_operand(a) for a in expr.args)

    def _print_Or(self, expr: sp.Or) -> str:
        if not self._settings.get("ordered"):
            return super()._print_Or(expr)
        return " | ".join(self._logical_operand(a) for a in expr.args)

    def _print_Not(self, expr: sp.Not) -> str:
        if not self._settings.get("ordered"):
            return super()._print_Not(expr)
        return f"~{self._logical_operand(expr.args[0])}"

    def _print_AllOf(self, expr: AllOf) -> str:
        return " & ".join(self._logical_operand(a) for a in expr.args)

    def _print_AnyOf(self, expr: AnyOf) -> str:
        return " | ".join(self._logical_operand(a) for a in expr.args)

    def _print_Either(self, expr: Either) -> str:
        return self._print_AnyOf(expr)

    def _print_Negation(self, expr: Negation) -> str:
        return f"~({self._print(expr.args[0])})"

    def _print_Horner(self, expr: Horner) -> str:
        result, argument = expr.result, expr.argument
        table = self._print(expr.table)
        step = self._print(add(mul(result, argument), sp.Symbol("coefficient")))
        return (
            f"{self._print(result)} = xp.full_like({self._print(expr.like)}, {table}[-1])\n"
            f"for coefficient in {table}[-2::-1]:\n"
            f"    {self._print(result)} = {step}"
        )

    def _print_TwoSum(self, expr: TwoSum) -> str:
        self._claimed_node(expr)
        a, b, _ = expr.args
        return f"two_sum({self._print(a)}, {self._print(b)})"

    def _print_ProductError(self, expr: ProductError) -> str:
        self._claimed_node(expr)
        return f"product_error({', '.join(self._print(a) for a in expr.args)})"

    def _print_Lo(self, expr: Lo) -> str:
        self._claimed_node(expr)
        return self._print(expr.args[0])


def c_statement(statement: sp.Basic, indent: str = "    ") -> str:
    """C text of a ``sympy.codegen.ast`` statement (or block), kernel arithmetic in order,
    each line indented by ``indent``."""
    printer = CodePrinter99({"ordered": True, "order": "none"})
    text = printer._print_CodeBlock(_block(statement))
    return textwrap.indent(text, indent)


def array_statement(statement: sp.Basic, indent: str = "    ") -> str:
    """Array-namespace text of a ``sympy.codegen.ast`` statement (or block)."""
    settings = {"fully_qualified_modules": False, "ordered": True, "order": "none"}
    text = ArrayPrinter(settings)._print_CodeBlock(_block(statement))
    return textwrap.indent(text, indent)


def _block(statement: sp.Basic):
    from sympy.codegen.ast import CodeBlock

    return statement if isinstance(statement, CodeBlock) else CodeBlock(statement)


def constant(name: str | sp.Symbol, value: sp.Expr | float, type: Type = float64) -> Declaration:
    """``const double name = value`` (C; another ``type`` where given), ``name = value``
    (array): a variable bound once."""
    symbol = sp.Symbol(name) if isinstance(name, str) else name
    return Declaration(Variable(symbol, type=type, attrs={value_const}, value=sp.sympify(value)))


def c_code(expr: sp.Expr) -> str:
    """C99 text of a proved form, as SymPy prints it."""
    return CodePrinter99().doprint(sp.sympify(expr))


def array_code(expr: sp.Expr) -> str:
    """Text of a proved form in the array namespace, as SymPy prints it."""
    return ArrayPrinter({"fully_qualified_modules": False}).doprint(sp.sympify(expr))


def c_arithmetic(expr: sp.Expr | float) -> str:
    """C99 text of kernel arithmetic (see the module), operands in their given order."""
    return CodePrinter99({"ordered": True, "order": "none"}).doprint(sp.sympify(expr))


def array_arithmetic(expr: sp.Expr | float) -> str:
    """Array-namespace text of kernel arithmetic, operands in their given order."""
    settings = {"fully_qualified_modules": False, "ordered": True, "order": "none"}
    return ArrayPrinter(settings).doprint(sp.sympify(expr))


def literal(value: sp.Rational) -> str:
    return repr(float(value))
