"""Execute tfgen's teaching notebooks, in place, keeping their outputs.

    python notebooks/execute.py                      # every notebook, full run, outputs written back
    python notebooks/execute.py 01_gan.ipynb         # just these
    python notebooks/execute.py --smoke --check      # what the tests do: TFGEN_SMOKE=1, nothing written

The notebooks are committed *with* the outputs of a full (non-smoke) run, so
that they can be read, pictures included, without running them; this script is
how those outputs are made. It keeps them small and stable: no execution
timestamps, figures as PNG only, and `metadata.tfgen.smoke` records which kind
of run produced them (the tests refuse committed smoke outputs).

The kernel is always the interpreter running this script (ipykernel's built-in
"python3" spec, which uses `sys.executable`), never another Jupyter kernel
installed on the machine: the notebooks test this environment's tfgen.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SMOKE_ENV = "TFGEN_SMOKE"


def notebooks(names=None) -> list[Path]:
    """The notebooks in this directory (or those named), in order."""
    if not names:
        return sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
    paths = [Path(n) if Path(n).exists() else HERE / n for n in names]
    for p in paths:
        if not p.exists():
            raise SystemExit(f"no notebook {p}")
    return paths


def kernel_manager():
    """A kernel manager that starts this interpreter's ipykernel, whatever kernelspecs exist elsewhere."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    # No kernel directories: only the native spec is found, and ipykernel builds it from sys.executable.
    specs = KernelSpecManager(kernel_dirs=[], ensure_native_kernel=True)
    return KernelManager(kernel_name="python3", kernel_spec_manager=specs)


def execute(path, smoke: bool = False, write: bool = False, timeout: int = 1800, cwd=None):
    """Run every cell of the notebook at `path`; return the executed notebook.

    smoke: set TFGEN_SMOKE=1 in the kernel (tiny data, one epoch: seconds, not minutes).
    write: save the executed notebook (outputs included) back to `path`.
    cwd: the kernel's working directory (default: the notebook's directory).
    Raises `nbclient.exceptions.CellExecutionError` naming the failing cell.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    env = {**os.environ, SMOKE_ENV: "1" if smoke else "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
    km = kernel_manager()
    client = NotebookClient(
        nb,
        km=km,
        timeout=timeout,
        record_timing=False,
        # TensorFlow's C++ start-up chatter (CUDA probes) goes to the OS-level stderr;
        # keep it in the terminal instead of the notebook's outputs.
        extra_arguments=["--IPKernelApp.capture_fd_output=False"],
        resources={"metadata": {"path": str(cwd or path.parent)}},
    )
    client.execute(env=env)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["tfgen"] = {"smoke": bool(smoke)}
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    if write:
        nbformat.validate(nb)
        nbformat.write(nb, path)
    return nb


def output_bytes(nb) -> int:
    """Total size of a notebook's outputs (mostly PNG figures), in bytes."""
    import json

    return sum(len(json.dumps(o)) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebook files (default: all in notebooks/)")
    parser.add_argument("--smoke", action="store_true", help=f"run with {SMOKE_ENV}=1 (implies --check)")
    parser.add_argument("--check", action="store_true", help="execute only; do not write outputs back")
    args = parser.parse_args(argv)
    for path in notebooks(args.notebooks):
        start = time.perf_counter()
        nb = execute(path, smoke=args.smoke, write=not (args.check or args.smoke))
        print(f"{path.name}: {time.perf_counter() - start:.0f} s, outputs {output_bytes(nb) / 1e3:.0f} kB"
              + ("" if args.check or args.smoke else ", written"), flush=True)


if __name__ == "__main__":
    sys.exit(main())
