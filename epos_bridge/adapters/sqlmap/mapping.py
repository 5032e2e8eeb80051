"""A mapping file: the SQL that reads and writes one POS's own tables, per capability.

The file is TOML (``tomllib``), checked against the pydantic models below: an unknown key, a
missing one or a statement that uses a parameter it is not given is an error that names the key.
Every statement is trusted installer configuration, but values are always bound as named
parameters (``:order_id``), never formatted into the text. :func:`statement_problems` then
prepares each statement against the database (``EXPLAIN``) and names the capability, the
statement and what SQLite could not find.

What each statement is given and must return is documented in ``docs/mapping-a-pos.md``; the
parameter names are :data:`PARAMETERS`, the column aliases :data:`REQUIRED_COLUMNS`.
"""

from __future__ import annotations

import re
import sqlite3
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tzlocal
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from epos_bridge.protocol.base import format_utc
from epos_bridge.protocol.capabilities import Capability

SHIPPED = Path(__file__).with_name("mappings")
"""Mappings shipped with the bridge, chosen by name (``floreant``, ``ospos``)."""


class MappingError(ValueError):
    """The mapping file cannot be used; the message names the key or statement."""


_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu", "GMT0"})


@cache
def zone_named(name: str | None) -> tzinfo:
    """An IANA zone by name, or the PC's own (``tzlocal``) for ``None``."""
    if name is None:
        return tzlocal.get_localzone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{name!r} is not an IANA time zone name (for example Europe/London)") from exc


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Writes = str | tuple[str, ...] | None
"""A write key: one statement, or several run in order in the call's one transaction (the bill,
then its seats and its table's status). Statement *n* may use ``:row_1`` … ``:row_<n-1>``, the
row ids of the ones before; the key's own row id (a new order's key) is the first one's."""


class OrderStatements(_Section):
    get: str | None = None
    """One order's header row; given ``:order_id``."""
    search: str | None = None
    """Every order a search may return, header rows in ascending ``id`` order; given nothing."""
    items: str | None = None
    """The order's lines; given ``:order_id``; ``item_key`` joins them to their modifiers."""
    modifiers: str | None = None
    """The modifiers of every line of the order; given ``:order_id``, returns ``item_key``."""
    discounts: str | None = None
    """The order's discounts; given ``:order_id``. With it, a new order may carry one discount."""
    tax_lines: str | None = None
    """The order's tax lines; given ``:order_id``. With it, a new order may carry one tax line."""
    payments: str | None = None
    """Every payment row of the order (any tender); given ``:order_id``."""
    cancel: Writes = None
    """Mark the order canceled; given ``:order_id`` and ``:now``."""
    create: Writes = None
    """Insert an order Dojo creates; its row id is the new order's key."""
    create_item: Writes = None
    """Insert one line of a new order; its row id is the line's key."""
    create_modifier: Writes = None
    """Insert one modifier of a new order's line."""
    follow: str | None = None
    """Where the POS moved an order it no longer has under Dojo's id (an open bill checked out
    into a closed order under a new key); given ``:order_key`` (the key the bridge last found it
    under) and ``:order_id`` (Dojo's id); returns the new key as ``id``, or no row."""


class PaymentStatements(_Section):
    insert: Writes = None
    """Insert one payment row into the POS's payment table; its row id is kept by the bridge."""
    order_paid: Writes = None
    """Update the order's paid and due columns after its payments changed."""
    status: Writes = None
    """Tell the POS's own payment row that Dojo's events moved the payment (reversed, refunded):
    given the intent, its new ``:status`` and ``:counts`` (the domain's 1/0: does it still count
    towards the bill), so a POS whose bill sums its payment rows stops showing a reversed one."""
    shown_by: tuple[str, ...] = ()
    """The POS's own tables its screens read a payment from (the bill, the table map, the
    end-of-day report): what ``insert`` and ``order_paid`` must write for staff to see a Dojo
    payment. A payment staff cannot see is taken again in cash (:func:`payment_visibility_warnings`)."""


class LockStatements(_Section):
    """For a POS with its own "in use at till N" column: Dojo's lock shown there, in the same
    transaction that takes, extends or releases it (the bridge's own lock row is the truth)."""

    held: Writes = None
    """A Dojo lock taken or extended (or a new Dojo lock replacing one); given ``:order_id``,
    ``:lock_id``, ``:expires_at``, ``:locked_at`` and the terminal's ``:dojo_requesting_product``,
    ``:device_id``, ``:waiter_id``."""
    released: Writes = None
    """Dojo's lock released, or expired (the bridge's sweep runs it once a lock's expiry has
    passed); given ``:order_id``. Must be harmless when run twice."""


