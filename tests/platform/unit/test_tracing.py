"""Tracing set-up: without an exporter, traces are not sampled but still identified."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
import json
from opentelemetry import trace
from pipworks_platform.tracing import configure_tracing, inject_trace_headers
configure_tracing("probe", "1")
with trace.get_tracer("probe").start_as_current_span("work") as span:
    ctx = span.get_span_context()
    print("PROBE " + json.dumps({"recording": span.is_recording(), "valid": ctx.is_valid,
                      "headers": inject_trace_headers({})}))
"""


def _probe(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    [line] = [row for row in result.stdout.splitlines() if row.startswith("PROBE ")]
    return json.loads(line.removeprefix("PROBE "))


def _sampled(traceparent: str) -> bool:
    return bool(int(traceparent.rsplit("-", 1)[1], 16) & 0x01)


def test_without_an_exporter_spans_are_not_recorded_but_trace_ids_flow():
    probe = _probe()
    assert probe["recording"] is False
    assert probe["valid"] is True
    assert not _sampled(probe["headers"]["traceparent"])  # propagated, not sampled


def test_with_an_exporter_spans_are_recorded_and_sampled():
    probe = _probe(OTEL_TRACES_EXPORTER="console")
    assert probe["recording"] is True
    assert _sampled(probe["headers"]["traceparent"])


def test_an_explicit_sampler_choice_is_respected():
    probe = _probe(OTEL_TRACES_SAMPLER="always_on")
    assert probe["recording"] is True
