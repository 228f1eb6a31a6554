"""A .safetensors file's header (names, shapes, dtypes), read without loading a tensor."""
import json
import struct

MAX_HEADER = 100 * 1024 * 1024


def read_header(path, fail=None):
    """The header as a dict; ValueError when the file is not a valid safetensors file, or
    fail(reason) (an exception to raise instead) when given."""
    try:
        return _read(path)
    except ValueError as e:
        if fail is None:
            raise
        raise fail(str(e)) from None


def _read(path):
    with open(path, "rb") as f:
        head = f.read(8)
        size = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
        if not 0 < size < MAX_HEADER:
            raise ValueError("not a valid safetensors file")
        try:
            header = json.loads(f.read(size))
        except (ValueError, RecursionError):
            raise ValueError("not a valid safetensors file") from None
    if not isinstance(header, dict):
        raise ValueError("not a valid safetensors file")
    return header
