"""POS database adapters: each talks to exactly one kind of POS storage."""
