"""Tracing set-up: without an exporter, traces are not sampled but still identified."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from opentelemetry import trace

from pipworks_platform.tracing import extract_trace_context, inject_trace_headers, span_in_trace

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


def test_span_in_trace_joins_the_events_trace_and_nests_under_a_span_of_it(span_exporter):
    tracer = trace.get_tracer("test")
    span_exporter.clear()
    with tracer.start_as_current_span("producer") as producer:
        carried = inject_trace_headers({})
    event_context = extract_trace_context(carried)
    # A batch span of another trace, then a consumer span of the event's own trace.
    with tracer.start_as_current_span("batch"), span_in_trace(event_context, "per-event"):
        pass
    with (
        tracer.start_as_current_span("process", context=event_context) as process,
        span_in_trace(event_context, "nested"),
    ):
        pass
    with span_in_trace(None, "nothing"):
        pass
    spans = {s.name: s for s in span_exporter.get_finished_spans()}
    trace_id = producer.get_span_context().trace_id
    assert spans["per-event"].context.trace_id == trace_id
    assert spans["per-event"].parent.span_id == producer.get_span_context().span_id
    assert spans["nested"].context.trace_id == trace_id
    assert spans["nested"].parent.span_id == process.get_span_context().span_id
    assert "nothing" not in spans
