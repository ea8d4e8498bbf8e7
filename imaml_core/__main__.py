"""``python -m imaml_core`` is the ``imaml`` command line."""

import sys

from .cli import main

sys.exit(main())
