"""ComfyUI API and UI workflows, ComfyUI and A1111 PNGs: what each reader builds, node by node."""
import copy
import json

import pytest
from PIL import Image, PngImagePlugin

from latentloom.app.core.workflow import WorkflowError
from latentloom.app.session import Session, open_document
from latentloom.nodes import catalog


def api_prompt(seed=42, lora=False):
    p = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a (red:1.2) fox", "clip": ["4", 1]},
              "_meta": {"title": "Positive"}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": seed, "steps": 3, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
            "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    }
    return p


EXPECTED = {
    "4": {"type": "LoadCheckpoint", "params": {"path": "tiny"}, "inputs": {}},
    "6": {"type": "TextEncode", "params": {"text": "a (red:1.2) fox", "clip_skip": 0, "weighting": "comfyui"},
          "inputs": {"clip": ["4", "clip"]}},
    "7": {"type": "TextEncode", "params": {"text": "blurry", "clip_skip": 0, "weighting": "comfyui"},
          "inputs": {"clip": ["4", "clip"]}},
    "5": {"type": "EmptyLatent", "params": {"width": 64, "height": 64, "batch_size": 1}, "inputs": {}},
    "3.noise": {"type": "LatentNoise", "params": {"seed": 42}, "inputs": {}},
    "3.scheduler": {"type": "Scheduler", "params": {"name": "euler", "sigmas": "normal", "sampling": "comfyui"},
                    "inputs": {"model": ["4", "model"]}},
    "3": {"type": "Sampler", "params": {"steps": 3, "cfg": 7.0, "denoise": 1.0},
          "inputs": {"model": ["4", "model"], "positive": ["6", "conditioning"], "negative": ["7", "conditioning"],
                     "latent": ["5", "latent"], "noise": ["3.noise", "noise"], "scheduler": ["3.scheduler", "scheduler"]}},
    "8": {"type": "VAEDecode", "params": {}, "inputs": {"vae": ["4", "vae"], "latent": ["3", "latent"]}},
    "9": {"type": "SaveImage", "params": {"filename_prefix": "ComfyUI", "to_8bit": "truncate"},
          "inputs": {"image": ["8", "image"]}},
}


def without_ui(doc):
    return {nid: {k: v for k, v in n.items() if k != "ui"} for nid, n in doc["nodes"].items()}


def write(tmp_path, name, value):
    path = tmp_path / name
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    return path


def test_api_prompt_maps_every_node_and_keeps_ids_and_titles(tmp_path):
    doc = open_document(write(tmp_path, "api.json", api_prompt()))
    assert doc.reader == "comfyui-api"
    assert without_ui(doc.data) == EXPECTED
    assert doc.data["nodes"]["6"]["ui"] == {"title": "Positive"}
    wrapped = open_document(write(tmp_path, "body.json", {"prompt": api_prompt(), "client_id": "x"}))
    assert wrapped.data == doc.data


