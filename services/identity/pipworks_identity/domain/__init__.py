"""The identity domain: entities, value objects and rules, free of I/O.

Nothing here talks to a database, the network or the clock; callers pass ``now`` in.
The only imports beyond the standard library are the platform's transport-agnostic
errors, which carry the stable reasons clients branch on.
"""
