"""UI fixtures: the real widgets over a real Bridge, against the real Dojo simulator.

How asyncio and pytest-qt share one thread here
-----------------------------------------------

In the app, qasync runs asyncio *on* Qt's event loop: asyncio callbacks are Qt timer events and
socket notifiers. The tests keep that shape, but let **Qt's event processing drive asyncio**:

* The tests are plain (synchronous) functions. The ``qloop`` fixture makes a ``qasync.QEventLoop``
  and registers it as this thread's running loop (``asyncio.events._set_running_loop``), so the
  bridge, the simulator and the widgets' ``asyncio.get_running_loop().create_task(...)`` all find
  it. Nothing calls ``run_forever``: every ``qtbot.wait_signal`` / ``qtbot.waitUntil`` /
  ``qtbot.wait`` processes Qt events, and with them the loop's timers, sockets and
  executor callbacks. :func:`run` awaits a coroutine the same way (a task + ``waitUntil``).
* Why not ``async def`` tests on a qasync loop (pytest-asyncio 1.x's ``pytest_asyncio_loop_factories``
  hook can supply one)? Because then the test body *is* an asyncio task, and a ``qtbot.wait*``
  inside it spins a nested Qt loop that runs other tasks' steps while the test's step is still
  executing: asyncio refuses ("Cannot enter into task … while another task … is being executed").
  Sync tests avoid that re-entrancy and keep qtbot's signal-waiting API, as STYLE asks.
* ``already_running=True`` is not used: its teardown path calls ``QApplication.exit()``, which
  emits ``aboutToQuit`` on the session-wide QApplication and left later tests' timers dead.
* Teardown cancels leftover tasks, shuts down async generators and the default executor while
  Qt still pumps, then clears the running loop and closes it, so pytest-asyncio's own loops in
  other test folders start clean (``filterwarnings = error`` would catch any leak).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import qasync
from pydantic import SecretStr
from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from epos_bridge.adapters.sqlite.setup import init_database
from epos_bridge.app import Bridge, demo_settings
from epos_bridge.config import BridgeSettings
from epos_bridge.gateway.connection_state import ConnectionState
from epos_bridge.services.counter import SessionUpdate
from epos_bridge.sim.simulator import DEMO_API_KEY, DEMO_SOFTWARE_HOUSE_ID, DojoSimulator
from epos_bridge.ui.bridge_signals import BridgeSignals
from epos_bridge.ui.icons import IconLibrary
from epos_bridge.ui.status_window import StatusWindow
from epos_bridge.ui.tray import TrayController

T = TypeVar("T")

NOT_SHOWN = "words the counter made, which the UI must not show"


def session_update(**fields: Any) -> SessionUpdate:
    """A :class:`SessionUpdate` as the counter sends it. The UI renders from ``status`` and the raw
    ``notificationType`` values; ``words`` (while the counter still carries it) is filled with
    :data:`NOT_SHOWN`, so a test can see the UI never shows it."""
    if "words" in {field.name for field in dataclasses.fields(SessionUpdate)}:
        fields.setdefault("words", NOT_SHOWN)
    return SessionUpdate(**fields)


Run = Callable[..., Any]


@pytest.fixture(autouse=True)
def _collect_qt_garbage_on_the_gui_thread() -> Iterator[None]:
    """Delete each test's Qt objects here, on the GUI thread.

    Left to Python's cyclic garbage collector, a QObject can be destroyed by whichever thread
    happens to trigger a collection — one of the many worker threads (database pools, state
    stores) — and Qt crashes when an object with timers dies off its own thread.
    """
    yield
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@pytest.fixture
def qloop(qapp: QApplication, qtbot: QtBot) -> Iterator[asyncio.AbstractEventLoop]:
    """A qasync loop driven by qtbot's waits (see the module docstring)."""
    loop = qasync.QEventLoop(qapp)
    asyncio.events._set_running_loop(loop)
    try:
        yield loop
        _drain(loop, qtbot)
    finally:
        asyncio.events._set_running_loop(None)
        loop.close()


