"""Unsupported ComfyUI nodes in the editor: red placeholders that keep their data and links, are
saved and exported back as they came, and stop a run with validation's own message."""
import json

import pytest
from PySide6.QtCore import QMimeData, QPoint, QUrl

from latentloom.app.cli import main
from latentloom.app.core.workflow import WorkflowError
from latentloom.app.formats import placeholders
from latentloom.app.session import open_document
from latentloom.app.ui import colors
from latentloom.app.ui.document import LinkRefused
from latentloom.app.ui.graph_view import PlaceholderNode
from tests.test_comfy_import import _png, _ui_graph, api_prompt
from tests.ui.conftest import assert_view_matches, doc_links, run_and_wait, view_links

REFUSAL = ("node '50': unsupported ComfyUI node 'UpscaleModelLoader' (title 'Upscaler'): Latent Loom has no "
           "equivalent yet\n"
           "node '51': unsupported ComfyUI node 'ImageUpscaleWithModel': Latent Loom has no equivalent yet")


def api_file(tmp_path):
    """The txt2img prompt with two unsupported nodes linked between VAEDecode and SaveImage."""
    p = api_prompt()
    p["50"] = {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "4x.pth"}, "_meta": {"title": "Upscaler"}}
    p["51"] = {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["50", 0], "image": ["8", 0]}}
    p["9"]["inputs"]["images"] = ["51", 0]
    path = tmp_path / "api.json"
    path.write_text(json.dumps(p))
    return path, p


def ui_graph(version):
    """ComfyUI's editor file, with an ImageSharpen (unsupported) between VAEDecode and SaveImage."""
    graph = _ui_graph(version)
    graph["nodes"].append({"id": 30, "type": "ImageSharpen", "title": "Sharpen", "pos": [900, 120], "mode": 0,
                           "widgets_values": [1, 1.0, 0.5],
                           "inputs": [{"name": "image", "type": "IMAGE", "link": 14}],
                           "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [16]}]})
    save = next(n for n in graph["nodes"] if n["id"] == 9)
    save["inputs"][0]["link"] = 16
    for i, link in enumerate(graph["links"]):
        if (link["id"] if version == 1 else link[0]) == 14:   # VAEDecode -> SaveImage now feeds the sharpen
            graph["links"][i] = ({**link, "target_id": 30} if version == 1 else [14, 8, 0, 30, 0, "IMAGE"])
    new = (16, 30, 0, 9, 0, "IMAGE")
    graph["links"].append(dict(zip(("id", "origin_id", "origin_slot", "target_id", "target_slot", "type"), new))
                          if version == 1 else list(new))
    return graph


def ports(window, nid):
    node = window.view.nodes[nid]
    return list(node.inputs()), list(node.outputs())


def assert_red_placeholder(window, nid, title):
    node = window.view.nodes[nid]
    assert isinstance(node, PlaceholderNode)
    assert node.view.name == title
    fill, border = node.model.color[:3], node.view.border_color[:3]
    assert tuple(fill) == colors.CATEGORIES["unsupported"] and tuple(border) == colors.PLACEHOLDER_BORDER
    for r, g, b in (fill, border):
        assert r > 2 * g and r > 2 * b, (nid, fill, border)   # red, not merely dark
    assert not node.view.icon_item.pixmap().isNull()


def test_an_api_file_opens_with_red_placeholders_that_keep_their_links(window, tmp_path):
    path, _ = api_file(tmp_path)
    assert window.open_path(str(path), ask=False)
    assert_red_placeholder(window, "50", "Upscaler (UpscaleModelLoader, unsupported) · 50")
    assert_red_placeholder(window, "51", "ImageUpscaleWithModel (unsupported) · 51")
    assert ports(window, "50") == ([], ["0"])
    assert ports(window, "51") == (["upscale_model", "image"], ["0"])
    links = view_links(window)
    assert links == doc_links(window)
    assert {k: links[k] for k in [("51", "upscale_model"), ("51", "image"), ("9", "image")]} == {
        ("51", "upscale_model"): ("50", "0"), ("51", "image"): ("8", "image"), ("9", "image"): ("51", "0")}
    assert_view_matches(window)
    spec = window.doc.spec("51")   # each port typed like the other end; between placeholders: any
    assert [(p.name, p.type) for p in spec.inputs] == [("upscale_model", "*"), ("image", "IMAGE")]
    assert [(p.name, p.type) for p in spec.outputs] == [("0", "IMAGE")]
    pipe = window.view.port_item("51", "image").connected_pipes[0]
    assert tuple(pipe.color[:3]) == colors.port_color("IMAGE")
    # its data, shown read-only on the node, in the tooltip and in the properties panel
    form = window.view.form("50")
    assert form.editors == {} and form.notes.text() == 'model_name: "4x.pth"'
    assert 'model_name: "4x.pth"' in window.view.nodes["50"].view.toolTip()
    window.view.select(["50"])
    props = window.properties
    assert props.node_id == "50" and props.editors == {}
    help_text = props.widget().findChild(type(form.notes), "help").text()
    assert help_text.startswith("Unsupported ComfyUI node 'UpscaleModelLoader' (title 'Upscaler'): Latent Loom")
    assert help_text.endswith('Its data (read-only):\nmodel_name: "4x.pth"')
    # and the open reported them, node by node
    assert window.view.state("50") == "invalid" and window.view.state("51") == "invalid"


@pytest.mark.parametrize("version", [0.4, 1])
def test_a_ui_file_opens_with_its_unsupported_node_in_the_middle(window, tmp_path, version):
    graph = ui_graph(version)
    path = tmp_path / "ui.json"
    path.write_text(json.dumps(graph))
    assert window.open_path(str(path), ask=False)
    assert_red_placeholder(window, "30", "Sharpen (ImageSharpen, unsupported) · 30")
    node = window.doc.workflow.nodes["30"]
    assert node.type == "comfyui:ImageSharpen" and node.params == {"widgets_values": [1, 1.0, 0.5]}
    source = next(n for n in graph["nodes"] if n["id"] == 30)
    assert ports(window, "30") == ([i["name"] for i in source["inputs"]], ["0"])   # the file's own ports
    assert view_links(window) == doc_links(window)
    assert doc_links(window)[("30", "image")] == ("8", "image")
    assert doc_links(window)[("9", "image")] == ("30", "0")
    assert window.doc.pos("30") == (900.0, 120.0)
    assert window.view.form("30").notes.text() == "widgets_values: [1, 1.0, 0.5]"


def test_a_comfyui_png_dropped_on_the_canvas_opens_with_its_placeholder(make_window, tmp_path):
    window = make_window(load_default=False)
    png = _png(tmp_path / "comfy.png", workflow=json.dumps(ui_graph(1)))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(png))])
    window.view.view_dropped(mime, QPoint(0, 0))
    assert_red_placeholder(window, "30", "Sharpen (ImageSharpen, unsupported) · 30")
    assert view_links(window) == doc_links(window) and doc_links(window)[("9", "image")] == ("30", "0")