def _ui_graph(version):
    """The API prompt above as ComfyUI's editor saves it, plus a bypassed LoRA, a muted save,
    a reroute, a Primitive feeding the seed, a group and a note."""
    nodes = [
        {"id": 4, "type": "CheckpointLoaderSimple", "pos": [10, 20], "mode": 0, "widgets_values": ["tiny"],
         "inputs": [], "outputs": [{"name": "MODEL", "type": "MODEL", "links": [8]},
                                   {"name": "CLIP", "type": "CLIP", "links": [3, 4, 9]},
                                   {"name": "VAE", "type": "VAE", "links": [11]}]},
        {"id": 11, "type": "LoraLoader", "mode": 4, "widgets_values": ["detail.safetensors", 0.8, 0.8],
         "inputs": [{"name": "model", "type": "MODEL", "link": 8}, {"name": "clip", "type": "CLIP", "link": 9}],
         "outputs": [{"name": "MODEL", "type": "MODEL", "links": [1]}, {"name": "CLIP", "type": "CLIP", "links": []}]},
        {"id": 6, "type": "CLIPTextEncode", "title": "Positive", "mode": 0, "widgets_values": ["a (red:1.2) fox"],
         "inputs": [{"name": "clip", "type": "CLIP", "link": 3}], "outputs": [{"name": "CONDITIONING", "links": [5]}]},
        {"id": 7, "type": "CLIPTextEncode", "mode": 0, "widgets_values": ["blurry"],
         "inputs": [{"name": "clip", "type": "CLIP", "link": 4}], "outputs": [{"name": "CONDITIONING", "links": [6]}]},
        {"id": 5, "type": "EmptyLatentImage", "mode": 0, "widgets_values": [64, 64, 1], "inputs": [],
         "outputs": [{"name": "LATENT", "type": "LATENT", "links": [7]}]},
        {"id": 13, "type": "PrimitiveNode", "mode": 0, "widgets_values": [42, "fixed"],
         "outputs": [{"name": "INT", "type": "INT", "links": [12], "widget": {"name": "seed"}}]},
        {"id": 3, "type": "KSampler", "mode": 0, "widgets_values": [42, "randomize", 3, 7.0, "euler", "normal", 1.0],
         "inputs": [{"name": "model", "type": "MODEL", "link": 1}, {"name": "positive", "type": "CONDITIONING", "link": 5},
                    {"name": "negative", "type": "CONDITIONING", "link": 6},
                    {"name": "latent_image", "type": "LATENT", "link": 7},
                    {"name": "seed", "type": "INT", "link": 12, "widget": {"name": "seed"}}],
         "outputs": [{"name": "LATENT", "type": "LATENT", "links": [13]}]},
        {"id": 14, "type": "Reroute", "mode": 0, "inputs": [{"name": "", "type": "*", "link": 13}],
         "outputs": [{"name": "", "type": "LATENT", "links": [10]}]},
        {"id": 8, "type": "VAEDecode", "mode": 0, "inputs": [{"name": "samples", "type": "LATENT", "link": 10},
                                                             {"name": "vae", "type": "VAE", "link": 11}],
         "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [14, 15]}]},
        {"id": 9, "type": "SaveImage", "mode": 0, "widgets_values": ["ComfyUI"],
         "inputs": [{"name": "images", "type": "IMAGE", "link": 14}], "outputs": []},
        {"id": 15, "type": "SaveImage", "mode": 2, "widgets_values": ["muted"],
         "inputs": [{"name": "images", "type": "IMAGE", "link": 15}], "outputs": []},
        {"id": 16, "type": "Note", "mode": 0, "widgets_values": ["remember the fox"]},
    ]
    links = [(1, 11, 0, 3, 0, "MODEL"), (3, 4, 1, 6, 0, "CLIP"), (4, 4, 1, 7, 0, "CLIP"), (5, 6, 0, 3, 1, "CONDITIONING"),
             (6, 7, 0, 3, 2, "CONDITIONING"), (7, 5, 0, 3, 3, "LATENT"), (8, 4, 0, 11, 0, "MODEL"),
             (9, 4, 1, 11, 1, "CLIP"), (10, 14, 0, 8, 0, "LATENT"), (11, 4, 2, 8, 1, "VAE"), (12, 13, 0, 3, 4, "INT"),
             (13, 3, 0, 14, 0, "LATENT"), (14, 8, 0, 9, 0, "IMAGE"), (15, 8, 0, 15, 0, "IMAGE")]
    if version == 1:
        links = [dict(zip(("id", "origin_id", "origin_slot", "target_id", "target_slot", "type"), x)) for x in links]
    else:
        links = [list(x) for x in links]
    return {"last_node_id": 16, "last_link_id": 15, "nodes": nodes, "links": links, "version": version,
            "groups": [{"title": "Sampling", "bounding": [0, 0, 100, 100]}]}


@pytest.mark.parametrize("version", [0.4, 1])
def test_ui_graph_resolves_widgets_bypass_mute_primitives_and_reroutes(tmp_path, version):
    doc = open_document(write(tmp_path, "ui.json", _ui_graph(version)))
    assert doc.reader == "comfyui-ui"
    assert without_ui(doc.data) == EXPECTED  # the bypassed LoRA, the muted save, the note are gone
    assert doc.data["nodes"]["6"]["ui"] == {"title": "Positive"}
    assert doc.data["nodes"]["4"]["ui"] == {"pos": [10, 20]}


def test_seed_widget_value_counts_control_after_generate():
    graph = _ui_graph(1)
    graph["nodes"] = [n for n in graph["nodes"] if n["type"] != "PrimitiveNode"]
    sampler = next(n for n in graph["nodes"] if n["id"] == 3)
    sampler["inputs"] = sampler["inputs"][:4]
    sampler["widgets_values"] = [99, "fixed", 4, 6.5, "dpmpp_2m", "karras", 0.75]
    from latentloom.app.formats import read_ui
    nodes = read_ui(graph)["nodes"]
    assert nodes["3.noise"]["params"] == {"seed": 99}
    assert nodes["3"]["params"] == {"steps": 4, "cfg": 6.5, "denoise": 0.75}
    assert nodes["3.scheduler"]["params"]["sigmas"] == "karras"


def _png(path, **chunks):
    info = PngImagePlugin.PngInfo()
    for k, v in chunks.items():
        info.add_text(k, v)
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


def test_comfyui_png_prefers_the_ui_graph_and_falls_back_to_the_prompt(tmp_path):
    ui, api = json.dumps(_ui_graph(1)), json.dumps(api_prompt(seed=5))
    doc = open_document(_png(tmp_path / "a.png", prompt=api, workflow=ui))
    assert doc.reader == "comfyui-png" and doc.data["nodes"]["3.noise"]["params"]["seed"] == 42
    doc = open_document(_png(tmp_path / "b.png", prompt=api, workflow="{garbage"))
    assert doc.data["nodes"]["3.noise"]["params"]["seed"] == 5
    doc = open_document(_png(tmp_path / "c.png", prompt=api))
    assert without_ui(doc.data)["3"] == EXPECTED["3"]


def test_our_png_key_and_legacy_key_still_win(tmp_path):
    ours = {"format": "latentloom.workflow", "version": 2, "nodes": {}}
    assert open_document(_png(tmp_path / "a.png", **{"latentloom.workflow": json.dumps(ours),
                                                      "parameters": "x"})).reader == "latentloom-png"
    assert open_document(_png(tmp_path / "b.png", workflow=json.dumps(ours))).reader == "latentloom-png"


A1111 = ("a <lora:detail:0.6> (red:1.2) fox, [snow]\nsecond line\n"
         "Negative prompt: blurry, (ugly:1.3)\n"
         'Steps: 24, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 1234, Size: 512x768, '
         'Model hash: abc, Model: sd15-real, Clip skip: 2, Lora hashes: "detail: 1a2b, x: 3c", Version: v1.9')


def test_a1111_png_builds_the_equivalent_graph(tmp_path):
    doc = open_document(_png(tmp_path / "a.png", parameters=A1111))
    assert doc.reader == "a1111-png"
    n = without_ui(doc.data)
    assert n["ckpt"]["params"] == {"path": "sd15-real.safetensors"}
    assert n["lora1"] == {"type": "LoadLoRA", "params": {"path": "detail.safetensors", "strength_model": 0.6,
                                                         "strength_clip": 0.6},
                          "inputs": {"model": ["ckpt", "model"], "clip": ["ckpt", "clip"]}}
    assert n["positive"]["params"] == {"text": "a  (red:1.2) fox, [snow]\nsecond line", "clip_skip": 1,
                                       "weighting": "a1111"}
    assert n["positive"]["inputs"] == {"clip": ["lora1", "clip"]}
    assert n["negative"]["params"]["text"] == "blurry, (ugly:1.3)"
    assert n["latent"]["params"] == {"width": 512, "height": 768, "batch_size": 1}
    assert n["noise"]["params"] == {"seed": 1234}
    assert n["scheduler"]["params"] == {"name": "dpmpp_2m", "sigmas": "karras", "sampling": "comfyui"}
    assert n["sampler"]["params"] == {"steps": 24, "cfg": 6.5, "denoise": 1.0}
    assert n["sampler"]["inputs"]["model"] == ["lora1", "model"]
    wf, problems = __import__("latentloom.app.core.validate", fromlist=["check"]).check(doc.data, catalog)
    assert problems == []


def test_a1111_img2img_asks_for_the_source_image(tmp_path):
    text = "a fox\nSteps: 10, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 64x64, Denoising strength: 0.4"
    doc = open_document(_png(tmp_path / "a.png", parameters=text))
    n = doc.data["nodes"]
    assert n["latent"]["type"] == "VAEEncode" and n["image"]["params"] == {"path": ""}
    assert n["sampler"]["params"]["denoise"] == 1.0 and n["scheduler"]["params"]["name"] == "euler_ancestral"
    assert n["scheduler"]["params"]["start_at_step"] == 10 - int(0.4 * 10) - 1
    with pytest.raises(WorkflowError) as err:
        Session(catalog).prepare(doc)
    assert "node 'image' param 'path': a file is required" in str(err.value)


def mapped(prompt):
    from latentloom.app.formats.comfy_import import to_document
    return without_ui(to_document(prompt))


def test_other_nodes_map():
    p = api_prompt()
    p["10"] = {"class_type": "CLIPSetLastLayer", "inputs": {"stop_at_clip_layer": -2, "clip": ["4", 1]}}
    p["11"] = {"class_type": "LoraLoader", "inputs": {"lora_name": "a.safetensors", "strength_model": 0.5,
                                                      "strength_clip": 0.25, "model": ["4", 0], "clip": ["10", 0]}}
    p["12"] = {"class_type": "LoraLoaderModelOnly", "inputs": {"lora_name": "b.safetensors", "strength_model": 0.7,
                                                               "model": ["11", 0]}}
    p["6"]["inputs"]["clip"] = ["11", 1]
    p["20"] = {"class_type": "LoadImage", "inputs": {"image": "fox.png", "upload": "image"}}
    p["21"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["20", 0], "vae": ["4", 2]}}
    p["22"] = {"class_type": "SetLatentNoiseMask", "inputs": {"samples": ["21", 0], "mask": ["20", 1]}}
    p["23"] = {"class_type": "VAEEncodeForInpaint", "inputs": {"pixels": ["20", 0], "vae": ["4", 2],
                                                               "mask": ["20", 1], "grow_mask_by": 4}}
    p["24"] = {"class_type": "InpaintModelConditioning", "inputs": {
        "positive": ["6", 0], "negative": ["7", 0], "vae": ["4", 2], "pixels": ["20", 0], "mask": ["20", 1],
        "noise_mask": True}}
    p["25"] = {"class_type": "KSamplerAdvanced", "inputs": {
        "add_noise": "disable", "noise_seed": 3, "steps": 10, "cfg": 5.0, "sampler_name": "dpmpp_2m_sde",
        "scheduler": "exponential", "start_at_step": 2, "end_at_step": 8, "return_with_leftover_noise": "enable",
        "model": ["12", 0], "positive": ["24", 0], "negative": ["24", 1], "latent_image": ["24", 2]}}
    p["26"] = {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}}
    n = mapped(p)
    assert n["6"]["params"]["clip_skip"] == 1 and n["6"]["inputs"] == {"clip": ["11", "clip"]}
    assert n["7"]["params"]["clip_skip"] == 0
    assert n["11"] == {"type": "LoadLoRA", "params": {"path": "a.safetensors", "strength_model": 0.5,
                                                      "strength_clip": 0.25},
                       "inputs": {"model": ["4", "model"], "clip": ["4", "clip"]}}
    assert n["12"] == {"type": "LoadLoRA", "params": {"path": "b.safetensors", "strength_model": 0.7,
                                                      "strength_clip": 0.0},
                       "inputs": {"model": ["11", "model"], "clip": ["11", "clip"]}}
    assert n["20"] == {"type": "LoadImage", "params": {"path": "fox.png"}, "inputs": {}}
    assert n["21"] == {"type": "VAEEncode", "params": {"sizing": "crop"},
                       "inputs": {"vae": ["4", "vae"], "image": ["20", "image"]}}
    assert n["22"] == {"type": "SetLatentMask", "params": {"resize": "bilinear"},
                       "inputs": {"latent": ["21", "latent"], "mask": ["20", "mask"]}}
    assert n["23"] == {"type": "VAEEncodeForInpaint", "params": {"grow_mask_by": 4},
                       "inputs": {"vae": ["4", "vae"], "image": ["20", "image"], "mask": ["20", "mask"]}}
    assert n["24"] == {"type": "InpaintEncode", "params": {"masking": "comfyui", "noise_mask": True},
                       "inputs": {"vae": ["4", "vae"], "image": ["20", "image"], "mask": ["20", "mask"]}}
    assert n["25"]["inputs"]["positive"] == ["6", "conditioning"] and n["25"]["inputs"]["latent"] == ["24", "latent"]
    assert n["25"]["params"] == {"steps": 10, "cfg": 5.0}
    assert n["25.scheduler"]["params"] == {"name": "dpmpp_2m_sde", "sigmas": "exponential", "sampling": "comfyui",
                                           "add_noise": False, "start_at_step": 2, "end_at_step": 8,
                                           "return_with_leftover_noise": True}
    assert n["25.scheduler"]["inputs"] == {"model": ["12", "model"]}
    assert n["26"] == {"type": "SaveImage", "params": {"filename_prefix": "preview", "to_8bit": "truncate"},
                       "inputs": {"image": ["8", "image"]}}
    from latentloom.app.core.validate import check
    doc = {"format": "latentloom.workflow", "version": 2, "nodes": copy.deepcopy(n)}
    assert check(doc, catalog)[1] == []


