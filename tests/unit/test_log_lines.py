"""The per-request log line is cheap (formatted once for both handlers, the date rendered once a
second, no stat per line) and says exactly what the standard formatter said."""

from __future__ import annotations

import logging
from pathlib import Path

from epos_bridge.host.logs import LOG_FORMAT, LineFormatter
from epos_bridge.host.private_files import PrivateRotatingFileHandler


def record(message: str, created: float) -> logging.LogRecord:
    line = logging.LogRecord("epos_bridge.requests", logging.INFO, __file__, 1, "%s id=%s", (message, 7), None)
    line.created, line.msecs = created, (created % 1) * 1000
    return line


def test_a_line_reads_as_the_standard_formatter_writes_it() -> None:
    ours, standard = LineFormatter(), logging.Formatter(LOG_FORMAT)
    for created in (1_780_000_000.123, 1_780_000_000.999, 1_780_000_001.0, 1_780_000_061.5, 1_780_000_000.5):
        assert ours.format(record("GetOrderByIdV1", created)) == standard.format(record("GetOrderByIdV1", created))


def test_a_record_is_formatted_once_for_every_handler() -> None:
    formatter = LineFormatter()
    line = record("first", 1_780_000_000.0)
    text = formatter.format(line)
    line.msg = "changed after formatting"
    assert formatter.format(line) == text


def test_the_log_rolls_over_before_a_file_passes_its_size(tmp_path: Path) -> None:
    limit = 2_000
    handler = PrivateRotatingFileHandler(tmp_path / "epos-bridge.log", maxBytes=limit, backupCount=3, encoding="utf-8")
    handler.setFormatter(LineFormatter())
    logger = logging.getLogger("test.log_lines.rollover")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for n in range(200):
            logger.warning("line %d %s", n, "x" * (n % 90))
    finally:
        logger.removeHandler(handler)
        handler.close()
    files = sorted(tmp_path.glob("epos-bridge.log*"))
    assert len(files) == 4
    assert all(0 < f.stat().st_size <= limit for f in files)
