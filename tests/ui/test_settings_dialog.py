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
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import qasync
from pydantic import SecretStr
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLineEdit
from pytestqt.qtbot import QtBot
from shiboken6 import isValid

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
from epos_bridge.ui.settings_dialog import STORED_KEY_TEXT, SettingsDialog, build_settings_service
from tests.helpers.keyring_backend import RealKeyring
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
    assert label.text() == "must not contain spaces"
    assert dialog.software_house_edit.accessibleDescription() == "must not contain spaces"
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
    assert label.text().startswith("must be a wss:// URL")
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
        assert message == f"{garbage} is not a usable SQLite database (it may be damaged or the wrong file)."
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
        assert [dialog.mapping_combo.itemText(i) for i in range(dialog.mapping_combo.count())] == ["floreant"]
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
