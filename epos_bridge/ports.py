"""The ports the core depends on: the POS adapter, the clock, the event publisher.

A POS adapter answers one method per capability. It reports which capabilities it implements
(registration sends exactly those), and it appends what happened to ``CallContext.events`` so
the bridge can show payments and locks without the adapter knowing who listens.

Adapters raise :mod:`epos_bridge.domain.errors` failures for contract errors; any other
exception becomes ``UnexpectedError``. Every method is a coroutine and must never block the
event loop: blocking database work belongs in a worker thread.

A writing method either commits its change and returns, or raises and leaves the database as it
was: the answer Dojo gets is derived from that verdict alone. ``CallContext.deadline`` is the
adapter's to honour (refuse to start once passed, check before commit, roll back when late).
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable
from urllib.parse import unquote, urlsplit

from epos_bridge.domain.bill import VenueDetails
from epos_bridge.domain.bookings import PartyFilter, PartyRecord, ReservationFilter, ReservationRecord
from epos_bridge.domain.errors import EposFailure
from epos_bridge.domain.events import DomainEvent, OrderFacts
from epos_bridge.domain.intents import StoredIntentEvent
from epos_bridge.domain.locks import HeldLock, LockChange
from epos_bridge.domain.orders import OrderFilter, OrderRecord, PaymentRecord, StoredPayment
from epos_bridge.domain.pagination import Page, PageRequest
from epos_bridge.domain.payments import RecordedIntent
from epos_bridge.domain.records import StoredRecord
from epos_bridge.domain.registry import RegisteredOrder
from epos_bridge.domain.terminal_sessions import CounterSession
from epos_bridge.protocol.capabilities import Capability
from epos_bridge.protocol.dojo_rest import (
    MoneyLike,
    PaymentIntent,
    Reversal,
    SessionDetails,
    Terminal,
    TerminalSession,
)
from epos_bridge.protocol.entities import (
    Area,
    Order,
    OrderBill,
    OrderStatus,
    Party,
    PaymentIntentEvent,
    Reservation,
    Table,
)
from epos_bridge.protocol.params import (
    CreateOrderLockParams,
    CreateOrderParams,
    CreatePartyParams,
    CreateReservationParams,
    DeleteOrderLockParams,
    ExtendOrderLockParams,
    HandleEventParams,
    OrderIdParams,
    PagedOrders,
    PagedParties,
    PagedReservations,
    PagedTables,
    PartyIdParams,
    RecordOrderPaymentParams,
    RequestHeaders,
    ReservationIdParams,
    SearchOrdersParams,
    SearchPartiesParams,
    SearchReservationsParams,
    SearchTablesParams,
    UpdatePartyParams,
    UpdateReservationParams,
    WithHeaders,
)


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


EventSink = Callable[[DomainEvent], None]

X = TypeVar("X")
T = TypeVar("T")
Submit = Callable[[Callable[[X], T], "Deadline | None"], Awaitable[T]]
"""A database's ``write(work, deadline)``: runs ``work`` on its handle in one transaction."""


@dataclass(frozen=True)
class Deadline:
    """When an answer is due, on the monotonic clock.

    The deadline belongs to the transaction, not to whoever waits for it: an adapter refuses to
    *start* a transaction once it has passed, checks it again just before ``COMMIT`` and rolls
    back when late. The caller then waits for that verdict and answers from it, so an answer
    never disagrees with what was committed (a deadline that abandons work already started
    would answer "failed" for a payment that later commits).
    """

    at: float
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(clock() + seconds, clock)

    def remaining(self) -> float:
        return self.at - self.clock()

    def passed(self) -> bool:
        return self.clock() >= self.at


@dataclass
class CallContext:
    """Per-request facts handed to the adapter, and the events it records.

    ``deadline``: ``None`` means no deadline (tools, tests); adapters honour it when present
    (see :class:`Deadline`).
    """

    trace_id: str
    headers: RequestHeaders = field(default_factory=RequestHeaders)
    events: list[DomainEvent] = field(default_factory=list)
    deadline: Deadline | None = None

    def record(self, *events: DomainEvent) -> None:
        self.events.extend(events)

    async def transaction(self, submit: Submit[X, T], work: Callable[[X], T]) -> T:
        """Run a transaction body through ``submit`` (a database's ``write``) with this call's
        deadline. The body may run more than once (a snapshot attempt, then under the write
        lock): each run starts from the events recorded before it, and a call that fails
        records none, so only what was committed is published."""
        mark = len(self.events)

        def attempt(handle: X) -> T:
            del self.events[mark:]
            return work(handle)

        try:
            return await submit(attempt, self.deadline)
        except BaseException:
            del self.events[mark:]
            raise


