"""The composition root: builds the bridge from settings and wires its parts.

:class:`Bridge` is the headless bridge (no Qt): the POS adapter, the dispatcher, the
idempotency store, the gateway session and the Dojo REST client. The tray app (``ui/``) builds
the same :class:`Bridge` and only observes and commands it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from epos_bridge.adapters.registry import installed_adapters
from epos_bridge.adapters.sqlite.setup import init_database
from epos_bridge.config import ENV_API_KEY, ENV_VARS, BridgeSettings, ConfigError, dojo_credentials, settings_secrets
from epos_bridge.diagnostics import RecentRequests
from epos_bridge.dojo_api import DojoClient, RegistrationState
from epos_bridge.domain.events import DomainEvent
from epos_bridge.gateway.connection_state import ConnectionStatus
from epos_bridge.gateway.policy import GatewayConfigError
from epos_bridge.gateway.session import GatewaySession, GatewaySettings
from epos_bridge.host.crash import CrashHandler
from epos_bridge.host.garbage import tune_for_serving
from epos_bridge.host.instance import (
    EXIT_ALREADY_SERVING,
    AlreadyServing,
    InstanceLock,
    Venue,
    VenueLockError,
    clear_stale_channels,
    new_raise_channel,
)
from epos_bridge.host.logs import configure_logging
from epos_bridge.host.private_files import private_dir, private_file
from epos_bridge.host.tls import dojo_http_client
from epos_bridge.ports import AdapterFactory, CallContext, PosAdapter, PosLocation, ServerLocation, ShowsOnTheTill
from epos_bridge.protocol.dojo import InvalidCredentials, redact
from epos_bridge.protocol.jsonrpc import new_trace_id, printable_id
from epos_bridge.protocol.params import PagedOrders, SearchOrdersParams
from epos_bridge.protocol.redaction import KnownSecrets
from epos_bridge.services.activity import LockBoard, PaymentLogEntry
from epos_bridge.services.counter import CounterPayments
from epos_bridge.services.dispatcher import Dispatcher, Served
from epos_bridge.services.events import EventRouter
from epos_bridge.services.idempotent_serve import IdempotentServe
from epos_bridge.services.listeners import Listeners
from epos_bridge.services.pos_calls import serve
from epos_bridge.services.pos_connection import CurrentPos, PosConnection, PosConnections
from epos_bridge.services.pos_events import PosEventRelay, RelayStatus
from epos_bridge.services.registration import Registration
from epos_bridge.services.tasks import TaskSet
from epos_bridge.state.idempotency import IdempotencyStore
from epos_bridge.state.outbox import OutboxStore
from epos_bridge.state.payment_log import PaymentLogStore
from epos_bridge.state.terminal_sessions import TerminalSessionStore

log = logging.getLogger(__name__)
request_log = logging.getLogger("epos_bridge.requests")

STATE_DB_NAME = "bridge-state.db"
DEMO_TESTER_PAUSE_S = 0.2
"""The demo's EPOS tester tool pauses between steps, so they can be watched arriving."""


def adapter_factory(settings: BridgeSettings) -> AdapterFactory:
    """The configured kind of POS storage (built-in or installed through the
    ``epos_bridge.adapters`` entry point); a bad choice is a ConfigError naming the setting."""
    adapters = installed_adapters()
    factory = adapters.get(settings.adapter)
    if factory is None:
        installed = ", ".join(adapters)
        raise ConfigError([(ENV_VARS["adapter"], f"unknown adapter {settings.adapter!r}; installed: {installed}")])
    if factory.mappings is not None and settings.mapping is None:
        shipped = f"one shipped with it ({', '.join(factory.mappings)})" if factory.mappings else "a file"
        needs = f"the {settings.adapter} adapter needs a mapping: a file, or {shipped}"
        raise ConfigError([(ENV_VARS["mapping"], needs)])
    try:
        return factory.with_mapping(settings.mapping)
    except ValueError as exc:
        raise ConfigError([(ENV_VARS["mapping"], str(exc))]) from exc


def till_warnings(settings: BridgeSettings) -> list[str]:
    """Where the configured storage would leave a Dojo payment off the POS's own screens
    (:class:`epos_bridge.ports.ShowsOnTheTill`); a setting that does not load says so."""
    try:
        factory = adapter_factory(settings)
    except ConfigError as exc:
        return [f"the POS adapter settings do not load: {exc}"]
    return factory.till_warnings() if isinstance(factory, ShowsOnTheTill) else []


