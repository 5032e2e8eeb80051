"""A believable venue in the reference schema, for demos and tests (docs/reference-schema.md).

``seed_demo`` fills an empty, migrated reference database with "The Copper Kettle", a Leeds
pub-restaurant: three areas, 24 tables, six waiters, open orders in every state a card machine
meets (partly paid, fully paid, with modifiers, meal-deal sub-items, discounts, service charge,
open at a till, a pre-order), closed history, seated and departed parties and upcoming
reservations.

Everything is placed relative to ``now`` and nothing is random, so the same ``now`` always
gives the same rows. Facts other tests may rely on:

* table ``T12`` has two open dine-in orders for party ``"1"``; the first (``T12_ORDER_ID``) is
  payable and already part-paid in cash, so its outstanding balance is above zero;
* order ``TILL_ORDER_ID`` is open at till ``TILL-2`` (Dojo may not lock it);
* party ``"2"`` sits on T5 and T6, came from reservation ``"1"`` and carries a deposit;
* reservations ``2``..``9`` all start after ``now``.

Money follows contract §4.1: UK VAT is inclusive, so a tax line reports the VAT inside the
total and is never added; the 12.5 % service charge is already inside ``total_amount``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from epos_bridge.adapters.sqlite.schema import SCHEMA_VERSION, schema_version
from epos_bridge.domain.orders import item_line_value
from epos_bridge.protocol.base import format_utc
from epos_bridge.protocol.entities import Modifier, Money, OrderItem, OrderSubItem

CURRENCY = "GBP"
T12_ORDER_ID = 7
"""The payable, part-paid dine-in order on table T12."""
TILL_ORDER_ID = 20
"""An open order a till has open (``open_at_till = 'TILL-2'``)."""

Row = dict[str, Any]

# --- the venue --------------------------------------------------------------------------

_LOGO_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">'
    '<path d="M14 52h36l-4-26H18z" fill="#b87333"/>'
    '<path d="M18 26c0-8 6-12 14-12s14 4 14 12" fill="none" stroke="#b87333" stroke-width="4"/>'
    '<path d="M14 34L4 24" stroke="#b87333" stroke-width="4" stroke-linecap="round"/>'
    '<path d="M50 30c8 0 8 14 0 14" fill="none" stroke="#b87333" stroke-width="4"/>'
    '<circle cx="32" cy="12" r="3" fill="#b87333"/>'
    "</svg>"
)

VENUE: Mapping[str, Any] = {
    "id": 1,
    "name": "The Copper Kettle",
    "address_lines": json.dumps(["17 Kettle Yard", "Briggate", "Leeds"]),
    "postcode": "LS1 6HD",
    "phone_number": "0113 496 0172",  # Ofcom drama range: never a real subscriber
    "email_address": "hello@copperkettle.example",
    "vat_number": "GB999999973",  # HMRC's published test VAT number
    "logo_svg": _LOGO_SVG,
    "website_url": "https://copperkettle.example/book",
    "website_caption": "Book your next visit",
    "footer_text": "Thank you for visiting The Copper Kettle! Service charge is discretionary.",
    "currency_code": CURRENCY,
}

WAITERS: tuple[tuple[str, str], ...] = (
    ("W1", "Amira Khan"),
    ("W2", "Tom Hughes"),
    ("W3", "Priya Patel"),
    ("W4", "Callum Reid"),
    ("W5", "Sophie Evans"),
    ("W6", "Jonah Mensah"),
)

AREAS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("main", "Main floor", ("W1", "W2", "W3")),
    ("terrace", "Terrace", ("W4", "W5")),
    ("bar", "Bar", ("W6", "W3")),
)

# (id, name, area, max covers, waiters)
TABLES: tuple[tuple[str, str, str, int, tuple[str, ...]], ...] = (
    ("T1", "Table 1", "main", 2, ("W1",)),
    ("T2", "Table 2", "main", 2, ("W1",)),
    ("T3", "Table 3", "main", 2, ("W1",)),
    ("T4", "Table 4", "main", 4, ("W1", "W3")),
    ("T5", "Table 5", "main", 4, ("W1", "W3")),
    ("T6", "Table 6", "main", 4, ("W1", "W3")),
    ("T7", "Table 7", "main", 6, ("W2",)),
    ("T8", "Table 8", "main", 6, ("W2",)),
    ("T9", "Table 9", "main", 4, ("W2",)),
    ("T10", "Table 10", "main", 2, ("W2", "W3")),
    ("T11", "Table 11", "main", 4, ("W2", "W3")),
    ("T12", "Table 12", "main", 4, ("W2", "W3")),
    ("T13", "Table 13", "terrace", 4, ("W4",)),
    ("T14", "Table 14", "terrace", 4, ("W4",)),
    ("T15", "Table 15", "terrace", 2, ("W5",)),
    ("T16", "Table 16", "terrace", 4, ("W4",)),
    ("T17", "Table 17", "terrace", 2, ("W4",)),
    ("T18", "Table 18", "terrace", 2, ("W5",)),
    ("T19", "Table 19", "terrace", 6, ("W5",)),
    ("T20", "Table 20", "terrace", 4, ("W5",)),
    ("B1", "Bar 1", "bar", 2, ("W6",)),
    ("B2", "Bar 2", "bar", 4, ("W6",)),
    ("B3", "Bar 3", "bar", 2, ("W6",)),
    ("B4", "Bar 4", "bar", 2, ("W6", "W3")),
)

# PLU -> (name, price in pence). Meal-deal parts cost nothing unless they are an upgrade.
MENU: Mapping[str, tuple[str, int]] = {
    "BRG-CK": ("Copper Kettle burger", 1450),
    "FSH-CHP": ("Beer-battered haddock & chips", 1595),
    "PIE-SA": ("Steak & ale pie", 1525),
    "RST-BF": ("Roast sirloin of beef", 1795),
    "SAL-CSR": ("Caesar salad", 1195),
    "SRD-BTR": ("Sourdough & whipped butter", 450),
    "SD-CHP": ("Chunky chips", 395),
    "DST-STP": ("Sticky toffee pudding", 750),
    "ALE-PNT": ("Pint of Copper Ale", 595),
    "WIN-RED": ("House red 175ml", 725),
    "SFT-LEM": ("Cloudy lemonade", 350),
    "SFT-COL": ("Cola", 325),
    "HOT-FW": ("Flat white", 340),
    "MEAL-LD": ("Lunch meal deal", 1295),
    "MD-WRP": ("Chicken & bacon wrap", 0),
    "MD-HLM": ("Halloumi wrap", 0),
    "MD-CHP": ("Chips", 0),
    "MD-SPF": ("Sweet potato fries (upgrade)", 100),
    "MD-COL": ("Cola", 0),
    "MD-ALE": ("Half of Copper Ale (upgrade)", 150),
    "MOD-CHS": ("Extra cheese", 150),
    "MOD-BCN": ("Smoked bacon", 200),
    "MOD-NON": ("No onion", 0),
    "MOD-CHK": ("Add grilled chicken", 300),
    "MOD-GRV": ("Extra gravy", 100),
    "MOD-OAT": ("Oat milk", 40),
    "MOD-DIP": ("Garlic mayo dip", 75),
    "MOD-ICE": ("Vanilla ice cream", 150),
}

# --- order specifications ---------------------------------------------------------------


@dataclass(frozen=True)
class _Mod:
    plu: str
    quantity: int = 1


@dataclass(frozen=True)
class _Sub:
    plu: str
    modifiers: tuple[_Mod, ...] = ()
    quantity: int = 1


@dataclass(frozen=True)
class _Item:
    plu: str
    quantity: int = 1
    modifiers: tuple[_Mod, ...] = ()
    sub_items: tuple[_Sub, ...] = ()
    note: str | None = None


@dataclass(frozen=True)
class _Pay:
    """``amount=None`` pays whatever is still outstanding at that moment."""

    tender: str
    minutes_ago: int
    amount: int | None = None
    tips: int | None = None
    status: str = "Captured"


@dataclass(frozen=True)
class _Order:
    status: str
    minutes_ago: int
    items: tuple[_Item, ...]
    table_id: str | None = None  # None: a collection order
    waiter_id: str | None = None
    party_id: int | None = None
    covers: int = 2  # walk-ins; a party's covers win
    customer: tuple[str, str] | None = None  # (name, phone) for collections
    collect_in_minutes: int | None = None  # None: as soon as possible
    reservation_id: int | None = None  # a pre-order for this reservation
    discounts: tuple[str, ...] = ()
    payments: tuple[_Pay, ...] = ()
    note: str | None = None
    open_at_till: str | None = None


def _meal(main: str, side: _Sub, drink: str, main_mods: tuple[_Mod, ...] = ()) -> _Item:
    return _Item("MEAL-LD", sub_items=(_Sub(main, main_mods), side, _Sub(drink)))


_CHEESE = (_Mod("MOD-CHS"),)
_SPF_DIP = _Sub("MD-SPF", (_Mod("MOD-DIP"),))

_HISTORY: tuple[_Order, ...] = (
    _Order(
        "Finalized",
        190,
        (_Item("BRG-CK", modifiers=_CHEESE), _Item("FSH-CHP"), _Item("ALE-PNT", 2)),
        table_id="T3",
        waiter_id="W1",
        party_id=7,
        payments=(_Pay("card", 100, tips=400),),
    ),
    _Order(
        "Finalized",
        210,
        (_Item("RST-BF", 4), _Item("WIN-RED", 4), _Item("DST-STP", 2)),
        table_id="T16",
        waiter_id="W4",
        party_id=8,
        payments=(_Pay("card", 125, amount=5000), _Pay("card", 124, tips=500)),
    ),
    _Order(
        "Finalized",
        160,
        (_Item("PIE-SA"), _Item("SD-CHP")),
        customer=("Chris Walker", "07700 900418"),
        payments=(_Pay("cash", 140),),
    ),
    _Order(
        "Finalized",
        240,
        (_Item("SAL-CSR"), _Item("HOT-FW", 2)),
        table_id="T9",
        waiter_id="W2",
        payments=(_Pay("cash", 200, amount=1000), _Pay("card", 199)),
    ),
    _Order(
        "Finalized",
        130,
        (_Item("ALE-PNT", 4),),
        table_id="B3",
        waiter_id="W6",
        payments=(_Pay("card", 95, tips=200),),
    ),
    _Order(
        "Canceled",
        150,
        (_Item("BRG-CK", 2),),
        customer=("Morgan Price", "07700 900771"),
        note="Customer cancelled by phone",
        payments=(_Pay("card", 148, status="Reversed"),),
    ),
)

_OPEN: tuple[_Order, ...] = (
    _Order(  # T12_ORDER_ID
        "Preparing",
        45,
        (
            _Item("BRG-CK", 2, (_Mod("MOD-CHS"), _Mod("MOD-BCN")), note="Medium"),
            _Item("FSH-CHP"),
            _Item("RST-BF", modifiers=(_Mod("MOD-GRV", 2),)),
            _Item("ALE-PNT", 2),
            _Item("SFT-LEM"),
        ),
        table_id="T12",
        waiter_id="W2",
        party_id=1,
        payments=(_Pay("cash", 10, amount=2000),),
    ),
    _Order(
        "Ready",
        15,
        (_Item("WIN-RED", 2), _Item("DST-STP", 2, (_Mod("MOD-ICE"),))),
        table_id="T12",
        waiter_id="W2",
        party_id=1,
    ),
    _Order(
        "Accepted",
        35,
        (
            _Item("ALE-PNT", 3),
            _Item("WIN-RED", 2),
            _Item("SFT-LEM"),
            _Item("PIE-SA", 2),
            _Item("FSH-CHP", 2),
            _Item("SAL-CSR", modifiers=(_Mod("MOD-CHK"),)),
            _Item("BRG-CK", modifiers=(_Mod("MOD-NON"),)),
        ),
        table_id="T5",
        waiter_id="W1",
        party_id=2,
        discounts=("voucher",),
        payments=(_Pay("card", 5, amount=3000, tips=300),),
    ),
    _Order(
        "Ready",
        70,
        (_Item("SAL-CSR", modifiers=(_Mod("MOD-CHK"),)), _Item("PIE-SA"), _Item("HOT-FW", 2, (_Mod("MOD-OAT"),))),
        table_id="T15",
        waiter_id="W5",
        party_id=3,
        payments=(_Pay("card", 3, amount=1500),),
    ),
    _Order(
        "Accepted",
        12,
        (_Item("ALE-PNT", 3), _Item("SRD-BTR")),
        table_id="B2",
        waiter_id="W6",
        party_id=4,
        discounts=("lunch_ale",),
    ),
    _Order(
        "Preparing",
        30,
        (
            _Item("MEAL-LD", 2, sub_items=(_Sub("MD-WRP", _CHEESE), _SPF_DIP, _Sub("MD-COL"))),
            _meal("MD-HLM", _Sub("MD-CHP"), "MD-ALE"),
            _Item("BRG-CK", 2, _CHEESE),
        ),
        table_id="T8",
        waiter_id="W2",
        party_id=5,
        discounts=("staff",),
    ),
    _Order("New", 4, (_Item("BRG-CK"), _Item("SD-CHP"), _Item("SFT-COL")), table_id="T3", waiter_id="W1"),
    _Order(
        "Accepted",
        20,
        (_meal("MD-WRP", _Sub("MD-CHP"), "MD-COL"),),
        table_id="T17",
        waiter_id="W4",
        covers=1,
        discounts=("staff",),
        note="Staff lunch",
    ),
    _Order("Ready", 8, (_Item("ALE-PNT", 2),), table_id="B1", waiter_id="W6"),
    _Order(
        "Preparing",
        18,
        (_meal("MD-HLM", _SPF_DIP, "MD-COL"), _Item("FSH-CHP")),
        customer=("Sam Taylor", "07700 900123"),
    ),
    _Order(
        "Accepted",
        10,
        (_Item("PIE-SA", 2), _Item("SD-CHP")),
        customer=("Priya Shah", "07700 900245"),
        collect_in_minutes=30,
        discounts=("voucher",),
    ),
    _Order(
        "Ready",
        25,
        (_Item("BRG-CK", modifiers=(_Mod("MOD-BCN"),)),),
        customer=("Jordan Blake", "07700 900362"),
        payments=(_Pay("card", 24),),
    ),
    _Order(
        "New",
        3,
        (_Item("RST-BF", 2), _Item("DST-STP")),
        customer=("Alex Morgan", "07700 900589"),
        collect_in_minutes=75,
        note="Please ring on arrival",
    ),
    _Order(  # TILL_ORDER_ID
        "Preparing",
        40,
        (_Item("SAL-CSR", 2), _Item("FSH-CHP", 2), _Item("WIN-RED", 4)),
        table_id="T20",
        waiter_id="W5",
        covers=4,
        open_at_till="TILL-2",
    ),
    _Order(
        "Confirmed",
        120,
        (_Item("RST-BF", 4, note="One guest: nut allergy"),),
        table_id="T9",
        covers=4,
        reservation_id=3,
        note="Pre-order for the Desai booking",
    ),
)

# --- parties and reservations ------------------------------------------------------------


@dataclass(frozen=True)
class _Party:
    id: int
    name: str
    covers: int
    status: str
    minutes_ago: int
    table_ids: tuple[str, ...]
    left_minutes_ago: int | None = None
    reservation_id: int | None = None
    deposit: int | None = None
    host_notes: str | None = None
    guest_requests: str | None = None


@dataclass(frozen=True)
class _Reservation:
    id: int
    name: str
    covers: int
    minutes_from_now: int
    table_ids: tuple[str, ...]
    host_notes: str | None = None
    guest_requests: str | None = None
    from_dojo: bool = False


PARTIES: tuple[_Party, ...] = (
    _Party(1, "Harper", 4, "Ordered", 55, ("T12",)),
    _Party(
        2,
        "Okafor",
        6,
        "Ordered",
        75,
        ("T5", "T6"),
        reservation_id=1,
        deposit=3000,
        guest_requests="Celebrating a graduation",
    ),
    _Party(3, "Ellis", 2, "Paying", 80, ("T15",)),
    _Party(4, "Nowak", 3, "Seated", 15, ("B2",)),
    _Party(5, "Chen", 5, "Ordered", 40, ("T8",), host_notes="Two of them are staff: staff discount"),
    _Party(6, "Walsh", 2, "Seated", 5, ("T10",)),
    _Party(7, "Bennett", 2, "Left", 200, ("T3",), left_minutes_ago=95),
    _Party(8, "Fraser", 4, "Left", 220, ("T16",), left_minutes_ago=115),
)

RESERVATIONS: tuple[_Reservation, ...] = (
    _Reservation(1, "Ngozi Okafor", 6, -80, ("T5", "T6"), guest_requests="Celebrating a graduation", from_dojo=True),
    _Reservation(2, "Amelia Hart", 2, 60, ("T2",), guest_requests="Window seat if possible", from_dojo=True),
    _Reservation(
        3,
        "Rahul Desai",
        4,
        90,
        ("T9",),
        host_notes="Confirm the allergy with the kitchen",
        guest_requests="nut allergy (one guest)",
    ),
    _Reservation(4, "Grace O'Neill", 8, 150, ("T13", "T14"), host_notes="Birthday: candle on the dessert"),
    _Reservation(5, "Jack Thompson", 2, 240, ("T12",), from_dojo=True),
    _Reservation(6, "Megan Lloyd", 3, 26 * 60, ("T15",), guest_requests="High chair please", from_dojo=True),
    _Reservation(7, "Oliver Wright", 6, 28 * 60, ("T5", "T6"), host_notes="Regulars: ask for Callum"),
    _Reservation(8, "Isla Campbell", 2, 49 * 60, ("B3",), guest_requests="Gluten free", from_dojo=True),
    _Reservation(9, "Daniel Ahmed", 5, 74 * 60, ("T8",), guest_requests="Wheelchair access please"),
)

_STAY = timedelta(hours=2)
_QUARTER_HOUR = timedelta(minutes=15)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# --- public API ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoSummary:
    """How much ``seed_demo`` wrote."""

    waiters: int
    areas: int
    tables: int
    open_orders: int
    closed_orders: int
    seated_parties: int
    departed_parties: int
    reservations: int
    payments: int


class DemoSeedRefused(Exception):
    """The database is not a freshly migrated, empty reference database."""


def seed_demo(db: sqlite_utils.Database, now: datetime) -> DemoSummary:
    """Write the demo venue in one transaction; the same ``now`` always gives the same rows.

    ``now`` must be timezone-aware. The database must be migrated to the current schema and
    hold no venue, tables or orders yet.
    """
    if now.tzinfo is None:
        raise ValueError("seed_demo needs a timezone-aware 'now'")
    _check_empty(db)
    rows = _DemoRows(now)
    rows.build()
    with db.atomic():
        for table, records in rows.tables.items():
            if records:
                db.table(table).insert_all(records)
    return rows.summary()


def _check_empty(db: sqlite_utils.Database) -> None:
    version = schema_version(db)
    if version != SCHEMA_VERSION:
        raise DemoSeedRefused(f"the database is at schema version {version}, not {SCHEMA_VERSION}; migrate it first")
    for table in ("venue", "tables", "orders", "parties", "reservations"):
        if db.table(table).count:
            raise DemoSeedRefused(f"the database already has rows in {table}; demo data only goes into an empty one")


# --- building rows ------------------------------------------------------------------------

_INSERT_ORDER = (
    "venue",
    "waiters",
    "areas",
    "area_waiters",
    "tables",
    "table_waiters",
    "reservations",
    "reservation_tables",
    "parties",
    "party_tables",
    "orders",
    "order_items",
    "order_sub_items",
    "order_modifiers",
    "order_discounts",
    "order_tax_lines",
    "payments",
)


@dataclass
class _DemoRows:
    """Every row to insert, table by table, in foreign-key order."""

    now: datetime
    tables: dict[str, list[Row]] = field(default_factory=lambda: {name: [] for name in _INSERT_ORDER})

    def add(self, table: str, row: Row) -> int:
        """Append a row, numbering it when it has no ``id`` of its own."""
        records = self.tables[table]
        row.setdefault("id", len(records) + 1)
        records.append(row)
        return int(row["id"])

    def at(self, minutes: int) -> str:
        """``minutes`` from now (negative: ago), as stored text."""
        return format_utc(self.now + timedelta(minutes=minutes))

    def build(self) -> None:
        self.tables["venue"].append(dict(VENUE))
        self._add_floor()
        for reservation in RESERVATIONS:
            self._add_reservation(reservation)
        for party in PARTIES:
            self._add_party(party)
        for number, order in enumerate(_HISTORY + _OPEN, start=1):
            _OrderWriter(self, number, order).write()

    def summary(self) -> DemoSummary:
        orders = self.tables["orders"]
        parties = self.tables["parties"]
        closed = sum(1 for o in orders if o["status"] in {"Finalized", "Canceled"})
        departed = sum(1 for p in parties if p["end_time"] is not None)
        return DemoSummary(
            waiters=len(self.tables["waiters"]),
            areas=len(self.tables["areas"]),
            tables=len(self.tables["tables"]),
            open_orders=len(orders) - closed,
            closed_orders=closed,
            seated_parties=len(parties) - departed,
            departed_parties=departed,
            reservations=len(self.tables["reservations"]),
            payments=len(self.tables["payments"]),
        )

    def _add_floor(self) -> None:
        self.tables["waiters"] += [{"id": wid, "name": name} for wid, name in WAITERS]
        for area_id, name, waiter_ids in AREAS:
            self.tables["areas"].append({"id": area_id, "name": name})
            self.tables["area_waiters"] += [{"area_id": area_id, "waiter_id": w} for w in waiter_ids]
        for table_id, name, area_id, covers, waiter_ids in TABLES:
            self.tables["tables"].append({"id": table_id, "name": name, "area_id": area_id, "max_covers": covers})
            self.tables["table_waiters"] += [{"table_id": table_id, "waiter_id": w} for w in waiter_ids]

    def reservation_start(self, reservation: _Reservation) -> datetime:
        start = self.now + timedelta(minutes=reservation.minutes_from_now)
        if reservation.minutes_from_now <= 0:
            return start
        # Bookings are taken on the quarter hour; rounding up keeps them after ``now``.
        return start + (_EPOCH - start) % _QUARTER_HOUR

    def _add_reservation(self, reservation: _Reservation) -> None:
        start = self.reservation_start(reservation)
        dojo_id = f"rsv_demo_{reservation.id:04d}" if reservation.from_dojo else None
        self.add(
            "reservations",
            {
                "id": reservation.id,
                "dojo_reservation_id": dojo_id,
                "name": reservation.name,
                "covers": reservation.covers,
                "start_time": format_utc(start),
                "end_time": format_utc(start + _STAY),
                "host_notes": reservation.host_notes,
                "guest_requests": reservation.guest_requests,
                "deleted_at": None,
            },
        )
        self.tables["reservation_tables"] += [
            {"reservation_id": reservation.id, "table_id": t, "position": i}
            for i, t in enumerate(reservation.table_ids)
        ]

    def _add_party(self, party: _Party) -> None:
        reservation = next((r for r in RESERVATIONS if r.id == party.reservation_id), None)
        deposit_ids = json.dumps([f"pi_demo_deposit_{party.id:04d}"]) if party.deposit else None
        self.add(
            "parties",
            {
                "id": party.id,
                "dojo_party_id": None,
                "name": party.name,
                "covers": party.covers,
                "status": party.status,
                "start_time": self.at(-party.minutes_ago),
                "expected_end_time": format_utc(self.now - timedelta(minutes=party.minutes_ago) + _STAY),
                "end_time": self.at(-party.left_minutes_ago) if party.left_minutes_ago is not None else None,
                "host_notes": party.host_notes,
                "guest_requests": party.guest_requests,
                "reservation_id": str(reservation.id) if reservation else None,
                "dojo_reservation_id": f"rsv_demo_{reservation.id:04d}"
                if reservation and reservation.from_dojo
                else None,
                "deposit_amount": party.deposit,
                "deposit_currency": CURRENCY if party.deposit else None,
                "deposit_description": f"Deposit for {party.covers} (booked online)" if party.deposit else None,
                "deposit_payment_intent_ids": deposit_ids,
                "deleted_at": None,
            },
        )
        self.tables["party_tables"] += [
            {"party_id": party.id, "table_id": t, "position": i} for i, t in enumerate(party.table_ids)
        ]


# --- orders -------------------------------------------------------------------------------


def _round_half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def _money(value: int) -> Money:
    return Money(value=value, currency_code=CURRENCY)


def _wire_modifiers(mods: Sequence[_Mod]) -> list[Modifier]:
    return [
        Modifier(name=MENU[m.plu][0], plu=m.plu, quantity=m.quantity, amount_per_modifier=_money(MENU[m.plu][1]))
        for m in mods
    ]


def _wire_item(item: _Item) -> OrderItem:
    subs = [
        OrderSubItem(
            name=MENU[s.plu][0],
            plu=s.plu,
            quantity=s.quantity,
            amount_per_item=_money(MENU[s.plu][1]),
            modifiers=_wire_modifiers(s.modifiers),
        )
        for s in item.sub_items
    ]
    return OrderItem(
        name=MENU[item.plu][0],
        plu=item.plu,
        quantity=item.quantity,
        amount_per_item=_money(MENU[item.plu][1]),
        modifiers=_wire_modifiers(item.modifiers),
        sub_items=subs,
    )


def _discounts(keys: Iterable[str], items: Sequence[_Item], gross: int) -> list[Row]:
    """Discount rows (name, amount_total, ...) for the named offers."""
    rows: list[Row] = []
    for key in keys:
        if key == "staff":  # 10 % off the whole order (amount_percentage has 2 implied decimals)
            rows.append(
                {
                    "name": "Staff discount 10%",
                    "amount_total": _round_half_up(gross * 1000, 10000),
                    "amount_percentage": 1000,
                    "discount_reference": "STAFF",
                    "code": None,
                    "affected_plu": None,
                }
            )
        elif key == "voucher":
            rows.append(
                {
                    "name": "£5 off voucher",
                    "amount_total": 500,
                    "amount_percentage": None,
                    "discount_reference": "VCH-2291",
                    "code": "KETTLE5",
                    "affected_plu": None,
                }
            )
        elif key == "lunch_ale":
            pints = sum(i.quantity for i in items if i.plu == "ALE-PNT")
            rows.append(
                {
                    "name": "Lunchtime offer: £1 off Copper Ale",
                    "amount_total": 100 * pints,
                    "amount_percentage": None,
                    "discount_reference": "LUNCH-ALE",
                    "code": None,
                    "affected_plu": "ALE-PNT",
                }
            )
        else:
            raise ValueError(f"unknown demo discount {key!r}")
    return rows


@dataclass(frozen=True)
class _Totals:
    gross: int
    discounts: list[Row]
    service: int | None
    total: int
    vat: int


def _totals(spec: _Order, covers: int) -> _Totals:
    gross = sum(item_line_value(_wire_item(item)) for item in spec.items)
    discounts = _discounts(spec.discounts, spec.items, gross)
    net = gross - sum(d["amount_total"] for d in discounts)
    # A discretionary 12.5 % service charge on dine-in tables of four or more; already in the total.
    service = _round_half_up(net * 125, 1000) if spec.table_id is not None and covers >= 4 else None
    # UK VAT is inclusive: report the 20 % inside the food and drink; a discretionary service
    # charge is outside the scope of VAT.
    vat = net - _round_half_up(net * 100, 120)
    return _Totals(gross, discounts, service, net + (service or 0), vat)


class _OrderWriter:
    """Rows for one order: the order, its lines, discounts, tax line and payments."""

    def __init__(self, rows: _DemoRows, order_id: int, spec: _Order) -> None:
        self.rows = rows
        self.id = order_id
        self.spec = spec
        party = next((p for p in PARTIES if p.id == spec.party_id), None)
        self.totals = _totals(spec, party.covers if party else spec.covers)

    def write(self) -> None:
        self.rows.add("orders", self._order_row())
        for position, item in enumerate(self.spec.items):
            self._write_item(position, item)
        for position, discount in enumerate(self.totals.discounts):
            self.rows.add("order_discounts", {"order_id": self.id, "position": position, **discount})
        self.rows.add(
            "order_tax_lines",
            {
                "order_id": self.id,
                "position": 0,
                "tax_id": "VAT-STD",
                "name": "VAT 20% (included)",
                "affected_plu": None,
                "amount_percentage": 2000,
                "amount_total": self.totals.vat,
            },
        )
        self._write_payments()

    def reference(self) -> str:
        # Numbered by order id, as the adapter numbers orders Dojo creates ("COL-<id>"): never a clash.
        return f"{self.spec.table_id or 'COL'}-{self.id:04d}"

    def _display_name(self) -> str:
        if self.spec.table_id is None:
            return f"Collection for {self._customer()[0].split()[0]}"
        return next(name for tid, name, *_ in TABLES if tid == self.spec.table_id)

    def _customer(self) -> tuple[str, str]:
        if self.spec.customer is None:
            raise ValueError(f"demo collection order {self.id} has no customer")
        return self.spec.customer

    def _order_row(self) -> Row:
        spec = self.spec
        return {
            "id": self.id,
            "dojo_order_id": None,
            "reference": self.reference(),
            "display_name": self._display_name(),
            "status": spec.status,
            "table_id": spec.table_id,
            "waiter_id": spec.waiter_id,
            "party_id": str(spec.party_id) if spec.party_id is not None else None,
            "reservation_id": str(spec.reservation_id) if spec.reservation_id is not None else None,
            "ready_at": self._ready_at(),
            "note": spec.note,
            "customer_id": None,
            "customer_email": None,
            "currency_code": CURRENCY,
            "total_amount": self.totals.total,
            "service_charge_amount": self.totals.service,
            "open_at_till": spec.open_at_till,
            "created_at": self.rows.at(-spec.minutes_ago),
            "updated_at": self.rows.at(-self._updated_minutes_ago()),
            **self._kind_columns(),
        }

    def _kind_columns(self) -> Row:
        if self.spec.table_id is not None:
            return {
                "order_type": "DineIn",
                "collection_asap": None,
                "collect_at": None,
                "customer_name": None,
                "customer_phone": None,
            }
        name, phone = self._customer()
        later = self.spec.collect_in_minutes
        return {
            "order_type": "Collection",
            "collection_asap": int(later is None),
            "collect_at": self.rows.at(later) if later is not None else None,
            "customer_name": name,
            "customer_phone": phone,
        }

    def _ready_at(self) -> str | None:
        reservation = next((r for r in RESERVATIONS if r.id == self.spec.reservation_id), None)
        return format_utc(self.rows.reservation_start(reservation)) if reservation else None

    def _updated_minutes_ago(self) -> int:
        return min([self.spec.minutes_ago // 3] + [p.minutes_ago for p in self.spec.payments])

    def _write_item(self, position: int, item: _Item) -> None:
        name, price = MENU[item.plu]
        item_id = self.rows.add(
            "order_items",
            {
                "order_id": self.id,
                "position": position,
                "name": name,
                "plu": item.plu,
                "quantity": item.quantity,
                "amount_per_item": price,
                "note": item.note,
            },
        )
        self._write_modifiers(item.modifiers, item_id=item_id, sub_item_id=None)
        for sub_position, sub in enumerate(item.sub_items):
            sub_name, sub_price = MENU[sub.plu]
            sub_id = self.rows.add(
                "order_sub_items",
                {
                    "item_id": item_id,
                    "position": sub_position,
                    "name": sub_name,
                    "plu": sub.plu,
                    "quantity": sub.quantity,
                    "amount_per_item": sub_price,
                    "note": None,
                },
            )
            self._write_modifiers(sub.modifiers, item_id=None, sub_item_id=sub_id)

    def _write_modifiers(self, mods: Sequence[_Mod], item_id: int | None, sub_item_id: int | None) -> None:
        for position, mod in enumerate(mods):
            name, price = MENU[mod.plu]
            self.rows.add(
                "order_modifiers",
                {
                    "item_id": item_id,
                    "sub_item_id": sub_item_id,
                    "position": position,
                    "name": name,
                    "plu": mod.plu,
                    "quantity": mod.quantity,
                    "amount_per_modifier": price,
                },
            )

    def _write_payments(self) -> None:
        paid = 0
        for index, pay in enumerate(self.spec.payments):
            amount = pay.amount if pay.amount is not None else self.totals.total - paid
            if not 0 < amount <= self.totals.total - paid:
                raise ValueError(f"demo order {self.id}: payment {index} of {amount} exceeds the balance")
            card = pay.tender == "card"
            status = pay.status if card else "Recorded"
            if status not in {"Reversed", "Refunded", "Canceled"}:
                paid += amount
            self.rows.add(
                "payments",
                {
                    "order_id": self.id,
                    "payment_intent_id": self._intent_id(index) if card else None,
                    "tender": pay.tender,
                    "paid_amount": amount,
                    "tips_amount": pay.tips,
                    "status": status,
                    "recorded_at": self.rows.at(-pay.minutes_ago),
                    "dojo_requesting_product": "PayAtTable" if card and self.spec.table_id else None,
                    "device_id": "demo-terminal-01" if card else None,
                    "waiter_id": self.spec.waiter_id,
                },
            )

    def _intent_id(self, index: int) -> str:
        digest = hashlib.sha256(f"{self.reference()}/{index}".encode()).hexdigest()[:16]
        return f"pi_demo_{digest}"