@runtime_checkable
class PosAdapter(Protocol):
    """One POS database. Implement the methods for the capabilities you report, and say what
    else the storage can do: its change log (``changes``), and whether it can write."""

    def implemented_capabilities(self) -> frozenset[Capability]: ...

    async def close(self) -> None: ...

    @property
    def changes(self) -> ChangeSource | None:
        """The change log behind POS events (contract §5.2), or ``None`` if this storage has none."""
        ...

    async def check_writable(self) -> None:
        """Raise :class:`epos_bridge.domain.errors.PosUnavailable` unless this storage can write:
        payments and locks need it, and reads alone do not prove it (``doctor`` asks)."""
        ...

    # orders
    async def search_orders(self, params: SearchOrdersParams, ctx: CallContext) -> PagedOrders: ...
    async def get_order(self, params: OrderIdParams, ctx: CallContext) -> Order: ...
    async def cancel_order(self, params: OrderIdParams, ctx: CallContext) -> Order: ...
    async def create_order(self, params: CreateOrderParams, ctx: CallContext) -> Order: ...
    async def get_order_bill(self, params: OrderIdParams, ctx: CallContext) -> OrderBill: ...
    async def record_order_payment(self, params: RecordOrderPaymentParams, ctx: CallContext) -> Order: ...

    # order locks
    async def create_order_lock(self, params: CreateOrderLockParams, ctx: CallContext) -> Order: ...
    async def extend_order_lock(self, params: ExtendOrderLockParams, ctx: CallContext) -> None: ...
    async def delete_order_lock(self, params: DeleteOrderLockParams, ctx: CallContext) -> Order: ...

    # tables and areas
    async def list_areas(self, params: WithHeaders, ctx: CallContext) -> list[Area]: ...
    async def search_tables(self, params: SearchTablesParams, ctx: CallContext) -> PagedTables: ...

    # parties
    async def create_party(self, params: CreatePartyParams, ctx: CallContext) -> Party: ...
    async def get_party(self, params: PartyIdParams, ctx: CallContext) -> Party: ...
    async def update_party(self, params: UpdatePartyParams, ctx: CallContext) -> Party: ...
    async def delete_party(self, params: PartyIdParams, ctx: CallContext) -> None: ...
    async def search_parties(self, params: SearchPartiesParams, ctx: CallContext) -> PagedParties: ...

    # reservations
    async def create_reservation(self, params: CreateReservationParams, ctx: CallContext) -> Reservation: ...
    async def get_reservation(self, params: ReservationIdParams, ctx: CallContext) -> Reservation: ...
    async def update_reservation(self, params: UpdateReservationParams, ctx: CallContext) -> Reservation: ...
    async def delete_reservation(self, params: ReservationIdParams, ctx: CallContext) -> None: ...
    async def search_reservations(self, params: SearchReservationsParams, ctx: CallContext) -> PagedReservations: ...

    # events from Dojo
    async def handle_payment_intent_event(
        self, params: HandleEventParams, event: PaymentIntentEvent, ctx: CallContext
    ) -> None:
        """Store the event once (dedupe on ``params.id``) and apply it to the matching payment."""
        ...


# --- what a POS storage reads and stores (adapters implement it; services/pos_calls runs the calls) ---

RowKey = int
"""A storage's own key of an order, party or reservation (a row id, a file number)."""

R_contra = TypeVar("R_contra", contravariant=True)
B_co = TypeVar("B_co", covariant=True)
F_contra = TypeVar("F_contra", contravariant=True)


@dataclass(frozen=True)
class PosOrder:
    """An order's header as stored: what the rules need to judge a lock, a payment or a cancel.
    ``updated_at`` is ``None`` when the stored time cannot be read (treated as changed)."""

    key: RowKey
    order_id: str
    status: OrderStatus
    currency: str
    total_value: int
    updated_at: datetime | None = None
    open_at_till: str | None = None
    facts: OrderFacts = field(default_factory=OrderFacts)


