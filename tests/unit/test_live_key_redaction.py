"""A key learnt while the bridge runs (saved in Settings) is redacted from that moment on by the
log filter and the crash handler, which share one KnownSecrets; the old key stays redacted."""

from __future__ import annotations

import base64
import logging

import pytest

from epos_bridge.host.crash import CrashHandler
from epos_bridge.host.logs import RedactingFilter
from epos_bridge.protocol.redaction import REDACTED, KnownSecrets

OLD = "sk_sandbox_OLD_fake_key_0123456789"
NEW = "sk_sandbox_NEW_fake_key_9876543210"


def record(message: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("epos_bridge.test", logging.WARNING, __file__, 1, message, args, info)


@pytest.mark.logs_warnings("the crash handler logs what it catches")
def test_the_log_filter_and_the_crash_handler_follow_a_key_change_at_once() -> None:
    secrets = KnownSecrets([OLD])
    log_filter = RedactingFilter(secrets)
    crashes = CrashHandler(secrets=secrets)

    before = record("new key %s", NEW)
    log_filter.filter(before)
    assert NEW in before.getMessage()  # not known yet

    secrets.add(NEW)  # what Bridge.apply_settings does before using the new key

    after = record("keys %s %s %s", OLD, NEW, base64.b64encode(f"Basic {NEW}".encode()).decode())
    log_filter.filter(after)
    assert after.getMessage() == f"keys {REDACTED} {REDACTED} {REDACTED}"
    try:
        raise RuntimeError(f"crashed with {NEW[:14]}")
    except RuntimeError as exc:
        report = crashes.report("test", exc, exc.__traceback__)
    assert NEW[:14] not in report.summary + report.details


def test_a_traceback_is_rendered_redacted(caplog: pytest.LogCaptureFixture) -> None:
    log_filter = RedactingFilter(KnownSecrets([NEW]))
    try:
        raise ValueError(f"bad {NEW}")
    except ValueError as exc:
        failing = record("failed", exc=exc)
    log_filter.filter(failing)

    assert failing.exc_info is None
    assert failing.exc_text is not None and NEW not in failing.exc_text and REDACTED in failing.exc_text


def test_set_secrets_adds_and_never_forgets() -> None:
    log_filter = RedactingFilter([OLD])
    log_filter.set_secrets([NEW])

    assert log_filter.secrets.all() == {OLD, NEW}
