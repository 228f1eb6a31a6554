"""Write the tiny example training set: a made-up subject ("zqx", a red round creature with
big eyes and a yellow cone hat) drawn procedurally on varied backgrounds, with captions.

    python tools/make_training_images.py [FOLDER] [--count 6] [--size 128]
"""
import argparse
import random
from pathlib import Path

from PIL import Image, ImageDraw

BACKGROUNDS = [("blue", (70, 110, 200)), ("green", (80, 160, 90)), ("grey", (140, 140, 140)),
               ("purple", (120, 80, 160)), ("teal", (60, 150, 150)), ("orange", (220, 140, 60))]
PLACES = ["in the middle", "on the left", "on the right"]


def draw(size, background, place, seed):
    """One picture of the subject; `place` 0/1/2 = centre/left/right."""
    rnd = random.Random(seed)
    im = Image.new("RGB", (size, size), background)
    d = ImageDraw.Draw(im)
    for _ in range(6):  # a little background texture
        x, y, r = rnd.uniform(0, size), rnd.uniform(0, size), rnd.uniform(size / 20, size / 8)
        shade = tuple(max(0, min(255, c + rnd.randint(-25, 25))) for c in background)
        d.ellipse((x - r, y - r, x + r, y + r), fill=shade)
    r = size * rnd.uniform(0.22, 0.3)
    cx = size * (0.5, 0.33, 0.67)[place] + rnd.uniform(-size / 20, size / 20)
    cy = size * 0.58 + rnd.uniform(-size / 20, size / 20)
    d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(210, 40, 40), outline=(90, 10, 10), width=max(1, size // 64))
    for ex in (cx - r * 0.38, cx + r * 0.38):  # eyes
        d.ellipse((ex - r * 0.22, cy - r * 0.45, ex + r * 0.22, cy - r * 0.01), fill=(250, 250, 250))
        d.ellipse((ex - r * 0.09, cy - r * 0.3, ex + r * 0.09, cy - r * 0.12), fill=(20, 20, 20))
    d.polygon([(cx - r * 0.55, cy - r * 0.8), (cx + r * 0.55, cy - r * 0.8), (cx, cy - r * 1.9)],
              fill=(240, 210, 50), outline=(120, 90, 10))
    return im


def write(folder, count=6, size=128):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        name, rgb = BACKGROUNDS[i % len(BACKGROUNDS)]
        place = i % len(PLACES)
        path = folder / f"zqx_{i:02d}.png"
        draw(size, rgb, place, seed=i).save(path, optimize=True)
        path.with_suffix(".txt").write_text(f"a picture of zqx creature {PLACES[place]}, {name} background\n",
                                            encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default=str(Path(__file__).resolve().parents[1] / "workflows" / "inputs"
                                                    / "zqx-creature"))
    ap.add_argument("--count", type=int, default=6)
    ap.add_argument("--size", type=int, default=128)
    args = ap.parse_args()
    for p in write(args.folder, args.count, args.size):
        print(p)
