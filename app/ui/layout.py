"""Automatic placement, left to right, with no wire under a node (Qt-free).

Columns follow link depth; within a column nodes are ordered by where their sources sit (fewer
crossings); then any node that sits in the band a wire passes through is pushed below it. A
wire from x1 to x2 stays between its two ends' heights (NodeGraphQt draws a curve with level
tangents), so a node clear of that band is clear of the wire."""

GAP_X, GAP_Y = 90.0, 50.0
MARGIN = 14.0
ROUNDS = 60


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


def _default_port_y(nid, port, output):
    return 36.0


def layered(wf, sizes, missing, placed=None, port_y=None):
    """Positions {id: (x, y)} for the `missing` nodes: one column per link depth, stacked
    top to bottom; below the already placed nodes when there are any.

    sizes: {id: (width, height)}; placed: {id: (x, y)} of the nodes that keep their place;
    port_y(id, port, output): a port's height below its node's top."""
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
        col = sorted(columns[level], key=lambda n: _barycenter(wf, n, out, columns[level].index(n)))
        y, width = y0, 0.0
        for nid in col:
            w, h = sizes.get(nid, (160.0, 60.0))
            out[nid] = (x, y)
            y += h + GAP_Y
            width = max(width, w)
        x += width + GAP_X
    return untangle(wf, out, sizes, port_y or _default_port_y)


def _barycenter(wf, nid, placed, fallback):
    ys = [placed[s][1] for s, _ in wf.nodes[nid].inputs.values() if s in placed]
    return (sum(ys) / len(ys), fallback) if ys else (float("inf"), fallback)


def wires(wf, pos, sizes, port_y):
    """(source, target, x1, y1, x2, y2) of every link between placed nodes."""
    out = []
    for dst, node in wf.nodes.items():
        for inp, (src, port) in node.inputs.items():
            if src in pos and dst in pos:
                (sx, sy), (dx, dy) = pos[src], pos[dst]
                out.append((src, dst, sx + sizes.get(src, (160.0, 60.0))[0], sy + port_y(src, port, True),
                            dx, dy + port_y(dst, inp, False)))
    return out


def blocked(wf, pos, sizes, port_y, margin=MARGIN):
    """[(node, wire source, wire target)] for every node that sits under a wire."""
    hits = []
    for src, dst, x1, y1, x2, y2 in wires(wf, pos, sizes, port_y):
        lo, hi = min(y1, y2) - margin, max(y1, y2) + margin
        left, right = min(x1, x2), max(x1, x2)
        for nid, (nx, ny) in pos.items():
            if nid in (src, dst):
                continue
            nw, nh = sizes.get(nid, (160.0, 60.0))
            if nx < right and nx + nw > left and ny < hi and ny + nh > lo:
                hits.append((nid, src, dst))
    return hits


def untangle(wf, pos, sizes, port_y, margin=MARGIN):
    """Push nodes that sit under a wire (and what is below them in their column) down."""
    pos = dict(pos)
    for _ in range(ROUNDS):
        hits = blocked(wf, pos, sizes, port_y, margin)
        if not hits:
            break
        nid, src, dst = hits[0]
        wire = next(w for w in wires(wf, pos, sizes, port_y) if w[0] == src and w[1] == dst)
        hi = max(wire[3], wire[5]) + margin
        nx, ny = pos[nid]
        shift = hi - ny + 1.0
        for other, (ox, oy) in list(pos.items()):
            if abs(ox - nx) < 1.0 and oy >= ny:
                pos[other] = (ox, oy + shift)
    return pos
