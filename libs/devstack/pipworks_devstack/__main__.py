"""``python -m pipworks_devstack run`` (what ``make run`` calls)."""

from pipworks_devstack.cli import main

raise SystemExit(main())
