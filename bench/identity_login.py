"""identity: password + TOTP logins per second per core, beside raw argon2id verification.

Two argon2id costs, each on its own identity process and database: identity's configured
defaults (read from ``pipworks_identity.settings``) and Keycloak's published defaults
(t=5, m=7 MiB, p=1), for comparison with Keycloak's published sizing figure.

Raw baseline: ``PasswordHasher.verify`` of identity's adapter (argon2-cffi, worker thread)
in the bench process, sequentially and with one caller per usable core. Platform figure:
a full login over real gRPC against ``python -m pipworks_identity``: ``Login`` (throttle,
lockout counter, argon2 verify, MFA challenge row) then ``VerifyMfa`` with the current
TOTP code (throttle, lockout counter, challenge, replay-protected step, session, refresh
token, signed access token, outbox event). The client runs in the bench process: it
costs about a millisecond per login beside the server's argon2 work.

TOTP replay protection accepts each user's code once per 30 s step, so every login here
uses a user that has not logged in before: ``users`` are registered and enrolled before
any clock starts, one per measured login, and no login ever waits for a new step.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

import grpc
import pyotp

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
from bench._services import (
    Argon2Cost,
    Keys,
    ServiceProcess,
    bench_process,
    identity_spec,
    metered,
    postgres_processes,
    running_services,
)
from pipworks.identity.v1 import identity_service_pb2 as pb
from pipworks.identity.v1 import identity_service_pb2_grpc as pb_grpc
from pipworks_identity.adapters.password_hasher import Argon2Parameters, PasswordHasher
from pipworks_identity.settings import IdentitySettings
from pipworks_platform.grpc_errors import error_details

# Keycloak's defaults since 24 (argon2id, 5 iterations, 7168 KiB, 1 lane) and its sizing
# guide's figure. Published numbers, never measured here.
KEYCLOAK_COST = Argon2Cost(time_cost=5, memory_kib=7168, parallelism=1)
KEYCLOAK_LOGINS_PER_VCPU = 15.0
KEYCLOAK_SOURCE = (
    "keycloak.org/high-availability/concepts-memory-and-cpu-sizing "
    '("for each 15 password-based user logins per second, allocate 1 vCPU")'
)

RPC_TIMEOUT = 60.0
WARM_SEQUENTIAL = 2  # logins before the sequential phase (the concurrent one warms a wave)
# Concurrent logins per usable core: enough to keep every core busy. More only queue:
# on 2 cores, 8+ in flight measured fewer logins/s, waiting on the platform outbox's
# advisory lock (every VerifyMfa commits a LoginSucceeded event through it).
IN_FLIGHT_PER_CORE = 2
SETUP_PER_CORE = 4  # concurrent registrations per usable core
COUNTRY = "GB"


def configured_cost() -> Argon2Cost:
    """identity's argon2id defaults, as its settings declare them."""
    fields = IdentitySettings.model_fields
    return Argon2Cost(
        time_cost=int(fields["identity_argon2_time_cost"].default),
        memory_kib=int(fields["identity_argon2_memory_kib"].default),
        parallelism=int(fields["identity_argon2_parallelism"].default),
    )


@dataclass(frozen=True)
class Config:
    """One argon2 cost and how many of each operation to time at scale 1."""

    key: str
    title: str
    cost: Argon2Cost
    # None: leave PIPWORKS_IDENTITY_ARGON2_* unset, so identity runs its own defaults.
    env_cost: Argon2Cost | None
    logins: int  # concurrent phase
    sequential: int  # one login at a time, for latency
    verifies: int  # raw baseline, per mode

    @property
    def process(self) -> str:
        return f"identity-{self.key}"

    def scaled(self, ctx: BenchContext) -> Config:
        return replace(
            self,
            logins=ctx.scaled(self.logins, minimum=8),
            sequential=ctx.scaled(self.sequential, minimum=4),
            verifies=ctx.scaled(self.verifies, minimum=4),
        )


def configs() -> list[Config]:
    return [
        Config(
            "default",
            "identity's defaults",
            configured_cost(),
            env_cost=None,
            logins=100,
            sequential=16,
            verifies=24,
        ),
        Config(
            "keycloak",
            "Keycloak's defaults",
            KEYCLOAK_COST,
            env_cost=KEYCLOAK_COST,
            logins=480,
            sequential=80,
            verifies=160,
        ),
    ]


