"""Adapters of the kyc service: tables, repositories, blob stores, providers."""