class ReservationStatements(_Section):
    get: str | None = None
    """One reservation's row; given ``:reservation_id`` (left out: ``search`` narrowed to it)."""
    search: str | None = None
    """Every reservation, ascending ``id``; given nothing."""
    tables: str | None = None
    """The tables of a reservation, in order; given ``:reservation_id``, returns ``table_id``."""
    create: Writes = None
    """Insert a reservation Dojo creates; its row id is the reservation's key."""
    update: Writes = None
    """Replace a reservation's fields (replace semantics); given ``:reservation_id`` and its fields."""
    delete: Writes = None
    """Mark it deleted (or canceled) on the POS, if the POS can; the bridge keeps the deletion too."""
    clear_tables: Writes = None
    add_table: Writes = None


class VenueStatements(_Section):
    get: str | None = None
    """The venue's details for the printed bill (one row)."""


class FloorStatements(_Section):
    tables: str | None = None
    """Every table, in ascending ``id`` order."""
    areas: str | None = None
    """Every area."""


class ChangeTrigger(_Section):
    """A POS table whose rows change an order or reservation: a trigger writes each change to the bridge's log."""

    table: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    entity: Literal["order", "reservation"] = "order"
    """What the row's changes are a change of (a POS event: OrderUpdated, ReservationUpdated)."""
    order_key: str = Field(min_length=1)
    """SQL naming the order (or reservation) a row belongs to, over the row as ``R`` (``R.TICKET_ID``)."""
    own: bool = False
    """``true`` for the entity's own table (its inserts and deletes are the entity's)."""


class DemoStatements(_Section):
    """How ``db init --demo`` writes the demo venue's floor and venue (orders go through ``orders.create``)."""

    schema_file: str | None = None
    """DDL (next to the mapping) creating the POS's tables in an empty file, for a demo."""
    venue: Writes = None
    area: Writes = None
    """Left out for a POS without areas: the demo's tables then have none."""
    table: Writes = None
    menu_item: Writes = None
    """For a POS whose order lines must name an item of its own menu (by PLU): the demo venue's
    menu is written first."""


class Mapping(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = Field(min_length=1)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    """The currency of every amount the POS stores (it stores plain numbers)."""
    engine: Literal["sqlite", "mysql", "postgresql"] = "sqlite"
    """The database the POS keeps its tables in, and so the SQL dialect of every statement: its
    own SQLite file, or a MariaDB/MySQL or PostgreSQL server (:mod:`.engines`)."""
    order_key: Literal["integer"] = "integer"
    """Order ids are the POS's integer keys, written in canonical decimal on the wire."""
    lock_view: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """A view ``db attach`` creates so the POS can see which orders Dojo holds."""
    timezone: str | None = None
    """The IANA zone (``Europe/London``) of the times the POS stores without an offset; left out,
    the PC's own zone. Statements are given times as wall-clock text in it, and read in it."""
    orders: OrderStatements = OrderStatements()
    payments: PaymentStatements = PaymentStatements()
    locks: LockStatements = LockStatements()
    reservations: ReservationStatements = ReservationStatements()
    venue: VenueStatements = VenueStatements()
    floor: FloorStatements = FloorStatements()
    changes: tuple[ChangeTrigger, ...] = ()
    demo: DemoStatements = DemoStatements()
    source: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _get_from_search(cls, data: Any) -> Any:
        """``orders.get`` left out is ``orders.search`` narrowed to ``:order_id`` (and so for reservations)."""
        for name, key in (("orders", ":order_id"), ("reservations", ":reservation_id")):
            section = data.get(name) if isinstance(data, dict) else None
            if isinstance(section, dict) and section.get("get") is None and isinstance(section.get("search"), str):
                narrowed = f"SELECT * FROM ({section['search']}) AS found WHERE id = {key}"  # noqa: S608 - installer SQL
                data = {**data, name: {**section, "get": narrowed}}
        return data

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone_named(value)
        return value

    @property
    def zone(self) -> tzinfo:
        """The zone of the POS's own times (:attr:`timezone`, else the PC's)."""
        return zone_named(self.timezone)

    def time_text(self, moment: datetime) -> str:
        """A time as the mapping's statements are given it: ISO 8601 UTC with ``Z`` when the POS
        keeps UTC, else wall-clock text in its zone, without an offset (``2026-07-01T13:00:00.000``)."""
        zone = self.zone
        if str(zone) in _UTC_NAMES:
            return format_utc(moment)
        return moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]

    @field_validator("changes")
    @classmethod
    def _one_trigger_per_table(cls, value: tuple[ChangeTrigger, ...]) -> tuple[ChangeTrigger, ...]:
        tables = [c.table.upper() for c in value]
        if len(set(tables)) != len(tables):
            raise ValueError("each table may appear once")
        return value

    def statements(self) -> Iterator[tuple[str, str]]:
        """Every statement present, as ``(key, sql)``, each part of a write key on its own;
        ``key`` is ``section.name``."""
        for key, parts in self.entries():
            for sql in parts:
                yield key, sql

    def entries(self) -> Iterator[tuple[str, tuple[str, ...]]]:
        """Every key present, with its statements in order (only write keys take several)."""
        for section in ("orders", "payments", "locks", "reservations", "venue", "floor", "demo"):
            for name, sql in getattr(self, section).model_dump().items():
                if name == "schema_file" or sql is None or name == "shown_by":
                    continue
                yield f"{section}.{name}", (sql,) if isinstance(sql, str) else tuple(sql)

    def parts(self, key: str) -> tuple[str, ...]:
        """A write key's statements, in the order they run."""
        section, name = key.split(".")
        found: str | tuple[str, ...] | None = getattr(getattr(self, section), name)
        if found is None:
            raise MappingError(f"the mapping {self.name} has no {key} statement")
        return (found,) if isinstance(found, str) else found

    def has(self, key: str) -> bool:
        section, name = key.split(".")
        return getattr(getattr(self, section), name) is not None

    def sql(self, key: str) -> str:
        """A read key's one statement."""
        parts = self.parts(key)
        if len(parts) != 1:
            raise MappingError(f"the mapping {self.name}'s {key} must be one statement, not {len(parts)}")
        return parts[0]


