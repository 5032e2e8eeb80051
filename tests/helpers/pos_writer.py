"""A stand-in for the venue's POS: a second OS process writing the same SQLite file.

Run it with ``sys.executable`` (it uses the standard library only, like any other program
that shares the file with the bridge)::

    python pos_writer.py churn DB --edit-orders 1,2 --cash-orders 3 --max-edits 2000 --max-seconds 3
    python pos_writer.py hold DB --order 1 --max-seconds 5
    python pos_writer.py hold-folder FOLDER --max-seconds 5   # a file database's folder lock
    python pos_writer.py control DB|FOLDER [--kind folder]    # stdin: hold / release, on command
    POS_WRITER_URL=mysql+pymysql://… python pos_writer.py hold-server --order 7 --sql "UPDATE …" --max-seconds 13
    POS_WRITER_URL=… python pos_writer.py control - --kind server --sql "UPDATE …"   # a server's row locks

(``hold-folder`` takes the lock the way docs/file-database.md asks a POS to, with the bridge's
own FolderLock. A database server is reached through SQLAlchemy and the server's driver, as any
program beside the bridge would; its URL, password included, comes in ``POS_WRITER_URL`` so that
the password is never on a command line.)

It talks to the test through lines, so the test synchronises on what really happened rather
than on sleeps:

* stdout ``READY`` once connected; ``LOCKED`` / ``RELEASED`` around the held transaction;
  ``EDIT {json}`` after every edit whose ``COMMIT`` returned (the journal the test checks
  for lost updates); ``DONE {json}`` with counts when it stops.
* stdin ``stop`` ends ``churn`` early; ``release`` ends ``hold`` early. Closing stdin does both.

Each edit is one short ``BEGIN IMMEDIATE`` transaction under the POS's own ``busy_timeout``,
as a till would do it. Every run is bounded by ``--max-edits`` and ``--max-seconds``, and the
choice of edits is seeded, so two runs with the same seed make the same kinds of edit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sqlite3
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BUSY_RETRIES = 20
SCRIPT = str(Path(__file__).resolve())


def stamp() -> str:
    """The bridge's own timestamp format (ISO 8601 UTC, milliseconds, ``Z``)."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def watch_stdin(stop: threading.Event) -> None:
    """Any of ``stop``, ``release`` or end of input sets ``stop``."""
    for line in sys.stdin:
        if line.strip() in {"stop", "release"}:
            break
    stop.set()


def open_pos(path: str, busy_timeout_ms: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_ms / 1000)
    conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
    conn.execute("PRAGMA journal_mode = WAL")
    return conn


