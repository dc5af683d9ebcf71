"""Fill README.md's generated blocks from benchmarks/results/*.md, so no figure is typed by hand.

A block is

    <!-- BEGIN name -->
    ...anything (replaced)...
    <!-- END name -->

and its content becomes the file benchmarks/results/name.md (e.g. `leaderboard`,
written by benchmarks/leaderboard.py). Blocks with no such file are left alone
and reported.

    python -m benchmarks.render_readme            # rewrite README.md in place
    python -m benchmarks.render_readme --check    # exit 1 if README.md is out of date (for CI)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from benchmarks.common import RESULTS, ROOT

BLOCK = re.compile(r"(<!-- BEGIN (?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- END (?P=name) -->)", re.DOTALL)


def render(text: str, results_dir: Path) -> tuple[str, list[str], list[str]]:
    """Return (new text, names filled, names without a results file)."""
    filled, missing = [], []

    def replace(match):
        name = match.group("name")
        source = results_dir / f"{name}.md"
        if not source.exists():
            missing.append(name)
            return match.group(0)
        filled.append(name)
        body = source.read_text(encoding="utf-8")
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
    new, filled, missing = render(text, Path(args.results))
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
