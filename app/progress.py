"""Executor events as terminal lines and a tqdm bar for sampler steps."""
import sys

from latentloom.app.engine import events as ev


class Progress:
    def __init__(self, label, enabled=True, stream=None):
        # sys.stderr looked up now, not at import (tests and faces may swap it)
        self.label, self.enabled, self.stream = label, enabled, stream or sys.stderr
        self.bar = None
        self.cells = None  # a bar over sweep cells, above the step bar

    def __call__(self, e):
        if not self.enabled:
            return
        from tqdm import tqdm
        if isinstance(e, ev.NodeProgress):
            if self.bar is None or self.bar.total != e.total:
                self._close_bar()
                self.bar = tqdm(total=e.total, desc=f"  {e.node_id}", unit="step", file=self.stream,
                                leave=False, position=1 if self.cells is not None else 0)
            self.bar.update(e.step - self.bar.n)
            return
        self._close_bar()
        if isinstance(e, ev.CellStarted):
            if self.cells is None:
                self.cells = tqdm(total=e.total, desc=f"{self.label}: cells", unit="cell", file=self.stream,
                                  position=0)
            self.cells.set_postfix_str(", ".join(f"{k}={v}" for k, v in e.values.items())[:60])
            return
        if isinstance(e, ev.CellFinished):
            if self.cells is not None:
                self.cells.update(1)
            if e.status == "failed":
                self._line(f"  cell {e.values}: failed: {e.error}")
            return
        if self.cells is not None and isinstance(e, (ev.RunStarted, ev.NodeCached, ev.NodeFinished,
                                                       ev.RunFinished)):
            return  # in a sweep the cell bar stands for these
        if isinstance(e, ev.RunStarted):
            self._line(f"{self.label}: {len(e.plan)} nodes")
        elif isinstance(e, ev.NodeCached):
            self._line(f"  {e.node_id} ({e.type}): cached")
        elif isinstance(e, ev.NodeFinished):
            self._line(f"  {e.node_id} ({e.type}): {e.seconds:.2f}s")
        elif isinstance(e, ev.NodeOutput):
            self._line(f"  {e.node_id}: wrote {e.path}")
        elif isinstance(e, ev.NodeImage):
            self._line(f"  {e.node_id}: {len(e.images)} preview image(s), not saved")
        elif isinstance(e, ev.NodeLog):
            self._line(f"  {e.node_id}: {e.message}")
        elif isinstance(e, ev.RunFinished):
            self._line(f"{self.label}: {e.status} in {e.seconds:.2f}s "
                       f"({len(e.executed)} ran, {len(e.cached)} cached)")

    def _line(self, text):
        if self.cells is not None:
            self.cells.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def _close_bar(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def close(self):
        self._close_bar()
        if self.cells is not None:
            self.cells.close()
            self.cells = None
