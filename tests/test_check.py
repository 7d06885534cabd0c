"""`symkl check`, `symkl.testing` and the Monte Carlo reference: the cross-checks can fail."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest

import symkl
from symkl import check
from symkl.cli import main
from symkl.reference import MonteCarloEstimate, kl_monte_carlo
from symkl.testing import KLAccuracyError, assert_kl_accurate


def naive_kl_logvar(mu_p, logvar_p, mu_q, logvar_q):
    """The KL every VAE code base carries: right formula, cancels near KL = 0."""
    return 0.5 * np.sum(
        logvar_q - logvar_p + (np.exp(logvar_p) + (mu_p - mu_q) ** 2) / np.exp(logvar_q) - 1,
        axis=-1,
    )


def symkl_kl_logvar(mu_p, logvar_p, mu_q, logvar_q):
    return symkl.kl_diag(mu_p, logvar_p, mu_q, logvar_q, param="logvar")


# --- the harness behind `symkl check`, quick, every public function ---------------------


def test_every_public_numeric_function_is_checked():
    checked = {name.split("[")[0] for name in check.CHECKS}
    public = {n for n in symkl.numeric.__all__ if n.startswith(("kl_", "grad_kl_"))}
    assert public <= checked, f"not cross-checked: {sorted(public - checked)}"


def test_quick_check_of_every_function_passes():
    results = check.run_checks(cases=120, seed=7, quadrature_cases=0)
    failures = [r.message() for r in results if not r.passed]
    assert not failures, "\n".join(failures)


@pytest.mark.slow
def test_full_check_passes():
    results = check.run_checks(cases=4000, seed=11, quadrature_cases=3)
    failures = [r.message() for r in results if not r.passed]
    assert not failures, "\n".join(failures)


def test_references_agree_with_quadrature_of_the_definition():
    result = check.run_check(
        check.CHECKS["kl_diag[logvar]"], "float64", cases=20, quadrature_cases=2, mpmath_cases=1
    )
    assert result.passed, result.message()
    assert "quadrature agrees on 2, mpmath quadrature agrees on 1" in result.reference


def test_a_reference_disagreement_is_an_error_not_a_pass(monkeypatch):
    """A closed form that is off in the 40th digit disagrees with the certified quadrature."""
    from flint import arb, ctx

    from symkl.accuracy import runner
    from symkl.accuracy.ball import Enclosure

    real = runner.kl_term

    def off(rows, param="std", dps=50):
        true = real(rows, param, dps)
        with ctx.workprec(400):
            return Enclosure(true.ball * (1 + arb(10) ** -40))

    monkeypatch.setattr(runner, "kl_term", off)
    result = check.run_check(check.CHECKS["kl_normal"], "float64", cases=20, quadrature_cases=3)
    assert result.verdict == "ERROR" and "reference disagreement" in result.error


def test_diagonal_mvn_up_to_k_64_is_checked():
    result = check.run_check(
        check.CHECKS["kl_mvn[diag,k=64]"], "float64", cases=200, quadrature_cases=80
    )
    assert result.passed and "univariate closed form agrees on 2" in result.reference


def test_mvn_reference_agrees_with_2d_quadrature():
    arrays = check.mvn_cases(3, 5, 2)
    values = [arrays[n][2] for n in ("mu_p", "cov_p", "mu_q", "cov_q")]
    closed, integral = check.mvn_reference(*values), check.mvn_quad(*values, dps=12)
    assert abs(closed - integral) <= 1e-11 * abs(closed)


def test_a_check_fails_for_a_function_off_by_a_few_ulps():
    """The checker can fail: symkl's own result times (1 + 16 eps) is rejected."""
    spec = check.user_check(
        lambda *a: symkl.kl_diag(*a, param="var") * (1 + 16 * 2.0**-52), "diag", "var", 4
    )
    result = check.run_check(spec, "float64", cases=100)
    assert not result.passed and result.worst > 4


# --- symkl.testing ----------------------------------------------------------------------


def test_naive_kl_fails_near_zero_with_a_readable_report():
    with pytest.raises(KLAccuracyError) as failure:
        assert_kl_accurate(naive_kl_logvar, family="diag", param="logvar", ulps=8)
    message = str(failure.value)
    assert "naive_kl_logvar is not accurate to 8 ULP" in message
    assert "cases exceed 8 ULP; worst:" in message and "!=" in message
    assert failure.value.results[0].worst > 1e6


