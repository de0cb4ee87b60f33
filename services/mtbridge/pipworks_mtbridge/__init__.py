"""MetaTrader bridge: trading accounts, balance operations and the deal mirror."""

from importlib.metadata import version

__version__ = version("pipworks-mtbridge")
