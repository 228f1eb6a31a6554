"""More core ComfyUI nodes: the mask and image nodes, VAELoader, and the custom-sampling family
(SamplerCustom / SamplerCustomAdvanced with their noise, guider, sampler and sigmas nodes)."""
import copy
import json

import numpy as np
import pytest
import torch

from latentloom.app.core.validate import check
from latentloom.app.core.workflow import WorkflowError
from latentloom.app.formats.comfy_import import to_document
from latentloom.nodes import catalog
from tests.support.comfy_runs import render
from tests.test_comfy_import import api_prompt, without_ui


def mapped(prompt):
    return without_ui(to_document(prompt))


def problems_of(prompt):
    with pytest.raises(WorkflowError) as err:
        to_document(prompt)
    return [str(p) for p in err.value.problems]


def valid(nodes):
    assert check({"format": "latentloom.workflow", "version": 2, "nodes": copy.deepcopy(nodes)}, catalog)[1] == []


# ---- Part A: simple core nodes

def mask_prompt():
    p = api_prompt()
    p.update({
        "20": {"class_type": "LoadImage", "inputs": {"image": "fox.png", "upload": "image"}},
        "30": {"class_type": "VAELoader", "inputs": {"vae_name": "vae-ft-mse.safetensors"}},
        "31": {"class_type": "ImageInvert", "inputs": {"image": ["20", 0]}},
        "32": {"class_type": "InvertMask", "inputs": {"mask": ["20", 1]}},
        "33": {"class_type": "SolidMask", "inputs": {"value": 0.25, "width": 64, "height": 48}},
        "34": {"class_type": "ThresholdMask", "inputs": {"mask": ["32", 0], "value": 0.5}},
        "35": {"class_type": "ImageToMask", "inputs": {"image": ["31", 0], "channel": "green"}},
        "36": {"class_type": "MaskToImage", "inputs": {"mask": ["35", 0]}},
        "37": {"class_type": "LoadImageMask", "inputs": {"image": "mask.png", "channel": "alpha", "upload": "image"}},
        "38": {"class_type": "ImageFromBatch", "inputs": {"image": ["36", 0], "batch_index": 2, "length": 3}},
        "39": {"class_type": "GrowMask", "inputs": {"mask": ["37", 0], "expand": 5, "tapered_corners": True}},
        "40": {"class_type": "GrowMask", "inputs": {"mask": ["39", 0], "expand": -3, "tapered_corners": False}},
    })
    p["8"]["inputs"]["vae"] = ["30", 0]
    return p


MASK_NODES = {
    "30": {"type": "LoadVAE", "params": {"path": "vae-ft-mse.safetensors"}, "inputs": {}},
    "31": {"type": "Invert", "params": {"precision": "float"}, "inputs": {"image": ["20", "image"]}},
    "32": {"type": "InvertMask", "params": {}, "inputs": {"mask": ["20", "mask"]}},
    "33": {"type": "SolidMask", "params": {"value": 0.25, "width": 64, "height": 48}, "inputs": {}},
    "34": {"type": "ThresholdMask", "params": {"value": 0.5, "strict": True}, "inputs": {"mask": ["32", "mask"]}},
    "35": {"type": "ImageToMask", "params": {"channel": "green"}, "inputs": {"image": ["31", "image"]}},
    "36": {"type": "MaskToImage", "params": {}, "inputs": {"mask": ["35", "mask"]}},
    "37": {"type": "LoadMask", "params": {"path": "mask.png", "channel": "alpha"}, "inputs": {}},
    "38": {"type": "ImageFromBatch", "params": {"index": 2, "length": 3}, "inputs": {"image": ["36", "image"]}},
    "39": {"type": "GrowMask", "params": {"pixels": 5, "shape": "diamond"}, "inputs": {"mask": ["37", "mask"]}},
    "40": {"type": "GrowMask", "params": {"pixels": -3, "shape": "square"}, "inputs": {"mask": ["39", "mask"]}},
}


