"""The mapped-SQL adapter: a POS's own SQLite tables, read and written through a mapping file
(docs/mapping-a-pos.md). Shipped mappings live in ``mappings/`` (``floreant``, ``ospos``)."""
