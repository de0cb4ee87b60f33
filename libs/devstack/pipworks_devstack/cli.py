"""Command line of the local stack: ``pipworks-dev run`` / ``python -m pipworks_devstack run``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pipworks_devstack.config import DEFAULT_CONFIG_PATH, ConfigError, load_config
from pipworks_devstack.runner import SuiteRunner


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipworks-dev",
        description="Run the Pipworks suite locally on embedded PostgreSQL and NATS.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="start PostgreSQL, NATS and every configured service; Ctrl-C stops them",
        description="Start PostgreSQL, NATS and every configured service until Ctrl-C. "
        "Relative paths in the config resolve against the current directory.",
    )
    run.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        metavar="PATH",
        help=f"suite definition (default: {DEFAULT_CONFIG_PATH})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The runner's own notices go to stderr; stdout carries the services' JSON logs
    # and the banner.
    logging.basicConfig(level=logging.INFO, format="pipworks-dev: %(message)s", stream=sys.stderr)
    try:
        config = load_config(args.config, base_dir=Path.cwd())
    except ConfigError as exc:
        logging.getLogger("pipworks_devstack").error("%s", exc)
        return 2
    return asyncio.run(SuiteRunner(config).run())
