"""Where the shipped data lives: resources (configs, tokenizer, fonts) and example workflows."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = ROOT / "resources"
WORKFLOWS = ROOT / "workflows"
FONT = RESOURCES / "fonts" / "DejaVuSans.ttf"
