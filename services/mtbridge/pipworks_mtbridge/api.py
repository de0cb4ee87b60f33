"""gRPC surface of the mtbridge service: proto in, command, use case, proto out.

Who may call what is decided before any of this runs, by the platform's AuthInterceptor
from each method's ``(pipworks.common.v1.policy)``; which accounts a caller may touch is
decided by the handlers (clients their own, dealers and admins every account).
"""

from __future__ import annotations

from collections.abc import Callable

import grpc

from pipworks.common.v1 import pagination_pb2, service_info_pb2
from pipworks.mtbridge.v1 import mtbridge_service_pb2 as pb
from pipworks.mtbridge.v1 import mtbridge_service_pb2_grpc as pb_grpc
from pipworks_mtbridge import validation
from pipworks_mtbridge.adapters.repositories.deals import MirroredDeal
from pipworks_mtbridge.domain.accounts import TradingAccount
from pipworks_mtbridge.domain.balance import BalanceOperation, OperationKind
from pipworks_mtbridge.domain.deals import DealAction, DealEntry
from pipworks_mtbridge.domain.money import to_text
from pipworks_mtbridge.domain.ports import AccountState, Position
from pipworks_mtbridge.handlers import Caller, Deps, accounts, balance, history
from pipworks_platform.auth import require_principal

Context = grpc.aio.ServicerContext

ACTION_TO_PROTO = {
    DealAction.BUY: pb.DEAL_ACTION_BUY,
    DealAction.SELL: pb.DEAL_ACTION_SELL,
    DealAction.BALANCE: pb.DEAL_ACTION_BALANCE,
    DealAction.CREDIT: pb.DEAL_ACTION_CREDIT,
}
ENTRY_TO_PROTO = {
    DealEntry.IN: pb.DEAL_ENTRY_IN,
    DealEntry.OUT: pb.DEAL_ENTRY_OUT,
    DealEntry.INOUT: pb.DEAL_ENTRY_INOUT,
    DealEntry.OUT_BY: pb.DEAL_ENTRY_OUT_BY,
}


class MtBridgeApi(pb_grpc.MtBridgeServiceServicer):
    def __init__(
        self,
        deps: Deps,
        parse: validation.RequestParser,
        describe: Callable[[], service_info_pb2.ServiceInfo],
    ) -> None:
        self._deps = deps
        self._parse = parse
        self._describe = describe

    async def OpenAccount(
        self, request: pb.OpenAccountRequest, context: Context
    ) -> pb.OpenAccountResponse:
        opened = await accounts.open_account(self._deps, self._parse.open_account(request))
        return pb.OpenAccountResponse(
            account=_account(opened.account),
            password=opened.password or "",
            investor_password=opened.investor_password or "",
        )

    async def GetAccount(
        self, request: pb.GetAccountRequest, context: Context
    ) -> pb.GetAccountResponse:
        caller = _caller()
        account, state = await accounts.get_account(
            self._deps, caller, self._parse.account(request)
        )
        return pb.GetAccountResponse(account=_account(account), state=_state(state))

    async def ListAccounts(
        self, request: pb.ListAccountsRequest, context: Context
    ) -> pb.ListAccountsResponse:
        caller = _caller()
        cmd = self._parse.list_accounts(request)
        found, cursor = await accounts.list_accounts(self._deps, caller, cmd)
        token = validation.account_token(cursor, cmd.user_id) if cursor else ""
        return pb.ListAccountsResponse(
            accounts=[_account(a) for a in found],
            page=pagination_pb2.PageResponse(next_page_token=token),
        )

    async def ChangeLeverage(
        self, request: pb.ChangeLeverageRequest, context: Context
    ) -> pb.ChangeLeverageResponse:
        caller = _caller()
        changed = await accounts.change_leverage(
            self._deps, caller, self._parse.change_leverage(request)
        )
        return pb.ChangeLeverageResponse(account=_account(changed))

    async def Deposit(self, request: pb.DepositRequest, context: Context) -> pb.DepositResponse:
        op = await self._move(request, OperationKind.DEPOSIT)
        return pb.DepositResponse(operation=op)

    async def Withdraw(self, request: pb.WithdrawRequest, context: Context) -> pb.WithdrawResponse:
        op = await self._move(request, OperationKind.WITHDRAWAL)
        return pb.WithdrawResponse(operation=op)

    async def Credit(self, request: pb.CreditRequest, context: Context) -> pb.CreditResponse:
        op = await self._move(request, OperationKind.CREDIT)
        return pb.CreditResponse(operation=op)

    async def ListDeals(
        self, request: pb.ListDealsRequest, context: Context
    ) -> pb.ListDealsResponse:
        caller = _caller()
        cmd = self._parse.list_deals(request)
        page = await history.list_deals(self._deps, caller, cmd)
        token = validation.deal_token(page.next_cursor, cmd.scope) if page.next_cursor else ""
        return pb.ListDealsResponse(
            deals=[_deal(d) for d in page.deals],
            page=pagination_pb2.PageResponse(next_page_token=token),
        )

    async def ListPositions(
        self, request: pb.ListPositionsRequest, context: Context
    ) -> pb.ListPositionsResponse:
        caller = _caller()
        cmd = self._parse.list_positions(request)
        page = await history.list_positions(self._deps, caller, cmd)
        token = validation.position_token(page.next_cursor, cmd.scope) if page.next_cursor else ""
        return pb.ListPositionsResponse(
            positions=[_position(server, p) for server, p in page.positions],
            page=pagination_pb2.PageResponse(next_page_token=token),
        )

    async def SetTradingEnabled(
        self, request: pb.SetTradingEnabledRequest, context: Context
    ) -> pb.SetTradingEnabledResponse:
        caller = _caller()
        changed = await accounts.set_trading_enabled(
            self._deps, caller, self._parse.set_trading_enabled(request)
        )
        return pb.SetTradingEnabledResponse(account=_account(changed))

    async def GetServiceInfo(
        self, request: pb.GetServiceInfoRequest, context: Context
    ) -> pb.GetServiceInfoResponse:
        return pb.GetServiceInfoResponse(info=self._describe())

    async def _move(
        self,
        request: pb.DepositRequest | pb.WithdrawRequest | pb.CreditRequest,
        kind: OperationKind,
    ) -> pb.BalanceOperation:
        caller = _caller()
        op = await balance.move_money(self._deps, caller, self._parse.move_money(request, kind))
        return _operation(op)


