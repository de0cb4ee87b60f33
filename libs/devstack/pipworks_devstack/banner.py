"""The "suite is up" banner: where everything listens and how to call it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

READY_LINE = "Pipworks suite is up."


@dataclass(frozen=True)
class BannerService:
    name: str
    grpc_address: str
    metrics_port: int
    database: str | None
    public: bool


def render_banner(
    *,
    postgres_address: str,
    postgres_admin_dsn: str,
    psql: str,
    nats_url: str,
    nats_monitor_url: str,
    services: Sequence[BannerService],
    skipped: Sequence[str],
) -> str:
    """Plain text, no colours: it must read the same in a terminal, a CI log or a pipe."""
    width = max((len(s.name) for s in services), default=8)
    lines = [
        "",
        "=" * 72,
        READY_LINE,
        "",
        f"  PostgreSQL  {postgres_address}   (one database and one role per service)",
        f"              superuser shell: {psql} '{postgres_admin_dsn}'",
        f"  NATS        {nats_url}   (monitoring {nats_monitor_url})",
        "",
    ]
    if services:
        lines.append("  Services (gRPC, plaintext):")
        for service in services:
            database = f"  db {service.database}" if service.database else ""
            metrics = f"  metrics :{service.metrics_port}" if service.metrics_port else ""
            lines.append(f"    {service.name:<{width}}  {service.grpc_address}{metrics}{database}")
    else:
        lines.append("  No services are running (none configured or none installed).")
    if skipped:
        lines.append(f"  Skipped (module not installed): {', '.join(skipped)}")
    lines.append("")
    gateway = next((s for s in services if s.public), None)
    if gateway is not None:
        lines.append(f"  Gateway     {gateway.grpc_address}   <- point callers here")
    else:
        lines.append("  Gateway     none (no service has public = true); call services directly")
    example = gateway or (services[0] if services else None)
    if example is not None:
        target = example.grpc_address
        lines += [
            "",
            "  Try:",
            f"    grpcurl -plaintext {target} list",
            f"    grpcurl -plaintext {target} grpc.health.v1.Health/Check",
            '    .venv/bin/python -c "import grpc; from grpc_health.v1 import health_pb2 as h, '
            "health_pb2_grpc as g; print(g.HealthStub(grpc.insecure_channel("
            f"'{target}')).Check(h.HealthCheckRequest()))\"",
        ]
    if gateway is not None:
        lines += [
            "",
            "  See it work: `make demo` in another terminal walks the golden path through",
            "  the gateway; the simulator then keeps trading the funded accounts, so deals,",
            "  commissions and anti-fraud evaluations keep flowing through these logs.",
        ]
    lines += ["", "Press Ctrl-C to stop everything.", "=" * 72, ""]
    return "\n".join(lines)
