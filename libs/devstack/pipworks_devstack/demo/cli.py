"""``python -m pipworks_devstack.demo`` (what ``make demo`` runs).

By default it drives the suite ``make run`` started: the gateway on 127.0.0.1:7060, the
simulator on 127.0.0.1:7090, the bootstrap admin with the password from
``.data/dev-secrets.json``. With ``--start``, or when nothing answers on the gateway, it
starts a suite of its own in a scratch directory and stops it afterwards.

The admin needs two factors for staff actions. The first run enrols TOTP for it and keeps
the provisioning URI in ``.data/demo-admin-totp`` (mode 0600) for the next runs; an admin
enrolled some other way is given with ``PIPWORKS_DEMO_ADMIN_TOTP_URI``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from pipworks_devstack.demo.golden_path import GoldenPath
from pipworks_devstack.demo.report import print_step, print_summary
from pipworks_devstack.demo.results import StepRecord
from pipworks_devstack.demo.scenario import run_golden_path
from pipworks_devstack.demo.waiting import StepFailed
from pipworks_devstack.devsecrets import load_or_create
from pipworks_devstack.local_suite import LocalSuite
from pipworks_devstack.portal import TotpDevice

__all__ = ["main"]

DEFAULT_GATEWAY = "127.0.0.1:7060"
DEFAULT_SIM_URL = "http://127.0.0.1:7090"
DEFAULT_ADMIN_EMAIL = "admin@pipworks.local"
SECRETS_FILE = Path(".data/dev-secrets.json")
ADMIN_TOTP_FILE_NAME = "demo-admin-totp"  # next to the secrets file
ADMIN_TOTP_ENV = "PIPWORKS_DEMO_ADMIN_TOTP_URI"


@dataclass(frozen=True)
class Target:
    gateway: str
    sim_url: str
    admin_email: str
    admin_password: str
    admin_totp: TotpDevice | None
    totp_file: Path | None  # where a newly enrolled admin's URI is kept


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipworks_devstack.demo",
        description="Drive the golden path through the gateway and print every step.",
    )
    parser.add_argument("--gateway", default=DEFAULT_GATEWAY, help="HOST:PORT of the gateway")
    parser.add_argument("--sim-url", default=DEFAULT_SIM_URL, help="the MT5 simulator's URL")
    parser.add_argument("--admin-email", default=DEFAULT_ADMIN_EMAIL)
    parser.add_argument(
        "--secrets",
        type=Path,
        default=SECRETS_FILE,
        help=f"the suite's development secrets (default: {SECRETS_FILE})",
    )
    parser.add_argument(
        "--start", action="store_true", help="start a suite of its own (in a temp dir)"
    )
    parser.add_argument(
        "--timeout", type=float, default=45.0, help="seconds to wait for each async effect"
    )
    return parser.parse_args(argv)


def _answers(gateway: str) -> bool:
    with grpc.insecure_channel(gateway) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=2)
        except grpc.FutureTimeoutError:
            return False
    return True


def _running_suite(args: argparse.Namespace) -> Target:
    if not args.secrets.exists():
        raise SystemExit(f"demo: {args.secrets} is missing: start the suite with `make run`")
    secrets = load_or_create(args.secrets, [])
    totp_file = args.secrets.parent / ADMIN_TOTP_FILE_NAME
    uri = os.environ.get(ADMIN_TOTP_ENV) or (
        totp_file.read_text().strip() if totp_file.exists() else ""
    )
    return Target(
        args.gateway,
        args.sim_url,
        args.admin_email,
        secrets.admin_password,
        TotpDevice(uri) if uri else None,
        totp_file,
    )


@contextlib.contextmanager
def _target(args: argparse.Namespace) -> Iterator[Target]:
    if not args.start and _answers(args.gateway):
        yield _running_suite(args)
        return
    if not args.start:
        print(f"demo: nothing answers on {args.gateway}; starting a suite of its own", flush=True)
    with tempfile.TemporaryDirectory(prefix="pipworks-demo-") as workdir:
        print("demo: starting PostgreSQL, NATS and every service ...", flush=True)
        with LocalSuite(Path(workdir)) as suite:
            yield Target(
                suite.gateway, suite.sim_url, suite.admin_email, suite.admin_password, None, None
            )


def _keep_admin_totp(path: GoldenPath, target: Target) -> None:
    device = path.enrolled_admin_totp
    if device is None or target.totp_file is None or target.admin_totp is not None:
        return
    if target.totp_file.exists() and target.totp_file.read_text().strip() == device.uri:
        return
    target.totp_file.parent.mkdir(parents=True, exist_ok=True)
    target.totp_file.touch(mode=0o600, exist_ok=True)
    target.totp_file.write_text(device.uri + "\n")
    print(f"       (admin TOTP enrolled; its URI is kept in {target.totp_file})", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with _target(args) as target:
        print(f"demo: gateway {target.gateway}, simulator {target.sim_url}\n", flush=True)
        with grpc.insecure_channel(target.gateway) as channel:
            path: GoldenPath

            def show(record: StepRecord) -> None:
                print_step(record, sys.stdout)
                _keep_admin_totp(path, target)

            path = GoldenPath(
                channel,
                target.sim_url,
                target.admin_email,
                target.admin_password,
                admin_totp=target.admin_totp,
                on_step=show,
                timeout=args.timeout,
            )
            try:
                run_golden_path(path)
            except StepFailed as exc:
                print(f"\ndemo: {exc}", file=sys.stderr, flush=True)
                if "two-factor login on" in exc.reason:
                    print(
                        f"demo: give the admin's otpauth:// URI in {ADMIN_TOTP_ENV}",
                        file=sys.stderr,
                        flush=True,
                    )
                print_summary(path.records, sys.stdout, failed=exc.step)
                return 1
            print_summary(path.records, sys.stdout)
    return 0
