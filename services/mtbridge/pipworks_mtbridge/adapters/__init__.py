"""Adapters: the bridge's tables and repositories, and the trading platforms."""
