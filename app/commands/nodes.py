"""latentloom nodes: the node catalog, from the specs."""
import json

from latentloom.app.commands.common import EXIT_OK

NAME = "nodes"


def add_parser(sub, common):
    p = sub.add_parser(NAME, help="list the node catalog")
    p.add_argument("--json", action="store_true")
    return p


def run(args):
    from latentloom.nodes import catalog
    if args.json:
        print(json.dumps(catalog.describe(), indent=2))
        return EXIT_OK
    for spec in catalog:
        ins = ", ".join(f"{p.name}:{p.type}" for p in spec.inputs) or "-"
        outs = ", ".join(f"{p.name}:{p.type}" for p in spec.outputs) or "-"
        print(f"{spec.type}  [{spec.category}]  ({ins}) -> ({outs})")
        for p in spec.params:
            extra = []
            lo, hi = p.bounds()
            if lo is not None or hi is not None:
                extra.append(f"{lo}..{hi}")
            if p.choices:
                extra.append("|".join(map(str, p.choices)))
            print(f"    {p.name} ({p.kind}) = {json.dumps(p.default)}"
                  f"{'  [' + '; '.join(extra) + ']' if extra else ''}  {p.help}")
    return EXIT_OK
