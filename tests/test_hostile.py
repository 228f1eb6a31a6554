"""Hostile input: paths, special files, pickles, hostile PNGs, malformed JSON. Every case is a clear
message naming the node and param (or the flag), exit 2 for invalid input and 1 at run time, no
traceback, nothing written outside the output folder and no code run."""
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib

import pytest
from PIL import Image

from latentloom.app.cli import main
from tests.conftest import ROOT, WORKFLOWS

TXT2IMG = json.loads((WORKFLOWS / "txt2img.json").read_text())
IMG2IMG = json.loads((WORKFLOWS / "img2img.json").read_text())


def tiny_doc(tiny_dir, base=TXT2IMG, **params):
    """A copy of a workflow on the tiny model; params={"node__param": value}."""
    doc = json.loads(json.dumps(base))
    for nid, node in doc["nodes"].items():
        p = node.setdefault("params", {})
        if node["type"] == "LoadCheckpoint":
            p.update(path=str(tiny_dir), dtype="fp32")
        elif node["type"] == "Sampler":
            p["steps"] = 1
        elif node["type"] in ("EmptyLatent", "ResizeImage"):
            p.update(width=64, height=64)
        elif node["type"] == "LoadImage":
            p["path"] = str(WORKFLOWS / p["path"])
    for key, value in params.items():
        nid, name = key.split("__")
        doc["nodes"][nid]["params"][name] = value
    return doc


def cli(capsys, *args):
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def write(tmp_path, doc, name="wf.json"):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8", errors="surrogatepass")
    return path


def run_and_validate(capsys, path, out, *extra):
    """`validate` and `run` agree: the same exit code 2 and the same message."""
    v, verr = cli(capsys, "validate", path, "--out", out, *extra)
    r, rerr = cli(capsys, "run", path, "--out", out, "--quiet", "--device", "cpu", *extra)
    assert v == r == 2, (verr, rerr)
    assert verr == rerr
    return verr


# ---- paths -----------------------------------------------------------------------------------

@pytest.mark.parametrize("key,value,message", [
    ("ckpt__path", "~nosuchuser/x.safetensors", "'~nosuchuser/x.safetensors': ~nosuchuser is not a user"),
    ("ckpt__path", "x" * 300 + ".safetensors", "the name is too long for this file system (312 characters)"),
    ("ckpt__path", "bad\x00name.safetensors", "contains a NUL character"),
    ("ckpt__path", "C:\\models\\sd.safetensors", "(a Windows path: on this system write paths with '/'"),
    ("ckpt__path", "\\\\server\\share\\sd.safetensors", "(a Windows path"),
    ("ckpt__config", "/dev/zero", "'/dev/zero' is a device, not a regular file"),
    ("ckpt__config", "~", "'~' is a folder but not a diffusers model folder (no model_index.json)"),
    ("ckpt__config", "/", "'/' is a folder but not a diffusers model folder (no model_index.json)"),
])
def test_hostile_file_params_are_clear_errors(tiny_dir, tmp_path, capsys, key, value, message):
    path = write(tmp_path, tiny_doc(tiny_dir, **{key: value}))
    t0 = time.monotonic()
    err = run_and_validate(capsys, path, tmp_path / "out")
    assert time.monotonic() - t0 < 20  # no walk of ~ or /
    node, param = key.split("__")
    assert f"node '{node}' param '{param}': " in err and message in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("node,param", [("image", "path"), ("ckpt", "path")])
def test_unknown_user_in_any_file_param(tiny_dir, tmp_path, capsys, node, param):
    path = write(tmp_path, tiny_doc(tiny_dir, IMG2IMG, **{f"{node}__{param}": "~nosuchuser/x.png"}))
    err = run_and_validate(capsys, path, tmp_path / "out")
    assert f"node '{node}' param '{param}': '~nosuchuser/x.png': ~nosuchuser is not a user" in err