class BookingRows(Protocol[R_contra, B_co, F_contra]):
    """The parties or the reservations of a POS, inside one transaction."""

    def record(self, wire_id: str) -> StoredRecord[RowKey] | None:
        """The record a wire id names, deleted or not; ``None`` for an id this POS never issued."""
        ...

    def of_dojo_id(self, dojo_id: str) -> StoredRecord[RowKey] | None:
        """The record holding Dojo's id, deleted or not."""
        ...

    def insert(self, record: R_contra, now: datetime) -> RowKey: ...

    def replace(self, key: RowKey, record: R_contra, now: datetime) -> None: ...

    def delete(self, key: RowKey, now: datetime) -> None:
        """Mark it deleted at ``now`` (softly: its id is never reused)."""
        ...

    def answer(self, key: RowKey) -> B_co:
        """The wire record as stored; a time that cannot be read is ``PosUnavailable``
        (:func:`epos_bridge.domain.bookings.read_booking`)."""
        ...

    def search(self, wanted: F_contra, page: PageRequest) -> Page[B_co]:
        """One page of the records ``wanted`` keeps, by key; one whose time cannot be read is left
        out (:func:`epos_bridge.domain.bookings.searched`)."""
        ...


class PosRows(Protocol):
    """What one call reads and stores in the POS, inside one transaction of a :class:`PosStorage`.

    Storage only: every decision is the caller's (``services/pos_calls``, by ``domain/``), so a
    row store never reads the clock (the time of the call is handed in) and never judges.
    """

    # orders
    def order(self, order_id: str) -> PosOrder:
        """The order a wire id names; ``NotFound`` for anything that is not one."""
        ...

    def payments(self, order: PosOrder) -> tuple[StoredPayment, ...]: ...

    def answer_order(self, key: RowKey) -> Order:
        """The wire order as stored now (after this transaction's own writes)."""
        ...

    def search_orders(self, wanted: OrderFilter, page: PageRequest) -> Page[Order]: ...

    def order_of_dojo_id(self, dojo_order_id: str) -> StoredRecord[RowKey] | None: ...

    def insert_order(self, order: OrderRecord) -> RowKey:
        """Store a new order; ``InvalidRequest`` (nothing stored) for what this POS has no place for."""
        ...

    def cancel_order(self, order: PosOrder, now: datetime) -> None: ...

    def venue(self) -> VenueDetails | None:
        """The merchant's details for a bill; ``None`` when the POS has none."""
        ...

    def table_name(self, table_id: str) -> str | None: ...

    # the bridge's registry of the orders Dojo wrote to (kept in the bridge's own rows)
    def registered_order(self, order_id: str) -> RegisteredOrder | None:
        """The bridge's record of an order under Dojo's id, or ``None`` if Dojo never wrote to it."""
        ...

    def register_order(self, order_id: str, key: RowKey, answer: Order, now: datetime) -> None:
        """Keep (insert or replace) where Dojo's order is now and what Dojo was just told of it."""
        ...

    def follow_order(self, registered: RegisteredOrder) -> PosOrder | None:
        """The order the POS moved a registered one to (a bill checked out under a new key), with
        ``order_id`` left as the POS names it; ``None`` where the POS has no such move or finds none."""
        ...

    # order locks
    def held_lock(self, order: PosOrder) -> HeldLock | None: ...

    def store_lock(self, order: PosOrder, change: LockChange) -> None:
        """Store what a ``domain.locks`` decision says (replace, remove, or leave the lock)."""
        ...

    # payments and payment-intent events
    def recorded_intent(self, payment_intent_id: str) -> RecordedIntent | None:
        """Where a paymentIntentId is already recorded, on any order (exact string match)."""
        ...

    def insert_payment(self, order: PosOrder, payment: PaymentRecord, now: datetime) -> None: ...

    def intent_events(self, payment_intent_id: str, event_id: str | None = None) -> list[StoredIntentEvent]:
        """The events kept for an intent in arrival order, and the one holding ``event_id`` (the
        key is global) if another intent holds it."""
        ...

    def keep_intent_event(
        self, params: HandleEventParams, event: PaymentIntentEvent, received_at: datetime
    ) -> None: ...

    def set_payment_status(self, recorded: RecordedIntent, payment_intent_id: str, status: str, now: datetime) -> None:
        """The recorded payment's new status (the intent was refunded, reversed …)."""
        ...

    # tables and areas
    def known_tables(self, table_ids: Sequence[str]) -> Container[str]:
        """The tables the POS has, at least those of ``table_ids`` that exist."""
        ...

    def areas(self) -> list[Area]: ...

    def search_tables(self, area_id: str | None, waiter_id: str | None, page: PageRequest) -> Page[Table]: ...

    # bookings: a storage without them says so once, in the property
    @property
    def parties(self) -> BookingRows[PartyRecord, Party, PartyFilter]: ...

    @property
    def reservations(self) -> BookingRows[ReservationRecord, Reservation, ReservationFilter]: ...


