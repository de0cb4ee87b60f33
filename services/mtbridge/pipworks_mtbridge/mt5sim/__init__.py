"""``mt5sim``: a simulator of the MetaTrader 5 manager Web API for development, tests,
demos and benchmarks. Run ``python -m pipworks_mtbridge.mt5sim --help``; start it from
tests and benches with ``pipworks_devstack.mt5sim.Mt5SimProcess``.
"""