def test_fifo_and_device_never_hang_a_run(tiny_dir, tmp_path):
    """A FIFO or /dev/zero as an image, run in a real process: refused at once, exit 2."""
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    for value, what in ((fifo, "FIFO (named pipe)"), ("/dev/zero", "device")):
        path = write(tmp_path, tiny_doc(tiny_dir, IMG2IMG, image__path=str(value)))
        proc = subprocess.run([sys.executable, "-m", "latentloom.app", "run", str(path), "--out", str(tmp_path / "o")],
                              capture_output=True, text=True, timeout=120, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert proc.returncode == 2
        assert f"node 'image' param 'path': '{value}' is a {what}, not a regular file" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_dangling_symlinks(tiny_dir, tmp_path, capsys):
    link = tmp_path / "gone.png"
    link.symlink_to(tmp_path / "nothing-here.png")
    path = write(tmp_path, tiny_doc(tiny_dir, IMG2IMG, image__path=str(link)))
    err = run_and_validate(capsys, path, tmp_path / "out")
    assert f"node 'image' param 'path': '{link}' is a symbolic link to something that does not exist" in err
    # inside a model folder, a dangling link is fingerprinted, not followed into an error
    model = tmp_path / "model"
    shutil.copytree(tiny_dir, model)
    (model / "unet" / "stale.bin").symlink_to(tmp_path / "nothing")
    from latentloom.app.engine.files import Resolved, fingerprint
    assert fingerprint(Resolved(str(model), str(model))).startswith("dir:")


def test_model_folder_fingerprint_reads_two_levels_only(tiny_dir, tmp_path):
    from latentloom.app.engine.files import Resolved, fingerprint
    model = tmp_path / "model"
    shutil.copytree(tiny_dir, model)
    before = fingerprint(Resolved(str(model), str(model)))
    deep = model / "unet" / "a" / "b"
    deep.mkdir(parents=True)
    (deep / "x.json").write_text("{}")
    assert fingerprint(Resolved(str(model), str(model))) == before  # not walked
    (model / "unet" / "config.json").write_text((model / "unet" / "config.json").read_text() + " ")
    assert fingerprint(Resolved(str(model), str(model))) != before


def test_content_fingerprint_is_bounded_and_cancellable(tmp_path, monkeypatch):
    from latentloom.app.engine import files
    from latentloom.app.engine.cancel import CancelToken, Cancelled
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * (3 << 20))
    monkeypatch.setattr(files, "MAX_CONTENT_BYTES", 2 << 20)
    r = files.Resolved(str(big), str(big))
    with pytest.raises(files.FileProblem, match="is larger than 2 MiB"):
        files.fingerprint(r, "content")
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        files.fingerprint(r, "content", token)


def test_symlinks_in_and_out_of_the_output_folder(tiny_dir, tmp_path, capsys):
    out, outside, inside = tmp_path / "out", tmp_path / "outside", tmp_path / "out" / "real"
    inside.mkdir(parents=True)
    outside.mkdir()
    (out / "in").symlink_to(inside)
    (out / "away").symlink_to(outside)
    ok = write(tmp_path, tiny_doc(tiny_dir, save__filename_prefix="in/new/x"), "ok.json")
    code, err = cli(capsys, "run", ok, "--out", out, "--quiet", "--device", "cpu")
    assert code == 0, err
    assert [p.name for p in (inside / "new").iterdir()] == ["x_00001.png"]
    bad = write(tmp_path, tiny_doc(tiny_dir, save__filename_prefix="away/newdir/x"), "bad.json")
    code, err = cli(capsys, "run", bad, "--out", out, "--quiet", "--device", "cpu")
    assert code == 1
    assert "node 'save' (SaveImage) failed: filename_prefix 'away/newdir/x' leads outside the output folder" in err
    assert list(outside.iterdir()) == []  # nothing created there, not even the folder


@pytest.mark.parametrize("prefix,message", [
    ("../../escape", "must not contain '..'"),
    ("/tmp/escape", "must be a relative name inside the output folder"),
    ("C:/escape", "must be a relative name inside the output folder"),
    ("sub\\escape", "must be a relative name inside the output folder"),
])
def test_prefixes_that_would_leave_the_output_folder(tiny_dir, tmp_path, capsys, prefix, message):
    path = write(tmp_path, tiny_doc(tiny_dir, save__filename_prefix=prefix))
    err = run_and_validate(capsys, path, tmp_path / "out")
    assert f"node 'save' param 'filename_prefix': {message}" in err


