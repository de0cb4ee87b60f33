"""KYC service: requirement templates, applications, documents, screening and review."""

from importlib.metadata import version

__version__ = version("pipworks-kyc")
