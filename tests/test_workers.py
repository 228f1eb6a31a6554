"""Sweeps on worker processes (and Ray local): the same files and manifest as a one-process sweep."""
import json
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentloom.app.core.errors import UserError
from latentloom.app.session import Session
from latentloom.app.session.workers import LocalWorkers
from tests.conftest import WORKFLOWS

PROMPTS = ["a red fox in the snow", "a lighthouse at night"]


def sweep_doc(tiny_dir):
    doc = json.loads((WORKFLOWS / "txt2img.json").read_text())
    params = {"ckpt": {"path": str(tiny_dir), "dtype": "fp32"}, "sampler": {"steps": 2},
              "latent": {"width": 64, "height": 64}}
    for nid, values in params.items():
        doc["nodes"][nid]["params"].update(values)
    doc["sweep"] = {"axes": [{"params": ["noise.seed"], "values": [1, 2]},
                             {"params": ["positive.text"], "values": PROMPTS}]}
    return doc


def sweep(tiny_dir, out, dispatch=None, on_event=None):
    session = Session(output_dir=out)
    return session.sweep(session.prepare(sweep_doc(tiny_dir)), on_event=on_event, dispatch=dispatch)


def cell_progress(events):
    """Per cell, in the order the events came: the sampler steps shown between its CellStarted and
    CellFinished; checks each cell starts once, in run order, and finishes before the next starts."""
    from latentloom.app.engine import events as ev
    started, steps, current = [], {}, None
    for e in events:
        if isinstance(e, ev.CellStarted):
            assert current is None
            started.append(e.index)
            current = e.index
        elif isinstance(e, ev.CellFinished):
            assert e.index == current
            current = None
        elif isinstance(e, ev.NodeProgress):
            assert current is not None and e.preview is None
            steps.setdefault(current, []).append((e.node_id, e.step, e.total))
    assert started == list(range(len(started)))
    return steps


@pytest.fixture(scope="module")
def local(tiny_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    return out, sweep(tiny_dir, out)


def pixels(path):
    with Image.open(path) as im:
        return np.array(im)


def same_as_local(local, out, result):
    """Same cells, same file names, same pixels, same sheets and manifest (timings and what each
    cache held aside)."""
    local_out, want = local
    assert result.status == "ok"
    assert [c.cell.values for c in result.cells] == [c.cell.values for c in want.cells]
    for got, exp in zip(result.cells, want.cells):
        assert not got.error
        assert [Path(f).relative_to(out) for f in got.files] == [Path(f).relative_to(local_out) for f in exp.files]
        assert all(np.array_equal(pixels(g), pixels(e)) for g, e in zip(got.files, exp.files))
    assert [Path(s).name for s in result.sheets] == [Path(s).name for s in want.sheets]
    assert all(np.array_equal(pixels(g), pixels(e)) for g, e in zip(result.sheets, want.sheets))

    def manifest(path, root):
        data = json.loads(Path(path).read_text())
        data.pop("seconds")
        data["sheets"] = [str(Path(s).relative_to(root)) for s in data["sheets"]]
        for c in data["cells"]:
            for k in ("seconds", "executed", "cached"):
                c.pop(k)
            c["files"] = [str(Path(f).relative_to(root)) for f in c["files"]]
        return data
    assert manifest(result.manifest, out) == manifest(want.manifest, local_out)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in local_out.iterdir())


def by_prompt(result):
    workers = {}
    for c in result.cells:
        workers.setdefault(c.cell.values["positive.text"], set()).add(c.worker)
    return workers


def test_two_workers_give_the_local_sweep(local, tiny_dir, tmp_path):
    events = []
    result = sweep(tiny_dir, tmp_path, LocalWorkers(2, "cpu"), events.append)
    same_as_local(local, tmp_path, result)
    steps = cell_progress(events)  # the lead shows the steps of the cell the run order waits on
    assert steps[0] == [("sampler", 1, 2), ("sampler", 2, 2)]
    assert all(s == [("sampler", 1, 2), ("sampler", 2, 2)] for s in steps.values())
    workers = by_prompt(result)
    assert all(len(w) == 1 for w in workers.values())  # cells sharing a prompt share a worker
    assert workers[PROMPTS[0]] != workers[PROMPTS[1]]   # and the two prompts are spread
    # The second cell of a prompt found its text encodings in its worker's cache.
    assert sum("positive" in c.cached for c in result.cells) == 2


def test_a_worker_killed_mid_sweep_loses_no_cell(local, tiny_dir, tmp_path):
    dispatch = LocalWorkers(2, "cpu")
    killed = []

    def kill_a_busy_worker(d, worker, k):
        busy = [w for w, cells in d.pending.items() if cells and d.procs[w].is_alive()]
        if not killed and busy:
            killed.append(busy[0])
            os.kill(d.procs[busy[0]].pid, signal.SIGKILL)
    dispatch.on_result = kill_a_busy_worker
    result = sweep(tiny_dir, tmp_path, dispatch)
    assert killed and dispatch.retried  # a worker died holding cells, and they ran elsewhere
    same_as_local(local, tmp_path, result)


@pytest.mark.parametrize("count,message", [
    (0, "--workers 0: give at least 1 worker"),
    (3, "--workers 3: more workers than devices (this machine has 2 CPU cores; one worker per core at most)")])
def test_bad_worker_counts(monkeypatch, count, message):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    with pytest.raises(UserError) as e:
        LocalWorkers(count, "cpu")
    assert str(e.value) == message


def test_cli_bad_workers_and_ray_without_ray(tiny_dir, tmp_path, monkeypatch, capsys):
    from latentloom.app.cli import main
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(sweep_doc(tiny_dir)))
    assert main(["run", str(path), "--out", str(tmp_path / "o"), "--workers", "0", "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == "error: --workers 0: give at least 1 worker"
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--ray", "local", "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --ray needs Ray, which is not installed: pip install 'latentloom[ray]' (or pip install 'ray>=2.9')")
    assert not (tmp_path / "o").exists()


def test_cli_sweep_with_workers(local, tiny_dir, tmp_path):
    from latentloom.app.cli import main
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(sweep_doc(tiny_dir)))
    out = tmp_path / "o"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "2", "--quiet",
                 "--report", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    local_out, want = local
    got = sorted(str(Path(f).relative_to(out)) for r in report["runs"] for f in r["outputs"])
    assert got == sorted(str(Path(f).relative_to(local_out)) for c in want.cells for f in c.files)
    assert not (out / ".latentloom-workers").exists()


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    yield ray
    ray.shutdown()


def test_ray_local_gives_the_local_sweep_and_survives_a_killed_actor(ray_local, local, tiny_dir, tmp_path):
    from latentloom.app.session.ray_dispatch import RayActors
    dispatch = RayActors("local", 2, "cpu")
    events = []
    result = sweep(tiny_dir, tmp_path / "a", dispatch, events.append)
    same_as_local(local, tmp_path / "a", result)
    steps = cell_progress(events)
    assert steps[0] == [("sampler", 1, 2), ("sampler", 2, 2)]
    assert all(len(w) == 1 for w in by_prompt(result).values())

    dispatch = RayActors("local", 2, "cpu")
    killed = []

    def kill_first(d, actor, k):
        if not killed:
            killed.append(actor)
            os.kill(ray_local.get(d.actors[actor].pid.remote()), signal.SIGKILL)
    dispatch.on_result = kill_first
    result = sweep(tiny_dir, tmp_path / "b", dispatch)
    assert killed
    same_as_local(local, tmp_path / "b", result)
