"""examples/quickstart.ipynb: committed without outputs, and runs end to end on synthetic data
with every figure shown inline."""

import re
import shutil
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


def test_the_notebook_is_committed_without_outputs():
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert "CIFAR10 = None" in code[0].source  # synthetic data unless the user sets one variable


@pytest.mark.slow
def test_the_notebook_runs_end_to_end_with_inline_figures(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(shutil.copy(NOTEBOOK, tmp_path), as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()  # raises on a failing cell
    outputs = {cell.source.splitlines()[-1]: cell.outputs for cell in notebook.cells
               if cell.cell_type == "code"}
    for last_line in ('figures["curves.png"]', 'figures["kernels.png"]', 'figures["confusion.png"]'):
        assert any("image/png" in o.get("data", {}) for o in outputs[last_line]), last_line
    text = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                   + o.get("data", {}).get("text/html", "")
                   for cell_outputs in outputs.values() for o in cell_outputs)
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # Keras' summary is coloured
    assert "Total params: 2,703,242" in text and "test accuracy" in text and "predicted " in text
    chatter = ("absl::InitializeLog", "cuInit", "cudart_stub", "oneDNN")
    assert [line for line in text.splitlines() if any(c in line for c in chatter)] == []
    assert (tmp_path / "cnn3.tflite").stat().st_size > 1_000_000
    assert len(list((tmp_path / "runs").iterdir())) == 1
    # Restart & Run All in the same folder: the finished run is returned, its model loaded
    again = nbformat.read(tmp_path / NOTEBOOK.name, as_version=4)
    NotebookClient(again, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert len(list((tmp_path / "runs").iterdir())) == 1
