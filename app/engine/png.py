"""Workflows embedded in PNG text chunks."""
import json

from PIL import Image, PngImagePlugin

from latentloom.app.core.workflow import Problem, WorkflowError, decode

KEY = "latentloom.workflow"
KEYS = (KEY,)
LEGACY_KEY = "workflow"  # what Latent Loom wrote before; ComfyUI uses it too, so only with our format


def save(image, path, workflow_json, parameters=""):
    """Write a PIL image as PNG with the workflow (and an A1111-style 'parameters' text)."""
    info = PngImagePlugin.PngInfo()
    info.add_text(KEY, json.dumps(workflow_json, ensure_ascii=False), zip=True)
    if parameters:
        info.add_text("parameters", parameters)
    with open(path, "wb") as f:
        image.save(f, format="PNG", pnginfo=info)


def read_text_chunks(path):
    """{key: text} of a PNG's text chunks before the image data, without decoding a pixel.

    (PIL's `.text` would load the whole image to find trailing chunks; `.info` does not.)"""
    try:
        with Image.open(path) as im:
            if im.format != "PNG":
                raise ValueError("not a PNG")
            chunks = {k: v for k, v in im.info.items() if isinstance(k, str) and isinstance(v, str)}
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise WorkflowError([Problem(None, None, f"not a readable PNG: {e}")], str(path)) from None
    legacy = chunks.get(LEGACY_KEY)
    if legacy is not None and not any(k in chunks for k in KEYS) and '"latentloom.workflow"' in legacy[:200]:
        chunks[KEYS[0]] = legacy  # our own older key
    return chunks


def read_workflow(path):
    """The decoded Latent Loom workflow inside a PNG; WorkflowError if there is none."""
    chunks = read_text_chunks(path)
    text = next((chunks[k] for k in KEYS if k in chunks), None)
    if text is None:
        raise WorkflowError([Problem(None, None, "this PNG carries no Latent Loom workflow")], str(path))
    return decode(text, str(path))
