"""Generated notebooks: valid nbformat, reproducible, and they run top to bottom in a kernel."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from symkl.kl import available_derivations

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", available_derivations())
def test_notebook_is_valid_and_has_a_cell_per_step(name):
    from symkl import derive

    notebook = nbformat.read(ROOT / "derivations" / f"{name}.ipynb", as_version=4)
    nbformat.validate(notebook)
    steps = [c for c in notebook.cells if c.cell_type == "markdown" and "**Step " in c.source]
    assert len(steps) == len(derive(name).steps)
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code")
    assert "cross-check" in [c.get("id") for c in notebook.cells]


@pytest.mark.parametrize("name", available_derivations())
def test_notebook_executes_in_a_jupyter_kernel(name, tmp_path):
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.read(ROOT / "derivations" / f"{name}.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    client.execute()
    outputs = "".join(
        output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", [])
    )
    assert "PROVED" in outputs and "NOT" not in outputs.split("PROVED in")[-1][:20]
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors


def test_a_wrong_cross_check_fails_in_the_kernel(tmp_path):
    """The executed checks can fail: a notebook asserting a wrong value raises in the kernel."""
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.read(ROOT / "derivations" / "univariate.ipynb", as_version=4)
    cross = next(c for c in notebook.cells if c.get("id") == "cross-check")
    cross.source = cross.source.replace("numeric = float(", "numeric = 1.01 * float(")
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3")
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="AssertionError"):
        client.execute()


def test_report_check_names_the_labels_that_exist():
    from symkl import derive

    report = derive("univariate").verify()
    last = report.checks[-1]
    assert report.check(last.label) is last
    with pytest.raises(KeyError, match="labels:"):
        report.check("no-such-step")
