"""``python -m pipworks_mtbridge.mt5sim``; also the ``mt5sim`` console script's target."""

from pipworks_mtbridge.mt5sim.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
