"""Shared fixtures: tiny offline models, an engine, and workflow helpers."""
import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "workflows"


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A tiny random SD 1.x model saved as a diffusers folder."""
    from tests.tiny import save_tiny_pipeline
    path = tmp_path_factory.mktemp("models") / "tiny-sd"
    save_tiny_pipeline(path)
    return path


@pytest.fixture(scope="session")
def tiny_single_file(tiny_dir, tmp_path_factory):
    """The same model as an original-layout single file, plus its config folder."""
    from diffusers import StableDiffusionPipeline
    from tests.support.original_layout import save_original_checkpoint, write_config_dir
    pipe = StableDiffusionPipeline.from_pretrained(tiny_dir, safety_checker=None)
    base = tmp_path_factory.mktemp("single")
    save_original_checkpoint(pipe, base / "tiny.safetensors")
    write_config_dir(pipe, base / "tiny-config")
    return base / "tiny.safetensors", base / "tiny-config"


@pytest.fixture(scope="session")
def tiny_pipe(tiny_dir):
    from diffusers import StableDiffusionPipeline
    return StableDiffusionPipeline.from_pretrained(tiny_dir, safety_checker=None, requires_safety_checker=False)


@pytest.fixture(scope="session")
def runtime():
    from latentloom.app.sd.runtime import Runtime
    return Runtime("cpu")


@pytest.fixture
def engine(runtime, tmp_path):
    from latentloom.app.engine.executor import Engine
    from latentloom.nodes import catalog
    return Engine(catalog, output_dir=tmp_path / "out", env=runtime, previews=False, base_dirs=[WORKFLOWS])


def load_workflow(name, **sets):
    """A shipped workflow with params overridden: sets={"node.param": value} (checked, not file-checked)."""
    from latentloom.app.core.validate import load
    from latentloom.app.session.overrides import apply_sets
    from latentloom.nodes import catalog
    doc = json.loads((WORKFLOWS / name).read_text())
    problems, _ = apply_sets(doc, [f"{k}={json.dumps(v)}" for k, v in sets.items()])
    assert not problems
    return load(doc, catalog)