@pytest.mark.parametrize("ctype,inputs,expected", [
    ("LatentUpscale", {"upscale_method": "bilinear", "width": 96, "height": 80, "crop": "disabled", "samples": ["5", 0]},
     {"type": "LatentUpscale", "params": {"method": "bilinear", "width": 96, "height": 80},
      "inputs": {"latent": ["5", "latent"]}}),
    ("LatentUpscaleBy", {"upscale_method": "area", "scale_by": 1.5, "samples": ["5", 0]},
     {"type": "LatentUpscale", "params": {"method": "area", "scale": 1.5}, "inputs": {"latent": ["5", "latent"]}}),
    ("LatentUpscaleBy", {"upscale_method": "bislerp", "scale_by": 2.0, "samples": ["5", 0]},
     {"type": "LatentUpscale", "params": {"method": "bislerp", "scale": 2.0}, "inputs": {"latent": ["5", "latent"]}}),
    ("LatentUpscale", {"upscale_method": "bislerp", "width": 96, "height": 80, "crop": "center", "samples": ["5", 0]},
     {"type": "LatentUpscale", "params": {"method": "bislerp", "width": 96, "height": 80, "crop": "center"},
      "inputs": {"latent": ["5", "latent"]}}),
    ("ImageScale", {"upscale_method": "lanczos", "width": 96, "height": 80, "crop": "disabled", "image": ["8", 0]},
     {"type": "ImageScale", "params": {"method": "lanczos", "width": 96, "height": 80, "pixels": "comfyui"},
      "inputs": {"image": ["8", "image"]}}),
])
def test_scaling_nodes_map(ctype, inputs, expected):
    p = api_prompt()
    p["30"] = {"class_type": ctype, "inputs": inputs}
    assert mapped(p)["30"] == expected
    if expected["type"] not in catalog:
        pytest.skip(f"{expected['type']} is not in this catalog yet: mapping checked, validation not")
    from latentloom.app.core.validate import check
    assert check({"format": "latentloom.workflow", "version": 2, "nodes": mapped(p)}, catalog)[1] == []