def test_out_and_report_flags_are_checked_before_running(tiny_dir, tmp_path, capsys):
    path = write(tmp_path, tiny_doc(tiny_dir))
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for args, message in (
            (["--out", a_file], f"error: --out '{a_file}' is a file, not a folder"),
            (["--out", a_file / "sub"], f"error: --out '{a_file / 'sub'}': '{a_file}' is a file, not a folder"),
            (["--out", tmp_path / "o", "--report", tmp_path / "missing" / "r.json"],
             f"error: --report '{tmp_path / 'missing' / 'r.json'}': the folder '{tmp_path / 'missing'}' "
             "does not exist")):
        code, err = cli(capsys, "run", path, "--quiet", *args)
        assert code == 2 and message in err
    assert not (tmp_path / "o").exists()  # refused before anything ran
    code, err = cli(capsys, "validate", path, "--out", a_file)
    assert code == 2 and f"--out '{a_file}' is a file" in err


# ---- pickles -----------------------------------------------------------------------------------

class RunsCode:
    """Unpickling this runs a shell command (if anything ever unpickles it unsafely)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def hostile_pickle(path, marker):
    import torch
    torch.save({"state_dict": {"w": torch.zeros(2), "evil": RunsCode(marker)}}, path)


def test_hostile_ckpt_never_runs_code(tiny_dir, tmp_path, capsys):
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "evil.ckpt"
    hostile_pickle(ckpt, marker)
    path = write(tmp_path, tiny_doc(tiny_dir, ckpt__path=str(ckpt)))
    err = run_and_validate(capsys, path, tmp_path / "out")
    assert "node 'ckpt' param 'path': evil.ckpt is a pickle file; these can run code when loaded" in err
    code, err = cli(capsys, "run", path, "--out", tmp_path / "out", "--quiet", "--device", "cpu",
                    "--allow-pickle-checkpoints")
    assert code == 1
    assert ("node 'ckpt' (LoadCheckpoint) failed: evil.ckpt: refused: the file carries code (Python objects "
            "that loading would run), not only weights") in err
    assert "\x1b" not in err and "Weights only load failed" not in err
    assert not marker.exists()


def _pickle_folder(tiny_dir, folder, unet_state):
    import torch
    shutil.copytree(tiny_dir, folder)
    (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    torch.save(unet_state, folder / "unet" / "diffusion_pytorch_model.bin")


def test_diffusers_folder_with_pickle_weights_needs_the_opt_in(tiny_dir, tmp_path, capsys):
    from safetensors.torch import load_file
    state = load_file(tiny_dir / "unet" / "diffusion_pytorch_model.safetensors")
    model = tmp_path / "pickled"
    _pickle_folder(tiny_dir, model, state)
    path = write(tmp_path, tiny_doc(tiny_dir, ckpt__path=str(model)))
    err = run_and_validate(capsys, path, tmp_path / "out")
    assert ("node 'ckpt' param 'path': pickled/unet/diffusion_pytorch_model.bin is a pickle file; these can "
            "run code when loaded. Convert it to .safetensors, or opt in with --allow-pickle-checkpoints") in err
    assert cli(capsys, "validate", path, "--allow-pickle-checkpoints")[0] == 0
    code, err = cli(capsys, "run", path, "--out", tmp_path / "out", "--quiet", "--device", "cpu",
                    "--allow-pickle-checkpoints")
    assert code == 0, err
    # a hostile .bin in a folder, opted in: refused, never run
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil-folder"
    _pickle_folder(tiny_dir, evil, {**state, "evil": RunsCode(marker)})
    path = write(tmp_path, tiny_doc(tiny_dir, ckpt__path=str(evil)), "evil.json")
    code, err = cli(capsys, "run", path, "--out", tmp_path / "out", "--quiet", "--device", "cpu",
                    "--allow-pickle-checkpoints")
    assert code == 1
    assert "node 'ckpt' (LoadCheckpoint) failed: evil-folder: refused: the file carries code" in err
    assert "\x1b" not in err and not marker.exists()


def test_offline_hub_id_says_the_machine_is_offline(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    doc = tiny_doc("x", ckpt__path="someone/not-cached-model")
    code, err = cli(capsys, "run", write(tmp_path, doc), "--out", tmp_path / "o", "--quiet", "--device", "cpu")
    assert code == 1
    assert ("node 'ckpt' (LoadCheckpoint) failed: someone/not-cached-model: the download from the Hugging Face "
            "hub failed: this machine is set offline (HF_HUB_OFFLINE), and the model is not in the local "
            "cache") in err
    assert "stacktrace" not in err


# ---- hostile PNGs and malformed documents ------------------------------------------------------

def _png_with_text(path, text, size=(8, 8)):
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    info.add_text("latentloom.workflow", text, zip=True)
    Image.new("RGB", size).save(path, pnginfo=info)


def test_png_carrying_a_hostile_workflow(tiny_dir, tmp_path, capsys):
    for params, message in (({"save__filename_prefix": "../../escape"},
                             "node 'save' param 'filename_prefix': must not contain '..'"),
                            ({"image__path": "/dev/zero"},
                             "node 'image' param 'path': '/dev/zero' is a device, not a regular file")):
        png = tmp_path / "evil.png"
        _png_with_text(png, json.dumps(tiny_doc(tiny_dir, IMG2IMG, **params)))
        assert message in run_and_validate(capsys, png, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "escape_00001.png").exists()
    deep = tmp_path / "deep.png"
    _png_with_text(deep, '{"format": "latentloom.workflow", "version": 1, "nodes": '
                   + "[" * 5000 + "]" * 5000 + "}")
    assert "nested deeper than 64 levels" in run_and_validate(capsys, deep, tmp_path / "out")


def test_a_huge_png_is_read_for_its_text_only(tiny_dir, tmp_path, capsys):
    """A PNG that says it is 12000x12000: the workflow is read from the text chunk, no pixel decoded."""
    small = tmp_path / "small.png"
    _png_with_text(small, json.dumps(tiny_doc(tiny_dir)))
    data = bytearray(small.read_bytes())
    ihdr = data[12:29]  # type + 13 bytes of IHDR data
    ihdr[4:12] = struct.pack(">II", 12000, 12000)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    huge = tmp_path / "huge.png"
    huge.write_bytes(bytes(data))
    code, err = cli(capsys, "validate", huge)
    assert code == 0, err


def _with_duplicate_save(doc):
    text = json.dumps(doc)
    evil = ('"save": {"type": "SaveImage", "params": {"filename_prefix": "../../escape"}, '
            '"inputs": {"image": ["decode", "image"]}}, ')
    return text.replace('"save": {', evil + '"save": {', 1)


@pytest.mark.parametrize("make,message", [
    (_with_duplicate_save, "node 'save': this node id is defined twice"),
    (lambda d: json.dumps(d).replace('"steps": 1', '"steps": 1, "steps": 30'),
     "node 'sampler' param 'steps': given twice (the file must give each key once)"),
    (lambda d: json.dumps(d).replace('"txt2img"', '"x\\ud800"'),
     "node 'save' param 'filename_prefix': contains a lone surrogate character ('x\\ud800')"),
    (lambda d: json.dumps(d).replace('"positive"', '"pos\\ud800"'), "node 'pos\\ud800': a node id must be"),
    (lambda d: _rename(d, "negative", "neg\u202eative"), "node 'neg\\u202eative': a node id must be"),
    (lambda d: _rename(d, "negative", "neg\u200bative"), "node 'neg\\u200bative': a node id must be"),
    (lambda d: _rename(d, "negative", "neg\u0007ative"), "node 'neg\\x07ative': a node id must be"),
    (lambda d: json.dumps(d).replace('"seed": 42', '"seed": ' + "9" * 5000),
     "node 'noise' param 'seed': an integer of 5000 digits is too large"),
    (lambda d: json.dumps({**d, "ui": _nest(600)}), "'ui': nested deeper than 64 levels"),
    (lambda d: json.dumps({**d, "nodes": {**d["nodes"], "save": {**d["nodes"]["save"], "ui": _nest(200)}}}),
     "node 'save' 'ui': nested deeper than 64 levels"),
])
def test_malformed_documents_name_node_and_param(tiny_dir, tmp_path, capsys, make, message):
    err = run_and_validate(capsys, write(tmp_path, make(tiny_doc(tiny_dir))), tmp_path / "out")
    assert message in err
    assert not (tmp_path / "out").exists()


def _rename(doc, old, new):
    doc["nodes"][new] = doc["nodes"].pop(old)
    return json.dumps(doc)


def _nest(depth):
    value = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def test_deep_documents_from_code_do_not_recurse(tmp_path):
    """A deep dict handed to the session (as the editor does) is refused before any deep copy."""
    from latentloom.app.core.workflow import WorkflowError
    from latentloom.app.session import Session
    doc = {"format": "latentloom.workflow", "version": 1, "nodes": {}, "ui": _nest(5000)}
    with pytest.raises(WorkflowError, match="nested deeper than 64 levels"):
        Session(models_dirs=[]).prepare(doc)


def test_utf8_bom_is_accepted(tiny_dir, tmp_path, capsys):
    path = write(tmp_path, "\ufeff" + json.dumps(tiny_doc(tiny_dir)))
    assert cli(capsys, "validate", path)[0] == 0


def test_sizes_that_cannot_fit_are_refused_before_running(tiny_dir, tmp_path, capsys):
    doc = tiny_doc(tiny_dir, latent__width=8192, latent__height=8192, latent__batch_size=64)
    err = run_and_validate(capsys, write(tmp_path, doc), tmp_path / "out")
    assert "node 'latent' param 'batch_size': 8192x8192, batch 64 needs about 8.0 TiB of memory to decode" in err


def test_the_vae_refuses_what_cannot_fit_at_run_time(tiny_pipe, monkeypatch):
    import torch
    from latentloom.app.core.errors import UserError
    from latentloom.app.engine import memory
    from latentloom.app.sd import images
    monkeypatch.setattr(memory, "total_ram", lambda: 1 << 18)  # a machine of 256 KiB
    with pytest.raises(UserError, match=r"64x64, batch 1 needs about 512.0 KiB of memory to decode, more than "
                                        r"the 256.0 KiB of this machine: make it smaller"):
        images.decode(tiny_pipe.vae, torch.zeros(1, 4, 8, 8))


def test_lora_layer_mismatch_reads_true(tiny_dir, tmp_path, monkeypatch):
    """More layers taking the LoRA than the file has weights for: said as it is (not "12 of its 8")."""
    import copy
    from transformers import CLIPTextModel
    from latentloom.app.core.errors import UserError
    from latentloom.app.sd import lora
    from latentloom.app.sd.runtime import Runtime
    from tests.support.lora_files import make_peft_lora
    config = copy.deepcopy(CLIPTextModel.from_pretrained(tiny_dir, subfolder="text_encoder").config)
    config.num_hidden_layers = 2
    path = make_peft_lora({"unet": None, "text_encoder": CLIPTextModel(config)}, tmp_path / "short.safetensors",
                          parts=("text_encoder",))
    env = Runtime("cpu")
    key = env.store.load("tiny", str(tiny_dir))
    monkeypatch.setattr(lora, "_layers_with", lambda model, name: 12)
    with pytest.raises(UserError) as err:
        lora.prepare(env, key, key, str(path), "short")
    assert str(err.value).endswith("it has weights for 8 text encoder layers, but this model has 12 such layers")


def test_memory_estimate_counts_the_models_weights():
    from latentloom.app.engine.memory import workflow_problems
    from tests.conftest import load_workflow
    wf = load_workflow("txt2img.json")  # 512x512, batch 1
    assert workflow_problems(wf, limit=600 << 20) == []
    [problem] = workflow_problems(wf, limit=600 << 20, model_bytes=200 << 20)
    assert str(problem) == ("node 'latent' param 'width': 512x512, batch 1 needs about 512.0 MiB of memory to "
                            "decode (and 200.0 MiB for the model), more than this machine's 600.0 MiB: make it "
                            "smaller")


def test_validate_refuses_a_device_run_would_refuse(tiny_dir, tmp_path, capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    path = write(tmp_path, tiny_doc(tiny_dir))
    for command in ("validate", "run"):
        code, err = cli(capsys, command, path, "--device", "cuda", "--out", tmp_path / "o")
        assert code == 2 and "error: --device cuda: no CUDA device is available" in err
