"""Write docs/nodes.md from the node specs: `python tools/gen_docs.py` (the tests check it is current)."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def render(catalog):
    lines = ["# Nodes", "", "Generated from the node specs by `python tools/gen_docs.py`; do not edit.", ""]
    by_cat = {}
    for spec in catalog:
        by_cat.setdefault(spec.category, []).append(spec)
    for cat, specs in by_cat.items():
        lines += [f"## {cat}", ""]
        for spec in specs:
            lines += [f"### {spec.type}", "", spec.help, ""]
            if spec.inputs:
                lines.append("Inputs: " + ", ".join(
                    f"`{p.name}` ({p.type}{', optional' if p.optional else ''})" for p in spec.inputs) + ".")
            if spec.outputs:
                lines.append("Outputs: " + ", ".join(f"`{p.name}` ({p.type})" for p in spec.outputs) + ".")
            if spec.output_node:
                lines.append("Output node: runs whenever the workflow runs.")
            lines.append("")
            if spec.params:
                lines += ["| param | kind | default | range / choices | help |", "|---|---|---|---|---|"]
                for p in spec.params:
                    lo, hi = p.bounds()
                    rng = " \\| ".join(map(str, p.choices)) if p.choices else (
                        f"{lo} .. {hi}" if lo is not None or hi is not None else "")
                    if p.kind == "file":
                        rng = f"file in `{p.folder}`" + (" or hub id" if p.hub else "") + (
                            ", optional" if p.optional else "")
                    default = repr(p.default) if isinstance(p.default, str) else str(p.default).lower() \
                        if isinstance(p.default, bool) else p.default
                    lines.append(f"| `{p.name}` | {p.kind} | `{default}` | {rng} | {p.help} |")
                lines.append("")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    from latentloom.nodes import catalog
    (ROOT / "docs" / "nodes.md").write_text(render(catalog))
    print("wrote docs/nodes.md")
