"""Matrix expressions of any size ``k``: a normal form built from proved rules.

:class:`MatrixAlgebra` proves scalar identities between traces, determinants,
quadratic forms, squared norms and Gaussian expectations over ``R^k`` with
``k`` symbolic.  It never writes a matrix out.  A matrix expression is read
as a *word polynomial*: a finite sum of scalar coefficients times words, a
word being a product of letters ``X``, ``X^T``, ``X^{-1}``, ``X^{-T}``
(``X`` a ``MatrixSymbol``) and the empty word the identity ``I_k``.  The rules
used, each valid for every size:

* distributivity and associativity of ``+`` and ``*``; ``(AB)^T = B^T A^T``;
  ``(AB)^{-1} = B^{-1} A^{-1}`` and ``X^{-1} X = X X^{-1} = I`` for letters
  declared invertible (symmetric positive definite, or lower triangular with a
  positive diagonal); ``X^T = X`` for symmetric ones;
* ``tr`` is linear, ``tr(I_k) = k``, ``tr(AB) = tr(BA)`` (any compatible shapes)
  and ``tr(X^T) = tr(X)``: a trace is keyed by the least rotation of its word or
  of its transposed word;
* ``v^T A v = tr(v^T A v)`` and ``|v|^2 = tr(v^T v)`` (a ``1 x 1`` matrix is its trace);
* ``det(c W) = c^k det W``, ``det(AB) = det A det B`` for square factors,
  ``det X^T = det X``, ``det X^{-1} = 1 / det X``; a symmetric positive-definite
  letter has ``det X > 0``; a triangular letter's ``det X > 0`` is lemma ``M3``;
* finite sums over ``i = a..b`` are linear, and a summand free of ``i`` sums to
  ``(b - a + 1)`` times itself.

What the rules cannot reach comes from the named lemmas of
:mod:`symkl.proof.lemmas` (the Gaussian expectations ``M1``, ``M2`` and the
triangular facts ``M3``, ``M4``, the entrywise action ``M5`` of diagonal
matrices), each applied to an exact instance of its statement with its side
condition checked on the instance.  ``M5`` is a schema with one row per word
shape (traces of up to ``M5_TRACE_LETTERS`` diagonal letters, ``u^T ... v`` with
up to ``M5_BILINEAR_LETTERS`` between, ``log det``); a word of diagonal letters is
matched to its row, the row's instance is built by the lemma and read back, and a
word no row states (longer, two column pairs, letters of another size) is refused.  The result names
the lemmas used; what is left is scalar algebra for :func:`~symkl.proof.provers.is_zero`.

Examples
--------
>>> import sympy as sp
>>> k = sp.Symbol("k", integer=True, positive=True)
>>> S, A = PositiveDefinite("S", k, k), sp.MatrixSymbol("A", k, k)
>>> prover = MatrixAlgebra()
>>> prover.prove(sp.Trace(S.I * A * S), sp.Trace(A)).ok
True
>>> prover.prove(sp.Trace(S.I * S), k + 1).ok
False
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import sympy as sp

from symkl.proof.claims import admit
from symkl.proof.provers import Prover, SymbolicResult, is_zero

__all__ = [
    "CholeskyFactor", "Column", "Diagonal", "MatrixAlgebra", "MatrixEntry", "MatrixFormError",
    "MatrixIntegral", "PositiveDefinite", "QuadraticForm", "SquaredNorm", "is_lower_triangular",
    "matrix_normal_form",
]  # fmt: skip

Letter = tuple  # (MatrixSymbol, transposed: bool, inverted: bool)
Word = tuple  # a tuple of letters; () is the identity


# --------------------------------------------------------------------------- declared matrices


class PositiveDefinite(sp.MatrixSymbol):
    """A ``MatrixSymbol`` declared symmetric positive definite (its assumption from birth).

    The matrix rules use it as symmetric (``S^T = S``), invertible, with ``det S > 0``.

    >>> k = sp.Symbol("k", integer=True, positive=True)
    >>> PositiveDefinite("Sigma", k, k).T
    Sigma.T
    """


class CholeskyFactor(sp.MatrixSymbol):
    """A ``MatrixSymbol`` declared lower triangular with a positive diagonal.

    Invertible; products of such factors and their inverses are again lower
    triangular with a positive diagonal (the side condition of lemmas M3, M4).
    """


class Diagonal(sp.MatrixExpr):
    r"""``diag(f(1), ..., f(k))``: a ``k x k`` diagonal matrix from a one-argument ``Lambda``.

    >>> n, k = sp.Symbol("n", integer=True, positive=True), sp.Symbol("k", integer=True)
    >>> s = sp.IndexedBase("s", positive=True)
    >>> Diagonal(sp.Lambda(n, s[n]**2), k).xreplace({k: 2}).doit()
    Matrix([
    [s[1]**2,       0],
    [      0, s[2]**2]])
    """

    def __new__(cls, entry: sp.Lambda, size: sp.Expr) -> Diagonal:
        if not isinstance(entry, sp.Lambda) or len(entry.variables) != 1:
            raise TypeError(f"{cls.__name__} needs a one-argument sympy.Lambda, got {entry!r}")
        return sp.MatrixExpr.__new__(cls, entry, sp.sympify(size))

    def value(self, index: sp.Expr) -> sp.Expr:
        """The entry at the 1-based ``index``."""
        return self.args[0](index)

    @property
    def name(self) -> str:
        return f"{type(self).__name__.lower()}({self.value(sp.Symbol('i'))})"

    @property
    def shape(self) -> tuple:
        return (self.args[1], self.args[1])

    @property
    def positive(self) -> bool:
        """Every entry positive (shown from the assumptions)."""
        return self.value(sp.Dummy("i", integer=True, positive=True)).is_positive is True

    def _entry(self, i, j, **kwargs) -> sp.Expr:
        return sp.KroneckerDelta(i, j) * self.value(i + 1)

    def doit(self, **hints) -> sp.Basic:
        size = self.args[1]
        if not size.is_Integer:
            return self
        return sp.ImmutableMatrix(sp.diag(*[self.value(n) for n in range(1, int(size) + 1)]))

    def _latex(self, printer) -> str:
        i = sp.Symbol("i")
        return rf"\operatorname{{diag}}\left({printer._print(self.value(i))}\right)"


class Column(Diagonal):
    r"""``(f(1), ..., f(k))^T``: a ``k x 1`` column from a one-argument ``Lambda``."""

    @property
    def shape(self) -> tuple:
        return (self.args[1], sp.S.One)

    @property
    def positive(self) -> bool:
        return False

    def _entry(self, i, j, **kwargs) -> sp.Expr:
        return self.value(i + 1)

    def doit(self, **hints) -> sp.Basic:
        size = self.args[1]
        if not size.is_Integer:
            return self
        return sp.ImmutableMatrix([self.value(n) for n in range(1, int(size) + 1)])

    def _latex(self, printer) -> str:
        i = sp.Symbol("i")
        return rf"\left({printer._print(self.value(i))}\right)_{{i}}"


# --------------------------------------------------------------------------- scalar nodes


def _explicit(value: sp.Basic) -> bool:
    return isinstance(value, sp.MatrixBase)


class QuadraticForm(sp.Expr):
    r"""The scalar ``v^T A v`` of a ``k x 1`` column ``v`` and a ``k x k`` matrix ``A``.

    Stays symbolic while the shapes are symbolic; once ``A`` and ``v`` are
    explicit matrices, ``doit`` returns the scalar.

    Examples
    --------
    >>> from symkl.model import full_symbols
    >>> s = full_symbols()
    >>> form = QuadraticForm(s.Sigma_q.I, s.mu_q - s.mu_p)
    >>> print(sp.latex(form))
    \left(- \mu_{p} + \mu_{q}\right)^{\top} \Sigma_{q}^{-1} \left(- \mu_{p} + \mu_{q}\right)
    >>> one = {s.Sigma_q: sp.eye(1) * 2, s.mu_q: sp.Matrix([3]), s.mu_p: sp.Matrix([1])}
    >>> form.xreplace(one).doit()
    2
    """

    is_commutative = True
    is_real = True

    def __new__(cls, matrix: sp.Basic, vector: sp.Basic) -> QuadraticForm:
        return sp.Expr.__new__(cls, matrix, vector)

    def doit(self, **hints) -> sp.Expr:
        matrix, vector = (arg.doit(**hints) for arg in self.args)
        if _explicit(matrix) and _explicit(vector):
            return sp.expand((vector.T * sp.ImmutableMatrix(matrix) * vector)[0, 0])
        return self.func(matrix, vector)

    def _latex(self, printer) -> str:
        matrix, vector = self.args
        v = printer._print(vector)
        if not isinstance(vector, sp.MatrixSymbol):
            v = rf"\left({v}\right)"
        a = printer._print(matrix)
        if isinstance(matrix, sp.MatAdd):
            a = rf"\left({a}\right)"
        return rf"{v}^{{\top}} {a} {v}"


class SquaredNorm(sp.Expr):
    r"""``||v||^2`` of a column ``v``; explicit once ``v`` is.

    Examples
    --------
    >>> SquaredNorm(sp.Matrix([3, 4])).doit()
    25
    """

    is_commutative = True
    is_real = True

    def __new__(cls, vector: sp.Basic) -> SquaredNorm:
        return sp.Expr.__new__(cls, vector)

    def doit(self, **hints) -> sp.Expr:
        vector = self.args[0].doit(**hints)
        if _explicit(vector):
            return sp.expand(sum(entry**2 for entry in sp.ImmutableMatrix(vector)))
        return self.func(vector)

    def _latex(self, printer) -> str:
        return rf"\left\| {printer._print(self.args[0])} \right\|^{{2}}"


class MatrixEntry(sp.Expr):
    r"""Entry ``(i, j)`` of a matrix, **1-based** as in the mathematics (``M_{ij}``).

    Examples
    --------
    >>> i, j = sp.symbols("i j", integer=True, positive=True)
    >>> M = sp.MatrixSymbol("M", 2, 2)
    >>> MatrixEntry(M, i, j).xreplace({M: sp.ImmutableMatrix([[1, 2], [3, 4]]), i: 2, j: 1}).doit()
    3
    """

    is_commutative = True
    is_real = True

    def __new__(cls, matrix: sp.Basic, row: sp.Expr, column: sp.Expr) -> MatrixEntry:
        return sp.Expr.__new__(cls, matrix, sp.sympify(row), sp.sympify(column))

    def doit(self, **hints) -> sp.Expr:
        matrix = self.args[0].doit(**hints)
        row, column = self.args[1], self.args[2]
        if _explicit(matrix) and row.is_Integer and column.is_Integer:
            return sp.ImmutableMatrix(matrix)[int(row) - 1, int(column) - 1]
        return self.func(matrix, row, column)

    def _latex(self, printer) -> str:
        matrix, row, column = self.args
        body = printer._print(matrix)
        if not isinstance(matrix, sp.MatrixSymbol):
            body = rf"\left({body}\right)"
        return rf"{body}_{{{printer._print(row)}{printer._print(column)}}}"


class MatrixIntegral(sp.Expr):
    r"""``\int_{R^k} f(x) dx`` over a ``k x 1`` column ``x`` (a ``MatrixSymbol``).

    Turns into an ordinary ``k``-fold ``Integral`` once ``x`` is an explicit
    column of real symbols.

    Examples
    --------
    >>> from symkl.model import full_symbols
    >>> s = full_symbols()
    >>> x2 = sp.ImmutableMatrix(sp.symbols("x_1 x_2", real=True))
    >>> f = sp.exp(-SquaredNorm(s.x) / 2)
    >>> MatrixIntegral(f, s.x).xreplace({s.x: x2}).doit(integrals=False).limits
    ((x_1, -oo, oo), (x_2, -oo, oo))
    """

    is_commutative = True

    def __new__(cls, function: sp.Expr, variable: sp.Basic) -> MatrixIntegral:
        return sp.Expr.__new__(cls, sp.sympify(function), variable)

    @property
    def function(self) -> sp.Expr:
        return self.args[0]

    @property
    def free_symbols(self) -> set[sp.Basic]:
        variable = self.args[1]
        bound = set(variable) if _explicit(variable) else {variable}
        return self.function.free_symbols - bound

    def doit(self, **hints) -> sp.Expr:
        variable = self.args[1]
        if not _explicit(variable):
            return self
        function = self.function.doit(**{**hints, "integrals": False})
        integral = sp.Integral(function, *[(c, -sp.oo, sp.oo) for c in variable])
        return integral.doit(**hints) if hints.get("integrals", True) else integral

    def _latex(self, printer) -> str:
        variable = self.args[1]
        dimension = variable.shape[0] if hasattr(variable, "shape") else "k"
        return (
            rf"\int_{{\mathbb{{R}}^{{{printer._print(dimension)}}}}} "
            rf"{printer._print(self.function)}\, d{printer._print(variable)}"
        )

    def _sympystr(self, printer) -> str:
        return f"MatrixIntegral({printer._print(self.function)}, {printer._print(self.args[1])})"


# --------------------------------------------------------------------------- word polynomials


class MatrixFormError(ValueError):
    """An expression outside what the matrix rules cover (the message says which part)."""


class _Letters:
    """What the letters are declared to be, read from their classes."""

    @staticmethod
    def spd(symbol: sp.MatrixSymbol) -> bool:
        return isinstance(symbol, PositiveDefinite)

    @staticmethod
    def triangular(symbol: sp.MatrixSymbol) -> bool:
        return isinstance(symbol, CholeskyFactor)

    @staticmethod
    def symmetric(symbol: sp.Basic) -> bool:
        return isinstance(symbol, PositiveDefinite) or type(symbol) is Diagonal

    def letter(self, symbol: sp.MatrixSymbol, transposed: bool, inverted: bool) -> Letter:
        invertible = self.spd(symbol) or self.triangular(symbol) or (
            type(symbol) is Diagonal and symbol.positive)
        if inverted and not invertible:
            raise MatrixFormError(f"{symbol} is not declared invertible")
        return (symbol, transposed and not self.symmetric(symbol), inverted)


def _transpose_word(word: Word) -> Word:
    """``(X_1 ... X_n)^T = X_n^T ... X_1^T``; a symmetric letter is its own transpose."""
    return tuple((s, not t and not _Letters.symmetric(s), i) for s, t, i in reversed(word))


def _reduce(word: Word) -> Word:
    """Cancel adjacent ``X^{-1} X`` and ``X X^{-1}`` (same transposition)."""
    out: list = []
    for letter in word:
        if out and out[-1][:2] == letter[:2] and out[-1][2] != letter[2]:
            out.pop()
        else:
            out.append(letter)
    return tuple(out)


def _add(total: dict, word: Word, coefficient: sp.Expr) -> None:
    total[word] = total.get(word, sp.S.Zero) + coefficient
    if sp.expand(total[word]) == 0:
        del total[word]


def _poly(expr: sp.Basic, letters: _Letters) -> dict:
    """The word polynomial ``{word: coefficient}`` of a matrix expression."""
    if isinstance(expr, (sp.MatrixSymbol, Diagonal)):
        return {(letters.letter(expr, False, False),): sp.S.One}
    if isinstance(expr, sp.Identity):
        return {(): sp.S.One}
    if isinstance(expr, sp.ZeroMatrix):
        return {}
    if isinstance(expr, sp.MatAdd):
        if len({arg.shape for arg in expr.args}) != 1:  # SymPy lets k x k + n x n through
            raise MatrixFormError(f"a sum of matrices of different shapes: {expr}")
        total: dict = {}
        for arg in expr.args:
            for word, c in _poly(arg, letters).items():
                _add(total, word, c)
        return total
    if isinstance(expr, sp.MatMul):
        factors = [arg for arg in expr.args if getattr(arg, "is_Matrix", False)]
        for left, right in itertools.pairwise(factors):
            if left.shape[1] != right.shape[0]:  # SymPy lets k x k times n x n through
                raise MatrixFormError(f"a product of incompatible shapes {left.shape} and "
                                      f"{right.shape}: {expr}")
        product: dict = {(): sp.S.One}
        for arg in expr.args:
            if not getattr(arg, "is_Matrix", False):
                if arg.has(sp.MatrixExpr):
                    raise MatrixFormError(f"a scalar factor holds a matrix: {arg}")
                product = {w: c * arg for w, c in product.items()}
                continue
            factor, new = _poly(arg, letters), {}
            for w1, c1 in product.items():
                for w2, c2 in factor.items():
                    _add(new, _reduce(w1 + w2), c1 * c2)
            product = new
        return product
    if isinstance(expr, sp.Transpose):
        return {_transpose_word(w): c for w, c in _poly(expr.arg, letters).items()}
    if isinstance(expr, sp.Inverse):
        return _inverse(_poly(expr.arg, letters), expr, letters)
    if isinstance(expr, sp.MatPow):  # SymPy writes D*D as D**2: the word it abbreviates
        base, power = expr.base, expr.exp
        if not power.is_Integer or base.shape[0] != base.shape[1]:
            raise MatrixFormError(f"a power the rules cover is an integer power of a square "
                                  f"matrix, not {expr}")
        factor, product = _poly(base, letters), {(): sp.S.One}
        for _ in range(abs(int(power))):
            new: dict = {}
            for w1, c1 in product.items():
                for w2, c2 in factor.items():
                    _add(new, _reduce(w1 + w2), c1 * c2)
            product = new
        return _inverse(product, expr, letters) if power < 0 else product
    raise MatrixFormError(f"not a matrix expression the rules cover: {type(expr).__name__} {expr}")


def _inverse(inner: dict, expr: sp.Basic, letters: _Letters) -> dict:
    """``(c W)^{-1} = c^{-1} W^{-1}``: one word, its letters inverted in reverse order."""
    if len(inner) != 1:
        raise MatrixFormError(f"inverse of a sum is not covered: {expr}")
    (word, c), = inner.items()
    flipped = tuple(letters.letter(s, t, not i) for s, t, i in reversed(word))
    return {flipped: 1 / c}


def _letter_key(letter: Letter) -> tuple:
    return (letter[0].name, letter[1], letter[2])


def _trace_key(word: Word) -> Word:
    """The least rotation of the word or of its transpose (after cyclic cancellation)."""
    while len(word) > 1 and word[0][:2] == word[-1][:2] and word[0][2] != word[-1][2]:
        word = word[1:-1]
    word = _reduce(word)
    candidates = []
    for w in (word, _transpose_word(word)):
        candidates += [w[n:] + w[:n] for n in range(len(w))]
    return min(candidates, key=lambda w: [_letter_key(x) for x in w]) if candidates else ()


#: the scalar atoms of the normal form: the trace of a canonical word, the determinant of a
#: letter (keyed by the objects themselves, so two matrices never share an atom by name)
_TRACE = sp.Function("tr", real=True)
_DETERMINANT = sp.Function("det", positive=True)
#: ``det D`` of a :class:`Diagonal` letter until lemma M5's ``log det D = sum_i log D_ii``
_DIAGONAL_DETERMINANT = sp.Function("det_diagonal", positive=True)


def _word_tuple(word: Word) -> sp.Tuple:
    return sp.Tuple(*[sp.Tuple(s, sp.true if t else sp.false, sp.true if i else sp.false)
                      for s, t, i in word])


def _word_text(word: Word) -> str:
    return " ".join(s.name + ("^T" if t else "") + ("^-1" if i else "") for s, t, i in word)


def _entrywise(symbol: sp.Basic) -> bool:
    """A letter lemma M5 speaks about: exactly a :class:`Diagonal` or a :class:`Column`."""
    return type(symbol) in (Diagonal, Column)


def _same_letter(a: sp.Basic, b: sp.Basic) -> bool:
    """The same Diagonal/Column (same class, size and entry function), or the same object."""
    if _entrywise(a) or _entrywise(b):
        probe = sp.Dummy("i", integer=True, positive=True)
        return (type(a) is type(b) and a.args[1] == b.args[1]
                and sp.expand(a.value(probe) - b.value(probe)) == 0)
    return a == b


def _same_word(a: Word, b: Word) -> bool:
    return len(a) == len(b) and all(
        _same_letter(x[0], y[0]) and x[1:] == y[1:] for x, y in zip(a, b, strict=True))


def _diagonal_row(shape: tuple, diagonal: Sequence, columns: Sequence,
                  word: Word) -> tuple[sp.Basic, sp.Basic]:
    """The instance of M5's row for ``shape``, its entry functions taken from the letters.

    Refuses a shape the lemma does not state (a longer word), letters of other sizes
    (the instance is then not the word), and side conditions not shown (positive entries).
    """
    from symkl.proof.lemmas import LEMMAS, M5_COLUMNS, M5_ENTRIES, M5_SHAPES, _checked_instance

    if shape not in M5_SHAPES:
        raise MatrixFormError(f"{_word_text(word)}: lemma M5 states no {shape[0]} of "
                              f"{len(shape[1])} diagonal letters (the longest it states are "
                              f"{max(len(s) for k, s in M5_SHAPES if k == shape[0])})")
    lemma = LEMMAS[_DIAGONAL]
    size = (list(diagonal) + list(columns))[0].args[1]
    unused = sp.Lambda(sp.Dummy("n", integer=True, positive=True), sp.S.One)
    substitution = {lemma.k: size}
    substitution.update({d: unused for d in M5_ENTRIES})
    substitution.update({c: unused for c in M5_COLUMNS})
    # the shape has at most len(M5_ENTRIES) diagonal letters (checked above)
    substitution.update({d: letter.args[0] for d, letter in zip(M5_ENTRIES, diagonal,
                                                                strict=False)})
    substitution.update({c: letter.args[0] for c, letter in zip(M5_COLUMNS, columns,
                                                                strict=False)})
    instance = _checked_instance(lemma, substitution, row=M5_SHAPES.index(shape))
    if isinstance(instance, str):
        raise MatrixFormError(instance)
    return instance


class _Normaliser:
    """Scalar normal form: traces and determinants become scalar atoms."""

    def __init__(self, letters: _Letters) -> None:
        self.letters = letters
        self.lemmas: set[str] = set()
        self.log_determinants: dict[sp.Symbol, sp.Expr] = {}

    def trace(self, matrix: sp.Basic) -> sp.Expr:
        size = matrix.shape[0]
        total = sp.S.Zero
        for word, c in _poly(matrix, self.letters).items():
            key = _trace_key(word)
            if key and all(_entrywise(letter[0]) for letter in key):
                total += c * self.diagonal_trace(key)
                continue
            total += c * (size if key == () else _TRACE(_word_tuple(key)))
        return total

    def diagonal_trace(self, word: Word) -> sp.Expr:
        """Lemma M5: the trace of a word of diagonal letters, or ``u^T D_1 ... D_r v``, as a sum.

        The word (a trace key) is matched to one row of M5's statement; the row's
        instance is built by the lemma (side conditions checked), read back by these
        rules and compared letter by letter with ``word``; its right side is the value.
        """
        columns = [n for n, (symbol, _, _) in enumerate(word) if type(symbol) is Column]
        if columns:
            rows = [n for n in columns if word[n][1]]
            if len(columns) != 2 or len(rows) != 1:
                raise MatrixFormError(f"a trace of {_word_text(word)} is not covered by lemma "
                                      "M5 (one u^T ... v pair)")
            word = word[rows[0]:] + word[:rows[0]]  # u^T D_1 ... D_r v
            if type(word[-1][0]) is not Column or word[-1][1]:
                raise MatrixFormError(f"a trace of {_word_text(word)} is not covered by lemma "
                                      "M5 (u^T D_1 ... D_r v)")
            shape, diagonal = ("bilinear", word[1:-1]), word[1:-1]
            columns = (word[0][0], word[-1][0])
        else:
            shape, diagonal = ("trace", word), word
        shape = (shape[0], tuple(-1 if inverted else 1 for _, _, inverted in diagonal))
        row = _diagonal_row(shape, [symbol for symbol, _, _ in diagonal], columns, word)
        lhs, rhs = row
        instance = _poly(lhs.arg, self.letters)
        if list(instance.values()) != [1] or not _same_word(_trace_key(next(iter(instance))),
                                                            _trace_key(word)):
            raise MatrixFormError(f"{_word_text(word)} is not the instance of lemma M5 built "
                                  "for it")
        self.lemmas.add(_DIAGONAL)
        return rhs

    def determinant(self, matrix: sp.Basic) -> sp.Expr:
        poly = _poly(matrix, self.letters)
        if len(poly) != 1:
            raise MatrixFormError(f"determinant of a sum is not covered: {matrix}")
        (word, c), = poly.items()
        value = c ** matrix.shape[0]
        for symbol, _, inverted in word:
            if symbol.shape[0] != symbol.shape[1]:
                raise MatrixFormError(f"determinant of a product with a non-square {symbol}")
            if type(symbol) is Diagonal:  # lemma M5: log det D = sum_i log D_ii
                lhs, rhs = _diagonal_row(("log-det", (1,)), [symbol], (), ((symbol, False, False),))
                if not (isinstance(lhs, sp.log) and isinstance(lhs.args[0], sp.Determinant)
                        and _same_letter(lhs.args[0].arg, symbol)):
                    raise MatrixFormError(f"det {symbol} is not the instance of lemma M5 built "
                                          "for it")
                self.lemmas.add(_DIAGONAL)
                # an atom that keeps the letter's free symbols (an outer summation
                # index in its entries must still be seen by the sum around it)
                atom = _DIAGONAL_DETERMINANT(symbol)
                self.log_determinants[atom] = rhs
                value *= 1 / atom if inverted else atom
                continue
            if self.letters.triangular(symbol):
                # det of a lower-triangular factor with a positive diagonal is positive
                self.lemmas.add(_DET_TRIANGULAR)
            elif not self.letters.spd(symbol):
                raise MatrixFormError(f"the sign of det {symbol} is not known")
            atom = _DETERMINANT(symbol)
            value *= 1 / atom if inverted else atom
        return value

    def scalar(self, expr: sp.Basic) -> sp.Basic:
        if isinstance(expr, (MatrixIntegral, MatrixEntry)):
            raise MatrixFormError(f"{type(expr).__name__} left after the lemmas: {expr}")
        if isinstance(expr, sp.Trace):
            return self.trace(expr.arg)
        if isinstance(expr, sp.Determinant):
            return self.determinant(expr.arg)
        if isinstance(expr, QuadraticForm):
            matrix, vector = expr.args
            return self.trace(sp.MatMul(vector.T, matrix, vector))
        if isinstance(expr, SquaredNorm):
            return self.trace(sp.MatMul(expr.args[0].T, expr.args[0]))
        if isinstance(expr, sp.Sum):
            # the bound index becomes a fresh, non-canonical dummy before the body is
            # normalised: the lemma instances built inside are admitted with their own
            # bound variables named canonically, and must not meet this index by name
            fresh = {index: sp.Dummy(index.name, **index.assumptions0)
                     for index, _, _ in expr.limits}
            limits = tuple((fresh[index], low.xreplace(fresh), high.xreplace(fresh))
                           for index, low, high in expr.limits)
            return _sum(self.scalar(expr.function.xreplace(fresh)), limits)
        if isinstance(expr, sp.MatrixExpr):
            raise MatrixFormError(f"a matrix where a scalar was expected: {expr}")
        if not expr.args:
            return expr
        return expr.func(*[self.scalar(a) for a in expr.args])


#: a sum with a numeric range of at most this many terms is written out term by term
_UNROLLED_TERMS = 16


def _sum(body: sp.Expr, limits: tuple, unroll: bool = False) -> sp.Expr:
    """Finite sums: linear, and a summand free of the index counts its terms.

    With ``unroll``, a power ``i^m`` of the index sums to its closed form (SymPy's
    Faulhaber sum) and a range of at most :data:`_UNROLLED_TERMS` numbers is written
    out term by term.  (Not while atoms that stand for sums may still hide the index.)
    """
    if len(limits) > 1:
        return _sum(_sum(body, limits[:1], unroll), limits[1:], unroll)
    (index, low, high), = limits
    body = sp.expand(body)
    if unroll and (high - low).is_Integer and 0 <= high - low < _UNROLLED_TERMS:
        return sp.Add(*[_split_sums(sp.expand(body.xreplace({index: low + n})))
                        for n in range(int(high - low) + 1)])
    if body.is_Add:
        return sp.Add(*[_sum(term, limits, unroll) for term in body.args])
    constant, dependent = body.as_independent(index, as_Add=False)
    if dependent == 1:
        return constant * (high - low + 1)
    base, power = dependent.as_base_exp()
    if unroll and base == index and power.is_Integer and power > 0:
        return constant * sp.expand(sp.summation(dependent, (index, low, high)))
    return constant * sp.Sum(dependent, (index, low, high))


def _split_sums(expr: sp.Basic) -> sp.Basic:
    """Split every Sum of an Add into Sums of its terms (finite sums are linear)."""
    return expr.replace(lambda e: isinstance(e, sp.Sum),
                        lambda e: _sum(e.function, e.limits, unroll=True))


def matrix_normal_form(expr: sp.Basic) -> sp.Expr:
    """The scalar normal form of ``expr``: every trace and determinant as a keyed atom.

    >>> k = sp.Symbol("k", integer=True, positive=True)
    >>> A, B = sp.MatrixSymbol("A", k, k), sp.MatrixSymbol("B", k, k)
    >>> matrix_normal_form(sp.Trace(A * B) - sp.Trace(B.T * A.T))
    0
    """
    return sp.expand(_Normaliser(_Letters()).scalar(expr))


class MatrixAlgebra(Prover):
    """Prove a scalar identity of matrix expressions for every size ``k``.

    Parameters
    ----------
    cholesky : mapping
        ``{Sigma: L}``: the hypothesis ``Sigma = L L^T`` (``L`` a
        :class:`CholeskyFactor`), substituted after the Gaussian expectations.
    diagonal : mapping
        ``{Sigma: Diagonal(...), mu: Column(...)}``: the hypothesis of diagonal
        covariances, substituted likewise.
    lemmas : sequence of str
        Names of the lemmas the prover may apply (side conditions checked).

    What a letter is comes from its class: :class:`PositiveDefinite`,
    :class:`CholeskyFactor`, or a plain ``MatrixSymbol`` (no inverse, no
    known sign of its determinant).  A kernel prover:
    :func:`symkl.proof.provers.run_prover` trusts this module.
    """

    method = "matrix algebra for every k"

    def __init__(self, *, cholesky: Mapping | None = None, diagonal: Mapping | None = None,
                 lemmas: Sequence[str] = ()) -> None:
        self.cholesky = dict(cholesky or {})
        self.diagonal = dict(diagonal or {})
        for symbol, image in self.diagonal.items():
            square = isinstance(symbol, PositiveDefinite) and type(image) is Diagonal
            column = isinstance(symbol, sp.MatrixSymbol) and type(image) is Column
            if not ((square and image.positive) or column) or (
                    getattr(symbol, "shape", None) != image.shape):
                raise TypeError(f"diagonal: {symbol} -> {image} must map a PositiveDefinite to "
                                "a Diagonal with positive entries, or a column to a Column, "
                                f"of the same shape (got {getattr(symbol, 'shape', None)} -> "
                                f"{getattr(image, 'shape', None)})")
        self.lemmas = tuple(lemmas)
        for sigma, factor in self.cholesky.items():
            if not isinstance(sigma, PositiveDefinite) or not isinstance(factor, CholeskyFactor):
                raise TypeError(f"cholesky: {sigma} -> {factor} must map a PositiveDefinite "
                                "to a CholeskyFactor")
        # each positive-definite matrix has its own Cholesky factor (that is no restriction);
        # one factor for two matrices would assume they are equal
        owners: dict = {}
        for sigma, factor in self.cholesky.items():
            if factor in owners:
                raise ValueError(f"cholesky: {owners[factor]} and {sigma} are both given the "
                                 f"factor {factor}; that assumes {owners[factor]} = {sigma}. "
                                 "Give each matrix its own CholeskyFactor")
            owners[factor] = sigma

    def _letters(self) -> _Letters:
        return _Letters()

    def _hypotheses(self) -> str:
        parts = [f"{s} = {f} {f}^T" for s, f in self.cholesky.items()]
        parts += [f"{s} = {v.name}" for s, v in self.diagonal.items()]
        return f" with {', '.join(parts)}" if parts else ""

    def restrictions(self) -> tuple[str, ...]:
        """The hypotheses that restrict a claim proved with them (its scope names them).

        A covariance set to a :class:`Diagonal` restricts the claim; a column written
        as its own entries (``Column(Lambda(n, mu[n]))``) does not.  (Cholesky factors
        restrict nothing: every positive-definite matrix has one.)
        """
        found = []
        for symbol, image in self.diagonal.items():
            variable, body = image.args[0].variables[0], image.args[0].expr
            coordinates = (type(image) is Column and isinstance(body, sp.Indexed)
                           and body.indices == (variable,))
            if not coordinates:
                shown = image.value(sp.Symbol("i", integer=True, positive=True))
                what = "diag" if type(image) is Diagonal else "column"
                found.append(f"{symbol} = {what}({shown})")
        return tuple(found)

    def normal_form(self, expr: sp.Basic) -> tuple[sp.Expr, set[str]]:
        """Gaussian expectations by lemma, the hypotheses, lemma rewrites, then the normal form."""
        used: set[str] = set()
        expr, names = apply_matrix_lemmas(expr, self.lemmas, "integrals", self._letters())
        used |= names
        expr = expr.xreplace({s: f * f.T for s, f in self.cholesky.items()})
        expr = _split_sums(expr)
        expr, names = apply_matrix_lemmas(expr, self.lemmas, "sums", self._letters())
        used |= names
        expr = expr.xreplace(self.diagonal)
        normaliser = _Normaliser(self._letters())
        value = normaliser.scalar(expr)
        if normaliser.log_determinants:  # log det diag(d) = sum_i log d_i (lemma M5)
            value = sp.expand(sp.expand_log(value, force=False))
            value = value.xreplace({sp.log(a): v for a, v in normaliser.log_determinants.items()})
            if value.has(*normaliser.log_determinants):
                raise MatrixFormError("a determinant of a diagonal matrix outside a log")
        if value.has(sp.Sum):  # finite sums split termwise, bound indices named canonically
            value = admit(_split_sums(value))
        return value, used | normaliser.lemmas

    def prove(self, lhs: sp.Basic, rhs: sp.Basic) -> SymbolicResult:

        lhs, rhs = admit(lhs), admit(rhs)
        try:
            if (isinstance(lhs, MatrixIntegral) and isinstance(rhs, MatrixIntegral)
                    and lhs.args[1] == rhs.args[1]):  # equal integrands give equal integrals
                a, used_a = self.normal_form(lhs.function)
                b, used_b = self.normal_form(rhs.function)
                how = "equal integrands"
            else:
                a, used_a = self.normal_form(lhs)
                b, used_b = self.normal_form(rhs)
                how = "normal forms"
        except MatrixFormError as error:
            return SymbolicResult(False, self.method, str(error)[:300])
        if set(used_a | used_b) - set(self.lemmas):
            return SymbolicResult(False, self.method, "a lemma was used that was not named")
        ok, detail = is_zero(sp.expand(a - b))
        used = tuple(sorted(used_a | used_b))
        method = self.method + self._hypotheses() + (
            f" from lemmas {', '.join(used)}" if used else "")
        return SymbolicResult(ok, method, f"{how} agree by {detail}" if ok else detail, None,
                              used if ok else (), self.restrictions() if ok else ())


# --------------------------------------------------------------------------- lemma instances

_DENSITY, _QUADRATIC, _DET_TRIANGULAR, _FROBENIUS, _DIAGONAL = "M1", "M2", "M3", "M4", "M5"


def _instance(name: str, substitution: dict) -> tuple[sp.Basic, sp.Basic]:
    """The admitted instance of a lemma of :mod:`symkl.proof.lemmas`, side conditions checked.

    ``substitution`` maps the lemma's schematic names (``"S"``, ``"mu"``, ...) to images.
    """
    from symkl.proof.lemmas import _M, LEMMAS, _checked_instance

    instance = _checked_instance(LEMMAS[name], {_M[key]: v for key, v in substitution.items()})
    if isinstance(instance, str):
        raise MatrixFormError(instance)
    return instance


def _gaussian_integral(integral: sp.Basic, allowed: Sequence[str], letters: _Letters,
                       used: set) -> sp.Expr:
    """``∫ N(x; mu, S) (c_0 + sum_t c_t (x - m_t)^T A_t (x - m_t)) dx`` by lemmas M1 and M2.

    Every piece is integrable (the lemmas say so), so the integral of the sum is
    the sum of the integrals; each piece is an exact instance of its lemma.
    """
    function, x = integral.args
    exps = [f for f in sp.Mul.make_args(function) if isinstance(f, sp.exp) and f.has(x)]
    if len(exps) != 1:
        raise MatrixFormError(f"not one Gaussian factor in {str(integral)[:160]}")
    forms = [f for f in sp.Mul.make_args(exps[0].args[0]) if isinstance(f, QuadraticForm)]
    if len(forms) != 1 or not isinstance(forms[0].args[0], sp.Inverse):
        raise MatrixFormError(f"not a Gaussian density's exponent: {exps[0]}")
    covariance, mean = forms[0].args[0].arg, sp.MatAdd(x, -forms[0].args[1]).doit()
    if not letters.spd(covariance) or mean.has(x) or covariance.has(x):
        raise MatrixFormError(f"lemma M1/M2: {covariance} is not declared positive definite")
    from symkl.proof.lemmas import _M, LEMMAS

    density = LEMMAS[_DENSITY].lhs.args[0].xreplace({_M["x"]: x, _M["mu"]: mean,
                                                      _M["S"]: covariance})
    total = sp.S.Zero
    for term in sp.Add.make_args(sp.expand(function / density)):
        forms = [f for f in sp.Mul.make_args(term) if isinstance(f, QuadraticForm) and f.has(x)]
        coefficient = term / forms[0] if len(forms) == 1 else term
        if coefficient.has(x):
            raise MatrixFormError(f"not constant or a quadratic form in {x}: {term}")
        if not forms:
            name, substitution = _DENSITY, {"x": x, "mu": mean, "S": covariance}
        else:
            matrix, vector = forms[0].args
            shift = sp.MatAdd(x, -vector).doit()
            if shift.has(x) or matrix.has(x):
                raise MatrixFormError(f"not a quadratic form in {x} - m: {forms[0]}")
            name = _QUADRATIC
            substitution = {"x": x, "mu": mean, "S": covariance, "A": matrix, "m": shift}
        if name not in allowed:
            raise MatrixFormError(f"lemma {name} is needed and was not named")
        lhs, rhs = _instance(name, substitution)
        piece = forms[0] if forms else sp.S.One
        if admit(lhs) != admit(type(integral)(density * piece, x)):
            raise MatrixFormError(f"not an instance of lemma {name}: {str(term)[:120]}")
        used.add(name)
        total += coefficient * rhs
    return total


def is_lower_triangular(matrix: sp.Basic) -> bool:
    """A product of :class:`CholeskyFactor` matrices and their inverses (not transposed).

    Such a product is lower triangular with a positive diagonal (the side
    condition of lemmas M3 and M4).

    >>> k = sp.Symbol("k", integer=True, positive=True)
    >>> L, R = CholeskyFactor("L", k, k), CholeskyFactor("R", k, k)
    >>> is_lower_triangular(R.I * L), is_lower_triangular(R.T * L)
    (True, False)
    """
    return _triangular(matrix, _Letters())


def _triangular(matrix: sp.Basic, letters: _Letters) -> bool:
    """A single word, coefficient 1, of lower-triangular letters and their inverses."""
    try:
        poly = _poly(matrix, letters)
    except MatrixFormError:
        return False
    if len(poly) != 1:
        return False
    (word, c), = poly.items()
    return c == 1 and bool(word) and all(letters.triangular(s) and not t for s, t, _ in word)


def _sum_lemmas(expr: sp.Basic, allowed: Sequence[str], letters: _Letters, used: set) -> sp.Basic:
    """Lemmas F3 and F4 on every lower-triangular ``T`` whose entries appear in sums."""
    candidates = {e.args[0] for e in expr.atoms(MatrixEntry)}
    sums = {admit(s): s for s in expr.atoms(sp.Sum)}
    for matrix in sorted(candidates, key=sp.default_sort_key):
        if not _triangular(matrix, letters):
            continue
        for name in (_FROBENIUS, _DET_TRIANGULAR):
            if name not in allowed:
                continue
            lhs, rhs = _instance(name, {"T": matrix})
            pieces = [sums.get(admit(piece)) for piece in sp.Add.make_args(lhs)]
            if any(piece is None for piece in pieces):
                continue
            marks = [sp.Dummy(f"piece{n}") for n in range(len(pieces))]
            marked = sp.expand(expr.xreplace(dict(zip(pieces, marks, strict=True))))
            coefficients = {marked.coeff(mark) for mark in marks}
            if len(coefficients) != 1:
                continue
            (coefficient,) = coefficients
            if coefficient == 0 or coefficient.has(*marks):
                continue
            rewritten = sp.expand(marked - coefficient * sp.Add(*marks) + coefficient * rhs)
            if rewritten.has(*marks):
                continue
            expr = rewritten
            sums = {admit(s): s for s in expr.atoms(sp.Sum)}
            used.add(name)
    return expr


def apply_matrix_lemmas(expr: sp.Basic, allowed: Sequence[str], phase: str,
                        letters: _Letters) -> tuple[sp.Basic, set[str]]:
    """Rewrite with exact lemma instances: ``"integrals"`` (M1, M2) or ``"sums"`` (M3, M4)."""
    used: set[str] = set()
    if phase == "integrals":
        table = {integral: _gaussian_integral(integral, allowed, letters, used)
                 for integral in expr.atoms(MatrixIntegral)}
        return expr.xreplace(table), used
    return _sum_lemmas(expr, allowed, letters, used), used
