"""``python -m pipworks_mtbridge.mt5sim`` (console script ``mt5sim``).

The first line on stdout is ``mt5sim listening on http(s)://HOST:PORT`` once the socket is
bound (``--port 0`` picks a free port); logs go to stderr as JSON. SIGTERM or SIGINT stop
it gracefully, saving the state file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import ssl
import sys
from pathlib import Path

from aiohttp import web

from pipworks_mtbridge.mt5sim.activity import ActivitySpec
from pipworks_mtbridge.mt5sim.app import build_app
from pipworks_mtbridge.mt5sim.runtime import SimConfig, Simulator
from pipworks_platform.logging import configure_logging, get_logger

__all__ = ["main", "parse_args"]

log = get_logger(__name__)
PASSWORD_ENV = "MT5SIM_MANAGER_PASSWORD"  # noqa: S105 - a variable name, not a value
AMBIENT_ENV = "MT5SIM_AMBIENT_DEALS_PER_SECOND"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mt5sim", description="MT5 manager Web API simulator")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback)")
    parser.add_argument("--port", type=int, default=8443, help="0 picks a free port")
    parser.add_argument("--manager-login", type=int, default=1000, help="the manager account")
    parser.add_argument(
        "--manager-password",
        default=None,
        help=f"prefer the {PASSWORD_ENV} environment variable (argv is visible to ps)",
    )
    parser.add_argument(
        "--state-file", type=Path, default=None, help="JSON state: loaded on start, saved"
    )
    parser.add_argument("--seed", type=int, default=1, help="random-walk and activity seed")
    parser.add_argument(
        "--tick-interval", type=float, default=0.25, help="seconds per price step; 0 = manual"
    )
    parser.add_argument(
        "--save-interval", type=float, default=5.0, help="seconds between saves of changes"
    )
    parser.add_argument(
        "--ambient-deals-per-second",
        type=float,
        default=None,
        help="background deals over every login that can trade (0 = none; default: the"
        f" {AMBIENT_ENV} environment variable, else 0)",
    )
    parser.add_argument("--tls-cert", type=Path, default=None, help="PEM chain: serve HTTPS")
    parser.add_argument("--tls-key", type=Path, default=None, help="PEM private key")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--lie", action="store_true", help=argparse.SUPPRESS)  # tests only
    args = parser.parse_args(argv)
    if args.ambient_deals_per_second is None:
        raw = os.environ.get(AMBIENT_ENV, "").strip() or "0"
        try:
            args.ambient_deals_per_second = float(raw)
        except ValueError:
            parser.error(f"{AMBIENT_ENV} must be a number of deals per second")
    if not 0 <= args.ambient_deals_per_second <= 100_000:
        parser.error("the ambient rate must be between 0 and 100000 deals per second")
    return args


async def serve(args: argparse.Namespace, password: str) -> None:
    config = SimConfig(
        manager_login=args.manager_login,
        manager_password=password,
        state_file=args.state_file,
        seed=args.seed,
        tick_interval=args.tick_interval,
        save_interval=args.save_interval,
        lie=args.lie,
    )
    sim = Simulator(config)
    tls = None
    if args.tls_cert is not None:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    runner = web.AppRunner(build_app(sim), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, args.host, args.port, ssl_context=tls)
        await site.start()
        port = runner.addresses[0][1]
        host = "127.0.0.1" if args.host in ("", "0.0.0.0", "::") else args.host
        scheme = "https" if tls else "http"
        print(f"mt5sim listening on {scheme}://{host}:{port}", flush=True)
        if args.ambient_deals_per_second > 0:
            sim.activities.start(
                ActivitySpec.ambient(args.ambient_deals_per_second, list(sim.state.feed.symbols))
            )
        log.info(
            "mt5sim started",
            port=port,
            users=len(sim.state.users),
            deals=len(sim.state.deals),
            state_file=str(args.state_file) if args.state_file else None,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("mt5sim stopping")
    finally:
        await runner.cleanup()  # stops activities and saves the state
    log.info("mt5sim stopped", deals=len(sim.state.deals))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging("mt5sim", args.log_level, stream=sys.stderr)
    password = args.manager_password or os.environ.get(PASSWORD_ENV, "")
    if not password:
        sys.exit(f"mt5sim: set {PASSWORD_ENV} or --manager-password")
    asyncio.run(serve(args, password))