def _drain(loop: asyncio.AbstractEventLoop, qtbot: QtBot) -> None:
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    qtbot.waitUntil(lambda: all(task.done() for task in pending), timeout=5000)
    for cleanup in (loop.shutdown_asyncgens(), loop.shutdown_default_executor()):
        task = loop.create_task(cleanup)
        qtbot.waitUntil(task.done, timeout=5000)


def run_on(loop: asyncio.AbstractEventLoop, qtbot: QtBot, work: Coroutine[Any, Any, T], timeout: float = 15) -> T:
    """Await ``work`` on ``loop`` by letting Qt process events until it is done."""
    task = loop.create_task(work)
    qtbot.waitUntil(task.done, timeout=int(timeout * 1000))
    return task.result()


@pytest.fixture
def run(qloop: asyncio.AbstractEventLoop, qtbot: QtBot) -> Run:
    def call(work: Coroutine[Any, Any, T], timeout: float = 15) -> T:
        return run_on(qloop, qtbot, work, timeout)

    return call


@pytest.fixture
def simulator(run: Run) -> Iterator[DojoSimulator]:
    sim = DojoSimulator()
    run(sim.start())
    try:
        yield sim
    finally:
        run(sim.stop())


@pytest.fixture
def venue(tmp_path: Path) -> Path:
    """A demo venue database (as ``epos-bridge db init --demo`` makes it)."""
    init_database(tmp_path / "demo-venue.db", demo=True, now=datetime.now(UTC))
    return tmp_path


@pytest.fixture
def make_settings(venue: Path, simulator: DojoSimulator) -> Callable[..., BridgeSettings]:
    """The demo's settings pointed at ``simulator``; keyword arguments change fields."""

    def build(**changes: Any) -> BridgeSettings:
        settings = demo_settings(venue, simulator.ws_url, simulator.api_url, DEMO_API_KEY, DEMO_SOFTWARE_HOUSE_ID)
        if "api_key" in changes:
            changes["api_key"] = SecretStr(changes["api_key"])
        return settings.model_copy(update=changes)

    return build


@dataclasses.dataclass(frozen=True)
class Gui:
    """One running bridge with its signals, status window and tray controller."""

    bridge: Bridge
    signals: BridgeSignals
    window: StatusWindow
    tray: TrayController

    @property
    def state(self) -> ConnectionState:
        return self.signals.status.state


@pytest.fixture
def start_gui(qtbot: QtBot, run: Run, make_settings: Callable[..., BridgeSettings]) -> Iterator[Callable[..., Gui]]:
    """Build and start the UI over a real Bridge. ``tray_available`` defaults to the real answer
    (always False offscreen); ``wait_connected`` waits for the first connection."""
    started: list[Gui] = []

    def start(*, tray_available: Callable[[], bool] | None = None, wait_connected: bool = True, **settings: Any) -> Gui:
        bridge = Bridge(make_settings(**settings))
        signals = BridgeSignals(bridge)
        icons = IconLibrary()
        window = StatusWindow(signals, icons)  # not qtbot.addWidget: teardown below deletes it after the bridge stops
        options: dict[str, Any] = {"retry_interval_ms": 50, "retries": 3}
        if tray_available is not None:
            options["tray_available"] = tray_available
        tray = TrayController(signals, window, icons, **options)
        gui = Gui(bridge, signals, window, tray)
        started.append(gui)
        run(bridge.start())
        tray.start()
        with qtbot.wait_signal(window.payments_tab.loaded, timeout=5000):
            window.payments_tab.reload()
        if wait_connected:
            qtbot.waitUntil(lambda: gui.state is ConnectionState.CONNECTED, timeout=10_000)
        return gui

    yield start
    for gui in started:
        # The bridge's last status changes still reach live widgets; only then detach and delete.
        run(gui.bridge.stop())
        gui.signals.detach()
        gui.tray.shutdown()
        gui.window.shutdown()
        gui.window.main_window = False
        gui.window.hide()
        gui.window.deleteLater()
        gui.tray.deleteLater()
        gui.signals.deleteLater()
        qtbot.wait(1)
