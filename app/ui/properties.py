"""The properties panel: the selected node's params in widgets that match their spec."""
from latentloom.app.ui import qtcompat  # noqa: F401  (first: binding work-arounds)
import random
from pathlib import Path

from PySide6.QtCore import QRegularExpression, QSignalBlocker, Qt, Signal
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QHBoxLayout, QLabel,
                               QLineEdit, QPlainTextEdit, QScrollArea, QSpinBox, QToolButton, QVBoxLayout,
                               QWidget)

from latentloom.app.engine.files import FOLDERS
from latentloom.app.formats import placeholders
from latentloom.app.ui import seeds
from latentloom.app.ui.icons import icon
from latentloom.app.ui.models import has_picker, list_models

INT_LIMIT = 2**31 - 1


class Editor(QWidget):
    """One param's widget. Emits edited(value, merge) when the user changes it."""
    edited = Signal(object, bool)

    def __init__(self, param, parent=None):
        super().__init__(parent)
        self.param = param
        self.layout_ = QHBoxLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)

    def set_value(self, value):
        raise NotImplementedError

    def value(self):
        raise NotImplementedError


class IntEditor(Editor):
    def __init__(self, param, parent=None):
        super().__init__(param, parent)
        self.box = QSpinBox()
        lo, hi = param.bounds()
        self.box.setRange(int(max(-INT_LIMIT, lo if lo is not None else -INT_LIMIT)),
                          int(min(INT_LIMIT, hi if hi is not None else INT_LIMIT)))
        self.box.setSingleStep(int(param.step or 1))
        self.box.setKeyboardTracking(False)
        self.layout_.addWidget(self.box)
        self.box.valueChanged.connect(lambda v: self.edited.emit(int(v), True))

    def set_value(self, value):
        if isinstance(value, int) and not isinstance(value, bool):
            with QSignalBlocker(self.box):
                self.box.setValue(value)

    def value(self):
        return self.box.value()


class FloatEditor(Editor):
    def __init__(self, param, parent=None):
        super().__init__(param, parent)
        self.box = QDoubleSpinBox()
        step = param.step or 0.01
        text = f"{step:.6f}".rstrip("0")
        self.box.setDecimals(max(2, len(text.split(".")[1]) if "." in text else 0))
        lo, hi = param.bounds()
        self.box.setRange(lo if lo is not None else -1e9, hi if hi is not None else 1e9)
        self.box.setSingleStep(step)
        self.box.setKeyboardTracking(False)
        self.layout_.addWidget(self.box)
        self.box.valueChanged.connect(lambda v: self.edited.emit(round(float(v), self.box.decimals()), True))

    def set_value(self, value):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            with QSignalBlocker(self.box):
                self.box.setValue(float(value))

    def value(self):
        return self.box.value()


class BoolEditor(Editor):
    def __init__(self, param, parent=None):
        super().__init__(param, parent)
        self.box = QCheckBox()
        self.layout_.addWidget(self.box)
        self.box.toggled.connect(lambda v: self.edited.emit(bool(v), False))

    def set_value(self, value):
        with QSignalBlocker(self.box):
            self.box.setChecked(bool(value))

    def value(self):
        return self.box.isChecked()


class StringEditor(Editor):
    def __init__(self, param, parent=None):
        super().__init__(param, parent)
        self.line = QLineEdit()
        self.layout_.addWidget(self.line)
        self.line.textEdited.connect(lambda t: self.edited.emit(t, True))

    def set_value(self, value):
        if str(value) != self.line.text():
            with QSignalBlocker(self.line):
                self.line.setText(str(value))

    def value(self):
        return self.line.text()


class TextEditor(Editor):
    """Multi-line text (prompts)."""

    def __init__(self, param, parent=None):
        super().__init__(param, parent)
        self.text = QPlainTextEdit()
        self.text.setTabChangesFocus(True)
        self.text.setFixedHeight(96)
        self.layout_.addWidget(self.text)
        self.text.textChanged.connect(lambda: self.edited.emit(self.text.toPlainText(), True))

    def set_value(self, value):
        if str(value) != self.text.toPlainText():
            with QSignalBlocker(self.text):
                self.text.setPlainText(str(value))

    def value(self):
        return self.text.toPlainText()


