"""The ``epos-bridge`` command. Each command imports only what it needs, so the headless
commands never import Qt."""

from __future__ import annotations

import argparse
import getpass
import io
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from epos_bridge import __version__

if TYPE_CHECKING:
    from epos_bridge.config import BridgeSettings
    from epos_bridge.ports import AdapterFactory

_NO_TABLES = "keeps nothing of the bridge's in the POS database"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="epos-bridge",
        description="Connects this venue's POS to Dojo (card machines, Pay at Table, Bookings, Order and Pay).",
    )
    parser.add_argument("--version", action="version", version=f"epos-bridge {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    db = commands.add_parser("db", help="create a POS database, or attach the bridge's tables to one")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    init = db_commands.add_parser("init", help="create or migrate a reference database")
    init.add_argument(
        "path", type=_location, help="the database file to create or migrate, or a database server's URL (sqlmap)"
    )
    init.add_argument("--demo", action="store_true", help="seed a believable demo venue into a new database")
    init.add_argument(
        "--adapter",
        default="sqlite",  # the settings default (config.BridgeSettings.adapter); config loads lazily
        help="an installed adapter (epos-bridge capabilities lists them); sqlite, the default, is a reference "
        "database file; jsonfile a folder of JSON files (docs/file-database.md)",
    )
    init.add_argument(
        "--mapping", help="for an adapter that reads through a mapping (sqlmap): a file or a shipped name"
    )
    init.set_defaults(handler=_db_init)
    attach = db_commands.add_parser(
        "attach", help="add the bridge's own tables (locks, payment de-duplication, change log) to a POS's database"
    )
    attach.add_argument("path", type=_location, help="the POS's database file, or its server's URL")
    attach.add_argument("--mapping", required=True, help="the mapping the bridge reads it through: a file or a name")
    attach.add_argument("--adapter", default="sqlmap", help="an installed adapter that attaches (default: sqlmap)")
    attach.add_argument("--dry-run", action="store_true", help="print the SQL it would run and change nothing")
    attach.set_defaults(handler=_db_attach)
    detach = db_commands.add_parser(
        "detach",
        help="remove what `db attach` added to a POS's database, but the payment record (refused while a bridge "
        "serves it)",
    )
    detach.add_argument("path", type=_location, help="the POS's database file, or its server's URL")
    detach.add_argument("--adapter", default="sqlmap", help="an installed adapter that attaches (default: sqlmap)")
    detach.add_argument("--dry-run", action="store_true", help="print the SQL it would run and change nothing")
    detach.add_argument(
        "--forget-payments",
        action="store_true",
        help="also remove the bridge's payment record (which paymentIntentIds it recorded): attached again, a "
        "payment Dojo sends again would be counted twice, so it is refused while any of it is recent",
    )
    detach.set_defaults(handler=_db_detach)
    password = db_commands.add_parser(
        "password",
        help="keep a POS database server's password in the OS keyring (asked for, never on the command line)",
    )
    password.add_argument("path", type=_location, help="the server's database URL, as EPOS_BRIDGE_DB names it")
    password.add_argument("--stdin", action="store_true", help="read the password from standard input (a script)")
    password.set_defaults(handler=_db_password)

    facts = commands.add_parser(
        "facts", help="facts a mapping reads that the POS has no column for (a table's covers, the VAT number)"
    )
    facts_commands = facts.add_subparsers(dest="facts_command", required=True)
    facts_list = facts_commands.add_parser("list", help="the facts kept, and the ones the mapping reads")
    facts_set = facts_commands.add_parser("set", help="keep one fact (or --clear it)")
    for command in (facts_list, facts_set):
        command.add_argument("path", type=_location, help="the POS's database file or server URL (attached)")
        command.add_argument("--mapping", required=True, help="the mapping the bridge reads it through")
        command.add_argument(
            "--adapter", default="sqlmap", help="an installed adapter that keeps facts (default: sqlmap)"
        )
    facts_list.add_argument("--kind", help="only facts of this kind (table, area, venue, order, ...)")
    facts_list.set_defaults(handler=_facts_list)
    facts_set.add_argument(
        "kind", help="what the fact is about: table, area, venue, order, item, modifier, reservation"
    )
    facts_set.add_argument("key", help="the POS's own key of that row (venue: 1)")
    facts_set.add_argument("field", help="the fact's name, as the mapping reads it (facts list shows them)")
    facts_set.add_argument("value", nargs="?", help="its value (left out with --clear)")
    facts_set.add_argument("--clear", action="store_true", help="forget the fact")
    facts_set.set_defaults(handler=_facts_set)

    run = commands.add_parser("run", help="serve Dojo's requests with the saved settings")
    run.add_argument("--headless", action="store_true", help="no tray icon: log one line per request to stderr")
    _add_overrides(run)
    run.set_defaults(handler=_run)

    demo = commands.add_parser("demo", help="the demo: a demo venue and the local Dojo simulator, no account needed")
    demo.add_argument("--headless", action="store_true", help="no tray icon: log requests to stderr")
    demo.add_argument("--flow-interval", type=float, default=4.0, help="seconds between simulated product flows")
    demo.set_defaults(handler=_demo)

    caps = commands.add_parser("capabilities", help="what the adapter implements and what Dojo has registered")
    _add_overrides(caps)
    caps.add_argument(
        "--offline",
        action="store_true",
        help="only what the adapter (and its mapping) implements: no API key, no call to Dojo, no database opened",
    )
    caps.set_defaults(handler=_capabilities)

    doctor = commands.add_parser("doctor", help="check settings, keyring, database, gateway and API")
    _add_overrides(doctor)
    doctor.set_defaults(handler=_doctor)

    verify = commands.add_parser(
        "verify",
        help="run Dojo's EPOS tester tool flows against this till (sandbox keys only)",
        description="Ask Dojo's EPOS tester tool to run its flows against this venue's registered capabilities. "
        "Dojo drives the bridge that is already running; every step is printed. Exit code 0 when every flow "
        "succeeded, 1 when one did not, 2 when the tester tool cannot be used.",
    )
    verify.add_argument(
        "--flow", action="append", default=[], metavar="NAME", help="a flow to run (repeatable; default: every flow)"
    )
    verify.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a flow parameter (repeatable); a required order or table left out is picked from the POS",
    )
    verify.add_argument("--json", action="store_true", help="print the flows as JSON (name, status, steps) at the end")
    verify.add_argument("--list", action="store_true", help="only list the flows Dojo offers, with their parameters")
    verify.add_argument("--report", type=Path, metavar="FILE", help="also write an HTML report for the venue")
    verify.add_argument("--venue", help="the venue's name in the report (default: as the POS's bills print it)")
    verify.add_argument("--timeout", type=float, default=None, metavar="SECONDS", help="give up on a flow after this")
    _add_overrides(verify)
    verify.set_defaults(handler=_verify)

    simulate = commands.add_parser("simulate", help="run the local Dojo simulator alone")
    simulate.add_argument("--port", type=int, default=8765, help="WebSocket port of the gateway (127.0.0.1)")
    simulate.add_argument("--api-port", type=int, default=None, help="REST port (default: --port + 1)")
    simulate.add_argument("--flow-interval", type=float, default=4.0, help="seconds between simulated product flows")
    simulate.add_argument(
        "--tester-pause", type=float, default=0.2, help="seconds between the EPOS tester tool's steps (to watch them)"
    )
    simulate.set_defaults(handler=_simulate)
    return parser


