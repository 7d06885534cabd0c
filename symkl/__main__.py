"""``python -m symkl``: the command line."""

import os
import sys

from symkl.cli import main

# ``python -m`` puts the current directory first on sys.path.  symkl is imported by now;
# drop that entry so that a ./torch.py (or any file named like a module symkl or a
# checked --function imports) is never picked up from wherever the command runs.
if sys.path and not sys.flags.safe_path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

sys.exit(main())
