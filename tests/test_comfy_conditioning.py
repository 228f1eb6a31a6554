"""ComfyUI's conditioning nodes, each against its formula written out here (from ComfyUI's nodes.py
and samplers.py), their import and export, and imported graphs that use them."""
import json

import numpy as np
import pytest
import torch

from latentloom.app.sd.comfy import conds
from latentloom.app.sd.handles import Conditioning
from latentloom.nodes import catalog
from tests.test_comfy_import import api_prompt, mapped, write


class Ctx:
    def __init__(self):
        self.lines = []

    def log(self, message):
        self.lines.append(message)


def node(type, **kw):
    ctx = Ctx()
    return catalog.get(type).fn(ctx, **kw), ctx.lines


def cond(tokens=77, seed=0, **settings):
    embeds = torch.randn(1, tokens, 8, generator=torch.Generator().manual_seed(seed))
    return Conditioning(embeds, "clip", 1, guides=("g",), settings=tuple(sorted(settings.items())))


def two_entries():
    a, b = cond(77, 1), cond(154, 2)
    return conds.with_entries(a, [(a.embeds, {}), (b.embeds, {"strength": 0.5})])


# ---- Part 1: nodes that only change embeds

def test_concat_appends_the_first_entry_of_from_to_every_entry_of_to():
    to, source = two_entries(), cond(77, 3)
    source = conds.with_entries(source, [(source.embeds, {}), (torch.ones(1, 77, 8), {})])
    out, log = node("ConditioningConcat", conditioning_to=to, conditioning_from=source)
    got = conds.entries(out)
    assert torch.equal(got[0][0], torch.cat([to.embeds, source.embeds], dim=1))
    assert torch.equal(got[1][0], torch.cat([to.extra[0][0], source.embeds], dim=1))
    assert [o for _, o in got] == [{}, {"strength": 0.5}]
    assert (out.clip, out.clip_skip, out.guides) == ("clip", 1, ("g",))
    assert log == ["ConditioningConcat: conditioning_from has 2 entries; only the first one is used (as in ComfyUI)"]


@pytest.mark.parametrize("to_len, from_len", [(77, 77), (77, 154), (154, 77)])
def test_average_cuts_or_zero_pads_from_to_the_length_of_to(to_len, from_len):
    to, source = cond(to_len, 1), cond(from_len, 2)
    out, log = node("ConditioningAverage", conditioning_to=to, conditioning_from=source, conditioning_to_strength=0.3)
    t0 = torch.zeros(1, to_len, 8)
    n = min(to_len, from_len)
    t0[:, :n] = source.embeds[:, :n]
    assert torch.equal(out.embeds, to.embeds * 0.3 + t0 * (1.0 - 0.3))
    assert out.guides == ("g",) and log == []


def test_zero_out_zeroes_every_entry_and_keeps_its_options():
    out, _ = node("ConditioningZeroOut", conditioning=two_entries())
    assert [(e.shape, bool(e.eq(0).all()), o) for e, o in conds.entries(out)] == [
        ((1, 77, 8), True, {}), ((1, 154, 8), True, {"strength": 0.5})]


def ops_prompt():
    p = api_prompt()
    p.update({
        "10": {"class_type": "ConditioningConcat", "inputs": {"conditioning_to": ["6", 0], "conditioning_from": ["7", 0]}},
        "11": {"class_type": "ConditioningAverage", "inputs": {"conditioning_to": ["10", 0],
                                                               "conditioning_from": ["6", 0],
                                                               "conditioning_to_strength": 0.75}},
        "12": {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["7", 0]}},
    })
    p["3"]["inputs"].update(positive=["11", 0], negative=["12", 0])
    return p


OPS = {
    "10": {"type": "ConditioningConcat", "params": {},
           "inputs": {"conditioning_to": ["6", "conditioning"], "conditioning_from": ["7", "conditioning"]}},
    "11": {"type": "ConditioningAverage", "params": {"conditioning_to_strength": 0.75},
           "inputs": {"conditioning_to": ["10", "conditioning"], "conditioning_from": ["6", "conditioning"]}},
    "12": {"type": "ConditioningZeroOut", "params": {}, "inputs": {"conditioning": ["7", "conditioning"]}},
}


def test_embedding_nodes_map_and_export_back(tmp_path):
    from latentloom.app.cli import main
    nodes = mapped(ops_prompt())
    assert {k: nodes[k] for k in OPS} == OPS
    assert nodes["3"]["inputs"]["positive"] == ["11", "conditioning"]
    src, ours, back = tmp_path / "api.json", tmp_path / "ours.json", tmp_path / "back.json"
    src.write_text(json.dumps(ops_prompt()))
    assert main(["convert", str(src), str(ours)]) == 0
    assert main(["convert", str(ours), str(back), "--to", "comfyui-api"]) == 0
    exported = json.loads(back.read_text())
    for k in OPS:
        assert exported[k] == ops_prompt()[k]
    assert exported["3"]["inputs"]["positive"] == ["11", 0] and exported["3"]["inputs"]["negative"] == ["12", 0]


def test_average_strength_comes_from_a_ui_files_widget(tmp_path):
    from latentloom.app.formats.comfy_ui import to_prompt
    graph = {"version": 1, "links": [{"id": 1, "origin_id": 6, "origin_slot": 0, "target_id": 11, "target_slot": 0},
                                     {"id": 2, "origin_id": 6, "origin_slot": 0, "target_id": 11, "target_slot": 1}],
             "nodes": [{"id": 6, "type": "CLIPTextEncode", "widgets_values": ["x"], "inputs": [], "outputs": []},
                       {"id": 11, "type": "ConditioningAverage", "widgets_values": [0.4], "outputs": [],
                        "inputs": [{"name": "conditioning_to", "link": 1}, {"name": "conditioning_from", "link": 2}]}]}
    assert to_prompt(graph)[0]["11"]["inputs"] == {"conditioning_to_strength": 0.4, "conditioning_to": ["6", 0],
                                                "conditioning_from": ["6", 0]}


def render(tmp_path, tiny_dir, prompts):
    from PIL import Image
    from latentloom.app.session import Session
    models = tmp_path / "models"
    if not models.exists():
        (models / "checkpoints").mkdir(parents=True)
        (models / "checkpoints" / "tiny").symlink_to(tiny_dir)
    out = []
    for i, p in enumerate(prompts):
        session = Session(catalog, models_dirs=[models], output_dir=tmp_path / f"out{i}", device="cpu")
        files = session.run(session.prepare(session.open(write(tmp_path, f"p{i}.json", p)))).outputs
        assert len(files) == 1
        out.append(np.array(Image.open(files[0])))
    return out


def test_imported_embedding_nodes_run_on_the_tiny_model(tmp_path, tiny_dir):
    same = ops_prompt()  # an average with strength 1 is conditioning_to itself; from the concat only: 154 tokens
    same["11"]["inputs"]["conditioning_to_strength"] = 1.0
    same["11"]["inputs"]["conditioning_to"] = ["6", 0]
    same["3"]["inputs"]["negative"] = ["7", 0]
    plain, ops, identity = render(tmp_path, tiny_dir, [api_prompt(), ops_prompt(), same])
    assert np.array_equal(plain, identity)
    assert not np.array_equal(plain, ops)
