"""A loopback TCP proxy in front of a MariaDB/MySQL or PostgreSQL server that cuts a connection at
a chosen statement: before the statement reaches the server (it never ran), or after the server
has answered it (it ran, and the bridge never hears so). The server is real; only the wire is
cut, exactly as a dropped LAN cable, a killed session or a server restart cuts it.

MySQL: the client's side is read packet by packet (3-byte length, sequence number, payload); a
command is a packet with sequence 0, and ``COM_QUERY`` (``0x03``) carries the statement's text.
Its answer is the server's next packet.

PostgreSQL (the frontend/backend protocol 3): the client speaks first, with messages that have no
type byte (an ``SSLRequest`` or ``GSSENCRequest``, answered by the server with one byte, ``N``
here, then the startup message); after that every message is one type byte and a 4-byte
big-endian length that counts itself. A statement is a simple query (``Q``, its text
NUL-terminated) or an extended-protocol batch up to its ``Sync`` (``S``) that executes (``E``):
its text is in the batch's ``Parse`` (``P``: statement name, then the text), or, once psycopg has
prepared the statement (it does after a few runs of the same text), in the ``Parse`` that named
it earlier on the connection, the batch then binding (``B``) that name. A batch is held until its
``Sync`` and then forwarded whole, or not at all; a batch that only prepares is not a statement.
Its answer ends with the server's ``ReadyForQuery`` (``Z``), which the server side is framed for.
A server that accepts TLS (``S``) is passed through unread: no cut can be made there.

Runs on the test's event loop: the bridge's database calls run in worker threads, so the loop is
free to pump bytes while a call waits for its answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

COM_QUERY = 0x03

PG_SSL_REQUEST = 80877103
PG_GSSENC_REQUEST = 80877104
PG_CANCEL_REQUEST = 80877102
PG_BATCH = frozenset(b"PBDEHC")
"""Extended-protocol messages held until the batch's Sync (Flush, ``H``, forwards what is held)."""


@dataclass
class Cut:
    """Cut the connection at the ``at``-th statement (0-based) counted from the first one that
    ``starts`` matches (``START TRANSACTION``), ``before`` forwarding it or after its answer."""

    at: int
    before: bool
    starts: Callable[[str], bool] = field(default=lambda sql: sql.startswith("START TRANSACTION"))
    then_refuse_s: float = 0.0
    """After the cut, refuse every new connection this long: the server unreachable for a while."""
    counting: bool = False
    seen: int = 0
    done: bool = False


def _cstring(data: bytes, start: int) -> tuple[str, int]:
    """The NUL-terminated text at ``start`` and where the next field begins."""
    end = data.index(b"\0", start)
    return data[start:end].decode("utf-8", "replace"), end + 1


class _Link:
    """One client connection's two directions and what the cut needs to know of them."""

    def __init__(
        self,
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
        server_reader: asyncio.StreamReader,
        server_writer: asyncio.StreamWriter,
        postgresql: bool,
    ) -> None:
        self.client_reader = client_reader
        self.client_writer = client_writer
        self.server_reader = server_reader
        self.server_writer = server_writer
        self.postgresql = postgresql
        self.answered = asyncio.Event()
        self.swallow = asyncio.Event()
        # PostgreSQL's server side: one-byte answers owed (SSL, GSS), framing, passthrough.
        self.single_bytes_owed = 0
        self.negotiated = asyncio.Event()
        self.opaque = False
        self._pending = bytearray()

    def close_both(self) -> None:
        for writer in (self.client_writer, self.server_writer):
            with contextlib.suppress(Exception):
                writer.transport.abort()

    async def from_server(self) -> None:
        with contextlib.suppress(Exception):
            while data := await self.server_reader.read(65536):
                ready = self._framed(data) if self.postgresql else True
                if self.swallow.is_set():
                    if ready:
                        self.answered.set()
                        return
                    continue
                self.client_writer.write(data)
                await self.client_writer.drain()
        self.answered.set()

    def _framed(self, data: bytes) -> bool:
        """Whether ``data`` completes a ``ReadyForQuery`` (the end of an answer)."""
        if self.opaque:
            return True
        self._pending += data
        ready = False
        while True:
            if self.single_bytes_owed:
                if not self._pending:
                    break
                answer = self._pending[0]
                del self._pending[:1]
                self.single_bytes_owed -= 1
                if answer in b"SG":  # TLS or GSS encryption from here on: unreadable
                    self.opaque = True
                self.negotiated.set()
                if self.opaque:
                    return True
                continue
            if len(self._pending) < 5:
                break
            length = int.from_bytes(self._pending[1:5], "big")
            if len(self._pending) < 1 + length:
                break
            ready = ready or self._pending[0] == ord("Z")
            del self._pending[: 1 + length]
        return ready