# -- the raw baseline: the adapter alone ------------------------------------------------


@dataclass(frozen=True)
class Timed:
    """``count`` operations over ``seconds`` of wall time, with each one's latency."""

    count: int
    seconds: float
    latencies: list[float]


async def closed_loop(
    count: int, concurrency: int, operation: Callable[[int], Awaitable[None]]
) -> Timed:
    """Run ``operation(i)`` for i in 0..count-1, ``concurrency`` at a time, timing each."""
    latencies: list[float] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            index, next_index = next_index, next_index + 1
            started = time.perf_counter()
            await operation(index)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    return Timed(count, time.perf_counter() - started, latencies)


async def raw_verify(cost: Argon2Cost, count: int, threads: int) -> Timed:
    """identity's ``PasswordHasher.verify`` of a matching password, ``threads`` at a time."""
    hasher = PasswordHasher(Argon2Parameters(cost.time_cost, cost.memory_kib, cost.parallelism))
    password = secrets.token_urlsafe(18)
    stored = await hasher.hash(password)

    async def verify(_: int) -> None:
        if not await hasher.verify(stored, password):
            raise BenchError("the adapter refused its own hash")

    await closed_loop(threads * 2, threads, verify)  # warm-up: threads started, memory paged
    return await closed_loop(count, threads, verify)


# -- users -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchUser:
    email: str
    secret: str  # TOTP, base32
    address: str  # the client address identity sees (x-forwarded-for, as the gateway sets)


class Users:
    """Users that have never logged in; each is handed out once (see the module doc)."""

    def __init__(self, users: Sequence[BenchUser]) -> None:
        self._users = list(users)
        self._next = 0

    def take(self) -> BenchUser:
        if self._next >= len(self._users):
            raise BenchError("ran out of fresh users: a login would replay a TOTP step")
        user, self._next = self._users[self._next], self._next + 1
        return user

    @property
    def left(self) -> int:
        return len(self._users) - self._next


def client_address(index: int) -> str:
    """A distinct address per user: logins arrive from many clients, not one hot bucket."""
    return f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}"


def rpc_failure(what: str, exc: grpc.aio.AioRpcError) -> BenchError:
    reason = error_details(exc).reason
    return BenchError(f"{what}: {exc.code().name} {reason or ''} {exc.details()}")


async def create_users(
    stub: pb_grpc.IdentityServiceStub, keys: Keys, count: int, password: str, run: str
) -> Users:
    """Register ``count`` users and turn TOTP on for each (EnrollTotp + ConfirmTotp).

    EnrollTotp needs an access token: the bench mints it with identity's own signing key
    (an aal 1 client token for the new user), which spares one argon2 verification per
    user. ConfirmTotp is sent the *previous* step's code (inside RFC 6238's ±1 window),
    so the step it consumes is already behind the clock and the user's current code is
    fresh for its one login.
    """
    made: list[BenchUser | None] = [None] * count

    async def create(index: int) -> None:
        email = f"bench-{run}-{index}@example.com"
        address = client_address(index)
        forwarded = (("x-forwarded-for", address),)
        try:
            registered = await stub.Register(
                pb.RegisterRequest(email=email, password=password, country_code=COUNTRY),
                metadata=forwarded,
                timeout=RPC_TIMEOUT,
            )
            token = keys.authority.metadata(subject=registered.user_id, roles=("client",), aal=1)
            enrolled = await stub.EnrollTotp(
                pb.EnrollTotpRequest(), metadata=token + forwarded, timeout=RPC_TIMEOUT
            )
            await confirm_totp(stub, enrolled.secret, token + forwarded)
        except grpc.aio.AioRpcError as exc:
            raise rpc_failure(f"setting up user {index}", exc) from None
        made[index] = BenchUser(email, enrolled.secret, address)

    await closed_loop(count, SETUP_PER_CORE * usable_cores(), create)
    return Users([user for user in made if user is not None])


async def confirm_totp(
    stub: pb_grpc.IdentityServiceStub, secret: str, metadata: tuple[tuple[str, str], ...]
) -> None:
    totp = pyotp.TOTP(secret)
    for attempt in range(2):
        try:
            await stub.ConfirmTotp(
                pb.ConfirmTotpRequest(code=totp.at(time.time() - totp.interval)),
                metadata=metadata,
                timeout=RPC_TIMEOUT,
            )
            return
        except grpc.aio.AioRpcError as exc:
            # A step boundary between computing the code and identity checking it puts
            # the previous step out of the window: once, take the new previous step.
            if attempt or error_details(exc).reason != "TOTP_CODE_MISMATCH":
                raise


