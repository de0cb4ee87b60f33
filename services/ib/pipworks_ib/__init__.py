"""IB service: the partner tree, referral attribution, commission plans, ledger and payouts."""

from importlib.metadata import version

__version__ = version("pipworks-ib")
