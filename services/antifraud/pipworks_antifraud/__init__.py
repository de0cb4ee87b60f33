"""Anti-fraud service: streaming rules, behaviour baselines, alerts, cases and restrictions."""

from importlib.metadata import version

__version__ = version("pipworks-antifraud")
