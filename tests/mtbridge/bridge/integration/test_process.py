"""The bridge as its own process: a bad server list stops it at once, naming the variable
and never echoing a password."""

from __future__ import annotations

import os
import subprocess
import sys

SECRET = "Do-Not-Print-Me-42"


def test_a_bad_server_list_exits_with_the_variable_named() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPWORKS_")}
    env.update(
        {
            "PIPWORKS_DATABASE_URL": "postgresql://bridge@127.0.0.1:1/bridge",
            "PIPWORKS_MTBRIDGE_SERVERS": "mt5-live=https://mt5.example.com|1000|real\\,"
            "mt5-demo=https://demo.example.com|1001|demo\\",
            "PIPWORKS_MTBRIDGE_PASSWORD_MT5_LIVE": SECRET,
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", "pipworks_mtbridge"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "PIPWORKS_MTBRIDGE_SERVERS" in result.stderr
    assert "PIPWORKS_MTBRIDGE_PASSWORD_MT5_DEMO" in result.stderr
    assert SECRET not in result.stdout + result.stderr
