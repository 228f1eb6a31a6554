"""The reader registry: every document format the app opens goes through here.

A JSON reader claims a decoded JSON value; a PNG reader claims a PNG's text chunks (read
without decoding a pixel). Each turns what it claims into a Latent Loom workflow document.
A new format is one more reader; no face changes.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from latentloom.app.core.workflow import MAX_FILE_BYTES, Problem, WorkflowError, decode

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Reader:
    name: str
    kind: str                      # "json" or "png"
    claims: Callable               # (json value | {chunk key: text}) -> bool
    read: Callable                 # same argument -> Latent Loom document (dict)


JSON_READERS, PNG_READERS = [], []


def register(reader, first=False):
    table = JSON_READERS if reader.kind == "json" else PNG_READERS
    table.insert(0, reader) if first else table.append(reader)
    return reader


@dataclass
class Document:
    data: dict          # a Latent Loom workflow document (not yet validated)
    source: str         # the path it came from
    base_dir: Path      # relative file params resolve against this folder too
    reader: str         # which reader made it


def open_document(path):
    """Read a workflow from a file of any registered format; WorkflowError if none claims it."""
    p = Path(path)
    source = str(path)
    try:
        if not p.is_file():
            raise WorkflowError([Problem(None, None, "not a regular file" if p.exists() else "no such file")],
                                source)
        if p.stat().st_size > MAX_FILE_BYTES:
            raise WorkflowError([Problem(None, None, "file is too large for a workflow")], source)
    except OSError as e:
        raise WorkflowError([Problem(None, None, f"cannot read it: {e.strerror or e}")], source) from None
    with open(p, "rb") as f:
        head = f.read(8)
    if head == PNG_MAGIC:
        from latentloom.app.engine.png import read_text_chunks
        chunks = read_text_chunks(p)
        value, table = chunks, PNG_READERS
        nothing = "this PNG carries no Latent Loom workflow (nor one of another format it reads)"
    else:
        data = p.read_bytes()
        try:  # encoded lone surrogates pass here, for validation to name where they are
            text = data.decode("utf-8-sig", errors="surrogatepass")
        except UnicodeDecodeError as e:
            raise WorkflowError([Problem(None, None, f"not a UTF-8 JSON file or a PNG (invalid UTF-8 at byte "
                                                     f"{e.start})")], source) from None
        value, table = decode(text, source), JSON_READERS
        nothing = None
    for reader in table:
        if reader.claims(value):
            try:
                data = reader.read(value)
            except WorkflowError as e:
                e.source = e.source or source
                raise
            return Document(data, source, p.resolve().parent, reader.name)
    if nothing is None:  # fall back to our own reader, whose error says what is wrong
        return Document(value, source, p.resolve().parent, "latentloom-json")
    raise WorkflowError([Problem(None, None, nothing)], source)


def _ours_json(value):
    from latentloom.app.core.workflow import FORMAT
    return isinstance(value, dict) and value.get("format") == FORMAT


def _ours_png_read(chunks):
    from latentloom.app.engine.png import KEYS
    return decode(next(chunks[k] for k in KEYS if k in chunks))


def _ours_png_claims(chunks):
    from latentloom.app.engine.png import KEYS
    return any(k in chunks for k in KEYS)


register(Reader("latentloom-json", "json", _ours_json, lambda value: value))
register(Reader("latentloom-png", "png", _ours_png_claims, _ours_png_read))
import latentloom.app.formats  # noqa: E402,F401  (registers the ComfyUI and A1111 readers)
