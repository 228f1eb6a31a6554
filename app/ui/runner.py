"""Runs prepared workflows and sweeps on a worker thread through ONE session per window, so its cache persists.

The worker is a QObject living in a QThread. Executor events are emitted from
the worker thread and reach the UI as queued signals (Qt.QueuedConnection), in
order. The session builds its runtime (torch, the model store) lazily on the
worker, on the first run, so opening the editor stays fast.
"""
import time
from dataclasses import dataclass, field

from latentloom.app.ui import qtcompat  # noqa: F401  (first: binding work-arounds)
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from latentloom.app.engine.cancel import CancelToken
from latentloom.app.session import Session


@dataclass
class Job:
    prepared: object  # app.session.Prepared
    cancel: CancelToken = field(default_factory=CancelToken)


class _Worker(QObject):
    """Lives in the runner's thread; owns nothing of the UI."""
    event = Signal(object)
    done = Signal(object, object)  # RunResult / SweepResult or None, exception or None

    def __init__(self, session):
        super().__init__()
        self.session = session

    @Slot(object)
    def run(self, job):
        try:
            go = self.session.sweep if job.prepared.is_sweep else self.session.run
            result = go(job.prepared, on_event=self.event.emit, cancel=job.cancel)
        except BaseException as e:  # reported to the UI, never raised on the worker thread
            self.done.emit(None, e)
            return
        self.done.emit(result, None)

    @Slot()
    def preload(self):
        import latentloom.app.sd.runtime  # noqa: F401  (torch and diffusers, before the first run)


class Runner(QObject):
    event = Signal(object)              # executor events, in the GUI thread, in order
    finished = Signal(object, object)   # RunResult or None, exception or None
    _run = Signal(object)
    _preload = Signal()

    def __init__(self, catalog, output_dir="output", models_dirs=(), device="auto", parent=None):
        super().__init__(parent)
        self.session = Session(catalog, models_dirs=models_dirs, output_dir=output_dir, device=device,
                               previews=True)
        self.engine = self.session.engine
        self.job = None
        self.thread = QThread()
        self.thread.setObjectName("latentloom-runner")
        self.worker = _Worker(self.session)
        self.worker.moveToThread(self.thread)
        self._run.connect(self.worker.run, Qt.QueuedConnection)
        self._preload.connect(self.worker.preload, Qt.QueuedConnection)
        self.worker.event.connect(self._on_event, Qt.QueuedConnection)
        self.worker.done.connect(self._on_done, Qt.QueuedConnection)
        self.thread.start()

    def configure(self, output_dir=None, models_dirs=None, device=None):
        """New settings; they apply from the next run (the cache is kept unless the device changes)."""
        self.session.configure(output_dir, models_dirs, device)

    @property
    def busy(self):
        return self.job is not None

    @property
    def loaded(self):
        return self.session.loaded

    def warm_up(self):
        """Import torch and diffusers on the worker now, so the first run starts sooner."""
        self._preload.emit()

    def start(self, prepared):
        if self.busy:
            return False
        self.job = Job(prepared)
        self._run.emit(self.job)
        return True

    def cancel(self):
        if self.job is not None:
            self.job.cancel.cancel()

    @Slot(object)
    def _on_event(self, e):
        self.event.emit(e)

    @Slot(object, object)
    def _on_done(self, result, error):
        self.job = None
        self.finished.emit(result, error)

    def shutdown(self):
        """Cancel a run in progress and stop the thread (on window close). It waits for the worker
        to return (a run stops at its next step; the first import of torch finishes), since a
        QThread destroyed while running aborts the process."""
        self.cancel()
        self.thread.quit()
        while not self.thread.wait(0):  # QThread.wait keeps the GIL: sleep instead, so the worker can finish
            time.sleep(0.02)
