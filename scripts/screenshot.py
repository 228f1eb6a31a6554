"""Screenshot of the editor after a run of workflows/txt2img.json on a tiny model.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot.py \
        --model DIR --out docs/screenshot.png

Without --model it builds a tiny random SD 1.x model (tests/tiny.py) in a temporary folder.
Settings go to a temporary file, never to the user's.
"""
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="a diffusers SD 1.x folder (default: build a tiny one)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--size", type=int, default=256, help="image width and height")
    ap.add_argument("--width", type=int, default=1600)
    ap.add_argument("--height", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="latentloom-shot-"))
    model = args.model
    if not model:  # in a child process: the editor's own process keeps free of extra threads
        model = tmp / "tiny-sd"
        subprocess.run([sys.executable, "-c", "import sys; from tests.tiny import save_tiny_pipeline; "
                        "save_tiny_pipeline(sys.argv[1])", str(model)], cwd=ROOT, check=True)

    from PySide6.QtCore import QElapsedTimer, QSettings
    from app.ui.main import make_app
    from app.ui.settings import Settings
    from app.ui.window import MainWindow

    app = make_app()
    settings = Settings(QSettings(str(tmp / "settings.ini"), QSettings.IniFormat))
    settings.output_dir = str(tmp / "output")
    settings.models_dirs = [str(tmp / "models")]
    window = MainWindow(settings, file=str(ROOT / "workflows" / "txt2img.json"))
    window.resize(args.width, args.height)
    window.show()
    doc = window.doc
    doc.set_param("ckpt", "path", str(Path(model).resolve()))
    doc.set_param("ckpt", "dtype", "fp32")
    doc.set_param("sampler", "steps", args.steps)
    doc.set_param("latent", "width", args.size)
    doc.set_param("latent", "height", args.size)
    window.view.select(["positive"])  # shows the prompt editor; few links get highlighted
    app.processEvents()
    window.view.frame()

    done = []
    window.run_done.connect(lambda result, error: done.append(error))
    window.run()
    timer = QElapsedTimer()
    timer.start()
    while not done and timer.elapsed() < args.timeout * 1000:
        app.processEvents()
    if not done or done[0] is not None:
        print(f"the run did not finish cleanly: {done[0] if done else 'timeout'}", file=sys.stderr)
    for _ in range(20):
        app.processEvents()
    window.view.frame()
    app.processEvents()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    ok = window.grab().save(args.out)
    print(f"saved {args.out}" if ok else f"could not save {args.out}")
    window.ask_unsaved = lambda: "discard"
    window.close()
    return 0 if ok and done and done[0] is None else 1


if __name__ == "__main__":
    sys.exit(main())
