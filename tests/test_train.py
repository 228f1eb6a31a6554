"""LoRA training: the loop, the written file, the CLI and the TrainLoRA node, on the tiny model."""
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

import diffusers
from latentloom.app.cli import main
from latentloom.app.core.validate import load
from latentloom.app.engine import events as ev
from latentloom.app.engine.cancel import CancelToken, Cancelled
from latentloom.app.engine.executor import NodeError
from latentloom.app.sd.train import data as datasets, loop
from latentloom.nodes import catalog
from tests.conftest import ROOT, WORKFLOWS
from tools.make_training_images import write as write_images

pytestmark = pytest.mark.filterwarnings("ignore:Already found a .peft_config.")
PROMPT, SEED = "a picture of zqx creature on a beach", 3


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """4 small captioned images."""
    folder = tmp_path_factory.mktemp("data") / "zqx"
    write_images(folder, count=4, size=64)
    return folder


@pytest.fixture(scope="module")
def sd2_dir(tmp_path_factory):
    """A tiny model with an SD 2.x-style U-Net (linear projections): not SD 1.x."""
    from diffusers import UNet2DConditionModel
    from tests.tiny import tiny_components
    comps = tiny_components()
    config = {k: v for k, v in comps["unet"].config.items() if k != "_use_default_values"}
    comps["unet"] = UNet2DConditionModel.from_config({**config, "use_linear_projection": True})
    path = tmp_path_factory.mktemp("models") / "tiny-sd2"
    diffusers.StableDiffusionPipeline(**comps, requires_safety_checker=False).save_pretrained(path)
    return path


def handles(runtime, tiny_dir):
    return runtime.load_checkpoint(f"test:{tiny_dir}", str(tiny_dir))


def train_cli(tiny_dir, images, out, *more):
    return main(["train-lora", "--base", str(tiny_dir), "--data", str(images), "--out", str(out), "--steps", "12",
                 "--resolution", "32", "--lr", "1e-2", "--device", "cpu", "--quiet", *more])


# -- the loop ------------------------------------------------------------------------------------
def test_loss_goes_down(runtime, tiny_dir, images):
    dataset = datasets.load(images, 32)
    trainer = loop.Trainer(runtime, *handles(runtime, tiny_dir), dataset, loop.Config(steps=30, lr=1e-2, resolution=32))
    for _ in range(30):
        trainer.step()
    losses = trainer.losses
    assert len(losses) == 30 and trainer.done == 30
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_step_zero_is_the_base_model(engine, runtime, tiny_dir, images, tmp_path):
    import copy
    from latentloom.app.sd.train import saves
    model, clip, vae = handles(runtime, tiny_dir)
    trainer = loop.Trainer(runtime, model, clip, vae, datasets.load(images, 32),
                           loop.Config(resolution=32, text_encoder=True))
    parts = trainer.lora_parts()
    b = [v for part in parts.values() for k, v in part.items() if "lora_B" in k]
    a = [v for part in parts.values() for k, v in part.items() if "lora_A" in k]
    assert len(b) == len(a) == 32 + 12 and all(not t.any() for t in b) and all(t.any() for t in a)
    gen = torch.Generator().manual_seed(0)
    x, t = torch.randn(1, 4, 4, 4, generator=gen), torch.tensor([500])
    ids = trainer.tokens[:1]
    with torch.no_grad(), runtime.unet(model) as unet, runtime.clip(clip) as te:
        plain_unet, plain_te = copy.deepcopy(unet), copy.deepcopy(te.encoder)
        assert torch.equal(trainer.te(ids)[0], plain_te(ids)[0])
        states = plain_te(ids)[0]
        assert torch.equal(trainer.unet(x, t, states).sample, plain_unet(x, t, states).sample)
        assert trainer.unet is not unet and not hasattr(unet, "peft_config")  # the shared U-Net is untouched
    # The LoRA as it stands before the first step renders exactly the base model's image.
    path = saves.save_lora(trainer, tmp_path / "step0.safetensors", "tiny", ("", ""))
    assert np.array_equal(engine_image(engine, lora_doc(tiny_dir, path)), engine_image(engine, lora_doc(tiny_dir)))


