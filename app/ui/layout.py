"""Automatic placement, left to right, with no wire under a node (Qt-free).

Columns follow link depth; within a column nodes are ordered by where their sources sit (fewer
crossings); then any node that sits in the band a wire passes through is pushed below it. A
wire from x1 to x2 stays between its two ends' heights (NodeGraphQt draws a curve with level
tangents), so a node clear of that band is clear of the wire."""

import random

GAP_X, GAP_Y = 90.0, 50.0
MARGIN = 14.0
ROUNDS = 60
CEILING_ROUNDS = 12


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


def columns_of(wf, ids):
    """Columns: link depth, then each node moved right to just before its first consumer (so
    fewer wires cross columns)."""
    col = depths(wf, ids)
    consumers = {nid: [] for nid in ids}
    for dst in ids:
        for src, _ in wf.nodes[dst].inputs.values():
            if src in consumers:
                consumers[src].append(dst)
    for nid in sorted(ids, key=lambda n: -col[n]):
        if consumers[nid]:
            col[nid] = max(col[nid], min(col[c] for c in consumers[nid]) - 1)
    return col


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
    port_y = port_y or _default_port_y
    levels = columns_of(wf, missing)
    columns = {}
    for nid in missing:
        columns.setdefault(levels[nid], []).append(nid)
    order, xs, x = {}, {}, x0
    for level in sorted(columns):  # column order and x
        xs[level] = x
        order[level] = sorted(columns[level], key=lambda n: _barycenter(wf, n, {m: (0, order_y(order, m))
                                                                                 for m in missing}, 0))
        x += max(sizes.get(n, (160.0, 60.0))[0] for n in columns[level]) + GAP_X
    ceilings = {level: y0 for level in columns}
    for _ in range(CEILING_ROUNDS):  # long wires pass above the columns they cross
        out = _stack(order, xs, ceilings, sizes)
        raised = dict(ceilings)
        for src, dst, x1, y1, x2, y2 in wires(wf, out, sizes, port_y):
            for level in range(levels.get(src, 0) + 1, levels.get(dst, 0)):
                if level in raised:
                    raised[level] = max(raised[level], max(y1, y2) + MARGIN + 1.0)
        if raised == ceilings:
            return out
        ceilings = raised
    # wires that cross each other's columns: stack plainly, then move nodes off the wires
    return untangle(wf, _stack(order, xs, {level: y0 for level in columns}, sizes), sizes, port_y)


def order_y(order, nid):
    for col in order.values():
        if nid in col:
            return col.index(nid)
    return 0


def _stack(order, xs, ceilings, sizes):
    out = {}
    for level, col in order.items():
        y = ceilings[level]
        for nid in col:
            out[nid] = (xs[level], y)
            y += sizes.get(nid, (160.0, 60.0))[1] + GAP_Y
    return out


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


def overlaps(pos, sizes, gap=GAP_Y / 2):
    """Pairs of nodes that overlap (with a gap)."""
    items = list(pos.items())
    out = []
    for i, (a, (ax, ay)) in enumerate(items):
        aw, ah = sizes.get(a, (160.0, 60.0))
        for b, (bx, by) in items[i + 1:]:
            bw, bh = sizes.get(b, (160.0, 60.0))
            if ax < bx + bw and bx < ax + aw and ay < by + bh + gap and by < ay + ah + gap:
                out.append((a, b))
    return out


def _cost(wf, pos, sizes, port_y):
    return len(blocked(wf, pos, sizes, port_y)) + len(overlaps(pos, sizes))


def untangle(wf, pos, sizes, port_y, margin=MARGIN, restarts=8):
    """Move nodes off the wires they sit under: a small seeded local search (deterministic); each
    step moves the blocked node above or below the wire, or levels the wire by moving one of its
    ends; the layout with the fewest wires over nodes and overlaps wins."""
    start = dict(pos)
    best, best_cost = dict(pos), _cost(wf, pos, sizes, port_y)
    for r in range(restarts):
        rng = random.Random(r)
        pos = dict(start)
        for _ in range(ROUNDS):
            hits = blocked(wf, pos, sizes, port_y, margin)
            laps = overlaps(pos, sizes)
            if not hits and not laps:
                return pos
            moves = []
            if hits:
                nid, src, dst = rng.choice(hits)
                wire = next(w for w in wires(wf, pos, sizes, port_y) if w[0] == src and w[1] == dst)
                lo, hi = min(wire[3], wire[5]) - margin, max(wire[3], wire[5]) + margin
                h = sizes.get(nid, (160.0, 60.0))[1]
                moves = [(nid, hi + 1.0), (nid, lo - h - 1.0), (dst, pos[dst][1] + wire[3] - wire[5]),
                         (src, pos[src][1] + wire[5] - wire[3])]
            if laps:
                a, b = rng.choice(laps)
                moves.append((a, pos[b][1] + sizes.get(b, (160.0, 60.0))[1] + GAP_Y))
            options = []
            for who, new_y in moves:
                trial = dict(pos)
                trial[who] = (trial[who][0], round(new_y, 1))
                options.append((_cost(wf, trial, sizes, port_y), trial))
            low = min(c for c, _ in options)
            pos = rng.choice([t for c, t in options if c == low])
            if low < best_cost:
                best, best_cost = dict(pos), low
    return best
