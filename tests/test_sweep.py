"""Sweeps: cells equal single runs, shared work runs once, contact sheets, manifests, bad input."""
import json

import numpy as np
from PIL import Image

from latentloom.app.cli import main
from tests.conftest import WORKFLOWS

TXT2IMG = str(WORKFLOWS / "txt2img.json")
ALL = ["ckpt", "positive", "negative", "latent", "noise", "scheduler", "sampler", "decode", "save"]


def tiny_sets(tiny_dir, steps=2):
    return ["--set", f"ckpt.path={tiny_dir}", "--set", "ckpt.dtype=fp32", "--set", f"sampler.steps={steps}",
            "--set", "latent.width=64", "--set", "latent.height=64"]


def pixels(path):
    return np.array(Image.open(path))


def session_for(out, tiny_dir):
    from latentloom.app.session import Session
    return Session(models_dirs=[], output_dir=out, device="cpu")


def test_cfg_by_seed_sweep_equals_single_runs_and_runs_shared_work_once(tiny_dir, tmp_path):
    report = tmp_path / "report.json"
    out = tmp_path / "out"
    assert main(["sweep", TXT2IMG, "--axis", "sampler.cfg=1,3,7.5", "--axis", "noise.seed=1..2",
                 *tiny_sets(tiny_dir), "--out", str(out), "--device", "cpu", "--quiet",
                 "--report", str(report)]) == 0
    data = json.loads(report.read_text())
    runs = data["runs"]
    assert [r["cell"] for r in runs] == [{"sampler.cfg": c, "noise.seed": s} for s in (1, 2) for c in (1, 3, 7.5)]
    # The seed feeds more of the graph than cfg, so it varies slowest: each prompt is encoded once,
    # the checkpoint loaded once, each seed's noise made once.
    assert runs[0]["executed"] == ALL and runs[0]["cached"] == []
    for r in (runs[1], runs[2], runs[4], runs[5]):
        assert r["executed"] == ["sampler", "decode", "save"]
        assert r["cached"] == ["ckpt", "positive", "negative", "latent", "noise", "scheduler"]
    assert runs[3]["executed"] == ["noise", "sampler", "decode", "save"]
    counts = {n: sum(n in r["executed"] for r in runs) for n in ALL}
    assert counts == {"ckpt": 1, "positive": 1, "negative": 1, "latent": 1, "scheduler": 1, "noise": 2,
                      "sampler": 6, "decode": 6, "save": 6}
    # Every cell equals a single run of the plain workflow with that cell's --set values.
    single_out = tmp_path / "single"
    for r in runs:
        cfg, seed = r["cell"]["sampler.cfg"], r["cell"]["noise.seed"]
        assert main(["run", TXT2IMG, *tiny_sets(tiny_dir), "--set", f"sampler.cfg={cfg}", "--set",
                     f"noise.seed={seed}", "--out", str(single_out), "--device", "cpu", "--quiet"]) == 0
        single = sorted(single_out.glob("txt2img_*.png"))[-1]
        assert np.array_equal(pixels(r["outputs"][0]), pixels(single)), r["cell"]
        embedded = json.loads(Image.open(r["outputs"][0]).info["latentloom.workflow"])
        assert "sweep" not in embedded
        assert embedded["nodes"]["sampler"]["params"]["cfg"] == cfg
        assert embedded["nodes"]["noise"]["params"]["seed"] == seed
    # One contact sheet (two axes = one page), embedding the sweep workflow; a manifest.
    assert len(data["sheets"]) == 1 and data["sheets"][0].endswith("txt2img_sheet_00001.png")
    sheet_doc = json.loads(Image.open(data["sheets"][0]).info["latentloom.workflow"])
    assert sheet_doc["sweep"]["axes"][0] == {"params": ["sampler.cfg"], "values": [1, 3, 7.5]}
    manifest = json.loads(open(data["manifests"][0]).read())
    assert [c["values"] for c in manifest["cells"]] == [r["cell"] for r in runs]
    assert [c["files"] for c in manifest["cells"]] == [r["outputs"] for r in runs]
    assert manifest["cells"][1]["executed"] == ["sampler", "decode", "save"] and manifest["status"] == "ok"


def test_strength_sweep_encodes_the_image_once(tiny_dir, tmp_path):
    report = tmp_path / "r.json"
    wf = str(WORKFLOWS / "strength_sweep.json")
    sets = ["--set", f"ckpt.path={tiny_dir}", "--set", "ckpt.dtype=fp32", "--set", "sampler.steps=5",
            "--set", "resize.width=64", "--set", "resize.height=64"]
    assert main(["run", wf, *sets, "--out", str(tmp_path / "o"), "--device", "cpu", "--quiet",
                 "--report", str(report)]) == 0
    runs = json.loads(report.read_text())["runs"]
    assert [r["cell"] for r in runs] == [{"sampler.denoise": d} for d in (0.2, 0.4, 0.6, 0.8, 1.0)]
    assert runs[0]["executed"] == ["ckpt", "positive", "negative", "image", "resize", "encode", "noise",
                                   "scheduler", "sampler", "decode", "save"]
    for r in runs[1:]:
        assert r["executed"] == ["sampler", "decode", "save"]
        assert "encode" in r["cached"] and "image" in r["cached"]


