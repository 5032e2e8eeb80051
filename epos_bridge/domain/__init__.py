"""Lock, payment, pagination and bill rules. Pure: no I/O, no asyncio, no clock of its own."""
