"""lora nodes (being written)"""
from nodes.base import node  # noqa: F401
