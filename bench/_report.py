"""Printing: the environment a run measured on, and each bench's figures beside their baselines."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from bench._harness import BenchContext, BenchError, Result, usable_cores
from pipworks_devstack.nats import nats_server_binary

LIBRARIES = ("nats-py", "sqlalchemy", "asyncpg", "protobuf")
NONE = "-"
BASELINE = "raw baseline"
TEXT_COLUMNS = frozenset({BASELINE})


def environment(ctx: BenchContext) -> list[tuple[str, str]]:
    """What the figures depend on: CPUs, load, server and library versions, scale."""
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return [
        ("cpus", f"{usable_cores()} usable of {os.cpu_count()} (load {load})"),
        ("python", f"{platform.python_version()} ({platform.machine()}, {platform.system()})"),
        ("nats-server", _nats_server_version()),
        ("postgresql", _postgres_version(ctx)),
        ("libraries", ", ".join(f"{name} {_version(name)}" for name in LIBRARIES)),
        ("scale", f"{ctx.scale:g}"),
    ]


def print_environment(ctx: BenchContext) -> None:
    facts = environment(ctx)
    width = max(len(name) for name, _ in facts)
    print("Environment")
    for name, value in facts:
        print(f"  {name:<{width}}  {value}")
    print(flush=True)


def print_results(title: str, results: Sequence[Result]) -> None:
    """A throughput table and a latency table; platform rows sit beside their raw baseline."""
    by_key = {result.key: result for result in results}
    missing = {r.baseline for r in results if r.baseline and r.baseline not in by_key}
    if missing:
        raise BenchError(f"{title}: no result for baseline {', '.join(sorted(missing))}")
    print(f"== {title}")
    rates = [r for r in results if r.rate is not None]
    if rates:
        print(
            _table(
                ["throughput", "n", "events/s", BASELINE, "events/s", "ratio"],
                [_rate_row(r, by_key.get(r.baseline or "")) for r in rates],
            )
        )
    waits = [r for r in results if r.latencies]
    if waits:
        if rates:
            print()
        print(
            _table(
                [
                    "latency",
                    "n",
                    "p50 ms",
                    "p99 ms",
                    BASELINE,
                    "p50 ms",
                    "p99 ms",
                    "p50 ratio",
                    "p99 ratio",
                ],
                [_latency_row(r, by_key.get(r.baseline or "")) for r in waits],
            )
        )
    print("  ratio = platform / raw baseline: above 1 is faster for throughput, slower for latency")
    print(flush=True)


def _rate_row(result: Result, base: Result | None) -> list[str]:
    rate, base_rate = result.rate, base.rate if base else None
    return [
        result.label,
        f"{result.count:,}",
        _number(rate),
        base.label if base else "",
        _number(base_rate) if base else "",
        _ratio(rate, base_rate) if base else "",
    ]


def _latency_row(result: Result, base: Result | None) -> list[str]:
    p50, p99 = result.percentile(0.50), result.percentile(0.99)
    base_p50 = base.percentile(0.50) if base else None
    base_p99 = base.percentile(0.99) if base else None
    return [
        result.label,
        f"{result.count:,}",
        _millis(p50),
        _millis(p99),
        base.label if base else "",
        _millis(base_p50) if base else "",
        _millis(base_p99) if base else "",
        _ratio(p50, base_p50) if base else "",
        _ratio(p99, base_p99) if base else "",
    ]


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """Columns sized to fit; labels (TEXT_COLUMNS) left-aligned, figures right-aligned."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    text = {index for index, header in enumerate(headers) if index == 0 or header in TEXT_COLUMNS}
    lines = []
    for cells in [headers, *rows]:
        padded = [
            cell.ljust(width) if index in text else cell.rjust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        lines.append("  " + "  ".join(padded).rstrip())
    lines.insert(1, "  " + "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return NONE if value is None else f"{value:,.0f}"


def _millis(seconds: float | None) -> str:
    if seconds is None:
        return NONE
    millis = seconds * 1000
    return (
        f"{millis:,.2f}" if millis < 10 else f"{millis:,.1f}" if millis < 100 else f"{millis:,.0f}"
    )


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return NONE
    return f"{value / base:.2f}" if value / base < 100 else f"{value / base:,.0f}"


def _version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "?"


def _nats_server_version() -> str:
    try:
        output = subprocess.run(
            [str(nats_server_binary()), "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError, RuntimeError):
        return "?"
    return output.strip().removeprefix("nats-server: ") + ", JetStream file storage"


def _postgres_version(ctx: BenchContext) -> str:
    try:
        version_text, fsync, sync_commit = ctx.postgres.psql(
            "SHOW server_version; SHOW fsync; SHOW synchronous_commit;"
        ).split()[:3]
    except (RuntimeError, ValueError, OSError, subprocess.SubprocessError):
        return "?"
    return f"{version_text} (fsync {fsync}, synchronous_commit {sync_commit})"
