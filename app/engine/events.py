"""Events the executor emits, for the UI and the CLI."""
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RunStarted:
    plan: tuple  # node ids in the order they will be visited


@dataclass(frozen=True)
class NodeStarted:
    node_id: str
    type: str


@dataclass(frozen=True)
class NodeCached:
    node_id: str
    type: str


@dataclass(frozen=True)
class NodeFinished:
    node_id: str
    type: str
    seconds: float


@dataclass(frozen=True)
class NodeFailed:
    node_id: str
    type: str
    message: str


@dataclass(frozen=True)
class NodeProgress:
    node_id: str
    step: int
    total: int
    preview: Any = None  # a small PIL image of the current latent, or None


@dataclass(frozen=True)
class NodeLog:
    node_id: str
    message: str


@dataclass(frozen=True)
class NodeOutput:
    node_id: str
    path: str  # a file the node wrote into the output folder


@dataclass(frozen=True)
class NodeImage:
    node_id: str
    images: tuple  # PIL images to show (PreviewImage); nothing was written


@dataclass(frozen=True)
class RunFinished:
    status: str  # "ok", "failed" or "cancelled"
    seconds: float
    executed: tuple = field(default=())
    cached: tuple = field(default=())
    outputs: tuple = field(default=())


@dataclass(frozen=True)
class CellStarted:
    """A sweep cell begins (index counts cells in run order, from 0)."""
    index: int
    total: int
    values: dict


@dataclass(frozen=True)
class CellFinished:
    index: int
    total: int
    values: dict
    status: str          # "ok", "failed" or "cancelled"
    files: tuple = ()
    grid: tuple = ()     # (column, row, page) of the cell on the contact sheets
    error: str = ""


@dataclass(frozen=True)
class SheetWritten:
    path: str
    page: int
