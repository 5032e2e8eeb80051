"""A loopback TCP proxy in front of a MariaDB/MySQL server that cuts a connection at a chosen
statement: before the statement reaches the server (it never ran), or after the server has
answered it (it ran, and the bridge never hears so). The server is real; only the wire is cut,
exactly as a dropped LAN cable, a killed session or a server restart cuts it.

The client's side of the MySQL protocol is read packet by packet (3-byte length, sequence
number, payload); a command is a packet with sequence 0, and ``COM_QUERY`` (``0x03``) carries the
statement's text. Runs on the test's event loop: the bridge's database calls run in worker
threads, so the loop is free to pump bytes while a call waits for its answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

COM_QUERY = 0x03


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


class CuttingProxy:
    """``127.0.0.1:port`` forwarding to ``target``; :meth:`cut_next` arms one cut; every
    statement that went through is in :attr:`statements` (for learning a call's points)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.statements: list[str] = []
        self.cuts_made = 0
        self._cut: Cut | None = None
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Task[None]] = set()
        self._open: set[asyncio.StreamWriter] = set()
        self._refusing_until = 0.0

    async def start(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._link, "127.0.0.1", 0)
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
        answered = asyncio.Event()
        swallow = asyncio.Event()

        def close_both() -> None:
            for writer in (client_writer, server_writer):
                with contextlib.suppress(Exception):
                    writer.transport.abort()

        async def from_server() -> None:
            with contextlib.suppress(Exception):
                while data := await server_reader.read(65536):
                    if swallow.is_set():
                        answered.set()
                        return
                    client_writer.write(data)
                    await client_writer.drain()
            answered.set()

        pump = asyncio.create_task(from_server())
        try:
            while True:
                header = await client_reader.readexactly(4)
                length = int.from_bytes(header[:3], "little")
                payload = await client_reader.readexactly(length)
                action = self._decide(header[3], payload)
                if action == "before":
                    return  # the statement never reaches the server
                if action == "after":
                    swallow.set()  # the server answers; the bridge never hears it
                    answered.clear()
                server_writer.write(header + payload)
                await server_writer.drain()
                if action == "after":
                    await asyncio.wait_for(answered.wait(), timeout=30)
                    return
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            close_both()
            self._open.difference_update((client_writer, server_writer))
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
            self._links.discard(task)

    def _decide(self, sequence: int, payload: bytes) -> str | None:
        if sequence != 0 or not payload or payload[0] != COM_QUERY:
            return None
        sql = payload[1:].decode("utf-8", "replace").strip()
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
