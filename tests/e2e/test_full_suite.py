"""The whole local suite comes up as ``make run`` starts it and signs callers in."""

from __future__ import annotations

import grpc
import pytest

from pipworks.identity.v1 import identity_service_pb2 as identity_pb
from pipworks_devstack.local_suite import LocalSuite
from pipworks_devstack.portal import Portal

pytestmark = pytest.mark.xdist_group("e2e-full-suite")


def test_every_service_restarts_serving_and_a_client_and_staff_sign_in(full_suite: LocalSuite):
    with grpc.insecure_channel(full_suite.gateway) as channel:
        portal = Portal(channel)
        client = portal.sign_up()
        assert client.roles == ["client"]
        assert client.aal == 1
        client = portal.enable_totp(client)
        assert client.aal == 2
        again = portal.sign_in(client.email, client.password, client.totp)
        assert again.aal == 2
        assert again.access_token != client.access_token

        admin = portal.sign_in(full_suite.admin_email, full_suite.admin_password)
        assert admin.aal == 2
        officer = portal.create_staff(admin, [identity_pb.ROLE_COMPLIANCE])
        assert officer.roles == ["compliance"]
        assert officer.aal == 2

    before = full_suite.pid("ib")
    full_suite.kill("ib")
    assert not full_suite.is_running("ib")
    full_suite.start("ib")
    assert full_suite.is_running("ib")
    assert full_suite.pid("ib") != before