def test_mask_and_image_nodes_map():
    n = mapped(mask_prompt())
    assert {k: n[k] for k in MASK_NODES} == MASK_NODES
    assert n["8"]["inputs"]["vae"] == ["30", "vae"]
    valid(n)


def test_mask_nodes_from_a_ui_file_take_their_widgets_in_order(tmp_path):
    from latentloom.app.session import open_document
    nodes = [
        {"id": 1, "type": "LoadImageMask", "mode": 0, "widgets_values": ["mask.png", "red", "image"],
         "outputs": [{"name": "MASK", "type": "MASK", "links": [1]}]},
        {"id": 2, "type": "GrowMask", "mode": 0, "widgets_values": [-4, False],
         "inputs": [{"name": "mask", "type": "MASK", "link": 1}], "outputs": [{"name": "MASK", "links": [2]}]},
        {"id": 3, "type": "ThresholdMask", "mode": 0, "widgets_values": [0.3],
         "inputs": [{"name": "mask", "type": "MASK", "link": 2}], "outputs": [{"name": "MASK", "links": [3]}]},
        {"id": 4, "type": "MaskToImage", "mode": 0, "widgets_values": [],
         "inputs": [{"name": "mask", "type": "MASK", "link": 3}], "outputs": [{"name": "IMAGE", "links": [4]}]},
        {"id": 5, "type": "ImageFromBatch", "mode": 0, "widgets_values": [1, 2],
         "inputs": [{"name": "image", "type": "IMAGE", "link": 4}], "outputs": [{"name": "IMAGE", "links": [5]}]},
        {"id": 6, "type": "ImageToMask", "mode": 0, "widgets_values": ["blue"],
         "inputs": [{"name": "image", "type": "IMAGE", "link": 5}], "outputs": [{"name": "MASK", "links": []}]},
        {"id": 7, "type": "SolidMask", "mode": 0, "widgets_values": [0.5, 32, 16], "outputs": []},
        {"id": 8, "type": "VAELoader", "mode": 0, "widgets_values": ["my.safetensors"], "outputs": []},
    ]
    links = [[i, i, 0, i + 1, 0, "X"] for i in range(1, 6)]
    path = tmp_path / "ui.json"
    path.write_text(json.dumps({"version": 0.4, "nodes": nodes, "links": links}))
    n = without_ui(open_document(path).data)
    assert n == {
        "1": {"type": "LoadMask", "params": {"path": "mask.png", "channel": "red"}, "inputs": {}},
        "2": {"type": "GrowMask", "params": {"pixels": -4, "shape": "square"}, "inputs": {"mask": ["1", "mask"]}},
        "3": {"type": "ThresholdMask", "params": {"value": 0.3, "strict": True}, "inputs": {"mask": ["2", "mask"]}},
        "4": {"type": "MaskToImage", "params": {}, "inputs": {"mask": ["3", "mask"]}},
        "5": {"type": "ImageFromBatch", "params": {"index": 1, "length": 2}, "inputs": {"image": ["4", "image"]}},
        "6": {"type": "ImageToMask", "params": {"channel": "blue"}, "inputs": {"image": ["5", "image"]}},
        "7": {"type": "SolidMask", "params": {"value": 0.5, "width": 32, "height": 16}, "inputs": {}},
        "8": {"type": "LoadVAE", "params": {"path": "my.safetensors"}, "inputs": {}},
    }


@pytest.mark.parametrize("name,kind", [("taesd", "TAESD preview"), ("taesdxl", "TAESD preview"),
                                       ("pixel_space", "pixel-space pass-through")])
def test_comfyuis_builtin_vae_names_are_refused_clearly(name, kind):
    p = mask_prompt()
    p["30"]["inputs"]["vae_name"] = name
    assert problems_of(p) == [f"node '30' input 'vae_name': {name!r} is ComfyUI's built-in {kind} autoencoder, "
                              "not a VAE file; Latent Loom has no equivalent: pick a VAE file from models/vae/"]


