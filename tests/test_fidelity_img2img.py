"""img2img and inpainting equal diffusers' Img2Img and Inpaint pipelines, pixel for pixel."""
import numpy as np
import pytest
import torch
from PIL import Image

import diffusers
from latentloom.app.sd.scheduler_table import SCHEDULERS, overrides
from tests.conftest import load_workflow

PROMPT, NEGATIVE, SEED, STEPS, SIZE = "a cottage at dusk", "blurry", 77, 4, 64


def small(**sets):
    return {"resize.width": SIZE, "resize.height": SIZE, "sampler.steps": STEPS, "noise.seed": SEED,
            "positive.text": PROMPT, "negative.text": NEGATIVE, "ckpt.dtype": "fp32", **sets}


def saved(result):
    return [np.array(Image.open(p)) for p in result.outputs]


def pipeline(cls, tiny_path, name):
    pipe = cls.from_pretrained(tiny_path, safety_checker=None, requires_safety_checker=False)
    pipe.scheduler = getattr(diffusers, SCHEDULERS[name][0]).from_config(pipe.scheduler.config, **overrides(name))
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("name", ["euler", "dpmpp_2m", "ddim", "euler_ancestral"])
@pytest.mark.parametrize("strength", [0.3, 0.6, 1.0])
def test_img2img_matches_pipeline(engine, tiny_dir, name, strength):
    wf = load_workflow("img2img.json", **small(**{"ckpt.path": str(tiny_dir), "scheduler.name": name,
                                                   "scheduler.sigmas": "default", "sampler.denoise": strength}))
    result = engine.run(wf)
    latents = result.values["encode"]["latent"].samples
    pipe = pipeline(diffusers.StableDiffusionImg2ImgPipeline, tiny_dir, name)
    expected = pipe(PROMPT, image=latents, strength=strength, negative_prompt=NEGATIVE, num_inference_steps=STEPS,
                    guidance_scale=7.0, generator=torch.Generator("cpu").manual_seed(SEED)).images
    assert np.array_equal(saved(result)[0], np.array(expected[0]))


def test_vae_encode_is_the_scaled_mean(engine, tiny_dir, tiny_pipe):
    wf = load_workflow("img2img.json", **small(**{"ckpt.path": str(tiny_dir)}))
    result = engine.run(wf)
    image = result.values["resize"]["image"]
    expected = tiny_pipe.vae.encode(image * 2 - 1).latent_dist.mean * tiny_pipe.vae.config.scaling_factor
    assert torch.allclose(result.values["encode"]["latent"].samples, expected, atol=1e-6)


def test_odd_image_sizes_are_resized_to_multiples_of_8(engine, tiny_dir):
    seen = []
    wf = load_workflow("img2img.json", **small(**{"ckpt.path": str(tiny_dir), "resize.width": 70,
                                                   "resize.height": 61}))
    result = engine.run(wf, on_event=seen.append)
    assert result.values["encode"]["latent"].samples.shape[-2:] == (7, 8)
    assert Image.open(result.outputs[0]).size == (64, 56)
    assert any(getattr(e, "message", "") == "image 70x61 resized to 64x56 (multiples of 8)" for e in seen)


@pytest.fixture(scope="module")
def tiny_inpaint_dir(tmp_path_factory):
    from tests.tiny import save_tiny_pipeline
    path = tmp_path_factory.mktemp("models") / "tiny-inpaint"
    save_tiny_pipeline(path, in_channels=9)
    return path


def inpaint_expected(tiny_path, name, result, strength, masked_latents=None):
    latent = result.values["encode"]["latent"].samples if "encode" in result.values else \
        result.values["inpaint"]["latent"].samples
    mask = result.values["mask"]["mask"]
    pipe = pipeline(diffusers.StableDiffusionInpaintPipeline, tiny_path, name)
    if masked_latents is None:  # a 4-channel U-Net ignores them; any latents avoid a pixel-space path
        masked_latents = latent
    return pipe(PROMPT, image=latent, mask_image=mask, masked_image_latents=masked_latents, height=SIZE,
                width=SIZE, strength=strength, negative_prompt=NEGATIVE, num_inference_steps=STEPS,
                guidance_scale=7.0, generator=torch.Generator("cpu").manual_seed(SEED)).images[0]


