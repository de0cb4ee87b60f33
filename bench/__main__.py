"""``python -m bench [NAME ...] [--quick | --scale X] [--results PATH] [--list]``.

Every public module of the ``bench`` package is a bench (see the package docstring);
with no NAME all of them run, in name order, against one PostgreSQL and one nats-server
started for the run and always stopped at the end, Ctrl-C included. Exit status: 0 when
every bench ran, 1 when one failed, 2 on bad arguments, 130 when interrupted.

A run of every bench (``make bench``) ends by writing all its figures to
``bench/results.md``, overwriting it. A run of only some benches leaves that file alone
(it would replace the full picture with a part of it) unless ``--results PATH`` asks for
a file; that file then names the benches that ran. An interrupted run writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import pkgutil
import signal
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, ModuleType

import bench
from bench._harness import (
    STOP_SIGNALS,
    BenchContext,
    BenchError,
    Result,
    infrastructure,
    scale_from,
    take_notes,
)
from bench._report import (
    BenchOutcome,
    environment,
    print_environment,
    print_results,
    render_markdown,
)
from pipworks_devstack import NatsError, PostgresError
from pipworks_platform.logging import configure_logging
from pipworks_platform.tracing import configure_tracing, shutdown_tracing

DESCRIPTION = "Run the Pipworks benches: each figure beside a raw baseline from the same run."
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
RESULTS = Path(__file__).with_name("results.md")


@dataclass(frozen=True)
class Bench:
    """A discovered bench module."""

    name: str
    title: str
    run: Callable[[BenchContext], Awaitable[list[Result]]]


def discover() -> dict[str, Bench]:
    """Every public module of the package that defines ``async def run(ctx)``."""
    found: dict[str, Bench] = {}
    for info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{bench.__name__}.{info.name}")
        run = getattr(module, "run", None)
        if not inspect.iscoroutinefunction(run):
            raise BenchError(f"bench module {module.__name__} has no `async def run(ctx)`")
        found[info.name] = Bench(info.name, _title(module), run)
    return found


def _title(module: ModuleType) -> str:
    return (module.__doc__ or "").strip().split("\n", 1)[0] or module.__name__


def parse_args(argv: Sequence[str] | None, available: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=DESCRIPTION)
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benches to run (default all): {', '.join(available)}",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a smoke run at 1/10 scale")
    size.add_argument("--scale", type=_positive, help="multiply every count (env BENCH_SCALE)")
    parser.add_argument(
        "--results",
        type=Path,
        metavar="PATH",
        help="write the figures as markdown to PATH (a run of every bench writes bench/results.md)",
    )
    parser.add_argument("--list", action="store_true", help="list the benches and exit")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in available]
    if unknown:
        parser.error(f"unknown bench {', '.join(unknown)}; available: {', '.join(available)}")
    return args


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


async def run_benches(
    ctx: BenchContext, selected: Sequence[Bench], outcomes: list[BenchOutcome] | None = None
) -> int | None:
    """Run the benches; return how many failed, or None when interrupted.

    Each bench's figures and notes are appended to ``outcomes`` when given.

    SIGINT and SIGTERM cancel this task, so every bench unwinds in order (stopping its
    relay and consumers, dropping its database) while the event loop still runs.
    """
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    assert main_task is not None
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, main_task.cancel)
    try:
        return await _run_each(ctx, selected, [] if outcomes is None else outcomes)
    except asyncio.CancelledError:
        return None
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        _raise_on_sigterm()


async def _run_each(
    ctx: BenchContext, selected: Sequence[Bench], outcomes: list[BenchOutcome]
) -> int:
    failures = 0
    for item in selected:
        started = time.perf_counter()
        take_notes()  # a note belongs to the bench that printed it
        try:
            results = await item.run(ctx)
            print_results(f"{item.name}: {item.title}", results)
        except Exception:
            failures += 1
            print(f"== {item.name}: FAILED", flush=True)
            traceback.print_exc()
            outcomes.append(BenchOutcome(item.name, item.title, failed=True))
            continue
        seconds = time.perf_counter() - started
        print(f"   ({item.name} took {seconds:.0f}s)\n", flush=True)
        notes = tuple(take_notes())
        outcomes.append(BenchOutcome(item.name, item.title, tuple(results), notes, seconds=seconds))
    return failures


def _raise_on_sigterm() -> None:
    """Outside the event loop SIGTERM raises KeyboardInterrupt, as Ctrl-C does."""
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    try:
        benches = discover()
        args = parse_args(argv, list(benches))
        scale = scale_from(args.quick, args.scale)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.list:
        for item in benches.values():
            print(f"{item.name:<24} {item.title}")
        return 0
    selected = [benches[name] for name in args.names] or list(benches.values())
    results_path = results_target(args.results, ran_all=len(selected) == len(benches))
    configure_logging("bench", "WARNING", stream=sys.stderr)
    tracing = configure_tracing("bench", "0")  # as in services: spans recorded, then dropped
    _raise_on_sigterm()
    outcomes: list[BenchOutcome] = []
    facts: list[tuple[str, str]] = []
    try:
        with infrastructure(scale) as ctx:
            facts = environment(ctx)
            print_environment(facts)
            failures = asyncio.run(run_benches(ctx, selected, outcomes))
    except KeyboardInterrupt:
        failures = None
    except (PostgresError, NatsError) as exc:
        print(f"bench: infrastructure failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        shutdown_tracing(tracing)
    if failures is None:
        print("bench: interrupted; servers stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    if results_path is not None:
        write_results(results_path, outcomes, facts, scale, list(benches))
    return EXIT_FAILED if failures else 0


def results_target(explicit: Path | None, *, ran_all: bool) -> Path | None:
    """Where the run's markdown goes: ``--results``, else bench/results.md for a full run."""
    if explicit is not None:
        return explicit
    return RESULTS if ran_all else None


def write_results(
    path: Path,
    outcomes: Sequence[BenchOutcome],
    facts: Sequence[tuple[str, str]],
    scale: float,
    available: Sequence[str],
) -> None:
    text = render_markdown(
        outcomes, facts, generated_at=datetime.now(UTC), scale=scale, available=available
    )
    path.write_text(text, encoding="utf-8")
    print(f"bench: figures written to {path}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
