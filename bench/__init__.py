"""Pipworks benchmarks: ``make bench`` / ``python -m bench [NAME ...] [--quick]``.

Every public module of this package (a name not starting with ``_``) is one bench and
exposes::

    async def run(ctx: BenchContext) -> list[Result]: ...

``ctx`` holds the shared infrastructure (a real PostgreSQL and a real nats-server in a
temporary directory) and the scale factor. A bench measures each platform figure next to
a raw baseline from the same run; a ``Result`` names its baseline by key and the runner
prints both with their ratio, and a run of every bench writes them all, with the notes
each bench printed (``note``), to ``bench/results.md``. Timings are reported, never
asserted: machines are shared and noisy.
"""

from bench._harness import BenchContext, BenchError, Result

__all__ = ["BenchContext", "BenchError", "Result"]
