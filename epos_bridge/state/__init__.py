"""The bridge's own durable state (its SQLite file, not the POS database): idempotency for now."""
