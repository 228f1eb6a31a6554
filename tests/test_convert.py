"""latentloom convert: ours -> ComfyUI API -> ours gives the same graph; nothing is dropped."""
import json

from latentloom.app.cli import main
from tests.test_comfy_import import api_prompt

OURS = {"format": "latentloom.workflow", "version": 2, "nodes": {
    "ckpt": {"type": "LoadCheckpoint", "params": {"path": "tiny", "config": "", "dtype": "auto"}},
    "lora": {"type": "LoadLoRA", "params": {"path": "a.safetensors", "strength_model": 0.5, "strength_clip": 0.25},
             "inputs": {"model": ["ckpt", "model"], "clip": ["ckpt", "clip"]}},
    "pos": {"type": "TextEncode", "params": {"text": "a (red:1.3) fox", "clip_skip": 1, "weighting": "comfyui"},
            "inputs": {"clip": ["lora", "clip"]}, "ui": {"title": "Positive"}},
    "neg": {"type": "TextEncode", "params": {"text": "blurry", "clip_skip": 0, "weighting": "comfyui"},
            "inputs": {"clip": ["ckpt", "clip"]}},
    "img": {"type": "LoadImage", "params": {"path": "fox.png"}},
    "enc": {"type": "VAEEncode", "params": {"sizing": "crop"}, "inputs": {"vae": ["ckpt", "vae"], "image": ["img", "image"]}},
    "mask": {"type": "SetLatentMask", "params": {"resize": "bilinear"},
             "inputs": {"latent": ["enc", "latent"], "mask": ["img", "mask"]}},
    "s1": {"type": "Sampler", "params": {"steps": 12, "cfg": 6.0, "denoise": 0.6, "guidance_rescale": 0.0},
           "inputs": {"model": ["lora", "model"], "positive": ["pos", "conditioning"], "negative": ["neg", "conditioning"],
                      "latent": ["mask", "latent"], "noise": ["s1.noise", "noise"], "scheduler": ["s1.scheduler", "scheduler"]}},
    "s1.noise": {"type": "LatentNoise", "params": {"seed": 11}},
    "s1.scheduler": {"type": "Scheduler", "params": {"name": "dpmpp_2m", "sigmas": "karras", "spacing": "default",
                                                     "sampling": "comfyui", "add_noise": True, "start_at_step": 0,
                                                     "end_at_step": 10000, "return_with_leftover_noise": False},
                     "inputs": {"model": ["lora", "model"]}},
    "s2": {"type": "Sampler", "params": {"steps": 10, "cfg": 6.0, "denoise": 1.0, "guidance_rescale": 0.0},
           "inputs": {"model": ["ckpt", "model"], "positive": ["pos", "conditioning"], "negative": ["neg", "conditioning"],
                      "latent": ["s1", "latent"], "noise": ["s2.noise", "noise"], "scheduler": ["s2.scheduler", "scheduler"]}},
    "s2.noise": {"type": "LatentNoise", "params": {"seed": 12}},
    "s2.scheduler": {"type": "Scheduler", "params": {"name": "euler_ancestral", "sigmas": "simple", "spacing": "default",
                                                     "sampling": "comfyui", "add_noise": False, "start_at_step": 4,
                                                     "end_at_step": 10000, "return_with_leftover_noise": False},
                     "inputs": {"model": ["ckpt", "model"]}},
    "dec": {"type": "VAEDecode", "inputs": {"vae": ["ckpt", "vae"], "latent": ["s2", "latent"]}},
    "save": {"type": "SaveImage", "params": {"filename_prefix": "fox", "to_8bit": "truncate"},
             "inputs": {"image": ["dec", "image"]}},
}}


def nodes_of(doc):
    """Nodes with every param filled in from the catalog's defaults: equal graphs compare equal."""
    from latentloom.nodes import catalog

    def params(n):
        spec = catalog.get(n["type"])
        return {**(spec.defaults() if spec else {}), **n.get("params", {})}
    return {nid: {"type": n["type"], "params": params(n), "inputs": n.get("inputs", {})}
            for nid, n in doc["nodes"].items()}


def test_round_trip_ours_comfyui_ours(tmp_path, capsys):
    src, api, back = tmp_path / "ours.json", tmp_path / "api.json", tmp_path / "back.json"
    src.write_text(json.dumps(OURS))
    assert main(["convert", str(src), str(api), "--to", "comfyui-api"]) == 0
    prompt = json.loads(api.read_text())
    assert prompt["s1"]["class_type"] == "KSampler" and prompt["s2"]["class_type"] == "KSamplerAdvanced"
    assert prompt["lora.clip_skip1"] == {"class_type": "CLIPSetLastLayer",
                                         "inputs": {"stop_at_clip_layer": -2, "clip": ["lora", 1]}}
    assert prompt["pos"]["_meta"] == {"title": "Positive"}
    assert main(["convert", str(api), str(back)]) == 0
    result = json.loads(back.read_text())
    assert nodes_of(result) == nodes_of(OURS)
    assert result["nodes"]["pos"]["ui"]["title"] == "Positive"


def test_comfyui_to_ours_keeps_unsupported_nodes_and_exports_them_back(tmp_path, capsys):
    p = api_prompt()
    p["50"] = {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "4x.pth"}}
    p["51"] = {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["50", 0], "image": ["8", 0]}}
    p["9"]["inputs"]["images"] = ["51", 0]
    src, ours, again = tmp_path / "api.json", tmp_path / "ours.json", tmp_path / "again.json"
    src.write_text(json.dumps(p))
    assert main(["convert", str(src), str(ours)]) == 0
    assert "note: node '50': unsupported ComfyUI node 'UpscaleModelLoader'" in capsys.readouterr().err
    assert main(["convert", str(ours), str(again), "--to", "comfyui-api"]) == 0
    back = json.loads(again.read_text())
    assert back["50"] == p["50"] and back["51"] == p["51"] and back["9"]["inputs"]["images"] == ["51", 0]
    for cid in ("3", "4", "5", "6", "7", "8"):
        assert back[cid]["inputs"] == p[cid]["inputs"], cid


def test_graphs_that_do_not_map_are_refused(tmp_path, capsys):
    doc = json.loads(json.dumps(OURS))
    doc["nodes"]["enc"]["type"] = "InpaintEncode"
    doc["nodes"]["enc"]["params"] = {}
    doc["nodes"]["enc"]["inputs"]["mask"] = ["img", "mask"]
    src = tmp_path / "ours.json"
    src.write_text(json.dumps(doc))
    assert main(["convert", str(src), str(tmp_path / "x.json"), "--to", "comfyui-api"]) == 2
    assert "node 'enc': InpaintEncode has no ComfyUI equivalent to export to" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
    bad = tmp_path / "bad.json"
    bad.write_text('{"1": {"class_type": "KSampler", "inputs": ')
    assert main(["convert", str(bad), str(tmp_path / "y.json")]) == 2
    assert "not valid JSON" in capsys.readouterr().err
