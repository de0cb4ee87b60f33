"""gateway: latency and throughput of a call through the gateway, beside the same call direct.

Real processes: identity (it serves the JWKS), ib (the backend) and the gateway routing
both, each ``python -m pipworks_<name>`` with its production defaults, rate limits
switched off (``PIPWORKS_GATEWAY_RATE_LIMITS``) so the bench measures cost, not budget.
The client is a separate process (``bench._loadgen``): raw-bytes unary calls on one
``grpc.aio`` channel per target, so its CPU is not the bench's and it does no message
work at all.

Raw baseline: the call straight to its backend. Platform figure: the same call, same
bytes, same metadata, through the gateway (which authenticates, rate-limits and forwards
it; the backend authenticates again). Calls: ib ``GetServiceInfo`` with an admin aal 2
token minted with identity's signing key (both verifiers cache a verified token, as they
would for a client reusing its token), and identity's public ``GetJwks``. Direct and
via-gateway runs alternate (A B B A ...) so a noisy neighbour hits both alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType

import grpc

from bench._harness import (
    BenchContext,
    BenchError,
    Result,
    latency,
    note,
    note_load,
    percentile,
    throughput,
    usable_cores,
)
from bench._loadgen import Job, LoadGenerator, Outcome, load_generator
from bench._services import (
    Keys,
    Meterable,
    ServiceProcess,
    backend_spec,
    gateway_spec,
    identity_spec,
    metered,
    running_services,
)
from pipworks.ib.v1 import ib_service_pb2, ib_service_pb2_grpc
from pipworks.identity.v1 import identity_service_pb2, identity_service_pb2_grpc

SEQUENTIAL_CALLS = 2_000  # one in flight: latency
CONCURRENT_CALLS = 10_000  # IN_FLIGHT at once: throughput
IN_FLIGHT = 32
ROUNDS = 2  # each figure is split over rounds that alternate direct and via-gateway
WARMUP_CALLS = 300  # per target: connections, JWKS fetch, token caches, code paths
TOKEN_TTL_SECONDS = 3600
RATE_LIMITS = "default.ip=off,default.subject=off,auth.ip=off,auth.subject=off"

# The project's goals for the gateway (reported, never asserted).
GOAL_ADDED_P50_MS = 1.0
GOAL_THROUGHPUT_KEPT = 0.70


@dataclass(frozen=True)
class Rpc:
    key: str
    label: str
    method: str
    backend: str  # the service it is routed to
    metadata: tuple[tuple[str, str], ...] = ()
    request: bytes = b""


@dataclass
class Side:
    """Everything measured for one way of calling (direct or via the gateway)."""

    sequential: list[Outcome] = field(default_factory=list)
    concurrent: list[Outcome] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # during the concurrent runs

    def latencies(self, concurrent: bool = False) -> list[float]:
        runs = self.concurrent if concurrent else self.sequential
        return [value for run in runs for value in run.latencies]

    def calls_and_seconds(self) -> tuple[int, float]:
        return sum(r.calls for r in self.concurrent), sum(r.seconds for r in self.concurrent)

    def add_cpu(self, used: dict[str, float]) -> None:
        for name, seconds in used.items():
            self.cpu[name] = self.cpu.get(name, 0.0) + seconds


@dataclass(frozen=True)
class Comparison:
    rpc: Rpc
    direct: Side
    via: Side


class Measurer:
    def __init__(
        self,
        gen: LoadGenerator,
        services: dict[str, ServiceProcess],
        meterables: Sequence[Meterable],
    ) -> None:
        self._gen = gen
        self._services = services
        self._meterables = meterables

    def _job(self, rpc: Rpc, target: str, calls: int, concurrency: int) -> Job:
        return Job(target, rpc.method, rpc.request, rpc.metadata, calls, concurrency)

    def _targets(self, rpc: Rpc) -> tuple[str, str]:
        return self._services[rpc.backend].address, self._services["gateway"].address

    async def warm(self, rpc: Rpc) -> None:
        for target in self._targets(rpc):
            await self._gen.run(self._job(rpc, target, WARMUP_CALLS, IN_FLIGHT))

    async def compare(self, rpc: Rpc, sequential: int, concurrent: int) -> Comparison:
        direct_target, via_target = self._targets(rpc)
        direct, via = Side(), Side()
        sides = ((direct_target, direct), (via_target, via))
        for concurrency, calls in ((1, sequential), (IN_FLIGHT, concurrent)):
            per_round = max(1, calls // ROUNDS)
            for round_index in range(ROUNDS):
                order = sides if round_index % 2 == 0 else sides[::-1]
                for target, side in order:
                    job = self._job(rpc, target, per_round, concurrency)
                    if concurrency == 1:
                        side.sequential.append(await self._gen.run(job))
                        continue
                    with metered(*self._meterables) as meter:
                        side.concurrent.append(await self._gen.run(job))
                    side.add_cpu(meter.used)
        for service in self._services.values():
            service.check_alive()
        return Comparison(rpc, direct, via)


async def check_answers(services: dict[str, ServiceProcess], keys: Keys, rpc: Rpc) -> None:
    """One real call each way, decoded: the bench measures working calls, not errors."""
    for name in (rpc.backend, "gateway"):
        async with grpc.aio.insecure_channel(services[name].address) as channel:
            try:
                if rpc.backend == "ib":
                    stub = ib_service_pb2_grpc.IbServiceStub(channel)
                    reply = await stub.GetServiceInfo(
                        ib_service_pb2.GetServiceInfoRequest(), metadata=rpc.metadata, timeout=10
                    )
                    ok = reply.info.name == "ib"
                else:
                    id_stub = identity_service_pb2_grpc.IdentityServiceStub(channel)
                    jwks = await id_stub.GetJwks(identity_service_pb2.GetJwksRequest(), timeout=10)
                    ok = any(key.kid == keys.authority.kid for key in jwks.keys)
            except grpc.aio.AioRpcError as exc:
                raise BenchError(
                    f"{rpc.method} via {name}: {exc.code().name} {exc.details()}"
                ) from None
        if not ok:
            raise BenchError(f"{rpc.method} via {name} answered something unexpected")


# -- the bench -------------------------------------------------------------------------


async def run(ctx: BenchContext) -> list[Result]:
    keys = Keys()
    admin = keys.authority.metadata(
        subject=str(uuid.uuid4()), roles=("admin",), aal=2, mfa=True, ttl=TOKEN_TTL_SECONDS
    )
    rpcs = [
        Rpc(
            "info",
            "ib GetServiceInfo (admin token)",
            method_path(ib_service_pb2, "IbService", "GetServiceInfo"),
            "ib",
            admin,
        ),
        Rpc(
            "jwks",
            "identity GetJwks (public)",
            method_path(identity_service_pb2, "IdentityService", "GetJwks"),
            "identity",
        ),
    ]
    identity = identity_spec(keys)
    ib = backend_spec("ib", keys, identity)
    gateway = gateway_spec(
        {"pipworks.identity.v1": identity, "pipworks.ib.v1": ib}, identity, rate_limits=RATE_LIMITS
    )
    sequential, concurrent = ctx.scaled(SEQUENTIAL_CALLS), ctx.scaled(CONCURRENT_CALLS)
    note(
        f"client: a separate process, one grpc.aio channel per target; latency with 1 call "
        f"in flight ({sequential:,} calls), throughput with {IN_FLIGHT} in flight "
        f"({concurrent:,} calls); direct and via-gateway alternate over {ROUNDS} rounds"
    )
    note(f"gateway rate limits: {RATE_LIMITS}; {usable_cores()} usable cores shared by all")
    async with (
        running_services(ctx, identity, ib, gateway) as services,
        load_generator() as gen,
    ):
        meterables: list[Meterable] = [*services.values(), gen]
        measurer = Measurer(gen, services, meterables)
        comparisons = []
        for rpc in rpcs:
            await check_answers(services, keys, rpc)
            await measurer.warm(rpc)
        for rpc in rpcs:
            comparisons.append(await measurer.compare(rpc, sequential, concurrent))
    for comparison in comparisons:
        summarise(comparison)
    goals(comparisons[0])
    note_load()
    return [result for comparison in comparisons for result in results(comparison)]


def method_path(module: ModuleType, service: str, method: str) -> str:
    """``/package.Service/Method``, from the generated module's descriptor."""
    descriptor = module.DESCRIPTOR.services_by_name[service]
    return f"/{descriptor.full_name}/{descriptor.methods_by_name[method].name}"


