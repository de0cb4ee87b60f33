"""OpenTelemetry set-up and W3C trace-context propagation through NATS headers.

The tracer provider is configured from the standard ``OTEL_*`` variables: spans are
exported over OTLP only when an endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), or to the console with
``OTEL_TRACES_EXPORTER=console``. With no exporter, and no ``OTEL_TRACES_SAMPLER`` chosen,
new traces are not sampled: trace ids still reach every log line and every downstream
call and event, but no span is recorded only to be dropped.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, MutableMapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

TRACE_HEADERS = ("traceparent", "tracestate")


def configure_tracing(service: str, version: str) -> TracerProvider | None:
    """Install the global tracer provider for this process, once.

    Returns None when the SDK is disabled or a provider was already installed (tests
    install their own in-memory one first).
    """
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return None
    resource = Resource.create(
        {SERVICE_NAME: f"pipworks-{service}", SERVICE_VERSION: version}
    )  # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override these defaults.
    exporters = {e.strip() for e in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")}
    endpoint_set = bool(
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    exporting = ("otlp" in exporters and endpoint_set) or "console" in exporters
    sampler = None
    if not exporting and not os.environ.get("OTEL_TRACES_SAMPLER"):
        sampler = ParentBased(ALWAYS_OFF)
    provider = TracerProvider(resource=resource, sampler=sampler)
    if "otlp" in exporters and endpoint_set:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if "console" in exporters:
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def shutdown_tracing(provider: TracerProvider | None) -> None:
    if provider is not None:
        provider.shutdown()


def inject_trace_headers(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Write the current span's ``traceparent``/``tracestate`` into ``headers``."""
    propagate.inject(headers)
    return headers


def extract_trace_context(headers: Mapping[str, str] | None) -> Context:
    """The remote parent context carried by NATS headers (empty context when absent)."""
    carrier = {k.lower(): v for k, v in (headers or {}).items() if k.lower() in TRACE_HEADERS}
    return propagate.extract(carrier)


@contextlib.contextmanager
def span_in_trace(context: Context | None, name: str) -> Iterator[None]:
    """A span named ``name`` in the trace ``context`` carries (an event's producer trace).

    Batch handlers apply many events under one consumer span; this puts the work done for
    each event into that event's own trace. When the current span already belongs to that
    trace (one event, handled under its own consumer span) the new span nests in it.
    Without a context nothing is started.
    """
    if context is None:
        yield
        return
    current = trace.get_current_span().get_span_context()
    wanted = trace.get_current_span(context).get_span_context()
    parent = None if current.is_valid and current.trace_id == wanted.trace_id else context
    with trace.get_tracer(__name__).start_as_current_span(name, context=parent):
        yield


def current_trace_id() -> str:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else ""
