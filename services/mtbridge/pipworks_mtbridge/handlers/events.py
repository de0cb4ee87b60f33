"""Builders of the ``pipworks.events.v1`` messages the bridge publishes through the outbox."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from google.protobuf.timestamp_pb2 import Timestamp

from pipworks.events.v1 import mtbridge_pb2
from pipworks_mtbridge.adapters.repositories.operations import OperationMatch
from pipworks_mtbridge.domain.accounts import TradingAccount
from pipworks_mtbridge.domain.balance import OperationKind
from pipworks_mtbridge.domain.deals import Deal
from pipworks_mtbridge.domain.money import to_text
from pipworks_mtbridge.domain.ports import AccountState


def timestamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def account_opened(account: TradingAccount) -> mtbridge_pb2.MtAccountOpened:
    return mtbridge_pb2.MtAccountOpened(
        user_id=str(account.user_id),
        server=account.server,
        login=account.login,
        group=account.group,
        currency=account.currency,
        leverage=account.leverage,
        opened_at=timestamp(account.opened_at),
    )


def deal_executed(
    server: str, user_id: uuid.UUID, currency: str, deal: Deal
) -> mtbridge_pb2.MtDealExecuted:
    return mtbridge_pb2.MtDealExecuted(
        user_id=str(user_id),
        server=server,
        login=deal.login,
        deal=deal.ticket,
        position_id=deal.position_id,
        action=deal.action,
        entry=deal.entry,
        symbol=deal.symbol,
        volume_lots=to_text(deal.volume_lots),
        price=to_text(deal.price),
        profit=to_text(deal.profit),
        commission=to_text(deal.commission),
        swap=to_text(deal.swap),
        executed_at=timestamp(deal.time),
        currency=currency,
    )


_OPERATION_KINDS = {
    OperationKind.DEPOSIT: mtbridge_pb2.MT_OPERATION_KIND_DEPOSIT,
    OperationKind.WITHDRAWAL: mtbridge_pb2.MT_OPERATION_KIND_WITHDRAWAL,
    OperationKind.CREDIT: mtbridge_pb2.MT_OPERATION_KIND_CREDIT,
    OperationKind.IB_PAYOUT: mtbridge_pb2.MT_OPERATION_KIND_IB_PAYOUT,
}


def balance_changed(
    server: str, user_id: uuid.UUID, currency: str, deal: Deal, operation: OperationMatch | None
) -> mtbridge_pb2.MtBalanceChanged:
    """A balance deal; ``operation`` is the bridge operation that made it, if any."""
    message = mtbridge_pb2.MtBalanceChanged(
        user_id=str(user_id),
        server=server,
        login=deal.login,
        deal=deal.ticket,
        action=deal.action,
        amount=to_text(deal.profit),  # MT5 books a balance deal's amount as its profit
        currency=currency,
        comment=deal.comment,
        executed_at=timestamp(deal.time),
    )
    if operation is not None:
        message.operation_id = operation.id
        message.operation_kind = _OPERATION_KINDS[operation.kind]
        message.idempotency_key = operation.idempotency_key
        if operation.payment is not None:
            message.payment.method = operation.payment.method
            message.payment.instrument_fingerprint = operation.payment.instrument_fingerprint
            message.payment.country_code = operation.payment.country_code
    return message


def margin_call(
    account: TradingAccount, threshold: Decimal, state: AccountState, observed_at: datetime
) -> mtbridge_pb2.MtMarginCall:
    return mtbridge_pb2.MtMarginCall(
        user_id=str(account.user_id),
        server=account.server,
        login=account.login,
        threshold=to_text(threshold),
        margin_level=to_text(state.margin_level),
        equity=to_text(state.equity),
        margin=to_text(state.margin),
        observed_at=timestamp(observed_at),
    )