def test_image_to_mask_alpha_is_refused_clearly():
    p = mask_prompt()
    p["35"]["inputs"]["channel"] = "alpha"
    assert problems_of(p) == ["node '35' input 'channel': ComfyUI's images have no alpha channel (use "
                              "LoadImage's mask, or LoadImageMask with channel alpha)"]


def run(type, **kw):
    return catalog.get(type).fn(None if type != "GrowMask" else _Ctx(), **kw)


class _Ctx:
    def check_cancel(self):
        pass


def test_image_invert_and_threshold_are_comfyuis_formulas():
    image = torch.rand(2, 3, 5, 7)
    assert torch.equal(run("Invert", image=image, precision="float"), 1.0 - image)
    mask = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]).view(1, 1, 1, 5)
    assert run("ThresholdMask", mask=mask, value=0.5, strict=True).flatten().tolist() == [0, 0, 0, 1, 1]
    assert run("ThresholdMask", mask=mask, value=0.5, strict=False).flatten().tolist() == [0, 0, 1, 1, 1]
    assert run("ThresholdMask", mask=mask, value=0.5).flatten().tolist() == [0, 0, 1, 1, 1]  # the default: as before


def comfy_grow(mask, expand, tapered):
    """ComfyUI's GrowMask as its docs describe it: |expand| passes of a 3x3 grey dilation (erosion
    when negative), the corners of the kernel off when tapered, scipy's default border."""
    from scipy import ndimage
    c = 0 if tapered else 1
    kernel = np.array([[c, 1, c], [1, 1, 1], [c, 1, c]])
    out = mask.numpy()
    for _ in range(abs(expand)):
        out = (ndimage.grey_erosion if expand < 0 else ndimage.grey_dilation)(out, footprint=kernel)
    return torch.from_numpy(out)


@pytest.mark.parametrize("expand", [0, 1, 3, 7, -1, -4])
@pytest.mark.parametrize("tapered", [True, False])
def test_grow_mask_equals_comfyuis_iterated_kernel(expand, tapered):
    g = torch.Generator().manual_seed(3)
    mask = (torch.rand(1, 1, 24, 19, generator=g) > 0.93).float() * torch.rand(1, 1, 24, 19, generator=g)
    mask[0, 0, 0, 5] = 1.0  # at the border
    mask[0, 0, 10:16, 8:14] = 0.8  # a block, for shrinking
    if expand < 0:
        mask = 1.0 - mask
    ours = run("GrowMask", mask=mask, pixels=expand, shape="diamond" if tapered else "square")
    assert torch.equal(ours[0, 0], comfy_grow(mask[0, 0], expand, tapered))


def test_mask_nodes_round_trip_through_comfyuis_api_format(tmp_path):
    from latentloom.app.cli import main
    src, api, back = tmp_path / "api.json", tmp_path / "ours.json", tmp_path / "again.json"
    p = mask_prompt()
    src.write_text(json.dumps(p))
    assert main(["convert", str(src), str(api)]) == 0
    assert main(["convert", str(api), str(back), "--to", "comfyui-api"]) == 0
    again = json.loads(back.read_text())
    for cid in MASK_NODES:
        expected = {k: v for k, v in p[cid]["inputs"].items() if k != "upload"}
        assert again[cid] == {"class_type": p[cid]["class_type"], "inputs": expected}, cid


