"""The settings dialog driven for real with pytest-qt: real widgets, the real settings service,
the real REST/gateway simulator on 127.0.0.1, a real keyring backend and a real running Bridge.

How the asyncio side runs: the dialog schedules its service calls as asyncio tasks, and the
bridge and the simulator are asyncio code, so these tests need one loop that is *also* the Qt
event loop. Each async scenario is a plain (sync) test that builds ``qasync.QEventLoop`` over
the ``QApplication`` pytest-qt created (``qapp``) and runs the scenario with
``loop.run_until_complete``: Qt events (clicks, key presses, repaints) and asyncio tasks
(HTTP, WebSocket, SQLite workers) then interleave exactly as in the tray app. pytest-asyncio's
own loop is not used here (an ``async def`` test would run on a loop Qt never spins).
Widget-only checks (validation messages) need no loop at all.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import qasync
from pydantic import SecretStr
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QAbstractButton, QApplication, QLabel, QLineEdit, QMessageBox, QWidget
from pytestqt.qtbot import QtBot
from shiboken6 import isValid
from sqlalchemy.engine import URL, make_url

from epos_bridge.adapters.jsonfile.setup import init_folder
from epos_bridge.adapters.sqlite.setup import init_database
from epos_bridge.adapters.sqlmap import setup as sqlmap_setup
from epos_bridge.adapters.sqlmap.mapping import SHIPPED
from epos_bridge.adapters.sqlmap.mapping import load as load_mapping
from epos_bridge.app import Bridge, demo_settings
from epos_bridge.config import BridgeSettings, KeyStore
from epos_bridge.protocol.dojo import HEADER_SOFTWARE_HOUSE_ID
from epos_bridge.sim.rest import RestSimulator
from epos_bridge.sim.simulator import DEMO_SOFTWARE_HOUSE_ID, DojoSimulator
from epos_bridge.ui.dialogs import FileQuestion
from epos_bridge.ui.settings_dialog import (
    REJECTED_KEY_QUESTION,
    STORED_KEY_TEXT,
    SettingsDialog,
    build_settings_service,
)
from tests.helpers.db_servers import mariadb_server, mariadb_url  # noqa: F401 - fixtures, found by name
from tests.helpers.keyring_backend import RealKeyring
from tests.helpers.mini_till import MiniTill, mini_mapping
from tests.helpers.waiting import until

# See tests/integration/test_settings_service.py: the simulator's str request key warns once.

T = TypeVar("T")


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def run_qt_async(qapp: QApplication) -> Iterator[Callable[[Callable[[], Awaitable[T]]], T]]:
    """Run an async scenario on a qasync loop over pytest-qt's QApplication (module docstring)."""
    # Closing the dialog must not quit the app (and with it the loop), as in the tray app.
    quit_on_close = qapp.quitOnLastWindowClosed()
    qapp.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)

    def run(scenario: Callable[[], Awaitable[T]]) -> T:
        async def bounded() -> T:
            async with asyncio.timeout(60):
                return await scenario()

        return loop.run_until_complete(bounded())

    try:
        yield run
    finally:
        # A failed scenario can leave tasks (a dialog's key test, an HTTP client) pending: finish
        # them on the loop before closing it, so nothing runs later without a loop.
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
        asyncio.set_event_loop(None)
        qapp.setQuitOnLastWindowClosed(quit_on_close)


@pytest.fixture
def api_key() -> str:
    return f"sk_sandbox_{uuid.uuid4().hex}"


def base_settings(tmp_path: Path, **changes: Any) -> BridgeSettings:
    values: dict[str, Any] = {"software_house_id": "house-1", "data_dir": tmp_path / "data"}
    values.update(changes)
    return BridgeSettings.model_validate(values)


def make_dialog(
    qtbot: QtBot, settings: BridgeSettings, keyring: RealKeyring, settings_path: Path, **service_args: Any
) -> SettingsDialog:
    service = build_settings_service(KeyStore(keyring.backend), settings_path, environ={}, **service_args)
    dialog = SettingsDialog(settings, service, ["sqlite"])
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def retype(qtbot: QtBot, edit: QLineEdit, text: str) -> None:
    edit.clear()
    qtbot.keyClicks(edit, text)


# --- validation next to the field (no loop needed) ---------------------------------------------


def test_an_invalid_software_house_id_is_shown_next_to_the_field(
    qtbot: QtBot, real_keyring: RealKeyring, settings_path: Path, tmp_path: Path
) -> None:
    dialog = make_dialog(qtbot, base_settings(tmp_path), real_keyring, settings_path)
    label = dialog.field_errors["software_house_id"]
    assert label.isHidden()
    retype(qtbot, dialog.software_house_edit, "house 7")
    assert label.isVisible()
    assert label.text() == "Software-house-id: must not contain spaces"
    assert dialog.software_house_edit.accessibleDescription() == label.text()
    assert not dialog.save_button.isEnabled()
    assert all(dialog.field_errors[f].isHidden() for f in dialog.field_errors if f != "software_house_id")
    retype(qtbot, dialog.software_house_edit, "house-7")
    assert label.isHidden()
    assert dialog.save_button.isEnabled()