def transaction(conn: sqlite3.Connection, hold_s: float, edit: Any) -> dict[str, Any] | None:
    """Run ``edit(conn)`` in ``BEGIN IMMEDIATE``; ``None`` if the lock stayed busy (then retried by the caller)."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return None
        raise
    try:
        entry: dict[str, Any] = edit(conn)
        if hold_s:
            time.sleep(hold_s)  # the till doing its own work while it holds the write lock
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return entry


def churn(args: argparse.Namespace) -> int:
    conn = open_pos(args.db, args.busy_timeout_ms)
    rng = random.Random(args.seed)
    edit_orders = [int(x) for x in args.edit_orders.split(",") if x]
    cash_orders = [int(x) for x in args.cash_orders.split(",") if x]
    items = {
        order: [row[0] for row in conn.execute("SELECT id FROM order_items WHERE order_id = ? ORDER BY id", [order])]
        for order in edit_orders
    }
    stop = threading.Event()
    threading.Thread(target=watch_stdin, args=(stop,), daemon=True).start()
    say("READY")

    def note(order: int, seq: int) -> Any:
        def edit(c: sqlite3.Connection) -> dict[str, Any]:
            at = stamp()
            text = f"pos-edit-{seq}"
            c.execute("UPDATE orders SET note = ?, updated_at = ? WHERE id = ?", [text, at, order])
            return {"kind": "note", "order": order, "note": text, "at": at}

        return edit

    def quantity(order: int, item: int) -> Any:
        def edit(c: sqlite3.Connection) -> dict[str, Any]:
            # Read-modify-write inside the transaction, as a till adding one more of a dish.
            (price,) = c.execute("SELECT amount_per_item FROM order_items WHERE id = ?", [item]).fetchone()
            at = stamp()
            c.execute("UPDATE order_items SET quantity = quantity + 1 WHERE id = ?", [item])
            c.execute(
                "UPDATE orders SET total_amount = total_amount + ?, updated_at = ? WHERE id = ?", [price, at, order]
            )
            return {"kind": "quantity", "order": order, "item": item, "price": price, "at": at}

        return edit

    def add_item(order: int, seq: int) -> Any:
        def edit(c: sqlite3.Connection) -> dict[str, Any]:
            at = stamp()
            item = c.execute(
                "INSERT INTO order_items (order_id, position, name, plu, quantity, amount_per_item) "
                "VALUES (?, 100 + ?, ?, 'POS', 1, 250)",
                [order, seq, f"Side {seq}"],
            ).lastrowid
            c.execute("UPDATE orders SET total_amount = total_amount + 250, updated_at = ? WHERE id = ?", [at, order])
            return {"kind": "item", "order": order, "item": item, "price": 250, "at": at}

        return edit

    def cash(order: int, amount: int) -> Any:
        def edit(c: sqlite3.Connection) -> dict[str, Any]:
            at = stamp()
            payment = c.execute(
                "INSERT INTO payments (order_id, tender, paid_amount, recorded_at) VALUES (?, 'cash', ?, ?)",
                [order, amount, at],
            ).lastrowid
            c.execute("UPDATE orders SET updated_at = ? WHERE id = ?", [at, order])
            return {"kind": "cash", "order": order, "payment": payment, "amount": amount, "at": at}

        return edit

    deadline = time.monotonic() + args.max_seconds
    committed = busy = 0
    longest_wait_s = 0.0
    seq = 0
    while committed < args.max_edits and time.monotonic() < deadline and not stop.is_set():
        seq += 1
        roll = rng.random()
        if cash_orders and roll < 0.25:
            edit = cash(rng.choice(cash_orders), rng.randrange(100, 1000))
        else:
            order = rng.choice(edit_orders)
            if roll < 0.55:
                edit = note(order, seq)
            elif roll < 0.9 and items[order]:
                edit = quantity(order, rng.choice(items[order]))
            else:
                edit = add_item(order, seq)
        for _ in range(BUSY_RETRIES):
            asked = time.monotonic()
            entry = transaction(conn, args.hold_ms / 1000, edit)
            longest_wait_s = max(longest_wait_s, time.monotonic() - asked - args.hold_ms / 1000)
            if entry is not None:
                committed += 1
                say("EDIT " + json.dumps(entry))
                break
            busy += 1
        if args.pause_ms:
            time.sleep(rng.uniform(0, args.pause_ms) / 1000)
    conn.close()
    summary = {
        "committed": committed,
        "busy": busy,
        "longest_commit_wait_ms": round(longest_wait_s * 1000),
        "stopped_early": stop.is_set(),
    }
    say("DONE " + json.dumps(summary))
    return 0


def hold(args: argparse.Namespace) -> int:
    """Hold the write lock (as a till stuck in a long save) until ``release`` or the limit."""
    conn = open_pos(args.db, args.busy_timeout_ms)
    stop = threading.Event()
    threading.Thread(target=watch_stdin, args=(stop,), daemon=True).start()
    say("READY")
    conn.execute("BEGIN IMMEDIATE")
    at = stamp()
    if args.floreant:  # Floreant saves a ticket by bumping its MODIFIED_TIME (Hibernate's version)
        touch = "UPDATE TICKET SET MODIFIED_TIME = strftime('%Y-%m-%d %H:%M:%f', ?) WHERE ID = ?"
        conn.execute(touch, [at, args.order])
    elif args.ospos:  # OSPOS completing a long sale: its stock and table rows written in one transaction
        touch = (
            "UPDATE ospos_dinner_tables SET status = status WHERE ? IS NOT NULL AND dinner_table_id ="
            " (SELECT dinner_table_id FROM ospos_sales_suspended WHERE sale_id = ?)"
        )
        conn.execute(touch, [at, args.order])
    else:
        touch = "UPDATE orders SET updated_at = ? WHERE id = ?"
        conn.execute("UPDATE orders SET note = 'held by the POS', updated_at = ? WHERE id = ?", [at, args.order])
    say("LOCKED")
    stop.wait(args.max_seconds)
    # The till saves its last change just before it commits: the order's newest timestamp.
    at = stamp()
    conn.execute(touch, [at, args.order])
    conn.execute("COMMIT")
    say("RELEASED " + at)
    conn.close()
    say("DONE " + json.dumps({"held_order": args.order, "at": at}))
    return 0


class ServerHold:
    """A till's own transaction on a database server: ``statements`` (each may name ``:order``)
    run in one transaction whose row and table locks stay held until :meth:`end`."""

    def __init__(self, statements: Sequence[str], order: str | None) -> None:
        import sqlalchemy as sa

        self._sa = sa
        self._engine = sa.create_engine(os.environ["POS_WRITER_URL"], poolclass=sa.pool.NullPool)
        self._statements = statements
        self._params = {} if order is None else {"order": int(order) if order.isdigit() else order}
        self._conn: Any = None
        self._transaction: Any = None

    def begin(self) -> None:
        self._conn = self._engine.connect()
        self._transaction = self._conn.begin()
        for statement in self._statements:
            self._conn.execute(self._sa.text(statement), self._params)

    def end(self, *, commit: bool) -> None:
        """COMMIT (a save that lands) or ROLLBACK (a save given up), then the connection closes."""
        if commit:
            self._transaction.commit()
        else:
            self._transaction.rollback()
        self._conn.close()
        self._conn = self._transaction = None

    def close(self) -> None:
        if self._conn is not None:
            self.end(commit=False)
        self._engine.dispose()


def hold_server(args: argparse.Namespace) -> int:
    """Hold a till's transaction on a database server (its row locks) until ``release`` or the limit."""
    stop = threading.Event()
    threading.Thread(target=watch_stdin, args=(stop,), daemon=True).start()
    held = ServerHold(args.sql, args.order)
    say("READY")
    try:
        held.begin()
        say("LOCKED")
        stop.wait(args.max_seconds)
        held.end(commit=True)
        say("RELEASED " + stamp())
    finally:
        held.close()
    say("DONE " + json.dumps({"held_order": args.order}))
    return 0


