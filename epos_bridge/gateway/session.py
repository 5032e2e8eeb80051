"""The one long-lived WebSocket to Dojo's EPOS Data gateway (contract §1).

:class:`GatewaySession` connects, serves every incoming frame concurrently through an injected
``serve`` function (the dispatcher, usually wrapped in ``IdempotentServe``), keeps the link alive
and reconnects forever according to :mod:`epos_bridge.gateway.policy`. It knows nothing about
the POS, idempotency or Qt; its state is an observable :class:`ConnectionStatus`.

Exception tree (what ``run()`` can meet; none of these escape it)::

    Exception
    ├── GatewayConfigError       settings unusable (ws:// refused, bad URL): raised by
    │                            GatewaySettings at construction, so callers see it first
    ├── websockets InvalidStatus 401/403 -> auth_failed (policy: fast, then every 5 min); others -> retry
    ├── OSError / TimeoutError   network, DNS, TLS verification -> retry
    └── ConnectionClosed         the link dropped or keepalive failed -> retry

Choices the caller may rely on:

* Handshake (contract §1.1): ``Authorization: Basic <raw key>`` (never base64),
  ``software-house-id``, and ``reseller-id`` only when set, all from
  :meth:`epos_bridge.protocol.dojo.DojoCredentials.headers`. websockets' client speaks HTTP/1.1 only.
* TLS: ``wss://`` uses :func:`epos_bridge.host.tls.client_context` (the OS trust store, the same
  as the REST client; certificate and host name verified), built off the event loop. There
  is deliberately no switch to turn verification off. ``ws://`` is refused unless
  ``allow_insecure``, and even then to loopback hosts only (the local simulator;
  :mod:`epos_bridge.protocol.endpoints`), checked when the settings are built, before any
  connection. A ``ws://`` URL is always connected directly, never through a proxy.
* Proxy: ``proxy=None`` connects directly and ignores ``HTTP(S)_PROXY``/system settings, so the
  till's behaviour never changes because of a stray environment variable. ``proxy="system"``
  opts in to the OS/environment configuration; any other value (``http://…``, ``https://…``,
  ``socks5h://…``) is used as given.
* Keepalive: websockets pings every ``ping_interval_s`` and drops the link when no pong comes
  within ``ping_timeout_s`` (contract §1.2 asks for a ping at least every 30 s). Dojo's pings are
  answered by websockets' protocol layer as soon as the frame is read.
* Backpressure: at most ``max_in_flight`` requests of a connection are served at once; the slot
  is taken *before* reading the next frame, so when full the session stops reading and
  websockets stops reading the socket once its small queue fills. Slots belong to one
  connection: a request stuck on an old link cannot starve the next one.
* "Connected" means "serving" (:mod:`epos_bridge.gateway.watchdog`): a request unanswered for
  ``answer_within_s`` or a frozen event loop turns the state ``stalled`` and the session
  reconnects; a loop frozen for good has its socket shut down by the freeze guard's thread.
* Requests in flight when the link drops keep running (their side effects are completed and
  remembered by ``IdempotentServe``); their answers are lost and Dojo retries (contract §1.2).
* The API key never appears in logs or in ``last_error``: every error text goes through
  :func:`epos_bridge.protocol.dojo.redact`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random as random_module
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from epos_bridge import __version__
from epos_bridge.gateway.connection_state import (
    ConnectionState,
    ConnectionStatus,
    StatusCallback,
)
from epos_bridge.gateway.policy import (
    AUTH_REJECTED_STATUSES,
    Backoff,
    BackoffPolicy,
    GatewayConfigError,
    Verdict,
    classify,
)
from epos_bridge.gateway.watchdog import FreezeGuard, Unanswered, WatchdogPolicy
from epos_bridge.host.tls import client_context
from epos_bridge.protocol.dojo import DEFAULT_WS_URL, DojoCredentials, redact
from epos_bridge.protocol.endpoints import plain_text_refusal
from epos_bridge.services.dispatcher import Served
from epos_bridge.services.listeners import Listeners
from epos_bridge.services.tasks import TaskSet

log = logging.getLogger(__name__)

Serve = Callable[[str | bytes], Awaitable[Served | None]]
Sleep = Callable[[float], Awaitable[None]]

USER_AGENT = f"epos-bridge/{__version__}"
SYSTEM_PROXY = "system"
ENV_WS_URL = "EPOS_BRIDGE_WS_URL"
CLOSE_GOING_AWAY = 1001
CLOSE_NORMAL = 1000
CLOSE_MESSAGE_TOO_BIG = 1009


@dataclass(frozen=True)
class GatewaySettings:
    """Everything the session needs to reach Dojo. Invalid values raise GatewayConfigError."""

    credentials: DojoCredentials
    """Checked once, by ``config.dojo_credentials``; the REST client gets the same value."""
    ws_url: str = DEFAULT_WS_URL
    allow_insecure: bool = False
    proxy: str | None = None
    """``None``: direct connection; ``"system"``: OS/environment proxy; else a proxy URL."""
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 10.0
    max_in_flight: int = 64
    stop_deadline_s: float = 5.0
    healthy_after_s: float = 60.0
    open_timeout_s: float = 10.0
    close_timeout_s: float = 3.0
    max_frame_bytes: int = 1024 * 1024
    """The largest message accepted, after permessage-deflate decompression (the contract names no
    limit, §1.2). websockets stops inflating at the limit and closes with 1009 (message too big);
    the session then reconnects like after any drop (``EPOS_BRIDGE_MAX_FRAME_BYTES``)."""

    def __post_init__(self) -> None:
        url = urlsplit(self.ws_url)
        shown = redact(self.ws_url, self.api_key)
        if url.scheme not in ("ws", "wss") or not url.hostname:
            raise GatewayConfigError(
                f"The gateway URL {shown!r} is not a WebSocket URL. Set {ENV_WS_URL} to {DEFAULT_WS_URL}."
            )
        refusal = plain_text_refusal(self.ws_url, "wss", allow_insecure=self.allow_insecure)
        if refusal is not None:
            raise GatewayConfigError(f"Refusing the gateway URL {shown!r} ({ENV_WS_URL}): {refusal}.")
        if not self.credentials.software_house_id:
            raise GatewayConfigError("The software-house-id is missing (contract §1.1). Set it in Settings.")
        if self.max_in_flight < 1:
            raise GatewayConfigError("max_in_flight must be at least 1")
        if self.ping_interval_s <= 0 or self.ping_timeout_s <= 0:
            raise GatewayConfigError("ping_interval_s and ping_timeout_s must be positive")

    @property
    def api_key(self) -> str:
        return self.credentials.api_key

    @property
    def secure(self) -> bool:
        return urlsplit(self.ws_url).scheme == "wss"

    def handshake_headers(self) -> dict[str, str]:
        return self.credentials.headers()

    def connect_proxy(self) -> str | Literal[True] | None:
        """The value for websockets' ``proxy=`` argument (``True`` = OS/environment)."""
        if not self.secure:
            return None  # plain text goes to loopback only, never out to a proxy
        if self.proxy == SYSTEM_PROXY:
            return True
        return self.proxy or None