class ChoiceEditor(Editor):
    def __init__(self, param, parent=None):
        super().__init__(param, parent)
        self.box = QComboBox()
        for c in param.choices:
            self.box.addItem(str(c), c)
        self.layout_.addWidget(self.box)
        self.box.currentIndexChanged.connect(lambda i: self.edited.emit(self.box.itemData(i), False))

    def set_value(self, value):
        i = self.box.findData(value)
        with QSignalBlocker(self.box):
            if i < 0:  # an invalid value from a file: show it, the run reports it
                self.box.addItem(f"{value} (invalid)", value)
                i = self.box.count() - 1
            self.box.setCurrentIndex(i)

    def value(self):
        return self.box.currentData()


class SeedEditor(Editor):
    """A seed field and a "new random seed" button."""

    def __init__(self, param, parent=None):
        super().__init__(param, parent)
        self.line = QLineEdit()
        self.line.setValidator(QRegularExpressionValidator(QRegularExpression(r"\d{0,20}")))
        self.dice = QToolButton()
        self.dice.setIcon(icon("dice"))
        self.dice.setToolTip("New random seed")
        self.layout_.addWidget(self.line, 1)
        self.layout_.addWidget(self.dice)
        self.line.textEdited.connect(self._typed)
        self.dice.clicked.connect(self.randomize)

    def _typed(self, text):
        lo, hi = self.param.bounds()
        if text and lo <= int(text) <= hi:
            self.line.setStyleSheet("")
            self.edited.emit(int(text), True)
        else:
            self.line.setStyleSheet("QLineEdit { border: 1px solid #d44; }")

    def randomize(self):
        lo, hi = self.param.bounds()
        seed = random.randint(int(lo), int(min(hi, seeds.SEED_RANDOM_MAX)))
        self.set_value(seed)
        self.edited.emit(seed, False)
        return seed

    def set_value(self, value):
        if str(value) != self.line.text():
            with QSignalBlocker(self.line):
                self.line.setText(str(value))
                self.line.setStyleSheet("")

    def value(self):
        return int(self.line.text() or 0)


class SeedModeEditor(QWidget):
    """Seed after run: fixed, increment or randomize (kept in the node's UI data)."""
    edited = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.box = QComboBox()
        self.box.addItems(seeds.MODES)
        self.box.setToolTip("What the seed does after each run")
        row.addWidget(self.box)
        self.box.currentTextChanged.connect(self.edited.emit)

    def set_value(self, mode):
        with QSignalBlocker(self.box):
            self.box.setCurrentText(mode)

    def value(self):
        return self.box.currentText()


