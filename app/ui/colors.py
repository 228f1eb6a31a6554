"""Colours of the canvas: one table for node categories (keyed by the catalog's categories) and
port types (keyed by app.core.types). A test checks that every category and type has one."""
from latentloom.app.core.types import COLORS as PORT_COLORS

CATEGORIES = {
    "loaders": (62, 44, 84),
    "conditioning": (80, 60, 32),
    "latent": (78, 40, 66),
    "sampling": (32, 64, 72),
    "image": (34, 52, 82),
    "mask": (38, 70, 44),
    "controlnet": (30, 72, 58),
    "training": (84, 72, 30),
    "unsupported": (120, 30, 34),   # kept ComfyUI nodes we cannot run (app.formats.placeholders)
}
PLACEHOLDER_BORDER = (240, 70, 70)
DEFAULT = (52, 54, 62)
DEFAULT_PORT = (175, 175, 175)


def category_color(category):
    return CATEGORIES.get(category, DEFAULT)


def port_color(type_name):
    return tuple(PORT_COLORS.get(type_name, DEFAULT_PORT))