def test_controlnet_nodes_map():
    p = api_prompt()
    p["40"] = {"class_type": "ControlNetLoader", "inputs": {"control_net_name": "canny.safetensors"}}
    p["41"] = {"class_type": "LoadImage", "inputs": {"image": "edges.png"}}
    p["42"] = {"class_type": "ControlNetApplyAdvanced", "inputs": {
        "positive": ["6", 0], "negative": ["7", 0], "control_net": ["40", 0], "image": ["41", 0],
        "strength": 0.8, "start_percent": 0.1, "end_percent": 0.9}}
    p["3"]["inputs"]["positive"], p["3"]["inputs"]["negative"] = ["42", 0], ["42", 1]
    n = mapped(p)
    assert n["40"] == {"type": "LoadControlNet", "params": {"path": "canny.safetensors"}, "inputs": {}}
    assert n["42"] == {"type": "ApplyControlNet", "params": {"strength": 0.8, "start": 0.1, "end": 0.9},
                       "inputs": {"positive": ["6", "conditioning"], "negative": ["7", "conditioning"],
                                  "controlnet": ["40", "controlnet"], "image": ["41", "image"]}}
    assert n["3"]["inputs"]["positive"] == ["42", "positive"] and n["3"]["inputs"]["negative"] == ["42", "negative"]
    if "ApplyControlNet" not in catalog:
        pytest.skip("the ControlNet nodes are not in this catalog yet: mapping checked, validation not")


