"""``python -m hashmatch.cli``: the hashmatch command."""

import sys

from . import main

sys.exit(main())
