"""Shared building blocks of the wire models.

Every wire model derives from :class:`WireModel`:

* Python attributes are snake_case, the wire names camelCase (exact contract spelling);
* unknown fields sent by Dojo are ignored, never rejected (contract §6 D: Dojo's own
  examples carry extra keys);
* validation is strict (no "5" -> 5 coercion) because requests are validated from the
  raw JSON text, where strict mode still accepts enum values and RFC 3339 date-times;
* :func:`to_wire` omits ``None`` so optional fields we have no value for are left out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, PlainSerializer
from pydantic.alias_generators import to_camel


def format_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``, as the contract recommends (§4.4)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


UtcDateTime = Annotated[AwareDatetime, PlainSerializer(format_utc, return_type=str, when_used="json")]
"""A timezone-aware date-time; naive values are rejected, output is always UTC ``Z``."""


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