@runtime_checkable
class PosStorage(Protocol):
    """What an :class:`AdapterFactory` opens: one POS's storage. ``read``/``write`` run ``work``
    on a :class:`PosRows` in one transaction that honours ``deadline`` (refuse to start once
    passed, check before commit, roll back when late). ``write`` may run ``work`` more than once
    (a lock-free attempt, then under the lock): it must only read and store."""

    def implemented_capabilities(self) -> frozenset[Capability]: ...

    @property
    def changes(self) -> ChangeSource | None:
        """The change log behind POS events (contract §5.2), or ``None`` if this storage has none."""
        ...

    async def check_writable(self) -> None:
        """Raise :class:`epos_bridge.domain.errors.PosUnavailable` unless this storage can write."""
        ...

    async def read(self, work: Callable[[PosRows], T], deadline: Deadline | None = None) -> T: ...

    async def write(self, work: Callable[[PosRows], T], deadline: Deadline | None = None) -> T: ...

    async def close(self) -> None: ...


# --- change capture for POS events (contract §5.2) ------------------------------------------

ChangedEntity = Literal["order", "party", "reservation"]


@dataclass(frozen=True)
class PosChange:
    """One row of the POS's change log: something about this entity changed, by anyone."""

    seq: int
    entity: ChangedEntity
    entity_id: str
    change: str


@runtime_checkable
class ChangeSource(Protocol):
    """An adapter that can tell what changed in the POS database since a point in its log."""

    async def latest_change(self) -> int: ...

    async def changes_after(self, seq: int, limit: int) -> list[PosChange]: ...

    async def forget_changes_through(self, seq: int) -> None:
        """The bridge has queued everything up to ``seq``; the POS may drop those rows."""
        ...


@dataclass(frozen=True)
class QueuedEvent:
    """A POS event waiting in the outbox; ``version`` grows with each coalesced change."""

    entity: ChangedEntity
    entity_id: str
    version: int
    attempts: int
    first_queued_at: float


class Outbox(Protocol):
    """The durable POS-event queue and how far the change log has been read."""

    async def cursor(self, source: str) -> int | None: ...

    async def enqueue(
        self, source: str, changes: list[PosChange], through_seq: int, due_at: float, *, durable: bool = False
    ) -> None:
        """Queue ``changes`` and move the cursor, in one transaction; ``durable``: on disk before
        this returns (the relay asks for it before the POS may forget those changes)."""

    async def due(self, now: float, limit: int = 50) -> list[QueuedEvent]: ...

    async def delivered(self, event: QueuedEvent) -> None: ...

    async def failed(self, event: QueuedEvent, error: str, retry_at: float) -> None: ...

    async def depth(self) -> int: ...

    async def last_error(self) -> str | None: ...


# --- pay at counter (contract §5.3-5.5) -------------------------------------------------------


class CounterDojo(Protocol):
    """The Dojo calls pay at counter makes (``dojo_api.DojoClient`` is one)."""

    async def list_terminals(self) -> list[Terminal]: ...

    async def create_payment_intent(
        self,
        amount: MoneyLike,
        reference: str,
        *,
        metadata: Mapping[str, str] | None = None,
        order_external_id: str | None = None,
        description: str | None = None,
    ) -> PaymentIntent: ...

    async def get_payment_intent(self, payment_intent_id: str, *, return_canceled: bool = False) -> PaymentIntent: ...

    async def reverse_payment_intent(self, payment_intent_id: str) -> Reversal:
        """Give a captured card back (a capture the POS refused, contract §5.4); never retried."""
        ...

    async def create_terminal_session(self, terminal_id: str, details: SessionDetails) -> TerminalSession: ...

    async def get_terminal_session(self, terminal_session_id: str) -> TerminalSession: ...

    async def cancel_terminal_session(self, terminal_session_id: str) -> TerminalSession: ...

    async def answer_signature(self, terminal_session_id: str, accepted: bool) -> TerminalSession: ...


