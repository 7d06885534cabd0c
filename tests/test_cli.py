"""The command line: derive in each format, list, errors with exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from symkl.cli import main


@pytest.mark.parametrize(
    ("fmt", "marker"), [("latex", "\\begin{align*}"), ("markdown", "$$"), ("text", "[definition]")]
)
def test_derive_prints_each_format(capsys, fmt, marker):
    assert main(["derive", "univariate", "--format", fmt]) == 0
    assert marker in capsys.readouterr().out


def test_derive_latex_is_a_standalone_document(capsys):
    assert main(["derive", "univariate", "--format", "latex"]) == 0
    out = capsys.readouterr().out
    assert "\\documentclass" in out and "\\end{document}" in out


def test_derive_with_verify_shows_methods(capsys):
    assert main(["derive", "univariate", "--format", "text", "--verify"]) == 0
    assert "proved by linearity of the integral" in capsys.readouterr().out


def test_verify_json(capsys):
    import json

    assert main(["verify", "univariate", "--json"]) == 0
    [report] = json.loads(capsys.readouterr().out)
    assert report["proved"] and all(step["ok"] for step in report["steps"])


def test_unknown_derivation_is_a_usage_error(capsys):
    assert main(["derive", "trivariate"]) == 2
    assert "unknown derivation name 'trivariate'" in capsys.readouterr().err


def test_list(capsys):
    assert main(["list"]) == 0
    assert "univariate" in capsys.readouterr().out.split()


def test_python_dash_m_and_console_script_work():
    run = subprocess.run(
        [sys.executable, "-m", "symkl", "list"], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0 and "univariate" in run.stdout
