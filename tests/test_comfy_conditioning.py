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


# ---- Part 2: several entries per side, mixed as ComfyUI's calc_cond_batch mixes them

from latentloom.app.core.errors import UserError  # noqa: E402
from latentloom.app.sd.comfy import schedules  # noqa: E402
from latentloom.app.sd.comfy.handle import describe  # noqa: E402
from latentloom.app.sd.comfy.sample import sample  # noqa: E402
from latentloom.app.sd.handles import Latent  # noqa: E402

CONFIG = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}


class EmbedsUNet(torch.nn.Module):
    """eps = 0.5 * input + the mean of each row's embeds: every entry predicts something else."""

    def __init__(self):
        super().__init__()
        self.config = type("C", (), {"in_channels": 4})()
        self.device, self.dtype = torch.device("cpu"), torch.float32
        self.calls = []

    def forward(self, x, t, encoder_hidden_states=None, return_dict=False):
        self.calls.append(encoder_hidden_states.clone())
        return (x * 0.5 + encoder_hidden_states.mean(dim=(1, 2)).view(-1, 1, 1, 1),)


def entry_cond(*items):
    """items: (tokens, seed, options)."""
    base = cond(items[0][0], items[0][1])
    return conds.with_entries(base, [(cond(n, s).embeds, o) for n, s, o in items])


def reference(positive, negative, steps, cfg, seed=5):
    """ComfyUI's KSampler (euler, normal) written out: per side, sum(x0_i * s_i) / sum(s_i) over the
    entries active at sigma (percent_to_sigma(start) >= sigma >= percent_to_sigma(end))."""
    ms = schedules.ModelSampling(CONFIG)
    sig = schedules.schedule(ms, "normal", steps)
    x = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(seed)) * torch.sqrt(1.0 + sig[0] ** 2.0)

    def side(entries, sigma):
        xc = x / (sigma ** 2 + 1.0) ** 0.5
        num, den = torch.zeros_like(x), 1e-37
        for e, o in entries:
            start = ms.percent_to_sigma(o.get("start_percent", 0.0))
            end = ms.percent_to_sigma(o.get("end_percent", 1.0))
            if start >= float(sigma) >= end:
                x0 = x - (xc * 0.5 + e.mean()) * sigma
                num, den = num + x0 * o.get("strength", 1.0), den + o.get("strength", 1.0)
        return num / den

    for i in range(steps):
        c = side(conds.entries(positive), sig[i])
        u = torch.zeros_like(x) if cfg == 1.0 else side(conds.entries(negative), sig[i])
        denoised = u + (c - u) * cfg
        x = x + (x - denoised) / sig[i] * (sig[i + 1] - sig[i])
    return x


def comfy(positive, negative, steps=4, cfg=6.0, unet=None):
    unet = unet or EmbedsUNet()
    latent = Latent(torch.zeros(1, 4, 8, 8), empty=True)
    return sample(unet, positive, negative, latent, 5, describe("euler", "normal", CONFIG), steps, cfg, 1.0)


@pytest.mark.parametrize("cfg", [6.0, 1.0])
def test_combined_entries_are_averaged_by_strength(cfg):
    a, b = cond(77, 1), cond(154, 2)
    b = conds.set_values(b, strength=0.25)
    positive = node("ConditioningCombine", conditioning_1=a, conditioning_2=b)[0]
    negative = node("ConditioningCombine", conditioning_1=cond(77, 3), conditioning_2=cond(77, 4))[0]
    assert torch.allclose(comfy(positive, negative, cfg=cfg), reference(positive, negative, 4, cfg), rtol=1e-5, atol=1e-5)


def test_timestep_ranges_switch_entries_at_percent_to_sigma():
    early = node("ConditioningSetTimestepRange", conditioning=cond(77, 1), start=0.0, end=0.4)[0]
    late = node("ConditioningSetTimestepRange", conditioning=cond(77, 2), start=0.4, end=1.0)[0]
    positive = node("ConditioningCombine", conditioning_1=early, conditioning_2=late)[0]
    unet = EmbedsUNet()
    out = comfy(positive, cond(77, 3), steps=5, unet=unet)
    assert torch.allclose(out, reference(positive, cond(77, 3), 5, 6.0), rtol=1e-5, atol=1e-5)
    ms = schedules.ModelSampling(CONFIG)
    sig, edge = schedules.schedule(ms, "normal", 5), ms.percent_to_sigma(0.4)
    # each call batches the uncond first, then the one entry active at that sigma
    seen = [(c.shape[0], torch.equal(c[0], cond(77, 3).embeds[0]),
             "early" if torch.equal(c[1], early.embeds[0]) else "late" if torch.equal(c[1], late.embeds[0]) else "?")
            for c in unet.calls]
    assert seen == [(2, True, "early" if float(s) > edge else "late") for s in sig[:-1]]
    assert [x for _, _, x in seen] == ["early", "early", "late", "late", "late"]