class CounterSessionStore(Protocol):
    """Where pay at counter keeps its sessions until their outcome is on the POS (durably: a
    restart resumes from it)."""

    async def add(self, session: CounterSession) -> CounterSession:
        """Store a new session; returns it with ``started_at`` as stored."""
        ...

    async def rename(self, old_id: str, new_id: str, status: str) -> None: ...

    async def set_status(self, session_id: str, status: str, *, outcome_recorded: bool = False) -> None: ...

    async def unfinished(self) -> list[CounterSession]: ...


# --- kinds of POS storage (adapters/registry.py collects them) ---------------------------------

LocationKind = Literal["file", "folder", "server"]
"""What EPOS_BRIDGE_DB names for a kind of storage: a file, a folder, or a database on a server
(a URL: :class:`ServerLocation`)."""

_SERVER_URL = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\+[A-Za-z0-9_]+)?://")


@dataclass(frozen=True)
class ServerLocation:
    """A POS database on a server, as a URL without its password
    (``mysql+pymysql://bridge@127.0.0.1:3306/ospos``). The password lives in the OS keyring
    (or ``EPOS_BRIDGE_DB_PASSWORD``) and is attached only to open the database: it is never part
    of the URL, the settings file, a log or this object's ``repr``."""

    url: str
    password: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.password is not None:
            raise ValueError("must not carry a password: the password is kept in the OS keyring")
        if not parts.hostname or not parts.path.strip("/"):
            raise ValueError("must name the server and the database (scheme://user@host:port/database)")
        if not parts.username:
            raise ValueError("must name the database user (scheme://user@host:port/database)")

    def __str__(self) -> str:
        return self.url

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme.lower()

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int | None:
        return urlsplit(self.url).port

    @property
    def database(self) -> str:
        return urlsplit(self.url).path.strip("/")

    @property
    def user(self) -> str:
        return unquote(urlsplit(self.url).username or "")

    def with_password(self, password: str | None) -> ServerLocation:
        return ServerLocation(self.url, password)


PosLocation = Path | ServerLocation
"""Where the POS's storage is: a file or folder, or a database server."""


def pos_location(text: str | Path) -> PosLocation:
    """EPOS_BRIDGE_DB as given: a URL names a server (``ValueError`` saying what is wrong with
    it), anything else a path."""
    if isinstance(text, Path):
        return text
    if _SERVER_URL.match(text.strip()):
        return ServerLocation(text.strip())
    return Path(text).expanduser()


def not_a_file(location: ServerLocation, what: str) -> str:
    return (
        f"{what} reads a file or folder, not a database server ({location.url}): use the sqlmap adapter with a "
        "mapping for that server's POS"
    )


def file_path(location: PosLocation, what: str = "this adapter") -> Path:
    """A file or folder location; a server is refused in words (a file adapter never opens one)."""
    if isinstance(location, ServerLocation):
        raise AdapterInitError(not_a_file(location, what))
    return location


class AdapterInitError(Exception):
    """``AdapterFactory.init`` could not create or upgrade the storage; the message says why."""


@runtime_checkable
class AdapterFactory(Protocol):
    """Everything the rest of the bridge needs to know about one kind of POS storage, so that no
    CLI command, settings check, dialog or ``doctor`` branches on an adapter's name.

    ``open`` must not block: an adapter does its I/O later, on a worker thread.
    """

    @property
    def description(self) -> str:
        """One line for ``epos-bridge capabilities``: what storage, what EPOS_BRIDGE_DB names."""
        ...

    @property
    def location(self) -> LocationKind:
        """Whether EPOS_BRIDGE_DB names a file or a folder (Settings' Browse… picks accordingly)."""
        ...

    def init(self, location: PosLocation, *, demo: bool) -> list[str]:
        """Create (or upgrade) the storage, with a demo venue if asked; lines saying what was done.
        Raises :class:`AdapterInitError`."""
        ...

    async def problem(self, location: PosLocation) -> str | None:
        """A sentence naming what is wrong with ``location`` for this adapter, or ``None``.
        Changes nothing: no file is created, migrated or written."""
        ...

    def open(self, location: PosLocation) -> PosStorage | PosAdapter:
        """The storage at ``location`` (``services.pos_calls.serve`` runs the calls over it); a
        package written before :class:`PosStorage` returns its own whole :class:`PosAdapter`."""
        ...

    @property
    def mappings(self) -> tuple[str, ...] | None:
        """``None`` when this storage needs no mapping file. Otherwise it needs one (the setting
        ``mapping``, ``EPOS_BRIDGE_MAPPING``): a path, or one of the names given here, which ship
        with the adapter (Settings offers them)."""
        ...

    def with_mapping(self, mapping: str | None) -> AdapterFactory:
        """This kind of storage read through ``mapping`` (``None``: none chosen yet); a factory that
        needs no mapping returns itself. Raises ``ValueError`` with a sentence naming what is wrong
        with the mapping (no such file or name, a bad key)."""
        ...


