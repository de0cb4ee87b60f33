"""Identity service: users, credentials, two-factor login, sessions and roles."""

from importlib.metadata import version

__version__ = version("pipworks-identity")
