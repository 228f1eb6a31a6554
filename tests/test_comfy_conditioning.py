"""ComfyUI's conditioning nodes, each against its formula written out here (from ComfyUI's nodes.py
and samplers.py), their import and export, and imported graphs that use them."""
import json

import numpy as np
import pytest
import torch

from latentloom.app.sd.comfy import conds
from latentloom.app.sd.handles import Conditioning
from latentloom.nodes import catalog
from tests.support.comfy_runs import render
from tests.test_comfy_import import api_prompt, mapped


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
                              "ConditioningSetTimestepRange, ConditioningSetArea..., ConditioningSetMask) needs a "
                              "Scheduler with sampling comfyui")


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


# ---- Part 3: areas and masks (get_area_and_mult, resolve_areas_and_cond_masks, create_cond_with_same_area_if_none)

class ShapesUNet(EmbedsUNet):
    def forward(self, x, t, encoder_hidden_states=None, return_dict=False):
        self.shapes = getattr(self, "shapes", []) + [tuple(x.shape)]
        return super().forward(x, t, encoder_hidden_states, return_dict)


def comfy_at(positive, negative, size, steps=3, cfg=6.0, unet=None):
    unet = unet or EmbedsUNet()
    latent = Latent(torch.zeros(1, 4, *size), empty=True)
    return sample(unet, positive, negative, latent, 5, describe("euler", "normal", CONFIG), steps, cfg, 1.0)