def locked_database(location: PosLocation | None) -> Path | None:
    """What the venue lock locks for the POS's storage: the file or folder itself, or for a
    database server a lock beside a name made of its URL in the machine's temporary folder, so
    two bridges on one till never serve the same server database (two tills are not stopped)."""
    if not isinstance(location, ServerLocation):
        return location
    digest = hashlib.sha256(location.url.encode("utf-8")).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"epos-bridge-server-{digest}"


def open_adapter(settings: BridgeSettings) -> PosAdapter:
    """The configured POS adapter, opened on the configured database."""
    factory = adapter_factory(settings)
    if settings.db_path is None:
        raise ConfigError([(ENV_VARS["db_path"], "the POS database path is not set")])
    return serve(factory.open(settings.pos_location or settings.db_path))


def gateway_settings(settings: BridgeSettings) -> GatewaySettings:
    try:
        credentials = dojo_credentials(settings)
    except InvalidCredentials as exc:
        raise GatewayConfigError(str(exc)) from None  # the session's word for settings it cannot use
    return GatewaySettings(
        credentials=credentials,
        ws_url=settings.ws_url,
        allow_insecure=settings.allow_insecure,
        proxy=settings.proxy,
        max_frame_bytes=settings.max_frame_bytes,
    )


def http_client(settings: BridgeSettings) -> httpx.AsyncClient:
    """The REST half's HTTP client: the OS trust store, as the WebSocket uses (epos_bridge/host/tls.py)."""
    return dojo_http_client(settings.api_url, settings.proxy)


CONNECTION_FIELDS = (
    "ws_url",
    "api_url",
    "software_house_id",
    "reseller_id",
    "allow_insecure",
    "proxy",
    "max_frame_bytes",
)
POS_FIELDS = ("adapter", "db_path", "mapping")


def dojo_client(settings: BridgeSettings, http: httpx.AsyncClient) -> DojoClient:
    return DojoClient(
        http,
        credentials=dojo_credentials(settings),
        base_url=settings.api_url,
        allow_insecure=settings.allow_insecure,
    )