def test_sweep_bad_input_is_rejected_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["sweep", TXT2IMG, "--axis", "nope.cfg=1,2", "--axis", "sampler.cfgg=1",
                 "--axis", "sampler.cfg=1,500,x", "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "node 'nope' sweep axis 0 (nope.cfg): no such node 'nope'" in err
    assert "node 'sampler' sweep axis 1 (sampler.cfgg): param 'cfgg': unknown param for Sampler" in err
    assert "node 'sampler' sweep axis 2 (sampler.cfg): param 'cfg': value 500: 500 is above the maximum 100.0" in err
    assert "node 'sampler' sweep axis 2 (sampler.cfg): param 'cfg': value 'x': expected a number, got 'x'" in err
    assert "Traceback" not in err and not out.exists()
    assert main(["sweep", TXT2IMG, "--axis", "scheduler.name=euler,nope", "--axis", "latent.width=64,70",
                 "--axis", "sampler.cfg=1:2:0", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--axis 'sampler.cfg=1:2:0': range '1:2:0': the step must lead from start to stop" in err
    assert main(["sweep", TXT2IMG, "--out", str(out)]) == 2
    assert "no axes: give --axis NODE.PARAM=V1,V2,..." in capsys.readouterr().err


def test_sweep_block_problems_name_the_axis(tmp_path, capsys):
    doc = json.loads(open(TXT2IMG).read())
    doc["sweep"] = {"axes": [{"params": ["sampler.steps", "scheduler.name"], "values": [[2, "euler"], [3]]},
                             {"params": ["latent.width"], "values": [64, 70]}]}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "sweep axis 0: value [3]: an axis of 2 params takes lists of 2 values" in err
    doc["sweep"]["axes"][0]["values"] = [[2, "euler"], [3, "heun"]]
    path.write_text(json.dumps(doc))
    assert main(["validate", str(path), "--set", "ckpt.path=stable-diffusion-v1-5/stable-diffusion-v1-5"]) == 2
    err = capsys.readouterr().err
    assert ("node 'latent' param 'width': in sweep cell {'sampler.steps': 2, 'scheduler.name': 'euler', "
            "'latent.width': 70}: 70 is not a multiple of 8") in err


def test_ranges_and_value_lists():
    from latentloom.app.core.sweep import expand_range, parse_values
    from latentloom.app.session.overrides import parse_value
    assert expand_range("1..4") == [1, 2, 3, 4]
    assert expand_range("4..2") == [4, 3, 2]
    assert expand_range("0.2:1.0:0.2") == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert expand_range("1:2:0.25") == [1.0, 1.25, 1.5, 1.75, 2.0]
    assert parse_values("1,3,7.5", parse_value) == [1, 3, 7.5]
    assert parse_values("euler, heun", parse_value) == ["euler", "heun"]
    assert parse_values('["a fox, red", "a cat"]', parse_value) == ["a fox, red", "a cat"]


def test_contact_sheet_geometry_and_labels():
    from latentloom.app.session import sheet
    colours = {(0, 0): (255, 0, 0), (1, 0): (0, 255, 0), (0, 1): (0, 0, 255)}
    images = {k: Image.new("RGB", (64, 48), c) for k, c in colours.items()}
    images[(1, 1)] = None  # a failed cell
    im = sheet.render(images, ["1", "3"], ["seed 1", "seed 2"], "sampler.cfg", "noise.seed")
    geometry = sheet.layout(2, 2, 64, 48, True)
    assert im.size == geometry[3]
    arr = np.array(im)
    for (c, r), colour in colours.items():
        x, y = sheet.cell_origin(geometry, c, r)
        assert (arr[y:y + 48, x:x + 64] == colour).all(), (c, r)
    x, y = sheet.cell_origin(geometry, 1, 1)
    cell = arr[y:y + 48, x:x + 64]
    assert (cell == sheet.FAILED_GREY).mean() > 0.5 and (cell != sheet.FAILED_GREY).any()  # "failed" text
    top, left = geometry[1], geometry[2]
    assert (arr[:top - 2] != sheet.BACKGROUND).any(axis=-1).sum() > 50  # title and column labels
    assert (arr[top:, :left - 2] != sheet.BACKGROUND).any(axis=-1).sum() > 50  # row labels


def test_contact_sheet_size_is_capped():
    from latentloom.app.session import sheet
    (cw, ch), top, left, size = sheet.layout(40, 30, 1024, 1024, True)
    assert max(size) <= sheet.MAX_SIDE and cw == ch and cw < 1024


def test_cancelled_sweep_keeps_finished_cells_and_resumes_from_the_cache(tiny_dir, tmp_path):
    from latentloom.app.engine import events as ev
    from latentloom.app.engine.cancel import CancelToken
    from latentloom.app.session import Session
    session = Session(models_dirs=[], output_dir=tmp_path / "o", device="cpu")
    sets = [f"ckpt.path={tiny_dir}", "ckpt.dtype=fp32", "sampler.steps=2", "latent.width=64",
            "latent.height=64"]
    doc = session.open(TXT2IMG)
    doc.data["sweep"] = {"axes": [{"params": ["noise.seed"], "values": [1, 2, 3]}]}
    prepared = session.prepare(doc, sets)
    cancel = CancelToken()

    def stop_after_two(e):
        if isinstance(e, ev.CellFinished) and e.index == 1:
            cancel.cancel()
    first = session.sweep(prepared, on_event=stop_after_two, cancel=cancel)
    assert first.status == "cancelled"
    assert [c.cell.values for c in first.cells] == [{"noise.seed": 1}, {"noise.seed": 2}]
    assert len(first.sheets) == 1 and json.loads(open(first.manifest).read())["status"] == "cancelled"
    again = session.sweep(prepared)
    assert again.status == "ok"
    assert [c.executed for c in again.cells] == [["save"], ["save"], ["noise", "sampler", "decode", "save"]]
