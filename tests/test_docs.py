"""Docs: the examples of README and docs/ run, and the documentation site builds and renders.

The site is Sphinx (MyST Markdown, numpydoc, MathJax served locally); ``-W``
makes every warning, an unresolved link or reference included, an error.
"""

from __future__ import annotations

import doctest
import importlib.util
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SPHINX = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b"]
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _ids(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.mark.parametrize("page", PAGES, ids=_ids)
def test_doctest_examples_in_the_page_run(page):
    result = doctest.testfile(
        str(page), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False
    )
    assert result.failed == 0


def test_python_dash_m_doctest_reads_the_readme_cleanly():
    # fence lines must not be read as expected output
    run = subprocess.run(
        [sys.executable, "-m", "doctest", "README.md"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:]


def _script_blocks(page: Path) -> list[str]:
    return [block for block in PYTHON_BLOCK.findall(page.read_text()) if ">>>" not in block]


SCRIPTS = [(page, index) for page in PAGES for index, _ in enumerate(_script_blocks(page))]


@pytest.mark.parametrize(("page", "index"), SCRIPTS, ids=[f"{_ids(p)}-{i}" for p, i in SCRIPTS])
def test_python_blocks_run(page, index, monkeypatch):
    """Blocks without prompts are test templates: run them, with the user's KL as symkl's."""
    import symkl

    def my_kl(mu_p, logvar_p, mu_q, logvar_q):
        return symkl.kl_diag(mu_p, logvar_p, mu_q, logvar_q, param="logvar")

    package, losses = types.ModuleType("mymodel"), types.ModuleType("mymodel.losses")
    losses.kl_to_prior = symkl.kl_std_normal
    package.losses = losses
    monkeypatch.setitem(sys.modules, "mymodel", package)
    monkeypatch.setitem(sys.modules, "mymodel.losses", losses)
    namespace = {"my_kl": my_kl, "__name__": "docs_example"}
    exec(compile(_script_blocks(page)[index], f"{page.name}[{index}]", "exec"), namespace)
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    for test in tests:
        test()


def test_docs_have_the_pages_the_readme_promises():
    for name in ("quickstart", "api", "numerics", "kl-or-mse", "sampling", "ci", "export"):
        assert (ROOT / "docs" / f"{name}.md").exists(), name
    for name in ("univariate", "diagonal", "std-normal", "fisher", "stable", "full"):
        assert (ROOT / "docs" / "derivations" / f"{name}.md").exists(), name


# --------------------------------------------------------------------------- the site


def _needs_sphinx() -> None:
    missing = [
        name
        for name in ("sphinx", "myst_parser", "numpydoc")
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        pytest.skip(
            f"THE DOCS SITE WAS NOT BUILT: {', '.join(missing)} missing; "
            'install the docs extra: pip install -e ".[docs]" (CI does)'
        )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The HTML site, built with warnings as errors."""
    _needs_sphinx()
    out = tmp_path_factory.mktemp("site")
    run = subprocess.run(
        [*SPHINX, "html", str(ROOT / "docs"), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-5000:]
    return out


def test_the_site_builds_without_warnings_with_the_api_and_every_derivation(site):
    api = (site / "api.html").read_text(encoding="utf-8")
    for name in ("symkl.numeric.kl_diag", "symkl.testing.assert_kl_accurate", "symkl.kl.derive"):
        assert f'id="{name}"' in api, name  # from the docstrings, by autodoc
    for name in ("univariate", "diagonal", "std-normal", "fisher", "stable", "full"):
        page = (site / "derivations" / f"{name}.html").read_text(encoding="utf-8")
        assert page.count('class="math') >= 3, name
    assert (site / "_images" / "accuracy.png").exists()
    assert (site / "_static" / "mathjax" / "tex-chtml.js").exists()  # no network needed


def test_the_site_is_link_checked(tmp_path):
    _needs_sphinx()
    run = subprocess.run(
        [*SPHINX, "linkcheck", str(ROOT / "docs"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, (run.stderr[-3000:], (tmp_path / "output.txt").read_text())


def _screenshot_module():
    path = ROOT / "docs" / "screenshot.py"
    spec = importlib.util.spec_from_file_location("docs_screenshot", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_univariate_page_renders_its_math_in_chromium(site, tmp_path):
    screenshot = _screenshot_module()
    if screenshot.chromium() is None:
        pytest.skip("CHROMIUM IS NOT INSTALLED: the rendered math was not looked at (apt chromium)")
    page = site / "derivations" / "univariate.html"
    formulas, raw = screenshot.render_page(page, tmp_path / "univariate.png")
    assert raw == [] and formulas >= 20, (formulas, raw)
    assert (tmp_path / "univariate.png").stat().st_size > 50_000
    # and the check can fail: without MathJax the page shows raw TeX
    broken = tmp_path / "broken"
    shutil.copytree(site, broken)
    shutil.rmtree(broken / "_static" / "mathjax")
    formulas, raw = screenshot.render_page(
        broken / "derivations" / "univariate.html", tmp_path / "broken.png"
    )
    assert formulas == 0 and "\\frac" in raw


def test_a_broken_link_in_the_readme_fails_the_site_build(tmp_path):
    _needs_sphinx()
    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns("_build"))
    shutil.copytree(ROOT / "derivations", tmp_path / "derivations")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (tmp_path / "README.md").write_text(readme.replace("(docs/sampling.md)", "(docs/gone.md)"))
    run = subprocess.run(
        [*SPHINX, "html", str(tmp_path / "docs"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode != 0 and "gone.md" in run.stderr
