"""The demo venue, described once: "The Copper Kettle", a Leeds pub-restaurant.

Three areas, 24 tables, six waiters, open orders in every state a card machine meets (partly
paid, fully paid, with modifiers, meal-deal sub-items, discounts, service charge, open at a till,
a pre-order), closed history, seated and departed parties and upcoming reservations, as the
domain's records (:class:`~epos_bridge.domain.orders.OrderRecord`, ``NewParty``,
``ReservationRecord``) and wire objects. Each adapter's seeder writes it to its own storage
(``adapters/sqlite/demo.py``, ``adapters/jsonfile/setup.py``), so every adapter demos the same
venue. No I/O here.

Everything is placed relative to ``now`` and nothing is random, so the same ``now`` always
gives the same venue. Facts other tests may rely on:

* table ``T12`` has two open dine-in orders for party ``"1"``; the first (``T12_ORDER_ID``) is
  payable and already part-paid in cash, so its outstanding balance is above zero;
* order ``TILL_ORDER_ID`` is open at till ``TILL-2`` (Dojo may not lock it);
* party ``"2"`` sits on T5 and T6, came from reservation ``"1"`` and carries a deposit;
* reservations ``2``..``9`` all start after ``now``.

Money follows contract §4.1: UK VAT is inclusive, so a tax line reports the VAT inside the
total and is never added; the 12.5 % service charge is already inside the total.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from epos_bridge.domain.bill import VenueDetails
from epos_bridge.domain.bookings import NewParty, ReservationRecord
from epos_bridge.domain.orders import RECORDED, OrderRecord, PaymentRecord, StoredPayment, item_line_value
from epos_bridge.protocol.entities import (
    CLOSED_ORDER_STATUSES,
    Area,
    CollectionDetails,
    Customer,
    DineInDetails,
    Discount,
    Modifier,
    Money,
    OrderDetails,
    OrderItem,
    OrderStatus,
    OrderSubItem,
    OrderType,
    PartyDeposit,
    Table,
    TaxLine,
)
from epos_bridge.protocol.params import RequestHeaders

CURRENCY = "GBP"
T12_ORDER_ID = 7
"""The payable, part-paid dine-in order on table T12."""
TILL_ORDER_ID = 20
"""An open order a till has open (``open_at_till = 'TILL-2'``)."""

R = TypeVar("R")

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

VENUE = VenueDetails(
    name="The Copper Kettle",
    address_lines=("17 Kettle Yard", "Briggate", "Leeds"),
    postcode="LS1 6HD",
    phone_number="0113 496 0172",  # Ofcom drama range: never a real subscriber
    email_address="hello@copperkettle.example",
    vat_number="GB999999973",  # HMRC's published test VAT number
    logo_svg=_LOGO_SVG,
    website_url="https://copperkettle.example/book",
    website_caption="Book your next visit",
    footer_text="Thank you for visiting The Copper Kettle! Service charge is discretionary.",
)

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

# --- what a seeder writes -----------------------------------------------------------------


@dataclass(frozen=True)
class Waiter:
    id: str
    name: str


@dataclass(frozen=True)
class Numbered(Generic[R]):
    """A record with the id the demo gives it (other tests rely on some of them)."""

    id: int
    record: R


@dataclass(frozen=True)
class DemoSummary:
    """How much a seeder wrote."""

    waiters: int
    areas: int
    tables: int
    open_orders: int
    closed_orders: int
    seated_parties: int
    departed_parties: int
    reservations: int
    payments: int

    def words(self) -> str:
        """``demo venue: 2 areas, 6 tables, …`` for ``epos-bridge db init --demo``."""
        return (
            f"demo venue: {self.areas} areas, {self.tables} tables, {self.open_orders} open orders, "
            f"{self.seated_parties} seated parties, {self.reservations} reservations"
        )


class DemoSeedRefused(Exception):
    """The storage is not fresh and empty: demo data only goes into an empty POS."""


@dataclass(frozen=True)
class DemoVenue:
    """Everything a seeder writes, in the order it must be written (ids are given)."""

    venue: VenueDetails
    currency: str
    waiters: tuple[Waiter, ...]
    areas: tuple[Area, ...]
    tables: tuple[Table, ...]
    reservations: tuple[Numbered[ReservationRecord], ...]
    parties: tuple[Numbered[NewParty], ...]
    orders: tuple[Numbered[OrderRecord], ...]

    def summary(self) -> DemoSummary:
        closed = sum(1 for o in self.orders if o.record.status in CLOSED_ORDER_STATUSES)
        departed = sum(1 for p in self.parties if p.record.end_time is not None)
        return DemoSummary(
            waiters=len(self.waiters),
            areas=len(self.areas),
            tables=len(self.tables),
            open_orders=len(self.orders) - closed,
            closed_orders=closed,
            seated_parties=len(self.parties) - departed,
            departed_parties=departed,
            reservations=len(self.reservations),
            payments=sum(len(o.record.payments) for o in self.orders),
        )


def demo_venue(now: datetime) -> DemoVenue:
    """The demo venue around ``now`` (timezone-aware); the same ``now`` gives the same venue."""
    if now.tzinfo is None:
        raise ValueError("the demo venue needs a timezone-aware 'now'")
    return _Builder(now).venue()


# --- building it --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Builder:
    now: datetime

    def venue(self) -> DemoVenue:
        return DemoVenue(
            venue=VENUE,
            currency=CURRENCY,
            waiters=tuple(Waiter(wid, name) for wid, name in WAITERS),
            areas=tuple(Area(id=aid, name=name, waiter_ids=list(waiters)) for aid, name, waiters in AREAS),
            tables=tuple(
                Table(id=tid, name=name, max_covers=covers, area_id=aid, waiter_ids=list(waiters))
                for tid, name, aid, covers, waiters in TABLES
            ),
            reservations=tuple(Numbered(r.id, self._reservation(r)) for r in RESERVATIONS),
            parties=tuple(Numbered(p.id, self._party(p)) for p in PARTIES),
            orders=tuple(
                Numbered(number, _OrderBuilder(self, number, spec).record())
                for number, spec in enumerate(_HISTORY + _OPEN, start=1)
            ),
        )

    def at(self, minutes: int) -> datetime:
        """``minutes`` from now (negative: ago)."""
        return self.now + timedelta(minutes=minutes)

    def reservation_start(self, reservation: _Reservation) -> datetime:
        start = self.at(reservation.minutes_from_now)
        if reservation.minutes_from_now <= 0:
            return start
        # Bookings are taken on the quarter hour; rounding up keeps them after ``now``.
        return start + (_EPOCH - start) % _QUARTER_HOUR

    def _reservation(self, reservation: _Reservation) -> ReservationRecord:
        start = self.reservation_start(reservation)
        return ReservationRecord(
            dojo_reservation_id=_dojo_reservation_id(reservation),
            name=reservation.name,
            covers=reservation.covers,
            start_time=start,
            end_time=start + _STAY,
            table_ids=reservation.table_ids,
            host_notes=reservation.host_notes,
            guest_requests=reservation.guest_requests,
        )

    def _party(self, party: _Party) -> NewParty:
        reservation = next((r for r in RESERVATIONS if r.id == party.reservation_id), None)
        deposit = None
        if party.deposit:
            deposit = PartyDeposit(
                total_amount=_money(party.deposit),
                payment_intent_ids=[f"pi_demo_deposit_{party.id:04d}"],
                description=f"Deposit for {party.covers} (booked online)",
            )
        start = self.at(-party.minutes_ago)
        return NewParty(
            dojo_party_id=None,
            start_time=start,
            status=party.status,
            table_ids=party.table_ids,
            name=party.name,
            covers=party.covers,
            expected_end_time=start + _STAY,
            end_time=self.at(-party.left_minutes_ago) if party.left_minutes_ago is not None else None,
            host_notes=party.host_notes,
            guest_requests=party.guest_requests,
            deposit=deposit,
            reservation_id=str(reservation.id) if reservation else None,
            dojo_reservation_id=_dojo_reservation_id(reservation) if reservation else None,
        )


def _dojo_reservation_id(reservation: _Reservation) -> str | None:
    return f"rsv_demo_{reservation.id:04d}" if reservation.from_dojo else None


def _round_half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def _money(value: int) -> Money:
    return Money(value=value, currency_code=CURRENCY)


def _wire_modifiers(mods: Sequence[_Mod]) -> list[Modifier] | None:
    """``None`` for none, as an order a POS holds leaves out an empty list."""
    return [
        Modifier(name=MENU[m.plu][0], plu=m.plu, quantity=m.quantity, amount_per_modifier=_money(MENU[m.plu][1]))
        for m in mods
    ] or None


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
        note=item.note,
        modifiers=_wire_modifiers(item.modifiers),
        sub_items=subs or None,
    )


def _discounts(keys: Iterable[str], items: Sequence[_Item], gross: int) -> list[Discount]:
    """The named offers, as discounts on the order."""
    found: list[Discount] = []
    for key in keys:
        if key == "staff":  # 10 % off the whole order (amountPercentage has 2 implied decimals)
            found.append(
                Discount(
                    name="Staff discount 10%",
                    amount_total=_money(_round_half_up(gross * 1000, 10000)),
                    amount_percentage=1000,
                    discount_reference="STAFF",
                )
            )
        elif key == "voucher":
            found.append(
                Discount(name="£5 off voucher", amount_total=_money(500), discount_reference="VCH-2291", code="KETTLE5")
            )
        elif key == "lunch_ale":
            pints = sum(i.quantity for i in items if i.plu == "ALE-PNT")
            found.append(
                Discount(
                    name="Lunchtime offer: £1 off Copper Ale",
                    amount_total=_money(100 * pints),
                    discount_reference="LUNCH-ALE",
                    affected_plu="ALE-PNT",
                )
            )
        else:
            raise ValueError(f"unknown demo discount {key!r}")
    return found


@dataclass(frozen=True)
class _Totals:
    items: tuple[OrderItem, ...]
    discounts: tuple[Discount, ...]
    service: int | None
    total: int
    vat: int


def _totals(spec: _Order, covers: int) -> _Totals:
    items = tuple(_wire_item(item) for item in spec.items)
    gross = sum(item_line_value(item) for item in items)
    discounts = _discounts(spec.discounts, spec.items, gross)
    net = gross - sum(d.amount_total.value for d in discounts)
    # A discretionary 12.5 % service charge on dine-in tables of four or more; already in the total.
    service = _round_half_up(net * 125, 1000) if spec.table_id is not None and covers >= 4 else None
    # UK VAT is inclusive: report the 20 % inside the food and drink; a discretionary service
    # charge is outside the scope of VAT.
    vat = net - _round_half_up(net * 100, 120)
    return _Totals(items, tuple(discounts), service, net + (service or 0), vat)


class _OrderBuilder:
    """One order: its lines, discounts, tax line and payments."""

    def __init__(self, venue: _Builder, order_id: int, spec: _Order) -> None:
        self.venue = venue
        self.id = order_id
        self.spec = spec
        party = next((p for p in PARTIES if p.id == spec.party_id), None)
        self.totals = _totals(spec, party.covers if party else spec.covers)

    def record(self) -> OrderRecord:
        spec = self.spec
        return OrderRecord(
            status=OrderStatus(spec.status),
            details=self._details(),
            currency=CURRENCY,
            total_value=self.totals.total,
            created_at=self.venue.at(-spec.minutes_ago),
            updated_at=self.venue.at(-self._updated_minutes_ago()),
            items=self.totals.items,
            reference=self.reference(),
            display_name=self._display_name(),
            note=spec.note,
            customer=Customer(name=spec.customer[0], phone_number=spec.customer[1]) if spec.customer else None,
            discounts=self.totals.discounts,
            tax_lines=(
                TaxLine(
                    amount_total=_money(self.totals.vat),
                    id="VAT-STD",
                    name="VAT 20% (included)",
                    amount_percentage=2000,
                ),
            ),
            service_charge_value=self.totals.service,
            open_at_till=spec.open_at_till,
            payments=self._payments(),
        )

    def reference(self) -> str:
        # Numbered by order id, as the adapters number orders Dojo creates ("COL-<id>"): never a clash.
        return f"{self.spec.table_id or 'COL'}-{self.id:04d}"

    def _details(self) -> OrderDetails:
        spec = self.spec
        if spec.table_id is None:
            self._customer()
            later = spec.collect_in_minutes
            collection = CollectionDetails(
                asap=later is None, collect_at=self.venue.at(later) if later is not None else None
            )
            return OrderDetails(order_type=OrderType.COLLECTION, collection=collection)
        reservation = next((r for r in RESERVATIONS if r.id == spec.reservation_id), None)
        dine_in = DineInDetails(
            table_id=spec.table_id,
            waiter_id=spec.waiter_id,
            party_id=str(spec.party_id) if spec.party_id is not None else None,
            reservation_id=str(spec.reservation_id) if spec.reservation_id is not None else None,
            ready_at=self.venue.reservation_start(reservation) if reservation else None,
        )
        return OrderDetails(order_type=OrderType.DINE_IN, dine_in=dine_in)

    def _display_name(self) -> str:
        if self.spec.table_id is None:
            return f"Collection for {self._customer()[0].split()[0]}"
        return next(name for tid, name, *_ in TABLES if tid == self.spec.table_id)

    def _customer(self) -> tuple[str, str]:
        if self.spec.customer is None:
            raise ValueError(f"demo collection order {self.id} has no customer")
        return self.spec.customer

    def _updated_minutes_ago(self) -> int:
        return min([self.spec.minutes_ago // 3] + [p.minutes_ago for p in self.spec.payments])

    def _payments(self) -> tuple[PaymentRecord, ...]:
        paid = 0
        found: list[PaymentRecord] = []
        for index, pay in enumerate(self.spec.payments):
            amount = pay.amount if pay.amount is not None else self.totals.total - paid
            if not 0 < amount <= self.totals.total - paid:
                raise ValueError(f"demo order {self.id}: payment {index} of {amount} exceeds the balance")
            card = pay.tender == "card"
            payment = StoredPayment(
                amount, pay.tips, self._intent_id(index) if card else None, pay.status if card else RECORDED
            )
            if payment.counts:
                paid += amount
            requester = RequestHeaders(
                dojo_requesting_product="PayAtTable" if card and self.spec.table_id else None,
                device_id="demo-terminal-01" if card else None,
                waiter_id=self.spec.waiter_id,
            )
            found.append(PaymentRecord(payment, self.venue.at(-pay.minutes_ago), pay.tender, requester))
        return tuple(found)

    def _intent_id(self, index: int) -> str:
        digest = hashlib.sha256(f"{self.reference()}/{index}".encode()).hexdigest()[:16]
        return f"pi_demo_{digest}"