@pytest.mark.parametrize("name,strength", [("euler", 1.0), ("ddim", 0.6), ("dpmpp_2m", 1.0),
                                           ("euler_ancestral", 1.0)])
def test_inpaint_4_channel_matches_pipeline(engine, tiny_dir, name, strength):
    wf = load_workflow("inpaint.json", **small(**{"ckpt.path": str(tiny_dir), "scheduler.name": name,
                                                   "sampler.denoise": strength}))
    wf.nodes["save"].inputs["image"] = ("decode", "image")  # compare before the overlay
    result = engine.run(wf)
    expected = inpaint_expected(tiny_dir, name, result, strength)
    assert np.array_equal(saved(result)[0], np.array(expected))


def test_inpaint_composite_keeps_untouched_pixels(engine, tiny_dir):
    wf = load_workflow("inpaint.json", **small(**{"ckpt.path": str(tiny_dir)}))
    result = engine.run(wf)
    out = saved(result)[0].astype(int)
    original = (result.values["resize"]["image"][0].permute(1, 2, 0).numpy() * 255).round().astype(int)
    mask = torch.nn.functional.interpolate(result.values["mask"]["mask"], size=(SIZE, SIZE), mode="bilinear")
    keep = torch.nn.functional.max_pool2d(mask, 5, stride=1, padding=2)[0, 0].numpy() == 0  # clear of the edge
    assert keep.sum() > 100 and (~keep).sum() > 100
    assert np.abs(out[keep] - original[keep]).max() <= 1  # only 8-bit rounding of the original
    assert np.abs(out[~keep] - original[~keep]).mean() > 5


@pytest.mark.parametrize("name,strength", [("euler", 1.0), ("pndm", 1.0), ("ddim", 0.6), ("euler_ancestral", 1.0)])
def test_inpaint_9_channel_matches_pipeline(engine, tiny_inpaint_dir, name, strength):
    from latentloom.app.session.overrides import apply_sets
    from latentloom.app.core.validate import load
    from latentloom.nodes import catalog
    import json
    from tests.conftest import WORKFLOWS
    doc = json.loads((WORKFLOWS / "inpaint.json").read_text())
    n = doc["nodes"]
    # Swap VAEEncode + SetLatentMask for InpaintEncode, as a 9-channel graph has it.
    n["inpaint"] = {"type": "InpaintEncode", "inputs": {"vae": ["ckpt", "vae"], "image": ["resize", "image"],
                                                         "mask": ["mask", "mask"]}}
    del n["encode"], n["masked"]
    n["sampler"]["inputs"]["latent"] = ["inpaint", "latent"]
    n["save"]["inputs"]["image"] = ["decode", "image"]
    sets = small(**{"ckpt.path": str(tiny_inpaint_dir), "scheduler.name": name, "sampler.denoise": strength})
    assert not apply_sets(doc, [f"{k}={json.dumps(v)}" for k, v in sets.items()])[0]
    result = engine.run(load(doc, catalog))
    latent = result.values["inpaint"]["latent"]
    expected = inpaint_expected(tiny_inpaint_dir, name, result, strength, latent.masked_image_latents)
    assert np.array_equal(saved(result)[0], np.array(expected))


def test_9_channel_model_without_inpaint_latent_is_a_clear_error(engine, tiny_inpaint_dir):
    from latentloom.app.engine.executor import NodeError
    wf = load_workflow("txt2img.json", **{"ckpt.path": str(tiny_inpaint_dir), "ckpt.dtype": "fp32",
                                           "latent.width": 64, "latent.height": 64, "sampler.steps": 2})
    with pytest.raises(NodeError, match="this is an inpainting model"):
        engine.run(wf)


def test_mask_of_another_size_is_resized_and_logged(engine, tiny_dir):
    seen = []
    wf = load_workflow("inpaint.json", **small(**{"ckpt.path": str(tiny_dir)}))
    engine.run(wf, on_event=seen.append)
    assert any(getattr(e, "message", "") == "mask 512x512 resized to the image's 64x64" for e in seen)
