"""``python -m catnet`` is the ``catnet`` command."""

import sys

from .cli import main

sys.exit(main())
