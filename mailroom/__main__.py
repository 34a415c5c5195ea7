"""``python -m mailroom``: the same as the ``mailroom`` command."""

import sys

from mailroom.cli.main import main

sys.exit(main())
