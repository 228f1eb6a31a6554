"""Cache keys: a node's type, version, params, file fingerprints and upstream keys.

Node ids and UI data never enter a key, so renaming or moving a node keeps its cache.
"""
import hashlib
import json


def node_key(spec, params, fingerprints, upstream):
    """upstream: {input port: (upstream key, upstream output port)}."""
    doc = {
        "type": spec.type,
        "version": spec.version,
        "params": params,
        "files": fingerprints,
        "inputs": {port: list(link) for port, link in sorted(upstream.items())},
    }
    text = json.dumps(doc, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
