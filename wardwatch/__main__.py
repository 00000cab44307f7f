"""``python -m wardwatch``: the same as the ``wardwatch`` command."""

import sys

from wardwatch.cli import main

sys.exit(main())
