"""Sweeps: a workflow's "sweep" block, its axes, and the cells they span (no I/O, no torch).

    "sweep": {"axes": [{"params": ["sampler.cfg"], "values": [1, 3, 5]},
                       {"params": ["noise.seed", "save.filename_prefix"], "values": [[1, "a"], [2, "b"]]}]}

Axes combine as a product: axis 0 gives the columns, axis 1 the rows, axis 2 the pages. An axis
with several params zips them, and each of its values is a list of one value per param.
"""
import itertools
import re
from dataclasses import dataclass

from latentloom.app.core.workflow import Problem

MAX_AXES = 3
MAX_CELLS = 10000
RANGE_INT = re.compile(r"^\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*$")
RANGE_STEP = re.compile(r"^\s*([-+0-9.eE]+)\s*:\s*([-+0-9.eE]+)\s*:\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Axis:
    params: tuple   # ("node", "param") pairs
    values: tuple   # one tuple per value, of one entry per param

    @property
    def label(self):
        return " + ".join(f"{n}.{p}" for n, p in self.params)

    def value_label(self, i):
        vals = self.values[i]
        return ", ".join(_short(v) for v in vals)

    def to_json(self):
        return {"params": [f"{n}.{p}" for n, p in self.params],
                "values": [list(v) if len(self.params) > 1 else v[0] for v in self.values]}


@dataclass(frozen=True)
class Cell:
    index: tuple    # (column, row, page): value indices on axes 0, 1, 2 (0 where absent)
    sets: tuple     # ((node, param, value), ...)

    @property
    def values(self):
        """{"node.param": value} for reports and manifests."""
        return {f"{n}.{p}": v for n, p, v in self.sets}


def _short(v):
    text = v if isinstance(v, str) else repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _show(v):
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def expand_range(text):
    """'1..4' -> [1, 2, 3, 4]; '0.2:1.0:0.2' -> [0.2, 0.4, ..., 1.0]; else None."""
    m = RANGE_INT.match(text)
    if m:
        a, b = int(m.group(1)), int(m.group(2))
        step = 1 if b >= a else -1
        if abs(b - a) >= MAX_CELLS:
            raise ValueError(f"range {text!r} has too many values")
        return list(range(a, b + step, step))
    m = RANGE_STEP.match(text)
    if m:
        try:
            start, stop, step = (float(g) for g in m.groups())
        except ValueError:
            return None
        if step == 0 or (stop - start) / step < 0:
            raise ValueError(f"range {text!r}: the step must lead from start to stop")
        count = int(round((stop - start) / step + 1e-9)) + 1
        if count > MAX_CELLS:
            raise ValueError(f"range {text!r} has too many values")
        digits = max(_decimals(g) for g in m.groups())
        return [round(start + i * step, digits) for i in range(count)
                if (step > 0 and start + i * step <= stop + abs(step) * 1e-9)
                or (step < 0 and start + i * step >= stop - abs(step) * 1e-9)]
    return None


def _decimals(text):
    return len(text.split(".")[1]) if "." in text and "e" not in text.lower() else 6


def parse_values(text, parse_value):
    """CLI axis values: a JSON list, a range, or comma-separated values (each JSON or a string)."""
    stripped = text.strip()
    if stripped.startswith("["):
        value = parse_value(stripped)
        if isinstance(value, list):
            return value
    rng = expand_range(stripped)
    if rng is not None:
        return rng
    return [parse_value(part.strip()) for part in text.split(",")]


def parse(block):
    """The "sweep" block -> (axes, problems). Only shape is checked here; see check()."""
    if not isinstance(block, dict):
        return [], [Problem(None, "sweep", "\"sweep\" must be an object with \"axes\"")]
    problems = [Problem(None, "sweep", f"unknown key {k!r} (a sweep has \"axes\")") for k in block if k != "axes"]
    raw_axes = block.get("axes")
    if not isinstance(raw_axes, list) or not raw_axes:
        return [], problems + [Problem(None, "sweep", "\"axes\" must be a non-empty list")]
    if len(raw_axes) > MAX_AXES:
        problems.append(Problem(None, "sweep", f"at most {MAX_AXES} axes (columns, rows, pages), "
                                               f"got {len(raw_axes)}"))
    axes = []
    for i, raw in enumerate(raw_axes[:MAX_AXES]):
        axis, more = _parse_axis(i, raw)
        problems += more
        if axis is not None:
            axes.append(axis)
    if axes and not problems:
        count = 1
        for a in axes:
            count *= len(a.values)
        if count > MAX_CELLS:
            problems.append(Problem(None, "sweep", f"{count} cells is more than {MAX_CELLS}"))
    return axes, problems


def _parse_axis(i, raw):
    where = f"sweep axis {i}"
    if not isinstance(raw, dict):
        return None, [Problem(None, where, "an axis must be an object with \"params\" and \"values\"")]
    bad = [k for k in raw if k not in ("params", "values")]
    problems = [Problem(None, where, f"unknown key {k!r}") for k in bad]
    params, values = raw.get("params"), raw.get("values")
    if isinstance(params, str):
        params = [params]
    if not isinstance(params, list) or not params or not all(isinstance(p, str) for p in params):
        return None, problems + [Problem(None, where, "\"params\" must list NODE.PARAM names")]
    pairs = []
    for target in params:
        node_id, dot, param = target.rpartition(".")
        if not dot or not node_id or not param:
            problems.append(Problem(None, where, f"{target!r}: expected NODE.PARAM"))
        pairs.append((node_id, param))
    if not isinstance(values, list) or not values:
        return None, problems + [Problem(None, where, "\"values\" must be a non-empty list")]
    rows = []
    for v in values:
        if len(pairs) == 1:
            rows.append((v,))
        elif isinstance(v, list) and len(v) == len(pairs):
            rows.append(tuple(v))
        else:
            problems.append(Problem(None, where, f"value {_show(v)}: an axis of {len(pairs)} params takes "
                                                 f"lists of {len(pairs)} values"))
    if problems:
        return None, problems
    return Axis(tuple(pairs), tuple(rows)), []


def check(axes, wf, catalog):
    """Every axis names an existing node and param, and every value passes the param's check."""
    problems = []
    for i, axis in enumerate(axes):
        for j, (node_id, param) in enumerate(axis.params):
            where = f"sweep axis {i} ({axis.label})"
            node = wf.nodes.get(node_id)
            if node is None:
                problems.append(Problem(node_id, where, f"no such node {node_id!r}"))
                continue
            spec = catalog.get(node.type)
            p = spec.param(param) if spec else None
            if p is None:
                names = ", ".join(q.name for q in spec.params) if spec else ""
                problems.append(Problem(node_id, f"{where}: param {param!r}",
                                        f"unknown param for {node.type}" + (f" (it has: {names})" if names else "")))
                continue
            for row in axis.values:
                err = p.check(row[j])
                if err:
                    problems.append(Problem(node_id, f"{where}: param {param!r}", f"value {_show(row[j])}: {err}"))
    return problems or _check_cells(axes, wf, catalog)


def _check_cells(axes, wf, catalog):
    """Rules between params (multiples of 8, scheduler/sigmas pairs) for each cell's values."""
    problems, seen = [], set()
    for cell in cells(axes):
        touched = {}
        for node_id, param, value in cell.sets:
            touched.setdefault(node_id, dict(wf.nodes[node_id].params))[param] = value
        for node_id, params in touched.items():
            spec = catalog.get(wf.nodes[node_id].type)
            if spec.check is None:
                continue
            for pname, message in spec.check(params):
                if (node_id, pname, message) not in seen:
                    seen.add((node_id, pname, message))
                    problems.append(Problem(node_id, f"param {pname!r}", f"in sweep cell {cell.values}: {message}"))
    return problems


def cells(axes):
    """Every cell, in product order (axis 0 fastest)."""
    ranges = [range(len(a.values)) for a in axes]
    out = []
    for idx in itertools.product(*reversed(ranges)):
        idx = tuple(reversed(idx))
        sets = tuple((n, p, axis.values[k][j]) for axis, k in zip(axes, idx)
                     for j, (n, p) in enumerate(axis.params))
        out.append(Cell(idx + (0,) * (MAX_AXES - len(idx)), sets))
    return out


def run_order(cell_list, axes, wf):
    """Cells ordered so that work shared by cells is done together: the axis whose nodes feed
    the most of the graph varies slowest (a checkpoint axis before a seed axis before cfg)."""
    def reach(axis):
        nodes = {n for n, _ in axis.params}
        down = set()
        for n in nodes:
            down |= wf.downstream(n)
        return len(down | nodes)
    slow_first = sorted(range(len(axes)), key=lambda i: (-reach(axes[i]), -i))
    return sorted(cell_list, key=lambda c: tuple(c.index[i] for i in slow_first))
