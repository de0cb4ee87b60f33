"""The golden path over the gateway, one small method per step.

Every call goes through the gateway as the broker's portal, back office and cashier
would make it; only the market itself is simulated (the MT5 simulator's ``/sim/...``
control API trades for the client and shows the MT5 user record). Each step returns a
small result with the ids it involved and records a ``StepRecord`` for the summary, so
the printed demo and the end-to-end test run the same code::

    path = GoldenPath(channel, sim_url, admin_email, admin_password)
    with path.quiet_market():
        staff = path.staff()
        ...
"""

from __future__ import annotations

from pipworks_devstack.demo.client_steps import ClientSteps
from pipworks_devstack.demo.driver import LIVE_GROUP, LIVE_SERVER, PAGE, RAPID_IN_OUT_RULE
from pipworks_devstack.demo.money_steps import MoneySteps
from pipworks_devstack.demo.partner_steps import PartnerSteps

__all__ = ["LIVE_GROUP", "LIVE_SERVER", "PAGE", "RAPID_IN_OUT_RULE", "GoldenPath"]


class GoldenPath(PartnerSteps, ClientSteps, MoneySteps):
    """The broker's day from referral to IB payout, driven through ``channel`` (the gateway).

    ``on_step`` is called with each finished step (the CLI prints it). ``timeout`` bounds
    every wait for an asynchronous effect (an event crossing services).
    """
