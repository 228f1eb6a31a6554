"""The loss log (CSV and JSON) and its curve, drawn with Pillow."""
import json
from pathlib import Path

from latentloom.app.engine.outputs import write_file

SIZE = (640, 360)
MARGIN = (56, 16, 16, 40)  # left, top, right, bottom
BACKGROUND, AXES, RAW, SMOOTH, TEXT = (24, 24, 27), (90, 90, 100), (90, 120, 170), (250, 170, 60), (235, 235, 240)


def window(n):
    return max(5, n // 20)


def running(losses):
    """The mean of the last few losses (5% of the steps, at least 5): what progress shows."""
    tail = losses[-window(len(losses)):]
    return sum(tail) / max(1, len(tail))


def smoothed(losses):
    """The running loss at every step (a trailing mean)."""
    window_ = window(len(losses))
    out, total = [], 0.0
    for i, v in enumerate(losses):
        total += v
        if i >= window_:
            total -= losses[i - window_]
        out.append(total / min(i + 1, window_))
    return out


def curve(losses, total=None, title="loss"):
    """A PIL image of the per-step loss (thin) and its running mean (thick); x spans `total` steps."""
    from PIL import Image, ImageDraw
    from latentloom.app.session.sheet import font
    im = Image.new("RGB", SIZE, BACKGROUND)
    d = ImageDraw.Draw(im)
    left, top, right, bottom = MARGIN
    x0, y0, x1, y1 = left, top, SIZE[0] - right, SIZE[1] - bottom
    d.rectangle((x0, y0, x1, y1), outline=AXES)
    small = font(12)
    steps = max(total or 0, len(losses), 1)
    d.text((x0, y1 + 6), "0", fill=TEXT, font=small)
    d.text((x1, y1 + 6), str(steps), fill=TEXT, font=small, anchor="ra")
    d.text(((x0 + x1) / 2, y1 + 6), "step", fill=TEXT, font=small, anchor="ma")
    if losses:
        lo, hi = min(losses), max(losses)
        hi = hi if hi > lo else lo + 1e-6
        d.text((x0 - 6, y0), f"{hi:.3g}", fill=TEXT, font=small, anchor="ra")
        d.text((x0 - 6, y1), f"{lo:.3g}", fill=TEXT, font=small, anchor="rd")

        def points(values):
            return [(x0 + (x1 - x0) * (i + 1) / steps, y1 - (y1 - y0) * (v - lo) / (hi - lo))
                    for i, v in enumerate(values)]
        for pts, colour, width in ((points(losses), RAW, 1), (points(smoothed(losses)), SMOOTH, 2)):
            if len(pts) > 1:
                d.line(pts, fill=colour, width=width)
            else:
                d.point(pts, fill=colour)
        title = f"{title}: step {len(losses)}/{steps}, running loss {running(losses):.4f}"
    d.text((x0 + 8, y0 + 6), title, fill=TEXT, font=font(14))
    return im


def write(stem, losses, total):
    """<stem>.loss.csv, <stem>.loss.json and <stem>.loss.png beside the LoRA; returns the PNG path."""
    stem = Path(stem)
    run = smoothed(losses)
    csv = "step,loss,running_loss\n" + "".join(f"{i + 1},{v!r},{r!r}\n" for i, (v, r) in enumerate(zip(losses, run)))
    doc = json.dumps({"steps": total, "loss": losses, "running_loss": run}) + "\n"
    write_file(stem.with_name(stem.name + ".loss.csv"), lambda tmp: Path(tmp).write_text(csv, encoding="utf-8"))
    write_file(stem.with_name(stem.name + ".loss.json"), lambda tmp: Path(tmp).write_text(doc, encoding="utf-8"))
    png = stem.with_name(stem.name + ".loss.png")
    image = curve(losses, total)
    write_file(png, lambda tmp: image.save(tmp, format="PNG"))
    return png


def read(stem):
    """The losses of an earlier <stem>.loss.json, or None."""
    path = Path(str(stem) + ".loss.json")
    try:
        return [float(v) for v in json.loads(path.read_text(encoding="utf-8"))["loss"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
