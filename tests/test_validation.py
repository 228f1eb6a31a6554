"""Invalid and hostile workflows: every problem reported at once, naming node and port or param."""
import copy
import json

import pytest

from latentloom.app.core.validate import check
from latentloom.app.core.workflow import VERSION, WorkflowError
from latentloom.nodes import catalog
from tests.conftest import WORKFLOWS

BASE = json.loads((WORKFLOWS / "txt2img.json").read_text())


def problems(doc):
    wf, found = check(doc, catalog)
    return [str(p) for p in found]


def edited(fn):
    doc = copy.deepcopy(BASE)
    fn(doc)
    return doc


def test_shipped_workflow_is_valid_and_defaults_fill_in():
    doc = edited(lambda d: d["nodes"]["sampler"].pop("params"))
    wf, found = check(doc, catalog)
    assert found == []
    assert wf.nodes["sampler"].params == {"steps": 25, "cfg": 7.5, "denoise": 1.0, "guidance_rescale": 0.0}


def test_all_problems_are_reported_together():
    def damage(d):
        n = d["nodes"]
        n["sampler"]["params"]["steps"] = 0
        n["sampler"]["params"]["bogus"] = 1
        n["scheduler"]["params"]["name"] = "warp"
        n["latent"]["params"]["width"] = 100
        n["decode"]["inputs"]["latent"] = ["positive", "conditioning"]
        n["save"]["inputs"]["image"] = ["ghost", "image"]
        del n["sampler"]["inputs"]["noise"]
        n["positive"]["inputs"]["clip"] = ["ckpt", "clipper"]
        n["mystery"] = {"type": "Teleport"}
    assert problems(edited(damage)) == [
        "node 'positive' input 'clip': node 'ckpt' (LoadCheckpoint) has no output 'clipper' (it has: model, clip, vae)",
        "node 'latent' param 'width': 100 is not a multiple of 8",
        "node 'scheduler' param 'name': 'warp' is not one of: euler, euler_ancestral, heun, dpm_2, "
        "dpm_2_ancestral, lms, dpmpp_2m, dpmpp_2m_sde, ddim, ddpm, pndm, unipc, deis, dpmpp_sde, uni_pc, uni_pc_bh2, lcm",
        "node 'sampler' param 'bogus': unknown param for Sampler (it has: steps, cfg, denoise, guidance_rescale)",
        "node 'sampler' param 'steps': 0 is below the minimum 1",
        "node 'sampler' input 'noise': missing required input (NOISE)",
        "node 'decode' input 'latent': type mismatch: positive.conditioning is CONDITIONING, this input takes LATENT",
        "node 'save' input 'image': linked to missing node 'ghost'",
        "node 'mystery': unknown node type 'Teleport'",
    ]


def test_wrong_value_types():
    def damage(d):
        d["nodes"]["sampler"]["params"].update(steps="25", cfg=True)
        d["nodes"]["noise"]["params"]["seed"] = -1
        d["nodes"]["positive"]["params"]["text"] = ["a", "b"]
    assert problems(edited(damage)) == [
        "node 'positive' param 'text': expected a string, got ['a', 'b']",
        "node 'noise' param 'seed': -1 is below the minimum 0",
        "node 'sampler' param 'steps': expected an integer, got '25'",
        "node 'sampler' param 'cfg': expected a number, got True",
    ]


def test_cycles_are_named():
    def damage(d):
        d["nodes"]["positive"]["inputs"]["clip"] = ["loop", "clip"]
        d["nodes"]["loop"] = {"type": "LoadCheckpoint", "inputs": {}}
        d["nodes"]["a"] = {"type": "VAEDecode", "inputs": {"vae": ["ckpt", "vae"], "latent": ["b", "latent"]}}
        d["nodes"]["b"] = {"type": "Sampler", "inputs": {"latent": ["a", "image"]}}
    found = problems(edited(damage))
    assert any("cycle: a -> b -> a" in p or "cycle: b -> a -> b" in p for p in found), found


def test_unsupported_scheduler_combination_is_an_error():
    doc = edited(lambda d: d["nodes"]["scheduler"]["params"].update(name="ddim", sigmas="karras"))
    assert problems(doc) == ["node 'scheduler' param 'sigmas': 'karras' sigmas are not supported by 'ddim' "
                             "(DDIMScheduler); use 'default' or another scheduler"]


@pytest.mark.parametrize("prefix", ["../escape", "/etc/passwd", "a/../../b", "C:\\x", "..", "sub/.hidden",
                                    "a\\b", "", "x" * 101])
def test_save_prefix_cannot_leave_the_output_folder(prefix):
    found = problems(edited(lambda d: d["nodes"]["save"]["params"].update(filename_prefix=prefix)))
    assert len(found) == 1 and found[0].startswith("node 'save' param 'filename_prefix': ")


def test_save_prefix_may_name_a_subfolder():
    assert problems(edited(lambda d: d["nodes"]["save"]["params"].update(filename_prefix="runs/day 1"))) == []


@pytest.mark.parametrize("doc,message", [
    ([], "a workflow must be a JSON object"),
    ({"format": "comfy", "version": 1, "nodes": {}}, "not a Latent Loom workflow"),
    ({"format": "latentloom.workflow", "version": VERSION + 1, "nodes": {}},
     f"made by a newer Latent Loom (format version {VERSION + 1}; this one reads up to version {VERSION})"),
    ({"format": "latentloom.workflow", "version": "1", "nodes": {}}, "\"version\" must be a positive integer"),
    ({"format": "latentloom.workflow", "version": 1, "nodes": []}, "\"nodes\" must be an object"),
    ({"format": "latentloom.workflow", "version": 1, "nodes": {}, "extra": 1}, "unknown top-level key 'extra'"),
    ({"format": "latentloom.workflow", "version": 1, "nodes": {"n": {"type": "Sampler", "inputs": {"model": "ckpt"}}}},
     "node 'n' input 'model': a link must be"),
])
def test_document_structure(doc, message):
    found = problems(doc)
    assert any(message in p for p in found), found


def test_ui_data_round_trips_and_unknown_ui_keys_survive():
    doc = edited(lambda d: d.update(ui={"zoom": 1.5, "future_panel": {"x": [1, 2]}}))
    wf, found = check(doc, catalog)
    assert not found
    out = wf.to_json()
    assert out["ui"] == {"zoom": 1.5, "future_panel": {"x": [1, 2]}}
    assert out["nodes"]["ckpt"]["ui"] == {"pos": [0, 0]}  # as workflows/txt2img.json has it


def test_migration_hook_runs_for_older_versions(monkeypatch):
    from latentloom.app.core import workflow
    monkeypatch.setattr(workflow, "VERSION", 2)
    monkeypatch.setitem(workflow.MIGRATIONS, 1, lambda d: {**d, "version": 2, "ui": {"migrated": True}})
    wf, found = workflow.parse(copy.deepcopy(BASE))
    assert not found and wf.ui == {"migrated": True}


def test_workflow_error_message_lists_everything():
    from latentloom.app.core.validate import load
    with pytest.raises(WorkflowError) as err:
        load(edited(lambda d: d["nodes"]["sampler"]["params"].update(steps=0, cfg=-1)), catalog, "wf.json")
    assert str(err.value) == ("wf.json: node 'sampler' param 'steps': 0 is below the minimum 1; "
                              "node 'sampler' param 'cfg': -1 is below the minimum 0.0")


def test_huge_or_deep_json_is_refused_cleanly():
    from latentloom.app.core.workflow import decode
    with pytest.raises(WorkflowError, match="nested deeper than 64 levels"):
        decode("[" * 100000 + "]" * 100000)