class Bridge:
    """The running bridge, composed of its parts. ``start()`` returns once serving has begun;
    ``stop()`` is clean. It builds and wires; the rules live in the parts it composes."""

    def __init__(
        self,
        settings: BridgeSettings,
        *,
        http: httpx.AsyncClient | None = None,
        secrets: KnownSecrets | None = None,
        venue_lock: InstanceLock | None = None,
    ) -> None:
        if settings.api_key is None:
            raise ConfigError([(ENV_API_KEY, "no Dojo API key: enter it in Settings → API key (kept in the OS "
                                             f"keyring), or set {ENV_API_KEY} for a service")])  # fmt: skip
        self.secrets = secrets if secrets is not None else KnownSecrets()
        """Every key and proxy password this process has met; the log filter, the crash handler and
        diagnostics share it, so a key changed in Settings is redacted everywhere at once."""
        self.secrets.add(*settings_secrets(settings))
        self.settings = settings
        self._venue_lock = venue_lock
        """The single-instance lock this process holds: it follows the POS database and the key."""
        self._lock_venue(settings)  # before anything opens: another bridge serving it raises here
        self._http = http or http_client(settings)
        self._owns_http = http is None
        self.client = dojo_client(settings, self._http)
        state_db = private_file(private_dir(settings.data_dir) / STATE_DB_NAME)  # 0700 folder, 0600 database
        self.store = IdempotencyStore(state_db)
        self.payment_log = PaymentLogStore(state_db)
        self.outbox = OutboxStore(state_db)
        self.terminal_sessions = TerminalSessionStore(state_db)
        self.events = EventRouter(self.payment_log)
        self._outbox_listeners: Listeners[RelayStatus] = Listeners("POS-event outbox")
        self.connections = PosConnections(
            self._connection(settings), self.outbox, self._send_pos_event, on_status=self._outbox_listeners.emit
        )
        # Each request is handed to the connection current when it arrives, and finishes there.
        self._serve = IdempotentServe(self.store, lambda request: self.pos.handle(request))
        self.counter = CounterPayments(
            self.client, lambda: self.pos, self.terminal_sessions, publish=self.events.publish
        )
        self.session = GatewaySession(gateway_settings(settings), self._serve, on_served=self._served)
        self.registrar = Registration(self.client, lambda: self.adapter.implemented_capabilities())
        self._served_listeners: Listeners[Served] = Listeners("served request")
        self.recent_requests = RecentRequests()
        """The last requests with their outcomes, for Export diagnostics."""
        self._served_listeners.add(self.recent_requests.record)
        self.crashes = CrashHandler(secrets=self.secrets)
        """Logs (redacted) and reports any unhandled exception, so the bridge keeps serving."""
        self._tasks = TaskSet("bridge")
        self._stopped = False

    def _connection(self, settings: BridgeSettings) -> PosConnection:
        adapter = open_adapter(settings)
        return PosConnection(adapter, changes=adapter.changes, publish=self.events.publish, name=settings.adapter)

    # --- what the UI reads and subscribes to ---------------------------------------------------

    @property
    def pos(self) -> PosConnection:
        """The POS database in use; swapped as a whole by :meth:`apply_settings`."""
        return self.connections.current

    @property
    def adapter(self) -> PosAdapter:
        """The adapter of the POS connection in use (read-only users: capabilities, doctor)."""
        return self.pos.adapter

    @property
    def dispatcher(self) -> Dispatcher:
        return self.pos.dispatcher

    @property
    def relay(self) -> PosEventRelay | None:
        return self.pos.relay

    @property
    def pos_reads(self) -> CurrentPos:
        """Reads that always go to the POS connection current when they start."""
        return CurrentPos(lambda: self.pos)

    @property
    def lock_board(self) -> LockBoard:
        return self.events.lock_board

    @property
    def registration(self) -> RegistrationState:
        return self.registrar.state

    def till_warnings(self) -> list[str]:
        """Where the configured POS storage would leave a Dojo payment off the POS's own screens."""
        return till_warnings(self.settings)

    async def search_orders(self, params: SearchOrdersParams) -> PagedOrders:
        """The till's orders, for the Terminal tab (on the POS connection current now)."""
        return await self.pos_reads.search_orders(params, CallContext(trace_id=new_trace_id()))

    async def register(self) -> RegistrationState:
        return await self.registrar.register()

    def on_domain_event(self, listener: Callable[[DomainEvent], None]) -> None:
        self.events.on_event(listener)

    def on_payment(self, listener: Callable[[PaymentLogEntry], None]) -> None:
        self.events.on_payment(listener)

    def on_served(self, listener: Callable[[Served], None]) -> None:
        self._served_listeners.add(listener)

    def on_status(self, listener: Callable[[ConnectionStatus], None]) -> Callable[[], None]:
        return self.session.subscribe(listener)

    def on_registration(self, listener: Callable[[RegistrationState], None]) -> Callable[[], None]:
        return self.registrar.on_change(listener)

    def on_outbox(self, listener: Callable[[RelayStatus], None]) -> None:
        """The POS-event outbox's depth and last delivery error, when they change."""
        self._outbox_listeners.add(listener)

    async def _send_pos_event(self, event_type: str, field: str, entity_id: str) -> None:
        await self.client.post_event(event_type, field, entity_id)

    def _served(self, served: Served) -> None:
        if request_log.isEnabledFor(logging.INFO):  # the one line per request: nothing built when off
            failed = f" ({served.debug_message})" if served.debug_message and not served.ok else ""
            request_log.info(
                "%s id=%s %s %.1f ms%s",
                served.method,
                printable_id(served.request_id),
                served.outcome,
                served.elapsed_ms,
                failed,
            )
        self._served_listeners.emit(served)

    # --- lifecycle ------------------------------------------------------------------------

    def _lock_venue(self, settings: BridgeSettings) -> None:
        """One bridge per venue: hold the POS database's and the key's locks before serving them
        (a first run locked neither; Settings may change either). Raises AlreadyServing."""
        if self._venue_lock is None or not self._venue_lock.held:
            return
        key = settings.api_key.get_secret_value() if settings.api_key else None
        self._venue_lock.move_to(Venue(locked_database(settings.db_path), key))

    async def start(self) -> None:
        for store in (self.store, self.payment_log, self.outbox, self.terminal_sessions):
            await store.open()
        self.connections.start(_relay_key(self.settings))
        resumed = await self.counter.resume()
        if resumed:
            log.info("following %d terminal session(s) left unfinished by the last run", resumed)
        self._tasks.spawn(self.session.run(), name="gateway-session")
        await self.registrar.restart()

    async def stop(self) -> None:
        """Idempotent: the tray's Quit and a SIGTERM may both ask."""
        if self._stopped:
            return
        self._stopped = True
        await self.session.stop()
        await self.registrar.stop()
        await self._tasks.stop()
        await self.counter.stop()
        await self.connections.close()  # the relay stops before the outbox closes; work in flight ends
        await self.events.flush()
        await self._serve.flush()
        for store in (self.payment_log, self.terminal_sessions, self.outbox, self.store):
            await store.close()
        if self._owns_http:
            await self._http.aclose()

    async def apply_settings(self, new: BridgeSettings) -> list[str]:
        """Apply saved settings at once, without a restart: swap the POS adapter, reconnect with
        the new key or endpoints, and re-register. Returns what changed, in words."""
        self.secrets.add(*settings_secrets(new))  # redacted from this moment on, before any use
        old, changed = self.settings, []
        if old.db_path != new.db_path or old.api_key != new.api_key:
            self._lock_venue(new)  # another bridge serving the new venue: nothing changes here
        if any(getattr(old, f) != getattr(new, f) for f in POS_FIELDS):
            await self.connections.switch(self._connection(new), _relay_key(new))
            changed.append("POS database")
        if old.api_key != new.api_key or any(getattr(old, f) != getattr(new, f) for f in CONNECTION_FIELDS):
            self.session.update_settings(gateway_settings(new))
            if self._owns_http and old.proxy != new.proxy:
                await self._http.aclose()
                self._http = http_client(new)
            self.client = self.counter.client = self.registrar.registry = dojo_client(new, self._http)
            changed.append("Dojo connection")
        self.settings = new
        if changed:
            await self.registrar.restart()
        return changed


