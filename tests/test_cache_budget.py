"""The cache's memory budget: size-aware LRU eviction of node outputs and models, never breaking a run."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from latentloom.app.cli import main
from latentloom.app.engine.cache import Cache, nbytes
from tests.conftest import ROOT, WORKFLOWS
from tests.test_cache import ALL, tiny

MB = 1 << 20


def mb(n):
    return {"x": torch.zeros(n * MB // 4)}


def test_nbytes_counts_tensors_once_inside_outputs():
    from latentloom.app.sd.handles import Latent
    t = torch.zeros(MB // 4)
    assert nbytes({"a": t, "b": t[:10], "c": "text", "d": 3}) == (MB, 0)
    assert nbytes({"latent": Latent(torch.zeros(2 * MB // 4), mask=torch.zeros(MB // 4))}) == (3 * MB, 0)
    assert nbytes({"image": np.zeros(MB, dtype=np.uint8), "pil": Image.new("RGB", (1024, 1024))}) == (4 * MB, 0)


def test_least_recently_used_entries_go_first_when_over_budget():
    cache = Cache(max_bytes=int(2.5 * MB))
    cache.put("a", mb(1))
    cache.put("b", mb(1))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", mb(1))
    assert "b" not in cache and "a" in cache and "c" in cache
    assert cache.stats() == {"entries": 2, "ram_bytes": 2 * MB, "vram_bytes": 0, "evicted": 1}
    cache.put("huge", mb(3))  # larger than the budget: not kept, and it pushes nothing else out
    assert "huge" not in cache and len(cache) == 2


def test_gpu_tensors_count_against_the_vram_budget():
    """Tensors off the CPU (meta tensors stand in for CUDA ones here) go to the VRAM budget."""
    gpu = {"x": torch.zeros(MB // 4, device="meta")}
    assert nbytes({"a": gpu["x"], "b": torch.zeros(MB // 4, device="meta"), "c": torch.zeros(4)}) == (16, 2 * MB)
    cache = Cache(max_bytes=10 * MB, max_vram_bytes=int(1.5 * MB))
    cache.put("cpu", mb(1))
    cache.put("gpu1", gpu)
    cache.put("gpu2", {"y": torch.zeros(MB // 4, device="meta")})
    assert "gpu1" not in cache and "gpu2" in cache and "cpu" in cache  # a CPU entry frees no VRAM
    assert cache.stats()["vram_bytes"] == MB


def test_what_others_hold_counts_against_the_budget():
    held = [0]
    cache = Cache(max_bytes=3 * MB, others=lambda: (held[0], 0))
    cache.put("a", mb(1))
    cache.put("b", mb(1))
    held[0] = 2 * MB  # a model was loaded
    cache.trim()
    assert len(cache) == 1 and "b" in cache


def test_eviction_never_breaks_a_run(runtime, tiny_dir, tmp_path):
    """With a budget too small for any tensor, every run completes and the evicted nodes re-run
    (handles and noise specs hold no tensors: dropping them would free nothing, they stay)."""
    from latentloom.app.engine.executor import Engine
    from latentloom.nodes import catalog
    engine = Engine(catalog, output_dir=tmp_path / "out", env=runtime, previews=False, cache=Cache(max_bytes=1))
    first = engine.run(tiny(tiny_dir))
    second = engine.run(tiny(tiny_dir))
    assert first.executed == ALL
    assert second.executed == ["positive", "negative", "latent", "sampler", "decode", "save"]
    assert second.cached == ["ckpt", "noise", "scheduler"]
    a, b = (np.array(Image.open(r.outputs[0])) for r in (first, second))
    assert np.array_equal(a, b)


def test_models_are_evicted_beyond_the_budget_and_reload(tiny_dir):
    from latentloom.app.sd.models import ModelStore
    store = ModelStore("cpu", max_models=4)
    one = store.load("one", str(tiny_dir))
    size = store.nbytes()[0]
    assert size > 0
    store.max_bytes = int(1.5 * size)
    two = store.load("two", str(tiny_dir))
    assert len(store) == 1 and store.nbytes() == (size, 0)  # "one" went
    store.get(one)  # and comes back on demand
    assert store.loads == 3 and len(store) == 1
    assert store.get(two) is not None and store.loads == 4


def test_report_carries_the_cache_size(tiny_dir, tmp_path):
    report = tmp_path / "report.json"
    sets = [x for s in (f"ckpt.path={tiny_dir}", "ckpt.dtype=fp32", "sampler.steps=1", "latent.width=64",
                        "latent.height=64") for x in ("--set", s)]
    assert main(["run", str(WORKFLOWS / "txt2img.json"), *sets, "--out", str(tmp_path / "o"), "--quiet",
                 "--device", "cpu", "--report", str(report), "--cache-ram", "0.5"]) == 0
    cache = json.loads(report.read_text())["cache"]
    assert cache["ram_budget_bytes"] == 1 << 29 and cache["models"] == 1
    assert 0 < cache["ram_bytes"] and cache["ram_bytes"] + cache["model_ram_bytes"] <= cache["ram_budget_bytes"]
    assert cache["entries"] == len(ALL) - 1  # everything but SaveImage


def test_cache_flags_are_checked(capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", str(WORKFLOWS / "txt2img.json"), "--cache-ram", "lots"])
    assert e.value.code == 2
    assert "argument --cache-ram: 'lots' is not a number of GB" in capsys.readouterr().err


def _peak(args, out):
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "support" / "peak_rss.py"), *map(str, args),
                           "--out", str(out), "--quiet", "--device", "cpu"],
                          capture_output=True, text=True, timeout=900, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    code, kb = proc.stdout.split()[-3], proc.stdout.split()[-1]
    assert code == "0"
    return int(kb) * 1024


def test_a_100_run_seed_sweep_stays_within_the_budget(tiny_dir, tmp_path):
    """Peak RSS of a 100-cell seed sweep <= 1.2 x a single run's + the budget (each measured in its own
    process); without a budget its cache would hold every cell's latent and image."""
    budget_gb = 0.02
    sets = [x for s in (f"ckpt.path={tiny_dir}", "ckpt.dtype=fp32", "sampler.steps=1", "latent.width=128",
                        "latent.height=128", "latent.batch_size=2") for x in ("--set", s)]
    wf = WORKFLOWS / "txt2img.json"
    single = _peak(["run", wf, *sets], tmp_path / "single")
    report = tmp_path / "sweep.json"
    swept = _peak(["sweep", wf, *sets, "--axis", "noise.seed=1..100", "--cache-ram", budget_gb,
                   "--report", report], tmp_path / "sweep")
    runs = json.loads(report.read_text())
    assert len(runs["runs"]) == 100 and not any("error" in r for r in runs["runs"])
    cache = runs["cache"]
    assert cache["evicted"] > 0
    assert cache["ram_bytes"] + cache["model_ram_bytes"] <= budget_gb * (1 << 30)
    assert swept <= 1.2 * single + budget_gb * (1 << 30), (swept, single)
