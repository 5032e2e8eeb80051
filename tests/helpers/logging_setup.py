"""The bridge's own logging set-up (``epos_bridge.host.logs.configure_logging``) for one test, undone
afterwards so later tests see pytest's logging only."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from epos_bridge.host.logs import RedactingFilter, configure_logging
from epos_bridge.protocol.redaction import KnownSecrets


@contextlib.contextmanager
def bridge_logging(secrets: KnownSecrets, log_dir: Path) -> Iterator[RedactingFilter]:
    root = logging.getLogger()
    level = root.level
    redactor = configure_logging(secrets, log_dir=log_dir)
    try:
        yield redactor
    finally:
        for handler in list(root.handlers):
            if getattr(handler, "_epos_bridge", False):
                root.removeHandler(handler)
                handler.close()
        root.setLevel(level)