_ORDER_ROW = ("order_id", "now")
_PAYMENT = (
    "order_id",
    "paid_amount",
    "tips_amount",
    "payment_intent_id",
    "tender",
    "recorded_at",
    "dojo_requesting_product",
    "device_id",
    "waiter_id",
)
_NEW_ORDER = (
    "now",
    "table_id",
    "waiter_id",
    "total_amount",
    "service_charge_amount",
    "order_type",
    "status",
    "note",
    "reference",
    "display_name",
    "customer_name",
    "customer_email",
    "customer_phone",
    "tax_amount",
    "tax_name",
    "tax_id",
    "tax_percentage",
    "discount_amount",
    "discount_name",
    "discount_code",
    "discount_percentage",
)
_LOCK = ("order_id", "lock_id", "expires_at", "locked_at", "dojo_requesting_product", "device_id", "waiter_id")
_BOOKING = ("now", "name", "covers", "start_time", "end_time", "host_notes", "guest_requests")
PARAMETERS: dict[str, tuple[str, ...]] = {
    "orders.get": ("order_id",),
    "orders.search": (),
    "orders.items": ("order_id",),
    "orders.modifiers": ("order_id",),
    "orders.discounts": ("order_id",),
    "orders.tax_lines": ("order_id",),
    "orders.payments": ("order_id",),
    "orders.cancel": _ORDER_ROW,
    "orders.create": _NEW_ORDER,
    "orders.create_item": ("order_id", "now", "position", "name", "plu", "quantity", "amount_per_item", "note"),
    "orders.create_modifier": ("order_id", "item_key", "position", "name", "plu", "quantity", "amount_per_modifier"),
    "orders.follow": ("order_key", "order_id"),
    "payments.insert": _PAYMENT,
    "payments.order_paid": ("order_id", "now", "paid_value", "tips_value", "due_value", "fully_paid"),
    "payments.status": ("order_id", "now", "payment_intent_id", "status", "counts", "paid_amount", "tips_amount"),
    "locks.held": _LOCK,
    "locks.released": ("order_id",),
    "reservations.get": ("reservation_id",),
    "reservations.search": (),
    "reservations.tables": ("reservation_id",),
    "reservations.create": _BOOKING,
    "reservations.update": ("reservation_id", *_BOOKING),
    "reservations.delete": ("reservation_id", "now"),
    "reservations.clear_tables": ("reservation_id",),
    "reservations.add_table": ("reservation_id", "table_id", "position"),
    "venue.get": (),
    "floor.tables": (),
    "floor.areas": (),
    "demo.venue": ("name", "address_line1", "address_line2", "address_line3", "telephone", "footer_text"),
    "demo.area": ("name",),
    "demo.table": ("number", "name", "area_key"),
    "demo.menu_item": ("name", "plu", "amount_per_item"),
}
"""The named parameters each statement may use."""

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "orders.get": ("id", "status", "total_amount", "updated_at"),
    "orders.search": ("id", "status", "total_amount", "updated_at"),
    "orders.items": ("item_key", "name", "plu", "quantity", "amount_per_item"),
    "orders.modifiers": ("item_key", "name", "plu", "quantity", "amount_per_modifier"),
    "orders.discounts": ("name", "amount_total"),
    "orders.tax_lines": ("amount_total",),
    "orders.payments": ("paid_amount", "status"),
    "orders.follow": ("id",),
    "reservations.get": ("id", "name", "covers", "start_time", "end_time"),
    "reservations.search": ("id", "name", "covers", "start_time", "end_time"),
    "reservations.tables": ("table_id",),
    "venue.get": ("name",),
    "floor.tables": ("id", "name"),
    "floor.areas": ("id", "name"),
}
"""The column aliases a read statement must return (others are optional: docs/mapping-a-pos.md)."""

