"""Generated artifacts: byte-identical regeneration, and a check that catches stale copies."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from symkl.build import build, generate

ROOT = Path(__file__).resolve().parents[1]


def test_committed_derivations_are_up_to_date():
    result = build(ROOT, check=True)
    assert result.proved
    assert result.stale == [], f"stale: {result.stale}; run `symkl build` and commit"


def _copy_generated(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "derivations", tmp_path / "derivations")
    (tmp_path / "symkl").mkdir()
    for name in ("_kernels.c", "_kernels_numpy.py"):
        shutil.copy(ROOT / "symkl" / name, tmp_path / "symkl" / name)
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "api.md", tmp_path / "docs" / "api.md")


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
    from symkl.cli import main

    _copy_generated(tmp_path)
    (tmp_path / "derivations" / "univariate.md").write_text("tampered\n")
    assert main(["build", "--check", "--root", str(tmp_path)]) == 1
    assert "derivations/univariate.md is stale" in capsys.readouterr().err


def test_check_catches_a_hand_edited_kernel(tmp_path):
    _copy_generated(tmp_path)
    kernel = tmp_path / "symkl" / "_kernels.c"
    text = kernel.read_text(encoding="utf-8")
    kernel.write_text(text.replace("half_a + half_excess", "half_a - half_excess", 1))
    assert build(tmp_path, check=True).stale == ["symkl/_kernels.c"]


def test_check_catches_a_stale_api_reference(tmp_path):
    _copy_generated(tmp_path)
    page = tmp_path / "docs" / "api.md"
    page.write_text(page.read_text(encoding="utf-8").replace("kl_diag", "kl_diagonal", 1))
    assert build(tmp_path, check=True).stale == ["docs/api.md"]


def test_build_writes_then_is_idempotent(tmp_path):
    first = build(tmp_path)
    assert sorted(first.written) == sorted(first.files)
    second = build(tmp_path)
    assert second.written == []


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
