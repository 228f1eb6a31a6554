"""Which nodes a run needs, in topological order."""


def targets_of(wf, catalog):
    """The output nodes (those with side effects), in workflow order."""
    return [nid for nid, n in wf.nodes.items() if catalog.get(n.type) and catalog.get(n.type).output_node]


def plan(wf, targets):
    """Ancestors of targets (targets included), each after its sources.

    Nodes are taken in workflow order, each preceded by its not-yet-planned sources,
    so the order reads like the file. Validation has already ruled out cycles.
    """
    needed, todo = set(), list(targets)
    while todo:
        nid = todo.pop()
        if nid not in needed:
            needed.add(nid)
            todo += [src for src, _ in wf.nodes[nid].inputs.values()]
    order, placed, open_ = [], set(), set()
    for start in (nid for nid in wf.nodes if nid in needed):
        stack = [(start, False)]
        while stack:
            nid, expanded = stack.pop()
            if nid in placed:
                continue
            if expanded:
                placed.add(nid)
                order.append(nid)
                continue
            if nid in open_:
                raise ValueError(f"the workflow has a cycle through {nid!r}")
            open_.add(nid)
            stack.append((nid, True))
            for src, _ in reversed(list(wf.nodes[nid].inputs.values())):
                if src not in placed:
                    stack.append((src, False))
    return order
