"""Editor settings in QSettings (the platform's place for them) and the settings dialog."""
from latentloom.app.ui import qtcompat  # noqa: F401  (first: binding work-arounds)
import json

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout,
                               QLineEdit, QListWidget, QPushButton, QToolButton, QVBoxLayout, QWidget)

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "fp32", "fp16", "bf16")
THEMES = ("dark", "light")
MAX_RECENT = 10
CLI_DEFAULTS = {"models": ["models"], "out": "output", "device": "auto"}


class Settings:
    """Typed access to QSettings; values from the command line override them for this session."""

    def __init__(self, qsettings=None):
        self.q = qsettings if qsettings is not None else QSettings()
        self.session = {}

    def _get(self, key, default):
        if key in self.session:
            return self.session[key]
        raw = self.q.value(key)
        if raw is None:
            return default
        try:
            return json.loads(raw)
        except (TypeError, ValueError):
            return default

    def _set(self, key, value):
        self.session.pop(key, None)
        self.q.setValue(key, json.dumps(value))
        self.q.sync()

    @property
    def models_dirs(self):
        return list(self._get("models_dirs", ["models"]))

    @models_dirs.setter
    def models_dirs(self, dirs):
        self._set("models_dirs", [str(d) for d in dirs])

    @property
    def output_dir(self):
        return str(self._get("output_dir", "output"))

    @output_dir.setter
    def output_dir(self, path):
        self._set("output_dir", str(path))

    @property
    def device(self):
        value = self._get("device", "auto")
        return value if value in DEVICES else "auto"

    @device.setter
    def device(self, value):
        self._set("device", value)

    @property
    def dtype(self):
        value = self._get("dtype", "auto")
        return value if value in DTYPES else "auto"

    @dtype.setter
    def dtype(self, value):
        self._set("dtype", value)

    @property
    def theme(self):
        value = self._get("theme", "dark")
        return value if value in THEMES else "dark"

    @theme.setter
    def theme(self, value):
        self._set("theme", value)

    @property
    def recent(self):
        return [p for p in self._get("recent", []) if isinstance(p, str)]

    def add_recent(self, path):
        items = [str(path)] + [p for p in self.recent if p != str(path)]
        self._set("recent", items[:MAX_RECENT])

    def clear_recent(self):
        self._set("recent", [])

    def apply_cli(self, models=None, out=None, device=None):
        """Command-line values that differ from the CLI's defaults win for this session only."""
        if models and list(models) != CLI_DEFAULTS["models"]:
            self.session["models_dirs"] = [str(m) for m in models]
        if out and out != CLI_DEFAULTS["out"]:
            self.session["output_dir"] = str(out)
        if device and device != CLI_DEFAULTS["device"]:
            self.session["device"] = device

    def geometry(self):
        return self.q.value("window/geometry"), self.q.value("window/state")

    def set_geometry(self, geometry, state):
        self.q.setValue("window/geometry", geometry)
        self.q.setValue("window/state", state)
        self.q.sync()


class SettingsDialog(QDialog):
    def __init__(self, settings, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.settings = settings
        self.models = QListWidget()
        self.models.addItems(settings.models_dirs)
        add, remove = QPushButton("Add…"), QPushButton("Remove")
        add.clicked.connect(self._add_models)
        remove.clicked.connect(lambda: [self.models.takeItem(self.models.row(i))
                                        for i in self.models.selectedItems()])
        models_box = QWidget()
        mcol = QVBoxLayout(models_box)
        mcol.setContentsMargins(0, 0, 0, 0)
        mcol.addWidget(self.models)
        row = QHBoxLayout()
        row.addWidget(add)
        row.addWidget(remove)
        row.addStretch(1)
        mcol.addLayout(row)
        self.output = QLineEdit(settings.output_dir)
        browse = QToolButton()
        browse.setText("…")
        browse.clicked.connect(self._browse_output)
        out_box = QWidget()
        orow = QHBoxLayout(out_box)
        orow.setContentsMargins(0, 0, 0, 0)
        orow.addWidget(self.output, 1)
        orow.addWidget(browse)
        self.device = QComboBox()
        self.device.addItems(DEVICES)
        self.device.setCurrentText(settings.device)
        self.dtype = QComboBox()
        self.dtype.addItems(DTYPES)
        self.dtype.setCurrentText(settings.dtype)
        self.dtype.setToolTip("Precision given to new checkpoint loaders (their dtype param).")
        form = QFormLayout()
        form.addRow("Models folders", models_box)
        form.addRow("Output folder", out_box)
        form.addRow("Device", self.device)
        form.addRow("Precision (new loaders)", self.dtype)
        self.theme = QComboBox()
        self.theme.addItems(THEMES)
        self.theme.setCurrentText(settings.theme)
        form.addRow("Theme", self.theme)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        col = QVBoxLayout(self)
        col.addLayout(form)
        col.addWidget(buttons)
        self.resize(520, 380)

    def _add_models(self):
        d = QFileDialog.getExistingDirectory(self, "Add a models folder")
        if d:
            self.models.addItem(d)

    def _browse_output(self):
        d = QFileDialog.getExistingDirectory(self, "Output folder", self.output.text())
        if d:
            self.output.setText(d)

    def store(self):
        s = self.settings
        s.models_dirs = [self.models.item(i).text() for i in range(self.models.count())]
        s.output_dir = self.output.text() or "output"
        s.device = self.device.currentText()
        s.dtype = self.dtype.currentText()
        s.theme = self.theme.currentText()
