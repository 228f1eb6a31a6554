"""Headless sub-commands. Each module has NAME, add_parser(sub, common) and run(args)."""
from latentloom.app.commands import convert, nodes, run, sweep, train_lora, validate

COMMANDS = [run, sweep, validate, nodes, convert, train_lora]
