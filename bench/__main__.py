"""``python -m bench [NAME ...] [--quick | --scale X] [--list]``: run the benches.

Every public module of the ``bench`` package is a bench (see the package docstring);
with no NAME all of them run, in name order, against one PostgreSQL and one nats-server
started for the run and always stopped at the end, Ctrl-C included. Exit status: 0 when
every bench ran, 1 when one failed, 2 on bad arguments, 130 when interrupted.
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
from types import FrameType, ModuleType

import bench
from bench._harness import (
    STOP_SIGNALS,
    BenchContext,
    BenchError,
    Result,
    infrastructure,
    scale_from,
)
from bench._report import print_environment, print_results
from pipworks_devstack import NatsError, PostgresError
from pipworks_platform.logging import configure_logging
from pipworks_platform.tracing import configure_tracing, shutdown_tracing

DESCRIPTION = "Run the Pipworks benches: each figure beside a raw baseline from the same run."
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


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


async def run_benches(ctx: BenchContext, selected: Sequence[Bench]) -> int | None:
    """Run the benches; return how many failed, or None when interrupted.

    SIGINT and SIGTERM cancel this task, so every bench unwinds in order (stopping its
    relay and consumers, dropping its database) while the event loop still runs.
    """
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    assert main_task is not None
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, main_task.cancel)
    try:
        return await _run_each(ctx, selected)
    except asyncio.CancelledError:
        return None
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        _raise_on_sigterm()


async def _run_each(ctx: BenchContext, selected: Sequence[Bench]) -> int:
    failures = 0
    for item in selected:
        started = time.perf_counter()
        try:
            results = await item.run(ctx)
        except Exception:
            failures += 1
            print(f"== {item.name}: FAILED", flush=True)
            traceback.print_exc()
            continue
        print_results(f"{item.name}: {item.title}", results)
        print(f"   ({item.name} took {time.perf_counter() - started:.0f}s)\n", flush=True)
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
    configure_logging("bench", "WARNING", stream=sys.stderr)
    tracing = configure_tracing("bench", "0")  # as in services: spans recorded, then dropped
    _raise_on_sigterm()
    try:
        with infrastructure(scale) as ctx:
            print_environment(ctx)
            failures = asyncio.run(run_benches(ctx, selected))
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
    return EXIT_FAILED if failures else 0


if __name__ == "__main__":
    sys.exit(main())
