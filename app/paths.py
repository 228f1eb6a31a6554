"""Where the shipped data lives: resources (configs, tokenizer, fonts) and example workflows."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = ROOT / "resources"
WORKFLOWS = ROOT / "workflows"
FONT = RESOURCES / "fonts" / "DejaVuSans.ttf"
GUIDE = ROOT / "docs" / "editor.md"  # the editor guide (a source checkout; F1 shows shortcuts without it)
