"""The image SaveImage writes equals StableDiffusionPipeline's, pixel for pixel."""
import numpy as np
import pytest
import torch
from PIL import Image

import diffusers
from latentloom.app.sd.scheduler_table import SCHEDULERS, overrides
from tests.conftest import load_workflow

PROMPT, NEGATIVE, SEED, STEPS = "a red fox in the snow", "blurry", 1234, 3


def pipeline_images(pipe, name, sigmas="default", *, cfg, batch, width, height, prompt=PROMPT):
    cls = getattr(diffusers, SCHEDULERS[name][0])
    pipe.scheduler = cls.from_config(pipe.scheduler_config_for_test, **overrides(name, sigmas))
    out = pipe(prompt, negative_prompt=NEGATIVE, height=height, width=width, num_inference_steps=STEPS,
               guidance_scale=cfg, num_images_per_prompt=batch,
               generator=torch.Generator("cpu").manual_seed(SEED))
    return [np.array(im) for im in out.images]


def engine_images(engine, path, name, sigmas="default", *, cfg, batch, width, height, config="",
                  prompt=PROMPT):
    wf = load_workflow("txt2img.json", **{
        "ckpt.path": str(path), "ckpt.config": str(config), "ckpt.dtype": "fp32",
        "positive.text": prompt, "negative.text": NEGATIVE, "noise.seed": SEED,
        "scheduler.name": name, "scheduler.sigmas": sigmas, "sampler.steps": STEPS, "sampler.cfg": cfg,
        "latent.batch_size": batch, "latent.width": width, "latent.height": height})
    result = engine.run(wf)
    assert len(result.outputs) == batch
    return [np.array(Image.open(p)) for p in result.outputs]


@pytest.fixture(scope="module")
def pipe(tiny_pipe):
    tiny_pipe.scheduler_config_for_test = tiny_pipe.scheduler.config
    tiny_pipe.set_progress_bar_config(disable=True)
    return tiny_pipe


CASES = [dict(cfg=7.5, batch=1, width=64, height=64), dict(cfg=1.0, batch=2, width=64, height=48)]


@pytest.mark.parametrize("name", list(SCHEDULERS))
@pytest.mark.parametrize("case", CASES, ids=["cfg-b1-square", "nocfg-b2-wide"])
def test_every_scheduler_matches_pipeline(engine, pipe, tiny_dir, name, case):
    expected = pipeline_images(pipe, name, **case)
    got = engine_images(engine, tiny_dir, name, **case)
    assert [g.shape for g in got] == [e.shape for e in expected]
    for g, e in zip(got, expected):
        assert np.array_equal(g, e)


@pytest.mark.parametrize("name,sigmas", [("euler", "karras"), ("dpmpp_2m", "exponential"),
                                         ("dpmpp_2m_sde", "karras"), ("lms", "beta")])
def test_sigma_schedules_match_pipeline(engine, pipe, tiny_dir, name, sigmas):
    case = dict(cfg=5.0, batch=2, width=48, height=64)
    assert all(np.array_equal(g, e) for g, e in zip(engine_images(engine, tiny_dir, name, sigmas, **case),
                                                      pipeline_images(pipe, name, sigmas, **case)))


@pytest.mark.parametrize("name", ["euler_ancestral", "dpmpp_2m", "pndm"])
def test_single_file_checkpoint_matches_pipeline(engine, pipe, tiny_single_file, name):
    path, config = tiny_single_file
    case = dict(cfg=7.5, batch=2, width=64, height=64)
    got = engine_images(engine, path, name, config=config, **case)
    assert all(np.array_equal(g, e) for g, e in zip(got, pipeline_images(pipe, name, **case)))


def test_images_differ_between_seeds_and_prompts(engine, tiny_dir):
    """Guard against a degenerate model where every image is the same."""
    case = dict(cfg=7.5, batch=1, width=64, height=64)
    a = engine_images(engine, tiny_dir, "euler", **case)[0]
    b = engine_images(engine, tiny_dir, "euler", prompt="a blue house", **case)[0]
    assert not np.array_equal(a, b)
    assert a.std() > 5
