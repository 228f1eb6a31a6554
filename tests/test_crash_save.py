"""SIGKILL while images are being written: every PNG left under a real output name is whole."""
import os
import signal
import subprocess
import sys
import time

from PIL import Image

from tests.conftest import ROOT

WRITER = r"""
import sys
import numpy as np
from PIL import Image
from latentloom.app.engine import outputs, png

out = sys.argv[1]
rng = np.random.default_rng(int(sys.argv[2]))
image = Image.fromarray(rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8))  # noise: ~3 MB a PNG
doc = {"format": "latentloom.workflow", "version": 1, "nodes": {}}
print("ready", flush=True)
while True:
    outputs.write_new(out, "crash", ".png", lambda tmp: png.save(image, tmp, doc, "parameters"))
"""


def test_sigkill_during_saves_leaves_only_whole_pngs(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for i in range(8):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(out), str(i)], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.15 + 0.23 * i)  # kills land at different points of a write
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert names, "nothing was written before the kills"
    assert names == [f"crash_{n:05d}.png" for n in range(1, len(names) + 1)]
    for name in names:
        with Image.open(out / name) as im:
            im.verify()  # CRCs and the whole stream
        with Image.open(out / name) as im:
            im.load()
            assert im.size == (1024, 1024) and im.text["parameters"] == "parameters"
    # leftovers of interrupted writes are hidden temporary files, never real output names ...
    assert all(p.name.startswith(".crash.") and p.name.endswith(".latentloom-partial")
               for p in out.iterdir() if p.name.startswith("."))
    # ... and the next write removes those of processes that are gone
    from latentloom.app.engine import outputs
    outputs.write_new(out, "crash", ".png", lambda tmp: Image.new("RGB", (4, 4)).save(tmp, "PNG"))
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
