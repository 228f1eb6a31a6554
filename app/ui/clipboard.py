"""Copy, cut, paste, duplicate and delete of canvas nodes; the clipboard holds plain JSON text."""
from latentloom.app.ui import qtcompat  # noqa: F401  (first: binding work-arounds)
import json

from PySide6.QtWidgets import QApplication

from latentloom.app.ui.document import CLIPBOARD_FORMAT


class Clipboard:
    def __init__(self, window):
        self.w = window

    def delete_selected(self):
        self.w.doc.remove_nodes(self.w.view.selected_ids())

    def copy(self):
        ids = self.w.view.selected_ids()
        if not ids:
            return None
        fragment = self.w.doc.copy_nodes(ids)
        # plain JSON text: a QMimeData made in Python and handed to the clipboard crashes
        # PySide6 at exit, and JSON text pastes into other editors too
        QApplication.clipboard().setText(json.dumps(fragment))
        self.w.status(f"Copied {len(ids)} node{'s' if len(ids) > 1 else ''}")
        return fragment

    def cut(self):
        if self.copy():
            self.delete_selected()

    def paste(self):
        try:
            fragment = json.loads(QApplication.clipboard().text() or "null")
            if not isinstance(fragment, dict) or fragment.get("format") != CLIPBOARD_FORMAT:
                raise ValueError("the clipboard holds no Latent Loom nodes")
            ids = self.w.doc.paste(fragment)
        except ValueError as e:
            self.w.status(f"Nothing to paste: {e}")
            return []
        self.w.view.select(ids)
        return ids

    def duplicate(self):
        ids = self.w.view.selected_ids()
        if not ids:
            return []
        new = self.w.doc.duplicate(ids)
        self.w.view.select(new)
        return new
