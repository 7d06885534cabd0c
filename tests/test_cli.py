"""The command line: formats, Unix conventions, exit codes, user functions, verdicts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from symkl import cli
from symkl.cli import main, select_checks

ROOT = Path(__file__).resolve().parents[1]


def run_symkl(*args: str, cwd: Path | None = None, **kwargs) -> subprocess.CompletedProcess:
    """``python -m symkl ARGS`` in a fresh interpreter (symkl from this checkout)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "symkl", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env=env,
        **kwargs,
    )


# --------------------------------------------------------------------------- derive


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


def test_derive_prints_every_check_note_without_verify(capsys):
    # README command 1: the notes come from the certificate `symkl build` wrote
    from symkl import derive

    assert main(["derive", "univariate", "--format", "latex"]) == 0
    out = capsys.readouterr().out
    derivation = derive("univariate")
    # every claim has its note: the steps after the definition, the named terms, every fact
    claims = len(derivation.steps) - 1 + 1 + len(derivation.facts)
    assert out.count("points agree to") == claims
    assert f"every claim ({claims}: steps, named terms, facts) proved" in out


def test_derive_with_verify_shows_methods(capsys):
    assert main(["derive", "univariate", "--format", "text", "--verify"]) == 0
    assert "proved by linearity of the integral" in capsys.readouterr().out


def test_text_format_is_plain_text(capsys):
    assert main(["derive", "univariate", "--format", "text"]) == 0
    out = capsys.readouterr().out
    assert "\\" not in out and "$" not in out, [line for line in out.splitlines() if "\\" in line]
    assert "exp(-(x - mu_p)**2/(2*sigma_p**2))/(sigma_p*sqrt(2*pi))" in out
    assert "+ -" not in out