def added_p50(comparison: Comparison) -> float:
    direct = percentile(comparison.direct.latencies(), 0.5) or 0.0
    via = percentile(comparison.via.latencies(), 0.5) or 0.0
    return via - direct


def kept(comparison: Comparison) -> float:
    direct_calls, direct_seconds = comparison.direct.calls_and_seconds()
    via_calls, via_seconds = comparison.via.calls_and_seconds()
    return (via_calls / via_seconds) / (direct_calls / direct_seconds)


def summarise(comparison: Comparison) -> None:
    rpc, direct, via = comparison.rpc, comparison.direct, comparison.via
    p99 = (percentile(via.latencies(), 0.99) or 0.0) - (percentile(direct.latencies(), 0.99) or 0)
    note(
        f"{rpc.key}: the gateway adds {added_p50(comparison) * 1000:.2f} ms at p50 "
        f"({p99 * 1000:.2f} ms at p99) with 1 in flight, and keeps {kept(comparison):.0%} "
        f"of direct throughput with {IN_FLIGHT} in flight"
    )
    per_call = {}
    for name, side in (("direct", direct), ("via gateway", via)):
        calls = side.calls_and_seconds()[0]
        spent = {p: s / calls for p, s in side.cpu.items() if s / calls >= 5e-6}
        per_call[name] = sum(spent.values())
        listed = ", ".join(f"{p} {s * 1e6:.0f}" for p, s in spent.items())
        note(
            f"{rpc.key}: CPU µs per call {name}, {IN_FLIGHT} in flight: {listed} "
            f"(total {per_call[name] * 1e6:.0f})"
        )
    note(
        f"{rpc.key}: every process shares the same {usable_cores()} cores, so when they are "
        f"saturated throughput kept tends to CPU per call direct / via = "
        f"{per_call['direct'] / per_call['via gateway']:.0%}"
    )