@pytest.mark.parametrize("node,problem", [
    ({"type": "Invert", "params": {"precision": "8bit"}, "inputs": {"image": ["dec", "image"]}},
     "node 'x' param 'precision': ComfyUI's ImageInvert has no '8bit'"),
    ({"type": "ImageToMask", "params": {"channel": "luminance"}, "inputs": {"image": ["dec", "image"]}},
     "node 'x' param 'channel': ComfyUI's ImageToMask has no 'luminance'"),
    ({"type": "GrowMask", "params": {"pixels": 3, "shape": "round"}, "inputs": {"mask": ["m", "mask"]}},
     "node 'x' param 'shape': ComfyUI's GrowMask has no 'round'"),
])
def test_exporting_values_comfyui_lacks_is_refused(node, problem):
    from latentloom.app.formats.comfy_export import to_prompt
    doc = {"format": "latentloom.workflow", "version": 2, "nodes": {
        "m": {"type": "SolidMask", "params": {}}, "x": node}}
    if "dec" in json.dumps(node):
        doc["nodes"]["dec"] = {"type": "MaskToImage", "inputs": {"mask": ["m", "mask"]}}
    with pytest.raises(WorkflowError) as err:
        to_prompt(check(doc, catalog)[0])
    assert [str(p) for p in err.value.problems] == [problem]


# ---- Part B: SamplerCustom / SamplerCustomAdvanced

def ksampler_prompt(sampler="euler_ancestral", scheduler="karras", denoise=1.0, cfg=7.0, seed=42):
    p = api_prompt(seed)
    p["3"]["inputs"].update(sampler_name=sampler, scheduler=scheduler, denoise=denoise, cfg=cfg)
    return p


def custom_prompt(sampler="euler_ancestral", scheduler="karras", denoise=1.0, cfg=7.0, seed=42, add_noise=True):
    p = api_prompt(seed)
    p["10"] = {"class_type": "KSamplerSelect", "inputs": {"sampler_name": sampler}}
    p["11"] = {"class_type": "BasicScheduler", "inputs": {"model": ["4", 0], "scheduler": scheduler, "steps": 3,
                                                          "denoise": denoise}}
    p["3"] = {"class_type": "SamplerCustom", "inputs": {
        "model": ["4", 0], "add_noise": add_noise, "noise_seed": seed, "cfg": cfg, "positive": ["6", 0],
        "negative": ["7", 0], "sampler": ["10", 0], "sigmas": ["11", 0], "latent_image": ["5", 0]}}
    return p


def advanced_prompt(sampler="euler_ancestral", scheduler="karras", denoise=1.0, cfg=7.0, seed=42,
                    noise="RandomNoise", guider="CFGGuider"):
    p = custom_prompt(sampler, scheduler, denoise, cfg, seed)
    p["12"] = ({"class_type": "RandomNoise", "inputs": {"noise_seed": seed}} if noise == "RandomNoise"
               else {"class_type": "DisableNoise", "inputs": {}})
    p["13"] = ({"class_type": "CFGGuider", "inputs": {"model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
                                                      "cfg": cfg}} if guider == "CFGGuider"
               else {"class_type": "BasicGuider", "inputs": {"model": ["4", 0], "conditioning": ["6", 0]}})
    p["3"] = {"class_type": "SamplerCustomAdvanced", "inputs": {
        "noise": ["12", 0], "guider": ["13", 0], "sampler": ["10", 0], "sigmas": ["11", 0],
        "latent_image": ["5", 0]}}
    return p


def filled(nodes):
    """Every param filled in from the catalog's defaults, so equal graphs compare equal."""
    return {nid: {**n, "params": {**catalog.get(n["type"]).defaults(), **n["params"]}} for nid, n in nodes.items()}


@pytest.mark.parametrize("sampler,scheduler,denoise", [("euler_ancestral", "karras", 1.0), ("dpmpp_2m", "normal", 0.6),
                                                       ("lms", "simple", 0.9999)])
def test_sampler_custom_maps_onto_what_ksampler_maps_onto(sampler, scheduler, denoise):
    expected = mapped(ksampler_prompt(sampler, scheduler, denoise))
    assert mapped(custom_prompt(sampler, scheduler, denoise)) == expected
    assert mapped(advanced_prompt(sampler, scheduler, denoise)) == expected
    valid(expected)