def _relay_key(settings: BridgeSettings) -> str:
    """Which change log the outbox's read position belongs to."""
    return f"{settings.adapter}:{settings.db_path}"


# --- headless entry points ------------------------------------------------------------------


async def serve_until_signalled(bridge: Bridge, *, extra: list[asyncio.Task[None]] | None = None) -> None:
    """Serve until SIGINT/SIGTERM, then stop cleanly (close frame sent, in-flight finished)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl+C arrives as KeyboardInterrupt
            loop.add_signal_handler(sig, stop.set)
    bridge.crashes.install_loop(loop)
    await bridge.start()
    try:
        await stop.wait()
    finally:
        log.info("stopping: finishing requests in flight, then closing the connection")
        for task in extra or []:
            task.cancel()
        await bridge.stop()


def run_headless(settings: BridgeSettings) -> int:
    secret = settings.api_key.get_secret_value() if settings.api_key else None
    secrets = KnownSecrets(settings_secrets(settings))
    configure_logging(secrets, log_dir=settings.log_dir)
    # One bridge per venue (data folder, POS database, API key), decided before anything opens
    # the state database or a WebSocket.
    instance = InstanceLock(settings.data_dir, Venue(locked_database(settings.db_path), secret))
    try:
        instance.acquire(role="headless")
    except AlreadyServing as exc:
        log.error("%s", exc)
        return EXIT_ALREADY_SERVING
    except VenueLockError as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:
        log.error("cannot use the data folder %s: %s", settings.data_dir, exc)
        return 2
    try:
        try:
            bridge = Bridge(settings, secrets=secrets, venue_lock=instance)
        except (ConfigError, ValueError) as exc:
            log.error("%s", redact(str(exc), secret or ""))
            return 2
        tune_for_serving()
        asyncio.run(serve_until_signalled(bridge))
        return 0
    finally:
        instance.release()


def demo_settings(folder: Path, ws_url: str, api_url: str, api_key: str, software_house_id: str) -> BridgeSettings:
    from pydantic import SecretStr

    return BridgeSettings(
        allow_insecure=True,  # the simulator listens on 127.0.0.1 without TLS
        software_house_id=software_house_id,
        ws_url=ws_url,
        api_url=api_url,
        db_path=folder / "demo-venue.db",
        data_dir=folder / "data",
        api_key=SecretStr(api_key),
        api_key_source="environment",
    )


def run_demo_headless(flow_interval_s: float = 4.0) -> int:
    """The README's first command before the tray app: simulator + demo venue + bridge."""
    from epos_bridge.sim.simulator import DEMO_API_KEY, DEMO_SOFTWARE_HOUSE_ID, DojoSimulator

    secrets = KnownSecrets([DEMO_API_KEY])
    configure_logging(secrets)

    async def main() -> None:
        with tempfile.TemporaryDirectory(prefix="epos-bridge-demo-") as tmp:
            folder = Path(tmp)
            init_database(folder / "demo-venue.db", demo=True, now=datetime.now(UTC))
            async with DojoSimulator(tester_step_pause=DEMO_TESTER_PAUSE_S) as simulator:
                settings = demo_settings(
                    folder, simulator.ws_url, simulator.api_url, DEMO_API_KEY, DEMO_SOFTWARE_HOUSE_ID
                )
                log.info("demo: venue database %s, simulator %s", settings.db_path, simulator.ws_url)
                bridge = Bridge(settings, secrets=secrets)
                flows_task = asyncio.create_task(simulator.run_flows(flow_interval_s))
                await serve_until_signalled(bridge, extra=[flows_task])

    asyncio.run(main())
    return 0