@runtime_checkable
class AttachableFactory(Protocol):
    """A kind of storage that is a POS's own database, to which the bridge adds tables of its own
    (order locks, payment de-duplication, the change log). ``db attach`` and ``db detach`` use it;
    a factory without it keeps nothing of the bridge's in the POS's storage."""

    def attach(self, location: PosLocation, *, dry_run: bool) -> list[str]:
        """Add the bridge's tables; lines saying what was done, or with ``dry_run`` the SQL that
        would run (nothing is changed). Raises :class:`AdapterInitError`."""
        ...

    def detach(self, location: PosLocation, *, dry_run: bool, forget_payments: bool = False) -> list[str]:
        """Remove what :meth:`attach` added, and only that. The bridge's payment record (which
        paymentIntentIds are on the till) stays unless ``forget_payments``, so a later attach
        cannot count a retried payment twice; a factory that keeps no such record ignores the
        flag. Refused while a bridge serves the database. Raises :class:`AdapterInitError`."""
        ...


@runtime_checkable
class KeepsFacts(Protocol):
    """A storage kind whose mapping reads facts the POS has no column for (a table's covers and
    Dojo id, the venue's VAT number) from the bridge's own table: ``epos-bridge facts`` sets them."""

    def list_facts(self, location: PosLocation, kind: str | None) -> list[str]: ...

    def set_fact(self, location: PosLocation, kind: str, key: str, field: str, value: str | None) -> list[str]:
        """Keep a fact (``value`` ``None``: forget it). Raises :class:`AdapterInitError`."""
        ...


@runtime_checkable
class KeepsTheTillInStep(Protocol):
    """A storage that writes Dojo's state into the POS's own tables where the POS may later undo
    it on its own: a lock shown in an "in use at till N" column must be released there once it
    expires, and a reversed payment a till's cart carried back must stop counting again."""

    async def keep_the_till_in_step(self, now: datetime) -> int:
        """Release, on the POS, the locks expired since the last call and apply again the
        recent reversals; how many locks were released."""
        ...


@runtime_checkable
class SweepsTheTill(Protocol):
    """An adapter whose storage may need the POS kept in step (:class:`KeepsTheTillInStep`): the
    POS connection calls this every few seconds."""

    async def sweep_the_till(self) -> int: ...


@runtime_checkable
class ShowsOnTheTill(Protocol):
    """A storage kind that writes Dojo's payments into a POS's own tables, and can say from its
    configuration alone where one would not show on the POS's own screens (a payment staff
    cannot see is taken again): ``db attach`` and the Verify report carry these warnings."""

    def till_warnings(self) -> list[str]: ...


async def read_problem(opened: PosStorage | PosAdapter) -> str | None:
    """The check every factory's :meth:`AdapterFactory.problem` ends with: one real read (the
    first table, which needs no write access) of storage just opened, which is then closed.
    The failure's message, or ``None`` when it reads."""
    first = PageRequest(limit=1, boundary=None, direction="forward")
    try:
        if isinstance(opened, PosStorage):
            await opened.read(lambda rows: rows.search_tables(None, None, first))
        else:
            await opened.search_tables(SearchTablesParams(), CallContext(trace_id="settings-check"))
    except EposFailure as exc:
        return exc.message
    finally:
        await opened.close()
    return None


# --- the answers the bridge already gave (idempotency) -----------------------------------------


@dataclass(frozen=True)
class StoredAnswer:
    """An answer kept so that a repeat of its request gets it again, not a second side effect."""

    response_text: str
    outcome: str
    trace_id: str
    debug_message: str | None = None
    params_digest: str | None = None


class AnswerStore(Protocol):
    """Where answers to mutating requests are kept, by (method, JSON-RPC id):
    ``state/idempotency.py`` ``IdempotencyStore``, used by ``services/idempotent_serve.py``."""

    async def get(self, method: str, request_id: Any) -> StoredAnswer | None: ...

    async def put(self, method: str, request_id: Any, answer: StoredAnswer) -> None: ...