OVERRIDES = {
    "db": "db_path",
    "adapter": "adapter",
    "mapping": "mapping",
    "ws_url": "ws_url",
    "api_url": "api_url",
    "data_dir": "data_dir",
    "software_house_id": "software_house_id",
    "reseller_id": "reseller_id",
}


def _add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="the POS database (overrides EPOS_BRIDGE_DB)")
    parser.add_argument("--adapter", help="the POS adapter (overrides EPOS_BRIDGE_ADAPTER)")
    parser.add_argument("--mapping", help="the mapping file or name, for sqlmap (overrides EPOS_BRIDGE_MAPPING)")
    parser.add_argument("--ws-url", help="the EPOS Data gateway URL (overrides EPOS_BRIDGE_WS_URL)")
    parser.add_argument("--api-url", help="the Dojo API URL (overrides EPOS_BRIDGE_API_URL)")
    parser.add_argument("--data-dir", help="the bridge's own state and logs (overrides EPOS_BRIDGE_DATA_DIR)")
    parser.add_argument("--software-house-id", help="overrides EPOS_BRIDGE_SOFTWARE_HOUSE_ID")
    parser.add_argument("--reseller-id", help="overrides EPOS_BRIDGE_RESELLER_ID")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {field: getattr(args, option, None) for option, field in OVERRIDES.items()}


