"""Run ComfyUI API prompts on the tiny model through the session, as a user's `latentloom run` does."""
import json

import numpy as np


def render(tmp_path, tiny_dir, prompts):
    """Each prompt's one saved image as an array (a models folder with checkpoints/tiny beside them)."""
    from PIL import Image
    from latentloom.app.session import Session
    from latentloom.nodes import catalog
    models = tmp_path / "models"
    if not models.exists():
        (models / "checkpoints").mkdir(parents=True)
        (models / "checkpoints" / "tiny").symlink_to(tiny_dir)
    out = []
    for i, p in enumerate(prompts):
        session = Session(catalog, models_dirs=[models], output_dir=tmp_path / f"out{i}", device="cpu")
        path = tmp_path / f"p{i}.json"
        path.write_text(json.dumps(p))
        files = session.run(session.prepare(session.open(path))).outputs
        assert len(files) == 1
        out.append(np.array(Image.open(files[0])))
    return out