class FileEditor(Editor):
    """A path: a dropdown of the files in the models folders for model params (with refresh),
    and a file picker (Browse…) that starts in the param's models sub-folder."""

    def __init__(self, param, models_dirs, parent=None):
        super().__init__(param, parent)
        self.models_dirs = models_dirs  # callable -> list of folders
        self.picker = has_picker(param)
        if self.picker:
            self.combo = QComboBox()
            self.combo.setEditable(True)
            self.combo.setInsertPolicy(QComboBox.NoInsert)
            self.combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            self.combo.setMinimumContentsLength(8)
            self.line = self.combo.lineEdit()
            self.layout_.addWidget(self.combo, 1)
            self.refresh_button = QToolButton()
            self.refresh_button.setIcon(icon("refresh"))
            self.refresh_button.setToolTip(f"List the files in the models folders again ({param.folder})")
            self.refresh_button.clicked.connect(self.refresh)
            self.layout_.addWidget(self.refresh_button)
            self.combo.activated.connect(lambda i: self.edited.emit(self.combo.itemText(i), False))
        else:
            self.line = QLineEdit()
            self.layout_.addWidget(self.line, 1)
        self.line.setPlaceholderText("(none)" if param.optional else f"a file in {param.folder}")
        self.browse = QToolButton()
        self.browse.setIcon(icon("file"))
        self.browse.setText("Browse…")
        self.browse.setToolTip(f"Browse for a file ({param.folder})")
        self.layout_.addWidget(self.browse)
        if param.folder == "checkpoints":  # diffusers checkpoints are folders
            self.folder = QToolButton()
            self.folder.setIcon(icon("folder"))
            self.folder.setToolTip("Choose a diffusers model folder")
            self.layout_.addWidget(self.folder)
            self.folder.clicked.connect(lambda: self.pick(directory=True))
        self.line.textEdited.connect(lambda t: self.edited.emit(t, True))
        self.browse.clicked.connect(lambda: self.pick())
        if self.picker:
            self.refresh()

    def choices(self):
        return [self.combo.itemText(i) for i in range(self.combo.count())] if self.picker else []

    def refresh(self):
        """List the models folders again, keeping the value as it is."""
        if not self.picker:
            return []
        current = self.line.text()
        names = list_models(self.models_dirs(), self.param.folder, self.param.extensions)
        with QSignalBlocker(self.combo):
            self.combo.clear()
            self.combo.addItems(names)
            self.combo.setEditText(current)
        return names

    def roots(self):
        """Where files of this param live: <models>/<sub> for each models folder, then the folders."""
        out = []
        for d in self.models_dirs():
            d = Path(d).expanduser()
            out += [d / sub for sub in FOLDERS.get(self.param.folder, ())] + [d]
        return out

    def start_dir(self):
        current = self.line.text()
        if current and Path(current).is_absolute() and Path(current).parent.is_dir():
            return str(Path(current).parent)
        return str(next((r for r in self.roots() if r.is_dir()), Path.cwd()))

    def relative(self, path):
        """The path as the engine resolves it: relative to a models sub-folder when inside one."""
        path = Path(path).resolve()
        for root in self.roots():
            try:
                return path.relative_to(root.resolve()).as_posix()
            except (ValueError, OSError):
                continue
        return str(path)

    def pick(self, directory=False):
        if directory:
            chosen = QFileDialog.getExistingDirectory(self, f"Choose {self.param.name}", self.start_dir())
        else:
            exts = " ".join(f"*{e}" for e in self.param.extensions)
            filt = f"{self.param.folder} ({exts});;All files (*)" if exts else "All files (*)"
            chosen, _ = QFileDialog.getOpenFileName(self, f"Choose {self.param.name}", self.start_dir(), filt)
        if chosen:
            value = self.relative(chosen)
            self.set_value(value)
            self.edited.emit(value, False)

    def set_value(self, value):
        if str(value) != self.line.text():
            with QSignalBlocker(self.line):
                self.line.setText(str(value))

    def value(self):
        return self.line.text()


EDITORS = {"int": IntEditor, "float": FloatEditor, "bool": BoolEditor, "string": StringEditor,
           "text": TextEditor, "choice": ChoiceEditor, "seed": SeedEditor}


def make_editor(param, models_dirs):
    if param.kind == "file":
        return FileEditor(param, models_dirs)
    return EDITORS.get(param.kind, StringEditor)(param)


