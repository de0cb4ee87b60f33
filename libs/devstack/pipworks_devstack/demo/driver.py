"""What every golden-path step shares: the stubs over the gateway, the simulator's
control API, step records and failures, and the polling of asynchronous effects."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import grpc

from pipworks.antifraud.v1 import antifraud_service_pb2_grpc as af_grpc
from pipworks.common.v1 import pagination_pb2, payment_pb2
from pipworks.ib.v1 import ib_service_pb2_grpc as ib_grpc
from pipworks.kyc.v1 import kyc_service_pb2_grpc as kyc_grpc
from pipworks.mtbridge.v1 import mtbridge_service_pb2 as bridge_pb
from pipworks.mtbridge.v1 import mtbridge_service_pb2_grpc as bridge_grpc
from pipworks_devstack.demo.results import (
    Account,
    Deposit,
    Staff,
    StepRecord,
)
from pipworks_devstack.demo.waiting import StepFailed, describe_rpc_error, wait_until
from pipworks_devstack.mt5sim import sim_control
from pipworks_devstack.portal import CALL_TIMEOUT, Portal, TotpDevice

__all__ = [
    "LIVE_GROUP",
    "LIVE_SERVER",
    "PAGE",
    "RAPID_IN_OUT_RULE",
    "RIGHT_TRADE_DISABLED",
    "RIGHT_WITHDRAWAL_DISABLED",
    "Driver",
]

# Where the suite opens live accounts (PIPWORKS_MTBRIDGE_KYC_SERVER / _GROUP).
LIVE_SERVER = "mt5-live"
LIVE_GROUP = "real\\standard"
RAPID_IN_OUT_RULE = "rapid-in-out"
# MT5 USER_RIGHT_TRADE_DISABLED, and the bridge's withdrawal block in bit 32.
RIGHT_TRADE_DISABLED = 0x4
RIGHT_WITHDRAWAL_DISABLED = 0x1_0000_0000
PAGE = pagination_pb2.PageRequest(page_size=100)


@dataclass
class _Step:
    title: str
    ids: dict[str, str] = field(default_factory=dict)
    amounts: dict[str, str] = field(default_factory=dict)


class Driver:
    """Calls through ``channel`` (the gateway) and the simulator at ``sim_url``.

    ``on_step`` is called with each finished step (the CLI prints it). ``timeout`` bounds
    every wait for an asynchronous effect (an event crossing services).
    """

    def __init__(
        self,
        channel: grpc.Channel,
        sim_url: str,
        admin_email: str,
        admin_password: str,
        *,
        admin_totp: TotpDevice | None = None,
        on_step: Callable[[StepRecord], None] | None = None,
        timeout: float = 45.0,
    ) -> None:
        self.portal = Portal(channel)
        self.identity = self.portal.identity
        self.kyc = kyc_grpc.KycServiceStub(channel)
        self.ib = ib_grpc.IbServiceStub(channel)
        self.antifraud = af_grpc.AntifraudServiceStub(channel)
        self.bridge = bridge_grpc.MtBridgeServiceStub(channel)
        self.sim_url = sim_url.rstrip("/")
        self._admin = (admin_email, admin_password, admin_totp)
        self._on_step = on_step
        self.timeout = timeout
        self.run_id = uuid.uuid4().hex[:8]
        self.started_at = datetime.now(UTC).replace(microsecond=0)
        self.records: list[StepRecord] = []
        self.enrolled_admin_totp: TotpDevice | None = None  # when ``staff`` enrolled it

    # -- plumbing --------------------------------------------------------------------

    @contextlib.contextmanager
    def _step(self, title: str) -> Iterator[_Step]:
        step = _Step(title)
        started = time.monotonic()
        try:
            yield step
        except StepFailed:
            raise
        except grpc.RpcError as exc:
            raise StepFailed(title, describe_rpc_error(exc)) from exc
        except (OSError, RuntimeError, ValueError) as exc:  # timeouts, the simulator
            raise StepFailed(title, str(exc)) from exc
        record = StepRecord(
            len(self.records) + 1, title, step.ids, step.amounts, time.monotonic() - started
        )
        self.records.append(record)
        if self._on_step is not None:
            self._on_step(record)

    def _wait(self, what: str, probe: Callable[[], Any]) -> Any:
        return wait_until(what, probe, timeout=self.timeout)

    def sim(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The simulator's control API (the market, not Pipworks)."""
        return sim_control(self.sim_url, method, path, body)

    def sim_user(self, login: int) -> dict[str, Any]:
        """The MT5 user record and account figures the trading server holds for ``login``."""
        return self.sim("GET", f"/sim/users/{login}")["answer"]

    def _key(self, purpose: str) -> str:
        return f"demo-{self.run_id}-{purpose}"

    @contextlib.contextmanager
    def quiet_market(self) -> Iterator[None]:
        """Pause the simulator's ambient activity (it trades every funded login) so the
        demo's accounts move only as the demo says; resume it afterwards."""
        paused = []
        with self._step("simulator's ambient trading paused") as step:
            for activity in self.sim("GET", "/sim/activity")["answer"]:
                if activity["running"] and activity["logins"] == "*":
                    self.sim("DELETE", f"/sim/activity/{activity['id']}")
                    paused.append(activity)
            step.ids.update(activities=",".join(str(a["id"]) for a in paused) or "none")
        try:
            yield
        finally:
            for activity in paused:
                self.sim(
                    "POST",
                    "/sim/activity",
                    {
                        "logins": "*",
                        "deals_per_second": activity["deals_per_second"],
                        "symbols": activity["symbols"],
                        "open_close_mix": activity["open_close_mix"],
                    },
                )

    def _deposit(self, staff: Staff, account: Account, amount: Decimal, purpose: str) -> Deposit:
        operation = self.bridge.Deposit(
            bridge_pb.DepositRequest(
                server=account.server,
                login=account.login,
                amount=str(amount),
                idempotency_key=self._key(purpose),
                payment=payment_pb2.PaymentDetails(
                    method="card",
                    instrument_fingerprint=self._key(f"{purpose}-card"),
                    country_code="CY",
                ),
            ),
            metadata=staff.admin.metadata,
            timeout=CALL_TIMEOUT,
        ).operation
        balance = self._wait(
            f"balance {amount} on login {account.login}",
            lambda: self._balance_at_least(account, amount),
        )
        return Deposit(operation.operation_id, operation.deal_ticket, amount, balance)

    def _balance(self, account: Account) -> Decimal:
        return Decimal(self.sim_user(account.login)["account"]["Balance"])

    def _balance_at_least(self, account: Account, wanted: Decimal) -> Decimal | None:
        balance = self._balance(account)
        return balance if balance >= wanted else None
