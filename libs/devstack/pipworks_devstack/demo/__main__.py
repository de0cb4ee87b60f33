"""``python -m pipworks_devstack.demo``: see ``cli``."""

from pipworks_devstack.demo.cli import main

raise SystemExit(main())