def test_checkpointing_and_v_prediction(runtime, tiny_dir, images, tmp_path):
    import shutil
    model, clip, vae = handles(runtime, tiny_dir)
    dataset = datasets.load(images, 32)
    runs = []
    for gc in (False, True):
        trainer = loop.Trainer(runtime, model, clip, vae, dataset, loop.Config(
            lr=1e-2, resolution=32, text_encoder=True, batch=2, gradient_checkpointing=gc))
        runs.append([trainer.step() for _ in range(3)])
    assert runs[0] == runs[1]  # checkpointing saves memory, not results
    assert trainer.config.prediction_type == "epsilon"
    v_dir = tmp_path / "tiny-v"
    shutil.copytree(tiny_dir, v_dir)
    config = v_dir / "scheduler" / "scheduler_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "prediction_type": "v_prediction"}))
    v_handles = runtime.load_checkpoint(f"test:{v_dir}", str(v_dir))
    v = loop.Trainer(runtime, *v_handles, dataset, loop.Config(resolution=32))
    assert v.config.prediction_type == "v_prediction" and v.step() != runs[0][0]


# -- the file ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tiny_dir, images, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "zqx.safetensors"
    assert train_cli(tiny_dir, images, out, "--text-encoder", "--rank", "2", "--alpha", "4") == 0
    return out


def test_file_has_the_kohya_layout_and_metadata(trained, tiny_dir):
    with safe_open(str(trained), "pt") as f:
        keys, meta = list(f.keys()), f.metadata()
        alpha = f.get_tensor("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.alpha")
    assert len([k for k in keys if k.startswith("lora_unet_") and k.endswith(".lora_down.weight")]) == 32
    assert len([k for k in keys if k.startswith("lora_te_text_model_encoder_layers_") and k.endswith(".alpha")]) == 12
    assert all(k.endswith((".lora_down.weight", ".lora_up.weight", ".alpha")) for k in keys)
    assert float(alpha) == 4.0
    assert meta["ss_network_dim"] == "2" and meta["ss_network_alpha"] == "4.0" and meta["ss_steps"] == "12"
    assert meta["ss_network_module"] == "networks.lora" and meta["ss_base_model_version"] == "sd_v1"
    assert len(meta["ss_new_sd_model_hash"]) == 64 and meta["ss_sd_model_name"] == tiny_dir.name
    assert json.loads(meta["ss_caption_summary"]) == {
        "a picture of zqx creature in the middle, blue background": 1,
        "a picture of zqx creature in the middle, purple background": 1,
        "a picture of zqx creature on the left, green background": 1,
        "a picture of zqx creature on the right, grey background": 1}
    assert json.loads(meta["ss_tag_frequency"])["zqx"]["blue background"] == 1
    log = json.loads(trained.with_name("zqx.loss.json").read_text())
    assert len(log["loss"]) == 12
    assert trained.with_name("zqx.loss.csv").read_text().splitlines()[0] == "step,loss,running_loss"
    assert Image.open(trained.with_name("zqx.loss.png")).size == (640, 360)


def lora_doc(tiny_dir, lora_path=None):
    doc = json.loads((WORKFLOWS / "lora.json").read_text())
    n = doc["nodes"]
    sets = {"ckpt": {"path": str(tiny_dir), "dtype": "fp32"}, "positive": {"text": PROMPT},
            "latent": {"width": 64, "height": 64}, "noise": {"seed": SEED}, "sampler": {"steps": 3}}
    if lora_path is None:  # no LoRA at all
        del n["lora"]
        for node in n.values():
            for port, (src, out) in node.get("inputs", {}).items():
                if src == "lora":
                    node["inputs"][port] = ["ckpt", out]
    else:
        sets["lora"] = {"path": str(lora_path)}
    for nid, params in sets.items():
        n[nid]["params"].update(params)
    return doc


def png(result):
    """The image a run saved (TrainLoRA also reports its LoRA file)."""
    return np.array(Image.open(next(p for p in result.outputs if p.endswith(".png"))))


