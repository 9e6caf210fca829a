"""``python -m gaplab``: the package's command line (:mod:`gaplab.cli`)."""

import sys

from gaplab.cli import main

if __name__ == "__main__":
    sys.exit(main())