def test_symkl_passes_its_own_assertion_in_both_dtypes():
    result = assert_kl_accurate(
        symkl_kl_logvar, family="diag", param="logvar", ulps=8, dtypes=("float64", "float32")
    )
    assert result.worst <= 8


def test_std_normal_family_and_wrong_shapes():
    assert_kl_accurate(symkl.kl_std_normal, family="std-normal", param="logvar", cases=100)
    with pytest.raises(KLAccuracyError, match=r"returned shape \(100, 8\); expected \(100,\)"):
        assert_kl_accurate(
            lambda mu, logvar: mu * 0.0, family="std-normal", param="logvar", cases=100
        )


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"family": "gamma", "param": "var"}, "family must be one of"),
        ({"family": "diag", "param": "sigma"}, "param must be one of"),
        ({"family": "std-normal", "param": "var"}, "takes param='logvar'"),
        ({"family": "diag", "param": "var", "ulps": 0}, "ulps must be a positive finite number"),
        # each of these let a function returning zeros pass (or crashed with IndexError)
        ({"family": "diag", "param": "var", "ulps": float("inf")}, "positive finite number"),
        ({"family": "diag", "param": "var", "k": 0}, "k must be a positive integer"),
        ({"family": "diag", "param": "var", "dtypes": ()}, "dtypes must be a non-empty"),
        ({"family": "diag", "param": "var", "dtypes": "float64"}, "dtypes must be a non-empty"),
        ({"family": "diag", "param": "var", "cases": 0}, "cases must be an integer >= 4"),
    ],
)
def test_testing_rejects_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        assert_kl_accurate(symkl_kl_logvar, **options)


# --- the command line -------------------------------------------------------------------


def test_cli_check_quick_prints_the_table(capsys):
    status = main(["check", "--quick", "--only", "kl_normal", "kl_mvn[k=2]", "--cases", "60"])
    out = capsys.readouterr().out
    assert status == 0
    assert "function" in out and "verdict" in out and "kl_mvn[k=2]" in out
    assert "within their documented bounds" in out


def test_cli_check_json(capsys):
    status = main(["check", "--json", "--only", "kl_std_normal", "--cases", "40"])
    document = json.loads(capsys.readouterr().out)
    assert status == 0 and document["passed"] is True
    assert {r["dtype"] for r in document["results"]} == {"float64", "float32"}
    assert all(r["verdict"] == "ok" for r in document["results"])


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    source = textwrap.dedent(
        """
        import numpy as np
        import symkl

        def naive(mu_p, logvar_p, mu_q, logvar_q):
            return 0.5 * np.sum(logvar_q - logvar_p
                                + (np.exp(logvar_p) + (mu_p - mu_q) ** 2) / np.exp(logvar_q) - 1,
                                axis=-1)

        def good(mu_p, logvar_p, mu_q, logvar_q):
            return symkl.kl_diag(mu_p, logvar_p, mu_q, logvar_q, param="logvar")

        not_callable = 3
        """
    )
    (tmp_path / "my_vae_kl.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_vae_kl"
    sys.modules.pop("my_vae_kl", None)


def test_cli_check_user_function(user_module, capsys):
    options = ["--family", "diag", "--param", "logvar", "--ulps", "8", "--cases", "300"]
    assert main(["check", "--function", f"{user_module}:naive", *options]) == 1
    captured = capsys.readouterr()
    assert "FAIL" in captured.out and "naive" in captured.err
    assert main(["check", "--function", f"{user_module}:good", *options]) == 0
    assert "1/1 within" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--only", "kl_nope"], "unknown check(s) ['kl_nope']"),
        (["--function", "no_colon"], "must look like 'package.module:function'"),
        (
            ["--function", "not_a_module_xyz:f", "--family", "diag", "--param", "var"],
            "cannot import module 'not_a_module_xyz'",
        ),
        (
            ["--function", "USER:missing", "--family", "diag", "--param", "var"],
            "has no attribute 'missing'",
        ),
        (
            ["--function", "USER:not_callable", "--family", "diag", "--param", "var"],
            "is not callable",
        ),
        (["--function", "USER:good"], "--function needs --family and --param"),
        (["--family", "diag"], "--family, --param and --framework go with --function"),
        (["--framework", "torch"], "--family, --param and --framework go with --function"),
        (["--cases", "2"], "--cases must be at least 4"),
    ],
)
def test_cli_check_usage_errors(user_module, capsys, arguments, message):
    arguments = [a.replace("USER", user_module) for a in arguments]
    assert main(["check", *arguments]) == 2
    assert message in capsys.readouterr().err


