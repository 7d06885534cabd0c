"""Rules over sums and products with a symbolic number of terms, proved for every ``k``.

:class:`FiniteSums` proves claims about ``Sum``/``Product`` over ``1..k``
with ``k`` symbolic, by rewrites that hold for every ``k`` and are checked
where they are applied:

* **congruence** — two integrals over ``R^k`` (:class:`~symkl.proof.lemmas.VectorIntegral`)
  with the same vector and dimension are equal when their integrands are
  equal at every point (no integrability needed: the integrands are the same
  function);
* **log of a product** — ``log(prod_j a_j) = sum_j log(a_j)`` (and
  ``log(u v) = log u + log v``, ``log(1/u) = -log u``) only when every factor
  ``a_j`` is *proved* positive for every index in the range; this is SymPy's
  ``Product.rewrite(Sum)`` (``prod a_j = exp(sum log a_j)``) followed by
  ``log(exp(s)) = s`` for the real ``s`` that positive factors give;
* **finite sums merge** — ``sum_i a_i + c sum_i b_i = sum_i (a_i + c b_i)``
  for sums over the same *finite* range (upper limit not infinite) with ``c``
  free of the index; a sum whose summand is proved 0 is 0.

What is left is proved 0 by :func:`~symkl.proof.provers.is_zero` (only expanded while
it holds a product of ``k`` factors).

Examples
--------
>>> import sympy as sp
>>> k = sp.Symbol("k", integer=True, positive=True)
>>> j = sp.Symbol("j", integer=True, positive=True)
>>> a = sp.IndexedBase("a", positive=True)
>>> FiniteSums().prove(sp.log(sp.Product(a[j], (j, 1, k))), sp.Sum(sp.log(a[j]), (j, 1, k))).ok
True
>>> b = sp.IndexedBase("b", real=True)   # not known positive: refused
>>> FiniteSums().prove(sp.log(sp.Product(b[j], (j, 1, k))), sp.Sum(sp.log(b[j]), (j, 1, k))).ok
False
"""

from __future__ import annotations

import sympy as sp

from symkl.proof.claims import admit
from symkl.proof.lemmas import VectorIntegral
from symkl.proof.provers import Prover, SymbolicResult, is_zero

__all__ = ["FiniteSums"]


def _finite(limits: tuple) -> bool:
    return all(lim[1].is_finite and lim[2].is_finite for lim in limits)


def _positive_log(argument: sp.Expr) -> sp.Expr | None:
    """``log(argument)`` as a sum of logs of positive factors, or None when not shown."""
    pieces = []
    for factor in sp.Mul.make_args(argument):
        base, power = factor.as_base_exp() if factor.is_Pow else (factor, sp.S.One)
        if not power.is_Rational:
            return None
        if isinstance(base, sp.Product):
            if not _finite(base.limits) or base.function.is_positive is not True:
                return None
            pieces.append(power * sp.Sum(sp.log(base.function), *base.limits))
        elif base.is_positive is True:
            pieces.append(power * sp.log(base))
        else:
            return None
    return sp.Add(*pieces)


def _logs_of_products(expr: sp.Basic) -> tuple[sp.Basic, bool]:
    changed = False

    def rewrite(log: sp.log) -> sp.Expr:
        nonlocal changed
        split = _positive_log(log.args[0])
        if split is None:
            return log
        changed = True
        return split

    result = expr.replace(
        lambda e: isinstance(e, sp.log) and e.args[0].has(sp.Product), rewrite
    )
    return result, changed


def _merge_sums(expr: sp.Basic) -> sp.Basic:
    """Merge the sums over the same finite range in every Add, bottom-up."""
    if not expr.args or isinstance(expr, (sp.Symbol, sp.Indexed)):
        return expr
    expr = expr.func(*[_merge_sums(a) for a in expr.args]) if not isinstance(
        expr, (sp.Sum, sp.Product, sp.Integral, VectorIntegral)
    ) else _merge_inside(expr)
    if not expr.is_Add:
        return expr
    groups: dict[tuple, tuple[sp.Sum, sp.Expr]] = {}
    rest = []
    for term in expr.args:
        sums = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.Sum)]
        if len(sums) != 1 or len(sums[0].limits) != 1 or not _finite(sums[0].limits):
            rest.append(term)
            continue
        total = sums[0]
        coefficient = term / total
        index, low, high = total.limits[0]
        key = (low, high)
        first, merged = groups.get(key, (total, sp.S.Zero))
        if {first.limits[0][0], index} & coefficient.free_symbols:
            rest.append(term)
            continue
        summand = total.function.xreplace({index: first.limits[0][0]})
        groups[key] = (first, merged + coefficient * summand)
    merged_sums = [sp.Sum(summand, first.limits[0]) for first, summand in groups.values()]
    return sp.Add(*rest, *merged_sums)


def _merge_inside(binder: sp.Basic) -> sp.Basic:
    return binder.func(_merge_sums(binder.args[0]), *binder.args[1:])


def _drop_zero_sums(expr: sp.Basic) -> sp.Basic:
    def zero(total: sp.Sum) -> sp.Expr:
        return sp.S.Zero if is_zero(total.function)[0] else total

    return expr.replace(lambda e: isinstance(e, sp.Sum), zero)


class FiniteSums(Prover):
    """Congruence under an integral over ``R^k``, log of a positive product, finite sums merged."""

    method = "finite sums and products for symbolic k (log of a positive product, sums merged)"

    def prove(self, lhs: sp.Basic, rhs: sp.Basic) -> SymbolicResult:
        lhs, rhs = admit(lhs), admit(rhs)
        congruence = ""
        while (
            isinstance(lhs, VectorIntegral)
            and isinstance(rhs, VectorIntegral)
            and lhs.base == rhs.base
            and lhs.dimension == rhs.dimension
        ):
            lhs, rhs, congruence = lhs.function, rhs.function, "equal integrands; "
        if lhs.has(VectorIntegral) or rhs.has(VectorIntegral):
            return SymbolicResult(False, self.method,
                                  "an integral over R^k remains: only equal integrands are "
                                  "compared (use a lemma to move sums or integrate)")
        difference, changed = _logs_of_products(lhs - rhs)
        if difference.has(sp.Product) and any(
            isinstance(e, sp.log) and e.args[0].has(sp.Product)
            for e in difference.atoms(sp.log)
        ):
            return SymbolicResult(False, self.method,
                                  "a log of a product whose factors are not proved positive")
        difference = _drop_zero_sums(_merge_sums(sp.expand(difference, log=False,
                                                            power_exp=False, deep=False)))
        # a true claim is literally 0 here; simplify on products of k factors can take
        # minutes, so what is left is only expanded (refusing is always safe)
        if difference.has(sp.Product):
            residue = sp.expand(difference, log=False, power_exp=False)
            ok, how = residue == 0, "expand" if residue == 0 else str(residue)[:300]
        else:
            ok, how = is_zero(difference)
        detail = congruence + ("log of products as sums; " if changed else "") + (
            "reduces to 0 by " + how if ok else how)
        return SymbolicResult(ok, self.method, detail)
