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


def _nbformat():
    """``nbformat``, imported without ``rfc3987_syntax``.

    ``jsonschema`` (which nbformat validates with) imports ``rfc3987_syntax`` for its "iri"
    format check if it is installed, and that builds a lark grammar: 2.3 s of the 2.8 s
    ``import nbformat`` (``python -X importtime``). nbformat validates without a format
    checker, so no format is checked either way; the module is hidden only while
    nbformat and jsonschema are imported.
    """
    import sys

    if "nbformat" not in sys.modules and "rfc3987_syntax" not in sys.modules:
        sys.modules["rfc3987_syntax"] = None  # an ImportError for this one import
        try:
            import nbformat
        finally:
            del sys.modules["rfc3987_syntax"]
    import nbformat

    return nbformat


def test_the_four_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == [
        "01-explore-cohort.ipynb",
        "02-asymmetry-and-alignment.ipynb",
        "03-intervention-effects.ipynb",
        "04-curves-and-spm.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    nbformat = _nbformat()  # here, not at collection: its jsonschema import costs every worker ~2 s
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, path.name


#: Run in the kernel before each notebook: its names (and IPython's output history) are
#: removed and its figures closed, so a notebook that leans on a name, import or figure of
#: the notebook before it fails as it would in a fresh kernel.
_RESET = "%reset -f\nimport matplotlib.pyplot\nmatplotlib.pyplot.close('all')\n%reset -f"


@pytest.fixture(scope="module")
def kernel(nb_store, tmp_path_factory):
    """One kernel for the four notebooks, started with ``CXLAB_STORE`` at the small store.

    A kernel start and its imports (pandas, matplotlib, seaborn, cxlab) were ~2.5 s of CPU
    of each notebook's run; the notebooks read the store through ``CXLAB_STORE`` and write
    no files, and :data:`_RESET` clears what one notebook leaves before the next.
    """
    import os

    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="python3")
    km.start_kernel(
        cwd=str(tmp_path_factory.mktemp("nb-kernel")),
        env={**os.environ, "CXLAB_STORE": str(nb_store.path)},
    )
    yield km
    km.shutdown_kernel(now=True)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_a_small_store(path, kernel):
    from nbclient import NotebookClient

    nbformat = _nbformat()
    reset = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(_RESET)])
    NotebookClient(reset, km=kernel, timeout=60).execute()
    assert not [o for o in reset.cells[0].outputs if o.output_type == "error"], reset.cells[0]
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, km=kernel, timeout=120).execute()
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
