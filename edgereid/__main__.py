"""``python -m edgereid`` is the ``edgereid`` command."""

import sys

from edgereid.cli import main

sys.exit(main())
