"""``python -m imaml_core`` is the ``imaml`` command line."""

import sys

from imaml_core.cli import main

sys.exit(main())
