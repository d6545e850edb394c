"""``python -m fastae``: the same command line as the ``fastae`` script."""

from .cli import main

raise SystemExit(main())
