"""Screenshot of the canvas with a ComfyUI workflow whose two nodes Latent Loom cannot run: they
open as red placeholders that keep their data and links.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshot_unsupported.py \
        --out docs/screenshot-unsupported.png

Settings and the workflow go to a temporary folder, never to the user's.
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PROMPT = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
    "3": {"class_type": "KSampler", "inputs": {
        "seed": 42, "steps": 20, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
        "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "50": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "4x.pth"}, "_meta": {"title": "Upscaler"}},
    "51": {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["50", 0], "image": ["8", 0]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["51", 0]}},
}
SHOWN = ["3", "8", "50", "51", "9"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshot-unsupported.png"))
    args = ap.parse_args(argv)
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication, QDockWidget
    app = QApplication.instance() or QApplication([])
    from latentloom.app.ui.settings import Settings
    from latentloom.app.ui.window import MainWindow
    tmp = Path(tempfile.mkdtemp(prefix="latentloom-shot-"))
    settings = Settings(QSettings(str(tmp / "settings.ini"), QSettings.IniFormat))
    settings.output_dir = str(tmp / "out")
    path = tmp / "comfy-api.json"
    path.write_text(json.dumps(PROMPT))
    window = MainWindow(settings, load_default=False)
    window.warn = lambda title, text: None
    window.resize(1500, 900)
    window.show()
    window.open_path(str(path), ask=False)
    for dock in window.findChildren(QDockWidget):
        dock.hide()
    app.processEvents()
    view = window.view
    view.frame(SHOWN, margin=20)
    app.processEvents()
    box = view.viewer.mapFromScene(view.items_rect(SHOWN).adjusted(-30, -40, 30, 30)).boundingRect()
    ok = view.widget.grab(box).save(args.out)
    print(f"saved {args.out}" if ok else f"could not save {args.out}")
    window.ask_unsaved = lambda: "discard"
    window.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