@dataclass(frozen=True)
class _Ended:
    """How one attempt (connect + serve) ended."""

    verdict: Verdict = "retry"
    error: str | None = None
    interrupted: bool = False
    """reconnect_now()/update_settings()/stop()/wake() cut it short: go again without a pause."""


class GatewaySession:
    """Keeps one connection to Dojo open and serves it until :meth:`stop`.

    ``clock`` is monotonic seconds (how long a connection stayed up), ``wall_clock`` is Unix
    seconds (status timestamps, detecting that the machine slept), ``sleep`` is the pause
    between attempts, ``random`` feeds the jitter: all injectable so tests use fake time.
    """

    def __init__(
        self,
        settings: GatewaySettings,
        serve: Serve,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
        random: Callable[[], float] = random_module.random,
        on_served: Callable[[Served], None] | None = None,
        policy: BackoffPolicy | None = None,
        wake_check_s: float = 5.0,
        wake_jump_s: float = 15.0,
        tls_context: Callable[[], ssl.SSLContext] = client_context,
        watchdog: WatchdogPolicy | None = None,
    ) -> None:
        self._settings = settings
        self._serve = serve
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._on_served = on_served
        self._backoff = Backoff(
            replace(policy or BackoffPolicy(), healthy_after_s=settings.healthy_after_s), random, clock
        )
        self._wake_check_s = wake_check_s
        self._wake_jump_s = wake_jump_s
        self._tls_context = tls_context
        self._watchdog = watchdog or WatchdogPolicy()
        self._freeze_guard = FreezeGuard(self._watchdog.frozen_after_s, self._drop_frozen_link)
        self._unanswered = Unanswered(self._watchdog.answer_within_s)
        self._frozen_for_s: float | None = None
        """Set by the freeze guard's thread when it dropped the link of a frozen loop."""
        self._observers: Listeners[ConnectionStatus] = Listeners("connection-status")
        self._status = ConnectionStatus(ConnectionState.DISCONNECTED, self._now())
        self._attempts = 0
        self._kick = asyncio.Event()
        self._stopped = asyncio.Event()
        self._running = False
        self._stop_requested = False
        self._stop_deadline_at = 0.0
        self._connection: ClientConnection | None = None
        self._tasks = TaskSet("gateway request")

    # --- what the app and the UI use ----------------------------------------------------

    @property
    def settings(self) -> GatewaySettings:
        return self._settings

    @property
    def status(self) -> ConnectionStatus:
        return self._status

    @property
    def backoff(self) -> Backoff:
        return self._backoff

    def subscribe(self, callback: StatusCallback) -> Callable[[], None]:
        """Hear every status change; returns the function that unsubscribes."""
        return self._observers.add(callback)

    def reconnect_now(self) -> None:
        """Drop the current connection (after in-flight answers) or pause, and connect at once.

        For the UI's Reconnect button; also resets the backoff, including a rejected key's streak.
        """
        self._backoff.reset()
        self._attempts = 0
        self._kick.set()

    def update_settings(self, settings: GatewaySettings) -> None:
        """Use new settings (key, ids, URL, proxy) from the next connection, which starts now.

        ``max_in_flight`` is read once per :meth:`run`; every other field applies at once.
        """
        self._settings = settings
        self._backoff.policy = replace(self._backoff.policy, healthy_after_s=settings.healthy_after_s)
        log.info("gateway settings changed; reconnecting")
        self.reconnect_now()

    def network_changed(self) -> None:
        """The OS reports the network changed (new Wi-Fi, cable back): the same as waking up."""
        log.info("the network changed; checking the gateway connection")
        self._check_now()

    def wake(self) -> None:
        """The machine woke from sleep: retry now if waiting, or check a connection still works."""
        log.info("woke from sleep; checking the gateway connection")
        self._check_now()

    def _check_now(self) -> None:
        self._backoff.reset()
        self._attempts = 0
        connection = self._connection
        if connection is not None and self._status.state is ConnectionState.CONNECTED:
            self._tasks.spawn(self._probe(connection), name="wake-probe")
        else:
            self._kick.set()

    async def stop(self) -> None:
        """Stop reading, let in-flight requests finish (up to ``stop_deadline_s``), close with 1001."""
        if not self._stop_requested:
            self._stop_requested = True
            self._stop_deadline_at = asyncio.get_running_loop().time() + self._settings.stop_deadline_s
            self._kick.set()
        if self._running:
            await self._stopped.wait()

    async def run(self) -> None:
        """Connect and serve until :meth:`stop`; never raises for network or auth failures."""
        if self._running:
            raise RuntimeError("GatewaySession.run() is already running")
        self._running = True
        self._stopped.clear()
        self._max_in_flight = self._settings.max_in_flight
        self._freeze_guard.start()
        watchers = [asyncio.create_task(self._watch_for_wake()), asyncio.create_task(self._watch_serving())]
        try:
            while not self._stop_requested:
                ended = await self._attempt(self._settings)
                if self._stop_requested:
                    break
                if ended.interrupted:
                    continue
                if ended.verdict == "fatal":
                    self._set_state(ConnectionState.DISCONNECTED, last_error=ended.error)
                    await self._wait_for_kick()
                    continue
                await self._pause_before_retry(ended)
        finally:
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            await asyncio.to_thread(self._freeze_guard.stop)
            await self._drain(set(self._tasks))
            self._set_state(ConnectionState.DISCONNECTED, last_error=self._status.last_error)
            self._running = False
            self._stopped.set()

    # --- one attempt ---------------------------------------------------------------------

    async def _attempt(self, settings: GatewaySettings) -> _Ended:
        self._kick.clear()
        self._attempts += 1
        # While a rejected key is being retried the state stays "key rejected": staff keep seeing
        # why card payments are down instead of the icon flickering to "connecting" each second.
        rejected = self._status.state is ConnectionState.AUTH_FAILED
        state = ConnectionState.AUTH_FAILED if rejected else ConnectionState.CONNECTING
        self._set_state(state, last_error=self._status.last_error)
        opening = asyncio.create_task(self._open(settings))
        if await self._interrupted_before(opening):
            return _Ended(interrupted=True)
        try:
            connection = opening.result()
        except Exception as exc:
            verdict, error = classify(exc), describe_error(exc, settings)
            if verdict == "retry" and not isinstance(exc, OSError | TimeoutError | InvalidStatus):
                # No exc_info: a traceback is not passed through redact().
                log.warning("unexpected error connecting to the gateway: %s", error)
            return _Ended(verdict, error)
        self._backoff.handshake_accepted()
        self._set_state(ConnectionState.CONNECTED, last_error=None)
        self._connection = connection
        try:
            return await self._serve_connection(connection, settings)
        except BaseException:
            connection.transport.abort()  # run() was cancelled: do not leave the socket behind
            raise
        finally:
            self._connection = None

    async def _open(self, settings: GatewaySettings) -> ClientConnection:
        extra: dict[str, Any] = {}
        if settings.secure:
            # Contract §1.1 + STYLE: verification is always on; there is no way to disable it.
            extra["ssl"] = await asyncio.to_thread(self._tls_context)
        return await connect(
            settings.ws_url,
            additional_headers=settings.handshake_headers(),
            user_agent_header=USER_AGENT,
            proxy=settings.connect_proxy(),
            open_timeout=settings.open_timeout_s,
            ping_interval=settings.ping_interval_s,
            ping_timeout=settings.ping_timeout_s,
            close_timeout=settings.close_timeout_s,
            max_size=settings.max_frame_bytes,
            logger=RedactingLogger(logging.getLogger("websockets.client"), settings.api_key),
            **extra,
        )

    async def _serve_connection(self, connection: ClientConnection, settings: GatewaySettings) -> _Ended:
        started = self._clock()
        mine: set[asyncio.Task[None]] = set()
        self._unanswered = Unanswered(self._watchdog.answer_within_s)
        self._frozen_for_s = None
        reader = asyncio.create_task(self._read_frames(connection, mine, self._unanswered))
        if await self._interrupted_before(reader):
            await self._leave(connection, mine, settings)
            self._connection_ended(self._clock() - started)
            return _Ended(interrupted=True)
        self._connection_ended(self._clock() - started)
        exc = reader.exception()
        if exc is None:  # pragma: no cover - the reader only ends by raising
            exc = ConnectionError("the reader stopped")
        error = describe_error(exc, settings)
        if self._frozen_for_s is not None:
            error = (
                f"The bridge was frozen for {self._frozen_for_s:.0f} s; its link to Dojo was dropped so"
                " card machines saw the till offline."
            )
            log.warning("%s Reconnecting to Dojo.", error)
        if not isinstance(exc, ConnectionClosed):
            log.error("reading from the gateway failed: %s", error)
        elif _too_big(exc):
            log.warning("%s", error)
        return _Ended(classify(exc), error)

    def _connection_ended(self, connected_for_s: float) -> None:
        self._backoff.connection_ended(connected_for_s)
        if connected_for_s >= self._backoff.policy.healthy_after_s:
            self._attempts = 0

    async def _read_frames(
        self, connection: ClientConnection, mine: set[asyncio.Task[None]], unanswered: Unanswered
    ) -> None:
        """Take a slot, then read: when ``max_in_flight`` requests run, the socket is not read.

        Waiting for a slot also ends when the link closes (a keepalive timeout), so a session
        whose slots are all taken still notices that its connection is gone."""
        slots = asyncio.Semaphore(self._max_in_flight)
        while True:
            await self._slot_or_closed(slots, connection)
            try:
                frame = await connection.recv()
            except BaseException:
                slots.release()
                raise
            task = self._tasks.spawn(self._serve_frame(connection, frame, slots, unanswered))
            unanswered.read(task, asyncio.get_running_loop().time())
            mine.add(task)
            task.add_done_callback(mine.discard)

    @staticmethod
    async def _slot_or_closed(slots: asyncio.Semaphore, connection: ClientConnection) -> None:
        if not slots.locked():
            await slots.acquire()
            return
        acquiring = asyncio.create_task(slots.acquire())
        closing = asyncio.create_task(connection.wait_closed())
        try:
            await asyncio.wait({acquiring, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            if not acquiring.done():
                acquiring.cancel()
        if acquiring.cancelled() or not acquiring.done():
            raise connection.protocol.close_exc
        # The slot came with (or just before) the close: keep it, recv() reports the close.

    async def _serve_frame(
        self, connection: ClientConnection, frame: str | bytes, slots: asyncio.Semaphore, unanswered: Unanswered
    ) -> None:
        try:
            served = await self._serve(frame)
            if served is None:
                return
            try:
                await connection.send(served.response_text)
            except ConnectionClosed:
                log.warning(
                    "the answer to %s id %.80r was not sent: the connection closed; Dojo retries (contract §1.2)",
                    served.method,
                    served.request_id,
                )
            if self._on_served is not None:
                try:
                    self._on_served(served)
                except Exception:
                    log.exception("the on_served callback failed (trace %s)", served.trace_id)
        except Exception:
            # serve() (the dispatcher) answers every failure itself; this is a last-resort guard.
            log.exception("serving a frame failed")
        finally:
            current = asyncio.current_task()
            if current is not None:
                unanswered.answered(current)
            slots.release()

    async def _leave(
        self, connection: ClientConnection, mine: set[asyncio.Task[None]], settings: GatewaySettings
    ) -> None:
        """Stop reading; let this connection's requests answer (bounded), then close politely."""
        if not self._stop_requested:
            deadline = asyncio.get_running_loop().time() + settings.stop_deadline_s
            await self._drain(set(mine), deadline, cancel_late=False)
        if self._stop_requested:  # asked before, or while waiting for the answers above
            self._set_state(ConnectionState.STOPPING, last_error=None)
            await self._drain(set(self._tasks))
            code, reason = CLOSE_GOING_AWAY, "EPOS bridge stopping"
        else:
            code, reason = CLOSE_NORMAL, "EPOS bridge reconnecting"
        try:
            await connection.close(code, reason)
        except Exception:
            log.info("closing the gateway connection failed", exc_info=True)

    async def _drain(
        self, tasks: set[asyncio.Task[None]], deadline: float | None = None, *, cancel_late: bool = True
    ) -> None:
        """Wait for ``tasks`` until ``deadline`` (loop time; default: the stop deadline)."""
        pending = {task for task in tasks if not task.done()}
        if not pending:
            return
        loop = asyncio.get_running_loop()
        timeout = max(0.0, (self._stop_deadline_at if deadline is None else deadline) - loop.time())
        _, late = await asyncio.wait(pending, timeout=timeout)
        if late and cancel_late:
            log.warning("%d request(s) did not finish within the stop deadline and were cancelled", len(late))
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def _probe(self, connection: ClientConnection) -> None:
        """After a wake-up: a ping must come back within ``ping_timeout_s`` or the link is dead."""
        try:
            pong = await connection.ping()
            async with asyncio.timeout(self._settings.ping_timeout_s):
                await pong
        except TimeoutError:
            log.info("no pong after waking up; dropping the dead connection")
            connection.transport.abort()
        except ConnectionClosed:
            pass

    # --- between attempts ----------------------------------------------------------------

    async def _pause_before_retry(self, ended: _Ended) -> None:
        delay = self._backoff.next_delay(ended.verdict)
        state = ConnectionState.AUTH_FAILED if ended.verdict == "auth_failed" else ConnectionState.DISCONNECTED
        self._set_state(state, last_error=ended.error, retry_in_s=delay)
        log.info("next gateway connection attempt in %.1f s", delay)
        pause = asyncio.create_task(self._sleep_once(delay))
        await self._interrupted_before(pause)

    async def _sleep_once(self, delay: float) -> None:
        await self._sleep(delay)

    async def _wait_for_kick(self) -> None:
        await self._kick.wait()

    async def _interrupted_before(self, task: asyncio.Task[Any]) -> bool:
        """Wait for ``task`` or a kick (stop/reconnect/wake); on a kick cancel it and say so."""
        kick = asyncio.create_task(self._kick.wait())
        try:
            done, _ = await asyncio.wait({task, kick}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            kick.cancel()
        if task in done:
            return False
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return True

    async def _watch_for_wake(self) -> None:
        """Notice a sleep/resume: the wall clock (or the monotonic one) leapt past our tick.

        On Linux and macOS the monotonic clock stops while suspended, so the wall clock runs
        ahead of it; on Windows the monotonic clock keeps counting, so the tick itself is late.
        """
        wall, mono = self._wall_clock(), self._clock()
        while True:
            await asyncio.sleep(self._wake_check_s)
            new_wall, new_mono = self._wall_clock(), self._clock()
            drift = (new_wall - wall) - (new_mono - mono)
            late = (new_mono - mono) - self._wake_check_s
            wall, mono = new_wall, new_mono
            if drift > self._wake_jump_s or late > self._wake_jump_s:
                self.wake()

    async def _watch_serving(self) -> None:
        """The watch tick: beat for the freeze guard; notice a frozen loop or a stuck request.

        It runs on the loop's own clock (real time, whatever clock the backoff is given), and
        as a task: when tasks cannot run, it does not beat either.
        """
        loop = asyncio.get_running_loop()
        tick = self._watchdog.tick_s
        before = loop.time()
        while True:
            await asyncio.sleep(tick)
            self._freeze_guard.beat()
            now = loop.time()
            late, before = now - before - tick, now
            if late >= self._watchdog.stalled_after_s:
                self._not_serving(f"The bridge was frozen for {late:.0f} s and could not answer Dojo.")
            overdue = self._unanswered.newly_overdue(now)
            if overdue:
                self._not_serving(f"{len(overdue)} request(s) from Dojo went unanswered for {overdue[0]:.0f} s.")

    def _not_serving(self, reason: str) -> None:
        """Connected but not serving: say so (the state turns red) and start a new connection."""
        if self._connection is None or self._stop_requested:
            return
        log.warning("%s Reconnecting to Dojo.", reason)
        self._set_state(ConnectionState.STALLED, last_error=reason)
        self._backoff.reset()
        self._kick.set()

    def _drop_frozen_link(self, frozen_for_s: float) -> None:
        """On the freeze guard's thread: shut the socket down so Dojo stops sending into it."""
        connection = self._connection
        if connection is None:
            return
        self._frozen_for_s = frozen_for_s
        sock = connection.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    # --- status --------------------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._wall_clock(), UTC)

    def _set_state(self, state: ConnectionState, *, last_error: str | None, retry_in_s: float | None = None) -> None:
        previous = self._status
        now = self._now()
        status = ConnectionStatus(
            state=state,
            since=previous.since if previous.state is state else now,
            last_error=last_error,
            attempt=self._attempts,
            next_retry_at=None if retry_in_s is None else now + timedelta(seconds=retry_in_s),
        )
        if status == previous:
            return
        self._status = status
        if previous.state is not state:
            level = logging.WARNING if state is ConnectionState.AUTH_FAILED else logging.INFO
            suffix = f": {last_error}" if last_error and state is not ConnectionState.CONNECTED else ""
            log.log(level, "gateway %s (attempt %d)%s", state.value, self._attempts, suffix)
        self._observers.emit(status)


class RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """websockets logs the handshake headers at DEBUG, Authorization included: redact the key."""

    def __init__(self, logger: logging.Logger, secret: str) -> None:
        super().__init__(logger, {})
        self._secret = secret

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            self.logger.log(level, "%s", redact(text, self._secret), **kwargs)


def _too_big(exc: ConnectionClosed) -> bool:
    """We closed with 1009: a message (after decompression) passed ``max_frame_bytes``."""
    return exc.sent is not None and exc.sent.code == CLOSE_MESSAGE_TOO_BIG


def describe_error(exc: BaseException, settings: GatewaySettings) -> str:
    """A short, staff-readable reason with the API key redacted."""
    host = urlsplit(settings.ws_url).hostname or settings.ws_url
    if isinstance(exc, InvalidStatus):
        code = exc.response.status_code
        if code in AUTH_REJECTED_STATUSES:
            text = (
                f"Dojo rejected the API key (HTTP {code}). Check the API key, software-house-id and"
                " reseller-id in Settings."
            )
        else:
            text = f"The gateway answered HTTP {code} instead of opening the connection."
    elif isinstance(exc, ssl.SSLCertVerificationError):
        text = (
            f"The certificate of {host} could not be verified ({exc.verify_message}). Check the PC's date and"
            " time, and any proxy or firewall that inspects HTTPS."
        )
    elif isinstance(exc, ConnectionClosed) and _too_big(exc):
        text = (
            f"{host} sent a message larger than the {settings.max_frame_bytes} byte limit"
            " (EPOS_BRIDGE_MAX_FRAME_BYTES); the bridge closed the connection (1009) and reconnects."
        )
    elif isinstance(exc, ConnectionClosed):
        text = f"The connection to {host} closed: {exc}."
    elif isinstance(exc, TimeoutError):
        text = f"Timed out connecting to {host}: {exc or 'no answer'}."
    elif isinstance(exc, OSError):
        text = f"Could not reach {host}: {exc.strerror or exc}."
    elif isinstance(exc, GatewayConfigError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    return redact(text, settings.api_key)