def test_an_insecure_gateway_url_is_shown_next_to_the_field(
    qtbot: QtBot, real_keyring: RealKeyring, settings_path: Path, tmp_path: Path
) -> None:
    dialog = make_dialog(qtbot, base_settings(tmp_path), real_keyring, settings_path)
    retype(qtbot, dialog.ws_url_edit, "ws://gateway.example.test/epos")
    label = dialog.field_errors["ws_url"]
    assert label.isVisible()
    assert label.text().startswith("Gateway URL: must be a wss:// URL")
    assert not dialog.save_button.isEnabled()
    dialog.save_button.click()  # refused: nothing to save while a field is invalid
    assert dialog.isVisible()


def test_a_stored_key_is_never_shown(
    qtbot: QtBot, real_keyring: RealKeyring, settings_path: Path, tmp_path: Path, api_key: str
) -> None:
    settings = base_settings(tmp_path, api_key=SecretStr(api_key), api_key_source="keyring")
    dialog = make_dialog(qtbot, settings, real_keyring, settings_path)
    assert dialog.api_key_edit.text() == ""
    assert dialog.api_key_edit.placeholderText() == STORED_KEY_TEXT
    assert dialog.api_key_edit.echoMode() == QLineEdit.EchoMode.Password
    qtbot.keyClicks(dialog.api_key_edit, "sk_sandbox_typed")
    dialog.show_key_button.click()
    assert dialog.api_key_edit.echoMode() == QLineEdit.EchoMode.Normal  # only what was typed now
    dialog.show_key_button.click()
    assert dialog.api_key_edit.echoMode() == QLineEdit.EchoMode.Password


def test_cancel_changes_nothing(
    qtbot: QtBot, real_keyring: RealKeyring, settings_path: Path, tmp_path: Path, api_key: str
) -> None:
    settings = base_settings(tmp_path)
    dialog = make_dialog(qtbot, settings, real_keyring, settings_path)
    qtbot.keyClicks(dialog.api_key_edit, api_key)
    retype(qtbot, dialog.software_house_edit, "house-2")
    with qtbot.assert_not_emitted(dialog.saved):
        qtbot.keyClick(dialog.software_house_edit, Qt.Key.Key_Escape)
    assert not dialog.isVisible()
    assert dialog.result_settings is None
    assert settings.software_house_id == "house-1"  # the caller's settings were never edited
    assert not settings_path.exists()
    assert real_keyring.stored_api_key() is None


# --- the database is checked before saving -------------------------------------------------------


def test_a_garbage_database_is_named_and_save_is_refused(
    qtbot: QtBot,
    run_qt_async: Callable[[Callable[[], Awaitable[None]]], None],
    real_keyring: RealKeyring,
    settings_path: Path,
    tmp_path: Path,
) -> None:
    garbage = tmp_path / "till-export.db"
    garbage.write_bytes(b"\x00 definitely not sqlite " * 400)
    dialog = make_dialog(qtbot, base_settings(tmp_path), real_keyring, settings_path)

    async def scenario() -> None:
        retype(qtbot, dialog.db_path_edit, str(garbage))
        with qtbot.assert_not_emitted(dialog.saved):
            dialog.save_button.click()
            await until(lambda: dialog.field_errors["db_path"].isVisible(), "the database message")
            await until(lambda: not dialog.busy, "the check to finish")
        message = dialog.field_errors["db_path"].text()
        assert message == f"Database: {garbage} is not a usable SQLite database (it may be damaged or the wrong file)."
        assert dialog.db_path_edit.accessibleDescription() == message
        assert dialog.isVisible()
        assert not dialog.save_button.isEnabled()

    run_qt_async(scenario)
    assert not settings_path.exists()


