"""The printed bill's header and footer (contract §3.8, §4.3).

The POS decides per request what the terminal prints around the order. This builds the same
layout for every adapter from the venue's details, so a file-based POS prints like the
reference one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from epos_bridge.protocol.base import format_utc
from epos_bridge.protocol.entities import (
    Align,
    BillLine,
    BillSection,
    HorizontalLine,
    HorizontalLineStyle,
    LineType,
    Logo,
    MerchantAddress,
    MerchantEmailAddress,
    MerchantName,
    MerchantPhoneNumber,
    Order,
    OrderBill,
    Size,
    TaxNumber,
    Text,
    Url,
)


@dataclass(frozen=True)
class VenueDetails:
    name: str
    address_lines: tuple[str, ...] = ()
    postcode: str = ""
    phone_number: str | None = None
    email_address: str | None = None
    vat_number: str | None = None
    logo_svg: str | None = None
    website_url: str | None = None
    website_caption: str | None = None
    footer_text: str | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any], address_lines: Iterable[Any] = ()) -> VenueDetails:
        """One reading of a stored venue for every storage. ``record`` uses these fields' names; a
        field it lacks or leaves empty is absent, as on a POS that keeps no such thing."""
        optional = {f.name: record.get(f.name) or None for f in fields(cls) if f.name not in _READ_APART}
        return cls(
            name=str(record["name"]),
            address_lines=tuple(str(line) for line in address_lines if line),
            postcode=str(record.get("postcode") or ""),
            **optional,
        )


_READ_APART = frozenset({"name", "address_lines", "postcode"})

FALLBACK_VENUE = VenueDetails(name="Receipt")
"""Printed when the POS holds no venue details: the bill still prints, without a merchant header."""


def table_of(order: Order) -> str | None:
    """The table whose name the bill prints, if the order is at one."""
    return order.details.dine_in.table_id if order.details.dine_in is not None else None


def build_bill(order: Order, venue: VenueDetails | None, table_name: str | None, printed_at: datetime) -> OrderBill:
    """``venue``: ``None`` when the POS has none. ``table_name``: the POS's name for
    :func:`table_of`, ``None`` when it has no such table (the bill then prints the table's id)."""
    shown = table_name if table_name is not None else table_of(order)
    details = venue if venue is not None else FALLBACK_VENUE
    return OrderBill(header=_header(order, details, shown, printed_at), order=order, footer=_footer(details))


def _header(order: Order, venue: VenueDetails, table_name: str | None, printed_at: datetime) -> BillSection:
    lines: list[BillLine] = []
    if venue.logo_svg:
        lines.append(BillLine(line_type=LineType.LOGO, logo=Logo(svg_image=venue.logo_svg)))
    lines.append(BillLine(line_type=LineType.MERCHANT_NAME, merchant_name=MerchantName(name=venue.name)))
    if venue.address_lines and venue.postcode:
        address = MerchantAddress(address_lines=list(venue.address_lines), postcode=venue.postcode)
        lines.append(BillLine(line_type=LineType.MERCHANT_ADDRESS, merchant_address=address))
    if venue.phone_number:
        phone = MerchantPhoneNumber(phone_number=venue.phone_number)
        lines.append(BillLine(line_type=LineType.MERCHANT_PHONE_NUMBER, merchant_phone_number=phone))
    if venue.email_address:
        email = MerchantEmailAddress(email_address=venue.email_address)
        lines.append(BillLine(line_type=LineType.MERCHANT_EMAIL_ADDRESS, merchant_email_address=email))
    lines.append(_rule(HorizontalLineStyle.SINGLE))
    title = order.display_name or order.reference or f"Order {order.id}"
    lines.append(_text(title, Size.HEADER2, Align.CENTER, bold=True))
    if table_name:
        lines.append(_text(f"Table {table_name}", Size.BODY, Align.CENTER))
    lines.append(_text(f"Printed {format_utc(printed_at)[:16].replace('T', ' ')} UTC", Size.BODY, Align.CENTER))
    lines.append(_rule(HorizontalLineStyle.DOUBLE))
    return BillSection(lines=lines)


def _footer(venue: VenueDetails) -> BillSection:
    lines: list[BillLine] = [_rule(HorizontalLineStyle.DOUBLE)]
    if venue.vat_number:
        tax = TaxNumber(name="VAT number", number=venue.vat_number)
        lines.append(BillLine(line_type=LineType.TAX_NUMBER, tax_number=tax))
    lines.append(_text(venue.footer_text or f"Thank you for dining at {venue.name}", Size.BODY, Align.CENTER))
    if venue.website_url:
        url = Url(url=venue.website_url, description=venue.website_caption, show_qr=True, show_url=True)
        lines.append(BillLine(line_type=LineType.URL, url=url))
    return BillSection(lines=lines)


def _text(value: str, size: Size, align: Align, bold: bool | None = None) -> BillLine:
    return BillLine(line_type=LineType.TEXT, text=Text(value=value, size=size, align=align, bold=bold))


def _rule(style: HorizontalLineStyle) -> BillLine:
    return BillLine(line_type=LineType.HORIZONTAL_LINE, horizontal_line=HorizontalLine(line=style))
