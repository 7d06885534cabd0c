"""Generate every artifact under ``derivations/`` and check committed copies are current.

``symkl build`` derives and verifies every registered derivation, then writes
``derivations/<name>.tex``, ``derivations/<name>.md`` and
``derivations/<name>.ipynb``, prints the proved stable forms into the numeric
kernels ``symkl/_kernels.c`` and ``symkl/_kernels_numpy.py``, and writes the
API reference ``docs/api.md`` from the docstrings.  Output is a pure
function of the code, so it is byte-identical from run to run;
``symkl build --check`` regenerates in memory and names every file that
differs from (or is missing in) the tree.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from symkl.derivation import VerificationReport
from symkl.kl import available_derivations, derive
from symkl.render import derivation_to_markdown, standalone_latex
from symkl.render.notebook import notebook_text

__all__ = ["BuildResult", "build", "generate", "write_atomically"]


@dataclass
class BuildResult:
    """What a build produced or found.

    Attributes
    ----------
    files : dict of str to str
        Relative path -> generated content.
    reports : dict of str to VerificationReport
        Verification of each derivation.
    timings : dict of str to dict
        Per derivation: ``derive``, ``verify`` and ``render`` seconds.
    stale : list of str
        With ``check=True``: files whose committed copy differs or is missing.
    written : list of str
        Without ``check``: files written (only those whose content changed).
    """

    files: dict[str, str] = field(default_factory=dict)
    reports: dict[str, VerificationReport] = field(default_factory=dict)
    timings: dict[str, dict[str, float]] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)

    @property
    def proved(self) -> bool:
        """True when every derivation verified."""
        return all(report.proved for report in self.reports.values())


def generate(names: tuple[str, ...] | None = None) -> BuildResult:
    """Derive, verify and render; return the artifacts in memory (nothing is written)."""
    result = BuildResult()
    for name in names or available_derivations():
        started = time.perf_counter()
        derivation = derive(name)
        derived = time.perf_counter()
        report = derivation.verify()
        verified = time.perf_counter()
        result.files[f"derivations/{name}.tex"] = standalone_latex(derivation, report)
        result.files[f"derivations/{name}.md"] = derivation_to_markdown(derivation, report)
        result.files[f"derivations/{name}.ipynb"] = notebook_text(derivation, report)
        result.reports[name] = report
        result.timings[name] = {
            "derive": derived - started,
            "verify": verified - derived,
            "render": time.perf_counter() - verified,
        }
    if names is None or "stable" in names:
        from symkl.codegen import generate_sources

        started = time.perf_counter()
        result.files.update(generate_sources())
        result.timings["codegen"] = {"generate": time.perf_counter() - started}
    if names is None:
        from symkl.render.api import api_reference

        result.files["docs/api.md"] = api_reference()
    return result


def write_atomically(path: Path, content: str) -> None:
    """Write ``content`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def build(root: Path | str = ".", *, check: bool = False) -> BuildResult:
    """Regenerate the artifacts under ``root`` (or, with ``check``, compare against them).

    Nothing is written when a derivation fails to verify or when ``check`` is set.
    """
    root = Path(root)
    result = generate()
    for relative, content in result.files.items():
        path = root / relative
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == content:
            continue
        if check:
            result.stale.append(relative)
        elif result.proved:
            write_atomically(path, content)
            result.written.append(relative)
    return result