def test_cli_check_unknown_option_is_a_usage_error(capsys):
    # main() returns the status (one line on stderr) instead of raising SystemExit
    assert main(["check", "--fast"]) == 2
    assert "unrecognized arguments: --fast" in capsys.readouterr().err


# --- framework functions: tensors in, as the user's CI would feed them ------------------


def vae_loss_kl(mu, logvar):
    """The KL of the pytorch/examples VAE, written directly in torch."""
    import torch

    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)


@pytest.fixture(scope="module")
def exported_torch(tmp_path_factory):
    pytest.importorskip("torch")
    import importlib.util

    from symkl.export import write_export

    path = write_export("torch", tmp_path_factory.mktemp("export") / "symkl_kl_torch.py")
    spec = importlib.util.spec_from_file_location("symkl_kl_torch", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_torch_vae_loss_fails_while_symkls_torch_kl_passes(exported_torch):
    import torch

    seen = []

    def recording(mu, logvar):
        seen.append((type(mu), mu.dtype))
        return vae_loss_kl(mu, logvar)

    options = {"family": "std-normal", "param": "logvar", "framework": "torch", "cases": 200}
    with pytest.raises(KLAccuracyError, match="recording is not accurate to 4 ULP"):
        assert_kl_accurate(recording, dtypes=("float64", "float32"), **options)
    assert (torch.Tensor, torch.float64) in seen and (torch.Tensor, torch.float32) in seen
    result = assert_kl_accurate(
        exported_torch.kl_std_normal, dtypes=("float64", "float32"), ulps=8, **options
    )
    assert result.worst <= 8


def test_cli_checks_a_torch_function_directly(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    (tmp_path / "vae_loss.py").write_text(
        "import torch\n\n\ndef kl(mu, logvar):\n"
        "    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    arguments = ["check", "--function", "vae_loss:kl", "--family", "std-normal"]
    arguments += ["--param", "logvar", "--framework", "torch", "--cases", "500"]
    assert main(arguments) == 1
    captured = capsys.readouterr()
    assert "FAIL" in captured.out and "FAIL kl [float64]" in captured.err
    sys.modules.pop("vae_loss", None)


def test_jax_function_gets_jax_arrays():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    def kl(mu, logvar):
        assert isinstance(mu, jax.Array)
        return -0.5 * jnp.sum(1 + logvar - mu**2 - jnp.exp(logvar), axis=-1)

    with pytest.raises(KLAccuracyError):
        assert_kl_accurate(
            kl, family="std-normal", param="logvar", framework="jax", dtypes=("float32",)
        )
    with pytest.raises(ValueError, match="framework must be one of numpy, torch, jax"):
        assert_kl_accurate(kl, family="std-normal", param="logvar", framework="tensorflow")


# --- peers ------------------------------------------------------------------------------


def test_peers_against_torch(capsys):
    pytest.importorskip("torch")
    results = {(r.distribution, r.dtype): r for r in check.run_peers(cases=200, seed=3)}
    normal = results[("Normal", "float64")]
    # where torch is accurate it agrees with symkl (median within a few ULP) ...
    assert normal.peer_median <= 4 and normal.symkl_worst <= 4
    # ... and near KL = 0 it loses digits that symkl keeps
    assert normal.near_zero_cases > 0 and normal.peer_near_zero > 1e-6
    assert results[("Normal", "float32")].peer_near_zero > 1e-2
    mvn = results[("MultivariateNormal", "float64")]
    assert mvn.symkl_worst <= 1e-12 and mvn.peer_median <= 1e-12
    assert main(["check", "--quick", "--peers", "--only", "kl_normal", "--cases", "40"]) == 0
    assert "torch.distributions.kl_divergence" in capsys.readouterr().out


# --- Monte Carlo ------------------------------------------------------------------------


def test_closed_form_lies_within_a_few_standard_errors():
    rng = np.random.default_rng(2024)
    outside = 0
    for _ in range(40):
        k = int(rng.integers(1, 6))
        mu_p, mu_q = rng.normal(size=k), rng.normal(size=k)
        s_p, s_q = np.exp(rng.normal(size=k) * 0.5), np.exp(rng.normal(size=k) * 0.5)
        estimate = kl_monte_carlo(mu_p, s_p, mu_q, s_q, samples=20_000, rng=rng)
        exact = float(symkl.kl_diag(mu_p, s_p, mu_q, s_q, param="std"))
        low, high = estimate.interval(4.0)
        outside += not (low <= exact <= high)
    assert outside == 0


def test_monte_carlo_error_shrinks_as_one_over_root_n():
    errors = {}
    for samples in (1_000, 100_000):
        estimate = kl_monte_carlo(
            [0.0, 1.0],
            [1.0, 0.5],
            [0.5, 0.0],
            [2.0, 1.0],
            samples=samples,
            rng=np.random.default_rng(1),
        )
        errors[samples] = estimate.standard_error
    assert 8 < errors[1_000] / errors[100_000] < 12  # sqrt(100) = 10


def test_monte_carlo_parameterisations_agree_and_seed_reproduces():
    def run(param, s_p, s_q):
        return kl_monte_carlo(
            0.3, s_p, -0.2, s_q, samples=5000, rng=np.random.default_rng(5), param=param
        )

    std = run("std", 1.5, 0.7)
    assert run("var", 2.25, 0.49).value == pytest.approx(std.value, rel=1e-12)
    assert run("logvar", np.log(2.25), np.log(0.49)).value == pytest.approx(std.value, rel=1e-12)
    assert run("std", 1.5, 0.7) == std
    assert isinstance(std, MonteCarloEstimate)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"rng": None}, "rng must be a numpy.random.Generator"),
        ({"rng": 42}, "rng must be a numpy.random.Generator"),
        ({"samples": 1}, "samples must be an integer >= 2"),
        ({"param": "precision"}, "param must be 'std', 'var' or 'logvar'"),
        ({"s_p": -1.0}, "s_p must be positive"),
        ({"mu_q": float("nan")}, "mu_q must be finite"),
        ({"s_q": [1.0, 2.0, 3.0], "s_p": [1.0, 2.0]}, "shapes do not match"),
    ],
)
def test_monte_carlo_rejects_bad_input(options, match):
    arguments = {
        "mu_p": 0.0,
        "s_p": 1.0,
        "mu_q": 0.0,
        "s_q": 2.0,
        "samples": 100,
        "rng": np.random.default_rng(0),
    } | options
    with pytest.raises(ValueError, match=match):
        kl_monte_carlo(**arguments)


