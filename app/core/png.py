"""Workflows embedded in PNG text chunks."""
import json

from PIL import Image, PngImagePlugin

from app.core.workflow import Problem, WorkflowError

KEY = "workflow"


def save(image, path, workflow_json, parameters=""):
    """Write a PIL image as PNG with the workflow (and an A1111-style 'parameters' text)."""
    info = PngImagePlugin.PngInfo()
    info.add_text(KEY, json.dumps(workflow_json, ensure_ascii=False), zip=True)
    if parameters:
        info.add_text("parameters", parameters)
    with open(path, "wb") as f:
        image.save(f, format="PNG", pnginfo=info)


def read_workflow(path):
    """The decoded workflow document inside a PNG; WorkflowError if there is none."""
    try:
        with Image.open(path) as im:
            im.load()
            text = (getattr(im, "text", None) or {}).get(KEY)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise WorkflowError([Problem(None, None, f"not a readable PNG: {e}")], str(path)) from None
    if text is None:
        raise WorkflowError([Problem(None, None, "this PNG carries no Latent Loom workflow")], str(path))
    try:
        return json.loads(text)
    except ValueError as e:
        raise WorkflowError([Problem(None, None, f"the embedded workflow is not valid JSON: {e}")],
                            str(path)) from None
