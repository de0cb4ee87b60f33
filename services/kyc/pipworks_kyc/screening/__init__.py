"""Sanctions and PEP screening: list loaders, name normalisation and an in-memory matcher."""
