"""The handshake against a real simulator process: accepted, refused, and a lying server."""

from __future__ import annotations

import ipaddress
import logging
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from pipworks_devstack.mt5sim import Mt5SimProcess
from pipworks_devstack.testing import free_port
from pipworks_mtbridge.mt5 import Mt5AuthError, Mt5Client, Mt5Unavailable


async def test_handshake_succeeds_with_the_right_password(sim: Mt5SimProcess) -> None:
    async with Mt5Client(sim.url, sim.manager_login, sim.manager_password) as mt5:
        assert mt5.authenticated
        await mt5.ping()


async def test_wrong_password_is_refused_with_the_auth_retcode(
    sim: Mt5SimProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = Mt5Client(sim.url, sim.manager_login, "Wrong-Password9")
    with pytest.raises(Mt5AuthError) as caught:
        await client.connect()
    await client.close()
    assert 1000 <= caught.value.retcode < 2000
    assert "Wrong-Password9" not in str(caught.value)
    assert "Wrong-Password9" not in repr(caught.value)
    assert "Wrong-Password9" not in caplog.text


async def test_unknown_manager_login_is_refused(sim: Mt5SimProcess) -> None:
    with pytest.raises(Mt5AuthError):
        async with Mt5Client(sim.url, sim.manager_login + 1, sim.manager_password):
            pass


async def test_a_server_that_answers_the_challenge_wrongly_is_refused(tmp_path: Path) -> None:
    with Mt5SimProcess(lie=True, log_file=tmp_path / "liar.log") as liar:
        client = Mt5Client(liar.url, liar.manager_login, liar.manager_password, read_retries=0)
        with pytest.raises(Mt5AuthError, match="cli_rand_answer"):
            await client.connect()
        assert not client.authenticated
        # and no request is sent to it afterwards either
        with pytest.raises(Mt5AuthError):
            await client.get_user(500000)
        await client.close()


async def test_requests_without_a_session_get_http_403(sim: Mt5SimProcess) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{sim.url}/api/user/get", params={"login": "500000"}) as resp,
    ):
        assert resp.status == 403


async def test_raw_handshake_follows_the_documented_wire_format(sim: Mt5SimProcess) -> None:
    """The envelope and fields, spoken by hand (one keep-alive connection)."""
    from pipworks_mtbridge.mt5.protocol import answer_for, password_hash

    ph = password_hash(sim.manager_password)
    cli_rand = bytes(range(16, 32))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as http:
        async with http.get(
            f"{sim.url}/api/auth/start",
            params={
                "version": "484",
                "agent": "test",
                "login": str(sim.manager_login),
                "type": "manager",
            },
        ) as resp:
            start = await resp.json()
        assert start["retcode"] == "0 Done"
        srv_rand = bytes.fromhex(start["srv_rand"])
        async with http.get(
            f"{sim.url}/api/auth/answer",
            params={"srv_rand_answer": answer_for(ph, srv_rand).hex(), "cli_rand": cli_rand.hex()},
        ) as resp:
            answer = await resp.json()
        assert answer["retcode"] == "0 Done"
        assert answer["cli_rand_answer"] == answer_for(ph, cli_rand).hex()
        async with http.get(f"{sim.url}/api/group/get", params={"group": "real\\standard"}) as r:
            group = await r.json()
        assert group["retcode"] == "0 Done"
        assert group["answer"]["CurrencyDigits"] == "2"  # numbers are strings
        assert group["answer"]["MarginStopOut"] == "50"


async def test_unreachable_server_is_unavailable() -> None:
    client = Mt5Client(f"http://127.0.0.1:{free_port()}", 1000, "Whatever1", read_retries=1)
    with pytest.raises(Mt5Unavailable) as caught:
        await client.connect()
    assert caught.value.maybe_applied is False
    await client.close()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_handshake_over_https_verifies_the_certificate(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    with Mt5SimProcess(tls=(cert, key), log_file=tmp_path / "tls.log") as server:
        assert server.url.startswith("https://")
        trusted = ssl.create_default_context(cafile=str(cert))
        async with Mt5Client(
            server.url, server.manager_login, server.manager_password, ssl=trusted
        ) as mt5:
            await mt5.ping()
        # the default context does not trust a self-signed certificate
        untrusted = Mt5Client(
            server.url, server.manager_login, server.manager_password, read_retries=0
        )
        with pytest.raises(Mt5Unavailable, match="certificate"):
            await untrusted.connect()
        await untrusted.close()
