"""Running a sweep: every cell through the one engine and cache, then contact sheets and a manifest."""
import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from latentloom.app.core import sweep as sweeps
from latentloom.app.core.workflow import WorkflowError
from latentloom.app.engine import events as ev
from latentloom.app.engine.cancel import CancelToken, Cancelled
from latentloom.app.engine.executor import NodeError
from latentloom.app.session.overrides import set_param


@dataclass
class CellResult:
    cell: sweeps.Cell
    files: list = field(default_factory=list)
    executed: list = field(default_factory=list)
    cached: list = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""
    worker: object = None    # which worker ran it (worker dispatch only; not in the manifest)

    def to_json(self):
        d = {"values": self.cell.values, "grid": list(self.cell.index), "files": self.files,
             "executed": self.executed, "cached": self.cached, "seconds": round(self.seconds, 3)}
        if self.error:
            d["error"] = self.error
        return d


@dataclass
class SweepResult:
    cells: list                 # CellResult per cell that ran or failed, in product order
    sheets: list = field(default_factory=list)
    manifest: str = ""
    status: str = "ok"          # "ok", "failed" (some cell failed) or "cancelled"
    seconds: float = 0.0


def run_cell(session, prepared, cell, emit=None, cancel=None):
    """One cell through the session's engine and cache. A failed cell has .error; raises Cancelled."""
    session.runtime  # noqa: B018  (built once per session)
    res = CellResult(cell)
    cell_doc = copy.deepcopy(prepared.document)
    for node_id, param, value in cell.sets:
        set_param(cell_doc, node_id, param, value)
    t_cell = time.perf_counter()
    try:
        run = session.engine.run(session.cell_workflow(prepared.workflow, cell), on_event=emit, cancel=cancel,
                                 document=cell_doc, base_dirs=prepared.base_dirs)
        res.files, res.executed, res.cached = list(run.outputs), list(run.executed), list(run.cached)
    except (NodeError, WorkflowError) as e:
        res.error = str(e)
    res.seconds = time.perf_counter() - t_cell
    return res


class InProcess:
    """The one-process dispatch: every cell in run order through the session's own engine."""

    def cells(self, session, prepared, order, emit, cancel):
        """Yield (run index, CellResult) in run order; raise Cancelled to stop."""
        session.runtime  # noqa: B018  (torch and the model store, once, before the first cell)
        for i, cell in enumerate(order):
            cancel.check()
            emit(ev.CellStarted(i, len(order), cell.values))
            try:
                res = run_cell(session, prepared, cell, emit, cancel)
            except Cancelled:
                emit(ev.CellFinished(i, len(order), cell.values, "cancelled", (), cell.index))
                raise
            yield i, res


def run_sweep(session, prepared, on_event=None, cancel=None, dispatch=None):
    """Run every cell (through `dispatch`: InProcess by default, app.session.workers for worker
    processes or Ray), then write the contact sheets and the manifest here, in the lead process."""
    emit = on_event or (lambda e: None)
    cancel = cancel or CancelToken()
    axes = prepared.axes
    t0 = time.perf_counter()
    order = sweeps.run_order(sweeps.cells(axes), axes, prepared.workflow)
    results, status = {}, "ok"
    try:
        for i, res in (dispatch or InProcess()).cells(session, prepared, order, emit, cancel):
            results[res.cell.index] = res
            if res.error:
                status = "failed"
            emit(ev.CellFinished(i, len(order), res.cell.values, "failed" if res.error else "ok",
                                 tuple(res.files), res.cell.index, res.error))
    except Cancelled:
        status = "cancelled"
    done = [results[c.index] for c in sweeps.cells(axes) if c.index in results]
    result = SweepResult(done, status=status)
    from latentloom.app.engine.outputs import safe_stem
    stem = safe_stem(Path(prepared.source).stem if prepared.source else "", "sweep")
    result.sheets = write_sheets(session.output_dir, stem, axes, results, _sweep_document(prepared))
    for page, path in enumerate(result.sheets):
        emit(ev.SheetWritten(path, page))
    result.seconds = time.perf_counter() - t0
    result.manifest = write_manifest(session.output_dir, stem, prepared, axes, result)
    return result


def _sweep_document(prepared):
    doc = copy.deepcopy(prepared.document)
    doc["sweep"] = copy.deepcopy(prepared.workflow.sweep)
    return doc


def cell_image(res):
    """The first PNG a cell wrote, as a PIL image; None for a failed cell."""
    from PIL import Image
    if res.error:
        return None
    for f in res.files:
        if f.lower().endswith(".png"):
            with Image.open(f) as im:
                return im.convert("RGB")
    return None


def write_sheets(output_dir, stem, axes, results, document):
    """One contact sheet per page value; returns their paths."""
    from latentloom.app.engine import outputs, png
    from latentloom.app.session import sheet
    col_axis = axes[0]
    row_axis = axes[1] if len(axes) > 1 else None
    page_axis = axes[2] if len(axes) > 2 else None
    cols = [col_axis.value_label(i) for i in range(len(col_axis.values))]
    rows = [row_axis.value_label(i) for i in range(len(row_axis.values))] if row_axis else []
    paths = []
    for page in range(len(page_axis.values) if page_axis else 1):
        images = {(c, r): cell_image(res) for (c, r, p), res in results.items() if p == page}
        if not images:
            continue
        title = f"{page_axis.label} = {page_axis.value_label(page)}" if page_axis else ""
        im = sheet.render(images, cols, rows, col_axis.label, row_axis.label if row_axis else "", title)
        paths.append(str(outputs.write_new(output_dir, f"{stem}_sheet", ".png",
                                           lambda tmp: png.save(im, tmp, document))))
    return paths


def write_manifest(output_dir, stem, prepared, axes, result):
    from latentloom.app.engine import outputs
    data = {
        "workflow": prepared.source,
        "axes": [a.to_json() for a in axes],
        "status": result.status,
        "seconds": round(result.seconds, 3),
        "cells": [r.to_json() for r in result.cells],
        "sheets": result.sheets,
    }
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return str(outputs.write_new(output_dir, f"{stem}_sweep", ".json",
                                 lambda tmp: Path(tmp).write_text(text, encoding="utf-8")))
