"""A catalog of node specs, filled by the @node decorator."""
from latentloom.app.core.spec import PARAM_KINDS, NodeSpec


class Catalog:
    def __init__(self):
        self.specs = {}

    def add(self, spec):
        if spec.type in self.specs:
            raise ValueError(f"node type {spec.type!r} is declared twice")
        bad = [p.name for p in spec.params if p.kind not in PARAM_KINDS]
        if bad:
            raise ValueError(f"node type {spec.type!r}: params {bad} have an unknown kind")
        names = [p.name for p in spec.inputs] + [p.name for p in spec.params]
        if len(set(names)) != len(names):
            raise ValueError(f"node type {spec.type!r} has an input and a param with the same name")
        for inp in spec.inputs:
            target = spec.param(inp.overrides) if inp.overrides else None
            if inp.overrides and (target is None or target.kind != "file"):
                raise ValueError(f"node type {spec.type!r}: input {inp.name!r} overrides no file param")
        self.specs[spec.type] = spec
        return spec

    def node(self, type, category, help, inputs=(), outputs=(), params=(), **kw):
        """Decorator: declare a node from a plain function.

        The function takes (ctx, **inputs, **params) and returns a dict of outputs,
        or a single value when the node has exactly one output.
        """
        def wrap(fn):
            self.add(NodeSpec(type=type, fn=fn, category=category, help=help,
                              inputs=tuple(inputs), outputs=tuple(outputs), params=tuple(params), **kw))
            return fn
        return wrap

    def get(self, type):
        return self.specs.get(type)

    def __iter__(self):
        return iter(sorted(self.specs.values(), key=lambda s: (s.category, s.type)))

    def __contains__(self, type):
        return type in self.specs

    def describe(self):
        return [spec.describe() for spec in self]
