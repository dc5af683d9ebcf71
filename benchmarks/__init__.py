"""The measurements behind the README's tables, each a module run from the repository's root:

    python -m benchmarks.NAME --help

Each writes its results under benchmarks/results/ (JSON with every figure, and the Markdown
table that `python -m benchmarks.render_readme` copies into README.md). What they share (the
results directory, how a results file names data and the command that wrote it) is in
`benchmarks.common`; a benchmark that uses another's code imports it as `benchmarks.NAME`.
They use tfgen's public names only.
"""
