"""Readers for what users already have: ComfyUI API and UI JSON, ComfyUI PNGs, A1111 PNGs.

Each is registered with the session's reader registry; every one turns its input into a
Latent Loom document or raises WorkflowError (never another exception).
"""
import json
from functools import wraps

from latentloom.app.core.workflow import FORMAT, Problem, WorkflowError
from latentloom.app.session.readers import Reader, register


def _guarded(what):
    """Malformed or hostile input gives a WorkflowError naming the format, never a traceback."""
    def wrap(fn):
        @wraps(fn)
        def read(value):
            try:
                return fn(value)
            except WorkflowError:
                raise
            except (TypeError, ValueError, KeyError, AttributeError, IndexError, RecursionError) as e:
                raise WorkflowError([Problem(None, None, f"not a readable {what}: {type(e).__name__}: "
                                                         f"{str(e)[:200]}")]) from None
        return read
    return wrap


def _unwrap(value):
    """The {"prompt": {...}} request body ComfyUI's /prompt takes."""
    inner = value.get("prompt")
    return inner if isinstance(inner, dict) and "class_type" not in inner else value


def is_api_prompt(value):
    if not isinstance(value, dict) or not value or value.get("format") == FORMAT:
        return False
    value = _unwrap(value)
    return any(isinstance(v, dict) and "class_type" in v for v in value.values())


def is_ui_graph(value):
    return (isinstance(value, dict) and value.get("format") != FORMAT and isinstance(value.get("nodes"), list)
            and any(k in value for k in ("links", "last_node_id", "version", "state")))


@_guarded("ComfyUI API prompt")
def read_api(value):
    from latentloom.app.formats.comfy_import import to_document
    return to_document(_unwrap(value), source="comfyui-api")


@_guarded("ComfyUI workflow")
def read_ui(value):
    from latentloom.app.formats.comfy_import import to_document
    from latentloom.app.formats.comfy_ui import to_prompt
    prompt, titles, positions = to_prompt(value)
    if not prompt:
        raise WorkflowError([Problem(None, None, "this ComfyUI workflow has no node to run")])
    return to_document(prompt, titles, positions, source="comfyui-ui")


def _json_chunk(text, key):
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise WorkflowError([Problem(None, None, f"the PNG's {key!r} chunk is not valid JSON: {e}")]) from None


def read_comfy_png(chunks):
    """Prefer the UI graph (titles, positions, bypass); fall back to the API prompt."""
    first = None
    if "workflow" in chunks:
        try:
            graph = _json_chunk(chunks["workflow"], "workflow")
            if not is_ui_graph(graph):
                raise WorkflowError([Problem(None, None, "the PNG's 'workflow' chunk is not a ComfyUI workflow")])
            return read_ui(graph)
        except WorkflowError as e:
            first = e
    if "prompt" in chunks:
        prompt = _json_chunk(chunks["prompt"], "prompt")
        if not is_api_prompt(prompt):
            raise first or WorkflowError([Problem(None, None, "the PNG's 'prompt' chunk is not a ComfyUI prompt")])
        return read_api(prompt)
    raise first


@_guarded("A1111 parameters text")
def read_a1111_png(chunks):
    from latentloom.app.formats.a1111 import to_document
    return to_document(chunks["parameters"])


register(Reader("comfyui-api", "json", is_api_prompt, read_api))
register(Reader("comfyui-ui", "json", is_ui_graph, read_ui))
register(Reader("comfyui-png", "png", lambda c: "workflow" in c or "prompt" in c, read_comfy_png))
register(Reader("a1111-png", "png", lambda c: "parameters" in c, read_a1111_png))
