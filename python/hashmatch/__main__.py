"""``python -m hashmatch``: the hashmatch command."""

import sys

from .cli import main

sys.exit(main())