def ramp(n, offset, total):
    """The feathering written out: weights (t + 1) / rr on the rr = min(8, n // 4) pixels next to
    each edge of the area that is not an edge of the latent."""
    r, rr = torch.ones(n), min(8, n // 4)
    for t in range(rr):
        if offset != 0:
            r[t] *= (t + 1) / rr
        if offset + n < total:
            r[n - 1 - t] *= (t + 1) / rr
    return r


def reference_weighted(positive_w, negative_w, size, steps, cfg):
    """Euler/normal with each side = sum(x0_i * W_i) / (1e-37 + sum(W_i)); W_i: full-size weight maps."""
    ms = schedules.ModelSampling(CONFIG)
    sig = schedules.schedule(ms, "normal", steps)
    x = torch.randn((1, 4, *size), generator=torch.Generator().manual_seed(5)) * torch.sqrt(1.0 + sig[0] ** 2.0)
    for i in range(steps):
        xc = x / (sig[i] ** 2 + 1.0) ** 0.5
        sides = []
        for side in (positive_w, negative_w):
            num, den = torch.zeros_like(x), torch.full_like(x, 1e-37)
            for e, w in side:
                num, den = num + (x - (xc * 0.5 + e.mean()) * sig[i]) * w, den + w
            sides.append(num / den)
        denoised = sides[1] + (sides[0] - sides[1]) * cfg
        x = x + (x - denoised) / sig[i] * (sig[i + 1] - sig[i])
    return x


def test_set_area_nodes_set_comfyuis_options_on_every_entry():
    two = two_entries()
    out, _ = node("ConditioningSetArea", conditioning=two, width=200, height=130, x=20, y=9, strength=0.7)
    assert [o for _, o in conds.entries(out)] == [{"area": (16, 25, 1, 2), "strength": 0.7, "set_area_to_bounds": False},
                                                  {"area": (16, 25, 1, 2), "strength": 0.7, "set_area_to_bounds": False}]
    out, _ = node("ConditioningSetAreaPercentage", conditioning=cond(), width=0.5, height=0.3, x=0.25, y=0.1, strength=2.0)
    assert dict(out.settings) == {"area": ("percentage", 0.3, 0.5, 0.1, 0.25), "strength": 2.0, "set_area_to_bounds": False}
    out, _ = node("ConditioningSetAreaStrength", conditioning=two, strength=0.2)
    assert [o["strength"] for _, o in conds.entries(out)] == [0.2, 0.2]
    mask = torch.rand(1, 1, 16, 16)
    out, _ = node("ConditioningSetMask", conditioning=cond(), mask=mask, strength=0.5, set_cond_area="mask bounds")
    options = dict(out.settings)
    assert torch.equal(options.pop("mask"), mask[:, 0]) and options == {"set_area_to_bounds": True, "mask_strength": 0.5}


def test_percentage_areas_round_to_latent_pixels():
    out = node("ConditioningSetAreaPercentage", conditioning=cond(), width=0.5, height=0.3, x=0.25, y=0.1, strength=1.0)[0]
    ms = schedules.ModelSampling(CONFIG)
    pos, _ = conds.prepare(out, cond(), ms, torch.zeros(1, 4, 32, 40), torch.float32)
    # height max(1, round(0.3 * 32)) = 10, width round(0.5 * 40) = 20, y round(3.2) = 3, x round(10.0) = 10
    assert pos[0].area == (10, 20, 3, 10)


def test_each_area_gets_a_twin_on_the_other_side_as_comfyui_makes_them():
    a, c, n, m = cond(77, 1), cond(77, 2), cond(77, 3), cond(77, 4)
    small, big = {"area": (4, 4, 2, 2)}, {"area": (8, 8, 0, 0)}
    positive = conds.with_entries(a, [(a.embeds, {}), (c.embeds, small)])
    negative = conds.with_entries(n, [(n.embeds, {}), (m.embeds, big)])
    pos, neg = conds.prepare(positive, negative, schedules.ModelSampling(CONFIG), torch.zeros(1, 4, 16, 16),
                             torch.float32)
    # the small area's twin takes M (the smallest negative area holding it); M's twin takes A (no
    # positive area holds it); the small twin's own twin is not made (C has the same area)
    assert [(e.embeds[0].sum().item(), e.area) for e in pos] == [
        (a.embeds.sum().item(), None), (c.embeds.sum().item(), (4, 4, 2, 2)), (a.embeds.sum().item(), (8, 8, 0, 0))]
    assert [(e.embeds[0].sum().item(), e.area) for e in neg] == [
        (n.embeds.sum().item(), None), (m.embeds.sum().item(), (8, 8, 0, 0)), (m.embeds.sum().item(), (4, 4, 2, 2))]


def test_area_predictions_are_cropped_feathered_and_averaged():
    a, b, n = cond(77, 1), cond(77, 2), cond(77, 3)
    area = node("ConditioningSetArea", conditioning=b, width=128, height=160, x=64, y=0, strength=0.8)[0]
    positive = node("ConditioningCombine", conditioning_1=a, conditioning_2=area)[0]
    unet = ShapesUNet()
    out = comfy_at(positive, n, (32, 40), unet=unet)
    # the area: 20 x 16 latent pixels at (y 0, x 8); its top is the latent's edge, so no fade there
    w = torch.zeros(32, 40)
    w[0:20, 8:24] = 0.8 * ramp(20, 0, 32)[:, None] * ramp(16, 8, 40)[None, :]
    ones = torch.ones(32, 40)
    # the negative gets N with the area's options (its twin)
    expected = reference_weighted([(a.embeds, ones), (b.embeds, w)], [(n.embeds, ones), (n.embeds, w)], (32, 40), 3, 6.0)
    assert torch.allclose(out, expected, rtol=1e-5, atol=1e-5)
    assert unet.shapes[:2] == [(2, 4, 32, 40), (2, 4, 20, 16)]  # full entries batched, then the two areas


@pytest.mark.parametrize("bounds", ["default", "mask bounds"])
def test_masks_weigh_each_pixel(bounds):
    a, b, n = cond(77, 1), cond(77, 2), cond(77, 3)
    mask = torch.zeros(1, 1, 128, 128)
    mask[:, :, 40:90, 16:60] = torch.rand(1, 1, 50, 44, generator=torch.Generator().manual_seed(0))
    masked = node("ConditioningSetMask", conditioning=b, mask=mask, strength=0.6, set_cond_area=bounds)[0]
    positive = node("ConditioningCombine", conditioning_1=a, conditioning_2=masked)[0]
    unet = ShapesUNet()
    out = comfy_at(positive, n, (16, 16), unet=unet)
    w = torch.nn.functional.interpolate(mask, size=(16, 16), mode="bilinear")[0, 0] * 0.6
    ones = torch.ones(16, 16)
    negative = [(n.embeds, ones)] + ([(n.embeds, w)] if bounds == "mask bounds" else [])  # a twin only for an area
    expected = reference_weighted([(a.embeds, ones), (b.embeds, w)], negative, (16, 16), 3, 6.0)
    assert torch.allclose(out, expected, rtol=1e-5, atol=1e-5)
    nz = torch.nonzero(w)
    box = (max(8, int(nz[:, 0].max() - nz[:, 0].min() + 1)), max(8, int(nz[:, 1].max() - nz[:, 1].min() + 1)))
    assert set(unet.shapes) == ({(3, 4, 16, 16)} if bounds == "default"  # one batch: the mask crops nothing
                                else {(2, 4, 16, 16), (2, 4, *box)})         # the full entries, then the boxes


def test_areas_with_a_controlnet_are_refused():
    area = node("ConditioningSetArea", conditioning=cond(), width=64, height=64, x=0, y=0, strength=1.0)[0]
    with pytest.raises(UserError) as err:
        conds.prepare(area, cond(), schedules.ModelSampling(CONFIG), torch.zeros(1, 4, 16, 16), torch.float32, True)
    assert "ControlNet with an area conditioning" in str(err.value)


def area_prompt():
    p = api_prompt()
    p.update({
        "20": {"class_type": "LoadImage", "inputs": {"image": "fox.png", "upload": "image"}},
        "17": {"class_type": "ConditioningSetArea", "inputs": {"conditioning": ["6", 0], "width": 64, "height": 64,
                                                               "x": 0, "y": 8, "strength": 0.9}},
        "18": {"class_type": "ConditioningSetAreaPercentage", "inputs": {"conditioning": ["6", 0], "width": 0.5,
                                                                         "height": 1.0, "x": 0.5, "y": 0.0, "strength": 1.0}},
        "19": {"class_type": "ConditioningSetAreaStrength", "inputs": {"conditioning": ["18", 0], "strength": 0.4}},
        "21": {"class_type": "ConditioningSetMask", "inputs": {"conditioning": ["7", 0], "mask": ["20", 1],
                                                               "strength": 0.7, "set_cond_area": "mask bounds"}},
        "22": {"class_type": "ConditioningCombine", "inputs": {"conditioning_1": ["17", 0], "conditioning_2": ["19", 0]}},
    })
    p["3"]["inputs"].update(positive=["22", 0], negative=["21", 0])
    return p


def test_area_and_mask_nodes_map_and_export_back(tmp_path):
    from latentloom.app.cli import main
    nodes = mapped(area_prompt())
    assert nodes["17"] == {"type": "ConditioningSetArea", "params": {"width": 64, "height": 64, "x": 0, "y": 8,
                                                                     "strength": 0.9},
                           "inputs": {"conditioning": ["6", "conditioning"]}}
    assert nodes["21"] == {"type": "ConditioningSetMask", "params": {"strength": 0.7, "set_cond_area": "mask bounds"},
                           "inputs": {"conditioning": ["7", "conditioning"], "mask": ["20", "mask"]}}
    src, ours, back = tmp_path / "api.json", tmp_path / "ours.json", tmp_path / "back.json"
    src.write_text(json.dumps(area_prompt()))
    assert main(["convert", str(src), str(ours)]) == 0
    assert main(["convert", str(ours), str(back), "--to", "comfyui-api"]) == 0
    exported = json.loads(back.read_text())
    assert {k: exported[k] for k in ("17", "18", "19", "21", "22")} == {k: area_prompt()[k] for k in ("17", "18", "19", "21", "22")}


def test_imported_areas_run_on_the_tiny_model(tmp_path, tiny_dir):
    whole = api_prompt()  # an area over the whole latent at strength 1 weighs every pixel 1
    whole["17"] = {"class_type": "ConditioningSetArea", "inputs": {"conditioning": ["6", 0], "width": 64, "height": 64,
                                                                   "x": 0, "y": 0, "strength": 1.0}}
    whole["3"]["inputs"]["positive"] = ["17", 0]
    wide = api_prompt()
    wide["5"]["inputs"]["width"] = 128
    part = json.loads(json.dumps(wide))  # the prompt on the right half, "blurry" on all of it
    part["17"] = dict(whole["17"], inputs=dict(whole["17"]["inputs"], x=64))
    part["22"] = {"class_type": "ConditioningCombine", "inputs": {"conditioning_1": ["7", 0], "conditioning_2": ["17", 0]}}
    part["3"]["inputs"]["positive"] = ["22", 0]
    plain, full, plain_wide, half = render(tmp_path, tiny_dir, [api_prompt(), whole, wide, part])
    assert np.array_equal(plain, full)
    assert half.shape == plain_wide.shape and not np.array_equal(plain_wide, half)


def test_an_inpainting_models_extra_channels_are_cut_to_each_area():
    class NineUNet(EmbedsUNet):
        def __init__(self):
            super().__init__()
            self.config = type("C", (), {"in_channels": 9})()
            self.inputs = []

        def forward(self, x, t, encoder_hidden_states=None, return_dict=False):
            self.inputs.append(x.clone())
            return super().forward(x[:, :4], t, encoder_hidden_states, return_dict)

    masked = torch.rand(1, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    latent = Latent(torch.zeros(1, 4, 16, 16), mask=torch.ones(1, 1, 16, 16), masked_image_latents=masked)
    first = node("ConditioningSetArea", conditioning=cond(77, 1), width=64, height=64, x=32, y=64, strength=1.0)[0]
    second = node("ConditioningSetArea", conditioning=cond(77, 2), width=64, height=64, x=64, y=0, strength=1.0)[0]
    positive = node("ConditioningCombine", conditioning_1=first, conditioning_2=second)[0]
    unet = NineUNet()
    sample(unet, positive, cond(77, 3), latent, 5, describe("euler", "normal", CONFIG), 1, 6.0, 1.0)
    extra = torch.cat([torch.ones(1, 1, 16, 16), masked], dim=1)
    call, whole = unet.inputs  # both areas and their twins are 8x8: one batch, in ComfyUI's order; then N
    assert call.shape == (4, 9, 8, 8) and whole.shape == (1, 9, 16, 16)
    assert torch.equal(whole[0, 4:], extra[0])
    areas = [(0, 8), (8, 4), (0, 8), (8, 4)]  # (y, x): twin of second, twin of first, second, first
    for row, (y, x) in zip(call, areas):
        assert torch.equal(row[4:], extra[0, :, y:y + 8, x:x + 8])