def test_save_keeps_them_and_convert_gives_them_back(window, tmp_path, capsys):
    path, prompt = api_file(tmp_path)
    read = open_document(path).data["nodes"]
    assert window.open_path(str(path), ask=False)
    saved = tmp_path / "saved.json"
    assert window.save_as(str(saved))
    nodes = json.loads(saved.read_text())["nodes"]
    assert set(nodes) == set(read)
    for nid, node in read.items():   # our own nodes may gain their params' defaults; nothing else changes
        assert nodes[nid]["type"] == node["type"] and nodes[nid]["inputs"] == node["inputs"], nid
        assert nodes[nid]["params"] == {**nodes[nid]["params"], **node["params"]}, nid
    for nid in ("50", "51", "9"):
        assert {k: v for k, v in nodes[nid].items() if k != "ui"} == {k: v for k, v in read[nid].items() if k != "ui"}
    assert nodes["50"]["ui"]["title"] == "Upscaler"

    before = window.doc.to_json()["nodes"]
    assert window.open_path(str(saved), ask=False)   # reopened: the same nodes, data and links
    assert window.doc.to_json()["nodes"] == before
    assert ports(window, "51") == (["upscale_model", "image"], ["0"])
    assert view_links(window) == doc_links(window)

    out = tmp_path / "back.json"
    assert main(["convert", str(saved), str(out), "--to", "comfyui-api"]) == 0
    back = json.loads(out.read_text())
    assert back["50"] == prompt["50"] and back["51"] == prompt["51"]
    assert back["9"]["inputs"]["images"] == ["51", 0]


def test_running_refuses_with_validations_message_and_the_graph_stays_editable(window, qtbot, tmp_path, capsys):
    path, _ = api_file(tmp_path)
    assert window.open_path(str(path), ask=False)
    window.warnings.clear()
    result, error = run_and_wait(qtbot, window)
    assert result is None and isinstance(error, WorkflowError)
    assert window.warnings == [("Cannot run", REFUSAL)]
    assert placeholders.unsupported(error.problems) == error.problems
    assert not window.runs.busy and window.runs.pending == [] and not window.runner.busy
    assert not (tmp_path / "out").exists()                       # nothing ran, nothing was written
    assert main(["validate", str(path)]) == 2                    # the same lines as `latentloom validate`
    cli = [line[4:] for line in capsys.readouterr().err.splitlines() if line.startswith("  - ")]
    assert cli == REFUSAL.split("\n")
    # the rest of the graph stays editable
    window.doc.set_param("3", "steps", 7)
    assert window.view.form("3").editors["steps"].value() == 7
    window.doc.disconnect("9", "image")
    window.doc.connect("8", "image", "9", "image")
    assert view_links(window) == doc_links(window)
    window.doc.undo_stack.undo()
    window.doc.undo_stack.undo()
    assert doc_links(window)[("9", "image")] == ("51", "0") and view_links(window) == doc_links(window)