def goals(comparison: Comparison) -> None:
    """The project's goals, judged on the authenticated call; reported, never asserted."""
    added_ms, share = added_p50(comparison) * 1000, kept(comparison)
    note(
        f"goal, gateway adds < {GOAL_ADDED_P50_MS:g} ms at p50: "
        f"{'MET' if added_ms < GOAL_ADDED_P50_MS else 'NOT MET'} in this run "
        f"({added_ms:.2f} ms, {comparison.rpc.label})"
    )
    note(
        f"goal, via-gateway throughput >= {GOAL_THROUGHPUT_KEPT:.0%} of direct: "
        f"{'MET' if share >= GOAL_THROUGHPUT_KEPT else 'NOT MET'} in this run "
        f"({share:.0%}, {comparison.rpc.label})"
    )


def results(comparison: Comparison) -> list[Result]:
    rpc, direct, via = comparison.rpc, comparison.direct, comparison.via
    k = rpc.key
    return [
        throughput(
            f"{k}_direct",
            f"{rpc.label}: direct, {IN_FLIGHT} in flight",
            *direct.calls_and_seconds(),
        ),
        throughput(
            f"{k}_via",
            f"{rpc.label}: via gateway, {IN_FLIGHT} in flight",
            *via.calls_and_seconds(),
            baseline=f"{k}_direct",
        ),
        latency(f"{k}_direct_seq", f"{rpc.label}: direct, 1 in flight", direct.latencies()),
        latency(
            f"{k}_via_seq",
            f"{rpc.label}: via gateway, 1 in flight",
            via.latencies(),
            baseline=f"{k}_direct_seq",
        ),
        latency(
            f"{k}_direct_par",
            f"{rpc.label}: direct, {IN_FLIGHT} in flight",
            direct.latencies(concurrent=True),
        ),
        latency(
            f"{k}_via_par",
            f"{rpc.label}: via gateway, {IN_FLIGHT} in flight",
            via.latencies(concurrent=True),
            baseline=f"{k}_direct_par",
        ),
    ]
