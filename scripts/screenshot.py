"""Screenshots of the editor: an img2img run at low denoise, compared with the shipped input (a
slider over the two), and a sweep's contact sheet filling the image panel.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot.py \
        --out docs/screenshot.png --sweep-out docs/screenshot-sweep.png

Without --model it builds a tiny random SD 1.x model (tests/tiny.py) in a temporary folder.
Settings and outputs go to a temporary folder, never to the user's.
"""
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SWEEP = {"axes": [{"params": ["sampler.denoise"], "values": [0.3, 0.5, 0.7, 0.9]},
                  {"params": ["noise.seed"], "values": [1, 2]}]}


def wait_run(app, window, timeout):
    from PySide6.QtCore import QElapsedTimer
    done = []
    window.run_done.connect(lambda result, error: done.append(error))
    window.run()
    timer = QElapsedTimer()
    timer.start()
    while not done and timer.elapsed() < timeout * 1000:
        app.processEvents()
    if not done or done[0] is not None:
        print(f"the run did not finish cleanly: {done[0] if done else 'timeout'}", file=sys.stderr)
        return False
    for _ in range(20):
        app.processEvents()
    return True


def grab(app, window, out):
    window.view.frame()
    app.processEvents()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    ok = window.grab().save(str(out))
    print(f"saved {out}" if ok else f"could not save {out}")
    return ok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="a diffusers SD 1.x folder (default: build a tiny one)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    ap.add_argument("--sweep-out", default=str(ROOT / "docs" / "screenshot-sweep.png"))
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--denoise", type=float, default=0.3)
    ap.add_argument("--size", type=int, default=256, help="image width and height")
    ap.add_argument("--width", type=int, default=1600)
    ap.add_argument("--height", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="latentloom-shot-"))
    model = args.model
    if not model:  # in a child process: the editor's own process keeps free of extra threads
        model = tmp / "tiny-sd"
        subprocess.run([sys.executable, "-c", "import sys; from tests.tiny import save_tiny_pipeline; "
                        "save_tiny_pipeline(sys.argv[1])", str(model)], cwd=ROOT, check=True)

    from PySide6.QtCore import QSettings
    from latentloom.app.ui.main import make_app
    from latentloom.app.ui.settings import Settings
    from latentloom.app.ui.window import MainWindow

    app = make_app()
    settings = Settings(QSettings(str(tmp / "settings.ini"), QSettings.IniFormat))
    settings.output_dir = str(tmp / "output")
    settings.models_dirs = [str(tmp / "models")]
    window = MainWindow(settings, file=str(ROOT / "workflows" / "img2img.json"))
    window.warn = lambda title, text: print(f"{title}: {text.splitlines()[0]}")  # the model is set below
    window.resize(args.width, args.height)
    window.show()
    doc = window.doc
    doc.set_param("ckpt", "path", str(Path(model).resolve()))
    doc.set_param("ckpt", "dtype", "fp32")
    doc.set_param("sampler", "steps", args.steps)
    doc.set_param("sampler", "denoise", args.denoise)
    doc.set_param("resize", "width", args.size)
    doc.set_param("resize", "height", args.size)
    window.view.clear_states()
    window.view.select(["sampler"])  # the properties panel shows the sampler's params
    app.processEvents()
    ok = wait_run(app, window, args.timeout)
    if ok:  # the tiny model's VAE is random: compare the shipped input with what came out
        window.images.compare(ROOT / "workflows" / "inputs" / "landscape.png", window.images.current_path,
                              mode="slider")
        window.images.compare_view.split = 0.5
        ok = grab(app, window, args.out)

    doc.set_param("sampler", "steps", max(4, args.steps // 2))
    doc.set_sweep(SWEEP, "Sweep")
    window.sweep_dock.raise_()
    ok = wait_run(app, window, args.timeout) and grab(app, window, args.sweep_out) and ok
    window.ask_unsaved = lambda: "discard"
    window.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