# --- adversarial review: a check that checked nothing must not pass ----------------------


def _writes_to_its_inputs(mu_p, s_p, mu_q, s_q):
    mu_q[...] = mu_p  # q := p in place (torch.from_numpy shares the arrays' memory)
    s_q[...] = s_p
    return np.zeros(len(mu_p))


@pytest.mark.parametrize("framework", [None, "torch"])
def test_a_function_that_writes_to_its_inputs_cannot_pass(framework):
    # the truths were computed from the arrays after the call: q := p made 0 "exact"
    if framework == "torch":
        pytest.importorskip("torch")
    with pytest.raises(KLAccuracyError, match="not accurate to 4 ULP"):
        assert_kl_accurate(
            _writes_to_its_inputs, family="normal", param="std", cases=40, framework=framework
        )


@pytest.fixture
def broken_modules(tmp_path, monkeypatch):
    (tmp_path / "kl_exits_on_import.py").write_text("import sys\nsys.exit(0)\n")
    (tmp_path / "kl_bad_syntax.py").write_text("def f(:\n")
    (tmp_path / "kl_odd_functions.py").write_text(
        textwrap.dedent(
            """
        import numpy as np

        def exits(mu_p, s_p, mu_q, s_q):
            raise SystemExit(0)

        def complex_kl(mu_p, s_p, mu_q, s_q):
            return np.zeros(len(mu_p)) + 1j
        """
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in ("kl_exits_on_import", "kl_bad_syntax", "kl_odd_functions"):
        sys.modules.pop(name, None)


@pytest.mark.parametrize(
    ("spec", "status", "message"),
    [
        # sys.exit(0) on import or in the call ended `symkl check` with status 0: a pass
        ("kl_exits_on_import:f", 2, "importing 'kl_exits_on_import' called sys.exit(0)"),
        ("kl_bad_syntax:f", 2, "syntax error in"),
        ("kl_odd_functions:exits", 1, "kl_odd_functions:exits called sys.exit(0)"),
        ("kl_odd_functions:complex_kl", 1, "returned complex values"),
    ],
)
def test_cli_check_of_a_broken_function_fails(broken_modules, capsys, spec, status, message):
    options = ["--family", "normal", "--param", "std", "--cases", "20"]
    assert main(["check", "--function", spec, *options]) == status
    captured = capsys.readouterr()
    assert message in captured.err + captured.out
