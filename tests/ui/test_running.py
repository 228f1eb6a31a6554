"""Running from the editor against the tiny model: results, cache reuse, cancel, errors, PNG round trip."""
import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QUrl

from latentloom.app.core.workflow import WorkflowError
from latentloom.app.engine import events as ev
from latentloom.app.engine.cancel import Cancelled
from latentloom.app.ui.image_panel import qimage_to_rgb
from tests.ui.conftest import RUN_TIMEOUT_MS, run_and_wait, tiny_run_params

UPSTREAM = ["ckpt", "negative", "latent", "noise", "scheduler"]


def test_run_matches_the_cli_then_only_the_edited_branch_reruns(window, qtbot, tiny_dir, tmp_path):
    tiny_run_params(window, tiny_dir)
    saved = tmp_path / "wf.json"
    assert window.save_as(str(saved))
    seen = []
    window.runner.event.connect(lambda e: seen.append(e))

    result, error = run_and_wait(qtbot, window)
    assert error is None
    assert sorted(result.executed) == sorted(window.doc.workflow.nodes) and result.cached == []
    assert len(result.outputs) == 1
    assert window.images.outputs() == result.outputs
    assert window.images.current_path == result.outputs[0]
    assert all(window.view.state(n) == "done" for n in window.view.nodes)
    assert any(isinstance(e, ev.NodeProgress) and e.preview is not None for e in seen)  # live preview
    assert window.progress.value() == window.progress.maximum() == 2
    copy = window.images.save_as(str(tmp_path / "copy.png"))  # save as keeps the embedded workflow
    from latentloom.app.engine.png import read_workflow
    assert read_workflow(copy)["nodes"].keys() == window.doc.workflow.nodes.keys()
    window.images.copy()
    from PySide6.QtWidgets import QApplication
    assert QApplication.clipboard().image().size() == window.images.current_image.size()

    # the file the editor saved runs unchanged with `latentloom run`, and gives the same pixels
    from latentloom.app.cli import main
    out = tmp_path / "cli-out"
    assert main(["run", str(saved), "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    (cli_png,) = sorted(out.glob("*.png"))
    expected = np.array(Image.open(cli_png).convert("RGB"))
    assert np.array_equal(qimage_to_rgb(window.images.current_image), expected)

    # edit the prompt: only that node and what is downstream of it re-runs
    window.view.select(["positive"])
    window.properties.editor("text").text.setPlainText("a red fox in the snow")
    result, error = run_and_wait(qtbot, window)
    assert error is None
    assert result.executed == ["positive", "sampler", "decode", "save"]
    assert sorted(result.cached) == sorted(UPSTREAM)
    assert all(window.view.state(n) == "cached" for n in UPSTREAM)
    assert all(window.view.state(n) == "done" for n in result.executed)
    assert window.view.nodes["ckpt"].view.status_text() == "cached"
    assert len(window.images.outputs()) == 2
    assert not np.array_equal(qimage_to_rgb(window.images.current_image), expected)


def test_cancel_mid_run_then_run_again(window, qtbot, tiny_dir):
    tiny_run_params(window, tiny_dir, steps=1000)

    def cancel_on_progress(e):
        if isinstance(e, ev.NodeProgress) and e.step >= 2:
            window.cancel_run()
    window.runner.event.connect(cancel_on_progress)
    result, error = run_and_wait(qtbot, window)
    assert result is None and isinstance(error, Cancelled)
    assert window.run_status == "cancelled"
    assert window.view.state("sampler") == "cancelled"
    assert window.view.state("decode") is None and window.view.state("ckpt") == "done"
    assert window.images.outputs() == []
    window.runner.event.disconnect(cancel_on_progress)

    window.doc.set_param("sampler", "steps", 2)
    result, error = run_and_wait(qtbot, window)
    assert error is None and len(result.outputs) == 1
    assert result.executed == ["sampler", "decode", "save"]  # the cache kept what finished before
    assert sorted(result.cached) == sorted(UPSTREAM + ["positive"])


def test_errors_mark_the_failing_node_and_lose_nothing(window, qtbot, tiny_dir):
    tiny_run_params(window, tiny_dir)
    window.doc.set_param("ckpt", "path", "no-such-model.safetensors")
    before = window.doc.to_json()
    result, error = run_and_wait(qtbot, window)
    assert isinstance(error, WorkflowError)
    assert window.view.state("ckpt") == "invalid"
    assert "file not found" in window.view.nodes["ckpt"].view.message_text()
    assert "no-such-model.safetensors" in window.log_view.toPlainText()
    assert window.doc.to_json() == before

    # a run-time failure in a node: clip_skip larger than the tiny text encoder
    window.doc.set_param("ckpt", "path", str(tiny_dir))
    window.doc.set_param("positive", "clip_skip", 10)
    result, error = run_and_wait(qtbot, window)
    assert error is not None and window.run_status == "failed"
    assert window.view.state("positive") == "failed"
    assert "clip_skip" in window.view.nodes["positive"].view.message_text()
    assert "clip_skip" in window.log_view.toPlainText()

    # a validation error never reaches the engine
    window.doc.set_param("latent", "width", 60)
    result, error = run_and_wait(qtbot, window)
    assert isinstance(error, WorkflowError)
    assert window.view.state("latent") == "invalid"
    assert "multiple of 8" in window.view.nodes["latent"].view.message_text()
    assert window.doc.workflow.nodes["latent"].params["width"] == 60


def test_open_a_png_that_carries_its_workflow(window, make_window, qtbot, tiny_dir):
    tiny_run_params(window, tiny_dir)
    window.doc.set_param("positive", "text", "from a png")
    result, error = run_and_wait(qtbot, window)
    assert error is None
    png = result.outputs[0]
    ran = window.doc.to_json()

    other = make_window(load_default=False)
    assert other.doc.workflow.nodes == {}
    assert other.open_path(png)
    assert other.doc.to_json()["nodes"] == ran["nodes"]
    assert other.doc.path is None and other.windowTitle().startswith("Untitled (from txt2img_")

    third = make_window(load_default=False)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(png)])
    third.view.view_dropped(mime, QPoint(0, 0))  # a PNG dropped on the canvas
    assert third.doc.to_json()["nodes"] == ran["nodes"]


@pytest.mark.parametrize("timeout", [RUN_TIMEOUT_MS])
def test_ui_stays_responsive_while_running(window, qtbot, tiny_dir, timeout):
    tiny_run_params(window, tiny_dir, steps=60)
    ticks = []
    from PySide6.QtCore import QTimer
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    with qtbot.waitSignal(window.run_done, timeout=timeout):
        window.run()
        assert window.runner.busy and window.actions["cancel"].isEnabled()
        assert window.actions["run"].isEnabled()  # Run queues another
        window.doc.set_param("noise", "seed", 5)  # editing goes on during a run
    timer.stop()
    assert len(ticks) > 5
    assert not window.actions["cancel"].isEnabled()
