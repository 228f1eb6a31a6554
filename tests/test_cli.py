"""The latentloom command line: exit codes, messages, --set, reports, PNG workflows."""
import json

import numpy as np
import pytest
from PIL import Image

from latentloom.app.cli import main
from tests.conftest import WORKFLOWS

TXT2IMG = str(WORKFLOWS / "txt2img.json")


def tiny_sets(tiny_dir, steps=2):
    return ["--set", f"ckpt.path={tiny_dir}", "--set", "ckpt.dtype=fp32", "--set", f"sampler.steps={steps}",
            "--set", "latent.width=64", "--set", "latent.height=64"]


def test_run_writes_images_and_report(tiny_dir, tmp_path, capsys):
    report = tmp_path / "report.json"
    code = main(["run", TXT2IMG, TXT2IMG, *tiny_sets(tiny_dir), "--out", str(tmp_path / "out"),
                 "--device", "cpu", "--report", str(report), "--quiet"])
    assert code == 0
    runs = json.loads(report.read_text())["runs"]
    assert [r["workflow"] for r in runs] == [TXT2IMG, TXT2IMG]
    assert runs[0]["executed"] == ["ckpt", "positive", "negative", "latent", "noise", "scheduler", "sampler",
                                   "decode", "save"]
    assert runs[0]["cached"] == []
    # The second workflow runs in the same process and shares the cache.
    assert runs[1]["executed"] == ["save"]
    assert [p.rsplit("/", 1)[1] for r in runs for p in r["outputs"]] == ["txt2img_00001.png", "txt2img_00002.png"]
    a, b = (np.array(Image.open(r["outputs"][0])) for r in runs)
    assert np.array_equal(a, b)


def test_png_carries_the_workflow_and_runs_again(tiny_dir, tmp_path):
    out = tmp_path / "out"
    assert main(["run", TXT2IMG, *tiny_sets(tiny_dir), "--set", "noise.seed=5", "--out", str(out),
                 "--device", "cpu", "--quiet"]) == 0
    first = out / "txt2img_00001.png"
    im = Image.open(first)
    embedded = json.loads(im.text["latentloom.workflow"])
    assert embedded["nodes"]["noise"]["params"]["seed"] == 5
    assert "Steps: 2, Sampler: Euler, CFG scale: 7.5, Seed: 5, Size: 64x64" in im.text["parameters"]
    assert im.text["parameters"].startswith("a watercolor painting")
    assert main(["run", str(first), "--out", str(out), "--device", "cpu", "--quiet"]) == 0
    assert np.array_equal(np.array(Image.open(first)), np.array(Image.open(out / "txt2img_00002.png")))


def test_invalid_workflow_exits_2_and_prints_every_problem(tmp_path, capsys):
    doc = json.loads(open(TXT2IMG).read())
    doc["nodes"]["sampler"]["params"]["steps"] = -3
    doc["nodes"]["save"]["params"]["filename_prefix"] = "../../etc/x"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    assert main(["run", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "invalid workflow (2 problems)" in err
    assert "node 'sampler' param 'steps': -3 is below the minimum 1" in err
    assert "node 'save' param 'filename_prefix': must not contain '..'" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_missing_checkpoint_says_where_to_put_it(tmp_path, capsys):
    code = main(["run", TXT2IMG, "--models", str(tmp_path / "models"), "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err
    assert ("node 'ckpt' param 'path': file not found: 'v1-5-pruned-emaonly.safetensors'; put it into "
            f"{tmp_path / 'models' / 'checkpoints'}") in err
    assert "Hugging Face repo id" in err


def test_models_folder_in_comfyui_layout(tiny_dir, tmp_path):
    import shutil
    models = tmp_path / "ComfyUI" / "models"
    shutil.copytree(tiny_dir, models / "checkpoints" / "tiny")
    assert main(["run", TXT2IMG, *tiny_sets("tiny"), "--models", str(models), "--out", str(tmp_path / "o"),
                 "--device", "cpu", "--quiet"]) == 0


def test_set_errors(tmp_path, capsys):
    assert main(["validate", TXT2IMG, "--set", "nope.steps=3", "--set", "sampler=3"]) == 2
    err = capsys.readouterr().err
    assert "node 'nope': --set 'nope.steps=3': no such node" in err
    assert "--set 'sampler=3': expected NODE.PARAM=VALUE" in err


def test_set_values_parse_as_json_else_string(capsys):
    assert main(["validate", TXT2IMG, "--set", "positive.text=42"]) == 2  # 42 is a number: not a string
    assert "node 'positive' param 'text': expected a string, got 42" in capsys.readouterr().err
    assert main(["validate", TXT2IMG, "--set", "positive.text=a cat", "--set", "sampler.cfg=2.5",
                 "--set", "ckpt.path=stable-diffusion-v1-5/stable-diffusion-v1-5"]) == 0


def test_runtime_failure_exits_1_with_node_and_cause(tiny_dir, tmp_path, capsys):
    code = main(["run", TXT2IMG, *tiny_sets(tiny_dir), "--set", "positive.clip_skip=7", "--out",
                 str(tmp_path / "o"), "--device", "cpu", "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    assert "node 'positive' (TextEncode) failed: clip_skip 7 is too large for a text encoder of 3 layers" in err
    assert "Traceback" not in err


def test_pickle_checkpoints_are_refused_unless_opted_in(tmp_path, capsys):
    import torch
    ckpt = tmp_path / "old.ckpt"
    torch.save({"state_dict": {"x": torch.zeros(1)}}, ckpt)
    code = main(["run", TXT2IMG, "--set", f"ckpt.path={ckpt}", "--out", str(tmp_path / "o"), "--quiet"])
    assert code == 2  # found before anything runs, as `validate` finds it
    assert ("node 'ckpt' param 'path': old.ckpt is a pickle file; these can run code"
            in capsys.readouterr().err)
    code = main(["run", TXT2IMG, "--set", f"ckpt.path={ckpt}", "--out", str(tmp_path / "o"), "--quiet",
                 "--allow-pickle-checkpoints"])
    assert code == 1  # read safely, then found not to be an SD checkpoint
    assert "not an original-layout Stable Diffusion 1.x checkpoint" in capsys.readouterr().err


def test_png_without_workflow_is_a_clear_error(tmp_path, capsys):
    plain = tmp_path / "plain.png"
    Image.new("RGB", (4, 4)).save(plain)
    assert main(["validate", str(plain)]) == 2
    assert "this PNG carries no Latent Loom workflow" in capsys.readouterr().err  # nor another format


def test_nodes_catalog_json(capsys):
    assert main(["nodes", "--json"]) == 0
    nodes = {n["type"]: n for n in json.loads(capsys.readouterr().out)}
    sampler = nodes["Sampler"]
    assert [i["name"] for i in sampler["inputs"]] == ["model", "positive", "negative", "latent", "noise",
                                                       "scheduler"]
    steps = next(p for p in sampler["params"] if p["name"] == "steps")
    assert steps == {"name": "steps", "kind": "int", "default": 25, "help": "Inference steps.", "min": 1,
                     "max": 1000, "step": 1}
    assert "karras" in next(p for p in nodes["Scheduler"]["params"] if p["name"] == "sigmas")["choices"]
