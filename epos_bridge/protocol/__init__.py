"""Wire models and names of the EPOS Data API. No I/O, no asyncio."""
