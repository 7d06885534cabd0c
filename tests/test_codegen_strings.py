"""No formula in codegen is a hand-typed string (issue 14, item 7).

The C and array targets and the kernel definitions print every formula from SymPy
expressions and ``sympy.codegen.ast`` nodes.  This test reads those modules with
Python's :mod:`ast`, collects their string constants and f-strings (each formatted
value read as a placeholder name ``V``), drops what is not code (docstrings, error
messages, comments of the generated code, claim and fact labels, the documentation of a
helper) and fails on a literal that still has an operator between operands: arithmetic,
relational, logical, bitwise, a C negation, a cast, or a call of a math function.  What
remains allowed is listed below, each entry with its reason; an entry that no longer
matches anything fails too, so the list only shrinks.

The printers (:mod:`symkl.codegen.printers`) are not read: they are where nodes become
text (``_print_TwoSum`` and the like), the one place a node's C or array spelling lives.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

CODEGEN = Path(__file__).resolve().parent.parent / "symkl" / "codegen"
MODULES = ("c_target.py", "array_target.py", "kernels.py")

#: an operator between operands, a C negation or complement, a cast, a math call
FORMULA = re.compile(
    r"""(?x)
    [\w)\].]\s*(?:<<|>>|<=|>=|==|!=|&&|\|\||\*\*|[-+*/%<>&|^?])\s*[\w(\[.!~&-]
    | (?<![\w)\]])[!~]\s*[\w(]
    | \((?:double|float|int|int32_t|int64_t|uint64_t)\)\s*[\w(]
    | \b(?:fabs|floor|frexp|ldexp|isinf|isfinite|fma|exp|expm1|log|log1p|sqrt)\s*\(
    """
)
#: a claim or fact label (``node-far-excess-power-V``), a kebab-case token
LABEL = re.compile(r"^[A-Za-z0-9_.]+(?:-[A-Za-z0-9_.]+)+-?$")
#: calls whose string arguments are text, not code
TEXT_CALLS = {"Comment", "_comment"}


def _code_of(text: str) -> str:
    """``text`` without C comments, Python comments and generated docstrings."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)  # /* ... */
    text = re.sub(r"/\*.*$", " ", text, flags=re.M)  # a comment continued on later lines
    text = re.sub(r"^\s*\*.*$", " ", text, flags=re.M)  # ... its continuation lines
    text = re.sub(r"^\s*#(?!define|include|if|else|endif).*$", " ", text, flags=re.M)
    text = re.sub(r"\s#[ :].*$", " ", text, flags=re.M)  # a trailing Python comment
    text = re.sub(r'^\s*""".*$|^.*"""\s*$', " ", text, flags=re.M)  # a printed docstring
    return re.sub(r"^\s*#include <[\w./]+>\s*$", " ", text, flags=re.M)


@dataclass(frozen=True)
class Literal:
    module: str
    function: str
    line: int
    text: str


def formula_literals(source: str, module: str) -> list[Literal]:
    """The string literals of ``source`` that look like a formula (see the module)."""
    tree = ast.parse(source)
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node

    def enclosing(node: ast.AST) -> str:
        while node in parents:
            node = parents[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return node.name
        return "<module>"

    def is_text(node: ast.AST) -> bool:
        parent = parents.get(node)
        if isinstance(parent, ast.Expr):
            return True  # a docstring
        child = node
        while parent is not None:
            if isinstance(parent, ast.Raise):
                return True  # an error message
            if isinstance(parent, ast.Call):
                name = getattr(parent.func, "id", getattr(parent.func, "attr", ""))
                if name in TEXT_CALLS and child in parent.args:
                    return True
                # a helper's documentation (its C comment and docstring)
                if name == "KernelFunction" and len(parent.args) > 2 and child is parent.args[2]:
                    return True
            child, parent = parent, parents.get(parent)
        return False

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "V" for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if isinstance(parents.get(node), ast.JoinedStr):
                continue  # read as part of its f-string
            text = node.value
        else:
            continue
        if is_text(node) or LABEL.match(text):
            continue
        if FORMULA.search(_code_of(text)):
            found.append(Literal(module, enclosing(node), node.lineno, text))
    return found


#: single literals allowed, by (module, function, text) with the reason each is structure
ALLOWED = {
    # the NumPy prelude: fixed helpers of the array namespace, no formula (gathering the
    # elements xp.refine recomputes, an integer exponent for ldexp)
    **{
        ("array_target.py", "<module>", text): "prelude: fixed helper, not a formula"
        for text in (
            "    index = np.flatnonzero(~wanted)",
            "    if index.size == wanted.size:  # nothing to keep: no gathering",
            "    return tuple(result[()] if result.ndim == 0 else result for result in results)",
            "    ldexp=lambda value, n: np.ldexp(value, np.asarray(n).astype(np.int64)),",
        )
    },
}


def _all_formula_literals() -> list[Literal]:
    found = []
    for module in MODULES:
        found += formula_literals((CODEGEN / module).read_text(), module)
    return found


def test_no_formula_in_codegen_is_a_hand_typed_string():
    found = _all_formula_literals()
    typed = [
        f"{f.module}:{f.line} in {f.function}: {f.text!r}"
        for f in found
        if (f.module, f.function, f.text) not in ALLOWED
    ]
    assert not typed, "formulas typed as strings (print them from nodes):\n" + "\n".join(typed)


def test_every_allowed_literal_is_still_there():
    """A stale entry fails: the allow-list only shrinks as the last strings become nodes."""
    found = _all_formula_literals()
    present = {(f.module, f.function, f.text) for f in found}
    assert set(ALLOWED) <= present, set(ALLOWED) - present


PLANTED = '''
def _planted(form):
    """A docstring may say x - log(1 + x)."""
    name = "node-far-excess-power-2"
    lines = [
        "    /* comments may hold x/2 */",
        "    int halved = 0;",
        f"    const double x = {a} * {b};",
        "    if (excess < 0.0) excess = 0.0;",
        f"    return (fabs({mu}) <= 0x1p400) & ({u} >= SYMKL_FAST_MIN);",
        "    const double n = (double)e;",
        f"    c = {c}  # 2^27 + 1: a comment",
        "    return high, a - high",
    ]
    raise ValueError(f"x = {form.x} is not a function of (u - v)/v")
'''


@pytest.mark.parametrize(
    "planted",
    [
        "    const double x = V * V;",
        "    if (excess < 0.0) excess = 0.0;",
        "    return (fabs(V) <= 0x1p400) & (V >= SYMKL_FAST_MIN);",
        "    const double n = (double)e;",
        "    return high, a - high",
    ],
)
def test_a_planted_formula_string_is_caught(planted):
    found = {f.text for f in formula_literals(PLANTED, "planted.py")}
    assert planted in found


def test_text_that_is_not_code_is_not_caught():
    found = {f.text for f in formula_literals(PLANTED, "planted.py")}
    assert found == {
        "    const double x = V * V;",
        "    if (excess < 0.0) excess = 0.0;",
        "    return (fabs(V) <= 0x1p400) & (V >= SYMKL_FAST_MIN);",
        "    const double n = (double)e;",
        "    return high, a - high",
    }
