"""``import symkl`` stays light: SymPy loads only when a derivation is asked for."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    run = subprocess.run(
        [sys.executable, "-c", code + "; import sys; print(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(run.stdout.split())


def test_import_symkl_does_not_import_sympy():
    assert "sympy" not in _modules_after("import symkl")


def test_reference_does_not_import_sympy():
    assert "sympy" not in _modules_after(
        "import symkl.reference as r; r.kl_quad(0, 1, 1, 2, dps=20)"
    )


def test_derive_imports_sympy_lazily():
    assert "sympy" in _modules_after("import symkl; symkl.derive")


def test_lazy_names_cover_the_numeric_api_exactly():
    import symkl
    from symkl import numeric

    lazy = {name for name, module in symkl._LAZY.items() if module == "symkl.numeric"}
    assert lazy == set(numeric.__all__)
