"""Editor fixtures: a real main window with settings in a temporary file (offscreen Qt)."""
import json
import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from tests.conftest import WORKFLOWS  # noqa: E402

RUN_TIMEOUT_MS = 180_000


@pytest.fixture
def settings(tmp_path):
    from PySide6.QtCore import QSettings
    from latentloom.app.ui.settings import Settings
    s = Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat))
    s.output_dir = str(tmp_path / "out")
    s.models_dirs = [str(tmp_path / "models")]
    return s


@pytest.fixture
def make_window(qtbot, settings):
    from latentloom.app.ui.window import MainWindow
    made = []

    def make(**kw):
        w = MainWindow(settings, **kw)
        w.ask_unsaved = lambda: "discard"  # never a modal dialog in tests
        w.warnings = []
        w.warn = lambda title, text: w.warnings.append((title, text))
        qtbot.addWidget(w)
        w.show()
        made.append(w)
        return w

    yield make
    for w in made:
        w.ask_unsaved = lambda: "discard"
        w.close()
        w.runner.shutdown()


@pytest.fixture
def window(make_window):
    return make_window()


@pytest.fixture
def txt2img():
    return json.loads((WORKFLOWS / "txt2img.json").read_text())


def view_links(window):
    """{(target id, input): (source id, output)} as the canvas shows it (model and pipes)."""
    links = {}
    for nid, node in window.view.nodes.items():
        for name, port in node.inputs().items():
            ports = port.connected_ports()
            pipes = port.view.connected_pipes
            assert len(ports) <= 1 and len(pipes) == len(ports), (nid, name)
            if ports:
                src = ports[0]
                assert pipes[0].output_port is src.view
                links[(nid, name)] = (src.node().engine_id, src.name())
    return links


def doc_links(window):
    return {(nid, port): tuple(link) for nid, n in window.doc.workflow.nodes.items()
            for port, link in n.inputs.items()}


def assert_view_matches(window):
    assert set(window.view.nodes) == set(window.doc.workflow.nodes)
    assert view_links(window) == doc_links(window)
    for nid, node in window.view.nodes.items():
        pos = window.doc.pos(nid)
        assert pos is not None
        assert node.view.xy_pos == pytest.approx(list(pos), abs=0.2)


def tiny_run_params(window, tiny_dir, steps=2):
    d = window.doc
    d.set_param("ckpt", "path", str(tiny_dir))
    d.set_param("ckpt", "dtype", "fp32")
    d.set_param("sampler", "steps", steps)
    d.set_param("latent", "width", 64)
    d.set_param("latent", "height", 64)


def run_and_wait(qtbot, window):
    with qtbot.waitSignal(window.run_done, timeout=RUN_TIMEOUT_MS) as blocker:
        window.run()  # False when validation stops it: run_done comes all the same
    return blocker.args  # (result, error)