def test_placeholders_move_delete_copy_and_paste(window, tmp_path):
    path, _ = api_file(tmp_path)
    assert window.open_path(str(path), ask=False)
    doc = window.doc
    data = doc.to_json()["nodes"]["51"]
    doc.move({"51": (700.0, 300.0)})
    assert doc.pos("51") == (700.0, 300.0) and window.view.nodes["51"].view.xy_pos == pytest.approx([700, 300])

    window.view.select(["51"])
    window.clipboard.delete_selected()
    assert "51" not in window.view.nodes and ("9", "image") not in doc_links(window)
    doc.undo_stack.undo()                       # back with its data, ports and links
    assert doc.to_json()["nodes"]["51"] == {**data, "ui": {**data["ui"], "pos": [700.0, 300.0]}}
    assert ports(window, "51") == (["upscale_model", "image"], ["0"])
    assert_view_matches(window)

    window.view.select(["50", "51"])
    assert window.clipboard.copy()
    new = window.clipboard.paste()
    assert sorted(new) == ["image_upscale_with_model", "upscale_model_loader"]
    copy_ = doc.workflow.nodes["image_upscale_with_model"]
    assert copy_.type == "comfyui:ImageUpscaleWithModel" and copy_.params == {}
    assert copy_.inputs == {"upscale_model": ("upscale_model_loader", "0")}   # the link inside the copy
    assert ports(window, "image_upscale_with_model") == (["upscale_model", "image"], ["0"])
    assert doc.workflow.nodes["upscale_model_loader"].params == {"model_name": "4x.pth"}
    assert_red_placeholder(window, "upscale_model_loader",
                           "Upscaler (UpscaleModelLoader, unsupported) · upscale_model_loader")
    doc.connect("8", "image", "image_upscale_with_model", "image")   # its ports take links again
    with pytest.raises(LinkRefused, match="types do not match"):
        doc.connect("4", "model", "image_upscale_with_model", "image")
    assert view_links(window) == doc_links(window)
    assert sorted(str(p) for p in placeholders.unsupported(doc.problems())) == sorted(REFUSAL.split("\n") + [
        "node 'image_upscale_with_model': unsupported ComfyUI node 'ImageUpscaleWithModel': Latent Loom has no "
        "equivalent yet",
        "node 'upscale_model_loader': unsupported ComfyUI node 'UpscaleModelLoader' (title 'Upscaler'): "
        "Latent Loom has no equivalent yet"])


def test_the_placeholder_ports_come_from_the_links_qt_free():
    from latentloom.app.core.workflow import parse
    from latentloom.nodes import catalog
    wf, _ = parse({"format": "latentloom.workflow", "version": 2, "nodes": {
        "a": {"type": "EmptyLatent"},
        "x": {"type": "comfyui:Foo", "params": {"k": [1, "two"]}, "inputs": {"latent": ["a", "latent"]}},
        "y": {"type": "comfyui:Bar", "inputs": {"in": ["x", "2"]}},
        "d": {"type": "VAEDecode", "inputs": {"latent": ["x", "0"]}}}})
    assert placeholders.ports(wf, "x", catalog) == ([("latent", "LATENT")], [("0", "LATENT"), ("2", "*")])
    assert placeholders.ports(wf, "y", catalog) == ([("in", "*")], [])
    assert placeholders.title(wf.nodes["x"]) == "Foo (unsupported)"
    assert placeholders.data_lines(wf.nodes["x"]) == ['k: [1, "two"]']
    spec = placeholders.spec(wf, "x", catalog)
    assert spec.type == "comfyui:Foo" and spec.params == () and spec.category == placeholders.CATEGORY
    assert all(p.optional for p in spec.inputs)
    assert catalog.get("comfyui:Foo") is None   # never in the catalog: validation still refuses it


def test_the_screenshot_script_draws_the_placeholders(qapp, tmp_path):
    from PIL import Image
    from scripts.screenshot_unsupported import main as shoot
    out = tmp_path / "shot.png"
    assert shoot(["--out", str(out)]) == 0
    pixels = Image.open(out).convert("RGB")
    fill = colors.CATEGORIES["unsupported"]
    assert pixels.width > 600 and sum(1 for p in pixels.getdata() if p == fill) > 5000   # red nodes drawn