_RESERVATION_READ = ("reservations.get", "reservations.tables")
_RESERVATION_WRITE = (*_RESERVATION_READ, "reservations.add_table", "floor.tables")
CAPABILITY_NEEDS: dict[Capability, tuple[str, ...]] = {
    Capability.GET_ORDER_BY_ID: ("orders.get",),
    Capability.SEARCH_ORDERS: ("orders.get", "orders.search"),
    Capability.GET_ORDER_BILL_BY_ID: ("orders.get", "venue.get"),
    Capability.CANCEL_ORDER_BY_ID: ("orders.get", "orders.cancel"),
    Capability.CREATE_ORDER: ("orders.get", "orders.create", "orders.create_item", "floor.tables"),
    Capability.RECORD_ORDER_PAYMENT_BY_ID: ("orders.get", "orders.payments", "payments.insert"),
    Capability.CREATE_ORDER_LOCK: ("orders.get",),
    Capability.EXTEND_ORDER_LOCK: ("orders.get",),
    Capability.DELETE_ORDER_LOCK: ("orders.get",),
    Capability.HANDLE_PAYMENT_INTENT_CREATED: ("orders.get", "orders.payments", "payments.insert"),
    Capability.HANDLE_PAYMENT_INTENT_STATUS_UPDATED: ("orders.get", "orders.payments", "payments.insert"),
    Capability.CREATE_RESERVATION: (
        *_RESERVATION_READ,
        "reservations.create",
        "reservations.add_table",
        "floor.tables",
    ),
    Capability.GET_RESERVATION_BY_ID: _RESERVATION_READ,
    Capability.UPDATE_RESERVATION: (*_RESERVATION_WRITE, "reservations.update", "reservations.clear_tables"),
    Capability.DELETE_RESERVATION_BY_ID: _RESERVATION_READ,
    Capability.SEARCH_RESERVATIONS: ("reservations.search", "reservations.tables"),
    Capability.SEARCH_TABLES: ("floor.tables",),
    Capability.LIST_AREAS: ("floor.areas",),
}
"""A capability is implemented exactly when every statement it needs is in the mapping."""


def capabilities(mapping: Mapping) -> frozenset[Capability]:
    return frozenset(c for c, needs in CAPABILITY_NEEDS.items() if all(mapping.has(k) for k in needs))


def capabilities_of(key: str) -> list[Capability]:
    """The capabilities a statement serves (for error messages)."""
    return [c for c, needs in CAPABILITY_NEEDS.items() if key in needs]


_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")


def parameters_in(sql: str) -> set[str]:
    """The named parameters a statement uses (text inside quotes is not a parameter)."""
    return set(_PARAMETER.findall(_QUOTED.sub("''", sql)))


def resolve(mapping: str) -> Path:
    """A path, or the name of a shipped mapping; ``MappingError`` naming what was tried."""
    candidate = Path(mapping).expanduser()
    if candidate.suffix == ".toml" or candidate.is_file() or "/" in mapping or "\\" in mapping:
        if not candidate.is_file():
            raise MappingError(f"the mapping file {candidate} does not exist")
        return candidate
    shipped = SHIPPED / f"{mapping}.toml"
    if not shipped.is_file():
        raise MappingError(f"no mapping named {mapping!r}; shipped: {', '.join(shipped_names()) or 'none'}")
    return shipped


def shipped_names() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in SHIPPED.glob("*.toml")))