def test_unsupported_nodes_are_kept_and_each_is_reported(tmp_path, capsys):
    p = api_prompt()
    p["50"] = {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "4x.pth"}, "_meta": {"title": "Upscaler"}}
    p["51"] = {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["50", 0], "image": ["8", 0]}}
    p["9"]["inputs"]["images"] = ["51", 0]
    doc = open_document(write(tmp_path, "api.json", p))
    n = doc.data["nodes"]
    assert n["50"] == {"type": "comfyui:UpscaleModelLoader", "params": {"model_name": "4x.pth"}, "inputs": {},
                       "ui": {"title": "Upscaler"}}
    assert n["51"]["inputs"] == {"upscale_model": ["50", "0"], "image": ["8", "image"]}
    assert n["9"]["inputs"] == {"image": ["51", "0"]}
    with pytest.raises(WorkflowError) as err:
        Session(catalog).prepare(doc)
    assert [str(x) for x in err.value.problems] == [
        "node '50': unsupported ComfyUI node 'UpscaleModelLoader' (title 'Upscaler'): Latent Loom has no equivalent yet",
        "node '51': unsupported ComfyUI node 'ImageUpscaleWithModel': Latent Loom has no equivalent yet"]
    from latentloom.app.cli import main
    assert main(["validate", str(tmp_path / "api.json")]) == 2
    err_text = capsys.readouterr().err
    assert "'UpscaleModelLoader' (title 'Upscaler')" in err_text and "'ImageUpscaleWithModel'" in err_text


