"""Every shipped workflow is schema-valid, validates and runs on the tiny model; docs are current."""
import json

import jsonschema
import pytest

from latentloom.app.cli import main
from tests.conftest import ROOT, WORKFLOWS

SHIPPED = sorted(WORKFLOWS.glob("*.json"))
SCHEMA = json.loads((ROOT / "docs" / "workflow.schema.json").read_text())


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_workflow_matches_schema_and_validates(path, tiny_dir, request, capsys):
    doc = json.loads(path.read_text())
    jsonschema.validate(doc, SCHEMA)
    assert main(["validate", str(path), *tiny_overrides(doc, tiny_dir, *extra_files(doc, request))]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: ok")


def tiny_overrides(doc, tiny_dir, lora_file, controlnet_dir=None):
    """--set overrides that point a shipped workflow at the tiny model and test inputs."""
    sets = [f"{nid}.path={controlnet_dir}" for nid, n in doc["nodes"].items() if n["type"] == "LoadControlNet"]
    for nid, node in doc["nodes"].items():
        t = node["type"]
        if t == "LoadCheckpoint":
            sets += [f"{nid}.path={tiny_dir}", f"{nid}.dtype=fp32"]
        elif t == "Sampler":  # a strength sweep down to 0.2 needs 5 steps for one to run
            sets.append(f"{nid}.steps={5 if 'sweep' in doc else 2}")
        elif t == "EmptyLatent":
            sets += [f"{nid}.width=64", f"{nid}.height=64"]
        elif t == "LoadLoRA":
            sets.append(f"{nid}.path={lora_file}")
        elif t == "ResizeImage":
            sets += [f"{nid}.width=64", f"{nid}.height=64"]
        elif t == "LatentUpscale":
            sets += [f"{nid}.width=96", f"{nid}.height=96"]
        elif t == "TrainLoRA":
            sets += [f"{nid}.steps=2", f"{nid}.resolution=64", f"{nid}.data={WORKFLOWS / node['params']['data']}"]
    return [x for s in sets for x in ("--set", s)]


@pytest.fixture
def controlnet_dir(tiny_pipe, tmp_path_factory, monkeypatch):
    """A tiny ControlNet folder; its config stands in for SD 1.5's."""
    from latentloom.app.sd import controlnet
    from tests.support.controlnets import tiny_controlnet
    path = tmp_path_factory.mktemp("controlnet") / "tiny-cn"
    tiny_controlnet(tiny_pipe.unet, 1).save_pretrained(path)
    monkeypatch.setattr(controlnet, "CONFIG_DIR", path)
    return path


def extra_files(doc, request):
    types = {n["type"] for n in doc["nodes"].values()}
    return (request.getfixturevalue("lora_file") if "LoadLoRA" in types else None,
            request.getfixturevalue("controlnet_dir") if "LoadControlNet" in types else None)


@pytest.fixture(scope="module")
def lora_file(tiny_dir, tmp_path_factory):
    try:
        from tests.support.lora_files import make_peft_lora
    except ImportError:
        return "none.safetensors"
    return make_peft_lora(tiny_dir, tmp_path_factory.mktemp("lora") / "lora.safetensors")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_workflow_runs_on_the_tiny_model(path, tiny_dir, request, tmp_path):
    doc = json.loads(path.read_text())
    report = tmp_path / "report.json"
    sets = tiny_overrides(doc, tiny_dir, *extra_files(doc, request))
    if doc.pop("sweep", None) is not None:  # one plain run here (sweeps: tests/test_sweep.py, test_train.py)
        path = tmp_path / path.name
        path.write_text(json.dumps(doc))
        (tmp_path / "inputs").symlink_to(WORKFLOWS / "inputs")
    code = main(["run", str(path), *sets, "--out", str(tmp_path / "out"),
                 "--device", "cpu", "--quiet", "--report", str(report)])
    assert code == 0
    run = json.loads(report.read_text())["runs"][0]
    assert sorted(run["executed"]) == sorted(doc["nodes"])
    assert any(p.endswith(".png") for p in run["outputs"])
    assert all(p.endswith((".png", ".safetensors")) for p in run["outputs"])  # TrainLoRA reports its LoRA


def test_node_docs_are_generated_from_the_specs():
    import sys
    sys.path.insert(0, str(ROOT / "tools"))
    from gen_docs import render
    from latentloom.nodes import catalog
    assert (ROOT / "docs" / "nodes.md").read_text() == render(catalog), "run: python tools/gen_docs.py"