def test_sampler_custom_maps_exactly():
    n = mapped(advanced_prompt(seed=5, cfg=4.5, denoise=0.5))
    assert {k: n[k] for k in ("3", "3.noise", "3.scheduler")} == {
        "3.noise": {"type": "LatentNoise", "params": {"seed": 5}, "inputs": {}},
        "3.scheduler": {"type": "Scheduler", "params": {"name": "euler_ancestral", "sigmas": "karras",
                                                        "sampling": "comfyui"}, "inputs": {"model": ["4", "model"]}},
        "3": {"type": "Sampler", "params": {"steps": 3, "cfg": 4.5, "denoise": 0.5},
              "inputs": {"model": ["4", "model"], "positive": ["6", "conditioning"],
                         "negative": ["7", "conditioning"], "latent": ["5", "latent"], "noise": ["3.noise", "noise"],
                         "scheduler": ["3.scheduler", "scheduler"]}}}
    assert sorted(n) == ["3", "3.noise", "3.scheduler", "4", "5", "6", "7", "8", "9"]  # the folded nodes vanish


def test_disabled_noise_is_ksampler_advanced_without_noise_and_seed_0():
    """SamplerCustom's add_noise false keeps its seed (for ancestral noise); DisableNoise's seed is 0."""
    adv = api_prompt()
    adv["3"] = {"class_type": "KSamplerAdvanced", "inputs": {
        **{k: v for k, v in adv["3"]["inputs"].items() if k not in ("seed", "denoise")},
        "add_noise": "disable", "noise_seed": 0, "sampler_name": "euler_ancestral", "scheduler": "karras",
        "start_at_step": 0, "end_at_step": 10000, "return_with_leftover_noise": "disable"}}
    assert filled(mapped(advanced_prompt(noise="DisableNoise"))) == filled(mapped(adv))
    adv["3"]["inputs"]["noise_seed"] = 42
    assert filled(mapped(custom_prompt(add_noise=False))) == filled(mapped(adv))


def test_basic_guider_is_cfg_1_on_the_one_conditioning():
    n = mapped(advanced_prompt(guider="BasicGuider"))
    assert n["3"]["params"]["cfg"] == 1.0
    assert n["3"]["inputs"]["positive"] == n["3"]["inputs"]["negative"] == ["6", "conditioning"]


def test_rescale_cfg_on_the_guiders_model_reaches_the_sampler():
    p = advanced_prompt()
    p["14"] = {"class_type": "RescaleCFG", "inputs": {"model": ["4", 0], "multiplier": 0.5}}
    p["13"]["inputs"]["model"] = ["14", 0]
    assert mapped(p)["3"]["params"]["guidance_rescale"] == 0.5


