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