# --- the tray app (Qt is imported only here, inside these functions) ---------------------------


@contextlib.asynccontextmanager
async def _bridge_from_saved_settings(
    cli_overrides: dict[str, Any] | None, secrets: KnownSecrets, venue_lock: InstanceLock | None = None
) -> AsyncIterator[Bridge]:
    """Settings are read afresh on each attempt, so a first-run Settings dialog's save is used;
    the key it saved joins ``secrets`` (the log filter's) as the bridge is built, and the venue
    it names is locked as the bridge starts."""
    from epos_bridge.config import load

    yield Bridge(load(cli_overrides=cli_overrides), secrets=secrets, venue_lock=venue_lock)


@contextlib.asynccontextmanager
async def _demo_bridge(folder: Path, flow_interval_s: float, secrets: KnownSecrets) -> AsyncIterator[Bridge]:
    from epos_bridge.sim.simulator import DEMO_API_KEY, DEMO_SOFTWARE_HOUSE_ID, DojoSimulator

    init_database(folder / "demo-venue.db", demo=True, now=datetime.now(UTC))
    async with DojoSimulator(tester_step_pause=DEMO_TESTER_PAUSE_S) as simulator:
        flows = asyncio.create_task(simulator.run_flows(flow_interval_s))
        try:
            yield Bridge(
                demo_settings(folder, simulator.ws_url, simulator.api_url, DEMO_API_KEY, DEMO_SOFTWARE_HOUSE_ID),
                secrets=secrets,
            )
        finally:
            flows.cancel()
            await asyncio.gather(flows, return_exceptions=True)


def run_tray(cli_overrides: dict[str, Any] | None = None) -> int:
    """``epos-bridge``: the tray app on the saved settings (a first run opens Settings).

    One per data folder: a second launch rings the running one's doorbell (its window comes
    forward) and exits, so a till never opens a second connection to Dojo.
    """
    from epos_bridge.config import KeyStore, KeyStoreError, default_data_dir, default_log_dir, load
    from epos_bridge.ui.gui import run_gui
    from epos_bridge.ui.single_instance import ask_running_instance_to_raise

    secret = None
    with contextlib.suppress(KeyStoreError):
        secret = KeyStore().get_api_key()
    secrets = KnownSecrets([secret, os.environ.get(ENV_API_KEY)])
    configure_logging(secrets, log_dir=default_log_dir())
    venue: Venue | None = None
    try:
        saved = load(cli_overrides=cli_overrides)
        data_dir = saved.data_dir
        venue = Venue(locked_database(saved.db_path), saved.api_key.get_secret_value() if saved.api_key else secret)
    except ConfigError:
        data_dir = default_data_dir()  # the first-run Settings dialog will fix the rest
    instance = InstanceLock(data_dir, venue)
    try:
        channel = new_raise_channel(data_dir)  # fresh and unguessable, in a folder of this user's
        instance.acquire(role="gui", raise_channel=channel)
    except AlreadyServing as exc:
        if exc.owner is not None and exc.owner.raise_channel and ask_running_instance_to_raise(exc.owner.raise_channel):
            log.info("epos-bridge is already running; brought its window forward")
            return 0
        log.error("%s", exc)
        return EXIT_ALREADY_SERVING
    except VenueLockError as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:
        log.error("cannot use the data folder %s: %s", data_dir, exc)
        return 2
    clear_stale_channels(data_dir, keep=channel)

    def open_bridge() -> contextlib.AbstractAsyncContextManager[Bridge]:
        return _bridge_from_saved_settings(cli_overrides, secrets, instance)

    try:
        return run_gui(open_bridge, raise_channel=channel)
    finally:
        instance.release()


def run_demo_gui(flow_interval_s: float = 4.0) -> int:
    """``epos-bridge demo``: the tray app on the demo venue and the simulator. Settings saved in the
    demo go to a throwaway keyring and file, never the real ones."""
    import keyring.backends.fail

    from epos_bridge.config import KeyStore
    from epos_bridge.sim.simulator import DEMO_API_KEY
    from epos_bridge.ui.gui import run_gui

    secrets = KnownSecrets([DEMO_API_KEY])
    configure_logging(secrets)
    with tempfile.TemporaryDirectory(prefix="epos-bridge-demo-") as tmp:
        folder = Path(tmp)
        return run_gui(
            lambda: _demo_bridge(folder, flow_interval_s, secrets),
            demo=True,
            keystore=KeyStore(keyring.backends.fail.Keyring()),  # type: ignore[no-untyped-call]
            settings_path=folder / "settings.json",
        )
