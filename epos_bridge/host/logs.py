"""Logging for the bridge: every record passes a redacting filter, so the API key and other
secrets (every form of them, :mod:`epos_bridge.protocol.redaction`) and guests' personal data
(names, emails, phones, booking notes; :func:`~epos_bridge.protocol.redaction.redact_personal`)
never reach a log line, whoever formats the message, at any level. The filter reads a shared
:class:`KnownSecrets`, so a key changed in Settings is redacted from the moment the bridge learns
it. Log files and their folder are readable by the bridge's user alone
(:mod:`epos_bridge.host.private_files`)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from epos_bridge.host.private_files import PrivateRotatingFileHandler, private_dir
from epos_bridge.protocol.redaction import KnownSecrets, redact_personal

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class RedactingFilter(logging.Filter):
    """Renders the record once, removes every secret and guests' personal data, and freezes the
    result."""

    def __init__(self, secrets: KnownSecrets | Iterable[str | None] = ()) -> None:
        super().__init__()
        self.secrets = secrets if isinstance(secrets, KnownSecrets) else KnownSecrets(secrets)

    def set_secrets(self, secrets: Iterable[str | None]) -> None:
        """Redact these too from now on (secrets already known stay redacted)."""
        self.secrets.add(*secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_epos_redacted", False):
            return True  # the second handler meets the record the first one already redacted
        record._epos_redacted = True
        redactor = self.secrets.redactor

        def clean(text: str) -> str:
            return redact_personal(redactor.redact(text) if redactor else text)

        record.msg = clean(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Render the traceback now, redacted, so no handler formats the raw one.
            record.exc_text = clean(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = clean(record.exc_text)
        if record.stack_info:
            record.stack_info = clean(record.stack_info)
        return True


class LineFormatter(logging.Formatter):
    """:data:`LOG_FORMAT`, formatted once per record for every handler (stderr and the file),
    the date part of the time stamp rendered once per second instead of a ``strftime`` per line.

    A per-request log line is the one line the bridge writes at full load; this keeps it cheap.
    """

    def __init__(self) -> None:
        super().__init__(LOG_FORMAT)
        self._stamp: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        second = int(record.created)
        cached_second, text = self._stamp  # one tuple: threads may race, never mix two seconds
        if second != cached_second:
            text = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))
            self._stamp = (second, text)
        return f"{text},{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        line: str | None = getattr(record, "_epos_line", None)
        if line is None:
            line = super().format(record)
            record._epos_line = line
        return line


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
    formatter = LineFormatter()
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(redactor)
        handler._epos_bridge = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    # One line per HTTP call is noise next to our own request log; failures still show.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return redactor
