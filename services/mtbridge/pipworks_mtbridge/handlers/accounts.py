"""Opening trading accounts and managing them: leverage, trading rights, reads."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from pipworks_mtbridge import commands
from pipworks_mtbridge.adapters.repositories import AccountRepository, OpeningRepository
from pipworks_mtbridge.domain.accounts import GroupTerms, Rights, TradingAccount
from pipworks_mtbridge.domain.errors import PlatformNotFound
from pipworks_mtbridge.domain.passwords import generate_password
from pipworks_mtbridge.domain.ports import AccountState, NewAccount
from pipworks_mtbridge.handlers import events
from pipworks_mtbridge.handlers.context import Caller, Deps, TradingServer
from pipworks_mtbridge.handlers.platform_calls import platform_errors
from pipworks_platform.errors import FailedPrecondition, InvalidArgument, NotFound

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class OpenedAccount:
    account: TradingAccount
    # Returned once, on the call that created the login; None on a repeated request.
    password: str | None = None
    investor_password: str | None = None


async def open_account(
    deps: Deps, cmd: commands.OpenAccount, *, key: str | None = None
) -> OpenedAccount:
    """Open a login for a user; the same opening key never opens a second one.

    The opening is recorded (committed) before the platform is asked, and completed
    under a row lock, so concurrent or repeated requests wait and then see the result.
    """
    server = deps.server(cmd.server)
    if not server.manages(cmd.group):
        raise InvalidArgument.for_field("group", f"must be a group under {server.group_prefix!r}")
    terms = await _group_terms(server, cmd.group)
    if cmd.currency and cmd.currency != terms.currency:
        raise InvalidArgument.for_field("currency", f"the group's currency is {terms.currency}")
    _check_leverage(terms, cmd.leverage)
    # One key per opening: the caller's request id, or a fresh one without it.
    opening_key = key or f"request:{cmd.request_id or uuid.uuid4()}"
    async with deps.uow() as uow:
        await OpeningRepository(uow.session).claim(
            opening_key, cmd.user_id, server.name, deps.clock()
        )
        await uow.commit()
    async with deps.uow() as uow:
        opening = await OpeningRepository(uow.session).lock(opening_key)
        assert opening is not None
        accounts = AccountRepository(uow.session)
        if (opening.user_id, opening.server) != (cmd.user_id, server.name):
            raise FailedPrecondition(
                "the request id was used for another account", reason="REQUEST_ID_REUSED"
            )
        if opening.login is not None:
            existing = await accounts.get(opening.server, opening.login)
            assert existing is not None
            return OpenedAccount(existing)
        password, investor = generate_password(), generate_password()
        with platform_errors(server.name):
            login = await server.platform.open_account(
                NewAccount(
                    group=terms.name,
                    leverage=cmd.leverage,
                    name=f"Pipworks {cmd.user_id}",
                    email="",
                    password=password,
                    investor_password=investor,
                )
            )
        now = deps.clock()
        account = TradingAccount(
            server=server.name,
            login=login,
            user_id=cmd.user_id,
            group=terms.name,
            currency=terms.currency,
            currency_digits=terms.currency_digits,
            leverage=cmd.leverage,
            rights=Rights(),
            opened_at=now,
        )
        await accounts.add(account)
        await OpeningRepository(uow.session).complete(opening_key, login, now)
        uow.emit(events.account_opened(account))
        await uow.commit()
    log.info("trading account opened", server=server.name, login=login, user_id=str(cmd.user_id))
    return OpenedAccount(account, password, investor)


async def open_live_account(deps: Deps, user_id: uuid.UUID, currency: str) -> OpenedAccount | None:
    """The account a client gets when KYC approves them: one per user, ever."""
    plan = deps.config.kyc_account
    if plan is None:
        log.warning("kyc approved but no live account is configured", user_id=str(user_id))
        return None
    cmd = commands.OpenAccount(
        user_id=user_id,
        server=plan.server,
        group=plan.group,
        leverage=plan.leverage,
        currency=currency,
    )
    return await open_account(deps, cmd, key=f"kyc:{user_id}")


async def get_account(
    deps: Deps, caller: Caller, ref: commands.AccountRef
) -> tuple[TradingAccount, AccountState]:
    account = await load_account(deps, caller, ref)
    server = deps.server(ref.server)
    with platform_errors(server.name):
        state = await server.platform.account_state(account.login)
    return account, state


async def list_accounts(
    deps: Deps, caller: Caller, cmd: commands.ListAccounts
) -> tuple[list[TradingAccount], commands.AccountCursor | None]:
    user_id = owner_in_scope(caller, cmd.user_id)
    async with deps.uow() as uow:
        found = await AccountRepository(uow.session).page_of_user(
            user_id, limit=cmd.page_size + 1, after=cmd.after
        )
    page, more = found[: cmd.page_size], len(found) > cmd.page_size
    last = page[-1] if more and page else None
    return page, (commands.AccountCursor(last.opened_at, last.server, last.login) if last else None)


async def change_leverage(
    deps: Deps, caller: Caller, cmd: commands.ChangeLeverage
) -> TradingAccount:
    account = await load_account(deps, caller, cmd.account)
    server = deps.server(account.server)
    terms = await _group_terms(server, account.group)
    _check_leverage(terms, cmd.leverage)
    async with deps.uow() as uow:
        accounts = AccountRepository(uow.session)
        locked = await accounts.get(account.server, account.login, for_update=True)
        assert locked is not None
        with platform_errors(server.name):
            await server.platform.set_leverage(locked.login, cmd.leverage)
        changed = locked.with_leverage(cmd.leverage)
        await accounts.save(changed)
        await uow.commit()
    return changed


async def set_trading_enabled(
    deps: Deps, caller: Caller, cmd: commands.SetTradingEnabled
) -> TradingAccount:
    account = await load_account(deps, caller, cmd.account)
    return await change_rights(
        deps,
        account.server,
        account.login,
        lambda rights: Rights(trading=cmd.enabled, withdrawals=rights.withdrawals),
    )


async def change_rights(
    deps: Deps, server_name: str, login: int, change: Callable[[Rights], Rights]
) -> TradingAccount:
    """Change an account's rights on the platform and in the bridge, under a row lock.

    The platform is given absolute rights, so a repeated change is harmless.
    """
    server = deps.server(server_name)
    async with deps.uow() as uow:
        accounts = AccountRepository(uow.session)
        account = await accounts.get(server_name, login, for_update=True)
        if account is None:
            raise NotFound("trading account", f"{server_name}:{login}", reason="ACCOUNT_NOT_FOUND")
        rights = change(account.rights)
        with platform_errors(server.name):
            await server.platform.set_rights(login, rights)
        changed = account.with_rights(rights)
        await accounts.save(changed)
        await uow.commit()
    return changed


async def load_account(deps: Deps, caller: Caller, ref: commands.AccountRef) -> TradingAccount:
    deps.server(ref.server)
    async with deps.uow() as uow:
        account = await AccountRepository(uow.session).get(ref.server, ref.login)
    return caller.require_account(account, ref.server, ref.login)


def owner_in_scope(caller: Caller, user_id: uuid.UUID | None) -> uuid.UUID:
    """The user a list is about: the caller by default; staff may name anyone."""
    if user_id is None:
        if caller.user_id is None:
            raise InvalidArgument.for_field("user_id", "is required for service callers")
        return caller.user_id
    caller.require_access(user_id)
    return user_id


async def _group_terms(server: TradingServer, group: str) -> GroupTerms:
    with platform_errors(server.name):
        try:
            return await server.platform.group_terms(group)
        except PlatformNotFound:
            raise InvalidArgument.for_field("group", "is not a group on this server") from None


def _check_leverage(terms: GroupTerms, leverage: int) -> None:
    if not terms.allows_leverage(leverage):
        raise InvalidArgument.for_field(
            "leverage",
            f"must be between {terms.leverage_min} and {terms.leverage_max} for this group",
            reason="LEVERAGE_OUT_OF_RANGE",
        )
