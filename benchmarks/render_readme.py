"""Fill README.md's generated blocks from benchmarks/results/*.md, so no figure is typed by hand.

A block is

    <!-- BEGIN name -->
    ...anything (replaced)...
    <!-- END name -->

and its content becomes the file benchmarks/results/name.md (e.g. `leaderboard`,
written by benchmarks/leaderboard.py), its relative links (`[grid](samples/x.png)`,
relative to that file) rewritten to be relative to the README. Blocks with no such
file are left alone and reported.

    python -m benchmarks.render_readme            # rewrite README.md in place
    python -m benchmarks.render_readme --check    # exit 1 if README.md is out of date (for CI)
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from benchmarks.common import RESULTS, ROOT

BLOCK = re.compile(r"(<!-- BEGIN (?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- END (?P=name) -->)", re.DOTALL)
#: A markdown link or image whose target is a relative path (not a URL, an absolute path or an anchor).
RELATIVE_LINK = re.compile(r"\]\((?![a-z]+:|/|#)([^)\s]+)\)")


def relink(body: str, prefix: str) -> str:
    """`body` with each relative link target put under `prefix` (`samples/x.png` → `PREFIX/samples/x.png`)."""
    return RELATIVE_LINK.sub(lambda m: f"]({prefix}/{m.group(1)})", body) if prefix not in ("", ".") else body


def render(text: str, results_dir: Path, readme_dir: Path | None = None) -> tuple[str, list[str], list[str]]:
    """Return (new text, names filled, names without a results file). Links in the results files are made
    relative to `readme_dir` (default: the repository root)."""
    filled, missing = [], []
    prefix = Path(os.path.relpath(results_dir, readme_dir or ROOT)).as_posix()

    def replace(match):
        name = match.group("name")
        source = results_dir / f"{name}.md"
        if not source.exists():
            missing.append(name)
            return match.group(0)
        filled.append(name)
        body = relink(source.read_text(encoding="utf-8"), prefix)
        if not body.endswith("\n"):
            body += "\n"
        return match.group(1) + body + match.group(4)

    return BLOCK.sub(replace, text), filled, missing


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--readme", default=str(ROOT / "README.md"))
    p.add_argument("--results", default=str(RESULTS))
    p.add_argument("--check", action="store_true", help="do not write; exit 1 if README.md would change")
    args = p.parse_args(argv)

    readme = Path(args.readme)
    text = readme.read_text(encoding="utf-8")
    new, filled, missing = render(text, Path(args.results), readme.resolve().parent)
    for name in missing:
        print(f"render_readme: no {Path(args.results) / (name + '.md')}; block {name!r} left as it is",
              file=sys.stderr)
    if args.check:
        if new != text:
            print(f"render_readme: {readme} is out of date; run python -m benchmarks.render_readme", file=sys.stderr)
            return 1
        return 0
    if new != text:
        from tfgen.io import write_text

        write_text(readme, new)
    print(f"{readme}: filled {', '.join(filled) or 'no blocks'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
