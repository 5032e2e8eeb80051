"""An unexpected exception in a task, a loop callback, a thread or a Qt slot is logged (without
the API key) and reported, and the bridge's loop keeps running."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
from collections.abc import Iterator
from types import TracebackType

import pytest

from epos_bridge.host.crash import CrashHandler, CrashReport

KEY = "sk_sandbox_CrashTestSecret0123456789"


@pytest.fixture
def reports() -> list[CrashReport]:
    return []


@pytest.fixture
def handler(reports: list[CrashReport]) -> Iterator[CrashHandler]:
    crash = CrashHandler(secrets=[KEY], notify=reports.append)
    yield crash
    crash.uninstall()


def assert_no_key(report: CrashReport, caplog: pytest.LogCaptureFixture) -> None:
    assert KEY not in report.summary
    assert KEY not in report.details
    assert all(KEY not in record.getMessage() for record in caplog.records)


async def test_callback_error_is_reported_and_the_loop_keeps_serving(
    handler: CrashHandler, reports: list[CrashReport], caplog: pytest.LogCaptureFixture
) -> None:
    loop = asyncio.get_running_loop()
    handler.install_loop(loop)
    served: list[int] = []

    async def keep_serving() -> None:
        for n in range(10):
            served.append(n)
            await asyncio.sleep(0.005)

    def broken_callback() -> None:
        raise RuntimeError(f"listener failed with key {KEY}")

    serving = asyncio.create_task(keep_serving())
    with caplog.at_level(logging.ERROR, logger="epos_bridge.host.crash"):
        loop.call_soon(broken_callback)
        await serving

    assert served == list(range(10))
    assert len(reports) == 1
    report = reports[0]
    assert report.where == "asyncio callback"
    assert report.summary == "RuntimeError: listener failed with key «redacted»"
    assert "broken_callback" in report.details
    assert_no_key(report, caplog)
    assert any("unexpected error in asyncio callback" in r.getMessage() for r in caplog.records)


async def test_task_error_nobody_awaited_is_reported(
    handler: CrashHandler, reports: list[CrashReport], caplog: pytest.LogCaptureFixture
) -> None:
    handler.install_loop(asyncio.get_running_loop())

    async def failing_work() -> None:
        raise ValueError(f"payment log write failed for {KEY}")

    with caplog.at_level(logging.ERROR, logger="epos_bridge.host.crash"):
        task = asyncio.get_running_loop().create_task(failing_work(), name="payment-log")
        await asyncio.sleep(0.01)
        del task
        gc.collect()  # "Task exception was never retrieved" is reported when the task is collected
        await asyncio.sleep(0)

    assert [r.where for r in reports] == ["asyncio task payment-log"]
    assert reports[0].summary.startswith("ValueError: payment log write failed")
    assert "Task exception was never retrieved" in reports[0].details
    assert_no_key(reports[0], caplog)
    assert await asyncio.sleep(0, result="still running") == "still running"


def test_thread_error_is_reported(
    handler: CrashHandler, reports: list[CrashReport], caplog: pytest.LogCaptureFixture
) -> None:
    handler.install()

    def work() -> None:
        raise OSError(f"disk full near {KEY}")

    with caplog.at_level(logging.ERROR, logger="epos_bridge.host.crash"):
        thread = threading.Thread(target=work, name="export")
        thread.start()
        thread.join()

    assert [r.where for r in reports] == ["thread export"]
    assert_no_key(reports[0], caplog)


@pytest.mark.logs_warnings("the crash handler logs what it catches")
def test_sys_excepthook_reports_and_leaves_ctrl_c_alone(
    handler: CrashHandler, reports: list[CrashReport], monkeypatch: pytest.MonkeyPatch
) -> None:
    passed_on: list[type[BaseException]] = []

    def previous(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        passed_on.append(kind)

    monkeypatch.setattr(sys, "excepthook", previous)
    handler.install()
    try:
        raise KeyError(KEY)
    except KeyError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)  # what PySide6 does for a failing slot
    sys.excepthook(KeyboardInterrupt, KeyboardInterrupt(), None)

    assert [r.where for r in reports] == ["main thread"]
    assert KEY not in reports[0].summary
    assert passed_on == [KeyboardInterrupt]
    handler.uninstall()
    assert sys.excepthook is previous


def test_a_failing_notifier_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def notifier(report: CrashReport) -> None:
        raise RuntimeError("the tray is gone")

    crash = CrashHandler(notify=notifier)
    with caplog.at_level(logging.ERROR, logger="epos_bridge.host.crash"):
        report = crash.report("main thread", ZeroDivisionError("division by zero"))
    assert report.summary == "ZeroDivisionError: division by zero"
    assert any("the error notifier itself failed" in r.getMessage() for r in caplog.records)
    assert list(crash.recent) == [report]


def test_recent_reports_are_bounded() -> None:
    crash = CrashHandler()
    logging.getLogger("epos_bridge.host.crash").disabled = True
    try:
        for n in range(50):
            crash.report("main thread", ValueError(str(n)))
    finally:
        logging.getLogger("epos_bridge.host.crash").disabled = False
    assert len(crash.recent) == 20
    assert crash.recent[-1].summary == "ValueError: 49"
