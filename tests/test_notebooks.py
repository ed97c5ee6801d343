from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from models.settings import PROJECT_DIR


def _execute(name: str, cwd: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(PROJECT_DIR / "notebooks" / name, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return notebook


def test_notebook_00_corpus_executes(tmp_path: Path) -> None:
    notebook = _execute("00-corpus.ipynb", tmp_path)
    printed = "".join(
        out.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
    )
    assert "rows," in printed
    assert (tmp_path / "corpus" / "train.parquet").is_file()
