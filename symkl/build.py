"""Generate every artifact of a checkout and check that committed copies are current.

``symkl build`` derives and verifies every registered derivation, then writes
``derivations/<name>.tex``, ``derivations/<name>.md`` and
``derivations/<name>.ipynb``, the verification certificates
``symkl/certificates.json``, and prints the proved stable forms into the
numeric kernels ``symkl/_kernels.c`` and ``symkl/_kernels_numpy.py``.  Output
is a pure function of the code, so it is byte-identical from run to run;
``symkl build --check`` regenerates in memory and names every file that
differs from (or is missing in) the tree.

The build never imports the files it generates (only the derivations, the
provers and the printers), so it repairs a corrupted ``_kernels_numpy.py``.

Verification certificates
-------------------------
A certificate records the verification report of one derivation
(``report.as_dict()``, without timings) together with a SHA-256 hash of the
derivation's claims: every step's label, expression, reason and assumptions,
the definitions, the named terms and the labelled facts, and the verification
settings.  ``symkl derive`` renders the check notes from the certificate when
the hash matches the derivation it has just built, so it shows every step's
proof without re-running the checks; when the claims change, the hash no
longer matches and the certificate is ignored.

Examples
--------
>>> from symkl.kl import derive
>>> len(claims_hash(derive("univariate")))
64
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sympy as sp

from symkl.derivation import Derivation, VerificationReport
from symkl.kl import available_derivations, derive
from symkl.render import derivation_to_markdown, standalone_latex
from symkl.render.notebook import notebook_text

__all__ = [
    "CERTIFICATES_PATH",
    "VERIFY_SETTINGS",
    "BuildResult",
    "Certificate",
    "NotACheckoutError",
    "build",
    "certificates_text",
    "claims_hash",
    "clean_temporaries",
    "generate",
    "read_certificate",
    "write_atomically",
]

#: where the certificates live: inside the package, so that an installed symkl has them
CERTIFICATES_PATH = "symkl/certificates.json"
#: the settings every certified verification ran with (those of ``Derivation.verify()``)
VERIFY_SETTINGS: dict[str, Any] = {"dps": 30, "points": 5, "seed": 0, "min_digits": 25}
#: the suffix of build's temporary files (git-ignored; removed by the next build)
TEMPORARY_SUFFIX = ".symkl-tmp"
#: keys of ``as_dict()`` that vary from run to run and stay out of a certificate
_VOLATILE = frozenset({"seconds", "elapsed", "time"})

Progress = Callable[[str, int, int], None]


class NotACheckoutError(ValueError):
    """``--root`` is not a symkl checkout (no ``pyproject.toml`` naming the symkl project)."""


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
    removed : list of str
        Temporary files of an interrupted earlier build that were removed.
    """

    files: dict[str, str] = field(default_factory=dict)
    reports: dict[str, VerificationReport] = field(default_factory=dict)
    timings: dict[str, dict[str, float]] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def proved(self) -> bool:
        """True when every derivation verified."""
        return all(report.proved for report in self.reports.values())


# --------------------------------------------------------------------------- certificates


def _canonical(expr: Any) -> str:
    """``srepr`` with dummies renamed by order of appearance (their indices vary by process)."""
    if not isinstance(expr, sp.Basic):
        return repr(expr)
    dummies: dict[sp.Dummy, sp.Symbol] = {}
    for node in sp.preorder_traversal(expr):
        if isinstance(node, sp.Dummy) and node not in dummies:
            dummies[node] = sp.Symbol(f"_dummy{len(dummies)}_{node.name}", **node.assumptions0)
    return sp.srepr(expr.xreplace(dummies) if dummies else expr)