class CuttingProxy:
    """``127.0.0.1:port`` forwarding to ``target``; :meth:`cut_next` arms one cut; every
    statement that went through is in :attr:`statements` (for learning a call's points).
    ``protocol`` is the server's: ``mysql`` (MariaDB too) or ``postgresql``."""

    def __init__(self, target_host: str, target_port: int, protocol: str = "mysql") -> None:
        if protocol not in ("mysql", "postgresql"):
            raise ValueError(f"no cutting proxy for the {protocol} protocol")
        self.target = (target_host, target_port)
        self.postgresql = protocol == "postgresql"
        self.port = 0
        self.statements: list[str] = []
        self.cuts_made = 0
        self._cut: Cut | None = None
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Task[None]] = set()
        self._open: set[asyncio.StreamWriter] = set()
        self._refusing_until = 0.0

    async def start(self) -> CuttingProxy:
        return await self.start_on(0)

    async def start_on(self, port: int) -> CuttingProxy:
        """Listen on ``port`` (0: a free one): a server coming up where the bridge already looks."""
        self._server = await asyncio.start_server(self._link, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for writer in list(self._open):  # each link then ends on its own (a cancelled one is logged)
            writer.transport.abort()
        await asyncio.gather(*self._links, return_exceptions=True)

    def cut_next(self, cut: Cut) -> None:
        self._cut = cut

    @property
    def armed(self) -> bool:
        return self._cut is not None and not self._cut.done

    async def _link(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._links.add(task)
        if time.monotonic() < self._refusing_until:
            client_writer.transport.abort()
            self._links.discard(task)
            return
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            self._links.discard(task)
            return
        self._open.update((client_writer, server_writer))
        link = _Link(client_reader, client_writer, server_reader, server_writer, self.postgresql)
        pump = asyncio.create_task(link.from_server())
        try:
            await (self._postgresql_client(link) if self.postgresql else self._mysql_client(link))
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            link.close_both()
            self._open.difference_update((client_writer, server_writer))
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
            self._links.discard(task)

    @staticmethod
    async def _forward(link: _Link, data: bytes, action: str | None) -> bool:
        """Forward one statement's bytes as ``action`` says; ``False`` when the link is to end."""
        if action == "before":
            return False  # the statement never reaches the server
        if action == "after":
            link.swallow.set()  # the server answers; the bridge never hears it
            link.answered.clear()
        link.server_writer.write(data)
        await link.server_writer.drain()
        if action == "after":
            await asyncio.wait_for(link.answered.wait(), timeout=30)
            return False
        return True

    # --- MySQL ---------------------------------------------------------------------------------

    async def _mysql_client(self, link: _Link) -> None:
        while True:
            header = await link.client_reader.readexactly(4)
            length = int.from_bytes(header[:3], "little")
            payload = await link.client_reader.readexactly(length)
            action = None
            if header[3] == 0 and payload and payload[0] == COM_QUERY:
                action = self._point(payload[1:].decode("utf-8", "replace"))
            if not await self._forward(link, header + payload, action):
                return

    # --- PostgreSQL ----------------------------------------------------------------------------

    async def _postgresql_client(self, link: _Link) -> None:
        reader = link.client_reader
        while True:  # the untyped messages: encryption requests, then the startup message
            head = await reader.readexactly(4)
            body = await reader.readexactly(int.from_bytes(head, "big") - 4)
            code = int.from_bytes(body[:4], "big")
            if code in (PG_SSL_REQUEST, PG_GSSENC_REQUEST):
                link.single_bytes_owed += 1
                link.negotiated.clear()
                await self._forward(link, head + body, None)
                await asyncio.wait_for(link.negotiated.wait(), timeout=30)
                if link.opaque:
                    return await self._passthrough(link)
                continue
            await self._forward(link, head + body, None)
            if code == PG_CANCEL_REQUEST:
                return await self._passthrough(link)
            break
        prepared: dict[str, str] = {}
        held = bytearray()
        sql: str | None = None
        executes = False
        while True:
            kind = await reader.readexactly(1)
            length = await reader.readexactly(4)
            body = await reader.readexactly(int.from_bytes(length, "big") - 4)
            message = kind + length + body
            if kind == b"Q":
                text, _ = _cstring(body, 0)
                if not await self._forward(link, message, self._point(text)):
                    return
            elif kind[0] in PG_BATCH:
                held += message
                if kind == b"P":
                    name, at = _cstring(body, 0)
                    sql, _ = _cstring(body, at)
                    if name:
                        prepared[name] = sql
                elif kind == b"B" and sql is None:
                    _, at = _cstring(body, 0)
                    name, _ = _cstring(body, at)
                    sql = prepared.get(name)
                elif kind == b"E":
                    executes = True
                elif kind == b"H":  # the client waits for what it sent so far: send it
                    await self._forward(link, bytes(held), None)
                    held.clear()
            elif kind == b"S":
                held += message
                action = self._point(sql) if executes and sql is not None else None
                if not await self._forward(link, bytes(held), action):
                    return
                held.clear()
                sql, executes = None, False
            else:  # password, terminate, copy data, function calls: as they come
                await self._forward(link, bytes(held) + message, None)
                held.clear()

    @staticmethod
    async def _passthrough(link: _Link) -> None:
        while data := await link.client_reader.read(65536):
            link.server_writer.write(data)
            await link.server_writer.drain()

    # --- the cut -------------------------------------------------------------------------------

    def _point(self, sql: str) -> str | None:
        """One statement going to the server: ``before``, ``after`` (cut there) or ``None``."""
        sql = sql.strip()
        self.statements.append(sql)
        cut = self._cut
        if cut is None or cut.done:
            return None
        if not cut.counting and cut.starts(sql):
            cut.counting = True
        if not cut.counting:
            return None
        if cut.seen == cut.at:
            cut.done = True
            self.cuts_made += 1
            self._refusing_until = time.monotonic() + cut.then_refuse_s
            return "before" if cut.before else "after"
        cut.seen += 1
        return None
