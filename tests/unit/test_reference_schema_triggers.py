"""The reference schema's change-capture triggers are built from the row they fire on (``NEW`` or
``OLD``) as a value, never by rewriting SQL text (``.replace("R.", "NEW.")`` would turn an alias
such as ``TR.`` into ``TNEW.``), and migration 2's text is frozen: databases already at version 2
got exactly these triggers."""

from __future__ import annotations

import hashlib

from epos_bridge.adapters.sqlite import schema

MIGRATION_2_SHA256 = "fa03d88769639d72b6706d011bc8500991252a8c7a735c1e5e4f90fa13b1a2ea"
"""Of the text migration 2 has always had (computed before the rewrite)."""


def test_migration_2_is_the_text_it_always_was() -> None:
    text = schema._change_capture_migration()
    assert schema.MIGRATIONS[1] == text
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == MIGRATION_2_SHA256


def test_a_row_reference_is_a_value_so_an_alias_ending_in_r_is_left_alone() -> None:
    change = schema.RowChange(
        "payments",
        "order",
        entity_id=lambda row: "TR.order_id",
        rest=lambda row: f" FROM payments TR WHERE TR.id = {row}.id",
    )
    sql = schema.change_trigger_sql(change, "DELETE")
    assert "CAST(TR.order_id AS TEXT)" in sql and "WHERE TR.id = OLD.id" in sql
    assert "TNEW" not in sql and "TOLD" not in sql