def test_custom_sampling_from_a_ui_file_takes_its_widgets_in_order(tmp_path):
    from latentloom.app.session import open_document
    nodes = [
        {"id": 4, "type": "CheckpointLoaderSimple", "mode": 0, "widgets_values": ["tiny"],
         "outputs": [{"name": "MODEL", "links": [1, 2]}, {"name": "CLIP", "links": [3, 4]}, {"name": "VAE", "links": [5]}]},
        {"id": 6, "type": "CLIPTextEncode", "mode": 0, "widgets_values": ["a fox"],
         "inputs": [{"name": "clip", "link": 3}], "outputs": [{"name": "CONDITIONING", "links": [6]}]},
        {"id": 7, "type": "CLIPTextEncode", "mode": 0, "widgets_values": ["blurry"],
         "inputs": [{"name": "clip", "link": 4}], "outputs": [{"name": "CONDITIONING", "links": [7]}]},
        {"id": 5, "type": "EmptyLatentImage", "mode": 0, "widgets_values": [64, 64, 1],
         "outputs": [{"name": "LATENT", "links": [8]}]},
        {"id": 10, "type": "KSamplerSelect", "mode": 0, "widgets_values": ["heun"],
         "outputs": [{"name": "SAMPLER", "links": [9]}]},
        {"id": 11, "type": "BasicScheduler", "mode": 0, "widgets_values": ["beta", 4, 0.75],
         "inputs": [{"name": "model", "link": 2}], "outputs": [{"name": "SIGMAS", "links": [10]}]},
        {"id": 3, "type": "SamplerCustom", "mode": 0, "widgets_values": [False, 77, "randomize", 6.5],
         "inputs": [{"name": "model", "link": 1}, {"name": "positive", "link": 6}, {"name": "negative", "link": 7},
                    {"name": "sampler", "link": 9}, {"name": "sigmas", "link": 10}, {"name": "latent_image", "link": 8}],
         "outputs": [{"name": "output", "links": [11]}, {"name": "denoised_output", "links": []}]},
        {"id": 8, "type": "VAEDecode", "mode": 0, "inputs": [{"name": "samples", "link": 11}, {"name": "vae", "link": 5}],
         "outputs": [{"name": "IMAGE", "links": []}]},
    ]
    links = [[1, 4, 0, 3, 0], [2, 4, 0, 11, 0], [3, 4, 1, 6, 0], [4, 4, 1, 7, 0], [5, 4, 2, 8, 1], [6, 6, 0, 3, 1],
             [7, 7, 0, 3, 2], [8, 5, 0, 3, 5], [9, 10, 0, 3, 3], [10, 11, 0, 3, 4], [11, 3, 0, 8, 0]]
    path = tmp_path / "ui.json"
    path.write_text(json.dumps({"version": 0.4, "nodes": nodes, "links": [x + ["T"] for x in links]}))
    n = without_ui(open_document(path).data)
    assert n["3.noise"]["params"] == {"seed": 77}
    assert n["3.scheduler"]["params"] == {"name": "heun", "sigmas": "beta", "sampling": "comfyui", "add_noise": False}
    assert n["3"]["params"] == {"steps": 4, "cfg": 6.5, "denoise": 0.75}
    assert n["8"]["inputs"]["latent"] == ["3", "latent"]
    # RandomNoise and CFGGuider widgets
    nodes[6:7] = []
    nodes += [{"id": 12, "type": "RandomNoise", "mode": 0, "widgets_values": [9, "fixed"],
               "outputs": [{"name": "NOISE", "links": [12]}]},
              {"id": 13, "type": "CFGGuider", "mode": 0, "widgets_values": [3.5],
               "inputs": [{"name": "model", "link": 1}, {"name": "positive", "link": 6}, {"name": "negative", "link": 7}],
               "outputs": [{"name": "GUIDER", "links": [13]}]},
              {"id": 3, "type": "SamplerCustomAdvanced", "mode": 0, "widgets_values": [],
               "inputs": [{"name": "noise", "link": 12}, {"name": "guider", "link": 13}, {"name": "sampler", "link": 9},
                          {"name": "sigmas", "link": 10}, {"name": "latent_image", "link": 8}],
               "outputs": [{"name": "output", "links": [11]}, {"name": "denoised_output", "links": []}]}]
    links = [[1, 4, 0, 13, 0], [2, 4, 0, 11, 0], [3, 4, 1, 6, 0], [4, 4, 1, 7, 0], [5, 4, 2, 8, 1], [6, 6, 0, 13, 1],
             [7, 7, 0, 13, 2], [8, 5, 0, 3, 4], [9, 10, 0, 3, 2], [10, 11, 0, 3, 3], [11, 3, 0, 8, 0],
             [12, 12, 0, 3, 0], [13, 13, 0, 3, 1]]
    path.write_text(json.dumps({"version": 0.4, "nodes": nodes, "links": [x + ["T"] for x in links]}))
    n = without_ui(open_document(path).data)
    assert n["3.noise"]["params"] == {"seed": 9}
    assert n["3.scheduler"]["params"] == {"name": "heun", "sigmas": "beta", "sampling": "comfyui"}
    assert n["3"]["params"] == {"steps": 4, "cfg": 3.5, "denoise": 0.75}
    assert n["3"]["inputs"]["positive"] == ["6", "conditioning"] and n["3"]["inputs"]["model"] == ["4", "model"]


