"""Run history: every finished run kept under <output>/history, and the panel that lists it.

An entry is one JSON file (history/run_NNNNN.json: time, seconds, status, output files, the
workflow that made them) plus small PNG thumbnails beside it; all written with the crash-safe
``write_new``, so the panel survives restarts and never reads half a file.
"""
from latentloom.app.ui import qtcompat  # noqa: F401  (first: binding work-arounds)
import json
import time
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from latentloom.app.engine.outputs import write_new

FOLDER = "history"
FORMAT = "latentloom.history"
THUMB = 96
MAX_THUMBS = 6
ENTRY_ROLE = Qt.UserRole


class History:
    """The history folder of one output folder."""

    def __init__(self, output_dir):
        self.output_dir = str(output_dir)

    @property
    def folder(self):
        return Path(self.output_dir).expanduser() / FOLDER

    def record(self, workflow, outputs, seconds, status="ok", kind="run"):
        """Keep one finished run; returns its entry (with "file", the entry's path)."""
        from PIL import Image
        thumbs = []
        for path in [p for p in outputs if str(p).lower().endswith(".png")][:MAX_THUMBS]:
            try:
                with Image.open(path) as im:
                    im = im.convert("RGB")
                    im.thumbnail((THUMB, THUMB))
            except OSError:
                continue
            thumbs.append(write_new(self.output_dir, f"{FOLDER}/thumb", ".png",
                                    lambda tmp, im=im: im.save(tmp, "PNG")).name)
        entry = {"format": FORMAT, "version": 1, "time": time.strftime("%Y-%m-%d %H:%M:%S"),
                 "kind": kind, "status": status, "seconds": round(float(seconds), 3),
                 "outputs": [str(Path(p).resolve()) for p in outputs], "thumbs": thumbs, "workflow": workflow}
        text = json.dumps(entry, ensure_ascii=False)
        path = write_new(self.output_dir, f"{FOLDER}/run", ".json",
                         lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        entry["file"] = str(path)
        return entry

    def entries(self):
        """Every readable entry, newest first."""
        out = []
        for path in sorted(self.folder.glob("run_*.json"), reverse=True):
            try:
                entry = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(entry, dict) and entry.get("format") == FORMAT:
                entry["file"] = str(path)
                out.append(entry)
        return out

    def thumb_path(self, entry, i=0):
        thumbs = entry.get("thumbs") or []
        return str(self.folder / thumbs[i]) if len(thumbs) > i else None


def entry_text(entry):
    n = len(entry.get("outputs") or [])
    what = "sweep" if entry.get("kind") == "sweep" else f"{n} image{'s' if n != 1 else ''}"
    status = "" if entry.get("status") == "ok" else f" · {entry.get('status')}"
    return f"{entry.get('time', '?')[11:]}  ·  {entry.get('seconds', 0):.1f} s  ·  {what}{status}"


class HistoryPanel(QWidget):
    """The runs of the output folder, newest first: click shows the images, Restore loads the workflow."""
    chosen = Signal(dict)              # an entry
    restore_requested = Signal(dict)   # an entry

    def __init__(self, output_dir, parent=None):
        super().__init__(parent)
        self.history = History(output_dir)
        self.list = QListWidget()
        self.list.setIconSize(QSize(48, 48))
        self.restore = QPushButton("Restore")
        self.restore.setToolTip("Load the workflow that made this run")
        self.restore.setEnabled(False)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.restore)
        col = QVBoxLayout(self)
        col.setContentsMargins(2, 2, 2, 2)
        col.addWidget(self.list, 1)
        col.addLayout(row)
        self.list.currentItemChanged.connect(self._current)
        self.list.itemClicked.connect(lambda item: self.chosen.emit(item.data(ENTRY_ROLE)))
        self.restore.clicked.connect(self._restore)
        self.reload()

    def set_output_dir(self, output_dir):
        if str(output_dir) != self.history.output_dir:
            self.history = History(output_dir)
            self.reload()

    def reload(self):
        self.list.clear()
        for entry in self.history.entries():
            self._add(entry, at_top=False)

    def _add(self, entry, at_top=True):
        item = QListWidgetItem(entry_text(entry))
        thumb = self.history.thumb_path(entry)
        if thumb:
            item.setIcon(QIcon(QPixmap(thumb)))
        item.setData(ENTRY_ROLE, entry)
        item.setToolTip("\n".join(entry.get("outputs") or []) or "no images")
        self.list.insertItem(0, item) if at_top else self.list.addItem(item)
        return item

    def record(self, workflow, outputs, seconds, status="ok", kind="run"):
        entry = self.history.record(workflow, outputs, seconds, status, kind)
        self._add(entry)
        return entry

    def entries(self):
        return [self.list.item(i).data(ENTRY_ROLE) for i in range(self.list.count())]

    def _current(self, item, _prev=None):
        self.restore.setEnabled(item is not None)

    def _restore(self):
        item = self.list.currentItem()
        if item is not None:
            self.restore_requested.emit(item.data(ENTRY_ROLE))
