"""`python -m services` is the `gamify` command."""

import sys

from services.cli import main

sys.exit(main())
