"""The layers stay apart: core and engine import no torch or Qt, the CLI never imports the editor,
nodes reach models only through the runtime's typed API."""
import subprocess
import sys

from tests.conftest import ROOT


def imported_after(code):
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def modules_of(package):
    return ["latentloom." + ".".join(p.relative_to(ROOT).with_suffix("").parts) for p in (ROOT / package).glob("*.py")]


def test_core_engine_and_session_import_no_torch_or_qt():
    names = modules_of("app/core") + modules_of("app/engine") + modules_of("app/session")
    mods = imported_after("\n".join(f"import {n}" for n in names))
    assert not {m for m in mods if m.split(".")[0] in ("torch", "PySide6", "NodeGraphQt", "diffusers")}


def test_cli_never_imports_the_editor():
    mods = imported_after("from latentloom.app.cli import main\nmain(['nodes', '--json'])\n"
                          "main(['validate', 'workflows/txt2img.json', 'workflows/lora.json'])")
    assert "latentloom.app.cli" in mods and "latentloom.app.session" in mods
    assert not {m for m in mods if m.startswith(("latentloom.app.ui", "PySide6", "NodeGraphQt"))}
    assert "torch" not in mods  # validating needs no torch: it stays fast
    sources = [ROOT / "app" / "cli.py", *sorted((ROOT / "app" / "commands").glob("*.py"))]
    for path in sources:
        assert "latentloom.app.ui" not in path.read_text(), path


def test_nodes_use_the_typed_model_api():
    for path in sorted((ROOT / "nodes").glob("*.py")):
        text = path.read_text()
        assert "env.store" not in text and '["lock"]' not in text and "activated(" not in text, path.name
