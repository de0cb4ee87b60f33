"""The ib service's settings: ``PIPWORKS_IB_*`` on top of what every service reads."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import Field

from pipworks_platform.settings import ServiceSettings


class JoinMode(StrEnum):
    OPEN = "open"  # any client who asks becomes an active partner
    INVITATION = "invitation"  # an existing IB's referral code is required
    APPROVAL = "approval"  # pending until staff approve (or identity grants the "ib" role)


class IbSettings(ServiceSettings):
    # How clients join the IB program through JoinProgram.
    ib_join_mode: JoinMode = JoinMode.APPROVAL
    # Plan used for chains where no partner has a plan assigned; empty: no commission.
    ib_default_plan: str = ""
    # Deals, deposits and account openings applied per transaction by the bridge consumer.
    ib_consumer_batch_size: int = Field(default=256, ge=1, le=2000)
    # A client is an "active trader" in link statistics with a deal within this many days.
    ib_active_trader_days: int = Field(default=30, ge=1, le=365)
    # Deposits of at least this amount count a client as funded in link statistics.
    ib_funded_minimum: Decimal = Field(default=Decimal(0), ge=0)
