"""``python -m offline.benchmark``: see :mod:`offline.benchmark.cli`."""

import sys

from offline.benchmark.cli import main

sys.exit(main())