def hold_folder(args: argparse.Namespace) -> int:
    """Hold a file database's exclusive folder lock, as a POS stuck mid-save, until ``release``."""
    from epos_bridge.adapters.jsonfile import FolderLock

    stop = threading.Event()
    threading.Thread(target=watch_stdin, args=(stop,), daemon=True).start()
    say("READY")
    with FolderLock(Path(args.folder), timeout_s=30).hold():
        say("LOCKED")
        stop.wait(args.max_seconds)
        say("RELEASED " + stamp())
    say("DONE " + json.dumps({"folder": args.folder}))
    return 0


def control(args: argparse.Namespace) -> int:
    """Take and give back the POS's write lock on command: ``hold`` / ``release`` lines on stdin.

    For a SQLite file ``BEGIN IMMEDIATE`` … ``ROLLBACK``; for a file database the folder lock;
    for a database server the ``--sql`` statements' locks, in a transaction then rolled back.
    Answers ``LOCKED`` / ``RELEASED`` once it is so; ends on ``stop`` or at end of input.
    """
    if args.kind == "server":
        return control_server(args)
    say("READY")
    conn = open_pos(args.target, args.busy_timeout_ms) if args.kind == "sqlite" else None
    held: Any = None
    for line in sys.stdin:
        command = line.strip()
        if command == "hold" and held is None:
            if conn is not None:
                conn.execute("BEGIN IMMEDIATE")
                held = conn
            else:
                from epos_bridge.adapters.jsonfile import FolderLock

                held = FolderLock(Path(args.target), timeout_s=30).hold()
                held.__enter__()
            say("LOCKED")
        elif command == "release" and held is not None:
            if conn is not None:
                conn.execute("ROLLBACK")
            else:
                held.__exit__(None, None, None)
            held = None
            say("RELEASED")
        elif command == "stop":
            break
    if held is not None and conn is None:
        held.__exit__(None, None, None)
    if conn is not None:
        conn.close()
    say("DONE " + json.dumps({"mode": "control", "target": args.target}))
    return 0


