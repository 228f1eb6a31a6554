"""The sweep panel: the workflow's "sweep" block as editable axes (columns, rows, pages).

Values use the CLI's syntax (app.core.sweep.parse_values): 1, 3, 7.5 or a JSON list, 1..4 for
integers, 0.2:1.0:0.2 for start:stop:step. Every change is a Document edit (undo covers it),
and Run runs the sweep through the session like any workflow that carries one."""
from latentloom.app.ui import qtcompat  # noqa: F401  (first: binding work-arounds)
import copy
import json

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QGridLayout, QHBoxLayout, QLabel, QLineEdit, QToolButton, QVBoxLayout,
                               QWidget)

from latentloom.app.core.sweep import MAX_AXES, parse_values
from latentloom.app.session.overrides import parse_value
from latentloom.app.ui.icons import icon

ROLES = ("X · columns", "Y · rows", "pages")


def format_values(values, zipped=False):
    """Values as the user types them."""
    if zipped:
        return json.dumps(values)
    out = []
    for v in values:
        if isinstance(v, str) and "," not in v and parse_value(v) == v and v.strip() == v and v:
            out.append(v)
        else:
            out.append(json.dumps(v))
    return ", ".join(out)


def default_values(param, value):
    """A first guess at an axis for a param: the user edits it."""
    if param.kind == "seed" and isinstance(value, int):
        return list(range(value, value + 4))
    if param.kind == "int" and isinstance(value, int):
        lo, hi = param.bounds()
        step = int(param.step or 1)
        vals = [value + i * step for i in range(4)]
        return [v for v in vals if (lo is None or v >= lo) and (hi is None or v <= hi)] or [value]
    if param.kind == "choice":
        return list(param.choices)
    if param.kind == "bool":
        return [False, True]
    return [value]


def axes_of(block):
    axes = block.get("axes") if isinstance(block, dict) else None
    return axes if isinstance(axes, list) else []


class SweepPanel(QWidget):
    message = Signal(str)

    def __init__(self, doc, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.rows = []      # per axis: (params label, values line edit)
        self.grid = QGridLayout()
        self.grid.setColumnStretch(2, 1)
        self.hint = QLabel("No sweep. Use “Sweep this…” beside a param in the Properties panel to add an "
                           "axis; Run then renders every combination into a contact sheet.")
        self.hint.setWordWrap(True)
        self.hint.setObjectName("hint")
        self.count = QLabel("")
        self.error = QLabel("")
        self.error.setStyleSheet("color: #e05555;")
        self.error.setWordWrap(True)
        self.swap_button = QToolButton()
        self.swap_button.setIcon(icon("swap"))
        self.swap_button.setText("Swap X/Y")
        self.swap_button.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.swap_button.clicked.connect(self.swap)
        self.clear_button = QToolButton()
        self.clear_button.setText("Clear")
        self.clear_button.clicked.connect(lambda: self.doc.set_sweep(None, "Clear sweep"))
        bar = QHBoxLayout()
        bar.addWidget(self.count, 1)
        bar.addWidget(self.swap_button)
        bar.addWidget(self.clear_button)
        col = QVBoxLayout(self)
        col.setContentsMargins(4, 4, 4, 4)
        col.addWidget(self.hint)
        col.addLayout(self.grid)
        col.addWidget(self.error)
        col.addLayout(bar)
        col.addStretch(1)
        doc.sweep_changed.connect(self.refresh)
        doc.reset.connect(self.refresh)
        self.refresh()

    # --- queries ---------------------------------------------------------------------
    def axes(self):
        return axes_of(self.doc.workflow.sweep)

    def cell_count(self):
        n = 1
        for axis in self.axes():
            n *= len(axis.get("values") or [])
        return n if self.axes() else 0

    # --- edits -----------------------------------------------------------------------
    def add_axis(self, nid, name):
        """Add NODE.PARAM as a new axis, starting from its current value."""
        axes = copy.deepcopy(self.axes())
        target = f"{nid}.{name}"
        if any(target in (a.get("params") or []) for a in axes):
            self.message.emit(f"{target} is already an axis")
            return False
        if len(axes) >= MAX_AXES:
            self.message.emit(f"A sweep has at most {MAX_AXES} axes (columns, rows, pages)")
            return False
        spec = self.doc.spec(nid)
        param = spec.param(name)
        value = self.doc.workflow.nodes[nid].params.get(name, param.default)
        axes.append({"params": [target], "values": default_values(param, value)})
        self.doc.set_sweep({"axes": axes}, f"Sweep {target}")
        if self.rows:
            self.rows[-1][1].setFocus()
            self.rows[-1][1].selectAll()
        return True

    def set_values(self, index, text):
        """Parse an axis's values text; a bad text is shown, never saved."""
        axes = copy.deepcopy(self.axes())
        zipped = len(axes[index].get("params") or []) > 1
        try:
            values = json.loads(text) if zipped else parse_values(text, parse_value)
        except ValueError as e:
            self.error.setText(f"Axis {index + 1}: {e}")
            return False
        if not isinstance(values, list) or not values or (len(values) == 1 and values[0] == ""):
            self.error.setText(f"Axis {index + 1}: give at least one value")
            return False
        self.error.setText("")
        if values != axes[index].get("values"):
            axes[index]["values"] = values
            self.doc.set_sweep({"axes": axes}, f"Edit sweep values of {' + '.join(axes[index]['params'])}")
        return True

    def remove_axis(self, index):
        axes = copy.deepcopy(self.axes())
        del axes[index]
        self.doc.set_sweep({"axes": axes} if axes else None, "Remove sweep axis")

    def swap(self):
        axes = copy.deepcopy(self.axes())
        if len(axes) < 2:
            self.message.emit("Swap needs two axes")
            return False
        axes[0], axes[1] = axes[1], axes[0]
        self.doc.set_sweep({"axes": axes}, "Swap sweep axes")
        return True

    # --- view ------------------------------------------------------------------------
    def refresh(self):
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        self.rows = []
        axes = self.axes()
        for i, axis in enumerate(axes):
            params = axis.get("params") or []
            role = QLabel(ROLES[i] if i < len(ROLES) else f"axis {i}")
            role.setObjectName("hint")
            name = QLabel(" + ".join(params))
            name.setToolTip("NODE.PARAM")
            values = QLineEdit(format_values(axis.get("values") or [], len(params) > 1))
            values.setToolTip("1, 3, 7.5  ·  1..4 (integers)  ·  0.2:1.0:0.2 (start:stop:step)  ·  a JSON list")
            values.editingFinished.connect(lambda i=i, e=values: self.set_values(i, e.text()))
            remove = QToolButton()
            remove.setIcon(icon("remove"))
            remove.setToolTip("Remove this axis")
            remove.clicked.connect(lambda checked=False, i=i: self.remove_axis(i))
            self.grid.addWidget(role, i, 0)
            self.grid.addWidget(name, i, 1)
            self.grid.addWidget(values, i, 2)
            self.grid.addWidget(remove, i, 3)
            self.rows.append((name, values))
        self.hint.setVisible(not axes)
        self.swap_button.setEnabled(len(axes) >= 2)
        self.clear_button.setEnabled(bool(axes))
        sizes = [len(a.get("values") or []) for a in axes]
        self.count.setText(f"{' × '.join(map(str, sizes))} = {self.cell_count()} cells" if axes else "")
