"""scripts/demo/learning.ipynb runs top to bottom (at a small size) in a fresh kernel: it uses the
index, its ef_search sweep reaches recall@10 >= 0.95, and it draws the recall/latency plot. Only
the optional real-embedding section may report itself skipped, and only when its packages or
database are absent."""
import os
import pathlib
import re

import nbclient
import nbformat

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "scripts" / "demo" / "learning.ipynb"


def text_of(cell):
    return "".join(out.get("text", "") for out in cell.get("outputs", []) if out.get("output_type") == "stream")


def test_notebook_runs_top_to_bottom(tmp_path, extension_path, monkeypatch):
    monkeypatch.setenv("LEARNING_DB", str(tmp_path / "learning.duckdb"))
    monkeypatch.setenv("LEARNING_ROWS", "3000")
    monkeypatch.setenv("HNSW_EXTENSION", str(extension_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # The kernel starts in the repository root, where `scripts` imports as a package.
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}}).execute()

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    output = "\n".join(text_of(cell) for cell in code)
    assert "plan uses the index: True" in output
    sweep = [(int(ef), float(recall)) for ef, recall in re.findall(r"^ +(\d+) +([01]\.\d{3}) ", output, re.M)]
    assert [ef for ef, _ in sweep] == [10, 16, 32, 64, 128, 256], output
    assert sweep[-1][1] >= 0.95, sweep
    assert any("image/png" in out.get("data", {}) for cell in code for out in cell.get("outputs", []))

    optional = text_of(code[-1])
    try:
        import sentence_transformers  # noqa: F401
        has_packages = True
    except ImportError:
        has_packages = False
    default_docs = ROOT / "build" / "stdlib_docs.duckdb"
    if has_packages and default_docs.exists() and "EMBEDDINGS_DB" not in os.environ:
        assert "skipped" not in optional and "read a file line by line:" in optional
    else:
        assert optional.startswith("skipped: needs sentence-transformers")
