"""Dialogs that never stop the bridge serving: file choosers and confirmations, answered by callback.

Under qasync, asyncio runs *on* Qt's event loop. A modal ``exec()`` — and every static helper built
on it (``QFileDialog.getSaveFileName``, ``QMessageBox.question``/``warning``/``about``,
``QInputDialog.get…``) — spins a nested Qt loop inside whatever callback opened it. When that
callback is an asyncio task step, the nested loop runs other tasks' steps while the first is still
executing; asyncio refuses ("Cannot enter into task … while another task … is being executed") and
the gateway reader, keepalive and POS-event sender stop for good while the window still says
"Connected". So every dialog here is opened with ``open()`` (window-modal, returns at once) and
answers through a callback; ``tests/ui/test_dialogs_keep_serving.py`` keeps it so.

The file chooser is Qt's own (not the platform's): the same code runs on every till and in the
tests, and its built-in warnings (replace an existing file, folder not found), which Qt shows with
a nested ``QMessageBox::warning``, are replaced by :func:`confirm` and the caller's own checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QFileDialog, QMessageBox, QWidget

FileMode = Literal["save", "open", "folder"]
Answered = Callable[[str, str], None]
"""(chosen path, chosen name filter); the path is ``""`` when the person cancelled."""


@dataclass(frozen=True)
class FileQuestion:
    """What a file chooser asks: its title, where it starts (a suggested file or a folder),
    its name filters (``"CSV files (*.csv)"``, ``;;``-separated), and what is chosen."""

    caption: str
    start: str
    filters: str = ""
    mode: FileMode = "save"


FileDialog = Callable[[QWidget, FileQuestion, Answered], object]
"""Ask a :class:`FileQuestion` without blocking; call ``answered`` once, later. Tests inject one
that answers at once; the app uses :func:`ask_file`."""


class FileChooser(QFileDialog):
    """Qt's file dialog, opened with ``open()``, without the checks Qt shows in a nested loop."""

    def __init__(self, parent: QWidget, question: FileQuestion) -> None:
        super().__init__(parent, question.caption, "", question.filters)
        self.question = question
        self._replace_confirmed = False
        options = QFileDialog.Option.DontUseNativeDialog | QFileDialog.Option.ReadOnly
        options |= QFileDialog.Option.DontConfirmOverwrite  # asked by :meth:`accept`, without a nested loop
        if question.mode == "folder":
            options |= QFileDialog.Option.ShowDirsOnly
        self.setOptions(options)
        start = Path(question.start).expanduser() if question.start else Path.home()
        if not start.is_absolute():
            start = Path.home() / start  # a bare suggested name starts in the home folder
        if question.mode == "folder":
            self.setFileMode(QFileDialog.FileMode.Directory)
            self.setDirectory(str(start if start.is_dir() else start.parent))
        else:
            # AnyFile even to open: a typed name that does not exist is the caller's to name (under
            # its field), not Qt's nested "file not found" box.
            self.setFileMode(QFileDialog.FileMode.AnyFile)
            if question.mode == "save":
                self.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
            if start.is_dir():
                self.setDirectory(str(start))
            else:
                self.setDirectory(str(start.parent))
                self.selectFile(start.name)
        self.confirm_box: QMessageBox | None = None

    def accept(self) -> None:
        """Replacing an existing file is confirmed first (non-modal); a missing folder is not chosen."""
        chosen = self.selectedFiles()
        path = Path(chosen[0]) if chosen else None
        if path is not None and self.question.mode == "folder" and not path.is_dir():
            self.setDirectory(str(path.parent if path.parent.is_dir() else Path.home()))
            return
        if (
            path is not None
            and self.question.mode == "save"
            and path.is_file()
            and not self._replace_confirmed
            and self.confirm_box is None
        ):
            self.confirm_box = confirm(
                self,
                self.question.caption,
                f"{path.name} already exists in {path.parent}. Replace it?",
                self._replace,
                yes="Replace",
                on_no=self._keep_choosing,
            )
            return
        super().accept()

    def _replace(self) -> None:
        self._replace_confirmed = True
        self.confirm_box = None
        self.accept()

    def _keep_choosing(self) -> None:
        self.confirm_box = None


def ask_file(parent: QWidget, question: FileQuestion, answered: Answered) -> FileChooser:
    """Open a file chooser over ``parent`` and return at once; ``answered`` gets the outcome."""
    dialog = FileChooser(parent, question)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def finished(result: int) -> None:
        files = dialog.selectedFiles() if result == QDialog.DialogCode.Accepted else []
        answered(files[0] if files else "", dialog.selectedNameFilter())

    dialog.finished.connect(finished)
    dialog.open()
    return dialog


def confirm(
    parent: QWidget,
    title: str,
    text: str,
    on_yes: Callable[[], object],
    *,
    yes: str = "OK",
    no: str = "Cancel",
    on_no: Callable[[], object] | None = None,
    informative: str = "",
) -> QMessageBox:
    """Ask a yes/no question without a nested loop: the box is opened and the answer calls back.
    ``text`` is shown as plain text (it may quote a path or a value from outside)."""
    box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.NoButton, parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    if informative:
        box.setInformativeText(informative)
    yes_button = box.addButton(yes, QMessageBox.ButtonRole.AcceptRole)
    box.addButton(no, QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(yes_button)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def answered(_result: int) -> None:
        if box.clickedButton() is yes_button:
            on_yes()
        elif on_no is not None:
            on_no()

    box.finished.connect(answered)
    box.open()
    return box


def inform(parent: QWidget, title: str, text: str, *, rich: bool = False) -> QMessageBox:
    """A message with an OK button, opened without a nested loop (``QMessageBox.about`` is modal)."""
    box = QMessageBox(QMessageBox.Icon.Information, title, text, QMessageBox.StandardButton.Ok, parent)
    box.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box
