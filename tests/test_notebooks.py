"""The teaching notebooks are tested like code.

* `test_notebook_runs[...]` (marked `notebook`; deselect with `-m "not notebook"`)
  executes each notebook end to end with TFGEN_SMOKE=1 in a fresh kernel running
  this interpreter, and fails on any cell error.
* The other tests read the notebook files only (no kernel): notebooks are thin
  clients of the package, they have a smoke switch, and the outputs committed with
  them come from a full run and stay small.
"""

import ast
import importlib.util
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
_spec = importlib.util.spec_from_file_location("notebook_execute", NOTEBOOK_DIR / "execute.py")
execute = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(execute)

NOTEBOOKS = execute.notebooks()
# Cells that reproduce the documents' broken code on purpose carry this tag; only they
# may define functions or classes (tfgen's working code lives in the package).
DOCUMENT_TAG = "document"
MAX_OUTPUT_BYTES = 1_500_000
# Notebooks executed at once, each in its own kernel process. Much of a smoke run is
# single-threaded (imports, tracing), so two kernels use both cores of a CI machine.
WORKERS = int(os.environ.get("TFGEN_NOTEBOOK_WORKERS", "2"))


def read(path):
    return nbformat.read(path, as_version=4)


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_there_are_notebooks():
    names = [p.name for p in NOTEBOOKS]
    assert {"00_documents_corrected.ipynb", "01_gan.ipynb", "02_vae.ipynb"} <= set(names), names


@pytest.fixture(scope="session")
def smoke_runs(request, tmp_path_factory):
    """Execute every selected notebook once in smoke mode, WORKERS at a time: {path: (nb, error, seconds)}."""
    selected = [item.callspec.params["path"] for item in request.session.items
                if getattr(item, "originalname", None) == "test_notebook_runs"]
    # A scratch working directory each: a notebook must not rely on, or write into, the repository.
    cwds = {path: tmp_path_factory.mktemp(path.stem) for path in selected}

    def run(path):
        start = time.perf_counter()
        try:
            return execute.execute(path, smoke=True, write=False, cwd=cwds[path]), None, time.perf_counter() - start
        except Exception as err:  # reported by the notebook's own test
            return None, err, time.perf_counter() - start

    with ThreadPoolExecutor(max_workers=max(1, WORKERS)) as pool:
        return dict(zip(selected, pool.map(run, selected)))


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, smoke_runs):
    """Every cell runs without error in smoke mode, and the notebook draws pictures."""
    nb, error, seconds = smoke_runs[path]
    if error is not None:
        raise error  # nbclient's CellExecutionError names the cell and shows its traceback
    outputs = [o for c in code_cells(nb) for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name} drew no figure"
    print(f"{path.name}: {seconds:.0f} s in smoke mode")


def test_kernel_is_this_interpreter():
    """CI installs ipykernel into a fresh venv; the notebooks must run there, not in some other Jupyter."""
    km = execute.kernel_manager()
    assert km.kernel_spec.argv[0] == sys.executable


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_a_thin_client(path):
    """No model, loss or training-step code in a notebook, except reproductions of the documents' code."""
    for i, cell in enumerate(code_cells(read(path))):
        if DOCUMENT_TAG in cell.metadata.get("tags", []):
            continue
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        tree = ast.parse(source)
        definitions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        defined = [n.name for n in ast.walk(tree) if isinstance(n, definitions)]
        assert not defined, (
            f"{path.name} cell {i} defines {defined}: move the code into the package "
            f"(e.g. tfgen/plotting.py) or, for the documents' own code, tag the cell {DOCUMENT_TAG!r}"
        )
        assert "apply_gradients" not in source, f"{path.name} cell {i} applies gradients: that is a training step"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_has_a_smoke_switch(path):
    source = "\n".join(c.source for c in code_cells(read(path)))
    assert "TFGEN_SMOKE" in source, f"{path.name} never reads TFGEN_SMOKE, so CI cannot shrink it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_outputs_come_from_a_full_run_and_are_small(path):
    nb = read(path)
    outputs = [o for c in code_cells(nb) for o in c.get("outputs", [])]
    if not outputs:
        return  # stripped notebooks are fine too
    assert nb.metadata.get("tfgen", {}).get("smoke") is False, (
        f"{path.name} holds outputs that were not made by a full run: run `python notebooks/execute.py {path.name}`"
    )
    assert not [o for o in outputs if o.output_type == "error"], f"{path.name} was committed with an error"
    size = sum(len(json.dumps(o)) for o in outputs)
    assert size < MAX_OUTPUT_BYTES, f"{path.name} outputs are {size / 1e6:.1f} MB; keep figures small"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name[:2] in {"01", "02", "03", "04", "05"}],
                         ids=lambda p: p.stem)
def test_model_notebook_shows_the_package_train_step(path):
    """The step is read from the package, never re-implemented in the notebook."""
    source = "\n".join(c.source for c in code_cells(read(path)))
    assert "inspect.getsource" in source and "train_step" in source, path.name
