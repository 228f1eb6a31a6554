"""Which nodes a run needs, in topological order."""


def targets_of(wf, catalog):
    """The output nodes (those with side effects), in workflow order."""
    return [nid for nid, n in wf.nodes.items() if catalog.get(n.type) and catalog.get(n.type).output_node]


def plan(wf, targets):
    """Ancestors of targets (targets included), sources first; ties keep workflow order."""
    needed, todo = set(), list(targets)
    while todo:
        nid = todo.pop()
        if nid in needed:
            continue
        needed.add(nid)
        todo += [src for src, _ in wf.nodes[nid].inputs.values()]
    order, done = [], set()
    pending = [nid for nid in wf.nodes if nid in needed]
    while pending:
        ready = [nid for nid in pending if all(src in done for src, _ in wf.nodes[nid].inputs.values())]
        if not ready:
            raise ValueError("the workflow has a cycle")  # validation reports cycles first
        for nid in ready:
            order.append(nid)
            done.add(nid)
        pending = [nid for nid in pending if nid not in done]
    return order
