"""Contact sheets: a sweep's cells in a grid, with axis titles and value labels."""
from PIL import Image, ImageDraw, ImageFont

from latentloom.app.paths import FONT

MAX_SIDE = 8192          # a sheet is never larger than this on either side
MAX_CELL = 512           # nor is a cell
PAD = 8
FAILED_GREY = (96, 96, 96)
BACKGROUND = (24, 24, 27)
TEXT = (235, 235, 240)


def font(size):
    try:
        return ImageFont.truetype(str(FONT), size)
    except OSError:  # the bundled font is missing: Pillow's own scalable font
        return ImageFont.load_default(size)


def layout(columns, rows, cell_w, cell_h, has_rows, label_h=28, label_w=160):
    """Sheet geometry: (cell size, top strip height, left strip width, sheet size) under the caps."""
    scale = min(1.0, MAX_CELL / max(cell_w, cell_h))
    top = label_h * 2 + PAD
    left = label_w + PAD if has_rows else PAD
    avail_w = (MAX_SIDE - left - PAD) / columns - PAD
    avail_h = (MAX_SIDE - top - PAD) / rows - PAD
    scale = min(scale, avail_w / cell_w, avail_h / cell_h)
    cw, ch = max(8, int(cell_w * scale)), max(8, int(cell_h * scale))
    size = (left + columns * (cw + PAD), top + rows * (ch + PAD))
    return (cw, ch), top, left, size


def cell_origin(geometry, col, row):
    (cw, ch), top, left, _ = geometry
    return left + col * (cw + PAD), top + row * (ch + PAD)


def render(images, col_axis, row_axis, title_x, title_y, page_title=""):
    """images: {(col, row): PIL image or None (failed)}; *_axis: value labels. Returns a PIL image."""
    columns, rows = len(col_axis), max(1, len(row_axis))
    sizes = [im.size for im in images.values() if im is not None] or [(256, 256)]
    cell_w, cell_h = max(s[0] for s in sizes), max(s[1] for s in sizes)
    geometry = layout(columns, rows, cell_w, cell_h, bool(row_axis))
    (cw, ch), top, left, size = geometry
    sheet = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    small, big = font(14), font(16)
    head = title_x + (f"   ({page_title})" if page_title else "")
    draw.text((left, 4), head, fill=TEXT, font=big)
    if row_axis:
        draw.text((PAD, 4), title_y, fill=TEXT, font=big)
    for c, label in enumerate(col_axis):
        x, _ = cell_origin(geometry, c, 0)
        draw.text((x + cw // 2, top - PAD - 4), _fit(draw, label, cw, small), fill=TEXT, font=small, anchor="ms")
    for r, label in enumerate(row_axis):
        _, y = cell_origin(geometry, 0, r)
        draw.text((PAD, y + ch // 2), _fit(draw, label, left - 2 * PAD, small), fill=TEXT, font=small, anchor="lm")
    for (c, r), im in images.items():
        x, y = cell_origin(geometry, c, r)
        if im is None:
            draw.rectangle([x, y, x + cw - 1, y + ch - 1], fill=FAILED_GREY)
            draw.text((x + cw // 2, y + ch // 2), "failed", fill=TEXT, font=big, anchor="mm")
        else:
            sheet.paste(im.convert("RGB").resize((cw, ch), Image.LANCZOS) if im.size != (cw, ch)
                        else im.convert("RGB"), (x, y))
    return sheet


def _fit(draw, text, width, fnt):
    if draw.textlength(text, font=fnt) <= width:
        return text
    while text and draw.textlength(text + "…", font=fnt) > width:
        text = text[:-1]
    return text + "…"
