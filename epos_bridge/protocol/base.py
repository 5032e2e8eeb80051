"""Shared building blocks of the wire models.

Every wire model derives from :class:`WireModel`:

* Python attributes are snake_case, the wire names camelCase (exact contract spelling);
* unknown fields sent by Dojo are ignored, never rejected (contract §6 D: Dojo's own
  examples carry extra keys);
* validation is strict (no "5" -> 5, no "true" -> True) on the JSON values of a frame parsed
  once; the two exceptions are deliberate: an enum field takes its wire text
  (:class:`WireEnum`), and a date-time takes RFC 3339 text read by the one parser
  (:func:`epos_bridge.protocol.times.parse_wire_time`);
* every integer is an :data:`Int64`, whatever the field: one outside the range is refused at
  validation (``InvalidRequest`` naming the field), never stored or sent on;
* :func:`to_wire` omits ``None`` so optional fields we have no value for are left out.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, cast

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, GetCoreSchemaHandler, PlainSerializer
from pydantic.alias_generators import to_camel
from pydantic_core import CoreSchema

from epos_bridge.protocol.times import format_utc, parse_wire_time

__all__ = ["INT64_MAX", "INT64_MIN", "Int64", "UtcDateTime", "WireEnum", "WireModel", "format_utc", "to_wire"]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
"""Every integer of the wire models. Contract §4.1: ``Money.value`` is int64; the schema's other
integers (``covers``, quantities, percentages, ``cursor.limit``) say no more, and every store the
bridge writes them to holds 64 bits. Out of range is the sender's error (``InvalidRequest``), not a
database driver's ``OverflowError`` answered as ``UnexpectedError``."""


def _wire_time(value: object) -> object:
    """Text from the wire goes through the one parser (window, UTC); a datetime built by our own
    code passes as it is (it may be a value read back from the POS, outside the window)."""
    if isinstance(value, str):
        return parse_wire_time(value)
    if isinstance(value, datetime):
        return value
    raise ValueError("must be an RFC 3339 date-time string")


UtcDateTime = Annotated[
    AwareDatetime,
    BeforeValidator(_wire_time),
    PlainSerializer(format_utc, return_type=str, when_used="json"),
]
"""A timezone-aware date-time; naive values are rejected, output is always UTC ``Z``."""


class WireEnum(StrEnum):
    """An enum whose wire text is accepted in strict validation of a parsed frame.

    Strict mode otherwise demands an enum *instance* for Python input; the text must still be
    one of the members exactly (no case folding).
    """

    @classmethod
    def __get_pydantic_core_schema__(cls, source: type[Any], handler: GetCoreSchemaHandler) -> CoreSchema:
        schema: dict[str, Any] = dict(handler(source))
        schema["strict"] = False
        return cast(CoreSchema, schema)


class WireModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        strict=True,
        frozen=False,
    )


def to_wire(model: BaseModel) -> dict[str, Any]:
    """The JSON-ready dict Dojo sees: camelCase names, ``None`` omitted."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)
