"""README blocks are filled from benchmarks/results/*.md, their relative links rewritten to the README."""

from pathlib import Path

from benchmarks.render_readme import render


def test_a_block_gets_its_results_file_with_links_relative_to_the_readme(tmp_path):
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    (results / "table.md").write_text("| a | [grid](samples/a.png) | [paper](https://x.org/p) | [top](#top) |\n")
    text = "intro\n<!-- BEGIN table -->\nold\n<!-- END table -->\n<!-- BEGIN gone -->\nkept\n<!-- END gone -->\n"
    new, filled, missing = render(text, results, Path(tmp_path))
    assert filled == ["table"] and missing == ["gone"]
    assert "[grid](benchmarks/results/samples/a.png)" in new
    assert "[paper](https://x.org/p)" in new and "[top](#top)" in new
    assert "old" not in new and "kept" in new
