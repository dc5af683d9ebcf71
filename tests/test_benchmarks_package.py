"""benchmarks/ is a package run as `python -m benchmarks.NAME`: read from source, without running a benchmark."""

import ast
import subprocess
from pathlib import Path

import pytest

import benchmarks
from benchmarks.common import run_tfgen

ROOT = Path(benchmarks.__file__).parent
MODULES = sorted(ROOT.glob("*.py"))


def _problems(path: Path, siblings: set) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", None) == "sys":
            found.append(f"{where}: sys.path")
        elif isinstance(node, ast.Import):
            found += [f"{where}: import {a.name} (a sibling: import benchmarks.{a.name})" for a in node.names
                      if a.name in siblings]
        elif isinstance(node, ast.ImportFrom):
            top = (node.module or "").split(".")[0]
            if node.level or top in siblings:
                found.append(f"{where}: from {'.' * node.level}{node.module} (a sibling: from benchmarks...)")
            if top == "tfgen":
                found += [f"{where}: private {node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
        elif (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
              and isinstance(node.value, ast.Name) and node.value.id not in ("self", "cls")):
            found.append(f"{where}: private {node.value.id}.{node.attr}")
    return found


def test_benchmarks_import_each_other_as_a_package_and_use_public_names_only():
    siblings = {path.stem for path in MODULES} - {"__init__"}
    assert {"common", "leaderboard", "throughput"} <= siblings
    assert [problem for path in MODULES for problem in _problems(path, siblings)] == []


def test_the_check_finds_what_it_forbids(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text("import sys\nsys.path.insert(0, '.')\nimport leaderboard\nfrom tfgen.training import _build\n"
                    "from tfgen import bench\nbench._fmt(1)\n")
    assert sorted(p.split(": ", 1)[1].split(" (")[0] for p in _problems(path, {"leaderboard"})) == [
        "import leaderboard", "private bench._fmt", "private tfgen.training._build", "sys.path"]


def test_run_tfgen_appends_the_command_lines_output_to_the_log_and_raises_when_it_fails(tmp_path):
    log = tmp_path / "run.log"
    log.write_text("earlier\n")
    run_tfgen("list", log=log)  # TF-free: a fraction of a second
    text = log.read_text()
    assert text.startswith("earlier\n") and "cvae" in text and "default steps" in text
    with pytest.raises(subprocess.CalledProcessError):
        run_tfgen("no-such-command", log=log)
    assert "no-such-command" in log.read_text()  # argparse's complaint lands in the log too
