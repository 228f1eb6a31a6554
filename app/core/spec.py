"""Declarative node specs: typed named ports, params with kind, default, range or choices."""
from dataclasses import dataclass
from typing import Any, Callable

PARAM_KINDS = ("int", "float", "bool", "string", "text", "choice", "seed", "file")
SEED_MAX = 2**64 - 1


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    default: Any
    help: str = ""
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: tuple = ()
    # kind "file": which models folder it lives in ("checkpoints", "loras", "images", "configs"),
    # how its cache fingerprint is taken ("stat": path+size+mtime, "content": hash) and
    # whether an empty value is allowed.
    folder: str = ""
    fingerprint: str = "stat"
    extensions: tuple = ()
    optional: bool = False
    hub: bool = False  # kind "file": a Hugging Face repo id is accepted too

    def check(self, value):
        """Return an error message for a bad value, or None."""
        k = self.kind
        if k in ("int", "seed"):
            if isinstance(value, bool) or not isinstance(value, int):
                return f"expected an integer, got {_show(value)}"
        elif k == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"expected a number, got {_show(value)}"
            if value != value or value in (float("inf"), float("-inf")):
                return f"expected a finite number, got {value}"
        elif k == "bool":
            if not isinstance(value, bool):
                return f"expected true or false, got {_show(value)}"
        elif k in ("string", "text", "file"):
            if not isinstance(value, str):
                return f"expected a string, got {_show(value)}"
            if k == "file" and not value and not self.optional:
                return "a file is required"
            if "\x00" in value:
                return "contains a NUL character"
        elif k == "choice":
            if value not in self.choices:
                return f"{_show(value)} is not one of: {', '.join(map(str, self.choices))}"
        lo, hi = self.bounds()
        if k in ("int", "float", "seed"):
            if lo is not None and value < lo:
                return f"{value} is below the minimum {lo}"
            if hi is not None and value > hi:
                return f"{value} is above the maximum {hi}"
        return None

    def bounds(self):
        if self.kind == "seed":
            return (0 if self.min is None else self.min), (SEED_MAX if self.max is None else self.max)
        return self.min, self.max

    def describe(self):
        d = {"name": self.name, "kind": self.kind, "default": self.default, "help": self.help}
        lo, hi = self.bounds()
        for key, val in (("min", lo), ("max", hi), ("step", self.step)):
            if val is not None:
                d[key] = val
        if self.choices:
            d["choices"] = list(self.choices)
        if self.kind == "file":
            d.update(folder=self.folder, extensions=list(self.extensions), optional=self.optional)
        return d


def _show(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class Port:
    name: str
    type: str
    help: str = ""
    optional: bool = False
    # An optional input that, when linked, replaces this file param (which is then neither
    # checked nor resolved), e.g. LoadLoRA's `lora` input over its `path`.
    overrides: str = ""


@dataclass(frozen=True)
class Ref:
    """A file named inside a param's text."""
    param: str
    name: str           # as written
    candidates: tuple   # file names to look for, in order
    folder: str         # models sub-folder kind (engine FOLDERS)
    what: str = "file"  # for messages: "embedding"
    required: bool = True  # False: use it when present (A1111's bare embedding names)
    walk: bool = False     # also look in the folder's sub-folders (ComfyUI's embeddings)


@dataclass(frozen=True)
class NodeSpec:
    type: str
    fn: Callable
    category: str
    help: str
    inputs: tuple[Port, ...] = ()
    outputs: tuple[Port, ...] = ()
    params: tuple[Param, ...] = ()
    version: int = 1
    # Output nodes have side effects (files): they run whenever they are planned.
    output_node: bool = False
    # check(params) -> [(param name, message)]: constraints between params.
    check: Callable | None = None
    # refs(params) -> [Ref]: files a param's text names (embeddings in a prompt); the engine resolves,
    # checks and fingerprints them like file params, and ctx.refs(param) gives {name: path}.
    refs: Callable | None = None

    def param(self, name):
        return next((p for p in self.params if p.name == name), None)

    def input(self, name):
        return next((p for p in self.inputs if p.name == name), None)

    def output(self, name):
        return next((p for p in self.outputs if p.name == name), None)

    def overridden(self, linked):
        """Names of the params replaced by linked inputs (`linked`: the node's linked input names)."""
        return {p.overrides for p in self.inputs if p.overrides and p.name in linked}

    def defaults(self):
        return {p.name: p.default for p in self.params}

    def describe(self):
        return {
            "type": self.type, "category": self.category, "help": self.help, "version": self.version,
            "output_node": self.output_node,
            "inputs": [{"name": p.name, "type": p.type, "help": p.help, "optional": p.optional,
                        **({"overrides": p.overrides} if p.overrides else {})} for p in self.inputs],
            "outputs": [{"name": p.name, "type": p.type, "help": p.help} for p in self.outputs],
            "params": [p.describe() for p in self.params],
        }


def Int(name, default, help="", min=None, max=None, step=1):
    return Param(name, "int", default, help, min, max, step)


def Float(name, default, help="", min=None, max=None, step=0.01):
    return Param(name, "float", default, help, min, max, step)


def Bool(name, default, help=""):
    return Param(name, "bool", default, help)


def String(name, default="", help=""):
    return Param(name, "string", default, help)


def Text(name, default="", help=""):
    return Param(name, "text", default, help)


def Choice(name, choices, default=None, help=""):
    return Param(name, "choice", choices[0] if default is None else default, help, choices=tuple(choices))


def Seed(name="seed", default=0, help="Random seed."):
    return Param(name, "seed", default, help)


def File(name, folder, default="", help="", fingerprint="stat", extensions=(), optional=False, hub=False):
    return Param(name, "file", default, help, folder=folder, fingerprint=fingerprint,
                 extensions=tuple(extensions), optional=optional, hub=hub)


def In(name, type, help="", optional=False, overrides=""):
    return Port(name, type, help, optional or bool(overrides), overrides)


def Out(name, type, help=""):
    return Port(name, type, help)