def load(mapping: str) -> Mapping:
    """Read and check a mapping file (path or shipped name)."""
    path = resolve(mapping)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeError) as exc:
        raise MappingError(f"the mapping file {path} cannot be read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"the mapping file {path} is not valid TOML: {exc}") from exc
    try:
        loaded = Mapping.model_validate({**document, "source": path})
    except ValidationError as exc:
        raise MappingError(f"the mapping file {path}: {_first_error(exc)}") from exc
    for key, parts in loaded.entries():
        for number, sql in enumerate(parts, start=1):
            given = (*PARAMETERS[key], *(f"row_{n}" for n in range(1, number)))
            unknown = parameters_in(sql) - set(given)
            if unknown:
                where = key if len(parts) == 1 else f"{key} statement {number}"
                raise MappingError(
                    f"the mapping file {path}: {where} uses {', '.join(':' + u for u in sorted(unknown))}, which it is "
                    f"not given (it is given {', '.join(':' + p for p in given) or 'nothing'})"
                )
    return loaded


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown key {where}"
    if error["type"] == "missing":
        return f"missing key {where}"
    return f"{where}: {error['msg']}"


@dataclass(frozen=True)
class StatementProblem:
    key: str
    message: str

    def words(self) -> str:
        served = ", ".join(c.value for c in capabilities_of(self.key))
        serving = f" (for {served})" if served else ""
        return f"statement {self.key}{serving}: {self.message}"


_FACT_READ = re.compile(r"KIND\s*=\s*'(\w+)'\s+AND\s+POS_KEY\s*=.*?FIELD\s*=\s*'(\w+)'", re.IGNORECASE | re.DOTALL)


def facts_read_by(mapping: Mapping) -> set[tuple[str, str]]:
    """The ``(KIND, FIELD)`` of every ``EPOS_BRIDGE_FACTS`` lookup in the mapping's SQL, as the
    shipped mappings write one (``KIND = 'table' AND POS_KEY = … AND FIELD = 'max_covers'``)."""
    return {(kind, field) for _, sql in mapping.statements() for kind, field in _FACT_READ.findall(sql)}


_WRITTEN_TABLE = re.compile(
    r"\b(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|(?<!DO )UPDATE(?:\s+OR\s+\w+)?)\s+[\"`\[]?([A-Za-z_][A-Za-z0-9_]*)",
    re.IGNORECASE,
)


def payment_visibility_warnings(mapping: Mapping) -> list[str]:
    """Where a Dojo payment would not show on the till's own screens, from the mapping alone:
    ``payments.shown_by`` left out, a payment written to a table the POS does not read, or a
    table the POS reads that no payment statement writes. The POS's own bill, table map and
    day report are what staff trust; a payment missing there is taken twice."""
    if not mapping.has("payments.insert"):
        return []
    written = {
        name.upper()
        for key in ("payments.insert", "payments.order_paid", "payments.status")
        if mapping.has(key)
        for sql in mapping.parts(key)
        for name in _WRITTEN_TABLE.findall(sql)
        if not name.upper().startswith("EPOS_BRIDGE_")
    }
    shown = {name.upper() for name in mapping.payments.shown_by}
    if not shown:
        return [
            "payments.shown_by is not set: name the POS's own tables its bill, table map and day report read "
            "payments from, and check them against the POS app (docs/mapping-a-pos.md, the checklist)"
        ]
    warnings = [
        f"payments.insert/order_paid write {name}, which the POS's screens do not read (payments.shown_by): "
        "staff would not see Dojo's payments there"
        for name in sorted(written - shown)
    ]
    warnings += [
        f"the POS's screens read {name} (payments.shown_by), but no payment statement writes it: "
        "a Dojo payment would not show there and staff may take it again"
        for name in sorted(shown - written)
    ]
    return warnings


def statement_problems(mapping: Mapping, conn: sqlite3.Connection) -> list[StatementProblem]:
    """Prepare every statement against the database without running it, and check each read
    statement returns the columns the bridge needs. Runs inside a transaction that is rolled back."""
    problems: list[StatementProblem] = []
    for key, sql in mapping.statements():
        if key.startswith("demo."):
            continue
        blanks = dict.fromkeys(parameters_in(sql))
        try:
            conn.execute(f"EXPLAIN {sql}", blanks).fetchall()
        except sqlite3.Error as exc:
            problems.append(StatementProblem(key, str(exc)))
            continue
        needed = REQUIRED_COLUMNS.get(key)
        if needed:
            cursor = conn.execute(f"SELECT * FROM ({sql}) AS found LIMIT 0", blanks)  # noqa: S608 - installer SQL
            returned = {d[0] for d in cursor.description or ()}
            missing = [c for c in needed if c not in returned]
            if missing:
                problems.append(StatementProblem(key, f"returns no column named {', '.join(missing)}"))
    return problems
