"""The WebSocket half of the local Dojo stand-in: a real server on 127.0.0.1 playing the gateway.

It checks the handshake like Dojo (``Authorization`` must be exactly ``Basic <key>``), records
every handshake's raw headers so tests can assert them byte-for-byte, sends JSON-RPC requests
to the connected bridge and matches the answers by ``id``, and has fault knobs for the failure
modes the bridge must survive: dropped links, refused keys, a gateway that accepts and hangs
up at once, and a dead link that stops answering pings.

Choices of the simulator (Dojo's exact behaviour is not published, contract §1.2):

* A wrong ``software-house-id`` (or ``reseller-id``, when one is expected) is answered 403;
  a wrong or missing ``Authorization`` 401.
* The simulator does not ping the bridge by default (``ping_interval=None``); the bridge's own
  keepalive is what is under test.
* "Stop answering pings" pauses reading the TCP socket: websockets answers pings in its
  protocol layer as soon as a frame is parsed, so the only way to keep a pong from going out
  is to not read the ping at all. That is also what a dead link looks like from the bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import ssl
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.http11 import Request, Response

from epos_bridge.gateway.session import RedactingLogger
from epos_bridge.protocol.dojo import HEADER_AUTHORIZATION, HEADER_RESELLER_ID, HEADER_SOFTWARE_HOUSE_ID
from epos_bridge.sim.serving import LocalServer

log = logging.getLogger(__name__)

PATH = "/epos"


@dataclass(frozen=True)
class Handshake:
    """One opening handshake as the simulator saw it."""

    path: str
    raw_headers: tuple[tuple[str, str], ...]
    """Header names and values exactly as received, in order."""
    status: int
    """101 when accepted, else the HTTP status the simulator refused it with."""

    def values(self, name: str) -> list[str]:
        """Every value sent under ``name`` (case-insensitive), as sent."""
        return [value for key, value in self.raw_headers if key.lower() == name.lower()]


class SimulatorError(Exception):
    """The simulator could not do what the test asked (no bridge connected, no answer in time)."""


class GatewaySimulator(LocalServer):
    """A local EPOS Data gateway. ``await start()``, point the bridge at :attr:`url`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        expected_api_key: str,
        expected_software_house_id: str,
        expected_reseller_id: str | None = None,
        ping_interval: float | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.expected_api_key = expected_api_key
        self.expected_software_house_id = expected_software_house_id
        self.expected_reseller_id = expected_reseller_id
        self.ping_interval = ping_interval
        self.ssl_context = ssl_context
        self.handshakes: list[Handshake] = []
        self.received: list[str | bytes] = []
        """Every frame the bridge sent, in arrival order."""
        self.close_codes: list[int | None] = []
        """The close code each finished connection received from the bridge (1006 = none)."""
        self.connections_opened = 0
        self.connections_closed = 0
        self.accept_then_close = False
        """When set, every accepted connection is closed (1001) right after the handshake."""
        self._reject_left = 0
        self._reject_status = 401
        self._refusing_keys: int | None = None
        self._answer_pings = True
        self._server: Server | None = None
        self._connections: list[ServerConnection] = []
        self._pending: dict[str, list[asyncio.Future[dict[str, Any]]]] = {}
        self._ids = itertools.count(1)

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._check_handshake,
            ping_interval=self.ping_interval,
            close_timeout=1,
            max_size=16 * 1024 * 1024,
            ssl=self.ssl_context,
            # websockets logs handshake headers at DEBUG: keep the key out of the demo's logs too.
            logger=RedactingLogger(logging.getLogger("websockets.server"), self.expected_api_key),
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is None:
            return
        for connection in list(self._connections):
            if not self._answer_pings:  # a paused socket would never see the close handshake
                connection.transport.abort()
        self._server.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3):
                await self._server.wait_closed()
        self._server = None
        for futures in self._pending.values():
            for future in futures:
                if not future.done():
                    future.set_exception(SimulatorError("the simulator stopped"))
        self._pending.clear()

    @property
    def url(self) -> str:
        scheme = "wss" if self.ssl_context is not None else "ws"
        return f"{scheme}://{self.host}:{self.port}{PATH}"

    @property
    def connected(self) -> bool:
        return bool(self._connections)

    # --- talking to the bridge -----------------------------------------------------------

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        id: Any = None,
        timeout: float = 5,  # noqa: ASYNC109 - a per-call bound keeps every test from hanging
    ) -> dict[str, Any]:
        """Send a JSON-RPC request to the connected bridge; return its response object."""
        request_id = f"sim-{next(self._ids)}" if id is None else id
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        future = self.expect(request_id)
        await self.send_raw(json.dumps(message))
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise SimulatorError(f"no answer to {method} id {request_id!r} within {timeout} s") from None

    def expect(self, request_id: Any) -> asyncio.Future[dict[str, Any]]:
        """A future for the next response carrying ``request_id`` (for hand-made frames)."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(_key(request_id), []).append(future)
        return future

    async def send_raw(self, frame: str | bytes) -> None:
        """Send any frame as is (text or binary) on the newest connection."""
        if not self._connections:
            raise SimulatorError("no bridge is connected to the simulator")
        await self._connections[-1].send(frame)

    async def wait_connected(self, timeout: float = 5) -> None:  # noqa: ASYNC109 - as request()
        await self.wait_until(lambda: self.connected, timeout, "a bridge to connect")

    async def wait_until(
        self,
        condition: Callable[[], bool],
        timeout: float = 5,  # noqa: ASYNC109 - as request()
        what: str = "a condition",
    ) -> None:
        """Poll ``condition`` (cheap, and robust against every way a test can change state)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise SimulatorError(f"timed out after {timeout} s waiting for {what}")
            await asyncio.sleep(0.005)

    # --- fault knobs ---------------------------------------------------------------------

    async def drop_connections(self, code: int | None = None) -> None:
        """Cut every connection: abruptly (TCP abort, like a network drop) or with ``code``."""
        for connection in list(self._connections):
            if code is None:
                connection.transport.abort()
            else:
                await connection.close(code, "simulator closing")

    def reject_next(self, count: int, status: int = 401) -> None:
        """Refuse the next ``count`` handshakes with ``status``, whatever their headers."""
        self._reject_left = count
        self._reject_status = status

    async def send_deflate_bomb(self, inflated_bytes: int) -> int:
        """Send one permessage-deflate text message that inflates to ``inflated_bytes`` of zeros;
        returns its compressed size. The simulator never holds the inflated message: it is
        compressed a mebibyte at a time and written as a raw frame, as a hostile peer would."""
        if not self._connections:
            raise SimulatorError("no bridge is connected to the simulator")
        connection = self._connections[-1]
        deflate = next((e for e in connection.protocol.extensions if isinstance(e, PerMessageDeflate)), None)
        if deflate is None:
            raise SimulatorError("the bridge did not negotiate permessage-deflate")
        compressor = zlib.compressobj(9, zlib.DEFLATED, -deflate.local_max_window_bits)
        chunk, left, parts = bytes(1024 * 1024), inflated_bytes, []
        while left > 0:
            parts.append(compressor.compress(chunk[: min(left, len(chunk))]))
            left -= len(chunk)
        parts.append(compressor.flush(zlib.Z_SYNC_FLUSH))
        payload = b"".join(parts)[:-4]  # RFC 7692 §7.2.1: drop the 00 00 ff ff tail
        # FIN + RSV1 (compressed) + text opcode; a server's frames are not masked.
        header = bytes([0xC1, 127]) + len(payload).to_bytes(8, "big")
        connection.transport.write(header + payload)
        return len(payload)

    def refuse_keys(self, status: int = 401) -> None:
        """Refuse every handshake with ``status`` until :meth:`accept_keys` (an authentication
        blip at Dojo, or a new key that has not propagated yet)."""
        self._refusing_keys = status

    def accept_keys(self) -> None:
        self._refusing_keys = None

    def stop_answering_pings(self) -> None:
        """Go silent on every connection, current and future (see the module docstring)."""
        self._answer_pings = False
        for connection in self._connections:
            connection.transport.pause_reading()

    def answer_pings(self) -> None:
        self._answer_pings = True
        for connection in self._connections:
            connection.transport.resume_reading()

    # --- server side ---------------------------------------------------------------------

    def _check_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        status = self._verdict(request.path, request.headers)
        self.handshakes.append(Handshake(request.path, tuple(request.headers.raw_items()), status))
        if status == 101:
            return None
        return connection.respond(status, _REASONS.get(status, "Refused") + "\n")

    def _verdict(self, path: str, headers: Headers) -> int:
        if self._refusing_keys is not None:
            return self._refusing_keys
        if self._reject_left > 0:
            self._reject_left -= 1
            return self._reject_status
        if path != PATH:
            return 404
        if headers.get_all(HEADER_AUTHORIZATION) != [f"Basic {self.expected_api_key}"]:
            return 401
        if headers.get_all(HEADER_SOFTWARE_HOUSE_ID) != [self.expected_software_house_id]:
            return 403
        if self.expected_reseller_id is not None and headers.get_all(HEADER_RESELLER_ID) != [self.expected_reseller_id]:
            return 403
        return 101

    async def _handle(self, connection: ServerConnection) -> None:
        self._connections.append(connection)
        self.connections_opened += 1
        try:
            if self.accept_then_close:
                await connection.close(1001, "simulator: accept then close")
                return
            if not self._answer_pings:
                connection.transport.pause_reading()
            with contextlib.suppress(ConnectionClosed):
                async for frame in connection:
                    self.received.append(frame)
                    self._match(frame)
        finally:
            self._connections.remove(connection)
            self.connections_closed += 1
            self.close_codes.append(connection.close_code)

    def _match(self, frame: str | bytes) -> None:
        try:
            document = json.loads(frame)
        except ValueError:
            log.warning("the bridge sent a frame that is not JSON: %.200r", frame)
            return
        if not isinstance(document, dict) or "id" not in document:
            log.warning("the bridge sent a frame without an id: %.200r", frame)
            return
        waiting = self._pending.get(_key(document["id"]))
        while waiting:
            future = waiting.pop(0)
            if not future.done():
                future.set_result(document)
                return


def _key(request_id: Any) -> str:
    return json.dumps(request_id, sort_keys=True, separators=(",", ":"))


_REASONS = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error"}
