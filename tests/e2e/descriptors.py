"""Every RPC of every Pipworks API, from the generated descriptors, and request strategies.

Attack and fuzz tests are generated from these, so a method added to a proto is covered
without anyone listing it. ``RPCS`` holds every method of every
``pipworks.<area>.v1.*Service`` found by importing each generated ``*_service_pb2``
module; ``requests(rpc)`` is a hypothesis strategy of request messages built from the
request type's descriptor, with the values that break validation code: boundary
integers, unknown enum numbers, adversarial strings (empty, huge, NUL, decimal- and
date-looking, UUID-like), out-of-range timestamps, nested and repeated messages, maps
and oneofs.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

from pipworks_platform.auth.policy import Policy, policy_for

PROTO_SOURCES = Path(__file__).resolve().parents[2] / "proto"
SERVICE_NAME = re.compile(r"pipworks\.[a-z0-9_]+\.v1\.[A-Za-z0-9]+Service")

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
UINT32 = (0, 2**32 - 1)
UINT64 = (0, 2**64 - 1)

# Strings that validation code tends to trust: numbers that are not finite, dates that
# do not exist, ids that are almost ids, control characters, and sheer size.
ADVERSARIAL_STRINGS = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ufffd\ufffd",
    "\u0080\u00ff",
    "Ã©Ã¨",
    "\u202e\u200b",
    "😀" * 3,
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d",
    "0b1c2d3e4f504a6b8c7d9e0f1a2b3c4d",
    "{0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d}",
    "not-a-uuid",
    "1e309",
    "-1e309",
    "1e-400",
    "1E+999999999",
    "-0",
    "-0.00",
    "NaN",
    "-NaN",
    "sNaN",
    "Infinity",
    "-inf",
    "0",
    "-1",
    "0.000000000000000000000000000001",
    "99999999999999999999999999999999999999.99",
    "1,5",
    "1_000",
    " 12.5 ",
    "0x1F",
    "١٢٣",
    "2024-02-30",
    "0000-00-00",
    "9999-12-31",
    "10000-01-01",
    "2024-13-01T25:61:61Z",
    "1970-01-01T00:00:00Z",
    "-2024-01-01",
    "USD",
    "usd",
    "XXX",
    "EURUSD",
    "*",
    "%",
    "../../etc/passwd",
    "' OR 1=1 --",
    "<script>",
    "${jndi:x}",
    "a@b",
    "user@example.com",
    "ZZZZZZZZ",
    "+44 20 7946 0958",
    # Values that pass a first check, so the code behind it runs too.
    "10.00",
    "0.01",
    "GB",
    "CY",
    "mt5-live",
    "real\\standard",
    "passport",
    "proof_of_address",
    "client",
    "admin",
)

# Timestamps and durations outside what google.protobuf allows (years 1..9999, nanos
# 0..999999999), next to ordinary ones.
TIMESTAMP_SECONDS = (0, 1, -1, -62135596800, -62135596801, 253402300799, 253402300800, *INT64)
NANOS = (0, 1, 999_999_999, 1_000_000_000, -1, *INT32)
MAX_DEPTH = 3
MAX_REPEATED = 3


@dataclass(frozen=True)
class Rpc:
    """One RPC: where it lives, what it takes and returns, how it streams, who may call."""

    service: str
    name: str
    descriptor: MethodDescriptor
    request_type: type[Message]
    response_type: type[Message]
    client_streaming: bool
    server_streaming: bool

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.name}"

    @property
    def kind(self) -> str:
        """``unary_unary``, ``unary_stream``, ``stream_unary`` or ``stream_stream``."""
        left = "stream" if self.client_streaming else "unary"
        right = "stream" if self.server_streaming else "unary"
        return f"{left}_{right}"

    @property
    def policy(self) -> Policy | None:
        return policy_for(self.path)

    @property
    def public(self) -> bool:
        policy = self.policy
        return policy is not None and policy.public

    @property
    def clients_refused(self) -> bool:
        """The policy names roles, and neither ``client`` nor ``ib`` is among them."""
        policy = self.policy
        return policy is not None and bool(policy.roles) and not policy.roles & {"client", "ib"}

    def __str__(self) -> str:
        return self.path


def _service_modules() -> list[Any]:
    """Generated modules of the protos Pipworks ships (test protos can share the package)."""
    root = importlib.import_module("pipworks")
    modules = []
    for area in pkgutil.iter_modules(root.__path__):
        if not area.ispkg:
            continue
        try:
            package = importlib.import_module(f"pipworks.{area.name}.v1")
        except ModuleNotFoundError:
            continue
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.endswith("_service_pb2"):
                continue
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            if (PROTO_SOURCES / module.DESCRIPTOR.name).is_file():
                modules.append(module)
    return modules


@cache
def load_rpcs() -> tuple[Rpc, ...]:
    """Every RPC of every ``pipworks.<area>.v1.*Service``, sorted by path."""
    rpcs = []
    for module in _service_modules():
        for service in module.DESCRIPTOR.services_by_name.values():
            if not SERVICE_NAME.fullmatch(service.full_name):
                continue
            for method in service.methods:
                rpcs.append(
                    Rpc(
                        service=service.full_name,
                        name=method.name,
                        descriptor=method,
                        request_type=GetMessageClass(method.input_type),
                        response_type=GetMessageClass(method.output_type),
                        client_streaming=method.client_streaming,
                        server_streaming=method.server_streaming,
                    )
                )
    return tuple(sorted(rpcs, key=lambda rpc: rpc.path))


RPCS = load_rpcs()


# -- strategies ----------------------------------------------------------------------------


def _bounded(low: int, high: int) -> st.SearchStrategy[int]:
    """Integers in [low, high], the edges and small numbers more often than not."""
    edges = sorted({low, low + 1, high - 1, high, 0, 1} | ({-1} if low < 0 else set()))
    return st.one_of(
        st.sampled_from(edges),
        st.integers(-1000, 1000).filter(lambda v: low <= v <= high),
        st.integers(low, high),
    )


HUGE_STRING = "x" * 70_000  # big, yet many of them fit under the message size limit
STRINGS = st.one_of(
    st.sampled_from(ADVERSARIAL_STRINGS),
    st.just(HUGE_STRING),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
    st.uuids().map(str),
    st.decimals(allow_nan=False, places=4).map(str),
    st.dates().map(lambda d: d.isoformat()),
)

_SCALARS: dict[int, st.SearchStrategy[Any]] = {
    FieldDescriptor.TYPE_DOUBLE: st.floats(),
    FieldDescriptor.TYPE_FLOAT: st.floats(width=32),
    FieldDescriptor.TYPE_INT32: _bounded(*INT32),
    FieldDescriptor.TYPE_SINT32: _bounded(*INT32),
    FieldDescriptor.TYPE_SFIXED32: _bounded(*INT32),
    FieldDescriptor.TYPE_INT64: _bounded(*INT64),
    FieldDescriptor.TYPE_SINT64: _bounded(*INT64),
    FieldDescriptor.TYPE_SFIXED64: _bounded(*INT64),
    FieldDescriptor.TYPE_UINT32: _bounded(*UINT32),
    FieldDescriptor.TYPE_FIXED32: _bounded(*UINT32),
    FieldDescriptor.TYPE_UINT64: _bounded(*UINT64),
    FieldDescriptor.TYPE_FIXED64: _bounded(*UINT64),
    FieldDescriptor.TYPE_BOOL: st.booleans(),
    FieldDescriptor.TYPE_STRING: STRINGS,
    FieldDescriptor.TYPE_BYTES: st.one_of(
        st.binary(max_size=64), st.sampled_from((b"", b"\x00", b"\xff" * 70_000))
    ),
}

# Well-known types whose fields carry rules the descriptor does not show.
_WELL_KNOWN: dict[str, Callable[[], st.SearchStrategy[dict[str, Any]]]] = {
    "google.protobuf.Timestamp": lambda: st.fixed_dictionaries(
        {
            "seconds": st.sampled_from(TIMESTAMP_SECONDS) | _bounded(*INT64),
            "nanos": st.sampled_from(NANOS) | _bounded(*INT32),
        }
    ),
    "google.protobuf.Duration": lambda: st.fixed_dictionaries(
        {
            "seconds": st.sampled_from((0, 1, -1, 315_576_000_001, *INT64)) | _bounded(*INT64),
            "nanos": st.sampled_from(NANOS) | _bounded(*INT32),
        }
    ),
}


def _enum(field: FieldDescriptor) -> st.SearchStrategy[int]:
    known = [value.number for value in field.enum_type.values]
    return st.one_of(st.sampled_from(known), st.sampled_from((-1, max(known) + 1, *INT32)))


def _value(field: FieldDescriptor, depth: int, known: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """One value of ``field`` (one element when it is repeated)."""
    if field.type == FieldDescriptor.TYPE_ENUM:
        return _enum(field)
    if field.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP):
        return messages(field.message_type, depth + 1, known)
    if field.type == FieldDescriptor.TYPE_STRING and known:
        return st.one_of(STRINGS, st.sampled_from(known))
    return _SCALARS[field.type]


def _is_map(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry


def _is_repeated(field: FieldDescriptor) -> bool:
    return field.is_repeated


def _field(field: FieldDescriptor, depth: int, known: tuple[str, ...]) -> st.SearchStrategy[Any]:
    if _is_map(field):
        entry = field.message_type
        key = _value(entry.fields_by_name["key"], depth, known)
        value = _value(entry.fields_by_name["value"], depth, known)
        return st.dictionaries(key, value, max_size=MAX_REPEATED)
    if _is_repeated(field):
        return st.lists(_value(field, depth, known), max_size=MAX_REPEATED)
    return _value(field, depth, known)


def _assign(message: Message, field: FieldDescriptor, value: Any) -> None:
    name = field.name
    if _is_map(field):
        target = getattr(message, name)
        value_field = field.message_type.fields_by_name["value"]
        for key, item in value.items():
            if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                target[key].CopyFrom(item)
            else:
                target[key] = item
    elif _is_repeated(field):
        target = getattr(message, name)
        for item in value:
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                target.add().CopyFrom(item)
            else:
                target.append(item)
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        getattr(message, name).CopyFrom(value)
    else:
        setattr(message, name, value)


@cache
def messages(
    descriptor: Descriptor, depth: int = 0, known: tuple[str, ...] = ()
) -> st.SearchStrategy[Message]:
    """Messages of ``descriptor``'s type: each field unset or random, one member per oneof.

    ``known`` adds strings to try in every string field: ids of things that exist, say,
    so that lookups succeed and the code after them runs.
    """
    cls = GetMessageClass(descriptor)
    if descriptor.full_name in _WELL_KNOWN:
        return _WELL_KNOWN[descriptor.full_name]().map(lambda fields: cls(**fields))
    if depth > MAX_DEPTH:
        return st.just(cls())
    in_oneof = {f.name for oneof in descriptor.oneofs for f in oneof.fields}
    plain = {
        f.name: st.none() | _field(f, depth, known)
        for f in descriptor.fields
        if f.name not in in_oneof
    }
    oneofs = {
        oneof.name: st.none()
        | st.one_of([st.tuples(st.just(f), _field(f, depth, known)) for f in oneof.fields])
        for oneof in descriptor.oneofs
    }

    def build(values: tuple[dict[str, Any], dict[str, Any]]) -> Message:
        fields, chosen = values
        message = cls()
        for name, value in fields.items():
            if value is not None:
                _assign(message, descriptor.fields_by_name[name], value)
        for pick in chosen.values():
            if pick is not None:
                _assign(message, *pick)
        return message

    return st.tuples(st.fixed_dictionaries(plain), st.fixed_dictionaries(oneofs)).map(build)


def requests(rpc: Rpc, known: tuple[str, ...] = ()) -> st.SearchStrategy[Message]:
    """Request messages of ``rpc``; ``known`` as for ``messages``."""
    return messages(rpc.request_type.DESCRIPTOR, known=known)
