"""``python -m mlci``: the same as the ``mlci`` command."""

from __future__ import annotations

import sys

from mlci.cli import main

sys.exit(main())