# -- the full login ------------------------------------------------------------------


class Logins:
    """Login + VerifyMfa over one gRPC channel, each with a fresh user."""

    def __init__(self, stub: pb_grpc.IdentityServiceStub, users: Users, password: str) -> None:
        self._stub = stub
        self._users = users
        self._password = password

    async def one(self, _: int = 0) -> None:
        user = self._users.take()
        metadata = (("x-forwarded-for", user.address),)
        try:
            first = await self._stub.Login(
                pb.LoginRequest(email=user.email, password=self._password),
                metadata=metadata,
                timeout=RPC_TIMEOUT,
            )
            if not first.mfa_challenge_token:
                raise BenchError("Login did not ask for the second factor")
            second = await self._stub.VerifyMfa(
                pb.VerifyMfaRequest(
                    mfa_challenge_token=first.mfa_challenge_token,
                    totp_code=pyotp.TOTP(user.secret).now(),
                ),
                metadata=metadata,
                timeout=RPC_TIMEOUT,
            )
        except grpc.aio.AioRpcError as exc:
            raise rpc_failure("login", exc) from None
        if not second.tokens.access_token:
            raise BenchError("VerifyMfa returned no access token")

    async def run(self, count: int, concurrency: int) -> Timed:
        return await closed_loop(count, concurrency, self.one)


@dataclass(frozen=True)
class Measured:
    config: Config
    raw_seq: Timed
    raw_par: Timed
    seq: Timed
    par: Timed
    cpu: dict[str, float]  # CPU seconds per process group during ``par``

    @property
    def identity_cpu(self) -> float:
        return self.cpu[self.config.process]


async def measure(
    ctx: BenchContext, keys: Keys, config: Config, identity: ServiceProcess
) -> Measured:
    """The raw baseline in this process, then logins against ``identity``."""
    cores = usable_cores()
    raw_seq = await raw_verify(config.cost, config.verifies, 1)
    raw_par = await raw_verify(config.cost, config.verifies * cores, cores)
    seq, par, cpu = await login_phases(ctx, keys, config, identity)
    return Measured(config, raw_seq, raw_par, seq, par, cpu)


async def login_phases(
    ctx: BenchContext, keys: Keys, config: Config, identity: ServiceProcess
) -> tuple[Timed, Timed, dict[str, float]]:
    """Set up one fresh user per login, then time sequential and concurrent logins."""
    in_flight = IN_FLIGHT_PER_CORE * usable_cores()
    warm_seq, warm_par = WARM_SEQUENTIAL, in_flight
    needed = warm_seq + config.sequential + warm_par + config.logins
    password = f"Bench-{secrets.token_urlsafe(12)}"
    async with grpc.aio.insecure_channel(identity.address) as channel:
        stub = pb_grpc.IdentityServiceStub(channel)
        started = time.perf_counter()
        users = await create_users(stub, keys, needed, password, uuid.uuid4().hex[:8])
        note(
            f"{config.key}: {needed} users registered and TOTP-enrolled in "
            f"{time.perf_counter() - started:.1f}s"
        )
        logins = Logins(stub, users, password)
        await logins.run(warm_seq, 1)
        seq = await logins.run(config.sequential, 1)
        await logins.run(warm_par, in_flight)
        with metered(identity, postgres_processes(ctx), bench_process()) as meter:
            par = await logins.run(config.logins, in_flight)
    identity.check_alive()
    if users.left:
        raise BenchError(f"{users.left} users were set up but never logged in")
    return seq, par, meter.used


# -- the bench -----------------------------------------------------------------------


