"""Logging for the bridge: every record passes a redacting filter, so the API key and other
secrets never reach a log line, whoever formats the message."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from collections.abc import Iterable
from pathlib import Path

from epos_bridge.protocol.dojo import redact

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class RedactingFilter(logging.Filter):
    """Renders the record once, removes every secret, and freezes the result."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self._secrets: tuple[str, ...] = tuple(s for s in secrets if s)

    def set_secrets(self, secrets: Iterable[str | None]) -> None:
        self._secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        record.msg = redact(message, *self._secrets)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Render the traceback now, redacted, so no handler formats the raw one.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info), *self._secrets)
            record.exc_info = None
        return True


def configure_logging(
    secrets: Iterable[str | None] = (), *, level: int = logging.INFO, log_dir: Path | None = None
) -> RedactingFilter:
    """Log to stderr and, when ``log_dir`` is given, to rotating files there."""
    redactor = RedactingFilter(secrets)
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        if getattr(handler, "_epos_bridge", False):
            root.removeHandler(handler)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                log_dir / "epos-bridge.log", maxBytes=5_000_000, backupCount=5, encoding="utf-8"
            )
        )
    for handler in handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler.addFilter(redactor)
        handler._epos_bridge = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    # One line per HTTP call is noise next to our own request log; failures still show.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return redactor
