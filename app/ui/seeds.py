"""Seed after run: each LatentNoise node keeps its seed, counts it up, or draws a new one after
every run it is submitted in. The mode lives in the node's UI data, so it is saved in the file."""
import random

MODES = ("fixed", "increment", "randomize")
UI_KEY = "seed_mode"
NOISE_TYPE = "LatentNoise"
SEED_RANDOM_MAX = 2**32 - 1


def mode(doc, nid):
    value = doc.workflow.nodes[nid].ui.get(UI_KEY, "fixed")
    return value if value in MODES else "fixed"


def next_seed(param, seed, how, rng=random):
    lo, hi = param.bounds()
    lo, hi = int(lo if lo is not None else 0), int(min(hi if hi is not None else SEED_RANDOM_MAX, SEED_RANDOM_MAX))
    if how == "increment":
        return seed + 1 if seed < hi else lo
    if how == "randomize":
        return rng.randint(lo, hi)
    return seed


class Seeds:
    """Applies the seed modes of a document after each submitted run (one undo step)."""

    def __init__(self, doc, rng=None):
        self.doc, self.rng = doc, rng or random.Random()

    def set_mode(self, nid, how):
        if how not in MODES:
            raise ValueError(f"seed mode must be one of {', '.join(MODES)}")
        self.doc.set_node_ui(nid, UI_KEY, None if how == "fixed" else how)

    def after_submit(self):
        doc = self.doc
        changes = {}
        for nid, node in doc.workflow.nodes.items():
            how = mode(doc, nid)
            if node.type != NOISE_TYPE or how == "fixed":
                continue
            param = doc.spec(nid).param("seed")
            seed = node.params.get("seed", param.default)
            if isinstance(seed, int):
                changes[nid] = next_seed(param, seed, how, self.rng)
        if not changes:
            return {}
        doc.undo_stack.beginMacro("Seed after run")
        for nid, seed in changes.items():
            doc.set_param(nid, "seed", seed)
        doc.undo_stack.endMacro()
        return changes
