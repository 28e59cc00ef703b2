"""Every notebook in docs/notebooks executes from top to bottom (so none of them rots)."""

from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "docs" / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    # The comparison passes and the plot produced an image.
    assert any("image/png" in o.get("data", {}) for o in outputs)
    last = nb.cells[-1].outputs[0]["data"]["text/plain"]
    assert last.startswith("(True,"), last


def test_there_is_a_notebook():
    assert NOTEBOOKS, "docs/notebooks should hold at least one notebook"
