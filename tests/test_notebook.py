"""notebooks/quickstart.ipynb runs end to end (a few training iterations) in a fresh kernel."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"
MISSING = [m for m in ("nbclient", "nbformat", "ipykernel") if importlib.util.find_spec(m) is None]


@pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not installed (bash scripts/install.sh --dev)")
def test_notebook_is_committed_without_outputs():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


@pytest.mark.slow
@pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not installed (bash scripts/install.sh --dev)")
def test_quickstart_runs_end_to_end(tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    iters = 6
    monkeypatch.setenv("QUICKSTART_DIR", str(tmp_path))
    monkeypatch.setenv("QUICKSTART_ITERS", str(iters))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernel's torch: spinning thread pools stall on shared cores
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    finally:
        nbformat.write(nb, tmp_path / "quickstart.executed.ipynb")  # outputs and per-cell timing, to look at

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 6, text[-3000:]  # sample pair, losses, validation, samples, side by side, degradations
    for plot in ("losses", "validation", "samples"):
        assert f"{plot}\n" in text and (tmp_path / "experiments" / "quickstart_x4" / "plots" / f"{plot}.png").is_file()
    assert f"iter: {iters:7d}" in text and "sample_val: model" in text and "not drawn" not in text
    assert (tmp_path / "experiments" / "quickstart_x4" / "models" / "net_g_latest.pth").is_file()
    assert (tmp_path / "datasets" / "sample" / "train_hr.lmdb" / "data.mdb").is_file()
    assert (tmp_path / "experiments" / "quickstart_x4" / "plots" / "degradations.png").is_file()
