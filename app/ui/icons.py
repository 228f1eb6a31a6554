"""Bundled SVG icons (resources/icons), drawn in the theme's text colour, so they render on every
machine (no emoji font needed)."""
from latentloom.app.ui import qtcompat  # noqa: F401  (first: binding work-arounds)
from functools import lru_cache

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer
from latentloom.app import paths

ICONS = paths.RESOURCES / "icons"
SIZES = (16, 24, 32, 48)
COLOR = {"dark": "#d6d9e0", "light": "#3a3d44"}
current = {"theme": "dark"}


def names():
    return sorted(p.stem for p in ICONS.glob("*.svg"))


@lru_cache(maxsize=None)
def _icon(name, color):
    svg = (ICONS / f"{name}.svg").read_text(encoding="utf-8").replace("currentColor", color)
    renderer = QSvgRenderer(QByteArray(svg.encode()))
    if not renderer.isValid():
        raise ValueError(f"icon {name!r} is not a valid SVG")
    out = QIcon()
    for size in SIZES:
        pix = QPixmap(size, size)
        pix.fill(Qt.transparent)
        painter = QPainter(pix)
        renderer.render(painter)
        painter.end()
        out.addPixmap(pix)
    return out


def icon(name):
    return _icon(name, COLOR[current["theme"]])
