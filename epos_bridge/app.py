"""The composition root: builds the bridge from settings and wires its parts.

:class:`Bridge` is the headless bridge (no Qt): the POS adapter, the dispatcher, the
idempotency store, the gateway session and the Dojo REST client. The tray app (``ui/``) builds
the same :class:`Bridge` and only observes and commands it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from epos_bridge.adapters.registry import installed_adapters
from epos_bridge.adapters.sqlite.setup import init_database
from epos_bridge.config import ENV_API_KEY, ENV_VARS, BridgeSettings, ConfigError, settings_secrets
from epos_bridge.counter import CounterPayments
from epos_bridge.crash import CrashHandler
from epos_bridge.diagnostics import RecentRequests
from epos_bridge.dojo_api import AuthRejected, DojoApiError, DojoClient, RegistrationState
from epos_bridge.domain.events import DomainEvent, PaymentRecorded, PaymentStatusChanged
from epos_bridge.gateway.connection_state import ConnectionStatus
from epos_bridge.gateway.policy import Backoff
from epos_bridge.gateway.session import GatewaySession, GatewaySettings
from epos_bridge.instance import (
    EXIT_ALREADY_SERVING,
    AlreadyServing,
    InstanceLock,
    clear_stale_channels,
    new_raise_channel,
)
from epos_bridge.logs import configure_logging
from epos_bridge.ports import CallContext, PosAdapter
from epos_bridge.private_files import private_dir, private_file
from epos_bridge.protocol.dojo import redact
from epos_bridge.protocol.params import PagedOrders, SearchOrdersParams
from epos_bridge.protocol.redaction import KnownSecrets
from epos_bridge.services.activity import LockBoard, PaymentLogEntry, payment_entry
from epos_bridge.services.dispatcher import Dispatcher, Served, new_trace_id
from epos_bridge.services.listeners import Listeners
from epos_bridge.services.pos_connection import CurrentPos, PosConnection
from epos_bridge.services.pos_events import PosEventRelay, RelayStatus
from epos_bridge.state.idempotency import IdempotencyStore, IdempotentServe
from epos_bridge.state.outbox import OutboxStore
from epos_bridge.state.payment_log import PaymentLogStore
from epos_bridge.state.terminal_sessions import TerminalSessionStore
from epos_bridge.tls import dojo_http_client

log = logging.getLogger(__name__)
request_log = logging.getLogger("epos_bridge.requests")

STATE_DB_NAME = "bridge-state.db"
DEMO_TESTER_PAUSE_S = 0.2
"""The demo's EPOS tester tool pauses between steps, so they can be watched arriving."""


def open_adapter(settings: BridgeSettings) -> PosAdapter:
    """The configured POS adapter (built-in or installed through the ``epos_bridge.adapters``
    entry point); a bad choice is a ConfigError naming the setting and what is installed."""
    adapters = installed_adapters()
    factory = adapters.get(settings.adapter)
    if factory is None:
        installed = ", ".join(adapters)
        raise ConfigError([(ENV_VARS["adapter"], f"unknown adapter {settings.adapter!r}; installed: {installed}")])
    if settings.db_path is None:
        raise ConfigError([(ENV_VARS["db_path"], "the POS database path is not set")])
    return factory.open(settings.db_path)


def gateway_settings(settings: BridgeSettings) -> GatewaySettings:
    return GatewaySettings(
        ws_url=settings.ws_url,
        api_key=settings.api_key.get_secret_value() if settings.api_key else "",
        software_house_id=settings.software_house_id or "",
        reseller_id=settings.reseller_id,
        allow_insecure=settings.allow_insecure,
        proxy=settings.proxy,
        max_frame_bytes=settings.max_frame_bytes,
    )


def http_client(settings: BridgeSettings) -> httpx.AsyncClient:
    """The REST half's HTTP client: the OS trust store, as the WebSocket uses (epos_bridge/tls.py)."""
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
POS_FIELDS = ("adapter", "db_path")