def unsupported_problems(prompt):
    from latentloom.app.formats.placeholders import unsupported
    doc = to_document(prompt)
    problems = check(doc, catalog)[1]
    assert problems == unsupported(problems)  # nothing else is wrong: the file opens, converts, shows placeholders
    return [str(p) for p in problems]


def test_sigmas_from_other_schedulers_are_named():
    p = custom_prompt()
    p["11"] = {"class_type": "KarrasScheduler", "inputs": {"steps": 3, "sigma_max": 14.6, "sigma_min": 0.03, "rho": 7.0}}
    assert sorted(unsupported_problems(p)) == [
        "node '10': unsupported ComfyUI node 'KSamplerSelect': KSamplerSelect maps only as an input of a "
        "SamplerCustom or SamplerCustomAdvanced that Latent Loom can run",
        "node '11': unsupported ComfyUI node 'KarrasScheduler': Latent Loom has no equivalent yet",
        "node '3': unsupported ComfyUI node 'SamplerCustom': input 'sigmas' comes from KarrasScheduler; only "
        "BasicScheduler maps here"]


def test_sigmas_through_split_or_flip_are_named():
    p = custom_prompt()
    p["12"] = {"class_type": "SplitSigmas", "inputs": {"sigmas": ["11", 0], "step": 1}}
    p["3"]["inputs"]["sigmas"] = ["12", 1]
    problems = unsupported_problems(p)
    assert ("node '3': unsupported ComfyUI node 'SamplerCustom': input 'sigmas' comes from "
            "SplitSigmas; only BasicScheduler maps here") in problems
    assert "node '11': unsupported ComfyUI node 'BasicScheduler': BasicScheduler maps only as an input of a " \
           "SamplerCustom or SamplerCustomAdvanced that Latent Loom can run" in problems
    doc = to_document(p)
    assert doc["nodes"]["12"]["inputs"] == {"sigmas": ["11", "0"]}  # links kept for the editor and convert
    assert doc["nodes"]["3"]["inputs"]["sigmas"] == ["12", "1"]


def test_other_samplers_guiders_and_noise_are_named():
    p = custom_prompt()
    p["10"] = {"class_type": "SamplerEulerAncestral", "inputs": {"eta": 0.5, "s_noise": 1.0}}
    assert ("node '3': unsupported ComfyUI node 'SamplerCustom': input 'sampler' comes from "
            "SamplerEulerAncestral; only KSamplerSelect maps here") in unsupported_problems(p)
    p = advanced_prompt()
    p["13"] = {"class_type": "DualCFGGuider", "inputs": {"model": ["4", 0], "cond1": ["6", 0], "cond2": ["6", 0],
                                                         "negative": ["7", 0], "cfg_conds": 5.0,
                                                         "cfg_cond2_negative": 2.0, "style": "regular"}}
    assert ("node '3': unsupported ComfyUI node 'SamplerCustomAdvanced': input 'guider' comes from "
            "DualCFGGuider; only CFGGuider or BasicGuider maps here") in unsupported_problems(p)