def control_server(args: argparse.Namespace) -> int:
    held = ServerHold(args.sql, None)
    holding = False
    say("READY")
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "hold" and not holding:
                held.begin()
                holding = True
                say("LOCKED")
            elif command == "release" and holding:
                held.end(commit=False)
                holding = False
                say("RELEASED")
            elif command == "stop":
                break
    finally:
        held.close()
    say("DONE " + json.dumps({"mode": "control", "target": "server"}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    churn_p = sub.add_parser("churn", help="keep editing orders and taking cash")
    churn_p.add_argument("db")
    churn_p.add_argument("--edit-orders", required=True, help="comma-separated orders.id to edit")
    churn_p.add_argument("--cash-orders", default="", help="comma-separated orders.id to take cash on")
    churn_p.add_argument("--max-edits", type=int, default=1000)
    churn_p.add_argument("--max-seconds", type=float, default=3.0)
    churn_p.add_argument("--seed", type=int, default=7)
    churn_p.add_argument("--hold-ms", type=float, default=1.0, help="time each transaction keeps the lock")
    churn_p.add_argument("--pause-ms", type=float, default=2.0, help="upper bound of the pause between edits")
    churn_p.add_argument("--busy-timeout-ms", type=int, default=5000)
    churn_p.set_defaults(run=churn)
    hold_p = sub.add_parser("hold", help="hold a write transaction open")
    hold_p.add_argument("db")
    hold_p.add_argument("--order", type=int, required=True)
    hold_p.add_argument("--max-seconds", type=float, default=5.0)
    hold_p.add_argument("--busy-timeout-ms", type=int, default=5000)
    hold_p.add_argument(
        "--floreant", action="store_true", help="the database is Floreant's (TICKET), not the reference"
    )
    hold_p.add_argument("--ospos", action="store_true", help="the database is Open Source Point of Sale's")
    hold_p.set_defaults(run=hold)
    server_p = sub.add_parser("hold-server", help="hold a till's transaction on a database server")
    server_p.add_argument("--order", required=True, help="the value of :order in the statements")
    server_p.add_argument("--sql", action="append", required=True, help="a statement of the till's transaction")
    server_p.add_argument("--max-seconds", type=float, default=5.0)
    server_p.set_defaults(run=hold_server)
    folder_p = sub.add_parser("hold-folder", help="hold a file database's folder lock")
    folder_p.add_argument("folder")
    folder_p.add_argument("--max-seconds", type=float, default=5.0)
    folder_p.set_defaults(run=hold_folder)
    control_p = sub.add_parser("control", help="hold and release the write lock on command (stdin)")
    control_p.add_argument("target", help="the SQLite file, or the file database's folder (- for a server)")
    control_p.add_argument("--kind", choices=("sqlite", "folder", "server"), default="sqlite")
    control_p.add_argument("--sql", action="append", default=[], help="with --kind server: the locking statements")
    control_p.add_argument("--busy-timeout-ms", type=int, default=5000)
    control_p.set_defaults(run=control)
    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result


class PosProcess:
    """The test's side of the conversation: start the writer, wait for its lines, collect the journal.

    A reader task drains stdout all the time (so the writer never stalls on a full pipe) and
    keeps every ``EDIT`` entry in :attr:`journal`, in commit order.
    """

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self.journal: list[dict[str, Any]] = []
        self.summary: dict[str, Any] = {}
        self._signals: asyncio.Queue[str | None] = asyncio.Queue()
        self._edited = asyncio.Event()
        self._reader = asyncio.create_task(self._read_stdout())

    @classmethod
    async def start(cls, *args: str, server_url: str | None = None) -> PosProcess:
        """``server_url`` (a database server's, password included) reaches it in its environment."""
        env = None if server_url is None else {**os.environ, "POS_WRITER_URL": server_url}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            SCRIPT,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        pos = cls(process)
        try:
            await pos.expect("READY")
        except BaseException:
            await pos.kill()
            raise
        return pos

    @property
    def running(self) -> bool:
        return self._process.returncode is None

    async def expect(self, wanted: str, timeout_s: float = 10.0) -> str:
        """Wait for the next signal line starting with ``wanted`` (``READY``, ``LOCKED``, ``RELEASED``, ``DONE``)."""
        async with asyncio.timeout(timeout_s):
            while True:
                line = await self._signals.get()
                if line is None:
                    raise AssertionError(f"the POS process ended before saying {wanted!r}")
                if line.startswith(wanted):
                    return line

    async def wait_for_edits(self, count: int, timeout_s: float = 10.0) -> None:
        """Until the POS has committed ``count`` edits (so the bridge's requests meet a busy POS)."""
        async with asyncio.timeout(timeout_s):
            while len(self.journal) < count:
                if not self.running and self._reader.done():
                    raise AssertionError(f"the POS process stopped after {len(self.journal)} edits")
                self._edited.clear()
                await self._edited.wait()

    async def send(self, line: str) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(line.encode() + b"\n")
        await self._process.stdin.drain()

    async def finish(self, timeout_s: float = 10.0) -> None:
        """Ask it to stop, wait for the rest of its journal and reap it; killed if it overstays."""
        try:
            if self.running:
                # In hold mode the process may be exiting on its own after "release": a pipe that
                # closes under us is that exit, not a failure.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    await self.send("stop")
            async with asyncio.timeout(timeout_s):
                await self._reader
                returncode = await self._process.wait()
        except BaseException:
            await self.kill()
            raise
        stderr = await self._close_pipes()
        assert returncode == 0, stderr
        assert self.summary, f"the POS process did not report DONE: {stderr}"

    async def kill(self) -> None:
        """Last resort on a failing path: never leave the writer running or its pipes open."""
        if self.running:
            self._process.kill()
        await self._process.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self._close_pipes()

    async def _close_pipes(self) -> str:
        assert self._process.stdin is not None and self._process.stderr is not None
        self._process.stdin.close()
        with contextlib.suppress(ConnectionError):
            await self._process.stdin.wait_closed()
        return (await self._process.stderr.read()).decode(errors="replace")

    async def _read_stdout(self) -> None:
        assert self._process.stdout is not None
        try:
            async for raw in self._process.stdout:
                line = raw.decode().rstrip("\n")
                if line.startswith("EDIT "):
                    self.journal.append(json.loads(line[5:]))
                    self._edited.set()
                    continue
                if line.startswith("DONE "):
                    self.summary = json.loads(line[5:])
                self._signals.put_nowait(line)
        finally:
            self._signals.put_nowait(None)
            self._edited.set()


def csv(numbers: Sequence[int]) -> str:
    return ",".join(str(n) for n in numbers)


if __name__ == "__main__":
    sys.exit(main())