def test_subgraphs_are_reported_clearly():
    graph = _ui_graph(1)
    graph["definitions"] = {"subgraphs": [{"id": "a1b2-c3", "name": "Upscale block"}]}
    graph["nodes"].append({"id": 30, "type": "a1b2-c3", "title": "My block", "mode": 0, "inputs": [], "outputs": []})
    from latentloom.app.formats import read_ui
    with pytest.raises(WorkflowError) as err:
        read_ui(graph)
    assert str(err.value) == ("node '30': subgraph node 'My block': subgraphs are not supported; unpack it in "
                              "ComfyUI (Convert to nodes) first")


def _broken_graphs():
    ui = _ui_graph(1)
    yield "truncated", json.dumps(api_prompt())[:100]
    yield "truncated-ui", json.dumps(ui)[:-30]
    yield "node-not-object", {"1": 5, "2": {"class_type": "KSampler", "inputs": {}}}
    yield "inputs-list", {"1": {"class_type": "VAEDecode", "inputs": [1, 2]}}
    yield "missing-link", {"1": {"class_type": "VAEDecode", "inputs": {"samples": ["9", 0], "vae": ["8", 2]}},
                           "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}
    yield "cycle", {"1": {"class_type": "VAEDecode", "inputs": {"samples": ["2", 0], "vae": ["2", 0]}},
                    "2": {"class_type": "VAEEncode", "inputs": {"pixels": ["1", 0], "vae": ["1", 0]}}}
    yield "bad-output-index", {**api_prompt(), "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 7],
                                                                                           "vae": ["4", 2]}}}
    yield "wrong-widget-type", {**ui, "nodes": [{**n, "widgets_values": 5} if n["id"] == 3 else n for n in ui["nodes"]]}
    yield "links-not-list", {**ui, "links": {"a": 1}}
    yield "link-garbage", {**ui, "links": ui["links"] + [["x", None, "a"]]}
    yield "node-garbage", {**ui, "nodes": ui["nodes"] + [7]}
    yield "inputs-garbage", {**ui, "nodes": [{**n, "inputs": "x"} if n["id"] == 3 else n for n in ui["nodes"]]}
    yield "reroute-loop", {"nodes": [{"id": 1, "type": "Reroute", "inputs": [{"link": 1}], "outputs": []},
                                     {"id": 2, "type": "SaveImage", "inputs": [{"name": "images", "link": 1}]}],
                           "links": [[1, 1, 0, 1, 0, "*"]], "version": 0.4}
    yield "deep", "[" * 100000 + "]" * 100000


