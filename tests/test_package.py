"""The wheel: built from this checkout, installed into a fresh venv outside the repo, it keeps
everything under one `latentloom` namespace, ships its resources and workflows, runs a
single-file checkpoint and opens the editor on the default graph."""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import numpy as np
from PIL import Image

from tests.conftest import ROOT


def run(cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_wheel_installs_and_runs_outside_the_repo(tiny_single_file, tmp_path):
    wheels = tmp_path / "wheels"
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools' in-tree build folder: no stale files
    try:
        run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels),
             str(ROOT)])
    finally:
        shutil.rmtree(ROOT / "build", ignore_errors=True)
    wheel = next(wheels.glob("latentloom-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"latentloom"}
    assert "latentloom/resources/sd15/model_index.json" in names
    assert "latentloom/workflows/txt2img.json" in names
    assert "latentloom/resources/fonts/DejaVuSans.ttf" in names

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    py = venv / "bin" / "python"
    run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)])
    # The dependencies (torch, diffusers, Qt...) come from this environment, added as a plain path:
    # its .pth files (the editable install of this checkout among them) are not processed.
    site = run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip()
    with open(os.path.join(site, "deps.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(QT_QPA_PLATFORM="offscreen", HF_HUB_OFFLINE="1")
    where = run([str(py), "-c", "import latentloom.app.paths as p, importlib.util as u; "
                 "print(p.RESOURCES); print(u.find_spec('app'))"], cwd=elsewhere, env=env).split()
    assert where[0].startswith(site) and where[1] == "None"  # no top-level `app` is installed
    assert run([str(venv / "bin" / "latentloom"), "--version"], cwd=elsewhere, env=env).strip() == "latentloom 0.1.0"

    ckpt, config = tiny_single_file
    txt2img = os.path.join(site, "latentloom", "workflows", "txt2img.json")
    report = elsewhere / "report.json"
    run([str(venv / "bin" / "latentloom"), "run", txt2img, "--set", f"ckpt.path={ckpt}",
         "--set", f"ckpt.config={config}", "--set", "ckpt.dtype=fp32", "--set", "sampler.steps=2",
         "--set", "latent.width=64", "--set", "latent.height=64", "--device", "cpu", "--quiet",
         "--report", str(report)], cwd=elsewhere, env=env)
    out = json.loads(report.read_text())["runs"][0]["outputs"][0]
    assert out.startswith(str(elsewhere / "output")) and np.array(Image.open(out)).shape == (64, 64, 3)

    shown = run([str(py), "-c", "from latentloom.app.ui.main import make_app\n"
                 "from latentloom.app.ui.settings import Settings\n"
                 "from latentloom.app.ui.window import MainWindow\n"
                 "app = make_app(); w = MainWindow(Settings())\n"
                 "print(w.doc.origin); print(sorted(w.doc.workflow.nodes))\n"
                 "w.runner.shutdown()"], cwd=elsewhere, env=dict(env, HOME=str(tmp_path)))
    origin, nodes = shown.strip().splitlines()[-2:]
    assert origin == txt2img and "sampler" in nodes
