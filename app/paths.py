"""Where the shipped data lives: resources (configs, tokenizer, fonts, icons) and example
workflows, found as package data of latentloom.resources and latentloom.workflows."""
from importlib.resources import files
from pathlib import Path

RESOURCES = Path(str(files("latentloom.resources")))
WORKFLOWS = Path(str(files("latentloom.workflows")))
FONT = RESOURCES / "fonts" / "DejaVuSans.ttf"
GUIDE = Path(__file__).resolve().parents[1] / "docs" / "editor.md"  # a source checkout; F1 shows shortcuts without it