def claims_hash(derivation: Derivation) -> str:
    """SHA-256 of everything the verification of ``derivation`` checks, and how.

    Examples
    --------
    >>> from symkl.kl import derive
    >>> claims_hash(derive("univariate")) == claims_hash(derive("univariate"))
    True
    """
    parts: list[str] = [derivation.name, _canonical(derivation.lhs)]
    for placeholder, value in derivation.definitions.items():
        parts += ["definition", _canonical(placeholder), _canonical(value)]
    for step in derivation.steps:
        parts += ["step", step.label, _canonical(step.expr), step.rule, *step.assumptions]
        parts += [repr(sorted((str(k), str(v)) for k, v in i.items())) for i in step.instances]
    for name, term in derivation.terms.items():
        parts += ["term", name, _canonical(term)]
    for fact in derivation.facts:
        parts += ["fact", fact.label, fact.text, _canonical(fact.lhs), _canonical(fact.rhs)]
    parts.append(json.dumps(VERIFY_SETTINGS, sort_keys=True))
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def _stable(value: Any) -> Any:
    """``as_dict()`` output without the run-dependent keys (timings)."""
    if isinstance(value, Mapping):
        return {k: _stable(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list | tuple):
        return [_stable(v) for v in value]
    return value


@dataclass(frozen=True)
class Certificate:
    """A stored verification report: what ``report.as_dict()`` said, for these claims.

    It stands in for a report wherever one is rendered: ``name``, ``proved``
    and ``as_dict()``.
    """

    name: str
    claims: str
    report: dict[str, Any]
    settings: dict[str, Any]

    @property
    def proved(self) -> bool:
        """What the certified report said."""
        return bool(self.report.get("proved"))

    def as_dict(self) -> dict[str, Any]:
        """The certified report (``as_dict()`` of the live report, less timings)."""
        return self.report


def certificates_text(reports: Mapping[str, tuple[Derivation, VerificationReport]]) -> str:
    """The JSON text of ``symkl/certificates.json`` for ``{name: (derivation, report)}``."""
    document = {
        "generated": "by `symkl build`; do not edit (symkl build --check validates it)",
        "settings": VERIFY_SETTINGS,
        "derivations": {
            name: {"claims": claims_hash(derivation), "report": _stable(report.as_dict())}
            for name, (derivation, report) in reports.items()
        },
    }
    return json.dumps(document, indent=1, sort_keys=False, ensure_ascii=False) + "\n"


def read_certificate(derivation: Derivation, path: Path | str | None = None) -> Certificate | None:
    """The certificate of ``derivation`` when its claims hash matches; else None.

    ``path`` defaults to the certificates shipped with the package.  A missing,
    unreadable or malformed file counts as no certificate.
    """
    path = Path(path) if path is not None else Path(__file__).with_name("certificates.json")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        entry = document["derivations"][derivation.name]
        settings = dict(document["settings"])
        claims, report = str(entry["claims"]), dict(entry["report"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if settings != VERIFY_SETTINGS or claims != claims_hash(derivation):
        return None
    return Certificate(derivation.name, claims, report, settings)


# --------------------------------------------------------------------------- generation


def _verify(derivation: Derivation) -> VerificationReport:
    return derivation.verify(**VERIFY_SETTINGS)


def generate(
    names: tuple[str, ...] | None = None, *, progress: Progress | None = None
) -> BuildResult:
    """Derive, verify and render; return the artifacts in memory (nothing is written).

    Only the derivations, provers and printers are imported, never a generated
    file.  ``progress(label, done, total)`` is told of each stage.
    """
    result = BuildResult()
    selected = tuple(names or available_derivations())
    stages = len(selected) + (1 if names is None or "stable" in selected else 0)
    certified: dict[str, tuple[Derivation, VerificationReport]] = {}
    for index, name in enumerate(selected):
        if progress is not None:
            progress(f"build: derive and verify {name}", index, stages)
        started = time.perf_counter()
        derivation = derive(name)
        derived = time.perf_counter()
        report = _verify(derivation)
        verified = time.perf_counter()
        result.files[f"derivations/{name}.tex"] = standalone_latex(derivation, report, header=True)
        result.files[f"derivations/{name}.md"] = derivation_to_markdown(
            derivation, report, header=True
        )
        result.files[f"derivations/{name}.ipynb"] = notebook_text(derivation, report)
        result.reports[name] = report
        certified[name] = (derivation, report)
        result.timings[name] = {
            "derive": derived - started,
            "verify": verified - derived,
            "render": time.perf_counter() - verified,
        }
    if names is None:
        result.files[CERTIFICATES_PATH] = certificates_text(certified)
    if names is None or "stable" in selected:
        from symkl.codegen import generate_sources

        if progress is not None:
            progress("build: print the numeric kernels", stages - 1, stages)
        started = time.perf_counter()
        result.files.update(generate_sources())
        result.timings["codegen"] = {"generate": time.perf_counter() - started}
    if progress is not None:
        progress("build: done", stages, stages)
    return result


# --------------------------------------------------------------------------- writing


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(path: Path, content: str) -> None:
    """Write ``content`` to ``path`` through a temporary file and a rename.

    The file gets the usual permissions (``0o666`` less the umask, or the mode
    of the file it replaces), not ``mkstemp``'s ``0o600``.  The temporary is
    ``.<name>.<random>.symkl-tmp`` beside ``path``; it is removed on any error,
    and :func:`clean_temporaries` removes one left by a killed build.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask()
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX
    )
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(content)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def clean_temporaries(root: Path | str, relatives: list[str] | tuple[str, ...]) -> list[str]:
    """Remove what an interrupted build left beside the files in ``relatives``.

    That is ``.<name>.*.symkl-tmp`` (this build's temporaries) and
    ``.<name>.*.tmp`` (those of builds before the suffix had a name), for each
    generated file's name.  Returns the removed paths, relative to ``root``.
    """
    root = Path(root)
    removed = []
    for relative in relatives:
        path = root / relative
        if not path.parent.is_dir():
            continue
        for pattern in (f".{path.name}.*{TEMPORARY_SUFFIX}", f".{path.name}.*.tmp"):
            for leftover in path.parent.glob(pattern):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
                    removed.append(str(leftover.relative_to(root)))
    return sorted(set(removed))


def _require_checkout(root: Path) -> None:
    project = root / "pyproject.toml"
    try:
        text = project.read_text(encoding="utf-8")
    except OSError:
        text = ""
    if 'name = "symkl"' not in text:
        raise NotACheckoutError(
            f"--root {str(root)!r} is not a symkl checkout (no pyproject.toml naming "
            "the symkl project); run it in a clone of symkl, or pass --root PATH"
        )


def build(
    root: Path | str = ".", *, check: bool = False, progress: Progress | None = None
) -> BuildResult:
    """Regenerate the artifacts under ``root`` (or, with ``check``, compare against them).

    ``root`` must be a symkl checkout (its ``pyproject.toml`` names the symkl
    project); anything else raises :class:`NotACheckoutError` at once, before
    any derivation is built.  Nothing is written when a derivation fails to
    verify or when ``check`` is set.  A build first removes the temporary files
    an interrupted build left behind.

    Raises
    ------
    NotACheckoutError
        ``root`` is not a symkl checkout.
    OSError
        A file could not be written (no permission, a full disk); files
        already written stay complete (each is renamed into place).
    """
    root = Path(root)
    _require_checkout(root)
    result = generate(progress=progress)
    if not check:
        result.removed = clean_temporaries(root, list(result.files))
    for relative, content in result.files.items():
        path = root / relative
        try:
            current = path.read_text(encoding="utf-8") if path.exists() else None
        except (UnicodeDecodeError, IsADirectoryError):
            current = None
        if current == content:
            continue
        if check:
            result.stale.append(relative)
        elif result.proved:
            write_atomically(path, content)
            result.written.append(relative)
    return result