def dojo_client(settings: BridgeSettings, http: httpx.AsyncClient) -> DojoClient:
    return DojoClient(
        http,
        api_key=settings.api_key.get_secret_value() if settings.api_key else "",
        software_house_id=settings.software_house_id or "",
        reseller_id=settings.reseller_id,
        base_url=settings.api_url,
        allow_insecure=settings.allow_insecure,
    )


class Bridge:
    """The running bridge. ``start()`` returns once serving has begun; ``stop()`` is clean."""

    def __init__(
        self, settings: BridgeSettings, *, http: httpx.AsyncClient | None = None, secrets: KnownSecrets | None = None
    ) -> None:
        if settings.api_key is None:
            raise ConfigError(
                [
                    (
                        ENV_API_KEY,
                        "no Dojo API key: enter it in Settings → API key (kept in the OS keyring), "
                        f"or set {ENV_API_KEY} for a service",
                    )
                ]
            )
        self.secrets = secrets if secrets is not None else KnownSecrets()
        """Every key and proxy password this process has met; the log filter, the crash handler and
        diagnostics share it, so a key changed in Settings is redacted everywhere at once."""
        self.secrets.add(*settings_secrets(settings))
        self.settings = settings
        self._http = http or http_client(settings)
        self._owns_http = http is None
        self.client = dojo_client(settings, self._http)
        self._event_listeners: Listeners[DomainEvent] = Listeners("domain event")
        self._served_listeners: Listeners[Served] = Listeners("served request")
        self._payment_listeners: Listeners[PaymentLogEntry] = Listeners("payment log")
        self.lock_board = LockBoard()
        self.pos = PosConnection(open_adapter(settings), publish=self._publish, name=settings.adapter)
        """The POS database in use; swapped as a whole by :meth:`apply_settings`."""
        self._retiring: set[asyncio.Task[None]] = set()
        private_file(private_dir(settings.data_dir) / STATE_DB_NAME)  # 0700 folder, 0600 database
        self.store = IdempotencyStore(settings.data_dir / STATE_DB_NAME)
        self.payment_log = PaymentLogStore(settings.data_dir / STATE_DB_NAME)
        # Each request is handed to the connection current when it arrives, and finishes there.
        self._serve = IdempotentServe(self.store, lambda request: self.pos.handle(request))
        self.outbox = OutboxStore(settings.data_dir / STATE_DB_NAME)
        self._outbox_listeners: Listeners[RelayStatus] = Listeners("POS-event outbox")
        self.counter = CounterPayments(
            self.client,
            lambda: self.pos,
            TerminalSessionStore(settings.data_dir / STATE_DB_NAME),
            publish=self._publish,
        )
        self.session = GatewaySession(gateway_settings(settings), self._serve, on_served=self._served)
        self.registration = RegistrationState()
        self._registration_task: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self.recent_requests = RecentRequests()
        """The last requests with their outcomes, for Export diagnostics."""
        self._served_listeners.add(self.recent_requests.record)
        self.crashes = CrashHandler(secrets=self.secrets)
        """Logs (redacted) and reports any unhandled exception, so the bridge keeps serving."""
        self._stopped = False

    # --- observation (the UI subscribes here) -----------------------------------------------

    def on_domain_event(self, listener: Callable[[DomainEvent], None]) -> None:
        self._event_listeners.add(listener)

    def on_served(self, listener: Callable[[Served], None]) -> None:
        self._served_listeners.add(listener)

    def on_status(self, listener: Callable[[ConnectionStatus], None]) -> Callable[[], None]:
        return self.session.subscribe(listener)

    def on_outbox(self, listener: Callable[[RelayStatus], None]) -> None:
        """The POS-event outbox's depth and last delivery error, when they change."""
        self._outbox_listeners.add(listener)

    def _outbox_changed(self, status: RelayStatus) -> None:
        self._outbox_listeners.emit(status)

    @property
    def adapter(self) -> PosAdapter:
        """The adapter of the POS connection in use (read-only users: capabilities, doctor)."""
        return self.pos.adapter

    async def search_orders(self, params: SearchOrdersParams) -> PagedOrders:
        """The till's orders, for the Terminal tab (on the POS connection current now)."""
        return await self.pos_reads.search_orders(params, CallContext(trace_id=new_trace_id()))

    @property
    def pos_reads(self) -> CurrentPos:
        """Reads that always go to the POS connection current when they start."""
        return CurrentPos(lambda: self.pos)

    @property
    def dispatcher(self) -> Dispatcher:
        return self.pos.dispatcher

    @property
    def relay(self) -> PosEventRelay | None:
        return self.pos.relay

    def _start_relay(self, settings: BridgeSettings) -> None:
        self.pos.start_relay(
            self.outbox,
            self._send_pos_event,
            source_key=f"{settings.adapter}:{settings.db_path}",
            on_status=self._outbox_changed,
        )

    async def _send_pos_event(self, event_type: str, field: str, entity_id: str) -> None:
        await self.client.post_event(event_type, field, entity_id)

    def on_payment(self, listener: Callable[[PaymentLogEntry], None]) -> None:
        """A new payment-log line, or an existing one whose status changed."""
        self._payment_listeners.add(listener)

    def _publish(self, event: DomainEvent) -> None:
        self.lock_board.apply(event)
        if isinstance(event, PaymentRecorded):
            entry = payment_entry(event)
            self._spawn(self.payment_log.record(entry))
            self._tell_payment(entry)
        elif isinstance(event, PaymentStatusChanged):
            self._spawn(self._payment_status(event))
        self._event_listeners.emit(event)

    async def _payment_status(self, event: PaymentStatusChanged) -> None:
        entry = await self.payment_log.set_status(event.payment_intent_id, event.status.value)
        if entry is not None:
            self._tell_payment(entry)

    def _tell_payment(self, entry: PaymentLogEntry) -> None:
        self._payment_listeners.emit(entry)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _served(self, served: Served) -> None:
        request_log.info(
            "%s id=%s %s %.1f ms%s",
            served.method,
            served.request_id,
            served.outcome,
            served.elapsed_ms,
            f" ({served.debug_message})" if served.debug_message and not served.ok else "",
        )
        self._served_listeners.emit(served)

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        await self.store.open()
        await self.payment_log.open()
        await self.outbox.open()
        await self.counter.store.open()
        self._start_relay(self.settings)
        resumed = await self.counter.resume()
        if resumed:
            log.info("following %d terminal session(s) left unfinished by the last run", resumed)
        self._tasks.append(asyncio.create_task(self.session.run(), name="gateway-session"))
        await self._restart_registration()

    async def stop(self) -> None:
        """Idempotent: the tray's Quit and a SIGTERM may both ask."""
        if self._stopped:
            return
        self._stopped = True
        await self.session.stop()
        await self.pos.stop_relay()
        if self._registration_task is not None:
            self._tasks.append(self._registration_task)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self.payment_log.close()
        await self.counter.stop()
        await self.counter.store.close()
        await self.outbox.close()
        await self._serve.flush()
        await self.store.close()
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        await self.pos.retire()
        if self._owns_http:
            await self._http.aclose()

    async def apply_settings(self, new: BridgeSettings) -> list[str]:
        """Apply saved settings at once, without a restart: swap the POS adapter, reconnect with
        the new key or endpoints, and re-register. Returns what changed, in words."""
        self.secrets.add(*settings_secrets(new))  # redacted from this moment on, before any use
        old, changed = self.settings, []
        if any(getattr(old, f) != getattr(new, f) for f in POS_FIELDS):
            replacement = PosConnection(open_adapter(new), publish=self._publish, name=new.adapter)
            previous, self.pos = self.pos, replacement
            await previous.stop_relay()  # before the new relay reads: one reader of the outbox at a time
            self._start_relay(new)
            # Requests and counter steps already running on the old database finish there.
            retiring = asyncio.create_task(previous.retire(), name="retire-pos")
            self._retiring.add(retiring)
            retiring.add_done_callback(self._retiring.discard)
            changed.append("POS database")
        key_changed = old.api_key != new.api_key
        if key_changed or any(getattr(old, f) != getattr(new, f) for f in CONNECTION_FIELDS):
            self.session.update_settings(gateway_settings(new))
            if self._owns_http and old.proxy != new.proxy:
                await self._http.aclose()
                self._http = http_client(new)
            self.client = dojo_client(new, self._http)
            self.counter.client = self.client
            changed.append("Dojo connection")
        self.settings = new
        if changed:
            await self._restart_registration()
        return changed

    async def _restart_registration(self) -> None:
        """One registration loop at a time: a new one replaces the one still retrying, which is
        cancelled and gone before the new one starts."""
        previous, self._registration_task = self._registration_task, None
        if previous is not None:
            previous.cancel()
            await asyncio.gather(previous, return_exceptions=True)
        self._registration_task = asyncio.create_task(self._keep_registered(), name="registration")

    async def register(self) -> RegistrationState:
        """PUT the full capability list the adapter implements, then read back what Dojo has."""
        implemented = self.adapter.implemented_capabilities()
        try:
            await self.client.register_capabilities(implemented)
            report = (await self.client.get_integrations()).compare(implemented)
            self.registration = RegistrationState(report=report, at=datetime.now(UTC))
            log.info(
                "registered %d capabilities with Dojo (%s)",
                len(implemented),
                "in sync" if report.in_sync else "differs",
            )
        except DojoApiError as exc:
            self.registration = RegistrationState(
                error=str(exc), at=datetime.now(UTC), auth_rejected=isinstance(exc, AuthRejected)
            )
            log.warning("capability registration failed: %s", exc)
        return self.registration

    async def _keep_registered(self) -> None:
        """Register at start-up (contract §2 (rec)) and keep trying until Dojo accepts it."""
        retry = Backoff()
        while True:
            state = await self.register()
            if state.error is None:
                return
            # The gateway's schedule (gateway/policy.py): a rejected key is retried the same way here.
            await asyncio.sleep(retry.next_delay("auth_failed" if state.auth_rejected else "retry"))


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
    # One bridge per data folder, decided before anything opens the state database or a WebSocket.
    instance = InstanceLock(settings.data_dir)
    try:
        instance.acquire(role="headless")
    except AlreadyServing as exc:
        log.error("%s", exc)
        return EXIT_ALREADY_SERVING
    except OSError as exc:
        log.error("cannot use the data folder %s: %s", settings.data_dir, exc)
        return 2
    try:
        try:
            bridge = Bridge(settings, secrets=secrets)
        except (ConfigError, ValueError) as exc:
            log.error("%s", redact(str(exc), secret or ""))
            return 2
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
    cli_overrides: dict[str, Any] | None, secrets: KnownSecrets
) -> AsyncIterator[Bridge]:
    """Settings are read afresh on each attempt, so a first-run Settings dialog's save is used;
    the key it saved joins ``secrets`` (the log filter's) as the bridge is built."""
    from epos_bridge.config import load

    yield Bridge(load(cli_overrides=cli_overrides), secrets=secrets)


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
    try:
        data_dir = load(cli_overrides=cli_overrides).data_dir
    except ConfigError:
        data_dir = default_data_dir()  # the first-run Settings dialog will fix the rest
    instance = InstanceLock(data_dir)
    try:
        channel = new_raise_channel(data_dir)  # fresh and unguessable, in a folder of this user's
        instance.acquire(role="gui", raise_channel=channel)
    except AlreadyServing as exc:
        if exc.owner is not None and exc.owner.raise_channel and ask_running_instance_to_raise(exc.owner.raise_channel):
            log.info("epos-bridge is already running; brought its window forward")
            return 0
        log.error("%s", exc)
        return EXIT_ALREADY_SERVING
    except OSError as exc:
        log.error("cannot use the data folder %s: %s", data_dir, exc)
        return 2
    clear_stale_channels(data_dir, keep=channel)

    def open_bridge() -> contextlib.AbstractAsyncContextManager[Bridge]:
        return _bridge_from_saved_settings(cli_overrides, secrets)

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