def engine_image(engine, doc):
    return png(engine.run(load(doc, catalog)))


def test_file_loads_in_diffusers_and_loadlora_alike(engine, tiny_dir, trained):
    pipe = diffusers.StableDiffusionPipeline.from_pretrained(tiny_dir, safety_checker=None,
                                                            requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = diffusers.EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.load_lora_weights(str(trained), adapter_name="zqx")
    expected = np.array(pipe(PROMPT, negative_prompt="blurry, low quality", height=64, width=64,
                             num_inference_steps=3, guidance_scale=7.5,
                             generator=torch.Generator().manual_seed(SEED)).images[0])
    got = engine_image(engine, lora_doc(tiny_dir, trained))
    assert np.array_equal(got, expected)
    assert not np.array_equal(got, engine_image(engine, lora_doc(tiny_dir)))


def test_same_seed_same_file(tiny_dir, images, tmp_path, trained):
    again, other = tmp_path / "again.safetensors", tmp_path / "other.safetensors"
    assert train_cli(tiny_dir, images, again, "--text-encoder", "--rank", "2", "--alpha", "4") == 0
    assert again.read_bytes() == trained.read_bytes()
    assert train_cli(tiny_dir, images, other, "--text-encoder", "--rank", "2", "--alpha", "4", "--seed", "1") == 0
    assert other.read_bytes() != trained.read_bytes()


def test_resume_equals_uninterrupted(tiny_dir, images, tmp_path):
    whole, part = tmp_path / "whole.safetensors", tmp_path / "part.safetensors"
    assert train_cli(tiny_dir, images, whole, "--batch", "3") == 0
    assert train_cli(tiny_dir, images, part, "--batch", "3", "--steps", "5", "--save-every", "2") == 0
    assert sorted(p.name for p in tmp_path.glob("part-step*")) == ["part-step0002.safetensors",
                                                                   "part-step0004.safetensors"]
    assert part.read_bytes() != whole.read_bytes()
    assert train_cli(tiny_dir, images, part, "--batch", "3", "--resume") == 0
    assert part.read_bytes() == whole.read_bytes()
    assert part.with_name("part.loss.json").read_text() == whole.with_name("whole.loss.json").read_text()


def test_ctrl_c_saves_and_resumes(tiny_dir, images, tmp_path, monkeypatch, capsys):
    whole, cut = tmp_path / "whole.safetensors", tmp_path / "cut.safetensors"
    assert train_cli(tiny_dir, images, whole) == 0
    step = loop.Trainer.step

    def interrupted(self):
        loss = step(self)
        if self.done == 7:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C: the handler lets the step finish
        return loss
    monkeypatch.setattr(loop.Trainer, "step", interrupted)
    assert train_cli(tiny_dir, images, cut) == 1
    assert "interrupted at step 7/12: saved" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("cut")) == [
        "cut-step0007.safetensors", "cut.loss.csv", "cut.loss.json", "cut.loss.png", "cut.trainstate"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.setattr(loop.Trainer, "step", step)
    assert train_cli(tiny_dir, images, cut, "--resume") == 0
    assert cut.read_bytes() == whole.read_bytes()


# -- CLI errors ----------------------------------------------------------------------------------
def test_cli_errors_name_the_flag(tiny_dir, sd2_dir, images, tmp_path, capsys):
    out = tmp_path / "x.safetensors"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.png").write_bytes(b"not a png")
    (bad / "b.jpg").write_bytes(b"")
    cases = [
        ([], "--rank", "0"),
        (["--data", str(empty)], None, None),
        (["--data", str(bad)], None, None),
        (["--base", str(sd2_dir)], None, None),
        ([], "--alpha", "-1"),
        ([], "--resume", None),
    ]
    expected = [
        "error: --rank: the rank must be at least 1, got 0",
        f"error: --data: the folder {str(empty)!r} has no images (.png, .jpg, .jpeg, .webp, .bmp)",
        f"error: --data: none of the 2 images in {str(bad)!r} could be read: a.png (UnidentifiedImageError: ",
        "error: --base: not a Stable Diffusion 1.x base (its U-Net has the SD 2.x/XL layout); LoRA training "
        "supports SD 1.x only",
        "error: --alpha: must not be negative, got -1.0",
        "error: --resume: no saved state x.trainstate beside --out",
    ]
    for (swap, flag, value), message in zip(cases, expected):
        args = ["--base", str(tiny_dir), "--data", str(images)]
        for i in range(0, len(swap), 2):
            args[args.index(swap[i]) + 1] = swap[i + 1]
        extra = [a for a in (flag, value) if a]
        code = main(["train-lora", *args, "--out", str(out), "--device", "cpu", "--quiet", "--steps", "2",
                     "--resolution", "32", *extra])
        err = capsys.readouterr().err
        assert code == 2, err
        assert err.startswith(message), err
    assert not out.exists()


def test_unreadable_images_are_skipped(tiny_dir, images, tmp_path, capsys):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for p in images.iterdir():
        (mixed / p.name).write_bytes(p.read_bytes())
    (mixed / "broken.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "m.safetensors"
    assert train_cli(tiny_dir, mixed, out, "--steps", "2") == 0
    assert "warning: --data: skipped unreadable image broken.png (UnidentifiedImageError" in capsys.readouterr().err
    with safe_open(str(out), "pt") as f:
        assert json.loads(f.metadata()["ss_num_train_images"]) == 4


def test_captions_from_metadata_and_default(tmp_path, images):
    folder = tmp_path / "meta"
    folder.mkdir()
    for p in sorted(images.glob("*.png"))[:3]:
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "metadata.jsonl").write_text(json.dumps({"file_name": "zqx_01.png", "text": "from jsonl"}) + "\n")
    (folder / "zqx_02.txt").write_text("from txt\n")
    ds = datasets.load(folder, 16, "the default")
    assert ds.names == ["zqx_00.png", "zqx_01.png", "zqx_02.png"]
    assert ds.captions == ["the default", "from jsonl", "from txt"] and ds.defaulted == 1
    assert tuple(ds.pixels.shape) == (3, 3, 16, 16) and ds.pixels.min() >= -1 and ds.pixels.max() <= 1


# -- the node ------------------------------------------------------------------------------------
def train_doc(tiny_dir, data, **params):
    """workflows/lora_training.json without its sweep, made tiny."""
    doc = json.loads((WORKFLOWS / "lora_training.json").read_text())
    del doc["sweep"]
    n = doc["nodes"]
    n["ckpt"]["params"].update(path=str(tiny_dir), dtype="fp32")
    n["train"]["params"].update(data=str(data), resolution=64, steps=6, lr=1e-2, **params)
    n["latent"]["params"].update(width=64, height=64)
    n["sampler"]["params"]["steps"] = 2
    return doc


def run_doc(engine, doc, cancel=None, events=None):
    return engine.run(load(doc, catalog), cancel=cancel, on_event=(events.append if events is not None else None))


def test_node_trains_once_and_again_when_a_caption_changes(engine, tiny_dir, images, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for p in images.iterdir():
        (data / p.name).write_bytes(p.read_bytes())
    doc = train_doc(tiny_dir, data)
    first = run_doc(engine, doc)
    assert "train" in first.executed
    lora = first.values["train"]["lora"]
    assert Path(lora.path).parent == Path(engine.output_dir) / "loras" and Path(lora.path).name.startswith("zqx_")
    assert first.values["train"]["loss"].shape == (1, 3, 360, 640)
    again = run_doc(engine, doc)
    assert again.executed == ["save"] and "train" in again.cached
    caption = data / "zqx_01.txt"
    caption.write_text(caption.read_text() + " smiling\n")
    third = run_doc(engine, doc)
    assert "train" in third.executed and third.values["train"]["lora"].path != lora.path
    assert not np.array_equal(png(first), png(third))


def test_node_lora_equals_the_cli_file_and_loadlora_by_path(engine, tiny_dir, images, tmp_path):
    doc = train_doc(tiny_dir, images, rank=2, text_encoder=True)
    result = run_doc(engine, doc)
    path = result.values["train"]["lora"].path
    cli_file = tmp_path / "cli.safetensors"
    assert main(["train-lora", "--base", str(tiny_dir), "--data", str(images), "--out", str(cli_file), "--steps", "6",
                 "--resolution", "64", "--lr", "1e-2", "--rank", "2", "--text-encoder", "--caption",
                 "a picture of zqx creature", "--device", "cpu", "--quiet"]) == 0
    with safe_open(path, "pt") as a, safe_open(str(cli_file), "pt") as b:
        assert sorted(a.keys()) == sorted(b.keys())
        assert all(torch.equal(a.get_tensor(k), b.get_tensor(k)) for k in a.keys())
    by_path = json.loads(json.dumps(doc))
    del by_path["nodes"]["lora"]["inputs"]["lora"]
    by_path["nodes"]["lora"]["params"]["path"] = path
    assert np.array_equal(png(result), engine_image(engine, by_path))


def test_node_cancel_leaves_no_lora_and_continues(engine, runtime, tiny_dir, images, tmp_path):
    from latentloom.app.engine.executor import Engine
    doc = train_doc(tiny_dir, images, seed=11)
    cancel, events = CancelToken(), []

    def on_event(e):
        events.append(e)
        if isinstance(e, ev.NodeProgress) and e.node_id == "train" and e.step == 3:
            cancel.cancel()  # seen at the next step boundary (after step 4)
    with pytest.raises(Cancelled):
        engine.run(load(doc, catalog), cancel=cancel, on_event=on_event)
    loras = Path(engine.output_dir) / "loras"
    assert not list(loras.glob("*.safetensors")) and len(list(loras.glob(".zqx_*.trainstate"))) == 1
    events.clear()
    resumed = run_doc(engine, doc, events=events)
    assert "continuing from step 4 of an earlier run with the same data and params" in [
        e.message for e in events if isinstance(e, ev.NodeLog)]
    fresh = Engine(catalog, output_dir=tmp_path / "fresh", env=runtime, previews=False)
    whole = run_doc(fresh, doc)
    files = [Path(r.values["train"]["lora"].path) for r in (resumed, whole)]
    assert files[0].read_bytes() == files[1].read_bytes()
    # A new process (an empty cache) finds the finished file instead of training again.
    events.clear()
    later = run_doc(Engine(catalog, output_dir=tmp_path / "fresh", env=runtime, previews=False), doc, events=events)
    assert "train" in later.executed
    assert not [e for e in events if isinstance(e, ev.NodeProgress) and e.node_id == "train"]


def test_node_shows_a_live_loss_curve(runtime, tiny_dir, images, tmp_path):
    from latentloom.app.engine.executor import Engine
    engine = Engine(catalog, output_dir=tmp_path / "out", env=runtime, previews=True)
    events = []
    run_doc(engine, train_doc(tiny_dir, images, seed=5), events=events)
    steps = [e for e in events if isinstance(e, ev.NodeProgress) and e.node_id == "train"]
    assert [(e.step, e.total) for e in steps] == [(i, 6) for i in range(1, 7)]
    assert all(isinstance(e.preview, Image.Image) and e.preview.size == (640, 360) for e in steps)


def test_node_errors_name_the_node_and_param(engine, tiny_dir, sd2_dir, images, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.png").write_bytes(b"nope")
    with pytest.raises(NodeError) as e:
        run_doc(engine, train_doc(tiny_dir, empty))
    assert str(e.value) == (f"node 'train' (TrainLoRA) failed: param 'data': the folder {str(empty)!r} has no "
                            "images (.png, .jpg, .jpeg, .webp, .bmp)")
    with pytest.raises(NodeError) as e:
        run_doc(engine, train_doc(tiny_dir, bad))
    assert str(e.value).startswith(f"node 'train' (TrainLoRA) failed: param 'data': none of the 1 images in "
                                   f"{str(bad)!r} could be read: a.png (UnidentifiedImageError")
    doc = train_doc(sd2_dir, images)
    with pytest.raises(NodeError) as e:
        run_doc(engine, doc)
    assert str(e.value) == ("node 'train' (TrainLoRA) failed: input 'model': not a Stable Diffusion 1.x base (its "
                            "U-Net has the SD 2.x/XL layout); LoRA training supports SD 1.x only")
    from latentloom.app.core.workflow import WorkflowError
    with pytest.raises(WorkflowError) as e:
        load(train_doc(tiny_dir, images, rank=0), catalog)
    assert [str(p) for p in e.value.problems] == ["node 'train' param 'rank': 0 is below the minimum 1"]


def test_linked_lora_input_replaces_the_path_check(tiny_dir, images, tmp_path):
    from latentloom.app.core.workflow import WorkflowError
    from latentloom.app.session import Session
    session = Session(models_dirs=[tmp_path / "models"], output_dir=tmp_path / "out", device="cpu")
    doc = train_doc(tiny_dir, images)
    doc["nodes"]["lora"]["params"]["path"] = ""
    session.prepare(doc)  # neither the empty value nor the missing file is a problem while `lora` is linked
    del doc["nodes"]["lora"]["inputs"]["lora"]
    with pytest.raises(WorkflowError) as e:
        session.prepare(doc)
    assert [str(p) for p in e.value.problems] == ["node 'lora' param 'path': a file is required"]


def test_shipped_workflow_sweeps_rank_and_steps(tmp_path):
    from latentloom.app.session import Session
    from latentloom.app.session.readers import Document
    session = Session(models_dirs=[tmp_path], output_dir=tmp_path / "out", device="cpu")
    doc = session.open(WORKFLOWS / "lora_training.json")
    doc.data["nodes"]["ckpt"]["params"]["path"] = str(ROOT / "resources" / "sd15")  # any existing folder
    prepared = session.prepare(Document(doc.data, doc.source, doc.base_dir, doc.reader))
    assert [a.to_json() for a in prepared.axes][:2] == [{"params": ["train.rank"], "values": [4, 8, 16]},
                                                        {"params": ["train.steps"], "values": [100, 300]}]
    data = WORKFLOWS / "inputs" / "zqx-creature"
    assert prepared.document["nodes"]["train"]["params"]["data"] == str(data)
    assert len(list(data.glob("*.png"))) == len(list(data.glob("*.txt"))) >= 4


def test_shipped_workflow_runs_its_sweep_on_the_tiny_model(runtime, tiny_dir, tmp_path):
    """The lesson's exercise, shrunk: each LoRA trains once, the longer runs continue the shorter ones."""
    from latentloom.app.session import Session
    from latentloom.app.session.readers import Document
    session = Session(output_dir=tmp_path / "out", device="cpu")
    session.engine.env = runtime
    doc = session.open(WORKFLOWS / "lora_training.json")
    doc.data["sweep"]["axes"][1]["values"] = [2, 4]
    n = doc.data["nodes"]
    n["ckpt"]["params"].update(path=str(tiny_dir), dtype="fp32")
    n["train"]["params"]["resolution"] = 64
    n["latent"]["params"].update(width=64, height=64)
    n["sampler"]["params"]["steps"] = 2
    events = []
    result = session.sweep(session.prepare(Document(doc.data, doc.source, doc.base_dir, doc.reader)),
                           on_event=events.append)
    assert result.status == "ok" and len(result.cells) == 12 and len(result.sheets) == 2
    trained = [c for c in result.cells if "train" in c.executed]
    assert sorted((c.cell.values["train.rank"], c.cell.values["train.steps"]) for c in trained) == [
        (4, 2), (4, 4), (8, 2), (8, 4), (16, 2), (16, 4)]
    logs = [e.message for e in events if isinstance(e, ev.NodeLog) and e.node_id == "train"]
    assert logs.count("continuing from step 2 of an earlier run with the same data and params") == 3
    assert len(list((tmp_path / "out" / "loras").glob("zqx_*.safetensors"))) == 6
    assert Image.open(result.sheets[0]).size[0] > 3 * 64
