"""`python -m tfgen ...`: the same command line as the `tfgen` script."""

import sys

from tfgen.cli import main

sys.exit(main())
