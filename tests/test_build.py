"""Generated artifacts: byte-identical regeneration, stale copies caught, safe writes."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from symkl import build as build_module
from symkl.build import NotACheckoutError, build, generate, read_certificate
from symkl.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_committed_derivations_are_up_to_date():
    result = build(ROOT, check=True)
    assert result.proved
    assert result.stale == [], f"stale: {result.stale}; run `symkl build` and commit"


def _copy_generated(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "derivations", tmp_path / "derivations")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "symkl").mkdir()
    for name in ("_kernels.c", "_kernels_numpy.py", "certificates.json"):
        shutil.copy(ROOT / "symkl" / name, tmp_path / "symkl" / name)


def test_check_names_a_tampered_file(tmp_path):
    _copy_generated(tmp_path)
    target = tmp_path / "derivations" / "univariate.tex"
    target.write_text(target.read_text(encoding="utf-8").replace("sigma", "sigmx", 1))
    (tmp_path / "derivations" / "univariate.md").unlink()
    result = build(tmp_path, check=True)
    assert sorted(result.stale) == ["derivations/univariate.md", "derivations/univariate.tex"]
    # --check writes nothing
    assert not (tmp_path / "derivations" / "univariate.md").exists()


def test_cli_check_exits_non_zero_naming_the_stale_file(tmp_path, capsys):
    _copy_generated(tmp_path)
    (tmp_path / "derivations" / "univariate.md").write_text("tampered\n")
    assert main(["build", "--check", "--root", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "derivations/univariate.md is stale" in captured.err
    assert "symkl build --check: FAILED: 20/21 generated files up to date" in captured.out


def test_check_catches_a_hand_edited_kernel(tmp_path):
    _copy_generated(tmp_path)
    kernel = tmp_path / "symkl" / "_kernels.c"
    text = kernel.read_text(encoding="utf-8")
    kernel.write_text(text.replace("half_a + half_excess", "half_a - half_excess", 1))
    assert build(tmp_path, check=True).stale == ["symkl/_kernels.c"]


def test_check_catches_a_tampered_certificate(tmp_path):
    _copy_generated(tmp_path)
    path = tmp_path / "symkl" / "certificates.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["derivations"]["univariate"]["report"]["steps"][0]["symbolic"]["method"] = "faith"
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    assert build(tmp_path, check=True).stale == ["symkl/certificates.json"]


def test_a_certificate_is_keyed_on_the_claims(tmp_path):
    from dataclasses import replace

    from symkl import derive

    derivation = derive("univariate")
    certificate = read_certificate(derivation)
    assert certificate is not None and certificate.proved
    labels = [step["label"] for step in certificate.as_dict()["steps"]]
    assert labels[: len(derivation.steps) - 1] == [s.label for s in derivation.steps[1:]]
    # change one claim: the certificate no longer applies
    steps = list(derivation.steps)
    steps[3] = replace(steps[3], expr=steps[3].expr + 1)
    assert read_certificate(replace(derivation, steps=steps)) is None
    # a missing or malformed file is no certificate
    assert read_certificate(derivation, tmp_path / "missing.json") is None
    (tmp_path / "bad.json").write_text("{not json")
    assert read_certificate(derivation, tmp_path / "bad.json") is None


def _checkout(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_build_writes_then_is_idempotent_with_the_usual_permissions(tmp_path):
    _checkout(tmp_path)
    previous = os.umask(0o022)
    try:
        first = build(tmp_path)
    finally:
        os.umask(previous)
    assert sorted(first.written) == sorted(first.files)
    modes = {path: (tmp_path / path).stat().st_mode & 0o777 for path in first.files}
    assert set(modes.values()) == {0o644}, modes
    second = build(tmp_path)
    assert second.written == []


def test_write_atomically_respects_the_umask_and_keeps_an_existing_mode(tmp_path):
    previous = os.umask(0o002)
    try:
        build_module.write_atomically(tmp_path / "new.txt", "x\n")
    finally:
        os.umask(previous)
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o664
    (tmp_path / "script.sh").write_text("old\n")
    (tmp_path / "script.sh").chmod(0o755)
    build_module.write_atomically(tmp_path / "script.sh", "new\n")
    assert (tmp_path / "script.sh").stat().st_mode & 0o777 == 0o755
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.txt", "script.sh"]


def test_a_failed_write_leaves_no_temporary(tmp_path, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(build_module.os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        build_module.write_atomically(tmp_path / "a.txt", "x\n")
    assert list(tmp_path.iterdir()) == []


def test_temporaries_of_a_killed_build_are_removed_and_git_ignored(tmp_path):
    _copy_generated(tmp_path)
    leftovers = [
        tmp_path / "symkl" / "._kernels.c.k1x2y3.tmp",  # an older build's name
        tmp_path / "derivations" / ".univariate.tex.abc123.symkl-tmp",
    ]
    for path in leftovers:
        path.write_text("half a file")
    keep = tmp_path / "derivations" / ".notes.tmp"  # not a generated file's temporary
    keep.write_text("mine")
    result = build(tmp_path)
    assert sorted(result.removed) == [
        "derivations/.univariate.tex.abc123.symkl-tmp",
        "symkl/._kernels.c.k1x2y3.tmp",
    ]
    assert not any(path.exists() for path in leftovers) and keep.exists()
    if shutil.which("git") and (ROOT / ".git").exists():
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", "derivations/.univariate.tex.abc123.symkl-tmp"],
            cwd=ROOT,
        )
        assert ignored.returncode == 0, "build's temporaries must be git-ignored"


def test_build_outside_a_checkout_says_so_at_once(tmp_path, capsys, monkeypatch):
    def no_generation(*args, **kwargs):
        raise AssertionError("generate() must not run outside a checkout")

    monkeypatch.setattr(build_module, "generate", no_generation)
    with pytest.raises(NotACheckoutError, match="is not a symkl checkout"):
        build(tmp_path, check=True)
    assert main(["build", "--check", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("symkl build: error: --root ") and "is not a symkl checkout" in err


def test_an_unwritable_root_is_one_line_exit_2(tmp_path, capsys):
    # derivations/ is a file, so nothing can be written below it (works as root too)
    _checkout(tmp_path)
    (tmp_path / "derivations").write_text("in the way")
    assert main(["build", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"symkl build: error: {tmp_path / 'derivations'}: ")
    assert len(err.splitlines()) == 1


def test_a_full_disk_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    _checkout(tmp_path)

    def full_disk(path, content):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(build_module, "write_atomically", full_disk)
    assert main(["build", "--root", str(tmp_path)]) == 2
    assert "No space left on device" in capsys.readouterr().err


def test_build_regenerates_without_importing_what_it_generates(tmp_path):
    # a copy of the package whose generated NumPy kernels do not even parse
    shutil.copytree(ROOT / "symkl", tmp_path / "symkl", ignore=shutil.ignore_patterns("*.so"))
    broken = tmp_path / "symkl" / "_kernels_numpy.py"
    broken.write_text("def kl_normal(:\n")
    script = (
        "import sys, symkl.build as b; files = b.generate(('stable',)).files; "
        "assert 'symkl._kernels_numpy' not in sys.modules and 'symkl.numeric' not in sys.modules; "
        "sys.stdout.write(files['symkl/_kernels_numpy.py'])"
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == (ROOT / "symkl" / "_kernels_numpy.py").read_text(encoding="utf-8")


def test_generation_is_byte_identical_across_processes_and_hash_seeds():
    # a fresh interpreter with another hash seed must produce the very same bytes
    script = (
        "import hashlib, symkl.build as b; files = b.generate().files; "
        "print(hashlib.sha256(repr(sorted(files.items())).encode()).hexdigest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=True,
    )
    here = hashlib.sha256(repr(sorted(generate().files.items())).encode()).hexdigest()
    assert run.stdout.strip() == here
