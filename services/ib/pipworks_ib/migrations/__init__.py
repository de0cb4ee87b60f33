"""Alembic revisions of the ib database.

The platform's own branch (outbox and inbox tables) is applied alongside these; the
service's first revision starts a branch labelled "ib".
"""