@pytest.mark.parametrize("sampler", ["dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"])
def test_samplers_whose_penultimate_sigma_ksampler_drops_keep_it_as_basic_scheduler_does(sampler, tmp_path):
    from latentloom.app.cli import main
    from latentloom.app.sd.comfy import schedules
    n = mapped(custom_prompt(sampler, denoise=0.5))
    assert n["3.scheduler"]["params"] == {"name": sampler, "sigmas": "karras", "sampling": "comfyui",
                                          "keep_penultimate": True}
    assert n["3"]["params"] == {"steps": 3, "cfg": 7.0, "denoise": 0.5}
    ms = schedules.ModelSampling({})
    # BasicScheduler: calculate_sigmas(int(steps / denoise)), the last steps + 1, nothing dropped
    assert torch.equal(schedules.sigmas_for(ms, "karras", sampler, 3, 0.5, keep_penultimate=True),
                       schedules.schedule(ms, "karras", 6)[-4:])
    assert not torch.equal(schedules.sigmas_for(ms, "karras", sampler, 3, 0.5), schedules.schedule(ms, "karras", 6)[-4:])
    src, ours, api = tmp_path / "api.json", tmp_path / "ours.json", tmp_path / "back.json"
    src.write_text(json.dumps(custom_prompt(sampler, denoise=0.5)))
    assert main(["convert", str(src), str(ours)]) == 0
    assert main(["convert", str(ours), str(api), "--to", "comfyui-api"]) == 0
    back = json.loads(api.read_text())
    assert back["3"]["class_type"] == "SamplerCustom" and back["3.sampler"] == {
        "class_type": "KSamplerSelect", "inputs": {"sampler_name": sampler}}
    assert back["3.sigmas"] == {"class_type": "BasicScheduler", "inputs": {
        "scheduler": "karras", "steps": 3, "denoise": 0.5, "model": ["4", 0]}}
    assert without_ui(to_document(back)) == n


def test_denoised_output_is_named():
    p = advanced_prompt()
    p["8"]["inputs"]["samples"] = ["3", 1]
    assert unsupported_problems(p)[0] == (
        "node '3': unsupported ComfyUI node 'SamplerCustomAdvanced': its output 'denoised_output' (used by node "
        "'8') is not supported: Latent Loom's Sampler gives only the final latent ('output')")


def test_custom_sampler_round_trips_as_a_ksampler(tmp_path):
    from latentloom.app.cli import main
    src, ours, api = tmp_path / "api.json", tmp_path / "ours.json", tmp_path / "back.json"
    src.write_text(json.dumps(custom_prompt()))
    assert main(["convert", str(src), str(ours)]) == 0
    assert main(["convert", str(ours), str(api), "--to", "comfyui-api"]) == 0
    assert json.loads(api.read_text())["3"] == ksampler_prompt()["3"]


def test_custom_samplers_render_what_ksampler_renders_on_the_tiny_model(tmp_path, tiny_dir):
    k, c, a = render(tmp_path, tiny_dir, [ksampler_prompt(denoise=1.0), custom_prompt(), advanced_prompt()])
    assert np.array_equal(k, c) and np.array_equal(k, a)


def test_basic_guider_renders_ksampler_at_cfg_1_on_the_tiny_model(tmp_path, tiny_dir):
    k, b, other = render(tmp_path, tiny_dir, [ksampler_prompt("euler", "normal", cfg=1.0),
                                              advanced_prompt("euler", "normal", guider="BasicGuider"),
                                              ksampler_prompt("euler", "normal", cfg=3.0)])
    assert np.array_equal(k, b) and not np.array_equal(k, other)


def test_custom_sampler_without_noise_and_with_denoise_exports_as_samplercustom(tmp_path):
    from latentloom.app.cli import main
    src, ours, api = tmp_path / "api.json", tmp_path / "ours.json", tmp_path / "back.json"
    src.write_text(json.dumps(custom_prompt(denoise=0.6, add_noise=False)))
    assert main(["convert", str(src), str(ours)]) == 0
    assert main(["convert", str(ours), str(api), "--to", "comfyui-api"]) == 0
    back = json.loads(api.read_text())
    assert back["3"]["class_type"] == "SamplerCustom" and back["3"]["inputs"]["add_noise"] is False
    assert without_ui(to_document(back)) == mapped(custom_prompt(denoise=0.6, add_noise=False))