async def run(ctx: BenchContext) -> list[Result]:
    cores = usable_cores()
    keys = Keys()
    note(
        f"login = Login + VerifyMfa (TOTP) over gRPC to a real identity process; "
        f"{IN_FLIGHT_PER_CORE * cores} logins in flight ({IN_FLIGHT_PER_CORE} per usable core), "
        f"latency with 1 in flight"
    )
    note(
        "each login uses a user never logged in before (registered + TOTP-enrolled first), "
        "so no TOTP code is replayed and no login waits for a new 30 s step"
    )
    note(
        "each user logs in from its own address (x-forwarded-for, as the gateway sends it); "
        "identity's per-address throttle is raised to its maximum"
    )
    selected = [config.scaled(ctx) for config in configs()]
    # One identity process per cost, on its own database, started together (the one not
    # being measured sits idle); each is measured alone, after the raw baseline.
    specs = [identity_spec(keys, argon2=c.env_cost, name=c.process) for c in selected]
    async with running_services(ctx, *specs) as services:
        measured = [
            await measure(ctx, keys, config, services[config.process]) for config in selected
        ]
    for item in measured:
        summarise(item, cores)
    note(
        f"published, NOT measured: Keycloak sizes {KEYCLOAK_LOGINS_PER_VCPU:g} password "
        f"logins/s per vCPU with {KEYCLOAK_COST.describe()} — {KEYCLOAK_SOURCE}; "
        "its login has no second factor and its database is sized separately"
    )
    keycloak = next(m for m in measured if m.config.cost == KEYCLOAK_COST)
    per_cpu = keycloak.par.count / keycloak.identity_cpu if keycloak.identity_cpu else 0.0
    note(
        f"at Keycloak's cost this run did {keycloak.par.count / keycloak.par.seconds / cores:.1f} "
        f"logins/s per usable core and {per_cpu:.1f} per identity CPU-second: "
        f"{per_cpu / KEYCLOAK_LOGINS_PER_VCPU:.1f}x Keycloak's published per-vCPU figure"
    )
    note_load()
    return [result for item in measured for result in results(item, cores)]


def summarise(item: Measured, cores: int) -> None:
    """Per-core figures two ways, and where the CPU of a login goes."""
    config, par = item.config, item.par
    rate = par.count / par.seconds
    identity_cpu = max(item.identity_cpu, 1e-9)
    note(
        f"{config.key} ({config.title}, {config.cost.describe()}): {rate:.1f} logins/s = "
        f"{rate / cores:.1f} per usable core (÷{cores}; the client and PostgreSQL share them), "
        f"{par.count / identity_cpu:.1f} per CPU-second of the identity process "
        f"(which used {identity_cpu / par.seconds:.2f} cores)"
    )
    argon2 = percentile(item.raw_seq.latencies, 0.5) or 0.0
    per_login = ", ".join(
        f"{name} {seconds / par.count * 1000:.1f} ms" for name, seconds in item.cpu.items()
    )
    note(
        f"{config.key}: CPU per login: {per_login} (bench = the gRPC client); "
        f"one argon2 verify alone takes {argon2 * 1000:.1f} ms (1 thread, p50)"
    )


def results(item: Measured, cores: int) -> list[Result]:
    config = item.config
    k, name = config.key, f"{config.key} {config.cost.short()}"
    in_flight = IN_FLIGHT_PER_CORE * cores
    return [
        throughput(
            f"{k}_raw_seq",
            f"{name}: argon2 verify (identity's adapter), 1 thread",
            item.raw_seq.count,
            item.raw_seq.seconds,
        ),
        throughput(
            f"{k}_raw_par",
            f"{name}: argon2 verify (identity's adapter), {cores} threads",
            item.raw_par.count,
            item.raw_par.seconds,
        ),
        throughput(
            f"{k}_login",
            f"{name}: Login + VerifyMfa over gRPC, {in_flight} in flight",
            item.par.count,
            item.par.seconds,
            baseline=f"{k}_raw_par",
        ),
        throughput(
            f"{k}_login_core",
            f"{name}: Login + VerifyMfa per usable core (÷{cores})",
            item.par.count,
            item.par.seconds * cores,
            baseline=f"{k}_raw_seq",
        ),
        latency(f"{k}_raw_seq_lat", f"{name}: argon2 verify, 1 thread", item.raw_seq.latencies),
        latency(
            f"{k}_raw_par_lat",
            f"{name}: argon2 verify, {cores} threads",
            item.raw_par.latencies,
        ),
        latency(
            f"{k}_login_seq_lat",
            f"{name}: login, 1 in flight",
            item.seq.latencies,
            baseline=f"{k}_raw_seq_lat",
        ),
        latency(
            f"{k}_login_par_lat",
            f"{name}: login, {in_flight} in flight",
            item.par.latencies,
            baseline=f"{k}_raw_par_lat",
        ),
    ]
