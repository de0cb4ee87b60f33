"""Reporting: the environment a run measured on, each bench's figures beside their
baselines on the terminal, and the same figures as ``bench/results.md``."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version

from bench._harness import QUICK_SCALE, BenchContext, BenchError, Result, usable_cores
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


def print_environment(facts: Sequence[tuple[str, str]]) -> None:
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
    amounts = [r for r in results if r.value is not None]
    if amounts:
        if rates or waits:
            print()
        print(
            _table(
                ["measure", "n", "value", "unit", BASELINE, "value", "ratio"],
                [_quantity_row(r, by_key.get(r.baseline or "")) for r in amounts],
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


def _quantity_row(result: Result, base: Result | None) -> list[str]:
    return [
        result.label,
        f"{result.count:,}" if result.count else "",
        _amount(result.value),
        result.unit,
        base.label if base else "",
        _amount(base.value) if base else "",
        _ratio(result.value, base.value) if base else "",
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


def _amount(value: float | None) -> str:
    if value is None:
        return NONE
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


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


# -- bench/results.md ------------------------------------------------------------------


@dataclass(frozen=True)
class BenchOutcome:
    """What one bench of a run produced, for :func:`render_markdown`."""

    name: str
    title: str
    results: tuple[Result, ...] = ()
    notes: tuple[str, ...] = ()
    failed: bool = False
    seconds: float | None = None


def render_markdown(
    outcomes: Sequence[BenchOutcome],
    facts: Sequence[tuple[str, str]],
    *,
    generated_at: datetime,
    scale: float,
    available: Sequence[str],
) -> str:
    """The run as markdown: provenance, environment, one table of every figure, notes.

    ``available`` names every bench there is, so a run of only some of them says so.
    """
    ran = [o.name for o in outcomes]
    missing = [name for name in available if name not in ran]
    lines = [
        "# Pipworks bench results",
        "",
        "_Generated by `make bench` (`python -m bench`) — do not edit by hand; run it again._",
        "",
        f"- date: {generated_at.strftime('%Y-%m-%d %H:%M UTC')}",
        f"- scale: {_scale_text(scale)}",
        f"- benches: {', '.join(ran) or 'none'}"
        + (f" (not run: {', '.join(missing)})" if missing else " (all)"),
        "",
        "## Environment",
        "",
        "| | |",
        "|---|---|",
        *(f"| {_cell(name)} | {_cell(value)} |" for name, value in facts),
        "",
        "## Figures",
        "",
        "Ratio = platform / raw baseline from the same run: above 1 is faster for "
        "throughput, slower for latency.",
        "",
        "| bench | measurement | n | figure | baseline | baseline figure | ratio |",
        "|---|---|--:|--:|---|--:|--:|",
    ]
    for outcome in outcomes:
        if outcome.failed:
            cells = [outcome.name, "**failed** (see the run's output)", "", "", "", "", ""]
            lines.append("| " + " | ".join(cells) + " |")
            continue
        by_key = {r.key: r for r in outcome.results}
        for result in outcome.results:
            base = by_key.get(result.baseline or "")
            figure, base_figure, ratio = _markdown_figures(result, base)
            count = f"{result.count:,}" if result.count else ""
            cells = [outcome.name, result.label, count, figure]
            cells += [base.label if base else "", base_figure, ratio]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    noted = [o for o in outcomes if o.notes or o.seconds is not None]
    if noted:
        lines += ["", "## Notes", ""]
        for outcome in noted:
            took = f" (took {outcome.seconds:.0f} s)" if outcome.seconds is not None else ""
            lines += [f"### {outcome.name}: {outcome.title}{took}", ""]
            lines += [f"- {text}" for text in outcome.notes]
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _markdown_figures(result: Result, base: Result | None) -> tuple[str, str, str]:
    """(figure, baseline figure, ratio) as text for one row."""
    if result.rate is not None:
        base_rate = base.rate if base else None
        return (
            f"{_number(result.rate)}/s",
            f"{_number(base_rate)}/s" if base else "",
            _ratio(result.rate, base_rate) if base else "",
        )
    if result.latencies:
        p50, p99 = result.percentile(0.50), result.percentile(0.99)
        figure = f"p50 {_millis(p50)} ms, p99 {_millis(p99)} ms"
        if base is None:
            return figure, "", ""
        b50, b99 = base.percentile(0.50), base.percentile(0.99)
        return (
            figure,
            f"p50 {_millis(b50)} ms, p99 {_millis(b99)} ms",
            f"p50 {_ratio(p50, b50)}, p99 {_ratio(p99, b99)}",
        )
    figure = f"{_amount(result.value)} {result.unit}".strip()
    if base is None:
        return figure, "", ""
    return (
        figure,
        f"{_amount(base.value)} {base.unit}".strip(),
        _ratio(result.value, base.value),
    )


def _scale_text(scale: float) -> str:
    if scale == QUICK_SCALE:
        return (
            f"{scale:g} (`--quick`: every count at 1/10 of a full run; a smoke run, "
            "not the headline figures)"
        )
    if scale == 1:
        return "1 (full run)"
    return f"{scale:g} (every count multiplied by {scale:g})"


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")
