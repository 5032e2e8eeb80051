"""The ``epos-bridge`` command. Each command imports only what it needs, so the headless
commands never import Qt."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from epos_bridge import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="epos-bridge",
        description="Connects this venue's POS to Dojo (card machines, Pay at Table, Bookings, Order and Pay).",
    )
    parser.add_argument("--version", action="version", version=f"epos-bridge {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    db = commands.add_parser("db", help="manage the reference POS database")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    init = db_commands.add_parser("init", help="create or migrate a reference database")
    init.add_argument("path", type=Path, help="the database file to create or migrate")
    init.add_argument("--demo", action="store_true", help="seed a believable demo venue into a new database")
    init.set_defaults(handler=_db_init)
    return parser


def _db_init(args: argparse.Namespace) -> int:
    from epos_bridge.adapters.sqlite.setup import DatabaseInitError, init_database

    try:
        report = init_database(args.path, demo=args.demo, now=datetime.now(UTC))
    except DatabaseInitError as exc:
        print(f"epos-bridge: {exc}", file=sys.stderr)
        return 1
    if report.from_version == report.to_version:
        print(f"{report.path}: reference schema v{report.to_version}, already current")
    else:
        print(f"{report.path}: reference schema v{report.from_version} -> v{report.to_version}")
    if report.demo is not None:
        d = report.demo
        print(
            f"demo venue: {d.areas} areas, {d.tables} tables, {d.open_orders} open orders, "
            f"{d.seated_parties} seated parties, {d.reservations} reservations"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    result: int = handler(args)
    return result