def _settings(args: argparse.Namespace) -> BridgeSettings | None:
    from epos_bridge.config import ConfigError, load

    try:
        return load(cli_overrides=_overrides(args))
    except ConfigError as exc:
        print(f"epos-bridge: {exc}", file=sys.stderr)
        return None


def _run(args: argparse.Namespace) -> int:
    if not args.headless:
        from epos_bridge.app import run_tray

        return run_tray(_overrides(args))
    settings = _settings(args)
    if settings is None:
        return 2
    from epos_bridge.app import run_headless

    return run_headless(settings)


def _has_display() -> bool:
    """Linux without X or Wayland (a server, CI, ssh) cannot show a tray app."""
    if not sys.platform.startswith("linux"):
        return True
    return any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def _demo(args: argparse.Namespace) -> int:
    if not args.headless and not _has_display():
        print("epos-bridge: no display here, so the demo runs headless (the request log follows)", file=sys.stderr)
        args.headless = True
    if args.headless:
        from epos_bridge.app import run_demo_headless

        return run_demo_headless(args.flow_interval)
    from epos_bridge.app import run_demo_gui

    return run_demo_gui(args.flow_interval)


def _capabilities(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings is None:
        return 2
    import asyncio

    from epos_bridge.app import Bridge
    from epos_bridge.config import ConfigError

    _print_installed_adapters(settings.adapter)
    if args.offline:
        return _print_offline_capabilities(settings.adapter, settings.mapping)

    async def show() -> int:
        try:
            bridge = Bridge(settings)
        except (ConfigError, ValueError) as exc:
            print(f"epos-bridge: {exc}", file=sys.stderr)
            return 2
        try:
            implemented = sorted(c.value for c in bridge.adapter.implemented_capabilities())
            print(f"adapter {settings.adapter} implements {len(implemented)} capabilities:")
            for name in implemented:
                print(f"  {name}")
            try:
                integrations = await bridge.client.get_integrations()
            except Exception as exc:
                print(f"registered at Dojo: unknown ({exc})")
                return 1
            report = integrations.compare(bridge.adapter.implemented_capabilities())
            print(f"registered at Dojo: {len(integrations.registered_capabilities)}")
            for name in sorted(c.value for c in report.missing_at_dojo):
                print(f"  missing at Dojo: {name}")
            for name in sorted(c.value for c in report.extra_at_dojo):
                print(f"  registered but not implemented: {name}")
            return 0 if report.in_sync else 1
        finally:
            await bridge.stop()

    return asyncio.run(show())


def _doctor(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings is None:
        return 2
    import asyncio

    from epos_bridge.cli.doctor import run_checks

    checks = asyncio.run(run_checks(settings))
    for check in checks:
        print(check.line())
    return 0 if all(check.passed for check in checks) else 1


def _verify(args: argparse.Namespace) -> int:
    from epos_bridge.domain.verification import EXIT_TESTER_UNAVAILABLE, parse_assignments

    try:
        params = parse_assignments(args.param)
    except ValueError as exc:
        print(f"epos-bridge: {exc}", file=sys.stderr)
        return EXIT_TESTER_UNAVAILABLE
    settings = _settings(args)
    if settings is None:
        return EXIT_TESTER_UNAVAILABLE
    import asyncio

    from epos_bridge.verify import verify

    for stream in (sys.stdout, sys.stderr):  # Dojo's words may not fit a Windows code page
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")
    return asyncio.run(
        verify(
            settings,
            flows=args.flow,
            params=params,
            as_json=args.json,
            list_only=args.list,
            report_path=args.report,
            venue=args.venue,
            timeout_s=args.timeout,
            out=sys.stdout,
            err=sys.stderr,
        )
    )


def _simulate(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib
    import signal

    from epos_bridge.host.logs import configure_logging
    from epos_bridge.sim.simulator import DEMO_API_KEY, DEMO_SOFTWARE_HOUSE_ID, DojoSimulator

    configure_logging([DEMO_API_KEY])

    async def serve() -> None:
        api_port = args.api_port if args.api_port is not None else args.port + 1
        async with DojoSimulator(
            ws_port=args.port, api_port=api_port, tester_step_pause=args.tester_pause
        ) as simulator:
            print(f"gateway simulator: {simulator.ws_url}", flush=True)
            print(f"REST simulator:    {simulator.api_url}", flush=True)
            print(f"API key: {DEMO_API_KEY}  software-house-id: {DEMO_SOFTWARE_HOUSE_ID}", flush=True)
            stop = asyncio.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):
                    asyncio.get_running_loop().add_signal_handler(sig, stop.set)
            flows = asyncio.create_task(simulator.run_flows(args.flow_interval))
            await stop.wait()
            flows.cancel()

    asyncio.run(serve())
    return 0


def _location(text: str) -> Any:
    """EPOS_BRIDGE_DB as the command line gives it: a path, or a database server's URL."""
    from epos_bridge.ports import pos_location

    try:
        return pos_location(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} {exc}") from None


def _with_password(location: Any) -> Any:
    """A server's location with its password (EPOS_BRIDGE_DB_PASSWORD, else the OS keyring)."""
    from epos_bridge.config import ENV_DB_PASSWORD, KeyStore, KeyStoreError
    from epos_bridge.ports import ServerLocation

    if not isinstance(location, ServerLocation):
        return location
    given = os.environ.get(ENV_DB_PASSWORD)
    if given:
        return location.with_password(given)
    try:
        return location.with_password(KeyStore().get_db_password(location.url))
    except KeyStoreError as exc:
        print(f"epos-bridge: no password from the OS keyring ({exc}); trying without one", file=sys.stderr)
        return location


def _db_password(args: argparse.Namespace) -> int:
    from epos_bridge.config import KeyStore, KeyStoreError
    from epos_bridge.ports import ServerLocation

    if not isinstance(args.path, ServerLocation):
        print("epos-bridge: a password is kept for a database server's URL, not a file", file=sys.stderr)
        return 2
    if args.stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
    else:
        secret = getpass.getpass(f"Password for {args.path.user} on {args.path.host}: ")
    if not secret:
        print("epos-bridge: no password given; nothing kept", file=sys.stderr)
        return 2
    try:
        KeyStore().set_db_password(args.path.url, secret)
    except KeyStoreError as exc:
        print(f"epos-bridge: {exc}", file=sys.stderr)
        return 1
    print(f"kept the password for {args.path.url} in the OS keyring")
    return 0


def _db_factory(args: argparse.Namespace) -> AdapterFactory | None:
    """The adapter named, bound to ``--mapping`` when given (printing why not, if it cannot be)."""
    from epos_bridge.adapters.registry import installed_adapters

    adapters = installed_adapters()
    factory = adapters.get(args.adapter)
    if factory is None:
        print(f"epos-bridge: unknown adapter {args.adapter!r}; installed: {', '.join(adapters)}", file=sys.stderr)
        return None
    try:
        return factory.with_mapping(getattr(args, "mapping", None))
    except ValueError as exc:
        print(f"epos-bridge: {exc}", file=sys.stderr)
        return None


def _print_lines(work: Callable[[], list[str]]) -> int:
    from epos_bridge.ports import AdapterInitError

    try:
        lines = work()
    except (AdapterInitError, ValueError) as exc:
        print(f"epos-bridge: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


def _db_init(args: argparse.Namespace) -> int:
    """Whatever the adapter: its factory creates (or upgrades) its own storage."""
    factory = _db_factory(args)
    if factory is None:
        return 2
    return _print_lines(lambda: factory.init(_with_password(args.path), demo=args.demo))


def _db_factory_that(args: argparse.Namespace, can: Any, lacking: str) -> Any:
    """The adapter named, if it is a ``can`` (a runtime-checkable port: mypy takes no Protocol
    for ``type[T]``, so callers name the type), printing what it lacks if not; else ``None``."""
    factory = _db_factory(args)
    if factory is not None and not isinstance(factory, can):
        print(f"epos-bridge: the {args.adapter} adapter {lacking}", file=sys.stderr)
        return None
    return factory


def _db_attach(args: argparse.Namespace) -> int:
    from epos_bridge.ports import AttachableFactory

    factory: AttachableFactory | None = _db_factory_that(args, AttachableFactory, _NO_TABLES)
    if factory is None:
        return 2
    return _print_lines(lambda: factory.attach(_with_password(args.path), dry_run=args.dry_run))


def _db_detach(args: argparse.Namespace) -> int:
    from epos_bridge.ports import AttachableFactory

    factory: AttachableFactory | None = _db_factory_that(args, AttachableFactory, _NO_TABLES)
    if factory is None:
        return 2
    location = _with_password(args.path)
    return _print_lines(lambda: factory.detach(location, dry_run=args.dry_run, forget_payments=args.forget_payments))


def _facts_list(args: argparse.Namespace) -> int:
    from epos_bridge.ports import KeepsFacts

    keeper: KeepsFacts | None = _db_factory_that(args, KeepsFacts, "keeps no facts of its own")
    if keeper is None:
        return 2
    return _print_lines(lambda: keeper.list_facts(_with_password(args.path), args.kind))


def _facts_set(args: argparse.Namespace) -> int:
    from epos_bridge.ports import KeepsFacts

    if args.clear == (args.value is not None):
        print("epos-bridge: give a value, or --clear (not both)", file=sys.stderr)
        return 2
    keeper: KeepsFacts | None = _db_factory_that(args, KeepsFacts, "keeps no facts of its own")
    if keeper is None:
        return 2
    location = _with_password(args.path)
    return _print_lines(lambda: keeper.set_fact(location, args.kind, args.key, args.field, args.value))


def _print_installed_adapters(configured: str) -> None:
    """Every installed adapter and what it implements, without opening any database."""
    from epos_bridge.adapters.registry import installed_adapters

    print("installed adapters:")
    for name, factory in installed_adapters(include_broken=True).items():
        marker = "*" if name == configured else " "
        print(f" {marker} {name}: {factory.description}")
        print(f"     implements: {_implemented_by(factory)}")


def _implemented_by(factory: object) -> str:
    from epos_bridge.adapters.registry import AdapterFactory

    assert isinstance(factory, AdapterFactory)
    if factory.mappings is not None:
        return f"what its mapping declares (shipped: {', '.join(factory.mappings) or 'none'})"
    try:
        names = _capability_names(factory)
    except Exception as exc:
        return f"unknown ({exc})"
    return f"{len(names)} capabilities: {', '.join(names)}" if names else "nothing"


def _capability_names(factory: AdapterFactory) -> list[str]:
    """Capabilities come from a throwaway storage on a path that does not exist: opening does no I/O."""
    import asyncio
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        storage = factory.open(Path(scratch) / "not-opened")
        try:
            return sorted(c.value for c in storage.implemented_capabilities())
        finally:
            asyncio.run(storage.close())


def _print_offline_capabilities(adapter: str, mapping: str | None) -> int:
    """What registration would send for this adapter and mapping, without a key or Dojo."""
    from epos_bridge.adapters.registry import installed_adapters

    factory = installed_adapters().get(adapter)
    if factory is None:
        print(f"epos-bridge: no adapter named {adapter!r} is installed", file=sys.stderr)
        return 2
    try:
        names = _capability_names(factory.with_mapping(mapping))
    except ValueError as exc:  # MappingError: the mapping file names what is wrong
        print(f"epos-bridge: {exc}", file=sys.stderr)
        return 2
    through = f" through the mapping {mapping}" if mapping else ""
    print(f"adapter {adapter}{through} implements {len(names)} capabilities (registration would send these):")
    for name in names:
        print(f"  {name}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        from epos_bridge.app import run_tray

        return run_tray()
    result: int = handler(args)
    return result
