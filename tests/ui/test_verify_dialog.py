"""Verify with Dojo, driven for real: the status window's button opens the dialog over a real
Bridge, the real REST client asks the simulator's EPOS tester tool, and its flows drive that
bridge over the real WebSocket while the dialog shows each step."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import keyring.backends.fail
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QApplication, QPushButton
from pytestqt.qtbot import QtBot

from epos_bridge.app import _demo_bridge
from epos_bridge.config import KeyStore
from epos_bridge.demo_venue import T12_ORDER_ID, TILL_ORDER_ID
from epos_bridge.domain.verification import FlowStatus
from epos_bridge.gateway.connection_state import ConnectionState
from epos_bridge.protocol.base import format_utc
from epos_bridge.protocol.capabilities import Capability, WireMethod
from epos_bridge.protocol.redaction import KnownSecrets
from epos_bridge.sim import flows
from epos_bridge.sim.simulator import DojoSimulator
from epos_bridge.sim.tester import CheckFailed, FlowContext, SimFlow, SimParam
from epos_bridge.ui.dialogs import FileQuestion
from epos_bridge.ui.gui import GuiParts, run_gui
from epos_bridge.ui.settings_dialog import SettingsDialog, build_settings_service
from epos_bridge.ui.verify_dialog import VerifyDialog, open_verify
from tests.ui.conftest import Gui, Run

WAIT_MS = 20_000


def open_from_the_connection_tab(gui: Gui, qtbot: QtBot, **options: Any) -> VerifyDialog:
    """As the tray app wires it (``ui/gui.py``): the button asks, ``open_verify`` answers."""
    gui.window.verify_requested.connect(lambda: open_verify(gui.window, gui.bridge, **options))
    gui.window.show()
    qtbot.mouseClick(gui.window.connection_tab.verify_button, Qt.MouseButton.LeftButton)
    dialog = gui.window.findChild(VerifyDialog)
    assert isinstance(dialog, VerifyDialog)
    return dialog


def loaded(gui: Gui, qtbot: QtBot, flows: int = 8, **options: Any) -> VerifyDialog:
    dialog = open_from_the_connection_tab(gui, qtbot, **options)
    qtbot.waitUntil(lambda: dialog.flow_list.count() == flows, timeout=WAIT_MS)

    def picked() -> bool:  # both kinds of picker are filled from the POS
        pickers = [
            dialog.form("Get Order").fields["orderId"].picker,
            dialog.form("Pay at Table").fields["tableId"].picker,
        ]
        return all(picker is not None and picker.count() > 0 for picker in pickers)

    qtbot.waitUntil(picked, timeout=WAIT_MS)
    return dialog


def select(dialog: VerifyDialog, name: str) -> None:
    names = [dialog.flow_list.item(row).text().split("\n")[0] for row in range(dialog.flow_list.count())]
    dialog.flow_list.setCurrentRow(names.index(name))


def run_selected(dialog: VerifyDialog, qtbot: QtBot) -> list[Any]:
    return run_and_refresh(dialog, qtbot, dialog.run_button)


def run_and_refresh(dialog: VerifyDialog, qtbot: QtBot, button: QPushButton, timeout: int = WAIT_MS) -> list[Any]:
    """Click Run (or Run all) and wait until the flows ended and the pickers were read again
    from the POS, so nothing of the dialog is still asking the POS when the bridge stops."""
    with (
        qtbot.wait_signal(dialog.choices_loaded, timeout=timeout),
        qtbot.wait_signal(dialog.run_finished, timeout=timeout) as finished,
    ):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    runs: list[Any] = finished.args[0]
    return runs


def test_the_connection_tab_opens_the_flows_as_a_form_with_pos_pickers(
    start_gui: Callable[..., Gui], qtbot: QtBot
) -> None:
    gui = start_gui()
    dialog = loaded(gui, qtbot)

    assert dialog.isVisible()
    assert dialog.flow_status_text("Get Order") == "Get Order\n    not run"
    assert dialog.venue_edit.text() == "The Copper Kettle"  # as the POS's bills print it
    assert "(sandbox)" in dialog.where_label.text()
    order = dialog.form("Get Order").fields["orderId"]
    assert order.picker is not None and order.picker.count() >= 10  # the demo's open orders
    assert order.text == order.picker.itemData(0)  # the best choice is picked
    assert "to pay" in order.picker.itemText(0)
    table = dialog.form("Pay at Table").fields["tableId"]
    assert table.picker is not None and "to pay" in table.picker.currentText()
    assert table.text == table.picker.itemData(0)
    parts = dialog.form("Pay at Table").fields["parts"]
    assert parts.text == "2"  # the default from the flow description
    labels = [label.text() for label in dialog.form("Pay at Table").findChildren(type(dialog.banner))]
    assert "tableId * (string):" in labels and "parts (integer):" in labels
    assert dialog.run_button.isEnabled() and dialog.run_all_button.isEnabled()
    assert not dialog.report_button.isEnabled()  # nothing to report yet


def test_run_one_flow_shows_every_step_and_its_outcome(start_gui: Callable[..., Gui], qtbot: QtBot) -> None:
    gui = start_gui()
    dialog = loaded(gui, qtbot)
    select(dialog, "Lock Conflict")

    (run,) = run_selected(dialog, qtbot)

    assert run.status is FlowStatus.SUCCESS, run.why_not()
    assert dialog.flow_status_text("Lock Conflict") == "Lock Conflict\n    SUCCESS"
    rows = dialog.step_rows()
    assert [(name, status) for name, status, _ in rows] == [
        ("Lock the order (lock A)", "SUCCESS"),
        ("Lock it again under another lock id (Conflict expected)", "SUCCESS"),
        ("Unlock lock A", "SUCCESS"),
        ("Lock under the other lock id, now that the order is free", "SUCCESS"),
        ("Unlock lock B", "SUCCESS"),
    ]
    assert "answered Conflict, as expected" in rows[1][2]
    assert dialog.summary_label.text().startswith("Lock Conflict through EPOS Data API: SUCCESS")
    assert dialog.report_button.isEnabled()


def test_steps_appear_live_while_dojo_runs_the_flow(
    start_gui: Callable[..., Gui], simulator: DojoSimulator, qtbot: QtBot
) -> None:
    """The flow is held mid-way (the bridge's answer to UpdatePartyV1 waits), so what the dialog
    shows while it runs is what Dojo reported so far, however fast the machine is."""
    gui = start_gui()
    dialog = loaded(gui, qtbot)
    gate = asyncio.Event()
    request = simulator.gateway.request

    async def held(method: str, params: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
        if method == "UpdatePartyV1":
            await gate.wait()
        return await request(method, params, **options)

    simulator.gateway.request = held  # type: ignore[method-assign]
    select(dialog, "Bookings")
    qtbot.mouseClick(dialog.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.step_rows()[-1:] == [("The guests order", "running…", "")], timeout=WAIT_MS)

    assert dialog.flow_status_text("Bookings") == "Bookings\n    running…"
    assert not dialog.run_button.isEnabled() and not dialog.run_all_button.isEnabled()
    rows = dialog.step_rows()
    assert rows[0][:2] == ("Find a table to book", "SUCCESS")  # tableId is optional: left to the flow
    assert all(status == "SUCCESS" for _, status, _ in rows[:-1])
    with (
        qtbot.wait_signal(dialog.choices_loaded, timeout=WAIT_MS),
        qtbot.wait_signal(dialog.run_finished, timeout=WAIT_MS),
    ):
        gate.set()
    assert dialog.flow_status_text("Bookings") == "Bookings\n    SUCCESS"
    assert dialog.step_rows()[-1][:2] == ("The cancelled booking is gone (NotFound expected)", "SUCCESS")


def test_run_all_then_save_the_report_as_html_and_pdf(
    start_gui: Callable[..., Gui], qtbot: QtBot, tmp_path: Path
) -> None:
    gui = start_gui()
    answers = iter([(str(tmp_path / "kettle.html"), "HTML (*.html)"), (str(tmp_path / "kettle"), "PDF (*.pdf)")])
    asked: list[str] = []

    def choose(_parent: object, question: FileQuestion, answered: Callable[[str, str], None]) -> None:
        asked.append(question.start)
        answered(*next(answers))

    dialog = loaded(gui, qtbot, file_dialog=choose)
    runs = run_and_refresh(dialog, qtbot, dialog.run_all_button, timeout=60_000)

    assert len(runs) == 8
    assert all(run.status is FlowStatus.SUCCESS for run in runs), [run.why_not() for run in runs]
    assert "Done: 8 flows, succeeded" in dialog.banner.text()

    with qtbot.wait_signal(dialog.report_saved, timeout=WAIT_MS) as saved:
        qtbot.mouseClick(dialog.report_button, Qt.MouseButton.LeftButton)
    assert saved.args == [str(tmp_path / "kettle.html")]
    assert dialog.banner.text() == f"Report saved to {tmp_path / 'kettle.html'}"  # the installer sees where
    assert asked[0].startswith("dojo-verification-the-copper-kettle-") and asked[0].endswith(".html")
    page = (tmp_path / "kettle.html").read_text(encoding="utf-8")
    for expected in (
        "The Copper Kettle",
        "All 8 flows succeeded",
        "Pay at Table through EPOS Data API",
        "Unlock the order",
    ):
        assert expected in page
    assert gui.bridge.settings.software_house_id in page  # type: ignore[operator]

    with qtbot.wait_signal(dialog.report_saved, timeout=WAIT_MS) as saved:
        qtbot.mouseClick(dialog.report_button, Qt.MouseButton.LeftButton)
    assert saved.args == [str(tmp_path / "kettle.pdf")]
    assert dialog.banner.text() == f"Report saved to {tmp_path / 'kettle.pdf'}"
    assert (tmp_path / "kettle.pdf").read_bytes().startswith(b"%PDF")


def test_a_capability_that_is_not_registered_fails_with_dojos_words(
    start_gui: Callable[..., Gui], simulator: DojoSimulator, qtbot: QtBot
) -> None:
    gui = start_gui()
    dialog = loaded(gui, qtbot)
    simulator.rest.set_registered_names([c.value for c in Capability if c is not Capability.GET_ORDER_BY_ID])
    select(dialog, "Get Order")

    (run,) = run_selected(dialog, qtbot)

    assert run.status is FlowStatus.FAILURE
    assert dialog.flow_status_text("Get Order") == "Get Order\n    FAILURE"
    ((name, status, information),) = dialog.step_rows()
    assert (name, status) == ("Get the order by its id", "FAILURE")
    assert information == "GetOrder method not found\nPlease register the GetOrder method on an EPOS Data API adapter"
    assert "GetOrder method not found" in dialog.summary_label.text()


def test_a_required_value_left_empty_is_named_beside_the_field(start_gui: Callable[..., Gui], qtbot: QtBot) -> None:
    gui = start_gui()
    dialog = loaded(gui, qtbot)
    select(dialog, "Pay at Table")
    form = dialog.form("Pay at Table")
    form.fields["tableId"].set_text("")
    assert form.fields["tableId"].picker is not None
    form.fields["tableId"].picker.setEditText("")

    with qtbot.assert_not_emitted(dialog.run_finished, wait=200):
        qtbot.mouseClick(dialog.run_button, Qt.MouseButton.LeftButton)

    assert form.fields["tableId"].error.text() == "tableId is required"
    assert form.fields["tableId"].error.isVisible()


def test_text_from_dojo_is_shown_as_plain_text(
    start_gui: Callable[..., Gui], simulator: DojoSimulator, qtbot: QtBot
) -> None:
    async def shouting(ctx: FlowContext, params: dict[str, str]) -> None:
        def check(result: Any) -> list[str]:
            raise CheckFailed("<b>not bold</b> <a href='http://example.invalid'>not a link</a>")

        await ctx.call("<i>Areas</i>", WireMethod.LIST_AREAS, {}, check=check)

    simulator.tester.flows["Markup"] = SimFlow("Markup", (), shouting)
    gui = start_gui()
    dialog = loaded(gui, qtbot, flows=9)
    select(dialog, "Markup")
    run_selected(dialog, qtbot)

    assert dialog.summary_label.textFormat() == Qt.TextFormat.PlainText
    assert "<b>not bold</b>" in dialog.summary_label.text()
    ((name, _, information),) = dialog.step_rows()
    assert name == "<i>Areas</i>" and information.startswith("<b>not bold</b>")


@pytest.mark.parametrize("status", [403, 404])
def test_an_account_without_the_tester_tool_is_told_plainly(
    start_gui: Callable[..., Gui], simulator: DojoSimulator, qtbot: QtBot, status: int
) -> None:
    simulator.tester.refuse(status)
    gui = start_gui()
    dialog = open_from_the_connection_tab(gui, qtbot)
    with qtbot.wait_signal(dialog.unavailable, timeout=WAIT_MS) as told:
        pass
    assert told.args[0].startswith("Dojo has not enabled the EPOS tester tool for this key")
    assert dialog.banner.text() == told.args[0]
    assert not dialog.run_button.isEnabled() and not dialog.run_all_button.isEnabled()


@pytest.mark.logs_warnings("a rejected key is logged")
def test_a_production_key_explains_why_verifying_is_off_and_asks_dojo_nothing(
    start_gui: Callable[..., Gui], simulator: DojoSimulator, qtbot: QtBot
) -> None:
    gui = start_gui(wait_connected=False, api_key="sk_prod_FakeKeyForTests_not_real")
    dialog = open_from_the_connection_tab(gui, qtbot)
    assert "off for production keys" in dialog.banner.text()
    assert "create orders and record payments" in dialog.banner.text()
    assert not dialog.run_all_button.isEnabled()
    assert not [r for r in simulator.rest.requests if r.path.startswith("/epos-tester-tool")]


def test_a_second_click_brings_the_open_dialog_forward(start_gui: Callable[..., Gui], qtbot: QtBot) -> None:
    gui = start_gui()
    first = loaded(gui, qtbot)
    qtbot.mouseClick(gui.window.connection_tab.verify_button, Qt.MouseButton.LeftButton)
    assert gui.window.findChildren(VerifyDialog) == [first]
    first.close()


def test_settings_offers_verify_after_a_successful_test_when_nothing_is_unsaved(
    start_gui: Callable[..., Gui], qtbot: QtBot, tmp_path: Path
) -> None:
    gui = start_gui()
    service = build_settings_service(
        KeyStore(keyring.backends.fail.Keyring()),  # type: ignore[no-untyped-call]
        tmp_path / "settings.json",
        environ={},
    )
    dialog = SettingsDialog(gui.bridge.settings, service, ["sqlite"], can_verify=True)
    qtbot.addWidget(dialog)
    dialog.show()
    assert not dialog.verify_button.isVisible()

    dialog.test_button.click()
    qtbot.waitUntil(lambda: dialog.verify_button.isVisible(), timeout=WAIT_MS)
    assert dialog.verify_button.isEnabled()

    qtbot.keyClicks(dialog.software_house_edit, "-edited")
    assert not dialog.verify_button.isEnabled()
    assert dialog.verify_button.toolTip().startswith("Save first")
    dialog.software_house_edit.setText(gui.bridge.settings.software_house_id or "")
    assert dialog.verify_button.isEnabled()

    with qtbot.wait_signal(dialog.verify_requested, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.verify_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()


def test_the_demo_verifies_against_its_simulator_from_the_tray_app(qapp: QApplication, tmp_path: Path) -> None:
    """``epos-bridge demo`` as composed by the app: the Connection tab's button, a flow run
    against the demo's simulator, then Quit while a second flow is still running."""
    seen: dict[str, Any] = {}

    async def until(condition: Callable[[], bool]) -> None:
        while not condition():  # noqa: ASYNC110 - widget and bridge state have no asyncio.Event
            await asyncio.sleep(0.02)

    def started(parts: GuiParts) -> None:
        async def verify_then_quit() -> None:
            try:
                async with asyncio.timeout(30):
                    await until(lambda: parts.signals.status.state is ConnectionState.CONNECTED)
                    await until(lambda: parts.bridge.registration.at is not None)
                    parts.window.connection_tab.verify_button.click()
                    dialog = parts.window.findChild(VerifyDialog)
                    assert isinstance(dialog, VerifyDialog)
                    await until(lambda: dialog.run_button.isEnabled())
                    picker = dialog.form("Get Order").fields["orderId"].picker
                    await until(lambda: picker is not None and picker.count() > 0)  # filled from the POS
                    done = asyncio.Event()
                    dialog.run_finished.connect(lambda runs: (seen.setdefault("runs", runs), done.set()))
                    select(dialog, "Get Order")
                    dialog.run_button.click()
                    await done.wait()
                    select(dialog, "Pay at Table")
                    dialog.run_button.click()  # still running when the app quits
                    seen["running"] = not dialog.run_button.isEnabled()
            except BaseException as exc:
                seen["error"] = exc
                raise
            finally:
                parts.quit()

        seen["task"] = asyncio.get_running_loop().create_task(verify_then_quit())

    folder = tmp_path / "demo"
    folder.mkdir()
    code = run_gui(
        lambda: _demo_bridge(folder, 3600.0, KnownSecrets()),
        demo=True,
        on_started=started,
        settings_path=folder / "s.json",
    )

    assert "error" not in seen, seen.get("error")
    assert code == 0
    (run,) = seen["runs"]
    assert run.status is FlowStatus.SUCCESS, run.why_not()
    assert seen["running"]


# --- the defaults pass on the demo, whatever the evening has done to it (issue 25, item 8) --------

DEMO_DB = "demo-venue.db"


def _a_till_has_the_first_order_open_and_a_terminal_holds_the_next(
    venue: Path, simulator: DojoSimulator, run: Run
) -> set[str]:
    """Staff edit T12's part-paid order on TILL-1 (as a till claims it: reference-schema.md), and
    a Pay at Table terminal holds T12's other order: neither can be locked by a flow now."""
    with sqlite3.connect(venue / DEMO_DB) as conn:
        conn.execute(
            "UPDATE orders SET open_at_till = 'TILL-1', updated_at = ? WHERE id = ?",
            (format_utc(datetime.now(UTC)), T12_ORDER_ID),
        )
    conn.close()
    held = str(T12_ORDER_ID + 1)
    answer = run(
        simulator.send(
            WireMethod.CREATE_ORDER_LOCK.value,
            {
                "headers": {"dojoRequestingProduct": "PayAtTable", "deviceId": "terminal-7", "deviceType": "terminal"},
                "orderId": held,
                "lockId": "lock_terminal_7",
                "expiry": format_utc(datetime.now(UTC) + timedelta(minutes=10)),
            },
        )
    )
    assert "error" not in answer, answer
    return {str(T12_ORDER_ID), held}


def _the_products_settled_every_order_ahead_of_the_one_open_at_a_till(
    venue: Path, simulator: DojoSimulator, run: Run
) -> set[str]:
    """What ``./dev demo`` looks like after a few minutes: the simulated products have paid the
    tables one by one, until the first open order left is the one TILL-2 has open."""

    async def settle() -> None:
        for table in ("T12", "T12", "T5", "T15", "B2", "T8", "T3", "T17", "B1"):
            async with simulator.products:
                report = await flows.pay_at_table(simulator.send, table_id=table)
            assert report.ok and report.payments, (table, report.error, report.steps)

    run(settle(), timeout=60)
    return {str(TILL_ORDER_ID)}


@pytest.mark.parametrize(
    "evening",
    [
        _a_till_has_the_first_order_open_and_a_terminal_holds_the_next,
        _the_products_settled_every_order_ahead_of_the_one_open_at_a_till,
    ],
    ids=["till-and-terminal-hold-the-first", "after-an-evening-of-payments"],
)
def test_the_defaults_pass_on_the_demo_choosing_only_orders_a_flow_can_lock(
    start_gui: Callable[..., Gui],
    simulator: DojoSimulator,
    venue: Path,
    run: Run,
    qtbot: QtBot,
    evening: Callable[[Path, DojoSimulator, Run], set[str]],
) -> None:
    gui = start_gui()
    held = evening(venue, simulator, run)
    dialog = loaded(gui, qtbot)

    picked = {name: form.values() for name, form in ((f.name, dialog.form(f.name)) for f in dialog._flows)}
    for name in ("Get Order", "Get Order Bill", "Lock Conflict"):
        assert picked[name]["orderId"] not in held, (name, picked[name])
    with sqlite3.connect(venue / DEMO_DB) as conn:
        at_table = {
            str(order_id)
            for (order_id,) in conn.execute(
                "SELECT id FROM orders WHERE table_id = ? AND status NOT IN ('Finalized', 'Canceled')",
                (picked["Pay at Table"]["tableId"],),
            )
        }
    conn.close()
    assert not at_table & held, (picked["Pay at Table"], held)

    runs = run_and_refresh(dialog, qtbot, dialog.run_all_button, timeout=90_000)
    assert len(runs) == 8
    assert {run.name: run.why_not() for run in runs if run.status is not FlowStatus.SUCCESS} == {}

    # Choosing left nothing behind: only the terminal's own lock is held in the POS.
    with sqlite3.connect(venue / DEMO_DB) as conn:
        locks = [lock_id for (lock_id,) in conn.execute("SELECT lock_id FROM order_locks")]
    conn.close()
    assert [lock for lock in locks if lock != "lock_terminal_7"] == []


# --- tooltips made of Dojo's words are plain text -------------------------------------------------

MARKUP = '<b>bold</b> <img src=x> <a href="https://evil.example/">a link</a>'


def _rendered(tooltip: str) -> str:
    document = QTextDocument()
    document.setHtml(tooltip)
    return document.toPlainText()


def test_tooltips_made_of_dojos_words_show_them_literally(
    start_gui: Callable[..., Gui], simulator: DojoSimulator, qtbot: QtBot
) -> None:
    """A parameter's description and Dojo's ``additionalInformation`` (shown in the flow's tooltip
    when it fails) render as the characters Dojo sent; a flow that passed has no empty bubble."""

    async def refused(ctx: FlowContext, params: dict[str, str]) -> None:
        def check(result: Any) -> list[str]:
            raise CheckFailed(MARKUP)

        await ctx.call("Areas", WireMethod.LIST_AREAS, {}, check=check)

    async def passes(ctx: FlowContext, params: dict[str, str]) -> None:
        await ctx.call("Areas", WireMethod.LIST_AREAS, {}, check=lambda result: [])

    simulator.tester.flows["Markup"] = SimFlow("Markup", (SimParam("note", MARKUP, required=False),), refused)
    simulator.tester.flows["Plain"] = SimFlow("Plain", (), passes)
    gui = start_gui()
    dialog = loaded(gui, qtbot, flows=10)

    note = dialog.form("Markup").fields["note"]
    assert _rendered(note.widget.toolTip()) == MARKUP
    assert note.widget.toolTip().startswith("<")  # rich text that escapes the words, not the words as HTML
    select(dialog, "Markup")
    (run,) = run_selected(dialog, qtbot)
    assert run.status is FlowStatus.FAILURE
    item = dialog.flow_list.item(dialog.flow_list.currentRow())
    assert MARKUP in _rendered(item.toolTip())

    select(dialog, "Plain")
    (run,) = run_selected(dialog, qtbot)
    assert run.status is FlowStatus.SUCCESS
    assert dialog.flow_list.item(dialog.flow_list.currentRow()).toolTip() == ""
