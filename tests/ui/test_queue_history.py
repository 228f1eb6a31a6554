"""The run queue (order, reorder, remove, cancel of one item) and the run history across windows."""
import json

from latentloom.app.engine import events as ev
from latentloom.app.engine.cancel import Cancelled
from latentloom.app.engine.png import read_workflow
from tests.ui.conftest import RUN_TIMEOUT_MS, run_and_wait, tiny_run_params


def test_queue_runs_in_order_and_cancel_stops_only_the_current_item(window, qtbot, tiny_dir):
    tiny_run_params(window, tiny_dir, steps=1000)
    started, done = [], []
    window.runs.started.connect(lambda item: started.append(item.number))
    window.run_done.connect(lambda result, error: done.append((result, error)))
    assert window.run() and window.runs.busy
    window.doc.set_param("sampler", "steps", 2)
    for seed in (11, 12, 13):
        window.doc.set_param("noise", "seed", seed)
        assert window.run()  # queued behind the running item, with its params as they were
    assert window.queue.labels() == ["running: #1 txt2img.json (seed 42)", "#2 txt2img.json (seed 11)",
                                     "#3 txt2img.json (seed 12)", "#4 txt2img.json (seed 13)"]
    window.queue.list.setCurrentRow(3)          # #4 up, before #3
    window.queue.buttons["up"].click()
    window.queue.list.setCurrentRow(1)          # #2 goes
    window.queue.buttons["remove"].click()
    assert [i.number for i in window.runs.pending] == [4, 3]

    def cancel_first(e):
        if isinstance(e, ev.NodeProgress) and e.step >= 2 and window.runs.current.number == 1:
            window.cancel_run()
    window.runner.event.connect(cancel_first)
    qtbot.waitUntil(lambda: len(done) == 3, timeout=RUN_TIMEOUT_MS)
    assert started == [1, 4, 3]
    assert isinstance(done[0][1], Cancelled)
    assert [e for _, e in done[1:]] == [None, None]
    seeds = [read_workflow(r.outputs[0])["nodes"]["noise"]["params"]["seed"] for r, _ in done[1:]]
    assert seeds == [13, 12]
    assert window.queue.labels() == [] and not window.runs.busy


def test_history_keeps_every_run_across_windows_and_restores_it(window, make_window, qtbot, tiny_dir,
                                                                 settings, tmp_path):
    tiny_run_params(window, tiny_dir)
    window.doc.set_param("positive", "text", "history one")
    result, error = run_and_wait(qtbot, window)
    assert error is None
    entry = window.history.entries()[0]
    assert entry["outputs"] == result.outputs and entry["status"] == "ok"
    assert entry["seconds"] == round(result.seconds, 3)
    assert entry["workflow"]["nodes"]["positive"]["params"]["text"] == "history one"
    folder = tmp_path / "out" / "history"
    assert (folder / entry["thumbs"][0]).is_file()
    saved = json.loads((folder / "run_00001.json").read_text())
    assert saved["outputs"] == result.outputs
    assert not list(folder.glob(".*.tmp"))  # crash-safe writes leave no temp files

    other = make_window(load_default=False)  # a restart: a new window reads the same folder
    entries = other.history.entries()
    assert [e["outputs"] for e in entries] == [result.outputs]
    shown = other.show_history_entry(entries[0])
    assert shown == result.outputs and other.images.current_path == result.outputs[0]
    other.history.list.setCurrentRow(0)
    other.history.restore.click()
    assert other.doc.workflow.nodes["positive"].params["text"] == "history one"
    assert other.doc.path is None and not other.doc.dirty
