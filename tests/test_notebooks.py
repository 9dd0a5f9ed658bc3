"""The notebooks run top to bottom on a small store and are committed without outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from truth_store import truth_store

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="session")
def nb_store(tmp_path_factory):
    store, _ = truth_store(tmp_path_factory.mktemp("nb") / "store", 24, 3, seed=3, curves=True)
    return store


def test_the_four_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == [
        "01-explore-cohort.ipynb",
        "02-asymmetry-and-alignment.ipynb",
        "03-intervention-effects.ipynb",
        "04-curves-and-spm.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    import nbformat  # here, not at collection: its jsonschema import costs every worker ~2 s

    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_a_small_store(path, nb_store, monkeypatch, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("CXLAB_STORE", str(nb_store.path))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors
    # every code cell ran, and the figures were drawn
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")
    images = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "image/png" in o.get("data", {})
    ]
    assert images, f"{path.name} drew no figure"