def test_closing_the_dialog_while_its_database_check_runs_logs_nothing(
    qtbot: QtBot,
    run_qt_async: Callable[[Callable[[], Awaitable[None]]], None],
    real_keyring: RealKeyring,
    settings_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A check still waiting on the POS file (locked, slow disk) when the installer closes the
    dialog is cancelled; it must not touch the dialog's widgets on the way out, which Qt may
    already have deleted (that failed as "Internal C++ object already deleted")."""
    dialog = make_dialog(qtbot, base_settings(tmp_path), real_keyring, settings_path)
    never = asyncio.Event()

    async def still_checking(*_: object) -> str | None:
        await never.wait()
        return None

    monkeypatch.setattr(dialog._service, "check_database", still_checking)

    async def scenario() -> None:
        retype(qtbot, dialog.db_path_edit, str(tmp_path / "other.db"))
        dialog.db_path_edit.editingFinished.emit()  # as leaving the field does
        await until(lambda: dialog.busy, "the database check to start")
        tasks = dialog._tasks
        dialog.close()
        dialog.deleteLater()
        await until(lambda: not isValid(dialog), "Qt to delete the dialog")
        await until(lambda: not tasks, "the cancelled check to finish")

    run_qt_async(scenario)


# --- the Test button against the real REST simulator --------------------------------------------


@pytest.mark.parametrize("right_key", [True, False], ids=["accepted", "rejected"])
def test_the_test_button_reports_dojos_answer_in_words(
    qtbot: QtBot,
    run_qt_async: Callable[[Callable[[], Awaitable[None]]], None],
    real_keyring: RealKeyring,
    settings_path: Path,
    tmp_path: Path,
    api_key: str,
    right_key: bool,
) -> None:
    typed = api_key if right_key else f"sk_sandbox_{uuid.uuid4().hex}"

    async def scenario() -> None:
        async with RestSimulator(api_key, "house-1") as rest:
            settings = base_settings(tmp_path, allow_insecure=True, api_url=rest.base_url)
            dialog = make_dialog(qtbot, settings, real_keyring, settings_path)
            qtbot.keyClicks(dialog.api_key_edit, typed)
            dialog.test_button.click()
            assert dialog.test_result.text() == "Testing…"
            assert not dialog.test_button.isEnabled()  # busy
            await until(lambda: not dialog.busy, "Dojo's answer")
            words = dialog.test_result.text()
            if right_key:
                assert words == "Dojo accepted the key (sandbox): 0 capabilities registered"
            else:
                assert words == "Dojo rejected the key (401). Check it was copied whole."
            assert typed not in words
            assert dialog.test_button.isEnabled()
            assert len(rest.requests_to("GET", "/epos/integrations")) == 1
            assert real_keyring.stored_api_key() is None  # testing stores nothing

    run_qt_async(scenario)


# --- Save reaches the keyring, the file and the running bridge ----------------------------------


@pytest.mark.logs_warnings("a rejected key is logged")
def test_save_stores_the_key_in_the_keyring_and_reconnects_the_running_bridge(
    qtbot: QtBot,
    run_qt_async: Callable[[Callable[[], Awaitable[None]]], None],
    real_keyring: RealKeyring,
    settings_path: Path,
    tmp_path: Path,
    api_key: str,
) -> None:
    venue = tmp_path / "venue"
    venue.mkdir()
    init_database(venue / "demo-venue.db", demo=True, now=datetime.now(UTC))

    async def scenario() -> None:
        async with DojoSimulator(api_key=api_key, software_house_id=DEMO_SOFTWARE_HOUSE_ID) as sim:
            settings = demo_settings(venue, sim.ws_url, sim.api_url, api_key, DEMO_SOFTWARE_HOUSE_ID)
            bridge = Bridge(settings)
            await bridge.start()
            try:
                await sim.gateway.wait_connected()
                before = len(sim.gateway.handshakes)
                dialog = make_dialog(qtbot, bridge.settings, real_keyring, settings_path, apply=bridge.apply_settings)
                qtbot.keyClicks(dialog.api_key_edit, api_key)
                retype(qtbot, dialog.software_house_edit, "house-after-save")
                with qtbot.wait_signal(dialog.saved, timeout=20_000) as saved:
                    qtbot.keyClick(dialog.software_house_edit, Qt.Key.Key_Return)  # Enter = Save
                    await until(lambda: saved.signal_triggered, "the saved signal", timeout=20)
                new = saved.args[0] if saved.args else None
                assert isinstance(new, BridgeSettings)
                assert new.software_house_id == "house-after-save"
                assert not dialog.isVisible()

                # The key is in the real keyring, and nowhere in the settings file.
                assert real_keyring.stored_api_key() == api_key
                text = await asyncio.to_thread(settings_path.read_text, encoding="utf-8")
                assert api_key not in text
                assert json.loads(text)["software_house_id"] == "house-after-save"
                assert all(api_key not in line for line in dialog.save_report)

                # The running session reconnected at once with the new header.
                def new_handshake() -> bool:
                    return any(
                        h.values(HEADER_SOFTWARE_HOUSE_ID) == ["house-after-save"]
                        for h in sim.gateway.handshakes[before:]
                    )

                await until(new_handshake, "a handshake with the new software-house-id", timeout=15)
                assert bridge.settings.software_house_id == "house-after-save"
                assert "Applied now: Dojo connection" in dialog.save_report
            finally:
                await bridge.stop()

    run_qt_async(scenario)


def test_browse_picks_a_folder_for_a_folder_database_and_a_file_otherwise(
    qtbot: QtBot, real_keyring: RealKeyring, settings_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    def choose(_parent: object, question: FileQuestion, answered: Callable[[str, str], None]) -> None:
        asked.append(question.mode)
        answered(str(tmp_path) if question.mode == "folder" else str(tmp_path / "pos.db"), "")

    dialog = make_dialog(qtbot, base_settings(tmp_path), real_keyring, settings_path)
    dialog.file_dialog = choose
    # Only which picker opens is under test here; the database check after it is tested above.
    monkeypatch.setattr(dialog, "_check_database_soon", lambda: None)
    dialog.adapter_combo.addItems(["jsonfile"])  # present whatever the installed list says
    dialog.adapter_combo.setCurrentText("jsonfile")
    dialog.browse_database()
    dialog.adapter_combo.setCurrentText("sqlite")
    dialog.browse_database()
    assert asked == ["folder", "open"]


def test_every_label_shows_its_text_as_text(
    qtbot: QtBot, real_keyring: RealKeyring, settings_path: Path, tmp_path: Path
) -> None:
    """A field's problem or Dojo's answer to Test may carry outside words: shown as text."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QLabel

    dialog = make_dialog(qtbot, base_settings(tmp_path), real_keyring, settings_path)
    retype(qtbot, dialog.ws_url_edit, "ws://gateway.example.test/epos")

    labels = dialog.findChildren(QLabel)
    assert dialog.field_errors["ws_url"] in labels and dialog.test_result in labels
    assert [label.text() for label in labels if label.textFormat() != Qt.TextFormat.PlainText] == []


def test_a_file_database_folder_is_checked_and_saved_through_the_real_dialog(
    qtbot: QtBot,
    run_qt_async: Callable[[Callable[[], Awaitable[None]]], None],
    real_keyring: RealKeyring,
    settings_path: Path,
    tmp_path: Path,
) -> None:
    """The bug this guards: the database check refused every folder, so a jsonfile POS could not
    be saved at all. Every check stays on; the folder is a real file database."""
    folder = tmp_path / "pos-folder"
    init_folder(folder, demo=True, now=datetime.now(UTC))

    async def scenario() -> None:
        service = build_settings_service(KeyStore(real_keyring.backend), settings_path, environ={})
        dialog = SettingsDialog(base_settings(tmp_path), service, service.installed_adapters)
        qtbot.addWidget(dialog)
        dialog.show()
        dialog.adapter_combo.setCurrentText("jsonfile")
        retype(qtbot, dialog.db_path_edit, str(folder))
        qtbot.keyClicks(dialog.api_key_edit, f"sk_sandbox_fake_{uuid.uuid4().hex}")
        await until(lambda: not dialog.busy and dialog.save_button.isEnabled(), "the folder to be checked")
        assert dialog.db_path_edit.accessibleDescription() == ""
        with qtbot.wait_signal(dialog.saved, timeout=20_000) as saved:
            dialog.save_button.click()
            await until(lambda: saved.signal_triggered, "the saved signal", timeout=20)
        new = saved.args[0]
        assert (new.adapter, new.db_path) == ("jsonfile", folder)
        stored = json.loads(await asyncio.to_thread(settings_path.read_text, encoding="utf-8"))
        assert (stored["adapter"], stored["db_path"]) == ("jsonfile", str(folder))

        # A file where the folder should be is named, in words.
        wrong = tmp_path / "not-a-folder.db"
        wrong.write_bytes(b"x")
        assert await service.check_database("jsonfile", wrong) == (
            f"{wrong} is a file; the file database is the folder that holds format.json."
        )
        assert await service.check_database("jsonfile", None) == "Choose the POS database folder."

    run_qt_async(scenario)


def test_the_mapping_row_follows_the_adapter_and_a_typo_in_a_mapping_is_shown_before_save(
    qtbot: QtBot,
    run_qt_async: Callable[[Callable[[], Awaitable[None]]], None],
    real_keyring: RealKeyring,
    settings_path: Path,
    tmp_path: Path,
) -> None:
    """The row appears because the sqlmap factory says it needs a mapping (no name checks), offers
    the shipped ones, and the database check prepares every statement: a typo is named, the
    shipped mapping passes, and Save stores the mapping."""
    pos = tmp_path / "floreant.db"
    sqlmap_setup.init(pos, load_mapping("floreant"), demo=True, now=datetime.now(UTC))
    typo = tmp_path / "typo.toml"
    shipped = (SHIPPED / "floreant.toml").read_text(encoding="utf-8")
    typo.write_text(shipped.replace("f.NAME AS name", "f.NAMEE AS name"), encoding="utf-8")

    async def scenario() -> None:
        service = build_settings_service(KeyStore(real_keyring.backend), settings_path, environ={})
        dialog = SettingsDialog(base_settings(tmp_path), service, service.installed_adapters)
        qtbot.addWidget(dialog)
        dialog.show()
        assert not dialog.mapping_combo.isVisible()
        dialog.adapter_combo.setCurrentText("sqlmap")
        assert dialog.mapping_combo.isVisible()
        assert [dialog.mapping_combo.itemText(i) for i in range(dialog.mapping_combo.count())] == [
            "floreant",
            "floreant_pg",
            "ospos",
            "ospos_mysql",
        ]
        retype(qtbot, dialog.db_path_edit, str(pos))
        dialog.mapping_combo.setEditText(str(typo))
        dialog.test_button.click()
        await until(lambda: not dialog.busy, "the database check")
        shown = dialog.field_errors["db_path"].text()
        assert "floor.areas (for ListAreas)" in shown and "no such column: f.NAMEE" in shown
        dialog.mapping_combo.setCurrentText("floreant")
        qtbot.keyClicks(dialog.api_key_edit, f"sk_sandbox_fake_{uuid.uuid4().hex}")
        with qtbot.wait_signal(dialog.saved, timeout=20_000) as saved:
            dialog.save_button.click()
            await until(lambda: saved.signal_triggered, "the saved signal", timeout=20)
        new = saved.args[0]
        assert (new.adapter, new.db_path, new.mapping) == ("sqlmap", pos, "floreant")
        stored = json.loads(await asyncio.to_thread(settings_path.read_text, encoding="utf-8"))
        assert (stored["adapter"], stored["mapping"]) == ("sqlmap", "floreant")
        dialog.adapter_combo.setCurrentText("sqlite")
        assert not dialog.mapping_combo.isVisible()

    run_qt_async(scenario)


# --- as venue staff meet it (issue 25, item 8) ----------------------------------------------------
# Wide enough that every message reads as a sentence, each problem under the field it is about and
# naming it, no environment variable or command line in anything shown, and a key Dojo rejected on
# Test saved only after an explicit confirmation.

MIN_WIDTH = 560
TECHNICAL = re.compile(
    r"EPOS_BRIDGE_|`epos-bridge|\bepos-bridge (?:db|run|verify|demo|simulate|doctor|capabilities)\b"
    r"|\bdb (?:attach|detach|init)\b|(?<![\w/:.-])--[a-z]"
)


def shown_texts(dialog: QWidget) -> list[str]:
    """Everything staff can read in the dialog: labels, tooltips, placeholders, what a screen
    reader says, and the buttons."""
    texts: list[str] = []
    for widget in [dialog, *dialog.findChildren(QWidget)]:
        if isinstance(widget, QLabel) and widget.isVisible():
            texts.append(widget.text())
        if isinstance(widget, QLineEdit):
            texts.append(widget.placeholderText())
        if isinstance(widget, QAbstractButton) and widget.isVisible():
            texts.append(widget.text())
        texts += [widget.toolTip(), widget.accessibleDescription()]
    return [text for text in texts if text]


def technical(texts: list[str]) -> list[str]:
    return [text for text in texts if TECHNICAL.search(text)]


def visible_errors(dialog: SettingsDialog) -> dict[str, QLabel]:
    return {field: label for field, label in dialog.field_errors.items() if label.isVisible()}


# --- wide enough, each message under its field ---------------------------------------------------


def test_the_dialog_is_wide_enough_that_no_message_is_clipped_or_a_narrow_column(
    qtbot: QtBot, real_keyring: RealKeyring, settings_path: Path, tmp_path: Path
) -> None:
    dialog = make_dialog(qtbot, base_settings(tmp_path), real_keyring, settings_path)
    assert dialog.minimumWidth() >= MIN_WIDTH
    retype(qtbot, dialog.ws_url_edit, "ws://gateway.example.test/epos")  # the longest message
    retype(qtbot, dialog.api_url_edit, "http://api.example.test")
    retype(qtbot, dialog.software_house_edit, "house 7")
    QApplication.processEvents()

    errors = visible_errors(dialog)
    assert set(errors) == {"ws_url", "api_url", "software_house_id"}
    for field, label in errors.items():
        needed = label.heightForWidth(label.width())
        lines = round(needed / label.fontMetrics().lineSpacing())
        assert label.wordWrap(), field
        assert label.height() >= needed, f"{field}'s message is clipped: {label.height()} < {needed} px"
        assert lines <= 3, f"{field}'s message wraps into {lines} lines of {label.width()} px"
    assert dialog.width() >= MIN_WIDTH


def _below(widget: QWidget, label: QLabel, dialog: QWidget) -> bool:
    """``label`` sits right under ``widget``, starting where it starts."""
    field_top_left = widget.mapTo(dialog, QPoint(0, 0))
    label_top_left = label.mapTo(dialog, QPoint(0, 0))
    bottom = field_top_left.y() + widget.height()
    return bottom <= label_top_left.y() <= bottom + 12 and abs(label_top_left.x() - field_top_left.x()) <= 4


def test_each_problem_is_shown_under_its_own_field_and_names_it(
    qtbot: QtBot,
    run_qt_async: Callable[[Callable[[], Awaitable[None]]], None],
    real_keyring: RealKeyring,
    settings_path: Path,
    tmp_path: Path,
) -> None:
    garbage = tmp_path / "till-export.db"
    garbage.write_bytes(b"\x00 definitely not sqlite " * 400)
    dialog = make_dialog(qtbot, base_settings(tmp_path), real_keyring, settings_path)

    async def scenario() -> None:
        retype(qtbot, dialog.software_house_edit, "house 7")
        retype(qtbot, dialog.db_path_edit, str(garbage))
        dialog.db_path_edit.editingFinished.emit()  # as leaving the field does
        await until(lambda: "db_path" in visible_errors(dialog), "the database's message")
        await until(lambda: not dialog.busy, "the check to finish")

    run_qt_async(scenario)
    QApplication.processEvents()
    house = dialog.field_errors["software_house_id"]
    database = dialog.field_errors["db_path"]
    assert house.text() == "Software-house-id: must not contain spaces"
    assert database.text() == (
        f"Database: {garbage} is not a usable SQLite database (it may be damaged or the wrong file)."
    )
    assert _below(dialog.software_house_edit, house, dialog)
    assert _below(dialog.db_path_edit, database, dialog)
    assert dialog.software_house_edit.accessibleDescription() == house.text()
    assert dialog.db_path_edit.accessibleDescription() == database.text()
    assert not dialog.form_error.isVisible()  # nothing collected in a banner at the bottom
    assert not dialog.save_button.isEnabled()


# --- no environment variables or commands in anything staff read -------------------------------


def _sqlite_without_the_reference_schema(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE till_things (id INTEGER PRIMARY KEY)")
    conn.close()
    return path


@pytest.mark.parametrize("allow_insecure", [False, True], ids=["secure-only", "simulator-allowed"])
def test_no_message_shown_to_staff_names_an_environment_variable_or_a_command(
    qtbot: QtBot,
    run_qt_async: Callable[[Callable[[], Awaitable[None]]], None],
    real_keyring: RealKeyring,
    settings_path: Path,
    tmp_path: Path,
    allow_insecure: bool,
) -> None:
    """Every validation error the dialog can show, one after another, each scanned as shown."""
    not_reference = _sqlite_without_the_reference_schema(tmp_path / "other-pos.db")
    reference = tmp_path / "reference.db"
    init_database(reference, demo=False, now=datetime.now(UTC))
    empty_folder = tmp_path / "empty-folder"
    empty_folder.mkdir()
    empty_file = tmp_path / "empty.db"
    empty_file.write_bytes(b"")
    settings = base_settings(
        tmp_path,
        api_key=SecretStr(f"sk_sandbox_{uuid.uuid4().hex}"),
        api_key_source="environment",
        allow_insecure=allow_insecure,
    )
    service = build_settings_service(KeyStore(real_keyring.backend), settings_path, environ={})
    dialog = SettingsDialog(settings, service, service.installed_adapters)
    qtbot.addWidget(dialog)
    dialog.show()
    seen: dict[str, list[str]] = {}

    def look(what: str) -> None:
        QApplication.processEvents()
        seen[what] = shown_texts(dialog)

    edits: list[tuple[str, QLineEdit, str]] = [
        ("software-house-id with a space", dialog.software_house_edit, "house 7"),
        ("reseller-id with a space", dialog.reseller_edit, "res 1"),
        ("plain-text gateway", dialog.ws_url_edit, "ws://gateway.example.test/epos"),
        ("not a gateway URL", dialog.ws_url_edit, "ftp://gateway.example.test"),
        ("plain-text API", dialog.api_url_edit, "http://api.example.test"),
        ("not an API URL", dialog.api_url_edit, "nonsense"),
        ("API key with a space", dialog.api_key_edit, "sk_sandbox_two words"),
    ]
    for what, edit, text in edits:
        before = edit.text()
        retype(qtbot, edit, text)
        look(what)
        assert any(label.isVisible() for label in dialog.field_errors.values()), what
        retype(qtbot, edit, before)

    databases: list[tuple[str, str, Path | None, str]] = [
        ("no database", "sqlite", None, ""),
        ("a folder for a file", "sqlite", empty_folder, ""),
        ("an empty file", "sqlite", empty_file, ""),
        ("another program's SQLite file", "sqlite", not_reference, ""),
        ("a file for a folder", "jsonfile", empty_file, ""),
        ("a folder without the file database", "jsonfile", empty_folder, ""),
        ("no mapping", "sqlmap", reference, ""),
        ("a mapping file that is missing", "sqlmap", reference, str(tmp_path / "missing.toml")),
        ("a POS database not attached to the bridge", "sqlmap", not_reference, "floreant"),
    ]

    async def scenario() -> None:
        for what, adapter, path, mapping in databases:
            dialog.adapter_combo.setCurrentText(adapter)
            retype(qtbot, dialog.db_path_edit, str(path) if path else "")
            if dialog.mapping_combo.isVisible():
                dialog.mapping_combo.setEditText(mapping)
            dialog.save_button.click()  # Save checks the database first
            await until(lambda: dialog.field_errors["db_path"].isVisible(), f"the message for {what}")
            await until(lambda: not dialog.busy, "the check to finish")
            look(what)

    run_qt_async(scenario)
    assert not settings_path.exists()
    found = {what: technical(texts) for what, texts in seen.items() if technical(texts)}
    assert found == {}


def test_a_keyring_that_cannot_keep_the_key_is_named_under_the_key_without_a_variable_name(
    qtbot: QtBot,
    run_qt_async: Callable[[Callable[[], Awaitable[None]]], None],
    settings_path: Path,
    tmp_path: Path,
) -> None:
    import keyring.backends.fail

    reference = tmp_path / "reference.db"
    init_database(reference, demo=False, now=datetime.now(UTC))
    service = build_settings_service(KeyStore(keyring.backends.fail.Keyring()), settings_path, environ={})  # type: ignore[no-untyped-call]
    dialog = SettingsDialog(base_settings(tmp_path, db_path=reference), service, ["sqlite"])
    qtbot.addWidget(dialog)
    dialog.show()

    async def scenario() -> None:
        qtbot.keyClicks(dialog.api_key_edit, f"sk_sandbox_{uuid.uuid4().hex}")
        dialog.save_button.click()
        await until(lambda: dialog.field_errors["api_key"].isVisible(), "the keyring's problem")
        await until(lambda: not dialog.busy, "the save to end")

    run_qt_async(scenario)
    shown = dialog.field_errors["api_key"].text()
    assert shown.startswith("API key: ") and "keyring" in shown
    assert technical(shown_texts(dialog)) == []
    assert dialog.isVisible()


# --- a key Dojo rejected is saved only when the person says so -----------------------------------


def _buttons(box: QMessageBox) -> dict[str, QAbstractButton]:
    return {button.text(): button for button in box.buttons()}


@pytest.mark.logs_warnings("a rejected key is logged")
@pytest.mark.parametrize("answer", ["Cancel", "Save anyway"])
def test_a_key_that_test_rejected_is_saved_only_after_confirmation(
    qtbot: QtBot,
    run_qt_async: Callable[[Callable[[], Awaitable[None]]], None],
    real_keyring: RealKeyring,
    settings_path: Path,
    tmp_path: Path,
    answer: str,
) -> None:
    right_key = f"sk_sandbox_{uuid.uuid4().hex}"
    wrong_key = f"sk_sandbox_{uuid.uuid4().hex}"
    reference = tmp_path / "reference.db"
    init_database(reference, demo=False, now=datetime.now(UTC))
    outcome: dict[str, Any] = {}

    async def scenario() -> None:
        async with RestSimulator(right_key, "house-1") as rest:
            settings = base_settings(tmp_path, allow_insecure=True, api_url=rest.base_url, db_path=reference)
            dialog = make_dialog(qtbot, settings, real_keyring, settings_path)
            outcome["dialog"] = dialog
            qtbot.keyClicks(dialog.api_key_edit, wrong_key)
            dialog.test_button.click()
            await until(lambda: not dialog.busy, "Dojo's answer")
            assert dialog.test_result.text().startswith("Dojo rejected the key (401)")

            with qtbot.assert_not_emitted(dialog.saved):
                dialog.save_button.click()
                await until(lambda: dialog.confirm_box is not None and dialog.confirm_box.isVisible(), "the question")
            box = dialog.confirm_box
            assert box is not None
            assert box.text() == REJECTED_KEY_QUESTION
            assert REJECTED_KEY_QUESTION == (
                "Dojo rejected this key. Save it anyway? Card payments will not work until a valid key is saved."
            )
            assert set(_buttons(box)) == {"Save anyway", "Cancel"}
            assert real_keyring.stored_api_key() is None and not settings_path.exists()  # nothing yet

            if answer == "Cancel":
                with qtbot.assert_not_emitted(dialog.saved):
                    _buttons(box)["Cancel"].click()
                    await until(lambda: dialog.confirm_box is None, "the question to close")
                    await until(lambda: not dialog.busy, "nothing to run")
                assert dialog.isVisible()
                return
            with qtbot.wait_signal(dialog.saved, timeout=20_000) as saved:
                _buttons(box)["Save anyway"].click()
                await until(lambda: saved.signal_triggered, "the saved signal", timeout=20)
            outcome["saved"] = saved.args[0]

    run_qt_async(scenario)
    dialog: SettingsDialog = outcome["dialog"]
    if answer == "Cancel":
        assert dialog.isVisible() and dialog.result_settings is None
        assert real_keyring.stored_api_key() is None
        assert not settings_path.exists()
    else:
        assert not dialog.isVisible()
        assert isinstance(outcome["saved"], BridgeSettings)
        assert real_keyring.stored_api_key() == wrong_key
        assert settings_path.exists()


@pytest.mark.logs_warnings("a rejected key is logged")
def test_a_key_typed_after_a_rejection_is_saved_without_asking(
    qtbot: QtBot,
    run_qt_async: Callable[[Callable[[], Awaitable[None]]], None],
    real_keyring: RealKeyring,
    settings_path: Path,
    tmp_path: Path,
) -> None:
    right_key = f"sk_sandbox_{uuid.uuid4().hex}"
    reference = tmp_path / "reference.db"
    init_database(reference, demo=False, now=datetime.now(UTC))

    async def scenario() -> None:
        async with RestSimulator(right_key, "house-1") as rest:
            settings = base_settings(tmp_path, allow_insecure=True, api_url=rest.base_url, db_path=reference)
            dialog = make_dialog(qtbot, settings, real_keyring, settings_path)
            qtbot.keyClicks(dialog.api_key_edit, f"sk_sandbox_{uuid.uuid4().hex}")
            dialog.test_button.click()
            await until(lambda: not dialog.busy, "Dojo's answer")
            retype(qtbot, dialog.api_key_edit, right_key)  # the person fixed it
            with qtbot.wait_signal(dialog.saved, timeout=20_000) as saved:
                dialog.save_button.click()
                await until(lambda: saved.signal_triggered, "the saved signal", timeout=20)
            assert dialog.confirm_box is None

    run_qt_async(scenario)
    assert real_keyring.stored_api_key() == right_key


def test_a_server_database_shows_its_parts_and_a_password_row_checks_for_real_and_keeps_the_password_in_the_keyring(
    qtbot: QtBot,
    run_qt_async: Callable[[Callable[[], Awaitable[None]]], None],
    real_keyring: RealKeyring,
    settings_path: Path,
    tmp_path: Path,
    mariadb_url: str,  # noqa: F811 - the fixture
) -> None:
    """A POS on MariaDB: the URL without its password, the password typed once; a wrong one is
    named under the database field by the real server; the right one passes and is kept in the
    keyring, never in the settings file."""
    mapping = mini_mapping(tmp_path)
    till = MiniTill(mariadb_url, mapping)
    till.create()
    full = make_url(mariadb_url)
    password = str(full.password)
    without = URL.create(full.drivername, full.username, None, full.host, full.port, full.database).render_as_string()

    async def scenario() -> None:
        service = build_settings_service(KeyStore(real_keyring.backend), settings_path, environ={})
        dialog = SettingsDialog(base_settings(tmp_path), service, service.installed_adapters)
        qtbot.addWidget(dialog)
        dialog.show()
        assert not dialog.db_password_edit.isVisible()
        dialog.adapter_combo.setCurrentText("sqlmap")
        dialog.mapping_combo.setEditText(str(tmp_path / "mini_mysql.toml"))
        retype(qtbot, dialog.db_path_edit, without)
        assert dialog.db_password_edit.isVisible(), (dialog.db_path_edit.text(), dialog.db_server_label.text())
        assert dialog.db_server_label.text() == (
            f"Server {full.host}:{full.port}, database {full.database}, user {full.username}"
        )
        retype(qtbot, dialog.db_password_edit, "not-the-password")
        dialog.test_button.click()
        await until(lambda: not dialog.busy, "the database check")
        shown = dialog.field_errors["db_path"].text()
        assert "refused the bridge's user name or password" in shown and "not-the-password" not in shown
        retype(qtbot, dialog.db_password_edit, password)
        dialog.test_button.click()
        await until(lambda: not dialog.busy, "the database check")
        assert dialog.field_errors["db_path"].isHidden(), dialog.field_errors["db_path"].text()
        qtbot.keyClicks(dialog.api_key_edit, f"sk_sandbox_fake_{uuid.uuid4().hex}")
        with qtbot.wait_signal(dialog.saved, timeout=20_000) as saved:
            dialog.save_button.click()
            await until(lambda: saved.signal_triggered, "the saved signal", timeout=20)
        assert str(saved.args[0].db_path) == without
        text = await asyncio.to_thread(settings_path.read_text, encoding="utf-8")
        assert json.loads(text)["db_path"] == without and password not in text
        assert KeyStore(real_keyring.backend).get_db_password(without) == password

    try:
        run_qt_async(scenario)
    finally:
        till.close()
