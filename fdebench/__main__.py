"""``python -m fdebench``: the command line."""

from fdebench.cli import main

raise SystemExit(main())
