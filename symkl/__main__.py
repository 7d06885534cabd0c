"""``python -m symkl``: the command line."""

import sys

from symkl.cli import main

sys.exit(main())
