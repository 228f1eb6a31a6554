"""Automatic placement for nodes without a saved position (Qt-free)."""

GAP_X, GAP_Y = 90.0, 50.0


def depths(wf, ids):
    """Link depth of each node: 0 for sources, else 1 + the deepest source (cycle-safe)."""
    memo, visiting = {}, set()

    def depth(nid):
        if nid in memo:
            return memo[nid]
        if nid in visiting:
            return 0
        visiting.add(nid)
        srcs = [s for s, _ in wf.nodes[nid].inputs.values() if s in wf.nodes]
        memo[nid] = 1 + max(map(depth, srcs)) if srcs else 0
        visiting.discard(nid)
        return memo[nid]

    return {nid: depth(nid) for nid in ids}


def layered(wf, sizes, missing, placed=None):
    """Positions {id: (x, y)} for the `missing` nodes: one column per link depth, stacked
    top to bottom; below the already placed nodes when there are any.

    sizes: {id: (width, height)}; placed: {id: (x, y)} of the nodes that keep their place.
    """
    placed = {k: v for k, v in (placed or {}).items() if v is not None}
    x0, y0 = 0.0, 0.0
    if placed:
        x0 = min(p[0] for p in placed.values())
        y0 = max(p[1] + sizes.get(nid, (0, 0))[1] for nid, p in placed.items()) + GAP_Y * 2
    levels = depths(wf, missing)
    columns = {}
    for nid in missing:
        columns.setdefault(levels[nid], []).append(nid)
    out, x = {}, x0
    for level in sorted(columns):
        y, width = y0, 0.0
        for nid in columns[level]:
            w, h = sizes.get(nid, (160.0, 60.0))
            out[nid] = (x, y)
            y += h + GAP_Y
            width = max(width, w)
        x += width + GAP_X
    return out