def test_markdown_on_stdout_has_no_do_not_edit_comment(capsys):
    assert main(["derive", "univariate", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# KL divergence") and "do not edit" not in out


def test_derive_dash_o_dash_is_stdout(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["derive", "univariate", "--format", "text", "-o", "-"]) == 0
    assert "[definition]" in capsys.readouterr().out
    assert not (tmp_path / "-").exists()


# --------------------------------------------------------------------------- verify


def test_verify_json(capsys):
    assert main(["verify", "univariate", "--json"]) == 0
    out = capsys.readouterr().out
    [report] = json.loads(out)  # nothing but JSON on stdout: no verdict, no progress
    assert report["proved"] and all(step["ok"] for step in report["steps"])


def test_verify_ends_with_a_one_line_verdict_stating_its_scope(capsys):
    assert main(["verify", "univariate"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("symkl verify: ok: 1/1 derivations proved (")
    assert "claims" in last and "proved symbolically and checked numerically" in last
    assert "lemmas" not in last  # univariate assumes none


def test_verify_verdict_names_the_assumed_lemmas():
    from symkl.cli import _verify_scope

    class Report:
        proved = True

        def __init__(self, name, lemmas):
            self.name, self.lemmas = name, lemmas

        def as_dict(self):
            return {"name": self.name, "steps": [{"scope": "for all k"}], "lemmas": self.lemmas}

    text = _verify_scope([Report("diagonal", ["L2", "L1"]), Report("full", ["M1"])], 0.0)
    assert "for all k from the assumed lemmas L1, L2, M1" in text


# --------------------------------------------------------------------------- errors, exit codes


def test_unknown_derivation_names_the_subcommand(capsys):
    assert main(["verify", "bogus"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("symkl verify: error: unknown derivation name 'bogus'")
    assert len(err.strip().splitlines()) == 1 and "derive:" not in err


def test_unknown_derivation_for_derive(capsys):
    assert main(["derive", "trivariate"]) == 2
    assert "symkl derive: error: unknown derivation name 'trivariate'" in capsys.readouterr().err


def test_argparse_mistakes_are_one_line_naming_the_subcommand(capsys):
    assert main(["check", "--cases", "many"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("symkl check: error: argument --cases: invalid int value: 'many'")
    assert len(err.splitlines()) == 1


def test_missing_subcommand_is_a_usage_error(capsys):
    assert main([]) == 2
    assert capsys.readouterr().err.startswith("symkl: error:")


def test_help_exits_zero(capsys):
    assert main(["check", "--help"]) == 0
    assert "--function" in capsys.readouterr().out


def test_internal_errors_exit_3_in_one_line(capsys, monkeypatch):
    def broken(_args):
        raise RuntimeError("boom")

    monkeypatch.setitem(cli._HANDLERS, "list", broken)
    monkeypatch.delenv("SYMKL_TRACEBACK", raising=False)
    assert main(["list"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("symkl list: internal error: RuntimeError: boom")
    assert "Traceback" not in err


def test_list(capsys):
    assert main(["list"]) == 0
    assert "univariate" in capsys.readouterr().out.split()


def test_python_dash_m_and_console_script_work():
    run = run_symkl("list")
    assert run.returncode == 0 and "univariate" in run.stdout


def test_a_closed_pipe_exits_quietly():
    # `symkl list | head -1`: the reader goes away; no BrokenPipeError traceback
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # the reader (`true`) is gone long before the interpreter has started and writes
    shell = f"{sys.executable} -m symkl list | true"
    run = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {shell}; echo status=$?"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert "Traceback" not in run.stderr and "BrokenPipe" not in run.stderr, run.stderr
    assert run.stderr == "" and "status=141" in run.stdout


# --------------------------------------------------------------------------- export


def test_export_dash_o_dash_writes_to_stdout(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--target", "numpy", "-o", "-"]) == 0
    assert "def kl_normal" in capsys.readouterr().out
    assert not (tmp_path / "-").exists()


def test_export_into_a_missing_directory_is_a_usage_error(capsys, tmp_path):
    assert main(["export", "--target", "numpy", "-o", str(tmp_path / "no" / "kl.py")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("symkl export: error:") and "does not exist" in err


# --------------------------------------------------------------------------- check


def test_only_takes_a_function_name():
    known = ["kl_normal", "kl_diag[std]", "kl_diag[var]", "kl_diag_reverse[std]", "grad_kl_normal"]
    assert select_checks(["kl_diag"], known) == ["kl_diag[std]", "kl_diag[var]"]
    assert select_checks(["kl_diag[var]"], known) == ["kl_diag[var]"]
    assert select_checks(["grad_"], known) == ["grad_kl_normal"]
    assert select_checks(None, known) is None
    with pytest.raises(cli.UsageError, match=r"unknown check\(s\) \['kl_dag'\]; give a function"):
        select_checks(["kl_dag"], known)


def test_only_kl_diag_runs_every_parameterisation(capsys):
    assert main(["check", "--only", "kl_diag", "--cases", "4", "--json"]) == 0
    names = {r["name"] for r in json.loads(capsys.readouterr().out)["results"]}
    assert names == {"kl_diag[std]", "kl_diag[var]", "kl_diag[logvar]"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--k", "0"], "--k must be at least 1 (the dimension), got 0"),
        (["--cases", "2"], "--cases must be at least 4, got 2"),
        (["--ulps", "-1"], "--ulps must be a positive number, got -1.0"),
        (["--param", "std"], "--family std-normal takes (mu, logvar): --param must be logvar"),
    ],
)
def test_check_refuses_bad_numbers(capsys, args, message):
    spec = "symkl.numeric:kl_std_normal"
    assert main(["check", "--function", spec, "--family", "std-normal", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("symkl check: error: ") and message in err


def _module(directory: Path, name: str, source: str) -> None:
    (directory / f"{name}.py").write_text(source, encoding="utf-8")


GOOD = "import symkl\ndef kl(mu, logvar):\n    return symkl.kl_std_normal(mu, logvar)\n"


def test_family_std_normal_implies_its_param(tmp_path, monkeypatch, capsys):
    _module(tmp_path, "good_prior_kl", GOOD)
    monkeypatch.chdir(tmp_path)
    args = ["check", "--function", "good_prior_kl:kl", "--family", "std-normal", "--cases", "8"]
    assert main([*args, "--k", "2"]) == 0
    assert "symkl check: ok: 1/1 within their documented bounds: your good_prior_kl:kl " in (
        capsys.readouterr().out
    )


def test_a_function_module_with_a_syntax_error_is_one_line_exit_2(tmp_path):
    _module(tmp_path, "broken_kl", "def kl(mu, logvar)\n    return 0\n")
    run = run_symkl("check", "--function", "broken_kl:kl", "--family", "std-normal", cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert "symkl check: error: --function 'broken_kl:kl': syntax error in" in run.stderr
    assert "broken_kl.py, line 1" in run.stderr


def test_a_function_module_that_raises_on_import_is_one_line(tmp_path, monkeypatch, capsys):
    _module(tmp_path, "raising_kl", "raise RuntimeError('no GPU here')\n")
    monkeypatch.chdir(tmp_path)
    assert main(["check", "--function", "raising_kl:kl", "--family", "std-normal"]) == 2
    err = capsys.readouterr().err
    assert "importing 'raising_kl' raised RuntimeError: no GPU here" in err
    assert "raising_kl.py, line 1" in err


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("import sys\n    sys.exit(7)", "called sys.exit(7)"),
        ("raise ZeroDivisionError('oops')", "ZeroDivisionError: oops"),
    ],
)
def test_a_function_that_exits_or_raises_fails_as_that_function(tmp_path, body, error):
    _module(tmp_path, "bad_kl", f"def kl(mu, logvar):\n    {body}\n")
    run = run_symkl(
        "check", "--function", "bad_kl:kl", "--family", "std-normal", "--cases", "4", cwd=tmp_path
    )
    assert run.returncode == 1, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr
    assert "FAIL kl [float64]: raised" in run.stderr and error in run.stderr
    assert "symkl check: FAILED: 0/1 within their documented bounds: your bad_kl:kl" in run.stdout


def test_the_failure_report_counts_cases_and_prints_large_ulps_readably(tmp_path):
    textbook = (
        "import numpy as np\n"
        "def kl(mu_p, s_p, mu_q, s_q):\n"
        "    return np.log(s_q / s_p) + (s_p**2 + (mu_p - mu_q)**2) / (2 * s_q**2) - 0.5\n"
    )
    _module(tmp_path, "textbook_kl", textbook)
    run = run_symkl(
        *("check", "--function", "textbook_kl:kl", "--family", "normal", "--param", "std"),
        *("--cases", "400"),
        cwd=tmp_path,
    )
    assert run.returncode == 1
    [line] = [line for line in run.stderr.splitlines() if line.startswith("FAIL")]
    assert " of 400 cases exceed 4 ULP; worst " in line
    worst = line.split("; worst ")[1].split(" ULP")[0]
    assert "e+" in worst and len(worst) <= 8, worst  # 9.2e+18, not 9228749586240172032.00


def test_function_does_not_leave_the_current_directory_on_sys_path(tmp_path):
    # a ./torch.py beside the user's module must not be imported by --peers
    (tmp_path / "torch.py").write_text(
        "import pathlib\npathlib.Path('IMPORTED').write_text('yes')\nraise SystemExit(9)\n"
    )
    _module(tmp_path, "prior_kl", GOOD)
    run = run_symkl(
        *("check", "--function", "prior_kl:kl", "--family", "std-normal", "--cases", "4"),
        "--peers",
        cwd=tmp_path,
    )
    assert not (tmp_path / "IMPORTED").exists(), run.stderr
    assert run.returncode == 0, run.stderr


def test_load_user_function_leaves_sys_path_alone(tmp_path, monkeypatch):
    _module(tmp_path, "path_kl", GOOD)
    monkeypatch.chdir(tmp_path)
    before = list(sys.path)
    function = cli.load_user_function("path_kl:kl")
    assert sys.path == before and "" not in sys.path[:1]
    assert function.__name__ == "kl"
    sys.modules.pop("path_kl", None)


def test_progress_only_on_a_terminal_and_never_with_json(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert not cli.Progress(True).shown
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert not cli.Progress(False).shown  # --json
    progress = cli.Progress(True)
    try:
        assert progress.shown
        progress("verify univariate", 0, 2)
        progress.stage("a step without counts")
    finally:
        progress.close()
    assert not progress.shown


def test_check_ends_with_a_verdict_stating_its_scope(capsys):
    assert main(["check", "--only", "kl_normal", "--cases", "4", "--quick"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("symkl check: ok: 2/2 within their documented bounds: the selected")
    assert "(kl_normal)" in last
    assert "float32, float64" in last and "seed 0" in last and "quick mode" in last


def test_derive_without_a_matching_certificate_verifies_and_says_so(capsys, monkeypatch):
    import symkl.build

    monkeypatch.setattr(symkl.build, "read_certificate", lambda derivation: None)
    assert main(["derive", "univariate", "--format", "text"]) == 0
    captured = capsys.readouterr()
    assert "no certificate matches the claims of 'univariate'" in captured.err
    assert "checked: proved by linearity of the integral" in captured.out


def test_function_from_a_package_in_the_current_directory(tmp_path, monkeypatch, capsys):
    package = tmp_path / "my_losses_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    _module(package, "losses", GOOD)
    monkeypatch.chdir(tmp_path)
    before = list(sys.path)
    try:
        args = ["--family", "std-normal", "--cases", "4", "--k", "2"]
        assert main(["check", "--function", "my_losses_pkg.losses:kl", *args]) == 0
    finally:
        for name in ("my_losses_pkg", "my_losses_pkg.losses"):
            sys.modules.pop(name, None)
    assert sys.path == before
    assert "symkl check: ok:" in capsys.readouterr().out
