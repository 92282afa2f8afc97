"""Allows ``python -m varl``."""

import sys

from varl.cli import main

sys.exit(main())