@pytest.mark.parametrize("name,value", list(_broken_graphs()), ids=[n for n, _ in _broken_graphs()])
def test_malformed_files_give_clear_errors(tmp_path, name, value):
    path = write(tmp_path, "bad.json", value)
    try:
        doc = open_document(path)
    except WorkflowError as e:
        assert e.source == str(path) and e.problems
        return
    with pytest.raises(WorkflowError):  # read, but not valid
        Session(catalog).prepare(doc)


@pytest.mark.parametrize("chunks", [{"workflow": "\x00\x01garbage", "prompt": "[1, 2"},
                                    {"prompt": json.dumps({"1": {"class_type": 5}})},
                                    {"workflow": json.dumps({"nodes": "x", "links": []})},
                                    {"parameters": "\x00" * 10}])
def test_png_chunks_with_garbage_give_clear_errors(tmp_path, chunks):
    path = _png(tmp_path / "bad.png", **chunks)
    try:
        doc = open_document(path)
    except WorkflowError as e:
        assert e.source == str(path) and e.problems
        return
    with pytest.raises(WorkflowError):
        Session(catalog).prepare(doc)


def test_imported_graph_runs_on_the_tiny_model(tmp_path, tiny_dir):
    import numpy as np
    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    (models / "checkpoints" / "tiny").symlink_to(tiny_dir)
    session = Session(catalog, models_dirs=[models], output_dir=tmp_path / "out", device="cpu")
    ui = session.prepare(session.open(write(tmp_path, "ui.json", _ui_graph(1))))
    api = session.prepare(session.open(write(tmp_path, "api.json", api_prompt())), ["3.noise.seed=42"])
    a, b = session.run(ui).outputs, session.run(api).outputs
    assert len(a) == len(b) == 1
    assert np.array_equal(np.array(Image.open(a[0])), np.array(Image.open(b[0])))


def test_set_addresses_imported_ids_and_titles(tmp_path):
    doc = open_document(write(tmp_path, "api.json", api_prompt()))
    from latentloom.app.session.overrides import apply_sets
    data = copy.deepcopy(doc.data)
    problems, _ = apply_sets(data, ['Positive.text="a blue fox"', "3.noise.seed=9", "3.steps=5"])
    assert problems == []
    n = data["nodes"]
    assert n["6"]["params"]["text"] == "a blue fox" and n["3.noise"]["params"]["seed"] == 9
    assert n["3"]["params"]["steps"] == 5


def test_load_image_names_resolve_through_comfyuis_input_folder(tmp_path):
    from latentloom.app.engine.files import Files
    (tmp_path / "ComfyUI" / "models").mkdir(parents=True)
    (tmp_path / "ComfyUI" / "input").mkdir()
    (tmp_path / "ComfyUI" / "input" / "fox.png").write_bytes(b"x")
    found = Files([tmp_path / "ComfyUI" / "models"]).resolve("fox.png", "images")
    assert found.path == str((tmp_path / "ComfyUI" / "input" / "fox.png").resolve())
