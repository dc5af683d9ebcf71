"""The `tfgen` script's entry point: tfgen's command line without `import tfgen`'s import of Keras.

`import tfgen` imports Keras and every model family (so that `keras.saving.load_model` finds
them). The command line answers `--help`, `list`, `--version` and argument errors from the
families' data files (`tfgen.catalog`) without TensorFlow; being imported first, this module
tells the package so (`tfgen._imported_by_command_line`), and the commands that need the
models import them. `python -m tfgen` is the same command line (`tfgen/__main__.py`).
"""

import sys


def main(argv=None) -> int:
    from tfgen.cli import main as run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
