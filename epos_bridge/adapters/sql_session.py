"""What a storage's transaction body is handed: the one call shape every engine answers.

``sqlite_utils.Database`` has it already; a server database's session (``adapters/sqlmap/server.py``)
has it too, so the bridge's row code runs unchanged on a POS's SQLite file or its database server.
Placeholders are ``?`` (in order) or ``:name`` (a mapping's statements), never both in one statement.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol


class Cursor(Protocol):
    @property
    def lastrowid(self) -> int | None: ...

    @property
    def rowcount(self) -> int: ...

    @property
    def description(self) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Sql(Protocol):
    """One transaction's connection: statements with bound values, rows as dicts."""

    def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] | None = None) -> Cursor: ...

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Iterator[dict[str, Any]]: ...
