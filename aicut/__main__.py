"""``python -m aicut``: see ``aicut.cli``."""

from aicut.cli import main

raise SystemExit(main())
