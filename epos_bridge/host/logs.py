"""Logging for the bridge: every record passes a redacting filter, so the API key and other
secrets (every form of them, :mod:`epos_bridge.protocol.redaction`) never reach a log line,
whoever formats the message. The filter reads a shared :class:`KnownSecrets`, so a key changed in
Settings is redacted from the moment the bridge learns it. Log files and their folder are
readable by the bridge's user alone (:mod:`epos_bridge.host.private_files`)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from pathlib import Path

from epos_bridge.host.private_files import PrivateRotatingFileHandler, private_dir
from epos_bridge.protocol.redaction import KnownSecrets

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class RedactingFilter(logging.Filter):
    """Renders the record once, removes every secret, and freezes the result."""

    def __init__(self, secrets: KnownSecrets | Iterable[str | None] = ()) -> None:
        super().__init__()
        self.secrets = secrets if isinstance(secrets, KnownSecrets) else KnownSecrets(secrets)

    def set_secrets(self, secrets: Iterable[str | None]) -> None:
        """Redact these too from now on (secrets already known stay redacted)."""
        self.secrets.add(*secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        redactor = self.secrets.redactor
        if not redactor:
            return True
        message = record.getMessage()
        record.msg = redactor.redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Render the traceback now, redacted, so no handler formats the raw one.
            record.exc_text = redactor.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redactor.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redactor.redact(record.stack_info)
        return True


def configure_logging(
    secrets: KnownSecrets | Iterable[str | None] = (), *, level: int = logging.INFO, log_dir: Path | None = None
) -> RedactingFilter:
    """Log to stderr and, when ``log_dir`` is given, to rotating files there (owner-only)."""
    redactor = RedactingFilter(secrets)
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        if getattr(handler, "_epos_bridge", False):
            root.removeHandler(handler)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_dir is not None:
        private_dir(log_dir)
        handlers.append(
            PrivateRotatingFileHandler(log_dir / "epos-bridge.log", maxBytes=5_000_000, backupCount=5, encoding="utf-8")
        )
    for handler in handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler.addFilter(redactor)
        handler._epos_bridge = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    # One line per HTTP call is noise next to our own request log; failures still show.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return redactor
