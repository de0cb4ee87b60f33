"""Use cases of the ib service; each takes the dependencies and runs its own transaction."""
