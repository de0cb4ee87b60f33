"""``pipworks <serve|migrate|verify-audit> <service>``.

The container image has one entry point; the Deployment and the migration Job of each
service pick the service by name. Services are imported only when chosen, so a typo
fails fast with the list of names and nothing starts.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

SERVICES = ("gateway", "identity", "kyc", "ib", "antifraud", "mtbridge")
COMMANDS = ("serve", "migrate", "verify-audit")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="pipworks", description="Start, migrate or audit a Pipworks service by name."
    )
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("service", choices=(*SERVICES, "mt5sim"))
    parser.add_argument("args", nargs=argparse.REMAINDER, help="passed to the service")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.service == "mt5sim":
        if args.command != "serve":
            parser.error("mt5sim only serves")
        from pipworks_mtbridge.mt5sim.__main__ import main as mt5sim_main

        mt5sim_main(args.args)
        return
    module = importlib.import_module(f"pipworks_{args.service}.main")
    module.main([args.command, *args.args])


if __name__ == "__main__":
    main()