class PropertiesPanel(QScrollArea):
    """Shows one node: its type, id, help, and a widget with help text for each param."""
    sweep_requested = Signal(str, str)  # node id, param name: "Sweep this…"

    def __init__(self, doc, models_dirs=lambda: [], parent=None):
        super().__init__(parent)
        self.doc, self.models_dirs = doc, models_dirs
        self.node_id = None
        self.editors = {}
        self.seed_mode = None
        self.setWidgetResizable(True)
        doc.node_ui_changed.connect(self._on_ui_changed)
        doc.param_changed.connect(self._on_param_changed)
        doc.node_removed.connect(lambda nid: self.show_node(None) if nid == self.node_id else None)
        doc.reset.connect(lambda: self.show_node(None))
        self.show_node(None)

    def show_node(self, nid, count=1):
        self.node_id = nid if nid in self.doc.workflow.nodes else None
        self.editors = {}
        self.seed_mode = None
        body = QWidget()
        col = QVBoxLayout(body)
        col.setAlignment(Qt.AlignTop)
        if self.node_id is None:
            hint = QLabel(f"{count} nodes selected." if count > 1 else
                          "Select a node to edit its params.\n\nTab or right-click on the canvas adds a node.")
            hint.setWordWrap(True)
            hint.setStyleSheet("color: gray;")
            col.addWidget(hint)
            self.setWidget(body)
            return
        node, spec = self.doc.workflow.nodes[nid], self.doc.spec(nid)
        title = QLabel(f"<b>{spec.type}</b> &nbsp;<span style='color:gray'>id: {nid}</span>")
        title.setTextInteractionFlags(Qt.TextSelectableByMouse)
        col.addWidget(title)
        about = QLabel(spec.help)
        about.setObjectName("help")
        about.setTextFormat(Qt.PlainText)  # a placeholder's help holds its data, as it came
        about.setWordWrap(True)
        about.setStyleSheet("color: gray;")
        col.addWidget(about)
        for p in spec.params:
            label = QLabel(f"<b>{p.name}</b> <span style='color:gray'>({p.kind})</span>")
            sweep = QToolButton()
            sweep.setText("Sweep this…")
            sweep.setObjectName(f"sweep:{p.name}")
            sweep.setToolTip(f"Add {nid}.{p.name} as an axis of the sweep (a grid of runs)")
            sweep.setAutoRaise(True)
            sweep.clicked.connect(lambda checked=False, name=p.name: self.sweep_requested.emit(self.node_id, name))
            head = QHBoxLayout()
            head.addWidget(label, 1)
            head.addWidget(sweep)
            editor = make_editor(p, self.models_dirs)
            editor.setObjectName(f"param:{p.name}")
            editor.set_value(node.params.get(p.name, p.default))
            editor.edited.connect(lambda value, merge, name=p.name: self._edited(name, value, merge))
            col.addSpacing(6)
            col.addLayout(head)
            col.addWidget(editor)
            if p.help:
                help_ = QLabel(p.help)
                help_.setWordWrap(True)
                help_.setStyleSheet("color: gray; font-size: 11px;")
                col.addWidget(help_)
            self.editors[p.name] = editor
        if spec.type == seeds.NOISE_TYPE:
            self.seed_mode = SeedModeEditor()
            self.seed_mode.setObjectName("seed_mode")
            self.seed_mode.set_value(seeds.mode(self.doc, nid))
            self.seed_mode.edited.connect(lambda how: self.doc.set_node_ui(
                self.node_id, seeds.UI_KEY, None if how == "fixed" else how))
            col.addSpacing(6)
            col.addWidget(QLabel("<b>seed after run</b>"))
            col.addWidget(self.seed_mode)
        if not spec.params and spec.category != placeholders.CATEGORY:  # a placeholder shows its data
            col.addWidget(QLabel("This node has no params."))
        col.addStretch(1)  # extra height goes below the params, not between them
        self.setWidget(body)

    def editor(self, name):
        return self.editors[name]

    def _edited(self, name, value, merge):
        if self.node_id is not None:
            self.doc.set_param(self.node_id, name, value, merge=merge)

    def _on_ui_changed(self, nid, key):
        if nid == self.node_id and key == seeds.UI_KEY and self.seed_mode is not None:
            self.seed_mode.set_value(seeds.mode(self.doc, nid))

    def _on_param_changed(self, nid, name):
        if nid == self.node_id and name in self.editors:
            value = self.doc.workflow.nodes[nid].params.get(name, self.doc.spec(nid).param(name).default)
            self.editors[name].set_value(value)
