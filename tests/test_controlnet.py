"""ControlNet: the sampler with ApplyControlNet equals diffusers' ControlNet pipelines pixel for pixel."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

import diffusers
from latentloom.app.core.validate import load
from latentloom.app.engine.executor import NodeError
from latentloom.app.session.overrides import apply_sets
from latentloom.app.sd.scheduler_table import SCHEDULERS, overrides
from latentloom.nodes import catalog
from tests.conftest import WORKFLOWS
from tests.support.controlnets import add_control, save_single_file, tiny_controlnet

PROMPT, NEGATIVE, SEED, STEPS, SIZE = "a lighthouse on a cliff", "blurry", 5, 4, 64


@pytest.fixture(scope="module")
def nets(tiny_pipe, tmp_path_factory):
    """Two tiny ControlNets saved as diffusers folders."""
    base = tmp_path_factory.mktemp("controlnet")
    paths = []
    for seed in (1, 2):
        net = tiny_controlnet(tiny_pipe.unet, seed)
        net.save_pretrained(base / f"tiny-cn-{seed}")
        paths.append(base / f"tiny-cn-{seed}")
    return paths


@pytest.fixture(scope="module", autouse=True)
def tiny_reference(tiny_pipe, tmp_path_factory):
    """The tiny ControlNets' config stands in for SD 1.5's while these tests run."""
    from latentloom.app.sd import controlnet
    config = tmp_path_factory.mktemp("controlnet-config")
    tiny_controlnet(tiny_pipe.unet, 0).save_config(config)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(controlnet, "CONFIG_DIR", config)
        yield config


@pytest.fixture(scope="module")
def tiny_inpaint_dir(tmp_path_factory):
    from tests.tiny import save_tiny_pipeline
    path = tmp_path_factory.mktemp("models") / "tiny-inpaint"
    save_tiny_pipeline(path, in_channels=9)
    return path


def workflow(name, ckpt, sets=(), edit=None):
    doc = json.loads((WORKFLOWS / name).read_text())
    if edit:
        edit(doc)
    base = {"ckpt.path": str(ckpt), "ckpt.dtype": "fp32", "positive.text": PROMPT, "negative.text": NEGATIVE,
            "noise.seed": SEED, "sampler.steps": STEPS}
    base.update(dict(sets))
    problems, _ = apply_sets(doc, [f"{k}={json.dumps(v)}" for k, v in base.items()])
    assert not problems
    return load(doc, catalog)


def control_source(doc, width=SIZE, height=SIZE):
    """A control image: the landscape, resized (any picture steers a random ControlNet)."""
    doc["nodes"]["ctl_load"] = {"type": "LoadImage", "params": {"path": "inputs/landscape.png"}}
    doc["nodes"]["ctl_image"] = {"type": "ResizeImage", "inputs": {"image": ["ctl_load", "image"]},
                                 "params": {"width": width, "height": height, "method": "bilinear", "crop": "center"}}
    return ["ctl_image", "image"]


def txt2img(nets, ckpt, controls=((0, 1.0, 0.0, 1.0),), size=(SIZE, SIZE), name="euler", cfg=7.5, batch=1):
    def edit(doc):
        link = control_source(doc, *size)
        for i, (net, strength, start, end) in enumerate(controls):
            add_control(doc, nets[net], link, name=f"apply{i}", cn_name=f"cn{net}", strength=strength,
                        start=start, end=end)
    return workflow("txt2img.json", ckpt, {"latent.width": SIZE, "latent.height": SIZE, "scheduler.name": name,
                                           "sampler.cfg": cfg, "latent.batch_size": batch}, edit)


def pipe_for(cls, tiny_path, nets, name="euler", **extra):
    from diffusers import ControlNetModel
    controlnet = [ControlNetModel.from_pretrained(n) for n in nets]
    pipe = cls.from_pretrained(tiny_path, controlnet=controlnet[0] if len(controlnet) == 1 else controlnet,
                               safety_checker=None, requires_safety_checker=False, **extra)
    pipe.scheduler = getattr(diffusers, SCHEDULERS[name][0]).from_config(pipe.scheduler.config, **overrides(name))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def saved(result):
    return [np.array(Image.open(p)) for p in result.outputs]


def gen():
    return torch.Generator("cpu").manual_seed(SEED)


@pytest.mark.parametrize("name", ["euler", "dpmpp_2m", "ddim"])
def test_txt2img_matches_controlnet_pipeline(engine, tiny_dir, nets, name):
    result = engine.run(txt2img(nets, tiny_dir, name=name))
    control = result.values["ctl_image"]["image"]
    pipe = pipe_for(diffusers.StableDiffusionControlNetPipeline, tiny_dir, nets[:1], name)
    expected = pipe(PROMPT, image=control, negative_prompt=NEGATIVE, height=SIZE, width=SIZE,
                    num_inference_steps=STEPS, guidance_scale=7.5, generator=gen()).images
    assert np.array_equal(saved(result)[0], np.array(expected[0]))
    plain = pipe_for(diffusers.StableDiffusionControlNetPipeline, tiny_dir, nets[:1], name)
    off = plain(PROMPT, image=control, negative_prompt=NEGATIVE, height=SIZE, width=SIZE, num_inference_steps=STEPS,
                guidance_scale=7.5, generator=gen(), controlnet_conditioning_scale=0.0).images
    assert not np.array_equal(np.array(off[0]), np.array(expected[0]))  # the control does steer


def test_no_cfg_batch_of_two_matches(engine, tiny_dir, nets):
    result = engine.run(txt2img(nets, tiny_dir, cfg=1.0, batch=2))
    control = result.values["ctl_image"]["image"]
    pipe = pipe_for(diffusers.StableDiffusionControlNetPipeline, tiny_dir, nets[:1])
    expected = pipe(PROMPT, image=control, negative_prompt=NEGATIVE, height=SIZE, width=SIZE, num_inference_steps=STEPS,
                    guidance_scale=1.0, num_images_per_prompt=2, generator=gen()).images
    assert [a.tolist() for a in saved(result)] == [np.array(e).tolist() for e in expected]


@pytest.mark.parametrize("strength,start,end", [(0.6, 0.0, 1.0), (1.3, 0.25, 0.75), (1.0, 0.5, 1.0)])
def test_strength_start_end_match_the_pipeline_arguments(engine, tiny_dir, nets, strength, start, end):
    result = engine.run(txt2img(nets, tiny_dir, controls=((0, strength, start, end),)))
    control = result.values["ctl_image"]["image"]
    pipe = pipe_for(diffusers.StableDiffusionControlNetPipeline, tiny_dir, nets[:1])
    expected = pipe(PROMPT, image=control, negative_prompt=NEGATIVE, height=SIZE, width=SIZE, num_inference_steps=STEPS,
                    guidance_scale=7.5, generator=gen(), controlnet_conditioning_scale=strength,
                    control_guidance_start=start, control_guidance_end=end).images
    assert np.array_equal(saved(result)[0], np.array(expected[0]))


def test_two_chained_controlnets_match_multicontrolnet(engine, tiny_dir, nets):
    result = engine.run(txt2img(nets, tiny_dir, controls=((0, 0.8, 0.0, 1.0), (1, 1.2, 0.25, 1.0))))
    control = result.values["ctl_image"]["image"]
    pipe = pipe_for(diffusers.StableDiffusionControlNetPipeline, tiny_dir, nets)
    assert isinstance(pipe.controlnet, diffusers.models.controlnets.MultiControlNetModel)
    expected = pipe(PROMPT, image=[control, control], negative_prompt=NEGATIVE, height=SIZE, width=SIZE,
                    num_inference_steps=STEPS, guidance_scale=7.5, generator=gen(),
                    controlnet_conditioning_scale=[0.8, 1.2], control_guidance_start=[0.0, 0.25],
                    control_guidance_end=[1.0, 1.0]).images
    assert np.array_equal(saved(result)[0], np.array(expected[0]))


def test_shuffle_type_controlnet_runs_in_guess_mode_as_diffusers(engine, tiny_dir, nets, tmp_path):
    """global_pool_conditions (control_v11e_sd15_shuffle): only the conditional half, pooled residuals."""
    from diffusers import ControlNetModel
    net = ControlNetModel.from_pretrained(nets[0])
    pooled_net = ControlNetModel.from_config({**net.config, "global_pool_conditions": True})
    pooled_net.load_state_dict(net.state_dict())
    pooled_net.save_pretrained(tmp_path / "shuffle")
    for cfg in (7.5, 1.0):
        result = engine.run(txt2img([tmp_path / "shuffle"], tiny_dir, cfg=cfg))
        control = result.values["ctl_image"]["image"]
        pipe = pipe_for(diffusers.StableDiffusionControlNetPipeline, tiny_dir, [tmp_path / "shuffle"])
        expected = pipe(PROMPT, image=control, negative_prompt=NEGATIVE, height=SIZE, width=SIZE,
                        num_inference_steps=STEPS, guidance_scale=cfg, generator=gen()).images
        assert np.array_equal(saved(result)[0], np.array(expected[0]))


def test_control_image_of_another_size_is_resized_and_logged(engine, tiny_dir, nets):
    seen = []
    result = engine.run(txt2img(nets, tiny_dir, size=(96, 40)), on_event=seen.append)
    assert any(getattr(e, "message", "") == "control image 96x40 resized to 64x64" for e in seen)
    control = result.values["ctl_image"]["image"]
    pipe = pipe_for(diffusers.StableDiffusionControlNetPipeline, tiny_dir, nets[:1])
    expected = pipe(PROMPT, image=control, negative_prompt=NEGATIVE, height=SIZE, width=SIZE, num_inference_steps=STEPS,
                    guidance_scale=7.5, generator=gen()).images
    assert np.array_equal(saved(result)[0], np.array(expected[0]))


@pytest.mark.parametrize("name,denoise", [("euler", 0.6), ("ddim", 0.3)])
def test_img2img_matches_controlnet_img2img_pipeline(engine, tiny_dir, nets, name, denoise):
    wf = workflow("img2img.json", tiny_dir, {"resize.width": SIZE, "resize.height": SIZE, "scheduler.name": name,
                                             "scheduler.sigmas": "default", "sampler.denoise": denoise},
                  lambda doc: add_control(doc, nets[0], ["resize", "image"], strength=0.9))
    result = engine.run(wf)
    latents = result.values["encode"]["latent"].samples
    control = result.values["resize"]["image"]
    pipe = pipe_for(diffusers.StableDiffusionControlNetImg2ImgPipeline, tiny_dir, nets[:1], name)
    expected = pipe(PROMPT, image=latents, control_image=control, strength=denoise, negative_prompt=NEGATIVE,
                    height=SIZE, width=SIZE, num_inference_steps=STEPS, guidance_scale=7.0, generator=gen(),
                    controlnet_conditioning_scale=0.9).images
    assert np.array_equal(saved(result)[0], np.array(expected[0]))


def mean_encoder(pipe):
    """Our VAEEncode takes the latent mean; make the pipeline do the same (it samples otherwise)."""
    def encode(image, generator):
        return pipe.vae.encode(image).latent_dist.mean * pipe.vae.config.scaling_factor
    pipe._encode_vae_image = encode
    return pipe


def inpaint_sets(name, denoise):
    return {"resize.width": SIZE, "resize.height": SIZE, "scheduler.name": name, "sampler.denoise": denoise}


@pytest.mark.parametrize("name,denoise", [("euler", 1.0), ("ddim", 0.6)])
def test_inpaint_4_channel_matches_controlnet_inpaint_pipeline(engine, tiny_dir, nets, name, denoise):
    def edit(doc):
        add_control(doc, nets[0], ["resize", "image"], strength=1.1)
        doc["nodes"]["save"]["inputs"]["image"] = ["decode", "image"]
    result = engine.run(workflow("inpaint.json", tiny_dir, inpaint_sets(name, denoise), edit))
    image, mask = result.values["resize"]["image"], result.values["mask"]["mask"]
    pipe = mean_encoder(pipe_for(diffusers.StableDiffusionControlNetInpaintPipeline, tiny_dir, nets[:1], name))
    expected = pipe(PROMPT, image=image, mask_image=mask, control_image=image, strength=denoise,
                    negative_prompt=NEGATIVE, height=SIZE, width=SIZE, num_inference_steps=STEPS,
                    guidance_scale=7.0, generator=gen(), controlnet_conditioning_scale=1.1).images
    assert np.array_equal(saved(result)[0], np.array(expected[0]))


@pytest.mark.parametrize("name,denoise", [("euler", 1.0), ("ddim", 0.6)])
def test_inpaint_9_channel_matches_controlnet_inpaint_pipeline(engine, tiny_inpaint_dir, nets, name, denoise):
    def edit(doc):
        n = doc["nodes"]
        n["inpaint"] = {"type": "InpaintEncode", "inputs": {"vae": ["ckpt", "vae"], "image": ["resize", "image"],
                                                             "mask": ["mask", "mask"]}}
        del n["encode"], n["masked"]
        n["sampler"]["inputs"]["latent"] = ["inpaint", "latent"]
        n["save"]["inputs"]["image"] = ["decode", "image"]
        add_control(doc, nets[0], ["resize", "image"])
    result = engine.run(workflow("inpaint.json", tiny_inpaint_dir, inpaint_sets(name, denoise), edit))
    image, mask = result.values["resize"]["image"], result.values["mask"]["mask"]
    pipe = mean_encoder(pipe_for(diffusers.StableDiffusionControlNetInpaintPipeline, tiny_inpaint_dir, nets[:1],
                                 name))
    expected = pipe(PROMPT, image=image, mask_image=mask, control_image=image, strength=denoise,
                    negative_prompt=NEGATIVE, height=SIZE, width=SIZE, num_inference_steps=STEPS,
                    guidance_scale=7.0, generator=gen(), controlnet_conditioning_scale=1.0).images  # its default is 0.5
    assert np.array_equal(saved(result)[0], np.array(expected[0]))


# -- loading -----------------------------------------------------------------------------------

def loaded_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("layout", ["v11", "full"])
def test_single_files_load_like_the_folder(runtime, tiny_pipe, nets, tmp_path, layout):
    """control_v11p_sd15_* (bare keys) and old control_sd15_* (control_model.* beside a whole SD model)."""
    from diffusers import ControlNetModel
    folder = ControlNetModel.from_pretrained(nets[0])
    path = save_single_file(folder, tiny_pipe.unet, tmp_path / f"control_{layout}.safetensors",
                            full_sd=tiny_pipe if layout == "full" else None)
    handle = runtime.load_controlnet(f"id-{layout}", path, "fp32")
    with runtime.controlnet(handle) as net:
        assert loaded_equal(net, folder)


def test_loaded_once_per_process(engine, runtime, tiny_dir, nets, monkeypatch):
    from latentloom.app.sd import controlnet
    reads = []
    real = controlnet.read
    monkeypatch.setattr(controlnet, "read", lambda *a: reads.append(a) or real(*a))
    wf = txt2img(nets, tiny_dir, controls=((1, 0.5, 0.0, 1.0),))
    engine.run(wf)
    engine.cache.clear()
    engine.run(wf)
    assert len(reads) <= 1  # 0 when an earlier test already loaded this file
    h1 = runtime.load_controlnet("same", nets[1], "fp32")
    with runtime.controlnet(h1) as a, runtime.controlnet(runtime.load_controlnet("same", nets[1], "fp32")) as b:
        assert a is b


def run_error(engine, wf):
    with pytest.raises(NodeError) as info:
        engine.run(wf)
    return str(info.value)


def test_controlnet_of_another_base_model_is_a_clear_error(engine, tiny_dir, tiny_pipe, tmp_path):
    from diffusers import ControlNetModel
    wide = ControlNetModel.from_unet(tiny_pipe.unet)
    wide = ControlNetModel.from_config({**wide.config, "cross_attention_dim": 48})
    wide.save_pretrained(tmp_path / "sdxl-like")
    save_single_file(wide, tiny_pipe.unet, tmp_path / "sdxl-like.safetensors")
    assert run_error(engine, txt2img([tmp_path / "sdxl-like"], tiny_dir)) == (
        "node 'cn0' (LoadControlNet) failed: param 'path': sdxl-like is not an SD 1.5 ControlNet "
        "(cross_attention_dim is 48, SD 1.5 has 32)")
    assert run_error(engine, txt2img([tmp_path / "sdxl-like.safetensors"], tiny_dir)) == (
        "node 'cn0' (LoadControlNet) failed: param 'path': sdxl-like.safetensors is not an SD 1.5 ControlNet "
        "(its cross-attention width is 48, SD 1.5 has 32; it is for another base model)")


def test_a_checkpoint_is_not_a_controlnet(engine, tiny_dir, tiny_single_file):
    ckpt, _ = tiny_single_file
    assert run_error(engine, txt2img([ckpt], tiny_dir)) == (
        f"node 'cn0' (LoadControlNet) failed: param 'path': {ckpt.name} is not an SD 1.5 ControlNet "
        "(no ControlNet hint block; T2I adapters and control-LoRAs are not supported)")


def test_controlnet_that_does_not_fit_the_model_is_a_clear_error(tiny_pipe):
    from latentloom.app.core.errors import UserError
    from latentloom.app.sd.controlnet import check_fits
    net = tiny_controlnet(tiny_pipe.unet, 3)
    check_fits(net, tiny_pipe.unet.config)
    with pytest.raises(UserError) as info:
        check_fits(net, {"block_out_channels": [32, 64], "cross_attention_dim": 768})
    assert str(info.value) == "the ControlNet does not fit this model: its cross_attention_dim is 32, the U-Net's is 768"


def test_start_after_end_is_a_validation_error(tiny_dir, nets):
    from latentloom.app.core.workflow import WorkflowError
    with pytest.raises(WorkflowError) as info:
        txt2img(nets, tiny_dir, controls=((0, 1.0, 0.7, 0.3),))
    assert [str(p) for p in info.value.problems] == ["node 'apply0' param 'start': start 0.7 is after end 0.3"]


# -- graphs ------------------------------------------------------------------------------------

def two_branches(nets, ckpt, control_first):
    """One graph: a ControlNet branch and a plain branch sharing the checkpoint, prompts and noise."""
    def edit(doc):
        n = doc["nodes"]
        for nid in ("sampler", "decode", "save"):
            n["plain_" + nid] = json.loads(json.dumps(n[nid]))
        n["plain_decode"]["inputs"]["latent"] = ["plain_sampler", "latent"]
        n["plain_save"]["inputs"]["image"] = ["plain_decode", "image"]
        n["plain_save"]["params"]["filename_prefix"] = "plain"
        add_control(doc, nets[0], control_source(doc))
        if not control_first:  # workflow order is the run order of independent branches
            doc["nodes"] = {**{k: v for k, v in n.items() if k.startswith("plain_")},
                            **{k: v for k, v in n.items() if not k.startswith("plain_")}}
    return workflow("txt2img.json", ckpt, {"latent.width": SIZE, "latent.height": SIZE, "plain_sampler.steps": STEPS},
                    edit)


@pytest.mark.parametrize("control_first", [True, False])
def test_branches_stay_isolated(engine, tiny_dir, nets, control_first):
    both = engine.run(two_branches(nets, tiny_dir, control_first))
    assert (both.executed.index("sampler") < both.executed.index("plain_sampler")) == control_first
    by_prefix = {Image.open(p).filename.split("/")[-1].split("_")[0]: np.array(Image.open(p)) for p in both.outputs}
    engine.cache.clear()
    alone = engine.run(txt2img(nets, tiny_dir))
    engine.cache.clear()
    plain = engine.run(workflow("txt2img.json", tiny_dir, {"latent.width": SIZE, "latent.height": SIZE}))
    assert np.array_equal(by_prefix["txt2img"], saved(alone)[0])
    assert np.array_equal(by_prefix["plain"], saved(plain)[0])
    assert not np.array_equal(by_prefix["txt2img"], by_prefix["plain"])


def test_changing_strength_reruns_only_the_sampler_and_after(engine, tiny_dir, nets):
    engine.run(txt2img(nets, tiny_dir))
    again = engine.run(txt2img(nets, tiny_dir, controls=((0, 0.5, 0.0, 1.0),)))
    assert again.executed == ["apply0", "sampler", "decode", "save"]
    assert sorted(again.cached) == sorted(["ckpt", "positive", "negative", "cn0", "ctl_load", "ctl_image", "latent",
                                           "noise", "scheduler"])


@pytest.mark.parametrize("sampling", ["diffusers", "comfyui"])
def test_mask_limits_the_control(engine, tiny_dir, nets, sampling):
    sets = {"latent.width": SIZE, "latent.height": SIZE}
    if sampling == "comfyui":
        sets.update({"scheduler.sampling": "comfyui", "scheduler.sigmas": "karras"})

    def controlled(value):
        def edit(doc):
            link = control_source(doc)
            mask = None
            if value is not None:
                doc["nodes"]["ctl_mask"] = {"type": "SolidMask", "params": {"value": value, "width": SIZE,
                                                                            "height": SIZE}}
                mask = ["ctl_mask", "mask"]
            add_control(doc, nets[0], link, name="apply0", cn_name="cn0", mask_link=mask)
        return workflow("txt2img.json", tiny_dir, sets, edit)
    full, none, plain = (saved(engine.run(controlled(v)))[0] for v in (1.0, 0.0, None))
    assert np.array_equal(full, plain)
    assert np.array_equal(none, saved(engine.run(workflow("txt2img.json", tiny_dir, sets)))[0])
    assert not np.array_equal(full, none)


def test_lowvram_keeps_the_controlnet_beside_the_unet(engine, tiny_dir, nets, tmp_path):
    """--lowvram's bookkeeping (run here on the CPU): a ControlNet joins the U-Net on the device for
    the sampling loop; the VAE then takes the device alone; pixels are unchanged."""
    from latentloom.app.engine.executor import Engine
    from latentloom.app.sd.offload import Offload
    from latentloom.app.sd.runtime import Runtime
    env = Runtime("cpu")
    env.offload = Offload("cpu")
    seen = []
    use = env.offload.use

    def spy(module, guest=False):
        use(module, guest)
        seen.append((type(module).__name__, guest, sorted(type(m()).__name__ for m in env.offload.on_device)))
    env.offload.use = spy
    wf = txt2img(nets, tiny_dir)
    got = saved(Engine(catalog, output_dir=tmp_path, env=env, previews=False, base_dirs=[WORKFLOWS]).run(wf))
    assert all(np.array_equal(a, b) for a, b in zip(got, saved(engine.run(wf))))
    assert list(dict.fromkeys((name, guest, tuple(on)) for name, guest, on in seen)) == [
        ("CLIPTextModel", False, ("CLIPTextModel",)),
        ("UNet2DConditionModel", False, ("UNet2DConditionModel",)),
        ("ControlNetModel", True, ("ControlNetModel", "UNet2DConditionModel")),
        ("AutoencoderKL", False, ("AutoencoderKL",))]
    assert env.offload.on_device == []  # the end of the run offloads the VAE too
