"""Params edited on the node itself: a compact form (one row per param) embedded in the node.

The form reuses the properties panel's editors; every change is a Document edit (so undo
covers it and the properties panel follows), and Document signals update the form. NodeGraphQt's
own widget/property system is not used (its spinbox stores strings, and its edits would go to
its own undo stack)."""
from latentloom.app.ui import qtcompat  # noqa: F401  (first: binding work-arounds)
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QGridLayout, QLabel, QPlainTextEdit, QToolButton,
                               QVBoxLayout, QWidget)

from latentloom.app.ui import seeds
from latentloom.app.ui.icons import icon
from latentloom.app.ui.properties import Editor, SeedModeEditor, make_editor

FORM_WIDTH = 250
TEXT_PX = 12           # on-node text, in pixels at 100 % zoom
PREVIEW_CHARS = 36


class TextPreview(Editor):
    """Long text on a node: a one-line preview; the button (or a double-click) opens an editor."""

    def __init__(self, param, parent=None):
        super().__init__(param, parent)
        self.text = ""
        self.preview = QLabel()
        self.preview.setObjectName("preview")
        self.button = QToolButton()
        self.button.setIcon(icon("edit"))
        self.button.setToolTip(f"Edit {param.name}")
        self.layout_.addWidget(self.preview, 1)
        self.layout_.addWidget(self.button)
        self.button.clicked.connect(self.open_editor)

    def mouseDoubleClickEvent(self, event):
        self.open_editor()

    def open_editor(self, accept=None):
        """A dialog with the whole text; accept: a test hook returning the new text or None."""
        if accept is None:
            dialog = QDialog(self.window())
            dialog.setWindowTitle(self.param.name)
            edit = QPlainTextEdit(self.text)
            buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
            buttons.accepted.connect(dialog.accept)
            buttons.rejected.connect(dialog.reject)
            col = QVBoxLayout(dialog)
            col.addWidget(edit)
            col.addWidget(buttons)
            dialog.resize(520, 260)
            new = edit.toPlainText() if dialog.exec() == QDialog.Accepted else None
        else:
            new = accept(self.text)
        if new is not None and new != self.text:
            self.set_value(new)
            self.edited.emit(new, False)
        return new

    def set_value(self, value):
        self.text = str(value)
        line = self.text.replace("\n", " ")
        self.preview.setText(line if len(line) <= PREVIEW_CHARS else line[:PREVIEW_CHARS - 1] + "…")
        self.preview.setToolTip(self.text)

    def value(self):
        return self.text


def node_editor(param, models_dirs):
    return TextPreview(param) if param.kind == "text" else make_editor(param, models_dirs)


class NodeForm(QWidget):
    """The params of one node. edited(name, value, merge); seed_mode_edited(mode) for LatentNoise."""
    edited = Signal(str, object, bool)
    seed_mode_edited = Signal(str)

    def __init__(self, spec, params, models_dirs, ui=None, parent=None, notes=()):
        super().__init__(parent)
        self.setAttribute(Qt.WA_TranslucentBackground)
        self.setObjectName("nodeform")
        self.setStyleSheet("QWidget#nodeform { background: transparent; }")
        font = QFont(self.font())
        font.setPixelSize(TEXT_PX)
        self.setFont(font)
        grid = QGridLayout(self)
        grid.setContentsMargins(6, 2, 6, 4)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(2)
        grid.setColumnStretch(1, 1)
        self.editors, self.seed_mode = {}, None
        for row, p in enumerate(spec.params):
            label = QLabel(p.name)
            label.setToolTip(p.help)
            editor = node_editor(p, models_dirs)
            editor.setObjectName(f"param:{p.name}")
            editor.set_value(params.get(p.name, p.default))
            editor.edited.connect(lambda value, merge, name=p.name: self.edited.emit(name, value, merge))
            grid.addWidget(label, row, 0)
            grid.addWidget(editor, row, 1)
            self.editors[p.name] = editor
        if spec.type == seeds.NOISE_TYPE:
            self.seed_mode = SeedModeEditor()
            self.seed_mode.set_value((ui or {}).get(seeds.UI_KEY) or "fixed")
            self.seed_mode.edited.connect(self.seed_mode_edited)
            grid.addWidget(QLabel("after run"), len(spec.params), 0)
            grid.addWidget(self.seed_mode, len(spec.params), 1)
        if notes:  # read-only lines (a placeholder's original data)
            self.notes = QLabel("\n".join(notes))
            self.notes.setObjectName("notes")
            self.notes.setWordWrap(True)
            self.notes.setStyleSheet("color: #e6c8c8;")
            grid.addWidget(self.notes, len(spec.params) + 1, 0, 1, 2)
        self.setFixedWidth(FORM_WIDTH)
        self.adjustSize()

    def set_value(self, name, value):
        if name in self.editors:
            self.editors[name].set_value(value)
