"""Workflow files: new, open (any format the session reads), save, recent files, drops, and the
missing-model report when a workflow opens."""
from latentloom.app.ui import qtcompat  # noqa: F401  (first: binding work-arounds)
import json
import re
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox

from latentloom.app.core.workflow import WorkflowError
from latentloom.app import paths

EDITOR_UI_KEY = "editor"  # the editor's state inside the workflow's top-level "ui"
FILE_FIELD = re.compile(r"^param '([^']+)'$")  # how the session's file checks name the param
DEFAULT_WORKFLOW = paths.WORKFLOWS / "txt2img.json"


class Files:
    def __init__(self, window):
        self.w = window

    @property
    def doc(self):
        return self.w.doc

    def maybe_save(self):
        """True when it is fine to replace or close the document."""
        if not self.doc.dirty:
            return True
        answer = self.w.ask_unsaved()
        if answer == "save":
            return self.save()
        return answer == "discard"

    def new_document(self):
        if not self.maybe_save():
            return False
        self.doc.new()
        self.w.view.frame()
        self.w.log("New workflow")
        return True

    def open_template(self, path, dialog=True):
        return self._load(path, template=True, dialog=dialog)

    def open_dialog(self):
        start = str(Path(self.doc.path).parent) if self.doc.path else ""
        path, _ = QFileDialog.getOpenFileName(self.w, "Open a workflow", start,
                                              "Workflows (*.json *.png);;JSON (*.json);;PNG images (*.png)")
        if path:
            self.open_path(path)

    def open_path(self, path, ask=True):
        if ask and not self.maybe_save():
            return False
        return self._load(path)

    def open_data(self, data, origin):
        """Open a workflow held in memory (a history entry) as an untitled document."""
        if not self.maybe_save():
            return False
        return self._show_loaded(lambda: self.doc.load(data, path=None, origin=origin), origin, template=True)

    def _load(self, path, template=False, dialog=True):
        path = str(path)

        def load():
            document = self.w.runner.session.open(path)
            ours = document.reader == "latentloom-json"
            return self.doc.load(document.data, path=None if (template or not ours) else path, origin=path)
        return self._show_loaded(load, path, template, dialog)

    def _show_loaded(self, load, path, template, dialog=True):
        w = self.w
        try:
            problems = load()
        except (WorkflowError, OSError) as e:
            problems = getattr(e, "problems", None)
            w.log(f"Could not open {path}:", "error")
            for p in problems or [e]:
                w.log(f"  {p}", "error")
            w.status(f"Could not open {Path(path).name}: see the log", 10000)
            w.warn("Could not open", f"{path}\n\n" + "\n".join(map(str, problems or [e])))
            return False
        state = self.doc.workflow.ui.get(EDITOR_UI_KEY)
        if not w.view.set_view_state(state):
            w.view.frame()
        if not template and Path(path).is_file():
            w.settings.add_recent(path)
        w.log(f"Opened {path}" + (" (a template: Save asks where)" if template else ""))
        if problems:
            w.show_problems(problems, "This workflow has problems (fix them before running):")
        else:
            self.report_missing(dialog)
        w.update_title()
        return True

    def missing_files(self):
        """[(node id, param, message)] for every file param the session cannot find."""
        from latentloom.app.session import Document
        w = self.w
        s = w.settings
        w.runner.configure(output_dir=s.output_dir, models_dirs=s.models_dirs, device=s.device)
        base_dir = Path(self.doc.path).resolve().parent if self.doc.path else (
            Path(self.doc.origin).resolve().parent if self.doc.origin else None)
        data = self.doc.to_json()
        data.pop("sweep", None)
        try:
            w.runner.session.prepare(Document(json.loads(json.dumps(data)), "", base_dir, "editor"))
        except WorkflowError as e:
            out = []
            for p in e.problems:
                m = FILE_FIELD.match(p.field or "")
                if m and p.node in self.doc.workflow.nodes:
                    out.append((p.node, m.group(1), p.message))
            return out
        return []

    def report_missing(self, dialog=True):
        """Mark every missing file on its node and list them all in one dialog."""
        missing = self.missing_files()
        if not missing:
            return []
        by_node = {}
        for nid, name, message in missing:
            by_node.setdefault(nid, []).append(f"{name}: {message}")
        for nid, lines in by_node.items():
            self.w.view.set_state(nid, "missing", "missing file", "\n".join(lines))
        text = "\n\n".join(f"{nid}.{name}: {message}" for nid, name, message in missing)
        self.w.log("Missing files:", "warn")
        for nid, name, message in missing:
            self.w.log(f"  {nid}.{name}: {message}", "warn")
        if dialog:
            self.w.warn("Missing models", f"This workflow names files that are not there:\n\n{text}")
        return missing

    def save(self):
        if not self.doc.path:
            return self.save_as()
        return self._write(self.doc.path)

    def save_as(self, path=None):
        if path is None:
            start = self.doc.path or str(Path.cwd() / "workflow.json")
            path, _ = QFileDialog.getSaveFileName(self.w, "Save workflow as", start, "Workflows (*.json)")
            if not path:
                return False
            if not path.lower().endswith(".json"):
                path += ".json"
        return self._write(path)

    def _write(self, path):
        w = self.w
        ui = self.doc.workflow.ui
        ui[EDITOR_UI_KEY] = {**(ui.get(EDITOR_UI_KEY) or {}), **w.view.view_state()}
        try:
            self.doc.save(path)
        except OSError as e:
            w.log(f"Could not save {path}: {e}", "error")
            w.warn("Could not save", f"{path}\n\n{e}")
            return False
        w.settings.add_recent(path)
        w.status(f"Saved {path}")
        return True

    def fill_recent(self, menu):
        menu.clear()
        for path in self.w.settings.recent:
            act = menu.addAction(path)
            act.triggered.connect(lambda checked=False, p=path: self.open_path(p))
        if not self.w.settings.recent:
            menu.addAction("(none)").setEnabled(False)
        menu.addSeparator()
        menu.addAction("Clear the list", self.w.settings.clear_recent)

    def dropped(self, paths):
        wanted = [p for p in paths if p.lower().endswith((".json", ".png"))]
        if wanted:
            self.open_path(wanted[0])
        else:
            self.w.status("Drop a workflow .json or a PNG that carries a workflow")


def ask_unsaved(window):
    """'save', 'discard' or 'cancel'."""
    box = QMessageBox(QMessageBox.Warning, "Unsaved changes",
                      f"Save the changes to {window.windowTitle().split(' — ')[0].rstrip('*')}?",
                      QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, window)
    answer = box.exec()
    return {QMessageBox.Save: "save", QMessageBox.Discard: "discard"}.get(answer, "cancel")