def test_entries_batch_as_comfyui_batches_them():
    """can_concat: token counts within 4x of each other (lcm); groups from the first entry left,
    in reverse order; shorter embeds repeated to the lcm."""
    a, b, c = cond(77, 1), cond(385, 2), cond(154, 3)
    positive = conds.with_entries(a, [(a.embeds, {}), (b.embeds, {})])   # 77 and 385: 5x, never together
    negative = c
    unet = EmbedsUNet()
    comfy(positive, negative, steps=1, unet=unet)
    first, second = unet.calls
    assert first.shape == (2, 154, 8) and second.shape == (1, 385, 8)
    assert torch.equal(first[0], c.embeds[0]) and torch.equal(first[1], a.embeds[0].repeat(2, 1))
    assert torch.equal(second[0], b.embeds[0])


def test_one_entry_samples_as_before():
    from tests.test_comfy_sampling import FakeUNet
    plain = [comfy(cond(77, 1), cond(77, 2), unet=FakeUNet(0.5)) for _ in range(2)]
    assert torch.equal(plain[0], plain[1])
    unet = EmbedsUNet()
    comfy(cond(77, 1), cond(77, 2), unet=unet)
    assert [c.shape[0] for c in unet.calls] == [2] * 4 and torch.equal(unet.calls[0][0], cond(77, 1).embeds[0])


def test_diffusers_sampling_refuses_several_entries():
    from latentloom.app.sd import sampling
    positive = node("ConditioningCombine", conditioning_1=cond(77, 1), conditioning_2=cond(77, 2))[0]
    with pytest.raises(UserError) as err:
        sampling.sample(None, positive, cond(), None, 0, None, 4, 7.0, 1.0)
    assert str(err.value) == ("a conditioning of several ComfyUI entries or with entry options (ConditioningCombine, "
                              "ConditioningSetTimestepRange) needs a Scheduler with sampling comfyui")


def test_combining_conditionings_with_different_controlnets_is_refused():
    from dataclasses import replace
    with pytest.raises(UserError) as err:
        node("ConditioningCombine", conditioning_1=cond(), conditioning_2=replace(cond(), guides=()))
    assert "apply the ControlNet after ConditioningCombine" in str(err.value)


def range_prompt(start=0.0, end=0.5):
    p = api_prompt()
    p.update({
        "13": {"class_type": "ConditioningSetTimestepRange", "inputs": {"conditioning": ["6", 0],
                                                                        "start": start, "end": end}},
        "14": {"class_type": "CLIPTextEncode", "inputs": {"text": "a blue bird", "clip": ["4", 1]}},
        "15": {"class_type": "ConditioningSetTimestepRange", "inputs": {"conditioning": ["14", 0],
                                                                        "start": end, "end": 1.0}},
        "16": {"class_type": "ConditioningCombine", "inputs": {"conditioning_1": ["13", 0], "conditioning_2": ["15", 0]}},
    })
    p["3"]["inputs"]["positive"] = ["16", 0]
    return p


def test_combine_and_timestep_range_map_and_export_back(tmp_path):
    from latentloom.app.cli import main
    nodes = mapped(range_prompt())
    assert nodes["13"] == {"type": "ConditioningSetTimestepRange", "params": {"start": 0.0, "end": 0.5},
                           "inputs": {"conditioning": ["6", "conditioning"]}}
    assert nodes["16"] == {"type": "ConditioningCombine", "params": {},
                           "inputs": {"conditioning_1": ["13", "conditioning"], "conditioning_2": ["15", "conditioning"]}}
    src, ours, back = tmp_path / "api.json", tmp_path / "ours.json", tmp_path / "back.json"
    src.write_text(json.dumps(range_prompt()))
    assert main(["convert", str(src), str(ours)]) == 0
    assert main(["convert", str(ours), str(back), "--to", "comfyui-api"]) == 0
    exported = json.loads(back.read_text())
    assert {k: exported[k] for k in ("13", "15", "16")} == {k: range_prompt()[k] for k in ("13", "15", "16")}


def test_imported_combine_and_timestep_range_run_on_the_tiny_model(tmp_path, tiny_dir):
    whole = api_prompt()  # the whole range: the one entry is always active, with weight 1
    whole["13"] = {"class_type": "ConditioningSetTimestepRange", "inputs": {"conditioning": ["6", 0],
                                                                            "start": 0.0, "end": 1.0}}
    whole["3"]["inputs"]["positive"] = ["13", 0]
    plain, full, split = render(tmp_path, tiny_dir, [api_prompt(), whole, range_prompt()])
    assert np.array_equal(plain, full)
    assert not np.array_equal(plain, split)