def _caller() -> Caller:
    principal = require_principal()
    return Caller(subject=principal.subject, roles=principal.roles)


def _account(account: TradingAccount) -> pb.TradingAccount:
    message = pb.TradingAccount(
        server=account.server,
        login=account.login,
        user_id=str(account.user_id),
        group=account.group,
        currency=account.currency,
        leverage=account.leverage,
        trading_enabled=account.rights.trading,
        withdrawals_enabled=account.rights.withdrawals,
    )
    message.open_time.FromDatetime(account.opened_at)
    return message


def _state(state: AccountState) -> pb.AccountState:
    return pb.AccountState(
        balance=to_text(state.balance),
        credit=to_text(state.credit),
        equity=to_text(state.equity),
        margin=to_text(state.margin),
        free_margin=to_text(state.free_margin),
        margin_level=to_text(state.margin_level),
    )


def _operation(op: BalanceOperation) -> pb.BalanceOperation:
    message = pb.BalanceOperation(
        operation_id=str(op.id),
        server=op.server,
        login=op.login,
        amount=to_text(op.amount),
        currency=op.currency,
        deal_ticket=op.deal_ticket or 0,
        idempotency_key=op.idempotency_key,
    )
    if op.completed_at is not None:
        message.complete_time.FromDatetime(op.completed_at)
    return message


def _deal(mirrored: MirroredDeal) -> pb.Deal:
    deal = mirrored.deal
    message = pb.Deal(
        server=mirrored.server,
        login=deal.login,
        user_id=str(mirrored.user_id),
        ticket=deal.ticket,
        position_id=deal.position_id,
        action=ACTION_TO_PROTO.get(deal.action, pb.DEAL_ACTION_OTHER),  # type: ignore[call-overload]
        entry=ENTRY_TO_PROTO.get(deal.entry, pb.DEAL_ENTRY_UNSPECIFIED),  # type: ignore[call-overload]
        symbol=deal.symbol,
        volume=to_text(deal.volume_lots),
        price=to_text(deal.price),
        profit=to_text(deal.profit),
        commission=to_text(deal.commission),
        swap=to_text(deal.swap),
        comment=deal.comment,
    )
    message.execute_time.FromDatetime(deal.time)
    return message


def _position(server: str, position: Position) -> pb.Position:
    message = pb.Position(
        server=server,
        login=position.login,
        position_id=position.position_id,
        symbol=position.symbol,
        action=ACTION_TO_PROTO.get(position.action, pb.DEAL_ACTION_OTHER),  # type: ignore[call-overload]
        volume=to_text(position.volume_lots),
        open_price=to_text(position.open_price),
        current_price=to_text(position.current_price),
        profit=to_text(position.profit),
        swap=to_text(position.swap),
    )
    message.open_time.FromDatetime(position.opened_at)
    return message
