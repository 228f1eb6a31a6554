"""A seeded workflow mutator: mutated shipped workflows through `validate` (and, for those it accepts,
`run`), asserting no traceback, exit codes 0/2 (validate) and 0/1 (run, never 2 after validate said
ok), and that every problem names its node unless it is about the whole document.

LATENTLOOM_FUZZ=N sets the number of cases (default 300), LATENTLOOM_FUZZ_SEED the seed."""
import json
import os
import random
import re

import pytest

from latentloom.app.cli import main
from tests.conftest import WORKFLOWS

CASES = int(os.environ.get("LATENTLOOM_FUZZ", "300"))
SEED = int(os.environ.get("LATENTLOOM_FUZZ_SEED", "0"))
RUNS = max(8, CASES // 40)  # accepted mutants also run (small ones only: this is a CPU)
BASES = ["txt2img.json", "img2img.json", "inpaint.json"]

STRINGS = ["", " ", "../../escape", "/etc/passwd", "/dev/zero", "~", "/", "~nosuchuser/x.png", "x" * 300,
           "C:\\models\\x.safetensors", "\\\\server\\share\\x", "a\x00b", "\ud800", "zero\u200bwidth",
           "bidi\u202eevil", "bell\x07", "../" * 40 + "etc/passwd", "%s%n{0}", "\ufeffbom", "\U0001f600" * 30,
           "save", "ckpt", "model", "image", "latent", "nope"]
VALUES = [None, True, False, -1, 0, 1, 7, 64, 2 ** 31, 2 ** 64, -2 ** 64, 10 ** 40, 0.5, -0.0, 1e308, 3.7,
          [], {}, [1, 2], ["ckpt", "model"], {"a": 1}]
DOC_LEVEL = ("not valid JSON", "nested deeper than", "a workflow must be a JSON object",
             "not a Latent Loom workflow", "\"version\" must be", "made by a newer", "unknown top-level key",
             "\"ui\" must be", "\"nodes\" must be", "nothing to run", "'ui': ", "'sweep'", "sweep",
             "key '", "top-level key", "not a UTF-8 JSON file",
             "this ComfyUI workflow", "a ComfyUI prompt", "too many nodes")  # mutations can look like ComfyUI


def nest(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value


def pick_value(rng):
    roll = rng.random()
    if roll < 0.45:
        return rng.choice(STRINGS)
    if roll < 0.9:
        return rng.choice(VALUES)
    return nest(rng.choice([10, 70, 600]))


def mutate(doc, rng, catalog):
    """One random edit of a decoded document (in place); returns text edits to apply after dumping."""
    nodes = doc["nodes"]
    ids = list(nodes)
    nid = rng.choice(ids) if ids else None
    kind = rng.randrange(12)
    if nid is None:
        kind = 10
    node = nodes.get(nid) if nid else None
    if nid is not None and not isinstance(node, dict):  # an earlier edit made it a plain value
        kind = rng.choice([3, 9, 10])
    if kind == 0:      # a param gets a hostile value
        params = node.setdefault("params", {})
        spec = catalog.get(node.get("type"))
        names = [p.name for p in spec.params] if spec else []
        name = rng.choice(names + ["bogus"]) if names and rng.random() < 0.9 else rng.choice(STRINGS + ["p"])
        params[name] = pick_value(rng)
    elif kind == 1:    # drop a node, a key of a node, or a param
        what = rng.randrange(3)
        if what == 0:
            del nodes[nid]
        elif what == 1 and node:
            node.pop(rng.choice(["type", "params", "inputs", "ui"]), None)
        elif node.get("params"):
            node["params"].pop(rng.choice(list(node["params"])))
    elif kind == 2:    # relink an input anywhere
        inputs = node.setdefault("inputs", {})
        port = rng.choice(list(inputs) or ["x"]) if rng.random() < 0.8 else rng.choice(STRINGS)
        inputs[port] = ([rng.choice(ids + STRINGS), rng.choice(["model", "clip", "vae", "image", "latent",
                                                               "conditioning", "mask"] + STRINGS)]
                        if rng.random() < 0.8 else pick_value(rng))
    elif kind == 3:    # rename a node (links keep the old id)
        nodes[rng.choice(STRINGS) or "x"] = nodes.pop(nid)
    elif kind == 4:    # another type
        node["type"] = rng.choice([s.type for s in catalog] + STRINGS + [None, 3])
    elif kind == 5:    # unknown keys
        (node if rng.random() < 0.5 else doc)[rng.choice(STRINGS + ["extra"])] = pick_value(rng)
    elif kind == 6:    # the header
        doc[rng.choice(["format", "version"])] = pick_value(rng)
    elif kind == 7:    # deep nesting somewhere
        target = rng.choice([doc, node, node.setdefault("params", {}), node.setdefault("ui", {})])
        if isinstance(target, dict):
            target[rng.choice(["ui", "deep", "pos"])] = nest(rng.choice([60, 200, 800]))
    elif kind == 8:    # a cycle
        other = rng.choice([i for i in ids if isinstance(nodes[i], dict)])
        node.setdefault("inputs", {})[rng.choice(list(node.get("inputs") or {"x": 0}))] = [other, "image"]
        nodes[other].setdefault("inputs", {})["loop"] = [nid, "image"]
    elif kind == 9:    # a whole node replaced by a value
        nodes[nid] = pick_value(rng)
    elif kind == 10:   # nodes replaced
        doc["nodes"] = pick_value(rng)
    else:              # text-level edits, applied to the dumped JSON
        return [rng.choice(["dup", "bigint", "truncate", "bom", "garbage", "dupparam", "deep"])]
    return []


def text_edit(text, edit, rng):
    if edit == "dup":
        return re.sub(r'"(\w+)": \{"type"', r'"\1": {"type": "SaveImage", "params": {"filename_prefix": '
                      r'"../x"}}, "\1": {"type"', text, count=1)
    if edit == "dupparam":
        return text.replace('"params": {', '"params": {"seed": 1, "seed": 2, ', 1)
    if edit == "bigint":
        return re.sub(r": (\d+)", ": " + "9" * rng.choice([50, 150, 5000]), text, count=1)
    if edit == "truncate":
        return text[:rng.randrange(len(text))]
    if edit == "deep":
        return text.replace('"params": {', '"params": {"deep": ' + "[" * 5000 + "]" * 5000 + ", ", 1)
    if edit == "bom":
        return "\ufeff" + text
    pos = rng.randrange(len(text))
    return text[:pos] + rng.choice(["}", "]", ",", ":", "\"", "\\", "\x00", "NaN", "1e999"]) + text[pos:]


def tiny_base(name, tiny_dir):
    doc = json.loads((WORKFLOWS / name).read_text())
    for node in doc["nodes"].values():
        p = node.setdefault("params", {})
        if node["type"] == "LoadCheckpoint":
            p.update(path=str(tiny_dir), dtype="fp32")
        elif node["type"] == "Sampler":
            p["steps"] = 1
        elif node["type"] in ("EmptyLatent", "ResizeImage"):
            p.update(width=64, height=64)
        elif node["type"] in ("LoadImage", "LoadMask"):
            p["path"] = str(WORKFLOWS / p["path"])
    return doc


def problem_lines(err):
    return [line[4:] for line in err.splitlines() if line.startswith("  - ")]


def is_small(doc):
    """Small enough to run in a test on a CPU."""
    try:
        for node in doc["nodes"].values():
            p = node.get("params", {})
            for k in ("width", "height"):
                if isinstance(p.get(k), int) and p[k] > 128:
                    return False
            if any(isinstance(p.get(k), int) and p[k] > 4 for k in ("steps", "batch_size", "pixels", "radius")):
                return False
    except (AttributeError, TypeError):
        return False
    return True


def test_mutated_workflows_never_crash_and_name_their_nodes(tiny_dir, tmp_path, capsys):
    from latentloom.nodes import catalog
    rng = random.Random(SEED)
    bases = {name: tiny_base(name, tiny_dir) for name in BASES}
    accepted, failures = [], []
    for case in range(CASES):
        doc = json.loads(json.dumps(bases[rng.choice(BASES)]))
        edits = []
        for _ in range(rng.choice([1, 1, 2, 3])):
            if isinstance(doc.get("nodes"), dict):
                edits += mutate(doc, rng, catalog)
        text = json.dumps(doc, ensure_ascii=rng.random() < 0.5)
        for edit in edits:
            text = text_edit(text, edit, rng)
        path = tmp_path / f"case{case}.json"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            code = main(["validate", str(path), "--out", str(tmp_path / "out")])
        except BaseException as e:  # noqa: BLE001  (the point: nothing escapes)
            failures.append(f"case {case}: {type(e).__name__}: {e}")
            continue
        out, err = capsys.readouterr()
        if code not in (0, 2) or "Traceback" in err:
            failures.append(f"case {case}: exit {code}: {err[-500:]}")
        for line in problem_lines(err):
            if not line.startswith("node ") and not line.startswith(DOC_LEVEL):
                failures.append(f"case {case}: names no node: {line[:200]}")
        if code == 0:
            accepted.append(path)
    assert not failures, "\n".join(failures[:20])
    assert len(accepted) < CASES  # the mutator does mutate
    # validate and run agree: what validate accepts, run never calls invalid
    ran = 0
    for path in accepted:
        if ran >= RUNS or not is_small(json.loads(path.read_text(encoding="utf-8-sig"))):
            continue
        ran += 1
        code = main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet", "--device", "cpu"])
        err = capsys.readouterr().err
        assert code in (0, 1) and "Traceback" not in err, (path.read_text(), err)
        if code == 1:
            assert re.search(r"node '.*' \(\w+\) failed: ", err), err
    assert not list(tmp_path.parent.glob("x_*.png")) and not list(tmp_path.parent.glob("escape*"))
